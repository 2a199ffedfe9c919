//! QEMU's `pc-testdev`: the ISA test device kvm-unit-tests drives.
//!
//! The device QEMU builds (hw/misc/pc-testdev.c, read for its behaviour)
//! has five windows. What each does there and here:
//!
//! | window | QEMU | this model |
//! |---|---|---|
//! | ports 0xE0–0xE3 | a 32-bit scratch register; an access of 1, 2 or 4 bytes at byte `offset & 3` reads or replaces those bytes | [`TestDevPorts`], same |
//! | ports 0xE4–0xE7 | "flush page": a 32-bit write of a guest-physical address makes QEMU `mprotect` the host page away and back (to test emulation on pages KVM must refault); reads return 0 | [`TestDevPorts`]: writes accepted and ignored (nothing in this VMM caches host mappings a guest could observe); reads 0 |
//! | ports 0xE8–0xEB | the same scratch register, but every access is carried out one byte at a time (tests split I/O) | [`TestDevPorts`], same register; the byte-by-byte split is not observable and not modelled |
//! | ports 0x2000–0x2017 | "irq line": a byte write of `v` to port 0x2000 + n sets ISA IRQ line n to `v != 0`; reads return 0 | [`TestDevIrqLines`]: the levels are kept in a shared [`IrqLineLevels`] for the integrator to forward to the PIC |
//! | memory 0xFF000000, 64 KiB | plain RAM-like buffer behind MMIO exits, for testing the instruction emulator | [`TestDevMmio`], a byte buffer with `read`/`write` by offset (there is no MMIO bus yet) |
//!
//! The MMIO window is 64 KiB (`IOMEM_LEN` 0x10000 in QEMU), not one page.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::bus::{DeviceAction, PortDevice};

/// Base port of the scratch, flush-page and byte-scratch registers.
pub const TESTDEV_PORT_BASE: u16 = 0xE0;
/// Number of ports from [`TESTDEV_PORT_BASE`]: 0xE0–0xEB.
pub const TESTDEV_PORT_LEN: u16 = 12;
/// Base port of the IRQ-line window.
pub const TESTDEV_IRQ_BASE: u16 = 0x2000;
/// Number of IRQ-line ports (one per ISA/IOAPIC input line 0–23).
pub const TESTDEV_IRQ_LEN: u16 = 24;
/// Guest-physical base of the MMIO buffer.
pub const TESTDEV_MMIO_BASE: u64 = 0xFF00_0000;
/// Size of the MMIO buffer in bytes.
pub const TESTDEV_MMIO_LEN: usize = 0x1_0000;

/// Offsets of the scratch register and its byte alias in [`TestDevPorts`]
/// (the flush-page register sits between them at offset 4).
const SCRATCH: u16 = 0;
const SCRATCH_BYTES: u16 = 8;

/// The pc-testdev registers at ports 0xE0–0xEB.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TestDevPorts {
    scratch: u32,
}

impl TestDevPorts {
    /// The registers after reset: the scratch register holds 0.
    pub fn new() -> TestDevPorts {
        TestDevPorts::default()
    }

    /// The scratch register's value.
    pub fn scratch(&self) -> u32 {
        self.scratch
    }

    /// Whether the port at this offset is a byte of the scratch register
    /// (directly at 0xE0–0xE3 or through the byte alias at 0xE8–0xEB).
    fn is_scratch(offset: usize) -> bool {
        let reg = offset & !3;
        reg == usize::from(SCRATCH) || reg == usize::from(SCRATCH_BYTES)
    }
}

impl PortDevice for TestDevPorts {
    fn name(&self) -> &str {
        "pc-testdev"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) {
        // Port by port: an unaligned access may straddle two registers.
        let bytes = self.scratch.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            let port = usize::from(offset) + i;
            *b = if Self::is_scratch(port) {
                bytes.get(port & 3).copied().unwrap_or(0)
            } else {
                0
            };
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        // Flush-page bytes are dropped (see the module documentation).
        let mut bytes = self.scratch.to_le_bytes();
        for (i, &b) in data.iter().enumerate() {
            let port = usize::from(offset) + i;
            if Self::is_scratch(port) {
                if let Some(dst) = bytes.get_mut(port & 3) {
                    *dst = b;
                }
            }
        }
        self.scratch = u32::from_le_bytes(bytes);
        DeviceAction::None
    }
}

