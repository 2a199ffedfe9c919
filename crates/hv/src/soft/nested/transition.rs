//! Nested VM entry and exit: vmcs02 built from vmcs01 and vmcs12 (L0's
//! controls merged with L1's, L2's guest state from vmcs12), and the nested
//! VM exit that records L2's state and the exit in vmcs12 and loads
//! vmcs12's host state into vmcs01, as the processor does at a VM exit
//! (SDM Vol. 3C §28.2, §28.3, §28.5).

use super::checks::{self, EntryCheck};
use super::guest_checks;
use super::instructions::Outcome;
use super::msr_list;
use super::tpr;
use super::vmcs12::Vmcs12;
use super::{Level, Nested};
use crate::hw::{HwError, VmxHardware};
use crate::soft::time::earliest;
use x86::cr::{CR0_NE, CR4_VMXE, EFER_LMA, EFER_LME};
use x86::segment::{AR_CODE, AR_DATA32, AR_DB, AR_G, AR_L, AR_TSS_BUSY};
use x86::vmx::{
    entry_ctl, exit_ctl, exit_reason as er, field as f, interruptibility, intr_info, pin, proc,
    proc2,
};

/// Guest-state fields that go from vmcs12 to vmcs02 at entry and back at
/// exit unchanged (CR0, CR4, EFER and PAT have rules of their own).
const GUEST_STATE: &[u32] = &[
    f::GUEST_ES_SELECTOR,
    f::GUEST_CS_SELECTOR,
    f::GUEST_SS_SELECTOR,
    f::GUEST_DS_SELECTOR,
    f::GUEST_FS_SELECTOR,
    f::GUEST_GS_SELECTOR,
    f::GUEST_LDTR_SELECTOR,
    f::GUEST_TR_SELECTOR,
    f::GUEST_ES_BASE,
    f::GUEST_CS_BASE,
    f::GUEST_SS_BASE,
    f::GUEST_DS_BASE,
    f::GUEST_FS_BASE,
    f::GUEST_GS_BASE,
    f::GUEST_LDTR_BASE,
    f::GUEST_TR_BASE,
    f::GUEST_ES_LIMIT,
    f::GUEST_CS_LIMIT,
    f::GUEST_SS_LIMIT,
    f::GUEST_DS_LIMIT,
    f::GUEST_FS_LIMIT,
    f::GUEST_GS_LIMIT,
    f::GUEST_LDTR_LIMIT,
    f::GUEST_TR_LIMIT,
    f::GUEST_ES_AR_BYTES,
    f::GUEST_CS_AR_BYTES,
    f::GUEST_SS_AR_BYTES,
    f::GUEST_DS_AR_BYTES,
    f::GUEST_FS_AR_BYTES,
    f::GUEST_GS_AR_BYTES,
    f::GUEST_LDTR_AR_BYTES,
    f::GUEST_TR_AR_BYTES,
    f::GUEST_GDTR_BASE,
    f::GUEST_GDTR_LIMIT,
    f::GUEST_IDTR_BASE,
    f::GUEST_IDTR_LIMIT,
    f::GUEST_CR3,
    f::GUEST_DR7,
    f::GUEST_RSP,
    f::GUEST_RIP,
    f::GUEST_RFLAGS,
    f::GUEST_PENDING_DBG_EXCEPTIONS,
    f::GUEST_INTERRUPTIBILITY_INFO,
    f::GUEST_ACTIVITY_STATE,
    f::GUEST_SYSENTER_CS,
    f::GUEST_SYSENTER_ESP,
    f::GUEST_SYSENTER_EIP,
    f::GUEST_IA32_DEBUGCTL,
];

/// Secondary controls of L1's that vmcs02 takes as they are (EPT is L0's
/// in vmcs02 either way: its own, or the shadow of L1's).
const PROC2_FROM_L1: u32 = proc2::DESC_TABLE_EXITING
    | proc2::PAUSE_LOOP_EXITING
    | proc2::ENABLE_RDTSCP
    | proc2::WBINVD_EXITING
    | proc2::UNRESTRICTED_GUEST;
/// Secondary controls of L0's that vmcs02 keeps.
const PROC2_FROM_L0: u32 = proc2::ENABLE_EPT | proc2::BUS_LOCK_DETECTION;

/// The exit L1 is told about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExitToL1 {
    /// Exit reason, bit 31 for a VM-entry failure.
    pub reason: u32,
    /// Exit qualification.
    pub qualification: u64,
    /// VM-exit interruption information and error code.
    pub intr_info: u32,
    /// VM-exit interruption error code.
    pub intr_error: u32,
    /// IDT-vectoring information and error code.
    pub vectoring: u32,
    /// IDT-vectoring error code.
    pub vectoring_error: u32,
    /// VM-exit instruction length.
    pub instruction_len: u32,
    /// VM-exit instruction information.
    pub instruction_info: u32,
    /// Guest-linear address.
    pub guest_linear: u64,
    /// Guest-physical address (EPT exits).
    pub guest_physical: u64,
}

