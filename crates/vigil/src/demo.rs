//! `vigil demo`: every notify scenario on the soft accelerator, as a table.
//!
//! Each scenario runs a built-in guest under one policy and is judged by
//! what it claims (`crate::verdict`): how the run ends, what the guest
//! prints, and for the storms contained by notify, notify exits through the
//! whole run; a scenario that misses its claim is marked `UNEXPECTED` and
//! makes the command fail.

use crate::cli::DemoArgs;
use crate::report::demo::Recorder;
use crate::report::page::Column;
use crate::verdict::{Claim, Expect};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vmm::monitor::Limits;
use vmm::policy::{InvalidContextAction, NotifyOptions, NotifyPolicy};
use vmm::RunOptions;

struct Scenario {
    name: &'static str,
    guest: &'static str,
    notify: NotifyOptions,
    /// What the run must show.
    claim: Claim,
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
    let s = |name, guest: &'static str, notify, expect| Scenario {
        name,
        guest,
        notify,
        claim: Claim {
            expect,
            output: guest_output(guest),
            nmi_unblocking: false,
        },
        nmi_after: None,
        append: "",
    };
    let nested = |name, notify, expect, append, output| Scenario {
        append,
        claim: Claim {
            expect,
            output,
            nmi_unblocking: false,
        },
        ..s(name, "l1hv", notify, expect)
    };
    let nmi_iret = s(
        "NMI, IRET, #DB storm",
        "nmi-iret",
        bare,
        Expect::ContainedByNotify,
    );
    vec![
        s("benign", "hello64", base, Expect::Completed),
        s("benign", "sieve", base, Expect::Completed),
        s("benign", "selftest", base, Expect::Completed),
        s("#AC storm", "ac-storm", bare, Expect::ContainedByNotify),
        s("#DB storm", "db-storm", bare, Expect::ContainedByNotify),
        Scenario {
            // The NMI must come after the guest's "waiting for an NMI"
            // line (host time: the guest takes about a millisecond to get
            // there interpreted, tens of milliseconds when every block is
            // translated on its second entry, as softcpu's translate-all
            // test build does); the storm still has 0.3 s to run.
            nmi_after: Some(Duration::from_millis(100)),
            claim: Claim {
                nmi_unblocking: true,
                ..nmi_iret.claim
            },
            ..nmi_iret
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
        // Nested: l1hv launches its L2 payloads (docs/nested.md) and says
        // what ended its L2 storm.
        nested(
            "nested, L0 intercepts #AC",
            base,
            Expect::Completed,
            "",
            "PASS ac-storm-notify: reason 1 (external interrupt",
        ),
        nested(
            "nested, L1 uses notify",
            bare,
            Expect::NestedPassed,
            "expect=notify",
            "PASS ac-storm-notify: reason 75 (notify)",
        ),
        nested(
            "nested, invalid in L2",
            NotifyOptions {
                inject_context_invalid: true,
                ..bare
            },
            Expect::NestedPassed,
            "expect=invalid",
            "PASS ac-storm-timer: reason 2 (triple fault",
        ),
    ]
}

/// What a guest prints when it gets where its scenarios start: the storm
/// guests just before the storm (or the wait for the NMI that starts it),
/// the others their final verdict.
fn guest_output(guest: &str) -> &'static str {
    match guest {
        "hello64" => "checksum: 0x68a508b2",
        "ac-storm" => "ac-storm: from here on no instruction completes",
        "db-storm" => "db-storm: from here on no instruction completes",
        "nmi-iret" => "nmi-iret: NMI and #DB through IST1; waiting for an NMI",
        // sieve, selftest and l1hv end with their summary.
        _ => "passed, 0 failed",
    }
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

/// The guest's serial output, kept for the verdict.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// What the guest wrote so far.
    fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .map_or_else(|e| e.into_inner().clone(), |b| b.clone())
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        b.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
                if matches!(sc.claim.expect, Expect::Completed | Expect::NestedPassed) {
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
    let serial = Captured::default();
    let output = vmm::RunOutput {
        serial: Box::new(serial.clone()),
        serial_input: None,
        events,
        // The table says how each scenario went.
        notices: Box::new(|_| {}),
        on_unresponsive: crate::render::end_unresponsive(),
    };
    match vmm::run(accel, image, &options, output) {
        Ok(report) => {
            let timing = accel.timing();
            let quiet = crate::verdict::quiet_limit_ns(
                timing.notify_threshold,
                sc.notify.window,
                timing.crystal_hz,
            );
            let (text, met) = crate::verdict::judge(&report, &serial.bytes(), &sc.claim, quiet);
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
            if let Err(e) = r.finish(p, &row.outcome, column(sc.claim.expect, row.met)) {
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
