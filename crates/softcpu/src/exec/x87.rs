//! x87 FPU instructions (SDM Vol. 1 chapter 8, Vol. 2 "F…" pages): loads
//! and stores in every memory format, arithmetic, comparisons, the
//! stack-management and control instructions, FSTENV/FLDENV and
//! FSAVE/FRSTOR. Arithmetic is IEEE 754 in the 80-bit format through
//! [`crate::float`].
//!
//! Not modelled: precision control (FCW.PC; every result is rounded to 64
//! significant bits, the setting Linux and the System V ABI use), the
//! exponent bias applied to results of unmasked overflow and underflow (the
//! masked result is stored, the flags and #MF are as on silicon), the
//! transcendental instructions (F2XM1, FYL2X, FYL2XP1, FPTAN, FPATAN, FSIN,
//! FCOS, FSINCOS: #UD) and packed BCD (FBLD, FBSTP: #UD).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::float::{self, Arith, Env, Fmt, F32, F64, F80};
use crate::fpu::*;
use iced_x86::{Instruction, MemorySize, Mnemonic, OpKind, Register};
use rustc_apfloat::{Float, Round};
use std::cmp::Ordering;
use x86::rflags::{CF, PF, ZF};

/// The 80-bit encodings of the constants FLD1 … FLDLN2: the significand
/// truncated to 64 bits, and whether the discarded bits round it up to
/// nearest (they are never zero for the irrational ones, so toward +∞
/// always adds one; SDM Vol. 1 §8.3.8: the constants are held with 66 bits
/// and rounded by FCW.RC).
const PI: (u128, bool) = (0x4000_C90F_DAA2_2168_C234, true);
const L2T: (u128, bool) = (0x4000_D49A_784B_CD1B_8AFE, false);
const L2E: (u128, bool) = (0x3FFF_B8AA_3B29_5C17_F0BB, true);
const LG2: (u128, bool) = (0x3FFD_9A20_9A84_FBCF_F798, true);
const LN2: (u128, bool) = (0x3FFE_B172_17F7_D1CF_79AB, true);
const ONE: u128 = 0x3FFF_8000_0000_0000_0000;

/// How a comparison instruction reports and pops.
struct CompareForm {
    /// IE for QNaN operands too (FCOM, not FUCOM).
    signaling: bool,
    /// Sets ZF/PF/CF instead of C3/C2/C0 (FCOMI family).
    eflags: bool,
    /// Registers popped afterwards.
    pops: usize,
}

