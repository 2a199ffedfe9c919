//! The execution loop of VMX non-root operation: event recognition at
//! instruction boundaries, fetch from the decode cache, execute, deliver
//! faults, leave on a VM exit.

use crate::cpu::{Blocking, SoftCpu};
use crate::event::{Event, EventKind};
use crate::fault::{ExitInfo, Stop};
use iced_x86::Mnemonic;
use std::sync::atomic::Ordering;
use x86::rflags::{RF, TF};
use x86::vmx::{exit_ctl, exit_reason, intr_info, pin, proc};

/// Instructions between two looks at the host's kick line, NMI pin and
/// power switch while code is interpreted.
const POLL_INSTRUCTIONS: u64 = 256;

/// The same with the translating tier on: translated code runs whole
/// blocks (and loops) between looks, so it looks less often — at a
/// thousand million instructions per second, every 2 µs of host time.
const POLL_INSTRUCTIONS_TRANSLATED: u64 = 2048;

/// Vector reported for the host's kick when "acknowledge interrupt on exit" is set.
pub const KICK_VECTOR: u8 = 0xF2;

impl SoftCpu {
    /// Runs the guest until a VM exit, then performs it.
    pub(crate) fn run_non_root(&mut self) {
        if self.power_cut() {
            self.powered_off = true;
            return;
        }
        if std::mem::take(&mut self.mtf_pending) {
            // The pending MTF VM exit VM entry injected comes before any
            // instruction (SDM Vol. 3C §26.5.2).
            self.vm_exit(ExitInfo::new(exit_reason::MONITOR_TRAP_FLAG, 0));
            return;
        }
        // Before any instruction: the event VM entry injects (SDM §27.6),
        // or else the debug exceptions it found pending, delivered as traps
        // of the previous instruction (SDM Vol. 3C §27.7.3).
        let first = match self.injection.take() {
            Some(ev) => Some(self.raise_injected(ev)),
            None if self.debug.held != 0 => {
                let bits = std::mem::take(&mut self.debug.held);
                Some(self.raise(Event::debug(bits)))
            }
            None => None,
        };
        if let Some(delivered) = first {
            if let Err(stop) = delivered {
                self.leave(stop);
                return;
            }
            self.halted = false;
            if self.vmx.ctl.proc & proc::MONITOR_TRAP_FLAG != 0 {
                // With the monitor trap flag, an MTF VM exit is pending on
                // the boundary before the handler's first instruction (SDM
                // Vol. 3C §26.5.2: "VM entry is injecting a vectored event",
                // or a pending event is delivered before an instruction).
                self.vm_exit(ExitInfo::new(exit_reason::MONITOR_TRAP_FLAG, 0));
                return;
            }
        }
        loop {
            if self.power_cut() {
                self.powered_off = true;
                return;
            }
            if self.translations_in_flight() {
                self.install_translations();
            }
            if let Some(info) = self.boundary_exit() {
                self.vm_exit(info);
                return;
            }
            if self.powered_off {
                return;
            }
            // Events are looked at again by this point in virtual time: the
            // preemption-timer deadline exactly, the kick line (asynchronous
            // to the guest anyway) every POLL_INSTRUCTIONS.
            // Window exits must be seen at the very boundary they open at.
            let windows = proc::INTR_WINDOW_EXITING | proc::NMI_WINDOW_EXITING;
            let poll = if self.vmx.ctl.proc & windows != 0 {
                1
            } else {
                // As many instructions between looks whatever each costs.
                let n = if self.jit.enabled {
                    POLL_INSTRUCTIONS_TRANSLATED
                } else {
                    POLL_INSTRUCTIONS
                };
                n * self.instruction_cycles
            };
            let mut horizon = self.cycles + poll;
            if let Some(deadline) = self.preemption_deadline {
                horizon = horizon.min(deadline);
            }
            if self.halted {
                // Nothing in the guest can wake it but an event; virtual time runs on.
                self.halted_cycles += horizon.saturating_sub(self.cycles);
                self.cycles = self.cycles.max(horizon);
                std::hint::spin_loop();
                continue;
            }
            if self.stall_cycles != 0 {
                // An injected stall: the next instruction spends it before
                // it starts (`crate::stall`).
                if let Err(stop) = self.run_stall() {
                    self.leave(stop);
                    return;
                }
            }
            // The monitor trap flag: a VM exit after every instruction
            // (SDM Vol. 3C §26.5.2), so no block of them at once.
            let mtf = self.vmx.ctl.proc & proc::MONITOR_TRAP_FLAG != 0;
            loop {
                let ran = if !mtf && self.block_mode() {
                    self.run_block(horizon)
                } else {
                    Ok(false)
                };
                let result = match ran {
                    Ok(true) => Ok(()),
                    Ok(false) => self.step(),
                    Err(stop) => Err(stop),
                };
                if let Err(stop) = result {
                    self.leave(stop);
                    return;
                }
                if mtf {
                    // After the instruction, or after the delivery of the
                    // event it raised (before the handler's first).
                    self.vm_exit(ExitInfo::new(exit_reason::MONITOR_TRAP_FLAG, 0));
                    return;
                }
                if self.cycles >= horizon || self.halted {
                    break;
                }
            }
        }
    }

