//! Architectural register state of one logical processor.

use x86::segment::{AR_DB, AR_L, AR_P, AR_S, AR_UNUSABLE};

/// Index of a segment register in [`CpuState::seg`] (SDM encoding order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Seg {
    /// ES.
    Es = 0,
    /// CS.
    Cs = 1,
    /// SS.
    Ss = 2,
    /// DS.
    Ds = 3,
    /// FS.
    Fs = 4,
    /// GS.
    Gs = 5,
}

impl Seg {
    /// All six in encoding order.
    pub const ALL: [Seg; 6] = [Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs];
}

/// A segment register with its hidden descriptor cache, access rights in the
/// VMCS layout (SDM Vol. 3C §25.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    /// Visible selector.
    pub selector: u16,
    /// Base address.
    pub base: u64,
    /// Byte-granular limit.
    pub limit: u32,
    /// Access rights (type, S, DPL, P, AVL, L, D/B, G, unusable).
    pub ar: u32,
}

impl Segment {
    /// Descriptor privilege level.
    pub fn dpl(&self) -> u8 {
        x86::segment::dpl(self.ar)
    }
    /// Whether the segment may be used (present and not marked unusable).
    pub fn usable(&self) -> bool {
        self.ar & AR_UNUSABLE == 0 && self.ar & AR_P != 0
    }
    /// A code or data descriptor (S=1).
    pub fn is_code_or_data(&self) -> bool {
        self.ar & AR_S != 0
    }
    /// 64-bit code segment.
    pub fn long(&self) -> bool {
        self.ar & AR_L != 0
    }
    /// Default size 32 bits.
    pub fn big(&self) -> bool {
        self.ar & AR_DB != 0
    }
}

/// A descriptor-table register (GDTR or IDTR).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableReg {
    /// Linear base.
    pub base: u64,
    /// Limit in bytes.
    pub limit: u32,
}

/// IA32_PAT after reset and INIT: WB, WT, UC-, UC in entries 0–3 and again
/// in 4–7 (SDM Vol. 3A §13.12.4, Table 13-12). Software that never writes
/// the PAT (Linux leaves it alone when the MTRRs are disabled) reads this, and
/// KVM refuses to load unless entry 0 is WB.
pub const PAT_RESET: u64 = 0x0007_0406_0007_0406;

/// MSRs the processor keeps that are not also in the VMCS guest area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsrFile {
    /// IA32_STAR.
    pub star: u64,
    /// IA32_LSTAR.
    pub lstar: u64,
    /// IA32_CSTAR.
    pub cstar: u64,
    /// IA32_FMASK.
    pub fmask: u64,
    /// IA32_KERNEL_GS_BASE.
    pub kernel_gs_base: u64,
    /// IA32_TSC_AUX.
    pub tsc_aux: u64,
    /// IA32_SYSENTER_CS.
    pub sysenter_cs: u64,
    /// IA32_SYSENTER_ESP.
    pub sysenter_esp: u64,
    /// IA32_SYSENTER_EIP.
    pub sysenter_eip: u64,
    /// IA32_PAT.
    pub pat: u64,
    /// IA32_DEBUGCTL.
    pub debugctl: u64,
    /// What writes of IA32_TSC added to the cycle count (the TSC is the
    /// cycle count plus this).
    pub tsc_adjust: u64,
    /// The IA32_MISC_ENABLE bits a write flipped from their reset value.
    pub misc_enable_flipped: u64,
    /// The memory-type range registers.
    pub mtrr: MtrrFile,
}

impl Default for MsrFile {
    /// The MSRs after reset: all zero but the PAT ([`PAT_RESET`]).
    fn default() -> Self {
        MsrFile {
            star: 0,
            lstar: 0,
            cstar: 0,
            fmask: 0,
            kernel_gs_base: 0,
            tsc_aux: 0,
            sysenter_cs: 0,
            sysenter_esp: 0,
            sysenter_eip: 0,
            pat: PAT_RESET,
            debugctl: 0,
            tsc_adjust: 0,
            misc_enable_flipped: 0,
            mtrr: MtrrFile::default(),
        }
    }
}

/// The memory-type range registers (SDM Vol. 3A §12.11); all zero after
/// reset, so the MTRRs start disabled with an uncached default type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MtrrFile {
    /// IA32_MTRR_DEF_TYPE.
    pub def_type: u64,
    /// The fixed-range MTRRs: FIX64K_00000, FIX16K_80000, FIX16K_A0000,
    /// then FIX4K_C0000 … FIX4K_F8000.
    pub fixed: [u64; 11],
    /// IA32_MTRR_PHYSBASEn at index 2n, IA32_MTRR_PHYSMASKn at 2n + 1.
    pub variable: [u64; 16],
}

/// The architectural state of one logical processor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuState {
    /// General-purpose registers in encoding order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8–R15).
    pub gpr: [u64; 16],
    /// Instruction pointer.
    pub rip: u64,
    /// Flags.
    pub rflags: u64,
    /// ES, CS, SS, DS, FS, GS.
    pub seg: [Segment; 6],
    /// LDTR.
    pub ldtr: Segment,
    /// Task register.
    pub tr: Segment,
    /// GDTR.
    pub gdtr: TableReg,
    /// IDTR.
    pub idtr: TableReg,
    /// CR0.
    pub cr0: u64,
    /// CR2.
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// CR8 (task priority).
    pub cr8: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// DR0–DR7 (DR4/DR5 alias DR6/DR7 and are kept unused).
    pub dr: [u64; 8],
    /// Other MSRs.
    pub msr: MsrFile,
}

impl CpuState {
    /// Current privilege level: the DPL of SS (SDM Vol. 3A §5.5; equal to CS.RPL outside
    /// conforming-code corner cases, and the VMCS convention). Real-address
    /// mode has no privilege levels and runs at CPL 0 (SDM Vol. 3A §20.1),
    /// whatever attributes the hidden SS cache kept from protected mode.
    pub fn cpl(&self) -> u8 {
        if self.cr0 & x86::cr::CR0_PE == 0 {
            return 0;
        }
        self.seg[Seg::Ss as usize].dpl()
    }

    /// Whether the processor is in real-address mode (CR0.PE = 0).
    pub fn real_mode(&self) -> bool {
        self.cr0 & x86::cr::CR0_PE == 0
    }

    /// Whether IA-32e mode is active.
    pub fn long_mode(&self) -> bool {
        self.efer & x86::cr::EFER_LMA != 0
    }

    /// Code bitness: 16, 32 or 64.
    pub fn bitness(&self) -> u32 {
        let cs = &self.seg[Seg::Cs as usize];
        if self.long_mode() && cs.long() {
            64
        } else if cs.big() {
            32
        } else {
            16
        }
    }

    /// Whether 64-bit mode (IA-32e with a 64-bit code segment) is active.
    pub fn mode64(&self) -> bool {
        self.bitness() == 64
    }

    /// Stack address size in bytes (SS.B, or 8 in 64-bit mode).
    pub fn stack_size(&self) -> u8 {
        if self.mode64() {
            8
        } else if self.seg[Seg::Ss as usize].big() {
            4
        } else {
            2
        }
    }
}
