//! Exception and interrupt vectors (SDM Vol. 3A §6.3.1, Table 6-1).

/// #DE divide error.
pub const DE: u8 = 0;
/// #DB debug.
pub const DB: u8 = 1;
/// NMI.
pub const NMI: u8 = 2;
/// #BP breakpoint.
pub const BP: u8 = 3;
/// #OF overflow.
pub const OF: u8 = 4;
/// #BR bound range exceeded.
pub const BR: u8 = 5;
/// #UD invalid opcode.
pub const UD: u8 = 6;
/// #NM device not available.
pub const NM: u8 = 7;
/// #DF double fault.
pub const DF: u8 = 8;
/// #TS invalid TSS.
pub const TS: u8 = 10;
/// #NP segment not present.
pub const NP: u8 = 11;
/// #SS stack-segment fault.
pub const SS: u8 = 12;
/// #GP general protection.
pub const GP: u8 = 13;
/// #PF page fault.
pub const PF: u8 = 14;
/// #MF x87 floating-point error.
pub const MF: u8 = 16;
/// #AC alignment check.
pub const AC: u8 = 17;
/// #MC machine check.
pub const MC: u8 = 18;
/// #XM SIMD floating-point.
pub const XM: u8 = 19;

/// Whether the exception pushes an error code (SDM Vol. 3A Table 6-1).
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, DF | TS | NP | SS | GP | PF | AC | 21)
}

/// Exception class for the double-fault rules (SDM Vol. 3A Table 6-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Benign: delivered one after the other without a #DF.
    Benign,
    /// Contributory: two in a row make a #DF.
    Contributory,
    /// Page fault.
    PageFault,
    /// Double fault itself.
    DoubleFault,
}

/// The class of an exception vector (SDM Vol. 3A Table 6-4).
pub const fn class(vector: u8) -> Class {
    match vector {
        DE | TS | NP | SS | GP => Class::Contributory,
        PF => Class::PageFault,
        DF => Class::DoubleFault,
        _ => Class::Benign,
    }
}

/// #PF error code: the fault was a protection violation (page present).
pub const PFEC_PRESENT: u32 = 1 << 0;
/// #PF error code: the access was a write.
pub const PFEC_WRITE: u32 = 1 << 1;
/// #PF error code: the access came from CPL 3.
pub const PFEC_USER: u32 = 1 << 2;
/// #PF error code: a reserved bit was set in a paging entry.
pub const PFEC_RSVD: u32 = 1 << 3;
/// #PF error code: the access was an instruction fetch.
pub const PFEC_FETCH: u32 = 1 << 4;
