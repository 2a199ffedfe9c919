//! Descriptor tables: LGDT, LIDT, SGDT, SIDT, LTR, LLDT, STR, SLDT, and the
//! descriptor queries LAR, LSL, VERR and VERW.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::vmx::instruction_exit;
use iced_x86::{Instruction, Mnemonic, OpKind};
use x86::cr::CR0_PE;
use x86::vmx::{exit_reason as er, proc2};

impl SoftCpu {
    /// LGDT and LIDT (SDM Vol. 2A LGDT/LIDT); they exit with descriptor-table
    /// exiting.
    pub(super) fn lgdt_lidt(&mut self, ins: &Instruction) -> Ex<()> {
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
        // In 64-bit mode a non-canonical base is #GP(0) and the register
        // keeps its value, as on silicon (SDM Vol. 2A LGDT/LIDT, 64-bit
        // mode exceptions); VM entry would refuse such a base later
        // (SDM Vol. 3C §27.3.1.3).
        if self.s.mode64() && !x86::address::is_canonical(base) {
            return Err(Exception::gp(0).into());
        }
        let t = if ins.mnemonic() == Mnemonic::Lgdt {
            &mut self.s.gdtr
        } else {
            &mut self.s.idtr
        };
        t.base = base;
        t.limit = limit;
        Ok(())
    }

    /// SGDT and SIDT: store the limit and the base (4 bytes outside 64-bit mode).
    pub(super) fn sgdt_sidt(&mut self, ins: &Instruction) -> Ex<()> {
        let t = if ins.mnemonic() == Mnemonic::Sgdt {
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

    /// LTR and LLDT from a register or memory selector.
    pub(super) fn ltr_lldt(&mut self, ins: &Instruction) -> Ex<()> {
        self.require_cpl0()?;
        let sel = self.read_op(ins, 0, 2)? as u16;
        self.load_system_segment(sel, ins.mnemonic() == Mnemonic::Ltr)
    }

    /// STR and SLDT: a register destination takes the operand size, memory 16 bits.
    pub(super) fn str_sldt(&mut self, ins: &Instruction) -> Ex<()> {
        let v = if ins.mnemonic() == Mnemonic::Str {
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
            let la = self.table_linear(d.addr.wrapping_add(5));
            let byte = self.read_linear(la, 1, false)?;
            self.write_linear(la, 1, byte | 2, false)?;
            seg.ar |= 2;
            self.s.tr = seg;
        } else {
            self.s.ldtr = seg;
        }
        Ok(())
    }

    /// LAR, LSL, VERR, VERW: ask about a descriptor without loading it; ZF
    /// reports success (SDM Vol. 2A LAR, LSL; Vol. 2B VERR/VERW).
    pub(super) fn descriptor_query(&mut self, ins: &Instruction) -> Ex<()> {
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
                let v = ((d.raw >> 32) & 0x00F0_FF00) & crate::exec::flags::mask(size);
                self.set_reg(ins.op0_register(), v);
            }
            Mnemonic::Lsl => {
                let size = self.op_size(ins, 0);
                let v = u64::from(d.seg.limit) & crate::exec::flags::mask(size);
                self.set_reg(ins.op0_register(), v);
            }
            _ => {}
        }
        self.s.rflags |= zf;
        Ok(())
    }
}
