//! [`SoftControl`]: the host's handle on a soft vCPU (exit requests, timer
//! ticks, the watchdog's view, the power switch).

use accel::VcpuControl;
use softcpu::{Kicker, PowerSwitch};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    /// When the vCPU last entered the guest, in nanoseconds after `epoch`
    /// plus one; 0 while it is in L0 or userspace.
    entered: AtomicU64,
    epoch: Instant,
    /// Virtual time (core cycles) at the last VM exit.
    exit_cycles: AtomicU64,
    /// Core (TSC) frequency.
    tsc_hz: u64,
}

impl SoftControl {
    pub(crate) fn new(kick: Kicker, power: PowerSwitch, nmi: Kicker, tsc_hz: u64) -> Self {
        SoftControl {
            kick,
            power,
            nmi,
            exit_requested: AtomicBool::new(false),
            entered: AtomicU64::new(0),
            epoch: Instant::now(),
            exit_cycles: AtomicU64::new(0),
            tsc_hz: tsc_hz.max(1),
        }
    }

    /// Nanoseconds of `cycles` core cycles.
    pub(crate) fn ns_of(&self, cycles: u64) -> u64 {
        (u128::from(cycles) * 1_000_000_000 / u128::from(self.tsc_hz)) as u64
    }

    /// Records the virtual time of a VM exit.
    pub(crate) fn note_exit_cycles(&self, cycles: u64) {
        self.exit_cycles.store(cycles, Ordering::Release);
    }

    /// Records a VM entry; returns the instant it happened.
    pub(crate) fn entering_guest(&self) -> Instant {
        let now = Instant::now();
        let ns = now.duration_since(self.epoch).as_nanos() as u64;
        self.entered.store(ns.saturating_add(1), Ordering::Release);
        now
    }

    /// Records the return to L0 of the entry made at `since`; returns the
    /// host time spent in the guest.
    pub(crate) fn back_in_l0(&self, since: Instant) -> Duration {
        self.entered.store(0, Ordering::Release);
        since.elapsed()
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
        match self.entered.load(Ordering::Acquire) {
            0 => None,
            t => {
                let now = self.epoch.elapsed().as_nanos() as u64;
                Some(Duration::from_nanos(now.saturating_sub(t - 1)))
            }
        }
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
}
