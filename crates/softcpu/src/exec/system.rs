//! System instructions: I/O, HLT, interrupt flag, CPUID, TSC, MSRs, control
//! and debug registers, descriptor tables, and the instructions that always
//! exit in VMX non-root operation (SDM Vol. 3C §26.1.2).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception, Stop};
use crate::state::Seg;
use crate::vmx::{instruction_exit, vmx_instruction_exit};
use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use x86::cr::*;
use x86::vmx::{exit_reason as er, proc, proc2, qualification as q};

impl SoftCpu {
    fn require_cpl0(&self) -> Ex<()> {
        if self.s.cpl() != 0 {
            return Err(Exception::gp(0).into());
        }
        Ok(())
    }

    /// I/O permission: CPL ≤ IOPL, else #GP(0) (the TSS I/O bitmap is not modelled).
    fn io_permitted(&self) -> Ex<()> {
        let iopl = ((self.s.rflags >> 12) & 3) as u8;
        if self.s.cr0 & CR0_PE != 0 && self.s.cpl() > iopl {
            return Err(Exception::gp(0).into());
        }
        Ok(())
    }

    /// Executes a system instruction.
    pub(super) fn system(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        match ins.mnemonic() {
            M::Hlt => {
                self.require_cpl0()?;
                if self.vmx.proc(proc::HLT_EXITING) {
                    return Err(instruction_exit(ins, er::HLT, 0));
                }
                self.halted = true;
                Ok(())
            }
            M::In | M::Out => self.port_io(ins),
            M::Cli | M::Sti => {
                let iopl = ((self.s.rflags >> 12) & 3) as u8;
                if self.s.cr0 & CR0_PE != 0 && self.s.cpl() > iopl {
                    return Err(Exception::gp(0).into());
                }
                if ins.mnemonic() == M::Cli {
                    self.s.rflags &= !x86::rflags::IF;
                } else {
                    if self.s.rflags & x86::rflags::IF == 0 {
                        self.next_blocking.sti = true;
                    }
                    self.s.rflags |= x86::rflags::IF;
                }
                Ok(())
            }
            M::Cpuid => {
                if self.vmx.non_root {
                    return Err(instruction_exit(ins, er::CPUID, 0));
                }
                let [a, b, c, d] = self.native_cpuid(self.s.gpr[0] as u32, self.s.gpr[1] as u32);
                self.s.gpr[0] = u64::from(a);
                self.s.gpr[3] = u64::from(b);
                self.s.gpr[1] = u64::from(c);
                self.s.gpr[2] = u64::from(d);
                Ok(())
            }
            M::Rdtsc | M::Rdtscp => {
                if self.s.cr4 & CR4_TSD != 0 && self.s.cpl() != 0 {
                    return Err(Exception::gp(0).into());
                }
                if ins.mnemonic() == M::Rdtsc && self.vmx.proc(proc::RDTSC_EXITING) {
                    return Err(instruction_exit(ins, er::RDTSC, 0));
                }
                if ins.mnemonic() == M::Rdtscp {
                    if self.vmx.non_root && !self.vmx.proc2(proc2::ENABLE_RDTSCP) {
                        return Err(Exception::ud().into());
                    }
                    if self.vmx.proc(proc::RDTSC_EXITING) {
                        return Err(instruction_exit(ins, er::RDTSCP, 0));
                    }
                    self.s.gpr[1] = self.s.msr.tsc_aux & 0xFFFF_FFFF;
                }
                let tsc = self.guest_tsc();
                self.s.gpr[0] = tsc & 0xFFFF_FFFF;
                self.s.gpr[2] = tsc >> 32;
                Ok(())
            }
            M::Rdmsr | M::Wrmsr => {
                self.require_cpl0()?;
                let msr = self.s.gpr[1] as u32;
                let write = ins.mnemonic() == M::Wrmsr;
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
            M::Lgdt | M::Lidt => {
                self.require_cpl0()?;
                if self.vmx.proc2(proc2::DESC_TABLE_EXITING) {
                    return Err(instruction_exit(ins, er::GDTR_IDTR, 0));
                }
                let ea = self.effective_address(ins);
                let seg = Self::mem_seg(ins);
                let limit = self.read_mem(seg, ea, 2)? as u32;
                let base_size = if self.s.mode64() { 8 } else { 4 };
                let mut base = self.read_mem(seg, ea.wrapping_add(2), base_size)?;
                // With a 16-bit operand size only a 24-bit base is loaded
                // (SDM Vol. 2A LGDT/LIDT: "IF OperandSize = 16 THEN
                // GDTR(Base) ← SRC[40:16] AND 00FFFFFFH"), as real-mode
                // code written for the 80286 expects.
                if matches!(
                    ins.code(),
                    iced_x86::Code::Lgdt_m1632_16 | iced_x86::Code::Lidt_m1632_16
                ) {
                    base &= 0x00FF_FFFF;
                }
                let t = if ins.mnemonic() == M::Lgdt {
                    &mut self.s.gdtr
                } else {
                    &mut self.s.idtr
                };
                t.base = base;
                t.limit = limit;
                Ok(())
            }
            M::Sgdt | M::Sidt => {
                let t = if ins.mnemonic() == M::Sgdt {
                    self.s.gdtr
                } else {
                    self.s.idtr
                };
                let ea = self.effective_address(ins);
                let seg = Self::mem_seg(ins);
                let base_size = if self.s.mode64() { 8 } else { 4 };
                self.write_mem(seg, ea, 2, u64::from(t.limit))?;
                self.write_mem(seg, ea.wrapping_add(2), base_size, t.base)
            }
            M::Ltr | M::Lldt => {
                self.require_cpl0()?;
                let sel = self.read_op(ins, 0, 2)? as u16;
                self.load_system_segment(sel, ins.mnemonic() == M::Ltr)
            }
            M::Str | M::Sldt => {
                let v = if ins.mnemonic() == M::Str {
                    self.s.tr.selector
                } else {
                    self.s.ldtr.selector
                };
                let size = if ins.op0_kind() == OpKind::Memory {
                    2
                } else {
                    self.op_size(ins, 0)
                };
                self.write_op(ins, 0, size, u64::from(v))
            }
            M::Invlpg => {
                self.require_cpl0()?;
                let ea = self.effective_address(ins);
                let la = self.linear(Self::mem_seg(ins), ea);
                if self.vmx.proc(proc::INVLPG_EXITING) {
                    return Err(instruction_exit(ins, er::INVLPG, la));
                }
                self.tlb.flush_page(la);
                Ok(())
            }
            M::Wbinvd | M::Invd => {
                self.require_cpl0()?;
                if ins.mnemonic() == M::Invd && self.vmx.non_root {
                    return Err(instruction_exit(ins, er::INVD, 0));
                }
                if ins.mnemonic() == M::Wbinvd && self.vmx.proc2(proc2::WBINVD_EXITING) {
                    return Err(instruction_exit(ins, er::WBINVD, 0));
                }
                Ok(())
            }
            M::Clts => {
                self.require_cpl0()?;
                if self.vmx.non_root
                    && self.vmx.ctl.cr0_mask & CR0_TS != 0
                    && self.vmx.ctl.cr0_shadow & CR0_TS != 0
                {
                    return Err(instruction_exit(ins, er::CR_ACCESS, 2 << 4));
                }
                self.s.cr0 &= !CR0_TS;
                Ok(())
            }
            M::Smsw => {
                let v = self.guest_view_cr0() & 0xFFFF;
                let size = if ins.op0_kind() == OpKind::Memory {
                    2
                } else {
                    self.op_size(ins, 0)
                };
                self.write_op(ins, 0, size, v)
            }
            M::Lmsw => self.lmsw(ins),
            M::Swapgs => {
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
            M::Lss | M::Lds | M::Les | M::Lfs | M::Lgs => {
                let seg = match ins.mnemonic() {
                    M::Lss => Seg::Ss,
                    M::Lds => Seg::Ds,
                    M::Les => Seg::Es,
                    M::Lfs => Seg::Fs,
                    _ => Seg::Gs,
                };
                let size = self.op_size(ins, 0);
                let ea = self.effective_address(ins);
                let mseg = Self::mem_seg(ins);
                let off = self.read_mem(mseg, ea, size)?;
                let sel = self.read_mem(mseg, ea.wrapping_add(size as u64), 2)? as u16;
                self.load_segment_checked(seg, sel)?;
                self.set_reg(ins.op0_register(), off);
                Ok(())
            }
            M::Vmcall => {
                if self.vmx.non_root {
                    return Err(instruction_exit(ins, er::VMCALL, 0));
                }
                Err(Exception::ud().into())
            }
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
            | M::Invvpid => {
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
            M::Xsetbv => {
                if self.vmx.non_root {
                    return Err(instruction_exit(ins, er::XSETBV, 0));
                }
                Err(Exception::ud().into())
            }
            M::Lar | M::Lsl | M::Verr | M::Verw => self.descriptor_query(ins),
            M::Syscall => self.syscall(ins),
            M::Sysret | M::Sysretq => self.sysret(ins),
            M::Wait => Ok(()),
            _ => Err(Exception::ud().into()),
        }
    }

    /// IN and OUT (SDM Vol. 2A IN, OUT); in VMX non-root operation an exit
    /// with the qualification of SDM Vol. 3C Table 28-5.
    fn port_io(&mut self, ins: &Instruction) -> Ex<()> {
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
    pub(super) fn string_io(&mut self, ins: &Instruction, input: bool, size: usize) -> Ex<()> {
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
            let asize = super::string::string_address_size(ins);
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
    fn lmsw(&mut self, ins: &Instruction) -> Ex<()> {
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
                let mut info = crate::fault::ExitInfo::new(
                    er::CR_ACCESS,
                    (3 << 4) | (u64::from(memory) << 6) | (src << 16),
                );
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
        let access = if read { 1 } else { 0 };
        instruction_exit(ins, er::CR_ACCESS, cr | (access << 4) | (gpr << 8))
    }

    /// MOV to CR0/2/3/4/8 or DR0–7.
    pub(crate) fn mov_to_cr_dr(&mut self, ins: &Instruction) -> Ex<()> {
        self.require_cpl0()?;
        let r = ins.op0_register();
        let v = self.reg(ins.op1_register());
        if r.is_dr() {
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
            return Ok(());
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
                self.s.cr8 = v;
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
            self.dr_alias_check(r)?;
            self.general_detect()?;
            if self.vmx.proc(proc::MOV_DR_EXITING) {
                let n = (r as u64 - Register::DR0 as u64) & 7;
                return Err(instruction_exit(ins, er::DR_ACCESS, n | 1 << 4));
            }
            let n = (r as usize - Register::DR0 as usize) & 7;
            let n = if n == 4 || n == 5 { n + 2 } else { n };
            self.set_reg(dst, self.s.dr[n]);
            return Ok(());
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
                self.s.cr8
            }
            _ => return Err(Exception::ud().into()),
        };
        self.set_reg(dst, v);
        Ok(())
    }

    /// LAR, LSL, VERR, VERW: ask about a descriptor without loading it; ZF
    /// reports success (SDM Vol. 2A LAR, LSL; Vol. 2B VERR/VERW).
    fn descriptor_query(&mut self, ins: &Instruction) -> Ex<()> {
        if self.s.cr0 & CR0_PE == 0 || self.s.rflags & x86::rflags::VM != 0 {
            return Err(Exception::ud().into());
        }
        let m = ins.mnemonic();
        let src = if m == Mnemonic::Verr || m == Mnemonic::Verw {
            0
        } else {
            1
        };
        let sel = self.read_op(ins, src, 2)? as u16;
        let zf = x86::rflags::ZF;
        let fail = |cpu: &mut Self| {
            cpu.s.rflags &= !zf;
            Ok(())
        };
        if sel & !3 == 0 {
            return fail(self);
        }
        // A selector outside the table is a failure, not a fault.
        let d = match self.read_descriptor(sel) {
            Ok(d) => d,
            Err(crate::fault::Stop::Exception(e)) if e.vector == x86::exception::GP => {
                return fail(self)
            }
            Err(other) => return Err(other),
        };
        let cpl = self.s.cpl();
        let rpl = (sel & 3) as u8;
        let ty = d.seg.ar & 0xF;
        let long = self.s.long_mode();
        let conforming_code = d.is_code() && ty & x86::segment::TYPE_EC != 0;
        let privileged_ok = conforming_code || (d.dpl() >= cpl && d.dpl() >= rpl);
        let ok = match m {
            Mnemonic::Lar | Mnemonic::Lsl => {
                let type_ok = d.seg.is_code_or_data()
                    || match (m, long) {
                        (Mnemonic::Lar, false) => matches!(ty, 1 | 2 | 3 | 4 | 5 | 9 | 11 | 12),
                        (Mnemonic::Lar, true) => matches!(ty, 2 | 9 | 11 | 12),
                        (_, false) => matches!(ty, 1 | 2 | 3 | 9 | 11),
                        (_, true) => matches!(ty, 2 | 9 | 11),
                    };
                type_ok && privileged_ok
            }
            Mnemonic::Verr => {
                d.seg.is_code_or_data()
                    && (!d.is_code() || ty & x86::segment::TYPE_RW != 0)
                    && privileged_ok
            }
            _ => {
                d.seg.is_code_or_data()
                    && !d.is_code()
                    && ty & x86::segment::TYPE_RW != 0
                    && privileged_ok
            }
        };
        if !ok {
            return fail(self);
        }
        match m {
            Mnemonic::Lar => {
                let size = self.op_size(ins, 0);
                let v = ((d.raw >> 32) & 0x00F0_FF00) & super::flags::mask(size);
                self.set_reg(ins.op0_register(), v);
            }
            Mnemonic::Lsl => {
                let size = self.op_size(ins, 0);
                let v = u64::from(d.seg.limit) & super::flags::mask(size);
                self.set_reg(ins.op0_register(), v);
            }
            _ => {}
        }
        self.s.rflags |= zf;
        Ok(())
    }

    /// SYSCALL in 64-bit mode (SDM Vol. 2B SYSCALL).
    fn syscall(&mut self, _ins: &Instruction) -> Ex<()> {
        if !self.s.mode64() || self.s.efer & EFER_SCE == 0 {
            return Err(Exception::ud().into());
        }
        let star = self.s.msr.star;
        let sel = ((star >> 32) & 0xFFFC) as u16;
        self.s.gpr[1] = self.next_rip;
        self.s.gpr[11] = self.s.rflags & !x86::rflags::RF;
        self.s.seg[Seg::Cs as usize] = crate::state::Segment {
            selector: sel,
            base: 0,
            limit: 0xFFFF_FFFF,
            ar: 0xA09B,
        };
        self.s.seg[Seg::Ss as usize] = crate::state::Segment {
            selector: sel.wrapping_add(8),
            base: 0,
            limit: 0xFFFF_FFFF,
            ar: 0xC093,
        };
        self.s.rflags =
            (self.s.rflags & !self.s.msr.fmask & !x86::rflags::RF) | x86::rflags::FIXED1;
        self.next_rip = self.s.msr.lstar;
        Ok(())
    }

    /// SYSRET to 64-bit (REX.W) or compatibility mode (SDM Vol. 2B SYSRET).
    fn sysret(&mut self, ins: &Instruction) -> Ex<()> {
        if !self.s.mode64() || self.s.efer & EFER_SCE == 0 {
            return Err(Exception::ud().into());
        }
        self.require_cpl0()?;
        let to64 = ins.mnemonic() == Mnemonic::Sysretq || ins.code() == iced_x86::Code::Sysretq;
        let rcx = self.s.gpr[1];
        if to64 {
            let top = (rcx as i64) >> 47;
            if top != 0 && top != -1 {
                return Err(Exception::gp(0).into());
            }
        }
        let base = ((self.s.msr.star >> 48) & 0xFFFF) as u16;
        let (cs_sel, cs_ar, rip) = if to64 {
            (base.wrapping_add(16) | 3, 0xA0FB, rcx)
        } else {
            (base | 3, 0xC0FB, rcx & 0xFFFF_FFFF)
        };
        self.s.seg[Seg::Cs as usize] = crate::state::Segment {
            selector: cs_sel,
            base: 0,
            limit: 0xFFFF_FFFF,
            ar: cs_ar,
        };
        // SS keeps a flat DPL-3 data cache (SDM: "SS.DPL = 3").
        let ss = &mut self.s.seg[Seg::Ss as usize];
        ss.selector = base.wrapping_add(8) | 3;
        ss.ar = 0xC0F3;
        ss.base = 0;
        ss.limit = 0xFFFF_FFFF;
        self.s.rflags = (self.s.gpr[11] & 0x3C_7FD7) | x86::rflags::FIXED1;
        self.next_rip = rip;
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

    /// LTR and LLDT (SDM Vol. 2A LTR, LLDT).
    fn load_system_segment(&mut self, sel: u16, tr: bool) -> Ex<()> {
        if sel & !3 == 0 {
            if tr {
                return Err(Exception::gp(0).into());
            }
            self.s.ldtr.selector = sel;
            self.s.ldtr.ar = x86::segment::AR_UNUSABLE;
            return Ok(());
        }
        if sel & 4 != 0 {
            return Err(Exception::gp(u32::from(sel & !3)).into());
        }
        let d = self.read_descriptor(sel)?;
        let ty = d.seg.ar & 0xF;
        let ok = !d.seg.is_code_or_data()
            && if tr {
                ty == 9 || ty == 1
            } else {
                ty == x86::segment::SYS_LDT
            };
        if !ok {
            return Err(Exception::gp(u32::from(sel & !3)).into());
        }
        if !d.present() {
            return Err(Exception::with_code(x86::exception::NP, u32::from(sel & !3)).into());
        }
        let mut seg = d.seg;
        if self.s.long_mode() {
            let hi = self.read_descriptor_high(&d)?;
            seg.base |= (hi & 0xFFFF_FFFF) << 32;
        }
        if tr {
            // Mark the TSS busy in the GDT.
            let byte = self.read_linear(d.addr + 5, 1, false)?;
            self.write_linear(d.addr + 5, 1, byte | 2, false)?;
            seg.ar |= 2;
            self.s.tr = seg;
        } else {
            self.s.ldtr = seg;
        }
        Ok(())
    }

    /// The TSC as the guest reads it (with the VMCS TSC offset when enabled).
    pub(crate) fn guest_tsc(&self) -> u64 {
        let mut t = self.tsc();
        if self.vmx.proc(proc::USE_TSC_OFFSETTING) {
            t = t.wrapping_add(self.vmx.ctl.tsc_offset);
        }
        t
    }
}
