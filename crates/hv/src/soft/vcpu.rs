//! The soft vCPU: the run loop of L0. Each round is the hook before the VM
//! entry (`entry`: what L0 does first, or an exit for userspace without
//! entering), the entry, and the hook after the exit (`exit`), which says
//! where the exit goes: L0 handled it, it went to L1 as a nested VM exit,
//! L0 emulates the instruction for MMIO (`emulation`, driven at the start
//! of the next round), or userspace takes it (`user`: with the bytes of an
//! I/O or MMIO access). A debugger's steps, breakpoints and watchpoints
//! (`debug`) hook into both.

mod debug;
mod emulation;
mod entry;
mod exit;
mod faults;
mod user;

use super::apic::{self, ApicWiring};
use super::control::SoftControl;
use super::emulate::Emulation;
use super::nested::Nested;
use super::setup::{self, PrivatePages, VmSettings};
use super::time::{Pacer, USER_EXIT_CYCLES};
use super::vm::SoftError;
use crate::hw::{HwError, VmxHardware};
use accel::{AccelError, EntryState, Registers, Vcpu, VcpuControl, VcpuExit, VcpuStats};
use emulation::Driven;
use entry::Next;
use softcpu::SoftCpu;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use user::{Pending, ToUser};
use x86::vmx::field as f;

/// A vCPU of a soft VM.
pub struct SoftVcpu {
    machine: Arc<Mutex<SoftCpu>>,
    control: Arc<SoftControl>,
    settings: VmSettings,
    launched: bool,
    pending: Option<Pending>,
    apic: ApicWiring,
    io_data: [u8; 8],
    io_len: usize,
    exits: BTreeMap<u16, u64>,
    notify_exits: u64,
    bus_lock_exits: u64,
    longest_in_guest: Duration,
    triple_fault_pending: bool,
    /// Nested VMX state, when VMX is offered to the guest.
    nested: Option<Nested>,
    /// Nested VM exits: exits of L2's that went to L1.
    reflected: u64,
    /// Size of guest RAM (guest-physical `[0, ram)`).
    ram: u64,
    /// The instruction being emulated for MMIO, between its EPT violation
    /// and its end.
    emulation: Option<Emulation>,
    /// Pacing of virtual time to host time, when the VM asked for it.
    pacer: Option<Pacer>,
    /// TSC value at which the vCPU returns to userspace
    /// (`Vcpu::set_exit_deadline`).
    exit_deadline: Option<u64>,
    /// What a debugger armed (`debug`).
    stops: debug::Stops,
    /// Faults still to inject (`faults`).
    faults: faults::FaultPlan,
}

impl SoftVcpu {
    pub(super) fn new(
        machine: Arc<Mutex<SoftCpu>>,
        pages: &PrivatePages,
        entry: &EntryState,
        settings: &VmSettings,
    ) -> Result<Self, AccelError> {
        let (control, apic, nested, pacer, faults) = {
            let mut cpu = machine.lock().unwrap_or_else(|p| p.into_inner());
            setup::program(&mut *cpu, pages, entry, settings)
                .map_err(|e| AccelError::hardware(SoftError::Program(e)))?;
            let model = cpu.model();
            let clock = apic::clock_of(&model);
            let nested = settings.nested_vmx.then(|| {
                Nested::new(
                    softcpu::capability_msr,
                    VmxHardware::cpuid(&*cpu, 0x8000_0008, 0)[0] & 0xFF,
                    pages.nested,
                    settings.notify.map(|n| n.window),
                    model.notify_threshold,
                )
            });
            (
                SoftControl::new(cpu.kicker(), cpu.power_switch(), cpu.nmi_line(), clock),
                ApicWiring::new(clock),
                nested,
                (settings.virtual_time == accel::VirtualTime::Paced)
                    .then(|| Pacer::new(&cpu, clock.tsc_hz())),
                faults::FaultPlan::new(
                    &settings.faults,
                    clock.tsc_hz(),
                    u64::from(model.crystal_hz),
                ),
            )
        };
        Ok(SoftVcpu {
            machine,
            control: Arc::new(control),
            settings: *settings,
            launched: false,
            pending: None,
            apic,
            io_data: [0; 8],
            io_len: 0,
            exits: BTreeMap::new(),
            notify_exits: 0,
            bus_lock_exits: 0,
            longest_in_guest: Duration::ZERO,
            triple_fault_pending: false,
            nested,
            reflected: 0,
            ram: pages.nested.ram,
            emulation: None,
            pacer,
            exit_deadline: None,
            stops: debug::Stops::default(),
            faults,
        })
    }

    /// Instructions the soft CPU retired and decoded so far.
    fn instruction_counts(&self) -> accel::InstructionCounts {
        let cpu = self.machine.lock().unwrap_or_else(|p| p.into_inner());
        let tier = cpu.translation_stats();
        accel::InstructionCounts {
            retired: cpu.instructions_retired(),
            decoded: cpu.instructions_decoded(),
            blocks_translated: tier.blocks_translated,
            translated_runs: tier.native_runs,
            translate_ns: tier.translate_ns,
        }
    }

    /// Counts of every VM exit L0 took, by basic exit reason.
    pub fn exit_counts(&self) -> &BTreeMap<u16, u64> {
        &self.exits
    }
}

