//! [`SoftControl`]: the host's handle on a soft vCPU (exit requests, timer
//! ticks, the watchdog's view, the power switch).

use super::tally::Tally;
use accel::{ExitTally, Stopwatch, VcpuControl};
use lapic::TimerClock;
use softcpu::{Kicker, PowerSwitch};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Shared between the vCPU's thread (inside `run()`) and the host's threads.
#[derive(Debug)]
pub struct SoftControl {
    /// The CPU's external-interrupt line: a host interrupt.
    kick: Kicker,
    /// The machine's power switch.
    power: PowerSwitch,
    /// The CPU's NMI pin.
    nmi: Kicker,
    /// Userspace wants `run()` to return.
    exit_requested: AtomicBool,
    /// Runs while the vCPU is in the guest: since its last VM entry.
    in_guest: Stopwatch,
    /// Virtual time (core cycles) at the last VM exit.
    exit_cycles: AtomicU64,
    /// The CPU's clocks: virtual time (TSC cycles) to nanoseconds.
    clock: TimerClock,
    /// Exits and stretches in the guest, for the host's samples.
    tally: Tally,
}

impl SoftControl {
    pub(crate) fn new(kick: Kicker, power: PowerSwitch, nmi: Kicker, clock: TimerClock) -> Self {
        SoftControl {
            kick,
            power,
            nmi,
            exit_requested: AtomicBool::new(false),
            in_guest: Stopwatch::new(),
            exit_cycles: AtomicU64::new(0),
            clock,
            tally: Tally::default(),
        }
    }

    /// Nanoseconds of `cycles` core cycles.
    pub(crate) fn ns_of(&self, cycles: u64) -> u64 {
        self.clock.ns_of_tsc(cycles)
    }

    /// The first TSC value at or after virtual time `ns`
    /// (`TimerClock::tsc_at_ns`).
    pub(crate) fn tsc_at_ns(&self, ns: u64) -> u64 {
        self.clock.tsc_at_ns(ns)
    }

    /// Records the virtual time of a VM exit.
    pub(crate) fn note_exit_cycles(&self, cycles: u64) {
        self.exit_cycles.store(cycles, Ordering::Release);
    }

    /// Records a VM entry.
    pub(crate) fn entering_guest(&self) {
        self.in_guest.start();
    }

    /// Records the return to L0; returns the host time spent in the guest.
    pub(crate) fn back_in_l0(&self) -> Duration {
        self.in_guest.stop().unwrap_or_default()
    }

    /// Counts a stretch of `d` in the guest (a VM entry to the VM exit
    /// that brought the CPU back to L0).
    pub(crate) fn count_stretch(&self, d: Duration) {
        self.tally.stretch(d);
    }

    /// Counts a VM exit with basic reason `reason`, taken from L2 or L1.
    pub(crate) fn count_exit(&self, reason: u16, in_l2: bool) {
        self.tally.exit(reason, in_l2);
    }

    /// Takes a pending exit request.
    pub(crate) fn take_exit_request(&self) -> bool {
        self.exit_requested.swap(false, Ordering::AcqRel)
    }

    /// Whether the power was cut.
    pub(crate) fn is_powered_off(&self) -> bool {
        self.power.is_cut()
    }
}

impl VcpuControl for SoftControl {
    fn request_exit(&self) {
        self.exit_requested.store(true, Ordering::Release);
        self.kick.kick();
    }

    fn host_tick(&self) {
        self.kick.kick();
    }

    fn in_guest_for(&self) -> Option<Duration> {
        self.in_guest.elapsed()
    }

    fn virtual_ns(&self) -> Option<u64> {
        Some(self.ns_of(self.exit_cycles.load(Ordering::Acquire)))
    }

    fn inject_nmi(&self) {
        self.nmi.kick();
    }

    fn power_off(&self) {
        self.power.cut();
    }

    fn exit_tally(&self) -> Option<ExitTally> {
        Some(self.tally.snapshot())
    }
}
