//! Random byte strings run as code in every mode: the CPU never panics and
//! always comes back within its step budget, with a fault, an exit or the
//! budget spent.

use proptest::prelude::*;
use softcpu::harness::{machine, max_overshoot, run, Mode};

const BUDGET: u64 = 20_000;

fn check(mode: Mode, code: &[u8]) {
    let mut cpu = machine(mode, code);
    let out = run(&mut cpu, BUDGET);
    // The budget is virtual time: an instruction, a delivery or (at worst) a
    // delivery loop cut by the notify exit may overshoot it, by a bounded amount.
    assert!(
        out.cycles <= BUDGET + max_overshoot(),
        "{mode:?}: ran {} cycles",
        out.cycles
    );
    assert!(
        out.budget_exhausted || out.shutdown || out.entry_failed || out.notify_exit,
        "{out:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_code_in_protected_mode(code in proptest::collection::vec(any::<u8>(), 1..256)) {
        check(Mode::Protected32, &code);
    }

    #[test]
    fn random_code_in_long_mode(code in proptest::collection::vec(any::<u8>(), 1..256)) {
        check(Mode::Long64, &code);
    }

    #[test]
    fn random_code_in_real_mode(code in proptest::collection::vec(any::<u8>(), 1..256)) {
        check(Mode::Real, &code);
    }
}

#[test]
fn a_tight_loop_is_stopped_by_the_budget() {
    let mut cpu = machine(Mode::Long64, &[0xEB, 0xFE]);
    let out = run(&mut cpu, 10_000);
    assert!(out.budget_exhausted);
    assert_eq!(out.cycles, 10_000);
}

/// A far CALL through a 32-bit call gate lands at the gate's target with the
/// return CS:EIP on the stack, then OUT reports the pushed CS.
#[test]
fn far_call_through_a_call_gate() {
    // GDT at 0x1000 (built below); code at CODE (0x100000):
    //   lgdt [gdtr]; mov ax,0x10... we keep CS 0x10 as loaded by the harness and
    //   install a GDT whose entry 2 (0x10) is flat code, entry 4 (0x20) a call gate
    //   to 0x10:target.
    use softcpu::harness::CODE;
    let target = CODE + 0x80;
    let mut code = vec![0u8; 0x100];
    let gdtr = CODE + 0xC0;
    // lgdt [gdtr]
    code[0..7].copy_from_slice(&[0x0F, 0x01, 0x15, 0, 0, 0, 0]);
    code[3..7].copy_from_slice(&(gdtr as u32).to_le_bytes());
    // call far 0x20:0  (9A imm32 imm16)
    code[7..14].copy_from_slice(&[0x9A, 0, 0, 0, 0, 0x20, 0x00]);
    // at target: mov eax, [esp+4] (pushed CS); out 0xE0, eax; hlt
    let t = (target - CODE) as usize;
    code[t..t + 7].copy_from_slice(&[0x8B, 0x44, 0x24, 0x04, 0xE7, 0xE0, 0xF4]);
    // GDTR: limit 0x27, base 0x1000
    let g = (gdtr - CODE) as usize;
    code[g..g + 6].copy_from_slice(&[0x27, 0x00, 0x00, 0x10, 0x00, 0x00]);
    let mut cpu = machine(Mode::Protected32, &code);
    let flat_code: u64 = 0x00CF_9B00_0000_FFFF;
    let flat_data: u64 = 0x00CF_9300_0000_FFFF;
    let gate: u64 = (target & 0xFFFF) | (0x10 << 16) | (0x8C00u64 << 32) | ((target >> 16) << 48);
    for (i, d) in [0, 0, flat_code, flat_data, gate].iter().enumerate() {
        cpu.memory_mut()
            .write(0x1000 + 8 * i as u64, &d.to_le_bytes())
            .unwrap();
    }
    let out = run(&mut cpu, 1000);
    assert!(!out.shutdown && !out.entry_failed, "{out:?}");
    // The OUT exited with EAX = the CS pushed by the call (0x10).
    assert_eq!(cpu.gprs()[0] & 0xFFFF, 0x10);
    // The return address pushed below the CS is the instruction after the call.
    let mut ret = [0u8; 4];
    cpu.memory().read(0x8_0000 - 8, &mut ret).unwrap();
    assert_eq!(u64::from(u32::from_le_bytes(ret)), CODE + 14);
}

/// A long REP costs virtual time per iteration: a budget of 5,000 cycles
/// allows only about 5,000 iterations of REP STOSB (a REP step of 64
/// iterations may end up to 63 cycles past the deadline) (a fuzzing find: long
/// REPE CMPSD runs once took seconds of host time inside a small budget).
#[test]
fn rep_iterations_cost_virtual_time() {
    // mov ecx, 1000000; mov edi, 0x200000; rep stosb; jmp $
    let code = [
        0xB9, 0x40, 0x42, 0x0F, 0x00, 0xBF, 0x00, 0x00, 0x20, 0x00, 0xF3, 0xAA, 0xEB, 0xFE,
    ];
    let mut cpu = machine(Mode::Protected32, &code);
    let out = run(&mut cpu, 5_000);
    assert!(out.budget_exhausted);
    let done = 1_000_000 - cpu.gprs()[1];
    assert!(
        (4_800..=5_064).contains(&done),
        "{done} iterations in 5,000 cycles"
    );
}
