//! IN, OUT, INS and OUTS: the I/O permission check and, in VMX non-root
//! operation, the I/O-instruction exit (SDM Vol. 3C Table 28-5).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception, Stop};
use crate::state::Seg;
use crate::vmx::instruction_exit;
use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use x86::cr::CR0_PE;
use x86::vmx::{exit_reason as er, qualification as q};

/// Offset of the I/O map base address field in a 32-bit or 64-bit TSS.
const IO_MAP_BASE: u64 = 0x66;
/// TR's type for a busy 32-bit or 64-bit TSS, the only kind with an I/O bitmap.
const BUSY_TSS: u32 = 0xB;

impl SoftCpu {
    /// CPL ≤ IOPL in protected mode, else #GP(0): CLI and STI (IN, OUT, INS
    /// and OUTS fall back on the TSS I/O bitmap, [`SoftCpu::check_io_permission`]).
    pub(super) fn io_permitted(&self) -> Ex<()> {
        let iopl = x86::rflags::iopl(self.s.rflags);
        if self.s.cr0 & CR0_PE != 0 && self.s.cpl() > iopl {
            return Err(Exception::gp(0).into());
        }
        Ok(())
    }

    /// The I/O permission check of IN, OUT, INS and OUTS (SDM Vol. 1
    /// §19.5.1, §19.5.2; §20.2.8.1 for virtual-8086 mode): allowed in
    /// real-address mode, and at CPL ≤ IOPL outside virtual-8086 mode;
    /// otherwise every bit of the TSS I/O permission bitmap for the `size`
    /// ports from `port` must be clear. The processor reads two bytes of the
    /// bitmap; a TSS without an I/O map base field (a limit below 0x67, or a
    /// 16-bit TSS), a bitmap word beyond the limit or a set bit is #GP(0).
    /// It comes before any VM exit (SDM Vol. 3C §26.1.1).
    fn check_io_permission(&mut self, port: u16, size: usize) -> Ex<()> {
        if self.s.cr0 & CR0_PE == 0 {
            return Ok(());
        }
        let v86 = self.s.rflags & x86::rflags::VM != 0;
        if !v86 && self.io_permitted().is_ok() {
            return Ok(());
        }
        let gp = || Err(Exception::gp(0).into());
        let limit = u64::from(self.s.tr.limit);
        if self.s.tr.ar & 0xF != BUSY_TSS || limit < IO_MAP_BASE + 1 {
            return gp();
        }
        let base = self.read_linear(self.tss_linear(IO_MAP_BASE), 2, false)?;
        let offset = base + u64::from(port >> 3);
        if offset + 1 > limit {
            return gp();
        }
        let bits = self.read_linear(self.tss_linear(offset), 2, false)?;
        if bits & ((1 << size) - 1) << (port & 7) != 0 {
            return gp();
        }
        Ok(())
    }

    /// IN and OUT (SDM Vol. 2A IN, OUT); in VMX non-root operation an exit
    /// with the qualification of SDM Vol. 3C Table 28-5.
    pub(super) fn port_io(&mut self, ins: &Instruction) -> Ex<()> {
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
        self.check_io_permission(port, size)?;
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
        let port = self.reg(Register::DX) as u16;
        self.check_io_permission(port, size)?;
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
