//! Far CALL and JMP through call gates (SDM Vol. 3A §5.8.2–§5.8.6, Vol. 2A
//! CALL "call gate" paths, §5.8.3.1 for IA-32e mode gates).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use crate::state::Seg;
use x86::exception::NP;
use x86::segment::{TYPE_ACCESSED, TYPE_EC};

/// A decoded call gate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallGate {
    /// Target code segment selector.
    target: u16,
    /// Target offset.
    offset: u64,
    /// Parameters to copy (32-bit gates).
    params: u64,
    /// 2 for a 16-bit gate, 4 for a 32-bit gate, 8 for an IA-32e gate.
    size: usize,
}

impl SoftCpu {
    /// If `sel` names a call gate, checks it (DPL, present) and returns it.
    pub(crate) fn call_gate(&mut self, sel: u16) -> Ex<Option<CallGate>> {
        if self.s.cr0 & x86::cr::CR0_PE == 0 || sel & !3 == 0 {
            return Ok(None);
        }
        let d = self.read_descriptor(sel)?;
        if d.seg.is_code_or_data() {
            return Ok(None);
        }
        let ty = d.seg.ar & 0xF;
        let long = self.s.long_mode();
        let size = match ty {
            4 if !long => 2,
            12 if long => 8,
            12 => 4,
            _ => return Ok(None),
        };
        let err = u32::from(sel & !3);
        let cpl = self.s.cpl();
        let rpl = (sel & 3) as u8;
        if d.dpl() < cpl || d.dpl() < rpl {
            return Err(Exception::gp(err).into());
        }
        if !d.present() {
            return Err(Exception::with_code(NP, err).into());
        }
        let raw = d.raw;
        let mut offset = (raw & 0xFFFF) | ((raw >> 32) & 0xFFFF_0000);
        if size == 8 {
            let hi = self.read_descriptor_high(&d)?;
            // The upper half's type field must be 0 (SDM §5.8.3.1).
            if (hi >> 40) & 0x1F != 0 {
                return Err(Exception::gp(err).into());
            }
            offset |= (hi & 0xFFFF_FFFF) << 32;
        } else if size == 2 {
            offset &= 0xFFFF;
        }
        Ok(Some(CallGate {
            target: (raw >> 16) as u16,
            offset,
            params: if size == 8 { 0 } else { (raw >> 32) & 0x1F },
            size,
        }))
    }

    /// Transfers through a checked call gate; `call` carries the operand size of a far CALL.
    pub(crate) fn through_call_gate(&mut self, gate: &CallGate, call: Option<usize>) -> Ex<()> {
        let saved = self.s.clone();
        let r = self.gate_transfer(gate, call);
        if r.is_err() {
            self.s = saved;
        }
        r
    }

    fn gate_transfer(&mut self, gate: &CallGate, call: Option<usize>) -> Ex<()> {
        let sel = gate.target;
        let err = u32::from(sel & !3);
        if sel & !3 == 0 {
            return Err(Exception::gp(0).into());
        }
        let d = self.read_descriptor(sel)?;
        let cpl = self.s.cpl();
        if !d.is_code() || d.dpl() > cpl {
            return Err(Exception::gp(err).into());
        }
        let conforming = d.seg.ar & TYPE_EC != 0;
        if call.is_none() && !conforming && d.dpl() != cpl {
            return Err(Exception::gp(err).into());
        }
        if !d.present() {
            return Err(Exception::with_code(NP, err).into());
        }
        if gate.size == 8 && (!d.seg.long() || d.seg.big()) {
            return Err(Exception::gp(err).into());
        }
        let new_cpl = if conforming || call.is_none() {
            cpl
        } else {
            d.dpl()
        };
        let mut cs = d.seg;
        cs.ar |= TYPE_ACCESSED;
        cs.selector = (sel & !3) | u16::from(new_cpl);
        let old_cs = u64::from(self.s.seg[Seg::Cs as usize].selector);
        let ret = self.next_rip;
        if call.is_some() {
            let size = gate.size;
            if new_cpl < cpl {
                let old_ss = self.s.seg[Seg::Ss as usize];
                let old_sp = self.s.gpr[4];
                self.switch_to_inner_stack(new_cpl, gate.size)?;
                self.s.seg[Seg::Cs as usize] = cs;
                self.push(size, u64::from(old_ss.selector))?;
                self.push(size, old_sp)?;
                // Copy the parameters from the caller's stack (32/16-bit gates).
                for i in (0..gate.params).rev() {
                    let off = old_sp.wrapping_add(i * size as u64);
                    let la = old_ss.base.wrapping_add(off) & 0xFFFF_FFFF;
                    let v = self.read_linear(la, size, false)?;
                    self.push(size, v)?;
                }
            } else {
                self.s.seg[Seg::Cs as usize] = cs;
            }
            self.push(size, old_cs)?;
            self.push(size, ret)?;
        } else {
            self.s.seg[Seg::Cs as usize] = cs;
        }
        self.next_rip = gate.offset;
        Ok(())
    }

    /// Loads SS:RSP for `new_cpl` from the TSS (SDM §5.8.5, §5.8.6).
    fn switch_to_inner_stack(&mut self, new_cpl: u8, gate_size: usize) -> Ex<()> {
        if gate_size == 8 {
            let rsp = self.tss_rsp64(new_cpl, 0, false)?;
            let ss = &mut self.s.seg[Seg::Ss as usize];
            ss.selector = u16::from(new_cpl);
            ss.ar = x86::segment::AR_UNUSABLE | x86::segment::ar_dpl(new_cpl);
            ss.base = 0;
            self.s.gpr[4] = rsp;
            return Ok(());
        }
        let (ss, esp) = self.tss_stack32(new_cpl, false)?;
        self.s.seg[Seg::Ss as usize] = ss;
        self.s.gpr[4] = esp;
        Ok(())
    }
}
