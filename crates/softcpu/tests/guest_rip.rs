//! The guest-RIP check of VM entry (SDM Vol. 3C §27.3.1.4): in 64-bit
//! mode bits 63:N must be identical, N = 48 linear-address bits; outside
//! it bits 63:32 must be 0. Anything else is a VM-entry failure (reason 33,
//! qualification 0).

use softcpu::harness::{machine, Mode};
use x86::vmx::{exit_reason, field as f};

fn enters(mode: Mode, rip: u64) -> bool {
    let mut cpu = machine(mode, &[0x90, 0xF4]);
    cpu.vmwrite(f::GUEST_RIP, rip).unwrap();
    cpu.vmlaunch().unwrap();
    let reason = cpu.vmread(f::VM_EXIT_REASON).unwrap() as u32;
    reason & exit_reason::ENTRY_FAILURE == 0
}

#[test]
fn bits_63_48_must_be_identical_in_64_bit_mode() {
    assert!(!enters(Mode::Long64, 1 << 62));
    assert!(!enters(Mode::Long64, 0x0001_0000_0000_0000));
    assert!(enters(Mode::Long64, 0xFFFF_8000_0000_0000));
    // Bit 47 alone: the SDM's rule lets it through (the fetch faults).
    assert!(enters(Mode::Long64, 0x0000_8000_0000_0000));
}

#[test]
fn bits_63_32_must_be_0_outside_64_bit_mode() {
    assert!(!enters(Mode::Protected32, 1 << 32));
    assert!(enters(Mode::Protected32, 0x10_0000));
}