impl ExitToL1 {
    /// The exit the processor just took from vmcs02, as it recorded it.
    pub(crate) fn from_hw(hw: &impl VmxHardware) -> Result<Self, HwError> {
        let r = |fl| hw.vmread(fl);
        Ok(ExitToL1 {
            reason: r(f::VM_EXIT_REASON)? as u32,
            qualification: r(f::EXIT_QUALIFICATION)?,
            intr_info: r(f::VM_EXIT_INTR_INFO)? as u32,
            intr_error: r(f::VM_EXIT_INTR_ERROR_CODE)? as u32,
            vectoring: r(f::IDT_VECTORING_INFO)? as u32,
            vectoring_error: r(f::IDT_VECTORING_ERROR_CODE)? as u32,
            instruction_len: r(f::VM_EXIT_INSTRUCTION_LEN)? as u32,
            instruction_info: r(f::VMX_INSTRUCTION_INFO)? as u32,
            guest_linear: r(f::GUEST_LINEAR_ADDRESS)?,
            guest_physical: r(f::GUEST_PHYSICAL_ADDRESS)?,
        })
    }

    /// An exit L0 makes up (no instruction, no event), with the event vmcs02
    /// still had to inject as IDT-vectoring information: an event L1 (or L0)
    /// queued for L2 that L2 never received is L1's to deliver again.
    pub(crate) fn synthetic(hw: &impl VmxHardware, reason: u16) -> Result<Self, HwError> {
        let pending = hw.vmread(f::VM_ENTRY_INTR_INFO)? as u32;
        let mut e = ExitToL1 {
            reason: u32::from(reason),
            ..ExitToL1::default()
        };
        if pending & intr_info::VALID != 0 {
            e.vectoring = pending;
            e.vectoring_error = hw.vmread(f::VM_ENTRY_EXCEPTION_ERROR_CODE)? as u32;
            e.instruction_len = hw.vmread(f::VM_ENTRY_INSTRUCTION_LEN)? as u32;
        }
        Ok(e)
    }
}

/// What the processor state at a VM exit carries over into L1 beyond
/// vmcs12's host-state area: EFER's other bits and blocking by NMI.
#[derive(Debug, Clone, Copy)]
struct L1Carry {
    efer: u64,
    nmi_blocked: bool,
}

impl L1Carry {
    /// As L1 left them (vmcs01 current): for a VM-entry failure, and the
    /// starting point of a nested VM exit.
    fn read(hw: &impl VmxHardware) -> Result<Self, HwError> {
        Ok(L1Carry {
            efer: hw.vmread(f::GUEST_IA32_EFER)?,
            nmi_blocked: hw.vmread(f::GUEST_INTERRUPTIBILITY_INFO)?
                & u64::from(interruptibility::NMI)
                != 0,
        })
    }
}

/// L0's side of the controls, read from vmcs01 before vmcs02 is built.
struct L0Template {
    pin: u32,
    proc: u32,
    proc2: u32,
    exit: u32,
    entry: u32,
    exception_bitmap: u32,
    cr0_mask: u64,
    cr4_mask: u64,
    eptp: u64,
    tsc_offset: u64,
    l1_efer: u64,
}

impl L0Template {
    fn read(hw: &impl VmxHardware) -> Result<Self, HwError> {
        let r32 = |fl| hw.vmread(fl).map(|v| v as u32);
        Ok(L0Template {
            pin: r32(f::PIN_BASED_VM_EXEC_CONTROL)?,
            proc: r32(f::CPU_BASED_VM_EXEC_CONTROL)?,
            proc2: r32(f::SECONDARY_VM_EXEC_CONTROL)?,
            exit: r32(f::VM_EXIT_CONTROLS)?,
            entry: r32(f::VM_ENTRY_CONTROLS)?,
            exception_bitmap: r32(f::EXCEPTION_BITMAP)?,
            cr0_mask: hw.vmread(f::CR0_GUEST_HOST_MASK)?,
            cr4_mask: hw.vmread(f::CR4_GUEST_HOST_MASK)?,
            eptp: hw.vmread(f::EPT_POINTER)?,
            tsc_offset: hw.vmread(f::TSC_OFFSET)?,
            l1_efer: hw.vmread(f::GUEST_IA32_EFER)?,
        })
    }
}

impl Nested {
    /// L1's notify window when L1 enabled notify VM exiting in vmcs12.
    pub(crate) fn l1_window(&self) -> Option<u32> {
        (self.vmcs12.controls().proc2 & proc2::NOTIFY_VM_EXITING != 0)
            .then(|| self.vmcs12.get32(f::NOTIFY_WINDOW))
    }

