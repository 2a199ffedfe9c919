//! MOV to CR0 and CR4 that exit to L0 because they touch a bit L0 owns
//! (CR0.NE and CR4.VMXE; SDM Vol. 3C §26.1.3), emulated with the checks the
//! processor makes on a MOV to CR (SDM Vol. 3A §2.5, Vol. 2B MOV—Move
//! to/from Control Registers): a write the processor would refuse is
//! #GP(0), never a value that makes the next VM entry fail.
//!
//! The guest reads its own value of an owned bit from the read shadow while
//! the real register keeps it at 1. In vmcs02 the mask also holds the bits
//! L1 owns: those keep their real value, and L1's shadow, untouched.
//! Clearing a bit fixed in VMX operation (SDM Vol. 3C §24.8, Appendix A.7,
//! A.8) is #GP(0) for L1 in VMX operation and for L2.

use super::exits::VmxOffer;
use crate::hw::{HwError, VmxHardware};
use x86::cr::*;
use x86::vmx::{entry_ctl, field as f, proc, proc2, qualification as q};

/// What L0 made of a control-register access exit.
pub(crate) enum CrAccess {
    /// Emulated: step over the instruction.
    Done,
    /// A fault was injected; the instruction is not completed.
    Faulted,
    /// Not an access L0 emulates.
    Unhandled,
}

/// The bits L0 forces to 1 in each register (it also owns CR0.PE and PG
/// while L1 is in VMX operation, `super::nested`, but those keep the value
/// written, after the checks).
const L0_CR0: u64 = CR0_NE;
const L0_CR4: u64 = CR4_VMXE;

/// Emulates the MOV to CR0/CR4 of the exit with qualification `qual`.
pub(crate) fn mov_to_cr(
    hw: &mut impl VmxHardware,
    qual: u64,
    vmx: VmxOffer<'_>,
) -> Result<CrAccess, HwError> {
    let cr = q::cr_number(qual);
    if q::cr_access_type(qual) != q::CR_MOV_TO || !matches!(cr, 0 | 4) {
        return Ok(CrAccess::Unhandled);
    }
    let source = hw.gprs()[q::cr_gpr(qual)];
    let efer = hw.vmread(f::GUEST_IA32_EFER)?;
    let cs_l = hw.vmread(f::GUEST_CS_AR_BYTES)? & u64::from(x86::segment::AR_L) != 0;
    let mode64 = efer & EFER_LMA != 0 && cs_l;
    // Bits 63:32 of the source must be 0 in 64-bit mode and are ignored
    // outside it (SDM Vol. 3A §2.5).
    if mode64 && source >> 32 != 0 {
        return fault(hw);
    }
    let value = source & 0xFFFF_FFFF;
    let (real_f, shadow_f, l0_bits) = if cr == 0 {
        (f::GUEST_CR0, f::CR0_READ_SHADOW, L0_CR0)
    } else {
        (f::GUEST_CR4, f::CR4_READ_SHADOW, L0_CR4)
    };
    let old = hw.vmread(real_f)?;
    let l1_bits = if cr == 0 {
        vmx.l1_cr_masks.0
    } else {
        vmx.l1_cr_masks.1
    };
    // The register as the processor would load it were L0's bits not
    // forced: the guest's value, L1's bits as they really are.
    let new = (value & !l1_bits) | (old & l1_bits);
    let refused = if cr == 0 {
        cr0_refused(hw, old, new, efer, mode64, vmx)?
    } else {
        cr4_refused(hw, old, new, efer, vmx)
    };
    if refused {
        return fault(hw);
    }
    let shadow = hw.vmread(shadow_f)?;
    hw.vmwrite(shadow_f, (shadow & l1_bits) | (value & !l1_bits))?;
    hw.vmwrite(real_f, new | l0_bits)?;
    if cr == 0 && (old ^ new) & CR0_PG != 0 {
        // A change of PG with EFER.LME = 1 enters or leaves IA-32e mode
        // (SDM Vol. 3A §10.8.5).
        let lma = efer & EFER_LME != 0 && new & CR0_PG != 0;
        let efer = if lma {
            efer | EFER_LMA
        } else {
            efer & !EFER_LMA
        };
        hw.vmwrite(f::GUEST_IA32_EFER, efer)?;
        let entry = hw.vmread(f::VM_ENTRY_CONTROLS)?;
        let ia32e = u64::from(entry_ctl::IA32E_MODE_GUEST);
        hw.vmwrite(
            f::VM_ENTRY_CONTROLS,
            if lma { entry | ia32e } else { entry & !ia32e },
        )?;
    }
    Ok(CrAccess::Done)
}

fn fault(hw: &mut impl VmxHardware) -> Result<CrAccess, HwError> {
    super::exits::inject_exception(hw, x86::exception::GP, Some(0))?;
    Ok(CrAccess::Faulted)
}

