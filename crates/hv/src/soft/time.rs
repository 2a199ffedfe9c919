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
//!   with host time and closes a quarter of the gap, from the rate at which
//!   instructions retired while the guest ran in the last one (QEMU's
//!   `-icount shift=auto` adapts its instruction-to-time shift the same
//!   way). Where virtual time has run ahead because the CPU was halted (it
//!   skips to its next timer), the vCPU thread sleeps the time the guest
//!   spent idle, a slice at a time, as an idle machine waits. Where it has
//!   run ahead because the guest ran faster than the last interval
//!   predicted (translated code after interpreted code), the cost per
//!   instruction comes down instead: sleeping then would only take host
//!   time from a guest that has work to do. Only a guest that runs ahead
//!   at one cycle per instruction, faster than the modelled clock, is
//!   slept for it.

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
    last_halted: u64,
    /// Host time slept since `last` (the guest did not run then).
    slept: Duration,
    /// Cycles the CPU spent halted that have not been slept off yet.
    owed: u64,
}

impl Pacer {
    /// Pacing from now, for `cpu` and a TSC of `tsc_hz`.
    pub(crate) fn new(cpu: &SoftCpu, tsc_hz: u64) -> Self {
        let now = Instant::now();
        Pacer {
            start: now,
            start_cycles: cpu.cycles(),
            tsc_hz: tsc_hz.max(1),
            last: now,
            last_retired: cpu.instructions_retired(),
            last_halted: cpu.halted_cycles(),
            slept: Duration::ZERO,
            owed: 0,
        }
    }