    /// The CR0 and CR4 bits L1 owns for its L2 (vmcs12's guest/host masks).
    pub(crate) fn l1_cr_masks(&self) -> (u64, u64) {
        (
            self.vmcs12.get(f::CR0_GUEST_HOST_MASK),
            self.vmcs12.get(f::CR4_GUEST_HOST_MASK),
        )
    }

    /// L1's EPTP when L1 enabled EPT in vmcs12.
    pub(crate) fn l1_eptp(&self) -> Option<u64> {
        (self.vmcs12.controls().proc2 & proc2::ENABLE_EPT != 0)
            .then(|| self.vmcs12.get(f::EPT_POINTER))
    }

    /// vmcs02's notify window: L0's always, or L1's when shorter (or when L0
    /// has none); see docs/notify.md.
    pub(crate) fn window02(&self) -> Option<u32> {
        earliest(self.l0_window, self.l1_window())
    }

    /// The nested VM entry of VMLAUNCH or VMRESUME, after the
    /// checks that end in VMfail: L0's own checks on vmcs12, then vmcs02.
    pub(super) fn enter(&mut self, hw: &mut impl VmxHardware) -> Result<Outcome, HwError> {
        let l1_ia32e = hw.vmread(f::GUEST_IA32_EFER)? & EFER_LMA != 0;
        if checks::controls(&self.vmcs12, &self.caps).is_err() {
            return Ok(Outcome::FailValid(
                x86::vmx::instruction_error::ENTRY_INVALID_CONTROL,
            ));
        }
        // The TPR shadow's checks read VTPR on L1's virtual-APIC page.
        let vtpr = |at: u64| {
            let mut b = [0xFF; 4];
            let _ = hw.read_phys(at, &mut b);
            u32::from_le_bytes(b)
        };
        if tpr::entry_check(&self.vmcs12, &self.caps, self.pages.ram, vtpr).is_err() {
            return Ok(Outcome::FailValid(
                x86::vmx::instruction_error::ENTRY_INVALID_CONTROL,
            ));
        }
        if checks::host_state(&self.vmcs12, &self.caps, l1_ia32e).is_err() {
            return Ok(Outcome::FailValid(
                x86::vmx::instruction_error::ENTRY_INVALID_HOST_STATE,
            ));
        }
        let ram = self.pages.ram;
        let read = |addr: u64| {
            let mut b = [0u8; 8];
            let in_ram = addr.checked_add(8).is_some_and(|end| end <= ram);
            (in_ram && hw.read_phys(addr, &mut b).is_ok()).then(|| u64::from_le_bytes(b))
        };
        let guest = guest_checks::guest_state(&self.vmcs12, &self.caps)
            .and_then(|()| guest_checks::link_pointer(&self.vmcs12, &self.caps, self.current, read))
            .and_then(|()| guest_checks::pdptes(&self.vmcs12, &self.caps, read));
        if let Err(failure) = guest {
            let qualification = match failure {
                EntryCheck::GuestState(q) => q,
                EntryCheck::Controls | EntryCheck::HostState => 0,
            };
            let reason = er::ENTRY_FAILURE | u32::from(er::INVALID_GUEST_STATE);
            self.entry_failure(hw, reason, qualification)?;
            return Ok(Outcome::Transferred);
        }
        let l0 = L0Template::read(hw)?;
        self.build_vmcs02(hw, &l0)?;
        // "Load IA32_PAT" (SDM Vol. 3C §27.3.2.1): vmcs02 does not switch
        // PAT, so L2's goes into the processor (checked valid above).
        if self.vmcs12.controls().entry & entry_ctl::LOAD_IA32_PAT != 0 {
            hw.wrmsr(x86::msr::PAT, self.vmcs12.get(f::GUEST_IA32_PAT));
        }
        // MSR loading follows the guest state (SDM Vol. 3C §27.4): into
        // vmcs02's guest-state area or the processor.
        let loaded =
            self.load_msr_list(hw, f::VM_ENTRY_MSR_LOAD_ADDR, f::VM_ENTRY_MSR_LOAD_COUNT)?;
        if let Err(number) = loaded {
            hw.vmptrld(self.pages.vmcs01)?;
            let reason = er::ENTRY_FAILURE | u32::from(er::MSR_LOAD_FAIL);
            self.entry_failure(hw, reason, u64::from(number))?;
            return Ok(Outcome::Transferred);
        }
        // L2's preemption timer starts with the entry, on L1's TSC (the
        // processor's plus L0's offset for L1).
        let l1_offset = if l0.proc & proc::USE_TSC_OFFSETTING != 0 {
            l0.tsc_offset
        } else {
            0
        };
        self.load_l2_timer(hw, l1_offset)?;
        self.level = Level::L2 { entering: true };
        self.launched02 = false;
        self.stalled = 0;
        Ok(Outcome::Transferred)
    }

