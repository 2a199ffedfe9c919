//! The soft VM: guest RAM at guest-physical 0 in the machine's memory, with
//! the hypervisor's private pages (EPT, MSR bitmap) above it.

use super::setup::{FaultSettings, NotifySettings, PrivatePages, VmSettings};
use super::vcpu::SoftVcpu;
use crate::hw::{HwError, VmxHardware};
use accel::{
    self, AccelError, Accelerator, CpuDescription, EntryState, GuestLevel, InvalidState,
    ModelTiming, StallInjection, Vm, VmConfig,
};
use softcpu::{CpuModel, SoftCpu};
use std::sync::{Arc, Mutex};

/// Largest guest RAM the soft accelerator accepts (3 GiB keeps the top of the
/// 32-bit space free for devices, as on the kvm accelerator).
pub const MAX_MEMORY_BYTES: u64 = 3 << 30;

/// The soft accelerator.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoftAccelerator {
    /// The CPU model to instantiate.
    pub model: CpuModel,
}

/// What the soft accelerator refuses, or fails at, when it builds a VM
/// or a vCPU: the cause inside an [`AccelError`].
#[derive(Debug, thiserror::Error)]
pub enum SoftError {
    /// A guest RAM size it cannot give (`AccelError::InvalidConfig`).
    #[error(
        "guest memory of {bytes} bytes: it must be a nonzero multiple of 4 KiB and at most {max} MiB",
        max = MAX_MEMORY_BYTES >> 20
    )]
    MemorySize {
        /// The size asked for.
        bytes: u64,
    },
    /// A second vCPU, or one with an id other than 0
    /// (`AccelError::InvalidConfig`).
    #[error("the soft accelerator runs one vCPU per VM (id 0)")]
    OneVcpu,
    /// Installing hv's private pages failed (`AccelError::Hardware`).
    #[error("laying out the hypervisor's pages: {0}")]
    Layout(#[source] HwError),
    /// Writing a vCPU's VMCS failed (`AccelError::Hardware`).
    #[error("programming the VMCS: {0}")]
    Program(#[source] HwError),
}

/// A VM on the soft CPU.
pub struct SoftVm {
    pub(super) machine: Arc<Mutex<SoftCpu>>,
    pub(super) ram: u64,
    pub(super) private: PrivatePages,
    settings: VmSettings,
    vcpu_created: bool,
}

impl Accelerator for SoftAccelerator {
    type Vm = SoftVm;

    fn name(&self) -> &'static str {
        "soft"
    }

    fn create_vm(&self, config: &VmConfig) -> Result<SoftVm, AccelError> {
        let ram = config.memory_bytes;
        if ram == 0 || !ram.is_multiple_of(4096) || ram > MAX_MEMORY_BYTES {
            return Err(AccelError::invalid_config(SoftError::MemorySize {
                bytes: ram,
            }));
        }
        let private = PrivatePages::layout(ram);
        let mut cpu = SoftCpu::new(private.end, self.model);
        cpu.set_translation(config.translation);
        // Hot blocks are translated on a thread of their own, so that code
        // generation does not hold up the guest (it sees the same either way).
        cpu.set_translation_background(config.translation);
        private
            .install(&mut cpu)
            .map_err(|e| AccelError::hardware(SoftError::Layout(e)))?;
        Ok(SoftVm {
            machine: Arc::new(Mutex::new(cpu)),
            ram,
            private,
            settings: VmSettings {
                intercept_ac_db: config.intercept_ac_db,
                notify: None,
                bus_lock_exit: false,
                nested_vmx: config.nested_vmx,
                virtual_time: config.virtual_time,
                faults: FaultSettings::default(),
            },
            vcpu_created: false,
        })
    }

    fn supports_notify_vmexit(&self) -> bool {
        proc2_allowed(x86::vmx::proc2::NOTIFY_VM_EXITING)
    }

    fn supports_bus_lock_exit(&self) -> bool {
        proc2_allowed(x86::vmx::proc2::BUS_LOCK_DETECTION)
    }

    fn describe_cpu(&self) -> Result<CpuDescription, AccelError> {
        Ok(self.cpu())
    }
}

