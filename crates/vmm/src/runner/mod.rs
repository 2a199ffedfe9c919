//! One run, in four steps: build the machine (the kernel loaded, the PC's
//! devices, the VM and its vCPU: [`machine`]), check what the options ask of
//! the accelerator ([`capabilities`]), run the vCPU with the monitor
//! watching and send each exit to a device or to the notify policy until one
//! ends the run ([`dispatch`]), and report ([`report`]).

mod capabilities;
mod dispatch;
mod machine;
mod report;

use crate::devices::BusError;
use crate::events::EventLog;
use crate::loader::LoadError;
use crate::monitor::{Limits, Monitor, OnUnresponsive};
use crate::notice::NoticeSink;
use crate::outcome::RunReport;
use crate::policy::NotifyOptions;
use accel::{AccelError, Accelerator, Vcpu};
use dispatch::Dispatcher;
use std::fmt;
use std::io::Write;
use std::time::Instant;

/// Options of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Guest RAM in MiB.
    pub memory_mib: u64,
    /// Kernel command line passed through multiboot (QEMU passes the kernel
    /// file name, a space, and `-append`'s text; the caller composes it).
    pub cmdline: String,
    /// Multiboot modules, in order: `(string, contents)`.
    pub modules: Vec<(String, Vec<u8>)>,
    /// A Linux kernel's command line: `-append`'s text alone, as QEMU
    /// gives it to a bzImage.
    pub append: String,
    /// A Linux kernel's initial RAM disk (QEMU's `-initrd` for a bzImage).
    pub initrd: Option<Vec<u8>>,
    /// Notify VM exit policy.
    pub notify: NotifyOptions,
    /// Timeout, watchdog and host tick.
    pub limits: Limits,
    /// At most this many guest bus locks per second (QEMU's
    /// `bus-lock-ratelimit`): the vCPU is held back when it asserts more.
    /// `None`: bus locks are counted where the accelerator reports them,
    /// never slowed.
    pub bus_lock_ratelimit: Option<u32>,
    /// Offer VMX to the guest (nested virtualization), where the
    /// accelerator can.
    pub nested_vmx: bool,
    /// The soft CPU's virtual time: exact (deterministic) or paced to host
    /// time.
    pub virtual_time: accel::VirtualTime,
    /// Run hot guest code translated (the soft accelerator's `--jit`).
    pub translation: bool,
    /// Serve GDB's remote protocol (`--gdb`), where the accelerator offers
    /// debug access.
    pub gdb: Option<crate::gdb::GdbOptions>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            memory_mib: 128,
            cmdline: String::new(),
            modules: Vec::new(),
            append: String::new(),
            initrd: None,
            notify: NotifyOptions::default(),
            limits: Limits::default(),
            bus_lock_ratelimit: None,
            nested_vmx: true,
            virtual_time: accel::VirtualTime::Exact,
            translation: false,
            gdb: None,
        }
    }
}

/// Where a run's output goes.
pub struct RunOutput {
    /// COM1.
    pub serial: Box<dyn Write + Send>,
    /// Bytes for COM1's receiver (a Linux guest's console input, e.g. the
    /// host's stdin), if any; the multiboot board ignores them.
    pub serial_input: Option<std::sync::mpsc::Receiver<u8>>,
    /// The event log (JSON lines), if any.
    pub events: Option<Box<dyn Write + Send>>,
    /// Where notices go as they arise.
    pub notices: Box<dyn NoticeSink + Send>,
    /// What ends the process when a stalled vCPU does not stop when
    /// powered off (see [`OnUnresponsive`]).
    pub on_unresponsive: OnUnresponsive,
}

