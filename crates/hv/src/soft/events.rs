//! Events that must survive a VM exit: the delivery a VM exit interrupted
//! (IDT-vectoring information, SDM Vol. 3C §27.2.4 and §31.7.1.1), and the
//! #AC and #DB exceptions L0 intercepts and reflects into the guest.

use crate::hw::{HwError, VmxHardware};
use x86::exception::{self as vec, Class};
use x86::vmx::{field as f, interruptibility, intr_info, pending_dbg};

const VALID: u32 = intr_info::VALID;

/// Interruption type of an interruption-information value.
fn kind(info: u32) -> u32 {
    (info >> intr_info::TYPE_SHIFT) & 7
}

fn is_software(info: u32) -> bool {
    matches!(
        kind(info),
        intr_info::TYPE_SW_INTR | intr_info::TYPE_SW_EXCEPTION | intr_info::TYPE_PRIV_SW_EXCEPTION
    )
}

/// Queues `info` (with its error code and, for software events, the
/// instruction length) for injection at the next VM entry. Bits 30:12 are
/// cleared: they are undefined in exit fields and must be 0 on entry (SDM
/// Vol. 3C §31.7.1.1).
fn queue(
    hw: &mut impl VmxHardware,
    info: u32,
    error_code: u64,
    instruction_len: u64,
) -> Result<(), HwError> {
    let info = info & (VALID | intr_info::ERROR_CODE_VALID | 0x7FF);
    hw.vmwrite(f::VM_ENTRY_INTR_INFO, u64::from(info))?;
    if info & intr_info::ERROR_CODE_VALID != 0 {
        hw.vmwrite(f::VM_ENTRY_EXCEPTION_ERROR_CODE, error_code)?;
    }
    if is_software(info) {
        hw.vmwrite(f::VM_ENTRY_INSTRUCTION_LEN, instruction_len)?;
    }
    Ok(())
}

/// The event the exit interrupted, if its delivery was under way.
pub(crate) fn vectoring(hw: &impl VmxHardware) -> Result<Option<u32>, HwError> {
    let info = hw.vmread(f::IDT_VECTORING_INFO)? as u32;
    Ok((info & VALID != 0).then_some(info))
}

/// Re-injects the event whose delivery the exit interrupted, so the guest
/// sees it delivered once the exit is handled.
pub(crate) fn requeue_vectoring(hw: &mut impl VmxHardware) -> Result<(), HwError> {
    if let Some(info) = vectoring(hw)? {
        let code = hw.vmread(f::IDT_VECTORING_ERROR_CODE)?;
        let len = hw.vmread(f::VM_EXIT_INSTRUCTION_LEN)?;
        queue(hw, info, code, len)?;
    }
    Ok(())
}

/// Restores blocking by NMI after an exit whose qualification bit 12 says
/// it was incident to an IRET that had unblocked NMIs (notify exits, EPT
/// violations; SDM Vol. 3C §31.7.1.2) — unless the event re-queued is
/// itself an NMI, which needs NMIs unblocked.
pub(crate) fn reblock_nmis_after_iret(
    hw: &mut impl VmxHardware,
    qualification: u64,
) -> Result<(), HwError> {
    let nmi_requeued = vectoring(hw)?.is_some_and(|v| kind(v) == intr_info::TYPE_NMI);
    if qualification & 1 << 12 != 0 && !nmi_requeued {
        let state = hw.vmread(f::GUEST_INTERRUPTIBILITY_INFO)?;
        hw.vmwrite(
            f::GUEST_INTERRUPTIBILITY_INFO,
            state | u64::from(x86::vmx::interruptibility::NMI),
        )?;
    }
    Ok(())
}

/// What reflecting an intercepted exception decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reflected {
    /// The exception (or the #DF it turned into) is queued for the guest.
    Queued,
    /// It arose while delivering a #DF: the guest shuts down.
    TripleFault,
}

