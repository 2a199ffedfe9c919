//! The soft accelerator: Vigil's L0 hypervisor running guests on the soft CPU.

mod apic;
mod control;
mod cr;
mod emulate;
mod events;
mod exits;
mod nested;
mod setup;
mod tally;
mod time;
mod vcpu;
mod vm;
mod walk;

pub use control::SoftControl;
pub use vcpu::SoftVcpu;
pub use vm::{SoftAccelerator, SoftError, SoftVm, MAX_MEMORY_BYTES};
