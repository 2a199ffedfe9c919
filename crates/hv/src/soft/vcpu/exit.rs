//! The hook after a VM exit: the processor's verdict on the entry, then
//! where the exit goes — nested VMX first (an exit of L2's that L1 asked
//! for, an L1 VMX instruction), then L0's own handlers (the APIC, an
//! operand access to MMIO, the common exits), and what is left to
//! userspace.

use super::emulation::emulable;
use super::entry::Entry;
use super::user::{Pending, ToUser};
use super::{Goes, SoftVcpu};
use crate::hw::{HwError, VmxHardware};
use crate::soft::apic::ApicExit;
use crate::soft::exits::{self, Handled, VmxOffer};
use crate::soft::nested::Route;
use accel::{GuestLevel, InternalError, NotifyExit, VcpuExit};
use softcpu::SoftCpu;
use x86::vmx::exit_reason as er;
use x86::vmx::field as f;

/// Exit reasons of the VMX instructions (and VMCALL), which L0 emulates for
/// L1 when it offers VMX.
fn is_vmx_instruction(reason: u16) -> bool {
    matches!(
        reason,
        er::VMCALL | er::VMCLEAR..=er::VMXON | er::INVEPT | er::INVVPID
    )
}

/// What userspace gets for an instruction L0 cannot emulate at the guest's
/// RIP.
fn cannot_emulate(cpu: &SoftCpu, what: &'static str) -> Result<Goes, HwError> {
    let rip = VmxHardware::vmread(cpu, f::GUEST_RIP)?;
    Ok(to_user(VcpuExit::InternalError(InternalError::Emulation {
        what,
        rip,
    })))
}

/// An exit without bytes for userspace.
fn to_user(exit: VcpuExit<'static>) -> Goes {
    Goes::User(ToUser::Exit(exit))
}

impl SoftVcpu {
    /// The hook after every VM exit (or failed entry): where it goes.
    pub(super) fn after_exit(
        &mut self,
        cpu: &mut SoftCpu,
        entry: &Entry,
        entered: Result<(), HwError>,
    ) -> Result<Goes, HwError> {
        if cpu.powered_off() {
            return Ok(to_user(VcpuExit::PoweredOff));
        }
        if let Some(goes) = self.entry_verdict(cpu, entry, entered)? {
            return Ok(goes);
        }
        let raw = VmxHardware::vmread(&*cpu, f::VM_EXIT_REASON)?;
        // The debugger's exits are not the guest's: left out of the counts.
        if let Some(goes) = self.debug_exit(cpu, raw)? {
            return Ok(goes);
        }
        *self.exits.entry(raw as u16).or_insert(0) += 1;
        self.control.count_exit(raw as u16, entry.in_l2);
        if let Some(goes) = self.nested_exit(cpu, entry.in_l2, raw)? {
            return Ok(goes);
        }
        match self.local_exit(cpu, raw)? {
            Some(Goes::L0) => self.handled_in_l0(cpu, entry.in_l2),
            Some(goes) => Ok(goes),
            None => self.common_exit(cpu, raw, entry.in_l2),
        }
    }

    /// The processor's verdict on the entry; `None` when the guest ran and
    /// its exit is to be dispatched.
    fn entry_verdict(
        &mut self,
        cpu: &mut SoftCpu,
        entry: &Entry,
        entered: Result<(), HwError>,
    ) -> Result<Option<Goes>, HwError> {
        if let Some(n) = self.nested.as_mut().filter(|_| entry.first_of_vmcs02) {
            // The first entry of a fresh vmcs02: a failure is L1's VMfail
            // or VM-entry failure, which L0 has reported to L1.
            let ran = n.first_entry_result(cpu, entered)?;
            return Ok((!ran).then_some(Goes::L0));
        }
        // L0's own entry of vmcs01, or again of vmcs02: a refusal is L0's
        // failure, never an exit to read.
        if let Err(HwError::VmFail(error)) = entered {
            return Ok(Some(to_user(VcpuExit::InternalError(
                InternalError::VmInstruction { error },
            ))));
        }
        entered?;
        if !entry.in_l2 {
            // A VM-entry failure leaves vmcs01 clear (SDM Vol. 3C §27.8).
            let raw = VmxHardware::vmread(&*cpu, f::VM_EXIT_REASON)?;
            if raw & u64::from(er::ENTRY_FAILURE) == 0 {
                self.launched = true;
            }
        }
        Ok(None)
    }

    /// Nested VMX's part: an exit of L2's goes to L1 when L1 asked for it,
    /// and L1's VMX instructions are emulated. `None` when L0 handles the
    /// exit as its own.
    fn nested_exit(
        &mut self,
        cpu: &mut SoftCpu,
        in_l2: bool,
        raw: u64,
    ) -> Result<Option<Goes>, HwError> {
        let Some(n) = self.nested.as_mut() else {
            return Ok(None);
        };
        let reason = raw as u16;
        if in_l2 {
            // A notify exit L1 asked for is L1's to handle; userspace hears
            // of it too, as an exit already handled (`NotifyExit::to_l1`).
            let notify = if reason == er::NOTIFY {
                Some(exits::notify_facts(&*cpu)?)
            } else {
                None
            };
            return Ok(match n.l2_exit(cpu, raw)? {
                Route::ToL1 => match notify {
                    Some(exit) => {
                        self.reflected += 1;
                        Some(to_user(VcpuExit::Notify(NotifyExit {
                            level: GuestLevel::L2,
                            to_l1: true,
                            ..exit
                        })))
                    }
                    None => Some(Goes::L1),
                },
                Route::Resume => Some(Goes::L0),
                Route::L0 => None,
                Route::Mmio if emulable(cpu)? => Some(Goes::Emulate),
                Route::Mmio => {
                    let gpa = VmxHardware::vmread(&*cpu, f::GUEST_PHYSICAL_ADDRESS)?;
                    let rip = VmxHardware::vmread(&*cpu, f::GUEST_RIP)?;
                    Some(to_user(VcpuExit::InternalError(
                        InternalError::UnmappedAccess { gpa, rip },
                    )))
                }
            });
        }
        if !is_vmx_instruction(reason) {
            return Ok(None);
        }
        if n.l1_vmx_instruction(cpu, reason)? {
            return Ok(Some(Goes::L0));
        }
        cannot_emulate(cpu, "a VMX instruction whose memory operand is not in RAM").map(Some)
    }

