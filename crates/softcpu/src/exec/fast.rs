//! Specialised handlers for the most frequent instruction forms, chosen once
//! at decode time. Each does exactly what the general path in this module's
//! parent does for that form, without re-dispatching on the mnemonic and the
//! operand kinds at every execution.

use super::{cond_of, flags, lazy};
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

/// Jcc with condition `CC` (see [`cond_of`]); the target is in `op.imm`.
fn jcc<const CC: u8>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    if cpu.condition_inline(cond_of(CC)) {
        cpu.jump_near(op.imm)?;
    }
    Ok(())
}

fn jmp_rel(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    cpu.jump_near(op.imm)
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

/// The shifts and rotates [`shift_r`] is made for.
const SHL: u8 = 0;
const SHR: u8 = 1;
const SAR: u8 = 2;
const ROL: u8 = 3;
const ROR: u8 = 4;

/// SHL/SAL (`KIND` = [`SHL`]), SHR, SAR, ROL or ROR of a register by an
/// immediate or by 1 (`CL` false), or by CL.
fn shift_r<const KIND: u8, const CL: bool>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.r0.size();
    let count_mask = if size == 8 { 0x3F } else { 0x1F };
    let count = if CL {
        (cpu.s.gpr[1] as u32) & count_mask
    } else if op.ins.op_count() < 2 {
        1
    } else {
        (op.ins.immediate(1) as u32) & count_mask
    };
    if count == 0 {
        return Ok(());
    }
    let a = cpu.rd(op.r0);
    let m = match KIND {
        SHL => Mnemonic::Shl,
        SHR => Mnemonic::Shr,
        SAR => Mnemonic::Sar,
        ROL => Mnemonic::Rol,
        _ => Mnemonic::Ror,
    };
    // SHL, SHR and SAR replace all the status flags they define; ROL and
    // ROR change CF and OF only.
    let status = if KIND == ROL || KIND == ROR {
        cpu.status_flags()
    } else {
        0
    };
    let (r, f) = super::alu::shift_result(m, size, a, count, status);
    cpu.wr(op.r0, r);
    cpu.set_status(f);
    Ok(())
}

/// NEG of a register: 0 − r, with the flags of that subtraction (CF set
/// unless the operand was 0, which is the subtraction's borrow).
fn neg_r(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.r0.size();
    let a = cpu.rd(op.r0);
    let r = alu::<SUB>(cpu, size, 0, a);
    cpu.wr(op.r0, r);
    Ok(())
}

/// NOT of a register (no flags).
fn not_r(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let v = !cpu.rd(op.r0);
    cpu.wr(op.r0, v);
    Ok(())
}

/// INC or DEC of memory; the flags change only once the store is done.
fn inc_dec_m<const DEC: bool>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.ins.memory_size().size();
    let ea = cpu.ea(&op.mem);
    let seg = op.mem.seg;
    let a = cpu.read_mem(seg, ea, size)?;
    let m = flags::mask(size);
    let saved = cpu.lazy;
    let r = if DEC {
        let r = a.wrapping_sub(1) & m;
        cpu.set_lazy(lazy::DEC, size, a, 1, r);
        r
    } else {
        let r = a.wrapping_add(1) & m;
        cpu.set_lazy(lazy::INC, size, a, 1, r);
        r
    };
    if let Err(e) = cpu.write_mem(seg, ea, size, r) {
        cpu.lazy = saved;
        return Err(e);
    }
    Ok(())
}

/// Where the two operands of a form come from (see [`specialised`]).
const RR: u8 = 0;
const RI: u8 = 1;
const RM: u8 = 2;
const MR: u8 = 3;
const MI: u8 = 4;

/// ADC (`BORROW` false) or SBB (`BORROW` true) in the operand form `FORM`;
/// the carry comes in from CF, so the flags are computed at once.
fn carry_arith<const BORROW: bool, const FORM: u8>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let cf = cpu.flag(x86::rflags::CF);
    let compute = |size, a, b| {
        if BORROW {
            flags::sub(size, a, b, cf)
        } else {
            flags::add(size, a, b, cf)
        }
    };
    if FORM == MR || FORM == MI {
        let size = op.ins.memory_size().size();
        let ea = cpu.ea(&op.mem);
        let a = cpu.read_mem(op.mem.seg, ea, size)?;
        let b = if FORM == MI { op.imm } else { cpu.rd(op.r1) };
        let (r, f) = compute(size, a, b);
        cpu.write_mem(op.mem.seg, ea, size, r)?;
        cpu.set_status(f);
        return Ok(());
    }
    let size = op.r0.size();
    let a = cpu.rd(op.r0);
    let b = match FORM {
        RR => cpu.rd(op.r1),
        RI => op.imm,
        _ => {
            let ea = cpu.ea(&op.mem);
            cpu.read_mem(op.mem.seg, ea, size)?
        }
    };
    let (r, f) = compute(size, a, b);
    cpu.wr(op.r0, r);
    cpu.set_status(f);
    Ok(())
}

