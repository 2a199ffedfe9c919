//! The translator: one decoded block to host machine code, through
//! Cranelift.
//!
//! Guest registers live in Cranelift variables while the block runs and go
//! back to the [`Frame`] at every exit. The status flags are tracked
//! symbolically ([`FlagState`]): the last flag-setting instruction's
//! operands stay in variables, conditions are evaluated from them, and the
//! interpreter's lazy record (or, after a shift, the status bits) is
//! written only where the block leaves. A block that branches back to its
//! own start is translated twice — a first pass from the frame's flags,
//! then the loop body — so that the loop runs without going back to the
//! dispatcher while its next pass fits before the time horizon.
//!
//! The forms in [`Form`] are translated inline, each exactly as its
//! interpreter handler does it (`exec/fast.rs`); every other instruction of
//! a block is handed to the interpreter through [`helpers::interpret`].

use super::frame::{at, cpu_at, Frame, PLAIN_PAUSE, PLAIN_RDTSC, PLAIN_RDTSCP};
use super::helpers;
use super::{CodeMemory, JitError, Native, EXIT_GP, EXIT_OK, EXIT_STOP};
use crate::decode::{Gpr, MemRef, Op, GPR_BYTE, GPR_DWORD, GPR_HIGH, GPR_QWORD, GPR_WORD};
use crate::exec::lazy;
use crate::mmu::TLB_SIZE;
use crate::state::Seg;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64, I8};
use cranelift_codegen::ir::{
    AbiParam, AliasRegionData, Block, Function, InstBuilder, MemFlagsData, SigRef, Signature,
    UserFuncName, Value,
};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use iced_x86::{ConditionCode, Mnemonic, OpKind, Register};

/// ALU operations, as in `exec/fast.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AluOp {
    Add,
    Sub,
    And,
    Or,
    Xor,
    Cmp,
    Test,
}

/// Where an operand comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operand {
    Reg,
    Imm,
    Mem,
}

/// The instruction forms translated inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// ALU op with destination register `r0` and the source as given.
    AluR(AluOp, Operand),
    /// ALU op with a memory destination; source register `r1` or the immediate.
    AluM(AluOp, Operand),
    /// MOV to register `r0`.
    MovR(Operand),
    /// MOV to memory from register `r1` or the immediate.
    MovM(Operand),
    /// INC (false) or DEC (true) of register `r0`.
    IncDec(bool),
    /// LEA.
    Lea,
    /// SHL (0), SHR (1) or SAR (2) of register `r0` by a constant count.
    Shift(u32, u32),
    /// SHL (0), SHR (1) or SAR (2) of register `r0` by CL.
    ShiftByCl(u32),
    /// INC (false) or DEC (true) of memory.
    IncDecM(bool),
    /// ROL (false) or ROR (true) of register `r0` by a constant count.
    Rotate(bool, u32),
    /// NOT of register `r0`.
    Not,
    /// NEG of register `r0`.
    Neg,
    /// RDTSC (false) or RDTSCP (true).
    ReadTsc(bool),
    /// PAUSE.
    Pause,
    /// Jcc with iced's condition code number.
    Jcc(u32),
    /// JMP rel.
    Jmp,
    /// NOP.
    Nop,
    /// MOVZX (false), or MOVSX and MOVSXD (true), into register `r0` from
    /// a register or memory.
    Extend(bool, Operand),
    /// IMUL r, r/m (false) or IMUL r, r/m, imm (true), from a register or
    /// memory.
    Imul(Operand, bool),
    /// SETcc (iced's condition code number) into a byte register or memory.
    Setcc(u32, Operand),
    /// CMOVcc (iced's condition code number) into register `r0` from a
    /// register or memory.
    Cmov(u32, Operand),
    /// ADC (false) or SBB (true) into register `r0`.
    CarryArith(bool, Operand),
    /// PUSH of register `r0` (64-bit code).
    Push,
    /// POP into register `r0` (64-bit code).
    Pop,
    /// CALL rel (64-bit code).
    Call,
    /// RET without an immediate (64-bit code).
    Ret,
}

impl Form {
    /// Whether the form is translated only in 64-bit code (where the stack
    /// is always 64 bits wide and flat).
    fn long_mode_only(self) -> bool {
        matches!(self, Form::Push | Form::Pop | Form::Call | Form::Ret)
    }
}

/// SHL (0), SHR (1) or SAR (2): the shift kind of a mnemonic.
fn shift_kind(m: Mnemonic) -> u32 {
    match m {
        Mnemonic::Shr => 1,
        Mnemonic::Sar => 2,
        _ => 0,
    }
}

fn is_imm(k: OpKind) -> bool {
    crate::exec::is_immediate(k)
}

fn cc_number(cc: ConditionCode) -> u32 {
    (1..=16)
        .find(|&n| helpers::condition_code(n) == cc)
        .unwrap_or(0)
}

/// The inline form of `op`, if it has one.
fn form_of(op: &Op) -> Option<Form> {
    use Mnemonic as M;
    let ins = &op.ins;
    if ins.has_lock_prefix() {
        return None;
    }
    let n = ins.op_count();
    let k0 = ins.op0_kind();
    let k1 = if n > 1 {
        ins.op1_kind()
    } else {
        OpKind::Register
    };
    let reg0 = k0 == OpKind::Register && op.r0.kind != 0;
    let reg1 = n > 1 && k1 == OpKind::Register && op.r1.kind != 0;
    // The count of a shift or rotate of register `r0` by a constant (1
    // without an immediate), masked as the processor masks it.
    let constant_count = || {
        let count_mask = if op.r0.size() == 8 { 0x3F } else { 0x1F };
        if n < 2 {
            1
        } else {
            (ins.immediate(1) as u32) & count_mask
        }
    };
    let alu = match ins.mnemonic() {
        M::Add => Some(AluOp::Add),
        M::Sub => Some(AluOp::Sub),
        M::And => Some(AluOp::And),
        M::Or => Some(AluOp::Or),
        M::Xor => Some(AluOp::Xor),
        M::Cmp => Some(AluOp::Cmp),
        M::Test => Some(AluOp::Test),
        _ => None,
    };
    let source = |k: OpKind, reg: bool| {
        if reg {
            Some(Operand::Reg)
        } else if is_imm(k) {
            Some(Operand::Imm)
        } else if k == OpKind::Memory {
            Some(Operand::Mem)
        } else {
            None
        }
    };
    if let Some(a) = alu {
        if n != 2 {
            return None;
        }
        return match (k0, source(k1, reg1)?) {
            (OpKind::Register, s) if reg0 => Some(Form::AluR(a, s)),
            (OpKind::Memory, s @ (Operand::Reg | Operand::Imm)) => Some(Form::AluM(a, s)),
            _ => None,
        };
    }
    match ins.mnemonic() {
        M::Mov if n == 2 => match (k0, source(k1, reg1)?) {
            (OpKind::Register, s) if reg0 => Some(Form::MovR(s)),
            (OpKind::Memory, s @ (Operand::Reg | Operand::Imm)) => Some(Form::MovM(s)),
            _ => None,
        },
        M::Inc | M::Dec if n == 1 && reg0 => Some(Form::IncDec(ins.mnemonic() == M::Dec)),
        M::Lea if reg0 && k1 == OpKind::Memory => Some(Form::Lea),
        M::Not if n == 1 && reg0 => Some(Form::Not),
        M::Rdtsc => Some(Form::ReadTsc(false)),
        M::Rdtscp => Some(Form::ReadTsc(true)),
        M::Pause => Some(Form::Pause),
        M::Neg if n == 1 && reg0 => Some(Form::Neg),
        M::Rol | M::Ror if reg0 && (n < 2 || is_imm(k1)) => {
            Some(Form::Rotate(ins.mnemonic() == M::Ror, constant_count()))
        }
        M::Shl | M::Sal | M::Shr | M::Sar if reg0 && (n < 2 || is_imm(k1)) => {
            Some(Form::Shift(shift_kind(ins.mnemonic()), constant_count()))
        }
        M::Shl | M::Sal | M::Shr | M::Sar
            if reg0 && n == 2 && k1 == OpKind::Register && ins.op1_register() == Register::CL =>
        {
            Some(Form::ShiftByCl(shift_kind(ins.mnemonic())))
        }
        M::Inc | M::Dec if n == 1 && k0 == OpKind::Memory => {
            Some(Form::IncDecM(ins.mnemonic() == M::Dec))
        }
        M::Jmp
            if matches!(
                k0,
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
            ) =>
        {
            Some(Form::Jmp)
        }
        M::Nop => Some(Form::Nop),
        M::Push if n == 1 && reg0 => Some(Form::Push),
        M::Pop if n == 1 && reg0 => Some(Form::Pop),
        M::Call
            if matches!(
                k0,
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
            ) =>
        {
            Some(Form::Call)
        }
        M::Ret if n == 0 && matches!(ins.stack_pointer_increment(), 2 | 8) => Some(Form::Ret),
        M::Movzx | M::Movsx | M::Movsxd if n == 2 && reg0 => match source(k1, reg1)? {
            s @ (Operand::Reg | Operand::Mem) => Some(Form::Extend(ins.mnemonic() != M::Movzx, s)),
            Operand::Imm => None,
        },
        M::Imul if (n == 2 || (n == 3 && is_imm(ins.op2_kind()))) && reg0 => {
            match source(k1, reg1)? {
                s @ (Operand::Reg | Operand::Mem) => Some(Form::Imul(s, n == 3)),
                Operand::Imm => None,
            }
        }
        M::Adc | M::Sbb if n == 2 && reg0 => Some(Form::CarryArith(
            ins.mnemonic() == M::Sbb,
            source(k1, reg1)?,
        )),
        m if crate::exec::is_setcc(m) && n == 1 => {
            let dest = match k0 {
                OpKind::Register if reg0 => Operand::Reg,
                OpKind::Memory => Operand::Mem,
                _ => return None,
            };
            match cc_number(ins.condition_code()) {
                0 => None,
                cc => Some(Form::Setcc(cc, dest)),
            }
        }
        m if crate::exec::is_cmovcc(m) && n == 2 && reg0 => match source(k1, reg1)? {
            s @ (Operand::Reg | Operand::Mem) => match cc_number(ins.condition_code()) {
                0 => None,
                cc => Some(Form::Cmov(cc, s)),
            },
            Operand::Imm => None,
        },
        _ if ins.is_jcc_short_or_near() => match cc_number(ins.condition_code()) {
            0 => None,
            cc => Some(Form::Jcc(cc)),
        },
        _ => None,
    }
}

