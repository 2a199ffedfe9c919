//! PAUSE-loop exiting (SDM Vol. 3C §26.1.3): at CPL 0, PAUSEs no more than
//! PLE_Gap TSC cycles apart form one loop, which begins at the first PAUSE
//! after a VM entry or after a longer gap; the PAUSE that finds the loop
//! older than PLE_Window exits (reason 40, RIP at the PAUSE).

use softcpu::harness::{machine, Mode, CODE};
use x86::vmx::{exit_reason, field as f, proc2};

/// `code` in 64-bit mode at CPL 0 with PAUSE-loop exiting, `gap` and
/// `window`, and the preemption timer at `timer` cycles.
fn ple_machine(code: &[u8], gap: u32, window: u32, timer: u32) -> softcpu::SoftCpu {
    let mut cpu = machine(Mode::Long64, code);
    let p2 = cpu.vmread(f::SECONDARY_VM_EXEC_CONTROL).unwrap();
    for (fld, v) in [
        (
            f::SECONDARY_VM_EXEC_CONTROL,
            p2 | u64::from(proc2::PAUSE_LOOP_EXITING),
        ),
        (f::PLE_GAP, u64::from(gap)),
        (f::PLE_WINDOW, u64::from(window)),
        (f::VMX_PREEMPTION_TIMER_VALUE, u64::from(timer)),
    ] {
        cpu.vmwrite(fld, v).unwrap();
    }
    cpu
}

#[test]
fn a_spin_loop_longer_than_the_window_exits_at_its_pause() {
    // l: pause; jmp l — a PAUSE every 2 cycles.
    let mut cpu = ple_machine(&[0xF3, 0x90, 0xEB, 0xFC], 200, 1000, 1_000_000);
    let start = cpu.cycles();
    cpu.vmlaunch().unwrap();
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::PAUSE
    );
    assert_eq!(cpu.vmread(f::GUEST_RIP).unwrap(), CODE);
    assert_eq!(cpu.vmread(f::VM_EXIT_INSTRUCTION_LEN).unwrap(), 2);
    // The first PAUSE counts at its own cycle (1); the exit is the first
    // PAUSE more than 1,000 cycles after it: 1 + 1,002.
    assert_eq!(cpu.cycles() - start, 1003);
}

#[test]
fn pauses_further_apart_than_the_gap_never_exit() {
    // l: pause; mov ecx, 300; d: dec ecx; jnz d; jmp l — ~600 cycles apart.
    let code = [
        0xF3, 0x90, 0xB9, 0x2C, 0x01, 0x00, 0x00, 0xFF, 0xC9, 0x75, 0xFC, 0xEB, 0xF3,
    ];
    let mut cpu = ple_machine(&code, 200, 1000, 20_000);
    cpu.vmlaunch().unwrap();
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::PREEMPTION_TIMER
    );
}

#[test]
fn every_vm_entry_begins_a_new_loop() {
    let mut cpu = ple_machine(&[0xF3, 0x90, 0xEB, 0xFC], 200, 1000, 1_000_000);
    cpu.vmlaunch().unwrap();
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::PAUSE
    );
    // Resume at the PAUSE: the loop starts again, a full window later.
    let start = cpu.cycles();
    cpu.vmresume().unwrap();
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::PAUSE
    );
    assert_eq!(cpu.cycles() - start, 1003);
}
