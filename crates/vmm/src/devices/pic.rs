//! The PC's pair of 8259A programmable interrupt controllers.
//!
//! The master is at ports 0x20–0x21 ([`PIC_MASTER_BASE`]), the slave at
//! 0xA0–0xA1 ([`PIC_SLAVE_BASE`]); the slave's INT output drives the
//! master's IR2, as on every PC. Behaviour follows the Intel 8259A data
//! sheet (order no. 231468), "Programming the 8259A":
//!
//! * Port A0 = 0 (0x20/0xA0): a write with D4 = 1 is ICW1 and starts the
//!   initialisation sequence; D4 = 0, D3 = 0 is OCW2 (EOI and rotation);
//!   D4 = 0, D3 = 1 is OCW3 (read-register select, poll, special mask). A
//!   read returns IRR or ISR as OCW3 selected, or the poll word after a
//!   poll command.
//! * Port A0 = 1 (0x21/0xA1): during initialisation the writes are ICW2
//!   (vector base, bits 7–3), ICW3 (only if ICW1 SNGL = 0) and ICW4 (only if
//!   ICW1 IC4 = 1); otherwise a write is OCW1, the interrupt mask register.
//!   A read returns the IMR.
//!
//! Model choices, where the data sheet leaves freedom:
//!
//! * ICW1 does what the data sheet lists (edge-sense reset, IMR cleared, IR7
//!   lowest priority, special mask mode off, status read set to IRR, ICW4
//!   functions zeroed when IC4 = 0) and also clears IRR and ISR, so that a
//!   re-initialised chip holds no stale requests.
//! * The chip always runs in 8086 mode (vectors are ICW2 base + IR); the
//!   MCS-80/85 CALL sequence has no meaning for an x86 guest. Buffered mode
//!   and the master/slave pin are irrelevant without a physical bus.
//! * Edge mode (ICW1 LTIM = 0): a low-to-high transition of an input sets
//!   its IRR bit, which stays set until acknowledged even if the input falls
//!   (the data sheet requires the input to stay high until the first INTA;
//!   keeping the bit lets an integrator pulse a line). Level mode: IRR
//!   follows the input.
//! * The ICW3 cascade configuration is recorded, but the wiring is the PC's
//!   whatever it says: slave INT to master IR2.
//! * Reset state ([`DualPic::new`]): everything zero — vector base 0, IMR 0,
//!   edge mode — as before any ICW1 (firmware normally initialises both
//!   chips).

use std::sync::{Arc, Mutex, MutexGuard};

use super::bus::{DeviceAction, PortDevice};

/// Base port of the master 8259A.
pub const PIC_MASTER_BASE: u16 = 0x20;
/// Base port of the slave 8259A.
pub const PIC_SLAVE_BASE: u16 = 0xA0;
/// Number of ports each 8259A occupies.
pub const PIC_LEN: u16 = 2;
/// The master input the slave's INT output is wired to.
pub const PIC_CASCADE_IRQ: u8 = 2;

const ICW1_IC4: u8 = 0x01;
const ICW1_SNGL: u8 = 0x02;
const ICW1_LTIM: u8 = 0x08;
const ICW1: u8 = 0x10;
const OCW3: u8 = 0x08;
const OCW3_RIS: u8 = 0x01;
const OCW3_RR: u8 = 0x02;
const OCW3_POLL: u8 = 0x04;
const OCW3_SMM: u8 = 0x20;
const OCW3_ESMM: u8 = 0x40;
const ICW4_AEOI: u8 = 0x02;
const ICW4_SFNM: u8 = 0x10;

/// Where a chip is in its initialisation sequence: which ICW the next
/// write to port A0 = 1 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Init {
    /// Initialised: port A0 = 1 writes are OCW1.
    Ready,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pic8259 {
    irr: u8,
    isr: u8,
    imr: u8,
    /// Current levels of the IR inputs.
    lines: u8,
    icw1: u8,
    /// ICW2 with its low three bits cleared.
    vector_base: u8,
    icw3: u8,
    icw4: u8,
    init: Init,
    read_isr: bool,
    poll: bool,
    special_mask: bool,
    rotate_on_aeoi: bool,
    /// The IR with the lowest priority (7 after ICW1).
    lowest: u8,
}

