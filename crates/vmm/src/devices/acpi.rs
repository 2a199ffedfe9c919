//! ACPI for the PC platform: the firmware tables a kernel reads to find
//! the interrupt controllers and to power the machine off, and the
//! fixed-hardware power-management ports they describe.
//!
//! [`tables`] builds, for a given load address, the RSDP (revision 2), an
//! XSDT naming the FADT and the MADT, a FADT (revision 3) with its FACS and
//! DSDT, and the MADT:
//!
//! * MADT: the local APIC at 0xFEE00000 (ID 0, enabled), the I/O APIC
//!   ([`IOAPIC_ID`] at [`IOAPIC_BASE`], GSI 0–23), interrupt source
//!   overrides IRQ 0 → GSI 2 (the PIT, as on every PC with an I/O APIC) and
//!   IRQ 9 → GSI 9 level-triggered active-high (the SCI), LINT1 as NMI, and
//!   PCAT_COMPAT (8259 pair present).
//! * FADT: SCI on IRQ 9, no SMI command port (ACPI mode is always on),
//!   PM1a event block at [`PM_BASE`], PM1a control at `PM_BASE + 4`, the
//!   PM timer at `PM_BASE + 8`, the RTC century at CMOS 0x32, legacy devices
//!   and an 8042 present, no VGA; the reset register is the i8042's command
//!   port 0x64 with value 0xFE (so an ACPI reboot pulses the reset line).
//! * DSDT: only `Name (_S5, Package () { 5, 5, 0, 0 })`: S5 (soft off) is
//!   entered with SLP_TYP = 5.
//!
//! [`PmPorts`] serves the fixed hardware: PM1a status (reads 0, writes
//! ignored) and enable (stored), PM1a control (SCI_EN always set; writing
//! SLP_EN with SLP_TYP 5 powers the machine off: [`DeviceAction::PowerOff`]),
//! and the 24-bit PM timer counting 3.579545 MHz of the [`VirtualClock`].

use super::bus::{DeviceAction, PortDevice};
use super::ioapic::{IOAPIC_BASE, IOAPIC_ID};
use super::pit::VirtualClock;

/// First port of the power-management block.
pub const PM_BASE: u16 = 0x600;
/// Ports it takes: PM1a event (4), PM1a control (2, padded to 4), timer (4).
pub const PM_LEN: u16 = 12;
/// The PM timer's frequency in Hz.
pub const PM_TIMER_HZ: u64 = 3_579_545;
/// The SLP_TYP value of S5 in the DSDT.
pub const SLP_TYP_S5: u16 = 5;
/// The IRQ of the SCI.
pub const SCI_IRQ: u8 = 9;
/// The local APIC's base address the MADT announces.
pub const LAPIC_BASE: u32 = 0xFEE0_0000;

const PM1_CNT_SCI_EN: u16 = 1;
const PM1_CNT_SLP_EN: u16 = 1 << 13;

const OEM_ID: &[u8; 6] = b"VIGIL ";
const OEM_TABLE_ID: &[u8; 8] = b"VIGILPC ";

/// Offsets of the tables inside the blob [`tables`] returns.
mod layout {
    pub const RSDP: usize = 0x000;
    pub const XSDT: usize = 0x040;
    pub const FADT: usize = 0x080;
    pub const FACS: usize = 0x180;
    pub const DSDT: usize = 0x1C0;
    pub const MADT: usize = 0x200;
    pub const END: usize = 0x280;
}

/// Firmware tables, and where the RSDP is among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiTables {
    /// The bytes to load at the address given to [`tables`].
    pub bytes: Vec<u8>,
    /// Guest-physical address of the RSDP.
    pub rsdp: u64,
}

/// Sum of `bytes`, mod 256.
fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b))
}

/// A system description table header (36 bytes) with a zero checksum.
fn header(signature: &[u8; 4], length: usize, revision: u8) -> Vec<u8> {
    let mut h = Vec::with_capacity(length);
    h.extend_from_slice(signature);
    h.extend_from_slice(&(length as u32).to_le_bytes());
    h.push(revision);
    h.push(0);
    h.extend_from_slice(OEM_ID);
    h.extend_from_slice(OEM_TABLE_ID);
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(b"VGIL");
    h.extend_from_slice(&1u32.to_le_bytes());
    h
}

