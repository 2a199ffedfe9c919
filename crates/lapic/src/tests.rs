use super::*;

/// TSC cycles per crystal tick with the default 80 / 1 ratio.
const TSC_PER_TICK: u64 = 80;

fn apic() -> Lapic {
    let mut a = Lapic::new(LapicConfig {
        apic_id: 3,
        ..LapicConfig::default()
    });
    a.write_register(reg::SVR, 0x1FF, 0);
    a
}

fn rd(a: &mut Lapic, offset: u32, now: u64) -> u32 {
    a.read_register(offset, now)
}

/// Reads the ESR the way software does: write, then read.
fn esr(a: &mut Lapic) -> u32 {
    a.write_register(reg::ESR, 0, 0);
    rd(a, reg::ESR, 0)
}

#[test]
fn power_up_state() {
    let mut a = Lapic::new(LapicConfig {
        apic_id: 3,
        ..LapicConfig::default()
    });
    assert_eq!(a.apic_base(), 0xFEE0_0900);
    assert_eq!(a.mmio_base(), Some(APIC_DEFAULT_BASE));
    assert_eq!(rd(&mut a, reg::ID, 0), 0x0300_0000);
    assert_eq!(rd(&mut a, reg::VERSION, 0), 0x0005_0014);
    assert_eq!(rd(&mut a, reg::SVR, 0), 0xFF);
    assert_eq!(rd(&mut a, reg::DFR, 0), 0xFFFF_FFFF);
    for lvt in [0x320, 0x330, 0x340, 0x350, 0x360, 0x370] {
        assert_eq!(rd(&mut a, lvt, 0), 0x0001_0000, "{lvt:#x}");
    }
    assert_eq!(rd(&mut a, reg::TPR, 0), 0);
    assert_eq!(rd(&mut a, reg::TIMER_INITIAL, 0), 0);
    assert!(!a.software_enabled());
    assert_eq!(a.timer_mode(), TimerMode::OneShot);
    let ap = Lapic::new(LapicConfig {
        bsp: false,
        ..LapicConfig::default()
    });
    assert_eq!(ap.apic_base(), 0xFEE0_0800);
}

#[test]
fn divide_configuration() {
    let table: Vec<u64> = [0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB]
        .iter()
        .map(|&d| divisor(d))
        .collect();
    assert_eq!(table, [2, 4, 8, 16, 32, 64, 128, 1]);
    // Bit 2 is not part of the value.
    assert_eq!(divisor(0x4), 2);
    let mut a = apic();
    a.write_register(reg::TIMER_DIVIDE, 0xFF, 0);
    assert_eq!(rd(&mut a, reg::TIMER_DIVIDE, 0), 0xB);
}

#[test]
fn one_shot_counts_down_and_fires_once() {
    let mut a = apic();
    a.write_register(reg::LVT_TIMER, 0x20, 0);
    a.write_register(reg::TIMER_DIVIDE, 0x0, 0); // divide by 2
    a.write_register(reg::TIMER_INITIAL, 1000, 0);
    // One count every 2 crystal ticks = 160 TSC cycles.
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 0), 1000);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 159), 1000);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 160), 999);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 40_000), 750);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 159_999), 1);
    assert_eq!(a.next_deadline(), Some(160_000));
    a.advance(159_999);
    assert_eq!(a.pending_vector(), None);
    a.advance(160_000);
    assert_eq!(a.pending_vector(), Some(0x20));
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 160_000), 0);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 10_000_000), 0);
    assert_eq!(rd(&mut a, reg::TIMER_INITIAL, 0), 1000);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(a.acknowledge(), 0x20);
    a.write_register(reg::EOI, 0, 160_000);
    a.advance(1_000_000);
    assert_eq!(a.pending_vector(), None);
}

