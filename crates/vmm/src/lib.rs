//! Vigil's userspace VMM: QEMU's role.
//!
//! It loads a guest ([`loader`]), builds the PC devices ([`devices`]), and
//! drives one vCPU on any accelerator through the run API of
//! [`hv::accel`] ([`runner`]), deciding what each exit means for the run.

pub mod devices;
pub mod loader;
pub mod outcome;
pub mod runner;

pub use outcome::{RunEnd, RunReport};
pub use runner::{run, RunError, RunOptions};
