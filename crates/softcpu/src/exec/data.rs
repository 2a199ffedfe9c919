//! Data movement: MOV and its extensions, LEA, exchanges, the stack, sign
//! conversions, flag transfers, SETcc/CMOVcc/Jcc.

use super::flags::{self, mask, sext};
use super::{acc, gpr};
use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::state::Seg;
use iced_x86::{Code, Instruction, Mnemonic, OpKind, Register};
use x86::rflags::{CF, DF, FIXED1, LAHF_SAHF, ZF};

impl SoftCpu {
    /// MOV, MOVZX, MOVSX, MOVSXD (and MOV to or from segment, control and debug registers).
    pub(super) fn mov(&mut self, ins: &Instruction) -> Ex<()> {
        if ins.op0_kind() == OpKind::Register {
            let r = ins.op_register(0);
            if r.is_segment_register() {
                let sel = self.read_op(ins, 1, 2)? as u16;
                return self.load_segment_checked(crate::cpu::seg_of(r), sel);
            }
            if r.is_cr() || r.is_dr() {
                return self.mov_to_cr_dr(ins);
            }
        }
        if ins.op1_kind() == OpKind::Register {
            let r = ins.op_register(1);
            if r.is_segment_register() {
                let sel = u64::from(self.s.seg[crate::cpu::seg_of(r) as usize].selector);
                // A store of a segment register to a register zero-extends; to memory writes 16 bits.
                let size = if ins.op0_kind() == OpKind::Memory {
                    2
                } else {
                    self.op_size(ins, 0)
                };
                return self.write_op(ins, 0, size, sel);
            }
            if r.is_cr() || r.is_dr() {
                return self.mov_from_cr_dr(ins);
            }
        }
        let dsize = self.op_size(ins, 0);
        let ssize = self.op_size(ins, 1);
        let v = self.read_op(ins, 1, ssize)?;
        let v = match ins.mnemonic() {
            Mnemonic::Movsx | Mnemonic::Movsxd => sext(ssize, v) & mask(dsize),
            _ => v,
        };
        self.write_op(ins, 0, dsize, v)
    }

    /// LEA.
    pub(super) fn lea(&mut self, ins: &Instruction) -> Ex<()> {
        let ea = self.effective_address(ins);
        let size = self.op_size(ins, 0);
        self.set_reg(ins.op_register(0), ea & mask(size));
        Ok(())
    }

    /// XCHG, XADD, CMPXCHG, CMPXCHG8B, CMPXCHG16B.
    pub(super) fn exchange(&mut self, ins: &Instruction) -> Ex<()> {
        match ins.mnemonic() {
            Mnemonic::Xchg => {
                let size = self.op_size(ins, 0);
                let a = self.read_op(ins, 0, size)?;
                let b = self.read_op(ins, 1, size)?;
                // Memory operand (if any) is op0 or op1; write memory first so a fault changes nothing.
                if ins.op1_kind() == OpKind::Memory {
                    self.write_op(ins, 1, size, a)?;
                    self.write_op(ins, 0, size, b)
                } else {
                    self.write_op(ins, 0, size, b)?;
                    self.write_op(ins, 1, size, a)
                }
            }
            Mnemonic::Xadd => {
                let size = self.op_size(ins, 0);
                let a = self.read_op(ins, 0, size)?;
                let b = self.read_op(ins, 1, size)?;
                let (r, f) = flags::add(size, a, b, false);
                self.write_op(ins, 0, size, r)?;
                self.write_op(ins, 1, size, a)?;
                self.set_status(f);
                Ok(())
            }
            Mnemonic::Cmpxchg => {
                let size = self.op_size(ins, 0);
                let dst = self.read_op(ins, 0, size)?;
                let accv = self.reg(acc(size));
                let (_, f) = flags::sub(size, accv, dst, false);
                if f & ZF != 0 {
                    let src = self.read_op(ins, 1, size)?;
                    self.write_op(ins, 0, size, src)?;
                } else {
                    // The destination is written back with its own value (SDM CMPXCHG).
                    self.write_op(ins, 0, size, dst)?;
                    self.set_reg(acc(size), dst);
                }
                self.set_status(f);
                Ok(())
            }
            _ => self.compare_exchange_pair(ins),
        }
    }

