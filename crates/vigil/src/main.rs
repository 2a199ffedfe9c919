//! The `vigil` command: run guests on the soft accelerator or on KVM.

#![forbid(unsafe_code)]

mod caps;
mod cli;
mod demo;
mod error;
mod render;
mod report;
mod run;
mod stats;
mod status;
mod verdict;

use clap::Parser;
use cli::{Cli, Command};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Guests => {
            list_guests();
            0
        }
        Command::Run(args) => run::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Caps(args) => caps::run(&args),
        Command::Report(args) => report::run(&args),
    };
    ExitCode::from(status)
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
