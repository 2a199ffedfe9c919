//! VM entry: control checks (SDM Vol. 3C §27.2.1), guest-state checks
//! (§27.3.1), loading guest state (§27.3.2) and event injection (§27.6).

use super::caps;
use super::vmcs::LaunchState;
use crate::cpu::SoftCpu;
use crate::event::{Event, EventKind};
use crate::state::{Segment, TableReg};
use x86::cr::*;
use x86::segment::{AR_DB, AR_L, AR_P, AR_S, AR_UNUSABLE};
use x86::vmx::{
    entry_ctl, exit_reason, field as f, instruction_error as ie, intr_info, proc, proc2,
};

/// A VMLAUNCH/VMRESUME that failed before entering the guest (VMfailValid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmFail {
    /// VM-instruction error number (SDM Vol. 3C §31.4).
    pub error: u32,
}

/// The guest segment registers' (selector, base, limit, access rights)
/// fields, in the order ES, CS, SS, DS, FS, GS.
pub const SEG_FIELDS: [(u32, u32, u32, u32); 6] = [
    (
        f::GUEST_ES_SELECTOR,
        f::GUEST_ES_BASE,
        f::GUEST_ES_LIMIT,
        f::GUEST_ES_AR_BYTES,
    ),
    (
        f::GUEST_CS_SELECTOR,
        f::GUEST_CS_BASE,
        f::GUEST_CS_LIMIT,
        f::GUEST_CS_AR_BYTES,
    ),
    (
        f::GUEST_SS_SELECTOR,
        f::GUEST_SS_BASE,
        f::GUEST_SS_LIMIT,
        f::GUEST_SS_AR_BYTES,
    ),
    (
        f::GUEST_DS_SELECTOR,
        f::GUEST_DS_BASE,
        f::GUEST_DS_LIMIT,
        f::GUEST_DS_AR_BYTES,
    ),
    (
        f::GUEST_FS_SELECTOR,
        f::GUEST_FS_BASE,
        f::GUEST_FS_LIMIT,
        f::GUEST_FS_AR_BYTES,
    ),
    (
        f::GUEST_GS_SELECTOR,
        f::GUEST_GS_BASE,
        f::GUEST_GS_LIMIT,
        f::GUEST_GS_AR_BYTES,
    ),
];

/// Guest segment fields in `SEG_FIELDS` order, then LDTR and TR.
pub const LDTR_FIELDS: (u32, u32, u32, u32) = (
    f::GUEST_LDTR_SELECTOR,
    f::GUEST_LDTR_BASE,
    f::GUEST_LDTR_LIMIT,
    f::GUEST_LDTR_AR_BYTES,
);
/// TR's fields, as `LDTR_FIELDS`.
pub const TR_FIELDS: (u32, u32, u32, u32) = (
    f::GUEST_TR_SELECTOR,
    f::GUEST_TR_BASE,
    f::GUEST_TR_LIMIT,
    f::GUEST_TR_AR_BYTES,
);

pub(crate) fn seg_fields() -> &'static [(u32, u32, u32, u32); 6] {
    &SEG_FIELDS
}

/// The access-rights checks every usable segment register passes at VM entry
/// (SDM Vol. 3C §27.3.1.2): reserved bits 11:8 and 31:17 are 0, and G
/// agrees with the limit — G = 0 when any of limit bits 11:0 is 0, G = 1
/// when any of bits 31:20 is 1.
fn ar_limit_consistent(ar: u32, limit: u32) -> bool {
    let g = ar & x86::segment::AR_G != 0;
    ar & 0xF00 == 0
        && ar & 0xFFFE_0000 == 0
        && (limit & 0xFFF == 0xFFF || !g)
        && (limit >> 20 == 0 || g)
}

fn fits(value: u32, default1: u32, allowed1: u32) -> bool {
    value & default1 == default1 && value & !allowed1 == 0
}

impl SoftCpu {
    /// VMLAUNCH of the current VMCS: runs the guest until a VM exit. `Ok` means
    /// a VM exit happened (its information is in the VMCS, including a
    /// VM-entry failure with exit-reason bit 31); `Err` is VMfailValid.
    pub fn vmlaunch(&mut self) -> Result<(), VmFail> {
        if self.vmx.vmcs.launch_state != LaunchState::Clear {
            return self.vmfail(ie::VMLAUNCH_NONCLEAR);
        }
        self.vm_entry(true)
    }

