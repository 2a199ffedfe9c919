//! The `vigil` command: run guests on the soft accelerator or on KVM.

mod caps;
mod cli;
mod demo;
mod stats;

use clap::Parser;
use cli::{AccelKind, Cli, Command, NotifyInvalid, NotifyVmexit, RunArgs};
use std::io::Write;
use std::process::ExitCode;
use vmm::outcome::{STATUS_ACCEL_FAILED, STATUS_USAGE};
use vmm::runner::RunError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Guests => {
            list_guests();
            0
        }
        Command::Run(args) => run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Caps(args) => caps::run(&args),
    };
    ExitCode::from(status as u8)
}

/// Prints one line per built-in guest. A closed pipe (`vigil guests | head`)
/// just ends the listing.
fn list_guests() {
    let width = guests::all()
        .iter()
        .map(|g| g.name.len())
        .max()
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for g in guests::all() {
        let endless = if g.endless { " [endless]" } else { "" };
        let configured = if g.configured {
            " [needs --append/--module]"
        } else {
            ""
        };
        let vmx = if g.vmx { " [needs VMX: soft]" } else { "" };
        if writeln!(
            out,
            "{:<width$}  {}{endless}{configured}{vmx}",
            g.name, g.summary
        )
        .is_err()
        {
            return;
        }
    }
}

/// Loads the kernel named by the arguments.
fn kernel_image(args: &RunArgs) -> Result<std::borrow::Cow<'static, [u8]>, String> {
    if let Some(name) = &args.guest {
        return guests::find(name)
            .map(|g| std::borrow::Cow::Borrowed(g.image))
            .ok_or_else(|| format!("no built-in guest named '{name}'; `vigil guests` lists them"));
    }
    let path = args.kernel.as_ref().ok_or_else(|| {
        "no kernel given: pass a multiboot kernel file or --guest NAME".to_string()
    })?;
    std::fs::read(path)
        .map(std::borrow::Cow::Owned)
        .map_err(|e| format!("cannot read kernel '{}': {e}", path.display()))
}

/// Option combinations that cannot work, refused before anything starts.
fn check_combinations(args: &RunArgs) -> Result<(), String> {
    let kvm = args.accel == AccelKind::Kvm;
    if kvm && args.no_intercept_ac_db {
        return Err(
            "--no-intercept-ac-db needs --accel soft: KVM always intercepts #AC and #DB".into(),
        );
    }
    if kvm && args.inject_notify_invalid {
        return Err("--inject-notify-invalid needs --accel soft (a soft CPU test knob)".into());
    }
    if args.notify_vmexit == NotifyVmexit::Disable {
        if args.inject_notify_invalid {
            return Err(
                "--inject-notify-invalid has no effect with --notify-vmexit disable; drop one"
                    .into(),
            );
        }
        if args.notify_window != 0 {
            return Err(
                "--notify-window has no effect with --notify-vmexit disable; drop one".into(),
            );
        }
    }
    Ok(())
}

fn run(args: &RunArgs) -> i32 {
    if let Err(msg) = check_combinations(args) {
        eprintln!("vigil: {msg}");
        return STATUS_USAGE;
    }
    let image = match kernel_image(args) {
        Ok(i) => i,
        Err(msg) => {
            eprintln!("vigil: {msg}");
            return STATUS_USAGE;
        }
    };
    if let Some(g) = args.guest.as_deref().and_then(guests::find) {
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
    let mut options = match run_options(args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("vigil: {msg}");
            return STATUS_USAGE;
        }
    };
    match load_modules(&args.module) {
        Ok(m) => options.modules = m,
        Err(msg) => {
            eprintln!("vigil: {msg}");
            return STATUS_USAGE;
        }
    }
    let events: Option<Box<dyn Write + Send>> = match &args.events {
        None => None,
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some(Box::new(std::io::BufWriter::new(f))),
            Err(e) => {
                eprintln!(
                    "vigil: cannot create the event log '{}': {e}; check the path and its directory",
                    path.display()
                );
                return STATUS_USAGE;
            }
        },
    };
    let output = vmm::RunOutput {
        serial: Box::new(std::io::stdout()),
        events,
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
    let _ = std::io::stdout().flush();
    match result {
        Ok(report) => {
            if let Some(e) = &report.event_log_error {
                eprintln!("vigil: warning: {e}");
            }
            if !matches!(report.end, vmm::RunEnd::DebugExit(_)) {
                eprintln!("vigil: {}", report.end);
                if let (
                    vmm::RunEnd::InternalError(_)
                    | vmm::RunEnd::FailEntry(_)
                    | vmm::RunEnd::NotifyInternalError(_)
                    | vmm::RunEnd::Stopped(_),
                    Some(r),
                ) = (&report.end, &report.registers)
                {
                    eprintln!("vigil: vCPU state: {r}");
                }
            }
            if args.stats {
                stats::print(&report, args.accel.name());
            }
            report.end.status()
        }
        Err(RunError::Load(e)) => {
            eprintln!("vigil: {e}");
            STATUS_USAGE
        }
        Err(e) => {
            eprintln!("vigil: {e}");
            STATUS_ACCEL_FAILED
        }
    }
}

/// Reads each `--module FILE[,STRING]`: the module's string is what QEMU's
/// `-initrd` gives it, the file name followed by the arguments.
fn load_modules(specs: &[String]) -> Result<Vec<(String, Vec<u8>)>, String> {
    specs
        .iter()
        .map(|spec| {
            let (file, args) = match spec.split_once(',') {
                Some((f, a)) => (f, Some(a)),
                None => (spec.as_str(), None),
            };
            if file.is_empty() {
                return Err(format!(
                    "--module '{spec}' names no file; use --module FILE[,STRING]"
                ));
            }
            let data =
                std::fs::read(file).map_err(|e| format!("cannot read module '{file}': {e}"))?;
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
fn run_options(args: &RunArgs) -> Result<vmm::RunOptions, String> {
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
            inject_context_invalid: args.inject_notify_invalid,
        },
        limits,
        warnings: true,
        bus_lock_ratelimit: args.bus_lock_ratelimit,
        nested_vmx: !args.no_nested,
    })
}
