//! A local xAPIC: the register page at 0xFEE00000, interrupt acceptance and
//! the APIC timer (Intel SDM Vol. 3A, chapter "Advanced Programmable
//! Interrupt Controller (APIC)"; section titles are quoted because their
//! numbers moved between editions).
//!
//! # Time
//!
//! Every operation that can observe or change the timer takes the vCPU's
//! current virtual TSC (`now_tsc`). The timer's input clock is the core
//! crystal clock, as on parts that enumerate CPUID.15H ("APIC Timer": the
//! timer runs at the bus / core crystal clock); [`TimerClock`] carries the
//! TSC / crystal ratio (the soft CPU's default is 80 / 1: a 25 MHz crystal,
//! a 2 GHz TSC). TSC-deadline mode compares `now_tsc` with IA32_TSC_DEADLINE
//! directly. The caller runs [`Lapic::advance`] when virtual time has moved
//! (and before asking for [`Lapic::pending_vector`]), and may use
//! [`Lapic::next_deadline`] as the horizon of a preemption timer.
//!
//! # What is modelled
//!
//! * Version register 0x00050014: integrated APIC version 0x14, Max LVT
//!   Entry 5 (six LVT entries: timer, thermal, performance counters, LINT0,
//!   LINT1, error; no CMCI at 0x2F0), no EOI-broadcast suppression.
//! * Interrupt acceptance ("Interrupt, Task, and Processor Priority"):
//!   the highest IRR vector whose priority class is above PPR's is
//!   delivered; acknowledging moves it to ISR; EOI clears the highest ISR
//!   bit. PPR is computed from TPR and the highest ISR vector.
//! * The timer in one-shot, periodic and TSC-deadline modes.
//! * ICR: IPIs that target this APIC with fixed or lowest-priority delivery
//!   are accepted at once (self-IPIs); everything else (other
//!   destinations, NMI, INIT, SIPI, SMI) is queued for the integrator
//!   ([`Lapic::take_ipis`]). The delivery-status bit always reads idle.
//! * ESR, with send/receive illegal vector (bits 5, 6) and illegal register
//!   address (bit 7), and the LVT error interrupt.
//! * IA32_APIC_BASE: base, BSP (read-only), global enable; no x2APIC.
//!
//! LINT0/LINT1, thermal and performance-counter entries are registers only:
//! the integrator decides what their pins do (see [`Lapic::extint_enabled`]
//! for the PIC's path through LINT0).
//!
//! # Access widths
//!
//! SDM "Local APIC Register Address Map": registers are 32 bits wide on
//! 16-byte boundaries and should be accessed with aligned 32-bit loads and
//! stores; narrower accesses are model specific. [`Lapic::mmio_read`]
//! returns the addressed bytes of any read (bytes 4–15 of a 16-byte slot
//! read as 0); [`Lapic::mmio_write`] performs only 32-bit writes at a
//! register's offset and ignores the rest.

#![forbid(unsafe_code)]

mod timer;

use timer::Counting;
pub use timer::{divisor, TimerClock};

pub use x86::apic::{
    BASE_BSP as APIC_BASE_BSP, BASE_ENABLE as APIC_BASE_ENABLE, BASE_EXTD as APIC_BASE_EXTD,
    DEFAULT_BASE as APIC_DEFAULT_BASE,
};
pub use x86::msr::{APIC_BASE as MSR_APIC_BASE, TSC_DEADLINE as MSR_TSC_DEADLINE};

/// Size of the APIC register page.
pub const APIC_PAGE_LEN: u64 = 0x1000;
/// The version register's value: version 0x14, Max LVT Entry 5.
pub const APIC_VERSION: u32 = 0x0005_0014;

/// CPUID.1:EDX bit 9: the processor has an on-chip APIC.
pub const CPUID1_EDX_APIC: u32 = 1 << 9;
/// CPUID.1:ECX bit 21: x2APIC. This model has none: no x2APIC MSRs
/// (0x800–0x8FF) and no EXTD mode in IA32_APIC_BASE.
pub const CPUID1_ECX_X2APIC: u32 = 1 << 21;
/// CPUID.1:ECX bit 24: the timer's TSC-deadline mode (IA32_TSC_DEADLINE).
pub const CPUID1_ECX_TSC_DEADLINE: u32 = 1 << 24;