#[test]
fn periodic_reloads_and_coalesces() {
    let mut a = apic();
    a.write_register(reg::TIMER_DIVIDE, 0xB, 0); // divide by 1
    a.write_register(reg::LVT_TIMER, 0x0002_0021, 0);
    assert_eq!(a.timer_mode(), TimerMode::Periodic);
    a.write_register(reg::TIMER_INITIAL, 100, 0);
    assert_eq!(a.next_deadline(), Some(100 * TSC_PER_TICK));
    a.advance(8_000);
    assert_eq!(a.acknowledge(), 0x21);
    a.write_register(reg::EOI, 0, 8_000);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 8_000), 100);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 8_080), 99);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 15_999), 1);
    assert_eq!(a.next_deadline(), Some(16_000));
    // Four periods pass: one IRR bit.
    a.advance(40_000);
    assert_eq!(a.acknowledge(), 0x21);
    assert_eq!(a.pending_vector(), None);
    assert_eq!(a.next_deadline(), Some(48_000));
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 40_000), 100);
    // Writing 0 stops it.
    a.write_register(reg::TIMER_INITIAL, 0, 41_000);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 41_000), 0);
}

#[test]
fn tsc_deadline_mode() {
    let mut a = apic();
    // Outside TSC-deadline mode the MSR reads 0 and ignores writes.
    a.write_tsc_deadline(5_000, 0);
    assert_eq!(a.tsc_deadline(), 0);
    a.write_register(reg::LVT_TIMER, 0x0004_0030, 0);
    assert_eq!(a.timer_mode(), TimerMode::TscDeadline);
    assert_eq!(a.next_deadline(), None);
    a.write_tsc_deadline(5_000, 100);
    assert_eq!(a.tsc_deadline(), 5_000);
    assert_eq!(a.next_deadline(), Some(5_000));
    // The count registers are inert.
    a.write_register(reg::TIMER_INITIAL, 10, 200);
    assert_eq!(rd(&mut a, reg::TIMER_INITIAL, 200), 0);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 200), 0);
    a.advance(4_999);
    assert_eq!(a.pending_vector(), None);
    a.advance(5_000);
    assert_eq!(a.pending_vector(), Some(0x30));
    assert_eq!(a.tsc_deadline(), 0);
    assert_eq!(a.next_deadline(), None);
    // A deadline in the past fires at the next advance; 0 disarms.
    a.acknowledge();
    a.write_register(reg::EOI, 0, 6_000);
    a.write_tsc_deadline(1, 6_000);
    a.advance(6_000);
    assert_eq!(a.acknowledge(), 0x30);
    a.write_register(reg::EOI, 0, 6_000);
    a.write_tsc_deadline(9_000, 6_000);
    a.write_tsc_deadline(0, 6_000);
    a.advance(20_000);
    assert_eq!(a.pending_vector(), None);
}

#[test]
fn leaving_and_entering_deadline_mode_disarms() {
    let mut a = apic();
    a.write_register(reg::TIMER_DIVIDE, 0xB, 0);
    a.write_register(reg::LVT_TIMER, 0x20, 0);
    a.write_register(reg::TIMER_INITIAL, 1000, 0);
    a.write_register(reg::LVT_TIMER, 0x0004_0020, 800);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(rd(&mut a, reg::TIMER_INITIAL, 800), 0);
    a.write_tsc_deadline(50_000, 800);
    a.write_register(reg::LVT_TIMER, 0x20, 900);
    assert_eq!(a.next_deadline(), None);
    a.write_register(reg::LVT_TIMER, 0x0004_0020, 900);
    assert_eq!(a.tsc_deadline(), 0);
    a.advance(100_000);
    assert_eq!(a.pending_vector(), None);
}

#[test]
fn one_shot_periodic_switch_keeps_the_count() {
    let mut a = apic();
    a.write_register(reg::TIMER_DIVIDE, 0xB, 0);
    a.write_register(reg::LVT_TIMER, 0x0002_0022, 0);
    a.write_register(reg::TIMER_INITIAL, 100, 0);
    // Mid-way through the second period, switch to one-shot.
    a.write_register(reg::LVT_TIMER, 0x22, 150 * TSC_PER_TICK);
    assert_eq!(a.acknowledge(), 0x22);
    a.write_register(reg::EOI, 0, 150 * TSC_PER_TICK);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 150 * TSC_PER_TICK), 50);
    assert_eq!(a.next_deadline(), Some(200 * TSC_PER_TICK));
    a.advance(200 * TSC_PER_TICK);
    assert_eq!(a.acknowledge(), 0x22);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 201 * TSC_PER_TICK), 0);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(rd(&mut a, reg::TIMER_INITIAL, 0), 100);
}

