//! Processor control: HLT, CLI/STI, CPUID and the time-stamp counter
//! (RDTSC, RDTSCP).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::vmx::instruction_exit;
use iced_x86::{Instruction, Mnemonic};
use x86::cr::CR4_TSD;
use x86::vmx::{exit_reason as er, proc, proc2};

impl SoftCpu {
    /// HLT (SDM Vol. 2A HLT); exits with HLT exiting.
    pub(super) fn hlt(&mut self, ins: &Instruction) -> Ex<()> {
        self.require_cpl0()?;
        if self.vmx.proc(proc::HLT_EXITING) {
            return Err(instruction_exit(ins, er::HLT, 0));
        }
        self.halted = true;
        Ok(())
    }

    /// CLI and STI: CPL ≤ IOPL in protected mode; STI that sets IF blocks
    /// interrupts for one instruction (SDM Vol. 2A STI).
    pub(super) fn cli_sti(&mut self, ins: &Instruction) -> Ex<()> {
        self.io_permitted()?;
        if ins.mnemonic() == Mnemonic::Cli {
            self.s.rflags &= !x86::rflags::IF;
        } else {
            if self.s.rflags & x86::rflags::IF == 0 {
                self.next_blocking.sti = true;
            }
            self.s.rflags |= x86::rflags::IF;
        }
        Ok(())
    }

    /// CPUID; it always exits in VMX non-root operation.
    pub(super) fn cpuid(&mut self, ins: &Instruction) -> Ex<()> {
        if self.vmx.non_root {
            return Err(instruction_exit(ins, er::CPUID, 0));
        }
        let [a, b, c, d] = self.native_cpuid(self.s.gpr[0] as u32, self.s.gpr[1] as u32);
        self.s.gpr[0] = u64::from(a);
        self.s.gpr[3] = u64::from(b);
        self.s.gpr[1] = u64::from(c);
        self.s.gpr[2] = u64::from(d);
        Ok(())
    }

    /// PAUSE: a spin-loop hint, or a VM exit (SDM Vol. 3C §26.1.3) where
    /// "PAUSE exiting" is 1, at any privilege level; else, at CPL 0 with
    /// "PAUSE-loop exiting", when this PAUSE ends a loop of them longer
    /// than PLE_Window: PAUSEs no more than PLE_Gap TSC cycles apart are
    /// one loop, which begins at the first PAUSE after a VM entry or after a
    /// longer gap.
    pub(in crate::exec) fn pause(&mut self, ins: &Instruction) -> Ex<()> {
        if self.vmx.proc(proc::PAUSE_EXITING) {
            return Err(instruction_exit(ins, er::PAUSE, 0));
        }
        if self.vmx.proc2(proc2::PAUSE_LOOP_EXITING) && self.s.cpl() == 0 {
            let now = self.cycles;
            let gap = u64::from(self.vmx.vmcs.get32(x86::vmx::field::PLE_GAP));
            let window = u64::from(self.vmx.vmcs.get32(x86::vmx::field::PLE_WINDOW));
            match self.pause_loop {
                Some((first, last)) if now - last <= gap => {
                    self.pause_loop = Some((first, now));
                    if now - first > window {
                        return Err(instruction_exit(ins, er::PAUSE, 0));
                    }
                }
                _ => self.pause_loop = Some((now, now)),
            }
        }
        Ok(())
    }

    /// RDTSC and RDTSCP (SDM Vol. 2B), with CR4.TSD, RDTSC exiting and
    /// the enable-RDTSCP control.
    pub(super) fn rdtsc(&mut self, ins: &Instruction) -> Ex<()> {
        if self.s.cr4 & CR4_TSD != 0 && self.s.cpl() != 0 {
            return Err(Exception::gp(0).into());
        }
        if ins.mnemonic() == Mnemonic::Rdtsc && self.vmx.proc(proc::RDTSC_EXITING) {
            return Err(instruction_exit(ins, er::RDTSC, 0));
        }
        if ins.mnemonic() == Mnemonic::Rdtscp {
            if self.vmx.non_root && !self.vmx.proc2(proc2::ENABLE_RDTSCP) {
                return Err(Exception::ud().into());
            }
            if self.vmx.proc(proc::RDTSC_EXITING) {
                return Err(instruction_exit(ins, er::RDTSCP, 0));
            }
            self.s.gpr[1] = self.s.msr.tsc_aux & 0xFFFF_FFFF;
        }
        let tsc = self.guest_tsc();
        self.s.gpr[0] = tsc & 0xFFFF_FFFF;
        self.s.gpr[2] = tsc >> 32;
        Ok(())
    }

    /// Whether RDTSC (`rdtscp` false) or RDTSCP would now do nothing but
    /// read the TSC: no fault and no VM exit (the checks of [`Self::rdtsc`]).
    pub(crate) fn reads_tsc_plainly(&self, rdtscp: bool) -> bool {
        let faults = self.s.cr4 & CR4_TSD != 0 && self.s.cpl() != 0;
        let undefined = rdtscp && self.vmx.non_root && !self.vmx.proc2(proc2::ENABLE_RDTSCP);
        !(faults || undefined || self.vmx.proc(proc::RDTSC_EXITING))
    }

    /// Whether PAUSE would now do nothing: neither PAUSE exiting nor
    /// PAUSE-loop exiting applies (the checks of [`Self::pause`]).
    pub(crate) fn pauses_plainly(&self) -> bool {
        let loop_exiting = self.vmx.proc2(proc2::PAUSE_LOOP_EXITING) && self.s.cpl() == 0;
        !(loop_exiting || self.vmx.proc(proc::PAUSE_EXITING))
    }

    /// The TSC as the guest reads it (with the VMCS TSC offset when enabled).
    pub(crate) fn guest_tsc(&self) -> u64 {
        let mut t = self.tsc();
        if self.vmx.proc(proc::USE_TSC_OFFSETTING) {
            t = t.wrapping_add(self.vmx.ctl.tsc_offset);
        }
        t
    }
}
