//! [`AccelError`]: a failure of the accelerator itself, with its cause kept
//! as a typed source.

use std::error::Error;

/// The cause of an [`AccelError`] that only the accelerator can name: its
/// own error type, boxed (`downcast_ref` recovers it).
pub type Cause = Box<dyn Error + Send + Sync + 'static>;

/// A failure of the accelerator itself (not of the guest). Each message
/// includes its cause, which [`Error::source`] also returns.
#[derive(Debug, thiserror::Error)]
pub enum AccelError {
    /// The accelerator is not usable on this host (the kvm accelerator:
    /// why `/dev/kvm` cannot be used, and what to do about it).
    #[error("accelerator unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// The requested configuration is invalid (a memory size, a vCPU id,
    /// [`NotifyArgError`] …).
    #[error("invalid VM configuration: {0}")]
    InvalidConfig(#[source] Cause),
    /// A guest-physical range lies outside guest RAM.
    #[error("guest-physical range {gpa:#x}+{len:#x} lies outside guest RAM")]
    OutOfRange {
        /// Start of the range.
        gpa: u64,
        /// Its length.
        len: u64,
    },
    /// The accelerator does not offer this operation.
    #[error("not supported: {0}")]
    Unsupported(#[source] Unsupported),
    /// The operation is not allowed in the object's current state (for
    /// example a VM capability enabled after a vCPU exists).
    #[error("not allowed now: {0}")]
    InvalidState(#[source] InvalidState),
    /// A host system call failed.
    #[error("{op} failed: {source}")]
    Host {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The processor under the accelerator failed an operation the
    /// accelerator made (the soft one: a VMX instruction or a physical
    /// access of L0's): a defect of the accelerator, not the guest's doing.
    #[error("the VMX hardware failed: {0}")]
    Hardware(#[source] Cause),
}

impl AccelError {
    /// [`AccelError::Unavailable`] for `cause`.
    pub fn unavailable(cause: impl Error + Send + Sync + 'static) -> Self {
        AccelError::Unavailable(Box::new(cause))
    }

    /// [`AccelError::InvalidConfig`] for `cause`.
    pub fn invalid_config(cause: impl Error + Send + Sync + 'static) -> Self {
        AccelError::InvalidConfig(Box::new(cause))
    }

    /// [`AccelError::Hardware`] for `cause`.
    pub fn hardware(cause: impl Error + Send + Sync + 'static) -> Self {
        AccelError::Hardware(Box::new(cause))
    }
}

/// What an accelerator does not offer ([`AccelError::Unsupported`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// [`Vm::arm_notify_context_invalid`](crate::Vm::arm_notify_context_invalid)
    /// off the soft accelerator.
    #[error("injecting a context-invalid notify exit needs the soft accelerator")]
    NotifyContextInvalidInjection,
    /// [`Vm::inject_stall`](crate::Vm::inject_stall) off the soft
    /// accelerator.
    #[error("injecting a stall needs the soft accelerator")]
    StallInjection,
    /// [`VmConfig::intercept_ac_db`](crate::VmConfig::intercept_ac_db) off
    /// on KVM, which always intercepts them.
    #[error(
        "KVM always intercepts #AC and #DB; turning interception off needs the soft accelerator"
    )]
    AcDbInterceptionOff,
    /// No bus-lock exit on this host (`KVM_CAP_X86_BUS_LOCK_EXIT`).
    #[error("this host's KVM has no bus-lock exit (KVM_CAP_X86_BUS_LOCK_EXIT, 193)")]
    BusLockExit,
    /// No notify VM exit on this host (`KVM_CAP_X86_NOTIFY_VMEXIT`).
    #[error("this host's KVM has no notify VM exit (KVM_CAP_X86_NOTIFY_VMEXIT, 219)")]
    NotifyVmexit,
    /// No triple-fault event on this host
    /// (`KVM_CAP_X86_TRIPLE_FAULT_EVENT`), so
    /// [`Vcpu::inject_triple_fault`](crate::Vcpu::inject_triple_fault)
    /// cannot work.
    #[error("this host's KVM lacks KVM_CAP_X86_TRIPLE_FAULT_EVENT (218)")]
    TripleFaultEvent,
    /// A debugger's watchpoint the accelerator cannot watch
    /// ([`GuestDebug::add_watchpoint`](crate::debug::GuestDebug::add_watchpoint)).
    #[error("a watchpoint of {len} bytes at {addr:#x}: only 1 to 8 bytes within one page can be watched")]
    WatchpointShape {
        /// The watched linear address.
        addr: u64,
        /// Its length.
        len: u64,
    },
}

/// An operation the VM's current state does not allow
/// ([`AccelError::InvalidState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidState {
    /// [`Vm::enable_notify_vmexit`](crate::Vm::enable_notify_vmexit) after
    /// the first vCPU.
    #[error("notify VM exiting must be enabled before the VM's first vCPU is created")]
    NotifyAfterVcpu,
    /// [`Vm::enable_bus_lock_exit`](crate::Vm::enable_bus_lock_exit) after
    /// the first vCPU.
    #[error("bus-lock exits must be enabled before the VM's first vCPU is created")]
    BusLockAfterVcpu,
    /// [`Vm::inject_stall`](crate::Vm::inject_stall) or
    /// [`Vm::arm_notify_context_invalid`](crate::Vm::arm_notify_context_invalid)
    /// after the first vCPU.
    #[error("faults must be injected before the VM's first vCPU is created")]
    FaultInjectionAfterVcpu,
    /// A debugger asked for a VMCS of L2's while L1 runs.
    #[error("{0} exists only while L2 runs")]
    OnlyWhileL2Runs(crate::debug::WhichVmcs),
    /// A debugger's linear address that the running guest's page tables do
    /// not map.
    #[error("linear address {la:#x} is not mapped by the running guest's page tables")]
    Unmapped {
        /// The linear address.
        la: u64,
    },
}

/// A refused argument of
/// [`Vm::enable_notify_vmexit`](crate::Vm::enable_notify_vmexit), as KVM
/// refuses it (EINVAL); the cause of an [`AccelError::InvalidConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotifyArgError {
    /// Flags other than ENABLED and USER.
    #[error(
        "notify VM exit flags {flags:#x} carry unknown bits {unknown:#x}; only ENABLED (1) and USER (2) exist"
    )]
    UnknownFlags {
        /// The flags given.
        flags: u64,
        /// The bits no flag names.
        unknown: u64,
    },
    /// ENABLED missing.
    #[error(
        "notify VM exit flags lack ENABLED (1), which KVM requires; to keep notify off, do not enable it"
    )]
    NotEnabled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_their_cause_and_sources_keep_its_type() {
        let e = AccelError::invalid_config(NotifyArgError::NotEnabled);
        assert!(e
            .to_string()
            .starts_with("invalid VM configuration: notify VM exit flags lack"));
        let source = e.source().expect("a source");
        assert_eq!(
            source.downcast_ref::<NotifyArgError>(),
            Some(&NotifyArgError::NotEnabled)
        );
        let e = AccelError::Unsupported(Unsupported::TripleFaultEvent);
        assert_eq!(
            e.to_string(),
            "not supported: this host's KVM lacks KVM_CAP_X86_TRIPLE_FAULT_EVENT (218)"
        );
        let e = AccelError::OutOfRange { gpa: 0x10, len: 2 };
        assert!(e.source().is_none());
    }
}
