//! Linear → guest-physical → host-physical translation: 32-bit, PAE and
//! 4-level paging (SDM Vol. 3A chapter 4), EPT (Vol. 3C chapter 29), and a
//! TLB that caches the combined result.

use crate::cpu::SoftCpu;
use crate::fault::{Ex, ExitInfo, Stop};
use x86::cr::{CR0_PG, CR0_WP, CR4_PAE, CR4_PSE, EFER_NXE};
use x86::exception::{PFEC_FETCH, PFEC_PRESENT, PFEC_RSVD, PFEC_USER, PFEC_WRITE};

/// The kind of a memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Data read.
    Read,
    /// Data write.
    Write,
    /// Instruction fetch.
    Fetch,
}

/// Entries in the TLB (a power of two: the index is the page number's low bits).
pub(crate) const TLB_SIZE: usize = 1024;
/// TLB entry flag: writable.
pub(crate) const F_WRITABLE: u8 = 1;
/// TLB entry flag: user-accessible.
pub(crate) const F_USER: u8 = 2;
const F_EXEC: u8 = 4;
/// TLB entry flag: the dirty flag is set (a write needs no walk).
pub(crate) const F_DIRTY: u8 = 8;

/// One TLB entry; the layout is fixed (`repr(C)`) because translated code
/// reads entries directly (`crate::jit`): `tag` at byte 0, `hpa` at 8,
/// `flags` at 16, 24 bytes in all.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct TlbEntry {
    /// Linear page number + 1 (0 = invalid).
    tag: u64,
    /// Host-physical page base.
    hpa: u64,
    flags: u8,
}

/// A direct-mapped TLB of combined linear → host-physical translations.
pub(crate) struct Tlb {
    entries: Box<[TlbEntry; TLB_SIZE]>,
    /// Incremented by every flush, so cached translations elsewhere know to look again.
    pub(crate) gen: u64,
}

impl Tlb {
    pub(crate) fn new() -> Self {
        Tlb {
            entries: Box::new([TlbEntry::default(); TLB_SIZE]),
            gen: 0,
        }
    }
    /// The first entry, for translated code's lookups (entry `page %
    /// TLB_SIZE` of linear page `page`).
    pub(crate) fn entries_ptr(&self) -> *const TlbEntry {
        self.entries.as_ptr()
    }

    /// Drops every entry (CR3 load, paging-mode change, VM entry/exit).
    pub(crate) fn flush(&mut self) {
        self.gen += 1;
        self.entries.fill(TlbEntry::default());
    }
    /// Drops the entry for one linear page (INVLPG).
    pub(crate) fn flush_page(&mut self, la: u64) {
        self.gen += 1;
        let page = la >> 12;
        let e = &mut self.entries[page as usize % TLB_SIZE];
        if e.tag == page + 1 {
            *e = TlbEntry::default();
        }
    }
}

/// Result of a guest page walk.
struct Walk {
    gpa: u64,
    flags: u8,
}

const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;
/// EPTP bit 6: accessed and dirty flags for EPT (SDM Vol. 3C §29.3.5).
const EPTP_AD: u64 = 1 << 6;
/// Accessed flag of an EPT entry, dirty flag of an EPT leaf.
const EPT_ACCESSED: u64 = 1 << 8;
const EPT_DIRTY: u64 = 1 << 9;
const NX_BIT: u64 = 1 << 63;
/// Address bits 51:MAXPHYADDR of a 64-bit paging entry: reserved above this
/// CPU's MAXPHYADDR (CPUID.80000008H:EAX[7:0]; SDM Vol. 3A §4.5).
const RSVD_PHYS: u64 = ADDR_MASK & !((1 << crate::cpuid::PHYS_ADDR_BITS) - 1);

impl SoftCpu {
    /// Translates a linear address; `user` selects user-mode permission checks
    /// (false for supervisor and implicit supervisor accesses such as event delivery).
    #[inline(always)]
    pub(crate) fn translate_as(&mut self, la: u64, access: Access, user: bool) -> Ex<u64> {
        if let Some(hpa) = self.tlb_hit(la, access, user) {
            return Ok(hpa);
        }
        self.translate_slow(la, access, user)
    }

