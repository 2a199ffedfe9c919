//! PCI configuration mechanism #1 at ports 0xCF8 (address) and 0xCFC–0xCFF
//! (data), with one device: a host bridge at 00:00.0, so that a kernel's
//! probe for configuration access finds a sane bus.
//!
//! The address register keeps what the guest writes to it as a 32-bit
//! value (bit 31 enable, bus 23–16, device 15–11, function 10–8, register
//! 7–2); narrower accesses to 0xCF8–0xCFB do not touch it, as on a PC where
//! those bytes belong to other registers. A data access with the enable bit
//! set reaches the addressed configuration space at the register plus the
//! data port's offset; any device but 00:00.0 reads all ones and ignores
//! writes (nothing there). The host bridge identifies as Intel's 440FX
//! (8086:1237, class 06:00:00, header type 0), as QEMU's PC does; its
//! command register's memory and I/O enables are writable, everything else
//! reads as built.

use super::bus::{DeviceAction, PortDevice};

/// The address port; the data ports are 0xCFC–0xCFF.
pub const PCI_CONFIG_BASE: u16 = 0xCF8;
/// Number of ports.
pub const PCI_CONFIG_LEN: u16 = 8;

const ENABLE: u32 = 1 << 31;
const COMMAND: usize = 0x04;
/// Command register bits the guest may change: I/O, memory, bus master.
const COMMAND_WRITABLE: u16 = 0x0007;

/// The configuration ports with a host bridge at 00:00.0.
#[derive(Debug, Clone)]
pub struct PciConfig {
    address: u32,
    bridge: [u8; 256],
}

impl Default for PciConfig {
    fn default() -> Self {
        let mut bridge = [0u8; 256];
        bridge[0..2].copy_from_slice(&0x8086u16.to_le_bytes());
        bridge[2..4].copy_from_slice(&0x1237u16.to_le_bytes());
        bridge[COMMAND..COMMAND + 2].copy_from_slice(&0x0006u16.to_le_bytes());
        bridge[0x08] = 0x02; // revision
        bridge[0x0B] = 0x06; // base class: bridge; sub-class 0: host
        bridge[0x0E] = 0x00; // header type 0, single function
        PciConfig { address: 0, bridge }
    }
}

impl PciConfig {
    /// The ports, address register clear.
    pub fn new() -> PciConfig {
        PciConfig::default()
    }

    /// The host bridge's configuration space offset the data port at
    /// `offset` (4–7) reaches, or `None` for an absent device or a disabled
    /// address.
    fn target(&self, offset: usize) -> Option<usize> {
        if self.address & ENABLE == 0 {
            return None;
        }
        let bdf = (self.address >> 8) & 0xFFFF;
        if bdf != 0 {
            return None;
        }
        Some((self.address & 0xFC) as usize + (offset - 4))
    }
}

impl PortDevice for PciConfig {
    fn name(&self) -> &str {
        "pci-config"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) {
        let offset = usize::from(offset);
        if offset < 4 {
            if offset == 0 && data.len() == 4 {
                data.copy_from_slice(&self.address.to_le_bytes());
            } else {
                data.fill(0xFF);
            }
            return;
        }
        let target = self.target(offset);
        for (i, b) in data.iter_mut().enumerate() {
            *b = target
                .and_then(|t| self.bridge.get(t + i).copied())
                .unwrap_or(0xFF);
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        let offset = usize::from(offset);
        if offset < 4 {
            if offset == 0 && data.len() == 4 {
                self.address = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            }
            return DeviceAction::None;
        }
        let Some(t) = self.target(offset) else {
            return DeviceAction::None;
        };
        for (i, &v) in data.iter().enumerate() {
            let at = t + i;
            if at == COMMAND || at == COMMAND + 1 {
                let mask = (COMMAND_WRITABLE >> (8 * (at - COMMAND))) as u8;
                self.bridge[at] = self.bridge[at] & !mask | v & mask;
            }
        }
        DeviceAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_read(p: &mut PciConfig, bdf: u32, reg: u32, len: usize) -> u32 {
        p.write(0, &(ENABLE | bdf << 8 | reg & 0xFC).to_le_bytes());
        let mut v = [0u8; 4];
        p.read(4 + (reg & 3) as u16, &mut v[..len]);
        u32::from_le_bytes(v)
    }

    #[test]
    fn host_bridge_at_zero() {
        let mut p = PciConfig::new();
        assert_eq!(config_read(&mut p, 0, 0, 4), 0x1237_8086);
        assert_eq!(config_read(&mut p, 0, 0x08, 4) >> 8, 0x06_0000);
        assert_eq!(config_read(&mut p, 0, 0x0E, 1), 0);
        assert_eq!(config_read(&mut p, 0, 0x02, 2), 0x1237);
        // Address register reads back as a dword only.
        let mut a = [0u8; 4];
        p.read(0, &mut a);
        assert_eq!(u32::from_le_bytes(a), ENABLE);
        let mut b = [0u8; 1];
        p.read(0, &mut b);
        assert_eq!(b, [0xFF]);
    }

    #[test]
    fn absent_devices_and_disabled_address() {
        let mut p = PciConfig::new();
        assert_eq!(config_read(&mut p, 1 << 3, 0, 4), 0xFFFF_FFFF);
        assert_eq!(config_read(&mut p, 1 << 8, 0, 4), 0xFFFF_FFFF);
        p.write(0, &0u32.to_le_bytes());
        let mut v = [0u8; 4];
        p.read(4, &mut v);
        assert_eq!(v, [0xFF; 4]);
    }

    #[test]
    fn only_command_enables_are_writable() {
        let mut p = PciConfig::new();
        p.write(0, &(ENABLE | COMMAND as u32).to_le_bytes());
        p.write(4, &0xFFFF_FFFFu32.to_le_bytes());
        assert_eq!(config_read(&mut p, 0, 4, 2), 0x0007);
        p.write(0, &ENABLE.to_le_bytes());
        p.write(4, &0u32.to_le_bytes());
        assert_eq!(config_read(&mut p, 0, 0, 4), 0x1237_8086);
    }
}
