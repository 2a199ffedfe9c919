//! The debugger thread: GDB's connection, driven by `gdbstub`, with every
//! register, memory and breakpoint operation sent to the stopped vCPU's
//! run loop ([`super::port`]) and answered from there.

use super::arch::{GdbArch, Regs, VigilX86};
use super::port::{Answer, Flags, Refusal, Request, Stopped};
use accel::debug::DebugStop;
use accel::VcpuControl;
use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::run_blocking::{self, BlockingEventLoop, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind,
};
use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::ext::target_description_xml_override::{
    TargetDescriptionXmlOverride, TargetDescriptionXmlOverrideOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

/// The stub's view of the vCPU: requests out, answers and stops in.
pub(crate) struct Remote {
    pub requests: Sender<Request>,
    pub answers: Receiver<Result<Answer, Refusal>>,
    pub events: Receiver<Stopped>,
    pub flags: Arc<Flags>,
    pub control: Arc<dyn VcpuControl>,
    /// Memory by physical address (`monitor phys on`).
    pub physical: bool,
    /// The target description of the session: as asked, or chosen from
    /// the vCPU's mode when GDB attaches.
    pub arch: Option<GdbArch>,
}

/// The run loop is gone (the run ended or failed).
#[derive(Debug)]
pub(crate) struct Gone;

impl Remote {
    fn ask(&mut self, request: Request) -> Result<Result<Answer, Refusal>, Gone> {
        self.requests.send(request).map_err(|_| Gone)?;
        self.answers.recv().map_err(|_| Gone)
    }

    /// Asks; a refusal is GDB's `E` reply, a vanished run loop is fatal.
    fn call(&mut self, request: Request) -> TargetResult<Answer, Self> {
        match self.ask(request) {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(_)) => Err(TargetError::NonFatal),
            Err(gone) => Err(TargetError::Fatal(gone)),
        }
    }

    /// Stops the vCPU (attach, Ctrl-C).
    pub fn interrupt(&self) {
        self.flags.interrupt.store(true, Ordering::Release);
        self.control.request_exit();
    }
}

/// GDB's stop reason for a vCPU stop.
fn stop_reason(s: Stopped) -> SingleThreadStopReason<u64> {
    match s {
        Stopped::Interrupted => SingleThreadStopReason::Signal(Signal::SIGINT),
        Stopped::Debug(DebugStop::Step) => SingleThreadStopReason::DoneStep,
        Stopped::Debug(DebugStop::Breakpoint(_)) => SingleThreadStopReason::SwBreak(()),
        Stopped::Debug(DebugStop::Watch(addr)) => SingleThreadStopReason::Watch {
            tid: (),
            kind: WatchKind::Write,
            addr,
        },
        Stopped::Exited(status) => SingleThreadStopReason::Exited(status),
        Stopped::Terminated => SingleThreadStopReason::Terminated(Signal::SIGKILL),
    }
}

impl Target for Remote {
    type Arch = VigilX86;
    type Error = Gone;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    fn support_target_description_xml_override(
        &mut self,
    ) -> Option<TargetDescriptionXmlOverrideOps<'_, Self>> {
        Some(self)
    }
}

impl Remote {
    /// The session's target description.
    fn arch(&self) -> GdbArch {
        self.arch.unwrap_or_default()
    }
}

impl TargetDescriptionXmlOverride for Remote {
    fn target_description_xml(
        &self,
        annex: &[u8],
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        if annex != b"target.xml" {
            return Err(TargetError::NonFatal);
        }
        let xml = self.arch().target_xml().as_bytes();
        let from = usize::try_from(offset).map_or(xml.len(), |o| o.min(xml.len()));
        let part = &xml[from..];
        let n = part.len().min(length).min(buf.len());
        buf[..n].copy_from_slice(&part[..n]);
        Ok(n)
    }
}

impl SingleThreadBase for Remote {
    fn read_registers(&mut self, regs: &mut Regs) -> TargetResult<(), Self> {
        match self.call(Request::Registers)? {
            Answer::Registers(cpu) => {
                *regs = Regs {
                    arch: self.arch(),
                    cpu,
                };
                Ok(())
            }
            _ => Err(TargetError::NonFatal),
        }
    }

    fn write_registers(&mut self, regs: &Regs) -> TargetResult<(), Self> {
        if regs.arch != self.arch() {
            return Err(TargetError::NonFatal);
        }
        let Answer::Registers(base) = self.call(Request::Registers)? else {
            return Err(TargetError::NonFatal);
        };
        self.call(Request::SetRegisters(regs.to_debug(&base)))
            .map(|_| ())
    }

    fn read_addrs(&mut self, start_addr: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        let physical = self.physical;
        let request = Request::Read {
            addr: start_addr,
            len: data.len(),
            physical,
        };
        match self.call(request)? {
            Answer::Bytes(b) => {
                data.copy_from_slice(&b);
                Ok(b.len())
            }
            _ => Err(TargetError::NonFatal),
        }
    }

