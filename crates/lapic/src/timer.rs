//! The local APIC timer's counting, in crystal-clock ticks.
//!
//! The timer counts the core crystal clock (CPUID.15H:ECX) divided by the
//! divide configuration register; the caller passes time as a TSC value and
//! [`TimerClock`] converts it with the TSC / crystal ratio of CPUID.15H
//! (EBX / EAX). One-shot and periodic counting are computed from an anchor
//! (the crystal tick at which the count had a known value), so the current
//! count is exact at any time without ticking.

/// The clocks of CPUID.15H: the core crystal clock, and the TSC / crystal
/// ratio that converts the caller's TSC to the timer's input clock (TSC =
/// crystal × numerator / denominator). Both accelerators take their TSC
/// rate from here: the soft one builds it from its CPU model, the kvm one
/// uses [`TimerClock::default`] for the time of its userspace APIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerClock {
    /// CPUID.15H:ECX, the core crystal clock in Hz.
    pub crystal_hz: u32,
    /// CPUID.15H:EBX, the ratio's numerator (not 0).
    pub tsc_ratio_numerator: u32,
    /// CPUID.15H:EAX, the ratio's denominator (not 0).
    pub tsc_ratio_denominator: u32,
}

impl Default for TimerClock {
    /// The soft CPU's default part: a 25 MHz crystal and a 2 GHz TSC, ratio
    /// 80 / 1 (softcpu's `CpuModel`; hv's tests check that they agree).
    fn default() -> Self {
        TimerClock {
            crystal_hz: 25_000_000,
            tsc_ratio_numerator: 80,
            tsc_ratio_denominator: 1,
        }
    }
}

impl TimerClock {
    fn ratio(&self) -> (u128, u128) {
        (
            u128::from(self.tsc_ratio_numerator.max(1)),
            u128::from(self.tsc_ratio_denominator.max(1)),
        )
    }

    /// Crystal ticks elapsed at TSC value `tsc`.
    pub fn crystal_at(&self, tsc: u64) -> u64 {
        let (num, den) = self.ratio();
        u64::try_from(u128::from(tsc) * den / num).unwrap_or(u64::MAX)
    }

    /// The first TSC value at which crystal tick `tick` has elapsed.
    pub fn tsc_of_crystal(&self, tick: u64) -> u64 {
        let (num, den) = self.ratio();
        u64::try_from((u128::from(tick) * num).div_ceil(den)).unwrap_or(u64::MAX)
    }

    /// The TSC frequency in Hz: crystal × numerator / denominator
    /// (SDM Vol. 2A, CPUID leaf 15H).
    pub fn tsc_hz(&self) -> u64 {
        u64::from(self.crystal_hz) * u64::from(self.tsc_ratio_numerator)
            / u64::from(self.tsc_ratio_denominator.max(1))
    }

    /// Nanoseconds of `tsc` TSC cycles (rounded down).
    pub fn ns_of_tsc(&self, tsc: u64) -> u64 {
        let hz = u128::from(self.tsc_hz().max(1));
        u64::try_from(u128::from(tsc) * 1_000_000_000 / hz).unwrap_or(u64::MAX)
    }

    /// TSC cycles in `ns` nanoseconds (rounded down): a TSC for a clock
    /// that only has host time.
    pub fn tsc_of_ns(&self, ns: u64) -> u64 {
        let hz = u128::from(self.tsc_hz());
        u64::try_from(u128::from(ns) * hz / 1_000_000_000).unwrap_or(u64::MAX)
    }

    /// The first TSC value at or after `ns` nanoseconds (rounded up, so
    /// that [`TimerClock::ns_of_tsc`] of it is not before `ns`): where a
    /// deadline in virtual time falls on the TSC.
    pub fn tsc_at_ns(&self, ns: u64) -> u64 {
        let hz = u128::from(self.tsc_hz());
        u64::try_from((u128::from(ns) * hz).div_ceil(1_000_000_000)).unwrap_or(u64::MAX)
    }
}

/// The divisor selected by a divide configuration register value (bits 0,
/// 1 and 3; SDM Vol. 3A, "APIC Timer", Figure "Divide Configuration
/// Register"): 000 → 2, 001 → 4, … 110 → 128, 111 → 1.
pub fn divisor(dcr: u32) -> u64 {
    let v = (dcr & 3) | (dcr & 8) >> 1;
    if v == 7 {
        1
    } else {
        2 << v
    }
}

/// One-shot / periodic counting state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counting {
    /// The initial-count register.
    pub initial: u32,
    /// Crystal tick at which the count was `anchor_count`.
    anchor: u64,
    /// The count at `anchor` (0: not counting).
    anchor_count: u32,
    /// Crystal ticks per count.
    div: u64,
    /// Crystal tick of the next expiry not yet delivered.
    next: Option<u64>,
}

impl Counting {
    /// Starts counting `initial` down from crystal tick `now` (0 stops).
    pub fn start(&mut self, initial: u32, div: u64, now: u64) {
        self.initial = initial;
        self.div = div;
        self.anchor = now;
        self.anchor_count = initial;
        self.next = (initial != 0).then(|| self.expiry(0));
    }

    /// Stops counting; the initial count is kept or cleared as asked.
    pub fn stop(&mut self, clear_initial: bool) {
        self.anchor_count = 0;
        self.next = None;
        if clear_initial {
            self.initial = 0;
        }
    }

    /// Crystal tick of expiry `j` (0 = when the anchored count reaches 0).
    fn expiry(&self, j: u64) -> u64 {
        let counts =
            u64::from(self.anchor_count).saturating_add(j.saturating_mul(u64::from(self.initial)));
        self.anchor.saturating_add(counts.saturating_mul(self.div))
    }

    /// The current-count register at crystal tick `now`.
    pub fn current(&self, now: u64, periodic: bool) -> u32 {
        if self.anchor_count == 0 || self.div == 0 {
            return 0;
        }
        let k = now.saturating_sub(self.anchor) / self.div;
        let anchored = u64::from(self.anchor_count);
        if k < anchored {
            return u32::try_from(anchored - k).unwrap_or(0);
        }
        if !periodic || self.initial == 0 {
            return 0;
        }
        let into = (k - anchored) % u64::from(self.initial);
        self.initial - u32::try_from(into).unwrap_or(0)
    }

    /// Re-anchors at `now` with the count as it is, counting on at `div`
    /// crystal ticks per count (a divide or mode change mid-count).
    pub fn rebase(&mut self, now: u64, div: u64, periodic: bool) {
        let cur = self.current(now, periodic);
        self.div = div;
        self.anchor = now;
        self.anchor_count = cur;
        self.next = (cur != 0).then(|| self.expiry(0));
    }

    /// The next undelivered expiry, in crystal ticks.
    pub fn next(&self) -> Option<u64> {
        self.next
    }

    /// Consumes the expiries up to crystal tick `now`; true if there was at
    /// least one (several coalesce, as one IRR bit would).
    pub fn expire(&mut self, now: u64, periodic: bool) -> bool {
        if self.next.is_none_or(|n| n > now) {
            return false;
        }
        self.next = if periodic && self.initial != 0 {
            let period = u64::from(self.initial).saturating_mul(self.div).max(1);
            let j = (now - self.expiry(0)) / period + 1;
            Some(self.expiry(j))
        } else {
            None
        };
        true
    }
}
