use super::*;
use crate::devices::PortBus;

/// A bus with both chips, and the shared pair.
fn pc() -> (PortBus, SharedPic) {
    let (pic, master, slave) = DualPic::shared();
    let mut bus = PortBus::new();
    bus.register(PIC_MASTER_BASE, PIC_LEN, Box::new(master))
        .unwrap();
    bus.register(PIC_SLAVE_BASE, PIC_LEN, Box::new(slave))
        .unwrap();
    (bus, pic)
}

fn outb(bus: &mut PortBus, port: u16, v: u8) {
    assert_eq!(bus.write(port, &[v]), DeviceAction::None);
}

fn inb(bus: &mut PortBus, port: u16) -> u8 {
    let mut b = [0];
    bus.read(port, &mut b);
    b[0]
}

/// The classic PC initialisation: vectors 0x20 / 0x28, cascade on IR2,
/// 8086 mode, edge triggered, all unmasked.
fn pc_initialised() -> (PortBus, SharedPic) {
    let (mut bus, pic) = pc();
    for (port, v) in [
        (0x20, 0x11),
        (0x21, 0x20),
        (0x21, 0x04),
        (0x21, 0x01),
        (0xA0, 0x11),
        (0xA1, 0x28),
        (0xA1, 0x02),
        (0xA1, 0x01),
    ] {
        outb(&mut bus, port, v);
    }
    outb(&mut bus, 0x21, 0);
    outb(&mut bus, 0xA1, 0);
    (bus, pic)
}

fn lock(pic: &SharedPic) -> MutexGuard<'_, DualPic> {
    pic.lock().unwrap()
}

#[test]
fn masking_everything_reads_back() {
    let (mut bus, pic) = pc();
    // Kernels that do not use the PIC just mask it.
    outb(&mut bus, 0x21, 0xFF);
    outb(&mut bus, 0xA1, 0xFF);
    assert_eq!(inb(&mut bus, 0x21), 0xFF);
    assert_eq!(inb(&mut bus, 0xA1), 0xFF);
    let mut p = lock(&pic);
    p.set_irq(0, true);
    p.set_irq(12, true);
    assert_eq!(p.pending_vector(), None);
    assert_eq!(p.master().irr(), 0x01);
    assert_eq!(p.slave().irr(), 0x10);
}

#[test]
fn initialisation_sequence() {
    let (mut bus, pic) = pc_initialised();
    let p = lock(&pic);
    assert_eq!(p.master().vector_base(), 0x20);
    assert_eq!(p.slave().vector_base(), 0x28);
    assert!(!p.master().initialising());
    assert!(!p.slave().initialising());
    drop(p);
    outb(&mut bus, 0x21, 0xFB);
    assert_eq!(inb(&mut bus, 0x21), 0xFB);
    // ICW1 clears the IMR; ICW2 is the next data write, not OCW1.
    outb(&mut bus, 0x20, 0x11);
    assert_eq!(inb(&mut bus, 0x21), 0);
    assert!(lock(&pic).master().initialising());
    outb(&mut bus, 0x21, 0x08);
    outb(&mut bus, 0x21, 0x04);
    outb(&mut bus, 0x21, 0x01);
    assert_eq!(inb(&mut bus, 0x21), 0);
    assert_eq!(lock(&pic).master().vector_base(), 0x08);
    // Single mode without ICW4: ICW1, ICW2, done. ICW2's low bits are
    // ignored in 8086 mode.
    outb(&mut bus, 0x20, 0x12);
    outb(&mut bus, 0x21, 0x47);
    assert!(!lock(&pic).master().initialising());
    assert_eq!(lock(&pic).master().vector_base(), 0x40);
    outb(&mut bus, 0x21, 0x5A);
    assert_eq!(inb(&mut bus, 0x21), 0x5A);
}

#[test]
fn master_interrupt_ack_and_eoi() {
    let (mut bus, pic) = pc_initialised();
    let mut p = lock(&pic);
    assert_eq!(p.pending_vector(), None);
    p.pulse_irq(0);
    assert_eq!(p.pending_vector(), Some(0x20));
    assert_eq!(p.acknowledge(), 0x20);
    assert_eq!(p.master().isr(), 0x01);
    assert_eq!(p.master().irr(), 0x00);
    assert_eq!(p.pending_vector(), None);
    drop(p);
    // OCW3: read IRR (default) and ISR.
    assert_eq!(inb(&mut bus, 0x20), 0x00);
    outb(&mut bus, 0x20, 0x0B);
    assert_eq!(inb(&mut bus, 0x20), 0x01);
    outb(&mut bus, 0x20, 0x0A);
    assert_eq!(inb(&mut bus, 0x20), 0x00);
    // Non-specific EOI.
    outb(&mut bus, 0x20, 0x20);
    assert_eq!(lock(&pic).master().isr(), 0);
}

