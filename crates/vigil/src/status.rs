//! The process exit statuses of `vigil run`.
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
//! | 0 | the guest powered the machine off (ACPI S5, e.g. Linux's `poweroff`), as QEMU exits 0 |
//! | 18 | the guest reset the machine (e.g. Linux's `reboot`); Vigil does not restart it, as `qemu -no-reboot` |

use vmm::RunEnd;

/// Exit status: bad command line or unloadable kernel.
pub const USAGE: u8 = 2;
/// Exit status: guest shutdown (triple fault).
pub const SHUTDOWN: u8 = 4;
/// Exit status: guest halted for good.
pub const HALTED: u8 = 6;
/// Exit status: internal error or failed VM entry.
pub const INTERNAL_ERROR: u8 = 8;
/// Exit status: accelerator unavailable or failed.
pub const ACCEL_FAILED: u8 = 10;
/// Exit status: the timeout passed.
pub const TIMEOUT: u8 = 12;
/// Exit status: the vCPU stalled and the watchdog powered the VM off.
pub const STALLED: u8 = 14;
/// Exit status: the VM was stopped by the context-invalid policy.
pub const STOPPED: u8 = 16;
/// Exit status: the guest powered the machine off.
pub const GUEST_POWER_OFF: u8 = 0;
/// Exit status: the guest reset the machine.
pub const RESET: u8 = 18;

/// The process exit status for a run that ended this way.
pub fn of_end(end: &RunEnd) -> u8 {
    match end {
        // Truncated to 8 bits as the process status is, as with QEMU.
        RunEnd::DebugExit(v) => ((v << 1) | 1) as u8,
        RunEnd::Shutdown => SHUTDOWN,
        RunEnd::Halted => HALTED,
        RunEnd::InternalError(_) | RunEnd::FailEntry(_) | RunEnd::NotifyInternalError(_) => {
            INTERNAL_ERROR
        }
        RunEnd::Stopped(_) => STOPPED,
        RunEnd::Timeout(_) => TIMEOUT,
        RunEnd::Stalled { .. } | RunEnd::PoweredOff => STALLED,
        RunEnd::GuestPowerOff => GUEST_POWER_OFF,
        RunEnd::Reset => RESET,
    }
}
