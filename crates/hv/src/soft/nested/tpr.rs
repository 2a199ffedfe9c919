//! L1's TPR shadow (SDM Vol. 3C chapter 30): the virtual-APIC page and
//! TPR threshold of vmcs12, checked at VM entry and carried into vmcs02.
//!
//! The virtual-APIC address is L1-physical. L0's EPT for L1 is the identity
//! over L1's RAM, so a page in L1's RAM is the processor's page of the same
//! address: vmcs02 names it, and L2's MOV to and from CR8 work on L1's
//! VTPR directly, with no exit to L0. A page outside L1's RAM reads as all
//! ones and ignores writes, as unbacked physical memory does; vmcs02 then
//! names the last page within the physical-address width, which the
//! processor's memory never reaches and which behaves so.
//!
//! The TPR-below-threshold exit from vmcs02 is L1's (`super::reflect`):
//! L0 never uses the TPR shadow itself.

use super::caps::L1Caps;
use super::checks::EntryCheck;
use super::vmcs12::Vmcs12;
use softcpu::vmx::tpr::VTPR_OFFSET;
use x86::vmx::{field as f, proc};

/// Whether the virtual-APIC page at L1-physical `address` lies in L1's RAM
/// (`[0, ram)`).
fn in_ram(address: u64, ram: u64) -> bool {
    address.checked_add(4096).is_some_and(|end| end <= ram)
}

/// The VM-entry checks of SDM Vol. 3C §27.2.1.1 on vmcs12's virtual-APIC
/// address and TPR threshold when L1 uses the TPR shadow: VMfailValid 7
/// unless the address is 4-KByte aligned and within the physical-address
/// width, threshold bits 31:4 are clear, and threshold[3:0] does not exceed
/// VTPR[7:4] (neither virtualize APIC accesses nor virtual-interrupt
/// delivery is offered). `read_vtpr` reads VTPR at an L1-physical address
/// in L1's RAM (`ram` bytes); outside it VTPR reads as all ones.
pub(crate) fn entry_check(
    v: &Vmcs12,
    caps: &L1Caps,
    ram: u64,
    read_vtpr: impl FnOnce(u64) -> u32,
) -> Result<(), EntryCheck> {
    if v.controls().proc & proc::USE_TPR_SHADOW == 0 {
        return Ok(());
    }
    let valid = softcpu::vmx::tpr::entry_valid(
        v.get(f::VIRTUAL_APIC_PAGE_ADDR),
        v.get32(f::TPR_THRESHOLD),
        caps.phys_bits,
        |address| {
            if in_ram(address, ram) {
                read_vtpr(address + VTPR_OFFSET)
            } else {
                u32::MAX
            }
        },
    );
    if valid {
        Ok(())
    } else {
        Err(EntryCheck::Controls)
    }
}

/// vmcs02's virtual-APIC address for vmcs12's (checked by [`entry_check`]):
/// the same page when it lies in L1's RAM, else the last page within the
/// physical-address width (outside memory: all ones, writes dropped).
pub(crate) fn virtual_apic02(v: &Vmcs12, caps: &L1Caps, ram: u64) -> u64 {
    let address = v.get(f::VIRTUAL_APIC_PAGE_ADDR);
    if in_ram(address, ram) {
        address
    } else {
        (1u64 << caps.phys_bits) - 4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 1 << 30;

    fn caps() -> L1Caps {
        L1Caps::new(softcpu::capability_msr, 39)
    }

    fn vmcs(procv: u32, address: u64, threshold: u32) -> Vmcs12 {
        let mut v = Vmcs12::new();
        v.set(f::CPU_BASED_VM_EXEC_CONTROL, u64::from(procv));
        v.set(f::VIRTUAL_APIC_PAGE_ADDR, address);
        v.set(f::TPR_THRESHOLD, u64::from(threshold));
        v
    }

    #[test]
    fn entry_checks_read_vtpr_from_l1s_page() {
        let c = caps();
        let on = proc::USE_TPR_SHADOW;
        let at_0x5080 = |vtpr: u32| {
            move |a: u64| {
                assert_eq!(a, 0x5080, "VTPR's address");
                vtpr
            }
        };
        assert_eq!(
            entry_check(&vmcs(on, 0x5000, 3), &c, RAM, at_0x5080(0x30)),
            Ok(())
        );
        let bad = Err(EntryCheck::Controls);
        assert_eq!(
            entry_check(&vmcs(on, 0x5000, 4), &c, RAM, at_0x5080(0x3F)),
            bad
        );
        assert_eq!(entry_check(&vmcs(on, 0x5010, 0), &c, RAM, |_| 0), bad);
        assert_eq!(entry_check(&vmcs(on, 1 << 39, 0), &c, RAM, |_| 0), bad);
        assert_eq!(entry_check(&vmcs(on, 0x5000, 0x20), &c, RAM, |_| 0xFF), bad);
        // Outside L1's RAM VTPR reads as all ones: any threshold passes.
        let never = |_| panic!("not L1's RAM");
        assert_eq!(entry_check(&vmcs(on, RAM, 15), &c, RAM, never), Ok(()));
        // Without the control nothing is looked at.
        assert_eq!(entry_check(&vmcs(0, 0x5010, 0x20), &c, RAM, never), Ok(()));
    }

    #[test]
    fn vmcs02_names_l1s_page_or_one_beyond_memory() {
        let c = caps();
        let on = proc::USE_TPR_SHADOW;
        assert_eq!(virtual_apic02(&vmcs(on, 0x5000, 0), &c, RAM), 0x5000);
        assert_eq!(
            virtual_apic02(&vmcs(on, RAM - 4096, 0), &c, RAM),
            RAM - 4096
        );
        let top = (1 << 39) - 4096;
        assert_eq!(virtual_apic02(&vmcs(on, RAM, 0), &c, RAM), top);
        assert_eq!(virtual_apic02(&vmcs(on, 0xFEE0_0000, 0), &c, 1 << 31), top);
    }
}
