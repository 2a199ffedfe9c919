//! `vigil demo`'s verdicts: whether a run did what its scenario claims.
//!
//! A run is first classified by how it ended ([`classify`]); the class must
//! be the scenario's [`Expect`]. Then the rest of the claim must hold:
//!
//! * **The guest's own words.** Its serial output contains the scenario's
//!   [`Claim::output`]: the line the guest prints just before the behaviour
//!   under test begins (a storm guest's "from here on no instruction
//!   completes"), or the check line by which an L1 hypervisor reports what
//!   its L2 did.
//! * **Contained by notify** means notify exits kept the CPU in L0's hands
//!   from the first one to the end of the run: at least two of them, and no
//!   stretch of virtual time longer than the *quiet limit* without one —
//!   neither between two consecutive exits nor from the last exit to the end
//!   of the run. The quiet limit is two notify windows: 2 × (the processor's
//!   threshold + the VMCS window) crystal cycles ([`quiet_limit_ns`]). In a
//!   storm the soft CPU leaves once one window has passed since the last
//!   instruction boundary (overshooting by at most one delivery) and each
//!   exit adds its modelled cost, microseconds against a window's
//!   milliseconds; a second window leaves room for those costs, and any pause
//!   of the storm, or a guest that escaped it, exceeds it. A run that timed
//!   out with a single notify exit at the start is not contained.
//! * **NMI unblocking.** Where the scenario says so, the first notify exit's
//!   qualification has bit 12 set (NMI unblocking due to IRET).

use crate::demo::ns;
use vmm::{RunEnd, RunReport};

/// How a scenario is expected to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The guest finishes and reports success.
    Completed,
    /// Runs until the storm time with notify exits keeping L0 in control.
    ContainedByNotify,
    /// Runs until the storm time with intercepted #AC/#DB exits.
    ContainedByInterception,
    /// The watchdog powers it off.
    Stalled,
    /// Stopped at the first notify exit.
    InternalError,
    /// Shut down by the injected triple fault.
    ShutDown,
    /// Paused by the context-invalid policy.
    Stopped,
    /// An L1 hypervisor passed every check on its L2 guests, with notify
    /// exits from L2 along the way.
    NestedPassed,
}

/// What a scenario claims about its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// How it ends.
    pub expect: Expect,
    /// Text the guest's serial output must contain.
    pub output: &'static str,
    /// The first notify exit has qualification bit 12 (NMI unblocking due
    /// to IRET).
    pub nmi_unblocking: bool,
}

/// Exit qualification bit 12: NMI unblocking due to IRET.
const NMI_UNBLOCKING: u64 = 1 << 12;

