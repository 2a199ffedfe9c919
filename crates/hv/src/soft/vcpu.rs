//! The soft vCPU: the run loop of L0 (enter, take the exit, handle it in L0
//! or return it to userspace).

use super::control::SoftControl;
use super::exits::{self, Handled};
use super::setup::{self, PrivatePages, VmSettings};
use crate::accel::{
    AccelError, EntryState, InternalError, Registers, Vcpu, VcpuControl, VcpuExit, VcpuStats,
};
use crate::hw::{HwError, VmxHardware};
use softcpu::SoftCpu;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use x86::vmx::field as f;

/// An I/O exit waiting for userspace; completed on the next `run()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingIo {
    /// Access size for IN (the data goes to RAX), `None` for OUT.
    pub in_size: Option<usize>,
    /// Length of the I/O instruction.
    pub len: u64,
}

/// A vCPU of a soft VM.
pub struct SoftVcpu {
    machine: Arc<Mutex<SoftCpu>>,
    control: Arc<SoftControl>,
    settings: VmSettings,
    launched: bool,
    pending_io: Option<PendingIo>,
    io_data: [u8; 8],
    io_len: usize,
    exits: BTreeMap<u16, u64>,
    notify_exits: u64,
    longest_in_guest: Duration,
    triple_fault_pending: bool,
    tsc_hz: u64,
}

impl SoftVcpu {
    pub(super) fn new(
        machine: Arc<Mutex<SoftCpu>>,
        pages: &PrivatePages,
        entry: &EntryState,
        settings: &VmSettings,
    ) -> Result<Self, AccelError> {
        let (control, tsc_hz) = {
            let mut cpu = machine.lock().unwrap_or_else(|p| p.into_inner());
            setup::program(&mut *cpu, pages, entry, settings).map_err(|e| {
                AccelError::InvalidConfig(format!("programming the VMCS failed: {e:?}"))
            })?;
            let model = cpu.model();
            let tsc_hz = u64::from(model.crystal_hz) * u64::from(model.tsc_ratio_numerator)
                / u64::from(model.tsc_ratio_denominator.max(1));
            (
                SoftControl::new(cpu.kicker(), cpu.power_switch(), cpu.nmi_line(), tsc_hz),
                tsc_hz.max(1),
            )
        };
        Ok(SoftVcpu {
            machine,
            control: Arc::new(control),
            settings: *settings,
            launched: false,
            pending_io: None,
            io_data: [0; 8],
            io_len: 0,
            exits: BTreeMap::new(),
            notify_exits: 0,
            longest_in_guest: Duration::ZERO,
            triple_fault_pending: false,
            tsc_hz,
        })
    }

    /// Counts of every VM exit L0 took, by basic exit reason.
    pub fn exit_counts(&self) -> &BTreeMap<u16, u64> {
        &self.exits
    }

    fn complete_io(&mut self, cpu: &mut SoftCpu) -> Result<(), HwError> {
        if let Some(io) = self.pending_io.take() {
            if let Some(size) = io.in_size {
                let mut gprs = cpu.gprs();
                let mut v = [0u8; 8];
                v[..size].copy_from_slice(&self.io_data[..size]);
                let v = u64::from_le_bytes(v);
                gprs[0] = match size {
                    1 => (gprs[0] & !0xFF) | v,
                    2 => (gprs[0] & !0xFFFF) | v,
                    _ => v & 0xFFFF_FFFF,
                };
                cpu.set_gprs(&gprs);
            }
            exits::skip_instruction(cpu, io.len)?;
        }
        Ok(())
    }
}

fn hw_error(e: HwError) -> AccelError {
    AccelError::InvalidConfig(format!("VMX operation failed: {e:?}"))
}

impl Vcpu for SoftVcpu {
    fn run(&mut self) -> Result<VcpuExit<'_>, AccelError> {
        let machine = self.machine.clone();
        let mut cpu = machine.lock().unwrap_or_else(|p| p.into_inner());
        if self.control.is_powered_off() || cpu.powered_off() {
            return Ok(VcpuExit::PoweredOff);
        }
        self.complete_io(&mut cpu).map_err(hw_error)?;
        loop {
            if std::mem::take(&mut self.triple_fault_pending) {
                return Ok(VcpuExit::Shutdown);
            }
            if self.control.take_exit_request() {
                return Ok(VcpuExit::Interrupted);
            }
            let since = self.control.entering_guest();
            let entered = if self.launched {
                VmxHardware::vmresume(&mut *cpu)
            } else {
                VmxHardware::vmlaunch(&mut *cpu)
            };
            let in_guest = self.control.back_in_l0(since);
            self.control.note_exit_cycles(cpu.cycles());
            self.longest_in_guest = self.longest_in_guest.max(in_guest);
            if cpu.powered_off() {
                return Ok(VcpuExit::PoweredOff);
            }
            if let Err(HwError::VmFail(error)) = entered {
                return Ok(VcpuExit::InternalError(InternalError::VmInstruction {
                    error,
                }));
            }
            entered.map_err(hw_error)?;
            self.launched = true;
            let raw = VmxHardware::vmread(&*cpu, f::VM_EXIT_REASON).map_err(hw_error)?;
            let reason = raw as u16;
            *self.exits.entry(reason).or_insert(0) += 1;
            match exits::handle(&mut *cpu, raw).map_err(hw_error)? {
                Handled::Resume => continue,
                // A host interrupt: L0 has the CPU back; the loop's top
                // decides whether userspace asked for it.
                Handled::HostInterrupt => continue,
                Handled::Notify(exit) => {
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
                    self.io_data = value.to_le_bytes();
                    self.io_len = size;
                    self.pending_io = Some(PendingIo { in_size: None, len });
                    return Ok(VcpuExit::IoOut {
                        port,
                        data: &self.io_data[..self.io_len],
                    });
                }
                Handled::IoIn { port, size, len } => {
                    self.io_data = [0; 8];
                    self.io_len = size;
                    self.pending_io = Some(PendingIo {
                        in_size: Some(size),
                        len,
                    });
                    return Ok(VcpuExit::IoIn {
                        port,
                        data: &mut self.io_data[..self.io_len],
                    });
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
            cr0: r(f::GUEST_CR0)?,
            cr2: cpu.cr2(),
            cr3: r(f::GUEST_CR3)?,
            cr4: r(f::GUEST_CR4)?,
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
        Some((u128::from(cpu.cycles()) * 1_000_000_000 / u128::from(self.tsc_hz)) as u64)
    }
}
