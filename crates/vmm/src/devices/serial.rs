//! A 16550A UART.
//!
//! Transmission is instantaneous: every byte written to THR goes straight to
//! the output writer (written and flushed before the `OUT` completes, so
//! nothing is lost if the process ends right after), and LSR always shows the
//! transmitter empty (THRE and TEMT). There is no input source yet except
//! loopback (MCR bit 4), in which transmitted bytes are received back instead
//! of being output, and [`Serial::receive`] for the VMM.
//!
//! Registers (offset from the base; DLAB is LCR bit 7):
//!
//! | offset | read | write |
//! |---|---|---|
//! | 0 | RBR (DLAB=0) / DLL (DLAB=1) | THR / DLL |
//! | 1 | IER / DLM | IER (low 4 bits) / DLM |
//! | 2 | IIR | FCR |
//! | 3 | LCR | LCR |
//! | 4 | MCR | MCR (low 5 bits) |
//! | 5 | LSR | ignored |
//! | 6 | MSR | ignored |
//! | 7 | SCR | SCR |
//!
//! Interrupt identification follows the 16550A priorities (line status,
//! received data / character timeout, THR empty, modem status) and is kept up
//! to date for polled drivers; no interrupt line is wired yet
//! ([`Serial::interrupt_pending`] tells what it would carry). With FIFOs on,
//! a receive FIFO below its trigger level reports the character-timeout
//! interrupt at once, since no time passes for this device.
//!
//! Wider accesses are handled byte by byte at consecutive offsets, as QEMU
//! does for its 8-bit UART.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Write};

use super::bus::{DeviceAction, PortDevice};

/// COM1's base port.
pub const COM1_BASE: u16 = 0x3F8;
/// Number of ports a 16550A occupies.
pub const SERIAL_LEN: u16 = 8;

/// Receive FIFO depth of a 16550A.
const FIFO_LEN: usize = 16;

const IER_RDI: u8 = 0x01;
const IER_THRI: u8 = 0x02;
const IER_RLSI: u8 = 0x04;
const IER_MSI: u8 = 0x08;

const IIR_NO_INT: u8 = 0x01;
const IIR_MSI: u8 = 0x00;
const IIR_THRI: u8 = 0x02;
const IIR_RDI: u8 = 0x04;
const IIR_RLSI: u8 = 0x06;
const IIR_CTI: u8 = 0x0C;
const IIR_FIFO_ENABLED: u8 = 0xC0;

const FCR_FE: u8 = 0x01;
const FCR_RFR: u8 = 0x02;
/// FCR bits kept: enable, DMA mode, receive trigger level.
const FCR_KEPT: u8 = 0xC9;

const LCR_DLAB: u8 = 0x80;

const MCR_DTR: u8 = 0x01;
const MCR_RTS: u8 = 0x02;
const MCR_OUT1: u8 = 0x04;
const MCR_OUT2: u8 = 0x08;
const MCR_LOOP: u8 = 0x10;

const LSR_DR: u8 = 0x01;
const LSR_OE: u8 = 0x02;
const LSR_BI: u8 = 0x10;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;
/// LSR error bits cleared by reading LSR (overrun, parity, framing, break).
const LSR_ERRORS: u8 = 0x1E;

const MSR_DCTS: u8 = 0x01;
const MSR_DDSR: u8 = 0x02;
const MSR_TERI: u8 = 0x04;
const MSR_DDCD: u8 = 0x08;
const MSR_CTS: u8 = 0x10;
const MSR_DSR: u8 = 0x20;
const MSR_RI: u8 = 0x40;
const MSR_DCD: u8 = 0x80;
/// Modem inputs outside loopback: nothing attached that drops the line, as
/// QEMU reports for a non-tty backend.
const MSR_IDLE_INPUTS: u8 = MSR_DCD | MSR_DSR | MSR_CTS;