/// The quiet limit of a storm contained by notify, in virtual nanoseconds:
/// two notify windows of `threshold + window` crystal cycles at
/// `crystal_hz`.
pub fn quiet_limit_ns(threshold: u32, window: u32, crystal_hz: u32) -> u64 {
    let cycles = 2 * (u128::from(threshold) + u128::from(window));
    let ns = cycles * 1_000_000_000 / u128::from(crystal_hz.max(1));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Intercepted #AC/#DB exits (the soft accelerator's exception exits).
fn exception_exits(r: &RunReport) -> u64 {
    r.internal_exits
        .iter()
        .find(|(n, _)| *n == "exception-nmi")
        .map_or(0, |(_, c)| *c)
}

/// The outcome text of a run, and the expectation its ending fits, if any.
pub fn classify(r: &RunReport) -> (String, Option<Expect>) {
    let n = &r.notify;
    match &r.end {
        RunEnd::DebugExit(0) if r.nested_exits_to_l1 > 0 => (
            format!(
                "L1 passed; {} exits to L1, {} notify in L2",
                r.nested_exits_to_l1, n.exits
            ),
            Some(if n.exits == 0 {
                Expect::Completed
            } else {
                Expect::NestedPassed
            }),
        ),
        RunEnd::DebugExit(0) if n.exits == 0 => ("completed".into(), Some(Expect::Completed)),
        RunEnd::Timeout(_) if n.exits > 0 => (
            format!(
                "contained: {} notify exits{}",
                n.exits,
                if n.first_exit_qualification.unwrap_or(0) & NMI_UNBLOCKING != 0 {
                    ", 1st bit 12"
                } else {
                    ""
                }
            ),
            Some(Expect::ContainedByNotify),
        ),
        RunEnd::Timeout(_) if exception_exits(r) > 0 => (
            format!("contained: {} #AC/#DB exits", exception_exits(r)),
            Some(Expect::ContainedByInterception),
        ),
        RunEnd::Stalled { in_guest: d, .. } => (
            format!("stalled {:.2} s, powered off", d.as_secs_f64()),
            Some(Expect::Stalled),
        ),
        RunEnd::NotifyInternalError(_) => (
            "stopped at 1st notify exit".into(),
            Some(Expect::InternalError),
        ),
        RunEnd::Shutdown => ("shut down (triple fault)".into(), Some(Expect::ShutDown)),
        RunEnd::Stopped(_) => ("stopped, context invalid".into(), Some(Expect::Stopped)),
        other => (crate::render::End(other).to_string(), None),
    }
}

/// Why a run whose ending fits "contained by notify" does not show notify
/// exits through the whole run, if it does not.
fn notify_gap(r: &RunReport, quiet_limit_ns: u64) -> Option<String> {
    let n = &r.notify;
    if n.exits < 2 {
        return Some(format!("only {} notify exit", n.exits));
    }
    let (Some(last), Some(end)) = (n.last_exit_virtual_ns, n.virtual_ns) else {
        return Some("no virtual time of the notify exits".into());
    };
    let quiet = n
        .longest_gap_virtual_ns
        .unwrap_or(0)
        .max(end.saturating_sub(last));
    (quiet > quiet_limit_ns).then(|| {
        format!(
            "{} of virtual time without a notify exit (at most {})",
            ns(quiet),
            ns(quiet_limit_ns)
        )
    })
}

/// Judges a run against `claim`: the outcome text (with what is missing
/// from the claim appended) and whether the claim holds. `serial` is the
/// guest's serial output.
pub fn judge(r: &RunReport, serial: &[u8], claim: &Claim, quiet_limit_ns: u64) -> (String, bool) {
    let (text, class) = classify(r);
    if class != Some(claim.expect) {
        return (text, false);
    }
    let mut missing = Vec::new();
    if !String::from_utf8_lossy(serial).contains(claim.output) {
        missing.push(format!("no \"{}\" from the guest", claim.output));
    }
    if claim.expect == Expect::ContainedByNotify {
        missing.extend(notify_gap(r, quiet_limit_ns));
    }
    if claim.nmi_unblocking && r.notify.first_exit_qualification.unwrap_or(0) & NMI_UNBLOCKING == 0
    {
        missing.push("1st notify exit without bit 12".into());
    }
    if missing.is_empty() {
        (text, true)
    } else {
        (format!("{text}; {}", missing.join("; ")), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vmm::outcome::NotifyReport;

    const MS: u64 = 1_000_000;
    /// The default model: 128,000 crystal cycles at 25 MHz, twice.
    const LIMIT: u64 = 10_240_000;
    const STORM: &str = "ac-storm: from here on no instruction completes\n";

    fn claim(expect: Expect) -> Claim {
        Claim {
            expect,
            output: "from here on no instruction completes",
            nmi_unblocking: false,
        }
    }

    /// A run ended by the timeout after `virtual_ns`, with notify exits
    /// every `every` ns from `first` up to `last`.
    fn storm(first: u64, every: u64, last: u64, virtual_ns: u64) -> RunReport {
        RunReport {
            end: RunEnd::Timeout(Duration::from_secs(1)),
            userspace_exits: vec![("notify", 1 + (last - first) / every.max(1))],
            internal_exits: vec![],
            unclaimed_port_accesses: 0,
            unclaimed_mmio_accesses: 0,
            bus_lock_exits: Some(0),
            nested_exits_to_l1: 0,
            registers: None,
            instructions: None,
            notify: NotifyReport {
                enabled: true,
                exits: 1 + (last - first) / every.max(1),
                exits_to_l1: 0,
                first_exit_virtual_ns: Some(first),
                first_exit_qualification: Some(0),
                last_exit_virtual_ns: Some(last),
                longest_gap_virtual_ns: (last > first).then_some(every),
                longest_without_l0: Some(Duration::from_millis(20)),
                virtual_ns: Some(virtual_ns),
                host_time: Duration::from_secs(1),
            },
        }
    }

    /// The verdict on `r` for a storm guest that printed its line and
    /// claims containment by notify, under the default quiet limit.
    fn storm_verdict(r: &RunReport) -> (String, bool) {
        judge(
            r,
            STORM.as_bytes(),
            &claim(Expect::ContainedByNotify),
            LIMIT,
        )
    }

    #[test]
    fn the_default_quiet_limit_is_two_windows_of_virtual_time() {
        assert_eq!(quiet_limit_ns(128_000, 0, 25_000_000), LIMIT);
        assert_eq!(quiet_limit_ns(128_000, 5_000, 25_000_000), 10_640_000);
    }

    #[test]
    fn notify_exits_through_the_whole_run_are_contained() {
        let r = storm(6_732_000, 5_121_000, 6_732_000 + 147 * 5_121_000, 762 * MS);
        let (text, met) = storm_verdict(&r);
        assert!(met, "{text}");
        assert_eq!(text, "contained: 148 notify exits");
    }

    #[test]
    fn one_notify_exit_at_the_start_is_not_contained() {
        // The old verdict's hole: a timeout and a single notify exit.
        let r = storm(6 * MS, 1, 6 * MS, 760 * MS);
        let (text, met) = storm_verdict(&r);
        assert!(!met);
        assert!(text.ends_with("; only 1 notify exit"), "{text}");
    }

    #[test]
    fn notify_exits_that_stop_before_the_end_are_not_contained() {
        // Ten exits, then 700 ms of virtual time without one.
        let r = storm(6 * MS, 5 * MS, 51 * MS, 751 * MS);
        let (text, met) = storm_verdict(&r);
        assert!(!met);
        assert!(
            text.ends_with("700.000 ms of virtual time without a notify exit (at most 10.240 ms)"),
            "{text}"
        );
        // Exactly at the limit is still contained.
        let r = storm(6 * MS, 5 * MS, 51 * MS, 51 * MS + LIMIT);
        assert!(storm_verdict(&r).1);
    }

    #[test]
    fn a_pause_between_notify_exits_is_not_contained() {
        let mut r = storm(6 * MS, 5 * MS, 506 * MS, 510 * MS);
        r.notify.longest_gap_virtual_ns = Some(300 * MS);
        let (text, met) = storm_verdict(&r);
        assert!(!met);
        assert!(text.contains("300.000 ms of virtual time"), "{text}");
        // No virtual times at all: nothing shows the exits kept coming.
        let mut r = storm(6 * MS, 5 * MS, 506 * MS, 510 * MS);
        r.notify.last_exit_virtual_ns = None;
        let (text, met) = storm_verdict(&r);
        assert!(!met);
        assert!(
            text.ends_with("no virtual time of the notify exits"),
            "{text}"
        );
    }

    #[test]
    fn the_guest_must_have_said_what_the_scenario_claims() {
        let r = storm(6 * MS, 5 * MS, 506 * MS, 510 * MS);
        let (text, met) = judge(
            &r,
            b"ac-storm: CR0.AM=1\n",
            &claim(Expect::ContainedByNotify),
            LIMIT,
        );
        assert!(!met);
        assert!(
            text.ends_with("; no \"from here on no instruction completes\" from the guest"),
            "{text}"
        );
        // The same for every other expectation, a completed guest included.
        let mut done = storm(6 * MS, 5 * MS, 506 * MS, 510 * MS);
        done.end = RunEnd::DebugExit(0);
        done.notify.exits = 0;
        let c = Claim {
            output: "summary: 4 passed, 0 failed",
            ..claim(Expect::Completed)
        };
        assert!(judge(&done, b"summary: 4 passed, 0 failed\n", &c, LIMIT).1);
        assert!(!judge(&done, b"summary: 3 passed, 1 failed\n", &c, LIMIT).1);
    }

    #[test]
    fn the_nmi_scenario_needs_bit_12_on_the_first_exit() {
        let c = Claim {
            nmi_unblocking: true,
            ..claim(Expect::ContainedByNotify)
        };
        let mut r = storm(8 * MS, 5 * MS, 508 * MS, 510 * MS);
        let (text, met) = judge(&r, STORM.as_bytes(), &c, LIMIT);
        assert!(!met);
        assert!(text.ends_with("; 1st notify exit without bit 12"), "{text}");
        r.notify.first_exit_qualification = Some(1 << 12);
        let (text, met) = judge(&r, STORM.as_bytes(), &c, LIMIT);
        assert!(met, "{text}");
        assert_eq!(text, "contained: 101 notify exits, 1st bit 12");
    }

    #[test]
    fn another_ending_misses_the_claim_whatever_else_holds() {
        let mut r = storm(6 * MS, 5 * MS, 506 * MS, 510 * MS);
        r.end = RunEnd::Shutdown;
        let (text, met) = storm_verdict(&r);
        assert!(!met);
        assert_eq!(text, "shut down (triple fault)");
        assert!(judge(&r, STORM.as_bytes(), &claim(Expect::ShutDown), LIMIT).1);
    }
}
