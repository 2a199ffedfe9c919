//! The TPR shadow (SDM Vol. 3C chapter 30): with "use TPR shadow", MOV to
//! and from CR8 work on VTPR at offset 0x80 of the virtual-APIC page
//! (§30.3), a MOV to CR8 that takes VTPR[7:4] below the TPR threshold is
//! followed by a trap-like VM exit (reason 43, §30.1.2), CR8-load and
//! CR8-store exiting come first, and VM entry checks the virtual-APIC
//! address and the threshold (§27.2.1.1).

use softcpu::harness::{machine, Mode, CODE};
use x86::vmx::{exit_reason, field as f, instruction_error, proc};

/// The virtual-APIC page.
const VAPIC: u64 = 0x30_0000;
/// VTPR's address.
const VTPR: u64 = VAPIC + 0x80;

/// `mov rax, imm32`.
fn mov_rax(imm: u32) -> Vec<u8> {
    let mut b = vec![0x48, 0xC7, 0xC0];
    b.extend_from_slice(&imm.to_le_bytes());
    b
}
/// `mov cr8, rax`.
const TO_CR8: [u8; 4] = [0x44, 0x0F, 0x22, 0xC0];
/// `mov rbx, cr8`.
const FROM_CR8: [u8; 4] = [0x44, 0x0F, 0x20, 0xC3];
const HLT: u8 = 0xF4;

/// `code` in 64-bit mode with the TPR shadow on VAPIC, VTPR = `vtpr` and
/// the TPR threshold `threshold`.
fn tpr_machine(code: &[u8], vtpr: u32, threshold: u32) -> softcpu::SoftCpu {
    let mut cpu = machine(Mode::Long64, code);
    cpu.memory_mut().write(VTPR, &vtpr.to_le_bytes()).unwrap();
    let p = cpu.vmread(f::CPU_BASED_VM_EXEC_CONTROL).unwrap();
    for (fld, v) in [
        (
            f::CPU_BASED_VM_EXEC_CONTROL,
            p | u64::from(proc::USE_TPR_SHADOW),
        ),
        (f::VIRTUAL_APIC_PAGE_ADDR, VAPIC),
        (f::TPR_THRESHOLD, u64::from(threshold)),
        (f::VMX_PREEMPTION_TIMER_VALUE, 1_000_000),
    ] {
        cpu.vmwrite(fld, v).unwrap();
    }
    cpu
}

fn vtpr(cpu: &softcpu::SoftCpu) -> u32 {
    let mut b = [0u8; 4];
    cpu.memory().read(VTPR, &mut b).unwrap();
    u32::from_le_bytes(b)
}

fn exit(cpu: &softcpu::SoftCpu) -> (u16, u64) {
    (
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        cpu.vmread(f::GUEST_RIP).unwrap(),
    )
}

fn code(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn the_control_is_offered() {
    let v = softcpu::capability_msr(x86::msr::VMX_PROCBASED_CTLS).unwrap();
    assert_ne!(v >> 32 & u64::from(proc::USE_TPR_SHADOW), 0);
    assert_eq!(v & u64::from(proc::USE_TPR_SHADOW), 0, "may be 0");
    assert!(softcpu::Vmcs::supports(f::VIRTUAL_APIC_PAGE_ADDR));
    assert!(softcpu::Vmcs::supports(f::TPR_THRESHOLD));
}

#[test]
fn mov_to_cr8_writes_vtpr_and_mov_from_cr8_reads_it() {
    // mov rax, 0xA; mov cr8, rax; mov rbx, cr8; hlt
    let c = code(&[&mov_rax(0xA), &TO_CR8, &FROM_CR8, &[HLT]]);
    let mut cpu = tpr_machine(&c, 0xFFFF_FF3F, 0);
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::HLT, CODE + 15));
    assert_eq!(vtpr(&cpu), 0xA0, "bits 7:4 from the source, the rest 0");
    assert_eq!(cpu.state().gpr[3], 0xA, "VTPR[7:4]");
    assert_eq!(cpu.state().cr8, 0, "CR8 itself untouched");
}

#[test]
fn mov_from_cr8_reads_vtpr_bits_7_4_only() {
    let c = code(&[&FROM_CR8, &[HLT]]);
    let mut cpu = tpr_machine(&c, 0x0000_127C, 0);
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::HLT, CODE + 4));
    assert_eq!(cpu.state().gpr[3], 7);
    assert_eq!(vtpr(&cpu), 0x127C, "a read leaves the page alone");
}

