//! The `vigil` command: run guests on the soft accelerator or on KVM.

mod cli;
mod stats;

use clap::Parser;
use cli::{AccelKind, Cli, Command, RunArgs};
use hv::accel::Accelerator;
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
        if writeln!(out, "{:<width$}  {}", g.name, g.summary).is_err() {
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

fn run(args: &RunArgs) -> i32 {
    let image = match kernel_image(args) {
        Ok(i) => i,
        Err(msg) => {
            eprintln!("vigil: {msg}");
            return STATUS_USAGE;
        }
    };
    let options = vmm::RunOptions {
        memory_mib: args.memory,
        cmdline: args.append.clone().unwrap_or_default(),
    };
    let result = match args.accel {
        AccelKind::Soft => run_on(&hv::soft::SoftAccelerator::default(), &image, &options),
        AccelKind::Kvm => match kvm::KvmAccelerator::open() {
            Ok(a) => run_on(&a, &image, &options),
            Err(e) => Err(RunError::Accel(e)),
        },
    };
    let _ = std::io::stdout().flush();
    match result {
        Ok(report) => {
            if !matches!(report.end, vmm::RunEnd::DebugExit(_)) {
                eprintln!("vigil: {}", report.end);
                if let (vmm::RunEnd::InternalError(_) | vmm::RunEnd::FailEntry(_), Some(r)) =
                    (&report.end, &report.registers)
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

fn run_on<A: Accelerator>(
    accel: &A,
    image: &[u8],
    options: &vmm::RunOptions,
) -> Result<vmm::RunReport, RunError> {
    vmm::run(accel, image, options, Box::new(std::io::stdout()))
}