/// Reflects an intercepted hardware exception (or INT1) into the guest, as
/// if it had never been intercepted.
///
/// For #DB the status bits the exit qualification carries are written to
/// DR6 first (a #DB VM exit leaves DR6 alone, SDM Vol. 3C §27.1). When the
/// exception arose while another hardware exception was being delivered, the
/// double-fault rules of SDM Vol. 3A Table 6-5 apply, and §6.15 (interrupt
/// 8) for a fault during #DF delivery: a contributory exception or a page
/// fault there is a shutdown, a benign one is delivered; benign pairs are
/// delivered one after the other, which is what keeps the #AC and #DB loops
/// going — each iteration now through L0. An external interrupt or NMI whose
/// delivery was interrupted is not re-queued behind the exception (one event
/// per entry); no device here raises those while #AC/#DB interception is on.
pub(crate) fn reflect_exception(
    hw: &mut impl VmxHardware,
    qualification: u64,
) -> Result<Reflected, HwError> {
    let info = hw.vmread(f::VM_EXIT_INTR_INFO)? as u32;
    let code = hw.vmread(f::VM_EXIT_INTR_ERROR_CODE)?;
    let len = hw.vmread(f::VM_EXIT_INSTRUCTION_LEN)?;
    let vector = (info & intr_info::VECTOR_MASK) as u8;
    if vector == vec::DB && kind(info) == intr_info::TYPE_HW_EXCEPTION {
        // B0–B3, BD and BS sit at the same positions in both (SDM Vol. 3C
        // §27.2.1, Table 27-1). RTM (bit 16) is active-low in DR6 and this
        // processor has no RTM: it stays 1.
        let status = qualification & (0xF | 1 << 13 | 1 << 14);
        let dr6 = hw.dr6();
        hw.set_dr6((dr6 & !0xF) | status | 0xFFFF_0FF0);
        single_step_in_shadow(hw, status)?;
    }
    if let Some(outer) = vectoring(hw)? {
        if kind(outer) == intr_info::TYPE_HW_EXCEPTION && kind(info) == intr_info::TYPE_HW_EXCEPTION
        {
            let first = vec::class((outer & intr_info::VECTOR_MASK) as u8);
            let second = vec::class(vector);
            if first == Class::DoubleFault
                && matches!(
                    second,
                    Class::Contributory | Class::PageFault | Class::DoubleFault
                )
            {
                return Ok(Reflected::TripleFault);
            }
            if matches!(
                (first, second),
                (Class::Contributory, Class::Contributory)
                    | (Class::PageFault, Class::Contributory)
                    | (Class::PageFault, Class::PageFault)
            ) {
                let df = intr_info::make(vec::DF, intr_info::TYPE_HW_EXCEPTION, true);
                queue(hw, df, 0, 0)?;
                return Ok(Reflected::Queued);
            }
        }
    }
    queue(hw, info, code, len)?;
    Ok(Reflected::Queued)
}

