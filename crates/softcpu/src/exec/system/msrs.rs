//! RDMSR, WRMSR (with the MSR bitmaps in VMX non-root operation) and SWAPGS.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::state::Seg;
use crate::vmx::instruction_exit;
use iced_x86::{Instruction, Mnemonic};
use x86::vmx::exit_reason as er;

impl SoftCpu {
    /// RDMSR and WRMSR (SDM Vol. 2B); ECX names the MSR, EDX:EAX the value.
    pub(super) fn rdmsr_wrmsr(&mut self, ins: &Instruction) -> Ex<()> {
        self.require_cpl0()?;
        let msr = self.s.gpr[1] as u32;
        let write = ins.mnemonic() == Mnemonic::Wrmsr;
        if self.msr_exits(msr, write) {
            let reason = if write { er::MSR_WRITE } else { er::MSR_READ };
            return Err(instruction_exit(ins, reason, 0));
        }
        if write {
            let v = (self.s.gpr[2] << 32) | (self.s.gpr[0] & 0xFFFF_FFFF);
            self.write_msr(msr, v)
        } else {
            let v = self.read_msr(msr)?;
            self.s.gpr[0] = v & 0xFFFF_FFFF;
            self.s.gpr[2] = v >> 32;
            Ok(())
        }
    }

    /// SWAPGS: exchanges GS.base with IA32_KERNEL_GS_BASE, 64-bit mode and CPL 0 only.
    pub(super) fn swapgs(&mut self) -> Ex<()> {
        if !self.s.mode64() {
            return Err(Exception::ud().into());
        }
        self.require_cpl0()?;
        std::mem::swap(
            &mut self.s.seg[Seg::Gs as usize].base,
            &mut self.s.msr.kernel_gs_base,
        );
        Ok(())
    }
}
