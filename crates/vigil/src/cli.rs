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
8 accelerator internal error; 10 accelerator unavailable or failed."
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
    Run(RunArgs),
    /// List the built-in guests.
    Guests,
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

/// Arguments of `vigil run`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("image").required(true).args(["guest", "kernel"]))]
pub struct RunArgs {
    /// Accelerator to run on.
    #[arg(long, value_enum, default_value_t = AccelKind::Soft)]
    pub accel: AccelKind,
    /// Guest RAM in MiB (2 to 3072).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(2..=3072))]
    pub memory: u64,
    /// Print exit counts per reason when the run ends (to stderr).
    #[arg(long)]
    pub stats: bool,
    /// Kernel command line passed through multiboot.
    #[arg(long, value_name = "STRING")]
    pub append: Option<String>,
    /// Run a built-in guest by name (see `vigil guests`).
    #[arg(long, value_name = "NAME")]
    pub guest: Option<String>,
    /// A multiboot v1 ELF32 kernel file, as for `qemu-system-x86_64 -kernel`.
    #[arg(value_name = "KERNEL")]
    pub kernel: Option<PathBuf>,
}
