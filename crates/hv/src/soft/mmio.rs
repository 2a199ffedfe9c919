//! The guest instruction behind an MMIO access: an EPT violation on an
//! address that is not RAM stops the guest before the access, so L0 fetches
//! the instruction through the guest's page tables, decodes it and carries
//! the access out against a device — what KVM's x86 emulator does for MMIO.
//! Only the data-movement forms kernels use on device registers are
//! emulated: `MOV` to and from memory (register or immediate source) and
//! `MOVZX`/`MOVSX` loads. Anything else is reported to userspace as an
//! emulation failure.

use crate::hw::{HwError, VmxHardware};
use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use x86::cr::{CR0_PG, CR4_PAE, CR4_PSE, EFER_LMA};
use x86::vmx::field as f;

/// What the instruction does with the MMIO address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Load `size` bytes into `dest`.
    Read {
        /// Access size in bytes.
        size: usize,
        /// Where the loaded value goes.
        dest: Dest,
    },
    /// Store the low `size` bytes of `value`.
    Write {
        /// Access size in bytes.
        size: usize,
        /// The value stored.
        value: u64,
    },
}

/// The register a load writes, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dest {
    /// General-purpose register index (RAX = 0 … R15 = 15).
    index: usize,
    /// Bytes written to the register (1, 2, 4 or 8).
    width: usize,
    /// AH, CH, DH or BH: bits 15:8.
    high8: bool,
    /// Sign-extend the loaded value to `width` (MOVSX) instead of
    /// zero-extending it.
    signed: bool,
}

impl Dest {
    /// The accumulator as `IN` writes it: AL or AX keep the rest of RAX,
    /// EAX zero-extends (the same rule as any load of that width).
    pub(crate) fn rax(width: usize) -> Dest {
        Dest {
            index: 0,
            width,
            high8: false,
            signed: false,
        }
    }
}

/// An instruction that touched MMIO, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MmioInstruction {
    /// The access.
    pub access: Access,
    /// Instruction length, to step over it once the access is done.
    pub len: u64,
}

/// Why the instruction could not be emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MmioError {
    /// The instruction is not one of the emulated forms.
    Unsupported,
    /// Its bytes could not be fetched (page tables changed under it).
    Fetch,
    /// Reading the VMCS or memory failed.
    Hw(HwError),
}

impl From<HwError> for MmioError {
    fn from(e: HwError) -> Self {
        MmioError::Hw(e)
    }
}

const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;

/// Guest-physical address of the guest-linear address `la`, through the
/// guest's paging structures (32-bit, PAE or 4-level; SDM Vol. 3A §4.3–§4.5).
/// hv's EPT is the identity over RAM, so guest-physical is host-physical.
fn translate(hw: &impl VmxHardware, la: u64, ram: u64) -> Result<u64, MmioError> {
    match walk(hw, la, ram) {
        Ok(Some(t)) if t.gpa < ram => Ok(t.gpa),
        Ok(_) | Err(_) => Err(MmioError::Fetch),
    }
}

/// Where a guest-linear address leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Translation {
    /// The guest-physical address.
    pub gpa: u64,
    /// Every level of the walk allows writes (R/W = 1; always with paging off).
    pub writable: bool,
}

