//! The operator's notify policy: QEMU's `notify-vmexit` and `notify-window`,
//! plus what Vigil adds (`require`, the context-invalid action, #AC/#DB
//! interception, the context-invalid fault injection).

use std::fmt;

/// What notify VM exits mean for the run (QEMU's `notify-vmexit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifyPolicy {
    /// Enable notify VM exiting where the accelerator has it; a notify exit
    /// with a valid context is logged and the guest resumed (QEMU's default).
    #[default]
    Run,
    /// Enable it; the first notify exit stops the VM as an internal error.
    InternalError,
    /// Do not enable it: nothing ends an endless event delivery but the
    /// watchdog.
    Disable,
    /// As `Run`, but refuse to start where the accelerator cannot provide it.
    Require,
}

impl NotifyPolicy {
    /// The name used on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            NotifyPolicy::Run => "run",
            NotifyPolicy::InternalError => "internal-error",
            NotifyPolicy::Disable => "disable",
            NotifyPolicy::Require => "require",
        }
    }

    /// Whether this policy asks for notify VM exiting.
    pub fn wants_notify(self) -> bool {
        self != NotifyPolicy::Disable
    }
}

impl fmt::Display for NotifyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to do when a notify exit reports that the guest context is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvalidContextAction {
    /// Make the vCPU take a triple fault: the VM shuts down (or, with L2
    /// running, L1 gets a TRIPLE_FAULT VM exit and survives).
    #[default]
    Shutdown,
    /// Pause the VM and print the vCPU state (QEMU's behaviour).
    Stop,
}

impl InvalidContextAction {
    /// The name used on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            InvalidContextAction::Shutdown => "shutdown",
            InvalidContextAction::Stop => "stop",
        }
    }
}

/// Every notify-related choice of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyOptions {
    /// QEMU's `notify-vmexit`.
    pub policy: NotifyPolicy,
    /// QEMU's `notify-window`: crystal-clock cycles on top of the CPU's own
    /// threshold.
    pub window: u32,
    /// The context-invalid action.
    pub on_invalid: InvalidContextAction,
    /// Intercept #AC and #DB in L0 (the accelerator's default).
    pub intercept_ac_db: bool,
    /// Make the first notify exit report an invalid context (soft
    /// accelerator only; silicon never does it).
    pub inject_context_invalid: bool,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        NotifyOptions {
            policy: NotifyPolicy::Run,
            window: 0,
            on_invalid: InvalidContextAction::Shutdown,
            intercept_ac_db: true,
            inject_context_invalid: false,
        }
    }
}