impl SoftCpu {
    /// Executes an x87 instruction.
    pub(super) fn x87(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        let m = ins.mnemonic();
        let nowait = matches!(
            m,
            M::Fninit | M::Fnclex | M::Fnstcw | M::Fnstsw | M::Fnstenv | M::Fnsave
        );
        self.x87_check(!nowait)?;
        let control = nowait || matches!(m, M::Fldcw | M::Fldenv | M::Frstor);
        let env = Env::x87(u32::from(self.fpu.fcw >> 10));
        match m {
            M::Fadd | M::Faddp | M::Fiadd => self.x87_arith(ins, Arith::Add, false, &env)?,
            M::Fsub | M::Fsubp | M::Fisub => self.x87_arith(ins, Arith::Sub, false, &env)?,
            M::Fsubr | M::Fsubrp | M::Fisubr => self.x87_arith(ins, Arith::Sub, true, &env)?,
            M::Fmul | M::Fmulp | M::Fimul => self.x87_arith(ins, Arith::Mul, false, &env)?,
            M::Fdiv | M::Fdivp | M::Fidiv => self.x87_arith(ins, Arith::Div, false, &env)?,
            M::Fdivr | M::Fdivrp | M::Fidivr => self.x87_arith(ins, Arith::Div, true, &env)?,
            M::Fld | M::Fild => self.x87_load(ins, &env)?,
            M::Fld1 => self.x87_push_checked(ONE),
            M::Fldz => self.x87_push_checked(0),
            M::Fldpi => self.x87_constant(PI, &env),
            M::Fldl2t => self.x87_constant(L2T, &env),
            M::Fldl2e => self.x87_constant(L2E, &env),
            M::Fldlg2 => self.x87_constant(LG2, &env),
            M::Fldln2 => self.x87_constant(LN2, &env),
            M::Fst | M::Fstp => self.x87_store(ins, &env)?,
            M::Fist | M::Fistp | M::Fisttp => self.x87_store_int(ins, &env)?,
            M::Fcom | M::Fcomp | M::Fcompp | M::Ficom | M::Ficomp | M::Ftst => {
                let pops = match m {
                    M::Fcomp | M::Ficomp => 1,
                    M::Fcompp => 2,
                    _ => 0,
                };
                self.x87_compare(
                    ins,
                    CompareForm {
                        signaling: true,
                        eflags: false,
                        pops,
                    },
                )?
            }
            M::Fucom | M::Fucomp | M::Fucompp => {
                let pops = match m {
                    M::Fucomp => 1,
                    M::Fucompp => 2,
                    _ => 0,
                };
                self.x87_compare(
                    ins,
                    CompareForm {
                        signaling: false,
                        eflags: false,
                        pops,
                    },
                )?
            }
            M::Fcomi | M::Fcomip | M::Fucomi | M::Fucomip => self.x87_compare(
                ins,
                CompareForm {
                    signaling: matches!(m, M::Fcomi | M::Fcomip),
                    eflags: true,
                    pops: usize::from(matches!(m, M::Fcomip | M::Fucomip)),
                },
            )?,
            M::Fxch => self.fxch(ins),
            M::Fchs | M::Fabs => {
                if let Some(v) = self.x87_operand(0) {
                    let v = if m == M::Fchs {
                        v ^ (1 << 79)
                    } else {
                        v & !(1 << 79)
                    };
                    self.fpu.fsw &= !FSW_C1;
                    self.fpu.set_st(0, v);
                } else {
                    self.x87_underflow_into(0);
                }
            }
            M::Fsqrt => self.x87_unary(float::sqrt::<F80>, &env),
            M::Frndint => self.x87_unary(float::round_integral::<F80>, &env),
            M::Fscale => self.fscale(&env),
            M::Fxtract => self.fxtract(),
            M::Fprem => self.fprem(false),
            M::Fprem1 => self.fprem(true),
            M::Fxam => self.fxam(),
            M::Fcmovb
            | M::Fcmove
            | M::Fcmovbe
            | M::Fcmovu
            | M::Fcmovnb
            | M::Fcmovne
            | M::Fcmovnbe
            | M::Fcmovnu => self.fcmov(ins),
            M::Ffree | M::Ffreep => {
                let i = sti(ins.op0_register());
                self.fpu.free(i);
                if m == M::Ffreep {
                    self.x87_pop();
                }
            }
            M::Fdecstp | M::Fincstp => {
                let top = self.fpu.top();
                let top = if m == M::Fdecstp { top + 7 } else { top + 1 };
                self.fpu.set_top(top);
                self.fpu.fsw &= !FSW_C1;
            }
            M::Fnop | M::Fneni | M::Fndisi | M::Fnsetpm => {}
            M::Fninit => self.fpu.finit(),
            M::Fnclex => self.fpu.fsw &= !(0x3F | FSW_SF | FSW_ES | FSW_B),
            M::Fldcw => {
                let (seg, ea) = self.mem_operand(ins);
                let v = self.read_mem(seg, ea, 2)? as u16;
                self.set_fcw(v);
            }
            M::Fnstcw => {
                let (seg, ea) = self.mem_operand(ins);
                self.write_mem(seg, ea, 2, u64::from(self.fpu.fcw))?;
            }
            M::Fnstsw => {
                let v = u64::from(self.fpu.fsw);
                if ins.op0_kind() == OpKind::Register {
                    self.set_reg(Register::AX, v);
                } else {
                    let (seg, ea) = self.mem_operand(ins);
                    self.write_mem(seg, ea, 2, v)?;
                }
            }
            M::Fnstenv | M::Fnsave => self.fstenv(ins)?,
            M::Fldenv | M::Frstor => self.fldenv(ins)?,
            _ => return Err(Exception::ud().into()),
        }
        if !control {
            self.fpu.fip = self.s.rip;
            if (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory) {
                self.fpu.fdp = self.effective_address(ins);
            }
        }
        Ok(())
    }

    /// FLDCW's effect: bit 6 is reserved and reads as one; the exception
    /// summary follows the new masks.
    fn set_fcw(&mut self, v: u16) {
        self.fpu.fcw = (v & 0x1F7F) | 0x40;
        self.update_summary();
    }

    /// ES and B are set exactly when an exception flag is set whose mask
    /// bit is clear.
    fn update_summary(&mut self) {
        let pending = self.fpu.fsw & !self.fpu.fcw & 0x3F != 0;
        if pending {
            self.fpu.fsw |= FSW_ES | FSW_B;
        } else {
            self.fpu.fsw &= !(FSW_ES | FSW_B);
        }
    }

    /// Records exception flags. Returns whether a result may be stored: no
    /// unmasked invalid-operation, denormal or divide-by-zero exception
    /// (those leave the destination unchanged).
    fn x87_raise(&mut self, flags: u32) -> bool {
        self.fpu.fsw |= flags as u16;
        let unmasked = flags & !u32::from(self.fpu.fcw) & 0x3F;
        if unmasked != 0 {
            self.fpu.fsw |= FSW_ES | FSW_B;
        }
        unmasked & (IE | DE | ZE) == 0
    }

    /// Sets C1 (rounded up) from a comparison of a result with its
    /// truncation, or clears it.
    fn set_c1(&mut self, up: bool) {
        if up {
            self.fpu.fsw |= FSW_C1;
        } else {
            self.fpu.fsw &= !FSW_C1;
        }
    }

    /// ST(i), or `None` (with nothing yet raised) if it is empty.
    fn x87_operand(&self, i: usize) -> Option<u128> {
        if self.fpu.is_empty(i) {
            None
        } else {
            Some(self.fpu.st(i))
        }
    }

