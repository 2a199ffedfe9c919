//! [`KvmVm`]: a KVM virtual machine with guest RAM at guest-physical 0.

use std::fmt;
use std::sync::Arc;

use accel::{self, AccelError, EntryState, InvalidState, Unsupported, Vm, VmConfig};
use kvm_bindings::{
    kvm_enable_cap, kvm_userspace_memory_region, CpuId, KVM_BUS_LOCK_DETECTION_EXIT,
    KVM_CAP_X86_BUS_LOCK_EXIT, KVM_CAP_X86_NOTIFY_VMEXIT, KVM_CAP_X86_TRIPLE_FAULT_EVENT,
    KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Kvm, VmFd};

use crate::apic;
use crate::cpu_state;
use crate::cpuid;
use crate::memory::{self, GuestRam};
use crate::vcpu::{host_error, KvmVcpu};

/// Guest-physical address of the three pages KVM needs for its real-mode
/// TSS on Intel hosts without unrestricted guest (`KVM_SET_TSS_ADDR`); above
/// [`memory::MAX_MEMORY_BYTES`], so never inside guest RAM.
pub const TSS_ADDRESS: usize = 0xFFFB_D000;

/// Guest-physical address of the page KVM uses for its identity-mapped page
/// table on Intel hosts without unrestricted guest
/// (`KVM_SET_IDENTITY_MAP_ADDR`); just below [`TSS_ADDRESS`].
pub const IDENTITY_MAP_ADDRESS: u64 = 0xFFFB_C000;

/// A KVM virtual machine: guest RAM in memory slot 0 at guest-physical 0, no
/// in-kernel interrupt controller and no in-kernel devices, so every port
/// access and `HLT` reaches userspace.
pub struct KvmVm {
    // Field order matters: the VM file descriptor is closed before the guest
    // RAM mapping is released (each vCPU also holds the RAM).
    fd: VmFd,
    ram: Arc<GuestRam>,
    cpuid: CpuId,
    notify_supported: bool,
    bus_lock_modes: u32,
    triple_fault_event: bool,
    vcpus: u32,
}

impl fmt::Debug for KvmVm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvmVm")
            .field("memory_bytes", &self.ram.size())
            .finish_non_exhaustive()
    }
}

impl KvmVm {
    /// Creates a VM on `kvm` with the RAM `config` asks for.
    pub(crate) fn new(kvm: &Kvm, config: &VmConfig) -> Result<Self, AccelError> {
        if !config.intercept_ac_db {
            return Err(AccelError::Unsupported(Unsupported::AcDbInterceptionOff));
        }
        let size = memory::validate_memory_size(config.memory_bytes)?;
        let fd = kvm.create_vm().map_err(host_error("KVM_CREATE_VM"))?;
        fd.set_identity_map_address(IDENTITY_MAP_ADDRESS)
            .map_err(host_error("KVM_SET_IDENTITY_MAP_ADDR"))?;
        fd.set_tss_address(TSS_ADDRESS)
            .map_err(host_error("KVM_SET_TSS_ADDR"))?;
        let ram = Arc::new(GuestRam::new(size)?);
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: ram.size(),
            userspace_addr: ram.host_address()?,
        };
        // SAFETY: the region describes exactly the host mapping owned by
        // `ram`, which is page-aligned and `ram.size()` bytes long. The
        // mapping outlives every file descriptor of this VM: `ram` is held
        // (through an `Arc`) by this `KvmVm` and by every `KvmVcpu`, and each
        // of them drops its descriptor before its `Arc`. Guest writes through
        // KVM are observed only through `vm-memory`'s volatile accessors.
        unsafe { fd.set_user_memory_region(region) }
            .map_err(host_error("KVM_SET_USER_MEMORY_REGION"))?;
        let mut cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(host_error("KVM_GET_SUPPORTED_CPUID"))?;
        let tsc_deadline_msr = apic::route_tsc_deadline_msr(kvm, &fd);
        cpuid::offer_apic(cpuid.as_mut_slice(), tsc_deadline_msr);
        let notify_supported = kvm.check_extension_raw(KVM_CAP_X86_NOTIFY_VMEXIT.into()) > 0;
        let bus_lock_modes = kvm
            .check_extension_raw(KVM_CAP_X86_BUS_LOCK_EXIT.into())
            .max(0) as u32;
        // The triple-fault event lets userspace shut a vCPU down
        // (`Vcpu::inject_triple_fault`); it must be enabled on the VM.
        let triple_fault_event = kvm.check_extension_raw(KVM_CAP_X86_TRIPLE_FAULT_EVENT.into()) > 0
            && fd
                .enable_cap(&kvm_enable_cap {
                    cap: KVM_CAP_X86_TRIPLE_FAULT_EVENT,
                    args: [1, 0, 0, 0],
                    ..Default::default()
                })
                .is_ok();
        Ok(Self {
            fd,
            ram,
            cpuid,
            notify_supported,
            bus_lock_modes,
            triple_fault_event,
            vcpus: 0,
        })
    }

    /// Guest RAM size in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.ram.size()
    }

    /// The underlying `kvm-ioctls` VM handle (to enable capabilities).
    pub fn fd(&self) -> &VmFd {
        &self.fd
    }
}

