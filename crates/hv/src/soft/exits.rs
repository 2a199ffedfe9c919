//! L0's VM-exit handlers: what the hypervisor handles itself and what goes
//! to userspace.

use super::cr::{self, CrAccess};
use super::events::{self, Reflected};
use super::nested::L1Caps;
use crate::hw::{HwError, VmxHardware};
use accel::{GuestLevel, InternalError, NotifyExit, VcpuExit};
use x86::vmx::{exit_reason as er, field as f, intr_info, qualification as q};

/// The outcome of handling one VM exit.
#[derive(Debug)]
pub(crate) enum Handled {
    /// Handled in L0: enter the guest again.
    Resume,
    /// OUT for userspace.
    IoOut {
        port: u16,
        size: usize,
        value: u64,
        len: u64,
    },
    /// IN for userspace.
    IoIn { port: u16, size: usize, len: u64 },
    /// A host interrupt (the kick line): back to userspace only if it asked.
    HostInterrupt,
    /// A notify VM exit, handled in L0; the vCPU decides whether userspace
    /// sees it.
    Notify(NotifyExit),
    /// Any other exit to userspace.
    Exit(VcpuExit<'static>),
}

/// Advances the guest RIP past the instruction that exited.
pub(crate) fn skip_instruction(hw: &mut impl VmxHardware, len: u64) -> Result<(), HwError> {
    let rip = hw.vmread(f::GUEST_RIP)?;
    let cs_ar = hw.vmread(f::GUEST_CS_AR_BYTES)?;
    let efer = hw.vmread(f::GUEST_IA32_EFER)?;
    let long = efer & x86::cr::EFER_LMA != 0 && cs_ar & u64::from(x86::segment::AR_L) != 0;
    let next = rip.wrapping_add(len);
    hw.vmwrite(f::GUEST_RIP, if long { next } else { next & 0xFFFF_FFFF })?;
    // Completing an instruction ends any STI / MOV SS blocking (SDM Vol. 3C §25.4.2).
    let intr = hw.vmread(f::GUEST_INTERRUPTIBILITY_INFO)?;
    hw.vmwrite(f::GUEST_INTERRUPTIBILITY_INFO, intr & !3)?;
    Ok(())
}

/// Queues a hardware exception for the next VM entry. A guest in real mode
/// (an unrestricted guest with CR0.PE = 0) gets no error code: the
/// processor pushes none there, and VM entry refuses one (SDM Vol. 3C
/// §27.2.1.3).
pub(crate) fn inject_exception(
    hw: &mut impl VmxHardware,
    vector: u8,
    error_code: Option<u32>,
) -> Result<(), HwError> {
    let real_mode = hw.vmread(f::GUEST_CR0)? & x86::cr::CR0_PE == 0;
    let error_code = error_code.filter(|_| !real_mode);
    let info = intr_info::make(vector, intr_info::TYPE_HW_EXCEPTION, error_code.is_some());
    hw.vmwrite(f::VM_ENTRY_INTR_INFO, u64::from(info))?;
    if let Some(code) = error_code {
        hw.vmwrite(f::VM_ENTRY_EXCEPTION_ERROR_CODE, u64::from(code))?;
    }
    Ok(())
}

fn rip(hw: &impl VmxHardware) -> u64 {
    hw.vmread(f::GUEST_RIP).unwrap_or(0)
}

/// What the guest at hand is offered of VMX: L1's capabilities when nested
/// VMX is on and the exit is L1's, whether L1 is in VMX operation, and
/// whether the exit is L2's (whose CR0/CR4 carry VMX's fixed bits).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct VmxOffer<'a> {
    /// The capabilities, when VMX is offered to this guest.
    pub caps: Option<&'a L1Caps>,
    /// The guest executed VMXON (and no VMXOFF since).
    pub on: bool,
    /// The guest is an L2, run for an L1 hypervisor.
    pub l2: bool,
    /// For an L2: the CR0 and CR4 bits its L1 owns (vmcs12's guest/host
    /// masks), which keep their values when L0 emulates a write.
    pub l1_cr_masks: (u64, u64),
}

