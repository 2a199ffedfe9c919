//! The translating tier against the interpreter: the same code run with the
//! tier off and on (every block translated from its first entry) ends in the
//! same registers, flags, memory, exits, virtual time and retired count.

use iced_x86::code_asm::*;
use proptest::prelude::*;
use softcpu::harness::{machine, run, Mode, Outcome, CODE, RAM};
use softcpu::SoftCpu;

/// Everything a run leaves that the tier could change.
#[derive(Debug, PartialEq, Eq)]
struct Result {
    outcome: Outcome,
    state: softcpu::state::CpuState,
    retired: u64,
    exit_reason: u64,
    exit_qualification: u64,
    memory_hash: u64,
}

fn hash(mem: &softcpu::PhysMemory) -> u64 {
    let mut buf = vec![0u8; RAM as usize];
    mem.read(0, &mut buf).unwrap();
    // FNV-1a: cheap, and enough to tell two memories apart.
    buf.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn result(cpu: &SoftCpu, outcome: Outcome) -> Result {
    use x86::vmx::field as f;
    Result {
        outcome,
        state: cpu.state().clone(),
        retired: cpu.instructions_retired(),
        exit_reason: cpu.vmread(f::VM_EXIT_REASON).unwrap_or(0),
        exit_qualification: cpu.vmread(f::EXIT_QUALIFICATION).unwrap_or(0),
        memory_hash: hash(cpu.memory()),
    }
}

/// Runs `code` in `mode` for `budget` cycles with the tier off, then on;
/// asserts both end alike and returns the translated run's CPU.
fn both(mode: Mode, code: &[u8], budget: u64) -> SoftCpu {
    both_at(mode, code, budget, 0)
}

/// [`both`] with blocks translated once they have run `threshold`
/// instructions interpreted.
fn both_at(mode: Mode, code: &[u8], budget: u64, threshold: u32) -> SoftCpu {
    let mut off = machine(mode, code);
    let out_off = run(&mut off, budget);
    let mut on = machine(mode, code);
    on.set_translation(true);
    on.set_translation_threshold(threshold);
    let out_on = run(&mut on, budget);
    assert_eq!(
        result(&off, out_off),
        result(&on, out_on),
        "{mode:?}, threshold {threshold}"
    );
    on
}

/// `build`, then HLT and a jump to itself (the harness skips the HLT).
fn assemble(
    bits: u32,
    build: impl FnOnce(&mut CodeAssembler) -> core::result::Result<(), IcedError>,
) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits).unwrap();
    build(&mut a).unwrap();
    a.hlt().unwrap();
    let mut end = a.create_label();
    a.set_label(&mut end).unwrap();
    a.jmp(end).unwrap();
    a.assemble(CODE).unwrap()
}

/// The ALU loop of `bench/guest/alu.S`.
fn alu_loop(a: &mut CodeAssembler, iters: u32) -> core::result::Result<(), IcedError> {
    a.mov(eax, 0x1234_5678u32)?;
    a.mov(ebx, 0x9abc_def0u32)?;
    a.mov(edx, 0x0f1e_2d3cu32)?;
    a.xor(esi, esi)?;
    a.mov(edi, 0x1357_9bdfu32)?;
    a.mov(ecx, iters)?;
    let mut top = a.create_label();
    a.set_label(&mut top)?;
    a.add(eax, ebx)?;
    a.xor(edx, eax)?;
    a.shl(ebx, 3)?;
    a.sub(ebx, edx)?;
    a.inc(esi)?;
    a.add(edi, esi)?;
    a.xor(eax, edi)?;
    a.shl(edx, 1)?;
    a.cmp(edi, eax)?;
    a.sub(eax, 0x61c8_8647)?;
    a.dec(ecx)?;
    a.jnz(top)
}

/// The memory loop of `bench/guest/mem.S`, over 1024 dwords at 0x200000.
fn mem_loop(a: &mut CodeAssembler, iters: u32) -> core::result::Result<(), IcedError> {
    const ARRAY: u32 = 0x20_0000;
    a.xor(ebx, ebx)?;
    a.mov(edx, 0x2545_f491u32)?;
    a.mov(ecx, iters)?;
    let mut top = a.create_label();
    a.set_label(&mut top)?;
    a.mov(eax, ebx)?;
    a.and(eax, 1023)?;
    a.mov(esi, dword_ptr(eax * 4 + ARRAY))?;
    a.add(esi, edx)?;
    a.mov(dword_ptr(eax * 4 + ARRAY), esi)?;
    a.lea(edi, ptr(ebx + 0x155))?;
    a.and(edi, 1023)?;
    a.xor(edx, dword_ptr(edi * 4 + ARRAY))?;
    a.add(dword_ptr(edi * 4 + ARRAY), esi)?;
    a.add(ebx, 7)?;
    a.dec(ecx)?;
    a.jnz(top)
}

