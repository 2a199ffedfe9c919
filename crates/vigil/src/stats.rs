//! `--stats` output.

use vmm::RunReport;

/// Prints the exit counts of a run to stderr.
pub fn print(report: &RunReport, accel: &str) {
    eprintln!("stats: accelerator {accel}");
    eprintln!("stats: end: {}", crate::render::End(&report.end));
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
    eprintln!(
        "stats: unclaimed mmio accesses {}",
        report.unclaimed_mmio_accesses
    );
    match report.bus_lock_exits {
        Some(b) => eprintln!("stats: bus-lock exits {b}"),
        None => eprintln!("stats: bus-lock exits not reported by {accel}"),
    }
    if let Some(i) = report.instructions {
        eprintln!("stats: instructions retired {}", i.retired);
        eprintln!("stats: instructions decoded {}", i.decoded);
        if i.blocks_translated > 0 {
            eprintln!(
                "stats: blocks translated {} in {:.3} s, translated runs {}",
                i.blocks_translated,
                i.translate_ns as f64 / 1e9,
                i.translated_runs
            );
        }
    }
    if report.nested_exits_to_l1 > 0 {
        eprintln!("stats: nested vm exits to L1 {}", report.nested_exits_to_l1);
    }
    let n = &report.notify;
    eprintln!(
        "stats: notify vm exits {} (notify {})",
        n.exits,
        if n.enabled { "enabled" } else { "off" }
    );
    if n.exits_to_l1 > 0 {
        eprintln!(
            "stats: notify vm exits from L2 that went to L1 {}",
            n.exits_to_l1
        );
    }
    if let Some(ns) = n.first_exit_virtual_ns {
        eprintln!(
            "stats: first notify exit at virtual time {}",
            crate::demo::ns(ns)
        );
    }
    if let (Some(ns), true) = (n.last_exit_virtual_ns, n.exits > 1) {
        eprintln!(
            "stats: last notify exit at virtual time {}",
            crate::demo::ns(ns)
        );
    }
    if let Some(ns) = n.longest_gap_virtual_ns {
        eprintln!(
            "stats: longest virtual time between notify exits {}",
            crate::demo::ns(ns)
        );
    }
    match n.longest_without_l0 {
        Some(d) => eprintln!(
            "stats: responsiveness: longest host time without returning to L0 {:.3} ms",
            d.as_secs_f64() * 1e3
        ),
        None => {
            eprintln!("stats: responsiveness: not observable on {accel} (the host kernel is L0)")
        }
    }
    if let Some(ns) = n.virtual_ns {
        eprintln!("stats: virtual time {}", crate::demo::ns(ns));
    }
    eprintln!("stats: host time {:.3} s", n.host_time.as_secs_f64());
}
