//! Floating-point arithmetic of the x87 and SSE units on the three x86
//! formats (single, double, 80-bit extended). The IEEE 754 operations —
//! correctly rounded add, subtract, multiply, divide, conversions and
//! rounding to integral, in every rounding mode and with the exception
//! flags — come from `rustc_apfloat` (LLVM's APFloat, which has x87's
//! extended format). This module adds what x86 does beyond IEEE 754: its NaN
//! rules (propagation and the "QNaN floating-point indefinite"), denormal
//! operand flags, DAZ and FTZ, unsupported 80-bit encodings, the integer
//! indefinite, and square root (which APFloat lacks), computed exactly on
//! integers.

use crate::fpu::{DE, IE, OE, PE, UE, ZE};
use rustc_apfloat::ieee::{Double, Single, X87DoubleExtended};
use rustc_apfloat::{Float, FloatConvert, Round, Status, StatusAnd};
use std::cmp::Ordering;

/// Single precision.
pub(crate) type F32 = Single;
/// Double precision.
pub(crate) type F64 = Double;
/// x87 extended precision.
pub(crate) type F80 = X87DoubleExtended;

/// The rounding mode of a two-bit RC field (FCW[11:10], MXCSR[14:13]).
pub(crate) fn round_mode(rc: u32) -> Round {
    match rc & 3 {
        0 => Round::NearestTiesToEven,
        1 => Round::TowardNegative,
        2 => Round::TowardPositive,
        _ => Round::TowardZero,
    }
}

/// How an operation treats its inputs and its result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Env {
    /// Rounding mode.
    pub round: Round,
    /// Denormal inputs read as signed zeros, without DE (MXCSR.DAZ).
    pub daz: bool,
    /// Tiny results become signed zeros, with UE and PE (MXCSR.FZ while
    /// underflow is masked).
    pub ftz: bool,
    /// Which NaN a two-NaN operation returns.
    pub nan: NanRule,
}

impl Env {
    /// The x87 unit: no DAZ or FTZ, x87 NaN rule.
    pub(crate) fn x87(rc: u32) -> Env {
        Env {
            round: round_mode(rc),
            daz: false,
            ftz: false,
            nan: NanRule::Larger,
        }
    }
}

/// NaN propagation of a two-operand operation (SDM Vol. 1 Table 4-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NanRule {
    /// SSE: the first source operand's NaN if it is one, else the second's.
    First,
    /// x87: a QNaN over an SNaN, else the larger significand.
    Larger,
}

/// A result and the exception flags (FSW/MXCSR bit layout) it raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Out {
    /// The result's encoding.
    pub bits: u128,
    /// IE, DE, ZE, OE, UE, PE as raised with underflow masked.
    pub flags: u32,
    /// The result was tiny (UE when underflow is unmasked, even if exact).
    pub tiny: bool,
}

/// What x86 needs to know of an encoding, beyond APFloat's view of it.
pub(crate) trait Fmt: Float {
    /// Width of the encoding in bits.
    const WIDTH: u32;
    /// The quiet bit of a NaN.
    const QUIET: u128;
    /// The "QNaN floating-point indefinite": sign set, quiet bit set,
    /// payload zero.
    const INDEFINITE: u128;
    /// Position of the sign bit.
    const SIGN: u128 = 1 << (Self::WIDTH - 1);
    /// Exponent field all ones.
    fn exp_max(b: u128) -> bool;
    /// Exponent field zero.
    fn exp_zero(b: u128) -> bool;
    /// The fraction bits (without an explicit integer bit).
    fn fraction(b: u128) -> u128;
    /// An encoding the processor does not support (x87 unnormals,
    /// pseudo-NaNs, pseudo-infinities); an operand of that kind is invalid.
    fn unsupported(_b: u128) -> bool {
        false
    }
    /// Whether `b` is a NaN.
    fn nan_bits(b: u128) -> bool {
        Self::exp_max(b) && Self::fraction(b) != 0 && !Self::unsupported(b)
    }
    /// Whether `b` is a signaling NaN.
    fn snan_bits(b: u128) -> bool {
        Self::nan_bits(b) && b & Self::QUIET == 0
    }
    /// Whether `b` is a denormal (pseudo-denormals included).
    fn denormal_bits(b: u128) -> bool {
        Self::exp_zero(b) && b & (Self::SIGN - 1) != 0
    }
}

