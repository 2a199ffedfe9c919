//! The hook before a VM entry: what L0 does first (an injected shutdown,
//! an exit request, interrupts for L1 or the guest, the APIC timer), and
//! which VMCS it enters and how — or that it does not enter, when an
//! instruction emulated for MMIO took a VM exit that is still to handle.

use super::SoftVcpu;
use crate::hw::{HwError, VmxHardware};
use crate::soft::time::{earliest, L0_EXIT_CYCLES};
use accel::{GuestLevel, VcpuExit};
use softcpu::SoftCpu;
use x86::vmx::field as f;

/// How the next VM entry is made.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// The processor enters the guest; `false` when the exit to handle
    /// came from an instruction emulated for MMIO.
    pub enter: bool,
    /// L1's VMLAUNCH/VMRESUME of a fresh vmcs02 awaits the processor's
    /// verdict: a failure is L1's, not L0's.
    pub first_of_vmcs02: bool,
    /// vmcs02 is current: L2 runs.
    pub in_l2: bool,
    /// VMRESUME rather than VMLAUNCH.
    pub resume: bool,
}

/// What the hook before entry decided.
#[derive(Debug)]
pub(super) enum Next {
    /// Enter the guest.
    Enter(Entry),
    /// Return this to userspace without entering.
    User(VcpuExit<'static>),
}

impl SoftVcpu {
    /// The hook before every VM entry.
    pub(super) fn before_entry(&mut self, cpu: &mut SoftCpu) -> Result<Next, HwError> {
        let first_of_vmcs02 = self.nested.as_ref().is_some_and(|n| n.entering());
        if self.triple_fault_pending && !first_of_vmcs02 {
            self.triple_fault_pending = false;
            match self.nested.as_mut().filter(|n| n.in_l2()) {
                // A shutdown of L2 is L1's business: a TRIPLE_FAULT exit
                // (once L2 has entered at all).
                Some(n) => n.triple_fault_exit(cpu)?,
                None => return Ok(Next::User(VcpuExit::Shutdown)),
            }
        }
        if self.nested.as_mut().is_some_and(|n| n.take_abort()) {
            // A VMX abort: L1 is in the VMX-abort shutdown state (SDM Vol.
            // 3C §28.7), which only a reset ends.
            return Ok(Next::User(VcpuExit::Shutdown));
        }
        if self.control.take_exit_request() {
            return Ok(Next::User(VcpuExit::Interrupted));
        }
        let now = cpu.cycles();
        if self.exit_deadline.is_some_and(|d| now >= d) {
            // The devices read the clock of the exit: make it now's.
            self.exit_deadline = None;
            self.control.note_exit_cycles(now);
            return Ok(Next::User(VcpuExit::Interrupted));
        }
        self.nested_interrupts(cpu, now)?;
        // L2's own preemption timer, when L1 activated it, brings L0 back
        // when it expires (and the exit goes to L1).
        let l2_timer = match self.nested.as_ref() {
            Some(n) => n.l2_timer_left(cpu).map(|left| now.saturating_add(left)),
            None => None,
        };
        let deadline = earliest(self.exit_deadline, l2_timer);
        self.apic
            .before_entry(cpu, now, !first_of_vmcs02, deadline)?;
        self.exit_after_first_entry(cpu, now)?;
        let in_l2 = match &self.nested {
            Some(n) if n.in_l2() => {
                n.keep_l1_windows(cpu)?;
                true
            }
            _ => false,
        };
        let resume = match &self.nested {
            Some(n) if in_l2 => n.vmcs02_launched(),
            _ => self.launched,
        };
        if self.debug_before_entry(cpu)? {
            return Ok(Next::User(VcpuExit::Debug));
        }
        Ok(Next::Enter(Entry {
            enter: true,
            first_of_vmcs02,
            in_l2,
            resume,
        }))
    }

    /// No entry: the exit an emulated instruction took is handled as it is.
    pub(super) fn no_entry(&self) -> Entry {
        Entry {
            enter: false,
            first_of_vmcs02: false,
            in_l2: self.nested.as_ref().is_some_and(|n| n.in_l2()),
            resume: true,
        }
    }

    /// VMLAUNCH or VMRESUME, timed; returns once the guest exited (or the
    /// entry failed). Without an entry only the clocks are read.
    pub(super) fn enter(&mut self, cpu: &mut SoftCpu, entry: &Entry) -> Result<(), HwError> {
        self.control.entering_guest();
        if entry.enter {
            let level = if entry.in_l2 {
                GuestLevel::L2
            } else {
                GuestLevel::L1
            };
            self.faults.before_entry(cpu, level);
        }
        let entered = if !entry.enter {
            Ok(())
        } else if entry.resume {
            VmxHardware::vmresume(cpu)
        } else {
            VmxHardware::vmlaunch(cpu)
        };
        if entry.enter {
            self.faults.after_exit(cpu);
        }
        let in_guest = self.control.back_in_l0();
        // A debugger's monitor-trap exits cost the guest nothing.
        if entry.enter && !self.debugger_exit(cpu) {
            self.control.count_stretch(in_guest);
            cpu.advance_time(L0_EXIT_CYCLES);
            if let Some(pause) = self.pacer.as_mut().and_then(|p| p.pace(cpu)) {
                std::thread::sleep(pause);
            }
        }
        self.control.note_exit_cycles(cpu.cycles());
        self.longest_in_guest = self.longest_in_guest.max(in_guest);
        entered
    }

    /// An interrupt for L1 that arrives while L2 runs: when L1 intercepts
    /// external interrupts, L2 exits to L1 (acknowledging the interrupt if
    /// L1 asked); otherwise L0's usual delivery injects it into L2.
    fn nested_interrupts(&mut self, cpu: &mut SoftCpu, now: u64) -> Result<(), HwError> {
        let Some(n) = self.nested.as_mut() else {
            return Ok(());
        };
        let Some(ack) = n.l1_takes_interrupts() else {
            return Ok(());
        };
        if !self.apic.has_pending(now) {
            return Ok(());
        }
        if n.entering() || !n.interrupt_exit_allowed(&*cpu)? {
            return Ok(());
        }
        let vector = ack.then(|| self.apic.acknowledge());
        n.interrupt_exit(cpu, vector)?;
        self.reflected += 1;
        Ok(())
    }

    /// An interrupt for L1 pending while L1's VMLAUNCH/VMRESUME enters L2,
    /// with L1 intercepting them: VM entry completes before the interrupt
    /// makes L2 exit (SDM Vol. 3C §27.7), so a zero preemption timer brings
    /// the CPU back right after the entry, before L2's first instruction,
    /// and the next round of the loop makes the exit to L1.
    fn exit_after_first_entry(&mut self, cpu: &mut SoftCpu, now: u64) -> Result<(), HwError> {
        let Some(n) = self.nested.as_ref() else {
            return Ok(());
        };
        if !n.entering() || n.l1_takes_interrupts().is_none() || !self.apic.has_pending(now) {
            return Ok(());
        }
        let pinv = VmxHardware::vmread(&*cpu, f::PIN_BASED_VM_EXEC_CONTROL)?;
        let timer = u64::from(x86::vmx::pin::PREEMPTION_TIMER);
        VmxHardware::vmwrite(cpu, f::PIN_BASED_VM_EXEC_CONTROL, pinv | timer)?;
        VmxHardware::vmwrite(cpu, f::VMX_PREEMPTION_TIMER_VALUE, 0)
    }
}