/// A 16550A UART whose transmitter writes to a host `Write`.
pub struct Serial {
    out: Box<dyn Write + Send>,
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    fcr: u8,
    dll: u8,
    dlm: u8,
    /// Sticky LSR error bits (overrun, break).
    lsr_errors: u8,
    /// MSR delta bits (low nibble).
    msr_delta: u8,
    rx: VecDeque<u8>,
    /// Last byte read from RBR (what RBR shows when empty, non-FIFO mode).
    rbr: u8,
    thr_ipending: bool,
    transmitted: u64,
    output_errors: u64,
    first_output_error: Option<io::Error>,
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serial")
            .field("ier", &self.ier)
            .field("lcr", &self.lcr)
            .field("mcr", &self.mcr)
            .field("fcr", &self.fcr)
            .field("divisor", &self.divisor())
            .field("rx", &self.rx)
            .field("transmitted", &self.transmitted)
            .field("output_errors", &self.output_errors)
            .finish_non_exhaustive()
    }
}

impl Serial {
    /// A UART in its reset state (divisor 12, i.e. 9600 baud; LCR, MCR and
    /// IER 0; FIFOs off) whose transmitted bytes go to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Serial {
        Serial {
            out,
            ier: 0,
            lcr: 0,
            mcr: 0,
            scr: 0,
            fcr: 0,
            dll: 0x0C,
            dlm: 0,
            lsr_errors: 0,
            msr_delta: 0,
            rx: VecDeque::with_capacity(FIFO_LEN),
            rbr: 0,
            thr_ipending: false,
            transmitted: 0,
            output_errors: 0,
            first_output_error: None,
        }
    }

    /// The baud-rate divisor latch (DLM:DLL).
    pub fn divisor(&self) -> u16 {
        u16::from_le_bytes([self.dll, self.dlm])
    }

    /// Whether a byte sent now would be received and read: a driver listens
    /// (the received-data interrupt is enabled, IER bit 0, and the IRQ line
    /// is gated on, MCR.OUT2 — a driver probing IER alone does not count),
    /// the UART is not in loopback, and the receiver has room (a free FIFO slot, or an empty
    /// RBR without the FIFO), so nothing is overrun.
    pub fn ready_for_input(&self) -> bool {
        let room = if self.fifo_enabled() {
            self.rx.len() < FIFO_LEN
        } else {
            self.rx.is_empty()
        };
        self.ier & IER_RDI != 0 && self.mcr & (MCR_LOOP | MCR_OUT2) == MCR_OUT2 && room
    }

    /// The UART's interrupt output as a PC wires it: an interrupt pending
    /// and MCR.OUT2 set (OUT2 gates the IRQ driver on every PC serial port).
    pub fn irq_line(&self) -> bool {
        self.mcr & MCR_OUT2 != 0 && self.pending_interrupt().is_some()
    }

    /// Whether the UART would assert its interrupt line (IIR bit 0 clear).
    /// Not gated by MCR OUT2, as in QEMU; the VMM wires no IRQ yet.
    pub fn interrupt_pending(&self) -> bool {
        self.pending_interrupt().is_some()
    }

    /// Bytes sent to the output writer so far (loopback bytes excluded).
    pub fn transmitted(&self) -> u64 {
        self.transmitted
    }

    /// Bytes whose output failed (the writer returned an error).
    pub fn output_errors(&self) -> u64 {
        self.output_errors
    }

    /// Takes the first output error seen, if any, for the VMM to report.
    pub fn take_output_error(&mut self) -> Option<io::Error> {
        self.first_output_error.take()
    }

    /// Delivers `byte` on the serial input line, as if a host sent it.
    /// Returns `false` if it was not received: in loopback mode the input
    /// line is disconnected. A full receiver sets the overrun error.
    pub fn receive(&mut self, byte: u8) -> bool {
        if self.mcr & MCR_LOOP != 0 {
            return false;
        }
        self.push_rx(byte);
        true
    }

    fn fifo_enabled(&self) -> bool {
        self.fcr & FCR_FE != 0
    }

    fn dlab(&self) -> bool {
        self.lcr & LCR_DLAB != 0
    }

    /// Puts a received byte into RBR / the receive FIFO.
    fn push_rx(&mut self, byte: u8) {
        if self.fifo_enabled() {
            if self.rx.len() >= FIFO_LEN {
                // The FIFO keeps its contents; the new character is lost.
                self.lsr_errors |= LSR_OE;
            } else {
                self.rx.push_back(byte);
            }
        } else {
            // RBR is overwritten; the unread character is lost.
            if !self.rx.is_empty() {
                self.lsr_errors |= LSR_OE;
                self.rx.clear();
            }
            self.rx.push_back(byte);
        }
    }

    fn lsr(&self) -> u8 {
        let dr = if self.rx.is_empty() { 0 } else { LSR_DR };
        dr | self.lsr_errors | LSR_THRE | LSR_TEMT
    }

    /// The modem-status inputs (MSR high nibble): in loopback the modem
    /// control outputs, else an idle line with carrier.
    fn modem_inputs(&self) -> u8 {
        if self.mcr & MCR_LOOP != 0 {
            let m = self.mcr;
            let mut v = 0;
            if m & MCR_RTS != 0 {
                v |= MSR_CTS;
            }
            if m & MCR_DTR != 0 {
                v |= MSR_DSR;
            }
            if m & MCR_OUT1 != 0 {
                v |= MSR_RI;
            }
            if m & MCR_OUT2 != 0 {
                v |= MSR_DCD;
            }
            v
        } else {
            MSR_IDLE_INPUTS
        }
    }

    fn receive_trigger_level(&self) -> usize {
        match self.fcr >> 6 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        }
    }

    /// The highest-priority pending interrupt's IIR identification.
    fn pending_interrupt(&self) -> Option<u8> {
        if self.ier & IER_RLSI != 0 && self.lsr_errors != 0 {
            Some(IIR_RLSI)
        } else if self.ier & IER_RDI != 0 && !self.rx.is_empty() {
            if self.fifo_enabled() && self.rx.len() < self.receive_trigger_level() {
                Some(IIR_CTI)
            } else {
                Some(IIR_RDI)
            }
        } else if self.ier & IER_THRI != 0 && self.thr_ipending {
            Some(IIR_THRI)
        } else if self.ier & IER_MSI != 0 && self.msr_delta != 0 {
            Some(IIR_MSI)
        } else {
            None
        }
    }

    /// Sends one byte: received back in loopback, else written and flushed.
    fn transmit(&mut self, byte: u8) {
        if self.mcr & MCR_LOOP != 0 {
            self.push_rx(byte);
        } else {
            let result = self.out.write_all(&[byte]).and_then(|()| self.out.flush());
            match result {
                Ok(()) => self.transmitted = self.transmitted.saturating_add(1),
                Err(e) => {
                    self.output_errors = self.output_errors.saturating_add(1);
                    self.first_output_error.get_or_insert(e);
                }
            }
        }
        // The transmitter is empty again at once.
        self.thr_ipending = true;
    }

    fn read_register(&mut self, offset: u16) -> u8 {
        match offset {
            0 if self.dlab() => self.dll,
            0 => match self.rx.pop_front() {
                Some(b) => {
                    self.rbr = b;
                    b
                }
                // QEMU: an empty FIFO reads 0; without FIFO, RBR keeps the
                // last character.
                None if self.fifo_enabled() => 0,
                None => self.rbr,
            },
            1 if self.dlab() => self.dlm,
            1 => self.ier,
            2 => {
                let id = self.pending_interrupt();
                if id == Some(IIR_THRI) {
                    // Reading IIR that reports THR empty clears it.
                    self.thr_ipending = false;
                }
                let fifo = if self.fifo_enabled() {
                    IIR_FIFO_ENABLED
                } else {
                    0
                };
                id.unwrap_or(IIR_NO_INT) | fifo
            }
            3 => self.lcr,
            4 => self.mcr,
            5 => {
                let v = self.lsr();
                self.lsr_errors &= !LSR_ERRORS;
                v
            }
            6 => {
                let v = self.modem_inputs() | self.msr_delta;
                self.msr_delta = 0;
                v
            }
            7 => self.scr,
            _ => 0xFF,
        }
    }

    fn write_register(&mut self, offset: u16, v: u8) {
        match offset {
            0 if self.dlab() => self.dll = v,
            0 => {
                self.thr_ipending = false;
                self.transmit(v);
            }
            1 if self.dlab() => self.dlm = v,
            1 => {
                let changed = (self.ier ^ v) & IER_THRI;
                self.ier = v & 0x0F;
                if changed != 0 {
                    // THR is always empty: enabling its interrupt raises it.
                    self.thr_ipending = self.ier & IER_THRI != 0;
                }
            }
            2 => {
                let mut v = v;
                if (v ^ self.fcr) & FCR_FE != 0 {
                    // Switching the FIFOs on or off empties them.
                    v |= FCR_RFR;
                }
                if v & FCR_RFR != 0 {
                    self.rx.clear();
                    self.lsr_errors &= !LSR_BI;
                }
                // The other FCR bits are programmed only with FIFOs enabled.
                self.fcr = if v & FCR_FE != 0 { v & FCR_KEPT } else { 0 };
            }
            3 => self.lcr = v,
            4 => {
                let before = self.modem_inputs();
                self.mcr = v & 0x1F;
                let after = self.modem_inputs();
                let changed = before ^ after;
                if changed & MSR_CTS != 0 {
                    self.msr_delta |= MSR_DCTS;
                }
                if changed & MSR_DSR != 0 {
                    self.msr_delta |= MSR_DDSR;
                }
                if before & MSR_RI != 0 && after & MSR_RI == 0 {
                    self.msr_delta |= MSR_TERI;
                }
                if changed & MSR_DCD != 0 {
                    self.msr_delta |= MSR_DDCD;
                }
            }
            7 => self.scr = v,
            // LSR and MSR are read-only; beyond the device: nothing.
            _ => {}
        }
    }
}

