//! The stall model (`SoftCpu::inject_stall`, docs/notify.md "The stall
//! model"): the next instruction spends the stall before it starts; notify
//! VM exiting cuts it at its deadline, with RIP at the instruction and the
//! context valid, and it resumes with what is left on the next entry.

use softcpu::harness::{machine_with_model, Mode, CODE};
use softcpu::CpuModel;
use x86::vmx::{exit_reason, field as f, proc2, qualification as q};

/// nop; nop; hlt — on the default model (threshold 128,000), notify window
/// `window`, a preemption timer too far off to matter.
fn machine(window: u32) -> softcpu::SoftCpu {
    let mut cpu = machine_with_model(Mode::Long64, &[0x90, 0x90, 0xF4], CpuModel::default());
    cpu.vmwrite(f::NOTIFY_WINDOW, u64::from(window)).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, u64::from(u32::MAX))
        .unwrap();
    cpu
}

/// TSC cycles from the boundary to the notify exit: the first count at which
/// more than window + threshold whole crystal cycles have passed.
fn deadline(window: u32) -> u64 {
    let m = CpuModel::default();
    let crystal = u64::from(window) + u64::from(m.notify_threshold) + 1;
    (crystal * u64::from(m.tsc_ratio_numerator)).div_ceil(u64::from(m.tsc_ratio_denominator))
}

fn crystal_to_tsc(crystal: u64) -> u64 {
    let m = CpuModel::default();
    (crystal * u64::from(m.tsc_ratio_numerator)).div_ceil(u64::from(m.tsc_ratio_denominator))
}

fn reason(cpu: &softcpu::SoftCpu) -> u16 {
    cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16
}

#[test]
fn notify_cuts_a_long_stall_into_exits_and_the_instruction_then_runs() {
    let threshold = u64::from(CpuModel::default().notify_threshold);
    for window in [0u32, 7_000] {
        let mut cpu = machine(window);
        // Three windows and a bit: three notify exits, then the rest.
        let stall = 3 * (u64::from(window) + threshold + 1) + 500;
        cpu.inject_stall(stall);
        let total = cpu.stall_remaining();
        assert_eq!(total, crystal_to_tsc(stall));
        let mut left = total;
        for n in 0..3 {
            let before = cpu.cycles();
            let r = if n == 0 {
                cpu.vmlaunch()
            } else {
                cpu.vmresume()
            };
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(
                reason(&cpu),
                exit_reason::NOTIFY,
                "window {window}, exit {n}"
            );
            assert_eq!(
                cpu.cycles() - before,
                deadline(window),
                "at the deadline exactly"
            );
            assert_eq!(
                cpu.vmread(f::EXIT_QUALIFICATION).unwrap(),
                0,
                "context valid"
            );
            assert_eq!(cpu.vmread(f::IDT_VECTORING_INFO).unwrap() & 1 << 31, 0);
            assert_eq!(
                cpu.vmread(f::GUEST_RIP).unwrap(),
                CODE,
                "the instruction has not started"
            );
            left -= deadline(window);
            assert_eq!(cpu.stall_remaining(), left);
        }
        let before = cpu.cycles();
        cpu.vmresume().unwrap();
        assert_eq!(reason(&cpu), exit_reason::HLT);
        assert_eq!(cpu.stall_remaining(), 0);
        assert_eq!(cpu.vmread(f::GUEST_RIP).unwrap(), CODE + 2);
        // The rest of the stall, then nop, nop (HLT exits before it counts).
        assert!(
            cpu.cycles() - before >= left + 2,
            "{} < {}",
            cpu.cycles() - before,
            left + 2
        );
        assert!(cpu.cycles() - before <= left + 3);
        assert_eq!(cpu.instructions_retired(), 2);
    }
}

#[test]
fn without_notify_the_whole_stall_passes_and_the_instruction_runs() {
    let mut cpu = machine(0);
    let p2 = cpu.vmread(f::SECONDARY_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::SECONDARY_VM_EXEC_CONTROL,
        p2 & !u64::from(proc2::NOTIFY_VM_EXITING),
    )
    .unwrap();
    let stall = 10 * u64::from(CpuModel::default().notify_threshold);
    cpu.inject_stall(stall);
    let before = cpu.cycles();
    cpu.vmlaunch().unwrap();
    assert_eq!(reason(&cpu), exit_reason::HLT);
    let spent = cpu.cycles() - before;
    assert!((crystal_to_tsc(stall) + 2..=crystal_to_tsc(stall) + 3).contains(&spent));
}

#[test]
fn a_short_stall_ends_without_an_exit() {
    let mut cpu = machine(0);
    cpu.inject_stall(u64::from(CpuModel::default().notify_threshold));
    cpu.vmlaunch().unwrap();
    assert_eq!(reason(&cpu), exit_reason::HLT);
    assert_eq!(cpu.stall_remaining(), 0);
}

#[test]
fn the_context_invalid_knob_marks_the_stalls_exit() {
    let mut cpu = machine(0);
    cpu.inject_stall(2 * u64::from(CpuModel::default().notify_threshold));
    cpu.arm_notify_context_invalid();
    cpu.vmlaunch().unwrap();
    assert_eq!(reason(&cpu), exit_reason::NOTIFY);
    assert_eq!(
        cpu.vmread(f::EXIT_QUALIFICATION).unwrap(),
        q::NOTIFY_CONTEXT_INVALID
    );
    assert!(!cpu.disarm_notify_context_invalid(), "used up");
}

#[test]
fn an_injected_stall_waits_for_a_halted_cpu_to_wake() {
    // hlt without HLT exiting: the CPU halts; the stall stays pending.
    let mut cpu = machine(0);
    let p = cpu.vmread(f::CPU_BASED_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::CPU_BASED_VM_EXEC_CONTROL,
        p & !u64::from(x86::vmx::proc::HLT_EXITING),
    )
    .unwrap();
    cpu.vmwrite(f::GUEST_RIP, CODE + 2).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 100).unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(reason(&cpu), exit_reason::PREEMPTION_TIMER);
    cpu.inject_stall(5 * u64::from(CpuModel::default().notify_threshold));
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 100).unwrap();
    cpu.vmresume().unwrap();
    assert_eq!(reason(&cpu), exit_reason::PREEMPTION_TIMER, "still halted");
    assert_ne!(cpu.stall_remaining(), 0);
}