/// Walks the current guest's paging structures for `la`: `None` when an
/// entry on the way is not present (a page fault); an error when a paging
/// structure lies outside the guest's RAM `[0, ram)` — L0 never reads its
/// own pages on a guest's behalf. The result may lie outside RAM; callers
/// check.
pub(crate) fn walk(
    hw: &impl VmxHardware,
    la: u64,
    ram: u64,
) -> Result<Option<Translation>, HwError> {
    let cr0 = hw.vmread(f::GUEST_CR0)?;
    if cr0 & CR0_PG == 0 {
        return Ok(Some(Translation {
            gpa: la & 0xFFFF_FFFF,
            writable: true,
        }));
    }
    let cr3 = hw.vmread(f::GUEST_CR3)?;
    let cr4 = hw.vmread(f::GUEST_CR4)?;
    let efer = hw.vmread(f::GUEST_IA32_EFER)?;
    let read = |gpa: u64, size: usize| -> Result<u64, HwError> {
        if gpa.saturating_add(size as u64) > ram {
            return Err(HwError::PhysicalRange(gpa));
        }
        let mut b = [0u8; 8];
        hw.read_phys(gpa, &mut b[..size])?;
        Ok(u64::from_le_bytes(b))
    };
    let present = |e: u64| e & 1 != 0;
    let mut writable = true;
    if cr4 & CR4_PAE == 0 {
        let pde = read((cr3 & 0xFFFF_F000) + ((la >> 22) & 0x3FF) * 4, 4)?;
        if !present(pde) {
            return Ok(None);
        }
        writable &= pde & 2 != 0;
        if pde & 0x80 != 0 && cr4 & CR4_PSE != 0 {
            let gpa = (pde & 0xFFC0_0000) | (la & 0x3F_FFFF);
            return Ok(Some(Translation { gpa, writable }));
        }
        let pte = read((pde & 0xFFFF_F000) + ((la >> 12) & 0x3FF) * 4, 4)?;
        if !present(pte) {
            return Ok(None);
        }
        writable &= pte & 2 != 0;
        let gpa = (pte & 0xFFFF_F000) | (la & 0xFFF);
        return Ok(Some(Translation { gpa, writable }));
    }
    let (mut table, levels) = if efer & EFER_LMA != 0 {
        (cr3 & ADDR_MASK, 4)
    } else {
        let pdpte = read((cr3 & 0xFFFF_FFE0) + ((la >> 30) & 3) * 8, 8)?;
        if !present(pdpte) {
            return Ok(None);
        }
        (pdpte & ADDR_MASK, 2)
    };
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * (level - 1);
        let entry = read(table + ((la >> shift) & 0x1FF) * 8, 8)?;
        if !present(entry) {
            return Ok(None);
        }
        writable &= entry & 2 != 0;
        // A large page at the PDPT (1 GiB) or PD (2 MiB) level.
        if level > 1 && level < 4 && entry & 0x80 != 0 {
            let page = 1u64 << shift;
            let gpa = (entry & ADDR_MASK & !(page - 1)) | (la & (page - 1));
            return Ok(Some(Translation { gpa, writable }));
        }
        table = entry & ADDR_MASK;
    }
    Ok(Some(Translation {
        gpa: table | (la & 0xFFF),
        writable,
    }))
}

/// Fetches and decodes the instruction at the guest's RIP.
/// The instruction bytes must lie in the guest's RAM `[0, ram)`.
pub(crate) fn decode(hw: &impl VmxHardware, ram: u64) -> Result<MmioInstruction, MmioError> {
    let rip = hw.vmread(f::GUEST_RIP)?;
    let cs_base = hw.vmread(f::GUEST_CS_BASE)?;
    let cs_ar = hw.vmread(f::GUEST_CS_AR_BYTES)?;
    let efer = hw.vmread(f::GUEST_IA32_EFER)?;
    let bitness = if efer & EFER_LMA != 0 && cs_ar & u64::from(x86::segment::AR_L) != 0 {
        64
    } else if cs_ar & (1 << 14) != 0 {
        32
    } else {
        16
    };
    let la = if bitness == 64 {
        rip
    } else {
        cs_base.wrapping_add(rip) & 0xFFFF_FFFF
    };
    // Up to 15 bytes, which may cross into the next page.
    let mut bytes = [0u8; 15];
    let first = (4096 - (la & 0xFFF)).min(15) as usize;
    hw.read_phys(translate(hw, la, ram)?, &mut bytes[..first])
        .map_err(|_| MmioError::Fetch)?;
    if first < 15 {
        let next = la.wrapping_add(first as u64);
        let next = if bitness == 64 {
            next
        } else {
            next & 0xFFFF_FFFF
        };
        if let Ok(gpa) = translate(hw, next, ram) {
            // A missing next page only matters if the instruction needs it.
            let _ = hw.read_phys(gpa, &mut bytes[first..]);
        }
    }
    let mut decoder = Decoder::with_ip(bitness, &bytes, rip, DecoderOptions::NONE);
    let ins = decoder.decode();
    if ins.is_invalid() {
        return Err(MmioError::Unsupported);
    }
    let access = access_of(&ins, &hw.gprs())?;
    Ok(MmioInstruction {
        access,
        len: ins.len() as u64,
    })
}

/// Index, width and high-byte flag of a general-purpose register.
fn gpr(r: Register) -> Option<(usize, usize, bool)> {
    if !r.is_gpr() {
        return None;
    }
    let width = r.size();
    let high8 = matches!(r, Register::AH | Register::CH | Register::DH | Register::BH);
    let index = if high8 {
        (r as usize - Register::AH as usize) % 4
    } else {
        r.full_register().number()
    };
    Some((index, width, high8))
}

