//! Debug registers: instruction and data breakpoints, single-step, general
//! detect (SDM Vol. 3B chapter 18 "Debug, Branch Profile, TSC, and Intel
//! Resource Director Technology Features", §18.2–§18.3).

use crate::cpu::SoftCpu;
use x86::vmx::pending_dbg;

/// DR6.BD: debug-register access detected.
pub(crate) const DR6_BD: u64 = 1 << 13;
/// DR6.BS: single step.
pub(crate) const DR6_BS: u64 = 1 << 14;
/// DR7.GD: general detect enable.
pub(crate) const DR7_GD: u64 = 1 << 13;

/// Breakpoint condition of DR7's R/Wn field (SDM §18.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Execute,
    Write,
    Io,
    ReadWrite,
}

fn condition(dr7: u64, n: usize) -> Condition {
    match (dr7 >> (16 + 4 * n)) & 3 {
        0 => Condition::Execute,
        1 => Condition::Write,
        2 => Condition::Io,
        _ => Condition::ReadWrite,
    }
}

/// Length in bytes of breakpoint `n` (LENn encoding: 00=1, 01=2, 10=8, 11=4).
fn length(dr7: u64, n: usize) -> u64 {
    match (dr7 >> (18 + 4 * n)) & 3 {
        0 => 1,
        1 => 2,
        2 => 8,
        _ => 4,
    }
}

fn enabled(dr7: u64, n: usize) -> bool {
    dr7 & (3 << (2 * n)) != 0
}

impl SoftCpu {
    /// Recomputes which kinds of breakpoints are armed after a DR7 change.
    pub(crate) fn update_debug_state(&mut self) {
        let dr7 = self.s.dr[7];
        let mut data = false;
        let mut code = false;
        for n in 0..4 {
            if enabled(dr7, n) {
                match condition(dr7, n) {
                    Condition::Execute => code = true,
                    Condition::Write | Condition::ReadWrite => data = true,
                    Condition::Io => {}
                }
            }
        }
        self.debug.code_bp = code;
        self.debug.data_bp = data;
    }

    /// Instruction breakpoints matching the linear address `la` (DR6 B0–B3 bits).
    pub(crate) fn code_breakpoint_hits(&self, la: u64) -> u64 {
        let dr7 = self.s.dr[7];
        (0..4)
            .filter(|&n| {
                enabled(dr7, n) && condition(dr7, n) == Condition::Execute && self.s.dr[n] == la
            })
            .fold(0, |acc, n| acc | (1 << n))
    }

    /// Records data breakpoints hit by an access of `size` bytes at `la`.
    #[inline]
    pub(crate) fn note_data_access(&mut self, la: u64, size: usize, write: bool) {
        if !self.debug.data_bp {
            return;
        }
        let dr7 = self.s.dr[7];
        for n in 0..4 {
            if !enabled(dr7, n) {
                continue;
            }
            let hit_kind = match condition(dr7, n) {
                Condition::Write => write,
                Condition::ReadWrite => true,
                _ => false,
            };
            if !hit_kind {
                continue;
            }
            // The breakpoint covers an aligned range of LENn bytes (SDM §18.2.5).
            let len = length(dr7, n);
            let start = self.s.dr[n] & !(len - 1);
            let end = start + len;
            let a_end = la.wrapping_add(size as u64);
            if la < end && a_end > start {
                self.debug.pending |= 1 << n;
            }
        }
    }

    /// Sets the DR6 bits of a debug exception: B0–B3 report this exception's
    /// matches; BD, BS and BT are sticky (SDM §18.2.3).
    pub(crate) fn report_debug(&mut self, bits: u64) {
        let dr6 = self.s.dr[6];
        self.s.dr[6] = (dr6 & !0xF) | bits | 0xFFFF_0FF0;
    }
}

/// Debug state the processor derives from DR7 and collects during an instruction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DebugState {
    /// An instruction breakpoint is armed.
    pub code_bp: bool,
    /// A data breakpoint is armed.
    pub data_bp: bool,
    /// Data breakpoints hit during the current instruction or delivery (B0–B3).
    pub pending: u64,
    /// Debug traps held back by a MOV SS / POP SS shadow.
    pub deferred: u64,
    /// Debug traps (DR6's B0–B3 and BS) pending on the boundary in VMX
    /// non-root operation, not delivered yet: those an MTF VM exit took
    /// priority over (SDM Vol. 3C §26.5.2), or those VM entry loaded from
    /// the pending-debug-exceptions field (§27.7.3). A VM exit saves them
    /// in that field.
    pub held: u64,
}

/// The pending-debug-exceptions field (SDM Vol. 3C §28.3.4) for the DR6
/// bits `bits` of debug traps not yet delivered: B3–B0 and BS in place, and
/// "enabled breakpoint" when a breakpoint was met (only enabled ones are
/// collected).
pub(crate) fn pending_field(bits: u64) -> u64 {
    let breakpoints = bits & pending_dbg::BREAKPOINTS;
    let enabled = if breakpoints != 0 {
        pending_dbg::ENABLED_BP
    } else {
        0
    };
    breakpoints | enabled | (bits & pending_dbg::BS)
}

/// The DR6 bits of the debug traps a pending-debug-exceptions value holds,
/// `None` when it holds no valid pending debug exception (neither BS nor
/// "enabled breakpoint", SDM Vol. 3C §27.7.3).
pub(crate) fn pending_traps(field: u64) -> Option<u64> {
    (field & (pending_dbg::BS | pending_dbg::ENABLED_BP) != 0)
        .then_some(field & (pending_dbg::BREAKPOINTS | pending_dbg::BS))
}
