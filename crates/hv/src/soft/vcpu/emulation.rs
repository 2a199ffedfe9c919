//! The instruction a soft vCPU emulates for MMIO (`crate::soft::emulate`),
//! driven between the hooks: from the EPT violation that starts it until it
//! is done, stopping whenever userspace must perform one of its accesses.

use super::user::{Pending, ToUser};
use super::SoftVcpu;
use crate::hw::{HwError, VmxHardware};
use crate::soft::emulate::{Next, Target};
use accel::{InternalError, VcpuExit};
use softcpu::SoftCpu;
use x86::vmx::field as f;

/// Where driving an emulated instruction left the vCPU.
#[derive(Debug)]
pub(super) enum Driven {
    /// Done: enter the guest.
    Resume,
    /// A VM exit happened during the instruction: the hook after exits
    /// takes it, without an entry.
    Exited,
    /// `run()` returns this: an access for userspace, or the end.
    User(ToUser),
}

/// Whether the EPT violation of the last exit came from an instruction's
/// operand (bits 7 and 8: the translation of a linear address; SDM Vol. 3C
/// Table 28-7), not from a fetch (bit 2) or event delivery (a valid
/// IDT-vectoring field) — what the CPU can emulate.
pub(super) fn emulable(cpu: &SoftCpu) -> Result<bool, HwError> {
    let qual = VmxHardware::vmread(cpu, f::EXIT_QUALIFICATION)?;
    let vectoring = VmxHardware::vmread(cpu, f::IDT_VECTORING_INFO)? as u32;
    Ok(qual & (1 << 7 | 1 << 8) == 1 << 7 | 1 << 8
        && qual & 4 == 0
        && vectoring & x86::vmx::intr_info::VALID == 0)
}

impl SoftVcpu {
    /// Drives the instruction being emulated for MMIO until it is done or
    /// userspace must act.
    pub(super) fn drive_emulation(&mut self, cpu: &mut SoftCpu) -> Result<Driven, HwError> {
        let Some(mut emulation) = self.emulation.take() else {
            return Ok(Driven::Resume);
        };
        let ram = self.ram;
        let nested = self.nested.as_ref().filter(|n| n.in_l2());
        let mut target = |cpu: &SoftCpu, gpa: u64| -> Result<Target, HwError> {
            // L1's EPT decides what an L2 address is; L1's own accesses reach
            // the session only for addresses beyond its RAM.
            let gpa1 = match nested {
                Some(n) => match n.l1_physical(cpu, gpa)? {
                    Some(gpa1) => gpa1,
                    None => return Ok(Target::Unmapped),
                },
                None => gpa,
            };
            Ok(if gpa1 < ram {
                Target::Ram(gpa1)
            } else {
                Target::Device(gpa1)
            })
        };
        let now = cpu.cycles();
        let mut apic = self.apic.at(now);
        let next = emulation.drive(cpu, &mut target, &mut apic)?;
        Ok(match next {
            Next::Resume => Driven::Resume,
            Next::Exited => Driven::Exited,
            Next::Store { addr, size, value } => {
                self.emulation = Some(emulation);
                self.stash_store(value, size, Pending::MmioStore);
                Driven::User(ToUser::MmioWrite { addr })
            }
            Next::Load { addr, size } => {
                self.emulation = Some(emulation);
                self.stash_load(size, Pending::MmioLoad);
                Driven::User(ToUser::MmioRead { addr })
            }
            Next::Unmapped(gpa) => {
                let rip = VmxHardware::vmread(&*cpu, f::GUEST_RIP)?;
                Driven::User(ToUser::Exit(VcpuExit::InternalError(
                    InternalError::UnmappedAccess { gpa, rip },
                )))
            }
            Next::PoweredOff => Driven::User(ToUser::Exit(VcpuExit::PoweredOff)),
        })
    }
}