    /// Makes vmcs02 current and writes it.
    fn build_vmcs02(&mut self, hw: &mut impl VmxHardware, l0: &L0Template) -> Result<(), HwError> {
        let c12 = self.vmcs12.controls();
        let (pin12, proc12, proc2_12, entry12) = (c12.pin, c12.proc, c12.proc2, c12.entry);
        let window = self.window02();
        let bitmap = self.merged_msr_bitmap(hw)?;
        hw.write_phys(self.pages.msr_bitmap02, &bitmap)?;
        // EPT: L0's identity, or the shadow of L1's (emptied when L1 comes
        // with another EPTP).
        let eptp02 = match self.l1_eptp() {
            None => l0.eptp,
            Some(eptp12) => {
                if self.shadow.shadowed != Some(eptp12) {
                    self.shadow.reset(hw, Some(eptp12))?;
                }
                self.shadow.eptp()
            }
        };

        hw.vmptrld(self.pages.vmcs02)?;
        hw.vmclear();
        let v = &self.vmcs12;
        let mut put = |fl: u32, value: u64| hw.vmwrite(fl, value);
        for &fl in GUEST_STATE {
            put(fl, v.get(fl))?;
        }
        // Controls: L0's wishes and L1's together. I/O always exits
        // (`reflect` consults L1's bitmaps); MSRs through the merged bitmap.
        // HLT exits only when L1 asks: otherwise L2 halts in vmcs02's HLT
        // activity state until an event for it, or an exit, comes.
        let pinv = l0.pin | (pin12 & (pin::NMI_EXITING | pin::VIRTUAL_NMIS));
        let procv = (l0.proc & !(proc::INTR_WINDOW_EXITING | proc::HLT_EXITING))
            | (proc12 & !(proc::USE_IO_BITMAPS | proc::USE_MSR_BITMAPS))
            | proc::UNCOND_IO_EXITING
            | proc::USE_MSR_BITMAPS
            | proc::ACTIVATE_SECONDARY_CONTROLS;
        let proc2v = (l0.proc2 & PROC2_FROM_L0)
            | (proc2_12 & PROC2_FROM_L1)
            | if window.is_some() {
                proc2::NOTIFY_VM_EXITING
            } else {
                0
            };
        let entryv = (l0.entry & !entry_ctl::IA32E_MODE_GUEST)
            | (entry12 & entry_ctl::IA32E_MODE_GUEST)
            | entry_ctl::LOAD_IA32_EFER;
        put(f::PIN_BASED_VM_EXEC_CONTROL, u64::from(pinv))?;
        put(f::CPU_BASED_VM_EXEC_CONTROL, u64::from(procv))?;
        put(f::SECONDARY_VM_EXEC_CONTROL, u64::from(proc2v))?;
        put(f::VM_EXIT_CONTROLS, u64::from(l0.exit))?;
        put(f::VM_ENTRY_CONTROLS, u64::from(entryv))?;
        put(
            f::EXCEPTION_BITMAP,
            u64::from(l0.exception_bitmap | v.get32(f::EXCEPTION_BITMAP)),
        )?;
        put(
            f::PAGE_FAULT_ERROR_CODE_MASK,
            v.get(f::PAGE_FAULT_ERROR_CODE_MASK),
        )?;
        put(
            f::PAGE_FAULT_ERROR_CODE_MATCH,
            v.get(f::PAGE_FAULT_ERROR_CODE_MATCH),
        )?;
        put(f::MSR_BITMAP, self.pages.msr_bitmap02)?;
        put(f::EPT_POINTER, eptp02)?;
        // TSC offsetting (SDM Vol. 3C §25.6.5): L2 sees L1's TSC plus L1's
        // offset, and L1's TSC is the processor's plus L0's offset.
        let offset = |procv: u32, value: u64| {
            if procv & proc::USE_TSC_OFFSETTING != 0 {
                value
            } else {
                0
            }
        };
        let tsc_offset =
            offset(l0.proc, l0.tsc_offset).wrapping_add(offset(proc12, v.get(f::TSC_OFFSET)));
        put(f::TSC_OFFSET, tsc_offset)?;
        put(f::VMCS_LINK_POINTER, u64::MAX)?;
        put(f::NOTIFY_WINDOW, u64::from(window.unwrap_or(0)))?;
        for fl in [
            f::PLE_GAP,
            f::PLE_WINDOW,
            f::VM_ENTRY_INTR_INFO,
            f::VM_ENTRY_EXCEPTION_ERROR_CODE,
            f::VM_ENTRY_INSTRUCTION_LEN,
        ] {
            put(fl, v.get(fl))?;
        }
        if proc12 & proc::USE_TPR_SHADOW != 0 {
            let page = tpr::virtual_apic02(v, &self.caps, self.pages.ram);
            put(f::VIRTUAL_APIC_PAGE_ADDR, page)?;
            put(f::TPR_THRESHOLD, v.get(f::TPR_THRESHOLD))?;
        }
        vmcs02_crs_and_efer(hw, v, l0, entry12)
    }

