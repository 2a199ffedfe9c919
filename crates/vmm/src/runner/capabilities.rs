//! What the run asks of the accelerator against what it offers: refused
//! where an option cannot be honoured, noted where the run goes on without.

use super::{RunError, RunOptions};
use crate::events::{Event, EventLog};
use crate::notice::{Notice, NoticeSink};
use crate::policy::NotifyPolicy;
use accel::Accelerator;

/// The accelerator features a run switches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Capabilities {
    /// Notify VM exiting, every exit returned to the VMM.
    pub notify: bool,
    /// Bus-lock exits (counted, and rate-limited where asked).
    pub bus_locks: bool,
}

/// Decides which features the run uses on `accel`. Refuses a bus-lock rate
/// limit or `require` the accelerator cannot honour; a notify policy that
/// wants notify exits on an accelerator without them is recorded in `log`
/// and told to `notices`, and the run goes on.
pub(super) fn check<A: Accelerator>(
    accel: &A,
    options: &RunOptions,
    log: &mut EventLog,
    notices: &mut dyn NoticeSink,
) -> Result<Capabilities, RunError> {
    let bus_locks = accel.supports_bus_lock_exit();
    if options.bus_lock_ratelimit.is_some() && !bus_locks {
        return Err(RunError::BusLockUnavailable(accel.name()));
    }
    let policy = options.notify.policy;
    let notify = policy.wants_notify() && accel.supports_notify_vmexit();
    if policy == NotifyPolicy::Require && !notify {
        return Err(RunError::NotifyUnavailable(accel.name()));
    }
    if policy.wants_notify() && !notify {
        let detail = format!(
            "the {} accelerator on this host has no notify VM exit (KVM_CAP_X86_NOTIFY_VMEXIT): \
             CPU-stall attacks inside event delivery are not contained",
            accel.name()
        );
        notices.notice(Notice::NotifyUnavailable {
            accel: accel.name(),
        });
        log.record(&Event {
            kind: "notify-unavailable",
            detail,
            ..Event::default()
        });
    }
    Ok(Capabilities { notify, bus_locks })
}
