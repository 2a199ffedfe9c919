//! Fuzz target: arbitrary bytes run as guest code in the mode the first byte
//! selects. The soft CPU must never panic and must return within its budget.
#![no_main]

use libfuzzer_sys::fuzz_target;
use softcpu::harness::{machine, max_overshoot, run, Mode};

const BUDGET: u64 = 50_000;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, code)) = data.split_first() else {
        return;
    };
    let mode = match selector % 3 {
        0 => Mode::Real,
        1 => Mode::Protected32,
        _ => Mode::Long64,
    };
    let mut cpu = machine(mode, code);
    let out = run(&mut cpu, BUDGET);
    assert!(out.cycles <= BUDGET + max_overshoot(), "ran {} cycles", out.cycles);
    assert!(out.budget_exhausted || out.shutdown || out.entry_failed || out.notify_exit);
});
