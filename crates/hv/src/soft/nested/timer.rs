//! L2's VMX-preemption timer, emulated by L0 (SDM Vol. 3C §26.5.1, §27.7.4,
//! §28.3.4).
//!
//! The processor's own timer belongs to L0 (it drives L1's APIC timer and
//! userspace's deadlines), so L1's is kept here as a deadline on the
//! processor's TSC and folded into the processor's timer while L2 runs:
//! vmcs02 counts to whichever comes first, and an expiry exit goes to L1
//! only once L2's deadline has passed.
//!
//! The timer L1 sees counts down by one each time bit `L1_TIMER_RATE` of
//! its TSC changes (IA32_VMX_MISC[4:0] as L1 reads it), from the value the
//! VM entry loaded; it runs while L2 runs, including while L0 handles an
//! exit of L2's that L1 never sees.

use super::caps::L1_TIMER_RATE;
use super::Nested;
use crate::hw::{HwError, VmxHardware};
use x86::vmx::{exit_ctl, field as f, pin};

/// L2's armed timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct L2Timer {
    /// The processor's TSC at which the timer reaches 0.
    deadline: u64,
    /// L1's TSC minus the processor's (L0's TSC offset for L1): the timer
    /// counts bit changes of L1's TSC.
    l1_offset: u64,
}

impl L2Timer {
    /// A timer loaded with `value` at processor TSC `tsc`, for an L1 whose
    /// TSC is the processor's plus `l1_offset`. The k-th change of bit
    /// `L1_TIMER_RATE` after the entry brings the count to `value - k`; a
    /// value of 0 has expired at once (an exit before L2's first
    /// instruction, §27.7.4).
    pub(super) fn load(value: u32, tsc: u64, l1_offset: u64) -> Self {
        let l1_tsc = tsc.wrapping_add(l1_offset);
        let ticks = (l1_tsc >> L1_TIMER_RATE) + u64::from(value);
        let l1_deadline = ticks.checked_shl(L1_TIMER_RATE).unwrap_or(u64::MAX);
        let deadline = if value == 0 {
            tsc
        } else {
            l1_deadline.wrapping_sub(l1_offset)
        };
        L2Timer {
            deadline,
            l1_offset,
        }
    }

    /// Processor TSC cycles until the timer expires (0 once it has).
    pub(super) fn left(&self, tsc: u64) -> u64 {
        self.deadline.saturating_sub(tsc)
    }

    /// The count at processor TSC `tsc`: what "save VMX-preemption timer
    /// value" stores (0 once expired).
    pub(super) fn value(&self, tsc: u64) -> u32 {
        let l1 = |t: u64| t.wrapping_add(self.l1_offset) >> L1_TIMER_RATE;
        if tsc >= self.deadline {
            return 0;
        }
        l1(self.deadline)
            .wrapping_sub(l1(tsc))
            .min(u64::from(u32::MAX)) as u32
    }
}

impl Nested {
    /// Loads L2's timer at a nested VM entry when vmcs12 activates it, from
    /// its timer-value field (every VMLAUNCH and VMRESUME of L1's reloads
    /// it, §27.7.4); `l1_offset` is L1's TSC minus the processor's.
    pub(super) fn load_l2_timer(
        &mut self,
        hw: &mut impl VmxHardware,
        l1_offset: u64,
    ) -> Result<(), HwError> {
        self.l2_timer = None;
        if self.vmcs12.controls().pin & pin::PREEMPTION_TIMER == 0 {
            return Ok(());
        }
        let value = self.vmcs12.get32(f::VMX_PREEMPTION_TIMER_VALUE);
        self.l2_timer = Some(L2Timer::load(value, processor_tsc(hw), l1_offset));
        Ok(())
    }

    /// While L2 runs with its timer active: processor TSC cycles until it
    /// expires, for L0 to fold into vmcs02's own timer.
    pub(crate) fn l2_timer_left(&self, hw: &mut impl VmxHardware) -> Option<u64> {
        let timer = self.l2_timer.filter(|_| self.in_l2())?;
        Some(timer.left(processor_tsc(hw)))
    }

    /// Whether a preemption-timer exit from vmcs02 is L2's timer expiring
    /// (and so L1's exit) rather than one of L0's deadlines.
    pub(super) fn l2_timer_expired(&self, hw: &mut impl VmxHardware) -> bool {
        self.l2_timer_left(hw) == Some(0)
    }

    /// At a nested VM exit: "save VMX-preemption timer value" stores the
    /// count in vmcs12 (§28.3.4; 0 when the timer caused the exit), and the
    /// timer stops with L2.
    pub(super) fn save_l2_timer(&mut self, hw: &mut impl VmxHardware) {
        let Some(timer) = self.l2_timer.take() else {
            return;
        };
        if self.vmcs12.get32(f::VM_EXIT_CONTROLS) & exit_ctl::SAVE_PREEMPTION_TIMER != 0 {
            let value = timer.value(processor_tsc(hw));
            self.vmcs12
                .set(f::VMX_PREEMPTION_TIMER_VALUE, u64::from(value));
        }
    }
}

/// The processor's TSC, as RDMSR reads it in root operation.
fn processor_tsc(hw: &mut impl VmxHardware) -> u64 {
    hw.rdmsr(x86::msr::TSC).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: u64 = 1 << L1_TIMER_RATE;

    #[test]
    fn zero_has_expired_at_once() {
        let t = L2Timer::load(0, 1000, 0);
        assert_eq!(t.left(1000), 0);
        assert_eq!(t.value(1000), 0);
    }

    #[test]
    fn the_count_follows_bit_changes_of_l1s_tsc() {
        // Loaded mid-tick: the first decrement comes at the next change of
        // the rate bit, so a count of 3 lasts between 2 and 3 ticks.
        let start = 10 * TICK + 5;
        let t = L2Timer::load(3, start, 0);
        assert_eq!(t.left(start), 13 * TICK - start);
        assert_eq!(t.value(start), 3);
        assert_eq!(t.value(11 * TICK - 1), 3);
        assert_eq!(t.value(11 * TICK), 2);
        assert_eq!(t.value(12 * TICK), 1);
        assert_eq!(t.value(13 * TICK - 1), 1);
        assert_eq!(t.value(13 * TICK), 0);
        assert_eq!(t.left(13 * TICK), 0);
        assert_eq!(t.left(20 * TICK), 0);
    }

    #[test]
    fn l1s_offset_moves_the_tick_boundaries() {
        // L1's TSC is the processor's + 7: its rate bit changes 7 cycles
        // earlier on the processor's clock.
        let t = L2Timer::load(1, 0, 7);
        assert_eq!(t.left(0), TICK - 7);
        assert_eq!(t.value(TICK - 8), 1);
        assert_eq!(t.value(TICK - 7), 0);
    }

    #[test]
    fn the_largest_count_does_not_wrap() {
        let t = L2Timer::load(u32::MAX, 5, 0);
        assert_eq!(t.value(5), u32::MAX);
        assert_eq!(t.left(5), (u64::from(u32::MAX) << L1_TIMER_RATE) - 5);
    }
}