impl Default for Pic8259 {
    fn default() -> Self {
        Pic8259 {
            irr: 0,
            isr: 0,
            imr: 0,
            lines: 0,
            icw1: 0,
            vector_base: 0,
            icw3: 0,
            icw4: 0,
            init: Init::Ready,
            read_isr: false,
            poll: false,
            special_mask: false,
            rotate_on_aeoi: false,
            lowest: 7,
        }
    }
}

impl Pic8259 {
    /// The interrupt request register.
    pub fn irr(&self) -> u8 {
        self.irr
    }

    /// The in-service register.
    pub fn isr(&self) -> u8 {
        self.isr
    }

    /// The interrupt mask register (OCW1).
    pub fn imr(&self) -> u8 {
        self.imr
    }

    /// The vector base programmed by ICW2 (bits 7–3).
    pub fn vector_base(&self) -> u8 {
        self.vector_base
    }

    /// Whether the chip is between ICW1 and its last ICW.
    pub fn initialising(&self) -> bool {
        self.init != Init::Ready
    }

    /// Whether the chip is in level-triggered mode (ICW1 LTIM).
    pub fn level_triggered(&self) -> bool {
        self.icw1 & ICW1_LTIM != 0
    }

    fn auto_eoi(&self) -> bool {
        self.icw4 & ICW4_AEOI != 0
    }

    /// Priority rank of an IR: 0 is the highest, 7 the lowest.
    fn rank(&self, ir: u8) -> u8 {
        ir.wrapping_sub(self.lowest).wrapping_sub(1) & 7
    }

    /// The highest-priority IR among `bits`.
    fn highest(&self, bits: u8) -> Option<u8> {
        (0..8u8)
            .filter(|ir| bits >> ir & 1 != 0)
            .min_by_key(|&ir| self.rank(ir))
    }

    /// The IR the chip would present on INT: the highest-priority unmasked
    /// request with a higher priority than everything in service. In
    /// special mask mode only unmasked in-service levels block; with
    /// special fully nested mode the `cascade` input does not block itself
    /// (data sheet, "Special Fully Nested Mode").
    fn pending(&self, cascade: Option<u8>) -> Option<u8> {
        let request = self.highest(self.irr & !self.imr)?;
        let mut blocking = if self.special_mask {
            self.isr & !self.imr
        } else {
            self.isr
        };
        if let Some(c) = cascade {
            if self.icw4 & ICW4_SFNM != 0 {
                blocking &= !(1 << c);
            }
        }
        match self.highest(blocking) {
            Some(s) if self.rank(s) <= self.rank(request) => None,
            _ => Some(request),
        }
    }

    /// The INTA cycle for `ir`: IRR to ISR (or straight to done under
    /// automatic EOI).
    fn ack(&mut self, ir: u8) {
        let bit = 1 << ir;
        if !self.level_triggered() {
            self.irr &= !bit;
        }
        if self.auto_eoi() {
            if self.rotate_on_aeoi {
                self.lowest = ir;
            }
        } else {
            self.isr |= bit;
        }
    }

    /// Drives input `ir` to `level`.
    fn set_line(&mut self, ir: u8, level: bool) {
        let bit = 1 << (ir & 7);
        if self.level_triggered() {
            if level {
                self.irr |= bit;
            } else {
                self.irr &= !bit;
            }
        } else if level && self.lines & bit == 0 {
            self.irr |= bit;
        }
        if level {
            self.lines |= bit;
        } else {
            self.lines &= !bit;
        }
    }

    /// Non-specific EOI: clears the highest-priority ISR bit.
    fn eoi(&mut self) -> Option<u8> {
        let ir = self.highest(self.isr)?;
        self.isr &= !(1 << ir);
        Some(ir)
    }

