//! The VMX capability MSRs of this processor model (SDM Vol. 3C Appendix A).
//!
//! Each control MSR reports allowed-0 settings in bits 31:0 (a 1 there means
//! the control must be 1) and allowed-1 settings in bits 63:32.

use x86::cr::{CR0_NE, CR0_PE, CR0_PG, CR4_VMXE};
use x86::vmx::{entry_ctl, exit_ctl, pin, proc, proc2};

/// Pin-based controls that must be 1 (the "default1" class, SDM A.3.1).
pub const PIN_DEFAULT1: u32 = 0x16;
/// Pin-based controls that may be 1.
pub const PIN_ALLOWED1: u32 = PIN_DEFAULT1
    | pin::EXT_INTR_EXITING
    | pin::NMI_EXITING
    | pin::VIRTUAL_NMIS
    | pin::PREEMPTION_TIMER;
/// Primary processor-based controls that must be 1 (the "true" controls of
/// SDM A.3.2: CR3-load and CR3-store exiting may be 0).
pub const PROC_DEFAULT1: u32 = 0x0400_6172;
/// Primary processor-based controls that may be 1.
pub const PROC_ALLOWED1: u32 = PROC_DEFAULT1
    | proc::INTR_WINDOW_EXITING
    | proc::USE_TSC_OFFSETTING
    | proc::HLT_EXITING
    | proc::INVLPG_EXITING
    | proc::MWAIT_EXITING
    | proc::RDPMC_EXITING
    | proc::RDTSC_EXITING
    | proc::CR3_LOAD_EXITING
    | proc::CR3_STORE_EXITING
    | proc::CR8_LOAD_EXITING
    | proc::CR8_STORE_EXITING
    | proc::USE_TPR_SHADOW
    | proc::NMI_WINDOW_EXITING
    | proc::MOV_DR_EXITING
    | proc::UNCOND_IO_EXITING
    | proc::USE_IO_BITMAPS
    | proc::MONITOR_TRAP_FLAG
    | proc::USE_MSR_BITMAPS
    | proc::MONITOR_EXITING
    | proc::PAUSE_EXITING
    | proc::ACTIVATE_SECONDARY_CONTROLS;
/// Secondary controls that may be 1; notify VM exiting is bit 31.
pub const PROC2_ALLOWED1: u32 = proc2::ENABLE_EPT
    | proc2::DESC_TABLE_EXITING
    | proc2::PAUSE_LOOP_EXITING
    | proc2::ENABLE_RDTSCP
    | proc2::WBINVD_EXITING
    | proc2::UNRESTRICTED_GUEST
    | proc2::BUS_LOCK_DETECTION
    | proc2::NOTIFY_VM_EXITING;
/// VM-exit controls that must be 1.
pub const EXIT_DEFAULT1: u32 = 0x0003_6DFF;
/// VM-exit controls that may be 1.
pub const EXIT_ALLOWED1: u32 = EXIT_DEFAULT1
    | exit_ctl::HOST_ADDR_SPACE_SIZE
    | exit_ctl::ACK_INTR_ON_EXIT
    | exit_ctl::SAVE_IA32_PAT
    | exit_ctl::LOAD_IA32_PAT
    | exit_ctl::SAVE_IA32_EFER
    | exit_ctl::LOAD_IA32_EFER
    | exit_ctl::SAVE_PREEMPTION_TIMER;
/// VM-entry controls that must be 1.
pub const ENTRY_DEFAULT1: u32 = 0x0000_11FF;
/// VM-entry controls that may be 1.
pub const ENTRY_ALLOWED1: u32 = ENTRY_DEFAULT1
    | entry_ctl::IA32E_MODE_GUEST
    | entry_ctl::LOAD_IA32_PAT
    | entry_ctl::LOAD_IA32_EFER;
/// CR0 bits fixed to 1 in VMX operation (PG and PE relax with unrestricted guest).
pub const CR0_FIXED0: u64 = CR0_PE | CR0_NE | CR0_PG;
/// CR4 bits fixed to 1 in VMX operation.
pub const CR4_FIXED0: u64 = CR4_VMXE;

/// Value of a VMX capability MSR, or `None` for other MSR numbers.
pub fn capability_msr(msr: u32) -> Option<u64> {
    use x86::msr::*;
    let pair = |default1: u32, allowed1: u32| u64::from(default1) | (u64::from(allowed1) << 32);
    Some(match msr {
        // Revision 1, 4 KiB region, write-back memory type, INS/OUTS information reported.
        VMX_BASIC => 1 | (4096 << 32) | (6 << 50) | (1 << 54) | (1 << 55),
        VMX_PINBASED_CTLS => pair(PIN_DEFAULT1, PIN_ALLOWED1),
        VMX_PROCBASED_CTLS => pair(PROC_DEFAULT1, PROC_ALLOWED1),
        VMX_EXIT_CTLS => pair(EXIT_DEFAULT1, EXIT_ALLOWED1),
        VMX_ENTRY_CTLS => pair(ENTRY_DEFAULT1, ENTRY_ALLOWED1),
        // Bits 4:0 = 0: the VMX-preemption timer counts down once per TSC
        // tick; IA-32e mode guest stores LMA (bit 5); activity states HLT and
        // shutdown (bits 6, 7).
        VMX_MISC => (1 << 5) | (1 << 6) | (1 << 7),
        VMX_CR0_FIXED0 => CR0_FIXED0,
        VMX_CR0_FIXED1 => 0xFFFF_FFFF,
        VMX_CR4_FIXED0 => CR4_FIXED0,
        VMX_CR4_FIXED1 => 0x0000_27FF,
        VMX_VMCS_ENUM => 0x2E << 1,
        VMX_PROCBASED_CTLS2 => u64::from(PROC2_ALLOWED1) << 32,
        // 4-level walks, WB memory type, 2 MiB and 1 GiB pages, accessed
        // and dirty flags.
        VMX_EPT_VPID_CAP => (1 << 6) | (1 << 14) | (1 << 16) | (1 << 17) | (1 << 21),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default1_bits_are_allowed1() {
        for msr in 0x481..=0x484 {
            let v = capability_msr(msr).unwrap();
            let (must, may) = (v as u32, (v >> 32) as u32);
            assert_eq!(must & !may, 0, "msr {msr:#x}");
        }
    }

    #[test]
    fn notify_is_advertised() {
        let v = capability_msr(x86::msr::VMX_PROCBASED_CTLS2).unwrap();
        assert!(v >> 32 & u64::from(proc2::NOTIFY_VM_EXITING) != 0);
    }
}
