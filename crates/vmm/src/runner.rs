//! The vCPU loop: load the kernel, run, dispatch each exit to a device or
//! decide the run is over.

use crate::devices::{DeviceAction, PortBus};
use crate::loader::{self, LoadError};
use crate::outcome::{RunEnd, RunReport};
use hv::accel::{AccelError, Accelerator, Vcpu, VcpuExit, Vm, VmConfig};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;

/// Options of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Guest RAM in MiB.
    pub memory_mib: u64,
    /// Kernel command line passed through multiboot.
    pub cmdline: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            memory_mib: 128,
            cmdline: String::new(),
        }
    }
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
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Load(e) => write!(f, "{e}"),
            RunError::Accel(e) => write!(f, "{e}"),
            RunError::Devices(e) => write!(f, "device setup failed: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

impl From<AccelError> for RunError {
    fn from(e: AccelError) -> Self {
        RunError::Accel(e)
    }
}

/// Loads `image` as a multiboot kernel and runs it on `accel` until it ends,
/// with COM1 output going to `serial_out`.
pub fn run<A: Accelerator>(
    accel: &A,
    image: &[u8],
    options: &RunOptions,
    serial_out: Box<dyn Write + Send>,
) -> Result<RunReport, RunError> {
    let memory_bytes = options.memory_mib.checked_mul(1 << 20).ok_or_else(|| {
        RunError::Accel(AccelError::InvalidConfig("memory size overflows".into()))
    })?;
    let boot =
        loader::load_multiboot(image, memory_bytes, &options.cmdline).map_err(RunError::Load)?;
    let mut bus = PortBus::pc_default(serial_out).map_err(|e| RunError::Devices(e.to_string()))?;
    let mut vm = accel.create_vm(&VmConfig { memory_bytes })?;
    for (gpa, bytes) in &boot.regions {
        vm.write_memory(*gpa, bytes)?;
    }
    let mut vcpu = vm.create_vcpu(0, &boot.entry)?;
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let end = loop {
        let exit = vcpu.run()?;
        *counts.entry(exit.kind()).or_insert(0) += 1;
        match exit {
            VcpuExit::IoOut { port, data } => {
                if let DeviceAction::Exit(v) = bus.write(port, data) {
                    break RunEnd::DebugExit(v);
                }
            }
            VcpuExit::IoIn { port, data } => bus.read(port, data),
            VcpuExit::Hlt => break RunEnd::Halted,
            VcpuExit::Shutdown => break RunEnd::Shutdown,
            // Nothing kicks the vCPU yet; a spurious kick just resumes.
            VcpuExit::Interrupted => {}
            VcpuExit::FailEntry { hardware_reason } => break RunEnd::FailEntry(hardware_reason),
            VcpuExit::InternalError(e) => break RunEnd::InternalError(e),
        }
    };
    Ok(RunReport {
        end,
        userspace_exits: counts.into_iter().collect(),
        internal_exits: vcpu.stats().internal_exits,
        unclaimed_port_accesses: {
            let u = bus.unclaimed();
            u.reads + u.writes
        },
        registers: vcpu.registers().ok(),
    })
}
