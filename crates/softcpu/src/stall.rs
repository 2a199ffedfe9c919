//! A stall inside microcode, on request: the model of what notify VM exits
//! exist for (docs/notify.md, "The stall model").
//!
//! Silicon can spend a long time without reaching an instruction boundary
//! for reasons no VMM intercept sees (a microcode loop); the #AC and #DB
//! storms are the architectural ones, and hypervisors intercept those. A
//! hypervisor asks for a stall of `n` crystal-clock cycles with
//! [`SoftCpu::inject_stall`]; the next instruction the CPU starts in VMX
//! non-root operation then spends them before it does anything else,
//! deterministically:
//!
//! - nothing but a notify VM exit or the loss of power ends the stall early:
//!   no interrupt, NMI, preemption-timer expiry or host kick is recognised
//!   inside it, as none is inside a microcode loop;
//! - with notify VM exiting on, the exit comes at the very cycle the window
//!   (plus the model's threshold) has passed since the boundary, with RIP
//!   at the instruction, which has not started: the guest context is valid
//!   (unless a test armed the context-invalid flag);
//! - the stall is finite work: on the next VM entry it resumes with what is
//!   left, so a stall longer than the window ends in several notify exits
//!   and then the instruction runs.

use crate::cpu::SoftCpu;
use crate::fault::Stop;

impl SoftCpu {
    /// Makes the next instruction started in VMX non-root operation stall
    /// for `crystal_cycles` crystal-clock cycles (CPUID.15H's clock) before
    /// it executes; adds to a stall still pending.
    pub fn inject_stall(&mut self, crystal_cycles: u64) {
        let tsc = self.crystal_to_tsc(crystal_cycles);
        self.stall_cycles = self.stall_cycles.saturating_add(tsc);
    }

    /// TSC cycles of an injected stall still to run (0 when none is pending).
    pub fn stall_remaining(&self) -> u64 {
        self.stall_cycles
    }

    /// Takes the rest of a stall a notify exit cut (TSC cycles, 0 when
    /// none), for a hypervisor that switches to another guest context and
    /// gives it back with [`Self::resume_stall`] when it enters the stalled
    /// one again: the stall belongs to the instruction, not to the CPU.
    pub fn take_stall(&mut self) -> u64 {
        std::mem::take(&mut self.stall_cycles)
    }

    /// Gives back a stall [`Self::take_stall`] took.
    pub fn resume_stall(&mut self, tsc_cycles: u64) {
        self.stall_cycles = self.stall_cycles.saturating_add(tsc_cycles);
    }

    /// Runs the pending stall at the boundary before the next instruction:
    /// `Ok` once it has all passed, or the notify VM exit (or the loss of
    /// power) that ended it early.
    pub(crate) fn run_stall(&mut self) -> Result<(), Stop> {
        if self.power_cut() {
            return Err(Stop::PowerOff);
        }
        // The stalled instruction has started: no IRET just before it is
        // part of this exit (qualification bit 12).
        self.iret_unblocked_nmi = false;
        let boundary = self.cycles;
        let left = self.stall_cycles;
        match self.notify_deadline(boundary) {
            Some(deadline) if deadline - boundary < left => {
                self.stall_cycles = left - (deadline - boundary);
                self.tick(deadline - boundary);
                Err(Stop::VmExit(self.notify_exit()))
            }
            _ => {
                self.stall_cycles = 0;
                self.tick(left);
                Ok(())
            }
        }
    }
}