    /// CMPXCHG8B m64 (EDX:EAX, ECX:EBX) and CMPXCHG16B m128 (RDX:RAX,
    /// RCX:RBX). ZF says whether the memory operand equalled the first pair;
    /// the other flags are unchanged. Memory is written either way (with its
    /// own value on a mismatch), and a mismatch loads it into the first
    /// pair. CMPXCHG16B's operand must be 16-byte aligned, else #GP(0)
    /// before any access (SDM Vol. 2A CMPXCHG8B/CMPXCHG16B).
    fn compare_exchange_pair(&mut self, ins: &Instruction) -> Ex<()> {
        let wide = ins.mnemonic() == Mnemonic::Cmpxchg16b;
        let (half, mask) = if wide {
            (64, u64::MAX)
        } else {
            (32, 0xFFFF_FFFF)
        };
        let pair = |lo: u64, hi: u64| u128::from(hi & mask) << half | u128::from(lo & mask);
        let ea = self.effective_address(ins);
        let seg = Self::mem_seg(ins);
        let m = if wide {
            self.read_u128(seg, ea, true)?
        } else {
            u128::from(self.read_mem(seg, ea, 8)?)
        };
        let g = self.s.gpr;
        let equal = m == pair(g[0], g[2]);
        let store = if equal { pair(g[3], g[1]) } else { m };
        if wide {
            self.write_u128(seg, ea, store, true)?;
        } else {
            self.write_mem(seg, ea, 8, store as u64)?;
        }
        if !equal {
            self.s.gpr[0] = m as u64 & mask;
            self.s.gpr[2] = (m >> half) as u64 & mask;
        }
        let f = self.s.rflags & x86::rflags::STATUS & !ZF;
        self.set_status(if equal { f | ZF } else { f });
        Ok(())
    }

    /// Operand size of a stack instruction.
    fn stack_operand_size(&self, ins: &Instruction) -> usize {
        if ins.op_count() > 0 {
            if let OpKind::Register = ins.op0_kind() {
                let r = ins.op0_register();
                if !r.is_segment_register() {
                    return r.size();
                }
            }
            if ins.op0_kind() == OpKind::Memory {
                return ins.memory_size().size();
            }
        }
        match ins.code() {
            Code::Leavew | Code::Enterw_imm16_imm8 => return 2,
            Code::Leaved | Code::Enterd_imm16_imm8 => return 4,
            Code::Leaveq | Code::Enterq_imm16_imm8 => return 8,
            _ => {}
        }
        // PUSH imm, PUSH/POP sreg, PUSHF/POPF: from the stack pointer increment iced reports.
        let inc = ins.stack_pointer_increment().unsigned_abs() as usize;
        match ins.mnemonic() {
            Mnemonic::Pusha | Mnemonic::Popa => 2,
            Mnemonic::Pushad | Mnemonic::Popad => 4,
            _ if inc > 0 => inc,
            _ => 8,
        }
    }

