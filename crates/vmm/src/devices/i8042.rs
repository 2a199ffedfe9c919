//! The i8042 keyboard controller at ports 0x60 (data) and 0x64 (status and
//! command), as far as a kernel uses it without a keyboard: its self tests,
//! the command byte, and the CPU reset line.
//!
//! Controller commands (written to 0x64):
//!
//! | command | effect |
//! |---|---|
//! | 0x20 | read the command byte (to 0x60) |
//! | 0x60 | the next byte written to 0x60 is the command byte |
//! | 0xA7, 0xA8 | disable, enable the auxiliary port (command byte bit 5) |
//! | 0xA9 | auxiliary interface test: 0x00 |
//! | 0xAA | controller self test: 0x55, and the system flag set |
//! | 0xAB | keyboard interface test: 0x00 |
//! | 0xAD, 0xAE | disable, enable the keyboard (command byte bit 4) |
//! | 0xD0 | read the output port (to 0x60): bit 0 (reset line high) and bit 1 (A20) |
//! | 0xD1 | the next byte written to 0x60 is the output port; bit 0 clear resets the CPU |
//! | 0xD2 | the next byte written to 0x60 comes back as keyboard data (loopback) |
//! | 0xD3 | the next byte written to 0x60 comes back as auxiliary data (loopback, status bit 5) |
//! | 0xD4 | the next byte written to 0x60 goes to the auxiliary device |
//! | 0xF0–0xFF | pulse output-port bits low for each clear bit 0–3 of the command: bit 0 clear (0xFE) resets the CPU |
//!
//! A reset is reported as [`DeviceAction::Reset`]: Vigil ends the run there
//! (status 18, see `outcome`), as `qemu -no-reboot` does.
//!
//! No keyboard or mouse is attached. A byte sent to either device gets no
//! answer: the controller reports the time-out (status bit 6) with 0xFE in
//! its output buffer, from the port the byte went to, so a driver's probe
//! fails at once instead of waiting out its own time-out.
//!
//! Interrupts: while the output buffer holds keyboard (or loopback) data and
//! command-byte bit 0 is set, the IRQ 1 line is high; auxiliary data with
//! bit 1 set raises IRQ 12 ([`I8042::irq_lines`]). Reading port 0x60
//! empties the buffer and drops the line.

use super::bus::{DeviceAction, PortDevice};

/// The data port.
pub const I8042_DATA: u16 = 0x60;
/// The status and command port.
pub const I8042_COMMAND: u16 = 0x64;

const STATUS_OBF: u8 = 0x01;
const STATUS_SYS: u8 = 0x04;
const STATUS_CMD: u8 = 0x08;
/// The output buffer holds auxiliary-device data (status bit 5).
const STATUS_AUX_DATA: u8 = 0x20;
/// The device did not answer (status bit 6, general time-out).
const STATUS_TIMEOUT: u8 = 0x40;
/// Command-byte bit 0: IRQ 1 on keyboard data.
const CTR_KBD_INT: u8 = 0x01;
/// Command-byte bit 1: IRQ 12 on auxiliary data.
const CTR_AUX_INT: u8 = 0x02;
/// What a device that is not there "answers" (with the time-out bit).
const NO_DEVICE: u8 = 0xFE;
/// Keyboard not inhibited: the keylock switch is open (status bit 4, as
/// every PC without a keylock reports it).
const STATUS_UNLOCKED: u8 = 0x10;
const CTR_KBD_DISABLED: u8 = 0x10;
const CTR_AUX_DISABLED: u8 = 0x20;

/// What the next write to the data port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Device,
    CommandByte,
    OutputPort,
    KeyboardLoopback,
    AuxLoopback,
    AuxDevice,
}

/// Where the byte in the output buffer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The controller itself (a command's answer) or the keyboard port.
    Keyboard,
    /// The auxiliary (mouse) port.
    Aux,
}

/// The output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Output {
    byte: u8,
    source: Source,
    timeout: bool,
}

/// The controller. Registered twice on the bus: once for each port
/// ([`I8042::data_port`] and [`I8042::command_port`] share it).
#[derive(Debug)]
pub struct I8042 {
    status: u8,
    ctr: u8,
    output: Option<Output>,
    pending: Pending,
    last_was_command: bool,
}

impl Default for I8042 {
    fn default() -> Self {
        I8042 {
            status: STATUS_SYS | STATUS_UNLOCKED,
            ctr: 0x01 | CTR_AUX_DISABLED | 0x40,
            output: None,
            pending: Pending::Device,
            last_was_command: false,
        }
    }
}

