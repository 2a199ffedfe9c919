//! Control registers: MOV to and from CR0/2/3/4/8, CLTS, SMSW and LMSW,
//! with the guest/host masks, read shadows and CR-access exits of VMX
//! non-root operation (SDM Vol. 3C §26.1.3, §26.3).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception, Stop};
use crate::vmx::instruction_exit;
use iced_x86::{Instruction, OpKind, Register};
use x86::cr::*;
use x86::vmx::{exit_reason as er, proc, qualification as q};

impl SoftCpu {
    /// CLTS clears CR0.TS; it exits when the host owns TS and the shadow has it set.
    pub(super) fn clts(&mut self, ins: &Instruction) -> Ex<()> {
        self.require_cpl0()?;
        if self.vmx.non_root
            && self.vmx.ctl.cr0_mask & CR0_TS != 0
            && self.vmx.ctl.cr0_shadow & CR0_TS != 0
        {
            return Err(instruction_exit(
                ins,
                er::CR_ACCESS,
                q::cr_access(0, q::CR_CLTS, 0),
            ));
        }
        self.s.cr0 &= !CR0_TS;
        Ok(())
    }

    /// SMSW: the low 16 bits of CR0 as the guest sees it.
    pub(super) fn smsw(&mut self, ins: &Instruction) -> Ex<()> {
        let v = self.guest_view_cr0() & 0xFFFF;
        let size = if ins.op0_kind() == OpKind::Memory {
            2
        } else {
            self.op_size(ins, 0)
        };
        self.write_op(ins, 0, size, v)
    }

    /// CR0 as the guest reads it: host-owned bits come from the read shadow (SDM Vol. 3C §26.3).
    fn guest_view_cr0(&self) -> u64 {
        if self.vmx.non_root {
            let m = self.vmx.ctl.cr0_mask;
            (self.s.cr0 & !m) | (self.vmx.ctl.cr0_shadow & m)
        } else {
            self.s.cr0
        }
    }

    fn guest_view_cr4(&self) -> u64 {
        if self.vmx.non_root {
            let m = self.vmx.ctl.cr4_mask;
            (self.s.cr4 & !m) | (self.vmx.ctl.cr4_shadow & m)
        } else {
            self.s.cr4
        }
    }

    /// Writes CR0 with its consistency checks and the long-mode activation rule.
    fn write_cr0(&mut self, ins: &Instruction, v: u64) -> Ex<()> {
        if self.vmx.non_root {
            let m = self.vmx.ctl.cr0_mask;
            if (v ^ self.vmx.ctl.cr0_shadow) & m != 0 {
                return Err(self.cr_exit(ins, 0, false));
            }
            // Bits fixed in VMX operation (IA32_VMX_CR0_FIXED0; PE and PG
            // not for an unrestricted guest) cannot be cleared where the
            // guest owns them: #GP (SDM Vol. 3C §24.8, §26.3).
            let mut fixed = crate::vmx::caps::CR0_FIXED0;
            if self.vmx.proc2(x86::vmx::proc2::UNRESTRICTED_GUEST) {
                fixed &= !(CR0_PE | CR0_PG);
            }
            if v & !m & fixed != fixed & !m {
                return Err(Exception::gp(0).into());
            }
        }
        if v >> 32 != 0
            || (v & CR0_PG != 0 && v & CR0_PE == 0)
            || (v & CR0_NW != 0 && v & CR0_CD == 0)
        {
            return Err(Exception::gp(0).into());
        }
        let old = self.s.cr0;
        let enabling_paging = v & CR0_PG != 0 && old & CR0_PG == 0;
        if enabling_paging && self.s.efer & EFER_LME != 0 {
            if self.s.cr4 & CR4_PAE == 0 {
                return Err(Exception::gp(0).into());
            }
            self.s.efer |= EFER_LMA;
        }
        if v & CR0_PG == 0 && old & CR0_PG != 0 {
            if self.s.mode64() {
                return Err(Exception::gp(0).into());
            }
            self.s.efer &= !EFER_LMA;
        }
        // Host-owned bits keep their value (SDM Vol. 3C §26.3, MOV to CR0).
        let v = if self.vmx.non_root {
            let m = self.vmx.ctl.cr0_mask;
            (v & !m) | (old & m)
        } else {
            v
        };
        self.s.cr0 = v | CR0_ET;
        if (old ^ v) & (CR0_PG | CR0_WP | CR0_PE) != 0 {
            self.tlb.flush();
        }
        Ok(())
    }