/// CPUID leaf 1's ECX and EDX with the APIC bits set to what this model
/// offers, whatever the processor under it reports: an xAPIC, never
/// x2APIC, and TSC-deadline mode where the integrator routes
/// IA32_TSC_DEADLINE to the model (`tsc_deadline_msr`). Every accelerator
/// passes its leaf 1 through here, so they all offer the same APIC.
pub fn cpuid_leaf1(ecx: u32, edx: u32, tsc_deadline_msr: bool) -> (u32, u32) {
    let mut ecx = ecx & !(CPUID1_ECX_X2APIC | CPUID1_ECX_TSC_DEADLINE);
    if tsc_deadline_msr {
        ecx |= CPUID1_ECX_TSC_DEADLINE;
    }
    (ecx, edx | CPUID1_EDX_APIC)
}

/// Register offsets in the APIC page.
pub mod reg {
    /// Local APIC ID.
    pub const ID: u32 = 0x20;
    /// Local APIC version.
    pub const VERSION: u32 = 0x30;
    /// Task priority.
    pub const TPR: u32 = 0x80;
    /// Arbitration priority (reads 0: not used since the Pentium 4).
    pub const APR: u32 = 0x90;
    /// Processor priority.
    pub const PPR: u32 = 0xA0;
    /// End of interrupt.
    pub const EOI: u32 = 0xB0;
    /// Remote read (reads 0).
    pub const RRD: u32 = 0xC0;
    /// Logical destination.
    pub const LDR: u32 = 0xD0;
    /// Destination format.
    pub const DFR: u32 = 0xE0;
    /// Spurious-interrupt vector.
    pub const SVR: u32 = 0xF0;
    /// In-service register, eight 32-bit words 0x100–0x170.
    pub const ISR: u32 = 0x100;
    /// Trigger-mode register, 0x180–0x1F0.
    pub const TMR: u32 = 0x180;
    /// Interrupt request register, 0x200–0x270.
    pub const IRR: u32 = 0x200;
    /// Error status.
    pub const ESR: u32 = 0x280;
    /// Interrupt command, low half (writing it sends the IPI).
    pub const ICR_LOW: u32 = 0x300;
    /// Interrupt command, high half (destination).
    pub const ICR_HIGH: u32 = 0x310;
    /// LVT timer.
    pub const LVT_TIMER: u32 = 0x320;
    /// LVT thermal sensor.
    pub const LVT_THERMAL: u32 = 0x330;
    /// LVT performance-monitoring counters.
    pub const LVT_PERF: u32 = 0x340;
    /// LVT LINT0.
    pub const LVT_LINT0: u32 = 0x350;
    /// LVT LINT1.
    pub const LVT_LINT1: u32 = 0x360;
    /// LVT error.
    pub const LVT_ERROR: u32 = 0x370;
    /// Timer initial count.
    pub const TIMER_INITIAL: u32 = 0x380;
    /// Timer current count (read-only).
    pub const TIMER_CURRENT: u32 = 0x390;
    /// Timer divide configuration.
    pub const TIMER_DIVIDE: u32 = 0x3E0;
}

/// ESR bit 5: send illegal vector.
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
/// ESR bit 6: receive illegal vector.
pub const ESR_RECV_ILLEGAL_VECTOR: u32 = 1 << 6;
/// ESR bit 7: illegal register address.
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

/// LVT mask bit.
const LVT_MASKED: u32 = 1 << 16;
/// LVT timer mode field (bits 18:17).
const TIMER_MODE_SHIFT: u32 = 17;
const TIMER_PERIODIC: u32 = 1;
const TIMER_TSC_DEADLINE: u32 = 2;
/// Writable bits of each LVT entry, in [`Lvt`] order.
const LVT_WRITABLE: [u32; 6] = [
    0x0007_00FF, // timer: vector, mask, mode
    0x0001_07FF, // thermal: vector, delivery mode, mask
    0x0001_07FF, // performance counters
    0x0001_A7FF, // LINT0: vector, delivery mode, polarity, trigger, mask
    0x0001_A7FF, // LINT1
    0x0001_00FF, // error: vector, mask
];
const SVR_ENABLE: u32 = 1 << 8;
/// SVR bits 0–9: vector, software enable, focus processor checking.
const SVR_WRITABLE: u32 = 0x3FF;
/// ICR low: vector, delivery mode, destination mode, level, trigger,
/// shorthand (delivery status is read-only).
const ICR_LOW_WRITABLE: u32 = 0x000C_CFFF;
const DELIVERY_FIXED: u32 = 0;
const DELIVERY_LOWEST: u32 = 1;
const DELIVERY_EXTINT: u32 = 7;

