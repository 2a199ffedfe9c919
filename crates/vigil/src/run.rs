//! `vigil run`: one guest on the chosen accelerator, its COM1 on stdout,
//! its ending told on stderr and as the exit status.

use crate::cli::{AccelKind, NotifyInvalid, NotifyVmexit, RunArgs};
use crate::error::{Conflict, Error, FileRole};
use crate::render::{self, End};
use crate::{stats, status};
use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;
use vmm::{RunEnd, RunError, RunReport};

/// Runs the guest the arguments name; returns the process exit status.
pub fn run(args: &RunArgs) -> u8 {
    match run_guest(args) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("vigil: {e}");
            e.status()
        }
    }
}

/// The host's stdin, byte by byte, from a thread of its own (a Linux
/// guest's console input; the channel closes at end of file).
fn stdin_bytes() -> std::sync::mpsc::Receiver<u8> {
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = move || {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin().lock();
        while let Ok(n @ 1..) = stdin.read(&mut buf) {
            if buf[..n].iter().any(|&b| tx.send(b).is_err()) {
                return;
            }
        }
    };
    // Without the thread the guest simply gets no input.
    let _ = std::thread::Builder::new()
        .name("vigil-stdin".into())
        .spawn(reader);
    rx
}

/// Prepares and runs the guest, and tells its ending.
fn run_guest(args: &RunArgs) -> Result<u8, Error> {
    check_combinations(args)?;
    let image = kernel_image(args)?;
    print_guest_notes(args);
    let mut options = run_options(args)?;
    options.modules = load_modules(&args.module, args.memory)?;
    if let Some(path) = &args.initrd {
        options.initrd = Some(read_guest_file(path, FileRole::Initrd, args.memory)?);
    }
    let stdout = GuestStdout::default();
    let output = vmm::RunOutput {
        serial: Box::new(stdout.clone()),
        serial_input: vmm::loader::is_bzimage(&image).then(stdin_bytes),
        events: open_event_log(args)?,
        notices: render::warnings(),
        on_unresponsive: render::end_unresponsive(),
    };
    let result = match args.accel {
        AccelKind::Soft => vmm::run(
            &hv::soft::SoftAccelerator::default(),
            &image,
            &options,
            output,
        ),
        AccelKind::Kvm => match kvm::KvmAccelerator::open() {
            Ok(a) => vmm::run(&a, &image, &options, output),
            Err(e) => Err(RunError::Accel(e)),
        },
    };
    let mut serial = stdout.clone();
    let _ = serial.flush();
    if let Some(e) = stdout.first_error() {
        eprintln!(
            "vigil: warning: the guest's serial output could not be written to stdout ({e}); \
             output after that was lost"
        );
    }
    let report = result.map_err(|e| command_line_too_long(e, args))?;
    tell_ending(&report, args);
    Ok(status::of_end(&report.end))
}

/// Tells on stderr how the run ended (a guest's own exit needs no words),
/// with the vCPU state where it explains the ending, and the statistics
/// when asked.
fn tell_ending(report: &RunReport, args: &RunArgs) {
    if let RunEnd::DebugExit(v) = report.end {
        if v >= 128 {
            // QEMU's status, kept: only its low 8 bits reach the parent.
            eprintln!(
                "vigil: warning: the guest's exit value {v} does not fit an exit status: \
                 ({v} << 1) | 1 = {} is seen as {}",
                (u64::from(v) << 1) | 1,
                status::of_end(&report.end)
            );
        }
    } else {
        eprintln!("vigil: {}", End(&report.end));
        if let (
            RunEnd::InternalError(_)
            | RunEnd::FailEntry(_)
            | RunEnd::NotifyInternalError(_)
            | RunEnd::Stopped(_),
            Some(r),
        ) = (&report.end, &report.registers)
        {
            eprintln!("vigil: vCPU state: {r}");
        }
    }
    if args.stats {
        stats::print(report, args.accel.name());
    }
}

/// Notes on a built-in guest that will not end by itself or cannot run as
/// configured.
fn print_guest_notes(args: &RunArgs) {
    let Some(g) = args.guest.as_deref().and_then(guests::find) else {
        return;
    };
    if g.endless && args.timeout.is_none() {
        eprintln!(
            "vigil: note: {} never ends by itself; pass --timeout DURATION or stop it with Ctrl-C",
            g.name
        );
    }
    if g.vmx && (args.no_nested || args.accel != AccelKind::Soft) {
        eprintln!(
            "vigil: note: {} is a hypervisor and needs VMX, which only the soft accelerator \
             offers (without --no-nested); it will report VMX missing",
            g.name
        );
    }
}