impl PortDevice for Serial {
    fn name(&self) -> &str {
        "serial"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            let reg = u16::try_from(i)
                .ok()
                .and_then(|i| offset.checked_add(i))
                .unwrap_or(u16::MAX);
            *b = self.read_register(reg);
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        for (i, &b) in data.iter().enumerate() {
            let reg = u16::try_from(i)
                .ok()
                .and_then(|i| offset.checked_add(i))
                .unwrap_or(u16::MAX);
            self.write_register(reg, b);
        }
        DeviceAction::None
    }
}

/// A UART shared between the port bus and the board that samples its
/// interrupt line and feeds it input.
pub type SharedSerial = std::sync::Arc<std::sync::Mutex<Serial>>;

/// The port device of a [`SharedSerial`].
pub struct SerialPorts(pub SharedSerial);

impl fmt::Debug for SerialPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SerialPorts")
    }
}

impl PortDevice for SerialPorts {
    fn name(&self) -> &str {
        "serial"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) {
        match self.0.lock() {
            Ok(mut s) => s.read(offset, data),
            Err(_) => data.fill(0xFF),
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        match self.0.lock() {
            Ok(mut s) => s.write(offset, data),
            Err(_) => DeviceAction::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that shares what it receives and counts flushes.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        flushes: Arc<Mutex<usize>>,
    }
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            *self.flushes.lock().unwrap() += 1;
            Ok(())
        }
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn uart() -> (Serial, Sink) {
        let sink = Sink::default();
        (Serial::new(Box::new(sink.clone())), sink)
    }

    fn rd(s: &mut Serial, off: u16) -> u8 {
        let mut b = [0];
        s.read(off, &mut b);
        b[0]
    }

    fn wr(s: &mut Serial, off: u16, v: u8) {
        assert_eq!(s.write(off, &[v]), DeviceAction::None);
    }

    const THR: u16 = 0;
    const IER: u16 = 1;
    const IIR: u16 = 2;
    const LCR: u16 = 3;
    const MCR: u16 = 4;
    const LSR: u16 = 5;
    const MSR: u16 = 6;
    const SCR: u16 = 7;

    #[test]
    fn input_waits_for_a_listening_driver_with_room() {
        let (mut s, _) = uart();
        assert!(!s.ready_for_input(), "no driver yet");
        wr(&mut s, IER, 0x01);
        assert!(!s.ready_for_input(), "OUT2 off: a probe");
        wr(&mut s, MCR, 0x08);
        assert!(s.ready_for_input());
        assert!(s.receive(b'a'));
        assert!(!s.ready_for_input(), "RBR full without the FIFO");
        assert_eq!(rd(&mut s, THR), b'a');
        wr(&mut s, IIR, 0x01); // FIFO on
        for b in 0..16 {
            assert!(s.ready_for_input(), "slot {b}");
            assert!(s.receive(b));
        }
        assert!(!s.ready_for_input(), "FIFO full");
        wr(&mut s, MCR, 0x18); // loopback
        rd(&mut s, THR);
        assert!(!s.ready_for_input(), "loopback");
    }

    #[test]
    fn reset_state() {
        let (mut s, _) = uart();
        assert_eq!(rd(&mut s, IER), 0);
        assert_eq!(rd(&mut s, IIR), 0x01);
        assert_eq!(rd(&mut s, LCR), 0);
        assert_eq!(rd(&mut s, MCR), 0);
        assert_eq!(rd(&mut s, LSR), 0x60);
        assert_eq!(rd(&mut s, MSR), 0xB0);
        assert_eq!(rd(&mut s, SCR), 0);
        assert_eq!(s.divisor(), 12);
        assert!(!s.interrupt_pending());
        assert_eq!(s.name(), "serial");
    }

    #[test]
    fn output_is_written_and_flushed_per_byte() {
        let (mut s, sink) = uart();
        for &b in b"hello\n" {
            wr(&mut s, THR, b);
        }
        assert_eq!(&*sink.bytes.lock().unwrap(), b"hello\n");
        assert_eq!(*sink.flushes.lock().unwrap(), 6);
        assert_eq!(s.transmitted(), 6);
        // Transmitter always empty, nothing received.
        assert_eq!(rd(&mut s, LSR), 0x60);
    }

    #[test]
    fn output_errors_are_counted_not_fatal() {
        let mut s = Serial::new(Box::new(Broken));
        wr(&mut s, THR, b'a');
        wr(&mut s, THR, b'b');
        assert_eq!(s.output_errors(), 2);
        assert_eq!(s.transmitted(), 0);
        let e = s.take_output_error().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(s.take_output_error().is_none());
    }

    #[test]
    fn dlab_switches_to_divisor_latch() {
        let (mut s, sink) = uart();
        wr(&mut s, IER, 0x05);
        wr(&mut s, LCR, 0x83);
        wr(&mut s, THR, 0x01); // DLL, not output
        wr(&mut s, IER, 0x02); // DLM, not IER
        assert_eq!(rd(&mut s, 0), 0x01);
        assert_eq!(rd(&mut s, 1), 0x02);
        assert_eq!(s.divisor(), 0x0201);
        assert!(sink.bytes.lock().unwrap().is_empty());
        wr(&mut s, LCR, 0x03);
        assert_eq!(rd(&mut s, LCR), 0x03);
        assert_eq!(rd(&mut s, IER), 0x05);
        assert_eq!(s.divisor(), 0x0201);
        wr(&mut s, THR, b'x');
        assert_eq!(&*sink.bytes.lock().unwrap(), b"x");
    }

    #[test]
    fn ier_keeps_low_nibble() {
        let (mut s, _) = uart();
        wr(&mut s, IER, 0xFF);
        assert_eq!(rd(&mut s, IER), 0x0F);
    }

    #[test]
    fn scratch_register() {
        let (mut s, _) = uart();
        wr(&mut s, SCR, 0xA5);
        assert_eq!(rd(&mut s, SCR), 0xA5);
    }

    #[test]
    fn mcr_keeps_low_five_bits() {
        let (mut s, _) = uart();
        wr(&mut s, MCR, 0xEB);
        assert_eq!(rd(&mut s, MCR), 0x0B);
    }

    #[test]
    fn lsr_and_msr_ignore_writes() {
        let (mut s, _) = uart();
        wr(&mut s, LSR, 0x00);
        wr(&mut s, MSR, 0x00);
        assert_eq!(rd(&mut s, LSR), 0x60);
        assert_eq!(rd(&mut s, MSR), 0xB0);
    }

    #[test]
    fn loopback_receives_instead_of_output() {
        let (mut s, sink) = uart();
        wr(&mut s, MCR, MCR_LOOP);
        wr(&mut s, THR, 0x55);
        assert!(sink.bytes.lock().unwrap().is_empty());
        assert_eq!(rd(&mut s, LSR), 0x61);
        assert_eq!(rd(&mut s, THR), 0x55);
        assert_eq!(rd(&mut s, LSR), 0x60);
        // RBR keeps the last character when empty (FIFOs off).
        assert_eq!(rd(&mut s, THR), 0x55);
        // External input is disconnected in loopback.
        assert!(!s.receive(1));
        // Leaving loopback: output again.
        wr(&mut s, MCR, 0);
        wr(&mut s, THR, b'z');
        assert_eq!(&*sink.bytes.lock().unwrap(), b"z");
        assert_eq!(s.transmitted(), 1);
    }

    #[test]
    fn loopback_overrun_without_fifo() {
        let (mut s, _) = uart();
        wr(&mut s, MCR, MCR_LOOP);
        wr(&mut s, THR, 1);
        wr(&mut s, THR, 2);
        assert_eq!(rd(&mut s, LSR), 0x63);
        // Reading LSR clears the overrun; the newest byte survived.
        assert_eq!(rd(&mut s, LSR), 0x61);
        assert_eq!(rd(&mut s, THR), 2);
    }

    #[test]
    fn loopback_with_fifo() {
        let (mut s, _) = uart();
        wr(&mut s, IIR, 0x01); // FCR: enable FIFOs, trigger 1
        assert_eq!(rd(&mut s, IIR), 0xC1);
        wr(&mut s, MCR, MCR_LOOP);
        for b in 0..17u8 {
            wr(&mut s, THR, b);
        }
        assert_eq!(rd(&mut s, LSR), 0x63); // the 17th was lost
        for b in 0..16u8 {
            assert_eq!(rd(&mut s, THR), b);
        }
        assert_eq!(rd(&mut s, LSR), 0x60);
        assert_eq!(rd(&mut s, THR), 0); // empty FIFO reads 0
                                        // FCR receive-FIFO reset and FIFO disable both empty it.
        wr(&mut s, THR, 9);
        wr(&mut s, IIR, 0x03);
        assert_eq!(rd(&mut s, LSR), 0x60);
        wr(&mut s, THR, 9);
        wr(&mut s, IIR, 0x00);
        assert_eq!(rd(&mut s, LSR), 0x60);
        assert_eq!(rd(&mut s, IIR), 0x01);
    }

    #[test]
    fn loopback_modem_lines() {
        let (mut s, _) = uart();
        // Entering loopback with all outputs low drops CTS, DSR, DCD.
        wr(&mut s, MCR, MCR_LOOP);
        assert_eq!(rd(&mut s, MSR), MSR_DCTS | MSR_DDSR | MSR_DDCD);
        assert_eq!(rd(&mut s, MSR), 0x00);
        // RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
        wr(&mut s, MCR, MCR_LOOP | MCR_RTS);
        assert_eq!(rd(&mut s, MSR), MSR_CTS | MSR_DCTS);
        wr(&mut s, MCR, MCR_LOOP | MCR_RTS | MCR_DTR);
        assert_eq!(rd(&mut s, MSR), MSR_CTS | MSR_DSR | MSR_DDSR);
        wr(&mut s, MCR, MCR_LOOP | MCR_OUT1 | MCR_OUT2);
        assert_eq!(
            rd(&mut s, MSR),
            MSR_RI | MSR_DCD | MSR_DCTS | MSR_DDSR | MSR_DDCD
        );
        // RI falling sets TERI (trailing edge only).
        wr(&mut s, MCR, MCR_LOOP | MCR_OUT2);
        assert_eq!(rd(&mut s, MSR), MSR_DCD | MSR_TERI);
        // Back to normal mode: idle inputs again.
        wr(&mut s, MCR, MCR_OUT2);
        assert_eq!(rd(&mut s, MSR), 0xB0 | MSR_DCTS | MSR_DDSR);
    }

    #[test]
    fn iir_thr_empty_interrupt() {
        let (mut s, _) = uart();
        wr(&mut s, IER, IER_THRI);
        assert!(s.interrupt_pending());
        assert_eq!(rd(&mut s, IIR), 0x02);
        // Reading IIR cleared it.
        assert_eq!(rd(&mut s, IIR), 0x01);
        // Each transmitted byte empties THR again.
        wr(&mut s, THR, b'a');
        assert_eq!(rd(&mut s, IIR), 0x02);
        wr(&mut s, IER, 0);
        assert_eq!(rd(&mut s, IIR), 0x01);
    }

    #[test]
    fn iir_priorities_and_rx_interrupts() {
        let (mut s, _) = uart();
        wr(&mut s, MCR, MCR_LOOP);
        rd(&mut s, MSR);
        wr(&mut s, IER, IER_RDI | IER_THRI | IER_RLSI | IER_MSI);
        assert_eq!(rd(&mut s, IIR), 0x02);
        wr(&mut s, MCR, MCR_LOOP | MCR_RTS); // modem status change
        assert_eq!(rd(&mut s, IIR), 0x00);
        rd(&mut s, MSR);
        assert_eq!(rd(&mut s, IIR), 0x01);
        wr(&mut s, THR, 1);
        assert_eq!(rd(&mut s, IIR), 0x04); // data beats THR empty
        wr(&mut s, THR, 2); // overrun
        assert_eq!(rd(&mut s, IIR), 0x06); // line status beats data
        rd(&mut s, LSR);
        assert_eq!(rd(&mut s, IIR), 0x04);
        rd(&mut s, THR);
        assert_eq!(rd(&mut s, IIR), 0x02);
        assert_eq!(rd(&mut s, IIR), 0x01);
        // FIFO trigger level 4: below it, character timeout.
        wr(&mut s, IIR, 0x41);
        wr(&mut s, THR, 1);
        assert_eq!(rd(&mut s, IIR), 0xCC);
        for b in 2..5 {
            wr(&mut s, THR, b);
        }
        assert_eq!(rd(&mut s, IIR), 0xC4);
    }

    #[test]
    fn external_input() {
        let (mut s, _) = uart();
        assert!(s.receive(b'q'));
        assert_eq!(rd(&mut s, LSR), 0x61);
        assert_eq!(rd(&mut s, THR), b'q');
    }

    #[test]
    fn wide_and_out_of_range_accesses() {
        let (mut s, sink) = uart();
        // A 16-bit write at 3 sets LCR and MCR.
        assert_eq!(s.write(3, &[0x03, 0x01]), DeviceAction::None);
        assert_eq!(rd(&mut s, LCR), 0x03);
        assert_eq!(rd(&mut s, MCR), 0x01);
        let mut d = [0u8; 4];
        s.read(4, &mut d);
        assert_eq!(d, [0x01, 0x60, 0xB0, 0x00]);
        // Offsets past the device read as open bus and ignore writes.
        s.read(7, &mut d);
        assert_eq!(d, [0, 0xFF, 0xFF, 0xFF]);
        s.write(u16::MAX, &[1, 2, 3]);
        s.read(u16::MAX, &mut d);
        assert_eq!(d, [0xFF; 4]);
        assert!(sink.bytes.lock().unwrap().is_empty());
    }

    #[test]
    fn random_accesses_never_panic() {
        let (mut s, _) = uart();
        let mut x = 0xDEAD_BEEF_CAFE_F00Du64;
        let mut data = [0u8; 4];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = (x % 10) as u16;
            let len = 1 + (x >> 8) as usize % 4;
            data[0] = (x >> 16) as u8;
            if x >> 40 & 1 == 0 {
                s.read(off, &mut data[..len]);
            } else {
                s.write(off, &data[..len]);
            }
            assert_eq!(rd(&mut s, LSR) & 0x60, 0x60);
            assert!(s.rx.len() <= FIFO_LEN);
        }
    }
}
