//! The 8254 programmable interval timer at ports 0x40–0x43.
//!
//! Three counters (0x40–0x42) and the control word register (0x43), as in
//! the Intel 8254 data sheet (order no. 231164). Counter 0 drives IRQ0 on a
//! PC; counters 1 and 2 are modelled the same way but drive nothing (the
//! speaker gate of counter 2 at port 0x61 is not modelled: every GATE input
//! is high).
//!
//! # Time
//!
//! The counters count a 1.193182 MHz clock ([`PIT_HZ`]) derived from
//! virtual time. Since [`PortDevice`] methods carry no time, the device holds
//! a [`VirtualClock`]: a shared count of virtual nanoseconds that the
//! integrator advances (e.g. from the vCPU's virtual TSC) before handing the
//! bus an access and before asking for interrupts. Clock tick `t` is
//! `floor(ns * 1193182 / 10^9)`; the count and OUT are computed from the
//! whole ticks elapsed since the count was loaded, so results are exact and
//! reproducible. The clock must not go backwards.
//!
//! # IRQ0
//!
//! IRQ0 is the rising edge of counter 0's OUT. [`Pit::next_irq_ns`] gives
//! the virtual time of the next one (for the run loop's timer horizon), and
//! [`Pit::take_irq`] reports whether at least one rising edge happened since
//! the previous call (several are coalesced into one, as an edge-triggered
//! PIC input would see while IRR is still set); the integrator then pulses
//! the PIC's IRQ0.
//!
//! # Modes and their simplifications
//!
//! * Mode 0 (interrupt on terminal count): OUT low from the control word;
//!   high `N` ticks after the count is written; the counter keeps
//!   decrementing and wraps. Writing the first byte of a two-byte count
//!   stops counting and drives OUT low.
//! * Mode 2 (rate generator): OUT low for one tick when the count reaches
//!   1; period `N`.
//! * Mode 3 (square wave): OUT high for `ceil(N/2)` ticks, low for
//!   `floor(N/2)`; the count decrements by two (odd counts as the data sheet
//!   describes). In modes 2 and 3 a new count written while counting takes
//!   effect at the end of the current period (the data sheet switches a
//!   mode 3 counter at the end of the current half-cycle; this model waits
//!   for the whole period).
//! * Mode 4 (software-triggered strobe): like mode 0 with OUT high, low for
//!   the one tick at terminal count.
//! * Modes 1 and 5 are triggered by a GATE rising edge, which never comes
//!   here: the count is held and OUT stays high.
//!
//! The count is loaded when written, not on the next clock edge (the data
//! sheet's one-tick load delay is not modelled). A count of 0 means 65536
//! (10000 in BCD). A count of 1, illegal in modes 2 and 3, gives a period of
//! one tick. BCD digits above 9 are taken at face value. After a control
//! word and before a count, the counter holds its last value. Reads of the
//! control word port return 0xFF (the register cannot be read).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::bus::{DeviceAction, PortDevice};

/// Base port of the PIT: counter 0.
pub const PIT_BASE: u16 = 0x40;
/// Number of ports: three counters and the control word.
pub const PIT_LEN: u16 = 4;
/// The PIT's input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;
/// The ISA IRQ line counter 0 drives.
pub const PIT_IRQ: u8 = 0;

const NS_PER_S: u128 = 1_000_000_000;
const CONTROL: u16 = 3;

