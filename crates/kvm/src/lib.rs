//! Vigil's real-hardware accelerator: the [`accel`] run API over Linux KVM.
//!
//! This crate drives `/dev/kvm` through the rust-vmm crates (`kvm-ioctls`,
//! `kvm-bindings`, `vm-memory`) and presents it through the same
//! [`Accelerator`](accel::Accelerator), [`Vm`](accel::Vm) and
//! [`Vcpu`](accel::Vcpu) traits as Vigil's soft accelerator, so the VMM
//! drives either one with the same loop.
//!
//! The platform is deliberately minimal: guest RAM at guest-physical 0, no
//! in-kernel interrupt controller, no in-kernel devices. Every port access and
//! every `HLT` therefore reaches userspace, exactly as on the soft
//! accelerator.
//!
//! Layout:
//! - [`system`] opens `/dev/kvm`: [`KvmAccelerator`] and [`probe`].
//! - [`caps`] reports the host KVM's notify-related capabilities.
//! - [`memory`] holds guest RAM and its bounds checks.
//! - [`vm`] holds [`KvmVm`].
//! - [`vcpu`] holds [`KvmVcpu`] and the mapping of its exits.
//! - [`cpu_state`] translates, without side effects, between Vigil's
//!   entry/register types and KVM's register structures.
//! - [`cpuid`] prepares the CPUID table given to each vCPU.
//! - [`exit`] summarises and names KVM exit reasons.
//! - `run_area` (private) reads the few fields of the shared `kvm_run` page
//!   that `kvm-ioctls` does not expose.

mod apic;
pub mod caps;
pub mod control;
pub mod cpu_state;
pub mod cpuid;
pub mod exit;
pub mod memory;
pub mod run_area;
pub mod system;
pub mod vcpu;
pub mod vm;

pub use control::KvmControl;
pub use system::{probe, KvmAccelerator, REQUIRED_API_VERSION};
pub use vcpu::KvmVcpu;
pub use vm::KvmVm;

#[cfg(test)]
mod tests {
    #[test]
    fn handles_can_move_to_vcpu_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<crate::KvmAccelerator>();
        assert_send::<crate::KvmVm>();
        assert_send::<crate::KvmVcpu>();
    }
}
