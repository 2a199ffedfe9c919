//! VM exits: saving guest state (SDM Vol. 3C §28.3) and recording exit
//! information (§28.2), then returning to root operation.

use super::entry::{seg_fields, LDTR_FIELDS, TR_FIELDS};
use crate::cpu::SoftCpu;
use crate::fault::ExitInfo;
use x86::cr::EFER_LMA;
use x86::vmx::{activity, entry_ctl, exit_ctl, field as f, interruptibility, intr_info};

impl SoftCpu {
    /// Performs a VM exit with `info`.
    pub(crate) fn vm_exit(&mut self, info: ExitInfo) {
        self.materialize_flags();
        let vectoring = self.vectoring.take();
        let v = &mut self.vmx.vmcs;
        v.set(f::VM_EXIT_REASON, u64::from(info.reason));
        v.set(f::EXIT_QUALIFICATION, info.qualification);
        v.set(f::VM_EXIT_INSTRUCTION_LEN, u64::from(info.instruction_len));
        v.set(f::VM_EXIT_INTR_INFO, u64::from(info.intr_info));
        v.set(f::VM_EXIT_INTR_ERROR_CODE, u64::from(info.intr_error_code));
        v.set(f::GUEST_LINEAR_ADDRESS, info.guest_linear);
        v.set(f::GUEST_PHYSICAL_ADDRESS, info.guest_physical);
        v.set(f::VMX_INSTRUCTION_INFO, u64::from(info.instruction_info));
        match vectoring {
            Some(ev) => {
                v.set(f::IDT_VECTORING_INFO, u64::from(ev.vmx_info()));
                v.set(
                    f::IDT_VECTORING_ERROR_CODE,
                    u64::from(ev.error_code.unwrap_or(0)),
                );
                if ev.error_code.is_none() {
                    v.set(f::IDT_VECTORING_ERROR_CODE, 0);
                }
                if matches!(
                    (ev.vmx_info() >> intr_info::TYPE_SHIFT) & 7,
                    intr_info::TYPE_SW_INTR
                        | intr_info::TYPE_SW_EXCEPTION
                        | intr_info::TYPE_PRIV_SW_EXCEPTION
                ) {
                    v.set(f::VM_EXIT_INSTRUCTION_LEN, u64::from(ev.instruction_len));
                }
            }
            None => v.set(f::IDT_VECTORING_INFO, 0),
        }
        self.save_guest_state(info.reason == x86::vmx::exit_reason::TRIPLE_FAULT);
    }