    fn write_command(&mut self, v: u8) {
        if v & ICW1 != 0 {
            self.icw1 = v;
            self.irr = 0;
            self.isr = 0;
            self.imr = 0;
            self.lowest = 7;
            self.special_mask = false;
            self.read_isr = false;
            self.poll = false;
            self.rotate_on_aeoi = false;
            if v & ICW1_IC4 == 0 {
                self.icw4 = 0;
            }
            self.init = Init::Icw2;
            // Level mode: requests are the input levels from now on.
            if self.level_triggered() {
                self.irr = self.lines;
            }
        } else if v & OCW3 != 0 {
            if v & OCW3_POLL != 0 {
                self.poll = true;
            }
            if v & OCW3_RR != 0 {
                self.read_isr = v & OCW3_RIS != 0;
            }
            if v & OCW3_ESMM != 0 {
                self.special_mask = v & OCW3_SMM != 0;
            }
        } else {
            let level = v & 7;
            match v >> 5 {
                // Non-specific EOI.
                0b001 => {
                    self.eoi();
                }
                // Specific EOI.
                0b011 => self.isr &= !(1 << level),
                // Rotate on non-specific EOI.
                0b101 => {
                    if let Some(ir) = self.eoi() {
                        self.lowest = ir;
                    }
                }
                // Rotate in automatic EOI mode: set / clear.
                0b100 => self.rotate_on_aeoi = true,
                0b000 => self.rotate_on_aeoi = false,
                // Rotate on specific EOI.
                0b111 => {
                    self.isr &= !(1 << level);
                    self.lowest = level;
                }
                // Set priority.
                0b110 => self.lowest = level,
                // 0b010: no operation.
                _ => {}
            }
        }
    }

    fn write_data(&mut self, v: u8) {
        match self.init {
            Init::Ready => self.imr = v,
            Init::Icw2 => {
                self.vector_base = v & 0xF8;
                self.init = if self.icw1 & ICW1_SNGL == 0 {
                    Init::Icw3
                } else {
                    self.after_icw3()
                };
            }
            Init::Icw3 => {
                self.icw3 = v;
                self.init = self.after_icw3();
            }
            Init::Icw4 => {
                self.icw4 = v;
                self.init = Init::Ready;
            }
        }
    }

    fn after_icw3(&self) -> Init {
        if self.icw1 & ICW1_IC4 != 0 {
            Init::Icw4
        } else {
            Init::Ready
        }
    }

    /// A read of port A0 = 0. A pending poll command makes this read the
    /// poll word (bit 7 set if an interrupt is pending, bits 2–0 its IR),
    /// and acknowledges that interrupt as an INTA would.
    fn read_status(&mut self, cascade: Option<u8>) -> u8 {
        if self.poll {
            self.poll = false;
            return match self.pending(cascade) {
                Some(ir) => {
                    self.ack(ir);
                    0x80 | ir
                }
                None => 0,
            };
        }
        if self.read_isr {
            self.isr
        } else {
            self.irr
        }
    }
}

/// The master–slave pair of a PC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DualPic {
    master: Pic8259,
    slave: Pic8259,
}

/// A [`DualPic`] shared between the port bus and the vCPU loop.
pub type SharedPic = Arc<Mutex<DualPic>>;

impl DualPic {
    /// Both chips in their reset state (see the module documentation).
    pub fn new() -> DualPic {
        DualPic::default()
    }

    /// A shared pair and its two port devices: register the first at
    /// [`PIC_MASTER_BASE`] and the second at [`PIC_SLAVE_BASE`], each
    /// [`PIC_LEN`] ports long.
    pub fn shared() -> (SharedPic, PicPorts, PicPorts) {
        let pic = Arc::new(Mutex::new(DualPic::new()));
        let master = PicPorts {
            pic: pic.clone(),
            slave: false,
        };
        let slave = PicPorts {
            pic: pic.clone(),
            slave: true,
        };
        (pic, master, slave)
    }

    /// The master chip.
    pub fn master(&self) -> &Pic8259 {
        &self.master
    }

    /// The slave chip.
    pub fn slave(&self) -> &Pic8259 {
        &self.slave
    }

