//! Exits from L2 that L0 routes itself: notify VM exits measured against
//! both windows, the rest through the reflection matrix, L1's interrupts
//! arriving while L2 runs, and the triple fault userspace injects.
//!
//! Both windows (docs/notify.md): vmcs02 always carries L0's window, or
//! L1's when that is shorter. Each notify exit from L2 adds the stall it
//! measured (the processor's threshold plus vmcs02's window) to a running
//! total, which any other exit from L2 resets. While the total is below
//! L1's threshold plus L1's window, L0 handles the exit under its own
//! policy (re-injecting the stalled event, telling userspace); once it
//! reaches it, the exit goes to L1 as the processor recorded it: reason 75,
//! its qualification, and the stalled event as IDT-vectoring information.
//! An exit with an invalid context never goes to L1: L0's userspace decides.

use super::dirty::Flags;
use super::ept::{self, L1Walk};
use super::reflect::{self, BitmapReader, ExitFacts};
use super::transition::ExitToL1;
use super::Nested;
use crate::hw::{HwError, VmxHardware};
use crate::soft::events;
use x86::vmx::{exit_ctl, exit_reason as er, field as f, intr_info, pin, proc, qualification as q};

/// Where an exit from L2 went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// To L1, as a nested VM exit: vmcs01 is current.
    ToL1,
    /// L0 handles it on vmcs02, as any exit of its own.
    L0,
    /// Handled here (a shadow EPT fill): enter L2 again.
    Resume,
    /// An L2 access through L1's EPT to L1-physical memory that is not RAM:
    /// MMIO, which L0 emulates (`Nested::l1_physical` says where each
    /// access goes).
    Mmio,
}

/// Bitmaps read from L1's memory (`[0, .1)`) through the processor's
/// physical memory.
struct Phys<'a, H>(&'a H, u64);

impl<H: VmxHardware> BitmapReader for Phys<'_, H> {
    fn bit(&self, base: u64, bit: u64) -> bool {
        let mut b = [0xFFu8];
        // A bitmap outside L1's RAM reads as all ones: the exit goes to L1.
        let at = base.saturating_add(bit / 8);
        if at < self.1 {
            let _ = self.0.read_phys(at, &mut b);
        }
        b[0] & (1 << (bit % 8)) != 0
    }
}

impl Nested {
    /// Decides where the exit `raw` just taken from vmcs02 goes, and
    /// carries out a reflection.
    pub(crate) fn l2_exit(
        &mut self,
        hw: &mut impl VmxHardware,
        raw: u64,
    ) -> Result<Route, HwError> {
        let reason = raw as u16;
        if reason == er::NOTIFY {
            return self.l2_notify(hw);
        }
        self.stalled = 0;
        if reason == er::PREEMPTION_TIMER && self.l2_timer_expired(hw) {
            // L2's timer, not one of L0's deadlines (SDM Vol. 3C §26.5.1).
            let e = ExitToL1::from_hw(hw)?;
            self.exit_to_l1(hw, &e)?;
            return Ok(Route::ToL1);
        }
        if reason == er::EPT_VIOLATION {
            if let Some(eptp12) = self.l1_eptp() {
                return self.l2_ept_violation(hw, eptp12);
            }
        }
        let g = hw.gprs();
        let qualification = hw.vmread(f::EXIT_QUALIFICATION)?;
        let facts = ExitFacts {
            reason,
            qualification,
            intr_info: hw.vmread(f::VM_EXIT_INTR_INFO)? as u32,
            intr_error_code: hw.vmread(f::VM_EXIT_INTR_ERROR_CODE)? as u32,
            rcx: g[1],
            cr_source: g[x86::vmx::qualification::cr_gpr(qualification)],
        };
        if !reflect::l1_wants(&facts, &self.vmcs12, &Phys(&*hw, self.pages.ram)) {
            return Ok(Route::L0);
        }
        let e = ExitToL1::from_hw(hw)?;
        self.exit_to_l1(hw, &e)?;
        Ok(Route::ToL1)
    }

