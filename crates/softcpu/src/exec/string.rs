//! String instructions with REP prefixes (SDM Vol. 2B MOVS/STOS/LODS/CMPS/SCAS, REP).
//!
//! A REP-prefixed instruction runs at most [`REP_CHUNK`] iterations per step
//! and then resumes at the same RIP, which is how real processors let
//! interrupts in between iterations. Every iteration after the first costs
//! one cycle of virtual time, so a long REP is not free.

use super::acc;
use super::flags::{self, mask};
use crate::cpu::SoftCpu;
use crate::fault::Ex;
use crate::mmu::Access;
use crate::state::Seg;
use iced_x86::{Instruction, Mnemonic, OpKind, Register};

/// Iterations of a REP string instruction per step.
const REP_CHUNK: u32 = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Movs,
    Stos,
    Lods,
    Cmps,
    Scas,
    Ins,
    Outs,
}

impl SoftCpu {
    /// Executes MOVS/STOS/LODS/CMPS/SCAS/INS/OUTS with optional REP/REPE/REPNE.
    pub(super) fn string_op(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        let (kind, size) = match ins.mnemonic() {
            M::Movsb => (Kind::Movs, 1),
            M::Movsw => (Kind::Movs, 2),
            M::Movsd => (Kind::Movs, 4),
            M::Movsq => (Kind::Movs, 8),
            M::Stosb => (Kind::Stos, 1),
            M::Stosw => (Kind::Stos, 2),
            M::Stosd => (Kind::Stos, 4),
            M::Stosq => (Kind::Stos, 8),
            M::Lodsb => (Kind::Lods, 1),
            M::Lodsw => (Kind::Lods, 2),
            M::Lodsd => (Kind::Lods, 4),
            M::Lodsq => (Kind::Lods, 8),
            M::Cmpsb => (Kind::Cmps, 1),
            M::Cmpsw => (Kind::Cmps, 2),
            M::Cmpsd => (Kind::Cmps, 4),
            M::Cmpsq => (Kind::Cmps, 8),
            M::Scasb => (Kind::Scas, 1),
            M::Scasw => (Kind::Scas, 2),
            M::Scasd => (Kind::Scas, 4),
            M::Scasq => (Kind::Scas, 8),
            M::Insb => (Kind::Ins, 1),
            M::Insw => (Kind::Ins, 2),
            M::Insd => (Kind::Ins, 4),
            M::Outsb => (Kind::Outs, 1),
            M::Outsw => (Kind::Outs, 2),
            _ => (Kind::Outs, 4),
        };
        if matches!(kind, Kind::Ins | Kind::Outs) {
            return self.string_io(ins, kind == Kind::Ins, size);
        }
        let asize = string_address_size(ins);
        let counter = match asize {
            8 => Register::RCX,
            4 => Register::ECX,
            _ => Register::CX,
        };
        let rep = ins.has_rep_prefix() || ins.has_repne_prefix();
        let src_seg = match kind {
            Kind::Movs | Kind::Lods | Kind::Cmps => Self::mem_seg(ins),
            _ => Seg::Ds,
        };
        let step = if self.flag(x86::rflags::DF) {
            (size as u64).wrapping_neg()
        } else {
            size as u64
        };
        let (si, di) = match asize {
            8 => (Register::RSI, Register::RDI),
            4 => (Register::ESI, Register::EDI),
            _ => (Register::SI, Register::DI),
        };
        let mut done = 0;
        loop {
            if rep && self.reg(counter) == 0 {
                // Intel parts write the 32-bit count back even when it is
                // already zero, clearing RCX[63:32] (seen on Intel silicon
                // under KVM; AMD parts and QEMU TCG leave RCX alone).
                if asize == 4 {
                    self.set_reg(counter, 0);
                }
                return Ok(());
            }
            if rep && done == REP_CHUNK {
                // Resume this instruction on the next step.
                self.next_rip = self.s.rip;
                return Ok(());
            }
            if rep && asize == 8 && step == size as u64 && matches!(kind, Kind::Movs | Kind::Stos) {
                let n = self.string_bulk(kind == Kind::Movs, size, src_seg, REP_CHUNK - done);
                if n > 0 {
                    // As many iterations as one at a time would have run,
                    // each after the instruction's first costing a cycle.
                    let ticked = n - u32::from(done == 0);
                    done += n;
                    self.tick(u64::from(ticked) * self.instruction_cycles);
                    continue;
                }
            }
            let s_off = self.reg(si);
            let d_off = self.reg(di);
            let mut stop = false;
            match kind {
                Kind::Movs => {
                    let v = self.read_mem(src_seg, s_off, size)?;
                    self.write_mem(Seg::Es, d_off, size, v)?;
                    self.set_reg(si, s_off.wrapping_add(step));
                    self.set_reg(di, d_off.wrapping_add(step));
                }
                Kind::Stos => {
                    let v = self.reg(acc(size));
                    self.write_mem(Seg::Es, d_off, size, v)?;
                    self.set_reg(di, d_off.wrapping_add(step));
                }
                Kind::Lods => {
                    let v = self.read_mem(src_seg, s_off, size)?;
                    self.set_reg(acc(size), v);
                    self.set_reg(si, s_off.wrapping_add(step));
                }
                Kind::Cmps | Kind::Scas => {
                    let (a, b) = if kind == Kind::Cmps {
                        let a = self.read_mem(src_seg, s_off, size)?;
                        let b = self.read_mem(Seg::Es, d_off, size)?;
                        self.set_reg(si, s_off.wrapping_add(step));
                        (a, b)
                    } else {
                        let b = self.read_mem(Seg::Es, d_off, size)?;
                        (self.reg(acc(size)) & mask(size), b)
                    };
                    self.set_reg(di, d_off.wrapping_add(step));
                    let (_, f) = flags::sub(size, a, b, false);
                    self.set_status(f);
                    let zf = f & x86::rflags::ZF != 0;
                    stop = (ins.has_repe_prefix() && !zf) || (ins.has_repne_prefix() && zf);
                }
                // Routed to `string_io` before the loop.
                Kind::Ins | Kind::Outs => return Ok(()),
            }
            if !rep {
                return Ok(());
            }
            let c = self.reg(counter).wrapping_sub(1);
            self.set_reg(counter, c);
            // The iteration is architecturally done (its registers are
            // written): MMIO emulation keeps its accesses even if a later
            // iteration stops.
            self.mmio_commit();
            done += 1;
            if done > 1 {
                self.tick(self.instruction_cycles);
            }
            if stop {
                return Ok(());
            }
        }
    }
}

