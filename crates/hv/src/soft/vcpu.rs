//! The soft vCPU: the run loop of L0 (enter, take the exit, handle it in L0
//! or return it to userspace).

use super::apic::{ApicExit, ApicWiring};
use super::control::SoftControl;
use super::emulate::{Emulation, Next, Target};
use super::exits::{self, Handled};
use super::nested::{Nested, Route};
use super::setup::{self, PrivatePages, VmSettings};
use super::time::{Pacer, L0_EXIT_CYCLES, USER_EXIT_CYCLES};
use super::vm::SoftError;
use crate::hw::{HwError, VmxHardware};
use accel::{
    AccelError, EntryState, GuestLevel, InternalError, Registers, Vcpu, VcpuControl, VcpuExit,
    VcpuStats,
};
use softcpu::SoftCpu;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use x86::vmx::field as f;

/// An exit to userspace that the next `run()` completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Port I/O: for IN the access size (the data goes to RAX).
    Io {
        /// Access size for IN, `None` for OUT.
        in_size: Option<usize>,
        /// Length of the I/O instruction.
        len: u64,
    },
    /// A store of an emulated instruction (`super::emulate`), performed.
    MmioStore,
    /// A load of an emulated instruction: its bytes go to the emulation.
    MmioLoad,
}

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
}

impl SoftVcpu {
    pub(super) fn new(
        machine: Arc<Mutex<SoftCpu>>,
        pages: &PrivatePages,
        entry: &EntryState,
        settings: &VmSettings,
    ) -> Result<Self, AccelError> {
        let (control, apic, nested, pacer) = {
            let mut cpu = machine.lock().unwrap_or_else(|p| p.into_inner());
            setup::program(&mut *cpu, pages, entry, settings)
                .map_err(|e| AccelError::hardware(SoftError::Program(e)))?;
            let model = cpu.model();
            let clock = super::apic::clock_of(&model);
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
                    .then(|| Pacer::new(cpu.cycles(), cpu.instructions_retired(), clock.tsc_hz())),
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
        })
    }

    /// Counts of every VM exit L0 took, by basic exit reason.
    pub fn exit_counts(&self) -> &BTreeMap<u16, u64> {
        &self.exits
    }

    /// Completes the exit userspace just handled: an IN takes its bytes
    /// into AL, AX or EAX (which zero-extends into RAX) and the instruction
    /// is stepped over; an MMIO load's bytes go to the emulation.
    fn complete_io(&mut self, cpu: &mut SoftCpu) -> Result<(), HwError> {
        let mut v = [0u8; 8];
        v[..self.io_len].copy_from_slice(&self.io_data[..self.io_len]);
        let value = u64::from_le_bytes(v);
        match self.pending.take() {
            None | Some(Pending::MmioStore) => Ok(()),
            Some(Pending::MmioLoad) => {
                if let Some(e) = self.emulation.as_mut() {
                    e.supply(value);
                }
                Ok(())
            }
            Some(Pending::Io { in_size, len }) => {
                if let Some(size) = in_size {
                    let mut g = cpu.gprs();
                    g[0] = match size {
                        1 => (g[0] & !0xFF) | value,
                        2 => (g[0] & !0xFFFF) | value,
                        _ => value,
                    };
                    cpu.set_gprs(&g);
                }
                exits::skip_instruction(cpu, len)
            }
        }
    }

    /// Drives the instruction being emulated for MMIO until it is done or
    /// userspace must act (`super::emulate`).
    fn drive_emulation(&mut self, cpu: &mut SoftCpu) -> Result<Driven, HwError> {
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
                Driven::Store { addr, size, value }
            }
            Next::Load { addr, size } => {
                self.emulation = Some(emulation);
                Driven::Load { addr, size }
            }
            Next::Unmapped(gpa) => {
                let rip = VmxHardware::vmread(&*cpu, f::GUEST_RIP)?;
                Driven::Exit(VcpuExit::InternalError(InternalError::UnmappedAccess {
                    gpa,
                    rip,
                }))
            }
            Next::PoweredOff => Driven::Exit(VcpuExit::PoweredOff),
        })
    }
}

