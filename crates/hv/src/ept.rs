//! Identity EPT for guest RAM (SDM Vol. 3C §29.3): guest-physical
//! [0, RAM) maps to host-physical [0, RAM) with read/write/execute and the
//! write-back memory type; everything above is unmapped, so the guest can
//! never reach the hypervisor's own pages.

/// EPT entry bits: read, write, execute.
const RWX: u64 = 7;
/// Leaf memory type write-back (bits 5:3 = 6).
const MT_WB: u64 = 6 << 3;
/// Large page (PS).
const PS: u64 = 1 << 7;

/// Tables to write into host memory, and the EPT pointer.
pub struct EptImage {
    /// (host-physical address, page contents).
    pub pages: Vec<(u64, Vec<u8>)>,
    /// EPTP: WB, 4-level walk.
    pub eptp: u64,
}

/// Number of 4 KiB pages [`build`] needs for `ram` bytes.
pub fn pages_needed(ram: u64) -> u64 {
    let gib = ram.div_ceil(1 << 30);
    let tail_pt = u64::from(!ram.is_multiple_of(2 << 20));
    2 + gib + tail_pt
}

/// Builds identity tables for `ram` bytes (a multiple of 4 KiB, at most 512 GiB),
/// placing them from `base` (4 KiB aligned) upwards.
pub fn build(ram: u64, base: u64) -> EptImage {
    let mut next = base;
    let mut alloc = || {
        let a = next;
        next += 4096;
        a
    };
    let pml4 = alloc();
    let pdpt = alloc();
    let mut pml4_page = vec![0u8; 4096];
    pml4_page[..8].copy_from_slice(&(pdpt | RWX).to_le_bytes());
    let mut pdpt_page = vec![0u8; 4096];
    let mut pages = Vec::new();
    let gib = ram.div_ceil(1 << 30);
    for g in 0..gib {
        let pd = alloc();
        pdpt_page[(g * 8) as usize..(g * 8 + 8) as usize]
            .copy_from_slice(&(pd | RWX).to_le_bytes());
        let mut pd_page = vec![0u8; 4096];
        for i in 0..512u64 {
            let start = (g << 30) + (i << 21);
            if start >= ram {
                break;
            }
            let entry = if start + (2 << 20) <= ram {
                start | RWX | MT_WB | PS
            } else {
                // The tail of RAM below 2 MiB granularity uses a page table.
                let pt = alloc();
                let mut pt_page = vec![0u8; 4096];
                for j in 0..512u64 {
                    let a = start + (j << 12);
                    if a >= ram {
                        break;
                    }
                    pt_page[(j * 8) as usize..(j * 8 + 8) as usize]
                        .copy_from_slice(&(a | RWX | MT_WB).to_le_bytes());
                }
                pages.push((pt, pt_page));
                pt | RWX
            };
            pd_page[(i * 8) as usize..(i * 8 + 8) as usize].copy_from_slice(&entry.to_le_bytes());
        }
        pages.push((pd, pd_page));
    }
    pages.push((pml4, pml4_page));
    pages.push((pdpt, pdpt_page));
    EptImage {
        pages,
        eptp: pml4 | 6 | (3 << 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_count_matches_the_estimate() {
        for ram in [1 << 20, 3 << 20, 128 << 20, (1 << 30) + 4096, 3 << 30] {
            let img = build(ram, 1 << 40);
            assert_eq!(img.pages.len() as u64, pages_needed(ram), "ram {ram:#x}");
        }
    }

    #[test]
    fn eptp_is_write_back_four_level() {
        let img = build(1 << 20, 0x10_0000);
        assert_eq!(img.eptp & 0xFFF, 0x1E);
        assert_eq!(img.eptp & !0xFFF, 0x10_0000);
    }
}