    /// PUSH, POP, PUSHF, POPF, PUSHA, POPA, LEAVE, ENTER.
    pub(super) fn stack_op(&mut self, ins: &Instruction) -> Ex<()> {
        let size = self.stack_operand_size(ins);
        match ins.mnemonic() {
            Mnemonic::Push => {
                let v = if ins.op0_kind() == OpKind::Register
                    && ins.op0_register().is_segment_register()
                {
                    u64::from(self.s.seg[crate::cpu::seg_of(ins.op0_register()) as usize].selector)
                } else {
                    self.read_op(ins, 0, size)?
                };
                self.push(size, v)
            }
            Mnemonic::Pop => {
                if ins.op0_kind() == OpKind::Register && ins.op0_register().is_segment_register() {
                    let saved = self.s.gpr[4];
                    let v = self.pop(size)?;
                    if let Err(e) =
                        self.load_segment_checked(crate::cpu::seg_of(ins.op0_register()), v as u16)
                    {
                        self.s.gpr[4] = saved;
                        return Err(e);
                    }
                    return Ok(());
                }
                // POP with a memory operand using RSP computes the address after the increment.
                let saved = self.s.gpr[4];
                let v = self.pop(size)?;
                if let Err(e) = self.write_op(ins, 0, size, v) {
                    self.s.gpr[4] = saved;
                    return Err(e);
                }
                Ok(())
            }
            Mnemonic::Pushf | Mnemonic::Pushfd | Mnemonic::Pushfq => {
                // VM and RF are cleared in the pushed image (SDM PUSHF).
                let v = self.s.rflags & !(x86::rflags::VM | x86::rflags::RF);
                self.push(size, v)
            }
            Mnemonic::Popf | Mnemonic::Popfd | Mnemonic::Popfq => {
                let v = self.pop(size)?;
                self.write_rflags_popf(v, size);
                Ok(())
            }
            Mnemonic::Pusha | Mnemonic::Pushad => {
                let sp = self.s.gpr[4];
                let saved = sp;
                for n in 0..8 {
                    let v = if n == 4 { sp } else { self.s.gpr[n] };
                    if let Err(e) = self.push(size, v & mask(size)) {
                        self.s.gpr[4] = saved;
                        return Err(e);
                    }
                }
                Ok(())
            }
            Mnemonic::Popa | Mnemonic::Popad => {
                let saved = self.s.gpr[4];
                let mut vals = [0u64; 8];
                for n in (0..8).rev() {
                    match self.pop(size) {
                        Ok(v) => vals[n] = v,
                        Err(e) => {
                            self.s.gpr[4] = saved;
                            return Err(e);
                        }
                    }
                }
                for (n, v) in vals.iter().enumerate() {
                    if n != 4 {
                        self.set_reg(gpr(size, n), *v);
                    }
                }
                Ok(())
            }
            Mnemonic::Leave => {
                let ss = self.s.stack_size();
                let bp = Self::mask_addr(u32::from(ss), self.s.gpr[5]);
                let v = self.read_mem(Seg::Ss, bp, size)?;
                self.set_rsp(ss, bp.wrapping_add(size as u64));
                self.set_reg(gpr(size, 5), v);
                Ok(())
            }
            _ => {
                // ENTER imm16, 0 (nesting levels above 0 are rare; handled as level 0 plus copies).
                let alloc = ins.immediate16() as u64;
                let level = u64::from(ins.immediate8_2nd()) & 31;
                let saved = (self.s.gpr[4], self.s.gpr[5]);
                let r = (|| {
                    self.push(size, self.s.gpr[5])?;
                    let frame = self.s.gpr[4];
                    for i in 1..level {
                        let bp = self.s.gpr[5].wrapping_sub(i * size as u64);
                        let v = self.read_mem(Seg::Ss, bp, size)?;
                        self.push(size, v)?;
                    }
                    if level > 0 {
                        self.push(size, frame)?;
                    }
                    self.set_reg(gpr(size, 5), frame);
                    let ss = self.s.stack_size();
                    self.set_rsp(ss, self.s.gpr[4].wrapping_sub(alloc));
                    Ok(())
                })();
                if r.is_err() {
                    (self.s.gpr[4], self.s.gpr[5]) = saved;
                }
                r
            }
        }
    }

    /// POPF/IRET flag update with the privilege rules of SDM Vol. 2B POPF.
    pub(crate) fn write_rflags_popf(&mut self, v: u64, size: usize) {
        let cpl = self.s.cpl();
        let iopl = x86::rflags::iopl(self.s.rflags);
        let mut writable = x86::rflags::STATUS
            | x86::rflags::TF
            | x86::rflags::DF
            | x86::rflags::NT
            | x86::rflags::AC
            | x86::rflags::ID;
        if cpl <= iopl {
            writable |= x86::rflags::IF;
        }
        if cpl == 0 {
            writable |= x86::rflags::IOPL;
        }
        writable &= mask(size);
        self.s.rflags = (self.s.rflags & !writable) | (v & writable) | x86::rflags::FIXED1;
    }

    /// CBW/CWDE/CDQE and CWD/CDQ/CQO.
    pub(super) fn convert(&mut self, ins: &Instruction) -> Ex<()> {
        match ins.mnemonic() {
            Mnemonic::Cbw => self.set_reg(Register::AX, sext(1, self.reg(Register::AL))),
            Mnemonic::Cwde => self.set_reg(Register::EAX, sext(2, self.reg(Register::AX))),
            Mnemonic::Cdqe => self.set_reg(Register::RAX, sext(4, self.reg(Register::EAX))),
            m => {
                let size = match m {
                    Mnemonic::Cwd => 2,
                    Mnemonic::Cdq => 4,
                    _ => 8,
                };
                let a = self.reg(acc(size));
                let hi = if sext(size, a) >> 63 != 0 {
                    mask(size)
                } else {
                    0
                };
                self.set_reg(gpr(size, 2), hi);
            }
        }
        Ok(())
    }