    /// VMRESUME of the current VMCS; see [`SoftCpu::vmlaunch`].
    pub fn vmresume(&mut self) -> Result<(), VmFail> {
        if self.vmx.vmcs.launch_state != LaunchState::Launched {
            return self.vmfail(ie::VMRESUME_NONLAUNCHED);
        }
        self.vm_entry(false)
    }

    fn vmfail(&mut self, error: u32) -> Result<(), VmFail> {
        self.vmx.vmcs.set(f::VM_INSTRUCTION_ERROR, u64::from(error));
        Err(VmFail { error })
    }

    fn vm_entry(&mut self, launch: bool) -> Result<(), VmFail> {
        if self.powered_off || self.power_cut() {
            // No power, no instruction: see `SoftCpu::powered_off`.
            self.powered_off = true;
            return Ok(());
        }
        if !self.controls_valid() {
            return self.vmfail(ie::ENTRY_INVALID_CONTROL);
        }
        self.vmx.load_controls();
        if let Err(qualification) = self.guest_state_valid() {
            // VM-entry failure due to invalid guest state (SDM §27.8): an exit
            // with bit 31 set; the processor stays in root operation.
            let v = &mut self.vmx.vmcs;
            v.set(
                f::VM_EXIT_REASON,
                u64::from(exit_reason::ENTRY_FAILURE) | u64::from(exit_reason::INVALID_GUEST_STATE),
            );
            v.set(f::EXIT_QUALIFICATION, qualification);
            return Ok(());
        }
        // Only an entry that passed the guest-state checks launches the
        // VMCS (SDM Vol. 3C §27.8, Vol. 2 VMLAUNCH: "launch state of VMCS
        // ← launched" follows the checks and the MSR loads).
        if launch {
            self.vmx.vmcs.launch_state = LaunchState::Launched;
        }
        self.load_guest_state();
        // "An IRET just unblocked NMIs" is state of the instruction stream;
        // it does not survive a VM exit and entry.
        self.iret_unblocked_nmi = false;
        self.update_debug_state();
        self.vmx.non_root = true;
        self.tlb.flush();
        self.run_non_root();
        Ok(())
    }

    /// Checks on VM-execution, VM-exit and VM-entry control fields (SDM §27.2.1).
    fn controls_valid(&self) -> bool {
        let v = &self.vmx.vmcs;
        let pin = v.get32(f::PIN_BASED_VM_EXEC_CONTROL);
        let pr = v.get32(f::CPU_BASED_VM_EXEC_CONTROL);
        let p2 = if pr & proc::ACTIVATE_SECONDARY_CONTROLS != 0 {
            v.get32(f::SECONDARY_VM_EXEC_CONTROL)
        } else {
            0
        };
        let exit = v.get32(f::VM_EXIT_CONTROLS);
        let entry = v.get32(f::VM_ENTRY_CONTROLS);
        if !fits(pin, caps::PIN_DEFAULT1, caps::PIN_ALLOWED1)
            || !fits(pr, caps::PROC_DEFAULT1, caps::PROC_ALLOWED1)
            || !fits(p2, 0, caps::PROC2_ALLOWED1)
            || !fits(exit, caps::EXIT_DEFAULT1, caps::EXIT_ALLOWED1)
            || !fits(entry, caps::ENTRY_DEFAULT1, caps::ENTRY_ALLOWED1)
        {
            return false;
        }
        if v.get32(f::CR3_TARGET_COUNT) > 4 {
            return false;
        }
        let mem_size = self.mem.size();
        let page_ok = |a: u64| a & 0xFFF == 0 && a < mem_size;
        if pr & proc::USE_IO_BITMAPS != 0
            && (!page_ok(v.get(f::IO_BITMAP_A)) || !page_ok(v.get(f::IO_BITMAP_B)))
        {
            return false;
        }
        if pr & proc::USE_MSR_BITMAPS != 0 && !page_ok(v.get(f::MSR_BITMAP)) {
            return false;
        }
        if pr & proc::USE_TPR_SHADOW != 0
            && !super::tpr::entry_valid(
                v.get(f::VIRTUAL_APIC_PAGE_ADDR),
                v.get32(f::TPR_THRESHOLD),
                crate::cpuid::PHYS_ADDR_BITS,
                |page| self.phys_read(page + super::tpr::VTPR_OFFSET, 4) as u32,
            )
        {
            return false;
        }
        if p2 & proc2::ENABLE_EPT != 0 {
            // Against this processor's IA32_VMX_EPT_VPID_CAP, as L0 checks
            // vmcs12's against L1's.
            let cap = caps::capability_msr(x86::msr::VMX_EPT_VPID_CAP).unwrap_or(0);
            let eptp = v.get(f::EPT_POINTER);
            if !x86::vmx::eptp_valid(eptp, cap, crate::cpuid::PHYS_ADDR_BITS) {
                return false;
            }
        }
        if p2 & proc2::UNRESTRICTED_GUEST != 0 && p2 & proc2::ENABLE_EPT == 0 {
            return false;
        }
        if pin & x86::vmx::pin::VIRTUAL_NMIS != 0 && pin & x86::vmx::pin::NMI_EXITING == 0 {
            return false;
        }
        // §27.2.1.2: the timer's value is saved only when the timer runs.
        if pin & x86::vmx::pin::PREEMPTION_TIMER == 0
            && exit & x86::vmx::exit_ctl::SAVE_PREEMPTION_TIMER != 0
        {
            return false;
        }
        // Event injection field (SDM §27.2.1.3): one rule with L0's checks
        // on vmcs12.
        let unrestricted = p2 & proc2::UNRESTRICTED_GUEST != 0;
        intr_info::injection_valid(
            v.get32(f::VM_ENTRY_INTR_INFO),
            v.get32(f::VM_ENTRY_EXCEPTION_ERROR_CODE),
            v.get32(f::VM_ENTRY_INSTRUCTION_LEN),
            !unrestricted || v.get(f::GUEST_CR0) & CR0_PE != 0,
        )
    }

