//! MMX, SSE and SSE2 data movement and integer instructions (SDM Vol. 1
//! chapters 9–11), and the operand access shared with the floating-point
//! part (`sse.rs`). MMX registers are the low 64 bits of the x87 physical
//! registers: writing one sets its exponent field to all ones, and every
//! MMX instruction but EMMS sets TOP to 0 and tags all registers valid
//! (Vol. 1 §9.5.1); EMMS tags them all empty.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use iced_x86::{Instruction, Mnemonic, OpKind, Register};

/// Element `i` of `size` bytes of a vector.
pub(crate) fn lane(v: u128, size: usize, i: usize) -> u64 {
    let bits = size * 8;
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    (v >> (i * bits)) as u64 & mask
}

/// Replaces element `i` of `size` bytes.
pub(crate) fn set_lane(v: u128, size: usize, i: usize, x: u64) -> u128 {
    let bits = size * 8;
    let mask: u128 = if bits == 64 {
        u128::from(u64::MAX)
    } else {
        (1 << bits) - 1
    };
    (v & !(mask << (i * bits))) | ((u128::from(x) & mask) << (i * bits))
}

/// XMM register number.
pub(crate) fn xmm_index(r: Register) -> usize {
    (r as usize).wrapping_sub(Register::XMM0 as usize) & 15
}

/// MMX register number.
fn mm_index(r: Register) -> usize {
    (r as usize).wrapping_sub(Register::MM0 as usize) & 7
}

/// Whether a 16-byte memory operand of this instruction must be aligned:
/// all legacy SSE instructions but the explicitly unaligned moves.
fn needs_alignment(m: Mnemonic) -> bool {
    !matches!(
        m,
        Mnemonic::Movups | Mnemonic::Movupd | Mnemonic::Movdqu | Mnemonic::Maskmovdqu
    )
}

/// Sign-extends the low `size` bytes.
fn sext(v: u64, size: usize) -> i64 {
    let s = 64 - 8 * size as u32;
    ((v << s) as i64) >> s
}