/// Virtual time in nanoseconds, shared between the integrator (who sets
/// it) and the devices that need it.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    /// A clock at time 0.
    pub fn new() -> VirtualClock {
        VirtualClock::default()
    }

    /// Sets the current virtual time.
    pub fn set_ns(&self, ns: u64) {
        self.0.store(ns, Ordering::Release);
    }

    /// The current virtual time.
    pub fn now_ns(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// PIT clock ticks elapsed at virtual time `ns`.
pub fn ticks_at(ns: u64) -> u64 {
    let t = u128::from(ns) * u128::from(PIT_HZ) / NS_PER_S;
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// The earliest virtual time at which tick `tick` has elapsed.
pub fn ns_of_tick(tick: u64) -> u64 {
    let hz = u128::from(PIT_HZ);
    let ns = (u128::from(tick) * NS_PER_S).div_ceil(hz);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// How a counter's value is read and written (control word bits 5–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Lsb,
    Msb,
    Word,
}

impl Access {
    fn bits(self) -> u8 {
        match self {
            Access::Lsb => 1,
            Access::Msb => 2,
            Access::Word => 3,
        }
    }
}

/// Converts a BCD count to binary (digits above 9 at face value).
fn from_bcd(v: u16) -> u32 {
    (0..4)
        .rev()
        .fold(0, |acc, i| acc * 10 + u32::from(v >> (4 * i) & 0xF))
}

/// Converts `v` (below 10000) to BCD.
fn to_bcd(v: u32) -> u16 {
    let v = v % 10_000;
    let digits = [v / 1000, v / 100 % 10, v / 10 % 10, v % 10];
    digits
        .iter()
        .fold(0u16, |acc, &d| acc << 4 | u16::try_from(d).unwrap_or(0))
}

/// One 8254 counter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counter {
    mode: u8,
    access: Access,
    bcd: bool,
    /// The period / initial count (1..=65536), once a count was written.
    initial: u32,
    /// Tick at which `initial` was loaded.
    start: u64,
    /// Counting (a count is loaded and not held).
    counting: bool,
    /// Modes 2 and 3: a new count and the tick it takes over.
    pending: Option<(u32, u64)>,
    /// The value shown while not counting.
    held: u32,
    /// OUT while not counting.
    held_out: bool,
    /// Word access: the next data write is the MSB.
    write_msb: bool,
    /// The LSB written first in word access.
    lsb: u8,
    /// Word access: the next live read is the MSB.
    read_msb: bool,
    /// Latched count and, for word access, whether its MSB is next.
    latch: Option<(u16, bool)>,
    /// Latched status byte.
    status: Option<u8>,
    /// Null count: a count or control word was written and not yet loaded.
    null_count: bool,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            mode: 0,
            access: Access::Word,
            bcd: false,
            initial: 0,
            start: 0,
            counting: false,
            pending: None,
            held: 0,
            held_out: false,
            write_msb: false,
            lsb: 0,
            read_msb: false,
            latch: None,
            status: None,
            null_count: false,
        }
    }
}

impl Counter {
    fn modulus(&self) -> u32 {
        if self.bcd {
            10_000
        } else {
            0x1_0000
        }
    }

    /// The (period, start tick) in force at tick `t`.
    fn phase(&self, t: u64) -> (u32, u64) {
        match self.pending {
            Some((n, from)) if t >= from => (n, from),
            _ => (self.initial.max(1), self.start),
        }
    }

    /// The binary count at tick `t`, modulo the counter's range.
    fn count_at(&self, t: u64) -> u32 {
        if !self.counting {
            return self.held;
        }
        let (n, start) = self.phase(t);
        let d = t.saturating_sub(start);
        let m = self.modulus();
        let n64 = u64::from(n);
        let v = match self.mode {
            0 | 4 => {
                let back = u32::try_from(d % u64::from(m)).unwrap_or(0);
                (n % m + m - back) % m
            }
            2 => n - u32::try_from(d % n64).unwrap_or(0),
            3 => {
                let e = u32::try_from(d % n64).unwrap_or(0);
                let high = n.div_ceil(2);
                if n % 2 == 0 {
                    if e < high {
                        n - 2 * e
                    } else {
                        n - 2 * (e - high)
                    }
                } else if e == 0 || e == high {
                    n
                } else if e < high {
                    n + 1 - 2 * e
                } else {
                    n - 1 - 2 * (e - high)
                }
            }
            _ => n,
        };
        v % m
    }

    /// OUT at tick `t`.
    fn out_at(&self, t: u64) -> bool {
        if !self.counting {
            return self.held_out;
        }
        let (n, start) = self.phase(t);
        let d = t.saturating_sub(start);
        let n64 = u64::from(n);
        match self.mode {
            0 => d >= n64,
            2 => n == 1 || d % n64 != n64 - 1,
            3 => d % n64 < n64.div_ceil(2),
            4 => d != n64,
            _ => true,
        }
    }

    /// The first rising edge of OUT strictly after tick `t`.
    fn next_edge_after(&self, t: u64) -> Option<u64> {
        if !self.counting {
            return None;
        }
        if let Some((_, from)) = self.pending {
            if t < from {
                return Some(from);
            }
        }
        let (n, start) = self.phase(t);
        let n = u64::from(n);
        // Before the start (an edge query from before a reload) counts as
        // the start: the first edge is still ahead.
        let d = t.saturating_sub(start);
        match self.mode {
            0 => (d < n).then(|| start + n),
            4 => (d <= n).then(|| start + n + 1),
            2 | 3 => Some(start.saturating_add((d / n + 1).saturating_mul(n))),
            _ => None,
        }
    }

