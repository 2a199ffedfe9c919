//! Fuzz target: arbitrary bytes run as guest code twice, with the
//! translating tier off and on (every block translated from its first
//! entry); both runs must end alike — registers, flags, memory, the exit,
//! virtual time and instructions retired.
#![no_main]

use libfuzzer_sys::fuzz_target;
use softcpu::harness::{machine, run, Mode, RAM};
use softcpu::SoftCpu;

const BUDGET: u64 = 20_000;

fn memory(cpu: &SoftCpu) -> Vec<u8> {
    let mut buf = vec![0u8; RAM as usize];
    cpu.memory().read(0, &mut buf).unwrap();
    buf
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, code)) = data.split_first() else {
        return;
    };
    let mode = match selector % 3 {
        0 => Mode::Real,
        1 => Mode::Protected32,
        _ => Mode::Long64,
    };
    let mut off = machine(mode, code);
    let out_off = run(&mut off, BUDGET);
    let mut on = machine(mode, code);
    on.set_translation(true);
    on.set_translation_threshold(0);
    let out_on = run(&mut on, BUDGET);
    assert_eq!(out_off, out_on, "{mode:?}");
    assert_eq!(off.state(), on.state(), "{mode:?}");
    assert_eq!(off.instructions_retired(), on.instructions_retired());
    let reason = |c: &SoftCpu| c.vmread(x86::vmx::field::VM_EXIT_REASON).ok();
    assert_eq!(reason(&off), reason(&on));
    assert!(memory(&off) == memory(&on), "{mode:?}: memory differs");
});