impl SoftCpu {
    /// Up to `most` iterations of REP MOVS (`movs`) or REP STOS with
    /// 64-bit addresses counting up, done at once while source and
    /// destination stay inside one page each: what as many single
    /// iterations would do (overlapping MOVS included), with RSI, RDI and
    /// RCX updated. Returns how many ran; 0 when anything needs the
    /// one-at-a-time path — outside 64-bit mode, a data breakpoint, MMIO
    /// emulation, alignment checking, an element across a page boundary,
    /// a translation not allowed or faulting (the single iteration then
    /// meets the fault in its own order), memory outside RAM — so a fault
    /// still comes at the iteration it belongs to, with nothing of it done.
    fn string_bulk(&mut self, movs: bool, size: usize, src_seg: Seg, most: u32) -> u32 {
        #[cfg(test)]
        if tests::BULK_OFF.get() {
            return 0;
        }
        if !self.s.mode64() || self.debug.data_bp || self.mmio.is_some() {
            return 0;
        }
        let user = self.s.cpl() == 3;
        if user && self.s.cr0 & x86::cr::CR0_AM != 0 && self.s.rflags & x86::rflags::AC != 0 {
            return 0;
        }
        let linear = |cpu: &SoftCpu, seg: Seg, off: u64| match seg {
            Seg::Fs | Seg::Gs => cpu.s.seg[seg as usize].base.wrapping_add(off),
            _ => off,
        };
        let room = |la: u64| (4096 - (la & 0xFFF)) / size as u64;
        let count = self.s.gpr[1];
        let (rsi, rdi) = (self.s.gpr[6], self.s.gpr[7]);
        let dst = linear(self, Seg::Es, rdi);
        let mut n = count.min(u64::from(most)).min(room(dst));
        let src = linear(self, src_seg, rsi);
        if movs {
            n = n.min(room(src));
        }
        if n == 0 || !x86::address::is_canonical(dst) || !x86::address::is_canonical(src) {
            return 0;
        }
        let bytes = n * size as u64;
        let src_hpa = if movs {
            match self.translate_as(src, Access::Read, user) {
                Ok(hpa) => Some(hpa),
                Err(_) => return 0,
            }
        } else {
            None
        };
        let Ok(dst_hpa) = self.translate_as(dst, Access::Write, user) else {
            return 0;
        };
        let done = match src_hpa {
            Some(src_hpa) => self.mem.copy_forward(dst_hpa, src_hpa, size, bytes),
            None => {
                let v = self.s.gpr[0];
                self.mem.fill(dst_hpa, size, bytes, v)
            }
        };
        if done.is_err() {
            return 0;
        }
        if movs {
            self.s.gpr[6] = rsi.wrapping_add(bytes);
        }
        self.s.gpr[7] = rdi.wrapping_add(bytes);
        self.s.gpr[1] = count - n;
        #[cfg(test)]
        tests::BULK_ITERATIONS.set(tests::BULK_ITERATIONS.get() + n);
        n as u32
    }
}

