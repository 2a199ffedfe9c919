use super::*;

/// A PIT, its clock, and helpers in PIT ticks.
struct Rig {
    pit: Pit,
    clock: VirtualClock,
}

impl Rig {
    fn new() -> Rig {
        let clock = VirtualClock::new();
        Rig {
            pit: Pit::new(clock.clone()),
            clock,
        }
    }

    fn at(&mut self, tick: u64) -> &mut Rig {
        self.clock.set_ns(ns_of_tick(tick));
        self
    }

    fn out(&mut self, port: u16, v: u8) {
        assert_eq!(self.pit.write(port - PIT_BASE, &[v]), DeviceAction::None);
    }

    fn inb(&mut self, port: u16) -> u8 {
        let mut b = [0];
        self.pit.read(port - PIT_BASE, &mut b);
        b[0]
    }

    /// Programs counter 0 with a word count in `mode`.
    fn program(&mut self, mode: u8, count: u16) {
        self.out(0x43, 0x30 | mode << 1);
        let [lo, hi] = count.to_le_bytes();
        self.out(0x40, lo);
        self.out(0x40, hi);
    }

    /// Latches and reads counter 0's count (word access).
    fn latched(&mut self) -> u16 {
        self.out(0x43, 0x00);
        let lo = self.inb(0x40);
        let hi = self.inb(0x40);
        u16::from_le_bytes([lo, hi])
    }
}

#[test]
fn clock_conversions() {
    assert_eq!(ticks_at(0), 0);
    assert_eq!(ticks_at(1_000_000_000), PIT_HZ);
    assert_eq!(ticks_at(838), 0);
    assert_eq!(ticks_at(839), 1);
    assert_eq!(ns_of_tick(1), 839);
    assert_eq!(ns_of_tick(PIT_HZ), 1_000_000_000);
    for t in [0, 1, 2, 99, 65_536, 1 << 40] {
        assert_eq!(ticks_at(ns_of_tick(t)), t);
        assert_eq!(
            ticks_at(ns_of_tick(t) - u64::from(t > 0)),
            t.saturating_sub(1)
        );
    }
    assert_eq!(ticks_at(u64::MAX), 22_010_322_987_356_910);
}

#[test]
fn mode0_interrupt_on_terminal_count() {
    let mut r = Rig::new();
    r.at(1000).out(0x43, 0x30);
    assert_eq!(r.pit.out(0), Some(false));
    r.out(0x40, 100);
    // The first byte of a word count stops counting with OUT low.
    assert_eq!(r.pit.out(0), Some(false));
    r.out(0x40, 0);
    assert_eq!(r.latched(), 100);
    r.at(1040);
    assert_eq!(r.latched(), 60);
    assert_eq!(r.pit.out(0), Some(false));
    assert_eq!(r.pit.next_irq_ns(), Some(ns_of_tick(1100)));
    r.at(1099);
    assert_eq!(r.latched(), 1);
    assert!(!r.pit.take_irq());
    r.at(1100);
    assert_eq!(r.latched(), 0);
    assert_eq!(r.pit.out(0), Some(true));
    assert!(r.pit.take_irq());
    assert!(!r.pit.take_irq());
    // It keeps counting down through zero; OUT stays high; no more edges.
    r.at(1101);
    assert_eq!(r.latched(), 0xFFFF);
    assert_eq!(r.pit.out(0), Some(true));
    assert_eq!(r.pit.next_irq_ns(), None);
    r.at(200_000);
    assert!(!r.pit.take_irq());
}

#[test]
fn mode2_rate_generator() {
    let mut r = Rig::new();
    r.at(0).program(2, 100);
    assert_eq!(r.latched(), 100);
    assert_eq!(r.pit.out(0), Some(true));
    r.at(30);
    assert_eq!(r.latched(), 70);
    r.at(99);
    assert_eq!(r.latched(), 1);
    assert_eq!(r.pit.out(0), Some(false));
    r.at(100);
    assert_eq!(r.latched(), 100);
    assert_eq!(r.pit.out(0), Some(true));
    assert!(r.pit.take_irq());
    assert_eq!(r.pit.next_irq_ns(), Some(ns_of_tick(200)));
    r.at(250);
    assert_eq!(r.latched(), 50);
    assert_eq!(r.pit.next_irq_ns(), Some(ns_of_tick(200)));
    // Missed periods coalesce into one interrupt.
    r.at(450);
    assert!(r.pit.take_irq());
    assert!(!r.pit.take_irq());
    assert_eq!(r.pit.next_irq_ns(), Some(ns_of_tick(500)));
}

