//! RDMSR/WRMSR of the MSRs this processor implements (SDM Vol. 4); anything
//! else is #GP(0). docs/softcpu.md walks the architectural MSRs of the
//! family and says which exist here.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::state::Seg;
use x86::cr::{EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE};
use x86::msr::*;

/// IA32_MISC_ENABLE after reset: fast strings (bit 0) enabled; branch trace
/// storage (11) and PEBS (12) unavailable. No thermal control, Enhanced
/// SpeedStep, MONITOR/MWAIT, CPUID limit or XD disable (all 0).
const MISC_ENABLE_RESET: u64 = 1 | 1 << 11 | 1 << 12;
/// The IA32_MISC_ENABLE bits a write may change: fast-string enable (REP
/// string instructions behave the same either way here).
const MISC_ENABLE_WRITABLE: u64 = 1;

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
            DEBUGCTL => m.debugctl,
            MISC_ENABLE => MISC_ENABLE_RESET ^ m.misc_enable_flipped,
            // No machine-check banks and no MCG features; nothing in progress.
            MCG_CAP | MCG_STATUS => 0,
            // Microcode revision 0 (EDX), nothing in EAX.
            BIOS_SIGN_ID => 0,
            APIC_BASE => x86::apic::BASE_MSR_RESET_BSP,
            _ => return m.mtrr.read(msr).ok_or_else(|| Exception::gp(0).into()),
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
            // PAT: each entry a valid memory type (0, 1, 4–7), else #GP (SDM Vol. 3A §13.12.2).
            PAT if (0..8).any(|i| matches!((v >> (8 * i)) & 0xFF, 2 | 3 | 8..)) => return gp,
            PAT => self.s.msr.pat = v,
            // A write sets the TSC itself (SDM Vol. 3B §18.17).
            TSC => self.s.msr.tsc_adjust = v.wrapping_sub(self.cycles),
            // LBR, BTF and the branch-trace features are not modelled: only 0 may be written.
            DEBUGCTL if v != 0 => return gp,
            DEBUGCTL => self.s.msr.debugctl = 0,
            MISC_ENABLE if (v ^ MISC_ENABLE_RESET) & !MISC_ENABLE_WRITABLE != 0 => return gp,
            MISC_ENABLE => self.s.msr.misc_enable_flipped = v ^ MISC_ENABLE_RESET,
            // Writing 0 to MCG_STATUS is allowed (SDM Vol. 3B §16.3.1.2).
            MCG_STATUS if v == 0 => {}
            // Writing it (0, before CPUID) only prepares the revision read.
            BIOS_SIGN_ID => {}
            _ if self.s.msr.mtrr.write(msr, v) == Some(true) => {}
            _ => return gp,
        }
        Ok(())
    }
}