    /// Stack underflow (SDM Vol. 1 §8.5.1.1): IE and SF with C1 clear.
    /// Returns whether invalid operations are masked.
    fn x87_underflow(&mut self) -> bool {
        self.fpu.fsw &= !FSW_C1;
        self.fpu.fsw |= FSW_SF;
        self.x87_raise(IE)
    }

    /// Stack underflow where ST(i) is the destination: with IE masked it
    /// receives the indefinite.
    fn x87_underflow_into(&mut self, i: usize) -> bool {
        let masked = self.x87_underflow();
        if masked {
            self.fpu.set_st(i, F80::INDEFINITE);
        }
        masked
    }

    /// Pushes a value; stack overflow (ST(7) in use) raises IE, SF and C1
    /// and, masked, pushes the indefinite.
    fn x87_push_checked(&mut self, v: u128) {
        if !self.fpu.is_empty(7) {
            self.fpu.fsw |= FSW_SF | FSW_C1;
            if !self.x87_raise(IE) {
                return;
            }
            self.x87_push(F80::INDEFINITE);
            return;
        }
        self.fpu.fsw &= !FSW_C1;
        self.x87_push(v);
    }

    /// Decrements TOP and writes ST(0).
    fn x87_push(&mut self, v: u128) {
        let top = self.fpu.top();
        self.fpu.set_top(top + 7);
        self.fpu.set_st(0, v);
    }

    /// Tags ST(0) empty and increments TOP.
    fn x87_pop(&mut self) {
        self.fpu.free(0);
        let top = self.fpu.top();
        self.fpu.set_top(top + 1);
    }

    /// FLDPI and friends: the constant rounded by FCW.RC.
    fn x87_constant(&mut self, (trunc, nearest_up): (u128, bool), env: &Env) {
        let up = match env.round {
            Round::NearestTiesToEven | Round::NearestTiesToAway => nearest_up,
            Round::TowardPositive => true,
            _ => false,
        };
        self.x87_push_checked(trunc + u128::from(up));
    }

    /// Reads a memory operand of any x87 format as an 80-bit value, with the
    /// flags its conversion raises (IE for a signaling NaN, DE for a
    /// denormal; integers and 80-bit values convert exactly and silently).
    fn x87_read_mem(&mut self, ins: &Instruction, env: &Env) -> Ex<(u128, u32)> {
        let (seg, ea) = self.mem_operand(ins);
        let int = |v: i64| float::from_int::<F80>(v, Round::NearestTiesToEven).bits;
        Ok(match ins.memory_size() {
            MemorySize::Float32 => {
                let o = float::convert::<F32, F80>(u128::from(self.read_mem(seg, ea, 4)?), env);
                (o.bits, o.flags)
            }
            MemorySize::Float64 => {
                let o = float::convert::<F64, F80>(u128::from(self.read_mem(seg, ea, 8)?), env);
                (o.bits, o.flags)
            }
            MemorySize::Float80 => {
                let lo = self.read_mem(seg, ea, 8)?;
                let hi = self.read_mem(seg, ea.wrapping_add(8), 2)?;
                (u128::from(lo) | u128::from(hi) << 64, 0)
            }
            MemorySize::Int16 => (int(i64::from(self.read_mem(seg, ea, 2)? as i16)), 0),
            MemorySize::Int32 => (int(i64::from(self.read_mem(seg, ea, 4)? as i32)), 0),
            MemorySize::Int64 => (int(self.read_mem(seg, ea, 8)? as i64), 0),
            _ => return Err(Exception::ud().into()),
        })
    }

    /// FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR and their P and I forms.
    fn x87_arith(&mut self, ins: &Instruction, op: Arith, reverse: bool, env: &Env) -> Ex<()> {
        let pop = matches!(
            ins.mnemonic(),
            Mnemonic::Faddp
                | Mnemonic::Fsubp
                | Mnemonic::Fsubrp
                | Mnemonic::Fmulp
                | Mnemonic::Fdivp
                | Mnemonic::Fdivrp
        );
        let (dest, src, mut flags) = if ins.op0_kind() == OpKind::Memory {
            let (v, f) = self.x87_read_mem(ins, env)?;
            (0, Some(v), f)
        } else {
            let d = sti(ins.op0_register());
            let s = sti(ins.op1_register());
            (d, self.x87_operand(s), 0)
        };
        let (Some(d), Some(s)) = (self.x87_operand(dest), src) else {
            if self.x87_underflow_into(dest) && pop {
                self.x87_pop();
            }
            return Ok(());
        };
        let (a, b) = if reverse { (s, d) } else { (d, s) };
        let out = float::arith::<F80>(op, a, b, env);
        flags |= out.flags;
        let up = out.flags & PE != 0 && {
            let t = Env {
                round: Round::TowardZero,
                ..*env
            };
            float::arith::<F80>(op, a, b, &t).bits != out.bits
        };
        if self.x87_raise(flags) {
            self.set_c1(up);
            self.fpu.set_st(dest, out.bits);
            if pop {
                self.x87_pop();
            }
        }
        Ok(())
    }

