//! SSE and SSE2 floating point (SDM Vol. 1 chapters 10 and 11): packed and
//! scalar arithmetic, comparisons, conversions and the MXCSR rules —
//! rounding control, DAZ, FTZ, the six exception flags, and #XM (or #UD
//! when CR4.OSXMMEXCPT is clear) for an unmasked exception, which leaves
//! the destination unchanged.
//!
//! RCPPS/RCPSS/RSQRTPS/RSQRTSS return the correctly rounded reciprocal
//! (square root) instead of silicon's 12-bit table approximation; both are
//! within the architectural error bound (SDM Vol. 2B RCPPS: |relative
//! error| ≤ 1.5 × 2^−12), but the bits differ from Intel parts.

use super::simd::{lane, set_lane};
use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::float::{self, Arith, Env, Fmt, NanRule, Out, F32, F64};
use crate::fpu::{IE, MXCSR_DAZ, MXCSR_FZ, UE};
use iced_x86::{Instruction, MemorySize, Mnemonic, OpKind};
use rustc_apfloat::Round;
use std::cmp::Ordering;
use x86::rflags::{CF, PF, ZF};

/// A floating-point element format of an SSE instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    Single,
    Double,
}

impl Elem {
    fn bytes(self) -> usize {
        match self {
            Elem::Single => 4,
            Elem::Double => 8,
        }
    }
}

/// The element format and whether the operation is packed, from the
/// instruction's memory-operand description (given for register forms too).
fn shape(ins: &Instruction) -> (Elem, bool) {
    match ins.memory_size() {
        MemorySize::Float32 => (Elem::Single, false),
        MemorySize::Float64 => (Elem::Double, false),
        MemorySize::Packed128_Float64 => (Elem::Double, true),
        _ => (Elem::Single, true),
    }
}

impl SoftCpu {
    /// The environment MXCSR gives an SSE operation.
    fn sse_env(&self) -> Env {
        let m = self.fpu.mxcsr;
        Env {
            round: float::round_mode(m >> 13),
            daz: m & MXCSR_DAZ != 0,
            ftz: m & MXCSR_FZ != 0 && m & (UE << 7) != 0,
            nan: NanRule::First,
        }
    }

    /// Records SIMD floating-point exception flags in MXCSR; an unmasked one
    /// is #XM, or #UD with CR4.OSXMMEXCPT clear (SDM Vol. 1 §11.5.1).
    /// `tiny` adds UE when underflow is unmasked (it is then reported for
    /// exact tiny results too).
    pub(super) fn sse_raise(&mut self, mut flags: u32, tiny: bool) -> Ex<()> {
        let masks = (self.fpu.mxcsr >> 7) & 0x3F;
        if tiny && masks & UE == 0 {
            flags |= UE;
        }
        self.fpu.mxcsr |= flags & 0x3F;
        if flags & !masks & 0x3F != 0 {
            if self.s.cr4 & x86::cr::CR4_OSXMMEXCPT != 0 {
                return Err(Exception::plain(x86::exception::XM).into());
            }
            return Err(Exception::ud().into());
        }
        Ok(())
    }

