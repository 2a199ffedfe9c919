//! How a run ends and what it produced. What each ending means for the
//! process (its message and exit status) is the caller's to say.

use accel::{InternalError, NotifyExit};
use std::time::Duration;

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
    /// A notify exit under the `internal-error` notify policy.
    NotifyInternalError(NotifyExit),
    /// A notify exit reported an invalid context and the context-invalid
    /// action `stop` paused the VM.
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
    /// The guest powered the machine off (ACPI S5).
    GuestPowerOff,
    /// The guest reset the machine (the i8042's reset line, or the ACPI
    /// reset register that points at it).
    Reset,
}

/// Notify and responsiveness figures of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyReport {
    /// Whether notify VM exiting was enabled.
    pub enabled: bool,
    /// Notify exits counted by the accelerator.
    pub exits: u64,
    /// Notify exits of L2's that went to L1, which enabled notify VM
    /// exiting for it (not among `exits`).
    pub exits_to_l1: u64,
    /// Virtual time of the first notify exit, where the accelerator keeps one.
    pub first_exit_virtual_ns: Option<u64>,
    /// Exit qualification of the first notify exit, where reported.
    pub first_exit_qualification: Option<u64>,
    /// Virtual time of the last notify exit, where the accelerator keeps one.
    pub last_exit_virtual_ns: Option<u64>,
    /// Longest virtual time between two consecutive notify exits (none
    /// before the second exit).
    pub longest_gap_virtual_ns: Option<u64>,
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
    /// Instructions retired and decoded, where the accelerator counts them.
    pub instructions: Option<accel::InstructionCounts>,
    /// Notify exits and responsiveness.
    pub notify: NotifyReport,
}
