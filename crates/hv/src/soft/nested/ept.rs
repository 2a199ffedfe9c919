//! EPT for L1: shadow EPT tables that compose L1's EPT (L2-physical to
//! L1-physical) with L0's (L1-physical to host-physical, the identity over
//! RAM), filled lazily.
//!
//! vmcs02 starts on an empty shadow root, so L2's first access to each page
//! is an EPT violation. L0 then walks L1's EPT for the L2-physical address
//! (SDM Vol. 3C §29.3.2). When L1 maps it to RAM with the permissions the
//! access needs, L0 installs a 4 KiB mapping with L1's permissions and L2
//! retries. When L1's EPT does not allow the access, the violation goes to
//! L1 with the qualification L1's tables give (§28.2.1, Table 28-7); a
//! misconfigured L1 entry is an EPT misconfiguration for L1 (§29.3.3.1).
//!
//! The shadow is thrown away when L1 enters with a different EPTP, executes
//! INVEPT, or when the pool of shadow pages runs out. Like a TLB, it may
//! keep a translation L1 has since changed until then, which the SDM allows
//! for present entries (§29.4.3); entries L1 had not present are never kept.
//!
//! Accessed and dirty flags (EPTP bit 6, §29.3.5) are set at fill time:
//! the fill that lets an access through sets the accessed flag (bit 8) of
//! every L1 entry the walk used and, for a write, the dirty flag (bit 9)
//! of the leaf (`AdUpdate`). While the leaf's dirty flag is clear the
//! shadow maps the page without write permission, so L2's first write
//! faults into L0 again and sets it. vmcs02's EPTP has bit 6 too, so the
//! processor's accesses to L2's paging structures are writes, which fault
//! the same way. L0 changes L1's entries while L1 does
//! not run (one processor per VM), so each update is atomic to L1.

use crate::hw::{HwError, VmxHardware};

/// EPT entry bits: read, write, execute.
const R: u64 = 1;
const W: u64 = 2;
const X: u64 = 4;
/// Large page (bit 7).
const PS: u64 = 1 << 7;
/// Write-back memory type in a leaf (bits 5:3).
const MT_WB: u64 = 6 << 3;
/// Address bits of an entry.
const ADDR: u64 = 0x000F_FFFF_FFFF_F000;
/// Accessed flag of an entry, dirty flag of a leaf (SDM Vol. 3C §29.3.5).
pub(crate) const ACCESSED: u64 = 1 << 8;
/// Dirty flag of a leaf.
pub(crate) const DIRTY: u64 = 1 << 9;
/// EPTP bit 6: accessed and dirty flags enabled.
pub(crate) const EPTP_AD: u64 = 1 << 6;

/// What L1's EPT says about an L2-physical address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum L1Walk {
    /// Mapped to this L1-physical address with these R/W/X permissions
    /// (the AND over the walk, bits 2:0).
    Mapped { gpa1: u64, perms: u64 },
    /// An entry on the way is not present; `perms` as far as the walk got
    /// (0: the AND includes the non-present entry).
    NotPresent,
    /// An entry is misconfigured (write without read, execute without read,
    /// a reserved memory type, a large page where none can be, an address
    /// beyond the physical-address width).
    Misconfigured,
}

/// Whether an EPTP is one L1 may use (SDM §27.2.1.1), against what L1 is
/// offered (`EPT_VPID_CAP`): write-back, 4-level walk, accessed/dirty flags
/// (bit 6) either way, reserved bits 11:7 clear, the PML4 inside the
/// physical-address width.
pub(crate) fn eptp_valid(eptp: u64, phys_bits: u32) -> bool {
    x86::vmx::eptp_valid(eptp, super::caps::EPT_VPID_CAP, phys_bits)
}