    /// A one-operand operation on ST(0) (FSQRT, FRNDINT).
    fn x87_unary(&mut self, f: impl Fn(u128, &Env) -> float::Out, env: &Env) {
        let Some(a) = self.x87_operand(0) else {
            self.x87_underflow_into(0);
            return;
        };
        let out = f(a, env);
        let up = out.flags & PE != 0 && {
            let t = Env {
                round: Round::TowardZero,
                ..*env
            };
            f(a, &t).bits != out.bits
        };
        if self.x87_raise(out.flags) {
            self.set_c1(up);
            self.fpu.set_st(0, out.bits);
        }
    }

    /// FLD (m32/m64/m80, ST(i)) and FILD.
    fn x87_load(&mut self, ins: &Instruction, env: &Env) -> Ex<()> {
        let (v, flags) = if ins.op0_kind() == OpKind::Memory {
            self.x87_read_mem(ins, env)?
        } else {
            match self.x87_operand(sti(ins.op0_register())) {
                Some(v) => (v, 0),
                None => {
                    // The empty register is read before the push.
                    if self.x87_underflow() {
                        self.x87_push_checked(F80::INDEFINITE);
                    }
                    return Ok(());
                }
            }
        };
        if !self.fpu.is_empty(7) {
            self.x87_push_checked(v);
            return Ok(());
        }
        if self.x87_raise(flags) {
            self.fpu.fsw &= !FSW_C1;
            self.x87_push(v);
        }
        Ok(())
    }

    /// FST/FSTP to memory (m32, m64, m80) or to ST(i).
    fn x87_store(&mut self, ins: &Instruction, env: &Env) -> Ex<()> {
        let pop = ins.mnemonic() == Mnemonic::Fstp;
        if ins.op0_kind() == OpKind::Register {
            let i = sti(ins.op0_register());
            match self.x87_operand(0) {
                Some(v) => {
                    self.fpu.fsw &= !FSW_C1;
                    self.fpu.set_st(i, v);
                }
                None => {
                    if !self.x87_underflow_into(i) {
                        return Ok(());
                    }
                }
            }
            if pop {
                self.x87_pop();
            }
            return Ok(());
        }
        let (seg, ea) = self.mem_operand(ins);
        let size = ins.memory_size();
        let Some(v) = self.x87_operand(0) else {
            if self.x87_underflow() {
                let ind = match size {
                    MemorySize::Float32 => F32::INDEFINITE,
                    MemorySize::Float64 => F64::INDEFINITE,
                    _ => F80::INDEFINITE,
                };
                self.x87_write_mem(seg, ea, size, ind)?;
                if pop {
                    self.x87_pop();
                }
            }
            return Ok(());
        };
        let t = Env {
            round: Round::TowardZero,
            ..*env
        };
        let (out, trunc) = match size {
            MemorySize::Float32 => (
                float::convert::<F80, F32>(v, env),
                float::convert::<F80, F32>(v, &t).bits,
            ),
            MemorySize::Float64 => (
                float::convert::<F80, F64>(v, env),
                float::convert::<F80, F64>(v, &t).bits,
            ),
            _ => (
                float::Out {
                    bits: v,
                    flags: 0,
                    tiny: false,
                },
                v,
            ),
        };
        // An unmasked overflow or underflow also keeps memory unchanged
        // when the destination is memory (SDM Vol. 1 §8.5.4, §8.5.5).
        let unmasked = out.flags & !u32::from(self.fpu.fcw) & (OE | UE);
        // Write first: a page fault must leave the FPU state unchanged.
        if out.flags & !u32::from(self.fpu.fcw) & (IE | DE | ZE) == 0 && unmasked == 0 {
            self.x87_write_mem(seg, ea, size, out.bits)?;
        }
        if self.x87_raise(out.flags) && unmasked == 0 {
            self.set_c1(out.bits != trunc);
            if pop {
                self.x87_pop();
            }
        }
        Ok(())
    }

    /// Stores an encoding of a memory format.
    fn x87_write_mem(
        &mut self,
        seg: crate::state::Seg,
        ea: u64,
        size: MemorySize,
        bits: u128,
    ) -> Ex<()> {
        match size {
            MemorySize::Float80 => self.write_bytes(seg, ea, &bits.to_le_bytes()[..10]),
            _ => self.write_mem(seg, ea, size.size(), bits as u64),
        }
    }

    /// FIST/FISTP (rounding by FCW.RC) and FISTTP (truncating).
    fn x87_store_int(&mut self, ins: &Instruction, env: &Env) -> Ex<()> {
        let pop = ins.mnemonic() != Mnemonic::Fist;
        let (seg, ea) = self.mem_operand(ins);
        let width = ins.memory_size().size() * 8;
        let round = if ins.mnemonic() == Mnemonic::Fisttp {
            Round::TowardZero
        } else {
            env.round
        };
        let Some(v) = self.x87_operand(0) else {
            if self.x87_underflow() {
                self.write_mem(seg, ea, width / 8, 1 << (width - 1))?;
                if pop {
                    self.x87_pop();
                }
            }
            return Ok(());
        };
        let (r, flags) = float::to_int::<F80>(v, width, round, false);
        let (t, _) = float::to_int::<F80>(v, width, Round::TowardZero, false);
        if flags & IE == 0 || self.fpu.fcw & IE as u16 != 0 {
            self.write_mem(seg, ea, width / 8, r as u64)?;
        }
        if self.x87_raise(flags) {
            self.set_c1(flags & IE == 0 && r != t);
            if pop {
                self.x87_pop();
            }
        }
        Ok(())
    }