    /// The L1-physical address of L2's guest-physical `gpa2`: through L1's
    /// EPT when L1 uses one (`None` where it maps nothing, or nothing L2
    /// may use), the same address otherwise.
    pub(crate) fn l1_physical(
        &self,
        hw: &impl VmxHardware,
        gpa2: u64,
    ) -> Result<Option<u64>, HwError> {
        let Some(eptp12) = self.l1_eptp() else {
            return Ok(Some(gpa2));
        };
        Ok(
            match ept::walk_l1(hw, eptp12, gpa2, self.caps.phys_bits, self.pages.ram)? {
                L1Walk::Mapped { gpa1, .. } => Some(gpa1),
                L1Walk::NotPresent | L1Walk::Misconfigured => None,
            },
        )
    }

    /// An EPT violation of L2's while L1 uses EPT: filled from L1's EPT, or
    /// passed to L1 as its own violation or misconfiguration (`super::ept`).
    fn l2_ept_violation(
        &mut self,
        hw: &mut impl VmxHardware,
        eptp12: u64,
    ) -> Result<Route, HwError> {
        let gpa2 = hw.vmread(f::GUEST_PHYSICAL_ADDRESS)?;
        let qualification = hw.vmread(f::EXIT_QUALIFICATION)?;
        // Bits 2:0: the access was a read, a write, an instruction fetch;
        // the same positions as the R, W, X permissions it needs. With
        // accessed and dirty flags, vmcs02's EPTP has them too, so an
        // access to a guest paging structure comes as a write with bits 0
        // and 1 (SDM Vol. 3C §29.3.3.2, Table 28-7), as L1 must see it.
        let ad = eptp12 & ept::EPTP_AD != 0;
        let needed = qualification & 7;
        let walk = ept::walk_l1(&*hw, eptp12, gpa2, self.caps.phys_bits, self.pages.ram)?;
        let mut e = ExitToL1::from_hw(hw)?;
        match walk {
            L1Walk::Mapped { gpa1, mut perms } if perms & needed == needed => {
                if ad {
                    match self.set_ept_flags(hw, eptp12, gpa2, needed & 2 != 0)? {
                        // Write permission only once the page is dirty:
                        // the first write comes back here to set the flag.
                        Flags::Set { dirty } => perms &= if dirty { 7 } else { 5 },
                        Flags::LogFull => {
                            // Exit 62: qualification bit 12 (NMI unblocking
                            // by IRET) only (SDM Vol. 3C §28.2.1).
                            e.reason = u32::from(er::PML_FULL);
                            e.qualification = qualification & 1 << 12;
                            e.guest_linear = 0;
                            e.guest_physical = 0;
                            self.exit_to_l1(hw, &e)?;
                            return Ok(Route::ToL1);
                        }
                    }
                }
                if gpa1 >= self.pages.ram {
                    return Ok(Route::Mmio);
                }
                self.shadow.install(hw, gpa2, gpa1, perms)?;
                // The access retries; an event being delivered is again.
                events::requeue_vectoring(hw)?;
                events::reblock_nmis_after_iret(hw, qualification)?;
                return Ok(Route::Resume);
            }
            L1Walk::Mapped { perms, .. } => {
                // Bits 5:3: what L1's entries allow (SDM Table 28-7); the
                // access bits, the linear-address bits 7 and 8 and NMI
                // unblocking (12) as the processor reported them.
                e.qualification = (qualification & (7 | 1 << 7 | 1 << 8 | 1 << 12)) | perms << 3;
            }
            L1Walk::NotPresent => {
                e.qualification = qualification & (7 | 1 << 7 | 1 << 8 | 1 << 12);
            }
            L1Walk::Misconfigured => {
                e.reason = u32::from(er::EPT_MISCONFIG);
                e.qualification = 0;
            }
        }
        self.exit_to_l1(hw, &e)?;
        Ok(Route::ToL1)
    }