    /// Executes an SSE/SSE2 floating-point instruction; `None` if the
    /// mnemonic is not one of them.
    pub(super) fn sse_float(&mut self, ins: &Instruction) -> Option<Ex<()>> {
        use Mnemonic as M;
        let m = ins.mnemonic();
        Some(match m {
            M::Addps | M::Addss | M::Addpd | M::Addsd => {
                self.sse_arith(ins, FpOp::Arith(Arith::Add))
            }
            M::Subps | M::Subss | M::Subpd | M::Subsd => {
                self.sse_arith(ins, FpOp::Arith(Arith::Sub))
            }
            M::Mulps | M::Mulss | M::Mulpd | M::Mulsd => {
                self.sse_arith(ins, FpOp::Arith(Arith::Mul))
            }
            M::Divps | M::Divss | M::Divpd | M::Divsd => {
                self.sse_arith(ins, FpOp::Arith(Arith::Div))
            }
            M::Minps | M::Minss | M::Minpd | M::Minsd => self.sse_arith(ins, FpOp::Min),
            M::Maxps | M::Maxss | M::Maxpd | M::Maxsd => self.sse_arith(ins, FpOp::Max),
            M::Sqrtps | M::Sqrtss | M::Sqrtpd | M::Sqrtsd => self.sse_arith(ins, FpOp::Sqrt),
            M::Rcpps | M::Rcpss => self.sse_arith(ins, FpOp::Rcp),
            M::Rsqrtps | M::Rsqrtss => self.sse_arith(ins, FpOp::Rsqrt),
            M::Cmpps | M::Cmpss | M::Cmppd | M::Cmpsd => {
                self.sse_arith(ins, FpOp::Cmp(ins.immediate8() & 7))
            }
            M::Comiss | M::Ucomiss | M::Comisd | M::Ucomisd => self.sse_comi(ins),
            M::Cvtsi2ss | M::Cvtsi2sd => self.cvt_from_int(ins),
            M::Cvtss2si | M::Cvttss2si | M::Cvtsd2si | M::Cvttsd2si => self.cvt_to_gpr(ins),
            M::Cvtss2sd | M::Cvtsd2ss | M::Cvtps2pd | M::Cvtpd2ps => self.cvt_float(ins),
            M::Cvtdq2ps | M::Cvtdq2pd | M::Cvtpi2ps | M::Cvtpi2pd => self.cvt_packed_from_int(ins),
            M::Cvtps2dq
            | M::Cvttps2dq
            | M::Cvtpd2dq
            | M::Cvttpd2dq
            | M::Cvtps2pi
            | M::Cvttps2pi
            | M::Cvtpd2pi
            | M::Cvttpd2pi => self.cvt_packed_to_int(ins),
            _ => return None,
        })
    }

    /// Packed or scalar arithmetic, min/max, square root, reciprocal
    /// approximations and compares. A scalar operation keeps the upper part
    /// of the destination.
    fn sse_arith(&mut self, ins: &Instruction, op: FpOp) -> Ex<()> {
        let (elem, packed) = shape(ins);
        let dst = self.simd_read(ins, 0)?;
        let src = self.simd_read(ins, 1)?;
        let env = self.sse_env();
        let n = if packed { 16 / elem.bytes() } else { 1 };
        let mut r = dst;
        let (mut flags, mut tiny) = (0, false);
        for i in 0..n {
            let (a, b) = (lane(dst, elem.bytes(), i), lane(src, elem.bytes(), i));
            let o = match elem {
                Elem::Single => lane_op::<F32>(op, a.into(), b.into(), &env),
                Elem::Double => lane_op::<F64>(op, a.into(), b.into(), &env),
            };
            flags |= o.flags;
            tiny |= o.tiny;
            r = set_lane(r, elem.bytes(), i, o.bits as u64);
        }
        self.sse_raise(flags, tiny)?;
        self.simd_write_xmm(ins, r);
        Ok(())
    }

    /// COMISS/COMISD (IE for any NaN) and UCOMISS/UCOMISD (IE for
    /// signaling NaNs): ZF, PF, CF; OF, SF, AF cleared.
    fn sse_comi(&mut self, ins: &Instruction) -> Ex<()> {
        let (elem, _) = shape(ins);
        let a = lane(self.simd_read(ins, 0)?, elem.bytes(), 0);
        let b = lane(self.simd_read(ins, 1)?, elem.bytes(), 0);
        let signaling = matches!(ins.mnemonic(), Mnemonic::Comiss | Mnemonic::Comisd);
        let daz = self.fpu.mxcsr & MXCSR_DAZ != 0;
        let (ord, flags) = match elem {
            Elem::Single => float::compare::<F32>(a.into(), b.into(), signaling, daz),
            Elem::Double => float::compare::<F64>(a.into(), b.into(), signaling, daz),
        };
        self.sse_raise(flags, false)?;
        self.set_status(match ord {
            None => ZF | PF | CF,
            Some(Ordering::Less) => CF,
            Some(Ordering::Equal) => ZF,
            Some(Ordering::Greater) => 0,
        });
        Ok(())
    }

