//! `vigil demo`: every notify scenario on the soft accelerator, as a table.
//!
//! Each scenario runs a built-in guest under one policy and is judged by
//! how it ended; a scenario that ends in any other way is marked
//! `UNEXPECTED` and makes the command fail.

use crate::cli::DemoArgs;
use crate::report::demo::Recorder;
use crate::report::page::Column;
use std::io::Write;
use std::time::Duration;
use vmm::monitor::Limits;
use vmm::policy::{InvalidContextAction, NotifyOptions, NotifyPolicy};
use vmm::{RunEnd, RunOptions, RunReport};

/// How a scenario is expected to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
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

struct Scenario {
    name: &'static str,
    guest: &'static str,
    notify: NotifyOptions,
    expect: Expect,
    /// Raise an NMI this long after the start.
    nmi_after: Option<Duration>,
    /// The guest's command line after its name (`--append`).
    append: &'static str,
}

fn scenarios() -> Vec<Scenario> {
    let base = NotifyOptions::default();
    let bare = NotifyOptions {
        intercept_ac_db: false,
        ..base
    };
    let s = |name, guest, notify, expect| Scenario {
        name,
        guest,
        notify,
        expect,
        nmi_after: None,
        append: "",
    };
    vec![
        s("benign", "hello64", base, Expect::Completed),
        s("benign", "sieve", base, Expect::Completed),
        s("benign", "selftest", base, Expect::Completed),
        s("#AC storm", "ac-storm", bare, Expect::ContainedByNotify),
        s("#DB storm", "db-storm", bare, Expect::ContainedByNotify),
        Scenario {
            nmi_after: Some(Duration::from_millis(20)),
            ..s(
                "NMI, IRET, #DB storm",
                "nmi-iret",
                bare,
                Expect::ContainedByNotify,
            )
        },
        s(
            "#AC storm",
            "ac-storm",
            NotifyOptions {
                policy: NotifyPolicy::Disable,
                ..bare
            },
            Expect::Stalled,
        ),
        s(
            "#DB storm",
            "db-storm",
            NotifyOptions {
                policy: NotifyPolicy::Disable,
                ..bare
            },
            Expect::Stalled,
        ),
        s(
            "#AC storm",
            "ac-storm",
            base,
            Expect::ContainedByInterception,
        ),
        s(
            "#DB storm",
            "db-storm",
            base,
            Expect::ContainedByInterception,
        ),
        s(
            "#AC storm",
            "ac-storm",
            NotifyOptions {
                policy: NotifyPolicy::InternalError,
                ..bare
            },
            Expect::InternalError,
        ),
        s(
            "#DB storm, context invalid",
            "db-storm",
            NotifyOptions {
                inject_context_invalid: true,
                ..bare
            },
            Expect::ShutDown,
        ),
        s(
            "#DB storm, context invalid",
            "db-storm",
            NotifyOptions {
                inject_context_invalid: true,
                on_invalid: InvalidContextAction::Stop,
                ..bare
            },
            Expect::Stopped,
        ),
        // Nested: l1hv launches its L2 payloads (docs/nested.md).
        s("nested, L0 intercepts #AC", "l1hv", base, Expect::Completed),
        Scenario {
            append: "expect=notify",
            ..s("nested, L1 uses notify", "l1hv", bare, Expect::NestedPassed)
        },
        Scenario {
            append: "expect=invalid",
            ..s(
                "nested, invalid in L2",
                "l1hv",
                NotifyOptions {
                    inject_context_invalid: true,
                    ..bare
                },
                Expect::NestedPassed,
            )
        },
    ]
}

/// The policy column: the options that differ from a plain run.
fn policy_text(n: &NotifyOptions) -> String {
    let mut s = format!("notify {}", n.policy);
    if n.inject_context_invalid {
        s += &format!(", invalid->{}", n.on_invalid.name());
    }
    s += if n.intercept_ac_db {
        ", intercept"
    } else {
        ", no intercept"
    };
    s
}

fn exception_exits(r: &RunReport) -> u64 {
    r.internal_exits
        .iter()
        .find(|(n, _)| *n == "exception-nmi")
        .map_or(0, |(_, c)| *c)
}

/// The outcome column, and which expectation it meets.
fn judge(r: &RunReport) -> (String, Option<Expect>) {
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
                if n.first_exit_qualification.unwrap_or(0) & (1 << 12) != 0 {
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

/// The column of `vigil demo --report`'s index for a scenario expected to
/// end as `expect`, and whether it did.
fn column(expect: Expect, met: bool) -> Column {
    match expect {
        _ if !met => Column::Other,
        Expect::ContainedByNotify => Column::ContainedByNotify,
        Expect::ContainedByInterception => Column::ContainedByInterception,
        Expect::Stalled => Column::Stalled,
        _ => Column::Other,
    }
}

/// Virtual nanoseconds for people.
pub fn ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.3} ms", ns as f64 / 1e6)
    } else {
        format!("{:.3} us", ns as f64 / 1e3)
    }
}

/// The table's column widths.
const WIDTHS: [usize; 6] = [26, 9, 44, 44, 20, 25];

