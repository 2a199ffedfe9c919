//! GDB's `monitor` commands, beyond what QEMU's stub offers: the VMCS by
//! field name, the notify state, the exit counts and the running level.
//! (`monitor phys on|off` is the debugger thread's: it switches memory
//! access between linear and physical addresses.)

use accel::debug::{GuestDebug, WhichVmcs};
use accel::GuestLevel;
use std::fmt::Write;

/// The help text.
pub(crate) const HELP: &str = "\
vmcs [01|02|12]  the VMCS fields by name (default: the running guest's: vmcs01 in L1, vmcs02 in L2)
notify           the notify window, threshold, time since the last boundary, the last stalled event
exits            VM exits L0 took, by reason
level            which guest runs: L1 or L2
phys on|off      memory reads and writes by physical (on) or linear (off) address
help             this text
";

/// Runs `cmd` against the stopped vCPU; the text GDB prints.
pub(crate) fn run(vcpu: &mut dyn GuestDebug, cmd: &str) -> String {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let result = match words.as_slice() {
        ["vmcs"] => vmcs(vcpu, None),
        ["vmcs", which] => vmcs(vcpu, Some(which)),
        ["notify"] => notify(vcpu),
        ["exits"] => Ok(exits(vcpu)),
        ["level"] => Ok(format!("{}\n", vcpu.level())),
        [] | ["help"] => Ok(HELP.to_string()),
        _ => Ok(format!(
            "unknown monitor command '{cmd}'; try: monitor help\n"
        )),
    };
    result.unwrap_or_else(|e| format!("{e}\n"))
}

fn vmcs(vcpu: &dyn GuestDebug, which: Option<&str>) -> Result<String, accel::AccelError> {
    let level = vcpu.level();
    let which = match which {
        None if level == GuestLevel::L2 => WhichVmcs::Vmcs02,
        None | Some("01" | "vmcs01") => WhichVmcs::Vmcs01,
        Some("02" | "vmcs02") => WhichVmcs::Vmcs02,
        Some("12" | "vmcs12") => WhichVmcs::Vmcs12,
        Some(other) => {
            return Ok(format!("no VMCS '{other}': use 01, 02 or 12\n"));
        }
    };
    let name = match which {
        WhichVmcs::Vmcs01 => "vmcs01",
        WhichVmcs::Vmcs02 => "vmcs02",
        WhichVmcs::Vmcs12 => "vmcs12",
    };
    let mut out = format!("{name} ({level} running):\n");
    for (field, value) in vcpu.vmcs_fields(which)? {
        let _ = writeln!(out, "  {field:<32} {value:#x}");
    }
    Ok(out)
}

fn notify(vcpu: &dyn GuestDebug) -> Result<String, accel::AccelError> {
    let n = vcpu.notify_state()?;
    let stalled = if n.last_idt_vectoring_info & (1 << 31) != 0 {
        format!(
            "vector {} type {}",
            n.last_idt_vectoring_info & 0xFF,
            (n.last_idt_vectoring_info >> 8) & 7
        )
    } else {
        "none".into()
    };
    Ok(format!(
        "notify VM exiting: {}\nwindow: {} crystal cycles (+ threshold {})\n\
         since the last instruction boundary: {} ns (stopped at a boundary)\n\
         notify exits: {}\nvirtual time: {} ns\nlast VM exit: {} ({}), stalled event: {stalled}\n",
        if n.enabled { "on" } else { "off" },
        n.window,
        n.threshold,
        n.since_boundary_ns,
        n.exits,
        n.virtual_ns,
        n.last_exit_reason,
        x86::vmx::exit_reason::name(n.last_exit_reason),
    ))
}

fn exits(vcpu: &dyn GuestDebug) -> String {
    let mut out = String::new();
    for (reason, n) in vcpu.exits_by_reason() {
        let _ = writeln!(out, "  {:<24} {n}", x86::vmx::exit_reason::name(reason));
    }
    if out.is_empty() {
        out = "no VM exits yet\n".into();
    }
    out
}
