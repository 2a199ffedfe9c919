//! Debug registers: MOV to and from DR0–7 with the DR4/DR5 aliases,
//! general detection and MOV-DR exiting (SDM Vol. 3B §18.2).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::vmx::instruction_exit;
use iced_x86::{Instruction, Register};
use x86::cr::CR4_DE;
use x86::vmx::{exit_reason as er, proc};

impl SoftCpu {
    /// MOV to DR0–7 of `v`; CPL 0 has been checked.
    pub(super) fn mov_to_dr(&mut self, ins: &Instruction, r: Register, v: u64) -> Ex<()> {
        self.dr_alias_check(r)?;
        self.general_detect()?;
        let n = (r as usize - Register::DR0 as usize) & 7;
        if (n == 6 || n == 7 || n == 4 || n == 5) && v >> 32 != 0 {
            // The upper 32 bits of DR6 and DR7 are reserved (SDM Vol. 2A MOV DR).
            return Err(Exception::gp(0).into());
        }
        if self.vmx.proc(proc::MOV_DR_EXITING) {
            return Err(instruction_exit(
                ins,
                er::DR_ACCESS,
                (r as u64 - Register::DR0 as u64) & 7,
            ));
        }
        let n = (r as usize - Register::DR0 as usize) & 7;
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
        self.dr_alias_check(r)?;
        self.general_detect()?;
        if self.vmx.proc(proc::MOV_DR_EXITING) {
            let n = (r as u64 - Register::DR0 as u64) & 7;
            return Err(instruction_exit(ins, er::DR_ACCESS, n | 1 << 4));
        }
        let n = (r as usize - Register::DR0 as usize) & 7;
        let n = if n == 4 || n == 5 { n + 2 } else { n };
        self.set_reg(dst, self.s.dr[n]);
        Ok(())
    }

    /// DR4 and DR5 alias DR6 and DR7 only while CR4.DE is clear; with it set
    /// they are #UD (SDM Vol. 3B §18.2.2).
    fn dr_alias_check(&self, r: Register) -> Ex<()> {
        if matches!(r, Register::DR4 | Register::DR5) && self.s.cr4 & CR4_DE != 0 {
            return Err(Exception::ud().into());
        }
        Ok(())
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
