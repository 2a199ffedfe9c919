//! The PC a Linux kernel boots on: the port and MMIO devices of
//! [`PortBus::pc`] plus what a PC kernel probes (RTC, port 0x61, port 0x80,
//! the i8042's reset line, PCI configuration with a host bridge, the ACPI
//! power-management block), an I/O APIC, the ACPI tables that describe them,
//! and the interrupt wiring: the PIT's counter 0 on I/O APIC pin 2 (ISA
//! IRQ 0, overridden as on every PC with an I/O APIC), COM1 on pin 4 and the
//! i8042's keyboard and auxiliary ports on pins 1 and 12.
//!
//! Multiboot guests keep the smaller board they always had; this one is
//! built for bzImages only.
//!
//! After every exit the run loop calls [`LinuxPc::deliver`]: it samples the
//! interrupt lines (the PIT's OUT edges since the last call, the UART's
//! interrupt output gated by MCR.OUT2 as on a PC), feeds them to the I/O
//! APIC, and sends its messages to the vCPU's local APIC. Lines are only
//! sampled at exits: the run loop asks the vCPU to return at the PIT's next
//! IRQ 0 edge ([`LinuxPc::next_event_ns`], `Vcpu::set_exit_deadline`), so
//! every tick of a periodic PIT reaches the guest at its virtual time, and
//! the monitor returns the vCPU to the VMM at every host tick besides
//! (`Limits::kick_userspace`) for the UART and accelerators without virtual
//! time. The PIC pair
//! stays on the bus for the kernel to program and mask, but its output
//! (ExtINT through LINT0) is not wired: with the MADT, Linux routes every
//! ISA interrupt through the I/O APIC. The local APIC's EOIs are not
//! forwarded to the I/O APIC, so a level-triggered entry sends once per
//! assertion of its line; every line wired here is edge-triggered.

use crate::devices::acpi::{self, AcpiTables, PmPorts, PM_BASE, PM_LEN};
use crate::devices::i8042::{SharedI8042, I8042, I8042_COMMAND, I8042_DATA};
use crate::devices::ioapic::{IoApic, IoApicMmio, Message, SharedIoApic, IOAPIC_BASE, IOAPIC_LEN};
use crate::devices::pci::{PciConfig, PCI_CONFIG_BASE, PCI_CONFIG_LEN};
use crate::devices::pit::{Pit, PitPorts, SharedPit};
use crate::devices::port61::{SystemControlB, PORT61};
use crate::devices::post::{PostPort, POST_PORT};
use crate::devices::rtc::{Rtc, RTC_BASE, RTC_LEN};
use crate::devices::serial::{Serial, SerialPorts, SharedSerial};
use crate::devices::{
    BusError, MmioBus, PortBus, TestDevMmio, VirtualClock, TESTDEV_MMIO_BASE, TESTDEV_MMIO_LEN,
};
use crate::loader::linux::FIRMWARE_ADDR;
use accel::{AccelError, Vcpu};
use std::io::Write;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

/// I/O APIC pin of the PIT (ISA IRQ 0 through the MADT's override).
pub const PIT_PIN: usize = 2;
/// I/O APIC pin of COM1 (ISA IRQ 4).
pub const COM1_PIN: usize = 4;
/// I/O APIC pin of the i8042's keyboard port (ISA IRQ 1).
pub const KEYBOARD_PIN: usize = 1;
/// I/O APIC pin of the i8042's auxiliary port (ISA IRQ 12).
pub const AUX_PIN: usize = 12;

/// The interrupt sources and the I/O APIC of a Linux board.
#[derive(Debug)]
pub struct LinuxPc {
    pit: SharedPit,
    serial: SharedSerial,
    i8042: SharedI8042,
    ioapic: SharedIoApic,
    input: Option<SerialInput>,
}

/// Bytes on their way to COM1's receiver.
#[derive(Debug)]
struct SerialInput {
    bytes: Receiver<u8>,
    /// A byte the receiver's FIFO had no room for yet.
    held: Option<u8>,
}

/// What [`LinuxPc::build`] makes.
pub struct LinuxBoard {
    /// The port devices.
    pub ports: PortBus,
    /// The MMIO devices.
    pub mmio: MmioBus,
    /// The interrupt wiring.
    pub pc: LinuxPc,
    /// The ACPI tables, for the loader to place at `FIRMWARE_ADDR`.
    pub tables: AcpiTables,
}