    /// The host-physical address of `la` when the TLB holds an entry for
    /// its page that allows the access (a write also needs the dirty bit
    /// already set); `None` otherwise.
    #[inline(always)]
    pub(crate) fn tlb_hit(&self, la: u64, access: Access, user: bool) -> Option<u64> {
        let page = la >> 12;
        let e = self.tlb.entries[page as usize % TLB_SIZE];
        if e.tag != page + 1 {
            return None;
        }
        let ok = match access {
            Access::Read => !user || e.flags & F_USER != 0,
            Access::Fetch => e.flags & F_EXEC != 0 && (!user || e.flags & F_USER != 0),
            Access::Write => {
                e.flags & F_DIRTY != 0
                    && (!user || e.flags & F_USER != 0)
                    && (e.flags & F_WRITABLE != 0 || (!user && self.s.cr0 & CR0_WP == 0))
            }
        };
        ok.then_some(e.hpa | (la & 0xFFF))
    }

    fn translate_slow(&mut self, la: u64, access: Access, user: bool) -> Ex<u64> {
        let walk = if self.s.cr0 & CR0_PG == 0 {
            let gpa = if self.s.long_mode() {
                la
            } else {
                la & 0xFFFF_FFFF
            };
            Walk {
                gpa,
                flags: F_WRITABLE | F_USER | F_EXEC | F_DIRTY,
            }
        } else {
            self.walk(la, access, user)?
        };
        let (hpa, cacheable) = self.gpa_to_hpa(walk.gpa, access, Some(la))?;
        if cacheable {
            let page = la >> 12;
            self.tlb.entries[page as usize % TLB_SIZE] = TlbEntry {
                tag: page + 1,
                hpa: hpa & !0xFFF,
                flags: walk.flags,
            };
        }
        Ok(hpa)
    }

    /// Guest-physical → host-physical through EPT when it is enabled.
    /// Returns the address and whether the translation may be cached (full access).
    pub(crate) fn gpa_to_hpa(
        &mut self,
        gpa: u64,
        access: Access,
        la: Option<u64>,
    ) -> Ex<(u64, bool)> {
        let Some(eptp) = self.vmx.ept_pointer() else {
            return Ok((gpa, true));
        };
        self.ept_walk(eptp, gpa, access, la)
    }

    /// EPT walk (SDM Vol. 3C §29.3.2); a missing or insufficient entry is an
    /// EPT violation (§29.3.3.2) with the qualification of Table 28-7. With
    /// accessed and dirty flags on (EPTP bit 6, §29.3.5), an access that is
    /// allowed sets the accessed flag of every entry used and, for a write,
    /// the leaf's dirty flag; a read of a clean page is not cached, so a
    /// later write walks again and sets the flag.
    fn ept_walk(
        &mut self,
        eptp: u64,
        gpa: u64,
        access: Access,
        la: Option<u64>,
    ) -> Ex<(u64, bool)> {
        let mut table = eptp & ADDR_MASK;
        let mut perms = 7u64;
        let mut level = 4;
        let violation = |perms: u64| {
            let mut q = match access {
                Access::Read => 1,
                Access::Write => 2,
                Access::Fetch => 4,
            };
            q |= (perms & 7) << 3;
            if la.is_some() {
                q |= 1 << 7 | 1 << 8;
            }
            let mut info = ExitInfo::new(x86::vmx::exit_reason::EPT_VIOLATION, q);
            info.guest_physical = gpa;
            info.guest_linear = la.unwrap_or(0);
            Stop::VmExit(info)
        };
        if gpa >> 48 != 0 {
            return Err(violation(0));
        }
        let mut used = [0u64; 4];
        loop {
            let index = (gpa >> (12 + 9 * (level - 1))) & 0x1FF;
            used[4 - level] = table + index * 8;
            let entry = self.mem.read_u64(table + index * 8).map_err(|_| {
                Stop::VmExit(ExitInfo::new(x86::vmx::exit_reason::EPT_MISCONFIG, 0))
            })?;
            if entry & 7 == 0 {
                return Err(violation(0));
            }
            perms &= entry & 7;
            let leaf = level == 1 || ((level == 2 || level == 3) && entry & (1 << 7) != 0);
            if leaf {
                let page_bits = 12 + 9 * (level - 1);
                let base = entry & ADDR_MASK & !((1u64 << page_bits) - 1);
                let hpa = base | (gpa & ((1u64 << page_bits) - 1));
                let need = match access {
                    Access::Read => 1,
                    Access::Write => 2,
                    Access::Fetch => 4,
                };
                if perms & need == 0 {
                    return Err(violation(perms));
                }
                let mut cacheable = perms == 7;
                if eptp & EPTP_AD != 0 {
                    let write = access == Access::Write;
                    for (k, &slot) in used[..=4 - level].iter().enumerate() {
                        let leaf_write = k == 4 - level && write;
                        let bits = EPT_ACCESSED | if leaf_write { EPT_DIRTY } else { 0 };
                        self.set_bits(slot, true, bits);
                    }
                    cacheable &= write || entry & EPT_DIRTY != 0;
                }
                return Ok((hpa, cacheable));
            }
            table = entry & ADDR_MASK;
            level -= 1;
        }
    }