    fn write_addrs(&mut self, start_addr: u64, data: &[u8]) -> TargetResult<(), Self> {
        let physical = self.physical;
        self.call(Request::Write {
            addr: start_addr,
            data: data.to_vec(),
            physical,
        })
        .map(|_| ())
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadResume for Remote {
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), Gone> {
        self.ask(Request::Resume { step: false }).map(|_| ())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for Remote {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), Gone> {
        self.ask(Request::Resume { step: true }).map(|_| ())
    }
}

impl Breakpoints for Remote {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl Remote {
    fn breakpoint(&mut self, addr: u64, add: bool) -> TargetResult<bool, Self> {
        match self.call(Request::Breakpoint { addr, add }) {
            Ok(_) => Ok(true),
            Err(TargetError::NonFatal) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

// Breakpoints of either kind stop the vCPU when RIP reaches them, checked
// after every instruction: nothing is written into guest memory.
impl SwBreakpoint for Remote {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.breakpoint(addr, true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.breakpoint(addr, false)
    }
}

impl HwBreakpoint for Remote {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.breakpoint(addr, true)
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.breakpoint(addr, false)
    }
}

impl Remote {
    /// Sets or removes a write watchpoint; only writes change what is
    /// watched, so GDB hears that other kinds cannot be set.
    fn watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
        add: bool,
    ) -> TargetResult<bool, Self> {
        if kind != WatchKind::Write {
            return Ok(false);
        }
        match self.call(Request::Watchpoint { addr, len, add }) {
            Ok(_) => Ok(true),
            Err(TargetError::NonFatal) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl HwWatchpoint for Remote {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        self.watchpoint(addr, len, kind, true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        self.watchpoint(addr, len, kind, false)
    }
}

impl MonitorCmd for Remote {
    fn handle_monitor_cmd(&mut self, cmd: &[u8], mut out: ConsoleOutput<'_>) -> Result<(), Gone> {
        let cmd = String::from_utf8_lossy(cmd).into_owned();
        let text = match cmd.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["phys", "on"] => {
                self.physical = true;
                "memory by physical address\n".to_string()
            }
            ["phys", "off"] => {
                self.physical = false;
                "memory by linear address, through the guest's page tables\n".to_string()
            }
            _ => match self.ask(Request::Monitor(cmd))? {
                Ok(Answer::Text(t)) => t,
                Ok(_) => String::new(),
                Err(e) => format!("{e}\n"),
            },
        };
        gdbstub::output!(out, "{text}");
        Ok(())
    }
}

/// `gdbstub`'s blocking loop: while the vCPU runs, wait for its stop or for
/// GDB's next byte (Ctrl-C).
enum Loop {}

impl BlockingEventLoop for Loop {
    type Target = Remote;
    type Connection = TcpStream;
    type StopReason = SingleThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut Remote,
        conn: &mut TcpStream,
    ) -> Result<run_blocking::Event<Self::StopReason>, WaitForStopReasonError<Gone, std::io::Error>>
    {
        loop {
            match target.events.recv_timeout(Duration::from_millis(5)) {
                Ok(s) => return Ok(run_blocking::Event::TargetStopped(stop_reason(s))),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(WaitForStopReasonError::Target(Gone))
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if ConnectionExt::peek(conn)
                .map_err(WaitForStopReasonError::Connection)?
                .is_some()
            {
                let byte = ConnectionExt::read(conn).map_err(WaitForStopReasonError::Connection)?;
                return Ok(run_blocking::Event::IncomingData(byte));
            }
        }
    }

    fn on_interrupt(target: &mut Remote) -> Result<Option<Self::StopReason>, Gone> {
        target.interrupt();
        Ok(None)
    }
}

/// Serves one GDB session on `conn`: stops the vCPU, then runs the
/// protocol until GDB detaches or the run ends.
pub(crate) fn session(mut remote: Remote, conn: TcpStream) {
    let mut conn = conn;
    let _ = Connection::on_session_start(&mut conn);
    remote.flags.attached.store(true, Ordering::Release);
    remote.interrupt();
    // The vCPU's first stop: GDB's `?` hears it as the state at attach.
    if remote.events.recv().is_err() {
        return;
    }
    if remote.arch.is_none() {
        remote.arch = match remote.ask(Request::Registers) {
            Ok(Ok(Answer::Registers(r))) => Some(GdbArch::of_mode(&r)),
            Ok(_) => None,
            Err(Gone) => return,
        };
    }
    let stub = GdbStub::new(conn);
    let end = stub.run_blocking::<Loop>(&mut remote);
    if !matches!(
        end,
        Ok(DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_))
    ) {
        let _ = remote.ask(Request::Detach);
    }
}
