//! [`KvmVcpu`]: one KVM vCPU and the mapping of its exits onto Vigil's.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use accel::{
    AccelError, GuestLevel, InternalError, NotifyExit, Registers, Unsupported, Vcpu, VcpuControl,
    VcpuExit, VcpuStats,
};
use kvm_ioctls::{VcpuExit as KvmExit, VcpuFd};

use crate::apic::UserApic;
use crate::control::KvmControl;
use crate::cpu_state;
use crate::exit::{
    exit_name, ExitKind, KVM_EXIT_NOTIFY, KVM_EXIT_X86_BUS_LOCK, VMX_EXIT_BUS_LOCK, VMX_EXIT_NOTIFY,
};
use crate::memory::GuestRam;
use crate::run_area;

/// Turns a `kvm-ioctls` error into [`AccelError::Host`] for `op`.
pub(crate) fn host_error(op: &'static str) -> impl Fn(kvm_ioctls::Error) -> AccelError {
    move |e| AccelError::Host {
        op,
        source: io::Error::from_raw_os_error(e.errno()),
    }
}

/// One KVM vCPU. Create it with [`Vm::create_vcpu`](accel::Vm::create_vcpu)
/// on a [`KvmVm`](crate::KvmVm).
pub struct KvmVcpu {
    // Field order matters: the vCPU descriptor is closed before this vCPU's
    // hold on guest RAM is released.
    fd: VcpuFd,
    _ram: Arc<GuestRam>,
    run_size: usize,
    id: u32,
    control: Arc<KvmControl>,
    notify_exits: u64,
    bus_lock_exits: u64,
    triple_fault_event: bool,
    apic: UserApic,
}

impl fmt::Debug for KvmVcpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvmVcpu")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl KvmVcpu {
    /// Wraps a configured vCPU descriptor.
    pub(crate) fn new(
        fd: VcpuFd,
        ram: Arc<GuestRam>,
        run_size: usize,
        id: u32,
        triple_fault_event: bool,
    ) -> Self {
        Self {
            fd,
            _ram: ram,
            run_size,
            id,
            control: Arc::new(KvmControl::default()),
            notify_exits: 0,
            bus_lock_exits: 0,
            triple_fault_event,
            apic: UserApic::new(),
        }
    }

    /// The vCPU index given at creation.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The underlying `kvm-ioctls` vCPU handle.
    pub fn fd(&self) -> &VcpuFd {
        &self.fd
    }

    /// While `on`, [`Vcpu::run`] returns [`VcpuExit::Interrupted`] without
    /// entering the guest (KVM's `immediate_exit`); it still completes a
    /// pending `IN` first, so the guest state is consistent when it returns.
    pub fn set_immediate_exit(&mut self, on: bool) {
        self.fd.set_kvm_immediate_exit(u8::from(on));
    }

    /// A HLT with interrupts enabled and an APIC interrupt to come: waits
    /// (in host time) until it is due or a host thread wants the vCPU;
    /// `false` when nothing can wake the guest (the run's end).
    fn hlt_waits(&mut self) -> Result<bool, AccelError> {
        let rflags = self
            .fd
            .get_regs()
            .map_err(host_error("KVM_GET_REGS"))?
            .rflags;
        let Some(mut left) = self.apic.wake_in(rflags & x86::rflags::IF != 0) else {
            return Ok(false);
        };
        while !left.is_zero() && !self.control.wants_vcpu() {
            let step = left.min(Duration::from_millis(1));
            std::thread::sleep(step);
            left = left.saturating_sub(step);
        }
        Ok(true)
    }

    /// The guest RIP now.
    fn rip(&self) -> Result<u64, AccelError> {
        Ok(self.fd.get_regs().map_err(host_error("KVM_GET_REGS"))?.rip)
    }

    /// Completes a `KVM_EXIT_IO` exit: single accesses become
    /// [`VcpuExit::IoIn`]/[`VcpuExit::IoOut`] over KVM's own data bytes;
    /// string I/O is refused.
    fn io_exit(&mut self) -> Result<VcpuExit<'_>, AccelError> {
        let Some(req) = run_area::io_request(&mut self.fd) else {
            return Err(corrupt_run_area("KVM_EXIT_IO without an I/O descriptor"));
        };
        if req.count != 1 || !matches!(req.size, 1 | 2 | 4) {
            return Ok(VcpuExit::InternalError(InternalError::Emulation {
                what: "string I/O",
                rip: self.rip()?,
            }));
        }
        let port = req.port;
        match run_area::io_data(&mut self.fd, self.run_size, &req) {
            Some(data) if req.is_in => Ok(VcpuExit::IoIn { port, data }),
            Some(data) => Ok(VcpuExit::IoOut { port, data }),
            None => Err(corrupt_run_area(
                "KVM_EXIT_IO data lies outside the vCPU run area",
            )),
        }
    }

    /// Maps an exit that has no counterpart in [`VcpuExit`] onto an
    /// [`InternalError`].
    fn other_exit(&mut self) -> Result<InternalError, AccelError> {
        let reason = run_area::exit_reason(&mut self.fd);
        let rip = self.rip()?;
        Ok(match reason {
            KVM_EXIT_NOTIFY => InternalError::UnhandledExit {
                reason: VMX_EXIT_NOTIFY,
                qualification: 0,
                rip,
            },
            KVM_EXIT_X86_BUS_LOCK => InternalError::UnhandledExit {
                reason: VMX_EXIT_BUS_LOCK,
                qualification: 0,
                rip,
            },
            other => InternalError::Emulation {
                what: exit_name(other),
                rip,
            },
        })
    }
}