    /// Stops counting, holding the count and OUT as they are at `t`.
    fn hold(&mut self, t: u64, out: bool) {
        self.held = self.count_at(t);
        self.held_out = out;
        self.counting = false;
        self.pending = None;
    }

    fn status_byte(&self, t: u64) -> u8 {
        u8::from(self.out_at(t)) << 7
            | u8::from(self.null_count) << 6
            | self.access.bits() << 4
            | self.mode << 1
            | u8::from(self.bcd)
    }

    /// A control word for this counter (not a latch or read-back command).
    fn program(&mut self, cw: u8, t: u64) {
        // The count stops where it is (computed in the old mode).
        self.hold(t, true);
        let mode = cw >> 1 & 7;
        // Modes 6 and 7 are modes 2 and 3 (data sheet, control word format).
        self.mode = if mode > 5 { mode & 3 } else { mode };
        // OUT's initial state: low in mode 0, high in the others.
        self.held_out = self.mode != 0;
        self.access = match cw >> 4 & 3 {
            1 => Access::Lsb,
            2 => Access::Msb,
            _ => Access::Word,
        };
        self.bcd = cw & 1 != 0;
        self.held %= self.modulus();
        self.write_msb = false;
        self.read_msb = false;
        self.latch = None;
        self.status = None;
        self.null_count = true;
    }

    fn latch_count(&mut self, t: u64) {
        if self.latch.is_none() {
            let v = self.count_at(t);
            self.latch = Some((self.encode(v), false));
        }
    }

    fn latch_status(&mut self, t: u64) {
        if self.status.is_none() {
            self.status = Some(self.status_byte(t));
        }
    }

    fn encode(&self, v: u32) -> u16 {
        if self.bcd {
            to_bcd(v)
        } else {
            u16::try_from(v & 0xFFFF).unwrap_or(0)
        }
    }

    fn write(&mut self, v: u8, t: u64) {
        let value = match self.access {
            Access::Lsb => u16::from(v),
            Access::Msb => u16::from(v) << 8,
            Access::Word if !self.write_msb => {
                self.write_msb = true;
                self.lsb = v;
                if self.mode == 0 {
                    // Writing the first byte stops counting; OUT goes low.
                    self.hold(t, false);
                }
                return;
            }
            Access::Word => {
                self.write_msb = false;
                u16::from_le_bytes([self.lsb, v])
            }
        };
        self.load(value, t);
    }

    fn load(&mut self, value: u16, t: u64) {
        let raw = if self.bcd {
            from_bcd(value)
        } else {
            u32::from(value)
        };
        let n = if raw == 0 { self.modulus() } else { raw };
        self.null_count = false;
        match self.mode {
            2 | 3 if self.counting => {
                let edge = self.next_edge_after(t).unwrap_or(t);
                // A count written twice in one period: the last one wins.
                if let Some((_, from)) = self.pending.filter(|&(_, from)| from > t) {
                    self.pending = Some((n, from));
                } else {
                    let (cur, start) = self.phase(t);
                    self.initial = cur;
                    self.start = start;
                    self.pending = Some((n, edge));
                }
            }
            1 | 5 => {
                // Waits for a GATE trigger that never comes.
                self.initial = n;
                self.held = n % self.modulus();
                self.held_out = true;
                self.counting = false;
            }
            _ => {
                self.initial = n;
                self.start = t;
                self.pending = None;
                self.counting = true;
            }
        }
    }

    fn read(&mut self, t: u64) -> u8 {
        if let Some(s) = self.status.take() {
            return s;
        }
        if let Some((v, msb_next)) = self.latch {
            let [lo, hi] = v.to_le_bytes();
            return match self.access {
                Access::Lsb => {
                    self.latch = None;
                    lo
                }
                Access::Msb => {
                    self.latch = None;
                    hi
                }
                Access::Word if !msb_next => {
                    self.latch = Some((v, true));
                    lo
                }
                Access::Word => {
                    self.latch = None;
                    hi
                }
            };
        }
        let [lo, hi] = self.encode(self.count_at(t)).to_le_bytes();
        match self.access {
            Access::Lsb => lo,
            Access::Msb => hi,
            Access::Word => {
                self.read_msb = !self.read_msb;
                if self.read_msb {
                    lo
                } else {
                    hi
                }
            }
        }
    }
}

