//! Random byte strings run as code in every mode: the CPU never panics and
//! always comes back within its step budget, with a fault, an exit or the
//! budget spent.

use proptest::prelude::*;
use softcpu::harness::{machine, run, Mode};

const BUDGET: u64 = 20_000;

fn check(mode: Mode, code: &[u8]) {
    let mut cpu = machine(mode, code);
    let out = run(&mut cpu, BUDGET);
    // The budget is virtual time: one delivery or instruction may overshoot it
    // by a bounded amount, never by an unbounded one.
    assert!(
        out.cycles <= BUDGET + 64,
        "{mode:?}: ran {} cycles",
        out.cycles
    );
    assert!(
        out.budget_exhausted || out.shutdown || out.entry_failed,
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
