//! The memory-type range registers (SDM Vol. 3A §12.11): IA32_MTRRCAP,
//! IA32_MTRR_DEF_TYPE, the eleven fixed-range registers and eight variable
//! ranges. The model has no caches, so a memory type changes nothing it
//! does; the registers hold what software writes, with the #GP checks of
//! §12.11.2–§12.11.3 for reserved bits and undefined memory types.

use crate::cpuid::PHYS_ADDR_BITS;
use crate::state::MtrrFile;
use x86::msr::{
    MTRRCAP, MTRR_DEF_TYPE, MTRR_FIX16K_80000, MTRR_FIX16K_A0000, MTRR_FIX4K_C0000,
    MTRR_FIX64K_00000, MTRR_PHYSBASE0,
};

/// Variable ranges (IA32_MTRRCAP.VCNT): PHYSBASE0/PHYSMASK0 … PHYSBASE7/PHYSMASK7.
pub(crate) const VARIABLE_RANGES: usize = 8;

/// IA32_MTRRCAP: VCNT = 8, fixed ranges (bit 8) and write-combining (bit
/// 10) supported; no SMRR (bit 11) and no PRMRR.
pub(crate) const MTRRCAP_VALUE: u64 = VARIABLE_RANGES as u64 | 1 << 8 | 1 << 10;

/// Bits of a physical address above MAXPHYADDR: reserved in PHYSBASE and PHYSMASK.
const ABOVE_MAXPHYADDR: u64 = !((1 << PHYS_ADDR_BITS) - 1);
/// IA32_MTRR_DEF_TYPE: type (7:0), FE (10) and E (11); the rest is reserved.
const DEF_TYPE_RESERVED: u64 = !(0xFF | 1 << 10 | 1 << 11);
/// IA32_MTRR_PHYSBASEn: bits 11:8 reserved.
const PHYSBASE_RESERVED: u64 = 0xF00 | ABOVE_MAXPHYADDR;
/// IA32_MTRR_PHYSMASKn: bits 10:0 reserved (bit 11 is V).
const PHYSMASK_RESERVED: u64 = 0x7FF | ABOVE_MAXPHYADDR;

/// One MTRR, by its place in [`MtrrFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Register {
    Cap,
    DefType,
    /// Index into `MtrrFile::fixed`: 64K_00000, 16K_80000, 16K_A0000, 4K_C0000 … 4K_F8000.
    Fixed(usize),
    /// Index into `MtrrFile::variable`: PHYSBASEn at 2n, PHYSMASKn at 2n + 1.
    Variable(usize),
}

fn register(msr: u32) -> Option<Register> {
    let variable_end = MTRR_PHYSBASE0 + 2 * VARIABLE_RANGES as u32;
    Some(match msr {
        MTRRCAP => Register::Cap,
        MTRR_DEF_TYPE => Register::DefType,
        MTRR_FIX64K_00000 => Register::Fixed(0),
        MTRR_FIX16K_80000 => Register::Fixed(1),
        MTRR_FIX16K_A0000 => Register::Fixed(2),
        MTRR_FIX4K_C0000..=0x26F => Register::Fixed(3 + (msr - MTRR_FIX4K_C0000) as usize),
        m if (MTRR_PHYSBASE0..variable_end).contains(&m) => {
            Register::Variable((m - MTRR_PHYSBASE0) as usize)
        }
        _ => return None,
    })
}

/// A memory type the MTRRs accept: UC (0), WC (1, IA32_MTRRCAP.WC), WT
/// (4), WP (5) or WB (6). 2, 3 and 7 (UC-, a PAT type only) and above are
/// reserved (SDM Vol. 3A Table 12-8).
fn valid_type(t: u64) -> bool {
    matches!(t, 0 | 1 | 4..=6)
}

impl MtrrFile {
    /// RDMSR of an MTRR; `None` when `msr` is not one.
    pub(crate) fn read(&self, msr: u32) -> Option<u64> {
        Some(match register(msr)? {
            Register::Cap => MTRRCAP_VALUE,
            Register::DefType => self.def_type,
            Register::Fixed(i) => self.fixed[i],
            Register::Variable(i) => self.variable[i],
        })
    }

