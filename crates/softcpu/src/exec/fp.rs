//! Dispatch of the x87, MMX, SSE and SSE2 instructions, the checks that
//! come before any of them (#UD, #NM, pending x87 exceptions, SDM Vol. 3A
//! §2.5 Table 2-2 and Vol. 1 §13.? "Checking for SSE/SSE2 support"), and
//! memory accesses wider than eight bytes.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::state::Seg;
use iced_x86::{Code, CpuidFeature, Instruction, Mnemonic};
use x86::cr::{CR0_EM, CR0_MP, CR0_NE, CR0_TS, CR4_OSFXSR};

/// The instruction-set extensions this processor implements beyond the
/// integer base (what CPUID advertises for them). An instruction that needs
/// any other extension is #UD.
const IMPLEMENTED: &[CpuidFeature] = &[
    CpuidFeature::FPU,
    CpuidFeature::FPU287,
    CpuidFeature::FPU387,
    CpuidFeature::CMOV,
    CpuidFeature::MMX,
    CpuidFeature::SSE,
    CpuidFeature::SSE2,
    CpuidFeature::FXSR,
];

/// The unit an instruction belongs to, which decides its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// x87 (FPU) instructions.
    X87,
    /// MMX instructions (on the x87 registers).
    Mmx,
    /// SSE and SSE2 instructions on XMM registers or MXCSR.
    Sse,
    /// FXSAVE and FXRSTOR.
    Fxsr,
    /// MOVNTI: a general-register store, not subject to the SSE checks.
    Movnti,
}

/// SSE2's MOVSD and CMPSD, which share their mnemonics with the string
/// instructions.
pub(crate) fn sse_string_alias(ins: &Instruction) -> bool {
    matches!(
        ins.code(),
        Code::Movsd_xmm_xmmm64 | Code::Movsd_xmmm64_xmm | Code::Cmpsd_xmm_xmmm64_imm8
    )
}

/// The unit of an instruction, or `None` for one this module does not own.
/// Fences, prefetches, CLFLUSH and PAUSE carry SSE/SSE2 feature names but
/// are executed as the integer instructions they are.
pub(crate) fn unit(ins: &Instruction) -> Option<Unit> {
    use Mnemonic as M;
    if matches!(
        ins.mnemonic(),
        M::Lfence
            | M::Sfence
            | M::Mfence
            | M::Pause
            | M::Clflush
            | M::Prefetchnta
            | M::Prefetcht0
            | M::Prefetcht1
            | M::Prefetcht2
    ) {
        return None;
    }
    if ins.mnemonic() == M::Movnti {
        return Some(Unit::Movnti);
    }
    let mut unit = None;
    for f in ins.cpuid_features() {
        let u = match f {
            CpuidFeature::FPU | CpuidFeature::FPU287 | CpuidFeature::FPU387 => Unit::X87,
            CpuidFeature::MMX => Unit::Mmx,
            CpuidFeature::FXSR => Unit::Fxsr,
            CpuidFeature::SSE | CpuidFeature::SSE2 => Unit::Sse,
            _ => continue,
        };
        // An MMX-register form of an SSE instruction (PSHUFW, PMOVMSKB mm,
        // CVTPI2PS …) is checked as MMX.
        unit = Some(match (unit, u) {
            (Some(Unit::Mmx), _) | (_, Unit::Mmx) => Unit::Mmx,
            _ => u,
        });
    }
    if unit == Some(Unit::Sse) && uses_mmx_register(ins) {
        return Some(Unit::Mmx);
    }
    unit
}

/// The largest access of 8, 4, 2 or 1 bytes that fits in `left`.
fn chunk(left: usize) -> usize {
    match left {
        8.. => 8,
        4..=7 => 4,
        2 | 3 => 2,
        _ => 1,
    }
}

/// Whether any operand is an MMX register.
fn uses_mmx_register(ins: &Instruction) -> bool {
    (0..ins.op_count())
        .any(|i| ins.op_kind(i) == iced_x86::OpKind::Register && ins.op_register(i).is_mm())
}

impl SoftCpu {
    /// Executes an x87, MMX, SSE, SSE2 or FXSR instruction.
    pub(super) fn fp_simd(&mut self, ins: &Instruction, unit: Unit) -> Ex<()> {
        if !ins.cpuid_features().iter().all(|f| IMPLEMENTED.contains(f)) {
            return Err(Exception::ud().into());
        }
        match unit {
            Unit::X87 => self.x87(ins),
            Unit::Mmx => {
                self.mmx_check()?;
                self.simd(ins, true)
            }
            Unit::Sse => {
                self.sse_check()?;
                self.simd(ins, false)
            }
            Unit::Movnti => {
                let size = self.op_size(ins, 1);
                let v = self.read_op(ins, 1, size)?;
                self.write_op(ins, 0, size, v)
            }
            Unit::Fxsr => self.fxsr(ins),
        }
    }

    /// The checks of an x87 instruction: #NM with CR0.EM or CR0.TS, then
    /// (for waiting instructions) a pending unmasked x87 exception.
    pub(super) fn x87_check(&self, waiting: bool) -> Ex<()> {
        if self.s.cr0 & (CR0_EM | CR0_TS) != 0 {
            return Err(Exception::plain(x86::exception::NM).into());
        }
        if waiting {
            self.pending_mf()?;
        }
        Ok(())
    }