/// `Fmt` for an IEEE binary interchange format: width, fraction bits.
macro_rules! ieee_fmt {
    ($t:ty, $width:expr, $frac:expr) => {
        impl Fmt for $t {
            const WIDTH: u32 = $width;
            const QUIET: u128 = 1 << ($frac - 1);
            const INDEFINITE: u128 = (u128::MAX << ($frac - 1)) & ((1 << $width) - 1);
            fn exp_max(b: u128) -> bool {
                let m = (1 << ($width - 1 - $frac)) - 1;
                (b >> $frac) & m == m
            }
            fn exp_zero(b: u128) -> bool {
                (b >> $frac) & ((1 << ($width - 1 - $frac)) - 1) == 0
            }
            fn fraction(b: u128) -> u128 {
                b & ((1 << $frac) - 1)
            }
        }
    };
}

ieee_fmt!(F32, 32, 23);
ieee_fmt!(F64, 64, 52);

impl Fmt for F80 {
    const WIDTH: u32 = 80;
    const QUIET: u128 = 1 << 62;
    const INDEFINITE: u128 = 0xFFFF_C000_0000_0000_0000;
    fn exp_max(b: u128) -> bool {
        (b >> 64) & 0x7FFF == 0x7FFF
    }
    fn exp_zero(b: u128) -> bool {
        (b >> 64) & 0x7FFF == 0
    }
    fn fraction(b: u128) -> u128 {
        b & 0x7FFF_FFFF_FFFF_FFFF
    }
    fn unsupported(b: u128) -> bool {
        !Self::exp_zero(b) && b & (1 << 63) == 0
    }
}

/// Flags of an APFloat status.
fn flags_of(s: Status) -> u32 {
    let mut f = 0;
    if s.contains(Status::INVALID_OP) {
        f |= IE;
    }
    if s.contains(Status::DIV_BY_ZERO) {
        f |= ZE;
    }
    if s.contains(Status::OVERFLOW) {
        f |= OE;
    }
    if s.contains(Status::UNDERFLOW) {
        f |= UE;
    }
    if s.contains(Status::INEXACT) {
        f |= PE;
    }
    f
}

/// A NaN made quiet.
pub(crate) fn quiet<F: Fmt>(b: u128) -> u128 {
    b | F::QUIET
}

/// The NaN a two-operand operation returns when at least one operand is a
/// NaN, and IE if one is signaling.
fn propagate<F: Fmt>(a: u128, b: u128, rule: NanRule) -> (u128, u32) {
    let flags = if F::snan_bits(a) || F::snan_bits(b) {
        IE
    } else {
        0
    };
    let pick = match (F::nan_bits(a), F::nan_bits(b)) {
        (true, false) => a,
        (false, _) => b,
        (true, true) => match rule {
            NanRule::First => a,
            NanRule::Larger => {
                if F::snan_bits(a) != F::snan_bits(b) {
                    if F::snan_bits(a) {
                        b
                    } else {
                        a
                    }
                } else if F::fraction(b) > F::fraction(a) {
                    b
                } else {
                    a
                }
            }
        },
    };
    (quiet::<F>(pick), flags)
}

/// Reads an operand: DAZ makes a denormal a signed zero; otherwise a
/// denormal raises DE.
fn input<F: Fmt>(b: u128, env: &Env, flags: &mut u32) -> F {
    if F::denormal_bits(b) {
        if env.daz {
            return F::from_bits(b & F::SIGN);
        }
        *flags |= DE;
    }
    F::from_bits(b)
}

/// Finishes a result: FTZ, the tiny indication, an invalid operation's
/// indefinite.
fn output<F: Fmt>(r: StatusAnd<F>, env: &Env, mut flags: u32) -> Out {
    flags |= flags_of(r.status);
    let mut bits = r.value.to_bits();
    if r.value.is_nan() {
        bits = F::INDEFINITE;
    }
    let tiny = r.value.is_denormal() || r.status.contains(Status::UNDERFLOW);
    if env.ftz && tiny {
        bits &= F::SIGN;
        flags |= UE | PE;
    }
    Out { bits, flags, tiny }
}

/// A two-operand arithmetic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    /// a + b.
    Add,
    /// a − b.
    Sub,
    /// a × b.
    Mul,
    /// a ÷ b.
    Div,
}

/// `a op b`, correctly rounded, with x86's NaN and denormal rules.
pub(crate) fn arith<F: Fmt>(op: Arith, a: u128, b: u128, env: &Env) -> Out {
    if F::unsupported(a) || F::unsupported(b) {
        return invalid::<F>();
    }
    if F::nan_bits(a) || F::nan_bits(b) {
        let (bits, flags) = propagate::<F>(a, b, env.nan);
        return Out {
            bits,
            flags,
            tiny: false,
        };
    }
    let mut flags = 0;
    let x: F = input(a, env, &mut flags);
    let y: F = input(b, env, &mut flags);
    let r = match op {
        Arith::Add => x.add_r(y, env.round),
        Arith::Sub => x.sub_r(y, env.round),
        Arith::Mul => x.mul_r(y, env.round),
        Arith::Div => x.div_r(y, env.round),
    };
    output(r, env, flags)
}

