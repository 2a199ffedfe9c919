//! Tiny hand-assembled guests run on real KVM. Each test skips (passes with a
//! printed reason) where `/dev/kvm` is missing or unusable.

use accel::{
    AccelError, Accelerator, EntryMode, EntryState, InternalError, Vcpu, VcpuExit, Vm, VmConfig,
};
use kvm::{KvmAccelerator, KvmVcpu, KvmVm};

/// Where the test guests are loaded and entered, as a multiboot kernel.
const LOAD: u64 = 0x10_0000;
/// Guest RAM for the tests: 2 MiB, so 0x200000 and above is unmapped.
const RAM: u64 = 0x20_0000;
/// Multiboot magic in EAX at entry.
const MAGIC: u64 = 0x2BAD_B002;

/// The accelerator, or `None` (with the reason printed) where KVM cannot run.
fn kvm_or_skip(test: &str) -> Option<KvmAccelerator> {
    match kvm::probe() {
        Ok(()) => Some(KvmAccelerator::open().expect("probe passed, open must too")),
        Err(why) => {
            eprintln!("SKIP {test}: KVM unusable here: {why}");
            None
        }
    }
}

fn entry() -> EntryState {
    EntryState {
        mode: EntryMode::Protected32Flat,
        rip: LOAD,
        rsp: 0x8_0000,
        rax: MAGIC,
        rbx: 0x9500,
    }
}

/// A VM with `code` at [`LOAD`] and one vCPU entered there.
fn boot(accel: &KvmAccelerator, code: &[u8]) -> (KvmVm, KvmVcpu) {
    let mut vm = accel
        .create_vm(&VmConfig::with_memory(RAM))
        .expect("create VM");
    vm.write_memory(LOAD, code).expect("load guest");
    let vcpu = vm.create_vcpu(0, &entry()).expect("create vCPU");
    (vm, vcpu)
}

/// Runs until the next exit and describes it for assertions, completing an
/// `IN` with `in_value` (little-endian, truncated to the access size).
fn step(vcpu: &mut KvmVcpu, in_value: u32) -> String {
    match vcpu.run().expect("KVM_RUN") {
        VcpuExit::IoOut { port, data } => format!("out {port:#x} {data:02x?}"),
        VcpuExit::IoIn { port, data } => {
            let n = data.len();
            data.copy_from_slice(&in_value.to_le_bytes()[..n]);
            format!("in {port:#x} size {n}")
        }
        VcpuExit::InternalError(e) => format!("internal error: {e}"),
        other => format!("{other:?}"),
    }
}

// mov dx, 0x3f8
const MOV_DX_COM1: [u8; 4] = [0x66, 0xBA, 0xF8, 0x03];

#[test]
fn serial_out_debug_exit_and_hlt() {
    let Some(accel) = kvm_or_skip("serial_out_debug_exit_and_hlt") else {
        return;
    };
    assert_eq!(accel.name(), "kvm");
    let mut code = vec![0xB0, b'A']; // mov al, 'A'
    code.extend(MOV_DX_COM1);
    code.extend([
        0xEE, // out dx, al
        0xB0, 0x00, // mov al, 0
        0xE6, 0xF4, // out 0xf4, al
        0xF4, // hlt
    ]);
    let (_vm, mut vcpu) = boot(&accel, &code);
    assert_eq!(step(&mut vcpu, 0), "out 0x3f8 [41]");
    assert_eq!(step(&mut vcpu, 0), "out 0xf4 [00]");
    assert_eq!(step(&mut vcpu, 0), "Hlt");
    let regs = vcpu.registers().unwrap();
    assert_eq!(regs.rip, LOAD + code.len() as u64, "{regs}");
}

#[test]
fn in_returns_what_userspace_filled() {
    let Some(accel) = kvm_or_skip("in_returns_what_userspace_filled") else {
        return;
    };
    let mut code = MOV_DX_COM1.to_vec();
    code.extend([
        0xEC, // in al, dx
        0xEE, // out dx, al
        0x66, 0xED, // in ax, dx
        0x66, 0xEF, // out dx, ax
        0xED, // in eax, dx
        0xEF, // out dx, eax
        0xF4, // hlt
    ]);
    let (_vm, mut vcpu) = boot(&accel, &code);
    assert_eq!(step(&mut vcpu, 0x5A), "in 0x3f8 size 1");
    assert_eq!(step(&mut vcpu, 0), "out 0x3f8 [5a]");
    assert_eq!(step(&mut vcpu, 0xBEEF), "in 0x3f8 size 2");
    assert_eq!(step(&mut vcpu, 0), "out 0x3f8 [ef, be]");
    assert_eq!(step(&mut vcpu, 0x1234_5678), "in 0x3f8 size 4");
    assert_eq!(step(&mut vcpu, 0), "out 0x3f8 [78, 56, 34, 12]");
    assert_eq!(step(&mut vcpu, 0), "Hlt");
    let regs = vcpu.registers().unwrap();
    assert_eq!(regs.gpr[0] & 0xFFFF_FFFF, 0x1234_5678, "{regs}");
}