impl LinuxPc {
    /// The board with `ram_bytes` of RAM, COM1 writing to `serial_out`, the
    /// timers counting `clock`.
    pub fn build(
        serial_out: Box<dyn Write + Send>,
        ram_bytes: u64,
        clock: VirtualClock,
    ) -> Result<LinuxBoard, BusError> {
        let serial: SharedSerial = Arc::new(Mutex::new(Serial::new(serial_out)));
        let pit: SharedPit = Arc::new(Mutex::new(Pit::new(clock.clone())));
        let (mut ports, _pic) = PortBus::pc_with(
            Box::new(SerialPorts(serial.clone())),
            Box::new(PitPorts(pit.clone())),
            ram_bytes,
        )?;
        ports.register(RTC_BASE, RTC_LEN, Box::new(Rtc::new()))?;
        ports.register(PORT61, 1, Box::new(SystemControlB::new(pit.clone())))?;
        ports.register(POST_PORT, 1, Box::new(PostPort::new()))?;
        let (kbd_data, kbd_command, i8042) = I8042::ports();
        ports.register(I8042_DATA, 1, Box::new(kbd_data))?;
        ports.register(I8042_COMMAND, 1, Box::new(kbd_command))?;
        ports.register(PCI_CONFIG_BASE, PCI_CONFIG_LEN, Box::new(PciConfig::new()))?;
        ports.register(PM_BASE, PM_LEN, Box::new(PmPorts::new(clock)))?;
        let ioapic: SharedIoApic = Arc::new(Mutex::new(IoApic::new()));
        let mut mmio = MmioBus::new();
        mmio.register(
            TESTDEV_MMIO_BASE,
            TESTDEV_MMIO_LEN as u64,
            Box::new(TestDevMmio::new()),
        );
        mmio.register(
            IOAPIC_BASE,
            IOAPIC_LEN,
            Box::new(IoApicMmio(ioapic.clone())),
        );
        Ok(LinuxBoard {
            ports,
            mmio,
            pc: LinuxPc {
                pit,
                serial,
                i8042,
                ioapic,
                input: None,
            },
            tables: acpi::tables(FIRMWARE_ADDR),
        })
    }

    /// Samples the interrupt lines and sends the I/O APIC's messages to
    /// `vcpu` (NMIs through its control handle).
    pub fn deliver<V: Vcpu + ?Sized>(&mut self, vcpu: &mut V) -> Result<(), AccelError> {
        self.feed_input();
        let pit_edge = self.pit.lock().map(|mut p| p.take_irq()).unwrap_or(false);
        let com1 = self.serial.lock().map(|s| s.irq_line()).unwrap_or(false);
        let (keyboard, aux) = self
            .i8042
            .lock()
            .map(|c| c.irq_lines())
            .unwrap_or((false, false));
        let messages = {
            let Ok(mut io) = self.ioapic.lock() else {
                return Ok(());
            };
            if pit_edge {
                io.pulse(PIT_PIN);
            }
            io.set_line(COM1_PIN, com1);
            io.set_line(KEYBOARD_PIN, keyboard);
            io.set_line(AUX_PIN, aux);
            io.take_messages()
        };
        for m in messages {
            match m {
                Message::Fixed { vector, level } => vcpu.deliver_interrupt(vector, level)?,
                Message::Nmi => vcpu.control().inject_nmi(),
            }
        }
        Ok(())
    }

    /// Virtual time of the next interrupt a device will raise by itself
    /// (the PIT's next IRQ 0 edge), for the vCPU to return then
    /// (`Vcpu::set_exit_deadline`).
    pub fn next_event_ns(&self) -> Option<u64> {
        self.pit.lock().ok().and_then(|p| p.next_irq_ns())
    }

    /// Makes `bytes` COM1's input: each [`LinuxPc::deliver`] moves what
    /// has arrived into the receiver while a driver listens (the
    /// received-data interrupt is enabled) and it has room; otherwise
    /// the bytes wait, as on a line with flow control. Input typed ahead of
    /// the guest's console driver is so kept for it rather than lost when
    /// the driver resets the FIFO.
    pub fn connect_input(&mut self, bytes: Receiver<u8>) {
        self.input = Some(SerialInput { bytes, held: None });
    }

    fn feed_input(&mut self) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        loop {
            let byte = match input.held.take() {
                Some(b) => b,
                None => match input.bytes.try_recv() {
                    Ok(b) => b,
                    Err(TryRecvError::Empty) => return,
                    Err(TryRecvError::Disconnected) => {
                        self.input = None;
                        return;
                    }
                },
            };
            let taken = self
                .serial
                .lock()
                .map(|mut s| s.ready_for_input() && s.receive(byte))
                .unwrap_or(false);
            if !taken {
                input.held = Some(byte);
                return;
            }
        }
    }
}
