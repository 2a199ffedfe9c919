//! Guest page walks done by L0 on a guest's behalf (for the memory operand
//! of a VMX instruction, `nested::operand`). MMIO itself needs none: the soft
//! CPU executes the instruction behind an MMIO access (`super::emulate`).

use crate::hw::{HwError, VmxHardware};
use x86::cr::{CR0_PG, CR4_PAE, CR4_PSE, EFER_LMA};
use x86::vmx::field as f;

const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;

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
    walk_through(hw, la, ram, &|gpa| Ok(Some(gpa)))
}

/// A guest-physical address to the processor's physical one: `None` where
/// nothing maps it.
pub(crate) type PhysMap<'a> = &'a dyn Fn(u64) -> Result<Option<u64>, HwError>;

/// As [`walk`], for a guest whose physical addresses `map` turns into the
/// processor's (L2 under L1's EPT, for a debugger): each paging structure is
/// read, and the result given, at `map`'s address. A structure `map` has no
/// address for is an error, as one outside RAM; a result it has none for
/// is `None`.
pub(crate) fn walk_through(
    hw: &impl VmxHardware,
    la: u64,
    ram: u64,
    map: PhysMap<'_>,
) -> Result<Option<Translation>, HwError> {
    let Some(t) = walk_tables(hw, la, ram, map)? else {
        return Ok(None);
    };
    Ok(map(t.gpa)?.map(|gpa| Translation { gpa, ..t }))
}

fn walk_tables(
    hw: &impl VmxHardware,
    la: u64,
    ram: u64,
    map: PhysMap<'_>,
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
        let gpa = map(gpa)?.ok_or(HwError::PhysicalRange(gpa))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::test_hw::FakeHw;

    /// Guest-physical address of the guest-linear address `la`, through the
    /// guest's paging structures (32-bit, PAE or 4-level; SDM Vol. 3A §4.3–§4.5).
    /// hv's EPT is the identity over RAM, so guest-physical is host-physical.
    fn translate(hw: &impl VmxHardware, la: u64, ram: u64) -> Result<u64, ()> {
        match walk(hw, la, ram) {
            Ok(Some(t)) if t.gpa < ram => Ok(t.gpa),
            Ok(_) | Err(_) => Err(()),
        }
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
            fn rdmsr(&mut self, _: u32) -> Option<u64> {
                None
            }
            fn wrmsr(&mut self, _: u32, _: u64) -> bool {
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