    /// Reads a guest paging-structure entry by guest-physical address.
    fn read_pte(&mut self, gpa: u64, wide: bool, la: u64) -> Ex<(u64, u64)> {
        let (hpa, _) = self.gpa_to_hpa_structure(gpa, la)?;
        let v = if wide {
            self.mem.read_u64(hpa).unwrap_or(u64::MAX)
        } else {
            self.mem
                .read_u32(hpa)
                .map(u64::from)
                .unwrap_or(u64::from(u32::MAX))
        };
        Ok((v, hpa))
    }

    fn gpa_to_hpa_structure(&mut self, gpa: u64, la: u64) -> Ex<(u64, bool)> {
        // Accesses to paging structures are reads, reported with qualification
        // bit 8 clear; with EPT accessed and dirty flags on they are writes,
        // reported with bits 0 and 1 (SDM Vol. 3C §29.3.3.2, Table 28-7).
        let ad = self.vmx.ept_pointer().is_some_and(|p| p & EPTP_AD != 0);
        let access = if ad { Access::Write } else { Access::Read };
        self.gpa_to_hpa(gpa, access, None)
            .map_err(|stop| match stop {
                Stop::VmExit(mut info) => {
                    if info.reason == x86::vmx::exit_reason::EPT_VIOLATION && ad {
                        info.qualification |= 1;
                    }
                    info.qualification |= 1 << 7;
                    info.guest_linear = la;
                    Stop::VmExit(info)
                }
                other => other,
            })
    }

    fn set_bits(&mut self, hpa: u64, wide: bool, bits: u64) {
        if wide {
            if let Ok(v) = self.mem.read_u64(hpa) {
                if v & bits != bits {
                    let _ = self.mem.write(hpa, &(v | bits).to_le_bytes());
                }
            }
        } else if let Ok(v) = self.mem.read_u32(hpa) {
            let b = bits as u32;
            if v & b != b {
                let _ = self.mem.write(hpa, &(v | b).to_le_bytes());
            }
        }
    }