/// Walks L1's EPT (its tables in L1-physical memory, which is host-physical
/// under L0's identity EPT) for `gpa2`. A table outside L1's RAM `[0, ram)`
/// counts as misconfigured: L0 reads nothing but L1's memory for L1.
pub(crate) fn walk_l1(
    hw: &impl VmxHardware,
    eptp: u64,
    gpa2: u64,
    phys_bits: u32,
    ram: u64,
) -> Result<L1Walk, HwError> {
    let mut table = eptp & ADDR;
    let mut perms = R | W | X;
    for level in (1..=4u32).rev() {
        let shift = 12 + 9 * (level - 1);
        if table >= ram {
            return Ok(L1Walk::Misconfigured);
        }
        let mut b = [0u8; 8];
        hw.read_phys(table + ((gpa2 >> shift) & 0x1FF) * 8, &mut b)?;
        let entry = u64::from_le_bytes(b);
        let rwx = entry & 7;
        if rwx == 0 {
            return Ok(L1Walk::NotPresent);
        }
        let leaf = level == 1 || entry & PS != 0;
        let memory_type = (entry >> 3) & 7;
        // Reserved bits (SDM §29.3.3.1): 7:3 of a PML4E, 6:3 of a PDPTE or
        // PDE naming a table, 29:12 of a 1 GiB and 20:12 of a 2 MiB page.
        let reserved = match (level, leaf) {
            (4, _) => 0xF8,
            (3 | 2, false) => 0x78,
            (3, true) => 0x3FFF_F000,
            (2, true) => 0x1F_F000,
            _ => 0,
        };
        if rwx & R == 0
            || (entry & ADDR) >> phys_bits != 0
            || entry & reserved != 0
            || (leaf && matches!(memory_type, 2 | 3 | 7))
        {
            return Ok(L1Walk::Misconfigured);
        }
        perms &= rwx;
        if leaf {
            let size = 1u64 << shift;
            let gpa1 = (entry & ADDR & !(size - 1)) | (gpa2 & (size - 1));
            return Ok(L1Walk::Mapped { gpa1, perms });
        }
        table = entry & ADDR;
    }
    Ok(L1Walk::NotPresent)
}

/// The accessed and dirty flags an access L1's EPT allows still has to set
/// (SDM Vol. 3C §29.3.5): the L1 entries whose flags go from 0 to 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AdUpdate {
    /// L1-physical address of each entry and the flags it gains.
    slots: [(u64, u64); 4],
    len: usize,
    /// The leaf's dirty flag goes from 0 to 1 (a write to a clean page).
    pub dirtied: bool,
    /// The leaf's dirty flag is set once the update is done.
    pub dirty: bool,
}

impl AdUpdate {
    /// What an access to `gpa2` (a write when `write`) must set in L1's EPT
    /// at `eptp`, for an address `walk_l1` found mapped with the access
    /// allowed (so every table lies in L1's RAM).
    pub(crate) fn of(
        hw: &impl VmxHardware,
        eptp: u64,
        gpa2: u64,
        write: bool,
    ) -> Result<Self, HwError> {
        let mut u = AdUpdate::default();
        let mut table = eptp & ADDR;
        for level in (1..=4u32).rev() {
            let slot = table + ((gpa2 >> (12 + 9 * (level - 1))) & 0x1FF) * 8;
            let entry = read_entry(hw, slot)?;
            let leaf = level == 1 || entry & PS != 0;
            let mut gains = ACCESSED & !entry;
            if leaf && write && entry & DIRTY == 0 {
                gains |= DIRTY;
                u.dirtied = true;
            }
            if gains != 0 {
                u.slots[u.len] = (slot, gains);
                u.len += 1;
            }
            if leaf {
                u.dirty = write || entry & DIRTY != 0;
                break;
            }
            table = entry & ADDR;
        }
        Ok(u)
    }

    /// Sets the flags in L1's memory: a read-modify-write of each entry
    /// while L1 does not run, so nothing L1 does comes in between.
    pub(crate) fn apply(&self, hw: &mut impl VmxHardware) -> Result<(), HwError> {
        for &(slot, gains) in &self.slots[..self.len] {
            let entry = read_entry(&*hw, slot)?;
            hw.write_phys(slot, &(entry | gains).to_le_bytes())?;
        }
        Ok(())
    }
}

