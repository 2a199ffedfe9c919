//! System instructions' architectural faults, run on the bare harness
//! machine with every exception exiting (the exit reports the vector).

use softcpu::harness::{machine, Mode, CODE};
use softcpu::SoftCpu;
use x86::vmx::{exit_reason, field as f};

/// Valid, hardware exception, vector 6 (#UD), no error code.
const UD_INFO: u64 = 0x8000_0306;
/// Valid, error code delivered, hardware exception, vector 13 (#GP).
const GP_INFO: u64 = 0x8000_0B0D;

/// Runs `code` in 64-bit mode until its first exit; the exit reason.
fn run64(code: &[u8]) -> (SoftCpu, u16) {
    let mut cpu = machine(Mode::Long64, code);
    cpu.vmwrite(f::EXCEPTION_BITMAP, 0xFFFF_FFFF).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 100_000).unwrap();
    let r = cpu.vmlaunch();
    assert!(r.is_ok(), "{r:?} {:?}", cpu.vmread(f::VM_INSTRUCTION_ERROR));
    let reason = cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16;
    (cpu, reason)
}

fn assert_fault(cpu: &SoftCpu, reason: u16, info: u64, rip: u64) {
    assert_eq!(reason, exit_reason::EXCEPTION_NMI, "exit reason");
    assert_eq!(cpu.vmread(f::VM_EXIT_INTR_INFO).unwrap(), info);
    assert_eq!(cpu.vmread(f::GUEST_RIP).unwrap(), rip, "faulting RIP");
}

#[test]
fn mov_to_and_from_dr8_to_dr15_is_ud_not_an_alias_of_dr0_to_dr7() {
    // mov rax, 0x3000; mov dr8, rax; hlt
    let (cpu, reason) = run64(&[
        0x48, 0xC7, 0xC0, 0x00, 0x30, 0x00, 0x00, 0x44, 0x0F, 0x23, 0xC0, 0xF4,
    ]);
    assert_fault(&cpu, reason, UD_INFO, CODE + 7);
    // mov rax, dr15; hlt
    let (cpu, reason) = run64(&[0x44, 0x0F, 0x21, 0xF8, 0xF4]);
    assert_fault(&cpu, reason, UD_INFO, CODE);
    // mov dr7, rax (DR7 itself, with REX.W only): no fault, on to the HLT.
    let (_, reason) = run64(&[0x48, 0x31, 0xC0, 0x48, 0x0F, 0x23, 0xF8, 0xF4]);
    assert_eq!(reason, exit_reason::HLT);
}

/// `insn [rip + 2]; hlt; hlt` followed by a 10-byte operand: limit 0xFFF,
/// base `base`.
fn descriptor_table_load(opcode_modrm: [u8; 3], base: u64) -> Vec<u8> {
    let mut code = opcode_modrm.to_vec();
    code.extend_from_slice(&2u32.to_le_bytes());
    code.extend_from_slice(&[0xF4, 0xF4]);
    code.extend_from_slice(&0x0FFFu16.to_le_bytes());
    code.extend_from_slice(&base.to_le_bytes());
    code
}

#[test]
fn lgdt_and_lidt_of_a_non_canonical_base_in_64_bit_mode_are_gp0() {
    const LGDT: [u8; 3] = [0x0F, 0x01, 0x15];
    const LIDT: [u8; 3] = [0x0F, 0x01, 0x1D];
    for (insn, base_field) in [(LGDT, f::GUEST_GDTR_BASE), (LIDT, f::GUEST_IDTR_BASE)] {
        for bad in [0x0000_8000_0000_0000, 0x7FFF_0000_0000_0000, 1 << 63] {
            let (cpu, reason) = run64(&descriptor_table_load(insn, bad));
            assert_fault(&cpu, reason, GP_INFO, CODE);
            assert_eq!(cpu.vmread(f::VM_EXIT_INTR_ERROR_CODE).unwrap(), 0);
            assert_ne!(
                cpu.vmread(base_field).unwrap(),
                bad,
                "the register kept its value"
            );
        }
        // A canonical upper-half base loads.
        let good = 0xFFFF_8000_0000_1000;
        let (cpu, reason) = run64(&descriptor_table_load(insn, good));
        assert_eq!(reason, exit_reason::HLT);
        assert_eq!(cpu.vmread(base_field).unwrap(), good);
    }
}

/// PAUSE exits with reason 40 and its length when "PAUSE exiting" is set
/// (SDM Vol. 3C §26.1.3), inside a block of ordinary instructions too, and
/// is a hint otherwise.
#[test]
fn pause_exits_only_with_pause_exiting() {
    // nop; pause; hlt
    let code = [0x90, 0xF3, 0x90, 0xF4];
    let (_, reason) = run64(&code);
    assert_eq!(reason, exit_reason::HLT);
    let mut cpu = machine(Mode::Long64, &code);
    let ctl = cpu.vmread(f::CPU_BASED_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::CPU_BASED_VM_EXEC_CONTROL,
        ctl | u64::from(x86::vmx::proc::PAUSE_EXITING),
    )
    .unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 100_000).unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::PAUSE
    );
    assert_eq!(cpu.vmread(f::GUEST_RIP).unwrap(), CODE + 1);
    assert_eq!(cpu.vmread(f::VM_EXIT_INSTRUCTION_LEN).unwrap(), 2);
}
