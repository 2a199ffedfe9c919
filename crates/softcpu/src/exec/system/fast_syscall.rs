//! SYSCALL and SYSRET, the fast system calls of 64-bit mode.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::state::Seg;
use iced_x86::{Instruction, Mnemonic};
use x86::cr::EFER_SCE;

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
            ar: 0xA09B,
        };
        self.s.seg[Seg::Ss as usize] = crate::state::Segment {
            selector: sel.wrapping_add(8),
            base: 0,
            limit: 0xFFFF_FFFF,
            ar: 0xC093,
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
        if to64 {
            let top = (rcx as i64) >> 47;
            if top != 0 && top != -1 {
                return Err(Exception::gp(0).into());
            }
        }
        let base = ((self.s.msr.star >> 48) & 0xFFFF) as u16;
        let (cs_sel, cs_ar, rip) = if to64 {
            (base.wrapping_add(16) | 3, 0xA0FB, rcx)
        } else {
            (base | 3, 0xC0FB, rcx & 0xFFFF_FFFF)
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
        ss.ar = 0xC0F3;
        ss.base = 0;
        ss.limit = 0xFFFF_FFFF;
        self.s.rflags = (self.s.gpr[11] & 0x3C_7FD7) | x86::rflags::FIXED1;
        self.next_rip = rip;
        Ok(())
    }
}