/// The invalid-operation result: indefinite and IE.
pub(crate) fn invalid<F: Fmt>() -> Out {
    Out {
        bits: F::INDEFINITE,
        flags: IE,
        tiny: false,
    }
}

/// Comparison of two values: `None` when unordered. IE when an operand is
/// a signaling NaN, or any NaN if `signaling`; DE for denormals otherwise.
pub(crate) fn compare<F: Fmt>(
    a: u128,
    b: u128,
    signaling: bool,
    daz: bool,
) -> (Option<Ordering>, u32) {
    if F::unsupported(a) || F::unsupported(b) {
        return (None, IE);
    }
    if F::nan_bits(a) || F::nan_bits(b) {
        let ie = signaling || F::snan_bits(a) || F::snan_bits(b);
        return (None, if ie { IE } else { 0 });
    }
    let env = Env {
        round: Round::NearestTiesToEven,
        daz,
        ftz: false,
        nan: NanRule::First,
    };
    let mut flags = 0;
    let x: F = input(a, &env, &mut flags);
    let y: F = input(b, &env, &mut flags);
    (x.partial_cmp(&y), flags)
}

/// Converts between formats (FLD m32/m64, FST, CVTSS2SD, CVTSD2SS, …): a
/// NaN keeps its sign and the top of its payload and becomes quiet (IE if it
/// was signaling); numbers are rounded.
pub(crate) fn convert<F: Fmt + FloatConvert<T>, T: Fmt>(a: u128, env: &Env) -> Out {
    if F::unsupported(a) {
        return invalid::<T>();
    }
    if F::nan_bits(a) {
        let flags = if F::snan_bits(a) { IE } else { 0 };
        // Align the fraction's top bit (the quiet bit) with the target's.
        let frac = F::fraction(a) | F::QUIET;
        let (fq, tq) = (F::QUIET.trailing_zeros(), T::QUIET.trailing_zeros());
        let tfrac = if tq >= fq {
            frac << (tq - fq)
        } else {
            frac >> (fq - tq)
        };
        let sign = if a & F::SIGN != 0 { T::SIGN } else { 0 };
        let exp = T::INFINITY.to_bits();
        return Out {
            bits: sign | exp | tfrac,
            flags,
            tiny: false,
        };
    }
    let mut flags = 0;
    let x: F = input(a, env, &mut flags);
    let mut loses = false;
    let r = x.convert_r(env.round, &mut loses);
    output(r, env, flags)
}

/// Converts to a signed integer of `width` bits in `round` mode. NaNs,
/// infinities and values out of range give the integer indefinite (only the
/// sign bit set) and IE; an inexact conversion raises PE.
pub(crate) fn to_int<F: Fmt>(a: u128, width: usize, round: Round, daz: bool) -> (i64, u32) {
    let indefinite = (1u64 << (width - 1)) as i64;
    if F::unsupported(a) || F::nan_bits(a) {
        return (indefinite, IE);
    }
    let env = Env {
        round,
        daz,
        ftz: false,
        nan: NanRule::First,
    };
    let mut flags = 0;
    let x: F = input(a, &env, &mut flags);
    let mut exact = true;
    let r = x.to_i128_r(width, round, &mut exact);
    if r.status.contains(Status::INVALID_OP) {
        return (indefinite, flags | IE);
    }
    (r.value as i64, flags | flags_of(r.status))
}

/// Converts a signed integer, rounding if it does not fit.
pub(crate) fn from_int<F: Fmt>(v: i64, round: Round) -> Out {
    let r = F::from_i128_r(i128::from(v), round);
    Out {
        bits: r.value.to_bits(),
        flags: flags_of(r.status),
        tiny: false,
    }
}

/// The result of a one-operand operation on an unsupported encoding (the
/// indefinite, IE) or a NaN (quieted; IE if it was signaling).
fn unary_special<F: Fmt>(a: u128) -> Option<Out> {
    if F::unsupported(a) {
        return Some(invalid::<F>());
    }
    F::nan_bits(a).then(|| Out {
        bits: quiet::<F>(a),
        flags: if F::snan_bits(a) { IE } else { 0 },
        tiny: false,
    })
}

