//! How KVM's exit reasons map onto Vigil's [`VcpuExit`](accel::VcpuExit).
//!
//! `kvm-ioctls` hands back an exit that borrows the vCPU; [`ExitKind`] is
//! its owned summary, so the vCPU can be asked for more (registers, fields of
//! `kvm_run`) before the exit is handed on.

use kvm_ioctls::VcpuExit as KvmExit;

/// VMX basic exit reason of a notify VM exit, which KVM reports as
/// `KVM_EXIT_NOTIFY`.
pub const VMX_EXIT_NOTIFY: u16 = 75;
/// VMX basic exit reason of a bus-lock VM exit, which KVM reports as
/// `KVM_EXIT_X86_BUS_LOCK`.
pub const VMX_EXIT_BUS_LOCK: u16 = 74;
/// KVM's exit reason for a notify exit (`KVM_EXIT_NOTIFY`).
pub const KVM_EXIT_NOTIFY: u32 = kvm_bindings::KVM_EXIT_NOTIFY;
/// KVM's exit reason for a bus-lock exit (`KVM_EXIT_X86_BUS_LOCK`).
pub const KVM_EXIT_X86_BUS_LOCK: u32 = kvm_bindings::KVM_EXIT_X86_BUS_LOCK;

/// An owned summary of one KVM exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// `KVM_EXIT_IO`: port I/O; details are read from `kvm_run`.
    Io,
    /// `KVM_EXIT_HLT`.
    Hlt,
    /// `KVM_EXIT_SHUTDOWN`: triple fault.
    Shutdown,
    /// `KVM_EXIT_INTR`.
    Interrupted,
    /// `KVM_EXIT_IRQ_WINDOW_OPEN`: the guest can take an interrupt.
    IrqWindowOpen,
    /// `KVM_EXIT_FAIL_ENTRY` with the hardware's reason.
    FailEntry {
        /// Hardware entry-failure reason.
        hardware_reason: u64,
    },
    /// `KVM_EXIT_INTERNAL_ERROR`; the suberror is read from `kvm_run`.
    InternalError,
    /// `KVM_EXIT_MMIO` (read or write) at `gpa`.
    Mmio {
        /// Guest-physical address of the access.
        gpa: u64,
    },
    /// `KVM_EXIT_MEMORY_FAULT` at `gpa`.
    MemoryFault {
        /// Guest-physical address of the fault.
        gpa: u64,
    },
    /// `KVM_EXIT_X86_RDMSR`/`WRMSR` of an MSR routed to userspace, already
    /// answered by the vCPU.
    Msr,
    /// Any other exit; its reason code is read from `kvm_run`.
    Other,
}

impl ExitKind {
    /// Summarises an exit from `kvm-ioctls`.
    pub fn of(exit: &KvmExit<'_>) -> Self {
        match exit {
            KvmExit::IoIn(..) | KvmExit::IoOut(..) => ExitKind::Io,
            KvmExit::Hlt => ExitKind::Hlt,
            KvmExit::Shutdown => ExitKind::Shutdown,
            KvmExit::Intr => ExitKind::Interrupted,
            KvmExit::IrqWindowOpen => ExitKind::IrqWindowOpen,
            KvmExit::FailEntry(hardware_reason, _cpu) => ExitKind::FailEntry {
                hardware_reason: *hardware_reason,
            },
            KvmExit::InternalError => ExitKind::InternalError,
            KvmExit::MmioRead(gpa, _) | KvmExit::MmioWrite(gpa, _) => ExitKind::Mmio { gpa: *gpa },
            KvmExit::MemoryFault { gpa, .. } => ExitKind::MemoryFault { gpa: *gpa },
            KvmExit::X86Rdmsr(_) | KvmExit::X86Wrmsr(_) => ExitKind::Msr,
            _ => ExitKind::Other,
        }
    }
}