/// The six LVT entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lvt {
    Timer = 0,
    Thermal,
    Perf,
    Lint0,
    Lint1,
    Error,
}

impl Lvt {
    fn at(offset: u32) -> Option<Lvt> {
        Some(match offset {
            reg::LVT_TIMER => Lvt::Timer,
            reg::LVT_THERMAL => Lvt::Thermal,
            reg::LVT_PERF => Lvt::Perf,
            reg::LVT_LINT0 => Lvt::Lint0,
            reg::LVT_LINT1 => Lvt::Lint1,
            reg::LVT_ERROR => Lvt::Error,
            _ => return None,
        })
    }
}

/// The timer modes of the LVT timer register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerMode {
    /// Counts the initial count down once.
    OneShot,
    /// Reloads the initial count at every expiry.
    Periodic,
    /// Fires when the TSC reaches IA32_TSC_DEADLINE.
    TscDeadline,
}

/// Parameters of a local APIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LapicConfig {
    /// The APIC ID.
    pub apic_id: u8,
    /// Whether this is the bootstrap processor (IA32_APIC_BASE bit 8).
    pub bsp: bool,
    /// MAXPHYADDR: base bits at and above it are reserved.
    pub max_phys_addr_bits: u8,
    /// The timer's input clock relative to the TSC.
    pub clock: TimerClock,
}

impl Default for LapicConfig {
    /// APIC 0, the BSP, 46 physical address bits (the soft CPU's
    /// CPUID.80000008H), the soft CPU's default crystal ratio.
    fn default() -> Self {
        LapicConfig {
            apic_id: 0,
            bsp: true,
            max_phys_addr_bits: 46,
            clock: TimerClock::default(),
        }
    }
}

/// A WRMSR the APIC refuses: the caller injects #GP(0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApicBaseError {
    /// Reserved bits set (including x2APIC enable, which this APIC lacks).
    Reserved(u64),
}

impl std::fmt::Display for ApicBaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApicBaseError::Reserved(v) => {
                write!(f, "IA32_APIC_BASE write {v:#x} sets reserved bits")
            }
        }
    }
}

impl std::error::Error for ApicBaseError {}

/// An IPI for the integrator to route: one that may reach other APICs
/// (any shorthand but self, a logical or foreign physical destination), or
/// a non-fixed delivery mode (NMI / INIT / SIPI / SMI) aimed at this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipi {
    /// ICR bits 31:0 as written (delivery status clear).
    pub icr_low: u32,
    /// ICR bits 63:32 (destination in bits 31:24).
    pub icr_high: u32,
    /// Whether the integrator must deliver it to this vCPU too: this APIC
    /// is a destination of a non-fixed delivery mode (NMI, INIT, SIPI, SMI).
    /// Fixed and lowest-priority IPIs to this APIC are already in its IRR.
    pub deliver_to_self: bool,
}

impl Ipi {
    /// The vector (bits 7:0).
    pub fn vector(&self) -> u8 {
        self.icr_low.to_le_bytes()[0]
    }

    /// The delivery mode (bits 10:8): 0 fixed, 1 lowest priority, 2 SMI,
    /// 4 NMI, 5 INIT, 6 start-up.
    pub fn delivery_mode(&self) -> u8 {
        (self.icr_low >> 8 & 7).to_le_bytes()[0]
    }

    /// The destination shorthand (bits 19:18): 0 none, 1 self, 2 all
    /// including self, 3 all excluding self.
    pub fn shorthand(&self) -> u8 {
        (self.icr_low >> 18 & 3).to_le_bytes()[0]
    }
}

/// A local xAPIC.
#[derive(Debug, Clone)]
pub struct Lapic {
    cfg: LapicConfig,
    base_msr: u64,
    id: u32,
    tpr: u32,
    ldr: u32,
    dfr: u32,
    svr: u32,
    irr: [u32; 8],
    isr: [u32; 8],
    tmr: [u32; 8],
    /// The ESR as last made visible by a write to it.
    esr: u32,
    /// Errors detected since the last ESR write.
    esr_pending: u32,
    icr_low: u32,
    icr_high: u32,
    lvt: [u32; 6],
    divide: u32,
    counting: Counting,
    /// IA32_TSC_DEADLINE (0: disarmed).
    deadline: u64,
    ipis: Vec<Ipi>,
}