/// Rounds to an integral value in the same format (FRNDINT, x87 FIST's
/// value); PE when inexact.
pub(crate) fn round_integral<F: Fmt>(a: u128, env: &Env) -> Out {
    if let Some(o) = unary_special::<F>(a) {
        return o;
    }
    let mut flags = 0;
    let x: F = input(a, env, &mut flags);
    output(x.round_to_integral(env.round), env, flags)
}

/// Rounding of the integer square root: APFloat's modes plus round to odd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqrtRound {
    Mode(Round),
    Odd,
}

/// Square root of a positive finite non-zero 80-bit value (any supported
/// encoding, denormals included), correctly rounded to 64 significant bits.
fn sqrt80_positive(a: u128, round: SqrtRound) -> (u128, bool) {
    let mut exp = ((a >> 64) & 0x7FFF) as i64;
    let mut sig = a as u64;
    if exp == 0 {
        // Denormal (or pseudo-denormal): value = sig × 2^(1 − 16383 − 63).
        exp = 1;
    }
    let shift = sig.leading_zeros();
    sig <<= shift;
    // value = sig × 2^e with e = exp − 16383 − 63 − shift.
    let mut e = exp - 16383 - 63 - i64::from(shift);
    let mut m = u128::from(sig);
    if e & 1 != 0 {
        m <<= 1;
        e -= 1;
    }
    // Scale m by an even power so that its root has 64 bits.
    let s = if m >> 64 == 0 { 64 } else { 62 };
    let big = m << s;
    let mut q = isqrt(big);
    let rem = big - q * q;
    let mut result_e = (e - s) / 2;
    let inexact = rem != 0;
    let up = match round {
        SqrtRound::Mode(Round::NearestTiesToEven | Round::NearestTiesToAway) => rem > q,
        SqrtRound::Mode(Round::TowardPositive) => inexact,
        SqrtRound::Mode(_) => false,
        SqrtRound::Odd => {
            if inexact {
                q |= 1;
            }
            false
        }
    };
    if up {
        q += 1;
        if q >> 64 != 0 {
            q >>= 1;
            result_e += 1;
        }
    }
    // q × 2^result_e with q in [2^63, 2^64).
    let biased = result_e + 63 + 16383;
    ((biased as u128) << 64 | q, inexact)
}

/// ⌊√n⌋ for a 128-bit n.
fn isqrt(n: u128) -> u128 {
    if n == 0 {
        return 0;
    }
    let mut x = ((n as f64).sqrt() as u128).max(1);
    for _ in 0..4 {
        x = (x + n / x) >> 1;
    }
    while x.checked_mul(x).is_none_or(|sq| sq > n) {
        x -= 1;
    }
    while (x + 1).checked_mul(x + 1).is_some_and(|sq| sq <= n) {
        x += 1;
    }
    x
}

