//! The vCPU loop: load the kernel, apply the notify policy, run with the
//! monitor watching, dispatch each exit to a device or decide the run is over.

use crate::devices::{
    DeviceAction, MmioBus, PortBus, TestDevMmio, VirtualClock, TESTDEV_MMIO_BASE, TESTDEV_MMIO_LEN,
};
use crate::events::{Event, EventLog};
use crate::loader::{self, LoadError};
use crate::monitor::{Limits, Monitor, Verdict};
use crate::outcome::{NotifyReport, RunEnd, RunReport};
use crate::policy::{InvalidContextAction, NotifyOptions, NotifyPolicy};
use accel::{
    notify_vmexit_arg, AccelError, Accelerator, NotifyExit, Vcpu, VcpuExit, Vm, VmConfig,
    NOTIFY_VMEXIT_ENABLED, NOTIFY_VMEXIT_USER,
};
use std::collections::BTreeMap;
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
    /// Notify VM exit policy.
    pub notify: NotifyOptions,
    /// Timeout, watchdog and host tick.
    pub limits: Limits,
    /// Print warnings (the first notify exit under `run`, a missing notify
    /// capability) to stderr as they happen.
    pub warnings: bool,
    /// At most this many guest bus locks per second (QEMU's
    /// `bus-lock-ratelimit`): the vCPU is held back when it asserts more.
    /// `None`: bus locks are counted where the accelerator reports them,
    /// never slowed.
    pub bus_lock_ratelimit: Option<u32>,
    /// Offer VMX to the guest (nested virtualization), where the
    /// accelerator can.
    pub nested_vmx: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            memory_mib: 128,
            cmdline: String::new(),
            modules: Vec::new(),
            notify: NotifyOptions::default(),
            limits: Limits::default(),
            warnings: true,
            bus_lock_ratelimit: None,
            nested_vmx: true,
        }
    }
}

/// Where a run's output goes.
pub struct RunOutput {
    /// COM1.
    pub serial: Box<dyn Write + Send>,
    /// The `--events` JSON-lines log, if any.
    pub events: Option<Box<dyn Write + Send>>,
}