impl SoftVcpu {
    /// Keeps a store's bytes for userspace, and what the next `run()`
    /// completes.
    fn stash_store(&mut self, value: u64, size: usize, pending: Pending) -> &[u8] {
        self.io_data = value.to_le_bytes();
        self.io_len = size;
        self.pending = Some(pending);
        &self.io_data[..self.io_len]
    }

    /// Zeroed room for a load's bytes, which userspace fills before the
    /// next `run()` completes the load.
    fn stash_load(&mut self, size: usize, pending: Pending) -> &mut [u8] {
        self.io_data = [0; 8];
        self.io_len = size;
        self.pending = Some(pending);
        &mut self.io_data[..self.io_len]
    }
}

/// Exit reasons of the VMX instructions (and VMCALL), which L0 emulates for
/// L1 when it offers VMX.
fn is_vmx_instruction(reason: u16) -> bool {
    use x86::vmx::exit_reason as er;
    matches!(
        reason,
        er::VMCALL | er::VMCLEAR..=er::VMXON | er::INVEPT | er::INVVPID
    )
}

impl SoftVcpu {
    /// An interrupt for L1 that arrives while L2 runs: when L1 intercepts
    /// external interrupts, L2 exits to L1 (acknowledging the interrupt if
    /// L1 asked); otherwise L0's usual delivery injects it into L2.
    fn nested_interrupts(&mut self, cpu: &mut SoftCpu, now: u64) -> Result<(), HwError> {
        let Some(n) = self.nested.as_mut() else {
            return Ok(());
        };
        let Some(ack) = n.l1_takes_interrupts() else {
            return Ok(());
        };
        if !self.apic.has_pending(now) {
            return Ok(());
        }
        if n.entering() || !n.interrupt_exit_allowed(&*cpu)? {
            return Ok(());
        }
        let vector = ack.then(|| self.apic.acknowledge());
        n.interrupt_exit(cpu, vector)?;
        self.reflected += 1;
        Ok(())
    }
}

impl SoftVcpu {
    /// After L0 handled an exit of L2's: an exception it raised that L1
    /// intercepts goes to L1 (`Nested::reflect_raised_exception`).
    fn raised_for_l1(&mut self, cpu: &mut SoftCpu, in_l2: bool) -> Result<(), HwError> {
        if let Some(n) = self.nested.as_mut().filter(|_| in_l2) {
            if n.reflect_raised_exception(cpu)? {
                self.reflected += 1;
            }
        }
        Ok(())
    }

    /// An interrupt for L1 pending while L1's VMLAUNCH/VMRESUME enters L2,
    /// with L1 intercepting them: VM entry completes before the interrupt
    /// makes L2 exit (SDM Vol. 3C §27.7), so a zero preemption timer brings
    /// the CPU back right after the entry, before L2's first instruction,
    /// and the next round of the loop makes the exit to L1.
    fn exit_after_first_entry(&mut self, cpu: &mut SoftCpu, now: u64) -> Result<(), HwError> {
        let Some(n) = self.nested.as_ref() else {
            return Ok(());
        };
        if !n.entering() || n.l1_takes_interrupts().is_none() || !self.apic.has_pending(now) {
            return Ok(());
        }
        let pinv = VmxHardware::vmread(&*cpu, f::PIN_BASED_VM_EXEC_CONTROL)?;
        let timer = u64::from(x86::vmx::pin::PREEMPTION_TIMER);
        VmxHardware::vmwrite(cpu, f::PIN_BASED_VM_EXEC_CONTROL, pinv | timer)?;
        VmxHardware::vmwrite(cpu, f::VMX_PREEMPTION_TIMER_VALUE, 0)
    }
}

