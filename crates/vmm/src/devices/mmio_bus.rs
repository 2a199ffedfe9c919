//! Guest-physical MMIO devices and the bus that routes MMIO exits to them.
//! An address no device claims behaves as QEMU's unassigned memory on a PC:
//! loads read all ones, stores are dropped; both are counted.

use crate::devices::TestDevMmio;

/// A device in the guest-physical address space.
pub trait MmioDevice: Send {
    /// A short name for diagnostics.
    fn name(&self) -> &str;
    /// A load of `data.len()` bytes at `offset` into the device's range.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// A store at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
}

impl MmioDevice for TestDevMmio {
    fn name(&self) -> &str {
        "pc-testdev-mmio"
    }
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        TestDevMmio::read(self, offset, data)
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        TestDevMmio::write(self, offset, data)
    }
}

/// MMIO devices by range, and the count of accesses nobody claimed.
#[derive(Default)]
pub struct MmioBus {
    devices: Vec<(u64, u64, Box<dyn MmioDevice>)>,
    unclaimed: u64,
}

impl MmioBus {
    /// An empty bus.
    pub fn new() -> MmioBus {
        MmioBus::default()
    }

    /// Adds `device` at `[base, base + len)`; returns false (and adds
    /// nothing) if the range is empty, wraps or overlaps another device.
    pub fn register(&mut self, base: u64, len: u64, device: Box<dyn MmioDevice>) -> bool {
        let Some(end) = base.checked_add(len).filter(|_| len > 0) else {
            return false;
        };
        if self
            .devices
            .iter()
            .any(|(b, l, _)| base < b + l && *b < end)
        {
            return false;
        }
        self.devices.push((base, len, device));
        true
    }

    fn find(&mut self, addr: u64, len: usize) -> Option<(u64, &mut Box<dyn MmioDevice>)> {
        self.devices
            .iter_mut()
            .find(|(b, l, _)| addr >= *b && addr + len as u64 <= b + l)
            .map(|(b, _, d)| (addr - *b, d))
    }

    /// A load: the device's bytes, or all ones where nothing answers.
    pub fn read(&mut self, addr: u64, data: &mut [u8]) {
        match self.find(addr, data.len()) {
            Some((off, d)) => d.read(off, data),
            None => {
                data.fill(0xFF);
                self.unclaimed += 1;
            }
        }
    }

    /// A store: to the device, or dropped where nothing answers.
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        match self.find(addr, data.len()) {
            Some((off, d)) => d.write(off, data),
            None => self.unclaimed += 1,
        }
    }

    /// Accesses no device claimed.
    pub fn unclaimed(&self) -> u64 {
        self.unclaimed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{TESTDEV_MMIO_BASE, TESTDEV_MMIO_LEN};

    #[test]
    fn routing_and_unassigned_memory() {
        let mut bus = MmioBus::new();
        assert!(bus.register(
            TESTDEV_MMIO_BASE,
            TESTDEV_MMIO_LEN as u64,
            Box::new(TestDevMmio::new())
        ));
        assert!(!bus.register(TESTDEV_MMIO_BASE + 8, 4, Box::new(TestDevMmio::new())));
        assert!(!bus.register(u64::MAX, 2, Box::new(TestDevMmio::new())));
        bus.write(TESTDEV_MMIO_BASE + 16, &0xDEAD_BEEFu32.to_le_bytes());
        let mut v = [0u8; 4];
        bus.read(TESTDEV_MMIO_BASE + 16, &mut v);
        assert_eq!(u32::from_le_bytes(v), 0xDEAD_BEEF);
        bus.read(0xFEB0_0000, &mut v);
        assert_eq!(v, [0xFF; 4]);
        bus.write(0xFEB0_0000, &v);
        assert_eq!(bus.unclaimed(), 2);
    }
}