/// The second operand of a register-destination form: a register or memory.
#[inline(always)]
fn source<const MEM: bool>(cpu: &mut SoftCpu, op: &Op, size: usize) -> Ex<u64> {
    if MEM {
        let ea = cpu.ea(&op.mem);
        cpu.read_mem(op.mem.seg, ea, size)
    } else {
        Ok(cpu.rd(op.r1))
    }
}

/// IMUL r, r/m (`IMM` false) and IMUL r, r/m, imm: the low half of the
/// signed product; CF = OF = whether it lost significant bits, SF, ZF and PF
/// from the result, AF clear — as the general path sets them.
fn imul_r<const MEM: bool, const IMM: bool>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.r0.size();
    let (a, b) = if IMM {
        (source::<MEM>(cpu, op, size)?, op.ins.immediate(2))
    } else {
        (cpu.rd(op.r0), source::<MEM>(cpu, op, size)?)
    };
    let p = i128::from(flags::sext(size, a) as i64) * i128::from(flags::sext(size, b) as i64);
    let r = (p as u64) & flags::mask(size);
    let overflow = i128::from(flags::sext(size, r) as i64) != p;
    cpu.wr(op.r0, r);
    let of = if overflow {
        x86::rflags::CF | x86::rflags::OF
    } else {
        0
    };
    cpu.set_status(flags::szp(size, r) | of);
    Ok(())
}

/// MOVZX (`SIGNED` false), MOVSX and MOVSXD into a register.
fn extend_r<const SIGNED: bool, const MEM: bool>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let ssize = if MEM {
        op.ins.memory_size().size()
    } else {
        op.r1.size()
    };
    let v = source::<MEM>(cpu, op, ssize)?;
    let v = if SIGNED {
        flags::sext(ssize, v) & flags::mask(op.r0.size())
    } else {
        v
    };
    cpu.wr(op.r0, v);
    Ok(())
}

/// SETcc with condition `CC` (see [`cond_of`]) into a byte register or memory.
fn setcc<const CC: u8, const MEM: bool>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let v = u64::from(cpu.condition_inline(cond_of(CC)));
    if MEM {
        let ea = cpu.ea(&op.mem);
        cpu.write_mem(op.mem.seg, ea, 1, v)
    } else {
        cpu.wr(op.r0, v);
        Ok(())
    }
}

/// CMOVcc with condition `CC`: the source is read (and may fault) whether
/// or not the move happens, and a 32-bit destination is zero-extended
/// either way.
fn cmovcc<const CC: u8, const MEM: bool>(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let taken = cpu.condition_inline(cond_of(CC));
    let v = source::<MEM>(cpu, op, op.r0.size())?;
    let out = if taken { v } else { cpu.rd(op.r0) };
    cpu.wr(op.r0, out);
    Ok(())
}

/// The kinds of handler specialised by condition code.
const JCC: u8 = 0;
const SETCC_R: u8 = 1;
const SETCC_M: u8 = 2;
const CMOVCC_R: u8 = 3;
const CMOVCC_M: u8 = 4;

/// The handler of kind `kind` for condition `cc`, with the condition a
/// constant in it.
fn cc_handler(kind: u8, cc: ConditionCode) -> Option<Handler> {
    fn pick<const CC: u8>(kind: u8) -> Handler {
        match kind {
            JCC => jcc::<CC>,
            SETCC_R => setcc::<CC, false>,
            SETCC_M => setcc::<CC, true>,
            CMOVCC_R => cmovcc::<CC, false>,
            _ => cmovcc::<CC, true>,
        }
    }
    use ConditionCode as C;
    Some(match cc {
        C::o => pick::<1>(kind),
        C::no => pick::<2>(kind),
        C::b => pick::<3>(kind),
        C::ae => pick::<4>(kind),
        C::e => pick::<5>(kind),
        C::ne => pick::<6>(kind),
        C::be => pick::<7>(kind),
        C::a => pick::<8>(kind),
        C::s => pick::<9>(kind),
        C::ns => pick::<10>(kind),
        C::p => pick::<11>(kind),
        C::np => pick::<12>(kind),
        C::l => pick::<13>(kind),
        C::ge => pick::<14>(kind),
        C::le => pick::<15>(kind),
        C::g => pick::<16>(kind),
        C::None => return None,
    })
}

