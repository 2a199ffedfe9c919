//! The soft accelerator's debug access (`hv::soft::debug`): registers,
//! memory by physical and linear address, VMCS fields by name, notify state.

use accel::debug::{DebugStop, GuestDebug, WhichVmcs};
use accel::{Accelerator, EntryMode, EntryState, GuestLevel, Vcpu, VcpuExit, Vm, VmConfig};
use hv::soft::SoftAccelerator;

const LOAD: u64 = 0x10_0000;

fn vm_with(code: &[u8]) -> (hv::soft::SoftVm, hv::soft::SoftVcpu) {
    let mut vm = SoftAccelerator::default()
        .create_vm(&VmConfig::with_memory(4 << 20))
        .unwrap();
    vm.write_memory(LOAD, code).unwrap();
    let entry = EntryState {
        mode: EntryMode::Protected32Flat,
        rip: LOAD,
        rsp: 0x8_0000,
        rax: 0x2BAD_B002,
        rbx: 0x9000,
    };
    let vcpu = vm.create_vcpu(0, &entry).unwrap();
    (vm, vcpu)
}

#[test]
fn registers_memory_and_vmcs_of_a_stopped_guest() {
    // mov ecx, 0x1234; out 0xf4, al; mov edx, [0x100800]; out 0xf4, al
    let code = [
        0xB9, 0x34, 0x12, 0, 0, 0xE6, 0xF4, 0x8B, 0x15, 0x00, 0x08, 0x10, 0x00, 0xE6, 0xF4,
    ];
    let (_vm, mut vcpu) = vm_with(&code);
    assert!(matches!(
        vcpu.run().unwrap(),
        VcpuExit::IoOut { port: 0xF4, .. }
    ));
    let regs = vcpu.debug_registers().unwrap();
    assert_eq!(regs.gpr[1], 0x1234);
    assert_eq!(regs.gpr[0], 0x2BAD_B002);
    assert_eq!(regs.gpr[4], 0x8_0000, "RSP from the VMCS");
    // The OUT is not complete until the next run(): RIP still points at it.
    assert_eq!(regs.rip, LOAD + 5);
    assert_eq!(regs.segments[1], 0x10);
    assert_eq!(regs.cr0 & 1, 1, "protected mode");
    assert_eq!(vcpu.level(), GuestLevel::L1);

    // Paging is off: linear is physical.
    vcpu.write_linear(0x10_0800, &0xfeed_beefu32.to_le_bytes())
        .unwrap();
    let mut b = [0u8; 4];
    vcpu.read_physical(0x10_0800, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0xfeed_beef);
    let mut code_back = [0u8; 5];
    vcpu.read_linear(LOAD, &mut code_back).unwrap();
    assert_eq!(code_back, code[..5]);
    assert!(vcpu.read_physical(4 << 20, &mut b).is_err(), "beyond RAM");

    // A register write is what the guest sees next.
    let mut r = regs;
    r.gpr[1] = 0x5678;
    vcpu.set_debug_registers(&r).unwrap();
    assert!(matches!(
        vcpu.run().unwrap(),
        VcpuExit::IoOut { port: 0xF4, .. }
    ));
    let regs = vcpu.debug_registers().unwrap();
    assert_eq!(regs.gpr[1], 0x5678);
    assert_eq!(
        regs.gpr[2], 0xfeed_beef,
        "the guest read what the debugger wrote"
    );

    let fields = vcpu.vmcs_fields(WhichVmcs::Vmcs01).unwrap();
    let get = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|f| f.1);
    assert_eq!(get("guest_rip"), Some(LOAD + 13));
    assert_eq!(get("vm_exit_reason"), Some(30), "I/O instruction");
    assert!(vcpu.vmcs_fields(WhichVmcs::Vmcs02).is_err(), "no L2");
    assert!(vcpu.vmcs_fields(WhichVmcs::Vmcs12).is_err(), "no L2");

    let n = vcpu.notify_state().unwrap();
    assert_eq!(n.exits, 0);
    assert_eq!(n.last_exit_reason, 30);
    assert!(n.threshold > 0);
    assert!(n.virtual_ns > 0);
}

#[test]
fn field_names_cover_every_named_encoding() {
    use x86::vmx::field;
    assert_eq!(field::name(field::GUEST_RIP), Some("guest_rip"));
    assert_eq!(field::name(field::NOTIFY_WINDOW), Some("notify_window"));
    assert_eq!(field::name(0x7FFF), None);
    for e in field::ALL {
        assert!(field::name(e).is_some(), "{e:#x}");
    }
}

#[test]
fn steps_breakpoints_and_watchpoints_stop_the_vcpu() {
    // inc eax; inc eax; mov [0x100800], eax; inc eax; out 0xf4, al
    let code = [0x40, 0x40, 0xA3, 0x00, 0x08, 0x10, 0x00, 0x40, 0xE6, 0xF4];
    let (_vm, mut vcpu) = vm_with(&code);
    vcpu.set_single_step(true);
    assert!(matches!(vcpu.run().unwrap(), VcpuExit::Debug));
    assert_eq!(vcpu.take_stop(), Some(DebugStop::Step));
    assert_eq!(
        vcpu.debug_registers().unwrap().rip,
        LOAD + 1,
        "one instruction"
    );
    vcpu.set_single_step(false);
    vcpu.add_breakpoint(LOAD + 7);
    vcpu.add_watchpoint(0x10_0800, 4).unwrap();
    assert!(matches!(vcpu.run().unwrap(), VcpuExit::Debug));
    assert_eq!(vcpu.take_stop(), Some(DebugStop::Watch(0x10_0800)));
    assert_eq!(
        vcpu.debug_registers().unwrap().rip,
        LOAD + 7,
        "after the store"
    );
    assert!(vcpu.remove_watchpoint(0x10_0800, 4));
    // The breakpoint at the next instruction was reached by the same step:
    // running again goes on past it to the OUT.
    assert!(vcpu.remove_breakpoint(LOAD + 7));
    assert!(!vcpu.remove_breakpoint(LOAD + 7));
    assert!(matches!(
        vcpu.run().unwrap(),
        VcpuExit::IoOut { port: 0xF4, .. }
    ));
    assert_eq!(vcpu.debug_registers().unwrap().gpr[0], 0x2BAD_B002 + 3);
}
