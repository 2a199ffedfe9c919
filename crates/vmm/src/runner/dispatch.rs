//! The exit loop: runs the vCPU and sends each exit to a device, to the
//! monitor's verdict or to the notify policy, until one ends the run.

use super::capabilities::Capabilities;
use super::machine::Board;
use super::{RunError, RunOptions};
use crate::devices::DeviceAction;
use crate::events::{Event, EventLog};
use crate::monitor::{Monitor, Verdict};
use crate::notice::{Notice, NoticeSink};
use crate::outcome::RunEnd;
use crate::policy::{notify_action, NotifyAction};
use accel::{AccelError, GuestLevel, NotifyExit, Vcpu, VcpuExit};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the exit loop saw besides how the run ended.
#[derive(Debug, Default)]
pub(super) struct ExitLog {
    /// Exits returned to the VMM, by kind.
    pub counts: BTreeMap<&'static str, u64>,
    /// Virtual time of the first notify exit, where kept.
    pub first_notify_ns: Option<u64>,
    /// Exit qualification of the first notify exit, where reported.
    pub first_notify_qualification: Option<u64>,
    /// Virtual time of the latest notify exit, where kept.
    pub last_notify_ns: Option<u64>,
    /// Longest virtual time between two consecutive notify exits.
    pub longest_notify_gap_ns: Option<u64>,
    /// Notify exits of L2's that went to L1 (`NotifyExit::to_l1`).
    pub notify_to_l1: u64,
}

/// Where one exit leaves the run.
enum Step {
    /// Run the vCPU again.
    Resume,
    /// The run is over.
    End(RunEnd),
    /// A notify exit, for the notify policy to judge.
    Notify(NotifyExit),
    /// The vCPU stopped for the debugger.
    Debug,
}

/// The state of the exit loop.
pub(super) struct Dispatcher<'a> {
    board: &'a mut Board,
    monitor: &'a Monitor,
    log: &'a mut EventLog,
    notices: &'a mut dyn NoticeSink,
    options: &'a RunOptions,
    caps: Capabilities,
    started: Instant,
    exits: ExitLog,
    warned: bool,
    bus_lock_limiter: Option<RateLimiter>,
    debugger: Option<crate::gdb::DebugPort>,
}

impl<'a> Dispatcher<'a> {
    /// A loop over `board`'s devices, judged by `monitor`, recording in `log`
    /// and telling `notices`; host time counts from `started`.
    pub fn new(
        board: &'a mut Board,
        monitor: &'a Monitor,
        log: &'a mut EventLog,
        notices: &'a mut dyn NoticeSink,
        options: &'a RunOptions,
        caps: Capabilities,
        started: Instant,
    ) -> Self {
        Dispatcher {
            board,
            monitor,
            log,
            notices,
            options,
            caps,
            started,
            exits: ExitLog::default(),
            warned: false,
            bus_lock_limiter: options.bus_lock_ratelimit.map(RateLimiter::new),
            debugger: None,
        }
    }

    /// Serves GDB through `port` (`--gdb`) while the vCPU is stopped.
    pub fn with_debugger(mut self, port: Option<crate::gdb::DebugPort>) -> Self {
        self.debugger = port;
        self
    }

    /// Runs `vcpu` until an exit ends the run.
    pub fn run<V: Vcpu>(mut self, vcpu: &mut V) -> Result<(RunEnd, ExitLog), RunError> {
        let control = vcpu.control();
        let end = loop {
            if let Some(p) = self.debugger.as_mut() {
                if p.take_interrupt() {
                    if let Some(d) = vcpu.debug() {
                        let _held = self.monitor.hold();
                        p.interrupted(d);
                    }
                }
            }
            let exit = vcpu.run()?;
            *self.exits.counts.entry(exit.kind()).or_insert(0) += 1;
            // Devices that count time (the PIT) see the vCPU's virtual time,
            // or host time where the accelerator keeps none.
            self.board.clock.set_ns(
                control
                    .virtual_ns()
                    .unwrap_or_else(|| self.started.elapsed().as_nanos() as u64),
            );
            let step = self.exit(exit);
            if let Some(linux) = self.board.linux.as_mut() {
                linux.deliver(vcpu)?;
                vcpu.set_exit_deadline(linux.next_event_ns())?;
            }
            let end = match step {
                Step::Resume => None,
                Step::End(end) => Some(end),
                Step::Notify(n) => self.notify(vcpu, n)?,
                Step::Debug => {
                    if let (Some(p), Some(d)) = (self.debugger.as_mut(), vcpu.debug()) {
                        let _held = self.monitor.hold();
                        p.debug_exit(d);
                    }
                    None
                }
            };
            if let Some(end) = end {
                break end;
            }
        };
        if let Some(p) = self.debugger.as_mut() {
            p.run_ended(&end);
        }
        Ok((end, self.exits))
    }

    /// Sends an exit to its device, or says what it means for the run.
    fn exit(&mut self, exit: VcpuExit<'_>) -> Step {
        match exit {
            VcpuExit::IoOut { port, data } => match self.board.ports.write(port, data) {
                DeviceAction::Exit(v) => return Step::End(RunEnd::DebugExit(v)),
                DeviceAction::PowerOff => return Step::End(RunEnd::GuestPowerOff),
                DeviceAction::Reset => return Step::End(RunEnd::Reset),
                DeviceAction::None => {}
            },
            VcpuExit::IoIn { port, data } => self.board.ports.read(port, data),
            VcpuExit::MmioRead { addr, data } => self.board.mmio.read(addr, data),
            VcpuExit::MmioWrite { addr, data } => self.board.mmio.write(addr, data),
            VcpuExit::Hlt => return Step::End(RunEnd::Halted),
            VcpuExit::Shutdown => return Step::End(RunEnd::Shutdown),
            VcpuExit::Interrupted => return self.interrupted(false),
            VcpuExit::PoweredOff => return self.interrupted(true),
            VcpuExit::BusLock => {
                if let Some(limiter) = self.bus_lock_limiter.as_mut() {
                    limiter.take();
                }
            }
            VcpuExit::FailEntry { hardware_reason } => {
                return Step::End(RunEnd::FailEntry(hardware_reason))
            }
            VcpuExit::InternalError(e) => return Step::End(RunEnd::InternalError(e)),
            VcpuExit::Notify(n) => return Step::Notify(n),
            VcpuExit::Debug => return Step::Debug,
        }
        Step::Resume
    }

