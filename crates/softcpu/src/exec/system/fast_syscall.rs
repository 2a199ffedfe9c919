//! SYSCALL and SYSRET, the fast system calls of 64-bit mode.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::state::Seg;
use iced_x86::{Instruction, Mnemonic};
use x86::address::is_canonical;
use x86::cr::EFER_SCE;
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
        self.s.seg[Seg::Cs as usize] = crate::state::Segment {
            selector: sel,
            base: 0,
            limit: 0xFFFF_FFFF,
            ar: AR_CODE64,
        };
        self.s.seg[Seg::Ss as usize] = crate::state::Segment {
            selector: sel.wrapping_add(8),
            base: 0,
            limit: 0xFFFF_FFFF,
            ar: AR_DATA32,
        };
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
        self.s.seg[Seg::Cs as usize] = crate::state::Segment {
            selector: cs_sel,
            base: 0,
            limit: 0xFFFF_FFFF,
            ar: cs_ar,
        };
        // SS keeps a flat DPL-3 data cache (SDM: "SS.DPL = 3").
        let ss = &mut self.s.seg[Seg::Ss as usize];
        ss.selector = base.wrapping_add(8) | 3;
        ss.ar = AR_DATA32 | ar_dpl(3);
        ss.base = 0;
        ss.limit = 0xFFFF_FFFF;
        self.s.rflags = (self.s.gpr[11] & x86::rflags::SYSRET_FROM_R11) | x86::rflags::FIXED1;
        self.next_rip = rip;
        Ok(())
    }
}