fn read_entry(hw: &impl VmxHardware, slot: u64) -> Result<u64, HwError> {
    let mut b = [0u8; 8];
    hw.read_phys(slot, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// L0's shadow of L1's EPT: a pool of host pages, the root first.
#[derive(Debug, Clone)]
pub(crate) struct ShadowEpt {
    pool: u64,
    pages: u64,
    used: u64,
    /// The EPTP of L1's the shadow reflects.
    pub shadowed: Option<u64>,
}

impl ShadowEpt {
    /// A shadow in the `pages` host pages from `pool`.
    pub(crate) fn new(pool: u64, pages: u64) -> Self {
        ShadowEpt {
            pool,
            pages,
            used: 0,
            shadowed: None,
        }
    }

    /// The EPTP vmcs02 uses: the shadow root, write-back, 4-level walk,
    /// and accessed and dirty flags when L1's EPTP has them, so that the
    /// processor treats L2's page walks as writes (SDM Vol. 3C §29.3.3.2)
    /// and a walk through a page the shadow maps read-only comes to L0.
    pub(crate) fn eptp(&self) -> u64 {
        self.pool | 6 | 3 << 3 | self.shadowed.unwrap_or(0) & EPTP_AD
    }

    /// Empties the shadow (every L2 access faults in again), for L1's EPTP
    /// `eptp` from now on.
    pub(crate) fn reset(
        &mut self,
        hw: &mut impl VmxHardware,
        eptp: Option<u64>,
    ) -> Result<(), HwError> {
        hw.write_phys(self.pool, &[0u8; 4096])?;
        self.used = 1;
        self.shadowed = eptp;
        Ok(())
    }

    /// A zeroed page from the pool, or `None` when it is used up.
    fn alloc(&mut self, hw: &mut impl VmxHardware) -> Result<Option<u64>, HwError> {
        if self.used >= self.pages {
            return Ok(None);
        }
        let page = self.pool + self.used * 4096;
        self.used += 1;
        hw.write_phys(page, &[0u8; 4096])?;
        Ok(Some(page))
    }

    /// Maps the 4 KiB page of `gpa2` to the host page of `hpa` with `perms`;
    /// when the pool runs out the shadow starts over with just this page.
    pub(crate) fn install(
        &mut self,
        hw: &mut impl VmxHardware,
        gpa2: u64,
        hpa: u64,
        perms: u64,
    ) -> Result<(), HwError> {
        if self.try_install(hw, gpa2, hpa, perms)? {
            return Ok(());
        }
        let eptp = self.shadowed;
        self.reset(hw, eptp)?;
        self.try_install(hw, gpa2, hpa, perms).map(|_| ())
    }

    fn try_install(
        &mut self,
        hw: &mut impl VmxHardware,
        gpa2: u64,
        hpa: u64,
        perms: u64,
    ) -> Result<bool, HwError> {
        let mut table = self.pool;
        for level in (2..=4u32).rev() {
            let shift = 12 + 9 * (level - 1);
            let slot = table + ((gpa2 >> shift) & 0x1FF) * 8;
            let mut b = [0u8; 8];
            hw.read_phys(slot, &mut b)?;
            let entry = u64::from_le_bytes(b);
            table = if entry & 7 != 0 {
                entry & ADDR
            } else {
                let Some(page) = self.alloc(hw)? else {
                    return Ok(false);
                };
                hw.write_phys(slot, &(page | R | W | X | ACCESSED).to_le_bytes())?;
                page
            };
        }
        // The shadow's own flags are set from the start: the processor
        // need not set them, and caches what it reads through them.
        let leaf = (hpa & ADDR) | MT_WB | (perms & 7) | ACCESSED | DIRTY;
        hw.write_phys(table + ((gpa2 >> 12) & 0x1FF) * 8, &leaf.to_le_bytes())?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::test_hw::FakeHw;

    const RAM: u64 = 1 << 22;

    fn hw() -> FakeHw {
        FakeHw {
            memory: vec![0; 1 << 22],
            ..FakeHw::default()
        }
    }

    fn put(hw: &mut FakeHw, addr: u64, entry: u64) {
        hw.write_phys(addr, &entry.to_le_bytes()).unwrap();
    }

    /// L1's EPT at 0x1000: PML4 → PDPT 0x2000 → PD 0x3000; PD entry 0 a
    /// page table at 0x4000, PD entry 1 a 2 MiB page at 0x20_0000 (R only).
    fn l1_ept(hw: &mut FakeHw) -> u64 {
        put(hw, 0x1000, 0x2000 | 7);
        put(hw, 0x2000, 0x3000 | 7);
        put(hw, 0x3000, 0x4000 | 7);
        put(hw, 0x3008, 0x20_0000 | PS | MT_WB | R);
        // L2 page 5 → L1 page 0x9_0000, read/write.
        put(hw, 0x4000 + 5 * 8, 0x9_0000 | MT_WB | R | W);
        0x1000 | 6 | 3 << 3
    }

    #[test]
    fn walks_compose_permissions_and_large_pages() {
        let mut h = hw();
        let eptp = l1_ept(&mut h);
        assert_eq!(
            walk_l1(&h, eptp, 0x5123, 39, RAM),
            Ok(L1Walk::Mapped {
                gpa1: 0x9_0123,
                perms: R | W
            })
        );
        assert_eq!(
            walk_l1(&h, eptp, 0x20_1234, 39, RAM),
            Ok(L1Walk::Mapped {
                gpa1: 0x20_1234,
                perms: R
            })
        );
        assert_eq!(walk_l1(&h, eptp, 0x6000, 39, RAM), Ok(L1Walk::NotPresent));
        assert_eq!(walk_l1(&h, eptp, 1 << 30, 39, RAM), Ok(L1Walk::NotPresent));
        // Write without read, and a reserved memory type, are misconfigured.
        put(&mut h, 0x4000 + 6 * 8, 0xA_0000 | MT_WB | W);
        assert_eq!(
            walk_l1(&h, eptp, 0x6000, 39, RAM),
            Ok(L1Walk::Misconfigured)
        );
        put(&mut h, 0x4000 + 6 * 8, 0xA_0000 | 2 << 3 | R);
        assert_eq!(
            walk_l1(&h, eptp, 0x6000, 39, RAM),
            Ok(L1Walk::Misconfigured)
        );
        // Reserved bits: a PD entry naming a table with bit 3 set, a 2 MiB
        // page with bit 12 set.
        put(&mut h, 0x3000, 0x4000 | 7 | 1 << 3);
        assert_eq!(
            walk_l1(&h, eptp, 0x5000, 39, RAM),
            Ok(L1Walk::Misconfigured)
        );
        put(&mut h, 0x3000, 0x4000 | 7);
        put(&mut h, 0x3008, 0x20_1000 | PS | MT_WB | R);
        assert_eq!(
            walk_l1(&h, eptp, 0x20_0000, 39, RAM),
            Ok(L1Walk::Misconfigured)
        );
        put(&mut h, 0x3008, 0x20_0000 | PS | MT_WB | R);
        // An L1 table outside L1's RAM is a misconfiguration for L1.
        put(&mut h, 0x3010, 0x7FFF_F000 | 7);
        assert_eq!(
            walk_l1(&h, eptp, 0x40_0000, 39, RAM),
            Ok(L1Walk::Misconfigured)
        );
    }

    #[test]
    fn eptps() {
        assert!(eptp_valid(0x1000 | 6 | 3 << 3, 39));
        assert!(!eptp_valid(0x1000 | 3 << 3, 39), "UC not offered");
        assert!(!eptp_valid(0x1000 | 6 | 2 << 3, 39), "3-level walk");
        assert!(eptp_valid(0x1000 | 6 | 3 << 3 | 1 << 6, 39), "A/D flags");
        assert!(!eptp_valid(0x1000 | 6 | 3 << 3 | 1 << 7, 39));
        assert!(!eptp_valid(1 << 40 | 6 | 3 << 3, 39));
    }

    #[test]
    fn the_shadow_fills_page_by_page_and_starts_over_when_full() {
        let mut h = hw();
        // A pool of 4 pages at 0x10_0000: root + PDPT + PD + PT.
        let mut s = ShadowEpt::new(0x10_0000, 4);
        s.reset(&mut h, Some(0x1000)).unwrap();
        s.install(&mut h, 0x5123, 0x9_0000, R | W).unwrap();
        // The shadow is an EPT whose walk gives the composition.
        assert_eq!(
            walk_l1(&h, s.eptp(), 0x5123, 39, RAM),
            Ok(L1Walk::Mapped {
                gpa1: 0x9_0123,
                perms: R | W
            })
        );
        // Another page in the same table: no new pages needed.
        s.install(&mut h, 0x6000, 0xA_0000, R).unwrap();
        assert!(matches!(
            walk_l1(&h, s.eptp(), 0x6000, 39, RAM),
            Ok(L1Walk::Mapped {
                gpa1: 0xA_0000,
                perms: R
            })
        ));
        // A page 1 GiB away needs three more: the pool starts over.
        s.install(&mut h, 1 << 30, 0xB_0000, R | W | X).unwrap();
        assert_eq!(
            walk_l1(&h, s.eptp(), 0x5123, 39, RAM),
            Ok(L1Walk::NotPresent)
        );
        assert!(matches!(
            walk_l1(&h, s.eptp(), 1 << 30, 39, RAM),
            Ok(L1Walk::Mapped { gpa1: 0xB_0000, .. })
        ));
        assert_eq!(s.shadowed, Some(0x1000));
    }

    #[test]
    fn the_shadow_has_accessed_and_dirty_flags_when_l1_has_them() {
        let mut h = hw();
        let mut s = ShadowEpt::new(0x10_0000, 4);
        s.reset(&mut h, Some(0x1000 | 6 | 3 << 3)).unwrap();
        assert_eq!(s.eptp() & EPTP_AD, 0);
        s.reset(&mut h, Some(0x1000 | 6 | 3 << 3 | EPTP_AD))
            .unwrap();
        assert_eq!(s.eptp(), 0x10_0000 | 6 | 3 << 3 | EPTP_AD);
        // Its entries come with their flags set: the processor finds
        // nothing to set in them, and its walks of them are allowed.
        s.install(&mut h, 0x5000, 0x9_0000, R | X).unwrap();
        let mut b = [0u8; 8];
        h.read_phys(0x10_0000, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b) & ACCESSED, ACCESSED);
        let leaf = 0x10_3000 + 5 * 8;
        h.read_phys(leaf, &mut b).unwrap();
        assert_eq!(
            u64::from_le_bytes(b),
            0x9_0000 | MT_WB | R | X | ACCESSED | DIRTY
        );
    }
}
