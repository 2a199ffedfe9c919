//! Fuzz target: arbitrary bytes run as guest code twice, with the
//! translating tier off and on; both runs must end alike — registers,
//! flags, memory, the exit, virtual time and instructions retired.
//!
//! The first byte picks the mode (real, 32-bit protected, 64-bit) and the
//! translation threshold: a block is translated once it has run 1, 32 or
//! 512 instructions interpreted. Not 0 (every block from its first entry,
//! as the property tests in `crates/softcpu/tests/translation.rs` run):
//! random code is mostly self-modifying (a zeroed page is `add [rax], al`
//! over and over, with code at address 0), and at 0 each rebuilt block is
//! translated again for one instruction, so that a run takes seconds
//! instead of milliseconds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use softcpu::harness::{machine, run, Mode, RAM};
use softcpu::SoftCpu;

const BUDGET: u64 = 20_000;

/// Translation thresholds the selector byte chooses from.
const THRESHOLDS: [u32; 3] = [1, 32, 512];

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
    let threshold = THRESHOLDS[usize::from(selector / 3) % THRESHOLDS.len()];
    let mut off = machine(mode, code);
    let out_off = run(&mut off, BUDGET);
    let mut on = machine(mode, code);
    on.set_translation(true);
    on.set_translation_threshold(threshold);
    let out_on = run(&mut on, BUDGET);
    assert_eq!(out_off, out_on, "{mode:?}, threshold {threshold}");
    assert_eq!(off.state(), on.state(), "{mode:?}");
    assert_eq!(off.instructions_retired(), on.instructions_retired());
    // After the last exit the state above is the host's; the guest's
    // RFLAGS (with the status flags the tiers track) are in the VMCS.
    for field in [
        x86::vmx::field::VM_EXIT_REASON,
        x86::vmx::field::EXIT_QUALIFICATION,
        x86::vmx::field::GUEST_RFLAGS,
    ] {
        assert_eq!(off.vmread(field).ok(), on.vmread(field).ok(), "{field:#x}");
    }
    assert!(memory(&off) == memory(&on), "{mode:?}: memory differs");
});
