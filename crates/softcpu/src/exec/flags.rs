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

/// ZF, SF and PF of a result.
#[inline]
pub(crate) fn szp(size: usize, r: u64) -> u64 {
    let r = r & mask(size);
    let mut f = 0;
    if r == 0 {
        f |= ZF;
    }
    if r & sign_bit(size) != 0 {
        f |= SF;
    }
    if (r as u8).count_ones().is_multiple_of(2) {
        f |= PF;
    }
    f
}

/// a + b + carry: result and flags.
#[inline]
pub(crate) fn add(size: usize, a: u64, b: u64, carry: bool) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let full = (a as u128) + (b as u128) + carry as u128;
    let r = (full as u64) & m;
    let mut f = szp(size, r);
    if full > m as u128 {
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
    let mut f = szp(size, r);
    if (a as u128) < (b as u128) + borrow as u128 {
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

    #[test]
    fn sign_extension() {
        assert_eq!(sext(1, 0x80), 0xFFFF_FFFF_FFFF_FF80);
        assert_eq!(sext(4, 0x7FFF_FFFF), 0x7FFF_FFFF);
    }
}