    /// The guest page walk for the current paging mode, with permission
    /// checks, accessed/dirty updates and #PF error codes (SDM Vol. 3A §4.6, §4.7).
    fn walk(&mut self, la: u64, access: Access, user: bool) -> Ex<Walk> {
        let pae = self.s.cr4 & CR4_PAE != 0;
        let long = self.s.long_mode();
        let nxe = self.s.efer & EFER_NXE != 0;
        let wide = pae || long;
        let mut ec = match access {
            Access::Write => PFEC_WRITE,
            Access::Fetch if nxe => PFEC_FETCH,
            _ => 0,
        };
        if user {
            ec |= PFEC_USER;
        }
        let la = if long { la } else { la & 0xFFFF_FFFF };
        // Non-canonical addresses raise #GP before paging; callers check, but be safe.
        if long && !x86::address::is_canonical(la) {
            return Err(crate::fault::Exception::gp(0).into());
        }
        let pf = |ec: u32| Stop::PageFault {
            addr: la,
            error_code: ec,
        };
        // Levels: (shift, index bits) from the top.
        let (mut table, levels): (u64, &[u32]) = if long {
            (self.s.cr3 & ADDR_MASK, &[39, 30, 21, 12])
        } else if pae {
            // PDPTE from CR3 (read at walk time: a documented simplification of
            // the PDPTE registers loaded on MOV CR3).
            let pdpte_gpa = (self.s.cr3 & 0xFFFF_FFE0) + ((la >> 30) & 3) * 8;
            let (pdpte, _) = self.read_pte(pdpte_gpa, true, la)?;
            if pdpte & 1 == 0 {
                return Err(pf(ec));
            }
            if pdpte & 0x1E6 != 0 {
                return Err(pf(ec | PFEC_PRESENT | PFEC_RSVD));
            }
            (pdpte & ADDR_MASK, &[21, 12])
        } else {
            (self.s.cr3 & 0xFFFF_F000, &[22, 12])
        };
        let mut writable = true;
        let mut usr = true;
        let mut exec = true;
        let mut entries: [(u64, u64); 4] = [(0, 0); 4];
        let mut n = 0;
        let mut gpa = 0;
        let mut leaf_dirty = false;
        for (i, &shift) in levels.iter().enumerate() {
            let index_bits = if wide { 9 } else { 10 };
            let index = (la >> shift) & ((1 << index_bits) - 1);
            let entry_gpa = table + index * if wide { 8 } else { 4 };
            let (entry, hpa) = self.read_pte(entry_gpa, wide, la)?;
            if entry & 1 == 0 {
                return Err(pf(ec));
            }
            if wide && ((entry & NX_BIT != 0 && !nxe) || entry & RSVD_PHYS != 0) {
                return Err(pf(ec | PFEC_PRESENT | PFEC_RSVD));
            }
            writable &= entry & 2 != 0;
            usr &= entry & 4 != 0;
            if wide && entry & NX_BIT != 0 {
                exec = false;
            }
            entries[n] = (hpa, entry);
            n += 1;
            let is_last = i == levels.len() - 1;
            let large = !is_last
                && entry & (1 << 7) != 0
                && (shift == 21
                    || (shift == 30 && long)
                    || (shift == 22 && self.s.cr4 & CR4_PSE != 0));
            if large && long && shift == 39 {
                return Err(pf(ec | PFEC_PRESENT | PFEC_RSVD));
            }
            // Large-page entries reserve the address bits below the page
            // size, above the PAT bit (SDM Vol. 3A Table 4-15, 4-17, 4-19).
            if large && wide {
                let rsvd = if shift == 30 { 0x3FFF_E000 } else { 0x1F_E000 };
                if entry & rsvd != 0 {
                    return Err(pf(ec | PFEC_PRESENT | PFEC_RSVD));
                }
            }
            if is_last || large {
                let base = if shift == 22 {
                    // 4 MiB page: bits 31:22, plus PSE-36 bits 20:13 as 39:32.
                    (entry & 0xFFC0_0000) | ((entry >> 13) & 0xFF) << 32
                } else {
                    entry & ADDR_MASK & !((1u64 << shift) - 1)
                };
                gpa = base | (la & ((1u64 << shift) - 1));
                leaf_dirty = entry & (1 << 6) != 0;
                break;
            }
            table = entry & if wide { ADDR_MASK } else { 0xFFFF_F000 };
        }
        // Permission checks (SDM Vol. 3A §4.6).
        let wp = self.s.cr0 & CR0_WP != 0;
        let denied = match access {
            Access::Read => user && !usr,
            Access::Write => {
                if user {
                    !usr || !writable
                } else {
                    !writable && wp
                }
            }
            Access::Fetch => (user && !usr) || !exec,
        };
        if denied {
            return Err(pf(ec | PFEC_PRESENT));
        }
        // Accessed bits on every level; dirty on the leaf for writes.
        for (k, &(hpa, _)) in entries[..n].iter().enumerate() {
            let mut bits = 1 << 5;
            if k == n - 1 && access == Access::Write {
                bits |= 1 << 6;
            }
            self.set_bits(hpa, wide, bits);
        }
        let mut flags = 0;
        if writable {
            flags |= F_WRITABLE;
        }
        if usr {
            flags |= F_USER;
        }
        if exec {
            flags |= F_EXEC;
        }
        if leaf_dirty || access == Access::Write {
            flags |= F_DIRTY;
        }
        Ok(Walk { gpa, flags })
    }
}
