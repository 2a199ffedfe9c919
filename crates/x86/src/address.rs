//! Linear addresses (SDM Vol. 1 §3.3.7.1, Vol. 3A §4.1.1).

/// Width of a linear address under 4-level paging.
pub const LINEAR_ADDRESS_BITS: u32 = 48;

/// Whether `addr` is canonical for 48-bit linear addresses: bits 63:47 are
/// all copies of bit 47.
pub const fn is_canonical(addr: u64) -> bool {
    let shift = 64 - LINEAR_ADDRESS_BITS;
    (((addr << shift) as i64) >> shift) as u64 == addr
}

#[cfg(test)]
mod tests {
    use super::is_canonical;

    #[test]
    fn the_two_halves_are_canonical_and_the_hole_is_not() {
        for a in [0, 0x7FFF_FFFF_FFFF, 0xFFFF_8000_0000_0000, u64::MAX] {
            assert!(is_canonical(a), "{a:#x}");
        }
        for a in [0x8000_0000_0000, 0xFFFF_7FFF_FFFF_FFFF, 1 << 63, 1 << 48] {
            assert!(!is_canonical(a), "{a:#x}");
        }
    }
}