/// The levels the guest set on IRQ lines 0–23 through the IRQ-line ports,
/// one bit per line; shared between [`TestDevIrqLines`] on the port bus and
/// the integrator, who forwards changes to the interrupt controllers.
#[derive(Debug, Clone, Default)]
pub struct IrqLineLevels(Arc<AtomicU32>);

impl IrqLineLevels {
    /// All lines low.
    pub fn new() -> IrqLineLevels {
        IrqLineLevels::default()
    }

    /// The level of every line (bit n = line n).
    pub fn levels(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }

    /// The level of line `n` (false for lines past 23).
    pub fn level(&self, n: u8) -> bool {
        n < 32 && self.levels() >> n & 1 != 0
    }

    fn set(&self, n: u16, high: bool) {
        if n >= TESTDEV_IRQ_LEN {
            return;
        }
        let bit = 1u32 << n;
        if high {
            self.0.fetch_or(bit, Ordering::AcqRel);
        } else {
            self.0.fetch_and(!bit, Ordering::AcqRel);
        }
    }
}

/// The pc-testdev IRQ-line ports 0x2000–0x2017: a byte write of `v` at
/// port 0x2000 + n sets line n to `v != 0`. Only byte accesses are valid,
/// as in QEMU: wider writes are ignored. Reads return 0.
#[derive(Debug, Clone, Default)]
pub struct TestDevIrqLines {
    levels: IrqLineLevels,
}

impl TestDevIrqLines {
    /// The IRQ-line ports, recording into `levels`.
    pub fn new(levels: IrqLineLevels) -> TestDevIrqLines {
        TestDevIrqLines { levels }
    }
}

impl PortDevice for TestDevIrqLines {
    fn name(&self) -> &str {
        "pc-testdev-irq"
    }

    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        if let [v] = data {
            self.levels.set(offset, *v != 0);
        }
        DeviceAction::None
    }
}

/// The pc-testdev MMIO buffer at [`TESTDEV_MMIO_BASE`]: memory that lives
/// behind MMIO exits. Offsets are relative to the base; accesses of any
/// width copy bytes (little-endian, as the device's memcpy does). Bytes
/// outside the window are not the device's: reads give 0xFF for them, writes
/// drop them.
#[derive(Clone, PartialEq, Eq)]
pub struct TestDevMmio {
    buf: Vec<u8>,
}

impl std::fmt::Debug for TestDevMmio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.buf.iter().filter(|&&b| b != 0).count();
        write!(
            f,
            "TestDevMmio {{ {} bytes, {used} non-zero }}",
            self.buf.len()
        )
    }
}

impl Default for TestDevMmio {
    fn default() -> Self {
        TestDevMmio::new()
    }
}

impl TestDevMmio {
    /// A zero-filled buffer of [`TESTDEV_MMIO_LEN`] bytes.
    pub fn new() -> TestDevMmio {
        TestDevMmio {
            buf: vec![0; TESTDEV_MMIO_LEN],
        }
    }

    /// Whether the guest-physical address `gpa` falls in the window.
    pub fn contains(gpa: u64) -> bool {
        gpa.checked_sub(TESTDEV_MMIO_BASE)
            .is_some_and(|off| off < TESTDEV_MMIO_LEN as u64)
    }