    /// BSWAP.
    pub(super) fn bswap(&mut self, ins: &Instruction) -> Ex<()> {
        let r = ins.op0_register();
        let v = self.reg(r);
        let out = match r.size() {
            8 => v.swap_bytes(),
            4 => u64::from((v as u32).swap_bytes()),
            _ => 0, // 16-bit BSWAP is undefined; the processors we compare against give 0.
        };
        self.set_reg(r, out);
        Ok(())
    }

    /// LAHF, SAHF, CLC, STC, CMC, CLD, STD.
    pub(super) fn flag_op(&mut self, ins: &Instruction) -> Ex<()> {
        let f = &mut self.s.rflags;
        match ins.mnemonic() {
            Mnemonic::Lahf => {
                let ah = (*f & LAHF_SAHF) | FIXED1;
                self.set_reg(Register::AH, ah);
            }
            Mnemonic::Sahf => {
                let ah = self.reg(Register::AH);
                self.s.rflags = (self.s.rflags & !LAHF_SAHF) | (ah & LAHF_SAHF);
            }
            Mnemonic::Clc => *f &= !CF,
            Mnemonic::Stc => *f |= CF,
            Mnemonic::Cmc => *f ^= CF,
            Mnemonic::Cld => *f &= !DF,
            _ => *f |= DF,
        }
        Ok(())
    }

    /// XLAT.
    pub(super) fn xlat(&mut self, ins: &Instruction) -> Ex<()> {
        let asize = match ins.memory_base().size() {
            0 => 8,
            n => n as u32,
        };
        let off = Self::mask_addr(
            asize,
            self.reg(ins.memory_base())
                .wrapping_add(self.reg(Register::AL)),
        );
        let v = self.read_mem(Self::mem_seg(ins), off, 1)?;
        self.set_reg(Register::AL, v);
        Ok(())
    }

    /// Jcc, SETcc, CMOVcc.
    pub(super) fn conditional(&mut self, ins: &Instruction) -> Ex<()> {
        let taken = self.condition(ins.condition_code());
        match ins.mnemonic() {
            Mnemonic::Seta
            | Mnemonic::Setae
            | Mnemonic::Setb
            | Mnemonic::Setbe
            | Mnemonic::Sete
            | Mnemonic::Setg
            | Mnemonic::Setge
            | Mnemonic::Setl
            | Mnemonic::Setle
            | Mnemonic::Setne
            | Mnemonic::Setno
            | Mnemonic::Setnp
            | Mnemonic::Setns
            | Mnemonic::Seto
            | Mnemonic::Setp
            | Mnemonic::Sets => self.write_op(ins, 0, 1, u64::from(taken)),
            Mnemonic::Cmova
            | Mnemonic::Cmovae
            | Mnemonic::Cmovb
            | Mnemonic::Cmovbe
            | Mnemonic::Cmove
            | Mnemonic::Cmovg
            | Mnemonic::Cmovge
            | Mnemonic::Cmovl
            | Mnemonic::Cmovle
            | Mnemonic::Cmovne
            | Mnemonic::Cmovno
            | Mnemonic::Cmovnp
            | Mnemonic::Cmovns
            | Mnemonic::Cmovo
            | Mnemonic::Cmovp
            | Mnemonic::Cmovs => {
                let size = self.op_size(ins, 0);
                // The source is read (and may fault) whether or not the move happens;
                // a 32-bit destination is zero-extended either way.
                let v = self.read_op(ins, 1, size)?;
                let r = ins.op0_register();
                let out = if taken { v } else { self.reg(r) };
                self.set_reg(r, out);
                Ok(())
            }
            _ => {
                if ins.op0_kind() == OpKind::NearBranch16
                    || ins.op0_kind() == OpKind::NearBranch32
                    || ins.op0_kind() == OpKind::NearBranch64
                {
                    if taken {
                        self.jump_near(ins.near_branch_target())?;
                    }
                    Ok(())
                } else {
                    Err(Exception::ud().into())
                }
            }
        }
    }
}