/// What is known of the status flags at a point of the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagState {
    /// In the frame (lazy record or RFLAGS), as the block found them or an
    /// interpreted instruction left them.
    Frame,
    /// A lazy record of operation `op` (`exec::lazy`), `size` bytes wide,
    /// with its operands in the flag variables.
    Lazy { op: u8, size: u8 },
    /// A shift (`kind` as in [`Form::Shift`]): source in `fa`, result in
    /// `fr`, the count (not 0) in `fcf`.
    Shift { kind: u32, size: u8 },
    /// A signed multiply (`exec/fast.rs`, `imul_r`), `size` bytes wide:
    /// result in `fr`, whether it overflowed (0 or 1) in `fcf`.
    Mul { size: u8 },
    /// ADC (`borrow` false) or SBB, `size` bytes wide: operands in `fa` and
    /// `fb`, result in `fr`, the carry that came in (0 or 1) in `fcf`.
    Carry { borrow: bool, size: u8 },
    /// The status flags themselves, in `fr` (after a rotate, which keeps
    /// the flags it does not define).
    Bits,
}

/// Signatures of the helpers.
struct Sigs {
    load: SigRef,
    store: SigRef,
    interpret: SigRef,
    exit: SigRef,
    condition_frame: SigRef,
    carry_frame: SigRef,
    status_frame: SigRef,
    status: SigRef,
    condition_status: SigRef,
}

/// The flag state at a point, with its values, for an exit taken later.
#[derive(Clone, Copy)]
struct Flags {
    state: FlagState,
    values: [Value; 4],
}

/// Where and how a block leaves: every field but the flag values is a
/// constant of the exit site.
struct Exit {
    /// What the block returns.
    status: u32,
    rip: u64,
    next_rip: u64,
    /// Instructions of the current pass retired, and charged.
    done: u64,
    charged: u64,
    /// The length of the instruction that stops here (0 where none does).
    len: u32,
    /// RIP (and `next_rip`) come from the frame's scratch field, not from
    /// `rip` (a return's target).
    dynamic: bool,
    flags: Flags,
}

/// The flag state packed for the helpers (`helpers::status`): the kind
/// (0 frame, 1 lazy record, 2 shift, 3 multiply, 4 add or subtract with
/// carry, 5 the status bits), then the operation, shift kind or borrow
/// shifted left by 8, then the size shifted left by 16.
fn packed_flags(state: FlagState) -> u64 {
    match state {
        FlagState::Frame => 0,
        FlagState::Lazy { op, size } => 1 | u64::from(op) << 8 | u64::from(size) << 16,
        FlagState::Shift { kind, size } => 2 | u64::from(kind) << 8 | u64::from(size) << 16,
        FlagState::Mul { size } => 3 | u64::from(size) << 16,
        FlagState::Carry { borrow, size } => 4 | u64::from(borrow) << 8 | u64::from(size) << 16,
        FlagState::Bits => 5,
    }
}

/// Memory flags of the three disjoint kinds of memory translated code
/// touches (alias regions let Cranelift forward a register's value from
/// its store to its next load across guest memory accesses).
#[derive(Clone, Copy)]
struct Regions {
    /// The guest registers and the frame's time and count.
    frame: MemFlagsData,
    /// Guest physical memory.
    guest: MemFlagsData,
    /// The frame's environment fields (never written by translated code).
    env: MemFlagsData,
    /// The TLB and the code-page bitmap.
    tables: MemFlagsData,
}

/// The state of one translation.
///
/// Guest registers live in the frame: each instruction loads what it reads
/// and stores what it writes, and Cranelift's alias analysis removes the
/// loads whose value is known. That keeps every exit cheap: only the
/// flags, RIP, time and count are written there, in one shared exit block.
struct Emitter<'a> {
    b: FunctionBuilder<'a>,
    frame: Value,
    sigs: Sigs,
    mf: Regions,
    fa: Variable,
    fb: Variable,
    fr: Variable,
    fcf: Variable,
    flags: FlagState,
    /// The exit sites so far.
    sites: Vec<helpers::ExitSite>,
    /// Returns a helper's status after an interpreted instruction left the
    /// frame complete (parameter: the helper status).
    done: Block,
    bitness: u32,
    /// Instructions in the block.
    n: u64,
    /// The instruction that branches back to the block's start, if any.
    loop_at: Option<u64>,
    /// The loop body's first block.
    head: Option<Block>,
    /// The flag state at the back edge, which the loop body starts with
    /// (not the state where the first pass's code ends: the block may go
    /// on past its branch back).
    head_flags: Option<FlagState>,
}

fn mask(size: usize) -> u64 {
    crate::exec::flags::mask(size)
}

fn sign_bit(size: usize) -> u64 {
    crate::exec::flags::sign_bit(size)
}

