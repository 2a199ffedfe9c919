//! Control transfer: JMP, CALL, RET (near and far), LOOP/JCXZ, INT n, IRET.

use crate::cpu::SoftCpu;
use crate::event::{Event, EventKind};
use crate::fault::{Ex, Exception};
use crate::state::Seg;
use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use x86::address::is_canonical;

impl SoftCpu {
    /// Sets the next RIP after checking it: non-canonical in 64-bit mode is #GP(0)
    /// (SDM Vol. 2A JMP, "If target offset ... is not in canonical form"),
    /// beyond the CS limit elsewhere.
    ///
    /// Outside 64-bit mode `target` is already of the branch's operand size
    /// (the decoder sizes relative targets, a register or memory operand has
    /// that size, RET pops it): a 16-bit branch gives IP, one with 0x66 in
    /// 16-bit code gives a full EIP, which is checked, not truncated (SDM
    /// JMP/CALL/RET: "IF OperandSize = 32 ... EIP ← tempEIP").
    #[inline]
    pub(crate) fn jump_near(&mut self, target: u64) -> Ex<()> {
        let target = if self.s.mode64() {
            if !is_canonical(target) {
                return Err(Exception::gp(0).into());
            }
            target
        } else {
            let target = target & 0xFFFF_FFFF;
            if target > u64::from(self.s.seg[Seg::Cs as usize].limit) {
                return Err(Exception::gp(0).into());
            }
            target
        };
        self.next_rip = target;
        Ok(())
    }

    /// Operand size of a near branch (stack slot size for CALL/RET).
    fn branch_size(&self, ins: &Instruction) -> usize {
        match ins.op_count() {
            0 => match ins.stack_pointer_increment().unsigned_abs() as usize {
                0 => 8,
                n => n,
            },
            _ => match ins.op0_kind() {
                OpKind::NearBranch16 => 2,
                OpKind::NearBranch32 => 4,
                OpKind::NearBranch64 => 8,
                OpKind::Register => ins.op0_register().size(),
                OpKind::Memory => ins.memory_size().size(),
                _ => (ins.stack_pointer_increment().unsigned_abs() as usize).max(2),
            },
        }
    }

    /// JMP, CALL, RET, RETF (near and far forms).
    pub(super) fn branch(&mut self, ins: &Instruction) -> Ex<()> {
        let far = super::is_far_branch(ins);
        match ins.mnemonic() {
            Mnemonic::Jmp if far => {
                let (sel, off) = self.far_operand(ins)?;
                if let Some(gate) = self.call_gate(sel)? {
                    return self.through_call_gate(&gate, None);
                }
                self.far_jump(sel, off)
            }
            Mnemonic::Call if far => {
                let (sel, off) = self.far_operand(ins)?;
                let size = match ins.op0_kind() {
                    OpKind::FarBranch16 => 2,
                    OpKind::FarBranch32 => 4,
                    _ => ins.memory_size().size() - 2,
                };
                if let Some(gate) = self.call_gate(sel)? {
                    return self.through_call_gate(&gate, Some(size));
                }
                let saved = self.s.clone();
                let cs = u64::from(self.s.seg[Seg::Cs as usize].selector);
                let ret = self.next_rip;
                let r = self
                    .push(size, cs)
                    .and_then(|_| self.push(size, ret))
                    .and_then(|_| self.far_jump(sel, off));
                if r.is_err() {
                    self.s = saved;
                }
                r
            }
            Mnemonic::Jmp => {
                let target = self.branch_target(ins)?;
                self.jump_near(target)
            }
            Mnemonic::Call => {
                let size = self.branch_size(ins);
                let target = self.branch_target(ins)?;
                let saved = self.s.gpr[4];
                let ret = self.next_rip;
                self.push(size, ret)?;
                if let Err(e) = self.jump_near(target) {
                    self.s.gpr[4] = saved;
                    return Err(e);
                }
                Ok(())
            }
            Mnemonic::Ret => {
                let size = match ins.stack_pointer_increment() as i64 {
                    n if ins.op_count() == 0 => n as usize,
                    n => (n - ins.immediate16() as i64) as usize,
                };
                let saved = self.s.gpr[4];
                let target = self.pop(size)?;
                if let Err(e) = self.jump_near(target) {
                    self.s.gpr[4] = saved;
                    return Err(e);
                }
                if ins.op_count() > 0 {
                    let ss = self.s.stack_size();
                    let sp = self.s.gpr[4].wrapping_add(u64::from(ins.immediate16()));
                    self.set_rsp(ss, sp);
                }
                Ok(())
            }
            Mnemonic::Retf => {
                let imm = if ins.op_count() > 0 {
                    u64::from(ins.immediate16())
                } else {
                    0
                };
                let size = ((ins.stack_pointer_increment() as i64 - imm as i64) / 2) as usize;
                let saved = self.s.clone();
                let r = (|| {
                    let off = self.pop(size)?;
                    let sel = self.pop(size)? as u16;
                    let rpl = sel & 3;
                    // In real-address mode a selector is a paragraph number:
                    // its low bits are no RPL, and RETF never changes stacks
                    // (SDM Vol. 2B RET, real-address mode).
                    let outer =
                        !self.s.real_mode() && u8::try_from(rpl).unwrap_or(3) > self.s.cpl();
                    if outer {
                        // Return to an outer privilege level: pop SS:RSP too.
                        let ss = self.s.stack_size();
                        let sp = self.s.gpr[4].wrapping_add(imm);
                        self.set_rsp(ss, sp);
                        let new_sp = self.pop(size)?;
                        let new_ss = self.pop(size)? as u16;
                        self.far_jump_privileged(sel, off, Some((new_ss, new_sp)))?;
                        self.set_rsp(8, new_sp);
                    } else {
                        self.far_jump(sel, off)?;
                        let ss = self.s.stack_size();
                        let sp = self.s.gpr[4].wrapping_add(imm);
                        self.set_rsp(ss, sp);
                    }
                    Ok(())
                })();
                if r.is_err() {
                    self.s = saved;
                }
                r
            }
            _ => Err(Exception::ud().into()),
        }
    }

