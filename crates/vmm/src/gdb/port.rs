//! The vCPU's side of the stub: while the vCPU is stopped, the run loop
//! answers the debugger thread's requests against the accelerator's debug
//! access, until GDB resumes or detaches.

use super::monitor_cmd;
use accel::debug::{DebugRegisters, DebugStop, GuestDebug};
use accel::AccelError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

/// What the debugger thread asks of the stopped vCPU.
#[derive(Debug)]
pub(crate) enum Request {
    Registers,
    SetRegisters(DebugRegisters),
    Read {
        addr: u64,
        len: usize,
        physical: bool,
    },
    Write {
        addr: u64,
        data: Vec<u8>,
        physical: bool,
    },
    Breakpoint {
        addr: u64,
        add: bool,
    },
    Watchpoint {
        addr: u64,
        len: u64,
        add: bool,
    },
    Monitor(String),
    Resume {
        step: bool,
    },
    Detach,
}

/// Why the stopped vCPU refused a request (GDB hears an `E` reply; a
/// `monitor` command prints it).
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The accelerator refused the access.
    Accel(AccelError),
    /// No breakpoint at this address to remove.
    NoBreakpoint(u64),
    /// No watchpoint at this address to remove.
    NoWatchpoint(u64),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Accel(e) => write!(f, "{e}"),
            Refusal::NoBreakpoint(addr) => write!(f, "no breakpoint at {addr:#x}"),
            Refusal::NoWatchpoint(addr) => write!(f, "no watchpoint at {addr:#x}"),
        }
    }
}

impl From<AccelError> for Refusal {
    fn from(e: AccelError) -> Self {
        Refusal::Accel(e)
    }
}

/// The vCPU's answer.
#[derive(Debug)]
pub(crate) enum Answer {
    Done,
    Registers(DebugRegisters),
    Bytes(Vec<u8>),
    Text(String),
}

/// How long the end of a run waits for GDB to be told of it.
const SESSION_END_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Why the vCPU stopped, for GDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// At the debugger's request (attach, Ctrl-C).
    Interrupted,
    /// A step, breakpoint or watchpoint.
    Debug(DebugStop),
    /// The guest ended the run through the debug-exit port with this value.
    Exited(u8),
    /// The run ended otherwise (shutdown, watchdog, timeout, an error).
    Terminated,
}

/// Flags both sides read.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    /// The debugger wants the vCPU stopped.
    pub interrupt: AtomicBool,
    /// A debugger is attached.
    pub attached: AtomicBool,
}

/// The run loop's end of the stub.
pub struct DebugPort {
    pub(crate) events: Sender<Stopped>,
    pub(crate) requests: Receiver<Request>,
    pub(crate) answers: Sender<Result<Answer, Refusal>>,
    pub(crate) flags: Arc<Flags>,
    /// Disconnected when the debugger thread's session is over.
    session_over: Receiver<()>,
    /// Breakpoints and watchpoints GDB set, removed at detach.
    breakpoints: Vec<u64>,
    watchpoints: Vec<(u64, u64)>,
}

impl DebugPort {
    pub(crate) fn new(
        events: Sender<Stopped>,
        requests: Receiver<Request>,
        answers: Sender<Result<Answer, Refusal>>,
        flags: Arc<Flags>,
        session_over: Receiver<()>,
    ) -> Self {
        DebugPort {
            events,
            requests,
            answers,
            flags,
            session_over,
            breakpoints: Vec::new(),
            watchpoints: Vec::new(),
        }
    }

    /// Whether the debugger asked for the vCPU to stop (taken).
    pub fn take_interrupt(&self) -> bool {
        self.flags.interrupt.swap(false, Ordering::AcqRel)
    }

    /// Stopped by the debugger's request: serves it until it resumes.
    pub fn interrupted(&mut self, vcpu: &mut dyn GuestDebug) {
        self.serve(vcpu, Stopped::Interrupted);
    }

    /// A debug exit: serves the debugger until it resumes.
    pub fn debug_exit(&mut self, vcpu: &mut dyn GuestDebug) {
        let why = vcpu.take_stop().unwrap_or(DebugStop::Step);
        self.serve(vcpu, Stopped::Debug(why));
    }

    /// The run is over: GDB hears the guest's exit value, or that it was
    /// ended otherwise, before the run returns (and the process may end).
    pub fn run_ended(&mut self, end: &crate::RunEnd) {
        if self.flags.attached.load(Ordering::Acquire) {
            let sent = self.events.send(match end {
                crate::RunEnd::DebugExit(v) => Stopped::Exited(*v as u8),
                _ => Stopped::Terminated,
            });
            if sent.is_ok() {
                // The session ends once the stop reply is out; a GDB that
                // stopped reading does not hold the run's end for long.
                let _ = self.session_over.recv_timeout(SESSION_END_WAIT);
            }
        }
    }