#[test]
fn divide_change_mid_count() {
    let mut a = apic();
    a.write_register(reg::LVT_TIMER, 0x20, 0);
    a.write_register(reg::TIMER_DIVIDE, 0x0, 0);
    a.write_register(reg::TIMER_INITIAL, 1000, 0);
    // 200 crystal ticks at divide-by-2: 100 counts.
    a.write_register(reg::TIMER_DIVIDE, 0xB, 200 * TSC_PER_TICK);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 200 * TSC_PER_TICK), 900);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 300 * TSC_PER_TICK), 800);
    assert_eq!(a.next_deadline(), Some(1100 * TSC_PER_TICK));
}

#[test]
fn masked_timer_counts_without_interrupts() {
    let mut a = apic();
    a.write_register(reg::TIMER_DIVIDE, 0xB, 0);
    a.write_register(reg::LVT_TIMER, 0x0001_0020, 0);
    a.write_register(reg::TIMER_INITIAL, 10, 0);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT, 5 * TSC_PER_TICK), 5);
    // Unmasking after the expiry delivers nothing stale.
    a.write_register(reg::LVT_TIMER, 0x20, 20 * TSC_PER_TICK);
    a.advance(30 * TSC_PER_TICK);
    assert_eq!(a.pending_vector(), None);
}

#[test]
fn priority_and_acceptance() {
    let mut a = apic();
    assert!(a.accept_interrupt(0x31, false));
    assert!(a.accept_interrupt(0x45, false));
    assert_eq!(a.pending_vector(), Some(0x45));
    a.write_register(reg::TPR, 0x50, 0);
    assert_eq!(a.pending_vector(), None);
    a.write_register(reg::TPR, 0x4F, 0);
    assert_eq!(a.pending_vector(), None);
    a.write_register(reg::TPR, 0x3F, 0);
    assert_eq!(rd(&mut a, reg::PPR, 0), 0x3F);
    assert_eq!(a.acknowledge(), 0x45);
    assert!(a.isr_bit(0x45));
    assert!(!a.irr_bit(0x45));
    // PPR is the in-service class now; 0x31 waits, 0x52 nests.
    assert_eq!(a.ppr(), 0x40);
    assert_eq!(a.pending_vector(), None);
    a.accept_interrupt(0x52, false);
    assert_eq!(a.acknowledge(), 0x52);
    assert_eq!(a.ppr(), 0x50);
    // EOI clears the highest in service first.
    a.write_register(reg::EOI, 0, 0);
    assert!(!a.isr_bit(0x52));
    assert!(a.isr_bit(0x45));
    a.write_register(reg::EOI, 0, 0);
    assert_eq!(a.ppr(), 0x3F);
    a.write_register(reg::TPR, 0, 0);
    assert_eq!(a.acknowledge(), 0x31);
    // The register windows.
    assert_eq!(rd(&mut a, reg::ISR + 0x10, 0), 1 << 17);
    a.accept_interrupt(0xFF, true);
    assert_eq!(rd(&mut a, reg::IRR + 0x70, 0), 1 << 31);
    assert_eq!(rd(&mut a, reg::TMR + 0x70, 0), 1 << 31);
}

#[test]
fn spurious_vector_when_nothing_is_deliverable() {
    let mut a = apic();
    a.write_register(reg::SVR, 0x1EF, 0);
    assert_eq!(a.acknowledge(), 0xEF);
    a.accept_interrupt(0x20, false);
    a.write_register(reg::TPR, 0x20, 0);
    assert_eq!(a.acknowledge(), 0xEF);
    assert!(a.irr_bit(0x20));
    assert_eq!(a.eoi(), None);
}