    /// FCOM, FUCOM, FICOM, FTST and FCOMI families.
    fn x87_compare(&mut self, ins: &Instruction, form: CompareForm) -> Ex<()> {
        let env = Env::x87(0);
        let (src, mut flags) = match ins.op_count() {
            0 if ins.mnemonic() == Mnemonic::Ftst => (Some(0), 0),
            0 => (self.x87_operand(1), 0),
            _ if ins.op0_kind() == OpKind::Memory => {
                let (v, f) = self.x87_read_mem(ins, &env)?;
                (Some(v), f)
            }
            _ => {
                let r = if ins.op_count() == 2 {
                    ins.op1_register()
                } else {
                    ins.op0_register()
                };
                (self.x87_operand(sti(r)), 0)
            }
        };
        let result = match (self.x87_operand(0), src) {
            (Some(a), Some(b)) => {
                let (ord, f) = float::compare::<F80>(a, b, form.signaling, false);
                flags |= f;
                Some(ord)
            }
            _ => {
                self.fpu.fsw |= FSW_SF;
                flags |= IE;
                None
            }
        };
        self.fpu.fsw &= !FSW_C1;
        if !self.x87_raise(flags) {
            return Ok(());
        }
        let ord = result.flatten();
        if form.eflags {
            let f = match ord {
                Some(Ordering::Greater) => 0,
                Some(Ordering::Less) => CF,
                Some(Ordering::Equal) => ZF,
                None => ZF | PF | CF,
            };
            self.set_status(f);
        } else {
            let c = match ord {
                Some(Ordering::Greater) => 0,
                Some(Ordering::Less) => FSW_C0,
                Some(Ordering::Equal) => FSW_C3,
                None => FSW_C3 | FSW_C2 | FSW_C0,
            };
            self.fpu.fsw = (self.fpu.fsw & !(FSW_C3 | FSW_C2 | FSW_C0)) | c;
        }
        for _ in 0..form.pops {
            self.x87_pop();
        }
        Ok(())
    }

