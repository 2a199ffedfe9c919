//! Command-line interface.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Vigil runs x86 guests on its own software CPU (with VMX and the notify
/// window) or on KVM.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None)]
#[command(
    after_help = "Exit status of `vigil run`: (v << 1) | 1 when the guest writes v to port 0xF4; \
2 bad arguments or kernel; 4 guest shutdown (triple fault); 6 guest halted for good; \
8 accelerator internal error, or a notify exit under --notify-vmexit internal-error; \
10 accelerator unavailable or failed (or without notify under --notify-vmexit require); \
12 --timeout passed; 14 the watchdog found the vCPU stalled and powered the VM off; \
16 VM stopped by --notify-invalid stop."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a multiboot kernel or a built-in guest; its COM1 output goes to stdout.
    Run(Box<RunArgs>),
    /// List the built-in guests.
    Guests,
    /// Run every notify scenario on the soft accelerator (benign guests, the
    /// #AC and #DB storms with and without notify, internal-error, an
    /// injected context-invalid exit) and print a table of outcomes.
    Demo(DemoArgs),
    /// Report, per accelerator, the capabilities that contain CPU-stall
    /// attacks (notify VM exits, triple-fault injection, bus-lock exits,
    /// nested state), the CPU, and what Vigil will do with each on this host.
    /// Exits 0 even when /dev/kvm is unusable (that is reported).
    Caps(CapsArgs),
    /// Draw a run from its event log (`vigil run --events FILE`): VM exits by
    /// kind and level over virtual and host time, notify exits and the events
    /// they stalled, the watchdog and the end, and the distribution of host
    /// time between returns to L0. Writes an SVG picture or an HTML page.
    Report(ReportArgs),
}

/// Arguments of `vigil report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The event log, as written by `vigil run --events FILE`.
    #[arg(value_name = "EVENTS.jsonl")]
    pub events: PathBuf,
    /// Where to draw: FILE.svg for the picture, FILE.html for a page with
    /// the picture and a summary.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

/// Arguments of `vigil caps`.
#[derive(Debug, clap::Args)]
pub struct CapsArgs {
    /// Report only this accelerator (default: soft, then kvm).
    #[arg(long, value_enum)]
    pub accel: Option<AccelKind>,
    /// Print one JSON object instead of aligned text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `vigil demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How long each contained storm runs before it is ended.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = vmm::duration::parse_duration)]
    pub storm_time: std::time::Duration,
    /// Watchdog bound for the scenarios without notify.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = vmm::duration::parse_duration)]
    pub watchdog: std::time::Duration,
    /// Also write each scenario's event log and picture into DIR, and
    /// DIR/index.html setting contained and stalled runs side by side.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

/// `--notify-vmexit` values (QEMU's, plus `require`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NotifyVmexit {
    /// Enable notify VM exits; log each and resume the guest (QEMU's default).
    Run,
    /// Enable them; stop the VM at the first one (exit status 8).
    InternalError,
    /// Do not enable them: only the watchdog ends an endless event delivery.
    Disable,
    /// As run, but refuse to start where the accelerator lacks them (status 10).
    Require,
}

/// `--notify-invalid` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NotifyInvalid {
    /// Inject a triple fault: the VM shuts down (status 4).
    Shutdown,
    /// Pause the VM and print the vCPU state (status 16).
    Stop,
}

/// Which accelerator runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelKind {
    /// Vigil's software CPU under Vigil's own L0 hypervisor.
    Soft,
    /// The host's /dev/kvm.
    Kvm,
}

impl AccelKind {
    /// The accelerator's name.
    pub fn name(self) -> &'static str {
        match self {
            AccelKind::Soft => "soft",
            AccelKind::Kvm => "kvm",
        }
    }
}

/// The largest `--memory`, in MiB.
pub const MAX_MEMORY_MIB: u64 = 3072;