/// A run that could not take place or was cut short by the host side.
#[derive(Debug)]
pub enum RunError {
    /// The kernel image cannot be loaded.
    Load(LoadError),
    /// The accelerator failed.
    Accel(AccelError),
    /// The device configuration is inconsistent.
    Devices(String),
    /// `--notify-vmexit require` on an accelerator without notify VM exits.
    NotifyUnavailable(&'static str),
    /// `--bus-lock-ratelimit` on an accelerator without bus-lock exits.
    BusLockUnavailable(&'static str),
    /// The monitor thread could not be started.
    Monitor(std::io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Load(e) => write!(f, "{e}"),
            RunError::Accel(e) => write!(f, "{e}"),
            RunError::Devices(e) => write!(f, "device setup failed: {e}"),
            RunError::NotifyUnavailable(accel) => write!(
                f,
                "--notify-vmexit require: the {accel} accelerator on this host has no notify VM \
                 exit (KVM_CAP_X86_NOTIFY_VMEXIT); use --accel soft, or --notify-vmexit run to \
                 go on without it"
            ),
            RunError::Monitor(e) => write!(f, "cannot start the monitor thread: {e}"),
            RunError::BusLockUnavailable(accel) => write!(
                f,
                "--bus-lock-ratelimit: the {accel} accelerator on this host cannot report bus \
                 locks (KVM_CAP_X86_BUS_LOCK_EXIT); use --accel soft or drop the option"
            ),
        }
    }
}

impl std::error::Error for RunError {}

impl From<AccelError> for RunError {
    fn from(e: AccelError) -> Self {
        RunError::Accel(e)
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
        let second = std::time::Duration::from_secs(1);
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
    }
}

/// Loads `image` as a multiboot kernel and runs it on `accel` until it ends.
pub fn run<A: Accelerator>(
    accel: &A,
    image: &[u8],
    options: &RunOptions,
    output: RunOutput,
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let mut log = EventLog::new(output.events);
    let memory_bytes = options.memory_mib.checked_mul(1 << 20).ok_or_else(|| {
        RunError::Accel(AccelError::InvalidConfig("memory size overflows".into()))
    })?;
    let modules: Vec<loader::Module<'_>> = options
        .modules
        .iter()
        .map(|(string, data)| loader::Module { data, string })
        .collect();
    let boot = loader::load_multiboot_with_modules(image, memory_bytes, &options.cmdline, &modules)
        .map_err(RunError::Load)?;
    let clock = VirtualClock::new();
    let (mut bus, _pic) = PortBus::pc(output.serial, memory_bytes, clock.clone())
        .map_err(|e| RunError::Devices(e.to_string()))?;
    let mut mmio = MmioBus::new();
    mmio.register(
        TESTDEV_MMIO_BASE,
        TESTDEV_MMIO_LEN as u64,
        Box::new(TestDevMmio::new()),
    );

    let bus_locks_reported = accel.supports_bus_lock_exit();
    if options.bus_lock_ratelimit.is_some() && !bus_locks_reported {
        return Err(RunError::BusLockUnavailable(accel.name()));
    }
    let policy = options.notify.policy;
    let notify_on = policy.wants_notify() && accel.supports_notify_vmexit();
    if policy == NotifyPolicy::Require && !notify_on {
        return Err(RunError::NotifyUnavailable(accel.name()));
    }
    if policy.wants_notify() && !notify_on {
        let detail = format!(
            "the {} accelerator on this host has no notify VM exit (KVM_CAP_X86_NOTIFY_VMEXIT): \
             CPU-stall attacks inside event delivery are not contained",
            accel.name()
        );
        if options.warnings {
            eprintln!("vigil: warning: {detail}; --notify-vmexit require refuses to start instead");
        }
        log.record(&Event {
            kind: "notify-unavailable",
            detail,
            ..Event::default()
        });
    }
    let mut vm = accel.create_vm(&VmConfig {
        memory_bytes,
        intercept_ac_db: options.notify.intercept_ac_db,
        nested_vmx: options.nested_vmx,
    })?;
    for (gpa, bytes) in &boot.regions {
        vm.write_memory(*gpa, bytes)?;
    }
    if notify_on {
        // USER: every notify exit comes here, to be logged and judged.
        let flags = NOTIFY_VMEXIT_ENABLED | NOTIFY_VMEXIT_USER;
        vm.enable_notify_vmexit(notify_vmexit_arg(options.notify.window, flags))?;
    }
    if bus_locks_reported {
        vm.enable_bus_lock_exit()?;
    }
    if options.notify.inject_context_invalid {
        vm.arm_notify_context_invalid()?;
    }
    let mut vcpu = vm.create_vcpu(0, &boot.entry)?;
    let control = vcpu.control();
    let monitor = Monitor::spawn(control.clone(), options.limits).map_err(RunError::Monitor)?;
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut first_notify_ns = None;
    let mut first_notify_qual = None;
    let mut warned = false;
    let mut bus_lock_limiter = options.bus_lock_ratelimit.map(RateLimiter::new);
    let end = loop {
        let exit = vcpu.run()?;
        *counts.entry(exit.kind()).or_insert(0) += 1;
        // Devices that count time (the PIT) see the vCPU's virtual time, or
        // host time where the accelerator keeps none.
        clock.set_ns(
            control
                .virtual_ns()
                .unwrap_or_else(|| started.elapsed().as_nanos() as u64),
        );
        match exit {
            VcpuExit::IoOut { port, data } => {
                if let DeviceAction::Exit(v) = bus.write(port, data) {
                    break RunEnd::DebugExit(v);
                }
            }
            VcpuExit::IoIn { port, data } => bus.read(port, data),
            VcpuExit::MmioRead { addr, data } => mmio.read(addr, data),
            VcpuExit::MmioWrite { addr, data } => mmio.write(addr, data),
            VcpuExit::Hlt => break RunEnd::Halted,
            VcpuExit::Shutdown => break RunEnd::Shutdown,
            VcpuExit::Interrupted | VcpuExit::PoweredOff => {
                match monitor.verdict() {
                    Some(Verdict::Timeout(d)) => break RunEnd::Timeout(d),
                    Some(Verdict::Stalled(d)) => {
                        break RunEnd::Stalled {
                            in_guest: d,
                            notify: notify_on,
                        }
                    }
                    None if matches!(exit, VcpuExit::PoweredOff) => break RunEnd::PoweredOff,
                    // A spurious interruption: resume.
                    None => {}
                }
            }
            VcpuExit::BusLock => {
                if let Some(limiter) = bus_lock_limiter.as_mut() {
                    limiter.take();
                }
            }
            VcpuExit::FailEntry { hardware_reason } => break RunEnd::FailEntry(hardware_reason),
            VcpuExit::InternalError(e) => break RunEnd::InternalError(e),
            VcpuExit::Notify(n) => {
                let now = vcpu.virtual_ns();
                if first_notify_ns.is_none() && first_notify_qual.is_none() {
                    first_notify_ns = now;
                    first_notify_qual = n.qualification;
                }
                log.record(&notify_event(
                    "notify-exit",
                    &n,
                    now,
                    if n.context_invalid {
                        "notify VM exit, guest context invalid".into()
                    } else {
                        "notify VM exit: no instruction boundary within the notify window".into()
                    },
                ));
                if n.context_invalid {
                    match options.notify.on_invalid {
                        InvalidContextAction::Shutdown => match vcpu.inject_triple_fault() {
                            Ok(()) => log.record(&notify_event(
                                "policy",
                                &n,
                                now,
                                if n.level == accel::GuestLevel::L2 {
                                    "context invalid in L2: triple fault injected, a TRIPLE_FAULT \
                                     VM exit for L1 (--notify-invalid shutdown)"
                                } else {
                                    "context invalid: triple fault injected (--notify-invalid shutdown)"
                                }
                                .into(),
                            )),
                            // No triple-fault event on this host: stop instead.
                            Err(AccelError::Unsupported(why)) => {
                                log.record(&notify_event(
                                    "policy",
                                    &n,
                                    now,
                                    format!("context invalid: VM stopped, no triple fault possible ({why})"),
                                ));
                                break RunEnd::Stopped(n);
                            }
                            Err(e) => return Err(e.into()),
                        },
                        InvalidContextAction::Stop => {
                            log.record(&notify_event(
                                "policy",
                                &n,
                                now,
                                "context invalid: VM stopped (--notify-invalid stop)".into(),
                            ));
                            break RunEnd::Stopped(n);
                        }
                    }
                } else if policy == NotifyPolicy::InternalError {
                    log.record(&notify_event(
                        "policy",
                        &n,
                        now,
                        "VM stopped at the first notify exit (--notify-vmexit internal-error)"
                            .into(),
                    ));
                    break RunEnd::NotifyInternalError(n);
                } else if !warned {
                    warned = true;
                    if options.warnings {
                        eprintln!(
                            "vigil: warning: notify window exceeded in the guest{}{}; resuming it \
                             (further notify exits are counted, see --stats and --events)",
                            if n.level == accel::GuestLevel::L2 {
                                " (L2)"
                            } else {
                                ""
                            },
                            n.rip.map_or(String::new(), |r| format!(" at rip {r:#x}"))
                        );
                    }
                }
            }
        }
    };
    let verdict = monitor.finish();
    let end = match (end, verdict) {
        // The monitor cut the power while the loop was deciding otherwise.
        (RunEnd::PoweredOff, Some(Verdict::Stalled(d))) => RunEnd::Stalled {
            in_guest: d,
            notify: notify_on,
        },
        (end, _) => end,
    };
    let stats = vcpu.stats();
    let virtual_ns = vcpu.virtual_ns();
    match &end {
        RunEnd::Shutdown => log.record(&Event {
            kind: "shutdown",
            virtual_ns,
            level: Some(accel::GuestLevel::L1),
            exit_reason: Some(x86::vmx::exit_reason::TRIPLE_FAULT),
            detail: "the guest shut down (triple fault)".into(),
            ..Event::default()
        }),
        RunEnd::Stalled { in_guest: d, .. } => log.record(&Event {
            kind: "watchdog",
            virtual_ns,
            detail: format!(
                "vCPU 0 spent {:.3} s in the guest without returning to L0; powered off",
                d.as_secs_f64()
            ),
            ..Event::default()
        }),
        RunEnd::Timeout(d) => log.record(&Event {
            kind: "timeout",
            virtual_ns,
            detail: format!("run ended by --timeout after {:.3} s", d.as_secs_f64()),
            ..Event::default()
        }),
        _ => {}
    }
    let event_log_error = log
        .take_error()
        .map(|e| format!("the event log could not be written ({e}); events after that were lost"));
    Ok(RunReport {
        end,
        userspace_exits: counts.into_iter().collect(),
        internal_exits: stats.internal_exits,
        unclaimed_port_accesses: {
            let u = bus.unclaimed();
            u.reads + u.writes
        },
        unclaimed_mmio_accesses: mmio.unclaimed(),
        bus_lock_exits: bus_locks_reported.then_some(stats.bus_lock_exits),
        nested_exits_to_l1: stats.nested_exits_to_l1,
        registers: vcpu.registers().ok(),
        notify: NotifyReport {
            enabled: notify_on,
            exits: stats.notify_exits,
            first_exit_virtual_ns: first_notify_ns,
            first_exit_qualification: first_notify_qual,
            longest_without_l0: stats.longest_without_l0,
            virtual_ns,
            host_time: started.elapsed(),
        },
        event_log_error,
    })
}