/// A single-step #DB taken in an STI or MOV-SS shadow with TF = 1 (after
/// STI, say): VM entry requires BS in the pending debug exceptions under
/// that blocking while TF = 1 (SDM Vol. 3C §27.3.1.5), and the processor
/// saved none, the #DB being the exit. BS goes there so the entry that
/// re-injects the #DB passes its checks; an entry that injects an event
/// drops pending debug exceptions anyway (§27.7.3). KVM does the same.
fn single_step_in_shadow(hw: &mut impl VmxHardware, status: u64) -> Result<(), HwError> {
    let shadow = u64::from(interruptibility::STI | interruptibility::MOV_SS);
    if status & pending_dbg::BS == 0
        || hw.vmread(f::GUEST_INTERRUPTIBILITY_INFO)? & shadow == 0
        || hw.vmread(f::GUEST_RFLAGS)? & x86::rflags::TF == 0
    {
        return Ok(());
    }
    let pending = hw.vmread(f::GUEST_PENDING_DBG_EXCEPTIONS)?;
    hw.vmwrite(f::GUEST_PENDING_DBG_EXCEPTIONS, pending | pending_dbg::BS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::test_hw::FakeHw;

    #[test]
    fn a_single_step_db_in_an_sti_shadow_leaves_bs_pending() {
        let bs = pending_dbg::BS;
        for (blocking, tf, want) in [
            (interruptibility::STI, true, bs),
            (interruptibility::MOV_SS, true, bs),
            (0, true, 0),
            (interruptibility::STI, false, 0),
        ] {
            let mut hw = FakeHw::default();
            exit_with(&mut hw, hw_exc(vec::DB, false), 0);
            hw.fields
                .insert(f::GUEST_INTERRUPTIBILITY_INFO, u64::from(blocking));
            let rflags = if tf { 0x302 } else { 0x202 };
            hw.fields.insert(f::GUEST_RFLAGS, rflags);
            hw.fields.insert(f::GUEST_PENDING_DBG_EXCEPTIONS, 0);
            assert_eq!(reflect_exception(&mut hw, bs), Ok(Reflected::Queued));
            assert_eq!(
                hw.fields[&f::GUEST_PENDING_DBG_EXCEPTIONS],
                want,
                "{blocking} {tf}"
            );
        }
    }

    fn exit_with(hw: &mut FakeHw, info: u32, vectoring: u32) {
        hw.fields.insert(f::VM_EXIT_INTR_INFO, u64::from(info));
        hw.fields
            .insert(f::IDT_VECTORING_INFO, u64::from(vectoring));
    }

    fn hw_exc(vector: u8, code: bool) -> u32 {
        intr_info::make(vector, intr_info::TYPE_HW_EXCEPTION, code)
    }

    #[test]
    fn benign_pairs_are_delivered_serially() {
        let mut hw = FakeHw::default();
        // #AC while delivering #AC: the new #AC is injected.
        exit_with(&mut hw, hw_exc(vec::AC, true), hw_exc(vec::AC, true));
        assert_eq!(reflect_exception(&mut hw, 0), Ok(Reflected::Queued));
        assert_eq!(
            hw.fields[&f::VM_ENTRY_INTR_INFO] as u32,
            hw_exc(vec::AC, true)
        );
        assert_eq!(hw.fields[&f::VM_ENTRY_EXCEPTION_ERROR_CODE], 0);
    }

    #[test]
    fn contributory_pairs_make_a_double_fault_and_a_fault_in_it_a_triple_fault() {
        let mut hw = FakeHw::default();
        exit_with(&mut hw, hw_exc(vec::GP, true), hw_exc(vec::NP, true));
        assert_eq!(reflect_exception(&mut hw, 0), Ok(Reflected::Queued));
        assert_eq!(
            hw.fields[&f::VM_ENTRY_INTR_INFO] as u32,
            hw_exc(vec::DF, true)
        );
        exit_with(&mut hw, hw_exc(vec::GP, true), hw_exc(vec::DF, true));
        assert_eq!(reflect_exception(&mut hw, 0), Ok(Reflected::TripleFault));
        // A benign exception during #DF delivery is delivered (SDM §6.15).
        exit_with(&mut hw, hw_exc(vec::AC, true), hw_exc(vec::DF, true));
        assert_eq!(reflect_exception(&mut hw, 0), Ok(Reflected::Queued));
        assert_eq!(
            hw.fields[&f::VM_ENTRY_INTR_INFO] as u32,
            hw_exc(vec::AC, true)
        );
    }

    #[test]
    fn a_reflected_db_writes_its_status_to_dr6() {
        let mut hw = FakeHw {
            dr6: 0xFFFF_0FF0 | 0x2,
            ..FakeHw::default()
        };
        exit_with(&mut hw, hw_exc(vec::DB, false), 0);
        reflect_exception(&mut hw, 0x1 | 1 << 14).unwrap();
        assert_eq!(hw.dr6, 0xFFFF_0FF0 | 0x1 | 1 << 14);
        assert_eq!(
            hw.fields[&f::VM_ENTRY_INTR_INFO] as u32,
            hw_exc(vec::DB, false)
        );
    }

    #[test]
    fn requeue_copies_software_lengths_and_clears_undefined_bits() {
        let mut hw = FakeHw::default();
        let int80 = intr_info::make(0x80, intr_info::TYPE_SW_INTR, false) | 1 << 12;
        hw.fields.insert(f::IDT_VECTORING_INFO, u64::from(int80));
        hw.fields.insert(f::VM_EXIT_INSTRUCTION_LEN, 2);
        requeue_vectoring(&mut hw).unwrap();
        assert_eq!(hw.fields[&f::VM_ENTRY_INTR_INFO] as u32, int80 & !(1 << 12));
        assert_eq!(hw.fields[&f::VM_ENTRY_INSTRUCTION_LEN], 2);
    }
}
