//! RFLAGS bits (SDM Vol. 1 §3.4.3).

/// Carry flag.
pub const CF: u64 = 1 << 0;
/// Reserved, always 1.
pub const FIXED1: u64 = 1 << 1;
/// Parity flag.
pub const PF: u64 = 1 << 2;
/// Auxiliary carry flag.
pub const AF: u64 = 1 << 4;
/// Zero flag.
pub const ZF: u64 = 1 << 6;
/// Sign flag.
pub const SF: u64 = 1 << 7;
/// Trap flag.
pub const TF: u64 = 1 << 8;
/// Interrupt enable flag.
pub const IF: u64 = 1 << 9;
/// Direction flag.
pub const DF: u64 = 1 << 10;
/// Overflow flag.
pub const OF: u64 = 1 << 11;
/// I/O privilege level (two bits).
pub const IOPL: u64 = 3 << 12;
/// Shift of the IOPL field.
pub const IOPL_SHIFT: u32 = 12;
/// Nested task.
pub const NT: u64 = 1 << 14;
/// Resume flag.
pub const RF: u64 = 1 << 16;
/// Virtual-8086 mode.
pub const VM: u64 = 1 << 17;
/// Alignment check / access control.
pub const AC: u64 = 1 << 18;
/// Virtual interrupt flag.
pub const VIF: u64 = 1 << 19;
/// Virtual interrupt pending.
pub const VIP: u64 = 1 << 20;
/// CPUID available (software may toggle it).
pub const ID: u64 = 1 << 21;

/// The six arithmetic status flags.
pub const STATUS: u64 = CF | PF | AF | ZF | SF | OF;
/// Every bit software can change on a 64-bit CPU without VME.
pub const WRITABLE: u64 = STATUS | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;
/// The flags LAHF stores into AH and SAHF loads from it (SDM Vol. 2A LAHF).
pub const LAHF_SAHF: u64 = SF | ZF | AF | PF | CF;
/// The bits SYSRET takes from R11, "(R11 AND 3C7FD7H) OR 2" (SDM Vol. 2B
/// SYSRET): all software can write but RF and VM, and the fixed bit.
pub const SYSRET_FROM_R11: u64 = (WRITABLE & !(RF | VM)) | FIXED1;

/// The I/O privilege level in `rflags`.
pub const fn iopl(rflags: u64) -> u8 {
    ((rflags & IOPL) >> IOPL_SHIFT) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_masks_are_the_sdm_numbers() {
        assert_eq!(LAHF_SAHF, 0xD5);
        assert_eq!(SYSRET_FROM_R11, 0x3C_7FD7);
        assert_eq!(iopl(IOPL | IF), 3);
        assert_eq!(iopl(2 << IOPL_SHIFT), 2);
    }
}
