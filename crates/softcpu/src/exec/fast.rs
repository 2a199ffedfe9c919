//! Specialised handlers for the most frequent instruction forms, chosen once
//! at decode time. Each does exactly what the general path in this module's
//! parent does for that form, without re-dispatching on the mnemonic and the
//! operand kinds at every execution.

use super::{flags, lazy};
use crate::cpu::SoftCpu;
use crate::decode::{Handler, Op};
use crate::fault::Ex;
use iced_x86::{ConditionCode, Instruction, Mnemonic, OpKind};

const ADD: u8 = 0;
const SUB: u8 = 1;
const AND: u8 = 2;
const OR: u8 = 3;
const XOR: u8 = 4;
const CMP: u8 = 5;
const TEST: u8 = 6;

/// Computes an ALU operation and records its flags lazily.
#[inline(always)]
fn alu<const OP: u8>(cpu: &mut SoftCpu, size: usize, a: u64, b: u64) -> u64 {
    let m = flags::mask(size);
    let (r, kind) = match OP {
        ADD => (a.wrapping_add(b) & m, lazy::ADD),
        SUB | CMP => (a.wrapping_sub(b) & m, lazy::SUB),
        AND | TEST => (a & b, lazy::LOGIC),
        OR => (a | b, lazy::LOGIC),
        _ => (a ^ b, lazy::LOGIC),
    };
    cpu.set_lazy(kind, size, a, b, r);
    r
}

const fn stores(op: u8) -> bool {
    op != CMP && op != TEST
}

fn alu_rr<const OP: u8>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.r0.size();
    let a = cpu.rd(op.r0);
    let b = cpu.rd(op.r1);
    let r = alu::<OP>(cpu, size, a, b);
    if stores(OP) {
        cpu.wr(op.r0, r);
    }
    Ok(())
}

fn alu_ri<const OP: u8>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.r0.size();
    let a = cpu.rd(op.r0);
    let r = alu::<OP>(cpu, size, a, op.imm);
    if stores(OP) {
        cpu.wr(op.r0, r);
    }
    Ok(())
}

fn alu_rm<const OP: u8>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.r0.size();
    let a = cpu.rd(op.r0);
    let ea = cpu.ea(&op.mem);
    let b = cpu.read_mem(op.mem.seg, ea, size)?;
    let r = alu::<OP>(cpu, size, a, b);
    if stores(OP) {
        cpu.wr(op.r0, r);
    }
    Ok(())
}

fn alu_m<const OP: u8, const IMM: bool>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.ins.memory_size().size();
    let ea = cpu.ea(&op.mem);
    let seg = op.mem.seg;
    let a = cpu.read_mem(seg, ea, size)?;
    let b = if IMM { op.imm } else { cpu.rd(op.r1) };
    if stores(OP) {
        // The store may fault: flags change only once it is done.
        let saved = cpu.lazy;
        let r = alu::<OP>(cpu, size, a, b);
        if let Err(e) = cpu.write_mem(seg, ea, size, r) {
            cpu.lazy = saved;
            return Err(e);
        }
    } else {
        alu::<OP>(cpu, size, a, b);
    }
    Ok(())
}

fn mov_rr(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let v = cpu.rd(op.r1);
    cpu.wr(op.r0, v);
    Ok(())
}

fn mov_ri(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    cpu.wr(op.r0, op.imm);
    Ok(())
}

fn mov_rm(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let ea = cpu.ea(&op.mem);
    let v = cpu.read_mem(op.mem.seg, ea, op.r0.size())?;
    cpu.wr(op.r0, v);
    Ok(())
}

fn mov_mr(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let ea = cpu.ea(&op.mem);
    let v = cpu.rd(op.r1);
    cpu.write_mem(op.mem.seg, ea, op.r1.size(), v)
}

fn mov_mi(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.ins.memory_size().size();
    let ea = cpu.ea(&op.mem);
    cpu.write_mem(op.mem.seg, ea, size, op.imm)
}

fn movzx_rm(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.ins.memory_size().size();
    let ea = cpu.ea(&op.mem);
    let v = cpu.read_mem(op.mem.seg, ea, size)?;
    cpu.wr(op.r0, v);
    Ok(())
}

fn lea(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let ea = cpu.ea(&op.mem);
    cpu.wr(op.r0, ea & flags::mask(op.r0.size()));
    Ok(())
}

fn inc_dec_r<const DEC: bool>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.r0.size();
    let a = cpu.rd(op.r0);
    let m = flags::mask(size);
    // INC and DEC leave CF unchanged (the lazy record keeps it).
    let r = if DEC {
        let r = a.wrapping_sub(1) & m;
        cpu.set_lazy(lazy::DEC, size, a, 1, r);
        r
    } else {
        let r = a.wrapping_add(1) & m;
        cpu.set_lazy(lazy::INC, size, a, 1, r);
        r
    };
    cpu.wr(op.r0, r);
    Ok(())
}

