//! Host-physical memory of the machine, with code-page tracking.
//!
//! Every write goes through [`PhysMemory`], which knows which pages hold
//! cached decoded instructions, so a write to such a page drops its cache
//! entry before the next fetch (self-modifying code and loaders both work).

/// The machine's physical memory.
pub struct PhysMemory {
    bytes: Vec<u8>,
    /// One bit per 4 KiB page: the page has entries in the decode cache.
    code_pages: Vec<u64>,
    /// Pages whose cache entries must be dropped, filled by writes.
    dirty_code: Vec<u64>,
}

/// A physical access outside the memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange {
    /// Physical address of the access.
    pub addr: u64,
}

impl PhysMemory {
    /// Zeroed memory of `size` bytes (rounded up to a whole page).
    pub fn new(size: u64) -> Self {
        let size = size.div_ceil(4096) * 4096;
        let pages = (size / 4096) as usize;
        PhysMemory {
            bytes: vec![0; size as usize],
            code_pages: vec![0; pages.div_ceil(64)],
            dirty_code: Vec::new(),
        }
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, OutOfRange> {
        let end = addr.checked_add(len as u64).ok_or(OutOfRange { addr })?;
        if end > self.bytes.len() as u64 {
            return Err(OutOfRange { addr });
        }
        Ok(addr as usize..end as usize)
    }

    /// Copies bytes out of memory.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), OutOfRange> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }

    /// Copies bytes into memory, noting code pages that were hit.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), OutOfRange> {
        let r = self.range(addr, data.len())?;
        if !data.is_empty() {
            let first = addr >> 12;
            let last = (addr + data.len() as u64 - 1) >> 12;
            for page in first..=last {
                self.note_write(page);
            }
        }
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }

    #[inline]
    fn note_write(&mut self, page: u64) {
        let (word, bit) = ((page / 64) as usize, page % 64);
        if self.code_pages[word] & (1 << bit) != 0 {
            self.code_pages[word] &= !(1 << bit);
            self.dirty_code.push(page);
        }
    }

    /// Reads a little-endian value of `N` bytes that lies inside one page.
    #[inline]
    pub(crate) fn read_le<const N: usize>(&self, addr: u64) -> Result<[u8; N], OutOfRange> {
        let r = self.range(addr, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[r]);
        Ok(out)
    }

    /// Writes a little-endian value of `N` bytes that lies inside one page.
    #[inline]
    pub(crate) fn write_le<const N: usize>(
        &mut self,
        addr: u64,
        value: [u8; N],
    ) -> Result<(), OutOfRange> {
        let r = self.range(addr, N)?;
        self.note_write(addr >> 12);
        self.bytes[r].copy_from_slice(&value);
        Ok(())
    }

    /// Writes `len` bytes at `addr`, inside one page, as repeated
    /// little-endian elements of `size` bytes holding `value` (REP STOS).
    pub(crate) fn fill(
        &mut self,
        addr: u64,
        size: usize,
        len: u64,
        value: u64,
    ) -> Result<(), OutOfRange> {
        let r = self.range(addr, len as usize)?;
        self.note_write(addr >> 12);
        let element = &value.to_le_bytes()[..size];
        for chunk in self.bytes[r].chunks_exact_mut(size) {
            chunk.copy_from_slice(element);
        }
        Ok(())
    }

    /// Copies `len` bytes from `src` to `dst` (each range inside one page)
    /// as elements of `size` bytes, one after another in ascending order,
    /// each read whole before it is written — what forward REP MOVS does,
    /// also when the ranges overlap.
    pub(crate) fn copy_forward(
        &mut self,
        dst: u64,
        src: u64,
        size: usize,
        len: u64,
    ) -> Result<(), OutOfRange> {
        let s = self.range(src, len as usize)?;
        let d = self.range(dst, len as usize)?;
        self.note_write(dst >> 12);
        if d.start <= s.start || d.start >= s.end {
            // Nothing is read after it was written: one move does it.
            self.bytes.copy_within(s, d.start);
        } else {
            // The destination starts inside the source: later elements
            // read what earlier ones wrote.
            for (at, from) in d.step_by(size).zip(s.step_by(size)) {
                self.bytes.copy_within(from..from + size, at);
            }
        }
        Ok(())
    }

    /// Reads a u64 (paging structures).
    pub(crate) fn read_u64(&self, addr: u64) -> Result<u64, OutOfRange> {
        self.read_le::<8>(addr).map(u64::from_le_bytes)
    }

    /// Reads a u32 (32-bit paging structures).
    pub(crate) fn read_u32(&self, addr: u64) -> Result<u32, OutOfRange> {
        self.read_le::<4>(addr).map(u32::from_le_bytes)
    }

    /// The raw parts translated code reaches memory through: the first byte,
    /// the size in bytes, and the code-page bitmap (one bit per page, 64
    /// pages per word). The byte buffer and the bitmap are never resized,
    /// so the pointers stay valid for the life of the memory; every access
    /// through them is bounds-checked by the translated code first, and a
    /// write to a page whose bit is set goes through [`Self::write`]
    /// instead, so that the decode cache hears of it.
    pub(crate) fn raw_parts(&mut self) -> (*mut u8, u64, *const u64) {
        (
            self.bytes.as_mut_ptr(),
            self.bytes.len() as u64,
            self.code_pages.as_ptr(),
        )
    }

    /// Marks a page as holding cached code.
    pub(crate) fn mark_code(&mut self, page: u64) {
        if let Some(w) = self.code_pages.get_mut((page / 64) as usize) {
            *w |= 1 << (page % 64);
        }
    }

    /// Whether code pages were written since the last [`Self::take_dirty_code`].
    #[inline]
    pub(crate) fn has_dirty_code(&self) -> bool {
        !self.dirty_code.is_empty()
    }

    /// Takes the list of code pages written since the last call.
    pub(crate) fn take_dirty_code(&mut self) -> Option<Vec<u64>> {
        if self.dirty_code.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.dirty_code))
        }
    }

    /// A byte slice of one page's remainder from `addr` (instruction fetch).
    pub(crate) fn slice(&self, addr: u64, len: usize) -> Result<&[u8], OutOfRange> {
        let r = self.range(addr, len)?;
        Ok(&self.bytes[r])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let mut m = PhysMemory::new(8192);
        assert!(m.write(8190, &[1, 2]).is_ok());
        assert_eq!(m.write(8191, &[1, 2]), Err(OutOfRange { addr: 8191 }));
        assert!(m.read(u64::MAX, &mut [0]).is_err());
        let mut b = [0; 2];
        m.read(8190, &mut b).unwrap();
        assert_eq!(b, [1, 2]);
    }

    #[test]
    fn writes_to_code_pages_are_reported_once() {
        let mut m = PhysMemory::new(3 * 4096);
        m.mark_code(1);
        m.write(10, &[0]).unwrap();
        assert_eq!(m.take_dirty_code(), None);
        m.write(4096 + 5, &[0]).unwrap();
        m.write(4096 + 6, &[0]).unwrap();
        assert_eq!(m.take_dirty_code(), Some(vec![1]));
        assert_eq!(m.take_dirty_code(), None);
    }
}