#[test]
fn fully_nested_priorities() {
    let (mut bus, pic) = pc_initialised();
    let mut p = lock(&pic);
    p.pulse_irq(3);
    p.pulse_irq(1);
    assert_eq!(p.acknowledge(), 0x21);
    // IR3 is lower priority than IR1 in service: held.
    assert_eq!(p.pending_vector(), None);
    // IR0 is higher: nests.
    p.pulse_irq(0);
    assert_eq!(p.acknowledge(), 0x20);
    assert_eq!(p.master().isr(), 0x03);
    drop(p);
    outb(&mut bus, 0x20, 0x20); // clears IR0, the highest in service
    assert_eq!(lock(&pic).master().isr(), 0x02);
    assert_eq!(lock(&pic).pending_vector(), None);
    outb(&mut bus, 0x20, 0x20);
    assert_eq!(lock(&pic).pending_vector(), Some(0x23));
}

#[test]
fn slave_interrupt_cascades_through_ir2() {
    let (mut bus, pic) = pc_initialised();
    let mut p = lock(&pic);
    p.set_irq(10, true);
    assert_eq!(p.master().irr(), 0x04);
    assert_eq!(p.pending_vector(), Some(0x2A));
    assert_eq!(p.acknowledge(), 0x2A);
    assert_eq!(p.master().isr(), 0x04);
    assert_eq!(p.slave().isr(), 0x04);
    p.set_irq(10, false);
    // A higher slave request waits for the master's IR2 EOI.
    p.pulse_irq(8);
    assert_eq!(p.pending_vector(), None);
    // Master IR0 and IR1 outrank the cascade and still nest.
    p.pulse_irq(1);
    assert_eq!(p.pending_vector(), Some(0x21));
    assert_eq!(p.acknowledge(), 0x21);
    drop(p);
    outb(&mut bus, 0x20, 0x20); // EOI IR1
    outb(&mut bus, 0xA0, 0x20); // slave EOI
    assert_eq!(lock(&pic).pending_vector(), None);
    outb(&mut bus, 0x20, 0x20); // master EOI for IR2
    assert_eq!(lock(&pic).pending_vector(), Some(0x28));
    assert_eq!(lock(&pic).acknowledge(), 0x28);
}

#[test]
fn masks_block_requests_and_the_cascade() {
    let (mut bus, pic) = pc_initialised();
    outb(&mut bus, 0x21, 0x01);
    lock(&pic).pulse_irq(0);
    assert_eq!(lock(&pic).pending_vector(), None);
    outb(&mut bus, 0x21, 0x04);
    assert_eq!(lock(&pic).pending_vector(), Some(0x20));
    assert_eq!(lock(&pic).acknowledge(), 0x20);
    outb(&mut bus, 0x20, 0x20);
    lock(&pic).set_irq(14, true);
    assert_eq!(lock(&pic).pending_vector(), None);
    outb(&mut bus, 0x21, 0x00);
    assert_eq!(lock(&pic).pending_vector(), Some(0x2E));
    // Masking on the slave drops its INT output.
    outb(&mut bus, 0xA1, 0x40);
    // The master latched the IR2 edge; the slave answers spuriously.
    assert_eq!(lock(&pic).pending_vector(), Some(0x2F));
    assert_eq!(lock(&pic).acknowledge(), 0x2F);
    assert_eq!(lock(&pic).slave().isr(), 0);
}

#[test]
fn spurious_interrupt_without_request() {
    let (_bus, pic) = pc_initialised();
    let mut p = lock(&pic);
    assert_eq!(p.acknowledge(), 0x27);
    assert_eq!(p.master().isr(), 0);
    // Out-of-range and cascade lines are ignored.
    p.set_irq(2, true);
    p.set_irq(16, true);
    p.set_irq(255, true);
    assert_eq!(p.pending_vector(), None);
}

#[test]
fn edge_needs_a_new_rising_edge() {
    let (_bus, pic) = pc_initialised();
    let mut p = lock(&pic);
    p.set_irq(4, true);
    assert_eq!(p.acknowledge(), 0x24);
    p.set_irq(4, true);
    assert_eq!(p.master().irr(), 0);
    p.set_irq(4, false);
    p.set_irq(4, true);
    assert_eq!(p.master().irr(), 0x10);
    // A request that falls before INTA stays latched.
    p.set_irq(5, true);
    p.set_irq(5, false);
    assert_eq!(p.master().irr(), 0x30);
}

#[test]
fn specific_eoi_and_rotation() {
    let (mut bus, pic) = pc_initialised();
    {
        let mut p = lock(&pic);
        p.pulse_irq(6);
        assert_eq!(p.acknowledge(), 0x26);
        p.pulse_irq(3);
        assert_eq!(p.acknowledge(), 0x23);
        assert_eq!(p.master().isr(), 0x48);
    }
    // Specific EOI of IR6 leaves IR3 in service.
    outb(&mut bus, 0x20, 0x66);
    assert_eq!(lock(&pic).master().isr(), 0x08);
    outb(&mut bus, 0x20, 0x63);
    // Set priority: IR4 lowest, so IR5 is now the highest.
    outb(&mut bus, 0x20, 0xC4);
    let mut p = lock(&pic);
    p.pulse_irq(0);
    p.pulse_irq(5);
    assert_eq!(p.acknowledge(), 0x25);
    // IR0 ranks below IR5 now: blocked while IR5 is in service.
    assert_eq!(p.pending_vector(), None);
    drop(p);
    // Rotate on non-specific EOI: IR5 becomes the lowest.
    outb(&mut bus, 0x20, 0xA0);
    let mut p = lock(&pic);
    assert_eq!(p.master().isr(), 0);
    p.pulse_irq(5);
    assert_eq!(p.acknowledge(), 0x20);
    drop(p);
    // Rotate on specific EOI of IR0: IR0 lowest, IR1 highest; IR5 pends.
    outb(&mut bus, 0x20, 0xE0);
    assert_eq!(lock(&pic).pending_vector(), Some(0x25));
}