#[test]
fn entry_state_is_the_multiboot_hand_off() {
    let Some(accel) = kvm_or_skip("entry_state_is_the_multiboot_hand_off") else {
        return;
    };
    let (_vm, mut vcpu) = boot(&accel, &[0xF4]); // hlt
    let regs = vcpu.registers().unwrap();
    assert_eq!(regs.rip, LOAD);
    assert_eq!(regs.cr0 & 0x8000_0011, 0x11, "{regs}");
    assert_eq!(regs.cs, 0x10);
    assert_eq!(regs.rflags, 0x2);
    assert_eq!(step(&mut vcpu, 0), "Hlt");
    let regs = vcpu.registers().unwrap();
    assert_eq!(regs.rip, LOAD + 1, "{regs}");
    assert_eq!(regs.gpr[0], MAGIC, "{regs}");
    assert_eq!(regs.gpr[3], 0x9500, "{regs}");
    assert_eq!(regs.gpr[4], 0x8_0000, "{regs}");
    assert_eq!((regs.cr3, regs.cr4, regs.efer), (0, 0, 0), "{regs}");
    assert!(vcpu.stats().internal_exits.is_empty());
}

#[test]
fn guest_stores_are_visible_to_read_memory() {
    let Some(accel) = kvm_or_skip("guest_stores_are_visible_to_read_memory") else {
        return;
    };
    let code = [
        0xC7, 0x05, 0x00, 0x20, 0x10, 0x00, 0x78, 0x56, 0x34,
        0x12, // mov dword [0x102000], 0x12345678
        0xF4, // hlt
    ];
    let (vm, mut vcpu) = boot(&accel, &code);
    assert_eq!(step(&mut vcpu, 0), "Hlt");
    let mut buf = [0u8; 4];
    vm.read_memory(0x10_2000, &mut buf).unwrap();
    assert_eq!(u32::from_le_bytes(buf), 0x1234_5678);
}

#[test]
fn triple_fault_is_shutdown() {
    let Some(accel) = kvm_or_skip("triple_fault_is_shutdown") else {
        return;
    };
    let code = [
        0x0F, 0x01, 0x1D, 0x00, 0x01, 0x10, 0x00, // lidt [0x100100] (limit 0, base 0)
        0x0F, 0x0B, // ud2: #UD -> #GP -> #DF -> triple fault
        0xF4, // hlt (never reached)
    ];
    let (_vm, mut vcpu) = boot(&accel, &code);
    assert_eq!(step(&mut vcpu, 0), "Shutdown");
}

#[test]
fn divide_error_with_the_entry_idt_is_shutdown() {
    let Some(accel) = kvm_or_skip("divide_error_with_the_entry_idt_is_shutdown") else {
        return;
    };
    // The entry state has IDTR limit 0, so the first exception shuts down.
    let code = [
        0x31, 0xC9, // xor ecx, ecx
        0xF7, 0xF1, // div ecx
        0xF4,
    ];
    let (_vm, mut vcpu) = boot(&accel, &code);
    assert_eq!(step(&mut vcpu, 0), "Shutdown");
}

/// Builds a guest that loads a flat GDT and an IDT whose gate `vector` leads
/// to a handler doing `mov al, 0x42; out 0x80, al; hlt`, then runs `trigger`.
fn guest_with_idt_gate(vector: u64, trigger: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut code = vec![
        0x0F, 0x01, 0x15, 0x00, 0x02, 0x10, 0x00, // lgdt [0x100200]
        0x0F, 0x01, 0x1D, 0x10, 0x02, 0x10, 0x00, // lidt [0x100210]
    ];
    code.extend(trigger);
    code.push(0xF4);
    code.resize(0x200, 0x90);
    code.extend([0x1F, 0x00, 0x00, 0x18, 0x10, 0x00]); // GDTR: limit 0x1f, base 0x101800
    code.resize(0x210, 0);
    code.extend([0xFF, 0x07, 0x00, 0x10, 0x10, 0x00]); // IDTR: limit 0x7ff, base 0x101000
    code.resize(0x300, 0);
    code.extend([0xB0, 0x42, 0xE6, 0x80, 0xF4]); // handler at 0x100300
    let gdt: Vec<u8> = [0u64, 0, 0x00CF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF]
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
    // 32-bit interrupt gate, DPL 0, selector 0x10, offset 0x100300.
    let gate = vec![0x00, 0x03, 0x10, 0x00, 0x00, 0x8E, 0x10, 0x00];
    vec![
        (LOAD, code),
        (0x10_1800, gdt),
        (0x10_1000 + vector * 8, gate),
    ]
}

