//! Debug registers: MOV to and from DR0–7 with the DR4/DR5 aliases,
//! general detection and MOV-DR exiting (SDM Vol. 3B §18.2). DR8–DR15
//! (REX.R = 1) do not exist: #UD.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::vmx::instruction_exit;
use iced_x86::{Instruction, Register};
use x86::cr::CR4_DE;
use x86::vmx::{exit_reason as er, proc};

impl SoftCpu {
    /// MOV to DR0–7 of `v`; CPL 0 has been checked.
    pub(super) fn mov_to_dr(&mut self, ins: &Instruction, r: Register, v: u64) -> Ex<()> {
        let n = self.dr_number(r)?;
        self.general_detect()?;
        if (n == 6 || n == 7 || n == 4 || n == 5) && v >> 32 != 0 {
            // The upper 32 bits of DR6 and DR7 are reserved (SDM Vol. 2A MOV DR).
            return Err(Exception::gp(0).into());
        }
        if self.vmx.proc(proc::MOV_DR_EXITING) {
            return Err(instruction_exit(ins, er::DR_ACCESS, n as u64));
        }
        let n = if n == 4 || n == 5 { n + 2 } else { n };
        self.s.dr[n] = match n {
            6 => (v & 0xE00F) | 0xFFFF_0FF0,
            7 => (v & 0xFFFF_2BFF) | 0x400,
            _ => v,
        };
        self.update_debug_state();
        Ok(())
    }

    /// MOV from DR0–7 into `dst`; CPL 0 has been checked.
    pub(super) fn mov_from_dr(&mut self, ins: &Instruction, r: Register, dst: Register) -> Ex<()> {
        let n = self.dr_number(r)?;
        self.general_detect()?;
        if self.vmx.proc(proc::MOV_DR_EXITING) {
            return Err(instruction_exit(ins, er::DR_ACCESS, n as u64 | 1 << 4));
        }
        let n = if n == 4 || n == 5 { n + 2 } else { n };
        self.set_reg(dst, self.s.dr[n]);
        Ok(())
    }

    /// The number of the debug register a MOV DR names, or #UD: DR8–DR15
    /// do not exist ("#UD if the REX.R bit is 1", SDM Vol. 2B MOV—Move
    /// to/from Debug Registers), and DR4 and DR5 alias DR6 and DR7 only
    /// while CR4.DE is clear; with it set they are #UD (SDM Vol. 3B
    /// §18.2.2). An invalid opcode has priority over a VM exit (SDM Vol. 3C
    /// §26.1.1), so this comes before MOV-DR exiting.
    fn dr_number(&self, r: Register) -> Ex<usize> {
        let n = r as usize - Register::DR0 as usize;
        if n > 7 || (matches!(n, 4 | 5) && self.s.cr4 & CR4_DE != 0) {
            return Err(Exception::ud().into());
        }
        Ok(n)
    }

    /// MOV DR with DR7.GD set is a #DB fault with DR6.BD (SDM Vol. 3B §18.2.4).
    fn general_detect(&mut self) -> Ex<()> {
        if self.s.dr[7] & crate::debug::DR7_GD != 0 {
            // DR6.BD is reported when the #DB is delivered (see `Event::debug`).
            return Err(Exception::plain(x86::exception::DB).into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::{CpuModel, SoftCpu};
    use crate::fault::Stop;
    use iced_x86::{Code, Instruction, OpKind, Register};

    /// A MOV DR as the executor sees it, whatever the decoder accepts.
    fn mov_dr(code: Code, op0: Register, op1: Register) -> Instruction {
        let mut ins = Instruction::default();
        ins.set_code(code);
        ins.set_op0_kind(OpKind::Register);
        ins.set_op0_register(op0);
        ins.set_op1_kind(OpKind::Register);
        ins.set_op1_register(op1);
        ins
    }

    fn is_ud(r: crate::fault::Ex<()>) -> bool {
        matches!(r, Err(Stop::Exception(e)) if e.vector == x86::exception::UD)
    }

    #[test]
    fn dr8_to_dr15_are_ud_and_never_reach_dr0_to_dr7() {
        let mut cpu = SoftCpu::new(1 << 20, CpuModel::default());
        cpu.s.gpr[0] = 0x3000;
        for n in 8..16 {
            let dr = Register::try_from(Register::DR0 as usize + n).unwrap();
            let to = mov_dr(Code::Mov_dr_r64, dr, Register::RAX);
            assert!(is_ud(cpu.mov_to_cr_dr(&to)), "MOV to DR{n}");
            let from = mov_dr(Code::Mov_r64_dr, Register::RBX, dr);
            assert!(is_ud(cpu.mov_from_cr_dr(&from)), "MOV from DR{n}");
        }
        assert!(cpu.s.dr[..4].iter().all(|&d| d == 0), "{:x?}", cpu.s.dr);
        // DR0 itself still loads.
        let to = mov_dr(Code::Mov_dr_r64, Register::DR0, Register::RAX);
        assert!(cpu.mov_to_cr_dr(&to).is_ok());
        assert_eq!(cpu.s.dr[0], 0x3000);
    }
}
