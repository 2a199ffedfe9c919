//! Arithmetic, logic, shifts and rotates, multiply and divide, bit operations.

use super::flags::{self, mask, sext, sign_bit, szp};
use super::{acc, gpr};
use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use iced_x86::{Instruction, Mnemonic, OpKind};
use x86::rflags::{AF, CF, OF, ZF};

impl SoftCpu {
    /// Two-operand ALU group: ADD OR ADC SBB AND SUB XOR CMP TEST.
    pub(super) fn alu2(&mut self, ins: &Instruction) -> Ex<()> {
        let size = self.op_size(ins, 0);
        let a = self.read_op(ins, 0, size)?;
        let b = self.read_op(ins, 1, size)?;
        let cf = self.flag(CF);
        let (r, f, store) = match ins.mnemonic() {
            Mnemonic::Add => {
                let (r, f) = flags::add(size, a, b, false);
                (r, f, true)
            }
            Mnemonic::Adc => {
                let (r, f) = flags::add(size, a, b, cf);
                (r, f, true)
            }
            Mnemonic::Sub => {
                let (r, f) = flags::sub(size, a, b, false);
                (r, f, true)
            }
            Mnemonic::Sbb => {
                let (r, f) = flags::sub(size, a, b, cf);
                (r, f, true)
            }
            Mnemonic::Cmp => {
                let (r, f) = flags::sub(size, a, b, false);
                (r, f, false)
            }
            Mnemonic::And => (a & b, flags::logic(size, a & b), true),
            Mnemonic::Test => (a & b, flags::logic(size, a & b), false),
            Mnemonic::Or => (a | b, flags::logic(size, a | b), true),
            _ => (a ^ b, flags::logic(size, a ^ b), true),
        };
        if store {
            self.write_op(ins, 0, size, r)?;
        }
        self.set_status(f);
        Ok(())
    }

    /// One-operand ALU group: INC DEC NEG NOT.
    pub(super) fn alu1(&mut self, ins: &Instruction) -> Ex<()> {
        let size = self.op_size(ins, 0);
        let a = self.read_op(ins, 0, size)?;
        match ins.mnemonic() {
            Mnemonic::Not => self.write_op(ins, 0, size, !a & mask(size)),
            Mnemonic::Neg => {
                let (r, mut f) = flags::sub(size, 0, a, false);
                f = (f & !CF) | if a & mask(size) != 0 { CF } else { 0 };
                self.write_op(ins, 0, size, r)?;
                self.set_status(f);
                Ok(())
            }
            m => {
                let (r, f) = if m == Mnemonic::Inc {
                    flags::add(size, a, 1, false)
                } else {
                    flags::sub(size, a, 1, false)
                };
                self.write_op(ins, 0, size, r)?;
                // INC and DEC leave CF unchanged.
                self.set_status((f & !CF) | (self.s.rflags & CF));
                Ok(())
            }
        }
    }

    /// Shifts and rotates (SDM Vol. 2B SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR).
    pub(super) fn shift(&mut self, ins: &Instruction) -> Ex<()> {
        let size = self.op_size(ins, 0);
        let count_mask = if size == 8 { 0x3F } else { 0x1F };
        let count = if ins.op_count() < 2 {
            1
        } else {
            (self.read_op(ins, 1, 1)? as u32) & count_mask
        };
        let a = self.read_op(ins, 0, size)?;
        if count == 0 {
            return Ok(());
        }
        let (r, f) = shift_result(ins.mnemonic(), size, a, count, self.status_flags());
        self.write_op(ins, 0, size, r)?;
        self.set_status(f);
        Ok(())
    }

    /// SHLD and SHRD.
    pub(super) fn shift_double(&mut self, ins: &Instruction) -> Ex<()> {
        let size = self.op_size(ins, 0);
        let bits = (size * 8) as u32;
        let count_mask = if size == 8 { 0x3F } else { 0x1F };
        let count = (self.read_op(ins, 2, 1)? as u32) & count_mask;
        let dst = self.read_op(ins, 0, size)?;
        let src = self.read_op(ins, 1, size)?;
        if count == 0 {
            return Ok(());
        }
        let m = mask(size);
        let (r, cf) = if ins.mnemonic() == Mnemonic::Shld {
            let wide = ((dst as u128) << bits) | src as u128;
            let shifted = wide << count;
            (
                ((shifted >> bits) as u64) & m,
                (wide >> (2 * bits - count)) & 1 != 0,
            )
        } else {
            let wide = ((src as u128) << bits) | dst as u128;
            (
                (((wide >> count) as u64) & m),
                (wide >> (count - 1)) & 1 != 0,
            )
        };
        let mut f = szp(size, r) | if cf { CF } else { 0 };
        if (r ^ dst) & sign_bit(size) != 0 {
            f |= OF;
        }
        self.write_op(ins, 0, size, r)?;
        self.set_status(f);
        Ok(())
    }