/// An integer lane operation of two operands.
fn int_op(m: Mnemonic, size: usize, a: u64, b: u64) -> u64 {
    use Mnemonic as M;
    let bits = 8 * size as u32;
    let (sa, sb) = (sext(a, size), sext(b, size));
    let (smin, smax) = if bits == 64 {
        (i64::MIN, i64::MAX)
    } else {
        (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
    };
    let umax = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    let all = |t: bool| if t { umax } else { 0 };
    match m {
        M::Paddb | M::Paddw | M::Paddd | M::Paddq => a.wrapping_add(b),
        M::Psubb | M::Psubw | M::Psubd | M::Psubq => a.wrapping_sub(b),
        M::Paddsb | M::Paddsw => (sa + sb).clamp(smin, smax) as u64,
        M::Psubsb | M::Psubsw => (sa - sb).clamp(smin, smax) as u64,
        M::Paddusb | M::Paddusw => (a + b).min(umax),
        M::Psubusb | M::Psubusw => a.saturating_sub(b),
        M::Pmullw => (sa * sb) as u64,
        M::Pmulhw => ((sa * sb) >> 16) as u64,
        M::Pmulhuw => (a * b) >> 16,
        M::Pavgb | M::Pavgw => (a + b + 1) >> 1,
        M::Pminub => a.min(b),
        M::Pmaxub => a.max(b),
        M::Pminsw => sa.min(sb) as u64,
        M::Pmaxsw => sa.max(sb) as u64,
        M::Pcmpeqb | M::Pcmpeqw | M::Pcmpeqd => all(a == b),
        M::Pcmpgtb | M::Pcmpgtw | M::Pcmpgtd => all(sa > sb),
        M::Pand | M::Andps | M::Andpd => a & b,
        M::Pandn | M::Andnps | M::Andnpd => !a & b,
        M::Por | M::Orps | M::Orpd => a | b,
        _ => a ^ b,
    }
}

/// The element size of a lane-wise integer instruction.
fn int_lane_size(m: Mnemonic) -> Option<usize> {
    use Mnemonic as M;
    Some(match m {
        M::Paddb
        | M::Psubb
        | M::Paddsb
        | M::Psubsb
        | M::Paddusb
        | M::Psubusb
        | M::Pavgb
        | M::Pminub
        | M::Pmaxub
        | M::Pcmpeqb
        | M::Pcmpgtb => 1,
        M::Paddw
        | M::Psubw
        | M::Paddsw
        | M::Psubsw
        | M::Paddusw
        | M::Psubusw
        | M::Pmullw
        | M::Pmulhw
        | M::Pmulhuw
        | M::Pavgw
        | M::Pminsw
        | M::Pmaxsw
        | M::Pcmpeqw
        | M::Pcmpgtw => 2,
        M::Paddd | M::Psubd | M::Pcmpeqd | M::Pcmpgtd => 4,
        M::Paddq
        | M::Psubq
        | M::Pand
        | M::Pandn
        | M::Por
        | M::Pxor
        | M::Andps
        | M::Andpd
        | M::Andnps
        | M::Andnpd
        | M::Orps
        | M::Orpd
        | M::Xorps
        | M::Xorpd => 8,
        _ => return None,
    })
}

impl SoftCpu {
    /// Executes an MMX, SSE or SSE2 instruction (after the unit's checks).
    pub(super) fn simd(&mut self, ins: &Instruction, mmx: bool) -> Ex<()> {
        use Mnemonic as M;
        let m = ins.mnemonic();
        if m == M::Emms {
            self.fpu.ftw = 0;
            return Ok(());
        }
        if mmx {
            // The x87-to-MMX transition.
            self.fpu.set_top(0);
            self.fpu.ftw = 0xFF;
        }
        if let Some(r) = self.sse_float(ins) {
            return r;
        }
        if let Some(size) = int_lane_size(m) {
            let a = self.simd_read(ins, 0)?;
            let b = self.simd_read(ins, 1)?;
            let width = self.simd_width(ins);
            let mut r = 0;
            for i in 0..width / size {
                r = set_lane(
                    r,
                    size,
                    i,
                    int_op(m, size, lane(a, size, i), lane(b, size, i)),
                );
            }
            return self.simd_write(ins, 0, r);
        }
        match m {
            M::Ldmxcsr | M::Stmxcsr => self.mxcsr_op(ins),
            M::Movaps
            | M::Movups
            | M::Movapd
            | M::Movupd
            | M::Movdqa
            | M::Movdqu
            | M::Movntps
            | M::Movntpd
            | M::Movntdq
            | M::Movntq
            | M::Movq2dq
            | M::Movdq2q => {
                let v = self.simd_read(ins, 1)?;
                self.simd_write(ins, 0, v)
            }
            M::Movd | M::Movq => self.movd_movq(ins),
            M::Movss | M::Movsd => self.move_scalar(ins),
            M::Movlps | M::Movlpd | M::Movhps | M::Movhpd | M::Movhlps | M::Movlhps => {
                self.move_half(ins)
            }
            M::Movmskps | M::Movmskpd | M::Pmovmskb => {
                let v = self.simd_read(ins, 1)?;
                let size = match m {
                    M::Movmskps => 4,
                    M::Movmskpd => 8,
                    _ => 1,
                };
                let width = self.simd_width_of(ins, 1);
                let mut mask = 0u64;
                for i in 0..width / size {
                    mask |= (lane(v, size, i) >> (8 * size - 1)) << i;
                }
                self.set_reg(ins.op0_register(), mask);
                Ok(())
            }
            M::Maskmovdqu | M::Maskmovq => self.maskmov(ins),
            M::Shufps | M::Shufpd | M::Pshufd | M::Pshufhw | M::Pshuflw | M::Pshufw => {
                self.shuffle(ins)
            }
            M::Unpcklps
            | M::Unpckhps
            | M::Unpcklpd
            | M::Unpckhpd
            | M::Punpcklbw
            | M::Punpcklwd
            | M::Punpckldq
            | M::Punpcklqdq
            | M::Punpckhbw
            | M::Punpckhwd
            | M::Punpckhdq
            | M::Punpckhqdq => self.unpack(ins),
            M::Packsswb | M::Packssdw | M::Packuswb => self.pack(ins),
            M::Psllw
            | M::Pslld
            | M::Psllq
            | M::Psrlw
            | M::Psrld
            | M::Psrlq
            | M::Psraw
            | M::Psrad => self.shift_lanes(ins),
            M::Pslldq | M::Psrldq => {
                let a = self.simd_read(ins, 0)?;
                let n = u32::from(ins.immediate8());
                let r = match (n > 15, m == M::Pslldq) {
                    (true, _) => 0,
                    (false, true) => a << (8 * n),
                    (false, false) => a >> (8 * n),
                };
                self.simd_write(ins, 0, r)
            }
            M::Pmuludq => {
                let a = self.simd_read(ins, 0)?;
                let b = self.simd_read(ins, 1)?;
                let mut r = 0;
                for i in 0..self.simd_width(ins) / 8 {
                    r = set_lane(
                        r,
                        8,
                        i,
                        lane(a, 8, i) as u32 as u64 * lane(b, 8, i) as u32 as u64,
                    );
                }
                self.simd_write(ins, 0, r)
            }
            M::Pmaddwd => {
                let a = self.simd_read(ins, 0)?;
                let b = self.simd_read(ins, 1)?;
                let mut r = 0;
                for i in 0..self.simd_width(ins) / 4 {
                    let p = |k| sext(lane(a, 2, k), 2).wrapping_mul(sext(lane(b, 2, k), 2));
                    let s = (p(2 * i) as i32).wrapping_add(p(2 * i + 1) as i32);
                    r = set_lane(r, 4, i, s as u32 as u64);
                }
                self.simd_write(ins, 0, r)
            }
            M::Psadbw => {
                let a = self.simd_read(ins, 0)?;
                let b = self.simd_read(ins, 1)?;
                let mut r = 0;
                for q in 0..self.simd_width(ins) / 8 {
                    let s: u64 = (0..8)
                        .map(|k| lane(a, 1, 8 * q + k).abs_diff(lane(b, 1, 8 * q + k)))
                        .sum();
                    r = set_lane(r, 8, q, s);
                }
                self.simd_write(ins, 0, r)
            }
            M::Pextrw => {
                let v = self.simd_read(ins, 1)?;
                let words = self.simd_width_of(ins, 1) / 2;
                let w = lane(v, 2, usize::from(ins.immediate8()) % words);
                self.set_reg(ins.op0_register(), w);
                Ok(())
            }
            M::Pinsrw => {
                let a = self.simd_read(ins, 0)?;
                let w = self.read_op(ins, 1, 2)?;
                let words = self.simd_width(ins) / 2;
                let r = set_lane(a, 2, usize::from(ins.immediate8()) % words, w);
                self.simd_write(ins, 0, r)
            }
            _ => Err(Exception::ud().into()),
        }
    }

    /// Width in bytes of the register operand 0 (8 for MMX, 16 for XMM).
    fn simd_width(&self, ins: &Instruction) -> usize {
        self.simd_width_of(ins, 0)
    }

    /// Width in bytes of operand `i` as a vector.
    fn simd_width_of(&self, ins: &Instruction, i: u32) -> usize {
        match ins.op_kind(i) {
            OpKind::Register if ins.op_register(i).is_mm() => 8,
            OpKind::Register if ins.op_register(i).is_xmm() => 16,
            OpKind::Memory => ins.memory_size().size().max(8),
            _ => {
                if (0..ins.op_count())
                    .any(|k| ins.op_kind(k) == OpKind::Register && ins.op_register(k).is_mm())
                {
                    8
                } else {
                    16
                }
            }
        }
    }

    /// Reads operand `i`: an XMM or MMX register, a general register, memory
    /// of the instruction's operand size (16-byte operands aligned unless
    /// the instruction is an unaligned move), or an immediate.
    pub(super) fn simd_read(&mut self, ins: &Instruction, i: u32) -> Ex<u128> {
        match ins.op_kind(i) {
            OpKind::Register => {
                let r = ins.op_register(i);
                Ok(if r.is_xmm() {
                    self.fpu.xmm[xmm_index(r)]
                } else if r.is_mm() {
                    u128::from(self.fpu.regs[mm_index(r)] as u64)
                } else {
                    u128::from(self.reg(r))
                })
            }
            OpKind::Memory => {
                let (seg, ea) = self.mem_operand(ins);
                let size = ins.memory_size().size();
                if size == 16 {
                    self.read_u128(seg, ea, needs_alignment(ins.mnemonic()))
                } else {
                    Ok(u128::from(self.read_mem(seg, ea, size)?))
                }
            }
            _ => Ok(u128::from(ins.immediate(i))),
        }
    }

    /// Writes operand `i` whole: an XMM register (128 bits), an MMX
    /// register (64 bits, exponent field set), a general register, or
    /// memory of the instruction's operand size.
    pub(super) fn simd_write(&mut self, ins: &Instruction, i: u32, v: u128) -> Ex<()> {
        match ins.op_kind(i) {
            OpKind::Register => {
                let r = ins.op_register(i);
                if r.is_xmm() {
                    self.fpu.xmm[xmm_index(r)] = v;
                } else if r.is_mm() {
                    self.set_mm(mm_index(r), v as u64);
                } else {
                    self.set_reg(r, v as u64);
                }
                Ok(())
            }
            OpKind::Memory => {
                let (seg, ea) = self.mem_operand(ins);
                let size = ins.memory_size().size();
                if size == 16 {
                    self.write_u128(seg, ea, v, needs_alignment(ins.mnemonic()))
                } else {
                    self.write_mem(seg, ea, size, v as u64)
                }
            }
            _ => Err(Exception::ud().into()),
        }
    }

    /// Writes MMX register `n`.
    fn set_mm(&mut self, n: usize, v: u64) {
        self.fpu.regs[n] = 0xFFFF << 64 | u128::from(v);
    }

    /// MOVD and MOVQ in all their forms: a register destination wider than
    /// the operand is zero-extended.
    fn movd_movq(&mut self, ins: &Instruction) -> Ex<()> {
        let size = if ins.mnemonic() == Mnemonic::Movd {
            4
        } else {
            8
        };
        let mask = if size == 4 {
            0xFFFF_FFFF
        } else {
            u128::from(u64::MAX)
        };
        let v = self.simd_read(ins, 1)? & mask;
        if ins.op0_kind() == OpKind::Memory {
            let (seg, ea) = self.mem_operand(ins);
            return self.write_mem(seg, ea, size, v as u64);
        }
        self.simd_write(ins, 0, v)
    }

    /// MOVSS/MOVSD: a register source replaces the low element only; a
    /// memory source zeroes the rest; a memory destination gets the low
    /// element.
    fn move_scalar(&mut self, ins: &Instruction) -> Ex<()> {
        let size = if ins.mnemonic() == Mnemonic::Movss {
            4
        } else {
            8
        };
        let v = lane(self.simd_read(ins, 1)?, size, 0);
        match (ins.op0_kind(), ins.op1_kind()) {
            (OpKind::Memory, _) => {
                let (seg, ea) = self.mem_operand(ins);
                self.write_mem(seg, ea, size, v)
            }
            (_, OpKind::Memory) => self.simd_write(ins, 0, u128::from(v)),
            _ => {
                let d = self.simd_read(ins, 0)?;
                self.simd_write(ins, 0, set_lane(d, size, 0, v))
            }
        }
    }

    /// MOVLPS/MOVLPD/MOVHPS/MOVHPD (one quadword with memory), MOVHLPS and
    /// MOVLHPS (between registers).
    fn move_half(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        let high = matches!(ins.mnemonic(), M::Movhps | M::Movhpd);
        if ins.op0_kind() == OpKind::Memory {
            let v = self.simd_read(ins, 1)?;
            let (seg, ea) = self.mem_operand(ins);
            return self.write_mem(seg, ea, 8, lane(v, 8, usize::from(high)));
        }
        let d = self.simd_read(ins, 0)?;
        let s = self.simd_read(ins, 1)?;
        let r = match ins.mnemonic() {
            M::Movhlps => set_lane(d, 8, 0, lane(s, 8, 1)),
            M::Movlhps => set_lane(d, 8, 1, lane(s, 8, 0)),
            _ => set_lane(d, 8, usize::from(high), lane(s, 8, 0)),
        };
        self.simd_write(ins, 0, r)
    }

    /// MASKMOVDQU/MASKMOVQ: the bytes of the data register (operand 1)
    /// whose mask byte (operand 2) has its top bit set are stored at
    /// DS:rDI (operand 0, with the address size and segment override).
    fn maskmov(&mut self, ins: &Instruction) -> Ex<()> {
        let v = self.simd_read(ins, 1)?;
        let mask = self.simd_read(ins, 2)?;
        let width = self.simd_width_of(ins, 1);
        let addr_bits = match ins.op0_kind() {
            OpKind::MemorySegRDI => 64,
            OpKind::MemorySegEDI => 32,
            _ => 16,
        };
        let rdi = Self::mask_addr(addr_bits, self.s.gpr[7]);
        let seg = crate::cpu::seg_of(ins.memory_segment());
        let mut bytes = [0u8; 16];
        self.read_bytes(seg, rdi, &mut bytes[..width])?;
        for (i, b) in bytes.iter_mut().enumerate().take(width) {
            if lane(mask, 1, i) & 0x80 != 0 {
                *b = lane(v, 1, i) as u8;
            }
        }
        self.write_bytes(seg, rdi, &bytes[..width])
    }

    /// SHUFPS, SHUFPD, PSHUFD, PSHUFHW, PSHUFLW, PSHUFW.
    fn shuffle(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        let m = ins.mnemonic();
        let d = self.simd_read(ins, 0)?;
        let s = self.simd_read(ins, 1)?;
        let imm = usize::from(ins.immediate8());
        let sel = |k: usize| (imm >> (2 * k)) & 3;
        let mut r = 0;
        match m {
            M::Shufps => {
                for k in 0..4 {
                    let src = if k < 2 { d } else { s };
                    r = set_lane(r, 4, k, lane(src, 4, sel(k)));
                }
            }
            M::Shufpd => {
                r = set_lane(r, 8, 0, lane(d, 8, imm & 1));
                r = set_lane(r, 8, 1, lane(s, 8, (imm >> 1) & 1));
            }
            M::Pshufd => {
                for k in 0..4 {
                    r = set_lane(r, 4, k, lane(s, 4, sel(k)));
                }
            }
            M::Pshufw => {
                for k in 0..4 {
                    r = set_lane(r, 2, k, lane(s, 2, sel(k)));
                }
            }
            M::Pshuflw => {
                r = s;
                for k in 0..4 {
                    r = set_lane(r, 2, k, lane(s, 2, sel(k)));
                }
            }
            _ => {
                r = s;
                for k in 0..4 {
                    r = set_lane(r, 2, 4 + k, lane(s, 2, 4 + sel(k)));
                }
            }
        }
        self.simd_write(ins, 0, r)
    }

    /// UNPCK{L,H}P{S,D} and PUNPCK{L,H}{BW,WD,DQ,QDQ}: interleave the low
    /// or high halves of the two operands.
    fn unpack(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        let m = ins.mnemonic();
        let (size, high) = match m {
            M::Punpcklbw => (1, false),
            M::Punpckhbw => (1, true),
            M::Punpcklwd => (2, false),
            M::Punpckhwd => (2, true),
            M::Punpckldq | M::Unpcklps => (4, false),
            M::Punpckhdq | M::Unpckhps => (4, true),
            M::Punpcklqdq | M::Unpcklpd => (8, false),
            _ => (8, true),
        };
        let d = self.simd_read(ins, 0)?;
        let s = self.simd_read(ins, 1)?;
        let width = self.simd_width(ins);
        let half = width / size / 2;
        let base = if high { half } else { 0 };
        let mut r = 0;
        for k in 0..half {
            r = set_lane(r, size, 2 * k, lane(d, size, base + k));
            r = set_lane(r, size, 2 * k + 1, lane(s, size, base + k));
        }
        self.simd_write(ins, 0, r)
    }

    /// PACKSSWB, PACKSSDW, PACKUSWB: saturate both operands' elements to
    /// half their width.
    fn pack(&mut self, ins: &Instruction) -> Ex<()> {
        let m = ins.mnemonic();
        let size = if m == Mnemonic::Packssdw { 4 } else { 2 };
        let d = self.simd_read(ins, 0)?;
        let s = self.simd_read(ins, 1)?;
        let n = self.simd_width(ins) / size;
        let half_bits = 4 * size as u32;
        let (lo, hi) = if m == Mnemonic::Packuswb {
            (0, (1i64 << half_bits) - 1)
        } else {
            (-(1i64 << (half_bits - 1)), (1i64 << (half_bits - 1)) - 1)
        };
        let mut r = 0;
        for k in 0..2 * n {
            let src = if k < n { d } else { s };
            let v = sext(lane(src, size, k % n), size).clamp(lo, hi);
            r = set_lane(r, size / 2, k, v as u64);
        }
        self.simd_write(ins, 0, r)
    }

    /// PSLL/PSRL/PSRA W/D/Q by an immediate or by the low quadword of a
    /// register or memory operand: counts beyond the element width give
    /// zero (logical) or the sign (arithmetic).
    fn shift_lanes(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        let m = ins.mnemonic();
        let size = match m {
            M::Psllw | M::Psrlw | M::Psraw => 2,
            M::Pslld | M::Psrld | M::Psrad => 4,
            _ => 8,
        };
        let a = self.simd_read(ins, 0)?;
        let count = if ins.op1_kind() == OpKind::Immediate8 {
            u64::from(ins.immediate8())
        } else {
            self.simd_read(ins, 1)? as u64
        };
        let bits = 8 * size as u64;
        let mut r = 0;
        for k in 0..self.simd_width(ins) / size {
            let x = lane(a, size, k);
            let v = match m {
                M::Psllw | M::Pslld | M::Psllq if count < bits => x << count,
                M::Psrlw | M::Psrld | M::Psrlq if count < bits => x >> count,
                M::Psraw | M::Psrad => (sext(x, size) >> count.min(bits - 1)) as u64,
                _ => 0,
            };
            r = set_lane(r, size, k, v);
        }
        self.simd_write(ins, 0, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes() {
        let v = 0x0011_2233_4455_6677_8899_AABB_CCDD_EEFFu128;
        assert_eq!(lane(v, 1, 0), 0xFF);
        assert_eq!(lane(v, 4, 3), 0x0011_2233);
        assert_eq!(lane(v, 8, 1), 0x0011_2233_4455_6677);
        assert_eq!(
            set_lane(v, 2, 1, 0x1234),
            0x0011_2233_4455_6677_8899_AABB_1234_EEFF
        );
    }

    #[test]
    fn saturating_and_compare_ops() {
        use Mnemonic as M;
        assert_eq!(int_op(M::Paddsb, 1, 0x70, 0x20), 0x7F);
        assert_eq!(int_op(M::Psubsw, 2, 0x8000, 1) & 0xFFFF, 0x8000);
        assert_eq!(int_op(M::Paddusb, 1, 0xF0, 0x20), 0xFF);
        assert_eq!(int_op(M::Psubusw, 2, 1, 2), 0);
        assert_eq!(int_op(M::Pcmpgtb, 1, 0x01, 0xFF), 0xFF, "1 > -1");
        assert_eq!(int_op(M::Pmulhw, 2, 0x8000, 0x8000) & 0xFFFF, 0x4000);
        assert_eq!(int_op(M::Pavgb, 1, 1, 2), 2);
    }
}