/// A run that could not take place or was cut short by the host side.
#[derive(Debug)]
pub enum RunError {
    /// The kernel image cannot be loaded.
    Load(LoadError),
    /// The accelerator failed.
    Accel(AccelError),
    /// The device configuration is inconsistent.
    Devices(BusError),
    /// Guest RAM of this many MiB does not fit in a 64-bit size.
    MemoryTooLarge {
        /// The size asked for.
        mib: u64,
    },
    /// The notify policy `require` on this accelerator, which has no notify
    /// VM exits.
    NotifyUnavailable(&'static str),
    /// A bus-lock rate limit on this accelerator, which cannot report bus
    /// locks.
    BusLockUnavailable(&'static str),
    /// The monitor thread could not be started.
    Monitor(std::io::Error),
    /// The GDB stub could not start.
    Gdb(crate::gdb::GdbError),
    /// `--gdb` on an accelerator without debug access.
    DebugUnavailable(&'static str),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Load(e) => write!(f, "{e}"),
            RunError::Accel(e) => write!(f, "{e}"),
            RunError::Devices(e) => write!(f, "device setup failed: {e}"),
            RunError::MemoryTooLarge { mib } => write!(
                f,
                "invalid VM configuration: {mib} MiB of guest RAM overflows a 64-bit size"
            ),
            RunError::NotifyUnavailable(accel) => write!(
                f,
                "the {accel} accelerator on this host has no notify VM exit \
                 (KVM_CAP_X86_NOTIFY_VMEXIT)"
            ),
            RunError::Monitor(e) => write!(f, "cannot start the monitor thread: {e}"),
            RunError::Gdb(e) => write!(f, "{e}"),
            RunError::DebugUnavailable(accel) => write!(
                f,
                "--gdb: the {accel} accelerator offers no debug access; use --accel soft"
            ),
            RunError::BusLockUnavailable(accel) => write!(
                f,
                "the {accel} accelerator on this host cannot report bus locks \
                 (KVM_CAP_X86_BUS_LOCK_EXIT)"
            ),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Shown as the error itself: its own cause is the run's.
            RunError::Load(e) => e.source(),
            RunError::Accel(e) => e.source(),
            RunError::Devices(e) => Some(e),
            RunError::Monitor(e) => Some(e),
            RunError::Gdb(e) => Some(e),
            RunError::DebugUnavailable(_) => None,
            RunError::NotifyUnavailable(_)
            | RunError::BusLockUnavailable(_)
            | RunError::MemoryTooLarge { .. } => None,
        }
    }
}

impl From<AccelError> for RunError {
    fn from(e: AccelError) -> Self {
        RunError::Accel(e)
    }
}

/// Loads `image` (a Linux bzImage or a multiboot kernel) and runs it on `accel` until it ends.
pub fn run<A: Accelerator>(
    accel: &A,
    image: &[u8],
    options: &RunOptions,
    output: RunOutput,
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let RunOutput {
        serial,
        serial_input,
        events,
        mut notices,
        on_unresponsive,
    } = output;
    let mut log = EventLog::new(events);
    let mut board = machine::build_board(image, options, serial)?;
    if let (Some(linux), Some(input)) = (board.linux.as_mut(), serial_input) {
        linux.connect_input(input);
    }
    let caps = capabilities::check(accel, options, &mut log, notices.as_mut())?;
    let (_vm, mut vcpu) = machine::create_vm(accel, &board, options, &caps)?;
    // Before the monitor: `--gdb-wait` waits for GDB before the clocks of
    // --timeout and the watchdog start.
    let debugger = match &options.gdb {
        None => None,
        Some(_) if vcpu.debug().is_none() => return Err(RunError::DebugUnavailable(accel.name())),
        Some(g) => Some(crate::gdb::start(g, vcpu.control()).map_err(RunError::Gdb)?),
    };
    let limits = crate::monitor::Limits {
        // The Linux board's timed devices interrupt through the VMM.
        kick_userspace: options.limits.kick_userspace || board.linux.is_some(),
        ..options.limits
    };
    let sampler = log
        .is_active()
        .then(|| crate::sampler::Sampler::new(vcpu.control(), log.clone()));
    let monitor = Monitor::spawn_sampling(vcpu.control(), limits, on_unresponsive, sampler)
        .map_err(RunError::Monitor)?;
    let (end, exits) = Dispatcher::new(
        &mut board,
        &monitor,
        &mut log,
        notices.as_mut(),
        options,
        caps,
        started,
    )
    .with_debugger(debugger)
    .run(&mut vcpu)?;
    let end = report::settle(end, monitor.finish(), &caps);
    let finished = report::Finished {
        end,
        exits,
        vcpu: &vcpu,
        board: &board,
        caps,
        started,
    };
    Ok(report::report(finished, log, notices.as_mut()))
}