    /// Executes one instruction; a fault is delivered through the guest IDT
    /// and only a VM exit stops the loop.
    #[inline]
    pub(crate) fn step(&mut self) -> Result<(), Stop> {
        self.next_blocking = Blocking::default();
        self.iret_unblocked_nmi = false;
        let flags_before = self.s.rflags;
        if self.debug.code_bp && flags_before & RF == 0 {
            // Instruction breakpoints are checked before the instruction, as
            // a fault (SDM Vol. 3B §18.3.1.1); RF suppresses them once.
            let la = self.linear(crate::state::Seg::Cs, self.s.rip);
            let hits = self.code_breakpoint_hits(la);
            if hits != 0 {
                return self.raise(Event::debug(hits));
            }
        }
        let (op, slot) = match self.fetch() {
            Ok(i) => i,
            Err(stop) => return self.fault(stop),
        };
        let gen = self.code.gen;
        self.next_rip = op.next_ip;
        self.tick(self.instruction_cycles);
        let split_lock = self.split_lock(&op);
        let result = (op.handler)(self, &op);
        let len = op.ins.len() as u32;
        let mnemonic = op.ins.mnemonic();
        if let Some(hpa) = slot {
            self.code.put_back(hpa, gen, op);
        }
        match result {
            Ok(()) => {
                self.s.rip = self.next_rip;
                // Only MOV SS and POP SS block events for one instruction
                // (SDM Vol. 3A §6.8.3); IRET, RETF, LSS and gate transfers
                // load SS without that shadow.
                if self.next_blocking.mov_ss && !matches!(mnemonic, Mnemonic::Mov | Mnemonic::Pop) {
                    self.next_blocking.mov_ss = false;
                }
                self.shadow = self.next_blocking;
                self.retired += 1;
                // RF is cleared once an instruction completes; IRET loads it (SDM §18.3.1.1).
                if !matches!(mnemonic, Mnemonic::Iret | Mnemonic::Iretd | Mnemonic::Iretq) {
                    self.s.rflags &= !RF;
                }
                if split_lock {
                    // Bus-lock detection: a trap-like VM exit after the
                    // locked access that spanned two cache lines (SDM Vol.
                    // 3C, "VM Exits Caused by Bus Locks"; exit reason 74).
                    self.debug.pending = 0;
                    return Err(Stop::VmExit(ExitInfo::new(exit_reason::BUS_LOCK, 0)));
                }
                if std::mem::take(&mut self.tpr_below_threshold) {
                    // TPR virtualization's VM exit is trap-like: RIP past
                    // the MOV to CR8 (SDM Vol. 3C §30.1.2; reason 43).
                    self.debug.pending = 0;
                    return Err(Stop::VmExit(ExitInfo::new(
                        exit_reason::TPR_BELOW_THRESHOLD,
                        0,
                    )));
                }
                self.debug_traps(flags_before, mnemonic)
            }
            Err(stop) => {
                self.debug.pending = 0;
                if let Stop::VmExit(info) = stop {
                    return Err(Stop::VmExit(with_instruction_len(info, len)));
                }
                self.fault(stop)
            }
        }
    }