/// Sets the checksum byte (offset 9) so that the table sums to zero.
fn seal(mut table: Vec<u8>) -> Vec<u8> {
    table[9] = 0;
    table[9] = sum(&table).wrapping_neg();
    table
}

/// A generic address structure for system I/O.
fn gas_io(bit_width: u8, access_size: u8, port: u16) -> [u8; 12] {
    let mut g = [0u8; 12];
    g[0] = 1;
    g[1] = bit_width;
    g[3] = access_size;
    g[4..6].copy_from_slice(&port.to_le_bytes());
    g
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

fn fadt(base: u64) -> Vec<u8> {
    let mut t = header(b"FACP", 244, 3);
    t.resize(244, 0);
    let facs = base + layout::FACS as u64;
    let dsdt = base + layout::DSDT as u64;
    put(&mut t, 36, &(facs as u32).to_le_bytes());
    put(&mut t, 40, &(dsdt as u32).to_le_bytes());
    put(&mut t, 46, &u16::from(SCI_IRQ).to_le_bytes());
    put(&mut t, 56, &u32::from(PM_BASE).to_le_bytes());
    put(&mut t, 64, &u32::from(PM_BASE + 4).to_le_bytes());
    put(&mut t, 76, &u32::from(PM_BASE + 8).to_le_bytes());
    t[88] = 4; // PM1_EVT_LEN
    t[89] = 2; // PM1_CNT_LEN
    t[91] = 4; // PM_TMR_LEN
    put(&mut t, 96, &101u16.to_le_bytes()); // C2 latency > 100: no C2
    put(&mut t, 98, &1001u16.to_le_bytes()); // C3 latency > 1000: no C3
    t[108] = 0x32; // CENTURY
                   // IAPC_BOOT_ARCH: legacy devices, 8042, VGA not present.
    put(&mut t, 109, &0x0007u16.to_le_bytes());
    // Flags: WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON (none as fixed
    // features), RESET_REG_SUP.
    put(&mut t, 112, &0x0000_0435u32.to_le_bytes());
    put(&mut t, 116, &gas_io(8, 1, 0x64));
    t[128] = 0xFE;
    put(&mut t, 132, &facs.to_le_bytes());
    put(&mut t, 140, &dsdt.to_le_bytes());
    put(&mut t, 148, &gas_io(32, 2, PM_BASE));
    put(&mut t, 172, &gas_io(16, 2, PM_BASE + 4));
    put(&mut t, 208, &gas_io(32, 3, PM_BASE + 8));
    seal(t)
}

fn facs() -> Vec<u8> {
    let mut t = vec![0u8; 64];
    put(&mut t, 0, b"FACS");
    put(&mut t, 4, &64u32.to_le_bytes());
    t[32] = 1; // version
    t
}

fn dsdt() -> Vec<u8> {
    // Name (_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })
    let aml: &[u8] = &[
        0x08, b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00,
    ];
    let mut t = header(b"DSDT", 36 + aml.len(), 2);
    t.extend_from_slice(aml);
    seal(t)
}

fn madt() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&LAPIC_BASE.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes()); // PCAT_COMPAT
                                                 // Processor local APIC: UID 0, APIC ID 0, enabled.
    body.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]);
    // I/O APIC.
    body.extend_from_slice(&[1, 12, IOAPIC_ID, 0]);
    body.extend_from_slice(&(IOAPIC_BASE as u32).to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    // Interrupt source overrides: IRQ0 → GSI 2; the SCI, level, active high.
    for (irq, gsi, flags) in [(0u8, 2u32, 0u16), (SCI_IRQ, u32::from(SCI_IRQ), 0x000D)] {
        body.extend_from_slice(&[2, 10, 0, irq]);
        body.extend_from_slice(&gsi.to_le_bytes());
        body.extend_from_slice(&flags.to_le_bytes());
    }
    // Local APIC NMI: all processors, LINT1.
    body.extend_from_slice(&[4, 6, 0xFF, 0, 0, 1]);
    let mut t = header(b"APIC", 36 + body.len(), 3);
    t.extend_from_slice(&body);
    seal(t)
}