impl I8042 {
    /// A controller after its power-on self test.
    pub fn new() -> I8042 {
        I8042::default()
    }

    fn put(&mut self, v: u8) {
        self.put_from(v, Source::Keyboard, false);
    }

    fn put_from(&mut self, byte: u8, source: Source, timeout: bool) {
        self.output = Some(Output {
            byte,
            source,
            timeout,
        });
    }

    fn status(&self) -> u8 {
        let mut st = self.status;
        if self.last_was_command {
            st |= STATUS_CMD;
        }
        if let Some(o) = self.output {
            st |= STATUS_OBF;
            if o.source == Source::Aux {
                st |= STATUS_AUX_DATA;
            }
            if o.timeout {
                st |= STATUS_TIMEOUT;
            }
        }
        st
    }

    /// The IRQ 1 and IRQ 12 lines: high while the output buffer holds data
    /// of that port and the command byte enables its interrupt.
    pub fn irq_lines(&self) -> (bool, bool) {
        match self.output {
            Some(o) if o.source == Source::Aux => (false, self.ctr & CTR_AUX_INT != 0),
            Some(_) => (self.ctr & CTR_KBD_INT != 0, false),
            None => (false, false),
        }
    }

    fn command(&mut self, c: u8) -> DeviceAction {
        self.last_was_command = true;
        match c {
            0x20 => self.put(self.ctr),
            0x60 => self.pending = Pending::CommandByte,
            0xA7 => self.ctr |= CTR_AUX_DISABLED,
            0xA8 => self.ctr &= !CTR_AUX_DISABLED,
            0xA9 | 0xAB => self.put(0x00),
            0xAA => {
                self.status |= STATUS_SYS;
                self.put(0x55);
            }
            0xAD => self.ctr |= CTR_KBD_DISABLED,
            0xAE => self.ctr &= !CTR_KBD_DISABLED,
            // Reset line high (not in reset), A20 enabled.
            0xD0 => self.put(0x03),
            0xD1 => self.pending = Pending::OutputPort,
            0xD2 => self.pending = Pending::KeyboardLoopback,
            0xD3 => self.pending = Pending::AuxLoopback,
            0xD4 => self.pending = Pending::AuxDevice,
            // Pulse: bit 0 of the command clear pulses the reset line.
            0xF0..=0xFF if c & 1 == 0 => return DeviceAction::Reset,
            _ => {}
        }
        DeviceAction::None
    }

    fn data(&mut self, v: u8) -> DeviceAction {
        self.last_was_command = false;
        let pending = std::mem::replace(&mut self.pending, Pending::Device);
        match pending {
            Pending::CommandByte => {
                self.ctr = v;
                if v & STATUS_SYS != 0 {
                    self.status |= STATUS_SYS;
                }
            }
            Pending::OutputPort if v & 1 == 0 => return DeviceAction::Reset,
            Pending::OutputPort => {}
            Pending::KeyboardLoopback => self.put_from(v, Source::Keyboard, false),
            Pending::AuxLoopback => self.put_from(v, Source::Aux, false),
            Pending::Device => self.put_from(NO_DEVICE, Source::Keyboard, true),
            Pending::AuxDevice => self.put_from(NO_DEVICE, Source::Aux, true),
        }
        DeviceAction::None
    }

    /// Handles a read of port 0x60 (`data` true) or 0x64.
    pub fn read_port(&mut self, data: bool) -> u8 {
        if data {
            self.output.take().map_or(0, |o| o.byte)
        } else {
            self.status()
        }
    }

    /// Handles a write to port 0x60 (`data` true) or 0x64.
    pub fn write_port(&mut self, data: bool, v: u8) -> DeviceAction {
        if data {
            self.data(v)
        } else {
            self.command(v)
        }
    }
}

/// A controller shared by its two ports and the board that samples its
/// interrupt lines.
pub type SharedI8042 = std::sync::Arc<std::sync::Mutex<I8042>>;

/// One port of a shared [`I8042`].
#[derive(Debug)]
pub struct I8042Port {
    controller: std::sync::Arc<std::sync::Mutex<I8042>>,
    data: bool,
}

impl I8042 {
    /// The controller's two port devices, 0x60 and 0x64, and the
    /// controller itself (for its interrupt lines).
    pub fn ports() -> (I8042Port, I8042Port, SharedI8042) {
        let c: SharedI8042 = std::sync::Arc::new(std::sync::Mutex::new(I8042::new()));
        (
            I8042Port {
                controller: c.clone(),
                data: true,
            },
            I8042Port {
                controller: c.clone(),
                data: false,
            },
            c,
        )
    }
}

