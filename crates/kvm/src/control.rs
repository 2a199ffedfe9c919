//! [`KvmControl`]: the host's handle on a KVM vCPU.
//!
//! The kernel is L0 here: it gets the physical CPU back at every host timer
//! interrupt on its own, and userspace cannot see those returns, so
//! [`VcpuControl::in_guest_for`] answers `None` and [`VcpuControl::host_tick`]
//! has nothing to do. Exit requests, NMIs (`KVM_NMI`) and power-off take effect before the next
//! `KVM_RUN` (a vCPU inside `KVM_RUN` is not interrupted by signal here).

use hv::accel::VcpuControl;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Flags shared between the vCPU's thread and the host's threads.
#[derive(Debug, Default)]
pub struct KvmControl {
    exit_requested: AtomicBool,
    powered_off: AtomicBool,
    nmi_pending: AtomicBool,
}

impl KvmControl {
    /// Takes a pending exit request.
    pub(crate) fn take_exit_request(&self) -> bool {
        self.exit_requested.swap(false, Ordering::AcqRel)
    }

    /// Takes a pending NMI request.
    pub(crate) fn take_nmi(&self) -> bool {
        self.nmi_pending.swap(false, Ordering::AcqRel)
    }

    /// Whether the power was cut.
    pub(crate) fn is_powered_off(&self) -> bool {
        self.powered_off.load(Ordering::Acquire)
    }
}

impl VcpuControl for KvmControl {
    fn request_exit(&self) {
        self.exit_requested.store(true, Ordering::Release);
    }

    fn host_tick(&self) {}

    fn in_guest_for(&self) -> Option<Duration> {
        None
    }

    fn virtual_ns(&self) -> Option<u64> {
        None
    }

    fn inject_nmi(&self) {
        self.nmi_pending.store(true, Ordering::Release);
    }

    fn power_off(&self) {
        self.powered_off.store(true, Ordering::Release);
    }
}
