//! The end of a run: the monitor's last word, the closing event and the
//! report of what happened.

use super::capabilities::Capabilities;
use super::dispatch::ExitLog;
use super::machine::Board;
use crate::events::{Event, EventLog};
use crate::monitor::Verdict;
use crate::notice::{Notice, NoticeSink};
use crate::outcome::{NotifyReport, RunEnd, RunReport};
use accel::{GuestLevel, Vcpu};
use std::time::Instant;

/// How the run ended, once the monitor has had its say: a power-off the
/// loop saw as plain is a stall when the monitor cut the power for one.
pub(super) fn settle(end: RunEnd, verdict: Option<Verdict>, caps: &Capabilities) -> RunEnd {
    match (end, verdict) {
        (RunEnd::PoweredOff, Some(Verdict::Stalled(d))) => RunEnd::Stalled {
            in_guest: d,
            notify: caps.notify,
        },
        (end, _) => end,
    }
}

/// Records the event that closes the run, where its end has one.
fn record_end(log: &mut EventLog, end: &RunEnd, virtual_ns: Option<u64>) {
    let event = match end {
        RunEnd::Shutdown => Event {
            kind: "shutdown",
            virtual_ns,
            level: Some(GuestLevel::L1),
            exit_reason: Some(x86::vmx::exit_reason::TRIPLE_FAULT),
            detail: "the guest shut down (triple fault)".into(),
            ..Event::default()
        },
        RunEnd::Stalled { in_guest: d, .. } => Event {
            kind: "watchdog",
            virtual_ns,
            detail: format!(
                "vCPU 0 spent {:.3} s in the guest without returning to L0; powered off",
                d.as_secs_f64()
            ),
            ..Event::default()
        },
        RunEnd::DebugExit(v) => Event {
            kind: "exit",
            virtual_ns,
            detail: format!("the guest ended the run with {v} at the debug-exit port"),
            ..Event::default()
        },
        RunEnd::Timeout(d) => Event {
            kind: "timeout",
            virtual_ns,
            detail: format!("run ended by --timeout after {:.3} s", d.as_secs_f64()),
            ..Event::default()
        },
        _ => return,
    };
    log.record(&event);
}

/// Everything [`report`] gathers from.
pub(super) struct Finished<'a, V> {
    /// How the run ended (settled).
    pub end: RunEnd,
    /// The exit loop's counts.
    pub exits: ExitLog,
    /// The vCPU, for its statistics and registers.
    pub vcpu: &'a V,
    /// The devices, for their unclaimed accesses.
    pub board: &'a Board,
    /// What the run switched on.
    pub caps: Capabilities,
    /// When the run started.
    pub started: Instant,
}

/// Closes the event log with the run's last event (telling `notices` if
/// the log lost events) and builds the report.
pub(super) fn report<V: Vcpu>(
    f: Finished<'_, V>,
    mut log: EventLog,
    notices: &mut dyn NoticeSink,
) -> RunReport {
    let stats = f.vcpu.stats();
    let virtual_ns = f.vcpu.virtual_ns();
    record_end(&mut log, &f.end, virtual_ns);
    if let Some(e) = log.take_error() {
        notices.notice(Notice::EventLogLost(e));
    }
    let unclaimed_ports = f.board.ports.unclaimed();
    RunReport {
        end: f.end,
        userspace_exits: f.exits.counts.into_iter().collect(),
        internal_exits: stats.internal_exits,
        unclaimed_port_accesses: unclaimed_ports.reads + unclaimed_ports.writes,
        unclaimed_mmio_accesses: f.board.mmio.unclaimed(),
        bus_lock_exits: f.caps.bus_locks.then_some(stats.bus_lock_exits),
        nested_exits_to_l1: stats.nested_exits_to_l1,
        registers: f.vcpu.registers().ok(),
        instructions: stats.instructions,
        notify: NotifyReport {
            enabled: f.caps.notify,
            exits: stats.notify_exits,
            exits_to_l1: f.exits.notify_to_l1,
            first_exit_virtual_ns: f.exits.first_notify_ns,
            first_exit_qualification: f.exits.first_notify_qualification,
            last_exit_virtual_ns: f.exits.last_notify_ns,
            longest_gap_virtual_ns: f.exits.longest_notify_gap_ns,
            longest_without_l0: stats.longest_without_l0,
            virtual_ns,
            host_time: f.started.elapsed(),
        },
    }
}