impl Lapic {
    /// An APIC after power-up: enabled at [`APIC_DEFAULT_BASE`], registers
    /// in their reset state (software-disabled, LVTs masked).
    pub fn new(cfg: LapicConfig) -> Lapic {
        let mut base_msr = APIC_DEFAULT_BASE | APIC_BASE_ENABLE;
        if cfg.bsp {
            base_msr |= APIC_BASE_BSP;
        }
        let mut apic = Lapic {
            cfg,
            base_msr,
            id: 0,
            tpr: 0,
            ldr: 0,
            dfr: 0,
            svr: 0,
            irr: [0; 8],
            isr: [0; 8],
            tmr: [0; 8],
            esr: 0,
            esr_pending: 0,
            icr_low: 0,
            icr_high: 0,
            lvt: [0; 6],
            divide: 0,
            counting: Counting::default(),
            deadline: 0,
            ipis: Vec::new(),
        };
        apic.reset_registers();
        apic
    }

    /// SDM "Local APIC State After Power-Up or Reset": IRR, ISR, TMR, ICR,
    /// LDR and TPR cleared; timer counts 0; DFR all ones; LVT entries 0 with
    /// the mask bit set; SVR 0xFF; the ID back to the configured one. ESR,
    /// the divide configuration and the TSC deadline are cleared too.
    fn reset_registers(&mut self) {
        self.id = u32::from(self.cfg.apic_id) << 24;
        self.tpr = 0;
        self.ldr = 0;
        self.dfr = u32::MAX;
        self.svr = 0xFF;
        self.irr = [0; 8];
        self.isr = [0; 8];
        self.tmr = [0; 8];
        self.esr = 0;
        self.esr_pending = 0;
        self.icr_low = 0;
        self.icr_high = 0;
        self.lvt = [LVT_MASKED; 6];
        self.divide = 0;
        self.counting = Counting::default();
        self.deadline = 0;
    }

    /// IA32_APIC_BASE as RDMSR returns it.
    pub fn apic_base(&self) -> u64 {
        self.base_msr
    }

    /// WRMSR to IA32_APIC_BASE. Reserved bits (0–7, 9, 10 — no x2APIC —
    /// and those at or above MAXPHYADDR) refuse the write. The BSP bit is
    /// read-only. Clearing the global enable resets the registers, as SDM
    /// "Enabling or Disabling the Local APIC" allows ("the APIC may return
    /// to the state described in Local APIC State After Power-Up or
    /// Reset"); re-enabling finds them in that state.
    pub fn write_apic_base(&mut self, value: u64) -> Result<(), ApicBaseError> {
        let bits = u32::from(self.cfg.max_phys_addr_bits.clamp(32, 52));
        let valid = (((1u64 << bits) - 1) & !0xFFF) | APIC_BASE_BSP | APIC_BASE_ENABLE;
        if value & !valid != 0 {
            return Err(ApicBaseError::Reserved(value));
        }
        let was_enabled = self.enabled();
        self.base_msr = (value & !APIC_BASE_BSP) | (self.base_msr & APIC_BASE_BSP);
        if was_enabled && !self.enabled() {
            self.reset_registers();
            self.ipis.clear();
        }
        Ok(())
    }

    /// Whether the APIC is globally enabled (IA32_APIC_BASE bit 11).
    pub fn enabled(&self) -> bool {
        self.base_msr & APIC_BASE_ENABLE != 0
    }

    /// Whether the APIC is software-enabled (SVR bit 8).
    pub fn software_enabled(&self) -> bool {
        self.svr & SVR_ENABLE != 0
    }

    /// The guest-physical base of the register page while the APIC is
    /// enabled; `None` when it is globally disabled (the page then is not
    /// decoded and accesses go to memory).
    pub fn mmio_base(&self) -> Option<u64> {
        self.enabled().then_some(self.base_msr & !0xFFF)
    }

    /// The offset in the register page of guest-physical `gpa`, when the
    /// enabled APIC decodes it: the address claim of an accelerator's
    /// MMIO path (SDM "Relocating the Local APIC Registers").
    pub fn page_offset(&self, gpa: u64) -> Option<u64> {
        let base = self.mmio_base()?;
        (gpa >= base && gpa < base + APIC_PAGE_LEN).then(|| gpa - base)
    }

    /// Whether the register page holds guest-physical `gpa`.
    pub fn claims(&self, gpa: u64) -> bool {
        self.page_offset(gpa).is_some()
    }

    /// The current timer mode (LVT timer bits 18:17; the reserved value 3
    /// behaves as one-shot).
    pub fn timer_mode(&self) -> TimerMode {
        match self.lvt[Lvt::Timer as usize] >> TIMER_MODE_SHIFT & 3 {
            TIMER_PERIODIC => TimerMode::Periodic,
            TIMER_TSC_DEADLINE => TimerMode::TscDeadline,
            _ => TimerMode::OneShot,
        }
    }