    /// A notify exit from L2. L1 that enabled notify VM exiting hears of
    /// the stall once its own window has passed — and at once when the
    /// context is invalid: L2's state is L1's, and neither L0 nor L1 can
    /// resume it as it is (exit 75 with qualification bit 0). Without L1's
    /// notify the exit is L0's (`Route::L0`), and an invalid context
    /// becomes L0's userspace's decision.
    fn l2_notify(&mut self, hw: &mut impl VmxHardware) -> Result<Route, HwError> {
        let qualification = hw.vmread(f::EXIT_QUALIFICATION)?;
        let Some(l1_window) = self.l1_window() else {
            return Ok(Route::L0);
        };
        if qualification & q::NOTIFY_CONTEXT_INVALID != 0 {
            let e = ExitToL1::from_hw(hw)?;
            self.exit_to_l1(hw, &e)?;
            return Ok(Route::ToL1);
        }
        let window02 = u64::from(self.window02().unwrap_or(0));
        self.stalled += self.threshold + window02;
        if self.stalled < self.threshold + u64::from(l1_window) {
            return Ok(Route::L0);
        }
        let e = ExitToL1::from_hw(hw)?;
        self.exit_to_l1(hw, &e)?;
        Ok(Route::ToL1)
    }

    /// Whether L2 runs with L1's monitor trap flag (vmcs12's primary
    /// control): vmcs02 must keep it, and its exits go to L1.
    pub(crate) fn l1_monitor_trap(&self) -> bool {
        self.in_l2()
            && self.vmcs12.get32(f::CPU_BASED_VM_EXEC_CONTROL) & proc::MONITOR_TRAP_FLAG != 0
    }

    /// Whether an external interrupt for L1 that arrives while L2 runs makes
    /// L2 exit to L1 (vmcs12's external-interrupt exiting), and if so
    /// whether the exit acknowledges it. `None` when L1 lets L2 take it.
    pub(crate) fn l1_takes_interrupts(&self) -> Option<bool> {
        if !self.in_l2() {
            return None;
        }
        let pinv = self.vmcs12.get32(f::PIN_BASED_VM_EXEC_CONTROL);
        let exitv = self.vmcs12.get32(f::VM_EXIT_CONTROLS);
        (pinv & pin::EXT_INTR_EXITING != 0).then_some(exitv & exit_ctl::ACK_INTR_ON_EXIT != 0)
    }

    /// After L0 emulated an instruction of L2's (vmcs02 current): an
    /// exception L0 raised for it (a #GP from a refused MOV to CR0, say) is
    /// what the instruction itself would have raised, so when L1
    /// intercepts it (exception bitmap, #PF mask and match) it becomes an
    /// exception exit to L1 instead of an injection L1 never sees — VM
    /// entry's event injection does not consult the exception bitmap (SDM
    /// Vol. 3C §27.6.1). An event re-queued because the exit interrupted
    /// its delivery is left alone: L1 already had its say on it. `true`
    /// when the exit went to L1.
    pub(crate) fn reflect_raised_exception(
        &mut self,
        hw: &mut impl VmxHardware,
    ) -> Result<bool, HwError> {
        let queued = hw.vmread(f::VM_ENTRY_INTR_INFO)? as u32;
        let vectoring = hw.vmread(f::IDT_VECTORING_INFO)? as u32;
        if queued & intr_info::VALID == 0
            || (queued >> intr_info::TYPE_SHIFT) & 7 != intr_info::TYPE_HW_EXCEPTION
            || vectoring & intr_info::VALID != 0
        {
            return Ok(false);
        }
        let error = if queued & intr_info::ERROR_CODE_VALID != 0 {
            hw.vmread(f::VM_ENTRY_EXCEPTION_ERROR_CODE)? as u32
        } else {
            0
        };
        let facts = ExitFacts {
            reason: er::EXCEPTION_NMI,
            qualification: 0,
            intr_info: queued,
            intr_error_code: error,
            rcx: 0,
            cr_source: 0,
        };
        let pinv = self.vmcs12.get32(f::PIN_BASED_VM_EXEC_CONTROL);
        if !reflect::exception_wanted(&facts, &self.vmcs12, pinv) {
            return Ok(false);
        }
        hw.vmwrite(f::VM_ENTRY_INTR_INFO, 0)?;
        let e = ExitToL1 {
            reason: u32::from(er::EXCEPTION_NMI),
            intr_info: queued,
            intr_error: error,
            ..ExitToL1::default()
        };
        self.exit_to_l1(hw, &e)?;
        Ok(true)
    }