impl Vm for KvmVm {
    type Vcpu = KvmVcpu;

    fn write_memory(&mut self, gpa: u64, data: &[u8]) -> Result<(), AccelError> {
        self.ram.write(gpa, data)
    }

    fn read_memory(&self, gpa: u64, buf: &mut [u8]) -> Result<(), AccelError> {
        self.ram.read(gpa, buf)
    }

    fn create_vcpu(&mut self, id: u32, entry: &EntryState) -> Result<KvmVcpu, AccelError> {
        let fd = self
            .fd
            .create_vcpu(u64::from(id))
            .map_err(host_error("KVM_CREATE_VCPU"))?;
        let mut cpuid = self.cpuid.clone();
        cpuid::set_apic_id(cpuid.as_mut_slice(), id);
        fd.set_cpuid2(&cpuid)
            .map_err(host_error("KVM_SET_CPUID2"))?;
        let initial = fd.get_sregs().map_err(host_error("KVM_GET_SREGS"))?;
        fd.set_sregs(&cpu_state::entry_sregs(&initial, entry))
            .map_err(host_error("KVM_SET_SREGS"))?;
        fd.set_regs(&cpu_state::entry_regs(entry))
            .map_err(host_error("KVM_SET_REGS"))?;
        self.vcpus += 1;
        Ok(KvmVcpu::new(
            fd,
            Arc::clone(&self.ram),
            self.fd.run_size(),
            id,
            self.triple_fault_event,
        ))
    }

    fn enable_bus_lock_exit(&mut self) -> Result<(), AccelError> {
        if self.vcpus > 0 {
            return Err(AccelError::InvalidState(InvalidState::BusLockAfterVcpu));
        }
        if self.bus_lock_modes & KVM_BUS_LOCK_DETECTION_EXIT == 0 {
            return Err(AccelError::Unsupported(Unsupported::BusLockExit));
        }
        self.fd
            .enable_cap(&kvm_enable_cap {
                cap: KVM_CAP_X86_BUS_LOCK_EXIT,
                args: [u64::from(KVM_BUS_LOCK_DETECTION_EXIT), 0, 0, 0],
                ..Default::default()
            })
            .map_err(host_error("KVM_ENABLE_CAP(KVM_CAP_X86_BUS_LOCK_EXIT)"))
    }

    fn enable_notify_vmexit(&mut self, arg: u64) -> Result<(), AccelError> {
        accel::parse_notify_vmexit_arg(arg)?;
        if self.vcpus > 0 {
            return Err(AccelError::InvalidState(InvalidState::NotifyAfterVcpu));
        }
        if !self.notify_supported {
            return Err(AccelError::Unsupported(Unsupported::NotifyVmexit));
        }
        self.fd
            .enable_cap(&kvm_enable_cap {
                cap: KVM_CAP_X86_NOTIFY_VMEXIT,
                args: [arg, 0, 0, 0],
                ..Default::default()
            })
            .map_err(host_error("KVM_ENABLE_CAP(KVM_CAP_X86_NOTIFY_VMEXIT)"))
    }
}
