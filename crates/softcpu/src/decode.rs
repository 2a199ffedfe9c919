//! The decode cache: instructions decoded once per physical page and reused
//! until the page is written.
//!
//! Each cached page remembers the bitness it was decoded in and the distance
//! between the instruction pointer and the physical address, because iced
//! resolves branch targets and RIP-relative operands to absolute addresses at
//! decode time; a page reached through a different mapping is decoded again.

use iced_x86::{Decoder, DecoderOptions, Instruction};
use std::rc::Rc;

/// Decoded instructions of one physical page.
pub(crate) struct PageCode {
    bitness: u32,
    ip_minus_phys: u64,
    /// Index + 1 into `instrs` for each byte offset; 0 = not decoded yet.
    index: Box<[u32; 4096]>,
    instrs: Vec<Rc<Instruction>>,
}

/// All cached pages, indexed by host-physical page number.
pub(crate) struct DecodeCache {
    pages: Vec<Option<Box<PageCode>>>,
    /// Instructions decoded since creation (for statistics and tests).
    pub(crate) decodes: u64,
}

impl DecodeCache {
    pub(crate) fn new(memory_bytes: u64) -> Self {
        let n = memory_bytes.div_ceil(4096) as usize;
        let mut pages = Vec::with_capacity(n);
        pages.resize_with(n, || None);
        DecodeCache { pages, decodes: 0 }
    }

    /// Drops a page's decoded instructions.
    pub(crate) fn invalidate(&mut self, page: u64) {
        if let Some(slot) = self.pages.get_mut(page as usize) {
            *slot = None;
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&mut self) {
        for p in &mut self.pages {
            *p = None;
        }
    }

    /// Looks up the instruction at `hpa`, decoded at `ip` in `bitness`.
    #[inline]
    pub(crate) fn get(&self, hpa: u64, ip: u64, bitness: u32) -> Option<Rc<Instruction>> {
        let page = self.pages.get((hpa >> 12) as usize)?.as_ref()?;
        if page.bitness != bitness || page.ip_minus_phys != ip.wrapping_sub(hpa) {
            return None;
        }
        let i = page.index[(hpa & 0xFFF) as usize];
        if i == 0 {
            None
        } else {
            page.instrs.get(i as usize - 1).cloned()
        }
    }

    /// Decodes one instruction from `bytes` (which start at `hpa`).
    /// It is cached when it lies inside the page; returns it and whether it was cached.
    pub(crate) fn decode(
        &mut self,
        hpa: u64,
        ip: u64,
        bitness: u32,
        bytes: &[u8],
        same_page_len: usize,
    ) -> (Rc<Instruction>, bool) {
        let mut decoder = Decoder::with_ip(bitness, bytes, ip, DecoderOptions::NONE);
        let instr = Rc::new(decoder.decode());
        self.decodes += 1;
        let fits = instr.len() <= same_page_len && !instr.is_invalid();
        if !fits {
            return (instr, false);
        }
        let Some(slot) = self.pages.get_mut((hpa >> 12) as usize) else {
            return (instr, false);
        };
        let ipmp = ip.wrapping_sub(hpa);
        let fresh = match slot {
            Some(p) => p.bitness != bitness || p.ip_minus_phys != ipmp,
            None => true,
        };
        if fresh {
            *slot = Some(Box::new(PageCode {
                bitness,
                ip_minus_phys: ipmp,
                index: Box::new([0; 4096]),
                instrs: Vec::new(),
            }));
        }
        if let Some(page) = slot {
            page.instrs.push(instr.clone());
            page.index[(hpa & 0xFFF) as usize] = page.instrs.len() as u32;
        }
        (instr, true)
    }
}
