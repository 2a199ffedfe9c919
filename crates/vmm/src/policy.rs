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
    /// The level whose first notify exit reports it (`None`: any).
    pub context_invalid_level: Option<accel::GuestLevel>,
    /// A stall inside microcode the soft CPU takes on request
    /// (`--inject-stall`; soft accelerator only).
    pub inject_stall: Option<accel::StallInjection>,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        NotifyOptions {
            policy: NotifyPolicy::Run,
            window: 0,
            on_invalid: InvalidContextAction::Shutdown,
            intercept_ac_db: true,
            inject_context_invalid: false,
            context_invalid_level: None,
            inject_stall: None,
        }
    }
}

/// What the VMM does with one notify exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyAction {
    /// Resume the guest (the event being delivered is re-injected); `warn`:
    /// tell the operator, as for the first such exit of a run.
    Resume {
        /// Whether this exit is the one to warn about.
        warn: bool,
    },
    /// End the run as an internal error (`internal-error`).
    InternalError,
    /// The context is invalid: make the vCPU take a triple fault.
    TripleFault,
    /// The context is invalid: stop (pause) the VM.
    Stop,
}

/// The decision for one notify exit: an invalid context takes the
/// context-invalid action whatever the policy (KVM returns such an exit to
/// userspace even without `NOTIFY_VMEXIT_USER`); a valid one stops the run
/// under `internal-error` and resumes the guest otherwise, warning only when
/// no warning was given yet (`warned` false).
pub fn notify_action(
    policy: NotifyPolicy,
    on_invalid: InvalidContextAction,
    context_invalid: bool,
    warned: bool,
) -> NotifyAction {
    if context_invalid {
        return match on_invalid {
            InvalidContextAction::Shutdown => NotifyAction::TripleFault,
            InvalidContextAction::Stop => NotifyAction::Stop,
        };
    }
    match policy {
        NotifyPolicy::InternalError => NotifyAction::InternalError,
        NotifyPolicy::Run | NotifyPolicy::Require | NotifyPolicy::Disable => {
            NotifyAction::Resume { warn: !warned }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InvalidContextAction::{Shutdown, Stop};
    use NotifyPolicy::{Disable, InternalError, Require, Run};

    /// Every combination: (policy, on_invalid, context_invalid, warned) and
    /// the action taken.
    #[rustfmt::skip]
    const TABLE: [(NotifyPolicy, InvalidContextAction, bool, bool, NotifyAction); 32] = [
        (Run,           Shutdown, false, false, NotifyAction::Resume { warn: true }),
        (Run,           Shutdown, false, true,  NotifyAction::Resume { warn: false }),
        (Run,           Shutdown, true,  false, NotifyAction::TripleFault),
        (Run,           Shutdown, true,  true,  NotifyAction::TripleFault),
        (Run,           Stop,     false, false, NotifyAction::Resume { warn: true }),
        (Run,           Stop,     false, true,  NotifyAction::Resume { warn: false }),
        (Run,           Stop,     true,  false, NotifyAction::Stop),
        (Run,           Stop,     true,  true,  NotifyAction::Stop),
        (Require,       Shutdown, false, false, NotifyAction::Resume { warn: true }),
        (Require,       Shutdown, false, true,  NotifyAction::Resume { warn: false }),
        (Require,       Shutdown, true,  false, NotifyAction::TripleFault),
        (Require,       Shutdown, true,  true,  NotifyAction::TripleFault),
        (Require,       Stop,     false, false, NotifyAction::Resume { warn: true }),
        (Require,       Stop,     false, true,  NotifyAction::Resume { warn: false }),
        (Require,       Stop,     true,  false, NotifyAction::Stop),
        (Require,       Stop,     true,  true,  NotifyAction::Stop),
        (InternalError, Shutdown, false, false, NotifyAction::InternalError),
        (InternalError, Shutdown, false, true,  NotifyAction::InternalError),
        (InternalError, Shutdown, true,  false, NotifyAction::TripleFault),
        (InternalError, Shutdown, true,  true,  NotifyAction::TripleFault),
        (InternalError, Stop,     false, false, NotifyAction::InternalError),
        (InternalError, Stop,     false, true,  NotifyAction::InternalError),
        (InternalError, Stop,     true,  false, NotifyAction::Stop),
        (InternalError, Stop,     true,  true,  NotifyAction::Stop),
        // Notify exiting is off under disable; an exit that comes anyway
        // (an invalid context is always reported) is still judged.
        (Disable,       Shutdown, false, false, NotifyAction::Resume { warn: true }),
        (Disable,       Shutdown, false, true,  NotifyAction::Resume { warn: false }),
        (Disable,       Shutdown, true,  false, NotifyAction::TripleFault),
        (Disable,       Shutdown, true,  true,  NotifyAction::TripleFault),
        (Disable,       Stop,     false, false, NotifyAction::Resume { warn: true }),
        (Disable,       Stop,     false, true,  NotifyAction::Resume { warn: false }),
        (Disable,       Stop,     true,  false, NotifyAction::Stop),
        (Disable,       Stop,     true,  true,  NotifyAction::Stop),
    ];

    #[test]
    fn notify_action_follows_the_table() {
        for (policy, on_invalid, invalid, warned, action) in TABLE {
            assert_eq!(
                notify_action(policy, on_invalid, invalid, warned),
                action,
                "{policy}, invalid->{}, context invalid {invalid}, warned {warned}",
                on_invalid.name()
            );
        }
    }

    #[test]
    fn the_table_covers_every_combination() {
        let mut seen = std::collections::BTreeSet::new();
        for (policy, on_invalid, invalid, warned, _) in TABLE {
            seen.insert((policy.name(), on_invalid.name(), invalid, warned));
        }
        assert_eq!(seen.len(), TABLE.len());
    }
}