/// Handles the VM exit whose exit-reason field is `raw`.
pub(crate) fn handle(
    hw: &mut impl VmxHardware,
    raw: u64,
    vmx: VmxOffer<'_>,
) -> Result<Handled, HwError> {
    if raw & u64::from(er::ENTRY_FAILURE) != 0 {
        return Ok(Handled::Exit(VcpuExit::FailEntry {
            hardware_reason: raw,
        }));
    }
    let reason = raw as u16;
    let qual = hw.vmread(f::EXIT_QUALIFICATION)?;
    let len = hw.vmread(f::VM_EXIT_INSTRUCTION_LEN)?;
    if !matches!(reason, er::EXCEPTION_NMI | er::TRIPLE_FAULT) {
        // Whatever delivery the exit interrupted is delivered after it.
        events::requeue_vectoring(hw)?;
    }
    Ok(match reason {
        er::EXCEPTION_NMI => match events::reflect_exception(hw, qual)? {
            Reflected::Queued => Handled::Resume,
            Reflected::TripleFault => Handled::Exit(VcpuExit::Shutdown),
        },
        er::EXTERNAL_INTERRUPT => Handled::HostInterrupt,
        er::TRIPLE_FAULT => Handled::Exit(VcpuExit::Shutdown),
        er::NOTIFY => Handled::Notify(notify(hw)?),
        er::HLT => {
            skip_instruction(hw, len)?;
            Handled::Exit(VcpuExit::Hlt)
        }
        er::CPUID => {
            cpuid(hw, vmx.caps.is_some())?;
            skip_instruction(hw, len)?;
            Handled::Resume
        }
        er::IO_INSTRUCTION => {
            let size = ((qual & q::IO_SIZE_MASK) + 1) as usize;
            let port = (qual >> q::IO_PORT_SHIFT) as u16;
            if qual & q::IO_STRING != 0 {
                return Ok(Handled::Exit(VcpuExit::InternalError(
                    InternalError::Emulation {
                        what: "string I/O",
                        rip: rip(hw),
                    },
                )));
            }
            if qual & q::IO_IN != 0 {
                Handled::IoIn { port, size, len }
            } else {
                let value = hw.gprs()[0] & crate::soft::exits::size_mask(size);
                Handled::IoOut {
                    port,
                    size,
                    value,
                    len,
                }
            }
        }
        er::CR_ACCESS => match cr::mov_to_cr(hw, qual, vmx)? {
            CrAccess::Done => {
                skip_instruction(hw, len)?;
                Handled::Resume
            }
            CrAccess::Faulted => Handled::Resume,
            CrAccess::Unhandled => {
                Handled::Exit(VcpuExit::InternalError(InternalError::UnhandledExit {
                    reason,
                    qualification: qual,
                    rip: rip(hw),
                }))
            }
        },
        er::MSR_READ | er::MSR_WRITE => {
            msr(hw, reason == er::MSR_WRITE, len, vmx.caps)?;
            Handled::Resume
        }
        er::VMCALL | er::VMCLEAR..=er::VMXON | er::INVEPT | er::INVVPID | er::XSETBV | er::INVD => {
            // VMX is not offered to this guest (when it is, the nested code
            // takes these exits first), and there are no hypercalls: #UD,
            // as on a processor without these features.
            if reason == er::INVD {
                skip_instruction(hw, len)?;
            } else {
                inject_exception(hw, x86::exception::UD, None)?;
            }
            Handled::Resume
        }
        er::EPT_VIOLATION => {
            let gpa = hw.vmread(f::GUEST_PHYSICAL_ADDRESS)?;
            Handled::Exit(VcpuExit::InternalError(InternalError::UnmappedAccess {
                gpa,
                rip: rip(hw),
            }))
        }
        _ => Handled::Exit(VcpuExit::InternalError(InternalError::UnhandledExit {
            reason,
            qualification: qual,
            rip: rip(hw),
        })),
    })
}

/// The notify VM exit (SDM Vol. 3C §26.2, exit reason 75): the event being
/// delivered is already re-queued; when the exit was incident to an IRET that
/// unblocked NMIs (qualification bit 12), blocking by NMI is restored before
/// re-entry, as for any exit during such an IRET (Vol. 3C §31.7.1.2) —
/// unless the event re-queued is itself an NMI, which needs NMIs unblocked.
fn notify(hw: &mut impl VmxHardware) -> Result<NotifyExit, HwError> {
    let exit = notify_facts(hw)?;
    let qual = exit.qualification.unwrap_or(0);
    events::reblock_nmis_after_iret(hw, qual & q::NOTIFY_NMI_UNBLOCKING_IRET)?;
    Ok(exit)
}

/// What the notify exit just taken reports, read from the current VMCS
/// (level L1, not yet handled).
pub(crate) fn notify_facts(hw: &impl VmxHardware) -> Result<NotifyExit, HwError> {
    let qual = hw.vmread(f::EXIT_QUALIFICATION)?;
    Ok(NotifyExit {
        context_invalid: qual & q::NOTIFY_CONTEXT_INVALID != 0,
        level: GuestLevel::L1,
        qualification: Some(qual),
        rip: Some(rip(hw)),
        idt_vectoring_info: Some(hw.vmread(f::IDT_VECTORING_INFO)? as u32),
        to_l1: false,
    })
}

/// Mask of the low `size` bytes.
pub(crate) fn size_mask(size: usize) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1 << (size * 8)) - 1
    }
}

