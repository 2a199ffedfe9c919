//! IN, OUT, INS and OUTS: the I/O permission check and, in VMX non-root
//! operation, the I/O-instruction exit (SDM Vol. 3C Table 28-5).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception, Stop};
use crate::state::Seg;
use crate::vmx::instruction_exit;
use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use x86::cr::CR0_PE;
use x86::vmx::{exit_reason as er, qualification as q};

impl SoftCpu {
    /// I/O permission: CPL ≤ IOPL, else #GP(0) (the TSS I/O bitmap is not modelled).
    pub(super) fn io_permitted(&self) -> Ex<()> {
        let iopl = x86::rflags::iopl(self.s.rflags);
        if self.s.cr0 & CR0_PE != 0 && self.s.cpl() > iopl {
            return Err(Exception::gp(0).into());
        }
        Ok(())
    }

    /// IN and OUT (SDM Vol. 2A IN, OUT); in VMX non-root operation an exit
    /// with the qualification of SDM Vol. 3C Table 28-5.
    pub(super) fn port_io(&mut self, ins: &Instruction) -> Ex<()> {
        self.io_permitted()?;
        let input = ins.mnemonic() == Mnemonic::In;
        let (port, size, imm) = if input {
            let size = ins.op0_register().size();
            match ins.op1_kind() {
                OpKind::Register => (self.reg(Register::DX) as u16, size, false),
                _ => (ins.immediate8() as u16, size, true),
            }
        } else {
            let size = ins.op1_register().size();
            match ins.op0_kind() {
                OpKind::Register => (self.reg(Register::DX) as u16, size, false),
                _ => (ins.immediate8() as u16, size, true),
            }
        };
        if self.io_exits(port, size) {
            let mut qual = (size as u64 - 1) | (u64::from(port) << q::IO_PORT_SHIFT);
            if input {
                qual |= q::IO_IN;
            }
            if imm {
                qual |= q::IO_IMM;
            }
            return Err(instruction_exit(ins, er::IO_INSTRUCTION, qual));
        }
        // Outside VMX there are no devices on this processor's bus: reads float high.
        if input {
            self.set_reg(ins.op0_register(), u64::MAX);
        }
        Ok(())
    }

    /// INS and OUTS: in VMX non-root operation they exit with the string and REP bits.
    pub(in crate::exec) fn string_io(
        &mut self,
        ins: &Instruction,
        input: bool,
        size: usize,
    ) -> Ex<()> {
        self.io_permitted()?;
        let port = self.reg(Register::DX) as u16;
        if self.io_exits(port, size) {
            let mut qual = (size as u64 - 1) | (u64::from(port) << q::IO_PORT_SHIFT) | q::IO_STRING;
            if input {
                qual |= q::IO_IN;
            }
            if ins.has_rep_prefix() {
                qual |= q::IO_REP;
            }
            let mut info = crate::fault::ExitInfo::new(er::IO_INSTRUCTION, qual);
            info.instruction_len = ins.len() as u32;
            let asize = crate::exec::string::string_address_size(ins);
            let off = if input {
                self.reg(Register::RDI)
            } else {
                self.reg(Register::RSI)
            };
            let seg = if input { Seg::Es } else { Self::mem_seg(ins) };
            info.guest_linear = self.linear(seg, Self::mask_addr(asize, off));
            return Err(Stop::VmExit(info));
        }
        Err(Exception::ud().into())
    }
}