/// Loads the kernel named by the arguments.
fn kernel_image(args: &RunArgs) -> Result<Cow<'static, [u8]>, Error> {
    if let Some(name) = &args.guest {
        return guests::find(name)
            .map(|g| Cow::Borrowed(g.image))
            .ok_or_else(|| Error::UnknownGuest(name.clone()));
    }
    let path = args.kernel.as_ref().ok_or(Error::NoKernel)?;
    read_guest_file(path, FileRole::Kernel, args.memory).map(Cow::Owned)
}

/// Reads a kernel or module: a regular file (a device such as /dev/zero or
/// a FIFO could be read without end) no larger than the `memory_mib` MiB of
/// guest RAM, which could not hold it. At most that much is ever read.
fn read_guest_file(path: &Path, role: FileRole, memory_mib: u64) -> Result<Vec<u8>, Error> {
    let io = |source| Error::ReadFile {
        role,
        path: path.to_path_buf(),
        source,
    };
    let too_large = || Error::LargerThanRam {
        role,
        path: path.to_path_buf(),
        memory_mib,
    };
    // Before opening: opening a FIFO waits for a writer.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::NotRegularFile {
            role,
            path: path.to_path_buf(),
        });
    }
    let limit = memory_mib << 20;
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut data))
        .map_err(io)?;
    // The file may have grown since.
    if data.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(data)
}

/// Option combinations that cannot work, refused before anything starts.
fn check_combinations(args: &RunArgs) -> Result<(), Error> {
    let kvm = args.accel == AccelKind::Kvm;
    let conflict = if kvm && args.no_intercept_ac_db {
        Some(Conflict::NoInterceptOnKvm)
    } else if kvm && args.gdb.is_some() {
        Some(Conflict::GdbOnKvm)
    } else if kvm && (args.inject_notify_invalid.is_some() || args.inject_stall.is_some()) {
        Some(Conflict::InjectOnKvm)
    } else if args.notify_vmexit == NotifyVmexit::Disable && args.inject_notify_invalid.is_some() {
        Some(Conflict::InjectWithoutNotify)
    } else if args.notify_vmexit == NotifyVmexit::Disable && args.notify_window != 0 {
        Some(Conflict::WindowWithoutNotify)
    } else {
        None
    };
    conflict.map_or(Ok(()), |c| Err(Error::Conflict(c)))
}

/// `O_NONBLOCK` (Linux, asm-generic/fcntl.h): opening a FIFO for writing
/// fails with ENXIO instead of waiting when it has no reader.
const O_NONBLOCK: i32 = 0o4000;

/// The `--events` file, created (emptied) before the run. A FIFO must have
/// its reader already: opening it would otherwise wait for one forever.
fn open_event_log(args: &RunArgs) -> Result<Option<Box<dyn Write + Send>>, Error> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let Some(path) = &args.events else {
        return Ok(None);
    };
    let is_fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    if is_fifo {
        // Probe without waiting; the probe is closed at once.
        let probe = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(path);
        if probe.is_err() {
            return Err(Error::EventLogWithoutReader { path: path.clone() });
        }
    }
    match std::fs::File::create(path) {
        Ok(f) => Ok(Some(Box::new(std::io::BufWriter::new(f)))),
        Err(source) => Err(Error::CreateEventLog {
            path: path.clone(),
            source,
        }),
    }
}

/// A too-long command line told as `--append`'s length, the only part the
/// operator chooses (the kernel's name and a space come first); any other
/// run error as it is.
fn command_line_too_long(e: RunError, args: &RunArgs) -> Error {
    match e {
        RunError::Load(vmm::loader::LoadError::CmdlineTooLong { .. }) => Error::AppendTooLong {
            len: args.append.as_deref().map_or(0, str::len),
            room: vmm::loader::CMDLINE_MAX.saturating_sub(kernel_name(args).len() + 1),
        },
        e => Error::Run(e),
    }
}

/// The guest's serial output on stdout, remembering the first write error
/// (stdout to a full disk or a closed pipe) for the end of the run.
#[derive(Clone, Default)]
struct GuestStdout {
    error: std::sync::Arc<std::sync::Mutex<Option<std::io::Error>>>,
}

impl GuestStdout {
    /// Keeps `e` if it is the first error.
    fn note<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r {
            let mut first = self.error.lock().unwrap_or_else(|p| p.into_inner());
            if first.is_none() {
                *first = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        }
        r
    }