fn read_gpr(gprs: &[u64; 16], r: Register) -> Option<u64> {
    let (index, width, high8) = gpr(r)?;
    let v = gprs[index];
    Some(if high8 {
        (v >> 8) & 0xFF
    } else {
        v & mask(width)
    })
}

fn mask(width: usize) -> u64 {
    if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (width * 8)) - 1
    }
}

fn access_of(ins: &Instruction, gprs: &[u64; 16]) -> Result<Access, MmioError> {
    let mem_size = ins.memory_size().size();
    match ins.mnemonic() {
        Mnemonic::Mov if ins.op0_kind() == OpKind::Memory => {
            let value = match ins.op1_kind() {
                OpKind::Register => {
                    read_gpr(gprs, ins.op1_register()).ok_or(MmioError::Unsupported)?
                }
                OpKind::Immediate8
                | OpKind::Immediate16
                | OpKind::Immediate32
                | OpKind::Immediate32to64 => ins.immediate(1),
                _ => return Err(MmioError::Unsupported),
            };
            Ok(Access::Write {
                size: mem_size,
                value: value & mask(mem_size),
            })
        }
        m @ (Mnemonic::Mov | Mnemonic::Movzx | Mnemonic::Movsx)
            if ins.op1_kind() == OpKind::Memory =>
        {
            let (index, width, high8) = gpr(ins.op0_register()).ok_or(MmioError::Unsupported)?;
            Ok(Access::Read {
                size: mem_size,
                dest: Dest {
                    index,
                    width,
                    high8,
                    signed: m == Mnemonic::Movsx,
                },
            })
        }
        _ => Err(MmioError::Unsupported),
    }
}

