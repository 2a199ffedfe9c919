//! Reads of the current task-state segment: the stack pointers of a
//! privilege change and the IST slots, each checked against TR's limit (SDM
//! Vol. 3A §8.2.1 Figures 8-2 and 8-11; Vol. 2A INT n and CALL pseudo-code). Offsets are added to
//! the TSS base with the architectural wrap: 64 bits in IA-32e mode, 32
//! bits outside it.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use x86::exception::TS;

/// Offset of RSP0 (ESP0 in a 32-bit TSS); RSPn is 8 bytes further per level.
const RSP0: u64 = 4;
/// Offset of IST1 in a 64-bit TSS; ISTn is 8 bytes further per slot.
const IST1: u64 = 0x24;

impl SoftCpu {
    /// Linear address of `offset` in the current TSS.
    pub(crate) fn tss_linear(&self, offset: u64) -> u64 {
        let la = self.s.tr.base.wrapping_add(offset);
        if self.s.long_mode() {
            la
        } else {
            la & 0xFFFF_FFFF
        }
    }

    /// Reads `size` bytes at `offset` in the current TSS for a stack switch:
    /// any byte beyond TR's limit is #TS with the TSS selector and EXT
    /// (SDM Vol. 2A INT n: "IF (TSSstackAddress + 7) > current TSS limit THEN
    /// #TS(error_code(current TSS selector, 0, EXT))").
    pub(crate) fn tss_read(&mut self, offset: u64, size: usize, ext: bool) -> Ex<u64> {
        if offset + size as u64 - 1 > u64::from(self.s.tr.limit) {
            let code = u32::from(self.s.tr.selector & !3) | u32::from(ext);
            return Err(Exception::with_code(TS, code).into());
        }
        let la = self.tss_linear(offset);
        self.read_linear(la, size, false)
    }

    /// The stack pointer of a 64-bit TSS for an IA-32e mode delivery or call
    /// gate: IST slot `ist` when it is not 0, else RSP of `new_cpl`.
    pub(crate) fn tss_rsp64(&mut self, new_cpl: u8, ist: u8, ext: bool) -> Ex<u64> {
        let offset = match ist {
            0 => RSP0 + 8 * u64::from(new_cpl),
            n => IST1 + 8 * u64::from(n - 1),
        };
        self.tss_read(offset, 8, ext)
    }

    /// ESP and the SS selector of `new_cpl` in a 32-bit TSS: 6 bytes at
    /// (DPL << 3) + 4, all within the limit ("TSSstackAddress + 5").
    pub(crate) fn tss_esp_ss32(&mut self, new_cpl: u8, ext: bool) -> Ex<(u64, u16)> {
        let offset = RSP0 + 8 * u64::from(new_cpl);
        let esp = self.tss_read(offset, 4, ext)?;
        let ss = self.tss_read(offset + 4, 2, ext)? as u16;
        Ok((esp, ss))
    }
}
