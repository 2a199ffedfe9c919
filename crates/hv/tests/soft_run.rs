//! The soft accelerator end to end with hand-assembled guests.

use accel::{Accelerator, EntryMode, EntryState, InternalError, Vcpu, VcpuExit, Vm, VmConfig};
use hv::soft::SoftAccelerator;

const LOAD: u64 = 0x10_0000;

fn vm_with(code: &[u8]) -> (hv::soft::SoftVm, hv::soft::SoftVcpu) {
    let mut vm = SoftAccelerator::default()
        .create_vm(&VmConfig::with_memory(4 << 20))
        .unwrap();
    vm.write_memory(LOAD, code).unwrap();
    let vcpu = vm
        .create_vcpu(
            0,
            &EntryState {
                mode: EntryMode::Protected32Flat,
                rip: LOAD,
                rsp: 0x8_0000,
                rax: 0x2BAD_B002,
                rbx: 0x9000,
            },
        )
        .unwrap();
    (vm, vcpu)
}

#[test]
fn out_in_and_hlt_reach_userspace() {
    // mov al,'A'; out 0x3f8? (out dx form): mov dx,0x3f8; out dx,al; in al,dx; out 0xf4,al; hlt
    let code = [
        0xB0, b'A', 0x66, 0xBA, 0xF8, 0x03, 0xEE, 0xEC, 0xE6, 0xF4, 0xF4,
    ];
    let (_vm, mut vcpu) = vm_with(&code);
    match vcpu.run().unwrap() {
        VcpuExit::IoOut { port, data } => assert_eq!((port, data.to_vec()), (0x3F8, vec![b'A'])),
        e => panic!("{e:?}"),
    }
    match vcpu.run().unwrap() {
        VcpuExit::IoIn { port, data } => {
            assert_eq!(port, 0x3F8);
            data[0] = 0x5A;
        }
        e => panic!("{e:?}"),
    }
    match vcpu.run().unwrap() {
        VcpuExit::IoOut { port, data } => assert_eq!((port, data.to_vec()), (0xF4, vec![0x5A])),
        e => panic!("{e:?}"),
    }
    assert!(matches!(vcpu.run().unwrap(), VcpuExit::Hlt));
    let regs = vcpu.registers().unwrap();
    assert_eq!(regs.rip, LOAD + code.len() as u64);
    assert_eq!(regs.cs, 0x10);
}

#[test]
fn triple_fault_is_a_shutdown() {
    // lidt [limit 0]; ud2
    let code = [0x0F, 0x01, 0x1D, 0x00, 0x01, 0x10, 0x00, 0x0F, 0x0B];
    let (mut vm, mut vcpu) = vm_with(&code);
    vm.write_memory(LOAD + 0x100, &[0; 6]).unwrap();
    assert!(matches!(vcpu.run().unwrap(), VcpuExit::Shutdown));
}