/// Writes a loaded value into its destination register with the
/// architecture's rules: 32-bit results zero the upper half, 8- and 16-bit
/// results leave the rest of the register alone.
pub(crate) fn complete_read(hw: &mut impl VmxHardware, size: usize, dest: Dest, value: u64) {
    let mut v = value & mask(size);
    if dest.signed && size < 8 {
        let shift = 64 - size * 8;
        v = (((v << shift) as i64) >> shift) as u64;
    }
    let mut g = hw.gprs();
    let old = g[dest.index];
    g[dest.index] = match (dest.width, dest.high8) {
        (1, true) => (old & !0xFF00) | ((v & 0xFF) << 8),
        (1, false) => (old & !0xFF) | (v & 0xFF),
        (2, _) => (old & !0xFFFF) | (v & 0xFFFF),
        (4, _) => v & 0xFFFF_FFFF,
        _ => v,
    };
    hw.set_gprs(&g);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::test_hw::FakeHw;

    /// Decodes `code` as 32-bit code against `gprs`.
    fn access(code: &[u8], gprs: [u64; 16]) -> Result<Access, MmioError> {
        let mut d = Decoder::with_ip(32, code, 0, DecoderOptions::NONE);
        access_of(&d.decode(), &gprs)
    }

    #[test]
    fn the_mov_forms() {
        let mut g = [0u64; 16];
        g[0] = 0x1122_3344;
        g[3] = 0xFEE0_0000;
        // mov [ebx+0xb0], eax
        assert_eq!(
            access(&[0x89, 0x83, 0xB0, 0, 0, 0], g),
            Ok(Access::Write {
                size: 4,
                value: 0x1122_3344
            })
        );
        // mov dword [ebx+0x380], 0x1000
        assert_eq!(
            access(&[0xC7, 0x83, 0x80, 3, 0, 0, 0, 0x10, 0, 0], g),
            Ok(Access::Write {
                size: 4,
                value: 0x1000
            })
        );
        // mov ah, [ebx]: a byte load into AH.
        let Ok(Access::Read { size: 1, dest }) = access(&[0x8A, 0x23], g) else {
            panic!()
        };
        let mut hw = FakeHw {
            gprs: g,
            ..FakeHw::default()
        };
        complete_read(&mut hw, 1, dest, 0xAB);
        assert_eq!(hw.gprs[0], 0x1122_AB44);
        // movsx eax, word [ebx]
        let Ok(Access::Read { size: 2, dest }) = access(&[0x0F, 0xBF, 0x03], g) else {
            panic!()
        };
        complete_read(&mut hw, 2, dest, 0x8001);
        assert_eq!(hw.gprs[0], 0xFFFF_8001);
        // add [ebx], eax is not emulated.
        assert_eq!(access(&[0x01, 0x03], g), Err(MmioError::Unsupported));
    }

    #[test]
    fn four_level_and_32_bit_walks() {
        use std::cell::RefCell;
        // A fake whose physical memory is a map of 8-byte words.
        struct Mem {
            hw: FakeHw,
            words: RefCell<std::collections::BTreeMap<u64, u64>>,
        }
        impl VmxHardware for Mem {
            fn vmread(&self, fl: u32) -> Result<u64, HwError> {
                self.hw.vmread(fl)
            }
            fn vmwrite(&mut self, fl: u32, v: u64) -> Result<(), HwError> {
                self.hw.vmwrite(fl, v)
            }
            fn vmclear(&mut self) {}
            fn vmptrld(&mut self, _: u64) -> Result<(), HwError> {
                Ok(())
            }
            fn vmlaunch(&mut self) -> Result<(), HwError> {
                Ok(())
            }
            fn vmresume(&mut self) -> Result<(), HwError> {
                Ok(())
            }
            fn capability(&self, _: u32) -> Option<u64> {
                None
            }
            fn cpuid(&self, _: u32, _: u32) -> [u32; 4] {
                [0; 4]
            }
            fn gprs(&self) -> [u64; 16] {
                self.hw.gprs
            }
            fn set_gprs(&mut self, g: &[u64; 16]) {
                self.hw.gprs = *g;
            }
            fn cr2(&self) -> u64 {
                0
            }
            fn set_cr2(&mut self, _: u64) {}
            fn dr6(&self) -> u64 {
                0
            }
            fn set_dr6(&mut self, _: u64) {}
            fn powered_off(&self) -> bool {
                false
            }
            fn phys_size(&self) -> u64 {
                1 << 32
            }
            fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<(), HwError> {
                let w = self.words.borrow().get(&(addr & !7)).copied().unwrap_or(0);
                let bytes = w.to_le_bytes();
                let off = (addr & 7) as usize;
                let n = buf.len().min(8 - off);
                buf[..n].copy_from_slice(&bytes[off..off + n]);
                Ok(())
            }
            fn write_phys(&mut self, _: u64, _: &[u8]) -> Result<(), HwError> {
                Ok(())
            }
        }
        let la: u64 = 0x0000_7F12_3456_7ABC;
        let mut m = Mem {
            hw: FakeHw::default(),
            words: RefCell::new(Default::default()),
        };
        m.hw.fields.insert(f::GUEST_CR0, CR0_PG | 1);
        m.hw.fields.insert(f::GUEST_CR4, CR4_PAE);
        m.hw.fields.insert(f::GUEST_IA32_EFER, EFER_LMA);
        m.hw.fields.insert(f::GUEST_CR3, 0x1000);
        let idx = |shift: u64| (la >> shift) & 0x1FF;
        m.words.borrow_mut().insert(0x1000 + idx(39) * 8, 0x2003);
        m.words.borrow_mut().insert(0x2000 + idx(30) * 8, 0x3003);
        m.words.borrow_mut().insert(0x3000 + idx(21) * 8, 0x4003);
        m.words
            .borrow_mut()
            .insert(0x4000 + idx(12) * 8, 0x9_9000 | 3);
        assert_eq!(translate(&m, la, 1 << 32), Ok(0x9_9ABC));
        // The same PD entry as a 2 MiB page.
        m.words
            .borrow_mut()
            .insert(0x3000 + idx(21) * 8, 0x20_0000 | 0x83);
        assert_eq!(translate(&m, la, 1 << 32), Ok(0x20_0000 | (la & 0x1F_FFFF)));
        // 32-bit paging with a 4 MiB page.
        m.hw.fields.insert(f::GUEST_CR4, CR4_PSE);
        m.hw.fields.insert(f::GUEST_IA32_EFER, 0);
        let la32 = 0x0840_1234u64;
        m.words.borrow_mut().insert(
            0x1000 + (((la32 >> 22) * 4) & !7),
            (0x0C00_0083u64) << ((((la32 >> 22) * 4) & 4) * 8),
        );
        assert_eq!(
            translate(&m, la32, 1 << 32),
            Ok(0x0C00_0000 | (la32 & 0x3F_FFFF))
        );
    }
}