    /// MUL, IMUL (one, two and three operands), DIV, IDIV.
    pub(super) fn muldiv(&mut self, ins: &Instruction) -> Ex<()> {
        let m = ins.mnemonic();
        if m == Mnemonic::Imul && ins.op_count() >= 2 {
            let size = self.op_size(ins, 0);
            let (a, b) = if ins.op_count() == 3 {
                (self.read_op(ins, 1, size)?, self.read_op(ins, 2, size)?)
            } else {
                (self.read_op(ins, 0, size)?, self.read_op(ins, 1, size)?)
            };
            let p = (sext(size, a) as i64 as i128) * (sext(size, b) as i64 as i128);
            let r = (p as u64) & mask(size);
            let overflow = sext(size, r) as i64 as i128 != p;
            self.set_reg(ins.op_register(0), r);
            let f = szp(size, r) | if overflow { CF | OF } else { 0 };
            self.set_status(f);
            return Ok(());
        }
        let size = self.op_size(ins, 0);
        let src = self.read_op(ins, 0, size)?;
        let bits = size * 8;
        let lo_reg = acc(size);
        let hi_reg = gpr(size, 2);
        let a = self.reg(lo_reg);
        match m {
            Mnemonic::Mul | Mnemonic::Imul => {
                let (lo, hi, overflow) = if m == Mnemonic::Mul {
                    let p = (a as u128) * (src as u128);
                    let lo = (p as u64) & mask(size);
                    let hi = ((p >> bits) as u64) & mask(size);
                    (lo, hi, hi != 0)
                } else {
                    let p = (sext(size, a) as i64 as i128) * (sext(size, src) as i64 as i128);
                    let lo = (p as u64) & mask(size);
                    let hi = ((p >> bits) as u64) & mask(size);
                    (lo, hi, sext(size, lo) as i64 as i128 != p)
                };
                if size == 1 {
                    self.set_reg(iced_x86::Register::AX, (hi << 8) | lo);
                } else {
                    self.set_reg(lo_reg, lo);
                    self.set_reg(hi_reg, hi);
                }
                let f = szp(size, lo) | if overflow { CF | OF } else { 0 };
                self.set_status(f);
                Ok(())
            }
            _ => {
                let de = || Err(Exception::plain(x86::exception::DE).into());
                let src = src & mask(size);
                if src == 0 {
                    return de();
                }
                let dividend: u128 = if size == 1 {
                    u128::from(self.reg(iced_x86::Register::AX))
                } else {
                    (u128::from(self.reg(hi_reg)) << bits) | u128::from(a)
                };
                let (q, r) = if m == Mnemonic::Div {
                    let q = dividend / u128::from(src);
                    if q > u128::from(mask(size)) {
                        return de();
                    }
                    (q as u64, (dividend % u128::from(src)) as u64)
                } else {
                    let shift = 128 - 2 * bits;
                    let n = ((dividend << shift) as i128) >> shift;
                    let d = sext(size, src) as i64 as i128;
                    if n == i128::MIN && d == -1 {
                        return de();
                    }
                    let q = n / d;
                    let lim = 1i128 << (bits - 1);
                    if q >= lim || q < -lim {
                        return de();
                    }
                    ((q as u64) & mask(size), ((n % d) as u64) & mask(size))
                };
                if size == 1 {
                    self.set_reg(iced_x86::Register::AX, (r << 8) | q);
                } else {
                    self.set_reg(lo_reg, q);
                    self.set_reg(hi_reg, r);
                }
                Ok(())
            }
        }
    }

    /// BT, BTS, BTR, BTC; a register bit offset reaches beyond a memory operand.
    pub(super) fn bit_test(&mut self, ins: &Instruction) -> Ex<()> {
        let size = self.op_size(ins, 0);
        let bits = (size * 8) as u64;
        let off = self.read_op(ins, 1, size)?;
        let (value, addr) =
            if ins.op0_kind() == OpKind::Memory && ins.op1_kind() == OpKind::Register {
                let signed = sext(size, off) as i64;
                let byte_off = (signed >> 3) & !((size as i64) - 1);
                let ea = self.effective_address(ins).wrapping_add(byte_off as u64);
                let ea = Self::mask_addr(8, ea);
                (self.read_mem(Self::mem_seg(ins), ea, size)?, Some(ea))
            } else {
                (self.read_op(ins, 0, size)?, None)
            };
        let bit = off & (bits - 1);
        let set = (value >> bit) & 1 != 0;
        let new = match ins.mnemonic() {
            Mnemonic::Bts => Some(value | (1 << bit)),
            Mnemonic::Btr => Some(value & !(1 << bit)),
            Mnemonic::Btc => Some(value ^ (1 << bit)),
            _ => None,
        };
        if let Some(n) = new {
            match addr {
                Some(ea) => self.write_mem(Self::mem_seg(ins), ea, size, n)?,
                None => self.write_op(ins, 0, size, n)?,
            }
        }
        let f = (self.s.rflags & !CF & x86::rflags::STATUS) | if set { CF } else { 0 };
        self.set_status(f);
        Ok(())
    }

