//! LSS, LDS, LES, LFS and LGS: load a far pointer into a segment register
//! and a general register.

use crate::cpu::SoftCpu;
use crate::fault::Ex;
use crate::state::Seg;
use iced_x86::{Instruction, Mnemonic};

impl SoftCpu {
    /// Loads the selector (checked as MOV to a segment register does) and the offset.
    pub(super) fn far_pointer_load(&mut self, ins: &Instruction) -> Ex<()> {
        let seg = match ins.mnemonic() {
            Mnemonic::Lss => Seg::Ss,
            Mnemonic::Lds => Seg::Ds,
            Mnemonic::Les => Seg::Es,
            Mnemonic::Lfs => Seg::Fs,
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
}