/// Address size of a string instruction, from its implicit memory operand.
pub(crate) fn string_address_size(ins: &Instruction) -> u32 {
    for i in 0..ins.op_count() {
        match ins.op_kind(i) {
            OpKind::MemorySegRSI | OpKind::MemoryESRDI => return 8,
            OpKind::MemorySegESI | OpKind::MemoryESEDI => return 4,
            OpKind::MemorySegSI | OpKind::MemoryESDI => return 2,
            _ => {}
        }
    }
    8
}

#[cfg(test)]
mod tests {
    //! REP MOVS and REP STOS done in bulk against one iteration at a time:
    //! random counts, element sizes and addresses (overlapping, crossing
    //! pages, running off the end of RAM or of the canonical range) must
    //! give the same registers, memory and virtual time either way.

    use crate::harness::{machine, run, Mode, RAM};
    use proptest::prelude::*;
    use std::cell::Cell;

    thread_local! {
        /// While set, REP MOVS/STOS run one iteration at a time.
        pub(super) static BULK_OFF: Cell<bool> = const { Cell::new(false) };
        /// Iterations done in bulk on this thread.
        pub(super) static BULK_ITERATIONS: Cell<u64> = const { Cell::new(0) };
    }

    /// The data area the strings move in.
    const DATA: u64 = 0x20_0000;
    const DATA_LEN: usize = 0x8000;
    /// The last page of RAM (strings there run off its end).
    const TAIL: u64 = RAM - 0x1000;

    /// REP MOVS and REP STOS of each element size.
    const FORMS: &[&[u8]] = &[
        &[0xF3, 0xA4],
        &[0x66, 0xF3, 0xA5],
        &[0xF3, 0xA5],
        &[0xF3, 0x48, 0xA5],
        &[0xF3, 0xAA],
        &[0x66, 0xF3, 0xAB],
        &[0xF3, 0xAB],
        &[0xF3, 0x48, 0xAB],
    ];

    fn mov_imm(code: &mut Vec<u8>, reg: u8, value: u64) {
        code.extend_from_slice(&[0x48, 0xB8 + reg]);
        code.extend_from_slice(&value.to_le_bytes());
    }

    /// Registers, the data area, the last page of RAM and the virtual time
    /// after `form` ran with RAX, RCX, RSI, RDI = `regs` over `fill`.
    fn outcome(form: &[u8], regs: [u64; 4], fill: &[u8], bulk: bool) -> ([u64; 16], Vec<u8>, u64) {
        let mut code = Vec::new();
        for (reg, v) in [0u8, 1, 6, 7].into_iter().zip(regs) {
            mov_imm(&mut code, reg, v);
        }
        code.push(0xFC); // cld
        code.extend_from_slice(form);
        code.extend_from_slice(&[0xEB, 0xFE]); // jmp $
        let mut cpu = machine(Mode::Long64, &code);
        cpu.memory_mut().write(DATA, fill).unwrap();
        cpu.memory_mut().write(TAIL, &fill[..0x1000]).unwrap();
        BULK_OFF.set(!bulk);
        let out = run(&mut cpu, 3_000);
        BULK_OFF.set(false);
        let mut mem = vec![0u8; DATA_LEN + 0x1000];
        cpu.memory().read(DATA, &mut mem[..DATA_LEN]).unwrap();
        cpu.memory().read(TAIL, &mut mem[DATA_LEN..]).unwrap();
        (cpu.gprs(), mem, out.cycles)
    }

    /// A string address: in the data area, near the end of RAM, or just
    /// below the end of the lower canonical half.
    fn address() -> impl Strategy<Value = u64> {
        prop_oneof![
            6 => (0..0x6000u64).prop_map(|o| DATA + o),
            1 => (0..0x1000u64).prop_map(|o| TAIL + o),
            1 => (0..0x40u64).prop_map(|o| 0x7FFF_FFFF_FFC0 + o),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn bulk_strings_match_single_iterations(
            form in 0..FORMS.len(),
            rax: u64,
            rcx in prop_oneof![0..200u64, 0..2000u64],
            rsi in address(),
            rdi in address(),
            seed: u64,
        ) {
            let mut x = seed | 1;
            let fill: Vec<u8> = (0..DATA_LEN)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let regs = [rax, rcx, rsi, rdi];
            let bulk = outcome(FORMS[form], regs, &fill, true);
            let single = outcome(FORMS[form], regs, &fill, false);
            prop_assert!(bulk == single, "form {:02X?} regs {:X?}", FORMS[form], regs);
        }
    }

    /// The comparison is not of the single path with itself.
    #[test]
    fn bulk_path_runs() {
        BULK_ITERATIONS.set(0);
        let fill = vec![0x5A; DATA_LEN];
        outcome(FORMS[3], [0, 300, DATA, DATA + 0x10], &fill, true);
        outcome(FORMS[4], [7, 300, 0, DATA + 0x3000], &fill, true);
        assert_eq!(BULK_ITERATIONS.get(), 600);
    }
}
