//! Cache and TLB control: INVLPG, WBINVD and INVD.

use crate::cpu::SoftCpu;
use crate::fault::Ex;
use crate::vmx::instruction_exit;
use iced_x86::{Instruction, Mnemonic};
use x86::vmx::{exit_reason as er, proc, proc2};

impl SoftCpu {
    /// INVLPG drops one page's translations; it exits with INVLPG exiting.
    pub(super) fn invlpg(&mut self, ins: &Instruction) -> Ex<()> {
        self.require_cpl0()?;
        let ea = self.effective_address(ins);
        let la = self.linear(Self::mem_seg(ins), ea);
        if self.vmx.proc(proc::INVLPG_EXITING) {
            return Err(instruction_exit(ins, er::INVLPG, la));
        }
        self.tlb.flush_page(la);
        Ok(())
    }

    /// WBINVD and INVD: no caches are modelled; INVD always exits in VMX
    /// non-root operation, WBINVD with WBINVD exiting.
    pub(super) fn wbinvd_invd(&mut self, ins: &Instruction) -> Ex<()> {
        self.require_cpl0()?;
        if ins.mnemonic() == Mnemonic::Invd && self.vmx.non_root {
            return Err(instruction_exit(ins, er::INVD, 0));
        }
        if ins.mnemonic() == Mnemonic::Wbinvd && self.vmx.proc2(proc2::WBINVD_EXITING) {
            return Err(instruction_exit(ins, er::WBINVD, 0));
        }
        Ok(())
    }
}