    /// Drives ISA IRQ line `irq` (0–7 master, 8–15 slave) to `level`.
    /// Line 2 is the cascade input and cannot be driven; other numbers are
    /// ignored.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        match irq {
            PIC_CASCADE_IRQ => {}
            0..=7 => self.master.set_line(irq, level),
            8..=15 => {
                self.slave.set_line(irq - 8, level);
                self.update_cascade();
            }
            _ => {}
        }
    }

    /// Raises then lowers line `irq`: one edge, as an edge-triggered
    /// device (the PIT on IRQ0) signals an interrupt.
    pub fn pulse_irq(&mut self, irq: u8) {
        self.set_irq(irq, true);
        self.set_irq(irq, false);
    }

    /// The vector the pair would deliver on the next INTA, if its INT
    /// output is asserted: the master's highest-priority request, or
    /// through IR2 the slave's. `None` when INT is low.
    pub fn pending_vector(&self) -> Option<u8> {
        let ir = self.master.pending(Some(PIC_CASCADE_IRQ))?;
        if ir == PIC_CASCADE_IRQ {
            let s = self.slave.pending(None).unwrap_or(7);
            Some(self.slave.vector_base | s)
        } else {
            Some(self.master.vector_base | ir)
        }
    }

    /// The INTA sequence: acknowledges and returns the vector to deliver.
    /// With nothing pending (the request went away), the chip answers with
    /// its IR7 vector without setting ISR — the 8259A's spurious interrupt;
    /// the slave does the same when the master acknowledged IR2 for it.
    pub fn acknowledge(&mut self) -> u8 {
        let Some(ir) = self.master.pending(Some(PIC_CASCADE_IRQ)) else {
            return self.master.vector_base | 7;
        };
        self.master.ack(ir);
        if ir != PIC_CASCADE_IRQ {
            return self.master.vector_base | ir;
        }
        let vector = match self.slave.pending(None) {
            Some(s) => {
                self.slave.ack(s);
                self.slave.vector_base | s
            }
            None => self.slave.vector_base | 7,
        };
        self.update_cascade();
        vector
    }

    /// Propagates the slave's INT output to the master's IR2.
    fn update_cascade(&mut self) {
        let out = self.slave.pending(None).is_some();
        self.master.set_line(PIC_CASCADE_IRQ, out);
    }

    fn chip(&mut self, slave: bool) -> &mut Pic8259 {
        if slave {
            &mut self.slave
        } else {
            &mut self.master
        }
    }

    /// A byte read of port `offset` (0 or 1) of one chip.
    pub fn read_port(&mut self, slave: bool, offset: u16) -> u8 {
        let cascade = (!slave).then_some(PIC_CASCADE_IRQ);
        let chip = self.chip(slave);
        let v = if offset & 1 == 0 {
            chip.read_status(cascade)
        } else {
            chip.imr
        };
        self.update_cascade();
        v
    }

    /// A byte write of port `offset` (0 or 1) of one chip.
    pub fn write_port(&mut self, slave: bool, offset: u16, v: u8) {
        let chip = self.chip(slave);
        if offset & 1 == 0 {
            chip.write_command(v);
        } else {
            chip.write_data(v);
        }
        self.update_cascade();
    }
}

/// The port device of one chip of a [`SharedPic`]. Wider accesses are
/// carried out byte by byte at consecutive ports.
#[derive(Debug, Clone)]
pub struct PicPorts {
    pic: SharedPic,
    slave: bool,
}

impl PicPorts {
    fn lock(&self) -> MutexGuard<'_, DualPic> {
        // A panic elsewhere while holding the lock leaves plain data.
        self.pic.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PortDevice for PicPorts {
    fn name(&self) -> &str {
        if self.slave {
            "pic-slave"
        } else {
            "pic-master"
        }
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) {
        let slave = self.slave;
        let mut pic = self.lock();
        for (i, b) in data.iter_mut().enumerate() {
            *b = pic.read_port(slave, offset.wrapping_add(i as u16));
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        let slave = self.slave;
        let mut pic = self.lock();
        for (i, &b) in data.iter().enumerate() {
            pic.write_port(slave, offset.wrapping_add(i as u16), b);
        }
        DeviceAction::None
    }
}

#[cfg(test)]
mod tests;