/// Near CALL to a relative target: the return address is pushed, and the
/// stack pointer restored if the target faults.
fn call_rel(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = match op.ins.op0_kind() {
        OpKind::NearBranch16 => 2,
        OpKind::NearBranch32 => 4,
        _ => 8,
    };
    let saved = cpu.s.gpr[4];
    let ret = cpu.next_rip;
    cpu.push(size, ret)?;
    if let Err(e) = cpu.jump_near(op.imm) {
        cpu.s.gpr[4] = saved;
        return Err(e);
    }
    Ok(())
}

/// Near RET without an immediate; the stack pointer is restored if the
/// target faults.
fn ret_near(cpu: &mut SoftCpu, op: &Op) -> Ex<()> {
    let size = op.ins.stack_pointer_increment() as usize;
    let saved = cpu.s.gpr[4];
    let target = cpu.pop(size)?;
    if let Err(e) = cpu.jump_near(target) {
        cpu.s.gpr[4] = saved;
        return Err(e);
    }
    Ok(())
}

/// NOP in all its encodings (a memory operand is not accessed).
fn nop(_: &mut SoftCpu, _: &Op) -> Ex<()> {
    Ok(())
}

/// The handler of a two-operand form of an instruction beyond the plain ALU
/// group and MOV, if it has one.
fn form_handler(m: Mnemonic, cc: ConditionCode, form: u8) -> Option<Handler> {
    use Mnemonic as M;
    if is_cmovcc(m) {
        return match form {
            RR => cc_handler(CMOVCC_R, cc),
            RM => cc_handler(CMOVCC_M, cc),
            _ => None,
        };
    }
    Some(match (m, form) {
        (M::Adc, RR) => carry_arith::<false, RR>,
        (M::Adc, RI) => carry_arith::<false, RI>,
        (M::Adc, RM) => carry_arith::<false, RM>,
        (M::Adc, MR) => carry_arith::<false, MR>,
        (M::Adc, MI) => carry_arith::<false, MI>,
        (M::Sbb, RR) => carry_arith::<true, RR>,
        (M::Sbb, RI) => carry_arith::<true, RI>,
        (M::Sbb, RM) => carry_arith::<true, RM>,
        (M::Sbb, MR) => carry_arith::<true, MR>,
        (M::Sbb, MI) => carry_arith::<true, MI>,
        (M::Imul, RR) => imul_r::<false, false>,
        (M::Imul, RM) => imul_r::<true, false>,
        (M::Movzx, RR) => extend_r::<false, false>,
        (M::Movsx | M::Movsxd, RR) => extend_r::<true, false>,
        (M::Movsx | M::Movsxd, RM) => extend_r::<true, true>,
        _ => return None,
    })
}

/// The handler of a shift or rotate of a register by an immediate or by 1
/// (`CL` false), or by CL.
fn shift_handler<const CL: bool>(m: Mnemonic) -> Option<Handler> {
    Some(match m {
        Mnemonic::Shl | Mnemonic::Sal => shift_r::<SHL, CL>,
        Mnemonic::Shr => shift_r::<SHR, CL>,
        Mnemonic::Sar => shift_r::<SAR, CL>,
        Mnemonic::Rol => shift_r::<ROL, CL>,
        Mnemonic::Ror => shift_r::<ROR, CL>,
        _ => return None,
    })
}

