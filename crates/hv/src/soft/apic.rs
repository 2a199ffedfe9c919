//! The local APIC of a soft vCPU, where KVM keeps its in-kernel LAPIC: the
//! register page (through MMIO emulation), IA32_APIC_BASE and
//! IA32_TSC_DEADLINE, and interrupt delivery into the guest.
//!
//! Before every VM entry L0 brings the APIC's timer up to the vCPU's virtual
//! time and, when an interrupt is deliverable and the guest can take it
//! (RFLAGS.IF = 1, no STI or MOV-SS shadow, nothing else being injected),
//! injects it as an external interrupt through the VM-entry
//! interruption-information field; when the guest cannot take it yet,
//! interrupt-window exiting brings the CPU back as soon as it can (SDM Vol.
//! 3C §26.7.5). The VMX-preemption timer, armed for the APIC timer's next
//! deadline, makes the CPU leave the guest when the timer fires, and a HLT
//! with interrupts enabled and an interrupt to come is entered as the HLT
//! activity state, so the soft CPU skips virtual time to that deadline.

use super::emulate::LocalDevices;
use super::time::earliest;
use crate::hw::{HwError, VmxHardware};
use lapic::{Lapic, LapicConfig, TimerClock, MSR_APIC_BASE, MSR_TSC_DEADLINE};
use softcpu::CpuModel;
use x86::vmx::{activity, field as f, interruptibility, intr_info, pin, proc};

/// The clocks of a soft CPU model (its CPUID.15H): the APIC timer's input
/// and the rate at which virtual time (the TSC) turns into nanoseconds.
pub(crate) fn clock_of(model: &CpuModel) -> TimerClock {
    TimerClock {
        crystal_hz: model.crystal_hz,
        tsc_ratio_numerator: model.tsc_ratio_numerator,
        tsc_ratio_denominator: model.tsc_ratio_denominator,
    }
}

/// A soft vCPU's local APIC and its wiring.
#[derive(Debug)]
pub(crate) struct ApicWiring {
    lapic: Lapic,
}

/// The APIC's register page at a moment of virtual time, for MMIO
/// emulation.
pub(crate) struct ApicAt<'a> {
    apic: &'a mut ApicWiring,
    now: u64,
}

impl LocalDevices for ApicAt<'_> {
    fn claims(&self, addr: u64) -> bool {
        self.apic.claims(addr)
    }

    fn load(&mut self, addr: u64, size: usize) -> u64 {
        let lapic = &mut self.apic.lapic;
        let offset = lapic.page_offset(addr).unwrap_or(addr);
        let mut b = [0u8; 8];
        lapic.mmio_read(offset, &mut b[..size.min(8)], self.now);
        u64::from_le_bytes(b)
    }

    fn store(&mut self, addr: u64, size: usize, value: u64) {
        let lapic = &mut self.apic.lapic;
        let offset = lapic.page_offset(addr).unwrap_or(addr);
        lapic.mmio_write(offset, &value.to_le_bytes()[..size.min(8)], self.now);
    }
}

/// What an APIC-related exit became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApicExit {
    /// Handled: enter the guest again.
    Resume,
    /// A write to IA32_APIC_BASE the APIC refuses: inject #GP(0).
    GeneralProtection,
}

impl ApicWiring {
    /// The APIC of the bootstrap processor of a CPU whose clocks are
    /// `clock` (CPUID.15H; see [`clock_of`]).
    pub(crate) fn new(clock: TimerClock) -> Self {
        ApicWiring {
            lapic: Lapic::new(LapicConfig {
                clock,
                ..LapicConfig::default()
            }),
        }
    }

    /// Whether the guest-physical address lies in the APIC's register page.
    pub(crate) fn claims(&self, gpa: u64) -> bool {
        self.lapic.claims(gpa)
    }