impl Emitter<'_> {
    fn iconst(&mut self, v: u64) -> Value {
        self.b.ins().iconst(I64, v as i64)
    }

    fn frame_load(&mut self, offset: i32) -> Value {
        self.b.ins().load(I64, self.mf.frame, self.frame, offset)
    }

    /// General register `n`, straight from the processor's register file.
    fn gpr_load(&mut self, n: usize) -> Value {
        let base = self.env(at::GPR);
        self.b.ins().load(I64, self.mf.frame, base, (8 * n) as i32)
    }

    fn gpr_store(&mut self, v: Value, n: usize) {
        let base = self.env(at::GPR);
        self.b.ins().store(self.mf.frame, v, base, (8 * n) as i32);
    }

    /// A field of the frame's environment, loaded where it is used (the
    /// loads are cheap; values kept live across the block would crowd
    /// the registers).
    fn env(&mut self, offset: i32) -> Value {
        self.b.ins().load(I64, self.mf.env, self.frame, offset)
    }

    fn frame_store(&mut self, v: Value, offset: i32) {
        self.b.ins().store(self.mf.frame, v, self.frame, offset);
    }

    fn call(&mut self, sig: SigRef, f: usize, args: &[Value]) -> Value {
        let callee = self.iconst(f as u64);
        let call = self.b.ins().call_indirect(sig, callee, args);
        self.b.inst_results(call)[0]
    }

    /// `v & m` for the masks of operand and address sizes; the 32-bit one
    /// as a truncation (a plain 32-bit move), the 64-bit one as nothing.
    fn masked(&mut self, v: Value, m: u64) -> Value {
        match m {
            u64::MAX => v,
            0xFFFF_FFFF => {
                let low = self.b.ins().ireduce(I32, v);
                self.b.ins().uextend(I64, low)
            }
            _ => self.b.ins().band_imm_s(v, m as i64),
        }
    }

    /// A general register read with the width rules of `SoftCpu::rd`.
    fn rd(&mut self, g: Gpr) -> Value {
        let v = self.gpr_load((g.index & 15) as usize);
        match g.kind {
            GPR_QWORD => v,
            GPR_DWORD => self.masked(v, 0xFFFF_FFFF),
            GPR_WORD => self.b.ins().band_imm_s(v, 0xFFFF),
            GPR_BYTE => self.b.ins().band_imm_s(v, 0xFF),
            _ => {
                let s = self.b.ins().ushr_imm_s(v, 8);
                self.b.ins().band_imm_s(s, 0xFF)
            }
        }
    }

    /// A general register write with the width rules of `SoftCpu::wr`.
    fn wr(&mut self, g: Gpr, value: Value) {
        let n = (g.index & 15) as usize;
        let merge = |e: &mut Self, keep: u64, v: Value| {
            let old = e.gpr_load(n);
            let kept = e.b.ins().band_imm_s(old, keep as i64);
            e.b.ins().bor(kept, v)
        };
        let new = match g.kind {
            GPR_QWORD => value,
            GPR_DWORD => self.masked(value, 0xFFFF_FFFF),
            GPR_WORD => {
                let v = self.b.ins().band_imm_s(value, 0xFFFF);
                merge(self, !0xFFFF, v)
            }
            GPR_BYTE => {
                let v = self.b.ins().band_imm_s(value, 0xFF);
                merge(self, !0xFF, v)
            }
            GPR_HIGH => {
                let v = self.b.ins().band_imm_s(value, 0xFF);
                let v = self.b.ins().ishl_imm_s(v, 8);
                merge(self, !0xFF00, v)
            }
            _ => return,
        };
        self.gpr_store(new, n);
    }

    /// The effective address of a memory operand (`SoftCpu::ea`).
    fn ea(&mut self, m: &MemRef) -> Value {
        let mut ea = self.iconst(m.disp);
        if m.base < 16 {
            let base = self.gpr_load(m.base as usize);
            ea = self.b.ins().iadd(ea, base);
        }
        if m.index < 16 {
            let index = self.gpr_load(m.index as usize);
            let scaled = self.b.ins().imul_imm_s(index, i64::from(m.scale));
            ea = self.b.ins().iadd(ea, scaled);
        }
        self.masked(ea, m.mask)
    }

    // ------------------------------------------------------------ exits

    /// The flag state now, for an exit that needs it later.
    fn flags_now(&mut self) -> Flags {
        Flags {
            state: self.flags,
            values: [self.fa, self.fb, self.fr, self.fcf].map(|v| self.b.use_var(v)),
        }
    }

    /// Records an exit site and returns its index.
    fn site(&mut self, x: &Exit, op: usize) -> u64 {
        self.sites.push(helpers::ExitSite {
            status: x.status,
            packed: packed_flags(x.flags.state),
            rip: x.rip,
            next_rip: x.next_rip,
            done: x.done,
            charged: x.charged,
            len: x.len,
            dynamic: x.dynamic,
            op,
        });
        (self.sites.len() - 1) as u64
    }

    /// Leaves through `x`: the flags, RIP, time and count go to the
    /// processor, and the block returns the site's status. The common
    /// exits (a block that ends normally, with its flags in the frame or a
    /// lazy record) write them inline; the rest through the exit helper.
    fn jump_exit(&mut self, x: Exit) {
        if x.status == EXIT_OK && matches!(x.flags.state, FlagState::Frame | FlagState::Lazy { .. })
        {
            self.leave_inline(&x);
            let ok = self.b.ins().iconst(I32, i64::from(EXIT_OK));
            self.b.ins().return_(&[ok]);
            return;
        }
        let index = self.site(&x, helpers::NO_OP);
        let index = self.iconst(index);
        let [a, b, r, cf] = x.flags.values;
        let status = self.call(
            self.sigs.exit,
            helpers::exit as *const () as usize,
            &[self.frame, index, a, b, r, cf],
        );
        self.b.ins().return_(&[status]);
    }

    /// Writes what `helpers::exit` writes for `x` (whose flags are in the
    /// frame or a lazy record) straight into the processor.
    /// Virtual time once `charged` instructions of the current pass are
    /// charged.
    fn cycles_after(&mut self, charged: u64) -> Value {
        let start = self.frame_load(at::CYCLES);
        let ic = self.env(at::IC);
        let charged = self.b.ins().imul_imm_u(ic, charged as i64);
        self.b.ins().iadd(start, charged)
    }

    fn leave_inline(&mut self, x: &Exit) {
        let cpu = self.env(at::CPU);
        let (rip, next_rip) = if x.dynamic {
            let target = self.frame_load(at::SCRATCH);
            (target, target)
        } else {
            (self.iconst(x.rip), self.iconst(x.next_rip))
        };
        let f = self.mf.frame;
        self.b.ins().store(f, rip, cpu, cpu_at::RIP);
        self.b.ins().store(f, next_rip, cpu, cpu_at::NEXT_RIP);
        let cycles = self.cycles_after(x.charged);
        self.b.ins().store(f, cycles, cpu, cpu_at::CYCLES);
        let start = self.frame_load(at::RETIRED);
        let retired = self.b.ins().iadd_imm_u(start, x.done as i64);
        self.b.ins().store(f, retired, cpu, cpu_at::RETIRED);
        if let FlagState::Lazy { op, size } = x.flags.state {
            let [a, b, r, cf] = x.flags.values;
            let op = self.b.ins().iconst(I32, i64::from(op));
            self.b.ins().istore8(f, op, cpu, cpu_at::LAZY_OP);
            let size = self.b.ins().iconst(I32, i64::from(size));
            self.b.ins().istore8(f, size, cpu, cpu_at::LAZY_SIZE);
            let cf_in = self.b.ins().band_imm_u(cf, 1);
            self.b.ins().istore8(f, cf_in, cpu, cpu_at::LAZY_CF_IN);
            self.b.ins().store(f, a, cpu, cpu_at::LAZY_A);
            self.b.ins().store(f, b, cpu, cpu_at::LAZY_B);
            self.b.ins().store(f, r, cpu, cpu_at::LAZY_R);
        }
    }

    /// Leaving because instruction `i` stopped with `status`: the state is
    /// the one before it (`flags`), the instruction charged but not retired.
    fn stopped(i: u64, op: &Op, status: u32, flags: Flags) -> Exit {
        Exit {
            status,
            rip: op.ins.ip(),
            next_rip: op.next_ip,
            done: i,
            charged: i + 1,
            len: op.ins.len() as u32,
            dynamic: false,
            flags,
        }
    }

    /// Leaving after instruction `i`, continuing at `rip`.
    fn after(&mut self, i: u64, rip: u64) -> Exit {
        Exit {
            status: EXIT_OK,
            rip,
            next_rip: rip,
            done: i + 1,
            charged: i + 1,
            len: 0,
            dynamic: false,
            flags: self.flags_now(),
        }
    }

    /// Leaves through `x` when `cond` is non-zero (in a cold stub); goes on
    /// in a fresh block otherwise.
    fn exit_if(&mut self, cond: Value, x: Exit) {
        let next = self.cold_if(cond);
        self.jump_exit(x);
        self.b.switch_to_block(next);
    }

    /// Branches to a fresh cold stub when `cond` is non-zero and goes on
    /// emitting there; returns the fresh block the code goes on in
    /// otherwise, to switch to once the stub is done.
    fn cold_if(&mut self, cond: Value) -> Block {
        let stub = self.b.create_block();
        self.b.set_cold_block(stub);
        let next = self.b.create_block();
        self.b.ins().brif(cond, stub, &[], next, &[]);
        self.b.seal_block(stub);
        self.b.seal_block(next);
        self.b.switch_to_block(stub);
        next
    }

    /// Goes on in a fresh block when `ok` is non-zero, else to `slow`.
    fn check(&mut self, ok: Value, slow: Block) {
        let next = self.b.create_block();
        self.b.ins().brif(ok, next, &[], slow, &[]);
        self.b.seal_block(next);
        self.b.switch_to_block(next);
    }

    /// Emits the block that returns after an interpreted instruction left
    /// the frame complete (after everything else).
    fn emit_done(&mut self) {
        self.b.switch_to_block(self.done);
        self.b.seal_block(self.done);
        let status = self.b.block_params(self.done)[0];
        let stop = self
            .b
            .ins()
            .icmp_imm_s(IntCC::Equal, status, i64::from(helpers::STOP));
        let code = self.b.ins().iconst(I32, i64::from(EXIT_STOP));
        let ok = self.b.ins().iconst(I32, i64::from(EXIT_OK));
        let v = self.b.ins().select(stop, code, ok);
        self.b.ins().return_(&[v]);
    }

    // ------------------------------------------------------------ memory

    /// The fast path of a data access: branches to `slow` unless the TLB
    /// holds a translation that allows it and every other check the
    /// interpreter makes would pass, and returns the host-physical address
    /// in the block where they did; `None` when this code size never takes
    /// the fast path (nothing emitted).
    fn fast_path(
        &mut self,
        seg: Seg,
        ea: Value,
        size: usize,
        write: bool,
        slow: Block,
    ) -> Option<Value> {
        let la = match self.bitness {
            64 => {
                let la = match seg {
                    Seg::Fs => {
                        let base = self.env(at::FS_BASE);
                        self.b.ins().iadd(ea, base)
                    }
                    Seg::Gs => {
                        let base = self.env(at::GS_BASE);
                        self.b.ins().iadd(ea, base)
                    }
                    _ => ea,
                };
                let up = self.b.ins().ishl_imm_s(la, 16);
                let back = self.b.ins().sshr_imm_s(up, 16);
                let canonical = self.b.ins().icmp(IntCC::Equal, back, la);
                self.check(canonical, slow);
                la
            }
            32 => {
                let flat = self.env(at::FLAT);
                let bit = self.b.ins().band_imm_s(flat, 1 << seg as i64);
                self.check(bit, slow);
                let fits = self.b.ins().icmp_imm_s(
                    IntCC::UnsignedLessThanOrEqual,
                    ea,
                    (0xFFFF_FFFF - (size as u64 - 1)) as i64,
                );
                self.check(fits, slow);
                ea
            }
            _ => return None,
        };
        let off = self.b.ins().band_imm_s(la, 0xFFF);
        let in_page =
            self.b
                .ins()
                .icmp_imm_s(IntCC::UnsignedLessThanOrEqual, off, (4096 - size) as i64);
        self.check(in_page, slow);
        let page = self.b.ins().ushr_imm_s(la, 12);
        let index = self.b.ins().band_imm_s(page, (TLB_SIZE - 1) as i64);
        let byte = self.b.ins().imul_imm_s(index, 24);
        let tlb = self.env(at::TLB);
        let entry = self.b.ins().iadd(tlb, byte);
        let tag = self.b.ins().load(I64, self.mf.tables, entry, 0);
        let want = self.b.ins().iadd_imm_s(page, 1);
        let tag_ok = self.b.ins().icmp(IntCC::Equal, tag, want);
        self.check(tag_ok, slow);
        let fl = self.b.ins().uload8(I64, self.mf.tables, entry, 16);
        let need = self.env(if write { at::NEED_WRITE } else { at::NEED_READ });
        let have = self.b.ins().band(fl, need);
        let allowed = self.b.ins().icmp(IntCC::Equal, have, need);
        self.check(allowed, slow);
        let base = self.b.ins().load(I64, self.mf.tables, entry, 8);
        let hpa = self.b.ins().iadd(base, off);
        let mem_len = self.env(at::MEM_LEN);
        let last = self.b.ins().iadd_imm_s(mem_len, -(size as i64));
        let inside = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, hpa, last);
        self.check(inside, slow);
        Some(hpa)
    }

    /// Goes on in the slow path of an access (all its predecessors are
    /// there); the segment and size arguments of its helper.
    fn enter_slow(&mut self, slow: Block, seg: Seg, size: usize) -> (Value, Value) {
        self.b.seal_block(slow);
        self.b.switch_to_block(slow);
        let segv = self.b.ins().iconst(I32, seg as i64);
        let sizev = self.b.ins().iconst(I32, size as i64);
        (segv, sizev)
    }

    fn host_ptr(&mut self, hpa: Value) -> Value {
        let mem = self.env(at::MEM);
        self.b.ins().iadd(mem, hpa)
    }

    /// Reads `size` bytes (zero-extended) for instruction `i`; a fault
    /// leaves the block with the state before it.
    fn load(&mut self, i: u64, op: &Op, seg: Seg, ea: Value, size: usize) -> Value {
        let before = self.flags_now();
        let merge = self.b.create_block();
        self.b.append_block_param(merge, I64);
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        if let Some(hpa) = self.fast_path(seg, ea, size, false, slow) {
            let p = self.host_ptr(hpa);
            let f = self.mf.guest;
            let v = match size {
                1 => self.b.ins().uload8(I64, f, p, 0),
                2 => self.b.ins().uload16(I64, f, p, 0),
                4 => self.b.ins().uload32(f, p, 0),
                _ => self.b.ins().load(I64, f, p, 0),
            };
            self.b.ins().jump(merge, &[v.into()]);
        } else {
            self.b.ins().jump(slow, &[]);
        }
        let (segv, sizev) = self.enter_slow(slow, seg, size);
        let status = self.call(
            self.sigs.load,
            helpers::load as *const () as usize,
            &[self.frame, segv, ea, sizev],
        );
        self.exit_if(status, Self::stopped(i, op, EXIT_STOP, before));
        let v = self.frame_load(at::SCRATCH);
        self.b.ins().jump(merge, &[v.into()]);
        self.b.seal_block(merge);
        self.b.switch_to_block(merge);
        self.b.block_params(merge)[0]
    }

    /// Writes `size` bytes, the last thing instruction `i` does;
    /// a fault leaves the block with the state before the instruction
    /// (`before`), and a write to a page with decoded code leaves after it
    /// (the interpreter's block loop ends there too).
    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        i: u64,
        op: &Op,
        seg: Seg,
        ea: Value,
        size: usize,
        value: Value,
        before: Flags,
    ) {
        self.store_then(i, op, seg, ea, size, value, before, None, op.next_ip);
    }

    /// [`Self::store`], then general register `then.0` set to `then.1`
    /// once the write is done (a push's new RSP), and a write to decoded
    /// code leaving for `next`.
    #[allow(clippy::too_many_arguments)]
    fn store_then(
        &mut self,
        i: u64,
        op: &Op,
        seg: Seg,
        ea: Value,
        size: usize,
        value: Value,
        before: Flags,
        then: Option<(usize, Value)>,
        next: u64,
    ) {
        let merge = self.b.create_block();
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        if let Some(hpa) = self.fast_path(seg, ea, size, true, slow) {
            // A page holding decoded code: the helper writes it, so the
            // decode cache hears of it.
            let word_at = self.b.ins().ushr_imm_s(hpa, 18);
            let word_at = self.b.ins().ishl_imm_s(word_at, 3);
            let code_pages = self.env(at::CODE_PAGES);
            let word_ptr = self.b.ins().iadd(code_pages, word_at);
            let word = self.b.ins().load(I64, self.mf.tables, word_ptr, 0);
            let bit = self.b.ins().ushr_imm_s(hpa, 12);
            let bit = self.b.ins().band_imm_s(bit, 63);
            let word = self.b.ins().ushr(word, bit);
            let code = self.b.ins().band_imm_s(word, 1);
            let clean = self.b.ins().icmp_imm_s(IntCC::Equal, code, 0);
            self.check(clean, slow);
            let p = self.host_ptr(hpa);
            let f = self.mf.guest;
            match size {
                1 => self.b.ins().istore8(f, value, p, 0),
                2 => self.b.ins().istore16(f, value, p, 0),
                4 => self.b.ins().istore32(f, value, p, 0),
                _ => self.b.ins().store(f, value, p, 0),
            };
            if let Some((n, v)) = then {
                self.gpr_store(v, n);
            }
            self.b.ins().jump(merge, &[]);
        } else {
            self.b.ins().jump(slow, &[]);
        }
        let (segv, sizev) = self.enter_slow(slow, seg, size);
        let status = self.call(
            self.sigs.store,
            helpers::store as *const () as usize,
            &[self.frame, segv, ea, sizev, value],
        );
        let stop = self
            .b
            .ins()
            .icmp_imm_s(IntCC::Equal, status, i64::from(helpers::STOP));
        self.exit_if(stop, Self::stopped(i, op, EXIT_STOP, before));
        if let Some((n, v)) = then {
            self.gpr_store(v, n);
        }
        let leave = self
            .b
            .ins()
            .icmp_imm_s(IntCC::Equal, status, i64::from(helpers::LEAVE));
        let after = self.after(i, next);
        self.exit_if(leave, after);
        self.b.ins().jump(merge, &[]);
        self.b.seal_block(merge);
        self.b.switch_to_block(merge);
    }

    // ------------------------------------------------------------ flags

    fn set_lazy(&mut self, op: u8, size: usize, a: Value, b: Value, r: Value, cf: Value) {
        self.b.def_var(self.fa, a);
        self.b.def_var(self.fb, b);
        self.b.def_var(self.fr, r);
        self.b.def_var(self.fcf, cf);
        self.flags = FlagState::Lazy {
            op,
            size: size as u8,
        };
    }

    /// INC (`dec` false) or DEC of `a`, `size` bytes wide, as `exec/fast.rs`
    /// does it: the result, with its lazy record (CF kept) as the flags.
    fn inc_dec(&mut self, dec: bool, size: usize, a: Value) -> Value {
        let cf = self.carry();
        let cf = self.b.ins().icmp_imm_s(IntCC::NotEqual, cf, 0);
        let cf = self.b.ins().uextend(I64, cf);
        let r = self.b.ins().iadd_imm_s(a, if dec { -1 } else { 1 });
        let r = self.masked(r, mask(size));
        let one = self.iconst(1);
        let kind = if dec { lazy::DEC } else { lazy::INC };
        self.set_lazy(kind, size, a, one, r, cf);
        r
    }

    /// Register `r0` shifted (`kind` as in [`Form::Shift`]) from `a` to `r`
    /// by `count` (not 0), with the shift's flag state.
    fn shifted(&mut self, op: &Op, kind: u32, a: Value, r: Value, count: Value) {
        self.b.def_var(self.fa, a);
        self.b.def_var(self.fr, r);
        self.b.def_var(self.fcf, count);
        self.flags = FlagState::Shift {
            kind,
            size: op.r0.size() as u8,
        };
        self.wr(op.r0, r);
    }

    /// The status flags of the tracked flag state (a helper call but for
    /// [`FlagState::Bits`]).
    fn status_now(&mut self) -> Value {
        match self.flags {
            FlagState::Bits => return self.b.use_var(self.fr),
            FlagState::Frame => {
                return self.call(
                    self.sigs.status_frame,
                    helpers::status_frame as *const () as usize,
                    &[self.frame],
                )
            }
            _ => {}
        }
        let packed = self.iconst(packed_flags(self.flags));
        let [a, b, r, cf] = [self.fa, self.fb, self.fr, self.fcf].map(|v| self.b.use_var(v));
        self.call(
            self.sigs.status,
            helpers::status as *const () as usize,
            &[packed, a, b, r, cf],
        )
    }

    /// CF now, as 0 or 1 (what INC and DEC keep).
    fn carry(&mut self) -> Value {
        match self.flags {
            FlagState::Frame => self.call(
                self.sigs.carry_frame,
                helpers::carry_frame as *const () as usize,
                &[self.frame],
            ),
            FlagState::Shift { .. } | FlagState::Bits => {
                let st = self.status_now();
                self.b.ins().band_imm_s(st, x86::rflags::CF as i64)
            }
            FlagState::Mul { .. } => self.b.use_var(self.fcf),
            FlagState::Lazy { op, .. } => {
                let c = self.lazy_carry(op);
                self.b.ins().uextend(I64, c)
            }
            FlagState::Carry { borrow, .. } => {
                let c = self.carry_out(borrow);
                self.b.ins().uextend(I64, c)
            }
        }
    }

    /// The carry (or borrow) out of the pending ADC (SBB) as
    /// `flags::add` (`flags::sub`) computes it, as an I8 truth value.
    fn carry_out(&mut self, borrow: bool) -> Value {
        let a = self.b.use_var(self.fa);
        let b = self.b.use_var(self.fb);
        let r = self.b.use_var(self.fr);
        let cf = self.b.use_var(self.fcf);
        let cf = self.b.ins().icmp_imm_s(IntCC::NotEqual, cf, 0);
        // ADC: r < a, or r == a with a carry in; SBB: a < b, or a == b
        // with a borrow in.
        let (x, y) = if borrow { (a, b) } else { (r, a) };
        let below = self.b.ins().icmp(IntCC::UnsignedLessThan, x, y);
        let equal = self.b.ins().icmp(IntCC::Equal, x, y);
        let carried = self.b.ins().band(equal, cf);
        self.b.ins().bor(below, carried)
    }

    /// `Lazy::carry` of the pending record (an I8 truth value).
    fn lazy_carry(&mut self, op: u8) -> Value {
        let a = self.b.use_var(self.fa);
        let b = self.b.use_var(self.fb);
        let r = self.b.use_var(self.fr);
        match op {
            lazy::ADD => self.b.ins().icmp(IntCC::UnsignedLessThan, r, a),
            lazy::SUB => self.b.ins().icmp(IntCC::UnsignedLessThan, a, b),
            lazy::INC | lazy::DEC => {
                let cf = self.b.use_var(self.fcf);
                self.b.ins().icmp_imm_s(IntCC::NotEqual, cf, 0)
            }
            _ => self.b.ins().iconst(I8, 0),
        }
    }

    /// Condition `cc` (iced's number) now, as an I8 truth value.
    fn condition(&mut self, ccn: u32) -> Value {
        let cc = helpers::condition_code(ccn);
        let ccv = self.b.ins().iconst(I32, i64::from(ccn));
        let from_status = |e: &mut Self, st: Value| {
            let v = e.call(
                e.sigs.condition_status,
                helpers::condition_status as *const () as usize,
                &[st, ccv],
            );
            e.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
        };
        match self.flags {
            FlagState::Frame => {
                let v = self.call(
                    self.sigs.condition_frame,
                    helpers::condition_frame as *const () as usize,
                    &[self.frame, ccv],
                );
                self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
            }
            FlagState::Shift { size, .. }
            | FlagState::Mul { size }
            | FlagState::Carry { size, .. } => {
                let r = self.b.use_var(self.fr);
                let sb = sign_bit(size as usize) as i64;
                let sign = |e: &mut Self, c: IntCC| {
                    let s = e.b.ins().band_imm_s(r, sb);
                    e.b.ins().icmp_imm_s(c, s, 0)
                };
                let carry = |e: &mut Self, c: IntCC| match e.flags {
                    FlagState::Carry { borrow, .. } => {
                        let v = e.carry_out(borrow);
                        if c == IntCC::Equal {
                            e.b.ins().bxor_imm_s(v, 1)
                        } else {
                            v
                        }
                    }
                    _ => {
                        let cf = e.b.use_var(e.fcf);
                        e.b.ins().icmp_imm_s(c, cf, 0)
                    }
                };
                let is_mul = matches!(self.flags, FlagState::Mul { .. });
                // A shift's CF needs its full status (the helper).
                let is_shift = matches!(self.flags, FlagState::Shift { .. });
                match cc {
                    ConditionCode::e => self.b.ins().icmp_imm_s(IntCC::Equal, r, 0),
                    ConditionCode::ne => self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0),
                    ConditionCode::s => sign(self, IntCC::NotEqual),
                    ConditionCode::ns => sign(self, IntCC::Equal),
                    ConditionCode::b if !is_shift => carry(self, IntCC::NotEqual),
                    ConditionCode::ae if !is_shift => carry(self, IntCC::Equal),
                    // A multiply's OF is its CF.
                    ConditionCode::o if is_mul => carry(self, IntCC::NotEqual),
                    ConditionCode::no if is_mul => carry(self, IntCC::Equal),
                    _ => {
                        let st = self.status_now();
                        from_status(self, st)
                    }
                }
            }
            FlagState::Bits => {
                use x86::rflags::{CF, OF, PF, SF, ZF};
                use ConditionCode as C;
                let st = self.b.use_var(self.fr);
                let (bit, set) = match cc {
                    C::o | C::no => (OF, cc == C::o),
                    C::b | C::ae => (CF, cc == C::b),
                    C::e | C::ne => (ZF, cc == C::e),
                    C::s | C::ns => (SF, cc == C::s),
                    C::p | C::np => (PF, cc == C::p),
                    _ => return from_status(self, st),
                };
                let v = self.b.ins().band_imm_s(st, bit as i64);
                let c = if set { IntCC::NotEqual } else { IntCC::Equal };
                self.b.ins().icmp_imm_s(c, v, 0)
            }
            FlagState::Lazy { op, size } => match self.lazy_condition(op, size as usize, cc) {
                Some(v) => v,
                None => {
                    let st = self.status_now();
                    from_status(self, st)
                }
            },
        }
    }

    /// `Lazy::condition` inline; `None` where it would need the full flags.
    fn lazy_condition(&mut self, op: u8, size: usize, cc: ConditionCode) -> Option<Value> {
        use ConditionCode as C;
        let a = self.b.use_var(self.fa);
        let b = self.b.use_var(self.fb);
        let r = self.b.use_var(self.fr);
        let sb = sign_bit(size) as i64;
        let not = |e: &mut Self, v: Value| e.b.ins().bxor_imm_s(v, 1);
        Some(match cc {
            C::e => self.b.ins().icmp_imm_s(IntCC::Equal, r, 0),
            C::ne => self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0),
            C::s | C::ns => {
                let s = self.b.ins().band_imm_s(r, sb);
                let c = if cc == C::s {
                    IntCC::NotEqual
                } else {
                    IntCC::Equal
                };
                self.b.ins().icmp_imm_s(c, s, 0)
            }
            C::b => self.lazy_carry(op),
            C::ae => {
                let c = self.lazy_carry(op);
                not(self, c)
            }
            C::be if op == lazy::SUB => self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, a, b),
            C::a if op == lazy::SUB => self.b.ins().icmp(IntCC::UnsignedGreaterThan, a, b),
            C::l | C::ge | C::le | C::g if op == lazy::SUB || op == lazy::LOGIC => {
                let less = if op == lazy::SUB {
                    let shift = (64 - 8 * size) as i64;
                    let sa = self.b.ins().ishl_imm_s(a, shift);
                    let sbv = self.b.ins().ishl_imm_s(b, shift);
                    self.b.ins().icmp(IntCC::SignedLessThan, sa, sbv)
                } else {
                    let s = self.b.ins().band_imm_s(r, sb);
                    self.b.ins().icmp_imm_s(IntCC::NotEqual, s, 0)
                };
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, r, 0);
                match cc {
                    C::l => less,
                    C::ge => not(self, less),
                    C::le => self.b.ins().bor(less, zero),
                    _ => {
                        let either = self.b.ins().bor(less, zero);
                        not(self, either)
                    }
                }
            }
            _ => return None,
        })
    }

    // ------------------------------------------------------------ instructions

    fn alu(&mut self, a_op: AluOp, size: usize, a: Value, b: Value) -> Value {
        let (r, kind) = self.alu_result(a_op, size, a, b);
        let zero = self.iconst(0);
        self.set_lazy(kind, size, a, b, r, zero);
        r
    }

    /// The result of an ALU operation and its lazy kind, flags untouched.
    fn alu_result(&mut self, a_op: AluOp, size: usize, a: Value, b: Value) -> (Value, u8) {
        let m = mask(size);
        let (r, kind) = match a_op {
            AluOp::Add => {
                let s = self.b.ins().iadd(a, b);
                (self.masked(s, m), lazy::ADD)
            }
            AluOp::Sub | AluOp::Cmp => {
                let s = self.b.ins().isub(a, b);
                (self.masked(s, m), lazy::SUB)
            }
            AluOp::And | AluOp::Test => (self.b.ins().band(a, b), lazy::LOGIC),
            AluOp::Or => (self.b.ins().bor(a, b), lazy::LOGIC),
            AluOp::Xor => (self.b.ins().bxor(a, b), lazy::LOGIC),
        };
        (r, kind)
    }

    /// Goes on unless the frame's [`Frame::plain`] lacks `bit`: then the
    /// interpreter runs instruction `i`, with its checks, and the block
    /// leaves after it.
    fn unless_plain(&mut self, i: u64, op: &Op, bit: u64) {
        let plain = self.env(at::PLAIN);
        let bit = self.b.ins().band_imm_u(plain, bit as i64);
        let checked = self.b.ins().icmp_imm_s(IntCC::Equal, bit, 0);
        self.interpret_and_leave_if(checked, i, op);
    }

    /// Where `cond` is non-zero (in a cold stub), the interpreter runs
    /// instruction `i` and the block leaves after it; the block goes on in
    /// a fresh block, with the flag state it had, otherwise.
    fn interpret_and_leave_if(&mut self, cond: Value, i: u64, op: &Op) {
        let next = self.cold_if(cond);
        let flags = self.flags;
        self.interpret(i, op);
        let x = self.after(i, op.next_ip);
        self.jump_exit(x);
        self.flags = flags;
        self.b.switch_to_block(next);
    }

    /// ROL (`ror` false) or ROR of register `r0` by `count` (not 0), as
    /// `exec::alu::shift_result` does it: CF and OF from the result, the
    /// other status flags kept.
    fn rotate(&mut self, op: &Op, ror: bool, count: u32) {
        use x86::rflags::{CF, OF};
        let size = op.r0.size();
        let bits = (size * 8) as u32;
        let a = self.rd(op.r0);
        let before = self.status_now();
        let c = count % bits;
        let r = if c == 0 {
            a
        } else {
            // A right rotation by c is a left one by bits − c.
            let left = if ror { bits - c } else { c };
            let hi = self.b.ins().ishl_imm_s(a, i64::from(left));
            let lo = self.b.ins().ushr_imm_s(a, i64::from(bits - left));
            let v = self.b.ins().bor(hi, lo);
            self.masked(v, mask(size))
        };
        let top = self.b.ins().ushr_imm_s(r, i64::from(bits - 1));
        let (cf, of) = if ror {
            let next = self.b.ins().ushr_imm_s(r, i64::from(bits - 2));
            (top, self.b.ins().bxor(top, next))
        } else {
            (r, self.b.ins().bxor(top, r))
        };
        let cf = self.b.ins().band_imm_s(cf, CF as i64);
        let of = self.b.ins().band_imm_s(of, 1);
        let of = self.b.ins().ishl_imm_s(of, i64::from(OF.trailing_zeros()));
        let kept = self.b.ins().band_imm_s(before, !(CF | OF) as i64);
        let st = self.b.ins().bor(kept, cf);
        let st = self.b.ins().bor(st, of);
        let zero = self.iconst(0);
        for v in [self.fa, self.fb, self.fcf] {
            self.b.def_var(v, zero);
        }
        self.b.def_var(self.fr, st);
        self.flags = FlagState::Bits;
        self.wr(op.r0, r);
    }

    fn source(&mut self, i: u64, op: &Op, s: Operand, size: usize) -> Value {
        match s {
            Operand::Reg => self.rd(op.r1),
            Operand::Imm => self.iconst(op.imm),
            Operand::Mem => {
                let ea = self.ea(&op.mem);
                self.load(i, op, op.mem.seg, ea, size)
            }
        }
    }

    /// Pushes `size` bytes of `value` for instruction `i` (64-bit code: the
    /// stack is flat and RSP wraps at 64 bits); RSP moves once the write is
    /// done, and a write to decoded code leaves for `next`.
    fn push(&mut self, i: u64, op: &Op, size: usize, value: Value, next: u64) {
        let rsp = self.gpr_load(4);
        let new = self.b.ins().iadd_imm_s(rsp, -(size as i64));
        let before = self.flags_now();
        self.store_then(
            i,
            op,
            Seg::Ss,
            new,
            size,
            value,
            before,
            Some((4, new)),
            next,
        );
    }

    /// The low `size` bytes of the signed product of `a` and `b` (each
    /// taken as `size` bytes wide), and whether the product lost
    /// significant bits (0 or 1), as `exec/fast.rs`'s `imul_r` computes them.
    fn imul(&mut self, size: usize, a: Value, b: Value) -> (Value, Value) {
        let (r, overflow) = if size == 8 {
            let r = self.b.ins().imul(a, b);
            let high = self.b.ins().smulhi(a, b);
            let sign = self.b.ins().sshr_imm_s(r, 63);
            (r, self.b.ins().icmp(IntCC::NotEqual, high, sign))
        } else {
            // Both factors fit in 32 signed bits: the product is exact.
            let shift = (64 - 8 * size) as i64;
            let sext = |e: &mut Self, v: Value| {
                let up = e.b.ins().ishl_imm_s(v, shift);
                e.b.ins().sshr_imm_s(up, shift)
            };
            let sa = sext(self, a);
            let sb = sext(self, b);
            let p = self.b.ins().imul(sa, sb);
            let r = self.masked(p, mask(size));
            let back = sext(self, r);
            (r, self.b.ins().icmp(IntCC::NotEqual, back, p))
        };
        (r, self.b.ins().uextend(I64, overflow))
    }

    /// A near branch to `target` taken by instruction `i`: leave for it,
    /// after the checks of `SoftCpu::jump_near`.
    fn leave_for(&mut self, i: u64, op: &Op, target: u64) {
        let before = self.flags_now();
        if self.bitness == 64 {
            if !x86::address::is_canonical(target) {
                self.jump_exit(Self::stopped(i, op, EXIT_GP, before));
                return;
            }
            let x = self.after(i, target);
            self.jump_exit(x);
        } else {
            let target = target & 0xFFFF_FFFF;
            let limit = self.env(at::CS_LIMIT);
            let over = self
                .b
                .ins()
                .icmp_imm_s(IntCC::UnsignedLessThan, limit, target as i64);
            self.exit_if(over, Self::stopped(i, op, EXIT_GP, before));
            let x = self.after(i, target);
            self.jump_exit(x);
        }
    }

    /// The back edge at instruction `i` of a block that loops to its
    /// start: count the pass (instructions 0 to `i`), and run the next one
    /// if the whole block fits before the horizon (what the dispatcher asks
    /// of a block before it runs it translated).
    fn back_edge(&mut self, start: u64, head: Block, i: u64) {
        // The pass is done: the frame's time and count move on (they hold
        // the values at the start of the current pass).
        let ic = self.env(at::IC);
        let c0 = self.frame_load(at::CYCLES);
        let pass = self.b.ins().imul_imm_s(ic, (i + 1) as i64);
        let c1 = self.b.ins().iadd(c0, pass);
        self.frame_store(c1, at::CYCLES);
        let r0 = self.frame_load(at::RETIRED);
        let r1 = self.b.ins().iadd_imm_s(r0, (i + 1) as i64);
        self.frame_store(r1, at::RETIRED);
        let whole = self.b.ins().imul_imm_s(ic, self.n as i64);
        let end = self.b.ins().iadd(c1, whole);
        let horizon = self.env(at::HORIZON);
        let fits = self
            .b
            .ins()
            .icmp(IntCC::UnsignedLessThanOrEqual, end, horizon);
        // Otherwise: the state at the start of a pass nothing of which ran.
        // The second pass reaches its back edge in the state the first
        // did: the instructions before it are the same, and where none of
        // them sets flags the second pass starts in the first's state.
        debug_assert!(self.head_flags.is_none_or(|f| f == self.flags));
        self.head_flags = Some(self.flags);
        let out = self.b.create_block();
        self.b.set_cold_block(out);
        self.b.ins().brif(fits, head, &[], out, &[]);
        self.b.seal_block(out);
        self.b.switch_to_block(out);
        let flags = self.flags_now();
        self.jump_exit(Exit {
            status: EXIT_OK,
            rip: start,
            next_rip: start,
            done: 0,
            charged: 0,
            len: 0,
            dynamic: false,
            flags,
        });
    }

    /// Hands instruction `i` to the interpreter.
    fn interpret(&mut self, i: u64, op: &Op) {
        let flags = self.flags_now();
        let x = Exit {
            status: EXIT_OK,
            rip: op.ins.ip(),
            next_rip: op.next_ip,
            done: i,
            charged: i + 1,
            len: op.ins.len() as u32,
            dynamic: false,
            flags,
        };
        let index = self.site(&x, i as usize);
        let index = self.iconst(index);
        let [a, b, r, cf] = flags.values;
        let status = self.call(
            self.sigs.interpret,
            helpers::interpret as *const () as usize,
            &[self.frame, index, a, b, r, cf],
        );
        self.flags = FlagState::Frame;
        // The frame is complete whatever happened: a stop or a leave
        // returns straight away.
        let next = self.b.create_block();
        self.b
            .ins()
            .brif(status, self.done, &[status.into()], next, &[]);
        self.b.seal_block(next);
        self.b.switch_to_block(next);
    }

    /// Emits instruction `i` of the block; `head` is the loop head when the
    /// block branches back to `start` at its end.
    fn insn(&mut self, i: u64, op: &Op, start: u64) {
        let head = self.head.filter(|_| self.loop_at == Some(i));
        let last = i + 1 == self.n;
        // A call to a non-canonical target faults after its push, which
        // the interpreter then undoes: it is left to the interpreter.
        let inline = form_of(op).filter(|f| {
            (self.bitness == 64 || !f.long_mode_only())
                && (*f != Form::Call || x86::address::is_canonical(op.imm))
        });
        let Some(form) = inline else {
            self.interpret(i, op);
            if last {
                let x = self.after(i, op.next_ip);
                self.jump_exit(x);
            }
            return;
        };
        match form {
            Form::AluR(a_op, s) => {
                let size = op.r0.size();
                let a = self.rd(op.r0);
                let b = self.source(i, op, s, size);
                let r = self.alu(a_op, size, a, b);
                if !matches!(a_op, AluOp::Cmp | AluOp::Test) {
                    self.wr(op.r0, r);
                }
            }
            Form::AluM(a_op, s) => {
                let size = op.ins.memory_size().size();
                let ea = self.ea(&op.mem);
                let a = self.load(i, op, op.mem.seg, ea, size);
                let b = match s {
                    Operand::Imm => self.iconst(op.imm),
                    _ => self.rd(op.r1),
                };
                let (r, kind) = self.alu_result(a_op, size, a, b);
                // The store may fault: flags change only once it is done.
                let before = self.flags_now();
                let zero = self.iconst(0);
                self.set_lazy(kind, size, a, b, r, zero);
                if !matches!(a_op, AluOp::Cmp | AluOp::Test) {
                    self.store(i, op, op.mem.seg, ea, size, r, before);
                }
            }
            Form::MovR(s) => {
                let size = op.r0.size();
                let v = self.source(i, op, s, size);
                self.wr(op.r0, v);
            }
            Form::MovM(s) => {
                let (size, v) = match s {
                    Operand::Imm => (op.ins.memory_size().size(), self.iconst(op.imm)),
                    _ => (op.r1.size(), self.rd(op.r1)),
                };
                let ea = self.ea(&op.mem);
                let before = self.flags_now();
                self.store(i, op, op.mem.seg, ea, size, v, before);
            }
            Form::IncDec(dec) => {
                let size = op.r0.size();
                let a = self.rd(op.r0);
                let r = self.inc_dec(dec, size, a);
                self.wr(op.r0, r);
            }
            Form::IncDecM(dec) => {
                let size = op.ins.memory_size().size();
                let ea = self.ea(&op.mem);
                let a = self.load(i, op, op.mem.seg, ea, size);
                // The store may fault: flags change only once it is done.
                let before = self.flags_now();
                let r = self.inc_dec(dec, size, a);
                self.store(i, op, op.mem.seg, ea, size, r, before);
            }
            Form::Lea => {
                let ea = self.ea(&op.mem);
                let v = self.masked(ea, mask(op.r0.size()));
                self.wr(op.r0, v);
            }
            Form::Shift(kind, count) => {
                if count != 0 {
                    let size = op.r0.size();
                    let bits = (size * 8) as u32;
                    let a = self.rd(op.r0);
                    let m = mask(size);
                    let r = match kind {
                        0 if count >= bits => self.iconst(0),
                        0 => {
                            let s = self.b.ins().ishl_imm_s(a, i64::from(count));
                            self.masked(s, m)
                        }
                        1 if count >= bits => self.iconst(0),
                        1 => self.b.ins().ushr_imm_s(a, i64::from(count)),
                        _ => {
                            let shift = i64::from(64 - bits);
                            let up = self.b.ins().ishl_imm_s(a, shift);
                            let s = self.b.ins().sshr_imm_s(up, shift);
                            let s = self.b.ins().sshr_imm_s(s, i64::from(count.min(63)));
                            self.masked(s, m)
                        }
                    };
                    let count = self.iconst(u64::from(count));
                    self.shifted(op, kind, a, r, count);
                }
            }
            Form::ShiftByCl(kind) => {
                let size = op.r0.size();
                let bits = (size * 8) as i64;
                let cl = self.rd(op.r1);
                let count = self
                    .b
                    .ins()
                    .band_imm_s(cl, if size == 8 { 0x3F } else { 0x1F });
                // A count of 0 changes nothing, not even the flags (whose
                // state here could not then be known): the interpreter runs it.
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, count, 0);
                self.interpret_and_leave_if(zero, i, op);
                let a = self.rd(op.r0);
                let m = mask(size);
                let r = match kind {
                    0 => {
                        let s = self.b.ins().ishl(a, count);
                        self.masked(s, m)
                    }
                    1 => self.b.ins().ushr(a, count),
                    _ => {
                        let up = self.b.ins().ishl_imm_s(a, 64 - bits);
                        let s = self.b.ins().sshr_imm_s(up, 64 - bits);
                        let s = self.b.ins().sshr(s, count);
                        self.masked(s, m)
                    }
                };
                self.shifted(op, kind, a, r, count);
            }
            Form::Rotate(ror, count) => {
                if count != 0 {
                    self.rotate(op, ror, count);
                }
            }
            Form::Not => {
                let a = self.rd(op.r0);
                let v = self.b.ins().bnot(a);
                let v = self.masked(v, mask(op.r0.size()));
                self.wr(op.r0, v);
            }
            Form::Neg => {
                // 0 − r, with that subtraction's flags (`exec/fast.rs`, `neg_r`).
                let size = op.r0.size();
                let a = self.rd(op.r0);
                let zero = self.iconst(0);
                let r = self.alu(AluOp::Sub, size, zero, a);
                self.wr(op.r0, r);
            }
            Form::ReadTsc(rdtscp) => {
                self.unless_plain(i, op, if rdtscp { PLAIN_RDTSCP } else { PLAIN_RDTSC });
                // The interpreter charges an instruction before running it.
                let now = self.cycles_after(i + 1);
                let delta = self.env(at::TSC_DELTA);
                let tsc = self.b.ins().iadd(now, delta);
                if rdtscp {
                    let aux = self.env(at::TSC_AUX);
                    self.gpr_store(aux, 1);
                }
                let lo = self.masked(tsc, 0xFFFF_FFFF);
                let hi = self.b.ins().ushr_imm_s(tsc, 32);
                self.gpr_store(lo, 0);
                self.gpr_store(hi, 2);
            }
            Form::Pause => self.unless_plain(i, op, PLAIN_PAUSE),
            Form::Nop => {}
            Form::Extend(signed, s) => {
                let ssize = match s {
                    Operand::Mem => op.ins.memory_size().size(),
                    _ => op.r1.size(),
                };
                let v = self.source(i, op, s, ssize);
                let v = if signed && ssize < 8 {
                    let shift = (64 - 8 * ssize) as i64;
                    let up = self.b.ins().ishl_imm_s(v, shift);
                    self.b.ins().sshr_imm_s(up, shift)
                } else {
                    v
                };
                self.wr(op.r0, v);
            }
            Form::Imul(s, three) => {
                let size = op.r0.size();
                let (a, b) = if three {
                    let a = self.source(i, op, s, size);
                    (a, self.iconst(op.ins.immediate(2)))
                } else {
                    let a = self.rd(op.r0);
                    (a, self.source(i, op, s, size))
                };
                let (r, overflow) = self.imul(size, a, b);
                let zero = self.iconst(0);
                self.b.def_var(self.fa, zero);
                self.b.def_var(self.fb, zero);
                self.b.def_var(self.fr, r);
                self.b.def_var(self.fcf, overflow);
                self.flags = FlagState::Mul { size: size as u8 };
                self.wr(op.r0, r);
            }
            Form::Setcc(cc, dest) => {
                let taken = self.condition(cc);
                let v = self.b.ins().uextend(I64, taken);
                match dest {
                    Operand::Mem => {
                        let ea = self.ea(&op.mem);
                        let before = self.flags_now();
                        self.store(i, op, op.mem.seg, ea, 1, v, before);
                    }
                    _ => self.wr(op.r0, v),
                }
            }
            Form::Cmov(cc, s) => {
                let taken = self.condition(cc);
                let v = self.source(i, op, s, op.r0.size());
                let old = self.rd(op.r0);
                let out = self.b.ins().select(taken, v, old);
                self.wr(op.r0, out);
            }
            Form::CarryArith(borrow, s) => {
                let size = op.r0.size();
                let cf = self.carry();
                let cf = self.b.ins().icmp_imm_s(IntCC::NotEqual, cf, 0);
                let cf = self.b.ins().uextend(I64, cf);
                let a = self.rd(op.r0);
                let b = self.source(i, op, s, size);
                let m = mask(size);
                let b = self.masked(b, m);
                let r = if borrow {
                    let d = self.b.ins().isub(a, b);
                    self.b.ins().isub(d, cf)
                } else {
                    let t = self.b.ins().iadd(a, b);
                    self.b.ins().iadd(t, cf)
                };
                let r = self.masked(r, m);
                self.b.def_var(self.fa, a);
                self.b.def_var(self.fb, b);
                self.b.def_var(self.fr, r);
                self.b.def_var(self.fcf, cf);
                self.flags = FlagState::Carry {
                    borrow,
                    size: size as u8,
                };
                self.wr(op.r0, r);
            }
            Form::Push => {
                let v = self.rd(op.r0);
                self.push(i, op, op.r0.size(), v, op.next_ip);
            }
            Form::Pop => {
                let size = op.r0.size();
                let rsp = self.gpr_load(4);
                let v = self.load(i, op, Seg::Ss, rsp, size);
                let new = self.b.ins().iadd_imm_s(rsp, size as i64);
                self.gpr_store(new, 4);
                self.wr(op.r0, v);
            }
            Form::Call => {
                // The return address is pushed, then the branch taken; the
                // target is canonical (checked above), so it cannot fault.
                let size = match op.ins.op0_kind() {
                    OpKind::NearBranch16 => 2,
                    OpKind::NearBranch32 => 4,
                    _ => 8,
                };
                let ret = self.iconst(op.next_ip);
                self.push(i, op, size, ret, op.imm);
                self.leave_for(i, op, op.imm);
                return;
            }
            Form::Ret => {
                let size = op.ins.stack_pointer_increment() as usize;
                let rsp = self.gpr_load(4);
                let target = self.load(i, op, Seg::Ss, rsp, size);
                // A non-canonical target faults with RSP as it was.
                let up = self.b.ins().ishl_imm_s(target, 16);
                let back = self.b.ins().sshr_imm_s(up, 16);
                let bad = self.b.ins().icmp(IntCC::NotEqual, back, target);
                let before = self.flags_now();
                self.exit_if(bad, Self::stopped(i, op, EXIT_GP, before));
                let new = self.b.ins().iadd_imm_s(rsp, size as i64);
                self.gpr_store(new, 4);
                self.frame_store(target, at::SCRATCH);
                let mut x = self.after(i, 0);
                x.dynamic = true;
                self.jump_exit(x);
                return;
            }
            Form::Jmp => {
                if let Some(head) = head {
                    self.back_edge(start, head, i);
                    return;
                }
                self.leave_for(i, op, op.imm);
                return;
            }
            Form::Jcc(cc) => {
                let taken = self.condition(cc);
                let taken_blk = self.b.create_block();
                let next = self.b.create_block();
                self.b.ins().brif(taken, taken_blk, &[], next, &[]);
                self.b.seal_block(next);
                self.b.seal_block(taken_blk);
                self.b.switch_to_block(taken_blk);
                match head {
                    Some(head) => self.back_edge(start, head, i),
                    _ => self.leave_for(i, op, op.imm),
                }
                self.b.switch_to_block(next);
            }
        }
        if last {
            let x = self.after(i, op.next_ip);
            self.jump_exit(x);
        }
    }
}