    fn serve(&mut self, vcpu: &mut dyn GuestDebug, why: Stopped) {
        let since = std::time::Instant::now();
        self.serve_until_resumed(vcpu, why);
        vcpu.resume_after_stop(since.elapsed());
    }

    fn serve_until_resumed(&mut self, vcpu: &mut dyn GuestDebug, why: Stopped) {
        if self.events.send(why).is_err() {
            return self.detach(vcpu);
        }
        loop {
            let Ok(request) = self.requests.recv() else {
                return self.detach(vcpu);
            };
            let answer = match request {
                Request::Resume { step } => {
                    vcpu.set_single_step(step);
                    let _ = self.answers.send(Ok(Answer::Done));
                    return;
                }
                Request::Detach => {
                    self.detach(vcpu);
                    let _ = self.answers.send(Ok(Answer::Done));
                    return;
                }
                other => self.answer(vcpu, other),
            };
            if self.answers.send(answer).is_err() {
                return self.detach(vcpu);
            }
        }
    }

    fn answer(&mut self, vcpu: &mut dyn GuestDebug, request: Request) -> Result<Answer, Refusal> {
        Ok(match request {
            Request::Registers => Answer::Registers(vcpu.debug_registers()?),
            Request::SetRegisters(r) => {
                vcpu.set_debug_registers(&r)?;
                Answer::Done
            }
            Request::Read {
                addr,
                len,
                physical,
            } => {
                let mut buf = vec![0u8; len];
                if physical {
                    vcpu.read_physical(addr, &mut buf)?;
                } else {
                    vcpu.read_linear(addr, &mut buf)?;
                }
                Answer::Bytes(buf)
            }
            Request::Write {
                addr,
                data,
                physical,
            } => {
                if physical {
                    vcpu.write_physical(addr, &data)?;
                } else {
                    vcpu.write_linear(addr, &data)?;
                }
                Answer::Done
            }
            Request::Breakpoint { addr, add: true } => {
                vcpu.add_breakpoint(addr);
                self.breakpoints.push(addr);
                Answer::Done
            }
            Request::Breakpoint { addr, add: false } => {
                self.breakpoints.retain(|b| *b != addr);
                if vcpu.remove_breakpoint(addr) {
                    Answer::Done
                } else {
                    return Err(Refusal::NoBreakpoint(addr));
                }
            }
            Request::Watchpoint {
                addr,
                len,
                add: true,
            } => {
                vcpu.add_watchpoint(addr, len)?;
                self.watchpoints.push((addr, len));
                Answer::Done
            }
            Request::Watchpoint {
                addr,
                len,
                add: false,
            } => {
                self.watchpoints.retain(|w| *w != (addr, len));
                if vcpu.remove_watchpoint(addr, len) {
                    Answer::Done
                } else {
                    return Err(Refusal::NoWatchpoint(addr));
                }
            }
            Request::Monitor(cmd) => Answer::Text(monitor_cmd::run(vcpu, &cmd)),
            Request::Resume { .. } | Request::Detach => Answer::Done,
        })
    }

    /// GDB is gone: nothing of its stays armed, and the vCPU runs on.
    fn detach(&mut self, vcpu: &mut dyn GuestDebug) {
        for addr in self.breakpoints.drain(..) {
            vcpu.remove_breakpoint(addr);
        }
        for (addr, len) in self.watchpoints.drain(..) {
            vcpu.remove_watchpoint(addr, len);
        }
        vcpu.set_single_step(false);
        self.flags.attached.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::{Duration, Instant};

    /// A port whose debugger side is `events` and the session's end.
    fn port(attached: bool) -> (DebugPort, Receiver<Stopped>, Sender<()>) {
        let (events_tx, events_rx) = channel();
        let (_, requests_rx) = channel();
        let (answers_tx, _) = channel();
        let (session_tx, session_over) = channel();
        let flags = Arc::new(Flags::default());
        flags.attached.store(attached, Ordering::Release);
        let port = DebugPort::new(events_tx, requests_rx, answers_tx, flags, session_over);
        (port, events_rx, session_tx)
    }

    #[test]
    fn the_end_of_a_run_waits_for_gdb_to_hear_of_it() {
        let (mut port, events, session) = port(true);
        let told = std::thread::spawn(move || {
            let stop = events.recv().unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let at = Instant::now();
            drop(session);
            (stop, at)
        });
        port.run_ended(&crate::RunEnd::DebugExit(0));
        let returned = Instant::now();
        let (stop, told_at) = told.join().unwrap();
        assert_eq!(stop, Stopped::Exited(0));
        assert!(returned >= told_at, "the run ended before GDB was told");
    }

    #[test]
    fn without_gdb_the_end_of_a_run_waits_for_nothing() {
        let (mut port, events, _session) = port(false);
        let start = Instant::now();
        port.run_ended(&crate::RunEnd::Halted);
        assert!(start.elapsed() < SESSION_END_WAIT);
        assert!(events.try_recv().is_err(), "nobody to tell");
    }
}