    /// FXCH: exchanges ST(0) and ST(i); an empty one reads as the indefinite
    /// when IE is masked.
    fn fxch(&mut self, ins: &Instruction) {
        let i = if ins.op_count() == 2 {
            sti(ins.op1_register())
        } else {
            1
        };
        let (a, b) = (self.x87_operand(0), self.x87_operand(i));
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                if !self.x87_underflow() {
                    return;
                }
                (a.unwrap_or(F80::INDEFINITE), b.unwrap_or(F80::INDEFINITE))
            }
        };
        self.fpu.set_st(0, b);
        self.fpu.set_st(i, a);
        self.fpu.fsw &= !FSW_C1;
    }

    /// FCMOVcc ST(0), ST(i) on the status flags.
    fn fcmov(&mut self, ins: &Instruction) {
        use Mnemonic as M;
        let f = self.status_flags();
        let set = |b: u64| f & b != 0;
        let cond = match ins.mnemonic() {
            M::Fcmovb => set(CF),
            M::Fcmove => set(ZF),
            M::Fcmovbe => set(CF) || set(ZF),
            M::Fcmovu => set(PF),
            M::Fcmovnb => !set(CF),
            M::Fcmovne => !set(ZF),
            M::Fcmovnbe => !set(CF) && !set(ZF),
            _ => !set(PF),
        };
        let i = sti(ins.op1_register());
        match (self.x87_operand(0), self.x87_operand(i)) {
            (Some(_), Some(v)) => {
                self.fpu.fsw &= !FSW_C1;
                if cond {
                    self.fpu.set_st(0, v);
                }
            }
            _ => {
                self.x87_underflow_into(0);
            }
        }
    }

    /// FXAM: classifies ST(0) in C3, C2, C0 and puts its sign in C1.
    fn fxam(&mut self) {
        let v = self.fpu.st(0);
        let sign = v >> 79 != 0;
        let exp = (v >> 64) & 0x7FFF;
        let sig = v as u64;
        let (c3, c2, c0) = if self.fpu.is_empty(0) {
            (true, false, true)
        } else if exp == 0x7FFF {
            if sig == 1 << 63 {
                (false, true, true) // infinity
            } else if sig >> 63 == 1 {
                (false, false, true) // NaN
            } else {
                (false, false, false) // unsupported
            }
        } else if exp == 0 {
            if sig == 0 {
                (true, false, false)
            } else {
                (true, true, false) // denormal
            }
        } else if sig >> 63 == 1 {
            (false, true, false) // normal
        } else {
            (false, false, false) // unnormal: unsupported
        };
        let mut fsw = self.fpu.fsw & !(FSW_C3 | FSW_C2 | FSW_C1 | FSW_C0);
        for (on, bit) in [(c3, FSW_C3), (c2, FSW_C2), (sign, FSW_C1), (c0, FSW_C0)] {
            if on {
                fsw |= bit;
            }
        }
        self.fpu.fsw = fsw;
    }

    /// FSCALE: ST(0) × 2^trunc(ST(1)).
    fn fscale(&mut self, env: &Env) {
        let (Some(a), Some(b)) = (self.x87_operand(0), self.x87_operand(1)) else {
            self.x87_underflow_into(0);
            return;
        };
        let out = scale(a, b, env);
        let up = out.flags & PE != 0 && {
            let t = Env {
                round: Round::TowardZero,
                ..*env
            };
            scale(a, b, &t).bits != out.bits
        };
        if self.x87_raise(out.flags) {
            self.set_c1(up);
            self.fpu.set_st(0, out.bits);
        }
    }

    /// FXTRACT: ST(0) becomes the exponent and the significand is pushed.
    fn fxtract(&mut self) {
        let Some(a) = self.x87_operand(0) else {
            if self.x87_underflow_into(0) {
                self.x87_push_checked(F80::INDEFINITE);
            }
            return;
        };
        if !self.fpu.is_empty(7) {
            self.x87_push_checked(a);
            return;
        }
        let (exp, sig, flags) = extract(a);
        if self.x87_raise(flags) {
            self.fpu.fsw &= !FSW_C1;
            self.fpu.set_st(0, exp);
            self.x87_push(sig);
        }
    }

    /// FPREM (truncating quotient) and FPREM1 (IEEE remainder, quotient
    /// rounded to nearest even). The three low quotient bits go to C0, C3
    /// and C1; C2 is set when the reduction is incomplete (exponent
    /// difference of 64 or more, reduced by 32 to 63 per step as the SDM
    /// allows).
    fn fprem(&mut self, ieee: bool) {
        let (Some(a), Some(b)) = (self.x87_operand(0), self.x87_operand(1)) else {
            self.x87_underflow_into(0);
            return;
        };
        let r = remainder(a, b, ieee);
        if !self.x87_raise(r.flags) {
            return;
        }
        let mut fsw = self.fpu.fsw & !(FSW_C3 | FSW_C2 | FSW_C1 | FSW_C0);
        if r.partial {
            fsw |= FSW_C2;
        } else {
            let q = r.quotient;
            for (bit, c) in [(0, FSW_C1), (1, FSW_C3), (2, FSW_C0)] {
                if q >> bit & 1 != 0 {
                    fsw |= c;
                }
            }
        }
        self.fpu.fsw = fsw;
        self.fpu.set_st(0, r.bits);
    }

    /// FNSTENV and FNSAVE (protected-mode layouts, 14/28-byte environment;
    /// FSAVE adds ST(0)–ST(7) and then initialises the FPU). FCS and FDS
    /// are stored as zero (deprecated, CPUID.(EAX=7):EBX[13]); FNSTENV
    /// leaves all exceptions masked.
    fn fstenv(&mut self, ins: &Instruction) -> Ex<()> {
        let (seg, ea) = self.mem_operand(ins);
        let wide = matches!(
            ins.memory_size(),
            MemorySize::FpuEnv28 | MemorySize::FpuState108
        );
        let save = ins.mnemonic() == Mnemonic::Fnsave;
        let f = &self.fpu;
        let mut image = Vec::with_capacity(108);
        if wide {
            // Reserved upper halves read as ones; FCS and FDS as zero.
            for w in [
                0xFFFF_0000 | u32::from(f.fcw),
                0xFFFF_0000 | u32::from(f.fsw),
                0xFFFF_0000 | u32::from(f.full_tag_word()),
                f.fip as u32,
                u32::from(f.fop & 0x7FF) << 16,
                f.fdp as u32,
                0xFFFF_0000,
            ] {
                image.extend_from_slice(&w.to_le_bytes());
            }
        } else {
            for w in [
                f.fcw,
                f.fsw,
                f.full_tag_word(),
                f.fip as u16,
                0,
                f.fdp as u16,
                0,
            ] {
                image.extend_from_slice(&w.to_le_bytes());
            }
        }
        if save {
            for i in 0..8 {
                image.extend_from_slice(&self.fpu.st(i).to_le_bytes()[..10]);
            }
        }
        self.write_bytes(seg, ea, &image)?;
        if save {
            self.fpu.finit();
        } else {
            self.fpu.fcw |= 0x3F;
            self.update_summary();
        }
        Ok(())
    }

    /// FLDENV and FRSTOR (the layouts of [`SoftCpu::fstenv`]).
    fn fldenv(&mut self, ins: &Instruction) -> Ex<()> {
        let (seg, ea) = self.mem_operand(ins);
        let wide = matches!(
            ins.memory_size(),
            MemorySize::FpuEnv28 | MemorySize::FpuState108
        );
        let restore = ins.mnemonic() == Mnemonic::Frstor;
        let env_len = if wide { 28 } else { 14 };
        let mut image = vec![0u8; env_len + if restore { 80 } else { 0 }];
        self.read_bytes(seg, ea, &mut image)?;
        let word = |i: usize| -> u32 {
            if wide {
                u32::from_le_bytes(image[4 * i..4 * i + 4].try_into().unwrap_or_default())
            } else {
                u32::from(u16::from_le_bytes(
                    image[2 * i..2 * i + 2].try_into().unwrap_or_default(),
                ))
            }
        };
        let (fcw, fsw, ftw, fip, fop, fdp) = (word(0), word(1), word(2), word(3), word(4), word(5));
        self.fpu.fsw = fsw as u16;
        self.fpu.set_full_tag_word(ftw as u16);
        self.fpu.fip = u64::from(fip);
        self.fpu.fop = if wide { (fop >> 16) as u16 & 0x7FF } else { 0 };
        self.fpu.fdp = u64::from(fdp);
        if restore {
            for i in 0..8 {
                let mut b = [0u8; 16];
                b[..10].copy_from_slice(&image[env_len + 10 * i..env_len + 10 * i + 10]);
                let p = self.fpu.phys(i);
                self.fpu.regs[p] = u128::from_le_bytes(b);
            }
        }
        self.set_fcw(fcw as u16);
        Ok(())
    }
}