#[test]
fn exception_is_delivered_through_the_idt() {
    let Some(accel) = kvm_or_skip("exception_is_delivered_through_the_idt") else {
        return;
    };
    let (mut vm, mut vcpu) = boot(&accel, &[]);
    for (gpa, bytes) in guest_with_idt_gate(6, &[0x0F, 0x0B]) {
        vm.write_memory(gpa, &bytes).unwrap();
    }
    assert_eq!(step(&mut vcpu, 0), "out 0x80 [42]");
    assert_eq!(step(&mut vcpu, 0), "Hlt");
    let regs = vcpu.registers().unwrap();
    assert_eq!(regs.gpr[4], 0x8_0000 - 12, "{regs}");
    let mut frame = [0u8; 12];
    vm.read_memory(0x8_0000 - 12, &mut frame).unwrap();
    let word = |i: usize| u32::from_le_bytes(frame[i * 4..i * 4 + 4].try_into().unwrap());
    assert_eq!(word(0), 0x10_000E, "EIP of the faulting ud2");
    assert_eq!(word(1), 0x10, "CS");
    assert_eq!(word(2) & 0x202, 0x2, "EFLAGS");
}

#[test]
fn software_interrupt_is_shutdown_or_a_host_error() {
    let Some(accel) = kvm_or_skip("software_interrupt_is_shutdown_or_a_host_error") else {
        return;
    };
    // With IDTR limit 0, `int 0x80` triple-faults on hardware KVM. The
    // kvm_pvm KVM cannot emulate `int n` at all and reports an emulation
    // failure (suberror 1): either way the exit must map cleanly.
    let (_vm, mut vcpu) = boot(&accel, &[0xCD, 0x80, 0xF4]);
    match vcpu.run().unwrap() {
        VcpuExit::Shutdown => {}
        VcpuExit::InternalError(InternalError::Host { suberror: 1 }) => {
            eprintln!("note: this host's KVM cannot emulate `int n` (kvm_pvm quirk)");
        }
        other => panic!("expected Shutdown or an emulation failure, got {other:?}"),
    }
}

#[test]
fn access_outside_ram_is_an_mmio_exit() {
    let Some(accel) = kvm_or_skip("access_outside_ram_is_an_mmio_exit") else {
        return;
    };
    let code = [
        0x90, // nop
        0xA1, 0x00, 0x00, 0xB0, 0xFE, // mov eax, [0xfeb00000]
        0xE7, 0xF4, // out 0xf4, eax
    ];
    let (_vm, mut vcpu) = boot(&accel, &code);
    match vcpu.run().unwrap() {
        VcpuExit::MmioRead { addr, data } => {
            assert_eq!((addr, data.len()), (0xFEB0_0000, 4));
            data.copy_from_slice(&0x1234_5678u32.to_le_bytes());
        }
        other => panic!("expected an MMIO read, got {other:?}"),
    }
    match vcpu.run().unwrap() {
        VcpuExit::IoOut { port: 0xF4, data } => assert_eq!(data, 0x1234_5678u32.to_le_bytes()),
        other => panic!("expected the OUT, got {other:?}"),
    }
}

#[test]
fn rep_ins_is_refused_as_string_io() {
    let Some(accel) = kvm_or_skip("rep_ins_is_refused_as_string_io") else {
        return;
    };
    let mut code = MOV_DX_COM1.to_vec();
    code.extend([
        0xB9, 0x03, 0x00, 0x00, 0x00, // mov ecx, 3
        0xBF, 0x00, 0x01, 0x10, 0x00, // mov edi, 0x100100
        0xF3, 0x6C, // rep insb
        0xF4,
    ]);
    let rep_rip = LOAD + 14;
    let (_vm, mut vcpu) = boot(&accel, &code);
    match vcpu.run().unwrap() {
        VcpuExit::InternalError(InternalError::Emulation { what, rip }) => {
            assert_eq!(what, "string I/O");
            assert_eq!(rip, rep_rip);
        }
        other => panic!("expected string I/O to be refused, got {other:?}"),
    }
}