/// An inconsistency in what the kernel left in `kvm_run`.
fn corrupt_run_area(what: &'static str) -> AccelError {
    AccelError::Host {
        op: "reading the KVM exit",
        source: io::Error::new(io::ErrorKind::InvalidData, what),
    }
}

impl Vcpu for KvmVcpu {
    fn run(&mut self) -> Result<VcpuExit<'_>, AccelError> {
        // Exits the accelerator finishes itself (the APIC, interrupt windows,
        // timer kicks, HLT waiting for an interrupt) loop here; the rest
        // leave the loop and go to userspace below.
        let kind = loop {
            if self.control.is_powered_off() {
                return Ok(VcpuExit::PoweredOff);
            }
            if self.control.take_exit_request() {
                return Ok(VcpuExit::Interrupted);
            }
            if self.control.take_nmi() {
                self.fd.nmi().map_err(host_error("KVM_NMI"))?;
            }
            self.apic.before_run(&mut self.fd)?;
            self.control.enter();
            let apic = &mut self.apic;
            let ran = self.fd.run().map(|mut exit| {
                // MSRs routed to userspace (`apic::route_tsc_deadline_msr`)
                // are the APIC's; KVM completes the instruction on re-entry.
                match &mut exit {
                    KvmExit::X86Rdmsr(msr) => match apic.rdmsr(msr.index) {
                        Some(v) => *msr.data = v,
                        None => *msr.error = 1,
                    },
                    KvmExit::X86Wrmsr(msr) if !apic.wrmsr(msr.index, msr.data) => *msr.error = 1,
                    _ => {}
                }
                ExitKind::of(&exit)
            });
            self.control.leave();
            // A bus lock may come with any exit, not only its own
            // (KVM_RUN_X86_BUS_LOCK in kvm_run.flags): count it here.
            if self.fd.get_kvm_run().flags
                & u16::try_from(kvm_bindings::KVM_RUN_X86_BUS_LOCK).unwrap_or(0)
                != 0
            {
                self.bus_lock_exits += 1;
            }
            match ran {
                // `immediate_exit` set by the caller: return at once.
                Err(e) if e.errno() == libc::EINTR && self.fd.get_kvm_run().immediate_exit != 0 => {
                    return Ok(VcpuExit::Interrupted)
                }
                // Kicked: by a request (the loop's top answers it) or by the
                // APIC timer (the top injects).
                Err(e) if e.errno() == libc::EINTR => continue,
                Err(e) => {
                    return Err(AccelError::Host {
                        op: "KVM_RUN",
                        source: io::Error::from_raw_os_error(e.errno()),
                    })
                }
                Ok(ExitKind::IrqWindowOpen | ExitKind::Msr) => continue,
                Ok(ExitKind::Mmio { gpa }) if self.apic.claims(gpa) => {
                    self.apic.mmio(&mut self.fd);
                    continue;
                }
                Ok(ExitKind::Hlt) if self.hlt_waits()? => continue,
                Ok(kind) => break kind,
            }
        };
        let exit = match kind {
            ExitKind::Io => return self.io_exit(),
            ExitKind::Hlt => VcpuExit::Hlt,
            ExitKind::Shutdown => VcpuExit::Shutdown,
            // The loop above continues after these three.
            ExitKind::Interrupted | ExitKind::IrqWindowOpen | ExitKind::Msr => {
                VcpuExit::Interrupted
            }
            ExitKind::FailEntry { hardware_reason } => VcpuExit::FailEntry { hardware_reason },
            ExitKind::InternalError => VcpuExit::InternalError(InternalError::Host {
                suberror: run_area::internal_suberror(&mut self.fd).unwrap_or(0),
            }),
            ExitKind::Mmio { .. } => {
                return match run_area::mmio(&mut self.fd) {
                    Some((addr, true, data)) => Ok(VcpuExit::MmioWrite { addr, data }),
                    Some((addr, false, data)) => Ok(VcpuExit::MmioRead { addr, data }),
                    None => Err(corrupt_run_area("KVM_EXIT_MMIO with a bad length")),
                };
            }
            ExitKind::MemoryFault { gpa } => {
                VcpuExit::InternalError(InternalError::UnmappedAccess {
                    gpa,
                    rip: self.rip()?,
                })
            }
            // Counted above, from kvm_run.flags.
            ExitKind::Other if run_area::exit_reason(&mut self.fd) == KVM_EXIT_X86_BUS_LOCK => {
                VcpuExit::BusLock
            }
            ExitKind::Other if run_area::exit_reason(&mut self.fd) == KVM_EXIT_NOTIFY => {
                // KVM_EXIT_NOTIFY: only the context-invalid flag is reported.
                self.notify_exits += 1;
                let invalid = run_area::notify_context_invalid(&mut self.fd).unwrap_or(false);
                VcpuExit::Notify(NotifyExit {
                    context_invalid: invalid,
                    level: GuestLevel::L1,
                    qualification: None,
                    rip: Some(self.rip()?),
                    idt_vectoring_info: None,
                    to_l1: false,
                })
            }
            ExitKind::Other => VcpuExit::InternalError(self.other_exit()?),
        };
        Ok(exit)
    }

    fn registers(&self) -> Result<Registers, AccelError> {
        let regs = self.fd.get_regs().map_err(host_error("KVM_GET_REGS"))?;
        let sregs = self.fd.get_sregs().map_err(host_error("KVM_GET_SREGS"))?;
        Ok(cpu_state::registers_from_kvm(&regs, &sregs))
    }

    fn stats(&self) -> VcpuStats {
        // KVM handles its own exits in the kernel and does not report them
        // per reason to userspace; notify exits are counted as they reach
        // userspace (Vigil enables them with the USER flag).
        VcpuStats {
            notify_exits: self.notify_exits,
            bus_lock_exits: self.bus_lock_exits,
            ..VcpuStats::default()
        }
    }

    fn control(&self) -> Arc<dyn VcpuControl> {
        self.control.clone()
    }

    fn deliver_interrupt(&mut self, vector: u8, level: bool) -> Result<(), AccelError> {
        self.apic.accept(vector, level);
        Ok(())
    }

    fn inject_triple_fault(&mut self) -> Result<(), AccelError> {
        if !self.triple_fault_event {
            return Err(AccelError::Unsupported(Unsupported::TripleFaultEvent));
        }
        let mut events = self
            .fd
            .get_vcpu_events()
            .map_err(host_error("KVM_GET_VCPU_EVENTS"))?;
        events.flags = kvm_bindings::KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
        events.triple_fault.pending = 1;
        self.fd
            .set_vcpu_events(&events)
            .map_err(host_error("KVM_SET_VCPU_EVENTS"))
    }

    fn virtual_ns(&self) -> Option<u64> {
        None
    }
}