    /// Saves the guest state into the VMCS and leaves non-root operation:
    /// the guest-state half of a VM exit (SDM §28.3), also the end of an
    /// instruction emulated for MMIO (`crate::mmio`). `shutdown` saves the
    /// shutdown activity state (a triple fault).
    pub(crate) fn save_guest_state(&mut self, shutdown: bool) {
        self.materialize_flags();
        let s = self.s.clone();
        let shadow = self.shadow;
        let nmi = self.nmi_blocked;
        let halted = self.halted;
        let exit_ctl_bits = self.vmx.ctl.exit;
        // Debug traps not delivered (SDM Vol. 3C §28.3.4): those an MTF VM
        // exit or this exit came before, or those MOV-SS blocking holds;
        // from here on they live in the field alone.
        let held = std::mem::take(&mut self.debug.held);
        let deferred = std::mem::take(&mut self.debug.deferred);
        let pending = if held != 0 {
            held
        } else if shadow.mov_ss {
            deferred
        } else {
            0
        };
        let v = &mut self.vmx.vmcs;
        v.set(
            f::GUEST_PENDING_DBG_EXCEPTIONS,
            crate::debug::pending_field(pending),
        );
        // Guest state (SDM §28.3.1–§28.3.4).
        for (i, (sel, base, limit, ar)) in seg_fields().iter().enumerate() {
            let g = &s.seg[i];
            v.set(*sel, u64::from(g.selector));
            v.set(*base, g.base);
            v.set(*limit, u64::from(g.limit));
            v.set(*ar, u64::from(g.ar));
        }
        for (fields, g) in [(LDTR_FIELDS, &s.ldtr), (TR_FIELDS, &s.tr)] {
            v.set(fields.0, u64::from(g.selector));
            v.set(fields.1, g.base);
            v.set(fields.2, u64::from(g.limit));
            v.set(fields.3, u64::from(g.ar));
        }
        v.set(f::GUEST_GDTR_BASE, s.gdtr.base);
        v.set(f::GUEST_GDTR_LIMIT, u64::from(s.gdtr.limit));
        v.set(f::GUEST_IDTR_BASE, s.idtr.base);
        v.set(f::GUEST_IDTR_LIMIT, u64::from(s.idtr.limit));
        v.set(f::GUEST_CR0, s.cr0);
        v.set(f::GUEST_CR3, s.cr3);
        v.set(f::GUEST_CR4, s.cr4);
        v.set(f::GUEST_DR7, s.dr[7]);
        v.set(f::GUEST_RSP, s.gpr[4]);
        v.set(f::GUEST_RIP, s.rip);
        v.set(f::GUEST_RFLAGS, s.rflags);
        v.set(f::GUEST_SYSENTER_CS, s.msr.sysenter_cs);
        v.set(f::GUEST_SYSENTER_ESP, s.msr.sysenter_esp);
        v.set(f::GUEST_SYSENTER_EIP, s.msr.sysenter_eip);
        if exit_ctl_bits & exit_ctl::SAVE_IA32_EFER != 0 {
            v.set(f::GUEST_IA32_EFER, s.efer);
        }
        if exit_ctl_bits & exit_ctl::SAVE_IA32_PAT != 0 {
            v.set(f::GUEST_IA32_PAT, s.msr.pat);
        }
        if exit_ctl_bits & exit_ctl::SAVE_DEBUG_CONTROLS != 0 {
            v.set(f::GUEST_IA32_DEBUGCTL, s.msr.debugctl);
        }
        // The IA-32e mode guest entry control receives EFER.LMA (SDM Vol. 3C §28.2,
        // updating VM-entry control fields).
        let entry = v.get(f::VM_ENTRY_CONTROLS);
        let entry = if s.efer & EFER_LMA != 0 {
            entry | u64::from(entry_ctl::IA32E_MODE_GUEST)
        } else {
            entry & !u64::from(entry_ctl::IA32E_MODE_GUEST)
        };
        v.set(f::VM_ENTRY_CONTROLS, entry);
        let mut intr = 0;
        if shadow.sti {
            intr |= interruptibility::STI;
        }
        if shadow.mov_ss {
            intr |= interruptibility::MOV_SS;
        }
        if nmi {
            intr |= interruptibility::NMI;
        }
        v.set(f::GUEST_INTERRUPTIBILITY_INFO, u64::from(intr));
        let act = if shutdown {
            activity::SHUTDOWN
        } else if halted {
            activity::HLT
        } else {
            activity::ACTIVE
        };
        v.set(f::GUEST_ACTIVITY_STATE, u64::from(act));
        // VM exits clear the valid bit of the VM-entry interruption information (SDM Vol. 3C §28.2).
        let entry_info = v.get(f::VM_ENTRY_INTR_INFO) & !u64::from(intr_info::VALID);
        v.set(f::VM_ENTRY_INTR_INFO, entry_info);
        if let Some(deadline) = self.preemption_deadline.take() {
            if exit_ctl_bits & exit_ctl::SAVE_PREEMPTION_TIMER != 0 {
                let left = deadline
                    .saturating_sub(self.cycles)
                    .min(u64::from(u32::MAX));
                self.vmx.vmcs.set(f::VMX_PREEMPTION_TIMER_VALUE, left);
            }
        }
        self.vmx.non_root = false;
        self.injection = None;
        self.tlb.flush();
    }
}