fn xsdt(base: u64) -> Vec<u8> {
    let mut t = header(b"XSDT", 36 + 16, 1);
    t.extend_from_slice(&(base + layout::FADT as u64).to_le_bytes());
    t.extend_from_slice(&(base + layout::MADT as u64).to_le_bytes());
    seal(t)
}

fn rsdp(base: u64) -> Vec<u8> {
    let mut r = Vec::with_capacity(36);
    r.extend_from_slice(b"RSD PTR ");
    r.push(0);
    r.extend_from_slice(OEM_ID);
    r.push(2); // revision: ACPI 2.0+, XSDT valid
    r.extend_from_slice(&0u32.to_le_bytes()); // no RSDT
    r.extend_from_slice(&36u32.to_le_bytes());
    r.extend_from_slice(&(base + layout::XSDT as u64).to_le_bytes());
    r.extend_from_slice(&[0; 4]);
    r[8] = sum(&r[..20]).wrapping_neg();
    r[32] = sum(&r).wrapping_neg();
    r
}

/// The ACPI tables for a PC whose firmware area starts at `base`.
pub fn tables(base: u64) -> AcpiTables {
    let mut bytes = vec![0u8; layout::END];
    for (at, table) in [
        (layout::RSDP, rsdp(base)),
        (layout::XSDT, xsdt(base)),
        (layout::FADT, fadt(base)),
        (layout::FACS, facs()),
        (layout::DSDT, dsdt()),
        (layout::MADT, madt()),
    ] {
        put(&mut bytes, at, &table);
    }
    AcpiTables {
        bytes,
        rsdp: base + layout::RSDP as u64,
    }
}

/// The PM1a event and control blocks and the PM timer.
#[derive(Debug)]
pub struct PmPorts {
    clock: VirtualClock,
    enable: u16,
    control: u16,
}

impl PmPorts {
    /// The ports; the timer counts `clock`.
    pub fn new(clock: VirtualClock) -> PmPorts {
        PmPorts {
            clock,
            enable: 0,
            control: PM1_CNT_SCI_EN,
        }
    }

    fn timer(&self) -> u32 {
        let ticks = u128::from(self.clock.now_ns()) * u128::from(PM_TIMER_HZ) / 1_000_000_000;
        (ticks & 0xFF_FFFF) as u32
    }

    fn register(&self, offset: u16) -> u32 {
        match offset {
            0..=1 => 0,
            2..=3 => u32::from(self.enable),
            4..=7 => u32::from(self.control),
            _ => self.timer(),
        }
    }
}

