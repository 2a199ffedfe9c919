//! Guest RAM: one anonymous host mapping shown to the guest at
//! guest-physical 0, with the bounds checks of the run API.

use accel::AccelError;
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap};

/// Guest RAM sizes must be a multiple of this (KVM maps whole pages).
pub const PAGE_SIZE: u64 = 0x1000;

/// The most guest RAM this accelerator maps: RAM stays below 3 GiB so that
/// the top of the 32-bit space stays free for the xAPIC, test devices and
/// KVM's own TSS and identity-map pages.
pub const MAX_MEMORY_BYTES: u64 = 0xC000_0000;

/// Checks a requested guest RAM size and returns it as a host size.
///
/// The size must be nonzero, a multiple of [`PAGE_SIZE`] and at most
/// [`MAX_MEMORY_BYTES`]; anything else is [`AccelError::InvalidConfig`].
pub fn validate_memory_size(bytes: u64) -> Result<usize, AccelError> {
    let refused = if bytes == 0 {
        MemorySizeError::Zero
    } else if !bytes.is_multiple_of(PAGE_SIZE) {
        MemorySizeError::NotPageMultiple(bytes)
    } else if bytes > MAX_MEMORY_BYTES {
        MemorySizeError::TooLarge(bytes)
    } else {
        return usize::try_from(bytes)
            .map_err(|_| AccelError::invalid_config(MemorySizeError::TooLargeForHost(bytes)));
    };
    Err(AccelError::invalid_config(refused))
}

/// A guest RAM size the kvm accelerator refuses: the cause of an
/// [`AccelError::InvalidConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemorySizeError {
    /// No RAM at all.
    #[error("guest memory size is zero")]
    Zero,
    /// Not whole pages.
    #[error("guest memory size {0:#x} is not a multiple of 4 KiB")]
    NotPageMultiple(u64),
    /// More than [`MAX_MEMORY_BYTES`].
    #[error(
        "guest memory size {0:#x} exceeds the KVM accelerator's limit of {max:#x} bytes",
        max = MAX_MEMORY_BYTES
    )]
    TooLarge(u64),
    /// More than this host can address.
    #[error("guest memory size {0:#x} does not fit this host's address space")]
    TooLargeForHost(u64),
}

/// Checks that `gpa..gpa+len` lies inside RAM of `size` bytes at
/// guest-physical 0; otherwise [`AccelError::OutOfRange`].
pub fn check_range(gpa: u64, len: usize, size: u64) -> Result<(), AccelError> {
    let len64 = len as u64;
    match gpa.checked_add(len64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(AccelError::OutOfRange { gpa, len: len64 }),
    }
}

/// Guest RAM at guest-physical 0, backed by an anonymous host mapping.
#[derive(Debug)]
pub(crate) struct GuestRam {
    mem: GuestMemoryMmap,
    size: u64,
}

impl GuestRam {
    /// Maps `size` bytes of zeroed RAM (the size is already validated).
    pub(crate) fn new(size: usize) -> Result<Self, AccelError> {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size)]).map_err(|e| {
            AccelError::Host {
                op: "mapping guest memory",
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        Ok(Self {
            mem,
            size: size as u64,
        })
    }

    /// The RAM size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The host virtual address of guest-physical 0, for the KVM memory slot.
    pub(crate) fn host_address(&self) -> Result<u64, AccelError> {
        self.mem
            .get_host_address(GuestAddress(0))
            .map(|ptr| ptr as u64)
            .map_err(|e| AccelError::Host {
                op: "finding the host address of guest memory",
                source: std::io::Error::other(e.to_string()),
            })
    }

    /// Copies `data` into RAM at `gpa`.
    pub(crate) fn write(&self, gpa: u64, data: &[u8]) -> Result<(), AccelError> {
        check_range(gpa, data.len(), self.size)?;
        if data.is_empty() {
            return Ok(());
        }
        self.mem
            .write_slice(data, GuestAddress(gpa))
            .map_err(|_| AccelError::OutOfRange {
                gpa,
                len: data.len() as u64,
            })
    }

    /// Copies RAM at `gpa` into `buf`.
    pub(crate) fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), AccelError> {
        check_range(gpa, buf.len(), self.size)?;
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len() as u64;
        self.mem
            .read_slice(buf, GuestAddress(gpa))
            .map_err(|_| AccelError::OutOfRange { gpa, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_must_be_whole_pages_nonzero_and_bounded() {
        assert!(matches!(
            validate_memory_size(0),
            Err(AccelError::InvalidConfig(_))
        ));
        assert!(matches!(
            validate_memory_size(0x1001),
            Err(AccelError::InvalidConfig(_))
        ));
        assert!(matches!(
            validate_memory_size(MAX_MEMORY_BYTES + PAGE_SIZE),
            Err(AccelError::InvalidConfig(_))
        ));
        assert_eq!(validate_memory_size(0x1000).unwrap(), 0x1000);
        assert_eq!(
            validate_memory_size(MAX_MEMORY_BYTES).unwrap() as u64,
            MAX_MEMORY_BYTES
        );
    }

    #[test]
    fn ranges_are_checked_without_overflow() {
        assert!(check_range(0, 0x1000, 0x1000).is_ok());
        assert!(check_range(0x1000, 0, 0x1000).is_ok());
        assert!(check_range(0xfff, 1, 0x1000).is_ok());
        assert!(matches!(
            check_range(0xfff, 2, 0x1000),
            Err(AccelError::OutOfRange { gpa: 0xfff, len: 2 })
        ));
        assert!(matches!(
            check_range(u64::MAX, 2, 0x1000),
            Err(AccelError::OutOfRange { .. })
        ));
        assert!(check_range(0x1001, 0, 0x1000).is_err());
    }

    #[test]
    fn ram_round_trips_and_rejects_outside_accesses() {
        let ram = GuestRam::new(0x2000).unwrap();
        ram.write(0x1ffc, &[1, 2, 3, 4]).unwrap();
        let mut buf = [0u8; 4];
        ram.read(0x1ffc, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4]);
        assert!(matches!(
            ram.write(0x1ffd, &[0; 4]),
            Err(AccelError::OutOfRange {
                gpa: 0x1ffd,
                len: 4
            })
        ));
        assert!(matches!(
            ram.read(0x2000, &mut buf),
            Err(AccelError::OutOfRange { .. })
        ));
        assert_eq!(ram.host_address().unwrap() % PAGE_SIZE, 0);
    }
}
