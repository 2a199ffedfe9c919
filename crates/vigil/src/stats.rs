//! `--stats` output.

use vmm::RunReport;

/// Prints the exit counts of a run to stderr.
pub fn print(report: &RunReport, accel: &str) {
    eprintln!("stats: accelerator {accel}");
    eprintln!("stats: end: {}", report.end);
    for (kind, n) in &report.userspace_exits {
        eprintln!("stats: userspace exit {kind:<22} {n}");
    }
    if report.internal_exits.is_empty() {
        eprintln!("stats: exits handled by the accelerator are not reported by {accel}");
    }
    for (reason, n) in &report.internal_exits {
        eprintln!("stats: vm exit {reason:<28} {n}");
    }
    eprintln!(
        "stats: unclaimed port accesses {}",
        report.unclaimed_port_accesses
    );
}