    /// CVTSI2SS/CVTSI2SD from a 32- or 64-bit integer.
    fn cvt_from_int(&mut self, ins: &Instruction) -> Ex<()> {
        let size = self.op_size(ins, 1);
        let v = self.read_op(ins, 1, size)?;
        let v = if size == 4 {
            i64::from(v as i32)
        } else {
            v as i64
        };
        let round = self.sse_env().round;
        let o = if ins.mnemonic() == Mnemonic::Cvtsi2ss {
            float::from_int::<F32>(v, round)
        } else {
            float::from_int::<F64>(v, round)
        };
        self.sse_raise(o.flags, false)?;
        let bytes = if ins.mnemonic() == Mnemonic::Cvtsi2ss {
            4
        } else {
            8
        };
        let r = set_lane(self.simd_read(ins, 0)?, bytes, 0, o.bits as u64);
        self.simd_write_xmm(ins, r);
        Ok(())
    }

    /// CVT(T)SS2SI and CVT(T)SD2SI into a 32- or 64-bit register.
    fn cvt_to_gpr(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        let m = ins.mnemonic();
        let width = ins.op0_register().size() * 8;
        let src = self.simd_read(ins, 1)?;
        let env = self.sse_env();
        let round = if matches!(m, M::Cvttss2si | M::Cvttsd2si) {
            Round::TowardZero
        } else {
            env.round
        };
        let (v, flags) = if matches!(m, M::Cvtss2si | M::Cvttss2si) {
            float::to_int::<F32>(src & 0xFFFF_FFFF, width, round, env.daz)
        } else {
            float::to_int::<F64>(src & u128::from(u64::MAX), width, round, env.daz)
        };
        self.sse_raise(flags, false)?;
        let mask = if width == 32 { 0xFFFF_FFFF } else { u64::MAX };
        self.set_reg(ins.op0_register(), v as u64 & mask);
        Ok(())
    }

    /// CVTSS2SD, CVTSD2SS (scalar, upper part kept), CVTPS2PD (two singles
    /// to two doubles), CVTPD2PS (two doubles to the low two singles, the
    /// upper half zeroed).
    fn cvt_float(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        let m = ins.mnemonic();
        let src = self.simd_read(ins, 1)?;
        let env = self.sse_env();
        let (from, to, n) = match m {
            M::Cvtss2sd => (Elem::Single, Elem::Double, 1),
            M::Cvtsd2ss => (Elem::Double, Elem::Single, 1),
            M::Cvtps2pd => (Elem::Single, Elem::Double, 2),
            _ => (Elem::Double, Elem::Single, 2),
        };
        let mut r = match m {
            M::Cvtss2sd | M::Cvtsd2ss => self.simd_read(ins, 0)?,
            _ => 0,
        };
        let (mut flags, mut tiny) = (0, false);
        for i in 0..n {
            let a = u128::from(lane(src, from.bytes(), i));
            let o = if from == Elem::Single {
                float::convert::<F32, F64>(a, &env)
            } else {
                float::convert::<F64, F32>(a, &env)
            };
            flags |= o.flags;
            tiny |= o.tiny;
            r = set_lane(r, to.bytes(), i, o.bits as u64);
        }
        self.sse_raise(flags, tiny)?;
        self.simd_write_xmm(ins, r);
        Ok(())
    }

    /// CVTDQ2PS, CVTDQ2PD, CVTPI2PS (low half, upper kept), CVTPI2PD.
    fn cvt_packed_from_int(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        let m = ins.mnemonic();
        let src = self.simd_read(ins, 1)?;
        let round = self.sse_env().round;
        let (to, n, mut r) = match m {
            M::Cvtdq2ps => (Elem::Single, 4, 0),
            M::Cvtpi2ps => (Elem::Single, 2, self.simd_read(ins, 0)?),
            _ => (Elem::Double, 2, 0),
        };
        let mut flags = 0;
        for i in 0..n {
            let v = i64::from(lane(src, 4, i) as i32);
            let o = if to == Elem::Single {
                float::from_int::<F32>(v, round)
            } else {
                float::from_int::<F64>(v, round)
            };
            flags |= o.flags;
            r = set_lane(r, to.bytes(), i, o.bits as u64);
        }
        self.sse_raise(flags, false)?;
        self.simd_write(ins, 0, r)
    }

