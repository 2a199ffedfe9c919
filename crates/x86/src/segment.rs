//! Segment descriptors and access rights (SDM Vol. 3A §3.4.5, and the VMCS
//! access-rights format of Vol. 3C §25.4.1).

/// Access rights: segment type field (4 bits).
pub const AR_TYPE_MASK: u32 = 0xF;
/// Access rights: S, descriptor type (1 = code or data).
pub const AR_S: u32 = 1 << 4;
/// Access rights: DPL shift.
pub const AR_DPL_SHIFT: u32 = 5;
/// Access rights: DPL (two bits).
pub const AR_DPL: u32 = 3 << AR_DPL_SHIFT;
/// Access rights: P, present.
pub const AR_P: u32 = 1 << 7;
/// Access rights: AVL.
pub const AR_AVL: u32 = 1 << 12;
/// Access rights: L, 64-bit code segment.
pub const AR_L: u32 = 1 << 13;
/// Access rights: D/B, default operation size.
pub const AR_DB: u32 = 1 << 14;
/// Access rights: G, granularity.
pub const AR_G: u32 = 1 << 15;
/// VMCS access rights: segment unusable.
pub const AR_UNUSABLE: u32 = 1 << 16;

/// Type bit in code/data descriptors: accessed.
pub const TYPE_ACCESSED: u32 = 1;
/// Type bit: writable (data) or readable (code).
pub const TYPE_RW: u32 = 2;
/// Type bit: expand-down (data) or conforming (code).
pub const TYPE_EC: u32 = 4;
/// Type bit: code segment.
pub const TYPE_CODE: u32 = 8;
/// System type: 32/64-bit available TSS.
pub const SYS_TSS_AVAIL: u32 = 9;
/// System type: 32/64-bit busy TSS.
pub const SYS_TSS_BUSY: u32 = 11;
/// System type: LDT.
pub const SYS_LDT: u32 = 2;
/// System type: 32/64-bit interrupt gate.
pub const SYS_INT_GATE: u32 = 14;
/// System type: 32/64-bit trap gate.
pub const SYS_TRAP_GATE: u32 = 15;
/// System type: 32/64-bit call gate.
pub const SYS_CALL_GATE: u32 = 12;

/// Access rights of a present execute/read code segment, accessed (type
/// 11), DPL 0, without L, D/B or G: the real-mode CS after reset is this.
pub const AR_CODE: u32 = AR_P | AR_S | TYPE_CODE | TYPE_RW | TYPE_ACCESSED;
/// Access rights of a present read/write data segment, accessed (type 3),
/// DPL 0, without D/B or G: a real-mode data segment.
pub const AR_DATA: u32 = AR_P | AR_S | TYPE_RW | TYPE_ACCESSED;
/// A flat 32-bit code segment: [`AR_CODE`] with D/B and G (0xC09B).
pub const AR_CODE32: u32 = AR_CODE | AR_DB | AR_G;
/// A flat 64-bit code segment: [`AR_CODE`] with L and G (0xA09B).
pub const AR_CODE64: u32 = AR_CODE | AR_L | AR_G;
/// A flat 32-bit data (or stack) segment: [`AR_DATA`] with D/B and G (0xC093).
pub const AR_DATA32: u32 = AR_DATA | AR_DB | AR_G;
/// A present busy 32/64-bit TSS, DPL 0 (0x8B).
pub const AR_TSS_BUSY: u32 = AR_P | SYS_TSS_BUSY;

/// The DPL field of access rights for privilege level `dpl` (0–3).
pub const fn ar_dpl(dpl: u8) -> u32 {
    ((dpl as u32) << AR_DPL_SHIFT) & AR_DPL
}

/// The DPL in access rights `ar`.
pub const fn dpl(ar: u32) -> u8 {
    ((ar & AR_DPL) >> AR_DPL_SHIFT) as u8
}

/// Converts the two descriptor dwords' attribute bits (bits 8..24 of the high
/// dword) into the VMCS access-rights layout.
pub const fn ar_from_descriptor_high(high: u32) -> u32 {
    (high >> 8) & 0xF0FF
}

/// Base address encoded in a legacy 8-byte descriptor.
pub const fn descriptor_base(raw: u64) -> u64 {
    ((raw >> 16) & 0xFF_FFFF) | (((raw >> 56) & 0xFF) << 24)
}

/// Byte-granular limit encoded in a legacy descriptor (G applied).
pub const fn descriptor_limit(raw: u64) -> u32 {
    let limit = ((raw & 0xFFFF) | (((raw >> 48) & 0xF) << 16)) as u32;
    if raw & (1 << 55) != 0 {
        (limit << 12) | 0xFFF
    } else {
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_access_rights_are_the_sdm_bytes() {
        assert_eq!(AR_CODE, 0x9B);
        assert_eq!(AR_DATA, 0x93);
        assert_eq!(AR_CODE32, 0xC09B);
        assert_eq!(AR_CODE64, 0xA09B);
        assert_eq!(AR_DATA32, 0xC093);
        assert_eq!(AR_TSS_BUSY, 0x8B);
        assert_eq!(AR_CODE64 | ar_dpl(3), 0xA0FB);
        assert_eq!(AR_DATA32 | ar_dpl(3), 0xC0F3);
        assert_eq!(dpl(0xC0F3), 3);
        assert_eq!(dpl(AR_CODE64), 0);
    }
}