    /// Whether `op` is a locked read-modify-write (LOCK prefix, or XCHG with
    /// memory, which locks implicitly) whose operand spans two 64-byte cache
    /// lines — a split lock, asserting a bus lock — while bus-lock
    /// detection is on.
    fn split_lock(&self, op: &crate::decode::Op) -> bool {
        let ins = &op.ins;
        if !(ins.has_lock_prefix() || ins.mnemonic() == Mnemonic::Xchg)
            || !self.vmx.non_root
            || !self.vmx.proc2(x86::vmx::proc2::BUS_LOCK_DETECTION)
        {
            return false;
        }
        if !(0..ins.op_count()).any(|i| ins.op_kind(i) == iced_x86::OpKind::Memory) {
            return false;
        }
        let size = ins.memory_size().size() as u64;
        let la = self.linear(op.mem.seg, self.ea(&op.mem));
        (la & 63) + size > 64
    }

    /// Whether decoded blocks may run: nothing that must be looked at
    /// between two instructions is armed (breakpoints, single-step, RF, an
    /// interrupt shadow, held-back debug traps).
    #[inline]
    fn block_mode(&self) -> bool {
        !self.debug.code_bp
            && !self.debug.data_bp
            && self.debug.deferred == 0
            && self.s.rflags & (TF | RF) == 0
            && !self.shadow.sti
            && !self.shadow.mov_ss
    }

    /// Runs the decoded block at RIP, at most until virtual time `horizon`,
    /// and the blocks it leads to while time is left: nothing a block does
    /// changes what [`Self::block_mode`] looks at, so the next block may
    /// follow at once. `Ok(false)`: no block here (or the fetch path has to
    /// look first); the caller runs one instruction the ordinary way.
    fn run_block(&mut self, horizon: u64) -> Result<bool, Stop> {
        self.iret_unblocked_nmi = false;
        loop {
            match self.run_one_block(horizon)? {
                Some(true) if self.cycles < horizon => {}
                Some(_) => return Ok(true),
                // As the caller would have found on coming back: no block
                // to enter here, so one instruction runs on its own.
                None => return Ok(false),
            }
        }
    }