    /// CVT(T)PS2DQ, CVT(T)PD2DQ (upper half zeroed), CVT(T)PS2PI and
    /// CVT(T)PD2PI (into an MMX register): the integer indefinite for NaNs
    /// and values out of range.
    fn cvt_packed_to_int(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        let m = ins.mnemonic();
        let src = self.simd_read(ins, 1)?;
        let env = self.sse_env();
        let truncate = matches!(m, M::Cvttps2dq | M::Cvttpd2dq | M::Cvttps2pi | M::Cvttpd2pi);
        let round = if truncate {
            Round::TowardZero
        } else {
            env.round
        };
        let (from, n) = match m {
            M::Cvtps2dq | M::Cvttps2dq => (Elem::Single, 4),
            M::Cvtps2pi | M::Cvttps2pi => (Elem::Single, 2),
            _ => (Elem::Double, 2),
        };
        let mut r = 0u128;
        let mut flags = 0;
        for i in 0..n {
            let a = u128::from(lane(src, from.bytes(), i));
            let (v, f) = if from == Elem::Single {
                float::to_int::<F32>(a, 32, round, env.daz)
            } else {
                float::to_int::<F64>(a, 32, round, env.daz)
            };
            flags |= f;
            r = set_lane(r, 4, i, v as u64 & 0xFFFF_FFFF);
        }
        self.sse_raise(flags, false)?;
        self.simd_write(ins, 0, r)
    }

    /// Writes the destination XMM register (operand 0).
    fn simd_write_xmm(&mut self, ins: &Instruction, v: u128) {
        if ins.op0_kind() == OpKind::Register {
            let n = super::simd::xmm_index(ins.op0_register());
            self.fpu.xmm[n] = v;
        }
    }
}

/// One lane's operation.
#[derive(Debug, Clone, Copy)]
enum FpOp {
    Arith(Arith),
    Min,
    Max,
    Sqrt,
    Rcp,
    Rsqrt,
    /// CMPPS predicate 0–7.
    Cmp(u8),
}

/// One lane of [`SoftCpu::sse_arith`].
fn lane_op<F>(op: FpOp, a: u128, b: u128, env: &Env) -> Out
where
    F: Fmt + rustc_apfloat::FloatConvert<float::F80>,
    float::F80: rustc_apfloat::FloatConvert<F>,
{
    match op {
        FpOp::Arith(o) => float::arith::<F>(o, a, b, env),
        FpOp::Sqrt => float::sqrt::<F>(b, env),
        FpOp::Rcp => {
            // Correctly rounded 1/b; no exception is reported (RCPPS
            // raises none).
            let one = F::from_u128(1).value.to_bits();
            let mut o = float::arith::<F>(Arith::Div, one, b, env);
            o.flags = 0;
            o.tiny = false;
            o
        }
        FpOp::Rsqrt => {
            let s = float::sqrt::<F>(b, env);
            let one = F::from_u128(1).value.to_bits();
            let mut o = float::arith::<F>(Arith::Div, one, s.bits, env);
            o.flags = 0;
            o.tiny = false;
            o
        }
        FpOp::Min | FpOp::Max => {
            // MIN/MAX: the second operand when either is a NaN (IE) or
            // both are zeros; DE for denormals (SDM Vol. 2B MINPS).
            let (ord, flags) = float::compare::<F>(a, b, true, env.daz);
            let pick_a = matches!(
                (op, ord),
                (FpOp::Min, Some(Ordering::Less)) | (FpOp::Max, Some(Ordering::Greater))
            );
            let both_zero = ord == Some(Ordering::Equal);
            let bits = if pick_a && !both_zero { a } else { b };
            Out {
                bits,
                flags,
                tiny: false,
            }
        }
        FpOp::Cmp(pred) => {
            // Predicates LT, LE, NLT, NLE signal on QNaNs; EQ, UNORD,
            // NEQ, ORD only on SNaNs.
            let signaling = matches!(pred, 1 | 2 | 5 | 6);
            let (ord, flags) = float::compare::<F>(a, b, signaling, env.daz);
            let t = match pred {
                0 => ord == Some(Ordering::Equal),
                1 => ord == Some(Ordering::Less),
                2 => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                3 => ord.is_none(),
                4 => ord != Some(Ordering::Equal),
                5 => ord != Some(Ordering::Less),
                6 => !matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                _ => ord.is_some(),
            };
            let ones = if F::WIDTH == 32 {
                0xFFFF_FFFF
            } else {
                u128::from(u64::MAX)
            };
            Out {
                bits: if t { ones } else { 0 },
                flags: flags & IE | flags & crate::fpu::DE,
                tiny: false,
            }
        }
    }
}