    /// The task priority register.
    pub fn tpr(&self) -> u8 {
        self.tpr.to_le_bytes()[0]
    }

    /// The processor priority (SDM "Processor Priority Register (PPR)"):
    /// TPR if its class is at least that of the highest in-service vector,
    /// else that vector's class with a zero sub-class.
    pub fn ppr(&self) -> u8 {
        let isrv = highest(&self.isr).unwrap_or(0);
        let tpr = self.tpr();
        if tpr & 0xF0 >= isrv & 0xF0 {
            tpr
        } else {
            isrv & 0xF0
        }
    }

    /// Whether `vector` is set in the IRR.
    pub fn irr_bit(&self, vector: u8) -> bool {
        test(&self.irr, vector)
    }

    /// Whether `vector` is set in the ISR.
    pub fn isr_bit(&self, vector: u8) -> bool {
        test(&self.isr, vector)
    }

    /// Whether PIC interrupts (ExtINT on LINT0) reach the processor: with
    /// the APIC globally disabled the INTR pin is wired straight through;
    /// otherwise LVT LINT0 must be unmasked with ExtINT delivery.
    pub fn extint_enabled(&self) -> bool {
        if !self.enabled() {
            return true;
        }
        let lint0 = self.lvt[Lvt::Lint0 as usize];
        lint0 & LVT_MASKED == 0 && lint0 >> 8 & 7 == DELIVERY_EXTINT
    }

    /// Accepts an interrupt from outside (an I/O APIC, MSI, the
    /// integrator): sets its IRR bit, and its TMR bit if level-triggered.
    /// Vectors 0–15 are illegal: not accepted, ESR bit 6 (SDM "Error
    /// Handling"). Returns whether it was accepted; a globally disabled
    /// APIC accepts nothing.
    pub fn accept_interrupt(&mut self, vector: u8, level_triggered: bool) -> bool {
        if !self.enabled() {
            return false;
        }
        if vector < 16 {
            self.record_error(ESR_RECV_ILLEGAL_VECTOR);
            return false;
        }
        set(&mut self.irr, vector, true);
        set(&mut self.tmr, vector, level_triggered);
        true
    }

    /// The vector the APIC would deliver now: the highest IRR vector whose
    /// priority class (bits 7:4) is above PPR's.
    pub fn pending_vector(&self) -> Option<u8> {
        if !self.enabled() {
            return None;
        }
        let v = highest(&self.irr)?;
        (v & 0xF0 > self.ppr() & 0xF0).then_some(v)
    }

    /// The interrupt acknowledge: moves the pending vector from IRR to ISR
    /// and returns it. With nothing deliverable (the priority rose since
    /// the request was seen) it returns the spurious vector (SVR bits 7:0)
    /// and changes nothing (SDM "Spurious Interrupt").
    pub fn acknowledge(&mut self) -> u8 {
        match self.pending_vector() {
            Some(v) => {
                set(&mut self.irr, v, false);
                set(&mut self.isr, v, true);
                v
            }
            None => self.svr.to_le_bytes()[0],
        }
    }

    /// An EOI: clears the highest ISR bit (and its TMR bit). Returns the
    /// vector, if any was in service.
    pub fn eoi(&mut self) -> Option<u8> {
        let v = highest(&self.isr)?;
        set(&mut self.isr, v, false);
        set(&mut self.tmr, v, false);
        Some(v)
    }

    /// Takes the IPIs the APIC could not deliver itself, oldest first.
    pub fn take_ipis(&mut self) -> Vec<Ipi> {
        std::mem::take(&mut self.ipis)
    }

    /// Sets ESR bits and raises the LVT error interrupt for new errors.
    fn record_error(&mut self, bits: u32) {
        let new = bits & !self.esr_pending;
        self.esr_pending |= bits;
        let lvt = self.lvt[Lvt::Error as usize];
        if new != 0 && lvt & LVT_MASKED == 0 {
            let vector = lvt.to_le_bytes()[0];
            if vector < 16 {
                // No second error interrupt for the error vector itself.
                self.esr_pending |= ESR_RECV_ILLEGAL_VECTOR;
            } else {
                set(&mut self.irr, vector, true);
                set(&mut self.tmr, vector, false);
            }
        }
    }