#[test]
fn the_alu_loop_ends_alike() {
    for (mode, bits) in [(Mode::Protected32, 32), (Mode::Long64, 64)] {
        let code = assemble(bits, |a| alu_loop(a, 5000));
        let cpu = both(mode, &code, 200_000);
        assert!(cpu.translation_stats().native_runs > 0, "{mode:?}");
    }
}

#[test]
fn the_memory_loop_ends_alike() {
    for (mode, bits) in [(Mode::Protected32, 32), (Mode::Long64, 64)] {
        let code = assemble(bits, |a| mem_loop(a, 5000));
        let cpu = both(mode, &code, 200_000);
        assert!(cpu.translation_stats().native_runs > 0, "{mode:?}");
    }
}

#[test]
fn a_loop_cut_by_the_budget_stops_at_the_same_cycle() {
    // 12-instruction passes against budgets that end inside a pass.
    for budget in [1_000, 1_001, 1_005, 4_099, 9_999] {
        let code = assemble(64, |a| alu_loop(a, 1_000_000));
        both(Mode::Long64, &code, budget);
    }
}

#[test]
fn code_that_rewrites_itself_runs_alike() {
    // The loop stores a new immediate into its own `add` each pass; every
    // pass must see the value the one before it wrote (SDM Vol. 3A §11.6).
    for (mode, bits) in [(Mode::Protected32, 32), (Mode::Long64, 64)] {
        let code = assemble(bits, |a| {
            let mut top = a.create_label();
            a.mov(ecx, 300u32)?; // 5 bytes
            a.xor(eax, eax)?; // 2
            a.set_label(&mut top)?;
            a.add(eax, ecx)?; // 2
                              // add edx, imm32 (81 C2 imm32): the immediate, at byte 11, is
                              // rewritten.
            a.db(&[0x81, 0xC2])?;
            a.dd(&[1])?;
            a.mov(ebx, (CODE + 11) as u32)?;
            a.mov(dword_ptr(ebx), eax)?;
            a.dec(ecx)?;
            a.jnz(top)
        });
        let cpu = both(mode, &code, 20_000);
        assert!(cpu.translation_stats().blocks_translated > 0, "{mode:?}");
    }
}

#[test]
fn a_fault_inside_a_translated_loop_leaves_its_rip_and_no_partial_state() {
    // Each pass loads from 1 MiB further on; past the end of RAM the load
    // takes an EPT violation. The exit names the load's RIP, and the
    // registers hold what the instructions before it left.
    let code = assemble(64, |a| {
        let mut top = a.create_label();
        a.mov(rbx, CODE)?;
        a.xor(esi, esi)?;
        a.set_label(&mut top)?;
        a.inc(esi)?;
        a.add(rdi, rsi)?;
        a.mov(rax, qword_ptr(rbx))?;
        a.add(rbx, 0x10_0000)?;
        a.jmp(top)
    });
    let cpu = both(Mode::Long64, &code, 100_000);
    assert_eq!(
        cpu.vmread(x86::vmx::field::VM_EXIT_REASON).unwrap(),
        u64::from(x86::vmx::exit_reason::EPT_VIOLATION)
    );
    assert!(cpu.gprs()[3] >= RAM, "rbx {:#x}", cpu.gprs()[3]);
}

#[test]
fn a_kick_is_taken_within_the_poll_interval_in_a_translated_loop() {
    use x86::vmx::{exit_reason, field as f, pin};
    let code = assemble(64, |a| alu_loop(a, u32::MAX));
    let mut cpu = machine(Mode::Long64, &code);
    cpu.set_translation(true);
    cpu.set_translation_threshold(0);
    let pinv = cpu.vmread(f::PIN_BASED_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::PIN_BASED_VM_EXEC_CONTROL,
        pinv | u64::from(pin::EXT_INTR_EXITING),
    )
    .unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, u64::from(u32::MAX))
        .unwrap();
    let kicker = cpu.kicker();
    let kick = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        kicker.kick();
    });
    assert!(cpu.vmlaunch().is_ok());
    kick.join().unwrap();
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::EXTERNAL_INTERRUPT
    );
    assert!(cpu.translation_stats().native_runs > 0);
}

/// Found by the fuzz target: `std; jns $-1` (a loop whose flags come from
/// the processor, not from the block) translated after it had run
/// interpreted.
#[test]
fn a_loop_translated_after_running_interpreted_keeps_the_processor_flags() {
    let code = [0xfd, 0x79, 0xfd, 0x2b, 0xfd];
    for threshold in [0, 1, 32] {
        both_at(Mode::Protected32, &code, 20_000, threshold);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_code_runs_alike_in_protected_mode(code in proptest::collection::vec(any::<u8>(), 1..256)) {
        both(Mode::Protected32, &code, 5_000);
    }

    #[test]
    fn random_code_runs_alike_in_long_mode(code in proptest::collection::vec(any::<u8>(), 1..256)) {
        both(Mode::Long64, &code, 5_000);
    }

    #[test]
    fn random_code_runs_alike_in_real_mode(code in proptest::collection::vec(any::<u8>(), 1..256)) {
        both(Mode::Real, &code, 5_000);
    }
}