/// The stack index of an ST(i) register operand.
fn sti(r: Register) -> usize {
    (r as usize).wrapping_sub(Register::ST0 as usize) & 7
}

/// FSCALE's value: a × 2^trunc(b), with the special cases of SDM Vol. 2A
/// FSCALE Table 3-?? (NaNs propagate; ∞ scale factors; 0 × 2^+∞ and
/// ∞ × 2^−∞ are invalid).
fn scale(a: u128, b: u128, env: &Env) -> float::Out {
    let out = |bits, flags| float::Out {
        bits,
        flags,
        tiny: false,
    };
    if F80::unsupported(a) || F80::unsupported(b) {
        return float::invalid::<F80>();
    }
    if F80::nan_bits(a) || F80::nan_bits(b) {
        // Any arithmetic with a NaN gives the x87 NaN result.
        return float::arith::<F80>(Arith::Add, a, b, env);
    }
    let mut flags = 0;
    if F80::denormal_bits(a) || F80::denormal_bits(b) {
        flags |= DE;
    }
    let x = F80::from_bits(a);
    let y = F80::from_bits(b);
    if y.is_infinite() {
        let grow = !y.is_negative();
        return match (x.is_zero(), x.is_infinite(), grow) {
            (true, _, true) | (_, true, false) => float::invalid::<F80>(),
            (true, _, false) | (_, true, true) => out(a, flags),
            (false, false, true) => out((a & (1 << 79)) | F80::INFINITY.to_bits(), flags),
            (false, false, false) => out(a & (1 << 79), flags),
        };
    }
    if x.is_zero() || x.is_infinite() {
        return out(a, flags);
    }
    let n = y
        .round_to_integral(Round::TowardZero)
        .value
        .to_i128(32)
        .value
        .clamp(-70_000, 70_000) as i32;
    let r = x.scalbn_r(n, env.round);
    if x.ilogb() + n > F80::MAX_EXP {
        return out(r.to_bits(), flags | OE | PE);
    }
    if r.is_zero() || r.is_denormal() {
        let back = r.scalbn_r(-n, Round::NearestTiesToEven);
        if !back.bitwise_eq(x) {
            flags |= UE | PE;
        }
    }
    out(r.to_bits(), flags)
}

/// FXTRACT's exponent and significand (SDM Vol. 2A FXTRACT): ±0 gives −∞
/// and ±0 with ZE; ±∞ gives +∞ and ±∞; a NaN both.
fn extract(a: u128) -> (u128, u128, u32) {
    if F80::unsupported(a) {
        return (F80::INDEFINITE, F80::INDEFINITE, IE);
    }
    if F80::nan_bits(a) {
        let q = float::quiet::<F80>(a);
        let flags = if F80::snan_bits(a) { IE } else { 0 };
        return (q, q, flags);
    }
    let x = F80::from_bits(a);
    if x.is_zero() {
        return ((-F80::INFINITY).to_bits(), a, ZE);
    }
    if x.is_infinite() {
        return (F80::INFINITY.to_bits(), a, 0);
    }
    let flags = if x.is_denormal() { DE } else { 0 };
    let e = x.ilogb();
    let sig = x.scalbn(-e);
    let exp = float::from_int::<F80>(i64::from(e), Round::NearestTiesToEven).bits;
    (exp, sig.to_bits(), flags)
}

/// A partial remainder.
struct Remainder {
    bits: u128,
    flags: u32,
    quotient: u64,
    partial: bool,
}

/// Unbiased exponent and significand (top bit set) of a finite non-zero
/// value, so that value = sig × 2^(exp − 63).
fn unpack(v: u128) -> (i64, u64) {
    let e = ((v >> 64) & 0x7FFF) as i64;
    let sig = v as u64;
    let e = if e == 0 { 1 } else { e } - 16383;
    let z = sig.leading_zeros();
    (e - i64::from(z), sig << z)
}

/// The value sign × r × 2^scale, exact (r < 2^64).
fn pack(sign: bool, r: u128, scale: i64) -> u128 {
    let s = if sign { 1u128 << 79 } else { 0 };
    if r == 0 {
        return s;
    }
    let v = F80::from_u128(r).value.scalbn_r(
        scale.clamp(-70_000, 70_000) as i32,
        Round::NearestTiesToEven,
    );
    v.to_bits() | s
}

