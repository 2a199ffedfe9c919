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
//! | 8 | the accelerator met something it cannot handle (internal error, failed entry) |
//! | 10 | the accelerator is unavailable or failed |

use hv::accel::InternalError;
use std::fmt;

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
}

impl RunEnd {
    /// The process exit status for this ending.
    pub fn status(&self) -> i32 {
        match self {
            RunEnd::DebugExit(v) => ((v << 1) | 1) as i32,
            RunEnd::Shutdown => STATUS_SHUTDOWN,
            RunEnd::Halted => STATUS_HALTED,
            RunEnd::InternalError(_) | RunEnd::FailEntry(_) => STATUS_INTERNAL_ERROR,
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
        }
    }
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
    /// Guest registers at the end, when the accelerator could provide them.
    pub registers: Option<hv::accel::Registers>,
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
        ] {
            assert_eq!(end.status() % 2, 0, "{end}");
        }
    }
}
