//! Virtual time beyond the guest's instructions: what L0's own work on an
//! exit costs, and the pacing that keeps virtual time near host time
//! (`docs/softcpu.md`, "Virtual time").
//!
//! The soft CPU counts one cycle per instruction by itself, so a guest that
//! runs at 100 MIPS under a 2 GHz TSC sees its clock run 20 times slower
//! than the host's, and far slower still while exits dominate. Two things
//! close the gap:
//!
//! - **Modelled costs.** Every VM exit L0 takes lets [`L0_EXIT_CYCLES`]
//!   pass, and every exit that goes to userspace [`USER_EXIT_CYCLES`] more,
//!   as the TSC keeps counting in VMX root operation on silicon. They are
//!   part of both modes and deterministic.
//! - **Pacing** (`accel::VirtualTime::Paced`). At exits, at most every
//!   [`PACE_INTERVAL`] of host time, the [`Pacer`] sets how many cycles each
//!   instruction takes for the next interval so that virtual time keeps up
//!   with host time and closes a quarter of the gap, from the instructions
//!   retired in the last one (QEMU's
//!   `-icount shift=auto` adapts its instruction-to-time shift the same
//!   way); where virtual time has run ahead (a halted CPU skips to its next
//!   timer), the vCPU thread sleeps the difference, a slice at a time.

use softcpu::SoftCpu;
use std::time::{Duration, Instant};

/// The earlier of two optional deadlines (or windows).
pub(crate) fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Modelled cost of a VM exit L0 handles itself, in TSC cycles: the exit
/// and entry transitions with a short handler, about 0.75 µs at the
/// modelled 2 GHz (an exit round trip on current Intel parts is of that
/// order).
pub(crate) const L0_EXIT_CYCLES: u64 = 1_500;

/// Modelled extra cost of an exit that goes to userspace and back, in TSC
/// cycles: about 5 µs, the order of a `KVM_RUN` → VMM → `KVM_RUN` trip.
pub(crate) const USER_EXIT_CYCLES: u64 = 10_000;

/// How often the pacer looks at host time.
pub(crate) const PACE_INTERVAL: Duration = Duration::from_millis(5);

/// The longest sleep at one exit while virtual time is ahead, so the vCPU
/// stays responsive to its controls.
const MAX_SLEEP: Duration = Duration::from_millis(10);

/// Most cycles one instruction may be given.
const MAX_INSTRUCTION_CYCLES: u64 = 1 << 16;

/// Keeps one soft vCPU's virtual time near host time.
#[derive(Debug)]
pub(crate) struct Pacer {
    start: Instant,
    start_cycles: u64,
    tsc_hz: u64,
    last: Instant,
    last_retired: u64,
}

impl Pacer {
    /// Pacing from now, for a CPU at `cycles` with `retired` instructions
    /// and a TSC of `tsc_hz`.
    pub(crate) fn new(cycles: u64, retired: u64, tsc_hz: u64) -> Self {
        let now = Instant::now();
        Pacer {
            start: now,
            start_cycles: cycles,
            tsc_hz: tsc_hz.max(1),
            last: now,
            last_retired: retired,
        }
    }

    /// At a VM exit: once per [`PACE_INTERVAL`], sets the CPU's cycles per
    /// instruction for the next interval; returns how long to sleep where
    /// virtual time is ahead of host time.
    pub(crate) fn pace(&mut self, cpu: &mut SoftCpu) -> Option<Duration> {
        let now = Instant::now();
        let interval = now.duration_since(self.last);
        if interval < PACE_INTERVAL {
            return None;
        }
        let retired = cpu.instructions_retired();
        let host = self.start_cycles + self.cycles_of(now.duration_since(self.start));
        let step = next_step(
            cpu.cycles(),
            host,
            self.cycles_of(interval),
            retired - self.last_retired,
            cpu.instruction_cycles(),
        );
        self.last = now;
        self.last_retired = retired;
        if let Some(cycles) = step.instruction_cycles {
            cpu.set_instruction_cycles(cycles);
        }
        (step.ahead > 0).then(|| self.duration_of(step.ahead).min(MAX_SLEEP))
    }