    /// Runs the decoded block at RIP once (or again and again while it
    /// loops back to its start). `Some(true)`: it ended at an instruction
    /// boundary where another block may follow; `Some(false)`: it ended
    /// with a delivered fault; `None`: no block here.
    #[inline]
    fn run_one_block(&mut self, horizon: u64) -> Result<Option<bool>, Stop> {
        if let Some(outcome) = self.run_jump(horizon) {
            return self.block_outcome(outcome);
        }
        let rip = self.s.rip;
        let Some(hpa) = self.enter_fetch_page(rip) else {
            return Ok(None);
        };
        if self.mem.has_dirty_code() {
            // A code page was written (perhaps just now, by the walk's
            // accessed bits): the fetch path drops its decoded code first.
            return Ok(None);
        }
        let Ok(code) = self.mem.slice(hpa, (4096 - (hpa & 0xFFF)) as usize) else {
            return Ok(None);
        };
        let Some(block) = self.code.take_block(hpa, rip, code) else {
            return Ok(None);
        };
        let gen = self.code.gen;
        let mut block = block;
        if let Some(outcome) = self.run_translated(&mut block, hpa, horizon) {
            self.code.put_block(hpa, gen, block);
            return self.block_outcome(outcome);
        }
        let mut outcome = Ok(());
        let retired_before = self.retired;
        self.quick = self.quick_mode();
        // A block that branches back to its own start (a loop) runs again
        // without another lookup while the budget lasts.
        let ic = self.instruction_cycles;
        'again: loop {
            // The budget in instructions, with a division only when the
            // block does not fit whole before the horizon.
            let left = horizon.saturating_sub(self.cycles);
            let n = block.len();
            let (budget, whole) = if (n as u64).saturating_mul(ic) <= left {
                (n, true)
            } else {
                let budget = left.div_ceil(ic).max(1) as usize;
                (budget, n <= budget)
            };
            for op in block.iter().take(budget) {
                self.next_rip = op.next_ip;
                self.cycles += ic;
                if let Err(stop) = (op.handler)(self, op) {
                    outcome = Err((stop, op.ins.len() as u32));
                    break 'again;
                }
                self.s.rip = self.next_rip;
                self.retired += 1;
                if self.mem.has_dirty_code() {
                    break 'again;
                }
                if self.next_rip != op.next_ip {
                    if whole && self.next_rip == rip && self.cycles < horizon {
                        continue 'again;
                    }
                    break 'again;
                }
            }
            break;
        }
        self.quick = crate::cpu::QUICK_UNKNOWN;
        // How hot the block is, for the translating tier.
        let ran = self.retired.wrapping_sub(retired_before);
        block.heat = block
            .heat
            .saturating_add(ran.min(u64::from(u32::MAX)) as u32);
        self.code.put_block(hpa, gen, block);
        self.block_outcome(outcome)
    }

    /// What the block loop reports for a block's outcome: a VM exit leaves
    /// with the instruction length filled in, a fault is delivered.
    fn block_outcome(&mut self, outcome: Result<(), (Stop, u32)>) -> Result<Option<bool>, Stop> {
        match outcome {
            Ok(()) => Ok(Some(true)),
            Err((Stop::VmExit(info), len)) => Err(Stop::VmExit(with_instruction_len(info, len))),
            Err((stop, _)) => self.fault(stop).map(|()| Some(false)),
        }
    }

    /// Trap-class debug exceptions after an instruction completed: data
    /// breakpoints and single-step (SDM Vol. 3B §18.3.1.2–§18.3.1.4), held
    /// for one more instruction after MOV SS / POP SS (Vol. 3A §6.8.3).
    fn debug_traps(&mut self, flags_before: u64, mnemonic: Mnemonic) -> Result<(), Stop> {
        let mut bits = std::mem::take(&mut self.debug.pending);
        // INT n, INT3 and INTO clear TF on delivery: no single-step trap for them.
        let soft_int = matches!(mnemonic, Mnemonic::Int | Mnemonic::Int1 | Mnemonic::Into);
        if flags_before & TF != 0 && !soft_int {
            bits |= crate::debug::DR6_BS;
        }
        if self.next_blocking.mov_ss {
            self.debug.deferred |= bits;
            return Ok(());
        }
        bits |= std::mem::take(&mut self.debug.deferred);
        if bits == 0 {
            return Ok(());
        }
        if self.vmx.non_root && self.vmx.ctl.proc & proc::MONITOR_TRAP_FLAG != 0 {
            // The MTF VM exit on this boundary takes priority over debug
            // traps (SDM Vol. 3C §26.5.2): they stay pending, and the exit
            // saves them in the pending-debug-exceptions field.
            self.debug.held = bits;
            return Ok(());
        }
        self.raise(Event::debug(bits))
    }

    /// Delivers the exception a failed instruction raised.
    fn fault(&mut self, stop: Stop) -> Result<(), Stop> {
        match Self::event_of(stop) {
            Ok(ev) => {
                self.shadow = Blocking::default();
                self.raise(ev)
            }
            Err(stop) => Err(stop),
        }
    }

    fn leave(&mut self, stop: Stop) {
        let info = match stop {
            Stop::VmExit(info) => info,
            Stop::PowerOff => {
                self.powered_off = true;
                return;
            }
            // An exception escaping `raise` cannot happen; treat it as a triple fault.
            _ => ExitInfo::new(exit_reason::TRIPLE_FAULT, 0),
        };
        self.vm_exit(info);
    }

    /// Events recognised at an instruction boundary that cause VM exits, in
    /// the priority order of SDM Vol. 3A §6.9 and Vol. 3C §26.2 (the
    /// preemption timer ranks above external interrupts).
    fn boundary_exit(&mut self) -> Option<ExitInfo> {
        if let Some(deadline) = self.preemption_deadline {
            if self.cycles >= deadline {
                // A VM exit caused directly by an event leaves the HLT state
                // only after the exit (SDM Vol. 3C §27.1): the saved
                // activity state stays HLT, so the hypervisor resumes a
                // halted guest still halted.
                return Some(ExitInfo::new(exit_reason::PREEMPTION_TIMER, 0));
            }
        }
        // NMI (SDM Vol. 3A §6.7.1: blocked after an NMI until IRET, and for
        // one instruction after MOV SS); with NMI exiting it is a VM exit
        // instead of a delivery (Vol. 3C §26.2).
        if !self.nmi_blocked && !self.shadow.mov_ss && self.nmi_pin.load(Ordering::Acquire) {
            self.nmi_pin.store(false, Ordering::Release);
            self.halted = false;
            let nmi = Event::new(x86::exception::NMI, EventKind::Nmi, 0);
            if self.vmx.ctl.pin & pin::NMI_EXITING != 0 {
                let mut info = ExitInfo::new(exit_reason::EXCEPTION_NMI, 0);
                info.intr_info = nmi.vmx_info();
                return Some(info);
            }
            match self.raise(nmi) {
                Ok(()) => {}
                Err(Stop::VmExit(info)) => return Some(info),
                Err(Stop::PowerOff) => {
                    // Stopped inside the delivery: the loop sees it next.
                    self.powered_off = true;
                    return None;
                }
                Err(_) => return Some(ExitInfo::new(exit_reason::TRIPLE_FAULT, 0)),
            }
        }
        // Window exits (SDM Vol. 3C §26.7.5, §26.7.6).
        if self.vmx.ctl.proc & proc::NMI_WINDOW_EXITING != 0
            && !self.nmi_blocked
            && !self.shadow.mov_ss
        {
            return Some(ExitInfo::new(exit_reason::NMI_WINDOW, 0));
        }
        if self.vmx.ctl.proc & proc::INTR_WINDOW_EXITING != 0
            && self.s.rflags & x86::rflags::IF != 0
            && !self.shadow.sti
            && !self.shadow.mov_ss
        {
            return Some(ExitInfo::new(exit_reason::INTERRUPT_WINDOW, 0));
        }
        if self.vmx.ctl.pin & pin::EXT_INTR_EXITING != 0
            && self.ext_intr_pending()
            && !self.shadow.sti
            && !self.shadow.mov_ss
        {
            self.ack_ext_intr();
            // Still halted when the exit is saved (SDM Vol. 3C §27.1).
            let mut info = ExitInfo::new(exit_reason::EXTERNAL_INTERRUPT, 0);
            if self.vmx.ctl.exit & exit_ctl::ACK_INTR_ON_EXIT != 0 {
                info.intr_info = Event::new(KICK_VECTOR, EventKind::External, 0).vmx_info()
                    & !intr_info::ERROR_CODE_VALID;
            }
            return Some(info);
        }
        None
    }
}

/// Fills in the VM-exit instruction length of an instruction-caused exit
/// that the handler left at 0 (SDM Vol. 3C §28.2.4).
fn with_instruction_len(mut info: ExitInfo, len: u32) -> ExitInfo {
    if info.instruction_len == 0 && is_instruction_exit(info.reason) {
        info.instruction_len = len;
    }
    info
}

fn is_instruction_exit(reason: u16) -> bool {
    !matches!(
        reason,
        exit_reason::EXCEPTION_NMI
            | exit_reason::EXTERNAL_INTERRUPT
            | exit_reason::TRIPLE_FAULT
            | exit_reason::EPT_VIOLATION
            | exit_reason::EPT_MISCONFIG
            | exit_reason::NOTIFY
    )
}
