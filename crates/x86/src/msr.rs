//! Model-specific register numbers (SDM Vol. 4).

/// IA32_TIME_STAMP_COUNTER.
pub const TSC: u32 = 0x10;
/// IA32_APIC_BASE.
pub const APIC_BASE: u32 = 0x1B;
/// IA32_TSC_DEADLINE.
pub const TSC_DEADLINE: u32 = 0x6E0;
/// IA32_FEATURE_CONTROL.
pub const FEATURE_CONTROL: u32 = 0x3A;
/// IA32_SYSENTER_CS.
pub const SYSENTER_CS: u32 = 0x174;
/// IA32_MCG_CAP (machine-check capabilities).
pub const MCG_CAP: u32 = 0x179;
/// IA32_MCG_STATUS.
pub const MCG_STATUS: u32 = 0x17A;
/// IA32_MISC_ENABLE.
pub const MISC_ENABLE: u32 = 0x1A0;
/// IA32_DEBUGCTL.
pub const DEBUGCTL: u32 = 0x1D9;
/// IA32_BIOS_SIGN_ID (microcode revision).
pub const BIOS_SIGN_ID: u32 = 0x8B;
/// IA32_SYSENTER_ESP.
pub const SYSENTER_ESP: u32 = 0x175;
/// IA32_SYSENTER_EIP.
pub const SYSENTER_EIP: u32 = 0x176;
/// IA32_PAT.
pub const PAT: u32 = 0x277;
/// IA32_VMX_BASIC.
pub const VMX_BASIC: u32 = 0x480;
/// IA32_VMX_PINBASED_CTLS.
pub const VMX_PINBASED_CTLS: u32 = 0x481;
/// IA32_VMX_PROCBASED_CTLS.
pub const VMX_PROCBASED_CTLS: u32 = 0x482;
/// IA32_VMX_EXIT_CTLS.
pub const VMX_EXIT_CTLS: u32 = 0x483;
/// IA32_VMX_ENTRY_CTLS.
pub const VMX_ENTRY_CTLS: u32 = 0x484;
/// IA32_VMX_MISC.
pub const VMX_MISC: u32 = 0x485;
/// IA32_VMX_CR0_FIXED0.
pub const VMX_CR0_FIXED0: u32 = 0x486;
/// IA32_VMX_CR0_FIXED1.
pub const VMX_CR0_FIXED1: u32 = 0x487;
/// IA32_VMX_CR4_FIXED0.
pub const VMX_CR4_FIXED0: u32 = 0x488;
/// IA32_VMX_CR4_FIXED1.
pub const VMX_CR4_FIXED1: u32 = 0x489;
/// IA32_VMX_VMCS_ENUM.
pub const VMX_VMCS_ENUM: u32 = 0x48A;
/// IA32_VMX_PROCBASED_CTLS2 (notify VM exiting is allowed-1 bit 31).
pub const VMX_PROCBASED_CTLS2: u32 = 0x48B;
/// IA32_VMX_EPT_VPID_CAP.
pub const VMX_EPT_VPID_CAP: u32 = 0x48C;
/// IA32_EFER.
pub const EFER: u32 = 0xC000_0080;
/// IA32_STAR.
pub const STAR: u32 = 0xC000_0081;
/// IA32_LSTAR.
pub const LSTAR: u32 = 0xC000_0082;
/// IA32_CSTAR.
pub const CSTAR: u32 = 0xC000_0083;
/// IA32_FMASK.
pub const FMASK: u32 = 0xC000_0084;
/// IA32_FS_BASE.
pub const FS_BASE: u32 = 0xC000_0100;
/// IA32_GS_BASE.
pub const GS_BASE: u32 = 0xC000_0101;
/// IA32_KERNEL_GS_BASE.
pub const KERNEL_GS_BASE: u32 = 0xC000_0102;
/// IA32_TSC_AUX.
pub const TSC_AUX: u32 = 0xC000_0103;
/// IA32_MTRRCAP (MTRR capabilities: VCNT, FIX, WC, SMRR).
pub const MTRRCAP: u32 = 0xFE;
/// IA32_MTRR_PHYSBASE0; PHYSBASEn is `MTRR_PHYSBASE0 + 2n`, PHYSMASKn the MSR after it.
pub const MTRR_PHYSBASE0: u32 = 0x200;
/// IA32_MTRR_FIX64K_00000.
pub const MTRR_FIX64K_00000: u32 = 0x250;
/// IA32_MTRR_FIX16K_80000.
pub const MTRR_FIX16K_80000: u32 = 0x258;
/// IA32_MTRR_FIX16K_A0000.
pub const MTRR_FIX16K_A0000: u32 = 0x259;
/// IA32_MTRR_FIX4K_C0000; the 4K ranges run to IA32_MTRR_FIX4K_F8000 (0x26F).
pub const MTRR_FIX4K_C0000: u32 = 0x268;
/// IA32_MTRR_DEF_TYPE.
pub const MTRR_DEF_TYPE: u32 = 0x2FF;
