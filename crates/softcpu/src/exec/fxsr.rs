//! FXSAVE/FXRSTOR (SDM Vol. 2A FXSAVE, Vol. 1 §10.5.1 Table 10-2) and
//! LDMXCSR/STMXCSR.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::fpu::MXCSR_MASK;
use iced_x86::{Instruction, Mnemonic};
use x86::cr::{CR0_EM, CR0_TS};

impl SoftCpu {
    /// FXSAVE, FXSAVE64, FXRSTOR, FXRSTOR64: #NM with CR0.EM or CR0.TS,
    /// #GP(0) for an operand not aligned on 16 bytes.
    pub(super) fn fxsr(&mut self, ins: &Instruction) -> Ex<()> {
        if self.s.cr0 & (CR0_EM | CR0_TS) != 0 {
            return Err(Exception::plain(x86::exception::NM).into());
        }
        let (seg, ea) = self.mem_operand(ins);
        if self.linear(seg, ea) & 15 != 0 {
            return Err(Exception::gp(0).into());
        }
        let wide = matches!(ins.mnemonic(), Mnemonic::Fxsave64 | Mnemonic::Fxrstor64);
        // XMM8–XMM15 exist only in 64-bit mode.
        let regs = if self.s.mode64() { 16 } else { 8 };
        let len = 160 + 16 * regs;
        match ins.mnemonic() {
            Mnemonic::Fxsave | Mnemonic::Fxsave64 => {
                let image = self.fxsave_image(wide, regs);
                self.write_bytes(seg, ea, &image[..len])
            }
            _ => {
                let mut image = [0u8; 416];
                self.read_bytes(seg, ea, &mut image[..len])?;
                self.fxrstor_image(&image, wide, regs)
            }
        }
    }

    /// The FXSAVE image: FCW, FSW, abridged FTW, FOP, FIP, FDP (with FCS
    /// and FDS as zero in the 32-bit form: deprecated), MXCSR, MXCSR_MASK,
    /// ST0–ST7 in stack order, XMM registers. Reserved bytes are zero.
    pub(crate) fn fxsave_image(&self, wide: bool, regs: usize) -> [u8; 416] {
        let f = &self.fpu;
        let mut b = [0u8; 416];
        b[0..2].copy_from_slice(&f.fcw.to_le_bytes());
        b[2..4].copy_from_slice(&f.fsw.to_le_bytes());
        b[4] = f.ftw;
        b[6..8].copy_from_slice(&(f.fop & 0x7FF).to_le_bytes());
        if wide {
            b[8..16].copy_from_slice(&f.fip.to_le_bytes());
            b[16..24].copy_from_slice(&f.fdp.to_le_bytes());
        } else {
            b[8..12].copy_from_slice(&(f.fip as u32).to_le_bytes());
            b[16..20].copy_from_slice(&(f.fdp as u32).to_le_bytes());
        }
        b[24..28].copy_from_slice(&f.mxcsr.to_le_bytes());
        b[28..32].copy_from_slice(&MXCSR_MASK.to_le_bytes());
        for i in 0..8 {
            let at = 32 + 16 * i;
            b[at..at + 10].copy_from_slice(&f.st(i).to_le_bytes()[..10]);
        }
        for (i, x) in f.xmm.iter().enumerate().take(regs) {
            let at = 160 + 16 * i;
            b[at..at + 16].copy_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Loads an FXSAVE image; #GP(0) if it sets reserved MXCSR bits.
    pub(crate) fn fxrstor_image(&mut self, b: &[u8; 416], wide: bool, regs: usize) -> Ex<()> {
        let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let u64_at = |at: usize| u64::from(u32_at(at)) | u64::from(u32_at(at + 4)) << 32;
        let mxcsr = u32_at(24);
        if mxcsr & !MXCSR_MASK != 0 {
            return Err(Exception::gp(0).into());
        }
        let f = &mut self.fpu;
        f.fcw = u16_at(0);
        f.fsw = u16_at(2);
        f.ftw = b[4];
        f.fop = u16_at(6) & 0x7FF;
        if wide {
            f.fip = u64_at(8);
            f.fdp = u64_at(16);
        } else {
            f.fip = u64::from(u32_at(8));
            f.fdp = u64::from(u32_at(16));
        }
        f.mxcsr = mxcsr;
        for i in 0..8 {
            let at = 32 + 16 * i;
            let mut v = [0u8; 16];
            v[..10].copy_from_slice(&b[at..at + 10]);
            let p = f.phys(i);
            f.regs[p] = u128::from_le_bytes(v);
        }
        for i in 0..regs {
            let at = 160 + 16 * i;
            let mut v = [0u8; 16];
            v.copy_from_slice(&b[at..at + 16]);
            f.xmm[i] = u128::from_le_bytes(v);
        }
        Ok(())
    }

    /// LDMXCSR (#GP(0) for reserved bits) and STMXCSR.
    pub(super) fn mxcsr_op(&mut self, ins: &Instruction) -> Ex<()> {
        let (seg, ea) = self.mem_operand(ins);
        if ins.mnemonic() == Mnemonic::Ldmxcsr {
            let v = self.read_mem(seg, ea, 4)? as u32;
            if v & !MXCSR_MASK != 0 {
                return Err(Exception::gp(0).into());
            }
            self.fpu.mxcsr = v;
            Ok(())
        } else {
            self.write_mem(seg, ea, 4, u64::from(self.fpu.mxcsr))
        }
    }
}