    /// The vCPU came back because someone asked: the monitor's verdict ends
    /// the run, a power-off without one too; anything else was spurious.
    fn interrupted(&self, powered_off: bool) -> Step {
        match self.monitor.verdict() {
            Some(Verdict::Timeout(d)) => Step::End(RunEnd::Timeout(d)),
            Some(Verdict::Stalled(d)) => Step::End(RunEnd::Stalled {
                in_guest: d,
                notify: self.caps.notify,
            }),
            None if powered_off => Step::End(RunEnd::PoweredOff),
            None => Step::Resume,
        }
    }

    /// Logs a notify exit and carries out the policy's decision on it.
    fn notify<V: Vcpu>(&mut self, vcpu: &mut V, n: NotifyExit) -> Result<Option<RunEnd>, RunError> {
        let now = vcpu.virtual_ns();
        if n.to_l1 {
            // L1 enabled notify for its guest and has the exit: recorded
            // with its level, not judged by our policy.
            let what = if n.context_invalid {
                "notify VM exit from L2, guest context invalid: went to L1 (L1 enabled notify VM exiting)"
            } else {
                "notify VM exit from L2: went to L1 (L1 enabled notify VM exiting)"
            };
            self.exits.notify_to_l1 += 1;
            self.log
                .record(&notify_event("notify-exit", &n, now, what.into()));
            return Ok(None);
        }
        if self.exits.first_notify_ns.is_none() && self.exits.first_notify_qualification.is_none() {
            self.exits.first_notify_ns = now;
            self.exits.first_notify_qualification = n.qualification;
        }
        if let (Some(last), Some(now)) = (self.exits.last_notify_ns, now) {
            let gap = now.saturating_sub(last);
            self.exits.longest_notify_gap_ns =
                Some(self.exits.longest_notify_gap_ns.map_or(gap, |g| g.max(gap)));
        }
        self.exits.last_notify_ns = now;
        let what = if n.context_invalid {
            "notify VM exit, guest context invalid"
        } else {
            "notify VM exit: no instruction boundary within the notify window"
        };
        self.log
            .record(&notify_event("notify-exit", &n, now, what.into()));
        let policy = |detail: &str| notify_event("policy", &n, now, detail.into());
        let notify = &self.options.notify;
        Ok(
            match notify_action(
                notify.policy,
                notify.on_invalid,
                n.context_invalid,
                self.warned,
            ) {
                NotifyAction::TripleFault => match vcpu.inject_triple_fault() {
                    Ok(()) => {
                        self.log.record(&policy(if n.level == GuestLevel::L2 {
                            "context invalid in L2: triple fault injected, a TRIPLE_FAULT VM exit \
                             for L1 (--notify-invalid shutdown)"
                        } else {
                            "context invalid: triple fault injected (--notify-invalid shutdown)"
                        }));
                        None
                    }
                    // No triple-fault event on this host: stop instead.
                    Err(AccelError::Unsupported(why)) => {
                        self.log.record(&policy(&format!(
                            "context invalid: VM stopped, no triple fault possible ({why})"
                        )));
                        Some(RunEnd::Stopped(n))
                    }
                    Err(e) => return Err(e.into()),
                },
                NotifyAction::Stop => {
                    self.log.record(&policy(
                        "context invalid: VM stopped (--notify-invalid stop)",
                    ));
                    Some(RunEnd::Stopped(n))
                }
                NotifyAction::InternalError => {
                    self.log.record(&policy(
                        "VM stopped at the first notify exit (--notify-vmexit internal-error)",
                    ));
                    Some(RunEnd::NotifyInternalError(n))
                }
                NotifyAction::Resume { warn } => {
                    if warn {
                        self.warned = true;
                        self.notices.notice(Notice::NotifyWindowExceeded {
                            level: n.level,
                            rip: n.rip,
                        });
                    }
                    None
                }
            },
        )
    }
}

/// An event about a notify exit.
fn notify_event(
    kind: &'static str,
    n: &NotifyExit,
    virtual_ns: Option<u64>,
    detail: String,
) -> Event {
    Event {
        kind,
        virtual_ns,
        vcpu: 0,
        level: Some(n.level),
        exit_reason: Some(x86::vmx::exit_reason::NOTIFY),
        qualification: n.qualification,
        rip: n.rip,
        idt_vectoring_info: n.idt_vectoring_info,
        detail,
        ..Event::default()
    }
}

/// At most `per_second` events per second: each `take` beyond that sleeps
/// until the next one-second window (QEMU's bus-lock rate limit).
struct RateLimiter {
    per_second: u32,
    window: Instant,
    used: u32,
}

impl RateLimiter {
    fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second: per_second.max(1),
            window: Instant::now(),
            used: 0,
        }
    }

    fn take(&mut self) {
        let second = Duration::from_secs(1);
        if self.window.elapsed() >= second {
            self.window = Instant::now();
            self.used = 0;
        }
        if self.used >= self.per_second {
            std::thread::sleep(second.saturating_sub(self.window.elapsed()));
            self.window = Instant::now();
            self.used = 0;
        }
        self.used += 1;
    }
}
