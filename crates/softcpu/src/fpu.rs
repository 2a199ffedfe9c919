//! The floating-point and SIMD register state: the x87 FPU (eight 80-bit
//! data registers, control, status and tag words, last-instruction
//! pointers) and the SSE unit (sixteen XMM registers and MXCSR). It is the
//! state FXSAVE stores (SDM Vol. 1 §10.5.1); the MMX registers are the low 64
//! bits of the x87 data registers (Vol. 1 §9.5).

/// FSW exception flags and MXCSR exception flags share bits 5:0:
/// invalid operation.
pub const IE: u32 = 1 << 0;
/// Denormal operand.
pub const DE: u32 = 1 << 1;
/// Divide by zero.
pub const ZE: u32 = 1 << 2;
/// Overflow.
pub const OE: u32 = 1 << 3;
/// Underflow.
pub const UE: u32 = 1 << 4;
/// Precision (inexact result).
pub const PE: u32 = 1 << 5;
/// All six exception flags.
pub const EXCEPTIONS: u32 = 0x3F;

/// FSW.SF: stack fault (with IE).
pub const FSW_SF: u16 = 1 << 6;
/// FSW.ES: exception summary.
pub const FSW_ES: u16 = 1 << 7;
/// FSW.C0.
pub const FSW_C0: u16 = 1 << 8;
/// FSW.C1.
pub const FSW_C1: u16 = 1 << 9;
/// FSW.C2.
pub const FSW_C2: u16 = 1 << 10;
/// FSW.C3.
pub const FSW_C3: u16 = 1 << 14;
/// FSW.B: busy (mirrors ES).
pub const FSW_B: u16 = 1 << 15;
/// FSW.TOP field.
pub const FSW_TOP: u16 = 7 << 11;

/// MXCSR.DAZ: denormal operands are zeros.
pub const MXCSR_DAZ: u32 = 1 << 6;
/// MXCSR.FZ: flush to zero.
pub const MXCSR_FZ: u32 = 1 << 15;
/// The MXCSR bits this processor implements (MXCSR_MASK, Vol. 1 §11.6.6);
/// setting any other bit is #GP(0).
pub const MXCSR_MASK: u32 = 0xFFFF;
/// MXCSR after reset and FNINIT-independent initialisation: all
/// exceptions masked, round to nearest.
pub const MXCSR_DEFAULT: u32 = 0x1F80;
/// FCW after FNINIT: all exceptions masked, extended precision, round to nearest.
pub const FCW_DEFAULT: u16 = 0x037F;

/// An 80-bit extended-precision value: bits 63:0 the significand (with
/// its explicit integer bit), bits 79:64 sign and exponent.
pub type F80Bits = u128;

/// x87 and SSE register state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FpuState {
    /// Control word.
    pub fcw: u16,
    /// Status word, including TOP in bits 13:11.
    pub fsw: u16,
    /// Occupancy of the physical registers R0–R7: bit i set = R(i) not
    /// empty (the abridged tag word of FXSAVE). The full two-bit tags are
    /// derived from the contents when stored.
    pub ftw: u8,
    /// Physical data registers R0–R7 (80-bit values).
    pub regs: [F80Bits; 8],
    /// Opcode of the last non-control instruction (11 bits).
    pub fop: u16,
    /// Offset of the last non-control x87 instruction.
    pub fip: u64,
    /// Offset of its memory operand.
    pub fdp: u64,
    /// MXCSR.
    pub mxcsr: u32,
    /// XMM0–XMM15.
    pub xmm: [u128; 16],
}

impl Default for FpuState {
    /// The state after FNINIT with MXCSR at its default. (After a hardware
    /// RESET the FCW is 0x0040; KVM and QEMU start a vCPU with the FNINIT
    /// state, and so does this processor, so that guests compare equal.)
    fn default() -> Self {
        FpuState {
            fcw: FCW_DEFAULT,
            fsw: 0,
            ftw: 0,
            regs: [0; 8],
            fop: 0,
            fip: 0,
            fdp: 0,
            mxcsr: MXCSR_DEFAULT,
            xmm: [0; 16],
        }
    }
}