impl SoftAccelerator {
    /// The soft CPU guests get, from its model's CPUID (what
    /// [`Accelerator::describe_cpu`] answers; it cannot fail here).
    pub fn cpu(&self) -> CpuDescription {
        let [_, ebx, ecx, edx] = self.model.cpuid(0, 0);
        CpuDescription {
            name: "Vigil soft CPU".into(),
            vendor: accel::cpuid_vendor(ebx, edx, ecx),
            signature: self.model.cpuid(1, 0)[0],
            timing: Some(self.timing()),
        }
    }

    /// The soft CPU model's clocks and timing.
    pub fn timing(&self) -> ModelTiming {
        let m = &self.model;
        ModelTiming {
            crystal_hz: m.crystal_hz,
            tsc_ratio_numerator: m.tsc_ratio_numerator,
            tsc_ratio_denominator: m.tsc_ratio_denominator,
            notify_threshold: m.notify_threshold,
            delivery_cycles: m.delivery_cycles,
        }
    }
}

/// Whether the soft CPU's IA32_VMX_PROCBASED_CTLS2 allows `bit` to be 1.
fn proc2_allowed(bit: u32) -> bool {
    let cap = softcpu::capability_msr(x86::msr::VMX_PROCBASED_CTLS2).unwrap_or(0);
    (cap >> 32) as u32 & bit != 0
}

impl SoftVm {
    fn check(&self, gpa: u64, len: usize) -> Result<(), AccelError> {
        match gpa.checked_add(len as u64) {
            Some(end) if end <= self.ram => Ok(()),
            _ => Err(AccelError::OutOfRange {
                gpa,
                len: len as u64,
            }),
        }
    }
}

impl Vm for SoftVm {
    type Vcpu = SoftVcpu;

    fn write_memory(&mut self, gpa: u64, data: &[u8]) -> Result<(), AccelError> {
        self.check(gpa, data.len())?;
        let mut m = self.machine.lock().unwrap_or_else(|p| p.into_inner());
        m.write_phys(gpa, data).map_err(|_| AccelError::OutOfRange {
            gpa,
            len: data.len() as u64,
        })
    }

    fn read_memory(&self, gpa: u64, buf: &mut [u8]) -> Result<(), AccelError> {
        self.check(gpa, buf.len())?;
        let m = self.machine.lock().unwrap_or_else(|p| p.into_inner());
        m.read_phys(gpa, buf).map_err(|_| AccelError::OutOfRange {
            gpa,
            len: buf.len() as u64,
        })
    }

    fn create_vcpu(&mut self, id: u32, entry: &EntryState) -> Result<SoftVcpu, AccelError> {
        if self.vcpu_created || id != 0 {
            return Err(AccelError::invalid_config(SoftError::OneVcpu));
        }
        self.vcpu_created = true;
        SoftVcpu::new(self.machine.clone(), &self.private, entry, &self.settings)
    }

    fn enable_notify_vmexit(&mut self, arg: u64) -> Result<(), AccelError> {
        if self.vcpu_created {
            return Err(AccelError::InvalidState(InvalidState::NotifyAfterVcpu));
        }
        let (window, user) = accel::parse_notify_vmexit_arg(arg)?;
        self.settings.notify = Some(NotifySettings { window, user });
        Ok(())
    }

    fn enable_bus_lock_exit(&mut self) -> Result<(), AccelError> {
        if self.vcpu_created {
            return Err(AccelError::InvalidState(InvalidState::BusLockAfterVcpu));
        }
        self.settings.bus_lock_exit = true;
        Ok(())
    }

    fn arm_notify_context_invalid(&mut self, level: Option<GuestLevel>) -> Result<(), AccelError> {
        if self.vcpu_created {
            return Err(AccelError::InvalidState(
                InvalidState::FaultInjectionAfterVcpu,
            ));
        }
        self.settings.faults.context_invalid = Some(level);
        Ok(())
    }

    fn inject_stall(&mut self, stall: StallInjection) -> Result<(), AccelError> {
        if self.vcpu_created {
            return Err(AccelError::InvalidState(
                InvalidState::FaultInjectionAfterVcpu,
            ));
        }
        self.settings.faults.stall = Some(stall);
        Ok(())
    }
}