/// Where a VM exit goes, as the hook after it decides.
#[derive(Debug)]
enum Goes {
    /// L0 handled it: the guest runs on.
    L0,
    /// L0 made it a nested VM exit: L1 runs next.
    L1,
    /// An instruction's operand access to memory that is not RAM: L0
    /// emulates the instruction.
    Emulate,
    /// `run()` returns it to userspace.
    User(ToUser),
}

impl SoftVcpu {
    /// Completes what userspace handled, then enters the guest and takes
    /// its exits until one is for userspace.
    fn run_until_user(&mut self, cpu: &mut SoftCpu) -> Result<ToUser, HwError> {
        if self.pending.is_some() {
            // The trip through userspace took time (`super::time`).
            cpu.advance_time(USER_EXIT_CYCLES);
        }
        let completed = self.pending.is_some();
        self.complete_io(cpu)?;
        if completed && self.debug_step_completed_io() {
            return Ok(ToUser::Exit(VcpuExit::Debug));
        }
        // An instruction emulated for MMIO goes on first (userspace served
        // its last access); an exit it takes is handled without an entry.
        let mut drive = self.emulation.is_some();
        loop {
            let mut exited = false;
            if std::mem::take(&mut drive) {
                match self.drive_emulation(cpu)? {
                    Driven::Resume => {}
                    Driven::Exited => exited = true,
                    Driven::User(exit) => return Ok(exit),
                }
            }
            let entry = if exited {
                self.no_entry()
            } else {
                match self.before_entry(cpu)? {
                    Next::Enter(entry) => entry,
                    Next::User(exit) => return Ok(ToUser::Exit(exit)),
                }
            };
            let entered = self.enter(cpu, &entry);
            match self.after_exit(cpu, &entry, entered)? {
                Goes::L0 => {}
                Goes::L1 => self.reflected += 1,
                Goes::Emulate => {
                    self.emulation = Some(Emulation::new());
                    drive = true;
                }
                Goes::User(exit) => return Ok(exit),
            }
        }
    }
}

/// A VMX failure of L0's, kept as the error's typed source.
fn hw_error(e: HwError) -> AccelError {
    AccelError::hardware(e)
}

impl Vcpu for SoftVcpu {
    fn run(&mut self) -> Result<VcpuExit<'_>, AccelError> {
        let machine = self.machine.clone();
        let mut cpu = machine.lock().unwrap_or_else(|p| p.into_inner());
        if self.control.is_powered_off() || cpu.powered_off() {
            return Ok(VcpuExit::PoweredOff);
        }
        let exit = self.run_until_user(&mut cpu).map_err(hw_error)?;
        Ok(self.user_exit(exit))
    }

    fn registers(&self) -> Result<Registers, AccelError> {
        let cpu = self.machine.lock().unwrap_or_else(|p| p.into_inner());
        let r = |fld| VmxHardware::vmread(&*cpu, fld).map_err(hw_error);
        Ok(Registers {
            gpr: cpu.gprs(),
            rip: r(f::GUEST_RIP)?,
            rflags: r(f::GUEST_RFLAGS)?,
            // CR0 and CR4 as the guest reads them: host-owned bits come
            // from the read shadows (SDM Vol. 3C, "Guest/Host Masks and Read
            // Shadows for CR0 and CR4").
            cr0: (r(f::GUEST_CR0)? & !r(f::CR0_GUEST_HOST_MASK)?)
                | (r(f::CR0_READ_SHADOW)? & r(f::CR0_GUEST_HOST_MASK)?),
            cr2: cpu.cr2(),
            cr3: r(f::GUEST_CR3)?,
            cr4: (r(f::GUEST_CR4)? & !r(f::CR4_GUEST_HOST_MASK)?)
                | (r(f::CR4_READ_SHADOW)? & r(f::CR4_GUEST_HOST_MASK)?),
            efer: r(f::GUEST_IA32_EFER)?,
            cs: r(f::GUEST_CS_SELECTOR)? as u16,
        })
    }

    fn stats(&self) -> VcpuStats {
        VcpuStats {
            internal_exits: self
                .exits
                .iter()
                .map(|(r, n)| (x86::vmx::exit_reason::name(*r), *n))
                .collect(),
            notify_exits: self.notify_exits,
            longest_without_l0: Some(self.longest_in_guest),
            bus_lock_exits: self.bus_lock_exits,
            nested_exits_to_l1: self.reflected,
            instructions: Some(self.instruction_counts()),
        }
    }

    fn control(&self) -> Arc<dyn VcpuControl> {
        self.control.clone()
    }

    fn inject_triple_fault(&mut self) -> Result<(), AccelError> {
        self.triple_fault_pending = true;
        Ok(())
    }

    fn debug(&mut self) -> Option<&mut dyn accel::debug::GuestDebug> {
        Some(self)
    }

    fn virtual_ns(&self) -> Option<u64> {
        let cpu = self.machine.lock().unwrap_or_else(|p| p.into_inner());
        Some(self.control.ns_of(cpu.cycles()))
    }

    fn deliver_interrupt(&mut self, vector: u8, level: bool) -> Result<(), AccelError> {
        self.apic.accept(vector, level);
        Ok(())
    }

    fn set_exit_deadline(&mut self, virtual_ns: Option<u64>) -> Result<(), AccelError> {
        self.exit_deadline = virtual_ns.map(|ns| self.control.tsc_at_ns(ns));
        Ok(())
    }
}