/// Square root with x86's rules: −0 stays −0, a negative number or −∞ is
/// invalid, NaNs propagate. Single and double results are computed in the
/// extended format rounded to odd (exact enough for one final rounding,
/// since 64 ≥ 53 + 2) and then rounded once in the requested mode.
pub(crate) fn sqrt<F>(a: u128, env: &Env) -> Out
where
    F: Fmt + FloatConvert<F80>,
    F80: FloatConvert<F>,
{
    if let Some(o) = unary_special::<F>(a) {
        return o;
    }
    let mut flags = 0;
    let x: F = input(a, env, &mut flags);
    if x.is_zero() || x.is_pos_infinity() {
        return Out {
            bits: x.to_bits(),
            flags,
            tiny: false,
        };
    }
    if x.is_negative() {
        return Out {
            bits: F::INDEFINITE,
            flags: flags | IE,
            tiny: false,
        };
    }
    let mut loses = false;
    let wide: F80 = x.convert(&mut loses).value;
    if F::WIDTH == 80 {
        let (bits, inexact) = sqrt80_positive(wide.to_bits(), SqrtRound::Mode(env.round));
        let pe = if inexact { PE } else { 0 };
        return Out {
            bits,
            flags: flags | pe,
            tiny: false,
        };
    }
    let (odd, _) = sqrt80_positive(wide.to_bits(), SqrtRound::Odd);
    let r: StatusAnd<F> = F80::from_bits(odd).convert_r(env.round, &mut loses);
    output(r, env, flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(rc: u32) -> Env {
        Env {
            round: round_mode(rc),
            daz: false,
            ftz: false,
            nan: NanRule::First,
        }
    }

    #[test]
    fn double_arithmetic_rounds_and_flags() {
        let one = 1.0f64.to_bits() as u128;
        let three = 3.0f64.to_bits() as u128;
        let r = arith::<F64>(Arith::Div, one, three, &env(0));
        assert_eq!(r.bits, (1.0f64 / 3.0).to_bits() as u128);
        assert_eq!(r.flags, PE);
        let down = arith::<F64>(Arith::Div, one, three, &env(1));
        assert_eq!(down.bits, r.bits, "1/3 rounds down to nearest already");
        let up = arith::<F64>(Arith::Div, one, three, &env(2));
        assert_eq!(up.bits, r.bits + 1);
        let z = arith::<F64>(Arith::Div, one, 0, &env(0));
        assert_eq!((z.bits, z.flags), (f64::INFINITY.to_bits() as u128, ZE));
        let inv = arith::<F64>(Arith::Div, 0, 0, &env(0));
        assert_eq!((inv.bits, inv.flags), (F64::INDEFINITE, IE));
    }

    #[test]
    fn indefinites() {
        assert_eq!(F32::INDEFINITE, 0xFFC0_0000);
        assert_eq!(F64::INDEFINITE, 0xFFF8_0000_0000_0000);
        assert!(F64::exp_max(f64::INFINITY.to_bits() as u128));
        assert!(F32::denormal_bits(1));
    }

    #[test]
    fn nan_rules() {
        let snan = 0x7FA0_0000u128;
        let qnan = 0x7FC0_0001u128;
        let two = 2.0f32.to_bits() as u128;
        let r = arith::<F32>(Arith::Add, snan, qnan, &env(0));
        assert_eq!((r.bits, r.flags), (0x7FE0_0000, IE));
        let r = arith::<F32>(Arith::Add, two, qnan, &env(0));
        assert_eq!((r.bits, r.flags), (qnan, 0));
        let x87 = Env::x87(0);
        let r = arith::<F32>(Arith::Add, snan, qnan, &x87);
        assert_eq!(r.bits, qnan, "x87 prefers the QNaN");
    }

    #[test]
    fn sqrt_is_correctly_rounded() {
        for (v, rc) in [
            (2.0f64, 0),
            (2.0, 1),
            (2.0, 2),
            (3.0, 3),
            (1e-310, 0),
            (0.25, 0),
        ] {
            let r = sqrt::<F64>(v.to_bits() as u128, &env(rc));
            let host = v.sqrt();
            let exact = host * host == v;
            let want = match rc {
                2 if !exact && host * host < v => host.to_bits() + 1,
                1 | 3 if !exact && host * host > v => host.to_bits() - 1,
                _ => host.to_bits(),
            };
            assert_eq!(r.bits, want as u128, "sqrt({v}) rc {rc}");
            if v > 1e-300 {
                assert_eq!(r.flags & PE != 0, !exact);
            }
        }
        // √2 in extended precision: 1.6A09E667F3BCC908B2… → 0xB504F333F9DE6484.
        let two = 0x4000_8000_0000_0000_0000u128;
        let r = sqrt::<F80>(two, &Env::x87(0));
        assert_eq!(r.bits, 0x3FFF_B504_F333_F9DE_6484);
        let neg = sqrt::<F80>(0xC000_8000_0000_0000_0000, &Env::x87(0));
        assert_eq!((neg.bits, neg.flags), (F80::INDEFINITE, IE));
    }

    #[test]
    fn integer_conversions() {
        let big = 3e10f64.to_bits() as u128;
        assert_eq!(
            to_int::<F64>(big, 32, Round::TowardZero, false),
            (i32::MIN as i64 & 0xFFFF_FFFF, IE)
        );
        let half = 2.5f64.to_bits() as u128;
        assert_eq!(
            to_int::<F64>(half, 32, Round::NearestTiesToEven, false),
            (2, PE)
        );
        assert_eq!(
            from_int::<F32>(16_777_217, Round::NearestTiesToEven).flags,
            PE
        );
    }

    #[test]
    fn conversions_keep_nan_payloads() {
        let snan64 = 0x7FF4_0000_0000_0001u128;
        let r = convert::<F64, F32>(snan64, &env(0));
        assert_eq!((r.bits, r.flags), (0x7FE0_0000, IE));
        let r = convert::<F32, F80>(0xFFC0_0000, &env(0));
        assert_eq!(r.bits, F80::INDEFINITE);
        let r = convert::<F64, F32>(1e300f64.to_bits() as u128, &env(0));
        assert_eq!((r.bits, r.flags), (0x7F80_0000, OE | PE));
    }
}
