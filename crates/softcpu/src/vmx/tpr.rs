//! The TPR shadow (SDM Vol. 3C chapter 30): with "use TPR shadow" = 1, MOV
//! to and from CR8 in VMX non-root operation work on VTPR, the 32-bit
//! field at offset 0x80 of the virtual-APIC page, instead of CR8 (§30.3),
//! and a MOV to CR8 that takes VTPR[7:4] below the TPR threshold ends in a
//! trap-like "TPR below threshold" VM exit (§30.1.2).
//!
//! Virtualize APIC accesses and virtual-interrupt delivery are not part of
//! this model, so the entry check that TPR threshold[3:0] not exceed
//! VTPR[7:4] always applies (§27.2.1.1); the exit right after VM entry of
//! §27.7.7, which needs virtualize APIC accesses, can then never occur.

use crate::cpu::SoftCpu;
use x86::vmx::proc;

/// Offset of VTPR on the virtual-APIC page (SDM Vol. 3C §30.1.1).
pub const VTPR_OFFSET: u64 = 0x80;

/// The VM-entry checks on the virtual-APIC address and the TPR threshold
/// when "use TPR shadow" is 1 (SDM Vol. 3C §27.2.1.1): `address` 4-KByte
/// aligned and within the physical-address width `phys_bits`, `threshold`
/// bits 31:4 clear, and threshold[3:0] not above VTPR[7:4] (`vtpr` reads
/// VTPR from the page at `address`; it is asked only when the other rules
/// hold).
pub fn entry_valid(
    address: u64,
    threshold: u32,
    phys_bits: u32,
    vtpr: impl FnOnce(u64) -> u32,
) -> bool {
    address & 0xFFF == 0
        && address >> phys_bits == 0
        && threshold >> 4 == 0
        && threshold <= (vtpr(address) >> 4) & 0xF
}

impl SoftCpu {
    /// Whether MOV to and from CR8 use the TPR shadow now: non-root
    /// operation with "use TPR shadow" (the CR8 exiting controls, checked
    /// first, take precedence).
    #[inline]
    pub(crate) fn tpr_shadowed(&self) -> bool {
        self.vmx.proc(proc::USE_TPR_SHADOW)
    }

    /// VTPR from the current virtual-APIC page.
    fn vtpr(&self) -> u32 {
        self.phys_read(self.vmx.ctl.virtual_apic + VTPR_OFFSET, 4) as u32
    }

    /// MOV from CR8 with the TPR shadow: VTPR[7:4] in bits 3:0, the rest 0
    /// (SDM Vol. 3C §30.3).
    pub(crate) fn shadow_cr8(&self) -> u64 {
        u64::from((self.vtpr() >> 4) & 0xF)
    }

    /// MOV to CR8 with the TPR shadow (`value` already checked for reserved
    /// bits): VTPR[7:4] takes bits 3:0 of `value` and the other bits of VTPR
    /// are cleared (SDM Vol. 3C §30.3); then TPR virtualization (§30.1.2):
    /// without virtual-interrupt delivery, a TPR-below-threshold VM exit is
    /// due after the instruction when VTPR[7:4] < TPR threshold[3:0].
    pub(crate) fn write_shadow_cr8(&mut self, value: u64) {
        let vtpr = ((value & 0xF) as u32) << 4;
        self.phys_write(self.vmx.ctl.virtual_apic + VTPR_OFFSET, 4, u64::from(vtpr));
        // Read back: a page outside memory keeps reading all ones.
        if (self.vtpr() >> 4) & 0xF < self.vmx.ctl.tpr_threshold & 0xF {
            self.tpr_below_threshold = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_checks_of_section_27_2_1_1() {
        let vtpr = |x: u32| move |_| x;
        assert!(entry_valid(0x5000, 3, 46, vtpr(0x30)));
        assert!(entry_valid(0x5000, 0, 46, vtpr(0)));
        assert!(!entry_valid(0x5080, 0, 46, vtpr(0)), "aligned");
        assert!(!entry_valid(1 << 46, 0, 46, vtpr(0)), "width");
        assert!(!entry_valid(0x5000, 0x10, 46, vtpr(0xF0)), "bits 31:4");
        assert!(!entry_valid(0x5000, 4, 46, vtpr(0x3F)), "above VTPR");
        // Only VTPR[7:4] counts.
        assert!(entry_valid(0x5000, 4, 46, vtpr(0xFFFF_FF4F)));
    }
}