    /// vmcs02's MSR bitmap: an MSR access exits when L0 or L1 wants it
    /// (without MSR bitmaps in vmcs12, L1 wants them all).
    fn merged_msr_bitmap(&self, hw: &impl VmxHardware) -> Result<Vec<u8>, HwError> {
        let mut merged = vec![0u8; 4096];
        hw.read_phys(self.pages.msr_bitmap01, &mut merged)?;
        let procv = self.vmcs12.get32(f::CPU_BASED_VM_EXEC_CONTROL);
        if procv & proc::USE_MSR_BITMAPS == 0 {
            return Ok(vec![0xFF; 4096]);
        }
        // A bitmap outside L1's RAM reads as all ones: every access exits.
        let mut l1 = vec![0xFFu8; 4096];
        let at = self.vmcs12.get(f::MSR_BITMAP);
        if at
            .checked_add(4096)
            .is_some_and(|end| end <= self.pages.ram)
        {
            hw.read_phys(at, &mut l1)?;
        }
        for (m, b) in merged.iter_mut().zip(l1) {
            *m |= b;
        }
        Ok(merged)
    }

    /// The processor's verdict on the first entry of a freshly built
    /// vmcs02 (`entered` as VMLAUNCH returned it, `raw` the exit reason then
    /// in vmcs02). `true` when L2 really ran and `raw` is an exit of L2's;
    /// `false` when the entry failed and L1 has been told.
    pub(crate) fn first_entry_result(
        &mut self,
        hw: &mut impl VmxHardware,
        entered: Result<(), HwError>,
    ) -> Result<bool, HwError> {
        if !self.entering() {
            return Ok(true);
        }
        match entered {
            Err(HwError::VmFail(error)) => {
                // vmcs02 refused by the processor (an event-injection field of
                // L1's, say): VMfailValid for L1's VMLAUNCH/VMRESUME.
                hw.vmptrld(self.pages.vmcs01)?;
                self.level = Level::L1;
                let len = hw.vmread(f::VM_EXIT_INSTRUCTION_LEN)?;
                self.finish(hw, Outcome::FailValid(error), len)?;
                Ok(false)
            }
            Err(e) => Err(e),
            Ok(()) => {
                let raw = hw.vmread(f::VM_EXIT_REASON)? as u32;
                if raw & er::ENTRY_FAILURE != 0 {
                    let qualification = hw.vmread(f::EXIT_QUALIFICATION)?;
                    hw.vmptrld(self.pages.vmcs01)?;
                    self.level = Level::L1;
                    self.entry_failure(hw, raw, qualification)?;
                    return Ok(false);
                }
                self.vmcs12.launched = true;
                self.launched02 = true;
                self.level = Level::L2 { entering: false };
                Ok(true)
            }
        }
    }

    /// A VM-entry failure reported to L1 (SDM §27.8): the exit reason with
    /// bit 31 and the qualification in vmcs12, L1 continuing from vmcs12's
    /// host state; L2's guest state is not saved. vmcs01 is current.
    fn entry_failure(
        &mut self,
        hw: &mut impl VmxHardware,
        reason: u32,
        qualification: u64,
    ) -> Result<(), HwError> {
        // Only the exit reason and the qualification are written: the other
        // exit-information fields, and L1's queued event, stay as they were.
        self.vmcs12.set(f::VM_EXIT_REASON, u64::from(reason));
        self.vmcs12.set(f::EXIT_QUALIFICATION, qualification);
        let l1 = L1Carry::read(hw)?;
        self.load_host_state(hw, l1)
    }