#[test]
fn mode2_new_count_waits_for_the_period_end() {
    let mut r = Rig::new();
    r.at(0).program(2, 100);
    r.at(30).out(0x40, 10);
    r.out(0x40, 0);
    // Still the old period until tick 100.
    assert_eq!(r.latched(), 70);
    assert_eq!(r.pit.next_irq_ns(), Some(ns_of_tick(100)));
    r.at(100);
    assert_eq!(r.latched(), 10);
    assert!(r.pit.take_irq());
    r.at(105);
    assert_eq!(r.latched(), 5);
    assert_eq!(r.pit.next_irq_ns(), Some(ns_of_tick(110)));
    r.at(110);
    assert!(r.pit.take_irq());
}

#[test]
fn mode3_square_wave_even_and_odd() {
    let mut r = Rig::new();
    r.at(0).program(3, 10);
    let counts: Vec<u16> = (0..12).map(|t| r.at(t).latched()).collect();
    assert_eq!(counts, [10, 8, 6, 4, 2, 10, 8, 6, 4, 2, 10, 8]);
    let outs: Vec<bool> = (0..11).map(|t| r.at(t).pit.out(0).unwrap()).collect();
    assert_eq!(
        outs,
        [true, true, true, true, true, false, false, false, false, false, true]
    );
    // Odd: high 3 ticks, low 2; counts as the data sheet describes.
    r.at(100).program(3, 5);
    let counts: Vec<u16> = (100..106).map(|t| r.at(t).latched()).collect();
    assert_eq!(counts, [5, 4, 2, 5, 2, 5]);
    let outs: Vec<bool> = (100..106).map(|t| r.at(t).pit.out(0).unwrap()).collect();
    assert_eq!(outs, [true, true, true, false, false, true]);
    assert_eq!(r.pit.next_irq_ns(), Some(ns_of_tick(105)));
}

#[test]
fn mode4_software_strobe() {
    let mut r = Rig::new();
    r.at(0).program(4, 3);
    assert_eq!(r.pit.out(0), Some(true));
    assert_eq!(r.pit.next_irq_ns(), Some(ns_of_tick(4)));
    r.at(3);
    assert_eq!(r.pit.out(0), Some(false));
    assert_eq!(r.latched(), 0);
    r.at(4);
    assert_eq!(r.pit.out(0), Some(true));
    assert!(r.pit.take_irq());
    assert_eq!(r.pit.next_irq_ns(), None);
}

#[test]
fn gate_triggered_modes_hold() {
    let mut r = Rig::new();
    r.at(0).program(1, 50);
    r.at(40);
    assert_eq!(r.latched(), 50);
    assert_eq!(r.pit.out(0), Some(true));
    assert_eq!(r.pit.next_irq_ns(), None);
}

#[test]
fn zero_means_65536() {
    let mut r = Rig::new();
    r.at(0).program(2, 0);
    assert_eq!(r.latched(), 0);
    r.at(1);
    assert_eq!(r.latched(), 0xFFFF);
    assert_eq!(r.pit.next_irq_ns(), Some(ns_of_tick(65_536)));
    // The 18.2 Hz BIOS tick: 65536 ticks is 54.9254 ms (rounded up to the
    // first whole nanosecond at which the tick has elapsed).
    assert_eq!(ns_of_tick(65_536), 54_925_402);
}

#[test]
fn byte_access_modes_and_live_reads() {
    let mut r = Rig::new();
    // LSB only, mode 2, count 0x40.
    r.at(0).out(0x43, 0x14);
    r.out(0x40, 0x40);
    r.at(0x10);
    assert_eq!(r.inb(0x40), 0x30);
    // MSB only: count 0x0200.
    r.out(0x43, 0x24);
    r.out(0x40, 0x02);
    r.at(0x110);
    assert_eq!(r.inb(0x40), 0x01);
    // Word access without latch: LSB, then MSB, alternating.
    r.out(0x43, 0x34);
    r.out(0x40, 0x34);
    r.out(0x40, 0x12);
    r.at(0x111);
    assert_eq!(r.inb(0x40), 0x33);
    assert_eq!(r.inb(0x40), 0x12);
    assert_eq!(r.inb(0x40), 0x33);
    assert_eq!(r.inb(0x40), 0x12);
}

