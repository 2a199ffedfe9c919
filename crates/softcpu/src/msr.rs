//! RDMSR/WRMSR of the MSRs this processor implements (SDM Vol. 4); anything
//! else is #GP(0).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::state::Seg;
use x86::cr::{EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE};
use x86::msr::*;

impl SoftCpu {
    /// Reads an MSR.
    pub(crate) fn read_msr(&mut self, msr: u32) -> Ex<u64> {
        let m = &self.s.msr;
        Ok(match msr {
            TSC => self.guest_tsc(),
            EFER => self.s.efer,
            STAR => m.star,
            LSTAR => m.lstar,
            CSTAR => m.cstar,
            FMASK => m.fmask,
            FS_BASE => self.s.seg[Seg::Fs as usize].base,
            GS_BASE => self.s.seg[Seg::Gs as usize].base,
            KERNEL_GS_BASE => m.kernel_gs_base,
            TSC_AUX => m.tsc_aux,
            SYSENTER_CS => m.sysenter_cs,
            SYSENTER_ESP => m.sysenter_esp,
            SYSENTER_EIP => m.sysenter_eip,
            PAT => m.pat,
            0x1D9 => m.debugctl,
            APIC_BASE => x86::apic::BASE_MSR_RESET_BSP,
            _ => return Err(Exception::gp(0).into()),
        })
    }

    /// Writes an MSR, with the canonical-address and reserved-bit checks.
    pub(crate) fn write_msr(&mut self, msr: u32, v: u64) -> Ex<()> {
        let gp = Err(Exception::gp(0).into());
        match msr {
            EFER => {
                if v & !(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE) != 0 {
                    return gp;
                }
                // LME cannot change while paging is on; LMA is read-only.
                let paging = self.s.cr0 & x86::cr::CR0_PG != 0;
                if paging && (v ^ self.s.efer) & EFER_LME != 0 {
                    return gp;
                }
                self.s.efer = (v & !EFER_LMA) | (self.s.efer & EFER_LMA);
                self.tlb.flush();
            }
            STAR => self.s.msr.star = v,
            LSTAR | CSTAR | FS_BASE | GS_BASE | KERNEL_GS_BASE | SYSENTER_ESP | SYSENTER_EIP
                if !x86::address::is_canonical(v) =>
            {
                return gp
            }
            LSTAR => self.s.msr.lstar = v,
            CSTAR => self.s.msr.cstar = v,
            FMASK => self.s.msr.fmask = v & 0xFFFF_FFFF,
            FS_BASE => self.s.seg[Seg::Fs as usize].base = v,
            GS_BASE => self.s.seg[Seg::Gs as usize].base = v,
            KERNEL_GS_BASE => self.s.msr.kernel_gs_base = v,
            TSC_AUX => {
                if v >> 32 != 0 {
                    return gp;
                }
                self.s.msr.tsc_aux = v
            }
            SYSENTER_CS => self.s.msr.sysenter_cs = v & 0xFFFF_FFFF,
            SYSENTER_ESP => self.s.msr.sysenter_esp = v,
            SYSENTER_EIP => self.s.msr.sysenter_eip = v,
            PAT => self.s.msr.pat = v,
            0x1D9 => self.s.msr.debugctl = v,
            _ => return gp,
        }
        Ok(())
    }
}
