//! The I/O APIC (Intel 82093AA) at 0xFEC00000: 24 redirection entries that
//! turn the platform's interrupt lines into interrupt messages for the
//! local APIC.
//!
//! MMIO: IOREGSEL at offset 0x00 selects a register, IOWIN at 0x10 reads or
//! writes it (32-bit accesses). Registers: 0x00 ID (bits 27–24), 0x01
//! version (0x11, 24 entries: maximum redirection entry 23 in bits 23–16),
//! 0x02 arbitration ID, 0x10 + 2n / 0x11 + 2n the low / high halves of
//! redirection entry n.
//!
//! Each entry holds the vector (bits 7–0), the delivery mode (10–8), the
//! destination mode (11), delivery status (12, read-only), polarity (13),
//! remote IRR (14, read-only), trigger mode (15), the mask (16) and the
//! destination (63–56). [`IoApic::set_line`] takes a line's level; an
//! unmasked entry sends its message on the line's active edge (edge
//! trigger) or while the line is active and remote IRR is clear (level
//! trigger, which then sets remote IRR until [`IoApic::eoi`] for its
//! vector). Vigil has one vCPU, so the destination is not consulted: every
//! fixed or lowest-priority message goes to it; NMI delivery becomes an NMI;
//! SMI, INIT and ExtINT messages are dropped (nothing models them).

use super::mmio_bus::MmioDevice;

/// The I/O APIC's MMIO base.
pub const IOAPIC_BASE: u64 = 0xFEC0_0000;
/// Bytes of its MMIO window.
pub const IOAPIC_LEN: u64 = 0x1000;
/// Number of redirection entries (input pins).
pub const IOAPIC_PINS: usize = 24;
/// The I/O APIC's ID as the firmware tables announce it.
pub const IOAPIC_ID: u8 = 1;

const VERSION: u32 = 0x11 | ((IOAPIC_PINS as u32 - 1) << 16);
const MASKED: u64 = 1 << 16;
const REMOTE_IRR: u64 = 1 << 14;
const LEVEL: u64 = 1 << 15;
/// Bits of an entry the guest writes (not delivery status or remote IRR).
const WRITABLE: u64 = 0xFF00_0000_0001_AFFF;

/// An interrupt message the I/O APIC sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// A fixed (or lowest-priority) interrupt with this vector.
    Fixed {
        /// The vector.
        vector: u8,
        /// Level-triggered: the local APIC sets TMR and answers with an EOI.
        level: bool,
    },
    /// A non-maskable interrupt.
    Nmi,
}

/// The I/O APIC.
#[derive(Debug, Clone)]
pub struct IoApic {
    select: u32,
    id: u32,
    entries: [u64; IOAPIC_PINS],
    /// The level of each input line (true: asserted, before polarity).
    lines: [bool; IOAPIC_PINS],
    /// Messages waiting for the run loop.
    outbox: Vec<Message>,
}

impl Default for IoApic {
    fn default() -> Self {
        IoApic {
            select: 0,
            id: u32::from(IOAPIC_ID) << 24,
            entries: [MASKED; IOAPIC_PINS],
            lines: [false; IOAPIC_PINS],
            outbox: Vec::new(),
        }
    }
}

impl IoApic {
    /// An I/O APIC after reset: every entry masked.
    pub fn new() -> IoApic {
        IoApic::default()
    }

    /// Redirection entry `pin`.
    pub fn entry(&self, pin: usize) -> Option<u64> {
        self.entries.get(pin).copied()
    }

    /// Sets input line `pin` to `asserted` (true: the device raises its
    /// interrupt). Lines are modelled by their logical level, so the
    /// polarity bit (13) is stored for the guest but needs no inversion.
    pub fn set_line(&mut self, pin: usize, asserted: bool) {
        let Some(&entry) = self.entries.get(pin) else {
            return;
        };
        let was = self.lines[pin];
        self.lines[pin] = asserted;
        if entry & LEVEL != 0 {
            self.deliver_level(pin);
        } else if asserted && !was {
            self.send(pin);
        }
    }

    /// A rising and a falling edge on `pin`: what an edge-triggered device
    /// (the PIT) does once per interrupt.
    pub fn pulse(&mut self, pin: usize) {
        self.set_line(pin, true);
        self.set_line(pin, false);
    }

    /// The local APIC's EOI for `vector`: clears remote IRR of the
    /// level-triggered entries with that vector and re-delivers those whose
    /// line is still active.
    pub fn eoi(&mut self, vector: u8) {
        for pin in 0..IOAPIC_PINS {
            let e = self.entries[pin];
            if e & LEVEL != 0 && e as u8 == vector && e & REMOTE_IRR != 0 {
                self.entries[pin] &= !REMOTE_IRR;
                self.deliver_level(pin);
            }
        }
    }

