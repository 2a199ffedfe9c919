//! Architecture facts from the Intel SDM, as data only.
//!
//! Nothing in this crate executes anything: it names registers, bits, vectors,
//! MSRs and VMCS encodings so that the silicon model (`softcpu`), the L0
//! hypervisor (`hv`) and the userspace VMM agree on one spelling of each fact.

#![forbid(unsafe_code)]

pub mod address;
pub mod apic;
pub mod cr;
pub mod exception;
pub mod msr;
pub mod rflags;
pub mod segment;
pub mod vmx;
