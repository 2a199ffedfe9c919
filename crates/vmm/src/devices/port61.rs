//! Port 0x61, a PC's "system control port B": the gate of the PIT's
//! counter 2 and the speaker enable (read back as written), the counter's
//! OUT pin (bit 5), and the refresh-request toggle (bit 4), which Linux's
//! PIT calibration and `udelay` loops of old drivers read.
//!
//! | bit | read | write |
//! |---|---|---|
//! | 0 | counter 2 gate | counter 2 gate |
//! | 1 | speaker data enable | speaker data enable |
//! | 2, 3 | as written (parity/channel check enables) | stored |
//! | 4 | refresh request: toggles on every read | ignored |
//! | 5 | counter 2 OUT | ignored |
//! | 6, 7 | 0 (no parity or channel-check error) | ignored |
//!
//! The PIT models every GATE input high, so the gate bit is stored for the
//! guest to read back but does not stop counter 2; Linux raises it before it
//! loads the counter and never lowers it while it measures.

use super::bus::{DeviceAction, PortDevice};
use super::pit::SharedPit;

/// The port.
pub const PORT61: u16 = 0x61;

/// Port 0x61.
#[derive(Debug)]
pub struct SystemControlB {
    pit: SharedPit,
    written: u8,
    refresh: bool,
}

impl SystemControlB {
    /// Port 0x61 reading counter 2's OUT from `pit`.
    pub fn new(pit: SharedPit) -> SystemControlB {
        SystemControlB {
            pit,
            written: 0,
            refresh: false,
        }
    }
}

impl PortDevice for SystemControlB {
    fn name(&self) -> &str {
        "port61"
    }

    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        self.refresh = !self.refresh;
        let out = self
            .pit
            .lock()
            .map(|p| p.out(2).unwrap_or(false))
            .unwrap_or(false);
        let v = self.written & 0x0F | u8::from(self.refresh) << 4 | u8::from(out) << 5;
        data.fill(v);
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> DeviceAction {
        if let Some(&v) = data.first() {
            self.written = v & 0x0F;
        }
        DeviceAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::pit::{ns_of_tick, Pit, VirtualClock};
    use std::sync::{Arc, Mutex};

    #[test]
    fn gate_reads_back_and_out_follows_counter_2() {
        let clock = VirtualClock::new();
        let pit = Arc::new(Mutex::new(Pit::new(clock.clone())));
        let mut p = SystemControlB::new(pit.clone());
        p.write(0, &[0x01 | 0xF0]);
        // Counter 2, mode 0, LSB then MSB: count 100.
        pit.lock().unwrap().write(3, &[0xB0]);
        pit.lock().unwrap().write(2, &[100]);
        pit.lock().unwrap().write(2, &[0]);
        let mut v = [0];
        p.read(0, &mut v);
        assert_eq!(v[0] & 0x2F, 0x01, "OUT low while counting, gate as written");
        let first_refresh = v[0] & 0x10;
        clock.set_ns(ns_of_tick(101));
        p.read(0, &mut v);
        assert_eq!(v[0] & 0x20, 0x20, "OUT high at terminal count");
        assert_ne!(v[0] & 0x10, first_refresh, "refresh bit toggles");
        assert_eq!(v[0] & 0xC0, 0);
    }
}
