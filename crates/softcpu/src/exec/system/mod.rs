//! System instructions, split by instruction group as Bochs splits its CPU
//! files: I/O, processor control (HLT, the interrupt flag, CPUID, the TSC),
//! MSRs, control and debug registers, descriptor tables, far-pointer loads,
//! SYSCALL/SYSRET, cache and TLB control, and the VMX instructions (which
//! always exit in VMX non-root operation, SDM Vol. 3C §26.1.2).

mod cache_tlb;
mod control_registers;
mod debug_registers;
mod descriptor_tables;
mod far_pointer;
mod fast_syscall;
mod io;
mod msrs;
mod processor;
mod vmx_instructions;

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use iced_x86::{Instruction, Mnemonic};

impl SoftCpu {
    /// #GP(0) unless CPL is 0.
    fn require_cpl0(&self) -> Ex<()> {
        if self.s.cpl() != 0 {
            return Err(Exception::gp(0).into());
        }
        Ok(())
    }

    /// Executes a system instruction: finds its group.
    pub(in crate::exec) fn system(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        match ins.mnemonic() {
            M::Hlt => self.hlt(ins),
            M::In | M::Out => self.port_io(ins),
            M::Cli | M::Sti => self.cli_sti(ins),
            M::Cpuid => self.cpuid(ins),
            M::Rdtsc | M::Rdtscp => self.rdtsc(ins),
            M::Rdmsr | M::Wrmsr => self.rdmsr_wrmsr(ins),
            M::Swapgs => self.swapgs(),
            M::Lgdt | M::Lidt => self.lgdt_lidt(ins),
            M::Sgdt | M::Sidt => self.sgdt_sidt(ins),
            M::Ltr | M::Lldt => self.ltr_lldt(ins),
            M::Str | M::Sldt => self.str_sldt(ins),
            M::Lar | M::Lsl | M::Verr | M::Verw => self.descriptor_query(ins),
            M::Invlpg => self.invlpg(ins),
            M::Wbinvd | M::Invd => self.wbinvd_invd(ins),
            M::Clts => self.clts(ins),
            M::Smsw => self.smsw(ins),
            M::Lmsw => self.lmsw(ins),
            M::Lss | M::Lds | M::Les | M::Lfs | M::Lgs => self.far_pointer_load(ins),
            M::Vmcall => self.vmcall(ins),
            M::Vmlaunch
            | M::Vmresume
            | M::Vmptrld
            | M::Vmptrst
            | M::Vmread
            | M::Vmwrite
            | M::Vmxoff
            | M::Vmxon
            | M::Vmclear
            | M::Invept
            | M::Invvpid => self.vmx_instruction(ins),
            M::Xsetbv => self.xsetbv(),
            M::Syscall => self.syscall(ins),
            M::Sysret | M::Sysretq => self.sysret(ins),
            M::Sysenter => self.sysenter(),
            M::Sysexit | M::Sysexitq => self.sysexit(ins),
            M::Wait => Ok(()),
            _ => Err(Exception::ud().into()),
        }
    }
}