/// FPREM/FPREM1 on two 80-bit values.
fn remainder(a: u128, b: u128, ieee: bool) -> Remainder {
    let done = |bits, flags| Remainder {
        bits,
        flags,
        quotient: 0,
        partial: false,
    };
    if F80::unsupported(a) || F80::unsupported(b) {
        return done(F80::INDEFINITE, IE);
    }
    if F80::nan_bits(a) || F80::nan_bits(b) {
        let o = float::arith::<F80>(Arith::Add, a, b, &Env::x87(0));
        return done(o.bits, o.flags);
    }
    let (x, y) = (F80::from_bits(a), F80::from_bits(b));
    let mut flags = 0;
    if x.is_denormal() || y.is_denormal() {
        flags |= DE;
    }
    if x.is_infinite() || y.is_zero() {
        return done(F80::INDEFINITE, flags | IE);
    }
    if x.is_zero() || y.is_infinite() {
        return done(a, flags);
    }
    let sign = x.is_negative();
    let (ea, ma) = unpack(a);
    let (eb, mb) = unpack(b);
    let d = ea - eb;
    let mb = u128::from(mb);
    if d < 0 {
        // |a| < |b|: quotient 0, except that FPREM1 rounds a quotient in
        // (1/2, 1) up to 1.
        if ieee && d == -1 && u128::from(ma) > mb {
            let r = 2 * mb - u128::from(ma);
            return Remainder {
                bits: pack(!sign, r, eb - 64),
                flags,
                quotient: 1,
                partial: false,
            };
        }
        return done(a, flags);
    }
    let (steps, partial) = if d >= 64 {
        (32 + d % 32, true)
    } else {
        (d, false)
    };
    let mut r = u128::from(ma);
    let mut q: u64 = 0;
    for i in 0..=steps {
        q <<= 1;
        if r >= mb {
            r -= mb;
            q |= 1;
        }
        if i < steps {
            r <<= 1;
        }
    }
    let mut sign = sign;
    if ieee && !partial && (2 * r > mb || (2 * r == mb && q & 1 == 1)) {
        r = mb - r;
        q = q.wrapping_add(1);
        sign = !sign;
    }
    // r is in units of b's last significand bit, shifted by the steps not taken.
    let scale = eb - 63 + (d - steps);
    let bits = if r == 0 {
        a & (1 << 79)
    } else {
        pack(sign, r, scale)
    };
    Remainder {
        bits,
        flags,
        quotient: q,
        partial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f80(v: f64) -> u128 {
        float::convert::<F64, F80>(v.to_bits() as u128, &Env::x87(0)).bits
    }

    #[test]
    fn remainders_match_fmod_and_remainder() {
        for (a, b) in [
            (7.5, 2.0),
            (-7.5, 2.0),
            (5.0, 3.0),
            (1e10, 3.3),
            (0.3, 0.5),
            (6.0, 4.0),
        ] {
            let r = remainder(f80(a), f80(b), false);
            assert_eq!(r.bits, f80(a % b), "fprem {a} {b}");
            assert!(!r.partial);
            let q = (a / b).trunc().abs() as u64;
            assert_eq!(r.quotient & 7, q & 7, "quotient bits of {a}/{b}");
        }
        // IEEE remainder: 7.5 rem 2 = −0.5 (quotient 4), 5 rem 3 = −1, 6 rem 4 = −2 (q 2, even).
        assert_eq!(remainder(f80(7.5), f80(2.0), true).bits, f80(-0.5));
        assert_eq!(remainder(f80(5.0), f80(3.0), true).bits, f80(-1.0));
        assert_eq!(remainder(f80(6.0), f80(4.0), true).bits, f80(-2.0));
        assert_eq!(remainder(f80(0.3), f80(0.5), true).bits, f80(0.3 - 0.5));
        assert!(remainder(f80(1e30), f80(3.0), false).partial);
    }

    #[test]
    fn scale_and_extract() {
        let r = scale(f80(3.0), f80(4.7), &Env::x87(0));
        assert_eq!((r.bits, r.flags), (f80(48.0), 0));
        let r = scale(f80(1.0), f80(-20000.0), &Env::x87(0));
        assert_eq!(r.bits, 0);
        assert_eq!(r.flags, UE | PE);
        let (e, s, f) = extract(f80(-48.0));
        assert_eq!((e, s, f), (f80(5.0), f80(-1.5), 0));
        assert_eq!(extract(0).2, ZE);
    }

    #[test]
    fn constants_round_by_rc() {
        // π rounded to nearest is …C235, truncated …C234.
        assert_eq!(PI.0 + u128::from(PI.1), 0x4000_C90F_DAA2_2168_C235);
        // The others agree with the double-precision values to 53 bits.
        for (c, k) in [
            (std::f64::consts::LN_2, LN2),
            (std::f64::consts::LOG2_E, L2E),
            (std::f64::consts::LOG10_2, LG2),
            (std::f64::consts::LOG2_10, L2T),
        ] {
            let d = (f80(c) as i128 - k.0 as i128).abs();
            assert!(d <= 1 << 11, "{c}");
        }
    }
}
