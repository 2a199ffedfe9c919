//! The words of `vigil run`: how a run's ending, its notices and a vCPU
//! that will not stop are told on stderr. The VMM reports in types; the
//! command line speaks, naming its own options.

use crate::status;
use std::fmt;
use std::time::Duration;
use vmm::{Notice, RunEnd};

/// A run's ending, as a sentence naming the options that lead elsewhere.
pub struct End<'a>(pub &'a RunEnd);

impl fmt::Display for End<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            RunEnd::DebugExit(v) => write!(f, "guest exited through the debug port with value {v}"),
            RunEnd::Shutdown => write!(f, "guest shut down (triple fault)"),
            RunEnd::Halted => write!(f, "guest halted with nothing left to wake it"),
            RunEnd::InternalError(e) => write!(f, "internal error: {e}"),
            RunEnd::FailEntry(r) => write!(f, "VM entry failed (hardware reason {r:#x})"),
            RunEnd::NotifyInternalError(n) => write!(
                f,
                "internal error: notify VM exit{} (the CPU spent the whole notify window without \
                 reaching an instruction boundary); stopped as --notify-vmexit internal-error asks, \
                 use --notify-vmexit run to log it and resume",
                describe(n)
            ),
            RunEnd::Stopped(n) => write!(
                f,
                "VM stopped: notify VM exit with an invalid guest context{}; the vCPU cannot be \
                 resumed (--notify-invalid stop; shutdown would reset it with a triple fault)",
                describe(n)
            ),
            RunEnd::Timeout(d) => write!(
                f,
                "timeout: the run was ended after {:.3} s (--timeout)",
                d.as_secs_f64()
            ),
            RunEnd::Stalled { in_guest, notify } => write!(
                f,
                "watchdog: vCPU 0 stalled, {:.3} s in the guest without returning to L0 (no \
                 instruction boundary, as in an endless event delivery, which no interrupt can \
                 break); powered the VM off. {}",
                in_guest.as_secs_f64(),
                if *notify {
                    "Notify VM exits were on but their window is longer than the watchdog bound: \
                     lower --notify-window or raise --watchdog"
                } else {
                    "Enable notify VM exits (--notify-vmexit run) or #AC/#DB interception to \
                     contain it"
                }
            ),
            RunEnd::PoweredOff => write!(f, "the vCPU was powered off"),
            RunEnd::GuestPowerOff => write!(f, "the guest powered the machine off (ACPI S5)"),
            RunEnd::Reset => write!(
                f,
                "the guest reset the machine (reboot); Vigil does not restart it"
            ),
        }
    }
}

/// ` at rip R while delivering vector V` for a notify exit, as far as known.
fn describe(n: &accel::NotifyExit) -> String {
    let mut s = String::new();
    if let Some(rip) = n.rip {
        s += &format!(" at rip {rip:#x}");
    }
    if let Some(v) = n.idt_vectoring_info.filter(|v| v & (1 << 31) != 0) {
        s += &format!(" while delivering vector {}", v & 0xFF);
    }
    if n.level == accel::GuestLevel::L2 {
        s += " in L2";
    }
    s
}

/// A notice of the run, as the warning printed when it arises.
pub struct Warning<'a>(pub &'a Notice);

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Notice::NotifyUnavailable { accel } => write!(
                f,
                "the {accel} accelerator on this host has no notify VM exit \
                 (KVM_CAP_X86_NOTIFY_VMEXIT): CPU-stall attacks inside event delivery are not \
                 contained; --notify-vmexit require refuses to start instead"
            ),
            Notice::NotifyWindowExceeded { level, rip } => write!(
                f,
                "notify window exceeded in the guest{}{}; resuming it (further notify exits are \
                 counted, see --stats and --events)",
                if *level == accel::GuestLevel::L2 {
                    " (L2)"
                } else {
                    ""
                },
                rip.map_or(String::new(), |r| format!(" at rip {r:#x}"))
            ),
            Notice::EventLogLost(e) => write!(
                f,
                "the event log could not be written ({e}); events after that were lost"
            ),
        }
    }
}

/// Prints each notice of a run as a warning on stderr, as it arises.
pub fn warnings() -> Box<dyn vmm::NoticeSink + Send> {
    Box::new(|n: Notice| eprintln!("vigil: warning: {}", Warning(&n)))
}

/// Ends the process when a stalled vCPU did not stop when powered off: the
/// run cannot end by itself then.
pub fn end_unresponsive() -> vmm::monitor::OnUnresponsive {
    Box::new(|in_guest: Duration| {
        eprintln!(
            "vigil: watchdog: vCPU 0 stalled ({:.3} s without answering a kick) and did not stop \
             when powered off; ending the VMM. Only notify VM exits can break such a stall",
            in_guest.as_secs_f64()
        );
        std::process::exit(i32::from(status::STALLED));
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use accel::{GuestLevel, InternalError, NotifyExit};

    #[test]
    fn guest_statuses_are_odd_and_ours_are_even() {
        assert_eq!(status::of_end(&RunEnd::DebugExit(0)), 1);
        assert_eq!(status::of_end(&RunEnd::DebugExit(3)), 7);
        let n = NotifyExit {
            context_invalid: true,
            level: GuestLevel::L1,
            qualification: None,
            rip: None,
            idt_vectoring_info: None,
            to_l1: false,
        };
        for end in [
            RunEnd::Shutdown,
            RunEnd::Halted,
            RunEnd::FailEntry(0),
            RunEnd::InternalError(InternalError::Host { suberror: 1 }),
            RunEnd::NotifyInternalError(n),
            RunEnd::Stopped(n),
            RunEnd::Timeout(Duration::from_secs(1)),
            RunEnd::Stalled {
                in_guest: Duration::from_secs(1),
                notify: false,
            },
            RunEnd::PoweredOff,
        ] {
            assert_eq!(status::of_end(&end) % 2, 0, "{}", End(&end));
        }
    }

    #[test]
    fn a_notify_exit_is_described_as_far_as_known() {
        let n = NotifyExit {
            context_invalid: false,
            level: GuestLevel::L2,
            qualification: None,
            rip: Some(0x1234),
            idt_vectoring_info: Some((1 << 31) | 1),
            to_l1: false,
        };
        assert_eq!(
            describe(&n),
            " at rip 0x1234 while delivering vector 1 in L2"
        );
        let w = Warning(&Notice::NotifyWindowExceeded {
            level: GuestLevel::L1,
            rip: None,
        });
        assert_eq!(
            w.to_string(),
            "notify window exceeded in the guest; resuming it (further notify exits are counted, \
             see --stats and --events)"
        );
    }
}
