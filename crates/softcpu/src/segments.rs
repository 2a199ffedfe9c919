//! Segment-register loads and descriptor checks (SDM Vol. 3A §3.4, §5.5–§5.8,
//! Vol. 2B MOV/POP segment, JMP/CALL/RET far).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::state::{Seg, Segment};
use x86::exception::{GP, NP, SS as SS_VEC, TS};
use x86::segment::{
    ar_from_descriptor_high, descriptor_base, descriptor_limit, AR_UNUSABLE, TYPE_ACCESSED,
    TYPE_CODE, TYPE_EC, TYPE_RW,
};

/// Access rights of a data segment after reset (present, read/write,
/// accessed, 16-bit, byte granular; SDM Vol. 3A Table 9-1), in the VMCS layout.
const REAL_MODE_DATA_AR: u32 = x86::segment::AR_DATA;

/// A raw descriptor with its decoded cache form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Descriptor {
    pub raw: u64,
    pub seg: Segment,
    /// Linear address of the descriptor (to set the accessed bit).
    pub addr: u64,
}

impl Descriptor {
    pub(crate) fn dpl(&self) -> u8 {
        self.seg.dpl()
    }
    pub(crate) fn is_code(&self) -> bool {
        self.seg.is_code_or_data() && self.seg.ar & TYPE_CODE != 0
    }
    pub(crate) fn present(&self) -> bool {
        self.raw & (1 << 47) != 0
    }
}

impl SoftCpu {
    /// Reads the descriptor a selector names from the GDT or LDT; an index
    /// beyond the table limit is #GP(selector).
    pub(crate) fn read_descriptor(&mut self, sel: u16) -> Ex<Descriptor> {
        let err = Exception::gp(u32::from(sel & !3));
        let (base, limit) = if sel & 4 != 0 {
            if !self.s.ldtr.usable() {
                return Err(err.into());
            }
            (self.s.ldtr.base, self.s.ldtr.limit)
        } else {
            (self.s.gdtr.base, self.s.gdtr.limit)
        };
        let off = u64::from(sel & !7);
        if off + 7 > u64::from(limit) {
            return Err(err.into());
        }
        let addr = self.table_linear(base.wrapping_add(off));
        let raw = self.read_linear(addr, 8, false)?;
        let seg = Segment {
            selector: sel,
            base: descriptor_base(raw),
            limit: descriptor_limit(raw),
            ar: ar_from_descriptor_high((raw >> 32) as u32),
        };
        Ok(Descriptor { raw, seg, addr })
    }

    /// [`Self::read_descriptor`] for a transfer that reports a selector
    /// beyond the table's limit with its own exception `err` (#GP or #TS
    /// with the EXT bit of an event delivery). A page fault or a VM exit
    /// (an EPT violation) on the table read stays what it is.
    pub(crate) fn read_descriptor_or(&mut self, sel: u16, err: Exception) -> Ex<Descriptor> {
        self.read_descriptor(sel).map_err(|stop| match stop {
            crate::fault::Stop::Exception(_) => crate::fault::Stop::Exception(err),
            other => other,
        })
    }

    /// Reads the upper half of a 16-byte system descriptor (64-bit TSS, LDT, gates).
    pub(crate) fn read_descriptor_high(&mut self, d: &Descriptor) -> Ex<u64> {
        let la = self.table_linear(d.addr.wrapping_add(8));
        self.read_linear(la, 8, false)
    }

    /// A linear address inside a descriptor table, wrapped as the processor
    /// wraps it: at 64 bits in IA-32e mode, at 32 bits outside it (a table
    /// base near the top of the address space wraps to 0, SDM Vol. 3A §3.5.1).
    pub(crate) fn table_linear(&self, la: u64) -> u64 {
        if self.s.long_mode() {
            la
        } else {
            la & 0xFFFF_FFFF
        }
    }

    fn set_accessed(&mut self, d: &Descriptor) -> Ex<()> {
        if d.seg.ar & TYPE_ACCESSED == 0 {
            let la = self.table_linear(d.addr.wrapping_add(5));
            let byte = self.read_linear(la, 1, false)?;
            self.write_linear(la, 1, byte | 1, false)?;
        }
        Ok(())
    }