    /// The first write error, if any.
    fn first_error(&self) -> Option<std::io::Error> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl Write for GuestStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = std::io::stdout().write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = std::io::stdout().flush();
        self.note(r)
    }
}

/// Reads each `--module FILE[,STRING]`: the module's string is what QEMU's
/// `-initrd` gives it, the file name followed by the arguments.
fn load_modules(specs: &[String], memory_mib: u64) -> Result<Vec<(String, Vec<u8>)>, Error> {
    specs
        .iter()
        .map(|spec| {
            let (file, args) = match spec.split_once(',') {
                Some((f, a)) => (f, Some(a)),
                None => (spec.as_str(), None),
            };
            if file.is_empty() {
                return Err(Error::ModuleWithoutFile(spec.clone()));
            }
            let data = read_guest_file(Path::new(file), FileRole::Module, memory_mib)?;
            let string = match args {
                Some(a) => format!("{file} {a}"),
                None => file.to_string(),
            };
            Ok((string, data))
        })
        .collect()
}

/// The kernel's name as the guest sees it at the start of its command line:
/// the file as given, or the built-in guest's name.
fn kernel_name(args: &RunArgs) -> String {
    match (&args.guest, &args.kernel) {
        (Some(name), _) => name.clone(),
        (None, Some(path)) => path.display().to_string(),
        (None, None) => String::new(),
    }
}

/// The run options the arguments ask for.
fn run_options(args: &RunArgs) -> Result<vmm::RunOptions, Error> {
    use vmm::policy::{InvalidContextAction, NotifyOptions, NotifyPolicy};
    let limits = vmm::monitor::Limits {
        timeout: args.timeout,
        nmi_after: args.nmi_after,
        ..vmm::monitor::Limits::with_watchdog(args.watchdog)?
    };
    Ok(vmm::RunOptions {
        memory_mib: args.memory,
        // QEMU's multiboot loader: the kernel file name, a space, -append.
        cmdline: format!(
            "{} {}",
            kernel_name(args),
            args.append.as_deref().unwrap_or_default()
        ),
        modules: Vec::new(),
        append: args.append.clone().unwrap_or_default(),
        initrd: None,
        notify: NotifyOptions {
            policy: match args.notify_vmexit {
                NotifyVmexit::Run => NotifyPolicy::Run,
                NotifyVmexit::InternalError => NotifyPolicy::InternalError,
                NotifyVmexit::Disable => NotifyPolicy::Disable,
                NotifyVmexit::Require => NotifyPolicy::Require,
            },
            window: args.notify_window,
            on_invalid: match args.notify_invalid {
                NotifyInvalid::Shutdown => InvalidContextAction::Shutdown,
                NotifyInvalid::Stop => InvalidContextAction::Stop,
            },
            intercept_ac_db: !args.no_intercept_ac_db,
            inject_context_invalid: args.inject_notify_invalid.is_some(),
            context_invalid_level: args
                .inject_notify_invalid
                .and_then(crate::cli::LevelArg::level),
            inject_stall: args.inject_stall,
        },
        limits,
        bus_lock_ratelimit: args.bus_lock_ratelimit,
        nested_vmx: !args.no_nested,
        virtual_time: match args.virtual_time {
            crate::cli::VirtualTimeArg::Paced => accel::VirtualTime::Paced,
            crate::cli::VirtualTimeArg::Exact => accel::VirtualTime::Exact,
        },
        translation: args.jit == crate::cli::JitArg::On,
        gdb: match &args.gdb {
            None => None,
            Some(spec) => Some(vmm::gdb::GdbOptions {
                listen: vmm::gdb::parse_listen(spec).map_err(vmm::RunError::Gdb)?,
                wait: args.gdb_wait,
                arch: gdb_arch(args),
            }),
        },
    })
}

/// The target description `--gdb-arch` asks for; by default a built-in
/// guest's width, else none (the vCPU's mode at attach).
fn gdb_arch(args: &RunArgs) -> Option<vmm::gdb::GdbArch> {
    use crate::cli::GdbArchArg;
    use vmm::gdb::GdbArch;
    match args.gdb_arch {
        Some(GdbArchArg::I386) => Some(GdbArch::I386),
        Some(GdbArchArg::X86_64) => Some(GdbArch::X86_64),
        Some(GdbArchArg::Auto) => None,
        None => args
            .guest
            .as_deref()
            .and_then(guests::find)
            .map(|g| match g.long_mode {
                true => GdbArch::X86_64,
                false => GdbArch::I386,
            }),
    }
}