    /// Reads `data.len()` bytes at `offset` from the base.
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.byte_index(offset, i).map_or(0xFF, |at| self.buf[at]);
        }
    }

    /// Writes `data` at `offset` from the base.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            if let Some(at) = self.byte_index(offset, i) {
                self.buf[at] = b;
            }
        }
    }

    /// The buffer index of byte `i` of an access at `offset`, if inside.
    fn byte_index(&self, offset: u64, i: usize) -> Option<usize> {
        let at = offset.checked_add(u64::try_from(i).ok()?)?;
        let at = usize::try_from(at).ok()?;
        (at < self.buf.len()).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::PortBus;

    fn ports() -> PortBus {
        let mut bus = PortBus::new();
        bus.register(
            TESTDEV_PORT_BASE,
            TESTDEV_PORT_LEN,
            Box::new(TestDevPorts::new()),
        )
        .unwrap();
        bus
    }

    fn inl(bus: &mut PortBus, port: u16) -> u32 {
        let mut d = [0; 4];
        bus.read(port, &mut d);
        u32::from_le_bytes(d)
    }

    #[test]
    fn scratch_register_reads_back_each_width() {
        let mut bus = ports();
        bus.write(0xE0, &0xDEAD_BEEFu32.to_le_bytes());
        assert_eq!(inl(&mut bus, 0xE0), 0xDEAD_BEEF);
        bus.write(0xE1, &[0x11]);
        assert_eq!(inl(&mut bus, 0xE0), 0xDEAD_11EF);
        bus.write(0xE2, &[0x22, 0x33]);
        assert_eq!(inl(&mut bus, 0xE0), 0x3322_11EF);
        let mut w = [0; 2];
        bus.read(0xE1, &mut w);
        assert_eq!(w, [0x11, 0x22]);
        let mut b = [0];
        bus.read(0xE3, &mut b);
        assert_eq!(b, [0x33]);
        // The byte-access alias at 0xE8 is the same register.
        assert_eq!(inl(&mut bus, 0xE8), 0x3322_11EF);
        bus.write(0xEA, &[0xAB]);
        assert_eq!(inl(&mut bus, 0xE0), 0x33AB_11EF);
        assert_eq!(bus.unclaimed().reads + bus.unclaimed().writes, 0);
    }

    #[test]
    fn flush_page_is_accepted_and_reads_zero() {
        let mut bus = ports();
        bus.write(0xE0, &[1, 2, 3, 4]);
        bus.write(0xE4, &0x0010_0000u32.to_le_bytes());
        assert_eq!(inl(&mut bus, 0xE4), 0);
        assert_eq!(inl(&mut bus, 0xE0), 0x0403_0201);
        // An unaligned access straddling scratch and flush-page touches
        // only the scratch bytes.
        bus.write(0xE2, &[0xAA, 0xBB, 0xCC, 0xDD]);
        assert_eq!(inl(&mut bus, 0xE0), 0xBBAA_0201);
        let mut d = [0; 4];
        bus.read(0xE2, &mut d);
        assert_eq!(d, [0xAA, 0xBB, 0, 0]);
        // Straddling flush-page and the byte alias.
        bus.write(0xE6, &[1, 2, 3, 4]);
        assert_eq!(inl(&mut bus, 0xE0), 0xBBAA_0403);
        bus.read(0xE6, &mut d);
        assert_eq!(d, [0, 0, 3, 4]);
    }

    #[test]
    fn irq_lines_follow_byte_writes() {
        let levels = IrqLineLevels::new();
        let mut bus = PortBus::new();
        bus.register(
            TESTDEV_IRQ_BASE,
            TESTDEV_IRQ_LEN,
            Box::new(TestDevIrqLines::new(levels.clone())),
        )
        .unwrap();
        bus.write(0x2000 + 10, &[1]);
        bus.write(0x2000 + 23, &[0x80]);
        assert_eq!(levels.levels(), 1 << 10 | 1 << 23);
        assert!(levels.level(10));
        assert!(!levels.level(11));
        assert!(!levels.level(200));
        bus.write(0x2000 + 10, &[0]);
        assert_eq!(levels.levels(), 1 << 23);
        // Wider writes are not valid for these ports.
        bus.write(0x2000 + 4, &[1, 1]);
        assert_eq!(levels.levels(), 1 << 23);
        let mut b = [0xAA];
        bus.read(0x2017, &mut b);
        assert_eq!(b, [0]);
    }

    #[test]
    fn mmio_buffer() {
        let mut m = TestDevMmio::new();
        m.write(0x10, &0x1122_3344_5566_7788u64.to_le_bytes());
        let mut q = [0; 8];
        m.read(0x10, &mut q);
        assert_eq!(u64::from_le_bytes(q), 0x1122_3344_5566_7788);
        let mut b = [0; 3];
        m.read(0x11, &mut b);
        assert_eq!(b, [0x77, 0x66, 0x55]);
        // The last byte of the window, and beyond it.
        let last = TESTDEV_MMIO_LEN as u64 - 1;
        m.write(last, &[1, 2, 3]);
        let mut d = [0; 3];
        m.read(last, &mut d);
        assert_eq!(d, [1, 0xFF, 0xFF]);
        m.read(u64::MAX, &mut d);
        assert_eq!(d, [0xFF; 3]);
        m.write(u64::MAX - 1, &[9; 8]);
        assert!(TestDevMmio::contains(0xFF00_0000));
        assert!(TestDevMmio::contains(0xFF00_FFFF));
        assert!(!TestDevMmio::contains(0xFF01_0000));
        assert!(!TestDevMmio::contains(0xFEFF_FFFF));
        assert!(format!("{m:?}").contains("65536 bytes"));
    }
}