#[test]
fn illegal_vectors_and_esr() {
    let mut a = apic();
    assert!(!a.accept_interrupt(15, false));
    // The error shows only after a write to the ESR.
    assert_eq!(rd(&mut a, reg::ESR, 0), 0);
    assert_eq!(esr(&mut a), ESR_RECV_ILLEGAL_VECTOR);
    assert_eq!(esr(&mut a), 0);
    // A timer LVT with an illegal vector.
    a.write_register(reg::TIMER_DIVIDE, 0xB, 0);
    a.write_register(reg::LVT_TIMER, 0x05, 0);
    a.write_register(reg::TIMER_INITIAL, 1, 0);
    a.advance(TSC_PER_TICK);
    assert_eq!(a.pending_vector(), None);
    assert_eq!(esr(&mut a), ESR_RECV_ILLEGAL_VECTOR);
    // Unimplemented register: ESR bit 7 and the LVT error interrupt.
    a.write_register(reg::LVT_ERROR, 0xFE, 0);
    assert_eq!(rd(&mut a, 0x2F0, 0), 0);
    assert_eq!(a.pending_vector(), Some(0xFE));
    a.write_register(0x3F0, 1, 0);
    assert_eq!(esr(&mut a), ESR_ILLEGAL_REGISTER);
    assert_eq!(rd(&mut a, 0x21, 0), 0);
    assert_eq!(esr(&mut a), ESR_ILLEGAL_REGISTER);
}

#[test]
fn self_ipis() {
    let mut a = apic();
    // Shorthand self, fixed.
    a.write_register(reg::ICR_LOW, 0x0004_0041, 0);
    assert!(a.irr_bit(0x41));
    assert_eq!(rd(&mut a, reg::ICR_LOW, 0) & (1 << 12), 0);
    assert!(a.take_ipis().is_empty());
    // Physical destination = own ID (3).
    a.write_register(reg::ICR_HIGH, 0x0300_0000, 0);
    a.write_register(reg::ICR_LOW, 0x0000_0042, 0);
    assert!(a.irr_bit(0x42));
    assert!(a.take_ipis().is_empty());
    // Another APIC: queued, not accepted.
    a.write_register(reg::ICR_HIGH, 0x0100_0000, 0);
    a.write_register(reg::ICR_LOW, 0x0000_0043, 0);
    assert!(!a.irr_bit(0x43));
    let ipis = a.take_ipis();
    assert_eq!(ipis.len(), 1);
    assert_eq!(ipis[0].vector(), 0x43);
    assert_eq!(ipis[0].icr_high, 0x0100_0000);
    assert!(!ipis[0].deliver_to_self);
    // All including self: accepted here and queued for the others.
    a.write_register(reg::ICR_LOW, 0x0008_0044, 0);
    assert!(a.irr_bit(0x44));
    assert_eq!(a.take_ipis()[0].shorthand(), 2);
    // All excluding self.
    a.write_register(reg::ICR_LOW, 0x000C_0045, 0);
    assert!(!a.irr_bit(0x45));
    assert_eq!(a.take_ipis().len(), 1);
    // NMI to self: for the integrator.
    a.write_register(reg::ICR_LOW, 0x0004_0400, 0);
    let ipis = a.take_ipis();
    assert_eq!(ipis[0].delivery_mode(), 4);
    assert!(ipis[0].deliver_to_self);
    // Logical flat: LDR bit matches.
    a.write_register(reg::LDR, 0x0400_0000, 0);
    a.write_register(reg::ICR_HIGH, 0x0600_0000, 0);
    a.write_register(reg::ICR_LOW, 0x0000_0846, 0);
    assert!(a.irr_bit(0x46));
    // Cluster model: cluster 0, member bit 2.
    a.write_register(reg::DFR, 0x0FFF_FFFF, 0);
    a.write_register(reg::ICR_HIGH, 0x1400_0000, 0);
    a.write_register(reg::ICR_LOW, 0x0000_0847, 0);
    assert!(!a.irr_bit(0x47));
    a.write_register(reg::ICR_HIGH, 0x0400_0000, 0);
    a.write_register(reg::ICR_LOW, 0x0000_0848, 0);
    assert!(a.irr_bit(0x48));
    // Illegal vector: send and receive errors, nothing accepted.
    a.take_ipis();
    a.write_register(reg::ICR_LOW, 0x0004_0007, 0);
    assert!(!a.irr_bit(0x07));
    assert_eq!(
        esr(&mut a),
        ESR_SEND_ILLEGAL_VECTOR | ESR_RECV_ILLEGAL_VECTOR
    );
}