    /// Takes the messages sent since the last call.
    pub fn take_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.outbox)
    }

    fn deliver_level(&mut self, pin: usize) {
        if self.lines[pin] && self.entries[pin] & (REMOTE_IRR | MASKED) == 0 {
            self.entries[pin] |= REMOTE_IRR;
            self.send(pin);
        }
    }

    fn send(&mut self, pin: usize) {
        let e = self.entries[pin];
        if e & MASKED != 0 {
            return;
        }
        let message = match (e >> 8) & 7 {
            0 | 1 => Message::Fixed {
                vector: e as u8,
                level: e & LEVEL != 0,
            },
            4 => Message::Nmi,
            _ => return,
        };
        self.outbox.push(message);
    }

    fn read_register(&self) -> u32 {
        match self.select {
            0x00 => self.id,
            0x01 => VERSION,
            0x02 => self.id,
            r @ 0x10..=0x3F => {
                let e = self.entries[((r - 0x10) / 2) as usize];
                if r & 1 == 0 {
                    e as u32
                } else {
                    (e >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    fn write_register(&mut self, v: u32) {
        match self.select {
            0x00 => self.id = v & 0x0F00_0000,
            r @ 0x10..=0x3F => {
                let pin = ((r - 0x10) / 2) as usize;
                let old = self.entries[pin];
                let new = if r & 1 == 0 {
                    old & !0xFFFF_FFFF | u64::from(v)
                } else {
                    old & 0xFFFF_FFFF | u64::from(v) << 32
                };
                self.entries[pin] = old & !WRITABLE | new & WRITABLE;
                if self.entries[pin] & LEVEL == 0 {
                    self.entries[pin] &= !REMOTE_IRR;
                }
                // Unmasking a level-triggered entry whose line is active
                // delivers at once.
                if self.entries[pin] & LEVEL != 0 {
                    self.deliver_level(pin);
                }
            }
            _ => {}
        }
    }
}

/// An I/O APIC shared between the MMIO bus and the run loop.
pub type SharedIoApic = std::sync::Arc<std::sync::Mutex<IoApic>>;

/// The MMIO device of a [`SharedIoApic`].
#[derive(Debug)]
pub struct IoApicMmio(pub SharedIoApic);

impl MmioDevice for IoApicMmio {
    fn name(&self) -> &str {
        "ioapic"
    }

    fn read(&mut self, offset: u64, data: &mut [u8]) {
        match self.0.lock() {
            Ok(mut io) => io.mmio_read(offset, data),
            Err(_) => data.fill(0xFF),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let Ok(mut io) = self.0.lock() {
            io.mmio_write(offset, data);
        }
    }
}

impl IoApic {
    /// A load from the MMIO window at `offset`.
    pub fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        let v = match offset & !3 {
            0x00 => self.select,
            0x10 => self.read_register(),
            _ => 0,
        };
        let shift = (offset & 3) * 8;
        for (i, b) in data.iter_mut().enumerate() {
            *b = (v.checked_shr((shift + 8 * i as u64) as u32).unwrap_or(0)) as u8;
        }
    }

    /// A store to the MMIO window at `offset`.
    pub fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        let mut bytes = [0u8; 4];
        for (i, &b) in data.iter().take(4).enumerate() {
            bytes[i] = b;
        }
        let v = u32::from_le_bytes(bytes);
        match offset {
            0x00 => self.select = v & 0xFF,
            0x10 => self.write_register(v),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg_write(io: &mut IoApic, reg: u32, v: u32) {
        io.mmio_write(0, &reg.to_le_bytes());
        io.mmio_write(0x10, &v.to_le_bytes());
    }

    fn reg_read(io: &mut IoApic, reg: u32) -> u32 {
        io.mmio_write(0, &reg.to_le_bytes());
        let mut v = [0u8; 4];
        io.mmio_read(0x10, &mut v);
        u32::from_le_bytes(v)
    }

    #[test]
    fn identification() {
        let mut io = IoApic::new();
        assert_eq!(reg_read(&mut io, 0), u32::from(IOAPIC_ID) << 24);
        assert_eq!(reg_read(&mut io, 1), 0x0017_0011);
        assert_eq!(reg_read(&mut io, 0x10), 1 << 16, "masked at reset");
        reg_write(&mut io, 0, 0x0300_0000);
        assert_eq!(reg_read(&mut io, 0), 0x0300_0000);
    }

    #[test]
    fn edge_entry_sends_on_rising_edges() {
        let mut io = IoApic::new();
        io.set_line(2, true);
        assert!(io.take_messages().is_empty(), "masked");
        io.set_line(2, false);
        reg_write(&mut io, 0x10 + 4, 0x30);
        reg_write(&mut io, 0x11 + 4, 0xFF00_0000);
        assert_eq!(io.entry(2), Some(0xFF00_0000_0000_0030));
        io.pulse(2);
        io.set_line(2, true);
        io.set_line(2, true);
        assert_eq!(
            io.take_messages(),
            [Message::Fixed {
                vector: 0x30,
                level: false
            }; 2]
        );
    }

    #[test]
    fn level_entry_waits_for_eoi() {
        let mut io = IoApic::new();
        reg_write(&mut io, 0x10 + 2 * 9, 0x8000 | 0x41);
        io.set_line(9, true);
        assert_eq!(io.entry(9).unwrap() & REMOTE_IRR, REMOTE_IRR);
        io.set_line(9, true);
        assert_eq!(io.take_messages().len(), 1);
        io.eoi(0x41);
        assert_eq!(io.take_messages().len(), 1, "still active: sent again");
        io.set_line(9, false);
        io.eoi(0x41);
        assert!(io.take_messages().is_empty());
        // Read-only bits are not written.
        reg_write(&mut io, 0x10 + 2 * 9, 0xFFFF_FFFF);
        assert_eq!(io.entry(9).unwrap() & 0x1000, 0);
    }

    #[test]
    fn nmi_and_dropped_modes() {
        let mut io = IoApic::new();
        reg_write(&mut io, 0x10, 0x400);
        reg_write(&mut io, 0x12, 0x700);
        io.pulse(0);
        io.pulse(1);
        assert_eq!(io.take_messages(), [Message::Nmi]);
        io.set_line(99, true);
    }
}