#[test]
fn single_ins_stores_what_userspace_filled() {
    let Some(accel) = kvm_or_skip("single_ins_stores_what_userspace_filled") else {
        return;
    };
    let mut code = MOV_DX_COM1.to_vec();
    code.extend([
        0xBF, 0x00, 0x01, 0x10, 0x00, // mov edi, 0x100100
        0x6C, // insb (one element: KVM stores it to ES:EDI itself)
        0xF4,
    ]);
    let (vm, mut vcpu) = boot(&accel, &code);
    assert_eq!(step(&mut vcpu, 0x33), "in 0x3f8 size 1");
    assert_eq!(step(&mut vcpu, 0), "Hlt");
    let mut byte = [0u8];
    vm.read_memory(0x10_0100, &mut byte).unwrap();
    assert_eq!(byte, [0x33]);
    assert_eq!(vcpu.registers().unwrap().gpr[7], 0x10_0101);
}

#[test]
fn rep_outs_arrives_one_element_at_a_time() {
    let Some(accel) = kvm_or_skip("rep_outs_arrives_one_element_at_a_time") else {
        return;
    };
    // KVM's emulator performs OUTS element by element (count 1 each time),
    // so each element reaches userspace as an ordinary port write.
    let mut code = MOV_DX_COM1.to_vec();
    code.extend([
        0xB9, 0x03, 0x00, 0x00, 0x00, // mov ecx, 3
        0xBE, 0x00, 0x01, 0x10, 0x00, // mov esi, 0x100100
        0xF3, 0x6E, // rep outsb
        0xF4,
    ]);
    let (mut vm, mut vcpu) = boot(&accel, &code);
    vm.write_memory(0x10_0100, b"abc").unwrap();
    let mut exits = Vec::new();
    loop {
        let exit = step(&mut vcpu, 0);
        let done = exit == "Hlt" || exit.starts_with("internal error");
        exits.push(exit);
        if done || exits.len() > 4 {
            break;
        }
    }
    assert_eq!(
        exits,
        ["out 0x3f8 [61]", "out 0x3f8 [62]", "out 0x3f8 [63]", "Hlt"]
    );
}

#[test]
fn memory_accesses_outside_ram_are_out_of_range() {
    let Some(accel) = kvm_or_skip("memory_accesses_outside_ram_are_out_of_range") else {
        return;
    };
    let mut vm = accel.create_vm(&VmConfig::with_memory(RAM)).unwrap();
    assert!(matches!(
        vm.write_memory(RAM - 2, &[0; 4]),
        Err(AccelError::OutOfRange { gpa, len: 4 }) if gpa == RAM - 2
    ));
    assert!(matches!(
        vm.write_memory(u64::MAX, &[0]),
        Err(AccelError::OutOfRange { .. })
    ));
    let mut buf = [0u8; 8];
    assert!(matches!(
        vm.read_memory(RAM, &mut buf),
        Err(AccelError::OutOfRange { .. })
    ));
    vm.write_memory(RAM - 4, &[1, 2, 3, 4]).unwrap();
    vm.read_memory(RAM - 4, &mut buf[..4]).unwrap();
    assert_eq!(buf[..4], [1, 2, 3, 4]);
}