/// One line of the table, cells padded to [`WIDTHS`].
fn table_line(cells: [&str; 6]) -> String {
    let mut s = String::new();
    for (c, w) in cells.iter().zip(WIDTHS) {
        s += &format!("{c:<w$}  ");
    }
    s.trim_end().to_string()
}

/// What one scenario's row says after the first columns.
struct Row {
    /// The outcome, `UNEXPECTED: ` first where it missed the expectation.
    outcome: String,
    /// Virtual time of the first notify exit.
    first: String,
    /// Longest host time without L0.
    longest: String,
    /// Whether the scenario ended as expected.
    met: bool,
}

/// Runs one scenario of `guest` on `accel` under `limits` (storms cut
/// after `storm_time`) and judges it; the event log goes to `events`.
fn run_scenario(
    accel: &hv::soft::SoftAccelerator,
    sc: &Scenario,
    image: &[u8],
    limits: Limits,
    storm_time: Duration,
    events: Option<Box<dyn Write + Send>>,
) -> Row {
    let options = RunOptions {
        notify: sc.notify,
        limits: Limits {
            timeout: Some(
                if matches!(sc.expect, Expect::Completed | Expect::NestedPassed) {
                    Duration::from_secs(30)
                } else {
                    storm_time
                },
            ),
            nmi_after: sc.nmi_after,
            ..limits
        },
        cmdline: format!("{} {}", sc.guest, sc.append),
        ..RunOptions::default()
    };
    let output = vmm::RunOutput {
        serial: Box::new(std::io::sink()),
        serial_input: None,
        events,
        // The table says how each scenario went.
        notices: Box::new(|_| {}),
        on_unresponsive: crate::render::end_unresponsive(),
    };
    match vmm::run(accel, image, &options, output) {
        Ok(report) => {
            let (text, met) = judge(&report);
            let met = met == Some(sc.expect);
            Row {
                outcome: if met {
                    text
                } else {
                    format!("UNEXPECTED: {text}")
                },
                first: report
                    .notify
                    .first_exit_virtual_ns
                    .map_or("-".to_string(), ns),
                longest: report
                    .notify
                    .longest_without_l0
                    .map_or("-".to_string(), |d| {
                        format!("{:.3} ms", d.as_secs_f64() * 1e3)
                    }),
                met,
            }
        }
        Err(e) => Row {
            outcome: format!("UNEXPECTED: {e}"),
            first: "-".into(),
            longest: "-".into(),
            met: false,
        },
    }
}

/// Runs the demo; returns the process status (0 when every scenario ended
/// as expected).
pub fn run(args: &DemoArgs) -> u8 {
    let limits = match Limits::with_watchdog(args.watchdog) {
        Ok(l) => l,
        Err(e) => {
            let e = crate::error::Error::from(e);
            eprintln!("vigil: {e}");
            return e.status();
        }
    };
    let mut recorder = match args.report.as_deref().map(Recorder::new).transpose() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil: {e}");
            return crate::status::USAGE;
        }
    };
    let accel = hv::soft::SoftAccelerator::default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Vigil notify demo on the soft accelerator: window 0 + the model's threshold of {} \
         crystal cycles; storms end after {:.1} s, the watchdog fires after {:.1} s.\n",
        hv::soft::SoftAccelerator::default()
            .timing()
            .notify_threshold,
        args.storm_time.as_secs_f64(),
        args.watchdog.as_secs_f64()
    );
    let header = [
        "scenario",
        "guest",
        "policy",
        "outcome",
        "1st notify (virtual)",
        "longest without L0 (host)",
    ];
    let _ = writeln!(out, "{}", table_line(header));
    let mut failures = 0;
    for (n, sc) in scenarios().into_iter().enumerate() {
        let Some(guest) = guests::find(sc.guest) else {
            let _ = writeln!(out, "{}: built-in guest {} missing", sc.name, sc.guest);
            failures += 1;
            continue;
        };
        let policy = policy_text(&sc.notify);
        let started = recorder
            .as_ref()
            .map(|r| r.start(n + 1, sc.name, sc.guest, &policy));
        let (pending, events) = match started.transpose() {
            Ok(p) => p.unzip(),
            Err(e) => {
                eprintln!("vigil: {e}");
                return 1;
            }
        };
        let row = run_scenario(&accel, &sc, guest.image, limits, args.storm_time, events);
        if !row.met {
            failures += 1;
        }
        let cells = [
            sc.name,
            sc.guest,
            &policy,
            &row.outcome,
            &row.first,
            &row.longest,
        ];
        let _ = writeln!(out, "{}", table_line(cells));
        if let (Some(r), Some(p)) = (recorder.as_mut(), pending) {
            if let Err(e) = r.finish(p, &row.outcome, column(sc.expect, row.met)) {
                eprintln!("vigil: {e}");
                failures += 1;
            }
        }
    }
    if let Some(r) = &recorder {
        failures += crate::report::demo::announce(r, &mut out);
    }
    if failures > 0 {
        let _ = writeln!(out, "\n{failures} scenario(s) did not end as expected");
        1
    } else {
        0
    }
}