/// What L0 did with an exit before the common handlers.
enum Local {
    /// Handled (the APIC, an interrupt window, the preemption timer): resume.
    Resume,
    /// Not one of these exits: the common handlers take it.
    NotMine,
    /// Ends `run()` with this exit.
    Exit(VcpuExit<'static>),
    /// An operand access to memory that is not RAM: the instruction is
    /// emulated (`super::emulate`).
    Emulate,
}

/// Where driving an emulated instruction left the vCPU.
#[derive(Debug)]
enum Driven {
    /// Done: enter the guest.
    Resume,
    /// A VM exit happened during the instruction: handle it.
    Exited,
    /// A store for userspace.
    Store { addr: u64, size: usize, value: u64 },
    /// A load for userspace.
    Load { addr: u64, size: usize },
    /// Ends `run()` with this exit.
    Exit(VcpuExit<'static>),
}

impl SoftVcpu {
    /// Exits about the local APIC, interrupt delivery and MMIO.
    fn local_exit(&mut self, cpu: &mut SoftCpu, raw: u64, now: u64) -> Result<Local, HwError> {
        use x86::vmx::exit_reason as er;
        if raw & u64::from(er::ENTRY_FAILURE) != 0 {
            return Ok(Local::NotMine);
        }
        match raw as u16 {
            er::INTERRUPT_WINDOW | er::PREEMPTION_TIMER => Ok(Local::Resume),
            // Trap-like: the locked instruction has completed.
            er::BUS_LOCK => {
                self.bus_lock_exits += 1;
                Ok(Local::Exit(VcpuExit::BusLock))
            }
            er::HLT if self.apic.hlt_waits(&*cpu, now)? => {
                // Wait for the interrupt in the HLT activity state: the soft
                // CPU lets virtual time run to the next event.
                let len = VmxHardware::vmread(&*cpu, f::VM_EXIT_INSTRUCTION_LEN)?;
                exits::skip_instruction(cpu, len)?;
                VmxHardware::vmwrite(
                    cpu,
                    f::GUEST_ACTIVITY_STATE,
                    u64::from(x86::vmx::activity::HLT),
                )?;
                Ok(Local::Resume)
            }
            er::MSR_READ | er::MSR_WRITE => {
                let write = raw as u16 == er::MSR_WRITE;
                match self.apic.msr(cpu, write, now) {
                    None => Ok(Local::NotMine),
                    Some(ApicExit::Resume) => {
                        let len = VmxHardware::vmread(&*cpu, f::VM_EXIT_INSTRUCTION_LEN)?;
                        exits::skip_instruction(cpu, len)?;
                        Ok(Local::Resume)
                    }
                    Some(ApicExit::GeneralProtection) => {
                        exits::inject_exception(cpu, x86::exception::GP, Some(0))?;
                        Ok(Local::Resume)
                    }
                }
            }
            er::EPT_VIOLATION => self.mmio_exit(cpu),
            _ => Ok(Local::NotMine),
        }
    }