    /// MOV/POP to DS, ES, FS, GS or SS with the protected-mode checks.
    pub(crate) fn load_segment_checked(&mut self, seg: Seg, sel: u16) -> Ex<()> {
        if seg == Seg::Cs {
            return Err(Exception::ud().into());
        }
        if self.s.cr0 & x86::cr::CR0_PE == 0 || self.s.rflags & x86::rflags::VM != 0 {
            // Real and virtual-8086 mode: base = selector * 16; the limit and
            // attributes in the hidden part stay as they were (SDM Vol. 3A
            // §20.1.1, §9.9.2: a program sets them in protected mode before
            // it clears PE). A register that protected mode left null
            // (unusable) becomes usable again, with the attributes it has
            // after reset: a 64 KiB read/write data segment (§9.1.1, Table 9-1).
            let s = &mut self.s.seg[seg as usize];
            s.selector = sel;
            s.base = u64::from(sel) << 4;
            if s.ar & AR_UNUSABLE != 0 || s.ar & x86::segment::AR_P == 0 {
                s.ar = REAL_MODE_DATA_AR;
                s.limit = 0xFFFF;
            }
            if seg == Seg::Ss {
                self.next_blocking.mov_ss = true;
            }
            return Ok(());
        }
        let cpl = self.s.cpl();
        let rpl = (sel & 3) as u8;
        if sel & !3 == 0 {
            if seg == Seg::Ss && !(self.s.mode64() && cpl != 3 && rpl == cpl) {
                return Err(Exception::gp(0).into());
            }
            let s = &mut self.s.seg[seg as usize];
            s.selector = sel;
            s.ar = AR_UNUSABLE;
            if seg == Seg::Ss {
                s.ar = AR_UNUSABLE | x86::segment::ar_dpl(cpl);
                self.next_blocking.mov_ss = true;
            }
            return Ok(());
        }
        let d = self.read_descriptor(sel)?;
        let err = u32::from(sel & !3);
        let ty = d.seg.ar & 0xF;
        if seg == Seg::Ss {
            let writable_data = d.seg.is_code_or_data() && ty & TYPE_CODE == 0 && ty & TYPE_RW != 0;
            if rpl != cpl || d.dpl() != cpl || !writable_data {
                return Err(Exception::gp(err).into());
            }
            if !d.present() {
                return Err(Exception::with_code(SS_VEC, err).into());
            }
        } else {
            let readable = d.seg.is_code_or_data() && (ty & TYPE_CODE == 0 || ty & TYPE_RW != 0);
            let conforming_code = ty & TYPE_CODE != 0 && ty & TYPE_EC != 0;
            if !readable || (!conforming_code && (rpl > d.dpl() || cpl > d.dpl())) {
                return Err(Exception::gp(err).into());
            }
            if !d.present() {
                return Err(Exception::with_code(NP, err).into());
            }
        }
        self.set_accessed(&d)?;
        let mut cache = d.seg;
        cache.ar |= TYPE_ACCESSED;
        self.s.seg[seg as usize] = cache;
        if seg == Seg::Ss {
            self.next_blocking.mov_ss = true;
        }
        Ok(())
    }

    /// Loads CS for a far JMP/CALL/RET at the current privilege level.
    pub(crate) fn far_jump(&mut self, sel: u16, off: u64) -> Ex<()> {
        self.far_jump_privileged(sel, off, None)
    }