#[test]
fn bad_memory_sizes_are_invalid_config() {
    let Some(accel) = kvm_or_skip("bad_memory_sizes_are_invalid_config") else {
        return;
    };
    for memory_bytes in [0, 0x1001, 0x10_0800, 1 << 40] {
        match accel.create_vm(&VmConfig::with_memory(memory_bytes)) {
            Err(AccelError::InvalidConfig(_)) => {}
            other => panic!("{memory_bytes:#x}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn two_vcpus_run_independently() {
    let Some(accel) = kvm_or_skip("two_vcpus_run_independently") else {
        return;
    };
    let code = [0xE6, 0x80, 0xF4]; // out 0x80, al; hlt
    let (mut vm, mut first) = boot(&accel, &code);
    let mut second = vm
        .create_vcpu(
            1,
            &EntryState {
                rax: 0x77,
                ..entry()
            },
        )
        .unwrap();
    assert_eq!(step(&mut second, 0), "out 0x80 [77]");
    assert_eq!(step(&mut first, 0), "out 0x80 [02]");
    assert_eq!(step(&mut second, 0), "Hlt");
    assert_eq!(step(&mut first, 0), "Hlt");
}

#[test]
fn immediate_exit_is_interrupted() {
    let Some(accel) = kvm_or_skip("immediate_exit_is_interrupted") else {
        return;
    };
    let (_vm, mut vcpu) = boot(&accel, &[0xE6, 0x80, 0xF4]); // out 0x80, al; hlt
    vcpu.set_immediate_exit(true);
    assert_eq!(step(&mut vcpu, 0), "Interrupted");
    assert_eq!(vcpu.registers().unwrap().rip, LOAD);
    vcpu.set_immediate_exit(false);
    assert_eq!(step(&mut vcpu, 0), "out 0x80 [02]");
    assert_eq!(step(&mut vcpu, 0), "Hlt");
}

#[test]
fn an_injected_triple_fault_shuts_the_vcpu_down() {
    let Some(accel) = kvm_or_skip("an_injected_triple_fault_shuts_the_vcpu_down") else {
        return;
    };
    // out 0xf8, al; jmp $ — it runs once, then spins until the injection.
    let code = [0xE6, 0xF8, 0xEB, 0xFE];
    let (_vm, mut vcpu) = boot(&accel, &code);
    let first = format!("{:?}", vcpu.run().unwrap());
    assert!(first.starts_with("IoOut { port: 248"), "{first}");
    match vcpu.inject_triple_fault() {
        Ok(()) => assert!(matches!(vcpu.run().unwrap(), VcpuExit::Shutdown)),
        Err(AccelError::Unsupported(why)) => {
            println!("SKIP: this host's KVM has no triple-fault event: {why}")
        }
        Err(e) => panic!("{e}"),
    }
}

/// CPUID offers the APIC the accelerator hosts: no x2APIC (whose MSRs
/// KVM serves only with an in-kernel irqchip, raising #GP otherwise), and
/// TSC-deadline mode only with IA32_TSC_DEADLINE reaching the userspace
/// APIC, which then keeps what the guest writes.
#[test]
fn cpuid_offers_the_userspace_apic() {
    let Some(accel) = kvm_or_skip("cpuid_offers_the_userspace_apic") else {
        return;
    };
    let code = [
        0xB8, 1, 0, 0, 0, // mov eax, 1
        0x0F, 0xA2, // cpuid
        0x89, 0xC8, // mov eax, ecx
        0xE7, 0x80, // out 0x80, eax
        // mov dword [0xFEE000F0], 0x1FF: APIC software enable
        0xC7, 0x05, 0xF0, 0x00, 0xE0, 0xFE, 0xFF, 0x01, 0x00, 0x00,
        // mov dword [0xFEE00320], 0x40040: LVT timer, TSC-deadline mode
        0xC7, 0x05, 0x20, 0x03, 0xE0, 0xFE, 0x40, 0x00, 0x04, 0x00, 0xB9, 0xE0, 0x06, 0,
        0, // mov ecx, 0x6E0
        0xB8, 0x78, 0x56, 0x34, 0x12, // mov eax, 0x12345678
        0xBA, 0x07, 0, 0, 0, // mov edx, 7
        0x0F, 0x30, // wrmsr
        0x31, 0xC0, // xor eax, eax
        0x31, 0xD2, // xor edx, edx
        0x0F, 0x32, // rdmsr
        0xE7, 0x80, // out 0x80, eax
        0x89, 0xD0, // mov eax, edx
        0xE7, 0x80, // out 0x80, eax
        0xF4, // hlt
    ];
    let (_vm, mut vcpu) = boot(&accel, &code);
    let VcpuExit::IoOut { data, .. } = vcpu.run().expect("KVM_RUN") else {
        panic!("no OUT of CPUID.1:ECX");
    };
    let ecx = u32::from_le_bytes(data.try_into().expect("a dword"));
    assert_eq!(
        ecx & lapic::CPUID1_ECX_X2APIC,
        0,
        "x2APIC offered: {ecx:#x}"
    );
    if ecx & lapic::CPUID1_ECX_TSC_DEADLINE == 0 {
        eprintln!("SKIP the TSC-deadline half: this host cannot route the MSR to userspace");
        return;
    }
    assert_eq!(step(&mut vcpu, 0), "out 0x80 [78, 56, 34, 12]");
    assert_eq!(step(&mut vcpu, 0), "out 0x80 [07, 00, 00, 00]");
}
