//! Vigil's userspace VMM: QEMU's role.
//!
//! It loads a guest ([`loader`]), builds the PC devices ([`devices`]), and
//! drives one vCPU on any accelerator through the run API of
//! [`accel`] ([`runner`]), deciding what each exit means for the run:
//! the operator's notify policy ([`policy`]), the event log ([`events`]),
//! and the monitor that plays the host timer, the timeout and the watchdog
//! ([`monitor`]). It reports in types — how the run ended ([`outcome`]),
//! why it could not run ([`RunError`]) and what the operator should know as
//! it happens ([`notice`]) — and never prints or ends the process: the
//! caller speaks and chooses exit statuses.

#![forbid(unsafe_code)]

pub mod devices;
pub mod duration;
pub mod events;
pub mod fault_spec;
pub mod gdb;
pub mod loader;
pub mod monitor;
pub mod notice;
pub mod outcome;
pub mod platform;
pub mod policy;
pub mod runner;
pub mod sampler;
#[cfg(test)]
mod test_util;

pub use notice::{Notice, NoticeSink};
pub use outcome::{RunEnd, RunReport};
pub use runner::{run, RunError, RunOptions, RunOutput};