    /// A nested VM exit from L2 (vmcs02 current) to L1 with `e`.
    pub(crate) fn exit_to_l1(
        &mut self,
        hw: &mut impl VmxHardware,
        e: &ExitToL1,
    ) -> Result<(), HwError> {
        // Save L2's state in vmcs12 (SDM §28.3).
        for &fl in GUEST_STATE {
            let value = hw.vmread(fl)?;
            self.vmcs12.set(fl, value);
        }
        for fl in [f::GUEST_CR0, f::GUEST_CR4] {
            let value = hw.vmread(fl)?;
            self.vmcs12.set(fl, value);
        }
        let efer = hw.vmread(f::GUEST_IA32_EFER)?;
        let exit12 = self.vmcs12.get32(f::VM_EXIT_CONTROLS);
        if exit12 & exit_ctl::SAVE_IA32_EFER != 0 {
            self.vmcs12.set(f::GUEST_IA32_EFER, efer);
        }
        if exit12 & exit_ctl::SAVE_IA32_PAT != 0 {
            // L2's PAT is still the processor's (SDM Vol. 3C §28.3.1).
            let pat = hw.rdmsr(x86::msr::PAT).unwrap_or(0);
            self.vmcs12.set(f::GUEST_IA32_PAT, pat);
        }
        // The IA-32e mode guest control follows EFER.LMA.
        let entry12 = self.vmcs12.get32(f::VM_ENTRY_CONTROLS) & !entry_ctl::IA32E_MODE_GUEST;
        let ia32e = if efer & EFER_LMA != 0 {
            entry_ctl::IA32E_MODE_GUEST
        } else {
            0
        };
        self.vmcs12
            .set(f::VM_ENTRY_CONTROLS, u64::from(entry12 | ia32e));
        self.record_exit(e);
        self.save_l2_timer(hw);
        let l2_nmi_blocked =
            hw.vmread(f::GUEST_INTERRUPTIBILITY_INFO)? & u64::from(interruptibility::NMI) != 0;
        // MSRs are stored after the guest state (SDM Vol. 3C §28.4); a
        // failure is a VMX abort, and the exit goes no further.
        let stored = self.store_exit_msrs(hw)?;
        hw.vmptrld(self.pages.vmcs01)?;
        self.level = Level::L1;
        self.stalled = 0;
        if stored.is_err() {
            return self.vmx_abort(hw, msr_list::abort::SAVING_GUEST_MSRS);
        }
        // NMI blocking after the exit (SDM Vol. 3C §27.1, §28.3.1.5): an
        // NMI-caused exit blocks NMIs; with virtual NMIs the real blocking
        // is still L1's; without, L2's blocking was the real one.
        let nmi_exit = e.reason == u32::from(er::EXCEPTION_NMI)
            && (e.intr_info >> intr_info::TYPE_SHIFT) & 7 == intr_info::TYPE_NMI;
        let virtual_nmis = self.vmcs12.get32(f::PIN_BASED_VM_EXEC_CONTROL) & pin::VIRTUAL_NMIS != 0;
        let mut carry = L1Carry::read(hw)?;
        carry.efer = efer;
        if nmi_exit {
            carry.nmi_blocked = true;
        } else if !virtual_nmis {
            carry.nmi_blocked = l2_nmi_blocked;
        }
        self.load_host_state(hw, carry)
    }

    /// The exit-information fields of vmcs12 (SDM §28.2); VM exits clear the
    /// valid bit of the VM-entry interruption information.
    fn record_exit(&mut self, e: &ExitToL1) {
        let v = &mut self.vmcs12;
        v.set(f::VM_EXIT_REASON, u64::from(e.reason));
        v.set(f::EXIT_QUALIFICATION, e.qualification);
        v.set(f::VM_EXIT_INTR_INFO, u64::from(e.intr_info));
        v.set(f::VM_EXIT_INTR_ERROR_CODE, u64::from(e.intr_error));
        v.set(f::IDT_VECTORING_INFO, u64::from(e.vectoring));
        v.set(f::IDT_VECTORING_ERROR_CODE, u64::from(e.vectoring_error));
        v.set(f::VM_EXIT_INSTRUCTION_LEN, u64::from(e.instruction_len));
        v.set(f::VMX_INSTRUCTION_INFO, u64::from(e.instruction_info));
        v.set(f::GUEST_LINEAR_ADDRESS, e.guest_linear);
        v.set(f::GUEST_PHYSICAL_ADDRESS, e.guest_physical);
        let entry_info = v.get(f::VM_ENTRY_INTR_INFO) & !u64::from(intr_info::VALID);
        v.set(f::VM_ENTRY_INTR_INFO, entry_info);
    }