    /// Checks on the guest-state area (SDM §27.3.1). The error value is the
    /// exit qualification reported with the failure (0: no further detail).
    fn guest_state_valid(&self) -> Result<(), u64> {
        let v = &self.vmx.vmcs;
        let entry = self.vmx.ctl.entry;
        let ia32e = entry & entry_ctl::IA32E_MODE_GUEST != 0;
        let unrestricted = self.vmx.proc2(proc2::UNRESTRICTED_GUEST)
            || (self.vmx.ctl.proc & proc::ACTIVATE_SECONDARY_CONTROLS != 0
                && self.vmx.ctl.proc2 & proc2::UNRESTRICTED_GUEST != 0);
        let cr0 = v.get(f::GUEST_CR0);
        let cr4 = v.get(f::GUEST_CR4);
        let mut fixed0 = caps::CR0_FIXED0;
        if unrestricted {
            fixed0 &= !(CR0_PE | CR0_PG);
        }
        let bad = Err(0);
        if cr0 & fixed0 != fixed0 || cr0 >> 32 != 0 || (cr0 & CR0_PG != 0 && cr0 & CR0_PE == 0) {
            return bad;
        }
        if cr4 & caps::CR4_FIXED0 != caps::CR4_FIXED0 || cr4 & !0x27FF != 0 {
            return bad;
        }
        if ia32e && (cr0 & CR0_PG == 0 || cr4 & CR4_PAE == 0) {
            return bad;
        }
        // CR3 bits beyond the physical-address width are reserved (SDM Vol.
        // 3C §27.3.1.1; CPUID.80000008H:EAX[7:0] here).
        if v.get(f::GUEST_CR3) >> crate::cpuid::PHYS_ADDR_BITS != 0 {
            return bad;
        }
        if entry & entry_ctl::LOAD_IA32_EFER != 0 {
            let efer = v.get(f::GUEST_IA32_EFER);
            if efer & !(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE) != 0
                || (efer & EFER_LMA != 0) != ia32e
                || (cr0 & CR0_PG != 0 && (efer & EFER_LME != 0) != ia32e)
            {
                return bad;
            }
        }
        let rflags = v.get(f::GUEST_RFLAGS);
        if rflags & x86::rflags::FIXED1 == 0
            || rflags & !(x86::rflags::WRITABLE | x86::rflags::FIXED1) != 0
        {
            return bad;
        }
        if rflags & x86::rflags::VM != 0 && (ia32e || cr0 & CR0_PE == 0) {
            return bad;
        }
        let cs_ar = v.get32(f::GUEST_CS_AR_BYTES);
        let ss_ar = v.get32(f::GUEST_SS_AR_BYTES);
        let v86 = rflags & x86::rflags::VM != 0;
        let dpl = x86::segment::dpl;
        if !v86 {
            let ty = cs_ar & 0xF;
            let code_ok = matches!(ty, 9 | 11 | 13 | 15) || (unrestricted && ty == 3);
            if !code_ok || cs_ar & AR_S == 0 || cs_ar & AR_P == 0 || cs_ar & AR_UNUSABLE != 0 {
                return bad;
            }
            if ia32e && cs_ar & AR_L != 0 && cs_ar & AR_DB != 0 {
                return bad;
            }
            // SS.RPL = CS.RPL without unrestricted guest.
            let cs_sel = v.get(f::GUEST_CS_SELECTOR) as u16;
            let ss_sel = v.get(f::GUEST_SS_SELECTOR) as u16;
            if !unrestricted && (ss_sel & 3) != (cs_sel & 3) {
                return bad;
            }
            // CS.DPL: 0 for a data-segment CS (type 3, unrestricted guest
            // only), = SS.DPL for non-conforming code, <= SS.DPL for
            // conforming code.
            let cs_dpl_ok = match ty {
                3 => dpl(cs_ar) == 0,
                9 | 11 => dpl(cs_ar) == dpl(ss_ar),
                _ => dpl(cs_ar) <= dpl(ss_ar),
            };
            if !cs_dpl_ok {
                return bad;
            }
            // SS.DPL: = SS.RPL without unrestricted guest; 0 when CS is a
            // data segment or the guest will be in real-address mode
            // (CR0.PE = 0), which runs at CPL 0.
            if !unrestricted && dpl(ss_ar) != (ss_sel & 3) as u8 {
                return bad;
            }
            if (ty == 3 || cr0 & CR0_PE == 0) && dpl(ss_ar) != 0 {
                return bad;
            }
            if ss_ar & AR_UNUSABLE == 0 {
                let sty = ss_ar & 0xF;
                if (sty != 3 && sty != 7) || ss_ar & AR_S == 0 || ss_ar & AR_P == 0 {
                    return bad;
                }
            }
            for (sel_f, _, _, ar_f) in [SEG_FIELDS[0], SEG_FIELDS[3], SEG_FIELDS[4], SEG_FIELDS[5]]
            {
                let ar = v.get32(ar_f);
                if ar & AR_UNUSABLE != 0 {
                    continue;
                }
                let ty = ar & 0xF;
                if ty & 1 == 0 || ar & AR_S == 0 || ar & AR_P == 0 || (ty & 8 != 0 && ty & 2 == 0) {
                    return bad;
                }
                // Data and non-conforming code: DPL >= RPL, unless unrestricted guest.
                let rpl = (v.get(sel_f) & 3) as u8;
                if !unrestricted && ty <= 11 && dpl(ar) < rpl {
                    return bad;
                }
            }
            // Reserved access-rights bits (11:8, 31:17), and the granularity
            // that the limit implies, for every usable register.
            for (_, _, limit_f, ar_f) in SEG_FIELDS {
                let ar = v.get32(ar_f);
                if ar & AR_UNUSABLE == 0 && !ar_limit_consistent(ar, v.get32(limit_f)) {
                    return bad;
                }
            }
            // Base addresses: bits 63:32 of CS, and of usable SS, DS and ES, are 0.
            for (i, (_, base_f, _, ar_f)) in SEG_FIELDS.iter().enumerate() {
                let checked = i == 1 || (i <= 3 && v.get32(*ar_f) & AR_UNUSABLE == 0);
                if checked && v.get(*base_f) >> 32 != 0 {
                    return bad;
                }
            }
        }
        let tr_ar = v.get32(f::GUEST_TR_AR_BYTES);
        let tr_ty = tr_ar & 0xF;
        let tr_ok = if ia32e {
            tr_ty == 11
        } else {
            tr_ty == 11 || tr_ty == 3
        };
        if !tr_ok || tr_ar & AR_S != 0 || tr_ar & AR_P == 0 || tr_ar & AR_UNUSABLE != 0 {
            return bad;
        }
        if !ar_limit_consistent(tr_ar, v.get32(f::GUEST_TR_LIMIT)) {
            return bad;
        }
        if v.get(f::GUEST_TR_SELECTOR) & 4 != 0 {
            return bad;
        }
        let ldtr_ar = v.get32(f::GUEST_LDTR_AR_BYTES);
        if ldtr_ar & AR_UNUSABLE == 0
            && (ldtr_ar & 0xF != 2
                || ldtr_ar & AR_S != 0
                || ldtr_ar & AR_P == 0
                || !ar_limit_consistent(ldtr_ar, v.get32(f::GUEST_LDTR_LIMIT)))
        {
            return bad;
        }
        // §27.3.1.4: bits 63:32 clear outside 64-bit mode; in it, bits
        // 63:N identical for N = 48 linear-address bits (not bits 63:47: a
        // RIP the SDM lets through here faults on its first fetch).
        let rip = v.get(f::GUEST_RIP);
        let long_code = ia32e && cs_ar & AR_L != 0;
        if (!long_code && rip >> 32 != 0) || (long_code && !matches!(rip >> 48, 0 | 0xFFFF)) {
            return bad;
        }
        for a in [
            f::GUEST_FS_BASE,
            f::GUEST_GS_BASE,
            f::GUEST_GDTR_BASE,
            f::GUEST_IDTR_BASE,
            f::GUEST_TR_BASE,
        ] {
            if !x86::address::is_canonical(v.get(a)) {
                return bad;
            }
        }
        if v.get(f::GUEST_GDTR_LIMIT) > 0xFFFF || v.get(f::GUEST_IDTR_LIMIT) > 0xFFFF {
            return bad;
        }
        let activity = v.get32(f::GUEST_ACTIVITY_STATE);
        if activity > x86::vmx::activity::SHUTDOWN {
            return bad;
        }
        let intr = v.get32(f::GUEST_INTERRUPTIBILITY_INFO);
        if intr & !0x1F != 0 || intr & 3 == 3 {
            return bad;
        }
        if intr & x86::vmx::interruptibility::STI != 0 && rflags & x86::rflags::IF == 0 {
            return bad;
        }
        // §27.3.1.5: pending debug exceptions.
        let debugctl = if self.vmx.ctl.entry & entry_ctl::LOAD_DEBUG_CONTROLS != 0 {
            v.get(f::GUEST_IA32_DEBUGCTL)
        } else {
            self.s.msr.debugctl
        };
        let held = intr & 3 != 0 || activity == x86::vmx::activity::HLT;
        if !x86::vmx::pending_dbg::valid(
            v.get(f::GUEST_PENDING_DBG_EXCEPTIONS),
            held,
            rflags & x86::rflags::TF != 0,
            debugctl & 2 != 0,
        ) {
            return bad;
        }
        let revision = caps::capability_msr(x86::msr::VMX_BASIC).unwrap_or(0) as u32;
        let mem = &self.mem;
        let header = |a: u64| {
            let mut b = [0u8; 4];
            mem.read(a, &mut b).ok().map(|()| u32::from_le_bytes(b))
        };
        let link = v.get(f::VMCS_LINK_POINTER);
        let phys_bits = crate::cpuid::PHYS_ADDR_BITS;
        if !x86::vmx::link_pointer_valid(link, phys_bits, self.vmx.current, revision, header) {
            return Err(x86::vmx::qualification::ENTRY_VMCS_LINK_POINTER);
        }
        Ok(())
    }