#[test]
fn software_disable_masks_lvts() {
    let mut a = apic();
    a.write_register(reg::LVT_LINT0, 0x700, 0);
    assert!(a.extint_enabled());
    a.write_register(reg::SVR, 0xFF, 0);
    assert_eq!(rd(&mut a, reg::LVT_LINT0, 0), 0x0001_0700);
    assert!(!a.extint_enabled());
    // Mask bits stick while software-disabled.
    a.write_register(reg::LVT_TIMER, 0x20, 0);
    assert_eq!(rd(&mut a, reg::LVT_TIMER, 0), 0x0001_0020);
    // Pending interrupts are kept.
    a.accept_interrupt(0x80, false);
    assert_eq!(a.pending_vector(), Some(0x80));
    a.write_register(reg::SVR, 0x1FF, 0);
    a.write_register(reg::LVT_TIMER, 0x20, 0);
    assert_eq!(rd(&mut a, reg::LVT_TIMER, 0), 0x20);
}

#[test]
fn apic_base_msr() {
    let mut a = apic();
    for bad in [1, 1 << 9, APIC_BASE_EXTD, 1 << 46, 1 << 63] {
        assert_eq!(
            a.write_apic_base(a.apic_base() | bad),
            Err(ApicBaseError::Reserved(a.apic_base() | bad))
        );
    }
    // Relocation; the BSP bit is read-only.
    a.write_apic_base(0x7F_FFFF_F000 | APIC_BASE_ENABLE)
        .unwrap();
    assert_eq!(a.apic_base(), 0x7F_FFFF_F900);
    assert_eq!(a.mmio_base(), Some(0x7F_FFFF_F000));
    a.write_register(reg::TPR, 0x20, 0);
    a.accept_interrupt(0x99, false);
    // Global disable: reset state, no page, nothing accepted.
    a.write_apic_base(APIC_DEFAULT_BASE).unwrap();
    assert!(!a.enabled());
    assert_eq!(a.mmio_base(), None);
    assert_eq!(a.pending_vector(), None);
    assert!(!a.accept_interrupt(0x99, false));
    assert!(a.extint_enabled());
    a.write_apic_base(APIC_DEFAULT_BASE | APIC_BASE_ENABLE)
        .unwrap();
    assert_eq!(a.tpr(), 0);
    assert!(!a.irr_bit(0x99));
    assert!(!a.software_enabled());
    assert_eq!(rd(&mut a, reg::ID, 0), 0x0300_0000);
    assert!(ApicBaseError::Reserved(1).to_string().contains("reserved"));
}

#[test]
fn mmio_widths() {
    let mut a = apic();
    a.mmio_write(0x80, &[0x30, 0, 0, 0], 0);
    assert_eq!(a.tpr(), 0x30);
    // Narrow, wide and unaligned writes are ignored.
    a.mmio_write(0x80, &[0x40, 0], 0);
    a.mmio_write(0x80, &[0x40, 0, 0, 0, 0, 0, 0, 0], 0);
    a.mmio_write(0x84, &[0x40, 0, 0, 0], 0);
    a.mmio_write(0x1000, &[0x40, 0, 0, 0], 0);
    a.mmio_write(u64::MAX - 1, &[0x40, 0, 0, 0], 0);
    assert_eq!(a.tpr(), 0x30);
    let mut q = [0xAA; 8];
    a.mmio_read(0x30, &mut q, 0);
    assert_eq!(q, [0x14, 0, 5, 0, 0, 0, 0, 0]);
    let mut b = [0xAA];
    a.mmio_read(0x32, &mut b, 0);
    assert_eq!(b, [5]);
    a.mmio_read(0xFFF, &mut q, 0);
    assert_eq!(q, [0; 8]);
    a.mmio_read(u64::MAX, &mut q, 0);
    assert_eq!(q, [0; 8]);
}

#[test]
fn timer_clock_conversions() {
    let c = TimerClock::default();
    assert_eq!(c.crystal_at(79), 0);
    assert_eq!(c.crystal_at(80), 1);
    assert_eq!(c.tsc_of_crystal(3), 240);
    let odd = TimerClock {
        tsc_ratio_numerator: 7,
        tsc_ratio_denominator: 2,
        ..c
    };
    assert_eq!(odd.crystal_at(7), 2);
    assert_eq!(odd.tsc_of_crystal(1), 4);
    assert_eq!(odd.crystal_at(odd.tsc_of_crystal(5)), 5);
    assert_eq!(odd.crystal_at(odd.tsc_of_crystal(5) - 1), 4);
    let zero = TimerClock {
        crystal_hz: 0,
        tsc_ratio_numerator: 0,
        tsc_ratio_denominator: 0,
    };
    assert_eq!(zero.crystal_at(u64::MAX), u64::MAX);
    assert_eq!(zero.tsc_hz(), 0);
    assert_eq!(zero.ns_of_tsc(5), 5_000_000_000);
    assert_eq!(zero.tsc_of_ns(5), 0);
}