/// Whether the current VMCS makes its guest an unrestricted guest.
fn unrestricted(hw: &impl VmxHardware) -> Result<bool, HwError> {
    let procv = hw.vmread(f::CPU_BASED_VM_EXEC_CONTROL)? as u32;
    let proc2v = hw.vmread(f::SECONDARY_VM_EXEC_CONTROL)? as u32;
    Ok(procv & proc::ACTIVATE_SECONDARY_CONTROLS != 0 && proc2v & proc2::UNRESTRICTED_GUEST != 0)
}

/// The #GP(0) conditions of MOV to CR0: PG without PE, NW without CD,
/// paging turned on with EFER.LME = 1 and CR4.PAE = 0, paging turned off in
/// 64-bit mode, and the bits fixed in VMX operation.
fn cr0_refused(
    hw: &impl VmxHardware,
    old: u64,
    new: u64,
    efer: u64,
    mode64: bool,
    vmx: VmxOffer<'_>,
) -> Result<bool, HwError> {
    let pae = hw.vmread(f::GUEST_CR4)? & CR4_PAE != 0;
    let fixed = if vmx.on {
        CR0_PE | CR0_PG | CR0_NE
    } else if vmx.l2 {
        CR0_NE
            | if unrestricted(hw)? {
                0
            } else {
                CR0_PE | CR0_PG
            }
    } else {
        0
    };
    let turning_on = old & CR0_PG == 0 && new & CR0_PG != 0;
    Ok((new & CR0_PG != 0 && new & CR0_PE == 0)
        || (new & CR0_NW != 0 && new & CR0_CD == 0)
        || (turning_on && efer & EFER_LME != 0 && !pae)
        || (mode64 && new & CR0_PG == 0)
        || new & fixed != fixed)
}