/// The name of a KVM exit reason (`KVM_EXIT_*`), for error messages.
pub fn exit_name(reason: u32) -> &'static str {
    const NAMES: [&str; 40] = [
        "KVM_EXIT_UNKNOWN",
        "KVM_EXIT_EXCEPTION",
        "KVM_EXIT_IO",
        "KVM_EXIT_HYPERCALL",
        "KVM_EXIT_DEBUG",
        "KVM_EXIT_HLT",
        "KVM_EXIT_MMIO",
        "KVM_EXIT_IRQ_WINDOW_OPEN",
        "KVM_EXIT_SHUTDOWN",
        "KVM_EXIT_FAIL_ENTRY",
        "KVM_EXIT_INTR",
        "KVM_EXIT_SET_TPR",
        "KVM_EXIT_TPR_ACCESS",
        "KVM_EXIT_S390_SIEIC",
        "KVM_EXIT_S390_RESET",
        "KVM_EXIT_DCR",
        "KVM_EXIT_NMI",
        "KVM_EXIT_INTERNAL_ERROR",
        "KVM_EXIT_OSI",
        "KVM_EXIT_PAPR_HCALL",
        "KVM_EXIT_S390_UCONTROL",
        "KVM_EXIT_WATCHDOG",
        "KVM_EXIT_S390_TSCH",
        "KVM_EXIT_EPR",
        "KVM_EXIT_SYSTEM_EVENT",
        "KVM_EXIT_S390_STSI",
        "KVM_EXIT_IOAPIC_EOI",
        "KVM_EXIT_HYPERV",
        "KVM_EXIT_ARM_NISV",
        "KVM_EXIT_X86_RDMSR",
        "KVM_EXIT_X86_WRMSR",
        "KVM_EXIT_DIRTY_RING_FULL",
        "KVM_EXIT_AP_RESET_HOLD",
        "KVM_EXIT_X86_BUS_LOCK",
        "KVM_EXIT_XEN",
        "KVM_EXIT_RISCV_SBI",
        "KVM_EXIT_RISCV_CSR",
        "KVM_EXIT_NOTIFY",
        "KVM_EXIT_LOONGARCH_IOCSR",
        "KVM_EXIT_MEMORY_FAULT",
    ];
    usize::try_from(reason)
        .ok()
        .and_then(|i| NAMES.get(i).copied())
        .unwrap_or("an unknown KVM exit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_kernel_numbers() {
        assert_eq!(exit_name(kvm_bindings::KVM_EXIT_IO), "KVM_EXIT_IO");
        assert_eq!(exit_name(kvm_bindings::KVM_EXIT_DEBUG), "KVM_EXIT_DEBUG");
        assert_eq!(exit_name(KVM_EXIT_NOTIFY), "KVM_EXIT_NOTIFY");
        assert_eq!(exit_name(KVM_EXIT_X86_BUS_LOCK), "KVM_EXIT_X86_BUS_LOCK");
        assert_eq!(
            exit_name(kvm_bindings::KVM_EXIT_MEMORY_FAULT),
            "KVM_EXIT_MEMORY_FAULT"
        );
        assert_eq!(exit_name(1000), "an unknown KVM exit");
    }

    #[test]
    fn kvm_exits_summarise() {
        assert_eq!(ExitKind::of(&KvmExit::Hlt), ExitKind::Hlt);
        assert_eq!(ExitKind::of(&KvmExit::Shutdown), ExitKind::Shutdown);
        assert_eq!(ExitKind::of(&KvmExit::Intr), ExitKind::Interrupted);
        assert_eq!(
            ExitKind::of(&KvmExit::FailEntry(0x8000_0021, 0)),
            ExitKind::FailEntry {
                hardware_reason: 0x8000_0021
            }
        );
        let mut buf = [0u8; 4];
        assert_eq!(
            ExitKind::of(&KvmExit::MmioRead(x86::apic::DEFAULT_BASE, &mut buf)),
            ExitKind::Mmio {
                gpa: x86::apic::DEFAULT_BASE
            }
        );
        assert_eq!(ExitKind::of(&KvmExit::IoOut(0x3F8, &[0x41])), ExitKind::Io);
        assert_eq!(ExitKind::of(&KvmExit::Unsupported(37)), ExitKind::Other);
        assert_eq!(
            ExitKind::of(&KvmExit::Debug(Default::default())),
            ExitKind::Other
        );
    }
}
