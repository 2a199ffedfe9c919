//! The soft accelerator: Vigil's L0 hypervisor running guests on the soft CPU.

mod exits;
mod setup;
mod vcpu;
mod vm;

pub use vcpu::SoftVcpu;
pub use vm::{SoftAccelerator, SoftVm, MAX_MEMORY_BYTES};