    /// WRMSR of an MTRR: `None` when `msr` is not one, `Some(false)` for a
    /// write that is #GP(0) (IA32_MTRRCAP is read-only; a reserved bit or
    /// an undefined memory type), `Some(true)` when it was written.
    pub(crate) fn write(&mut self, msr: u32, v: u64) -> Option<bool> {
        let (slot, ok) = match register(msr)? {
            Register::Cap => return Some(false),
            Register::DefType => (
                &mut self.def_type,
                v & DEF_TYPE_RESERVED == 0 && valid_type(v & 0xFF),
            ),
            // Eight one-byte types, one per sub-range.
            Register::Fixed(i) => (
                &mut self.fixed[i],
                (0..8).all(|b| valid_type((v >> (8 * b)) & 0xFF)),
            ),
            Register::Variable(i) if i % 2 == 0 => (
                &mut self.variable[i],
                v & PHYSBASE_RESERVED == 0 && valid_type(v & 0xFF),
            ),
            Register::Variable(i) => (&mut self.variable[i], v & PHYSMASK_RESERVED == 0),
        };
        if ok {
            *slot = v;
        }
        Some(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_counts_eight_variable_ranges_with_fixed_ranges_and_wc() {
        let m = MtrrFile::default();
        assert_eq!(m.read(0xFE), Some(0x508));
        assert_eq!({ m }.write(0xFE, 0x508), Some(false), "read-only");
        // PHYSBASE7/PHYSMASK7 exist; PHYSBASE8 (0x210) does not.
        assert_eq!(m.read(0x20F), Some(0));
        assert_eq!(m.read(0x210), None);
        // The fixed ranges are 0x250, 0x258, 0x259 and 0x268–0x26F, no others.
        for msr in [0x250, 0x258, 0x259, 0x268, 0x26F] {
            assert_eq!(m.read(msr), Some(0), "{msr:#x}");
        }
        for msr in [0x251, 0x257, 0x25A, 0x267, 0x270] {
            assert_eq!(m.read(msr), None, "{msr:#x}");
        }
    }

    #[test]
    fn reset_state_is_disabled_with_an_uncached_default() {
        assert_eq!(MtrrFile::default().read(0x2FF), Some(0));
    }

    #[test]
    fn def_type_holds_e_fe_and_a_valid_type_only() {
        let mut m = MtrrFile::default();
        // What firmware writes: enabled, fixed ranges enabled, write-back.
        assert_eq!(m.write(0x2FF, 0xC06), Some(true));
        assert_eq!(m.read(0x2FF), Some(0xC06));
        for bad in [0xC02, 0xC03, 0xC07, 0xC08, 0x100, 0x200, 0x1000, 1 << 32] {
            assert_eq!(m.write(0x2FF, bad), Some(false), "{bad:#x}");
        }
        assert_eq!(
            m.read(0x2FF),
            Some(0xC06),
            "a refused write changes nothing"
        );
    }

    #[test]
    fn fixed_ranges_check_every_byte() {
        let mut m = MtrrFile::default();
        let wb = 0x0606_0606_0606_0606;
        assert_eq!(m.write(0x250, wb), Some(true));
        assert_eq!(m.write(0x26F, 0x0504_0100_0606_0505), Some(true));
        assert_eq!(m.read(0x26F), Some(0x0504_0100_0606_0505));
        for byte in 0..8 {
            let bad = wb & !(0xFF << (8 * byte)) | 7 << (8 * byte);
            assert_eq!(m.write(0x258, bad), Some(false), "UC- in byte {byte}");
        }
        assert_eq!(m.read(0x258), Some(0));
    }

    #[test]
    fn variable_ranges_refuse_reserved_bits_and_bits_above_maxphyaddr() {
        let mut m = MtrrFile::default();
        // 2 GiB write-back at 0: base 0 type 6, mask for 2 GiB with V set.
        let mask = ((1u64 << 46) - 1) & !((1 << 31) - 1) | 1 << 11;
        assert_eq!(m.write(0x200, 6), Some(true));
        assert_eq!(m.write(0x201, mask), Some(true));
        assert_eq!((m.read(0x200), m.read(0x201)), (Some(6), Some(mask)));
        assert_eq!(m.write(0x202, 0x8000_0000 | 0x100), Some(false), "bit 8");
        assert_eq!(m.write(0x202, 1 << 46), Some(false), "above MAXPHYADDR");
        assert_eq!(m.write(0x202, 2), Some(false), "type 2");
        assert_eq!(m.write(0x203, mask | 1), Some(false), "mask bit 0");
        assert_eq!(m.write(0x203, mask | 1 << 46), Some(false), "mask bit 46");
        assert_eq!(
            m.write(0x20E, 0x3FFF_FFFF_F000 | 4),
            Some(true),
            "highest base"
        );
    }
}
