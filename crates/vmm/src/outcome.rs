//! How a run ends, and the process exit status for each ending.
//!
//! Odd statuses come from the guest: a write of `v` to the debug-exit port
//! gives `(v << 1) | 1`, as QEMU's isa-debug-exit. Even statuses are Vigil's
//! own, so the two never collide:
//!
//! | status | meaning |
//! |---|---|
//! | `(v << 1) \| 1` | the guest wrote `v` to port 0xF4 |
//! | 2 | bad command line, or a kernel file that cannot be loaded |
//! | 4 | the guest shut down (triple fault) |
//! | 6 | the guest halted with nothing left to wake it |
//! | 8 | the accelerator met something it cannot handle (internal error, failed entry), or a notify exit under `--notify-vmexit internal-error` |
//! | 10 | the accelerator is unavailable or failed, or cannot provide what `--notify-vmexit require` asks |
//! | 12 | `--timeout` passed |
//! | 14 | the watchdog found the vCPU stalled (no return to L0) and powered the VM off |
//! | 16 | the VM was stopped (paused) by `--notify-invalid stop` |

use accel::{InternalError, NotifyExit};
use std::fmt;
use std::time::Duration;

/// Exit status: bad command line or unloadable kernel.
pub const STATUS_USAGE: i32 = 2;
/// Exit status: guest shutdown (triple fault).
pub const STATUS_SHUTDOWN: i32 = 4;
/// Exit status: guest halted for good.
pub const STATUS_HALTED: i32 = 6;
/// Exit status: internal error or failed VM entry.
pub const STATUS_INTERNAL_ERROR: i32 = 8;
/// Exit status: accelerator unavailable or failed.
pub const STATUS_ACCEL_FAILED: i32 = 10;
/// Exit status: the timeout passed.
pub const STATUS_TIMEOUT: i32 = 12;
/// Exit status: the vCPU stalled and the watchdog powered the VM off.
pub const STATUS_STALLED: i32 = 14;
/// Exit status: the VM was stopped by the context-invalid policy.
pub const STATUS_STOPPED: i32 = 16;

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The guest wrote this value to the debug-exit port.
    DebugExit(u32),
    /// The guest shut down (triple fault).
    Shutdown,
    /// The guest executed HLT and nothing can wake it (no interrupt sources yet).
    Halted,
    /// The accelerator could not handle something.
    InternalError(InternalError),
    /// VM entry failed with this hardware reason.
    FailEntry(u64),
    /// A notify exit under `--notify-vmexit internal-error`.
    NotifyInternalError(NotifyExit),
    /// A notify exit reported an invalid context and `--notify-invalid stop`
    /// paused the VM.
    Stopped(NotifyExit),
    /// The timeout passed.
    Timeout(Duration),
    /// The vCPU went this long without returning to L0; the watchdog powered
    /// the VM off.
    Stalled {
        /// Host time in the guest without a return to L0.
        in_guest: Duration,
        /// Whether notify VM exiting was on (its window was then too long).
        notify: bool,
    },
    /// The vCPU's power was cut by someone other than the monitor.
    PoweredOff,
}

impl RunEnd {
    /// The process exit status for this ending.
    pub fn status(&self) -> i32 {
        match self {
            RunEnd::DebugExit(v) => ((v << 1) | 1) as i32,
            RunEnd::Shutdown => STATUS_SHUTDOWN,
            RunEnd::Halted => STATUS_HALTED,
            RunEnd::InternalError(_) | RunEnd::FailEntry(_) | RunEnd::NotifyInternalError(_) => {
                STATUS_INTERNAL_ERROR
            }
            RunEnd::Stopped(_) => STATUS_STOPPED,
            RunEnd::Timeout(_) => STATUS_TIMEOUT,
            RunEnd::Stalled { .. } | RunEnd::PoweredOff => STATUS_STALLED,
        }
    }
}

impl fmt::Display for RunEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
            RunEnd::Timeout(d) => write!(f, "timeout: the run was ended after {:.3} s (--timeout)", d.as_secs_f64()),
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
        }
    }
}

/// ` at rip R while delivering vector V` for a notify exit, as far as known.
fn describe(n: &NotifyExit) -> String {
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

/// Notify and responsiveness figures of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyReport {
    /// Whether notify VM exiting was enabled.
    pub enabled: bool,
    /// Notify exits counted by the accelerator.
    pub exits: u64,
    /// Virtual time of the first notify exit, where the accelerator keeps one.
    pub first_exit_virtual_ns: Option<u64>,
    /// Exit qualification of the first notify exit, where reported.
    pub first_exit_qualification: Option<u64>,
    /// Longest host time in the guest without returning to L0.
    pub longest_without_l0: Option<Duration>,
    /// Virtual time at the end of the run.
    pub virtual_ns: Option<u64>,
    /// Host time of the run.
    pub host_time: Duration,
}

/// What a run produced besides its serial output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// How it ended.
    pub end: RunEnd,
    /// Exits returned to userspace, by kind.
    pub userspace_exits: Vec<(&'static str, u64)>,
    /// Exits the accelerator handled itself, by reason.
    pub internal_exits: Vec<(&'static str, u64)>,
    /// Port accesses no device claimed.
    pub unclaimed_port_accesses: u64,
    /// MMIO accesses no device claimed (unassigned memory).
    pub unclaimed_mmio_accesses: u64,
    /// Bus locks the guest asserted, where the accelerator reports them.
    pub bus_lock_exits: Option<u64>,
    /// Exits of L2 guests passed to the guest's own hypervisor (nested VMX).
    pub nested_exits_to_l1: u64,
    /// Guest registers at the end, when the accelerator could provide them.
    pub registers: Option<accel::Registers>,
    /// Notify exits and responsiveness.
    pub notify: NotifyReport,
    /// Why the event log stopped being written, if it did (the run itself
    /// went on).
    pub event_log_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_statuses_are_odd_and_ours_are_even() {
        assert_eq!(RunEnd::DebugExit(0).status(), 1);
        assert_eq!(RunEnd::DebugExit(3).status(), 7);
        for end in [
            RunEnd::Shutdown,
            RunEnd::Halted,
            RunEnd::FailEntry(0),
            RunEnd::InternalError(InternalError::Host { suberror: 1 }),
            RunEnd::Timeout(Duration::from_secs(1)),
            RunEnd::Stalled {
                in_guest: Duration::from_secs(1),
                notify: false,
            },
            RunEnd::PoweredOff,
        ] {
            assert_eq!(end.status() % 2, 0, "{end}");
        }
    }
}