    /// Loads CS:RIP for a far transfer; `outer_stack` carries SS:RSP for a
    /// return to an outer privilege level (RETF/IRET), where the new CPL is the selector's RPL.
    pub(crate) fn far_jump_privileged(
        &mut self,
        sel: u16,
        off: u64,
        outer_stack: Option<(u16, u64)>,
    ) -> Ex<()> {
        if self.s.cr0 & x86::cr::CR0_PE == 0 || self.s.rflags & x86::rflags::VM != 0 {
            // Real-address mode (SDM Vol. 2A JMP, CALL, Vol. 2B RET, IRET:
            // the real-address-mode branches): CS = selector, base =
            // selector * 16, no descriptor, no privilege check. `off` is
            // already of the operand size (a 16-bit one is IP); an EIP beyond
            // the CS limit is #GP(0) and nothing is loaded.
            let cs = &mut self.s.seg[Seg::Cs as usize];
            if off > u64::from(cs.limit) {
                return Err(Exception::gp(0).into());
            }
            cs.selector = sel;
            cs.base = u64::from(sel) << 4;
            self.next_rip = off;
            return Ok(());
        }
        if sel & !3 == 0 {
            return Err(Exception::gp(0).into());
        }
        let d = self.read_descriptor(sel)?;
        let err = u32::from(sel & !3);
        let cpl = self.s.cpl();
        let rpl = (sel & 3) as u8;
        if !d.is_code() {
            // Call gates and task switches are not modelled: #GP as for a bad descriptor.
            return Err(Exception::gp(err).into());
        }
        let conforming = d.seg.ar & TYPE_EC != 0;
        let new_cpl = if outer_stack.is_some() { rpl } else { cpl };
        let ok = if conforming {
            d.dpl() <= new_cpl
        } else {
            d.dpl() == new_cpl && rpl <= new_cpl.max(cpl)
        };
        if !ok {
            return Err(Exception::gp(err).into());
        }
        if !d.present() {
            return Err(Exception::with_code(NP, err).into());
        }
        if d.seg.long() && d.seg.big() && self.s.long_mode() {
            return Err(Exception::gp(err).into());
        }
        let old = self.s.seg[Seg::Cs as usize];
        self.set_accessed(&d)?;
        let mut cs = d.seg;
        cs.selector = (sel & !3) | u16::from(new_cpl);
        cs.ar |= TYPE_ACCESSED;
        self.s.seg[Seg::Cs as usize] = cs;
        if let Some((ss_sel, _)) = outer_stack {
            // The stack segment must match the new CPL; it is checked at that level.
            let saved_ss = self.s.seg[Seg::Ss as usize];
            self.s.seg[Seg::Ss as usize].ar =
                (saved_ss.ar & !x86::segment::AR_DPL) | x86::segment::ar_dpl(new_cpl);
            if let Err(e) = self.load_segment_checked(Seg::Ss, ss_sel) {
                self.s.seg[Seg::Ss as usize] = saved_ss;
                self.s.seg[Seg::Cs as usize] = old;
                return Err(e);
            }
            // Data segments with DPL below the new CPL become null (SDM RET, IRET).
            for s in [Seg::Es, Seg::Ds, Seg::Fs, Seg::Gs] {
                let r = &mut self.s.seg[s as usize];
                let ty = r.ar & 0xF;
                let conforming_code = ty & TYPE_CODE != 0 && ty & TYPE_EC != 0;
                if r.usable() && !conforming_code && r.dpl() < new_cpl {
                    r.selector = 0;
                    r.ar = AR_UNUSABLE;
                }
            }
        }
        let target = if self.s.mode64() {
            off
        } else {
            off & 0xFFFF_FFFF
        };
        if self.s.mode64() {
            if !x86::address::is_canonical(target) {
                self.s.seg[Seg::Cs as usize] = old;
                return Err(Exception::gp(0).into());
            }
        } else if target > u64::from(cs.limit) {
            self.s.seg[Seg::Cs as usize] = old;
            return Err(Exception::gp(0).into());
        }
        self.next_rip = target;
        Ok(())
    }

    /// SS:ESP for privilege level `new_cpl` from the 32-bit TSS, with the
    /// checks of a stack switch (#TS, #SS with EXT as given; SDM Vol. 3A
    /// §5.8.5, §6.12.1). Nothing is loaded yet.
    pub(crate) fn tss_stack32(&mut self, new_cpl: u8, ext: bool) -> Ex<(Segment, u64)> {
        let (esp, ss_sel) = self.tss_esp_ss32(new_cpl, ext)?;
        let err = u32::from(ss_sel & !3) | u32::from(ext);
        let d = self.read_descriptor_or(ss_sel, Exception::with_code(TS, err))?;
        let ty = d.seg.ar & 0xF;
        if (ss_sel & 3) as u8 != new_cpl
            || d.dpl() != new_cpl
            || !d.seg.is_code_or_data()
            || ty & TYPE_CODE != 0
            || ty & TYPE_RW == 0
        {
            return Err(Exception::with_code(TS, err).into());
        }
        if !d.present() {
            return Err(Exception::with_code(SS_VEC, err).into());
        }
        let mut ss = d.seg;
        ss.ar |= TYPE_ACCESSED;
        Ok((ss, esp))
    }

    /// #GP for an IDT entry (error code with IDT bit and EXT), SDM Vol. 3A §6.13.
    pub(crate) fn idt_fault(vector: u8, ext: bool, vec_kind: u8) -> Exception {
        let code = (u32::from(vector) << 3) | 2 | u32::from(ext);
        Exception::with_code(vec_kind, code)
    }

    /// The #GP vector, for callers that build IDT errors.
    pub(crate) const GP_VECTOR: u8 = GP;
}