/// The first inline branch of the block back to its own first instruction.
fn loop_at(ops: &[Op], start: u64) -> Option<u64> {
    ops.iter()
        .position(|op| matches!(form_of(op), Some(Form::Jmp | Form::Jcc(_))) && op.imm == start)
        .map(|i| i as u64)
}

/// Cranelift, set up once for the host.
pub(crate) struct Translator {
    isa: OwnedTargetIsa,
    fctx: FunctionBuilderContext,
    ctx: Context,
}

impl Translator {
    /// A translator for the host processor.
    pub(crate) fn new() -> Result<Translator, JitError> {
        let mut flags = settings::builder();
        // The verifier checks the generator itself, not the guest: on in
        // debug builds, off where compile latency counts.
        let verify = if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        };
        // "speed" runs Cranelift's alias analysis, which keeps guest
        // registers out of memory between their uses; the backtracking
        // register allocator roughly halves the memory loop's time against
        // the single-pass one (bench/speed.sh) at about twice the compile time.
        for (name, value) in [
            ("opt_level", "speed"),
            ("enable_verifier", verify),
            ("regalloc_algorithm", "backtracking"),
        ] {
            flags
                .set(name, value)
                .map_err(|e| JitError::Setup(e.to_string()))?;
        }
        let isa = cranelift_native::builder()
            .map_err(|e| JitError::Setup(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| JitError::Setup(e.to_string()))?;
        Ok(Translator {
            isa,
            fctx: FunctionBuilderContext::new(),
            ctx: Context::new(),
        })
    }

