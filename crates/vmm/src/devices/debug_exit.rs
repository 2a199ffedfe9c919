//! QEMU's isa-debug-exit device: a guest ends the run by writing a value.
//!
//! Configured as `-device isa-debug-exit,iobase=0xf4,iosize=0x04` in QEMU.
//! A write of `v` (1, 2 or 4 bytes, zero-extended, at any port of the range)
//! asks the VMM to exit with process status `(v << 1) | 1` — see
//! [`exit_status`]. Reads return 0, as QEMU's device does (a guest can use
//! that to tell it apart from an unclaimed port, which reads all ones).

use super::bus::{DeviceAction, PortDevice};

/// The debug-exit device's base port in the guest ABI.
pub const DEBUG_EXIT_BASE: u16 = 0xF4;
/// Number of ports the device occupies.
pub const DEBUG_EXIT_LEN: u16 = 4;

/// The process exit status QEMU uses for a written value: `(v << 1) | 1`,
/// truncated to an `i32` as C's `exit()` argument is (the shell sees the low
/// 8 bits).
pub fn exit_status(value: u32) -> i32 {
    i32::from_le_bytes(((value << 1) | 1).to_le_bytes())
}

/// The isa-debug-exit device.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DebugExit;

impl DebugExit {
    /// A debug-exit device.
    pub fn new() -> DebugExit {
        DebugExit
    }
}

impl PortDevice for DebugExit {
    fn name(&self) -> &str {
        "debug-exit"
    }

    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> DeviceAction {
        if data.is_empty() {
            return DeviceAction::None;
        }
        // Little-endian, zero-extended; an x86 OUT is at most 4 bytes.
        let mut v = [0u8; 4];
        for (dst, src) in v.iter_mut().zip(data) {
            *dst = *src;
        }
        DeviceAction::Exit(u32::from_le_bytes(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::PortBus;

    #[test]
    fn write_of_each_size_exits_with_value() {
        let mut d = DebugExit::new();
        assert_eq!(d.write(0, &[0x10]), DeviceAction::Exit(0x10));
        assert_eq!(d.write(0, &[0x34, 0x12]), DeviceAction::Exit(0x1234));
        assert_eq!(
            d.write(0, &[0x78, 0x56, 0x34, 0x12]),
            DeviceAction::Exit(0x1234_5678)
        );
        assert_eq!(d.write(0, &[0xFF]), DeviceAction::Exit(0xFF));
        assert_eq!(d.write(0, &[0; 4]), DeviceAction::Exit(0));
        // Any port of the range, as in QEMU.
        assert_eq!(d.write(3, &[5]), DeviceAction::Exit(5));
        // Degenerate slices do not panic.
        assert_eq!(d.write(0, &[]), DeviceAction::None);
        assert_eq!(d.write(0, &[1, 0, 0, 0, 9]), DeviceAction::Exit(1));
    }

    #[test]
    fn reads_return_zero() {
        let mut d = DebugExit::new();
        let mut b = [0xAAu8; 4];
        d.read(0, &mut b);
        assert_eq!(b, [0; 4]);
        assert_eq!(d.name(), "debug-exit");
    }

    #[test]
    fn exit_status_matches_qemu() {
        assert_eq!(exit_status(0), 1);
        assert_eq!(exit_status(0x10), 0x21);
        assert_eq!(exit_status(0x7FFF_FFFF), -1);
        assert_eq!(exit_status(u32::MAX), -1);
        assert_eq!(exit_status(0x8000_0000), 1);
    }

    #[test]
    fn on_the_bus_at_0xf4() {
        let mut bus = PortBus::new();
        bus.register(DEBUG_EXIT_BASE, DEBUG_EXIT_LEN, Box::new(DebugExit::new()))
            .unwrap();
        assert_eq!(bus.write(0xF4, &[0x31, 0, 0, 0]), DeviceAction::Exit(0x31));
        assert_eq!(bus.write(0xF4, &[3, 0]), DeviceAction::Exit(3));
        assert_eq!(bus.write(0xF3, &[1]), DeviceAction::None);
        assert_eq!(bus.write(0xF8, &[1]), DeviceAction::None);
        let mut b = [0u8; 1];
        bus.read(0xF4, &mut b);
        assert_eq!(b, [0]);
        bus.read(0xF8, &mut b);
        assert_eq!(b, [0xFF]);
        assert_eq!(bus.unclaimed().writes, 2);
    }
}
