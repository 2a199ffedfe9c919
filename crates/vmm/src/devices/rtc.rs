//! The MC146818 real-time clock and CMOS RAM at ports 0x70 (index) and 0x71
//! (data), as a PC chipset has it.
//!
//! The time registers show the host's UTC time (or, after the guest set
//! the clock, host time plus the difference it wrote). Registers:
//!
//! | index | register |
//! |---|---|
//! | 0x00, 0x02, 0x04 | seconds, minutes, hours (12-hour mode with PM in bit 7 when B bit 1 is clear) |
//! | 0x01, 0x03, 0x05 | alarm seconds, minutes, hours (stored, never fire) |
//! | 0x06, 0x07, 0x08, 0x09 | day of week (1 = Sunday), day of month, month, year (two digits) |
//! | 0x0A | status A: UIP (bit 7), divider and rate (stored, 0x26 at reset) |
//! | 0x0B | status B: SET (bit 7), interrupt enables (stored; no RTC interrupt is raised), DM (bit 2: binary), 24/12 (bit 1) |
//! | 0x0C | status C: interrupt flags, always 0 here (no RTC interrupt is raised) |
//! | 0x0D | status D: VRT (bit 7, the battery is good) |
//! | 0x32 | century |
//! | other | CMOS RAM, read back as written; 0x15/0x16 hold 640 (KiB of base memory) |
//!
//! Values are BCD unless status B's DM bit asks for binary. Update in
//! progress (status A bit 7) is set during the last 244 µs of each host
//! second, as the chip sets it before it updates the time registers, so a
//! guest that waits for UIP to clear and then reads gets a consistent time.
//! Bit 7 of the index port is the NMI mask of a PC; it is kept out of the
//! index.

use std::time::{SystemTime, UNIX_EPOCH};

use super::bus::{DeviceAction, PortDevice};

/// The index port; the data port follows it.
pub const RTC_BASE: u16 = 0x70;
/// Number of ports.
pub const RTC_LEN: u16 = 2;

const REG_A: usize = 0x0A;
const REG_B: usize = 0x0B;
const REG_C: usize = 0x0C;
const REG_D: usize = 0x0D;
const REG_CENTURY: usize = 0x32;
const A_UIP: u8 = 0x80;
const B_SET: u8 = 0x80;
const B_DM: u8 = 0x04;
const B_24H: u8 = 0x02;
const D_VRT: u8 = 0x80;
/// How long before each second boundary UIP is set, in nanoseconds.
const UIP_NS: u32 = 244_000;

/// Where the RTC takes the time from: nanoseconds since the Unix epoch.
pub type TimeSource = Box<dyn Fn() -> u128 + Send>;

/// The host's clock.
fn host_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u8,
    day: u8,
    weekday: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Civil {
    fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            // 1970-01-01 was a Thursday; 1 = Sunday.
            weekday: ((days + 4).rem_euclid(7) + 1) as u8,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    fn to_unix(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

/// The MC146818 RTC with its CMOS RAM.
pub struct Rtc {
    now: TimeSource,
    index: usize,
    ram: [u8; 128],
    /// Seconds the guest's clock is ahead of the time source.
    offset: i64,
}

impl std::fmt::Debug for Rtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtc")
            .field("index", &self.index)
            .field("offset", &self.offset)
            .finish()
    }
}

impl Rtc {
    /// An RTC showing host time.
    pub fn new() -> Rtc {
        Rtc::with_time_source(Box::new(host_ns))
    }

    /// An RTC reading the time from `now` (nanoseconds since the epoch).
    pub fn with_time_source(now: TimeSource) -> Rtc {
        let mut ram = [0u8; 128];
        ram[REG_A] = 0x26;
        ram[REG_B] = B_24H;
        ram[REG_D] = D_VRT;
        // Base memory: 640 KiB.
        ram[0x15] = 0x80;
        ram[0x16] = 0x02;
        Rtc {
            now,
            index: 0,
            ram,
            offset: 0,
        }
    }

