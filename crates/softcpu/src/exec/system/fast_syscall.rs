//! SYSCALL and SYSRET, the fast system calls of 64-bit mode, and SYSENTER
//! and SYSEXIT.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::state::Seg;
use crate::state::Segment;
use iced_x86::{Code, Instruction, Mnemonic};
use x86::address::is_canonical;
use x86::cr::{CR0_PE, EFER_LMA, EFER_SCE};
use x86::segment::{ar_dpl, AR_CODE32, AR_CODE64, AR_DATA32};

impl SoftCpu {
    /// SYSCALL in 64-bit mode (SDM Vol. 2B SYSCALL).
    pub(super) fn syscall(&mut self, _ins: &Instruction) -> Ex<()> {
        if !self.s.mode64() || self.s.efer & EFER_SCE == 0 {
            return Err(Exception::ud().into());
        }
        let star = self.s.msr.star;
        let sel = ((star >> 32) & 0xFFFC) as u16;
        self.s.gpr[1] = self.next_rip;
        self.s.gpr[11] = self.s.rflags & !x86::rflags::RF;
        self.load_fast_segments(sel, AR_CODE64, sel.wrapping_add(8), 0);
        self.s.rflags =
            (self.s.rflags & !self.s.msr.fmask & !x86::rflags::RF) | x86::rflags::FIXED1;
        self.next_rip = self.s.msr.lstar;
        Ok(())
    }

    /// SYSRET to 64-bit (REX.W) or compatibility mode (SDM Vol. 2B SYSRET).
    pub(super) fn sysret(&mut self, ins: &Instruction) -> Ex<()> {
        if !self.s.mode64() || self.s.efer & EFER_SCE == 0 {
            return Err(Exception::ud().into());
        }
        self.require_cpl0()?;
        let to64 = ins.mnemonic() == Mnemonic::Sysretq || ins.code() == iced_x86::Code::Sysretq;
        let rcx = self.s.gpr[1];
        if to64 && !is_canonical(rcx) {
            return Err(Exception::gp(0).into());
        }
        let base = ((self.s.msr.star >> 48) & 0xFFFF) as u16;
        let (cs_sel, cs_ar, rip) = if to64 {
            (base.wrapping_add(16) | 3, AR_CODE64 | ar_dpl(3), rcx)
        } else {
            (base | 3, AR_CODE32 | ar_dpl(3), rcx & 0xFFFF_FFFF)
        };
        // SS gets a flat DPL-3 data cache (SDM: "SS.DPL = 3").
        self.load_fast_segments(cs_sel, cs_ar, base.wrapping_add(8) | 3, 3);
        self.s.rflags = (self.s.gpr[11] & x86::rflags::SYSRET_FROM_R11) | x86::rflags::FIXED1;
        self.next_rip = rip;
        Ok(())
    }

    /// SYSENTER (SDM Vol. 2B SYSENTER): to CPL 0 at IA32_SYSENTER_EIP with
    /// the stack at IA32_SYSENTER_ESP, CS and SS flat from IA32_SYSENTER_CS
    /// (64-bit CS in IA-32e mode); VM, IF and RF cleared.
    pub(super) fn sysenter(&mut self) -> Ex<()> {
        let cs = self.s.msr.sysenter_cs as u16;
        if self.s.cr0 & CR0_PE == 0 || cs & 0xFFFC == 0 {
            return Err(Exception::gp(0).into());
        }
        let ia32e = self.s.efer & EFER_LMA != 0;
        let (cs_ar, width) = if ia32e {
            (AR_CODE64, u64::MAX)
        } else {
            (AR_CODE32, 0xFFFF_FFFF)
        };
        self.load_fast_segments(cs & 0xFFFC, cs_ar, (cs & 0xFFFC).wrapping_add(8), 0);
        self.s.rflags &= !(x86::rflags::VM | x86::rflags::IF | x86::rflags::RF);
        self.s.gpr[4] = self.s.msr.sysenter_esp & width;
        self.next_rip = self.s.msr.sysenter_eip & width;
        Ok(())
    }

    /// SYSEXIT to 64-bit code (REX.W) or 32-bit code (SDM Vol. 2B SYSEXIT):
    /// CPL 3 at RDX with the stack at RCX, CS and SS at IA32_SYSENTER_CS
    /// + 32 / + 40 (64-bit) or + 16 / + 24.
    pub(super) fn sysexit(&mut self, ins: &Instruction) -> Ex<()> {
        let base = self.s.msr.sysenter_cs as u16;
        if self.s.cr0 & CR0_PE == 0 || base & 0xFFFC == 0 {
            return Err(Exception::gp(0).into());
        }
        self.require_cpl0()?;
        let to64 = ins.code() == Code::Sysexitq;
        let (rip, rsp) = (self.s.gpr[2], self.s.gpr[1]);
        if to64 && !(is_canonical(rip) && is_canonical(rsp)) {
            return Err(Exception::gp(0).into());
        }
        let (cs, cs_ar, width) = if to64 {
            (base.wrapping_add(32), AR_CODE64, u64::MAX)
        } else {
            (base.wrapping_add(16), AR_CODE32, 0xFFFF_FFFF)
        };
        self.load_fast_segments(cs | 3, cs_ar | ar_dpl(3), cs.wrapping_add(8) | 3, 3);
        self.s.gpr[4] = rsp & width;
        self.next_rip = rip & width;
        Ok(())
    }

    /// Loads CS and SS with the flat descriptors the fast system calls use
    /// (base 0, limit 4 GiB; SS a read/write data segment of DPL `ss_dpl`).
    fn load_fast_segments(&mut self, cs: u16, cs_ar: u32, ss: u16, ss_dpl: u8) {
        self.s.seg[Seg::Cs as usize] = Segment {
            selector: cs,
            base: 0,
            limit: 0xFFFF_FFFF,
            ar: cs_ar,
        };
        self.s.seg[Seg::Ss as usize] = Segment {
            selector: ss,
            base: 0,
            limit: 0xFFFF_FFFF,
            ar: AR_DATA32 | ar_dpl(ss_dpl),
        };
    }
}