    /// After L0 handled an exit by emulating or injecting: when the exit
    /// was L2's, an exception L0 raised that L1 intercepts goes to L1
    /// (`Nested::reflect_raised_exception`).
    fn handled_in_l0(&mut self, cpu: &mut SoftCpu, in_l2: bool) -> Result<Goes, HwError> {
        let reflected = match self.nested.as_mut().filter(|_| in_l2) {
            Some(n) => n.reflect_raised_exception(cpu)?,
            None => false,
        };
        Ok(if reflected { Goes::L1 } else { Goes::L0 })
    }

    /// Exits about the local APIC, interrupt delivery and MMIO; `None` for
    /// the others.
    fn local_exit(&mut self, cpu: &mut SoftCpu, raw: u64) -> Result<Option<Goes>, HwError> {
        if raw & u64::from(er::ENTRY_FAILURE) != 0 {
            return Ok(None);
        }
        let now = cpu.cycles();
        match raw as u16 {
            er::INTERRUPT_WINDOW | er::PREEMPTION_TIMER => Ok(Some(Goes::L0)),
            // Trap-like: the locked instruction has completed.
            er::BUS_LOCK => {
                self.bus_lock_exits += 1;
                Ok(Some(to_user(VcpuExit::BusLock)))
            }
            er::HLT if self.apic.hlt_waits(&*cpu, now, self.exit_deadline)? => {
                // Wait for the interrupt in the HLT activity state: the soft
                // CPU lets virtual time run to the next event.
                let len = VmxHardware::vmread(&*cpu, f::VM_EXIT_INSTRUCTION_LEN)?;
                exits::skip_instruction(cpu, len)?;
                let hlt = u64::from(x86::vmx::activity::HLT);
                VmxHardware::vmwrite(cpu, f::GUEST_ACTIVITY_STATE, hlt)?;
                Ok(Some(Goes::L0))
            }
            er::MSR_READ | er::MSR_WRITE => {
                let write = raw as u16 == er::MSR_WRITE;
                match self.apic.msr(cpu, write, now) {
                    None => return Ok(None),
                    Some(ApicExit::Resume) => {
                        let len = VmxHardware::vmread(&*cpu, f::VM_EXIT_INSTRUCTION_LEN)?;
                        exits::skip_instruction(cpu, len)?;
                    }
                    Some(ApicExit::GeneralProtection) => {
                        exits::inject_exception(cpu, x86::exception::GP, Some(0))?;
                    }
                }
                Ok(Some(Goes::L0))
            }
            // An operand access to memory that is not RAM: the instruction
            // is emulated; anything else (a fetch, event delivery, a
            // paging-structure access) stays an unmapped access.
            er::EPT_VIOLATION => Ok(emulable(cpu)?.then_some(Goes::Emulate)),
            _ => Ok(None),
        }
    }

    /// What the guest is offered of VMX, for the common handlers.
    fn vmx_offer(&self, in_l2: bool) -> VmxOffer<'_> {
        match &self.nested {
            Some(n) if !in_l2 => VmxOffer {
                caps: Some(n.caps()),
                on: n.in_vmx_operation(),
                ..VmxOffer::default()
            },
            Some(n) => VmxOffer {
                l2: true,
                l1_cr_masks: n.l1_cr_masks(),
                ..VmxOffer::default()
            },
            None => VmxOffer::default(),
        }
    }

    /// The exits every guest has (`exits::handle`): CPUID, CR access, I/O,
    /// exceptions, notify, HLT …
    fn common_exit(&mut self, cpu: &mut SoftCpu, raw: u64, in_l2: bool) -> Result<Goes, HwError> {
        let offer = self.vmx_offer(in_l2);
        Ok(match exits::handle(cpu, raw, offer)? {
            Handled::Resume => self.handled_in_l0(cpu, in_l2)?,
            // A host interrupt: L0 has the CPU back; the hook before the
            // next entry decides whether userspace asked for it.
            Handled::HostInterrupt => Goes::L0,
            Handled::Notify(exit) => self.notify_exit(exit, in_l2),
            Handled::IoOut {
                port,
                size,
                value,
                len,
            } => {
                self.stash_store(value, size, Pending::Io { in_size: None, len });
                Goes::User(ToUser::IoOut { port })
            }
            Handled::IoIn { port, size, len } => {
                let in_size = Some(size);
                self.stash_load(size, Pending::Io { in_size, len });
                Goes::User(ToUser::IoIn { port })
            }
            Handled::Exit(e) => to_user(e),
        })
    }

    /// A notify VM exit L0 has handled: counted, and userspace sees it when
    /// it asked for every one (USER) or the guest context is invalid.
    fn notify_exit(&mut self, mut exit: NotifyExit, in_l2: bool) -> Goes {
        if in_l2 {
            exit.level = GuestLevel::L2;
        }
        self.notify_exits += 1;
        let user = self.settings.notify.is_some_and(|n| n.user);
        if user || exit.context_invalid {
            to_user(VcpuExit::Notify(exit))
        } else {
            Goes::L0
        }
    }
}