    fn binary(&self) -> bool {
        self.ram[REG_B] & B_DM != 0
    }

    fn encode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            ((v / 10) << 4) | (v % 10)
        }
    }

    fn decode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            (v >> 4) * 10 + (v & 0x0F)
        }
    }

    fn civil(&self) -> Civil {
        let ns = (self.now)();
        Civil::from_unix((ns / 1_000_000_000) as i64 + self.offset)
    }

    fn hour_register(&self, hour: u8) -> u8 {
        if self.ram[REG_B] & B_24H != 0 {
            return self.encode(hour);
        }
        let h12 = match hour % 12 {
            0 => 12,
            h => h,
        };
        self.encode(h12) | if hour >= 12 { 0x80 } else { 0 }
    }

    fn read_register(&mut self, index: usize) -> u8 {
        let t = self.civil();
        match index {
            0x00 => self.encode(t.second),
            0x02 => self.encode(t.minute),
            0x04 => self.hour_register(t.hour),
            0x06 => self.encode(t.weekday),
            0x07 => self.encode(t.day),
            0x08 => self.encode(t.month),
            0x09 => self.encode(t.year.rem_euclid(100) as u8),
            REG_CENTURY => self.encode(t.year.div_euclid(100).clamp(0, 99) as u8),
            REG_A => {
                let sub = ((self.now)() % 1_000_000_000) as u32;
                let uip = if sub >= 1_000_000_000 - UIP_NS {
                    A_UIP
                } else {
                    0
                };
                self.ram[REG_A] & !A_UIP | uip
            }
            REG_C => 0,
            REG_D => D_VRT,
            i => self.ram.get(i).copied().unwrap_or(0xFF),
        }
    }

    /// A write to a time register moves the guest's clock.
    fn set_time_field(&mut self, index: usize, v: u8) {
        let mut t = self.civil();
        let hour = |rtc: &Rtc, v: u8| {
            if rtc.ram[REG_B] & B_24H != 0 {
                rtc.decode(v)
            } else {
                rtc.decode(v & 0x7F) % 12 + if v & 0x80 != 0 { 12 } else { 0 }
            }
        };
        match index {
            0x00 => t.second = self.decode(v).min(59),
            0x02 => t.minute = self.decode(v).min(59),
            0x04 => t.hour = hour(self, v).min(23),
            0x07 => t.day = self.decode(v).clamp(1, 31),
            0x08 => t.month = self.decode(v).clamp(1, 12),
            0x09 => t.year = t.year - t.year.rem_euclid(100) + i64::from(self.decode(v).min(99)),
            REG_CENTURY => {
                t.year = i64::from(self.decode(v).min(99)) * 100 + t.year.rem_euclid(100)
            }
            _ => return,
        }
        let now = ((self.now)() / 1_000_000_000) as i64;
        self.offset = t.to_unix() - now;
    }

    fn write_register(&mut self, index: usize, v: u8) {
        match index {
            0x00 | 0x02 | 0x04 | 0x07 | 0x08 | 0x09 | REG_CENTURY => self.set_time_field(index, v),
            // The day of the week follows from the date.
            0x06 => {}
            REG_A => self.ram[REG_A] = v & !A_UIP,
            REG_B => self.ram[REG_B] = v & !B_SET | v & B_SET,
            REG_C | REG_D => {}
            i => {
                if let Some(b) = self.ram.get_mut(i) {
                    *b = v;
                }
            }
        }
    }
}

impl Default for Rtc {
    fn default() -> Self {
        Rtc::new()
    }
}