#[test]
fn level_triggered_mode() {
    let (mut bus, pic) = pc();
    for (port, v) in [(0x20, 0x19), (0x21, 0x30), (0x21, 0x04), (0x21, 0x01)] {
        outb(&mut bus, port, v);
    }
    let mut p = lock(&pic);
    assert!(p.master().level_triggered());
    p.set_irq(3, true);
    assert_eq!(p.acknowledge(), 0x33);
    // The input is still high: IRR still shows it, ISR holds it off.
    assert_eq!(p.master().irr(), 0x08);
    assert_eq!(p.pending_vector(), None);
    drop(p);
    outb(&mut bus, 0x20, 0x20);
    assert_eq!(lock(&pic).pending_vector(), Some(0x33));
    lock(&pic).set_irq(3, false);
    assert_eq!(lock(&pic).pending_vector(), None);
}

#[test]
fn automatic_eoi() {
    let (mut bus, pic) = pc();
    for (port, v) in [(0x20, 0x13), (0x21, 0x40), (0x21, 0x03)] {
        outb(&mut bus, port, v);
    }
    let mut p = lock(&pic);
    p.pulse_irq(1);
    p.pulse_irq(6);
    assert_eq!(p.acknowledge(), 0x41);
    assert_eq!(p.master().isr(), 0);
    assert_eq!(p.acknowledge(), 0x46);
    drop(p);
    // Rotate in AEOI mode: the acknowledged level becomes the lowest.
    outb(&mut bus, 0x20, 0x80);
    let mut p = lock(&pic);
    p.pulse_irq(1);
    assert_eq!(p.acknowledge(), 0x41);
    // IR1 is now the lowest: IR3 (and IR2, were it not the cascade) rank
    // above it.
    p.pulse_irq(1);
    p.pulse_irq(3);
    assert_eq!(p.pending_vector(), Some(0x43));
}

#[test]
fn poll_command() {
    let (mut bus, pic) = pc_initialised();
    outb(&mut bus, 0x20, 0x0C);
    assert_eq!(inb(&mut bus, 0x20), 0x00);
    lock(&pic).pulse_irq(7);
    outb(&mut bus, 0x20, 0x0C);
    assert_eq!(inb(&mut bus, 0x20), 0x87);
    assert_eq!(lock(&pic).master().isr(), 0x80);
    // The poll is one-shot: the next read is IRR again.
    assert_eq!(inb(&mut bus, 0x20), 0x00);
}

#[test]
fn special_mask_mode_enables_lower_levels() {
    let (mut bus, pic) = pc_initialised();
    lock(&pic).pulse_irq(1);
    assert_eq!(lock(&pic).acknowledge(), 0x21);
    lock(&pic).pulse_irq(4);
    assert_eq!(lock(&pic).pending_vector(), None);
    // Mask IR1 and enter special mask mode: IR4 may interrupt.
    outb(&mut bus, 0x21, 0x02);
    outb(&mut bus, 0x20, 0x68);
    assert_eq!(lock(&pic).pending_vector(), Some(0x24));
    // Leave special mask mode: IR1 in service blocks again.
    outb(&mut bus, 0x20, 0x48);
    assert_eq!(lock(&pic).pending_vector(), None);
}

#[test]
fn wide_accesses_go_byte_by_byte() {
    let (mut bus, pic) = pc_initialised();
    // outw 0x20: 0x20 gets the low byte (OCW3, read ISR), 0x21 the high
    // byte (OCW1).
    assert_eq!(bus.write(0x20, &[0x0B, 0x5A]), DeviceAction::None);
    assert_eq!(lock(&pic).master().imr(), 0x5A);
    let mut w = [0; 2];
    bus.read(0x20, &mut w);
    assert_eq!(w, [0x00, 0x5A]);
}

#[test]
fn random_programming_never_panics() {
    let (mut bus, pic) = pc();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = [0x20, 0x21, 0xA0, 0xA1][(x & 3) as usize];
        match x >> 8 & 7 {
            0 | 1 => {
                inb(&mut bus, port);
            }
            2 => lock(&pic).set_irq((x >> 16) as u8, x >> 24 & 1 != 0),
            3 => {
                let v = lock(&pic).pending_vector();
                let a = lock(&pic).acknowledge();
                if let Some(v) = v {
                    assert_eq!(a, v);
                }
            }
            _ => outb(&mut bus, port, (x >> 32) as u8),
        }
    }
}
