//! Virtual time: the cycles each instruction takes, as a pacing hypervisor
//! sets them, and time passing outside the guest.

use softcpu::harness::{machine, Mode};
use x86::vmx::{exit_reason, field as f};

/// `rdtsc; mov ebx, eax; nop × 10; rdtsc; sub eax, ebx; hlt`: EAX is the
/// TSC difference across 12 instructions (the second RDTSC counts itself).
const CODE: [u8; 21] = [
    0x0F, 0x31, 0x89, 0xC3, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x0F, 0x31,
    0x29, 0xD8, 0xF4, 0xEB, 0xFE,
];

fn tsc_delta(instruction_cycles: u32) -> u64 {
    let mut cpu = machine(Mode::Protected32, &CODE);
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 1_000_000)
        .unwrap();
    cpu.set_instruction_cycles(instruction_cycles);
    cpu.vmlaunch().unwrap();
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::HLT
    );
    cpu.gprs()[0] & 0xFFFF_FFFF
}

#[test]
fn each_instruction_takes_the_cycles_set() {
    assert_eq!(tsc_delta(1), 12);
    assert_eq!(tsc_delta(20), 12 * 20);
    // 0 means the minimum, one cycle.
    assert_eq!(tsc_delta(0), 12);
}

#[test]
fn time_passes_outside_the_guest() {
    let mut cpu = machine(Mode::Protected32, &[0xF4]);
    let before = cpu.cycles();
    cpu.advance_time(1_500);
    assert_eq!(cpu.cycles(), before + 1_500);
}