#[test]
fn mmio_loads_and_stores_go_to_userspace_and_complete() {
    // mov eax, [0xfeb00000]; mov [0xfeb00010], ax; out 0xf4, eax
    let code = [
        0xA1, 0x00, 0x00, 0xB0, 0xFE, 0x66, 0xA3, 0x10, 0x00, 0xB0, 0xFE, 0xE7, 0xF4,
    ];
    let (_vm, mut vcpu) = vm_with(&code);
    match vcpu.run().unwrap() {
        VcpuExit::MmioRead { addr, data } => {
            assert_eq!((addr, data.len()), (0xFEB0_0000, 4));
            data.copy_from_slice(&0xCAFE_F00Du32.to_le_bytes());
        }
        e => panic!("{e:?}"),
    }
    match vcpu.run().unwrap() {
        VcpuExit::MmioWrite { addr, data } => {
            assert_eq!((addr, data), (0xFEB0_0010, &0xF00Du16.to_le_bytes()[..]));
        }
        e => panic!("{e:?}"),
    }
    match vcpu.run().unwrap() {
        VcpuExit::IoOut { port: 0xF4, data } => {
            assert_eq!(data, 0xCAFE_F00Du32.to_le_bytes());
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn the_local_apic_is_emulated_in_l0() {
    // mov eax, [0xfee00030] (version); out 0xf4, eax
    let code = [0xA1, 0x30, 0x00, 0xE0, 0xFE, 0xE7, 0xF4];
    let (_vm, mut vcpu) = vm_with(&code);
    match vcpu.run().unwrap() {
        VcpuExit::IoOut { port: 0xF4, data } => {
            assert_eq!(data, 0x0005_0014u32.to_le_bytes());
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn executing_from_mmio_is_an_unmapped_access() {
    // jmp 0xfeb00000 (as push imm32; ret)
    let code = [0x68, 0x00, 0x00, 0xB0, 0xFE, 0xC3];
    let (_vm, mut vcpu) = vm_with(&code);
    match vcpu.run().unwrap() {
        VcpuExit::InternalError(InternalError::UnmappedAccess { gpa, .. }) => {
            assert_eq!(gpa, 0xFEB0_0000);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn cpuid_is_handled_in_l0() {
    // xor eax,eax; cpuid; mov eax, ebx; out 0xf4, eax (as out imm8, eax); hlt
    let code = [0x31, 0xC0, 0x0F, 0xA2, 0x89, 0xD8, 0xE7, 0xF4, 0xF4];
    let (_vm, mut vcpu) = vm_with(&code);
    match vcpu.run().unwrap() {
        VcpuExit::IoOut { port, data } => {
            assert_eq!(port, 0xF4);
            assert_eq!(data, b"Genu");
        }
        e => panic!("{e:?}"),
    }
    let stats = vcpu.stats();
    assert!(stats
        .internal_exits
        .iter()
        .any(|(n, c)| *n == "cpuid" && *c == 1));
}

#[test]
fn an_exit_request_interrupts_a_spinning_guest_and_host_ticks_do_not() {
    // jmp $
    let (_vm, mut vcpu) = vm_with(&[0xEB, 0xFE]);
    let control = vcpu.control();
    let t = std::thread::spawn(move || {
        let mut seen_in_guest = false;
        for _ in 0..5 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            seen_in_guest |= control.in_guest_for().is_some();
            control.host_tick();
        }
        // Assert only after the vCPU has been let go, so a failure here
        // cannot leave `run()` spinning forever.
        control.request_exit();
        seen_in_guest
    });
    assert!(matches!(vcpu.run().unwrap(), VcpuExit::Interrupted));
    assert!(t.join().unwrap(), "the vCPU was never seen in the guest");
    let stats = vcpu.stats();
    let ext = stats
        .internal_exits
        .iter()
        .find(|(n, _)| *n == "external-interrupt")
        .map_or(0, |(_, c)| *c);
    assert!(ext >= 2, "host ticks reached L0 {ext} times");
    assert!(stats.longest_without_l0.unwrap() < std::time::Duration::from_secs(1));
    assert!(vcpu.control().in_guest_for().is_none());
}

#[test]
fn power_off_stops_a_vcpu_for_good() {
    let (_vm, mut vcpu) = vm_with(&[0xEB, 0xFE]);
    let control = vcpu.control();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        control.power_off();
    });
    assert!(matches!(vcpu.run().unwrap(), VcpuExit::PoweredOff));
    t.join().unwrap();
    assert!(matches!(vcpu.run().unwrap(), VcpuExit::PoweredOff));
}

#[test]
fn an_injected_triple_fault_shuts_the_vcpu_down() {
    let (_vm, mut vcpu) = vm_with(&[0xEB, 0xFE]);
    vcpu.inject_triple_fault().unwrap();
    assert!(matches!(vcpu.run().unwrap(), VcpuExit::Shutdown));
}

#[test]
fn notify_can_be_enabled_only_before_vcpus_and_with_known_flags() {
    use accel::{notify_vmexit_arg, NOTIFY_VMEXIT_ENABLED, NOTIFY_VMEXIT_USER};
    let acc = SoftAccelerator::default();
    assert!(acc.supports_notify_vmexit());
    let mut vm = acc.create_vm(&VmConfig::with_memory(1 << 20)).unwrap();
    let bad = vm.enable_notify_vmexit(notify_vmexit_arg(0, 4 | NOTIFY_VMEXIT_ENABLED));
    assert!(matches!(bad, Err(accel::AccelError::InvalidConfig(_))));
    let bad = vm.enable_notify_vmexit(notify_vmexit_arg(100, NOTIFY_VMEXIT_USER));
    assert!(matches!(bad, Err(accel::AccelError::InvalidConfig(_))));
    vm.enable_notify_vmexit(notify_vmexit_arg(
        0,
        NOTIFY_VMEXIT_ENABLED | NOTIFY_VMEXIT_USER,
    ))
    .unwrap();
    let entry = EntryState {
        mode: EntryMode::Protected32Flat,
        rip: 0,
        rsp: 0,
        rax: 0,
        rbx: 0,
    };
    let _vcpu = vm.create_vcpu(0, &entry).unwrap();
    let late = vm.enable_notify_vmexit(notify_vmexit_arg(0, NOTIFY_VMEXIT_ENABLED));
    assert!(matches!(late, Err(accel::AccelError::InvalidState(_))));
}

#[test]
fn bad_memory_sizes_and_ranges_are_errors() {
    let acc = SoftAccelerator::default();
    assert!(acc.create_vm(&VmConfig::with_memory(0)).is_err());
    assert!(acc.create_vm(&VmConfig::with_memory(4097)).is_err());
    let mut vm = acc.create_vm(&VmConfig::with_memory(1 << 20)).unwrap();
    assert!(vm.write_memory((1 << 20) - 1, &[0, 0]).is_err());
    assert!(vm.write_memory(u64::MAX, &[0]).is_err());
}

#[test]
fn the_soft_accelerator_describes_the_cpu_its_guests_get() {
    let accel = SoftAccelerator::default();
    let described = accel.describe_cpu().unwrap();
    let cpu = softcpu::SoftCpu::new(4096, accel.model);
    assert_eq!(described.signature, cpu.native_cpuid(1, 0)[0]);
    assert_eq!(described.vendor, "GenuineIntel");
    assert_eq!(described.name, "Vigil soft CPU");
    let timing = described.timing.expect("a modelled part");
    assert_eq!(timing, accel.timing());
    assert_eq!(timing.crystal_hz, cpu.native_cpuid(0x15, 0)[2]);
    assert_eq!(timing.tsc_hz(), 2_000_000_000);
}