#[test]
fn timer_clock_converts_host_time() {
    // The default part: 25 MHz × 80 = 2 GHz, two TSC cycles a nanosecond.
    let c = TimerClock::default();
    assert_eq!(c.tsc_hz(), 2_000_000_000);
    assert_eq!(c.tsc_of_ns(1_000), 2_000);
    assert_eq!(c.ns_of_tsc(2_001), 1_000);
    assert_eq!(c.tsc_of_ns(u64::MAX), u64::MAX);
    let odd = TimerClock {
        crystal_hz: 24_000_000,
        tsc_ratio_numerator: 7,
        tsc_ratio_denominator: 2,
    };
    assert_eq!(odd.tsc_hz(), 84_000_000);
    assert_eq!(odd.ns_of_tsc(84), 1_000);
    assert_eq!(odd.tsc_of_ns(1_000), 84);
    // 1 ns is 0.084 cycles: down to 0, up to 1, which is back at 11 ns.
    assert_eq!(odd.tsc_of_ns(1), 0);
    assert_eq!(odd.tsc_at_ns(1), 1);
    assert_eq!(odd.ns_of_tsc(odd.tsc_at_ns(1)), 11);
    assert_eq!(odd.tsc_at_ns(1_000), 84);
    assert_eq!(c.tsc_at_ns(u64::MAX), u64::MAX);
}

#[test]
fn halt_wakes_for_pending_or_armed_timer_only_with_if() {
    let mut a = apic();
    assert_eq!(a.halt_wakeup(0, true), None, "nothing armed");
    a.write_register(reg::SVR, 0x1FF, 0);
    // One-shot timer, vector 0x40, divide by 1: 10 crystal ticks.
    a.write_register(reg::LVT_TIMER, 0x40, 0);
    a.write_register(reg::TIMER_DIVIDE, 0xB, 0);
    a.write_register(reg::TIMER_INITIAL, 10, 0);
    assert_eq!(a.halt_wakeup(0, false), None, "IF = 0: nothing wakes it");
    assert_eq!(a.halt_wakeup(0, true), Some(800));
    // Past the deadline the interrupt is pending: wake at once.
    assert_eq!(a.halt_wakeup(900, true), Some(900));
    assert_eq!(a.halt_wakeup(900, false), None);
}

#[test]
fn random_accesses_never_panic() {
    let mut a = apic();
    let mut x = 0x853C_49E6_748F_EA9Bu64;
    let mut now = 0u64;
    for _ in 0..50_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now = now.wrapping_add(x >> 44);
        let offset = (x >> 8) & 0x3F0;
        let value = (x >> 20) as u32;
        match x & 7 {
            0 => {
                a.read_register(offset as u32, now);
            }
            1 => a.advance(now),
            2 => {
                let _ = a.acknowledge();
                a.next_deadline();
            }
            3 => a.write_tsc_deadline(now + (x >> 40), now),
            4 => {
                let _ = a.write_apic_base(x & 0xFFFF_F900 | APIC_BASE_ENABLE);
            }
            5 => {
                let mut d = [0; 3];
                a.mmio_read(x >> 52, &mut d, now);
            }
            _ => a.write_register(offset as u32, value, now),
        }
        a.take_ipis();
    }
}

#[test]
fn cpuid_offers_an_xapic_without_x2apic() {
    // What KVM_GET_SUPPORTED_CPUID reports: x2APIC, no TSC-deadline.
    let (ecx, edx) = cpuid_leaf1(CPUID1_ECX_X2APIC | 1, 0, true);
    assert_eq!(ecx, CPUID1_ECX_TSC_DEADLINE | 1);
    assert_eq!(edx, CPUID1_EDX_APIC);
    let (ecx, _) = cpuid_leaf1(CPUID1_ECX_X2APIC | CPUID1_ECX_TSC_DEADLINE, 0, false);
    assert_eq!(ecx, 0);
}