    /// Leaves `d` of host time out of the pacing (the vCPU stood still for
    /// a debugger).
    pub(crate) fn skip(&mut self, d: Duration) {
        self.start += d;
        self.last += d;
    }

    fn cycles_of(&self, d: Duration) -> u64 {
        (d.as_nanos() * u128::from(self.tsc_hz) / 1_000_000_000) as u64
    }

    fn duration_of(&self, cycles: u64) -> Duration {
        Duration::from_nanos((u128::from(cycles) * 1_000_000_000 / u128::from(self.tsc_hz)) as u64)
    }
}

/// What the pacer does for the next interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    /// Cycles per instruction (`None`: keep them; nothing ran to judge by).
    instruction_cycles: Option<u32>,
    /// Cycles virtual time is ahead of host time by more than an interval
    /// (to be slept off).
    ahead: u64,
}

/// The controller: virtual time `virt` and host time `host` (both in TSC
/// cycles), the interval just ended (`interval` cycles of host time, in
/// which `instructions` retired) and the cycles per instruction it ran
/// with. The next interval, expected as long and as fast, should keep pace
/// with host time and close a quarter of the gap; the cost per instruction
/// at most halves or doubles from one interval to the next, so a burst of
/// time outside the guest (loading, a slow userspace exit) does not make it
/// overshoot.
fn next_step(virt: u64, host: u64, interval: u64, instructions: u64, current: u32) -> Step {
    let gap = i128::from(host) - i128::from(virt);
    let budget = i128::from(interval) + gap / 4;
    let instruction_cycles = (instructions > 0).then(|| {
        let want = (budget / i128::from(instructions)).max(1);
        let current = i128::from(current.max(1));
        let lo = (current / 2).max(1);
        let hi = (current * 2).min(MAX_INSTRUCTION_CYCLES as i128);
        want.clamp(lo, hi) as u32
    });
    Step {
        instruction_cycles,
        ahead: virt.saturating_sub(host.saturating_add(interval)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_guest_gets_more_cycles_per_instruction() {
        // 10 ms at 2 GHz is 20M cycles; 1M instructions ran: 20 cycles each
        // keeps up, and a lag of 40M cycles adds a quarter of it.
        let s = next_step(60_000_000, 100_000_000, 20_000_000, 1_000_000, 20);
        assert_eq!(s.instruction_cycles, Some(30));
        assert_eq!(s.ahead, 0);
        let s = next_step(100_000_000, 100_000_000, 20_000_000, 1_000_000, 20);
        assert_eq!(s.instruction_cycles, Some(20));
        // From 1, the cost at most doubles per interval.
        let s = next_step(100_000_000, 100_000_000, 20_000_000, 1_000_000, 1);
        assert_eq!(s.instruction_cycles, Some(2));
    }

    #[test]
    fn a_guest_ahead_sleeps_and_slows_down() {
        // 50M cycles ahead of host time (a halted CPU skipped to its
        // timer): 7.5M cycles to spend on a million instructions.
        let s = next_step(150_000_000, 100_000_000, 20_000_000, 1_000_000, 8);
        assert_eq!(s.instruction_cycles, Some(7));
        assert_eq!(s.ahead, 30_000_000);
        // Nothing retired: the cost per instruction stays as it was.
        assert_eq!(next_step(0, 100, 20, 0, 5).instruction_cycles, None);
    }

    #[test]
    fn the_cost_per_instruction_is_bounded() {
        let top = MAX_INSTRUCTION_CYCLES as u32;
        let s = next_step(0, u64::MAX / 2, 20_000_000, 1, top);
        assert_eq!(s.instruction_cycles, Some(top));
    }
}