    /// LMSW: loads CR0[3:0] from the source, except that it can set PE but
    /// never clear it (SDM Vol. 2A LMSW). It is how real-mode code written
    /// for the 80286 enters protected mode.
    ///
    /// In VMX non-root operation only the low four bits of the CR0
    /// guest/host mask matter: LMSW exits when it would set PE while the
    /// mask owns PE and the read shadow has it clear, or write any of bits
    /// 3:1 the mask owns with a value other than the shadow's (SDM Vol. 3C
    /// §26.1.3); the exit qualification has access type 3, the operand type
    /// (bit 6) and the source data in bits 31:16 (Table 28-3), and a memory
    /// operand's guest-linear address. Without an exit, bits the mask owns
    /// keep their value (§26.3).
    pub(super) fn lmsw(&mut self, ins: &Instruction) -> Ex<()> {
        self.require_cpl0()?;
        let src = self.read_op(ins, 0, 2)? & 0xFFFF;
        let mut owned = 0;
        if self.vmx.non_root {
            let m = self.vmx.ctl.cr0_mask & 0xF;
            let shadow = self.vmx.ctl.cr0_shadow;
            let sets_owned_pe = m & src & CR0_PE != 0 && shadow & CR0_PE == 0;
            let changes_owned = (src ^ shadow) & m & 0xE != 0;
            if sets_owned_pe || changes_owned {
                let memory = ins.op0_kind() == OpKind::Memory;
                let mut info =
                    crate::fault::ExitInfo::new(er::CR_ACCESS, q::cr_lmsw(src as u16, memory));
                info.instruction_len = ins.len() as u32;
                if memory {
                    let ea = self.effective_address(ins);
                    info.guest_linear = self.linear(Self::mem_seg(ins), ea);
                }
                return Err(Stop::VmExit(info));
            }
            owned = self.vmx.ctl.cr0_mask;
        }
        let old = self.s.cr0;
        let loaded = (old & !0xF) | (src & 0xF) | (old & CR0_PE);
        self.s.cr0 = ((loaded & !owned) | (old & owned)) | CR0_ET;
        if (old ^ self.s.cr0) & CR0_PE != 0 {
            self.tlb.flush();
        }
        Ok(())
    }

    fn cr_exit(&self, ins: &Instruction, cr: u64, read: bool) -> Stop {
        // Exit qualification for control-register accesses (SDM Vol. 3C Table 28-3).
        let gpr = match ins.op_kind(if read { 0 } else { 1 }) {
            OpKind::Register => {
                let r = ins.op_register(if read { 0 } else { 1 });
                if r.is_gpr() {
                    (r.full_register() as u64).wrapping_sub(Register::RAX as u64) & 15
                } else {
                    0
                }
            }
            _ => 0,
        };
        let access = if read { q::CR_MOV_FROM } else { q::CR_MOV_TO };
        instruction_exit(ins, er::CR_ACCESS, q::cr_access(cr, access, gpr))
    }

    /// MOV to CR0/2/3/4/8 or DR0–7.
    pub(crate) fn mov_to_cr_dr(&mut self, ins: &Instruction) -> Ex<()> {
        self.require_cpl0()?;
        let r = ins.op0_register();
        let v = self.reg(ins.op1_register());
        if r.is_dr() {
            return self.mov_to_dr(ins, r, v);
        }
        match r {
            Register::CR0 => self.write_cr0(ins, v),
            Register::CR2 => {
                self.s.cr2 = v;
                Ok(())
            }
            Register::CR3 => {
                if self.vmx.proc(proc::CR3_LOAD_EXITING) {
                    return Err(self.cr_exit(ins, 3, false));
                }
                self.s.cr3 = v;
                self.tlb.flush();
                Ok(())
            }
            Register::CR4 => {
                if self.vmx.non_root && (v ^ self.vmx.ctl.cr4_shadow) & self.vmx.ctl.cr4_mask != 0 {
                    return Err(self.cr_exit(ins, 4, false));
                }
                let allowed = CR4_VME
                    | CR4_PVI
                    | CR4_TSD
                    | CR4_DE
                    | CR4_PSE
                    | CR4_PAE
                    | CR4_MCE
                    | CR4_PGE
                    | CR4_PCE
                    | CR4_OSFXSR
                    | CR4_OSXMMEXCPT
                    | CR4_VMXE;
                if v & !allowed != 0 || (self.s.long_mode() && v & CR4_PAE == 0) {
                    return Err(Exception::gp(0).into());
                }
                let v = if self.vmx.non_root {
                    let m = self.vmx.ctl.cr4_mask;
                    (v & !m) | (self.s.cr4 & m)
                } else {
                    v
                };
                self.s.cr4 = v;
                self.tlb.flush();
                Ok(())
            }
            Register::CR8 => {
                if self.vmx.proc(proc::CR8_LOAD_EXITING) {
                    return Err(self.cr_exit(ins, 8, false));
                }
                if v >> 4 != 0 {
                    return Err(Exception::gp(0).into());
                }
                if self.tpr_shadowed() {
                    self.write_shadow_cr8(v);
                } else {
                    self.s.cr8 = v;
                }
                Ok(())
            }
            _ => Err(Exception::ud().into()),
        }
    }

    /// MOV from CR0/2/3/4/8 or DR0–7.
    pub(crate) fn mov_from_cr_dr(&mut self, ins: &Instruction) -> Ex<()> {
        self.require_cpl0()?;
        let r = ins.op1_register();
        let dst = ins.op0_register();
        if r.is_dr() {
            return self.mov_from_dr(ins, r, dst);
        }
        let v = match r {
            Register::CR0 => self.guest_view_cr0(),
            Register::CR2 => self.s.cr2,
            Register::CR3 => {
                if self.vmx.proc(proc::CR3_STORE_EXITING) {
                    return Err(self.cr_exit(ins, 3, true));
                }
                self.s.cr3
            }
            Register::CR4 => self.guest_view_cr4(),
            Register::CR8 => {
                if self.vmx.proc(proc::CR8_STORE_EXITING) {
                    return Err(self.cr_exit(ins, 8, true));
                }
                if self.tpr_shadowed() {
                    self.shadow_cr8()
                } else {
                    self.s.cr8
                }
            }
            _ => return Err(Exception::ud().into()),
        };
        self.set_reg(dst, v);
        Ok(())
    }
}