#[test]
fn falling_below_the_threshold_exits_after_the_instruction() {
    // mov rax, 4; mov cr8, rax (equal: no exit); mov rax, 3; mov cr8, rax
    // (below: exit); hlt
    let c = code(&[&mov_rax(4), &TO_CR8, &mov_rax(3), &TO_CR8, &[HLT]]);
    let mut cpu = tpr_machine(&c, 0x50, 4);
    cpu.vmlaunch().unwrap();
    assert_eq!(
        exit(&cpu),
        (exit_reason::TPR_BELOW_THRESHOLD, CODE + 22),
        "trap-like: RIP past the second MOV to CR8"
    );
    assert_eq!(cpu.vmread(f::EXIT_QUALIFICATION).unwrap(), 0);
    assert_eq!(vtpr(&cpu), 0x30, "VTPR written before the exit");
    assert_eq!(cpu.instructions_retired(), 4);
    // Raising the threshold is L0's business; resuming goes on to the HLT.
    cpu.vmwrite(f::TPR_THRESHOLD, 0).unwrap();
    cpu.vmresume().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::HLT, CODE + 22));
}

#[test]
fn cr8_exiting_comes_before_the_shadow() {
    let c = code(&[&mov_rax(1), &TO_CR8, &FROM_CR8, &[HLT]]);
    let mut cpu = tpr_machine(&c, 0x50, 4);
    let p = cpu.vmread(f::CPU_BASED_VM_EXEC_CONTROL).unwrap();
    let both = proc::CR8_LOAD_EXITING | proc::CR8_STORE_EXITING;
    cpu.vmwrite(f::CPU_BASED_VM_EXEC_CONTROL, p | u64::from(both))
        .unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::CR_ACCESS, CODE + 7));
    assert_eq!(cpu.vmread(f::EXIT_QUALIFICATION).unwrap(), 8, "MOV to CR8");
    assert_eq!(vtpr(&cpu), 0x50, "nothing written");
    cpu.vmwrite(f::GUEST_RIP, CODE + 11).unwrap();
    cpu.vmresume().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::CR_ACCESS, CODE + 11));
    assert_eq!(cpu.vmread(f::EXIT_QUALIFICATION).unwrap(), 0x318);
}

#[test]
fn reserved_bits_fault_before_vtpr_changes() {
    let c = code(&[&mov_rax(0x10), &TO_CR8, &[HLT]]);
    let mut cpu = tpr_machine(&c, 0x50, 0);
    cpu.vmwrite(f::EXCEPTION_BITMAP, 1 << 13).unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::EXCEPTION_NMI, CODE + 7));
    assert_eq!(cpu.vmread(f::VM_EXIT_INTR_INFO).unwrap() & 0xFF, 13);
    assert_eq!(vtpr(&cpu), 0x50);
}

#[test]
fn without_the_shadow_cr8_is_the_register() {
    let c = code(&[&mov_rax(6), &TO_CR8, &FROM_CR8, &[HLT]]);
    let mut cpu = tpr_machine(&c, 0x50, 4);
    let p = cpu.vmread(f::CPU_BASED_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::CPU_BASED_VM_EXEC_CONTROL,
        p & !u64::from(proc::USE_TPR_SHADOW),
    )
    .unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::HLT, CODE + 15));
    assert_eq!(cpu.state().cr8, 6);
    assert_eq!(cpu.state().gpr[3], 6);
    assert_eq!(vtpr(&cpu), 0x50);
}

#[test]
fn vm_entry_checks_the_address_and_the_threshold() {
    let fails = |address: u64, threshold: u32, vtpr: u32| {
        let mut cpu = tpr_machine(&[HLT], vtpr, threshold);
        cpu.vmwrite(f::VIRTUAL_APIC_PAGE_ADDR, address).unwrap();
        match cpu.vmlaunch() {
            Err(e) => {
                assert_eq!(e.error, instruction_error::ENTRY_INVALID_CONTROL);
                assert_eq!(cpu.vmread(f::VM_INSTRUCTION_ERROR).unwrap(), 7);
                true
            }
            Ok(()) => {
                assert_eq!(exit(&cpu), (exit_reason::HLT, CODE));
                false
            }
        }
    };
    assert!(!fails(VAPIC, 5, 0x50), "threshold = VTPR[7:4]");
    assert!(fails(VAPIC + 0x80, 0, 0x50), "not 4-KByte aligned");
    assert!(fails(1 << 46, 0, 0x50), "beyond the physical-address width");
    assert!(fails(VAPIC, 0x10, 0xF0), "threshold bits 31:4");
    assert!(fails(VAPIC, 6, 0x5F), "threshold above VTPR[7:4]");
    // A page beyond memory reads as all ones: VTPR[7:4] = 15.
    assert!(!fails(1 << 40, 15, 0), "within the width, outside memory");
}