impl PortDevice for I8042Port {
    fn name(&self) -> &str {
        "i8042"
    }

    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        let v = self
            .controller
            .lock()
            .map(|mut c| c.read_port(self.data))
            .unwrap_or(0xFF);
        data.fill(0);
        if let Some(b) = data.first_mut() {
            *b = v;
        }
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> DeviceAction {
        let Some(&v) = data.first() else {
            return DeviceAction::None;
        };
        self.controller
            .lock()
            .map(|mut c| c.write_port(self.data, v))
            .unwrap_or(DeviceAction::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_test_and_command_byte() {
        let mut c = I8042::new();
        assert_eq!(c.read_port(false) & STATUS_OBF, 0);
        c.write_port(false, 0xAA);
        assert_eq!(c.read_port(false) & (STATUS_OBF | STATUS_SYS), 0x05);
        assert_ne!(c.read_port(false) & STATUS_UNLOCKED, 0, "no keylock");
        assert_eq!(c.read_port(true), 0x55);
        assert_eq!(c.read_port(false) & STATUS_OBF, 0);
        c.write_port(false, 0x60);
        c.write_port(true, 0x47);
        c.write_port(false, 0x20);
        assert_eq!(c.read_port(true), 0x47);
        c.write_port(false, 0xAD);
        c.write_port(false, 0x20);
        assert_eq!(c.read_port(true), 0x47 | CTR_KBD_DISABLED);
    }

    #[test]
    fn reset_line() {
        let mut c = I8042::new();
        assert_eq!(c.write_port(false, 0xFE), DeviceAction::Reset);
        assert_eq!(c.write_port(false, 0xFF), DeviceAction::None);
        assert_eq!(c.write_port(false, 0xD1), DeviceAction::None);
        assert_eq!(c.write_port(true, 0x03), DeviceAction::None);
        assert_eq!(c.write_port(false, 0xD1), DeviceAction::None);
        assert_eq!(c.write_port(true, 0x02), DeviceAction::Reset);
    }

    #[test]
    fn no_device_answers_with_a_time_out() {
        let mut c = I8042::new();
        assert_eq!(c.write_port(true, 0xF2), DeviceAction::None);
        assert_eq!(
            c.read_port(false) & (STATUS_OBF | STATUS_TIMEOUT | STATUS_AUX_DATA),
            0x41
        );
        assert_eq!(c.irq_lines(), (true, false));
        assert_eq!(c.read_port(true), NO_DEVICE);
        assert_eq!(c.irq_lines(), (false, false));
        c.write_port(false, 0xD4);
        c.write_port(true, 0xF2);
        assert_eq!(
            c.read_port(false) & (STATUS_OBF | STATUS_TIMEOUT | STATUS_AUX_DATA),
            0x61
        );
        assert_eq!(c.read_port(true), NO_DEVICE);
    }

    #[test]
    fn loopbacks_come_back_from_their_port_with_its_interrupt() {
        let mut c = I8042::new();
        // Enable both interrupts (bits 0 and 1), both ports.
        c.write_port(false, 0x60);
        c.write_port(true, 0x03);
        c.write_port(false, 0xD3);
        c.write_port(true, 0x5A);
        assert_eq!(
            c.read_port(false) & (STATUS_OBF | STATUS_AUX_DATA | STATUS_TIMEOUT),
            0x21
        );
        assert_eq!(c.irq_lines(), (false, true));
        assert_eq!(c.read_port(true), 0x5A);
        assert_eq!(c.irq_lines(), (false, false));
        c.write_port(false, 0xD2);
        c.write_port(true, 0xA5);
        assert_eq!(c.read_port(false) & (STATUS_OBF | STATUS_AUX_DATA), 0x01);
        assert_eq!(c.irq_lines(), (true, false));
        assert_eq!(c.read_port(true), 0xA5);
        // With the interrupt bits clear the lines stay low.
        c.write_port(false, 0x60);
        c.write_port(true, 0x00);
        c.write_port(false, 0xD3);
        c.write_port(true, 0x5A);
        assert_eq!(c.irq_lines(), (false, false));
    }

    #[test]
    fn ports_share_the_controller() {
        let (mut data, mut cmd, _) = I8042::ports();
        assert_eq!(cmd.write(0, &[0xAA]), DeviceAction::None);
        let mut v = [0];
        data.read(0, &mut v);
        assert_eq!(v, [0x55]);
        assert_eq!(cmd.write(0, &[0xFE]), DeviceAction::Reset);
    }
}