    /// Loads vmcs12's host-state area into vmcs01's guest state: L1 resumes
    /// at its host RIP (SDM §28.5). vmcs01 is current.
    fn load_host_state(
        &mut self,
        hw: &mut impl VmxHardware,
        carry: L1Carry,
    ) -> Result<(), HwError> {
        let v = &self.vmcs12;
        let exit12 = v.get32(f::VM_EXIT_CONTROLS);
        let host64 = exit12 & exit_ctl::HOST_ADDR_SPACE_SIZE != 0;
        // Without the load-EFER control only LMA and LME are loaded; the
        // other bits stay as the guest left them (SDM §28.5.1).
        let old_efer = carry.efer;
        let efer = if exit12 & exit_ctl::LOAD_IA32_EFER != 0 {
            v.get(f::HOST_IA32_EFER)
        } else if host64 {
            old_efer | EFER_LMA | EFER_LME
        } else {
            old_efer & !(EFER_LMA | EFER_LME)
        };
        let cr0 = v.get(f::HOST_CR0);
        let cr4 = v.get(f::HOST_CR4);
        let l0_cr0 = hw.vmread(f::CR0_GUEST_HOST_MASK)?;
        let l0_cr4 = hw.vmread(f::CR4_GUEST_HOST_MASK)?;
        let mut put = |fl: u32, value: u64| hw.vmwrite(fl, value);
        put(f::GUEST_CR0, cr0 | (l0_cr0 & CR0_NE))?;
        put(f::CR0_READ_SHADOW, cr0)?;
        put(f::GUEST_CR4, cr4 | (l0_cr4 & CR4_VMXE))?;
        put(f::CR4_READ_SHADOW, cr4)?;
        put(f::GUEST_CR3, v.get(f::HOST_CR3))?;
        put(f::GUEST_DR7, 0x400)?;
        put(f::GUEST_IA32_DEBUGCTL, 0)?;
        put(f::GUEST_SYSENTER_CS, v.get(f::HOST_IA32_SYSENTER_CS))?;
        put(f::GUEST_SYSENTER_ESP, v.get(f::HOST_IA32_SYSENTER_ESP))?;
        put(f::GUEST_SYSENTER_EIP, v.get(f::HOST_IA32_SYSENTER_EIP))?;
        put(f::GUEST_IA32_EFER, efer)?;
        if exit12 & exit_ctl::LOAD_IA32_PAT != 0 {
            // vmcs01 does not switch PAT either: L1's goes into the
            // processor (SDM Vol. 3C §28.5.1; checked valid at entry).
            hw.wrmsr(x86::msr::PAT, v.get(f::HOST_IA32_PAT));
        }
        load_host_segments(hw, v, host64)?;
        let mut put = |fl: u32, value: u64| hw.vmwrite(fl, value);
        put(f::GUEST_RSP, v.get(f::HOST_RSP))?;
        put(f::GUEST_RIP, v.get(f::HOST_RIP))?;
        put(f::GUEST_RFLAGS, x86::rflags::FIXED1)?;
        put(
            f::GUEST_INTERRUPTIBILITY_INFO,
            if carry.nmi_blocked {
                u64::from(interruptibility::NMI)
            } else {
                0
            },
        )?;
        put(f::GUEST_ACTIVITY_STATE, 0)?;
        put(f::GUEST_PENDING_DBG_EXCEPTIONS, 0)?;
        put(f::VM_ENTRY_INTR_INFO, 0)?;
        let entry01 = hw.vmread(f::VM_ENTRY_CONTROLS)? as u32 & !entry_ctl::IA32E_MODE_GUEST;
        let ia32e = if efer & EFER_LMA != 0 {
            entry_ctl::IA32E_MODE_GUEST
        } else {
            0
        };
        hw.vmwrite(f::VM_ENTRY_CONTROLS, u64::from(entry01 | ia32e))?;
        // Then the host MSRs (SDM Vol. 3C §28.6), into vmcs01's guest
        // state or the processor; a failure is a VMX abort.
        let loaded = self.load_msr_list(hw, f::VM_EXIT_MSR_LOAD_ADDR, f::VM_EXIT_MSR_LOAD_COUNT)?;
        if loaded.is_err() {
            self.vmx_abort(hw, msr_list::abort::LOADING_HOST_MSRS)?;
        }
        Ok(())
    }
}