fn alu_handler(m: Mnemonic, form: u8) -> Option<Handler> {
    macro_rules! pick {
        ($op:expr) => {
            match form {
                RR => alu_rr::<$op> as Handler,
                RI => alu_ri::<$op>,
                RM => alu_rm::<$op>,
                MR => alu_m::<$op, false>,
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

/// Whether `m` is one of the sixteen CMOVcc.
pub(crate) fn is_cmovcc(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Cmova | M::Cmovae | M::Cmovb | M::Cmovbe | M::Cmove | M::Cmovg | M::Cmovge | M::Cmovl
    ) || matches!(
        m,
        M::Cmovle | M::Cmovne | M::Cmovno | M::Cmovnp | M::Cmovns | M::Cmovo | M::Cmovp | M::Cmovs
    )
}

/// Whether `m` is one of the sixteen SETcc.
pub(crate) fn is_setcc(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Seta | M::Setae | M::Setb | M::Setbe | M::Sete | M::Setg | M::Setge | M::Setl
    ) || matches!(
        m,
        M::Setle | M::Setne | M::Setno | M::Setnp | M::Setns | M::Seto | M::Setp | M::Sets
    )
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
            Some(RR)
        } else if gpr(ins, 0) && super::is_immediate(k1) {
            Some(RI)
        } else if gpr(ins, 0) && k1 == OpKind::Memory {
            Some(RM)
        } else if k0 == OpKind::Memory && gpr(ins, 1) {
            Some(MR)
        } else if k0 == OpKind::Memory && super::is_immediate(k1) {
            Some(MI)
        } else {
            None
        };
        if let Some(form) = form {
            if let Some(h) = alu_handler(m, form) {
                return Some(h);
            }
            if m == Mnemonic::Mov {
                return Some(match form {
                    RR => mov_rr,
                    RI => mov_ri,
                    RM => mov_rm,
                    MR => mov_mr,
                    _ => mov_mi,
                });
            }
        }
        if gpr(ins, 0) && super::is_immediate(k1) {
            if let Some(h) = shift_handler::<false>(m) {
                return Some(h);
            }
        }
        if gpr(ins, 0) && gpr(ins, 1) && ins.op1_register() == iced_x86::Register::CL {
            if let Some(h) = shift_handler::<true>(m) {
                return Some(h);
            }
        }
        if let Some(h) = form.and_then(|f| form_handler(m, ins.condition_code(), f)) {
            return Some(h);
        }
        if m == Mnemonic::Movzx && gpr(ins, 0) && k1 == OpKind::Memory {
            return Some(movzx_rm);
        }
        if m == Mnemonic::Lea && gpr(ins, 0) {
            return Some(lea);
        }
    }
    if ins.op_count() == 3
        && m == Mnemonic::Imul
        && gpr(ins, 0)
        && super::is_immediate(ins.op2_kind())
    {
        if gpr(ins, 1) {
            return Some(imul_r::<false, true>);
        }
        if k1 == OpKind::Memory {
            return Some(imul_r::<true, true>);
        }
    }
    if ins.op_count() == 1 && is_setcc(m) {
        if gpr(ins, 0) {
            return cc_handler(SETCC_R, ins.condition_code());
        }
        if k0 == OpKind::Memory {
            return cc_handler(SETCC_M, ins.condition_code());
        }
    }
    match m {
        Mnemonic::Nop => return Some(nop),
        Mnemonic::Ret if ins.op_count() == 0 => return Some(ret_near),
        Mnemonic::Call
            if matches!(
                k0,
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
            ) =>
        {
            return Some(call_rel)
        }
        _ => {}
    }
    if ins.op_count() == 1 && gpr(ins, 0) {
        match m {
            Mnemonic::Shl
            | Mnemonic::Sal
            | Mnemonic::Shr
            | Mnemonic::Sar
            | Mnemonic::Rol
            | Mnemonic::Ror => return shift_handler::<false>(m),
            Mnemonic::Inc => return Some(inc_dec_r::<false>),
            Mnemonic::Dec => return Some(inc_dec_r::<true>),
            Mnemonic::Neg => return Some(neg_r),
            Mnemonic::Not => return Some(not_r),
            Mnemonic::Push if ins.op0_register().size() >= 2 => return Some(push_r),
            Mnemonic::Pop if ins.op0_register().size() >= 2 => return Some(pop_r),
            _ => {}
        }
    }
    if ins.op_count() == 1 && k0 == OpKind::Memory {
        match m {
            Mnemonic::Inc => return Some(inc_dec_m::<false>),
            Mnemonic::Dec => return Some(inc_dec_m::<true>),
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
        if !counter_branch {
            return cc_handler(JCC, ins.condition_code());
        }
    }
    None
}

#[cfg(test)]
pub(super) mod tests;