    /// Delivers a locally generated interrupt through an LVT entry (fixed
    /// delivery, edge-triggered).
    fn deliver_lvt(&mut self, which: Lvt) {
        let lvt = self.lvt[which as usize];
        if lvt & LVT_MASKED != 0 {
            return;
        }
        let vector = lvt.to_le_bytes()[0];
        if vector < 16 {
            self.record_error(ESR_RECV_ILLEGAL_VECTOR);
        } else {
            set(&mut self.irr, vector, true);
            set(&mut self.tmr, vector, false);
        }
    }

    fn crystal(&self, tsc: u64) -> u64 {
        self.cfg.clock.crystal_at(tsc)
    }

    fn periodic(&self) -> bool {
        self.timer_mode() == TimerMode::Periodic
    }

    /// Brings the timer up to `now_tsc`: an expiry at or before it sets the
    /// timer vector in IRR (unless masked; several coalesce). One-shot
    /// timers stop at 0, periodic ones reload, a TSC deadline disarms
    /// itself and clears the MSR (SDM "TSC-Deadline Mode").
    pub fn advance(&mut self, now_tsc: u64) {
        if !self.enabled() {
            return;
        }
        let fired = if self.timer_mode() == TimerMode::TscDeadline {
            let due = self.deadline != 0 && now_tsc >= self.deadline;
            if due {
                self.deadline = 0;
            }
            due
        } else {
            let c = self.crystal(now_tsc);
            let periodic = self.periodic();
            self.counting.expire(c, periodic)
        };
        if fired {
            self.deliver_lvt(Lvt::Timer);
        }
    }