/// CPUID as the guest sees it: the processor's answer, with VMX only where
/// L0 offers it, the hypervisor-present bit and the APIC bits of the local
/// APIC L0 emulates (`lapic::cpuid_leaf1`: xAPIC with TSC-deadline mode,
/// no x2APIC).
fn cpuid(hw: &mut impl VmxHardware, vmx: bool) -> Result<(), HwError> {
    let mut g = hw.gprs();
    let leaf = g[0] as u32;
    let mut r = hw.cpuid(leaf, g[1] as u32);
    if leaf == 1 {
        r[2] &= !(1 << 5);
        if vmx {
            r[2] |= 1 << 5;
        }
        // Hypervisor present; the APIC bits of L0's local APIC, which
        // serves IA32_TSC_DEADLINE.
        r[2] |= 1 << 31;
        (r[2], r[3]) = lapic::cpuid_leaf1(r[2], r[3], true);
    }
    g[0] = u64::from(r[0]);
    g[3] = u64::from(r[1]);
    g[1] = u64::from(r[2]);
    g[2] = u64::from(r[3]);
    hw.set_gprs(&g);
    Ok(())
}

/// RDMSR/WRMSR of MSRs that are not passed through.
fn msr(
    hw: &mut impl VmxHardware,
    write: bool,
    len: u64,
    vmx: Option<&L1Caps>,
) -> Result<(), HwError> {
    let mut g = hw.gprs();
    let index = g[1] as u32;
    let value = match (index, write) {
        // IA32_FEATURE_CONTROL: locked; VMX outside SMX enabled where VMX is
        // offered (bit 2), off otherwise. Writes to a locked MSR are #GP.
        (x86::msr::FEATURE_CONTROL, false) => Some(if vmx.is_some() { 5 } else { 1 }),
        // The VMX capability MSRs, where VMX is offered (#GP otherwise, or
        // for one this VMX lacks).
        (0x480..=0x491, false) => vmx.and_then(|c| c.rdmsr(index)),
        _ => None,
    };
    match value {
        Some(v) => {
            if !write {
                g[0] = v & 0xFFFF_FFFF;
                g[2] = v >> 32;
                hw.set_gprs(&g);
            }
            skip_instruction(hw, len)
        }
        None => inject_exception(hw, x86::exception::GP, Some(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::test_hw::FakeHw;

    fn notify_exit(hw: &mut FakeHw, qual: u64, vectoring: u32) -> Handled {
        hw.fields.insert(f::EXIT_QUALIFICATION, qual);
        hw.fields
            .insert(f::IDT_VECTORING_INFO, u64::from(vectoring));
        hw.fields.insert(f::GUEST_RIP, 0x1234);
        handle(hw, u64::from(er::NOTIFY), VmxOffer::default()).unwrap()
    }

    #[test]
    fn notify_requeues_the_stalled_event_and_reports_it() {
        let mut hw = FakeHw::default();
        let db = intr_info::make(1, intr_info::TYPE_HW_EXCEPTION, false);
        let Handled::Notify(n) = notify_exit(&mut hw, 0, db) else {
            panic!("not a notify outcome")
        };
        assert!(!n.context_invalid);
        assert_eq!(n.rip, Some(0x1234));
        assert_eq!(n.idt_vectoring_info, Some(db));
        assert_eq!(hw.fields[&f::VM_ENTRY_INTR_INFO] as u32, db);
        assert_eq!(hw.fields.get(&f::GUEST_INTERRUPTIBILITY_INFO), None);
    }

    #[test]
    fn notify_bit_12_restores_nmi_blocking_unless_an_nmi_is_requeued() {
        let mut hw = FakeHw::default();
        let db = intr_info::make(1, intr_info::TYPE_HW_EXCEPTION, false);
        notify_exit(&mut hw, q::NOTIFY_NMI_UNBLOCKING_IRET, db);
        assert_eq!(
            hw.fields[&f::GUEST_INTERRUPTIBILITY_INFO],
            u64::from(x86::vmx::interruptibility::NMI)
        );
        let mut hw = FakeHw::default();
        let nmi = intr_info::make(2, intr_info::TYPE_NMI, false);
        notify_exit(&mut hw, q::NOTIFY_NMI_UNBLOCKING_IRET, nmi);
        assert_eq!(hw.fields.get(&f::GUEST_INTERRUPTIBILITY_INFO), None);
    }

    #[test]
    fn notify_reports_an_invalid_context() {
        let mut hw = FakeHw::default();
        let Handled::Notify(n) = notify_exit(&mut hw, q::NOTIFY_CONTEXT_INVALID, 0) else {
            panic!("not a notify outcome")
        };
        assert!(n.context_invalid);
        assert_eq!(hw.fields.get(&f::VM_ENTRY_INTR_INFO), None);
    }

    #[test]
    fn cpuid_offers_the_apic_l0_emulates() {
        let mut hw = FakeHw::default();
        hw.gprs[0] = 1;
        cpuid(&mut hw, false).unwrap();
        let (ecx, edx) = (hw.gprs[1] as u32, hw.gprs[2] as u32);
        assert_eq!(ecx & lapic::CPUID1_ECX_X2APIC, 0);
        assert_ne!(ecx & lapic::CPUID1_ECX_TSC_DEADLINE, 0);
        assert_ne!(edx & lapic::CPUID1_EDX_APIC, 0);
        assert_ne!(ecx & 1 << 31, 0, "hypervisor bit");
    }
}