impl FpuState {
    /// FSW.TOP.
    pub fn top(&self) -> usize {
        usize::from((self.fsw >> 11) & 7)
    }

    /// Sets FSW.TOP.
    pub fn set_top(&mut self, top: usize) {
        self.fsw = (self.fsw & !FSW_TOP) | (((top & 7) as u16) << 11);
    }

    /// Physical register number of ST(i).
    pub fn phys(&self, i: usize) -> usize {
        (self.top() + i) & 7
    }

    /// Whether ST(i) is empty.
    pub fn is_empty(&self, i: usize) -> bool {
        self.ftw & (1 << self.phys(i)) == 0
    }

    /// The value of ST(i) (whatever its tag).
    pub fn st(&self, i: usize) -> F80Bits {
        self.regs[self.phys(i)]
    }

    /// Writes ST(i) and tags it valid.
    pub fn set_st(&mut self, i: usize, v: F80Bits) {
        let p = self.phys(i);
        self.regs[p] = v & ((1 << 80) - 1);
        self.ftw |= 1 << p;
    }

    /// Tags ST(i) empty.
    pub fn free(&mut self, i: usize) {
        self.ftw &= !(1 << self.phys(i));
    }

    /// FNINIT (SDM Vol. 2A FINIT/FNINIT): control word 0x037F, status word
    /// 0, all registers empty, pointers and opcode cleared. MXCSR and the
    /// XMM registers are not touched.
    pub fn finit(&mut self) {
        self.fcw = FCW_DEFAULT;
        self.fsw = 0;
        self.ftw = 0;
        self.fop = 0;
        self.fip = 0;
        self.fdp = 0;
    }

    /// The full 16-bit tag word of FSTENV/FSAVE: for each physical register
    /// 00 valid, 01 zero, 10 special (NaN, infinity, denormal, unsupported),
    /// 11 empty (SDM Vol. 1 §8.1.7).
    pub fn full_tag_word(&self) -> u16 {
        let mut tw = 0u16;
        for p in 0..8 {
            let tag = if self.ftw & (1 << p) == 0 {
                3
            } else {
                tag_of(self.regs[p])
            };
            tw |= tag << (2 * p);
        }
        tw
    }

    /// Loads occupancy from a full tag word (FLDENV/FRSTOR): 11 means empty,
    /// anything else not empty.
    pub fn set_full_tag_word(&mut self, tw: u16) {
        self.ftw = 0;
        for p in 0..8 {
            if (tw >> (2 * p)) & 3 != 3 {
                self.ftw |= 1 << p;
            }
        }
    }
}

/// The two-bit tag of a non-empty register's contents.
fn tag_of(v: F80Bits) -> u16 {
    let exp = (v >> 64) as u16 & 0x7FFF;
    let sig = v as u64;
    match exp {
        0 if sig == 0 => 1,
        0 | 0x7FFF => 2,
        _ if sig >> 63 == 0 => 2,
        _ => 0,
    }
}

impl crate::SoftCpu {
    /// The x87, MMX and SSE register state.
    pub fn fpu(&self) -> &FpuState {
        &self.fpu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_contents() {
        let mut f = FpuState::default();
        assert_eq!(f.full_tag_word(), 0xFFFF);
        f.set_top(7);
        f.set_st(0, 0x3FFF_8000_0000_0000_0000); // 1.0 in R7: valid
        f.set_top(6);
        f.set_st(0, 0); // +0 in R6: zero
        f.set_top(5);
        f.set_st(0, 0x7FFF_8000_0000_0000_0000); // +inf in R5: special
        assert_eq!(f.full_tag_word(), 0x1BFF);
        assert_eq!(f.ftw, 0xE0);
        f.set_full_tag_word(0x3FFF);
        assert_eq!(f.ftw, 0x80);
    }
}