    fn signature(
        &self,
        params: &[cranelift_codegen::ir::Type],
        ret: cranelift_codegen::ir::Type,
    ) -> Signature {
        let mut sig = Signature::new(self.isa.default_call_conv());
        sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
        sig.returns.push(AbiParam::new(ret));
        sig
    }

    /// Translates the block `ops`, decoded in `bitness`-bit code and
    /// starting at `start`.
    pub(crate) fn translate(
        &mut self,
        ops: &[Op],
        bitness: u32,
        start: u64,
    ) -> Result<Native, JitError> {
        if ops.is_empty() {
            return Err(JitError::Empty);
        }
        self.ctx.clear();
        let entry_sig = self.signature(&[I64], I32);
        let sig_of = |t: &Self, p: &[cranelift_codegen::ir::Type], r| t.signature(p, r);
        let load_sig = sig_of(self, &[I64, I32, I64, I32], I32);
        let store_sig = sig_of(self, &[I64, I32, I64, I32, I64], I32);

        let site_sig = sig_of(self, &[I64; 6], I32);
        let cond_frame_sig = sig_of(self, &[I64, I32], I32);
        let carry_sig = sig_of(self, &[I64], I64);
        let status_sig = sig_of(self, &[I64; 5], I64);
        let cond_status_sig = sig_of(self, &[I64, I32], I32);
        self.ctx.func = Function::with_name_signature(UserFuncName::user(0, 0), entry_sig);
        let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let sigs = Sigs {
            load: b.import_signature(load_sig),
            store: b.import_signature(store_sig),
            interpret: b.import_signature(site_sig.clone()),
            exit: b.import_signature(site_sig),
            condition_frame: b.import_signature(cond_frame_sig),
            carry_frame: b.import_signature(carry_sig.clone()),
            status_frame: b.import_signature(carry_sig),
            status: b.import_signature(status_sig),
            condition_status: b.import_signature(cond_status_sig),
        };
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let frame = b.block_params(entry)[0];
        let mut region = |id: u32, what: &'static str| {
            let r = b.func.dfg.alias_regions.insert(AliasRegionData {
                user_id: id,
                description: what.into(),
            });
            Some(r)
        };
        let mf = Regions {
            frame: MemFlagsData::trusted().with_alias_region(region(1, "frame")),
            guest: MemFlagsData::new()
                .with_notrap()
                .with_alias_region(region(2, "guest memory")),
            tables: MemFlagsData::trusted().with_alias_region(region(3, "tlb and code pages")),
            env: MemFlagsData::trusted().with_alias_region(region(4, "frame environment")),
        };
        let var = |b: &mut FunctionBuilder, init: Value| {
            let v = b.declare_var(I64);
            b.def_var(v, init);
            v
        };
        let zero = b.ins().iconst(I64, 0);
        let done = b.create_block();
        b.set_cold_block(done);
        b.append_block_param(done, I32);
        let mut e = Emitter {
            fa: var(&mut b, zero),
            fb: var(&mut b, zero),
            fr: var(&mut b, zero),
            fcf: var(&mut b, zero),
            b,
            frame,
            sigs,
            mf,
            sites: Vec::new(),
            done,
            flags: FlagState::Frame,
            bitness,
            n: ops.len() as u64,
            loop_at: None,
            head: None,
            head_flags: None,
        };
        e.loop_at = loop_at(ops, start);
        e.head = e.loop_at.map(|_| e.b.create_block());
        for (i, op) in ops.iter().enumerate() {
            e.insn(i as u64, op, start);
        }
        if let Some(head) = e.head {
            // The loop body: the same instructions, entered with the flags
            // the first pass left at the back edge.
            e.b.switch_to_block(head);
            e.flags = e.head_flags.unwrap_or(FlagState::Frame);
            for (i, op) in ops.iter().enumerate() {
                e.insn(i as u64, op, start);
            }
        }
        e.emit_done();
        let sites = std::mem::take(&mut e.sites);
        e.b.seal_all_blocks();
        let config = self.isa.frontend_config();
        e.b.finalize(config);
        let compiled = self
            .ctx
            .compile(&*self.isa, &mut Default::default())
            .map_err(|e| JitError::Compile(format!("{:?}", e.inner)))?;
        if !compiled.buffer.relocs().is_empty() {
            return Err(JitError::Compile("relocations in translated code".into()));
        }
        let code = CodeMemory::new(compiled.code_buffer()).map_err(JitError::Map)?;
        Ok(Native {
            code,
            sites: sites.into_boxed_slice(),
        })
    }
}

// The frame layout the generated code assumes.
const _: () = assert!(std::mem::size_of::<crate::mmu::TlbEntry>() == 24);
const _: () = assert!(std::mem::align_of::<Frame>() == 8);