    /// An EPT violation: an instruction's operand access to an address that
    /// is not RAM is emulated; anything else (an instruction fetch, event
    /// delivery, a paging-structure access) stays an unmapped access.
    fn mmio_exit(&mut self, cpu: &mut SoftCpu) -> Result<Local, HwError> {
        Ok(if emulable(cpu)? {
            Local::Emulate
        } else {
            Local::NotMine
        })
    }
}

/// Whether the EPT violation of the last exit came from an instruction's
/// operand (bits 7 and 8: the translation of a linear address; SDM Vol. 3C
/// Table 28-7), not from a fetch (bit 2) or event delivery (a valid
/// IDT-vectoring field) — what the CPU can emulate.
fn emulable(cpu: &SoftCpu) -> Result<bool, HwError> {
    let qual = VmxHardware::vmread(cpu, f::EXIT_QUALIFICATION)?;
    let vectoring = VmxHardware::vmread(cpu, f::IDT_VECTORING_INFO)? as u32;
    Ok(qual & (1 << 7 | 1 << 8) == 1 << 7 | 1 << 8
        && qual & 4 == 0
        && vectoring & x86::vmx::intr_info::VALID == 0)
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
        if self.pending.is_some() {
            // The trip through userspace took time (`super::time`).
            cpu.advance_time(USER_EXIT_CYCLES);
        }
        self.complete_io(&mut cpu).map_err(hw_error)?;
        // An instruction emulated for MMIO goes on first (userspace served
        // its last access); an exit it takes is handled without an entry.
        let mut drive = self.emulation.is_some();
        let mut emulated_exit = false;
        loop {
            if std::mem::take(&mut drive) {
                match self.drive_emulation(&mut cpu).map_err(hw_error)? {
                    Driven::Resume => {}
                    Driven::Exited => emulated_exit = true,
                    Driven::Store { addr, size, value } => {
                        let data = self.stash_store(value, size, Pending::MmioStore);
                        return Ok(VcpuExit::MmioWrite { addr, data });
                    }
                    Driven::Load { addr, size } => {
                        let data = self.stash_load(size, Pending::MmioLoad);
                        return Ok(VcpuExit::MmioRead { addr, data });
                    }
                    Driven::Exit(e) => return Ok(e),
                }
            }
            let enter = !std::mem::take(&mut emulated_exit);
            let entering = enter && self.nested.as_ref().is_some_and(|n| n.entering());
            if enter && self.triple_fault_pending && !entering {
                self.triple_fault_pending = false;
                match self.nested.as_mut().filter(|n| n.in_l2()) {
                    // A shutdown of L2 is L1's business: a TRIPLE_FAULT exit
                    // (once L2 has entered at all).
                    Some(n) => n.triple_fault_exit(&mut *cpu).map_err(hw_error)?,
                    None => return Ok(VcpuExit::Shutdown),
                }
            }
            if enter && self.control.take_exit_request() {
                return Ok(VcpuExit::Interrupted);
            }
            let now = cpu.cycles();
            if enter {
                self.nested_interrupts(&mut cpu, now).map_err(hw_error)?;
                self.apic
                    .before_entry(&mut *cpu, now, !entering)
                    .map_err(hw_error)?;
                self.exit_after_first_entry(&mut cpu, now)
                    .map_err(hw_error)?;
            }
            let in_l2 = match &self.nested {
                Some(n) if n.in_l2() && !enter => true,
                Some(n) if n.in_l2() => {
                    n.keep_l1_windows(&mut *cpu).map_err(hw_error)?;
                    true
                }
                _ => false,
            };
            let launched = match &self.nested {
                Some(n) if in_l2 => n.vmcs02_launched(),
                _ => self.launched,
            };
            self.control.entering_guest();
            let entered = if !enter {
                Ok(())
            } else if launched {
                VmxHardware::vmresume(&mut *cpu)
            } else {
                VmxHardware::vmlaunch(&mut *cpu)
            };
            let in_guest = self.control.back_in_l0();
            if enter {
                cpu.advance_time(L0_EXIT_CYCLES);
                if let Some(pause) = self.pacer.as_mut().and_then(|p| p.pace(&mut cpu)) {
                    std::thread::sleep(pause);
                }
            }
            self.control.note_exit_cycles(cpu.cycles());
            self.longest_in_guest = self.longest_in_guest.max(in_guest);
            if cpu.powered_off() {
                return Ok(VcpuExit::PoweredOff);
            }
            if let Some(n) = self.nested.as_mut().filter(|_| entering) {
                // The first entry of a fresh vmcs02: a failure is L1's
                // VMfail or VM-entry failure.
                if !n.first_entry_result(&mut *cpu, entered).map_err(hw_error)? {
                    continue;
                }
            } else {
                // L0's own entry of vmcs01, or again of vmcs02: a refusal is
                // L0's failure, never an exit to read.
                if let Err(HwError::VmFail(error)) = entered {
                    return Ok(VcpuExit::InternalError(InternalError::VmInstruction {
                        error,
                    }));
                }
                entered.map_err(hw_error)?;
            }
            let raw = VmxHardware::vmread(&*cpu, f::VM_EXIT_REASON).map_err(hw_error)?;
            if !entering && !in_l2 && raw & u64::from(x86::vmx::exit_reason::ENTRY_FAILURE) == 0 {
                // A VM-entry failure leaves vmcs01 clear (SDM Vol. 3C §27.8).
                self.launched = true;
            }
            let reason = raw as u16;
            *self.exits.entry(reason).or_insert(0) += 1;
            if let Some(n) = self.nested.as_mut() {
                if in_l2 {
                    match n.l2_exit(&mut *cpu, raw).map_err(hw_error)? {
                        Route::ToL1 => {
                            self.reflected += 1;
                            continue;
                        }
                        Route::Resume => continue,
                        Route::L0 => {}
                        Route::Mmio if emulable(&cpu).map_err(hw_error)? => {
                            self.emulation = Some(Emulation::new());
                            drive = true;
                            continue;
                        }
                        Route::Mmio => {
                            let gpa = VmxHardware::vmread(&*cpu, f::GUEST_PHYSICAL_ADDRESS)
                                .map_err(hw_error)?;
                            let rip = VmxHardware::vmread(&*cpu, f::GUEST_RIP).map_err(hw_error)?;
                            return Ok(VcpuExit::InternalError(InternalError::UnmappedAccess {
                                gpa,
                                rip,
                            }));
                        }
                    }
                } else if is_vmx_instruction(reason) {
                    if n.l1_vmx_instruction(&mut *cpu, reason).map_err(hw_error)? {
                        continue;
                    }
                    let rip = VmxHardware::vmread(&*cpu, f::GUEST_RIP).map_err(hw_error)?;
                    return Ok(VcpuExit::InternalError(InternalError::Emulation {
                        what: "a VMX instruction whose memory operand is not in RAM",
                        rip,
                    }));
                }
            }
            let now = cpu.cycles();
            match self.local_exit(&mut cpu, raw, now).map_err(hw_error)? {
                Local::Resume => {
                    self.raised_for_l1(&mut cpu, in_l2).map_err(hw_error)?;
                    continue;
                }
                Local::NotMine => {}
                Local::Exit(e) => return Ok(e),
                Local::Emulate => {
                    self.emulation = Some(Emulation::new());
                    drive = true;
                    continue;
                }
            }
            let offer = match &self.nested {
                Some(n) if !in_l2 => exits::VmxOffer {
                    caps: Some(n.caps()),
                    on: n.in_vmx_operation(),
                    ..exits::VmxOffer::default()
                },
                Some(n) => exits::VmxOffer {
                    l2: true,
                    l1_cr_masks: n.l1_cr_masks(),
                    ..exits::VmxOffer::default()
                },
                None => exits::VmxOffer::default(),
            };
            match exits::handle(&mut *cpu, raw, offer).map_err(hw_error)? {
                Handled::Resume => {
                    self.raised_for_l1(&mut cpu, in_l2).map_err(hw_error)?;
                    continue;
                }
                // A host interrupt: L0 has the CPU back; the loop's top
                // decides whether userspace asked for it.
                Handled::HostInterrupt => continue,
                Handled::Notify(mut exit) => {
                    if in_l2 {
                        exit.level = GuestLevel::L2;
                    }
                    self.notify_exits += 1;
                    let user = self.settings.notify.is_some_and(|n| n.user);
                    if user || exit.context_invalid {
                        return Ok(VcpuExit::Notify(exit));
                    }
                }
                Handled::IoOut {
                    port,
                    size,
                    value,
                    len,
                } => {
                    let data = self.stash_store(value, size, Pending::Io { in_size: None, len });
                    return Ok(VcpuExit::IoOut { port, data });
                }
                Handled::IoIn { port, size, len } => {
                    let pending = Pending::Io {
                        in_size: Some(size),
                        len,
                    };
                    let data = self.stash_load(size, pending);
                    return Ok(VcpuExit::IoIn { port, data });
                }
                Handled::Exit(e) => return Ok(e),
            }
        }
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
        }
    }

    fn control(&self) -> Arc<dyn VcpuControl> {
        self.control.clone()
    }

    fn inject_triple_fault(&mut self) -> Result<(), AccelError> {
        self.triple_fault_pending = true;
        Ok(())
    }

    fn virtual_ns(&self) -> Option<u64> {
        let cpu = self.machine.lock().unwrap_or_else(|p| p.into_inner());
        Some(self.control.ns_of(cpu.cycles()))
    }
}