    /// Loads the guest-state area into the processor (SDM §27.3.2).
    pub(crate) fn load_guest_state(&mut self) {
        let v = &self.vmx.vmcs;
        let entry = self.vmx.ctl.entry;
        let seg = |fields: (u32, u32, u32, u32)| Segment {
            selector: v.get(fields.0) as u16,
            base: v.get(fields.1),
            limit: v.get32(fields.2),
            ar: v.get32(fields.3),
        };
        for (i, fs) in SEG_FIELDS.iter().enumerate() {
            self.s.seg[i] = seg(*fs);
        }
        self.s.ldtr = seg(LDTR_FIELDS);
        self.s.tr = seg(TR_FIELDS);
        self.s.gdtr = TableReg {
            base: v.get(f::GUEST_GDTR_BASE),
            limit: v.get32(f::GUEST_GDTR_LIMIT),
        };
        self.s.idtr = TableReg {
            base: v.get(f::GUEST_IDTR_BASE),
            limit: v.get32(f::GUEST_IDTR_LIMIT),
        };
        self.s.cr0 = v.get(f::GUEST_CR0) | CR0_ET;
        self.s.cr3 = v.get(f::GUEST_CR3);
        self.s.cr4 = v.get(f::GUEST_CR4);
        self.s.dr[7] = v.get(f::GUEST_DR7);
        self.s.gpr[4] = v.get(f::GUEST_RSP);
        self.s.rip = v.get(f::GUEST_RIP);
        self.s.rflags = v.get(f::GUEST_RFLAGS);
        let ia32e = entry & entry_ctl::IA32E_MODE_GUEST != 0;
        if entry & entry_ctl::LOAD_IA32_EFER != 0 {
            self.s.efer = v.get(f::GUEST_IA32_EFER);
        } else {
            // LMA and LME follow the IA-32e mode guest control (SDM §27.3.2.1).
            self.s.efer &= !(EFER_LMA | EFER_LME);
            if ia32e {
                self.s.efer |= EFER_LMA | EFER_LME;
            }
        }
        if entry & entry_ctl::LOAD_IA32_PAT != 0 {
            self.s.msr.pat = v.get(f::GUEST_IA32_PAT);
        }
        if entry & entry_ctl::LOAD_DEBUG_CONTROLS != 0 {
            self.s.msr.debugctl = v.get(f::GUEST_IA32_DEBUGCTL);
        }
        self.s.msr.sysenter_cs = v.get(f::GUEST_SYSENTER_CS);
        self.s.msr.sysenter_esp = v.get(f::GUEST_SYSENTER_ESP);
        self.s.msr.sysenter_eip = v.get(f::GUEST_SYSENTER_EIP);
        let intr = v.get32(f::GUEST_INTERRUPTIBILITY_INFO);
        self.shadow.sti = intr & x86::vmx::interruptibility::STI != 0;
        self.shadow.mov_ss = intr & x86::vmx::interruptibility::MOV_SS != 0;
        self.nmi_blocked = intr & x86::vmx::interruptibility::NMI != 0;
        self.halted = v.get32(f::GUEST_ACTIVITY_STATE) == x86::vmx::activity::HLT;
        // The VMX-preemption timer counts from its VMCS value at the TSC rate
        // (IA32_VMX_MISC[4:0] = 0), SDM Vol. 3C §26.5.1.
        // The first PAUSE after a VM entry begins a loop (SDM Vol. 3C §26.1.3).
        self.pause_loop = None;
        self.preemption_deadline = if self.vmx.ctl.pin & x86::vmx::pin::PREEMPTION_TIMER != 0 {
            Some(self.cycles + u64::from(v.get32(f::VMX_PREEMPTION_TIMER_VALUE)))
        } else {
            None
        };
        let info = v.get32(f::VM_ENTRY_INTR_INFO);
        // Type 7 vector 0: an MTF VM exit pending right after the entry
        // (SDM Vol. 3C §27.6.2), nothing delivered.
        self.mtf_pending = info & intr_info::VALID != 0 && (info >> intr_info::TYPE_SHIFT) & 7 == 7;
        // Pending debug exceptions (SDM Vol. 3C §27.7.3): lost when the
        // entry delivers an event; held by MOV-SS blocking until after the
        // next instruction; otherwise delivered before the first one (after
        // a pending MTF VM exit, which keeps them pending in the field).
        // Not modelled: an injected software interrupt or exception under
        // MOV-SS blocking, for which the SDM lets them follow the event.
        let vectoring = info & intr_info::VALID != 0 && !self.mtf_pending;
        self.debug.held = 0;
        self.debug.deferred = 0;
        match crate::debug::pending_traps(v.get(f::GUEST_PENDING_DBG_EXCEPTIONS)) {
            Some(bits) if !vectoring && self.shadow.mov_ss => self.debug.deferred = bits,
            Some(bits) if !vectoring => self.debug.held = bits,
            _ => {}
        }
        self.injection = {
            if info & intr_info::VALID != 0 && !self.mtf_pending {
                let kind = match (info >> intr_info::TYPE_SHIFT) & 7 {
                    intr_info::TYPE_EXT_INTR => EventKind::External,
                    intr_info::TYPE_NMI => EventKind::Nmi,
                    intr_info::TYPE_SW_INTR => EventKind::SoftwareInterrupt,
                    intr_info::TYPE_PRIV_SW_EXCEPTION => EventKind::PrivilegedSoftwareException,
                    intr_info::TYPE_SW_EXCEPTION => EventKind::SoftwareException,
                    _ => EventKind::HardwareException,
                };
                let mut ev = Event::new(info as u8, kind, v.get32(f::VM_ENTRY_INSTRUCTION_LEN));
                if info & intr_info::ERROR_CODE_VALID != 0 {
                    ev.error_code = Some(v.get32(f::VM_ENTRY_EXCEPTION_ERROR_CODE));
                }
                Some(ev)
            } else {
                None
            }
        };
    }
}