    /// BSF, BSR, LZCNT, POPCNT, and TZCNT, which is BSF here: its encoding
    /// (F3 0F BC) is BSF with an ignored REP prefix on a processor without
    /// BMI1, and CPUID.7:EBX.BMI1 is 0 (SDM Vol. 2B TZCNT).
    pub(super) fn bit_scan(&mut self, ins: &Instruction) -> Ex<()> {
        let size = self.op_size(ins, 0);
        let src = self.read_op(ins, 1, size)? & mask(size);
        let bits = (size * 8) as u64;
        let status = self.s.rflags & x86::rflags::STATUS;
        match ins.mnemonic() {
            Mnemonic::Bsf | Mnemonic::Bsr | Mnemonic::Tzcnt => {
                if src == 0 {
                    // Destination unchanged (as the processors we compare against do).
                    self.set_status((status & !ZF) | ZF);
                    return Ok(());
                }
                let r = if ins.mnemonic() != Mnemonic::Bsr {
                    u64::from(src.trailing_zeros())
                } else {
                    63 - u64::from(src.leading_zeros())
                };
                self.write_op(ins, 0, size, r)?;
                self.set_status(status & !ZF);
            }
            Mnemonic::Popcnt => {
                let r = u64::from(src.count_ones());
                self.write_op(ins, 0, size, r)?;
                self.set_status(if r == 0 { ZF } else { 0 });
            }
            _ => {
                // LZCNT (CPUID.80000001H:ECX.LZCNT).
                let r = u64::from(src.leading_zeros()) - (64 - bits);
                self.write_op(ins, 0, size, r)?;
                let mut f = status & !(CF | ZF);
                if r == bits {
                    f |= CF;
                }
                if r == 0 {
                    f |= ZF;
                }
                self.set_status(f & !AF | (status & AF));
            }
        }
        Ok(())
    }
}

/// Result and status flags of a shift or rotate by a nonzero masked
/// `count` (SDM Vol. 2B SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR); `status` holds the
/// flags before, which rotates partly keep and RCL/RCR read CF from.
#[inline]
pub(crate) fn shift_result(
    m_op: Mnemonic,
    size: usize,
    a: u64,
    count: u32,
    status: u64,
) -> (u64, u64) {
    let bits = (size * 8) as u32;
    let m = mask(size);
    let sb = sign_bit(size);
    let mut f = status;
    let r;
    match m_op {
        Mnemonic::Shl | Mnemonic::Sal => {
            r = if count >= bits { 0 } else { (a << count) & m };
            let cf = count <= bits && (a >> (bits - count)) & 1 != 0;
            f = szp(size, r) | if cf { CF } else { 0 };
            if (r & sb != 0) != cf {
                f |= OF;
            }
        }
        Mnemonic::Shr => {
            r = if count >= bits { 0 } else { a >> count };
            let cf = count <= bits && (a >> (count - 1)) & 1 != 0;
            f = szp(size, r) | if cf { CF } else { 0 };
            if a & sb != 0 {
                f |= OF;
            }
        }
        Mnemonic::Sar => {
            let s = sext(size, a) as i64;
            let c = count.min(63);
            r = ((s >> c) as u64) & m;
            let cf = ((s >> (c - 1)) & 1) != 0;
            f = szp(size, r) | if cf { CF } else { 0 };
        }
        Mnemonic::Rol => {
            let c = count % bits;
            r = if c == 0 {
                a
            } else {
                ((a << c) | (a >> (bits - c))) & m
            };
            f &= !(CF | OF);
            if r & 1 != 0 {
                f |= CF;
            }
            if ((r & sb != 0) as u64 ^ (r & 1)) != 0 {
                f |= OF;
            }
        }
        Mnemonic::Ror => {
            let c = count % bits;
            r = if c == 0 {
                a
            } else {
                ((a >> c) | (a << (bits - c))) & m
            };
            f &= !(CF | OF);
            if r & sb != 0 {
                f |= CF;
            }
            if ((r >> (bits - 1)) ^ (r >> (bits - 2))) & 1 != 0 {
                f |= OF;
            }
        }
        _ => {
            // RCL / RCR rotate through CF over bits + 1 positions.
            let width = bits + 1;
            let c = count % width;
            let cf_in = (status & CF != 0) as u128;
            let wide = (a as u128) | (cf_in << bits);
            let wmask = (1u128 << width) - 1;
            let rot = if c == 0 {
                wide
            } else if m_op == Mnemonic::Rcl {
                ((wide << c) | (wide >> (width - c))) & wmask
            } else {
                ((wide >> c) | (wide << (width - c))) & wmask
            };
            r = (rot as u64) & m;
            let cf = (rot >> bits) & 1 != 0;
            f &= !(CF | OF);
            if cf {
                f |= CF;
            }
            let of = if m_op == Mnemonic::Rcl {
                (r & sb != 0) != cf
            } else {
                ((r >> (bits - 1)) ^ (r >> (bits - 2))) & 1 != 0
            };
            if of {
                f |= OF;
            }
        }
    }
    (r, f)
}