/// Loads vmcs12's host segment, descriptor-table and TR state into vmcs01's
/// guest state, as a VM exit to L1 does (SDM §28.5.2). vmcs01 is current.
fn load_host_segments(hw: &mut impl VmxHardware, v: &Vmcs12, host64: bool) -> Result<(), HwError> {
    let mut put = |fl: u32, value: u64| hw.vmwrite(fl, value);
    // CS: accessed execute/read code, DPL 0, present, L = host address-
    // space size, D = !L, G = 1; the data segments read/write accessed
    // with D/B and G, or unusable for a null selector; TR a busy 32/64-bit
    // TSS of limit 0x67; LDTR unusable (SDM §28.5.2).
    let l_or_d = if host64 { AR_L } else { AR_DB };
    put(f::GUEST_CS_SELECTOR, v.get(f::HOST_CS_SELECTOR))?;
    put(f::GUEST_CS_BASE, 0)?;
    put(f::GUEST_CS_LIMIT, 0xFFFF_FFFF)?;
    put(f::GUEST_CS_AR_BYTES, u64::from(AR_CODE | AR_G | l_or_d))?;
    for (sel_h, sel, base, limit, ar, base_h) in [
        (
            f::HOST_SS_SELECTOR,
            f::GUEST_SS_SELECTOR,
            f::GUEST_SS_BASE,
            f::GUEST_SS_LIMIT,
            f::GUEST_SS_AR_BYTES,
            None,
        ),
        (
            f::HOST_DS_SELECTOR,
            f::GUEST_DS_SELECTOR,
            f::GUEST_DS_BASE,
            f::GUEST_DS_LIMIT,
            f::GUEST_DS_AR_BYTES,
            None,
        ),
        (
            f::HOST_ES_SELECTOR,
            f::GUEST_ES_SELECTOR,
            f::GUEST_ES_BASE,
            f::GUEST_ES_LIMIT,
            f::GUEST_ES_AR_BYTES,
            None,
        ),
        (
            f::HOST_FS_SELECTOR,
            f::GUEST_FS_SELECTOR,
            f::GUEST_FS_BASE,
            f::GUEST_FS_LIMIT,
            f::GUEST_FS_AR_BYTES,
            Some(f::HOST_FS_BASE),
        ),
        (
            f::HOST_GS_SELECTOR,
            f::GUEST_GS_SELECTOR,
            f::GUEST_GS_BASE,
            f::GUEST_GS_LIMIT,
            f::GUEST_GS_AR_BYTES,
            Some(f::HOST_GS_BASE),
        ),
    ] {
        let selector = v.get(sel_h);
        put(sel, selector)?;
        put(base, base_h.map_or(0, |b| v.get(b)))?;
        put(limit, 0xFFFF_FFFF)?;
        let usable = selector != 0 || (sel == f::GUEST_SS_SELECTOR && host64);
        put(
            ar,
            if usable {
                u64::from(AR_DATA32)
            } else {
                u64::from(x86::segment::AR_UNUSABLE)
            },
        )?;
    }
    put(f::GUEST_TR_SELECTOR, v.get(f::HOST_TR_SELECTOR))?;
    put(f::GUEST_TR_BASE, v.get(f::HOST_TR_BASE))?;
    put(f::GUEST_TR_LIMIT, 0x67)?;
    put(f::GUEST_TR_AR_BYTES, u64::from(AR_TSS_BUSY))?;
    put(f::GUEST_LDTR_SELECTOR, 0)?;
    put(f::GUEST_LDTR_AR_BYTES, u64::from(x86::segment::AR_UNUSABLE))?;
    put(f::GUEST_GDTR_BASE, v.get(f::HOST_GDTR_BASE))?;
    put(f::GUEST_GDTR_LIMIT, 0xFFFF)?;
    put(f::GUEST_IDTR_BASE, v.get(f::HOST_IDTR_BASE))?;
    put(f::GUEST_IDTR_LIMIT, 0xFFFF)?;
    Ok(())
}

/// vmcs02's CR0, CR4 (values, guest/host masks, read shadows) and EFER, from
/// vmcs12 and L0's template; vmcs02 is current.
fn vmcs02_crs_and_efer(
    hw: &mut impl VmxHardware,
    v: &Vmcs12,
    l0: &L0Template,
    entry12: u32,
) -> Result<(), HwError> {
    let mut put = |fl: u32, value: u64| hw.vmwrite(fl, value);
    // CR0 and CR4: a bit is host-owned when L0 or L1 owns it; L2 reads
    // L1's shadow for L1's bits and its own value for L0's. The bits
    // L0 forces (NE, VMXE) are 1 in L2's own value already: VM entry
    // requires them (`checks::guest_state`).
    for (guest, mask, shadow, l0_mask) in [
        (
            f::GUEST_CR0,
            f::CR0_GUEST_HOST_MASK,
            f::CR0_READ_SHADOW,
            l0.cr0_mask,
        ),
        (
            f::GUEST_CR4,
            f::CR4_GUEST_HOST_MASK,
            f::CR4_READ_SHADOW,
            l0.cr4_mask,
        ),
    ] {
        let value = v.get(guest);
        let mask12 = v.get(mask);
        put(guest, value)?;
        put(mask, mask12 | l0_mask)?;
        put(shadow, (v.get(shadow) & mask12) | (value & !mask12))?;
    }
    // EFER: vmcs12's when L1 loads it, else L1's with LMA and LME from
    // the IA-32e mode guest control (SDM §27.3.2.1).
    let efer = if entry12 & entry_ctl::LOAD_IA32_EFER != 0 {
        v.get(f::GUEST_IA32_EFER)
    } else if entry12 & entry_ctl::IA32E_MODE_GUEST != 0 {
        l0.l1_efer | EFER_LMA | EFER_LME
    } else {
        l0.l1_efer & !(EFER_LMA | EFER_LME)
    };
    put(f::GUEST_IA32_EFER, efer)?;
    Ok(())
}
