//! Vigil's L0 hypervisor.
//!
//! `hv` plays KVM's role: it owns VMs and vCPUs, programs the VMX hardware
//! (the soft CPU, through the [`hw::VmxHardware`] trait this crate owns),
//! handles in L0 the exits L0 should handle, and returns the rest to
//! userspace through the KVM-shaped API of the `accel` crate. It never prints and
//! never exits the process.

#![forbid(unsafe_code)]

pub mod ept;
pub mod hw;
pub mod soft;