/// The 8254 PIT.
#[derive(Debug, Clone)]
pub struct Pit {
    clock: VirtualClock,
    counters: [Counter; 3],
    /// The tick up to which counter 0's edges were reported.
    irq_seen: u64,
}

impl Pit {
    /// A PIT reading time from `clock`, all counters in mode 0 with no
    /// count.
    pub fn new(clock: VirtualClock) -> Pit {
        let irq_seen = ticks_at(clock.now_ns());
        Pit {
            clock,
            counters: Default::default(),
            irq_seen,
        }
    }

    fn now(&self) -> u64 {
        ticks_at(self.clock.now_ns())
    }

    /// Counter `n`'s (0–2) current count as the guest would read it
    /// (BCD-encoded in BCD mode), ignoring latches.
    pub fn count(&self, n: usize) -> Option<u16> {
        let t = self.now();
        self.counters.get(n).map(|c| c.encode(c.count_at(t)))
    }

    /// Counter `n`'s OUT pin now.
    pub fn out(&self, n: usize) -> Option<bool> {
        let t = self.now();
        self.counters.get(n).map(|c| c.out_at(t))
    }

    /// The virtual time of counter 0's first OUT rising edge (IRQ0) not yet
    /// reported by [`Pit::take_irq`], if one is scheduled. It may lie in the
    /// past: then an IRQ0 is due and `take_irq` returns true.
    pub fn next_irq_ns(&self) -> Option<u64> {
        self.counters[0]
            .next_edge_after(self.irq_seen)
            .map(ns_of_tick)
    }

    /// Whether counter 0's OUT rose at least once since the previous call
    /// (or since the PIT was made): the integrator then pulses IRQ0.
    pub fn take_irq(&mut self) -> bool {
        let now = self.now();
        if now <= self.irq_seen {
            return false;
        }
        let edge = self.counters[0].next_edge_after(self.irq_seen);
        self.irq_seen = now;
        edge.is_some_and(|e| e <= now)
    }

    fn control(&mut self, cw: u8, t: u64) {
        let sc = cw >> 6;
        if sc == 3 {
            // Read-back: bit 5 = 0 latches counts, bit 4 = 0 latches
            // statuses, bits 3-1 select counters 0-2.
            for (i, c) in self.counters.iter_mut().enumerate() {
                if cw >> (i + 1) & 1 == 0 {
                    continue;
                }
                if cw & 0x20 == 0 {
                    c.latch_count(t);
                }
                if cw & 0x10 == 0 {
                    c.latch_status(t);
                }
            }
            return;
        }
        let Some(c) = self.counters.get_mut(usize::from(sc)) else {
            return;
        };
        if cw & 0x30 == 0 {
            c.latch_count(t);
        } else {
            c.program(cw, t);
        }
    }
}

impl PortDevice for Pit {
    fn name(&self) -> &str {
        "pit"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) {
        let t = self.now();
        for (i, b) in data.iter_mut().enumerate() {
            let port = usize::from(offset) + i;
            *b = match self.counters.get_mut(port) {
                Some(c) => c.read(t),
                None => 0xFF,
            };
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        let t = self.now();
        for (i, &b) in data.iter().enumerate() {
            let port = offset.wrapping_add(i as u16);
            if port == CONTROL {
                self.control(b, t);
            } else if let Some(c) = self.counters.get_mut(usize::from(port)) {
                c.write(b, t);
            }
        }
        DeviceAction::None
    }
}

#[cfg(test)]
mod tests;

/// A PIT shared between the port bus and the devices that read its
/// counter 2 (port 0x61) or take its IRQ0 edges (the run loop).
pub type SharedPit = std::sync::Arc<std::sync::Mutex<Pit>>;

/// The port device of a [`SharedPit`].
#[derive(Debug)]
pub struct PitPorts(pub SharedPit);

impl PortDevice for PitPorts {
    fn name(&self) -> &str {
        "pit"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) {
        match self.0.lock() {
            Ok(mut p) => p.read(offset, data),
            Err(_) => data.fill(0xFF),
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        if let Ok(mut p) = self.0.lock() {
            p.write(offset, data);
        }
        DeviceAction::None
    }
}