    /// The APIC as one of L0's devices for MMIO emulation, at virtual
    /// time `now`.
    pub(crate) fn at(&mut self, now: u64) -> ApicAt<'_> {
        ApicAt { apic: self, now }
    }

    /// RDMSR/WRMSR of IA32_APIC_BASE or IA32_TSC_DEADLINE; `None` for other MSRs.
    pub(crate) fn msr(
        &mut self,
        hw: &mut impl VmxHardware,
        write: bool,
        now: u64,
    ) -> Option<ApicExit> {
        let mut g = hw.gprs();
        let index = g[1] as u32;
        if index != MSR_APIC_BASE && index != MSR_TSC_DEADLINE {
            return None;
        }
        let value = (g[2] << 32) | (g[0] & 0xFFFF_FFFF);
        if write {
            if index == MSR_APIC_BASE {
                if self.lapic.write_apic_base(value).is_err() {
                    return Some(ApicExit::GeneralProtection);
                }
            } else {
                self.lapic.write_tsc_deadline(value, now);
            }
        } else {
            let v = if index == MSR_APIC_BASE {
                self.lapic.apic_base()
            } else {
                self.lapic.tsc_deadline()
            };
            g[0] = v & 0xFFFF_FFFF;
            g[2] = v >> 32;
            hw.set_gprs(&g);
        }
        Some(ApicExit::Resume)
    }

    /// Whether a HLT should wait for an interrupt rather than end the run
    /// (`Lapic::halt_wakeup`).
    /// `userspace` is the vCPU's exit deadline (`Vcpu::set_exit_deadline`):
    /// a device of the VMM will raise a line then.
    pub(crate) fn hlt_waits(
        &mut self,
        hw: &impl VmxHardware,
        now: u64,
        userspace: Option<u64>,
    ) -> Result<bool, HwError> {
        let rflags = hw.vmread(f::GUEST_RFLAGS)?;
        let enabled = rflags & x86::rflags::IF != 0;
        Ok(self.lapic.halt_wakeup(now, enabled).is_some() || (enabled && userspace.is_some()))
    }

    /// Whether an interrupt is deliverable at virtual time `now`.
    pub(crate) fn has_pending(&mut self, now: u64) -> bool {
        self.lapic.advance(now);
        self.lapic.pending_vector().is_some()
    }

    /// An interrupt message from the platform (an I/O APIC): into IRR.
    pub(crate) fn accept(&mut self, vector: u8, level: bool) {
        self.lapic.accept_interrupt(vector, level);
    }

    /// Acknowledges the highest pending interrupt (INTA): it moves to
    /// in-service; its vector.
    pub(crate) fn acknowledge(&mut self) -> u8 {
        self.lapic.acknowledge()
    }

    /// Interrupt delivery and the timer, just before a VM entry at virtual
    /// time `now`. With `inject` false a deliverable interrupt only asks for
    /// an interrupt window (an entry that may still fail must not take an
    /// interrupt out of the APIC). `other` is the next deadline besides the
    /// APIC timer's that the processor's preemption timer must bring L0
    /// back for: userspace's, or L2's own preemption timer.
    pub(crate) fn before_entry(
        &mut self,
        hw: &mut impl VmxHardware,
        now: u64,
        inject: bool,
        other: Option<u64>,
    ) -> Result<(), HwError> {
        self.lapic.advance(now);
        let mut procv = hw.vmread(f::CPU_BASED_VM_EXEC_CONTROL)? as u32;
        procv &= !proc::INTR_WINDOW_EXITING;
        if self.lapic.pending_vector().is_some() {
            let queued = hw.vmread(f::VM_ENTRY_INTR_INFO)? as u32 & intr_info::VALID != 0;
            let rflags = hw.vmread(f::GUEST_RFLAGS)?;
            let shadow = hw.vmread(f::GUEST_INTERRUPTIBILITY_INFO)? as u32
                & (interruptibility::STI | interruptibility::MOV_SS);
            if inject && !queued && rflags & x86::rflags::IF != 0 && shadow == 0 {
                let vector = self.lapic.acknowledge();
                let info = intr_info::make(vector, intr_info::TYPE_EXT_INTR, false);
                hw.vmwrite(f::VM_ENTRY_INTR_INFO, u64::from(info))?;
                // Delivery wakes a halted CPU (SDM Vol. 3C §26.6.2).
                hw.vmwrite(f::GUEST_ACTIVITY_STATE, u64::from(activity::ACTIVE))?;
            } else {
                procv |= proc::INTR_WINDOW_EXITING;
            }
        }
        hw.vmwrite(f::CPU_BASED_VM_EXEC_CONTROL, u64::from(procv))?;
        // The preemption timer counts TSC cycles here (IA32_VMX_MISC[4:0] = 0);
        // a deadline beyond its 32 bits takes a second round.
        let mut pinv = hw.vmread(f::PIN_BASED_VM_EXEC_CONTROL)? as u32;
        let deadline = earliest(self.lapic.next_deadline(), other);
        match deadline {
            Some(deadline) => {
                pinv |= pin::PREEMPTION_TIMER;
                let left = deadline.saturating_sub(now).min(u64::from(u32::MAX));
                hw.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, left)?;
            }
            None => pinv &= !pin::PREEMPTION_TIMER,
        }
        hw.vmwrite(f::PIN_BASED_VM_EXEC_CONTROL, u64::from(pinv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_model_runs_at_the_default_clock() {
        // kvm's userspace APIC runs at `TimerClock::default()`: the same
        // rate as the soft CPU it stands in for.
        assert_eq!(clock_of(&CpuModel::default()), TimerClock::default());
    }
}
