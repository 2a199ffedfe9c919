//! Faults the operator injects at defined points (`Vm::inject_stall`,
//! `Vm::arm_notify_context_invalid`): armed in the soft CPU just before the
//! VM entry into the guest level they aim at, once their time has come. A
//! stall a notify exit cut belongs to the stalled guest: it is taken out of
//! the CPU at the exit and given back at the next entry into that level,
//! so L1's own code never runs the rest of L2's stall.

use crate::soft::setup::FaultSettings;
use accel::{GuestLevel, StallInjection};
use softcpu::SoftCpu;

/// What is still to inject, and what the current entry armed.
#[derive(Debug, Default)]
pub(super) struct FaultPlan {
    /// The stall: its level, start in TSC cycles and length in crystal
    /// cycles.
    stall: Option<(Option<GuestLevel>, u64, u64)>,
    /// The rest of a stall a notify exit cut, in TSC cycles, and the level
    /// it belongs to.
    cut: Option<(GuestLevel, u64)>,
    /// The level of the current entry.
    entered: Option<GuestLevel>,
    /// The context-invalid flag still to report (`Some(None)`: at any level).
    context_invalid: Option<Option<GuestLevel>>,
    /// This entry armed the flag in the CPU.
    armed: bool,
}

impl FaultPlan {
    /// The plan of `settings` on a CPU whose TSC runs at `tsc_hz` and
    /// crystal clock at `crystal_hz`.
    pub(super) fn new(settings: &FaultSettings, tsc_hz: u64, crystal_hz: u64) -> Self {
        let cycles = |ns: u64, hz: u64| {
            u64::try_from(u128::from(ns) * u128::from(hz) / 1_000_000_000).unwrap_or(u64::MAX)
        };
        FaultPlan {
            stall: settings.stall.map(|s: StallInjection| {
                (
                    s.level,
                    cycles(s.at_ns, tsc_hz),
                    cycles(s.duration_ns, crystal_hz),
                )
            }),
            context_invalid: settings.context_invalid,
            cut: None,
            entered: None,
            armed: false,
        }
    }

    /// Arms what is due for an entry into `level`.
    pub(super) fn before_entry(&mut self, cpu: &mut SoftCpu, level: GuestLevel) {
        let aims_here = |l: Option<GuestLevel>| l.is_none_or(|l| l == level);
        self.entered = Some(level);
        if let Some((l, tsc)) = self.cut {
            if l == level {
                cpu.resume_stall(tsc);
                self.cut = None;
            }
        }
        if let Some((l, at, crystal)) = self.stall {
            if aims_here(l) && cpu.cycles() >= at {
                cpu.inject_stall(crystal);
                self.stall = None;
            }
        }
        if let Some(l) = self.context_invalid {
            if aims_here(l) {
                cpu.arm_notify_context_invalid();
                self.armed = true;
            }
        }
    }

    /// After the exit: the flag is used up once a notify exit reported it;
    /// otherwise it waits for the next entry into its level.
    ///
    /// A stall the exit cut waits for its level — unless the exit reported
    /// the context invalid: that context cannot be resumed, and the stall
    /// goes with it.
    pub(super) fn after_exit(&mut self, cpu: &mut SoftCpu) {
        let mut invalid_reported = false;
        if std::mem::take(&mut self.armed) && !cpu.disarm_notify_context_invalid() {
            self.context_invalid = None;
            invalid_reported = true;
        }
        let left = cpu.take_stall();
        if let Some(level) = self
            .entered
            .take()
            .filter(|_| left != 0 && !invalid_reported)
        {
            self.cut = Some((level, left));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use softcpu::CpuModel;

    fn cpu() -> SoftCpu {
        SoftCpu::new(1 << 20, CpuModel::default())
    }

    #[test]
    fn a_stall_waits_for_its_level_and_its_time() {
        let settings = FaultSettings {
            stall: Some(StallInjection {
                duration_ns: 40_000,
                level: Some(GuestLevel::L2),
                at_ns: 1_000,
            }),
            context_invalid: None,
        };
        // A 1 GHz TSC: 1,000 ns is 1,000 cycles; a 25 MHz crystal: 40 µs is
        // 1,000 crystal cycles.
        let mut plan = FaultPlan::new(&settings, 1_000_000_000, 25_000_000);
        let mut cpu = cpu();
        plan.before_entry(&mut cpu, GuestLevel::L2);
        assert_eq!(cpu.stall_remaining(), 0, "too early");
        cpu.advance_time(1_000);
        plan.before_entry(&mut cpu, GuestLevel::L1);
        assert_eq!(cpu.stall_remaining(), 0, "wrong level");
        plan.before_entry(&mut cpu, GuestLevel::L2);
        let m = CpuModel::default();
        let tsc =
            (1000 * u64::from(m.tsc_ratio_numerator)).div_ceil(u64::from(m.tsc_ratio_denominator));
        assert_eq!(cpu.stall_remaining(), tsc);
        let armed = cpu.stall_remaining();
        plan.before_entry(&mut cpu, GuestLevel::L2);
        assert_eq!(cpu.stall_remaining(), armed, "injected once");
    }

    #[test]
    fn a_cut_stall_comes_back_only_with_its_level() {
        let settings = FaultSettings {
            stall: Some(StallInjection {
                duration_ns: 40_000,
                level: Some(GuestLevel::L2),
                at_ns: 0,
            }),
            context_invalid: None,
        };
        let mut plan = FaultPlan::new(&settings, 1, 25_000_000);
        let mut cpu = cpu();
        plan.before_entry(&mut cpu, GuestLevel::L2);
        let stall = cpu.stall_remaining();
        assert_ne!(stall, 0);
        // The exit left it pending (as a notify exit would, in part).
        plan.after_exit(&mut cpu);
        assert_eq!(cpu.stall_remaining(), 0, "out of the CPU while L1 runs");
        plan.before_entry(&mut cpu, GuestLevel::L1);
        assert_eq!(cpu.stall_remaining(), 0);
        plan.after_exit(&mut cpu);
        plan.before_entry(&mut cpu, GuestLevel::L2);
        assert_eq!(cpu.stall_remaining(), stall, "back with L2");
    }

    #[test]
    fn the_context_invalid_flag_stays_until_a_notify_exit_of_its_level_uses_it() {
        let settings = FaultSettings {
            stall: None,
            context_invalid: Some(Some(GuestLevel::L2)),
        };
        let mut plan = FaultPlan::new(&settings, 1, 1);
        let mut cpu = cpu();
        plan.before_entry(&mut cpu, GuestLevel::L1);
        plan.after_exit(&mut cpu);
        assert!(!cpu.disarm_notify_context_invalid(), "not armed for L1");
        plan.before_entry(&mut cpu, GuestLevel::L2);
        plan.after_exit(&mut cpu);
        assert_eq!(
            plan.context_invalid,
            Some(Some(GuestLevel::L2)),
            "not used: kept"
        );
        plan.before_entry(&mut cpu, GuestLevel::L2);
        // A notify exit reports it (the CPU clears the flag).
        assert!(cpu.disarm_notify_context_invalid());
        plan.after_exit(&mut cpu);
        assert_eq!(plan.context_invalid, None);
    }
}