/// The #GP(0) conditions of MOV to CR4: a bit the processor does not have
/// (IA32_VMX_CR4_FIXED1 lists those it does), PAE cleared in IA-32e mode,
/// and VMXE as VMX is offered: L1 may set it, and clear it outside VMX
/// operation; a guest without VMX may not set it; L2 may not change it.
fn cr4_refused(hw: &impl VmxHardware, old: u64, new: u64, efer: u64, vmx: VmxOffer<'_>) -> bool {
    let supported = hw.capability(x86::msr::VMX_CR4_FIXED1).unwrap_or(u64::MAX);
    let vmxe_set = new & CR4_VMXE != 0;
    let vmxe_refused = if vmx.l2 {
        (old ^ new) & CR4_VMXE != 0 || vmxe_set
    } else if vmx.caps.is_some() {
        !vmxe_set && vmx.on
    } else {
        vmxe_set
    };
    new & !supported != 0 || (efer & EFER_LMA != 0 && new & CR4_PAE == 0) || vmxe_refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::test_hw::FakeHw;
    use crate::soft::exits::{handle, Handled};
    use x86::vmx::{exit_reason as er, intr_info};

    /// A MOV to CR0 (or CR4) from RAX = `value`, 3 bytes at 0x1000.
    fn mov(hw: &mut FakeHw, cr: u64, value: u64, vmx: VmxOffer<'_>) {
        hw.gprs[0] = value;
        hw.fields.insert(f::EXIT_QUALIFICATION, cr);
        hw.fields.insert(f::VM_EXIT_INSTRUCTION_LEN, 3);
        hw.fields.insert(f::GUEST_RIP, 0x1000);
        hw.fields.remove(&f::VM_ENTRY_INTR_INFO);
        assert!(matches!(
            handle(hw, u64::from(er::CR_ACCESS), vmx).unwrap(),
            Handled::Resume
        ));
    }

    fn faulted(hw: &FakeHw) -> bool {
        hw.fields.get(&f::VM_ENTRY_INTR_INFO).copied()
            == Some(u64::from(intr_info::make(
                x86::exception::GP,
                intr_info::TYPE_HW_EXCEPTION,
                true,
            )))
    }

    fn l1() -> FakeHw {
        let mut hw = FakeHw::default();
        hw.fields.insert(f::GUEST_CR0, CR0_PE | CR0_NE);
        hw.fields.insert(f::CR0_GUEST_HOST_MASK, CR0_NE);
        hw.fields.insert(f::CR4_GUEST_HOST_MASK, CR4_VMXE);
        hw.fields.insert(f::GUEST_CR4, CR4_VMXE);
        hw
    }

    #[test]
    fn a_cr0_write_clearing_ne_lands_in_the_shadow_and_can_enter_long_mode() {
        let mut hw = l1();
        hw.fields.insert(f::GUEST_CR4, CR4_VMXE | CR4_PAE);
        hw.fields.insert(f::GUEST_IA32_EFER, EFER_LME);
        mov(&mut hw, 0, CR0_PE | CR0_PG, VmxOffer::default());
        assert!(!faulted(&hw));
        assert_eq!(hw.fields[&f::GUEST_CR0], CR0_PE | CR0_PG | CR0_NE);
        assert_eq!(hw.fields[&f::CR0_READ_SHADOW], CR0_PE | CR0_PG);
        assert_eq!(hw.fields[&f::GUEST_IA32_EFER], EFER_LME | EFER_LMA);
        assert_ne!(
            hw.fields[&f::VM_ENTRY_CONTROLS] & u64::from(entry_ctl::IA32E_MODE_GUEST),
            0
        );
        assert_eq!(hw.fields[&f::GUEST_RIP], 0x1003);
    }

    #[test]
    fn writes_the_processor_refuses_are_general_protection_faults() {
        for (cr, value) in [
            (0, CR0_PG | CR0_NE),    // PG without PE
            (0, CR0_PE | CR0_NW),    // NW without CD
            (0, CR0_PE | CR0_PG),    // LME = 1 and PAE = 0
            (4, CR4_VMXE | 1 << 17), // a bit this CPU lacks
            (4, CR4_VMXE),           // VMX not offered
        ] {
            let mut hw = l1();
            hw.fields.insert(f::GUEST_IA32_EFER, EFER_LME);
            hw.fields.insert(f::GUEST_CR4, 0);
            mov(&mut hw, cr, value, VmxOffer::default());
            assert!(faulted(&hw), "CR{cr} = {value:#x}");
            assert_eq!(hw.fields[&f::GUEST_RIP], 0x1000);
            assert_eq!(hw.fields[&f::GUEST_CR0], CR0_PE | CR0_NE);
        }
    }

    #[test]
    fn a_fault_in_real_mode_has_no_error_code() {
        // An unrestricted guest in real mode sets an unsupported CR4 bit.
        let mut hw = l1();
        hw.fields.insert(f::GUEST_CR0, CR0_NE);
        hw.gprs[0] = CR4_VMXE | 1 << 17;
        hw.fields.insert(f::EXIT_QUALIFICATION, 4);
        handle(&mut hw, u64::from(er::CR_ACCESS), VmxOffer::default()).unwrap();
        assert_eq!(
            hw.fields[&f::VM_ENTRY_INTR_INFO],
            u64::from(intr_info::make(
                x86::exception::GP,
                intr_info::TYPE_HW_EXCEPTION,
                false
            ))
        );
    }

    #[test]
    fn vmx_fixed_bits_and_vmxe_follow_the_offer() {
        let caps = crate::soft::nested::L1Caps::new(softcpu::capability_msr, 39);
        let offered = VmxOffer {
            caps: Some(&caps),
            ..VmxOffer::default()
        };
        let mut hw = l1();
        mov(&mut hw, 4, CR4_VMXE, offered);
        assert!(!faulted(&hw));
        assert_eq!(hw.fields[&f::CR4_READ_SHADOW], CR4_VMXE);
        // In VMX operation: VMXE and NE stay.
        let on = VmxOffer {
            on: true,
            ..offered
        };
        mov(&mut hw, 4, 0, on);
        assert!(faulted(&hw));
        let mut hw = l1();
        hw.fields.insert(f::GUEST_CR0, CR0_PE | CR0_PG | CR0_NE);
        hw.fields.insert(f::GUEST_CR4, CR4_VMXE | CR4_PAE);
        mov(&mut hw, 0, CR0_PE | CR0_PG, on);
        assert!(faulted(&hw), "NE is fixed in VMX operation");
    }

    #[test]
    fn l2_keeps_l1s_bits_and_l1s_shadow() {
        // vmcs02: L1 owns TS (shadowed 1, really 0); L0 owns NE.
        let mut hw = l1();
        hw.fields.insert(f::CR0_GUEST_HOST_MASK, CR0_NE | CR0_TS);
        hw.fields.insert(f::CR0_READ_SHADOW, CR0_TS | CR0_NE);
        hw.fields
            .insert(f::GUEST_CR0, CR0_PE | CR0_PG | CR0_NE | CR0_ET);
        hw.fields.insert(f::GUEST_CR4, CR4_VMXE | CR4_PAE);
        let l2 = VmxOffer {
            l2: true,
            l1_cr_masks: (CR0_TS, 0),
            ..VmxOffer::default()
        };
        // L2 writes TS = 1 (as shadowed: not L1's exit) and clears NE.
        mov(&mut hw, 0, CR0_PE | CR0_PG | CR0_TS, l2);
        assert!(faulted(&hw), "NE is fixed for L2");
        // L2 writes ET = 0, keeping NE and TS as it sees them.
        mov(&mut hw, 0, CR0_PE | CR0_PG | CR0_TS | CR0_NE, l2);
        assert!(!faulted(&hw));
        assert_eq!(hw.fields[&f::GUEST_CR0], CR0_PE | CR0_PG | CR0_NE);
        assert_eq!(
            hw.fields[&f::CR0_READ_SHADOW] & (CR0_TS | CR0_NE),
            CR0_TS | CR0_NE
        );
        // L2 may not touch VMXE.
        mov(&mut hw, 4, CR4_PAE, l2);
        assert!(faulted(&hw));
    }
}