impl PortDevice for Rtc {
    fn name(&self) -> &str {
        "rtc"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = match usize::from(offset) + i {
                0 => 0xFF,
                1 => self.read_register(self.index),
                _ => 0xFF,
            };
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        for (i, &v) in data.iter().enumerate() {
            match usize::from(offset) + i {
                0 => self.index = usize::from(v & 0x7F),
                1 => self.write_register(self.index, v),
                _ => {}
            }
        }
        DeviceAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// 2026-12-06 13:45:07 UTC, a Sunday.
    const T0: u64 = 1_796_564_707;

    fn rtc_at(clock: &Arc<AtomicU64>) -> Rtc {
        let c = clock.clone();
        Rtc::with_time_source(Box::new(move || u128::from(c.load(Ordering::Relaxed))))
    }

    fn rd(r: &mut Rtc, index: u8) -> u8 {
        r.write(0, &[index]);
        let mut b = [0];
        r.read(1, &mut b);
        b[0]
    }

    fn wr(r: &mut Rtc, index: u8, v: u8) {
        r.write(0, &[index]);
        r.write(1, &[v]);
    }

    #[test]
    fn civil_round_trip() {
        for secs in [0i64, 951_782_400, 1_709_210_096, T0 as i64, 4_102_444_800] {
            assert_eq!(Civil::from_unix(secs).to_unix(), secs);
        }
        let t = Civil::from_unix(T0 as i64);
        assert_eq!((t.year, t.month, t.day), (2026, 12, 6));
        assert_eq!((t.hour, t.minute, t.second, t.weekday), (13, 45, 7, 1));
        // 2000-02-29 exists.
        assert_eq!(Civil::from_unix(951_782_400).day, 29);
    }

    #[test]
    fn time_registers_in_bcd_and_binary() {
        let clock = Arc::new(AtomicU64::new(T0 * 1_000_000_000));
        let mut r = rtc_at(&clock);
        let regs = [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32];
        let bcd: Vec<u8> = regs.iter().map(|&i| rd(&mut r, i)).collect();
        assert_eq!(bcd, [0x07, 0x45, 0x13, 0x01, 0x06, 0x12, 0x26, 0x20]);
        wr(&mut r, 0x0B, B_24H | B_DM);
        let bin: Vec<u8> = regs.iter().map(|&i| rd(&mut r, i)).collect();
        assert_eq!(bin, [7, 45, 13, 1, 6, 12, 26, 20]);
        // 12-hour mode: 13:45 is 1 PM.
        wr(&mut r, 0x0B, 0);
        assert_eq!(rd(&mut r, 0x04), 0x81);
        // NMI mask bit of the index port is not part of the index.
        assert_eq!(rd(&mut r, 0x80 | 0x09), 0x26);
    }

    #[test]
    fn update_in_progress_before_each_second() {
        let clock = Arc::new(AtomicU64::new(T0 * 1_000_000_000));
        let mut r = rtc_at(&clock);
        assert_eq!(rd(&mut r, 0x0A), 0x26);
        clock.store(T0 * 1_000_000_000 + 999_900_000, Ordering::Relaxed);
        assert_eq!(rd(&mut r, 0x0A), 0x26 | A_UIP);
        assert_eq!(rd(&mut r, 0x0D), D_VRT);
        assert_eq!(rd(&mut r, 0x0C), 0);
    }

    #[test]
    fn guest_sets_the_clock() {
        let clock = Arc::new(AtomicU64::new(T0 * 1_000_000_000));
        let mut r = rtc_at(&clock);
        wr(&mut r, 0x09, 0x27);
        wr(&mut r, 0x04, 0x01);
        assert_eq!(rd(&mut r, 0x09), 0x27);
        assert_eq!(rd(&mut r, 0x04), 0x01);
        clock.fetch_add(3_600_000_000_000, Ordering::Relaxed);
        assert_eq!(rd(&mut r, 0x04), 0x02);
        // CMOS RAM reads back; base memory preset.
        wr(&mut r, 0x40, 0x5A);
        assert_eq!(rd(&mut r, 0x40), 0x5A);
        assert_eq!((rd(&mut r, 0x15), rd(&mut r, 0x16)), (0x80, 0x02));
    }
}
