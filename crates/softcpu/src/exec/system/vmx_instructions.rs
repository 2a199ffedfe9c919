//! VMCALL, the VMX instructions (VMLAUNCH … INVVPID) and XSETBV: outside VMX
//! non-root operation they are #UD here (VMX root operation is not modelled);
//! in it they always exit (SDM Vol. 3C §26.1.2).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::vmx::{instruction_exit, vmx_instruction_exit};
use iced_x86::{Instruction, Mnemonic};
use x86::vmx::exit_reason as er;

impl SoftCpu {
    /// VMCALL.
    pub(super) fn vmcall(&mut self, ins: &Instruction) -> Ex<()> {
        if self.vmx.non_root {
            return Err(instruction_exit(ins, er::VMCALL, 0));
        }
        Err(Exception::ud().into())
    }

    /// VMLAUNCH, VMRESUME, VMPTRLD, VMPTRST, VMREAD, VMWRITE, VMXOFF, VMXON,
    /// VMCLEAR, INVEPT and INVVPID, with the VMX-instruction information.
    pub(super) fn vmx_instruction(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        if self.vmx.non_root {
            let reason = match ins.mnemonic() {
                M::Vmclear => er::VMCLEAR,
                M::Vmlaunch => er::VMLAUNCH,
                M::Vmptrld => er::VMPTRLD,
                M::Vmptrst => er::VMPTRST,
                M::Vmread => er::VMREAD,
                M::Vmresume => er::VMRESUME,
                M::Vmwrite => er::VMWRITE,
                M::Vmxoff => er::VMXOFF,
                M::Vmxon => er::VMXON,
                M::Invept => er::INVEPT,
                _ => er::INVVPID,
            };
            return Err(vmx_instruction_exit(ins, reason, self.s.mode64()));
        }
        Err(Exception::ud().into())
    }

    /// XSETBV: #UD, since CR4.OSXSAVE is clear (SDM Vol. 2C XSETBV) and
    /// cannot be set on this processor, which offers no XSAVE. The #UD has
    /// priority over XSETBV's unconditional VM exit (Vol. 3C §26.1.1).
    pub(super) fn xsetbv(&mut self) -> Ex<()> {
        Err(Exception::ud().into())
    }
}