    /// Target of a near JMP/CALL: relative, register or memory.
    fn branch_target(&mut self, ins: &Instruction) -> Ex<u64> {
        match ins.op0_kind() {
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                Ok(ins.near_branch_target())
            }
            OpKind::Register => Ok(self.reg(ins.op0_register())),
            OpKind::Memory => {
                let size = ins.memory_size().size();
                self.read_op(ins, 0, size)
            }
            _ => Err(Exception::ud().into()),
        }
    }

    /// Selector and offset of a far JMP/CALL operand.
    fn far_operand(&mut self, ins: &Instruction) -> Ex<(u16, u64)> {
        match ins.op0_kind() {
            OpKind::FarBranch16 => Ok((ins.far_branch_selector(), u64::from(ins.far_branch16()))),
            OpKind::FarBranch32 => Ok((ins.far_branch_selector(), u64::from(ins.far_branch32()))),
            _ => {
                let ea = self.effective_address(ins);
                let seg = Self::mem_seg(ins);
                let osize = ins.memory_size().size() - 2;
                let off = self.read_mem(seg, ea, osize)?;
                let sel = self.read_mem(seg, ea.wrapping_add(osize as u64), 2)? as u16;
                Ok((sel, off))
            }
        }
    }

    /// LOOP, LOOPE, LOOPNE, JCXZ, JECXZ, JRCXZ.
    pub(super) fn loop_op(&mut self, ins: &Instruction) -> Ex<()> {
        // The counter is CX, ECX or RCX by address size (SDM Vol. 2A LOOPcc, JcXZ).
        use iced_x86::Code as C;
        let creg = match ins.code() {
            C::Jcxz_rel8_16 | C::Jcxz_rel8_32 => Register::CX,
            C::Loop_rel8_16_CX | C::Loop_rel8_32_CX => Register::CX,
            C::Loope_rel8_16_CX | C::Loope_rel8_32_CX => Register::CX,
            C::Loopne_rel8_16_CX | C::Loopne_rel8_32_CX => Register::CX,
            C::Jrcxz_rel8_16 | C::Jrcxz_rel8_64 => Register::RCX,
            C::Loop_rel8_16_RCX | C::Loop_rel8_64_RCX => Register::RCX,
            C::Loope_rel8_16_RCX | C::Loope_rel8_64_RCX => Register::RCX,
            C::Loopne_rel8_16_RCX | C::Loopne_rel8_64_RCX => Register::RCX,
            _ => Register::ECX,
        };
        let taken = match ins.mnemonic() {
            Mnemonic::Jcxz | Mnemonic::Jecxz | Mnemonic::Jrcxz => self.reg(creg) == 0,
            m => {
                let c = self.reg(creg).wrapping_sub(1);
                self.set_reg(creg, c);
                let c = c & super::flags::mask(creg.size());
                let zf = self.flag(x86::rflags::ZF);
                c != 0
                    && match m {
                        Mnemonic::Loope => zf,
                        Mnemonic::Loopne => !zf,
                        _ => true,
                    }
            }
        };
        if taken {
            self.jump_near(ins.near_branch_target())?;
        }
        Ok(())
    }

    /// INT n, INT3, INTO, INT1, IRET. The VMX interruption types differ
    /// (SDM Vol. 3C §25.8.3, §28.2.2): INT n (also CD 03) is a software
    /// interrupt, INT3 (CC) and INTO software exceptions, INT1 (F1) a
    /// privileged software exception.
    pub(super) fn soft_int(&mut self, ins: &Instruction) -> Ex<()> {
        match ins.mnemonic() {
            Mnemonic::Int => self.raise_instruction_event(Event::new(
                ins.immediate8(),
                EventKind::SoftwareInterrupt,
                ins.len() as u32,
            )),
            Mnemonic::Int3 => self.raise_instruction_event(Event::new(
                x86::exception::BP,
                EventKind::SoftwareException,
                ins.len() as u32,
            )),
            Mnemonic::Int1 => self.raise_instruction_event(Event::new(
                x86::exception::DB,
                EventKind::PrivilegedSoftwareException,
                ins.len() as u32,
            )),
            Mnemonic::Into => {
                if self.flag(x86::rflags::OF) {
                    self.raise_instruction_event(Event::new(
                        x86::exception::OF,
                        EventKind::SoftwareException,
                        ins.len() as u32,
                    ))
                } else {
                    Ok(())
                }
            }
            _ => {
                let size = match ins.mnemonic() {
                    Mnemonic::Iret => 2,
                    Mnemonic::Iretd => 4,
                    _ => 8,
                };
                self.iret(size)
            }
        }
    }
}