fn jcc(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    if cpu.condition(op.ins.condition_code()) {
        cpu.jump_near(op.ins.near_branch_target())?;
    }
    Ok(())
}

fn jmp_rel(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    cpu.jump_near(op.ins.near_branch_target())
}

fn push_r(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let v = cpu.rd(op.r0);
    cpu.push(op.r0.size(), v)
}

fn pop_r(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let v = cpu.pop(op.r0.size())?;
    cpu.wr(op.r0, v);
    Ok(())
}

/// SHL/SHR/SAR of a register by an immediate or by 1.
fn shift_ri(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.r0.size();
    let count_mask = if size == 8 { 0x3F } else { 0x1F };
    let count = if op.ins.op_count() < 2 {
        1
    } else {
        (op.ins.immediate(1) as u32) & count_mask
    };
    if count == 0 {
        return Ok(());
    }
    let a = cpu.rd(op.r0);
    // SHL, SHR and SAR replace all the status flags they define.
    let (r, f) = super::alu::shift_result(op.ins.mnemonic(), size, a, count, 0);
    cpu.wr(op.r0, r);
    cpu.set_status(f);
    Ok(())
}

fn alu_handler(m: Mnemonic, form: u8) -> Option<Handler> {
    macro_rules! pick {
        ($op:expr) => {
            match form {
                0 => alu_rr::<$op> as Handler,
                1 => alu_ri::<$op>,
                2 => alu_rm::<$op>,
                3 => alu_m::<$op, false>,
                _ => alu_m::<$op, true>,
            }
        };
    }
    Some(match m {
        Mnemonic::Add => pick!(ADD),
        Mnemonic::Sub => pick!(SUB),
        Mnemonic::And => pick!(AND),
        Mnemonic::Or => pick!(OR),
        Mnemonic::Xor => pick!(XOR),
        Mnemonic::Cmp => pick!(CMP),
        Mnemonic::Test => pick!(TEST),
        _ => return None,
    })
}

fn gpr(ins: &Instruction, i: u32) -> bool {
    ins.op_kind(i) == OpKind::Register && ins.op_register(i).is_gpr()
}

/// A specialised handler for `ins`, if its form has one.
pub(crate) fn specialised(ins: &Instruction) -> Option<Handler> {
    if ins.has_lock_prefix() || ins.has_rep_prefix() || ins.has_repne_prefix() {
        return None;
    }
    let m = ins.mnemonic();
    let (k0, k1) = (ins.op0_kind(), ins.op1_kind());
    let two = ins.op_count() == 2;
    if two {
        let form = if gpr(ins, 0) && gpr(ins, 1) {
            Some(0)
        } else if gpr(ins, 0) && super::is_immediate(k1) {
            Some(1)
        } else if gpr(ins, 0) && k1 == OpKind::Memory {
            Some(2)
        } else if k0 == OpKind::Memory && gpr(ins, 1) {
            Some(3)
        } else if k0 == OpKind::Memory && super::is_immediate(k1) {
            Some(4)
        } else {
            None
        };
        if let Some(form) = form {
            if let Some(h) = alu_handler(m, form) {
                return Some(h);
            }
            if m == Mnemonic::Mov {
                return Some(match form {
                    0 => mov_rr,
                    1 => mov_ri,
                    2 => mov_rm,
                    3 => mov_mr,
                    _ => mov_mi,
                });
            }
        }
        if matches!(
            m,
            Mnemonic::Shl | Mnemonic::Sal | Mnemonic::Shr | Mnemonic::Sar
        ) && gpr(ins, 0)
            && super::is_immediate(k1)
        {
            return Some(shift_ri);
        }
        if m == Mnemonic::Movzx && gpr(ins, 0) && k1 == OpKind::Memory {
            return Some(movzx_rm);
        }
        if m == Mnemonic::Lea && gpr(ins, 0) {
            return Some(lea);
        }
    }
    if ins.op_count() == 1 && gpr(ins, 0) {
        match m {
            Mnemonic::Shl | Mnemonic::Sal | Mnemonic::Shr | Mnemonic::Sar => return Some(shift_ri),
            Mnemonic::Inc => return Some(inc_dec_r::<false>),
            Mnemonic::Dec => return Some(inc_dec_r::<true>),
            Mnemonic::Push if ins.op0_register().size() >= 2 => return Some(push_r),
            Mnemonic::Pop if ins.op0_register().size() >= 2 => return Some(pop_r),
            _ => {}
        }
    }
    if matches!(
        k0,
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
    ) {
        if m == Mnemonic::Jmp {
            return Some(jmp_rel);
        }
        let counter_branch = matches!(
            m,
            Mnemonic::Loop
                | Mnemonic::Loope
                | Mnemonic::Loopne
                | Mnemonic::Jcxz
                | Mnemonic::Jecxz
                | Mnemonic::Jrcxz
        );
        if ins.condition_code() != ConditionCode::None && !counter_branch {
            return Some(jcc);
        }
    }
    None
}