    /// The TSC value of the next timer interrupt, if one is armed and
    /// unmasked: a horizon for the run loop. It may be in the past when
    /// [`Lapic::advance`] has not run yet.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.enabled() || self.lvt[Lvt::Timer as usize] & LVT_MASKED != 0 {
            return None;
        }
        if self.timer_mode() == TimerMode::TscDeadline {
            return (self.deadline != 0).then_some(self.deadline);
        }
        self.counting
            .next()
            .map(|c| self.cfg.clock.tsc_of_crystal(c))
    }

    /// The rule for a HLT at `now_tsc` (after [`Lapic::advance`]): the TSC
    /// value at which an interrupt will wake the processor — `now_tsc` when
    /// one is deliverable already, the timer's next deadline when it is
    /// armed — or `None` when nothing the APIC sends can: no interrupt to
    /// come, or `interrupts_enabled` (RFLAGS.IF) false, so that the HLT
    /// ends the run instead of waiting (SDM Vol. 2A, HLT: only an enabled
    /// interrupt, NMI, SMI, INIT or reset resumes execution).
    pub fn halt_wakeup(&mut self, now_tsc: u64, interrupts_enabled: bool) -> Option<u64> {
        self.advance(now_tsc);
        if !interrupts_enabled {
            return None;
        }
        if self.pending_vector().is_some() {
            return Some(now_tsc);
        }
        self.next_deadline()
    }

    /// RDMSR IA32_TSC_DEADLINE: the armed deadline, 0 when disarmed or
    /// outside TSC-deadline mode.
    pub fn tsc_deadline(&self) -> u64 {
        if self.timer_mode() == TimerMode::TscDeadline {
            self.deadline
        } else {
            0
        }
    }

    /// WRMSR IA32_TSC_DEADLINE: arms the timer (0 disarms). Ignored outside
    /// TSC-deadline mode (SDM "TSC-Deadline Mode"). A deadline already
    /// passed fires at the next [`Lapic::advance`].
    pub fn write_tsc_deadline(&mut self, value: u64, now_tsc: u64) {
        self.advance(now_tsc);
        if self.timer_mode() == TimerMode::TscDeadline {
            self.deadline = value;
        }
    }

    /// Reads the 32-bit register at `offset` (16-byte aligned within the
    /// page). Unimplemented offsets read 0 and set ESR bit 7.
    pub fn read_register(&mut self, offset: u32, now_tsc: u64) -> u32 {
        if offset & 0xF != 0 || u64::from(offset) >= APIC_PAGE_LEN {
            self.record_error(ESR_ILLEGAL_REGISTER);
            return 0;
        }
        let words = |r: &[u32; 8]| r.get(((offset >> 4) & 7) as usize).copied().unwrap_or(0);
        match offset {
            reg::ID => self.id,
            reg::VERSION => APIC_VERSION,
            reg::TPR => self.tpr,
            reg::APR | reg::EOI | reg::RRD => 0,
            reg::PPR => u32::from(self.ppr()),
            reg::LDR => self.ldr,
            reg::DFR => self.dfr,
            reg::SVR => self.svr,
            0x100..=0x170 => words(&self.isr),
            0x180..=0x1F0 => words(&self.tmr),
            0x200..=0x270 => words(&self.irr),
            reg::ESR => self.esr,
            reg::ICR_LOW => self.icr_low,
            reg::ICR_HIGH => self.icr_high,
            reg::TIMER_INITIAL => self.counting.initial,
            reg::TIMER_CURRENT => {
                if self.timer_mode() == TimerMode::TscDeadline {
                    0
                } else {
                    let periodic = self.periodic();
                    self.counting.current(self.crystal(now_tsc), periodic)
                }
            }
            reg::TIMER_DIVIDE => self.divide,
            o => match Lvt::at(o) {
                Some(l) => self.lvt[l as usize],
                None => {
                    self.record_error(ESR_ILLEGAL_REGISTER);
                    0
                }
            },
        }
    }

    /// Writes the 32-bit register at `offset` (16-byte aligned within the
    /// page). Read-only registers ignore writes; unimplemented offsets set
    /// ESR bit 7.
    pub fn write_register(&mut self, offset: u32, value: u32, now_tsc: u64) {
        if offset & 0xF != 0 || u64::from(offset) >= APIC_PAGE_LEN {
            self.record_error(ESR_ILLEGAL_REGISTER);
            return;
        }
        // Expiries due before this write happen under the old settings.
        self.advance(now_tsc);
        let now = self.crystal(now_tsc);
        match offset {
            reg::ID => self.id = value & 0xFF00_0000,
            reg::TPR => self.tpr = value & 0xFF,
            reg::EOI => {
                self.eoi();
            }
            reg::LDR => self.ldr = value & 0xFF00_0000,
            reg::DFR => self.dfr = value | 0x0FFF_FFFF,
            reg::SVR => {
                self.svr = value & SVR_WRITABLE;
                if !self.software_enabled() {
                    // SDM "Software Enabling and Disabling the Local APIC":
                    // disabling sets every LVT mask bit.
                    for l in &mut self.lvt {
                        *l |= LVT_MASKED;
                    }
                }
            }
            reg::ESR => {
                // The write makes the errors since the last write visible.
                self.esr = self.esr_pending;
                self.esr_pending = 0;
            }
            reg::ICR_LOW => {
                self.icr_low = value & ICR_LOW_WRITABLE;
                self.send_ipi();
            }
            reg::ICR_HIGH => self.icr_high = value & 0xFF00_0000,
            reg::TIMER_INITIAL => {
                if self.timer_mode() != TimerMode::TscDeadline {
                    self.counting.start(value, divisor(self.divide), now);
                }
            }
            reg::TIMER_DIVIDE => {
                self.divide = value & 0xB;
                let periodic = self.periodic();
                self.counting.rebase(now, divisor(self.divide), periodic);
            }
            reg::VERSION | reg::APR | reg::PPR | reg::RRD | reg::TIMER_CURRENT => {}
            0x100..=0x270 => {}
            o => match Lvt::at(o) {
                Some(l) => self.write_lvt(l, value, now),
                None => self.record_error(ESR_ILLEGAL_REGISTER),
            },
        }
    }

    fn write_lvt(&mut self, which: Lvt, value: u32, now: u64) {
        let mut v = value & LVT_WRITABLE[which as usize];
        if !self.software_enabled() {
            // The mask bits cannot be cleared while software-disabled.
            v |= LVT_MASKED;
        }
        // Remote IRR (bit 14) and delivery status are read-only.
        let kept = self.lvt[which as usize] & !LVT_WRITABLE[which as usize] & (1 << 14);
        let old_mode = self.timer_mode();
        self.lvt[which as usize] = v | kept;
        if which != Lvt::Timer {
            return;
        }
        let new_mode = self.timer_mode();
        let deadline = TimerMode::TscDeadline;
        if (old_mode == deadline) != (new_mode == deadline) {
            // Entering or leaving TSC-deadline mode disarms the timer.
            self.counting.stop(true);
            self.deadline = 0;
        } else if old_mode != new_mode {
            // One-shot <-> periodic: the count in progress runs on and the
            // new mode applies when it reaches zero.
            let periodic = old_mode == TimerMode::Periodic;
            self.counting.rebase(now, divisor(self.divide), periodic);
        }
    }

    /// Whether the ICR's destination includes this APIC.
    fn ipi_targets_self(&self) -> bool {
        match self.icr_low >> 18 & 3 {
            1 | 2 => true,
            3 => false,
            _ => {
                let dest = self.icr_high >> 24;
                let logical = self.icr_low & (1 << 11) != 0;
                if !logical {
                    return dest == 0xFF || dest == self.id >> 24;
                }
                let ldr = self.ldr >> 24;
                if self.dfr >> 28 == 0xF {
                    // Flat model: a bit per APIC.
                    dest & ldr != 0
                } else {
                    // Cluster model: cluster in bits 7:4 (0xF all), a bit
                    // per APIC in bits 3:0.
                    (dest >> 4 == 0xF || dest >> 4 == ldr >> 4) && dest & ldr & 0xF != 0
                }
            }
        }
    }

    fn send_ipi(&mut self) {
        let mode = self.icr_low >> 8 & 7;
        let vector = self.icr_low.to_le_bytes()[0];
        let shorthand = self.icr_low >> 18 & 3;
        let logical = self.icr_low & (1 << 11) != 0;
        let to_self = self.ipi_targets_self();
        let self_only =
            shorthand == 1 || (shorthand == 0 && !logical && self.icr_high >> 24 == self.id >> 24);
        let fixed = mode == DELIVERY_FIXED || mode == DELIVERY_LOWEST;
        if fixed && vector < 16 {
            // SDM "Error Handling": the sender flags the illegal vector, and
            // so does this APIC when it is also a receiver.
            let mut bits = ESR_SEND_ILLEGAL_VECTOR;
            if to_self {
                bits |= ESR_RECV_ILLEGAL_VECTOR;
            }
            self.record_error(bits);
            return;
        }
        if fixed && to_self {
            set(&mut self.irr, vector, true);
            let level = self.icr_low & (1 << 15) != 0;
            set(&mut self.tmr, vector, level);
        }
        if !self_only || !fixed {
            self.ipis.push(Ipi {
                icr_low: self.icr_low,
                icr_high: self.icr_high,
                deliver_to_self: to_self && !fixed,
            });
        }
    }

    /// An MMIO read of `data.len()` bytes at `offset` in the page. Bytes 0–3
    /// of each 16-byte slot are the register's; bytes 4–15 and offsets past
    /// the page read 0.
    pub fn mmio_read(&mut self, offset: u64, data: &mut [u8], now_tsc: u64) {
        let mut cached: Option<(u64, [u8; 4])> = None;
        for (i, b) in data.iter_mut().enumerate() {
            let at = offset.saturating_add(i as u64);
            let (slot, within) = (at & !0xF, at & 0xF);
            *b = 0;
            if at >= APIC_PAGE_LEN || within >= 4 {
                continue;
            }
            let bytes = match cached {
                Some((s, bytes)) if s == slot => bytes,
                _ => {
                    let v = self.read_register(u32::try_from(slot).unwrap_or(0), now_tsc);
                    let bytes = v.to_le_bytes();
                    cached = Some((slot, bytes));
                    bytes
                }
            };
            *b = bytes.get(within as usize).copied().unwrap_or(0);
        }
    }

    /// An MMIO write at `offset` in the page: only a 4-byte write at a
    /// register's offset (16-byte aligned) takes effect.
    pub fn mmio_write(&mut self, offset: u64, data: &[u8], now_tsc: u64) {
        if let (Ok(bytes), true) = (<[u8; 4]>::try_from(data), offset & 0xF == 0) {
            if offset < APIC_PAGE_LEN {
                let value = u32::from_le_bytes(bytes);
                self.write_register(u32::try_from(offset).unwrap_or(0), value, now_tsc);
            }
        }
    }
}

/// The highest vector set in a 256-bit register.
fn highest(bits: &[u32; 8]) -> Option<u8> {
    (0..8).rev().find_map(|w| {
        let word = bits[w];
        (word != 0).then(|| {
            let v = w * 32 + 31 - word.leading_zeros() as usize;
            u8::try_from(v).unwrap_or(u8::MAX)
        })
    })
}

fn test(bits: &[u32; 8], v: u8) -> bool {
    bits[usize::from(v >> 5)] >> (v & 31) & 1 != 0
}

fn set(bits: &mut [u32; 8], v: u8, on: bool) {
    let word = &mut bits[usize::from(v >> 5)];
    if on {
        *word |= 1 << (v & 31);
    } else {
        *word &= !(1 << (v & 31));
    }
}

#[cfg(test)]
mod tests;
