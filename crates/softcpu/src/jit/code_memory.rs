//! Executable memory for translated blocks: one private anonymous mapping
//! per block, written while it is read-write, then made read-execute
//! (never both at once), and unmapped when the block is dropped.

#![allow(unsafe_code)]

use std::io;

/// Machine code in a mapping of its own.
#[derive(Debug)]
pub(crate) struct CodeMemory {
    /// Start of the mapping (kept as an address: the mapping is owned here
    /// and nothing else points into it).
    addr: usize,
    /// Length of the mapping in bytes (whole pages).
    len: usize,
}

impl CodeMemory {
    /// Maps `code` read-execute.
    pub(crate) fn new(code: &[u8]) -> io::Result<CodeMemory> {
        if code.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty code"));
        }
        let len = code.len().div_ceil(4096) * 4096;
        // SAFETY: an anonymous private mapping at an address the kernel
        // picks; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mem = CodeMemory {
            addr: p as usize,
            len,
        };
        // SAFETY: the mapping is `len >= code.len()` bytes, readable and
        // writable, and owned by `mem` alone.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), p.cast::<u8>(), code.len()) };
        // SAFETY: changes the protection of the mapping `mem` owns.
        let rc = unsafe { libc::mprotect(p, len, libc::PROT_READ | libc::PROT_EXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(mem)
    }

    /// Address of the first byte of code.
    pub(crate) fn entry(&self) -> usize {
        self.addr
    }
}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping this value owns; no code runs from it
        // any more (a block is dropped only outside its execution).
        unsafe {
            libc::munmap(self.addr as *mut libc::c_void, self.len);
        }
    }
}