    /// Whether an external interrupt may make L2 exit now (vmcs02 current):
    /// not while L2 is in an STI or MOV-SS shadow, which blocks external
    /// interrupts even when they exit (SDM Vol. 3C §26.2, §25.4.2), and not
    /// when an interrupt-window or NMI-window exit L1 asked for comes first
    /// (§26.7.5, §26.7.6). Then the interrupt waits for the next exit.
    pub(crate) fn interrupt_exit_allowed(&self, hw: &impl VmxHardware) -> Result<bool, HwError> {
        use x86::vmx::interruptibility as blocking;
        let state = hw.vmread(f::GUEST_INTERRUPTIBILITY_INFO)? as u32;
        let procv = self.vmcs12.get32(f::CPU_BASED_VM_EXEC_CONTROL);
        let interrupts_open = hw.vmread(f::GUEST_RFLAGS)? & x86::rflags::IF != 0;
        Ok(state & (blocking::STI | blocking::MOV_SS) == 0
            && !(procv & proc::INTR_WINDOW_EXITING != 0 && interrupts_open)
            && !(procv & proc::NMI_WINDOW_EXITING != 0 && state & blocking::NMI == 0))
    }

    /// The external-interrupt exit to L1 (SDM §28.2.2): with the vector
    /// acknowledged when `acknowledged` holds it. vmcs02 is current.
    pub(crate) fn interrupt_exit(
        &mut self,
        hw: &mut impl VmxHardware,
        acknowledged: Option<u8>,
    ) -> Result<(), HwError> {
        let mut e = ExitToL1::synthetic(hw, er::EXTERNAL_INTERRUPT)?;
        if let Some(vector) = acknowledged {
            e.intr_info = intr_info::make(vector, intr_info::TYPE_EXT_INTR, false);
        }
        self.exit_to_l1(hw, &e)
    }

    /// The shutdown userspace injected while L2 runs: a TRIPLE_FAULT exit to
    /// L1 with no IDT-vectoring information (the stalled event is gone with
    /// the shutdown); L1 decides what becomes of L2.
    pub(crate) fn triple_fault_exit(&mut self, hw: &mut impl VmxHardware) -> Result<(), HwError> {
        let e = ExitToL1 {
            reason: u32::from(er::TRIPLE_FAULT),
            ..ExitToL1::default()
        };
        self.exit_to_l1(hw, &e)
    }

    /// After L0's interrupt logic rewrote vmcs02's interrupt-window control,
    /// puts back L1's request for one.
    pub(crate) fn keep_l1_windows(&self, hw: &mut impl VmxHardware) -> Result<(), HwError> {
        if !self.in_l2() {
            return Ok(());
        }
        let proc12 = self.vmcs12.get32(f::CPU_BASED_VM_EXEC_CONTROL);
        if proc12 & proc::INTR_WINDOW_EXITING != 0 {
            let procv = hw.vmread(f::CPU_BASED_VM_EXEC_CONTROL)?;
            hw.vmwrite(
                f::CPU_BASED_VM_EXEC_CONTROL,
                procv | u64::from(proc::INTR_WINDOW_EXITING),
            )?;
        }
        Ok(())
    }
}