    /// #MF for a pending unmasked x87 exception (FSW.ES). Only native error
    /// reporting (CR0.NE = 1) is modelled; with NE clear the PC would raise
    /// IRQ 13 through FERR#, which this platform does not wire, so nothing
    /// is raised.
    pub(super) fn pending_mf(&self) -> Ex<()> {
        if self.fpu.fsw & crate::fpu::FSW_ES != 0 && self.s.cr0 & CR0_NE != 0 {
            return Err(Exception::plain(x86::exception::MF).into());
        }
        Ok(())
    }

    /// WAIT/FWAIT: #NM when CR0.MP and CR0.TS are both set, then #MF for a
    /// pending unmasked x87 exception.
    pub(super) fn fwait(&mut self) -> Ex<()> {
        if self.s.cr0 & (CR0_MP | CR0_TS) == CR0_MP | CR0_TS {
            return Err(Exception::plain(x86::exception::NM).into());
        }
        self.pending_mf()
    }

    /// The checks of an SSE/SSE2 instruction: #UD with CR0.EM set or
    /// CR4.OSFXSR clear, then #NM with CR0.TS (SDM Vol. 3A Table 2-2).
    fn sse_check(&self) -> Ex<()> {
        if self.s.cr0 & CR0_EM != 0 || self.s.cr4 & CR4_OSFXSR == 0 {
            return Err(Exception::ud().into());
        }
        if self.s.cr0 & CR0_TS != 0 {
            return Err(Exception::plain(x86::exception::NM).into());
        }
        Ok(())
    }

    /// The checks of an MMX instruction: #UD with CR0.EM, #NM with CR0.TS,
    /// then a pending x87 exception (SDM Vol. 1 §9.6.4, Table 12-? of Vol. 3A).
    fn mmx_check(&self) -> Ex<()> {
        if self.s.cr0 & CR0_EM != 0 {
            return Err(Exception::ud().into());
        }
        if self.s.cr0 & CR0_TS != 0 {
            return Err(Exception::plain(x86::exception::NM).into());
        }
        self.pending_mf()
    }

    /// Segment and effective address of the memory operand.
    pub(super) fn mem_operand(&self, ins: &Instruction) -> (Seg, u64) {
        (Self::mem_seg(ins), self.effective_address(ins))
    }

    /// Reads `buf.len()` bytes at `seg:ea`, eight at a time.
    pub(super) fn read_bytes(&mut self, seg: Seg, ea: u64, buf: &mut [u8]) -> Ex<()> {
        let mut off = 0;
        while off < buf.len() {
            let n = chunk(buf.len() - off);
            let v = self.read_mem(seg, ea.wrapping_add(off as u64), n)?;
            buf[off..off + n].copy_from_slice(&v.to_le_bytes()[..n]);
            off += n;
        }
        Ok(())
    }

    /// Writes `data` at `seg:ea`. Every byte's address is checked (segment,
    /// paging) before the first is written, so a fault leaves memory as it
    /// was.
    pub(super) fn write_bytes(&mut self, seg: Seg, ea: u64, data: &[u8]) -> Ex<()> {
        // Probe: read-modify-write checks of the first and last byte of each
        // page touched would set accessed bits only; a write probe of one
        // byte per page with its current contents is exact.
        let len = data.len() as u64;
        let mut probe = 0;
        while probe < len {
            let a = ea.wrapping_add(probe);
            let v = self.read_mem(seg, a, 1)?;
            self.write_mem(seg, a, 1, v)?;
            let page_left = 4096 - (self.linear(seg, a) & 0xFFF);
            probe += page_left;
        }
        let last = ea.wrapping_add(len - 1);
        let v = self.read_mem(seg, last, 1)?;
        self.write_mem(seg, last, 1, v)?;
        let mut off = 0;
        while off < data.len() {
            let n = chunk(data.len() - off);
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&data[off..off + n]);
            self.write_mem(seg, ea.wrapping_add(off as u64), n, u64::from_le_bytes(b))?;
            off += n;
        }
        Ok(())
    }

    /// Reads 16 bytes; `aligned` demands 16-byte alignment (#GP(0)
    /// otherwise, SDM Vol. 1 §11.4.1).
    pub(super) fn read_u128(&mut self, seg: Seg, ea: u64, aligned: bool) -> Ex<u128> {
        if aligned && self.linear(seg, ea) & 15 != 0 {
            return Err(Exception::gp(0).into());
        }
        let lo = self.read_mem(seg, ea, 8)?;
        let hi = self.read_mem(seg, ea.wrapping_add(8), 8)?;
        Ok(u128::from(lo) | u128::from(hi) << 64)
    }

    /// Writes 16 bytes; see [`SoftCpu::read_u128`].
    pub(super) fn write_u128(&mut self, seg: Seg, ea: u64, v: u128, aligned: bool) -> Ex<()> {
        if aligned && self.linear(seg, ea) & 15 != 0 {
            return Err(Exception::gp(0).into());
        }
        self.write_bytes(seg, ea, &v.to_le_bytes())
    }
}
