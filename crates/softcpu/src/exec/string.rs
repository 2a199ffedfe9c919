//! String instructions with REP prefixes (SDM Vol. 2B MOVS/STOS/LODS/CMPS/SCAS, REP).
//!
//! A REP-prefixed instruction runs at most [`REP_CHUNK`] iterations per step
//! and then resumes at the same RIP, which is how real processors let
//! interrupts in between iterations. Every iteration after the first costs
//! one cycle of virtual time, so a long REP is not free.

use super::acc;
use super::flags::{self, mask};
use crate::cpu::SoftCpu;
use crate::fault::Ex;
use crate::state::Seg;
use iced_x86::{Instruction, Mnemonic, OpKind, Register};

/// Iterations of a REP string instruction per step.
const REP_CHUNK: u32 = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Movs,
    Stos,
    Lods,
    Cmps,
    Scas,
    Ins,
    Outs,
}

impl SoftCpu {
    /// Executes MOVS/STOS/LODS/CMPS/SCAS/INS/OUTS with optional REP/REPE/REPNE.
    pub(super) fn string_op(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        let (kind, size) = match ins.mnemonic() {
            M::Movsb => (Kind::Movs, 1),
            M::Movsw => (Kind::Movs, 2),
            M::Movsd => (Kind::Movs, 4),
            M::Movsq => (Kind::Movs, 8),
            M::Stosb => (Kind::Stos, 1),
            M::Stosw => (Kind::Stos, 2),
            M::Stosd => (Kind::Stos, 4),
            M::Stosq => (Kind::Stos, 8),
            M::Lodsb => (Kind::Lods, 1),
            M::Lodsw => (Kind::Lods, 2),
            M::Lodsd => (Kind::Lods, 4),
            M::Lodsq => (Kind::Lods, 8),
            M::Cmpsb => (Kind::Cmps, 1),
            M::Cmpsw => (Kind::Cmps, 2),
            M::Cmpsd => (Kind::Cmps, 4),
            M::Cmpsq => (Kind::Cmps, 8),
            M::Scasb => (Kind::Scas, 1),
            M::Scasw => (Kind::Scas, 2),
            M::Scasd => (Kind::Scas, 4),
            M::Scasq => (Kind::Scas, 8),
            M::Insb => (Kind::Ins, 1),
            M::Insw => (Kind::Ins, 2),
            M::Insd => (Kind::Ins, 4),
            M::Outsb => (Kind::Outs, 1),
            M::Outsw => (Kind::Outs, 2),
            _ => (Kind::Outs, 4),
        };
        if matches!(kind, Kind::Ins | Kind::Outs) {
            return self.string_io(ins, kind == Kind::Ins, size);
        }
        let asize = string_address_size(ins);
        let counter = match asize {
            8 => Register::RCX,
            4 => Register::ECX,
            _ => Register::CX,
        };
        let rep = ins.has_rep_prefix() || ins.has_repne_prefix();
        let src_seg = match kind {
            Kind::Movs | Kind::Lods | Kind::Cmps => Self::mem_seg(ins),
            _ => Seg::Ds,
        };
        let step = if self.flag(x86::rflags::DF) {
            (size as u64).wrapping_neg()
        } else {
            size as u64
        };
        let (si, di) = match asize {
            8 => (Register::RSI, Register::RDI),
            4 => (Register::ESI, Register::EDI),
            _ => (Register::SI, Register::DI),
        };
        let mut done = 0;
        loop {
            if rep && self.reg(counter) == 0 {
                // Intel parts write the 32-bit count back even when it is
                // already zero, clearing RCX[63:32] (seen on Intel silicon
                // under KVM; AMD parts and QEMU TCG leave RCX alone).
                if asize == 4 {
                    self.set_reg(counter, 0);
                }
                return Ok(());
            }
            if rep && done == REP_CHUNK {
                // Resume this instruction on the next step.
                self.next_rip = self.s.rip;
                return Ok(());
            }
            let s_off = self.reg(si);
            let d_off = self.reg(di);
            let mut stop = false;
            match kind {
                Kind::Movs => {
                    let v = self.read_mem(src_seg, s_off, size)?;
                    self.write_mem(Seg::Es, d_off, size, v)?;
                    self.set_reg(si, s_off.wrapping_add(step));
                    self.set_reg(di, d_off.wrapping_add(step));
                }
                Kind::Stos => {
                    let v = self.reg(acc(size));
                    self.write_mem(Seg::Es, d_off, size, v)?;
                    self.set_reg(di, d_off.wrapping_add(step));
                }
                Kind::Lods => {
                    let v = self.read_mem(src_seg, s_off, size)?;
                    self.set_reg(acc(size), v);
                    self.set_reg(si, s_off.wrapping_add(step));
                }
                Kind::Cmps | Kind::Scas => {
                    let (a, b) = if kind == Kind::Cmps {
                        let a = self.read_mem(src_seg, s_off, size)?;
                        let b = self.read_mem(Seg::Es, d_off, size)?;
                        self.set_reg(si, s_off.wrapping_add(step));
                        (a, b)
                    } else {
                        let b = self.read_mem(Seg::Es, d_off, size)?;
                        (self.reg(acc(size)) & mask(size), b)
                    };
                    self.set_reg(di, d_off.wrapping_add(step));
                    let (_, f) = flags::sub(size, a, b, false);
                    self.set_status(f);
                    let zf = f & x86::rflags::ZF != 0;
                    stop = (ins.has_repe_prefix() && !zf) || (ins.has_repne_prefix() && zf);
                }
                // Routed to `string_io` before the loop.
                Kind::Ins | Kind::Outs => return Ok(()),
            }
            if !rep {
                return Ok(());
            }
            let c = self.reg(counter).wrapping_sub(1);
            self.set_reg(counter, c);
            // The iteration is architecturally done (its registers are
            // written): MMIO emulation keeps its accesses even if a later
            // iteration stops.
            self.mmio_commit();
            done += 1;
            if done > 1 {
                self.tick(self.instruction_cycles);
            }
            if stop {
                return Ok(());
            }
        }
    }
}

/// Address size of a string instruction, from its implicit memory operand.
pub(crate) fn string_address_size(ins: &Instruction) -> u32 {
    for i in 0..ins.op_count() {
        match ins.op_kind(i) {
            OpKind::MemorySegRSI | OpKind::MemoryESRDI => return 8,
            OpKind::MemorySegESI | OpKind::MemoryESEDI => return 4,
            OpKind::MemorySegSI | OpKind::MemoryESDI => return 2,
            _ => {}
        }
    }
    8
}