/// Arguments of `vigil run`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("image").required(true).args(["guest", "kernel"]))]
pub struct RunArgs {
    /// Accelerator to run on.
    #[arg(long, value_enum, default_value_t = AccelKind::Soft)]
    pub accel: AccelKind,
    /// Guest RAM in MiB (2 to 3072).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(2..=MAX_MEMORY_MIB))]
    pub memory: u64,
    /// Print exit counts per reason, notify exits and responsiveness (the
    /// longest host time the vCPU went without returning to L0) when the run
    /// ends (to stderr).
    #[arg(long)]
    pub stats: bool,
    /// Notify VM exits (QEMU's notify-vmexit): run logs each and resumes the
    /// guest, internal-error stops the VM at the first, disable leaves them
    /// off, require refuses to start without them.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = NotifyVmexit::Run)]
    pub notify_vmexit: NotifyVmexit,
    /// Notify window in crystal-clock cycles, on top of the CPU's own
    /// threshold (QEMU's notify-window; 0 is safe for any real code).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub notify_window: u32,
    /// What a notify exit with an invalid guest context does: shutdown
    /// injects a triple fault, stop pauses the VM and prints its state.
    #[arg(long, value_enum, value_name = "ACTION", default_value_t = NotifyInvalid::Shutdown)]
    pub notify_invalid: NotifyInvalid,
    /// Do not intercept #AC and #DB in L0 (soft accelerator only), so that
    /// only notify VM exits contain the #AC and #DB delivery loops.
    #[arg(long)]
    pub no_intercept_ac_db: bool,
    /// Do not offer VMX to the guest (soft accelerator only; nested VMX is
    /// on by default there, as with KVM's nested=1). The kvm accelerator
    /// never offers it.
    #[arg(long)]
    pub no_nested: bool,
    /// The soft CPU's virtual time: paced keeps it near host time (timers
    /// and TSC waits take about as long as they say; not deterministic),
    /// exact counts one cycle per instruction plus fixed costs (a run is
    /// the same every time; virtual time then runs far slower than the
    /// host's). The kvm accelerator always runs on host time.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = VirtualTimeArg::Paced)]
    pub virtual_time: VirtualTimeArg,
    /// The soft CPU's translating tier: on translates guest code that runs
    /// often into host code (Cranelift), off interprets everything. Guest
    /// behaviour, virtual time and --stats are the same either way; only
    /// host speed differs. The kvm accelerator ignores it.
    #[arg(long, value_enum, value_name = "on|off", default_value_t = JitArg::Off)]
    pub jit: JitArg,
    /// End the run after this much host time (e.g. 2s, 500ms; status 12);
    /// time stopped in GDB does not count.
    #[arg(long, value_name = "DURATION", value_parser = vmm::duration::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Watchdog: a vCPU that stays in the guest this long without returning
    /// to L0 is stalled, and the VM is powered off (status 14).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = vmm::duration::parse_duration)]
    pub watchdog: std::time::Duration,
    /// Write one JSON line per notable event (notify exits, shutdown,
    /// watchdog, timeout, policy actions) to FILE, and a sample of the VM
    /// exits at every host tick; `vigil report FILE -o run.svg` draws it.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Hold the vCPU back so it asserts at most N bus locks (split-lock
    /// atomics) per second, as QEMU's bus-lock-ratelimit; needs an
    /// accelerator that reports bus locks (status 10 otherwise).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub bus_lock_ratelimit: Option<u32>,
    /// Raise one NMI on the vCPU this long after the start, as QEMU's
    /// monitor command `nmi` does (the nmi-iret guest waits for it); time
    /// stopped in GDB does not count.
    #[arg(long, value_name = "DURATION", value_parser = vmm::duration::parse_duration)]
    pub nmi_after: Option<std::time::Duration>,
    /// Fault injection for tests (soft accelerator only): the first notify
    /// exit reports an invalid guest context, which silicon never does;
    /// with =l1 or =l2, the first one taken while that level runs (l1: the
    /// VM's own code, l2: a guest of a hypervisor running in it).
    #[arg(long, value_enum, value_name = "LEVEL", num_args = 0..=1, require_equals = true, default_missing_value = "any")]
    pub inject_notify_invalid: Option<LevelArg>,
    /// Fault injection (soft accelerator only): a stall inside microcode,
    /// what notify VM exits exist for. The first instruction started at or
    /// after TIME of virtual time (default 0) while LEVEL runs (l1, l2 or
    /// any, the default) spends DURATION of virtual time, counted in
    /// crystal-clock cycles, without an instruction boundary; a notify
    /// exit cuts it, and it resumes with what is left on the next entry.
    /// E.g. 20ms,level=l2 (docs/notify.md, "The stall model").
    #[arg(long, value_name = "DURATION[,level=LEVEL][,at=TIME]", value_parser = vmm::fault_spec::parse_stall)]
    pub inject_stall: Option<accel::StallInjection>,
    /// Kernel command line, as QEMU's -append: a Linux bzImage gets STRING
    /// alone (e.g. "console=ttyS0"); a multiboot kernel sees the kernel's
    /// name, a space, then STRING. STRING may begin with '-'.
    #[arg(long, value_name = "STRING", allow_hyphen_values = true)]
    pub append: Option<String>,
    /// Initial RAM disk for a Linux bzImage, as QEMU's -initrd: loaded at the
    /// top of RAM below the kernel's initrd_addr_max (multiboot kernels take
    /// --module instead).
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// Load FILE as a multiboot module (repeatable, in order), as QEMU's
    /// -initrd "FILE STRING,...": the module's string is FILE, then a space
    /// and STRING when given. The first module is commonly a text file of
    /// KEY=VALUE lines.
    #[arg(long, value_name = "FILE[,STRING]")]
    pub module: Vec<String>,
    /// Serve GDB's remote protocol on ADDR (QEMU's -gdb spelling:
    /// tcp::PORT or tcp:HOST:PORT; soft accelerator only); GDB attaches
    /// with `target remote :PORT` and may attach at any time.
    #[arg(long, value_name = "tcp::PORT")]
    pub gdb: Option<String>,
    /// With --gdb: stop before the first instruction until GDB attaches
    /// (QEMU's -S).
    #[arg(long, requires = "gdb")]
    pub gdb_wait: bool,
    /// With --gdb: the target description GDB gets, which must match the
    /// ELF file it debugs (GDB keeps it for the session). Default: the
    /// built-in guest's width with --guest, else the vCPU's mode when GDB
    /// attaches (x86-64 in long mode, i386 otherwise; a 64-bit multiboot
    /// kernel starts in 32-bit code, so give it x86-64).
    #[arg(long, value_enum, value_name = "ARCH", requires = "gdb")]
    pub gdb_arch: Option<GdbArchArg>,
    /// Run a built-in guest by name (see `vigil guests`).
    #[arg(long, value_name = "NAME")]
    pub guest: Option<String>,
    /// A kernel file, as for `qemu-system-x86_64 -kernel`: a Linux bzImage
    /// (booted through the Linux boot protocol, e.g. `vigil run --initrd
    /// initrd.gz --append console=ttyS0 vmlinuz`) or a multiboot v1 ELF32.
    #[arg(value_name = "KERNEL")]
    pub kernel: Option<PathBuf>,
}

/// `--gdb-arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GdbArchArg {
    /// 32-bit x86: 32-bit registers, 32-bit code.
    I386,
    /// x86-64.
    #[value(name = "x86-64")]
    X86_64,
    /// The vCPU's mode when GDB attaches.
    Auto,
}

/// `--jit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JitArg {
    /// Translate hot code.
    On,
    /// Interpret everything.
    Off,
}

/// `--virtual-time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VirtualTimeArg {
    /// Near host time (QEMU's `-icount shift=auto`).
    Paced,
    /// Deterministic: one cycle per instruction plus fixed costs.
    Exact,
}

/// The guest level a fault injection aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    /// Whichever guest runs.
    Any,
    /// The VM's own code.
    L1,
    /// A guest of a hypervisor running in the VM.
    L2,
}

impl LevelArg {
    /// The accelerator's level (`None`: any).
    pub fn level(self) -> Option<accel::GuestLevel> {
        match self {
            LevelArg::Any => None,
            LevelArg::L1 => Some(accel::GuestLevel::L1),
            LevelArg::L2 => Some(accel::GuestLevel::L2),
        }
    }
}
