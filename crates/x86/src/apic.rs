//! The local APIC's architectural address and IA32_APIC_BASE bits (SDM
//! Vol. 3A §11.4.4, Figure 11-5).

/// Physical address of the xAPIC register page after reset.
pub const DEFAULT_BASE: u64 = 0xFEE0_0000;
/// IA32_APIC_BASE bit 8: this is the bootstrap processor.
pub const BASE_BSP: u64 = 1 << 8;
/// IA32_APIC_BASE bit 10: x2APIC mode.
pub const BASE_EXTD: u64 = 1 << 10;
/// IA32_APIC_BASE bit 11: APIC global enable.
pub const BASE_ENABLE: u64 = 1 << 11;
/// IA32_APIC_BASE of the bootstrap processor after reset: the default
/// page, BSP, enabled.
pub const BASE_MSR_RESET_BSP: u64 = DEFAULT_BASE | BASE_ENABLE | BASE_BSP;
