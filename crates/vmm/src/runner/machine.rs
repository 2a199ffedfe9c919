//! Building the machine: the kernel loaded into a boot image, the PC's port
//! and MMIO devices, then the VM with its capabilities switched on and the
//! boot vCPU.

use super::capabilities::Capabilities;
use super::{RunError, RunOptions};
use crate::devices::{
    MmioBus, PortBus, TestDevMmio, VirtualClock, TESTDEV_MMIO_BASE, TESTDEV_MMIO_LEN,
};
use crate::loader::{self, BootImage};
use crate::platform::LinuxPc;
use accel::{
    notify_vmexit_arg, Accelerator, Vm, VmConfig, NOTIFY_VMEXIT_ENABLED, NOTIFY_VMEXIT_USER,
};
use std::io::Write;

/// The board around the vCPU: what the guest boots from and the devices its
/// exits reach.
pub(super) struct Board {
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// The loaded kernel, modules and boot information.
    pub boot: BootImage,
    /// Port devices.
    pub ports: PortBus,
    /// MMIO devices.
    pub mmio: MmioBus,
    /// The time the counting devices (the PIT) see.
    pub clock: VirtualClock,
    /// The interrupt wiring of the Linux board; `None` on the multiboot board.
    pub linux: Option<LinuxPc>,
}

/// Loads `image` with the options' command line and modules, and builds the
/// PC devices with COM1 writing to `serial`.
pub(super) fn build_board(
    image: &[u8],
    options: &RunOptions,
    serial: Box<dyn Write + Send>,
) -> Result<Board, RunError> {
    let memory_bytes = options
        .memory_mib
        .checked_mul(1 << 20)
        .ok_or(RunError::MemoryTooLarge {
            mib: options.memory_mib,
        })?;
    let modules: Vec<loader::Module<'_>> = options
        .modules
        .iter()
        .map(|(string, data)| loader::Module { data, string })
        .collect();
    let clock = VirtualClock::new();
    let (ports, mmio, linux, tables) = if loader::is_bzimage(image) {
        let b = LinuxPc::build(serial, memory_bytes, clock.clone()).map_err(RunError::Devices)?;
        (b.ports, b.mmio, Some(b.pc), Some(b.tables))
    } else {
        // The PIC's handle is not needed: no interrupt of this board
        // reaches the vCPU.
        let (ports, _pic) =
            PortBus::pc(serial, memory_bytes, clock.clone()).map_err(RunError::Devices)?;
        let mut mmio = MmioBus::new();
        mmio.register(
            TESTDEV_MMIO_BASE,
            TESTDEV_MMIO_LEN as u64,
            Box::new(TestDevMmio::new()),
        );
        (ports, mmio, None, None)
    };
    let kernel_args = loader::KernelArgs {
        multiboot_cmdline: &options.cmdline,
        modules: &modules,
        linux: loader::LinuxArgs {
            cmdline: &options.append,
            initrd: options.initrd.as_deref(),
            firmware: tables.as_ref().map(|t| (&t.bytes[..], t.rsdp)),
        },
    };
    let boot = loader::load_kernel(image, memory_bytes, &kernel_args).map_err(RunError::Load)?;
    Ok(Board {
        memory_bytes,
        boot,
        ports,
        mmio,
        clock,
        linux,
    })
}

/// Creates the VM, copies the boot image into it, switches on what `caps`
/// says the run uses, and creates the boot vCPU. The VM is returned too: it
/// must outlive its vCPU.
pub(super) fn create_vm<A: Accelerator>(
    accel: &A,
    board: &Board,
    options: &RunOptions,
    caps: &Capabilities,
) -> Result<(A::Vm, <A::Vm as Vm>::Vcpu), RunError> {
    let mut vm = accel.create_vm(&VmConfig {
        memory_bytes: board.memory_bytes,
        intercept_ac_db: options.notify.intercept_ac_db,
        nested_vmx: options.nested_vmx,
        virtual_time: options.virtual_time,
        translation: options.translation,
    })?;
    for (gpa, bytes) in &board.boot.regions {
        vm.write_memory(*gpa, bytes)?;
    }
    if caps.notify {
        // USER: every notify exit comes here, to be logged and judged.
        let flags = NOTIFY_VMEXIT_ENABLED | NOTIFY_VMEXIT_USER;
        vm.enable_notify_vmexit(notify_vmexit_arg(options.notify.window, flags))?;
    }
    if caps.bus_locks {
        vm.enable_bus_lock_exit()?;
    }
    if options.notify.inject_context_invalid {
        vm.arm_notify_context_invalid(options.notify.context_invalid_level)?;
    }
    if let Some(stall) = options.notify.inject_stall {
        vm.inject_stall(stall)?;
    }
    let vcpu = vm.create_vcpu(0, &board.boot.entry)?;
    Ok((vm, vcpu))
}