    /// At a VM exit: once per [`PACE_INTERVAL`], sets the CPU's cycles per
    /// instruction for the next interval; returns how long to sleep where
    /// virtual time is ahead of host time because the guest was idle.
    pub(crate) fn pace(&mut self, cpu: &mut SoftCpu) -> Option<Duration> {
        let now = Instant::now();
        let interval = now.duration_since(self.last);
        if interval < PACE_INTERVAL {
            return None;
        }
        let retired = cpu.instructions_retired();
        let halted = cpu.halted_cycles();
        let host = self.start_cycles + self.cycles_of(now.duration_since(self.start));
        let step = next_step(
            Interval {
                virt: cpu.cycles(),
                host,
                length: self.cycles_of(interval),
                running: self.cycles_of(interval.saturating_sub(self.slept)),
                instructions: retired - self.last_retired,
                idle: halted.saturating_sub(self.last_halted),
            },
            cpu.instruction_cycles(),
            self.owed,
            self.cycles_of(MAX_SLEEP),
        );
        self.last = now;
        self.last_retired = retired;
        self.last_halted = halted;
        self.owed = step.owed;
        if let Some(cycles) = step.instruction_cycles {
            cpu.set_instruction_cycles(cycles);
        }
        self.slept = self.duration_of(step.sleep);
        (step.sleep > 0).then_some(self.slept)
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

/// The interval that just ended, in TSC cycles.
#[derive(Debug, Clone, Copy)]
struct Interval {
    /// Virtual time at its end.
    virt: u64,
    /// Host time at its end.
    host: u64,
    /// Its length in host time.
    length: u64,
    /// The host time of it the guest could run (the length less what the
    /// vCPU thread slept).
    running: u64,
    /// Instructions retired in it.
    instructions: u64,
    /// Virtual cycles of it the CPU spent halted.
    idle: u64,
}

/// What the pacer does for the next interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    /// Cycles per instruction (`None`: keep them; nothing ran to judge by).
    instruction_cycles: Option<u32>,
    /// Cycles of host time to sleep now.
    sleep: u64,
    /// Halted cycles still to be slept off after this sleep.
    owed: u64,
}

/// The controller, after interval `i` ran with `current` cycles per
/// instruction and `owed` halted cycles were left to sleep off before it.
/// The next interval, expected as long and with instructions retiring as
/// fast while the guest runs, should keep pace with host time and close a
/// quarter of the gap; the cost per instruction at most halves or doubles
/// from one interval to the next, so a burst of time outside the guest
/// (loading, a slow userspace exit) does not make it overshoot. Virtual
/// time more than an interval ahead of host time is slept off (at most
/// `max_sleep` at once) as far as the CPU was halted, and wholly where the
/// interval already ran at one cycle per instruction (the guest runs
/// faster than the modelled clock, and the cost cannot come down).
fn next_step(i: Interval, current: u32, owed: u64, max_sleep: u64) -> Step {
    let gap = i128::from(i.host) - i128::from(i.virt);
    let budget = (i128::from(i.length) + gap / 4).max(0);
    let instruction_cycles = (i.instructions > 0).then(|| {
        // Cycles per instruction at the rate they retired while the guest
        // ran, scaled to the budget.
        let want = budget * i128::from(i.running.max(1))
            / (i128::from(i.length.max(1)) * i128::from(i.instructions));
        let current = i128::from(current.max(1));
        let lo = (current / 2).max(1);
        let hi = (current * 2).min(MAX_INSTRUCTION_CYCLES as i128);
        want.clamp(lo, hi) as u32
    });
    let ahead = i.virt.saturating_sub(i.host.saturating_add(i.length));
    let owed = if ahead == 0 { 0 } else { owed + i.idle };
    let sleepable = if current <= 1 { ahead } else { ahead.min(owed) };
    let sleep = sleepable.min(max_sleep);
    Step {
        instruction_cycles,
        sleep,
        owed: owed.saturating_sub(sleep),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 ms at 2 GHz.
    const MS10: u64 = 20_000_000;

    /// An interval of 10 ms in which the guest ran all the time and was
    /// never halted.
    fn busy(virt: u64, host: u64, instructions: u64) -> Interval {
        Interval {
            virt,
            host,
            length: MS10,
            running: MS10,
            instructions,
            idle: 0,
        }
    }

    #[test]
    fn a_slow_guest_gets_more_cycles_per_instruction() {
        // 1M instructions in 10 ms: 20 cycles each keeps up, and a lag of
        // 40M cycles adds a quarter of it.
        let s = next_step(busy(60_000_000, 100_000_000, 1_000_000), 20, 0, MS10);
        assert_eq!(s.instruction_cycles, Some(30));
        assert_eq!(s.sleep, 0);
        let s = next_step(busy(100_000_000, 100_000_000, 1_000_000), 20, 0, MS10);
        assert_eq!(s.instruction_cycles, Some(20));
        // From 1, the cost at most doubles per interval.
        let s = next_step(busy(100_000_000, 100_000_000, 1_000_000), 1, 0, MS10);
        assert_eq!(s.instruction_cycles, Some(2));
        // Nothing retired: the cost per instruction stays as it was.
        let s = next_step(busy(0, 100, 0), 5, 0, MS10);
        assert_eq!(s.instruction_cycles, None);
    }

    #[test]
    fn a_guest_that_ran_ahead_slows_down_without_sleeping() {
        // 50M cycles ahead of host time from running fast: 7.5M cycles to
        // spend on a million instructions, and no sleep (the guest has
        // work to do).
        let s = next_step(busy(150_000_000, 100_000_000, 1_000_000), 8, 0, MS10);
        assert_eq!(s.instruction_cycles, Some(7));
        assert_eq!((s.sleep, s.owed), (0, 0));
    }

    #[test]
    fn a_guest_faster_than_the_clock_sleeps() {
        // At one cycle per instruction and still 50M cycles ahead: the
        // cost cannot come down, so the 30M beyond an interval are slept
        // (at most 20M at once).
        let s = next_step(busy(150_000_000, 100_000_000, 100_000_000), 1, 0, MS10);
        assert_eq!(s.instruction_cycles, Some(1));
        assert_eq!((s.sleep, s.owed), (MS10, 0));
    }

    #[test]
    fn a_guest_ahead_after_halting_sleeps_its_idle_time() {
        // 50M cycles ahead, of which 45M were spent halted: 30M cycles are
        // more than an interval ahead, 20M (the most at once) are slept now
        // and the rest of the idle time stays owed.
        let i = Interval {
            idle: 45_000_000,
            ..busy(150_000_000, 100_000_000, 1_000_000)
        };
        let s = next_step(i, 8, 0, MS10);
        assert_eq!((s.sleep, s.owed), (MS10, 25_000_000));
        // Next interval: the 10 ms slept, nothing ran; still ahead by more
        // than an interval, the owed time goes on being slept.
        let i = Interval {
            running: 0,
            instructions: 0,
            ..busy(150_000_000, 120_000_000, 0)
        };
        let s = next_step(i, 8, 25_000_000, MS10);
        assert_eq!((s.sleep, s.owed), (10_000_000, 15_000_000));
        // Caught up: nothing is owed any more.
        let s = next_step(busy(150_000_000, 150_000_000, 1), 8, 15_000_000, MS10);
        assert_eq!((s.sleep, s.owed), (0, 0));
    }

    #[test]
    fn the_rate_is_taken_over_the_time_the_guest_ran() {
        // Of 10 ms, 8 were slept: 1M instructions in 2 ms retire at 4
        // cycles each, so keeping pace for the next 10 ms (if it runs
        // throughout) takes 4 cycles each, not 20.
        let i = Interval {
            running: MS10 / 5,
            ..busy(100_000_000, 100_000_000, 1_000_000)
        };
        assert_eq!(next_step(i, 8, 0, MS10).instruction_cycles, Some(4));
    }

    #[test]
    fn the_cost_per_instruction_is_bounded() {
        let top = MAX_INSTRUCTION_CYCLES as u32;
        let s = next_step(busy(0, u64::MAX / 2, 1), top, 0, MS10);
        assert_eq!(s.instruction_cycles, Some(top));
    }
}
