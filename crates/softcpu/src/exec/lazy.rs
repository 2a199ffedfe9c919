//! Lazy arithmetic flags for the specialised handlers: the last flag-setting
//! operation is recorded (kind, size, operands, result) and the six status
//! flags are computed only when something reads them. Everything outside
//! `exec/fast.rs` sees materialised flags: the general dispatcher, event
//! delivery and VM exits materialise first.

use super::flags::{mask, sign_bit, szp};
use crate::cpu::SoftCpu;
use x86::rflags::{AF, CF, OF, STATUS};

/// No pending operation: RFLAGS holds the status flags.
pub(crate) const NONE: u8 = 0;
/// Addition: CF from the unsigned carry.
pub(crate) const ADD: u8 = 1;
/// Subtraction or comparison.
pub(crate) const SUB: u8 = 2;
/// AND, OR, XOR, TEST: CF = OF = AF = 0.
pub(crate) const LOGIC: u8 = 3;
/// INC: as ADD of 1, with CF kept from before.
pub(crate) const INC: u8 = 4;
/// DEC: as SUB of 1, with CF kept from before.
pub(crate) const DEC: u8 = 5;

/// The recorded operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lazy {
    pub op: u8,
    pub size: u8,
    /// CF before the operation (INC and DEC keep it).
    pub cf_in: bool,
    pub a: u64,
    pub b: u64,
    pub r: u64,
}

impl Lazy {
    /// CF alone.
    #[inline(always)]
    pub(crate) fn carry(&self) -> bool {
        match self.op {
            ADD => self.r < self.a,
            SUB => self.a < self.b,
            INC | DEC => self.cf_in,
            _ => false,
        }
    }

    /// A condition evaluated straight from the record, for the common
    /// cases; `None` when the full flags are needed.
    #[inline(always)]
    pub(crate) fn condition(&self, cc: iced_x86::ConditionCode) -> Option<bool> {
        use iced_x86::ConditionCode as C;
        let size = self.size as usize;
        let sb = sign_bit(size);
        let zero = self.r == 0;
        let neg = self.r & sb != 0;
        Some(match cc {
            C::e => zero,
            C::ne => !zero,
            C::s => neg,
            C::ns => !neg,
            C::b if self.op != NONE => self.carry(),
            C::ae if self.op != NONE => !self.carry(),
            C::be if self.op == SUB => self.a <= self.b,
            C::a if self.op == SUB => self.a > self.b,
            C::l | C::ge | C::le | C::g if self.op == SUB || self.op == LOGIC => {
                // After CMP, SF != OF is the signed "less" (LOGIC: OF = 0).
                let less = if self.op == SUB {
                    let shift = 64 - 8 * size;
                    ((self.a << shift) as i64) < ((self.b << shift) as i64)
                } else {
                    neg
                };
                match cc {
                    C::l => less,
                    C::ge => !less,
                    C::le => less || zero,
                    _ => !less && !zero,
                }
            }
            _ => return None,
        })
    }

    /// The six status flags the operation produced.
    #[inline]
    pub(crate) fn status(&self) -> u64 {
        let size = self.size as usize;
        let (a, b, r) = (self.a, self.b, self.r & mask(size));
        let sb = sign_bit(size);
        let mut f = szp(size, r);
        match self.op {
            ADD | INC => {
                let carry = if self.op == INC {
                    self.cf_in
                } else {
                    r < (a & mask(size))
                };
                if carry {
                    f |= CF;
                }
                if (a ^ b ^ r) & 0x10 != 0 {
                    f |= AF;
                }
                if (!(a ^ b) & (a ^ r)) & sb != 0 {
                    f |= OF;
                }
            }
            SUB | DEC => {
                let borrow = if self.op == DEC {
                    self.cf_in
                } else {
                    (a & mask(size)) < (b & mask(size))
                };
                if borrow {
                    f |= CF;
                }
                if (a ^ b ^ r) & 0x10 != 0 {
                    f |= AF;
                }
                if ((a ^ b) & (a ^ r)) & sb != 0 {
                    f |= OF;
                }
            }
            _ => {}
        }
        f
    }
}

impl SoftCpu {
    /// Writes the pending status flags into RFLAGS.
    #[inline]
    pub(crate) fn materialize_flags(&mut self) {
        if self.lazy.op != NONE {
            self.s.rflags = (self.s.rflags & !STATUS) | self.lazy.status();
            self.lazy.op = NONE;
        }
    }

    /// The current status flags, pending or not.
    #[inline]
    pub(crate) fn status_flags(&self) -> u64 {
        if self.lazy.op != NONE {
            self.lazy.status()
        } else {
            self.s.rflags & STATUS
        }
    }

    /// Records a flag-setting operation instead of computing its flags.
    #[inline(always)]
    pub(crate) fn set_lazy(&mut self, op: u8, size: usize, a: u64, b: u64, r: u64) {
        let cf_in = if op == INC || op == DEC {
            if self.lazy.op != NONE {
                self.lazy.carry()
            } else {
                self.s.rflags & CF != 0
            }
        } else {
            false
        };
        self.lazy = Lazy {
            op,
            size: size as u8,
            cf_in,
            a: a & mask(size),
            b: b & mask(size),
            r: r & mask(size),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::flags;
    use iced_x86::ConditionCode as C;

    fn record(op: u8, size: usize, a: u64, b: u64, cf_in: bool) -> (Lazy, u64) {
        let m = mask(size);
        let (r, eager) = match op {
            ADD => flags::add(size, a, b, false),
            SUB => flags::sub(size, a, b, false),
            INC => {
                let (r, f) = flags::add(size, a, 1, false);
                (r, (f & !CF) | if cf_in { CF } else { 0 })
            }
            DEC => {
                let (r, f) = flags::sub(size, a, 1, false);
                (r, (f & !CF) | if cf_in { CF } else { 0 })
            }
            _ => (a & b & m, flags::logic(size, a & b)),
        };
        let b = if op == INC || op == DEC { 1 } else { b };
        let lazy = Lazy {
            op,
            size: size as u8,
            cf_in,
            a: a & m,
            b: b & m,
            r,
        };
        (lazy, eager)
    }

    fn eval(cc: C, f: u64) -> bool {
        let s = f & x86::rflags::SF != 0;
        let o = f & x86::rflags::OF != 0;
        let z = f & x86::rflags::ZF != 0;
        let c = f & CF != 0;
        match cc {
            C::e => z,
            C::ne => !z,
            C::s => s,
            C::ns => !s,
            C::b => c,
            C::ae => !c,
            C::be => c || z,
            C::a => !c && !z,
            C::l => s != o,
            C::ge => s == o,
            C::le => z || s != o,
            C::g => !z && s == o,
            _ => true,
        }
    }

    proptest::proptest! {
        #[test]
        fn lazy_flags_match_eager_flags(a: u64, b: u64, cf_in: bool, op in 1u8..6, size_ix in 0usize..4) {
            let size = [1, 2, 4, 8][size_ix];
            let (lazy, eager) = record(op, size, a, b, cf_in);
            proptest::prop_assert_eq!(lazy.status(), eager);
            for cc in [C::e, C::ne, C::s, C::ns, C::b, C::ae, C::be, C::a, C::l, C::ge, C::le, C::g] {
                if let Some(v) = lazy.condition(cc) {
                    proptest::prop_assert_eq!(v, eval(cc, eager), "cc {:?}", cc);
                }
            }
        }
    }
}