#[test]
fn latch_holds_until_read_and_ignores_relatch() {
    let mut r = Rig::new();
    r.at(0).program(2, 1000);
    r.at(10).out(0x43, 0x00);
    r.at(20).out(0x43, 0x00);
    assert_eq!(r.inb(0x40), 0xDE); // 990 = 0x03DE, latched at tick 10
    r.at(30);
    assert_eq!(r.inb(0x40), 0x03);
    assert_eq!(r.latched(), 970);
}

#[test]
fn read_back_status_and_count() {
    let mut r = Rig::new();
    r.at(0).out(0x43, 0x34);
    // Status after the control word: OUT high (mode 2), null count.
    r.out(0x43, 0xE2);
    assert_eq!(r.inb(0x40), 0xC0 | 0x34);
    r.out(0x40, 100);
    r.out(0x40, 0);
    r.at(99);
    // Status and count together: status first, then the count.
    r.out(0x43, 0xC2);
    assert_eq!(r.inb(0x40), 0x34);
    assert_eq!(r.inb(0x40), 1);
    assert_eq!(r.inb(0x40), 0);
    // Count only, counters 0 and 2.
    r.at(150).out(0x43, 0xDA);
    assert_eq!(r.inb(0x40), 50);
    assert_eq!(r.inb(0x40), 0);
    // Counter 2 was never programmed; its latch holds 0.
    assert_eq!(r.inb(0x42), 0);
    assert_eq!(r.inb(0x42), 0);
}

#[test]
fn bcd_counting() {
    let mut r = Rig::new();
    r.at(0).out(0x43, 0x31);
    r.out(0x40, 0x00);
    r.out(0x40, 0x10); // 1000 in BCD
    r.at(1);
    assert_eq!(r.latched(), 0x0999);
    r.at(1000);
    assert_eq!(r.latched(), 0x0000);
    assert!(r.pit.take_irq());
    r.at(1001);
    assert_eq!(r.latched(), 0x9999);
    assert_eq!(from_bcd(0x1234), 1234);
    assert_eq!(to_bcd(9876), 0x9876);
    assert_eq!(from_bcd(0xFFFF), 16665);
}

#[test]
fn counter_two_and_control_port() {
    let mut r = Rig::new();
    r.at(0).out(0x43, 0xB6); // counter 2, word, mode 3
    r.out(0x42, 0x00);
    r.out(0x42, 0x01);
    r.at(16);
    r.out(0x43, 0x80);
    assert_eq!(r.inb(0x42), 0xE0);
    assert_eq!(r.inb(0x42), 0x00);
    assert_eq!(r.inb(0x43), 0xFF);
    // Counter 0 untouched: no IRQ0.
    assert_eq!(r.pit.next_irq_ns(), None);
    assert!(!r.pit.take_irq());
    assert_eq!(r.pit.count(3), None);
    assert_eq!(r.pit.out(7), None);
}

#[test]
fn control_word_holds_the_count() {
    let mut r = Rig::new();
    r.at(0).program(2, 100);
    r.at(25).out(0x43, 0x34);
    r.at(60);
    assert_eq!(r.pit.count(0), Some(75));
    assert_eq!(r.pit.next_irq_ns(), None);
}

#[test]
fn random_programming_never_panics() {
    let mut r = Rig::new();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut now = 0u64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now += x >> 50;
        r.clock.set_ns(now);
        let port = (x & 3) as u16;
        match x >> 8 & 3 {
            0 => {
                r.pit.read(port, &mut [0; 3]);
            }
            1 => {
                r.pit.take_irq();
                r.pit.next_irq_ns();
            }
            _ => {
                r.pit.write(port, &[(x >> 16) as u8, (x >> 24) as u8]);
            }
        }
    }
}