impl PortDevice for PmPorts {
    fn name(&self) -> &str {
        "acpi-pm"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            let at = offset + i as u16;
            let base = match at {
                0..=1 => 0,
                2..=3 => 2,
                4..=7 => 4,
                _ => 8,
            };
            *b = (self.register(at) >> (8 * u32::from(at - base))) as u8;
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        let mut action = DeviceAction::None;
        for (i, &v) in data.iter().enumerate() {
            let at = offset + i as u16;
            match at {
                2 => self.enable = self.enable & 0xFF00 | u16::from(v),
                3 => self.enable = self.enable & 0x00FF | u16::from(v) << 8,
                4 => self.control = self.control & 0xFF00 | u16::from(v) | PM1_CNT_SCI_EN,
                5 => {
                    let value = u16::from(v) << 8;
                    self.control = self.control & 0x00FF | value & !PM1_CNT_SLP_EN;
                    if value & PM1_CNT_SLP_EN != 0 && (value >> 10) & 7 == SLP_TYP_S5 {
                        action = DeviceAction::PowerOff;
                    }
                }
                _ => {}
            }
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_at(bytes: &[u8], offset: usize) -> &[u8] {
        let len = u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().unwrap()) as usize;
        &bytes[offset..offset + len]
    }

    #[test]
    fn tables_are_well_formed() {
        let base = 0xE_0000;
        let t = tables(base);
        assert_eq!(t.rsdp, base);
        let r = &t.bytes[..36];
        assert_eq!(&r[..8], b"RSD PTR ");
        assert_eq!(sum(&r[..20]), 0);
        assert_eq!(sum(r), 0);
        let xsdt_addr = u64::from_le_bytes(r[24..32].try_into().unwrap());
        let xsdt = table_at(&t.bytes, (xsdt_addr - base) as usize);
        assert_eq!(&xsdt[..4], b"XSDT");
        assert_eq!(sum(xsdt), 0);
        let mut seen = Vec::new();
        for entry in xsdt[36..].chunks(8) {
            let addr = u64::from_le_bytes(entry.try_into().unwrap());
            let table = table_at(&t.bytes, (addr - base) as usize);
            assert_eq!(sum(table), 0, "{:?}", &table[..4]);
            seen.push(table[..4].to_vec());
            if &table[..4] == b"FACP" {
                let dsdt = u64::from_le_bytes(table[140..148].try_into().unwrap());
                let d = table_at(&t.bytes, (dsdt - base) as usize);
                assert_eq!(&d[..4], b"DSDT");
                assert_eq!(sum(d), 0);
                assert!(d.windows(4).any(|w| w == b"_S5_"));
                let facs = u64::from_le_bytes(table[132..140].try_into().unwrap());
                assert_eq!(facs % 64, 0);
                assert_eq!(&t.bytes[(facs - base) as usize..][..4], b"FACS");
                assert_eq!(u32::from_le_bytes(table[64..68].try_into().unwrap()), 0x604);
            }
        }
        assert_eq!(seen, [b"FACP".to_vec(), b"APIC".to_vec()]);
    }

    #[test]
    fn madt_describes_the_controllers() {
        let t = tables(0);
        let m = table_at(&t.bytes, layout::MADT);
        assert_eq!(&m[36..40], &LAPIC_BASE.to_le_bytes());
        // Walk the entries: types and lengths.
        let mut at = 44;
        let mut kinds = Vec::new();
        while at < m.len() {
            kinds.push((m[at], m[at + 1]));
            at += usize::from(m[at + 1]);
        }
        assert_eq!(at, m.len());
        assert_eq!(kinds, [(0, 8), (1, 12), (2, 10), (2, 10), (4, 6)]);
    }

    #[test]
    fn s5_powers_off_and_the_timer_counts() {
        let clock = VirtualClock::new();
        let mut pm = PmPorts::new(clock.clone());
        let mut v = [0u8; 2];
        pm.read(4, &mut v);
        assert_eq!(u16::from_le_bytes(v) & PM1_CNT_SCI_EN, 1);
        // SLP_TYP 1 with SLP_EN: not a state this machine has.
        let s1 = (1u16 << 10 | PM1_CNT_SLP_EN).to_le_bytes();
        assert_eq!(pm.write(4, &s1), DeviceAction::None);
        let s5 = (SLP_TYP_S5 << 10 | PM1_CNT_SLP_EN).to_le_bytes();
        assert_eq!(pm.write(4, &s5), DeviceAction::PowerOff);
        pm.read(4, &mut v);
        assert_eq!(u16::from_le_bytes(v) & PM1_CNT_SLP_EN, 0, "SLP_EN reads 0");
        let mut t = [0u8; 4];
        pm.read(8, &mut t);
        assert_eq!(u32::from_le_bytes(t), 0);
        clock.set_ns(1_000_000_000);
        pm.read(8, &mut t);
        assert_eq!(u32::from_le_bytes(t), (PM_TIMER_HZ & 0xFF_FFFF) as u32);
        pm.write(2, &0x0121u16.to_le_bytes());
        pm.read(2, &mut v);
        assert_eq!(u16::from_le_bytes(v), 0x0121);
    }
}
