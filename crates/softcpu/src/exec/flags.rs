//! Arithmetic flag computation (SDM Vol. 1 Appendix A, EFLAGS cross-reference).

use x86::rflags::{AF, CF, OF, PF, SF, ZF};

/// Mask of the low `size` bytes.
#[inline]
pub(crate) fn mask(size: usize) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

/// Sign bit of a `size`-byte value.
#[inline]
pub(crate) fn sign_bit(size: usize) -> u64 {
    1u64 << (size * 8 - 1)
}

/// Sign-extends a `size`-byte value to 64 bits.
#[inline]
pub(crate) fn sext(size: usize, v: u64) -> u64 {
    let shift = 64 - size * 8;
    (((v << shift) as i64) >> shift) as u64
}

/// Parity of each byte value: PF set when the number of 1 bits is even.
const PARITY: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u32).count_ones().is_multiple_of(2) as u8;
        i += 1;
    }
    t
};

/// ZF, SF and PF of a result.
#[inline]
pub(crate) fn szp(size: usize, r: u64) -> u64 {
    let r = r & mask(size);
    let mut f = if PARITY[(r & 0xFF) as usize] != 0 {
        PF
    } else {
        0
    };
    if r == 0 {
        f |= ZF;
    }
    if r & sign_bit(size) != 0 {
        f |= SF;
    }
    f
}

/// a + b + carry: result and flags.
#[inline]
pub(crate) fn add(size: usize, a: u64, b: u64, carry: bool) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let (r, cf) = if size == 8 {
        let (r1, c1) = a.overflowing_add(b);
        let (r2, c2) = r1.overflowing_add(carry as u64);
        (r2, c1 | c2)
    } else {
        let full = a + b + carry as u64;
        (full & m, full > m)
    };
    let mut f = szp(size, r);
    if cf {
        f |= CF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    if (!(a ^ b) & (a ^ r)) & sign_bit(size) != 0 {
        f |= OF;
    }
    (r, f)
}

/// a - b - borrow: result and flags.
#[inline]
pub(crate) fn sub(size: usize, a: u64, b: u64, borrow: bool) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let r = a.wrapping_sub(b).wrapping_sub(borrow as u64) & m;
    let cf = a < b || (borrow && a == b);
    let mut f = szp(size, r);
    if cf {
        f |= CF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    if ((a ^ b) & (a ^ r)) & sign_bit(size) != 0 {
        f |= OF;
    }
    (r, f)
}

/// Flags of a logical operation: CF = OF = 0, AF cleared.
#[inline]
pub(crate) fn logic(size: usize, r: u64) -> u64 {
    szp(size, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_sets_carry_overflow_and_aux() {
        let (r, f) = add(1, 0x7F, 1, false);
        assert_eq!(r, 0x80);
        assert_eq!(f & (OF | SF | CF | AF | ZF), OF | SF | AF);
        let (r, f) = add(1, 0xFF, 1, false);
        assert_eq!(r, 0);
        assert_eq!(f & (CF | ZF | PF), CF | ZF | PF);
        let (r, f) = add(8, u64::MAX, 0, true);
        assert_eq!(r, 0);
        assert!(f & CF != 0);
    }

    #[test]
    fn sub_sets_borrow_and_overflow() {
        let (r, f) = sub(4, 0, 1, false);
        assert_eq!(r, 0xFFFF_FFFF);
        assert_eq!(f & (CF | SF | OF), CF | SF);
        let (r, f) = sub(2, 0x8000, 1, false);
        assert_eq!(r, 0x7FFF);
        assert!(f & OF != 0);
        let (_, f) = sub(8, 5, 4, true);
        assert!(f & ZF != 0 && f & CF == 0);
    }

    #[test]
    fn parity_counts_low_byte_only() {
        assert!(szp(2, 0x0300) & PF != 0);
        assert!(szp(1, 0x01) & PF == 0);
    }

    /// Reference carry and overflow from wide arithmetic.
    fn reference(size: usize, a: u64, b: u64, c: bool, subtract: bool) -> (u64, bool, bool) {
        let m = mask(size) as i128;
        let bits = size * 8;
        let (ua, ub) = ((a as i128) & m, (b as i128) & m);
        let sa = (ua << (128 - bits)) >> (128 - bits);
        let sb = (ub << (128 - bits)) >> (128 - bits);
        let (full, signed) = if subtract {
            (ua - ub - c as i128, sa - sb - c as i128)
        } else {
            (ua + ub + c as i128, sa + sb + c as i128)
        };
        let r = (full & m) as u64;
        let min = -(1i128 << (bits - 1));
        let max = (1i128 << (bits - 1)) - 1;
        (r, full < 0 || full > m, signed < min || signed > max)
    }

    proptest::proptest! {
        #[test]
        fn add_and_sub_match_wide_arithmetic(a: u64, b: u64, c: bool, size_ix in 0usize..4) {
            let size = [1, 2, 4, 8][size_ix];
            for subtract in [false, true] {
                let (r, f) = if subtract { sub(size, a, b, c) } else { add(size, a, b, c) };
                let (want, cf, of) = reference(size, a, b, c, subtract);
                proptest::prop_assert_eq!(r, want);
                proptest::prop_assert_eq!(f & CF != 0, cf);
                proptest::prop_assert_eq!(f & OF != 0, of);
                proptest::prop_assert_eq!(f & ZF != 0, want == 0);
            }
        }
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sext(1, 0x80), 0xFFFF_FFFF_FFFF_FF80);
        assert_eq!(sext(4, 0x7FFF_FFFF), 0x7FFF_FFFF);
    }
}
