//! The notify window: an endless #DB delivery loop (a data breakpoint on the
//! IST slot the #DB frame itself writes, the CVE-2015-8104 recipe) never
//! reaches an instruction boundary; only notify VM exiting ends it, with the
//! #DB as IDT-vectoring information, after window + threshold crystal cycles.

use softcpu::harness::{machine_with_model, Mode, CODE, NOTIFY_THRESHOLD};
use softcpu::CpuModel;
use x86::vmx::{exit_reason, field as f, qualification as q};

const GDT: u64 = 0x2000;
const IDT: u64 = 0x3000;
const TSS: u64 = 0x4000;
const IST1: u64 = 0x9_0000;
/// Where the #DB frame's RIP lands on the IST1 stack (SS, RSP, RFLAGS, CS, RIP).
const RIP_SLOT: u64 = IST1 - 40;

/// The harness model: its low threshold ends loops quickly.
fn harness_model() -> CpuModel {
    CpuModel {
        notify_threshold: NOTIFY_THRESHOLD,
        ..CpuModel::default()
    }
}

/// The #DB loop on a CPU of `model` with notify window `window`. Three
/// instructions (one cycle each) run before the loop begins.
fn db_loop_machine(window: u32, model: CpuModel) -> softcpu::SoftCpu {
    // mov rax, RIP_SLOT; mov dr0, rax; mov [rax], rax (the write hits DR0); jmp $
    let mut code = vec![0x48, 0xB8];
    code.extend_from_slice(&RIP_SLOT.to_le_bytes());
    code.extend_from_slice(&[0x0F, 0x23, 0xC0, 0x48, 0x89, 0x00, 0xEB, 0xFE]);
    let mut cpu = machine_with_model(Mode::Long64, &code, model);
    let w = |cpu: &mut softcpu::SoftCpu, a: u64, v: u64| {
        cpu.memory_mut().write(a, &v.to_le_bytes()).unwrap()
    };
    // GDT: 0x10 64-bit code, 0x18 data.
    w(&mut cpu, GDT + 0x10, 0x00AF_9B00_0000_FFFF);
    w(&mut cpu, GDT + 0x18, 0x00CF_9300_0000_FFFF);
    // IDT gate 1 (#DB): interrupt gate to a handler that is never reached, IST1.
    let handler = CODE + 0x100;
    let lo = (handler & 0xFFFF)
        | (0x10 << 16)
        | (1 << 32)
        | (0x8E << 40)
        | (((handler >> 16) & 0xFFFF) << 48);
    w(&mut cpu, IDT + 16, lo);
    w(&mut cpu, IDT + 24, handler >> 32);
    // TSS: IST1.
    w(&mut cpu, TSS + 36, IST1);
    for (fld, v) in [
        (f::GUEST_GDTR_BASE, GDT),
        (f::GUEST_GDTR_LIMIT, 0x1F),
        (f::GUEST_IDTR_BASE, IDT),
        (f::GUEST_IDTR_LIMIT, 0xFFF),
        (f::GUEST_TR_BASE, TSS),
        (f::GUEST_TR_LIMIT, 0x67),
        // DR7: L0, write breakpoint, 8 bytes.
        (f::GUEST_DR7, 0x400 | 1 | (1 << 16) | (2 << 18)),
        (f::NOTIFY_WINDOW, u64::from(window)),
        // The preemption timer cannot end a delivery loop: prove it by arming it early.
        (f::VMX_PREEMPTION_TIMER_VALUE, 1_000),
    ] {
        cpu.vmwrite(fld, v).unwrap();
    }
    cpu
}

fn crystal_to_tsc(crystal: u64) -> u64 {
    let m = CpuModel::default();
    crystal * u64::from(m.tsc_ratio_numerator) / u64::from(m.tsc_ratio_denominator)
}

/// The documented rule (docs/notify.md, "The rule"), at the default
/// threshold (128,000 crystal cycles): the exit comes at the first delivery
/// attempt after which more than window + threshold whole crystal cycles
/// have passed since the last instruction boundary — at least window +
/// threshold + 1 crystal cycles after it, and less than one delivery's cost
/// later.
#[test]
fn notify_ends_the_db_loop_with_the_db_as_vectoring_information() {
    let model = CpuModel::default();
    assert_eq!(model.notify_threshold, 128_000);
    let delivery = u64::from(model.delivery_cycles);
    for window in [0u32, 5_000] {
        let mut cpu = db_loop_machine(window, model);
        let start = cpu.cycles();
        cpu.vmlaunch().unwrap();
        let reason = cpu.vmread(f::VM_EXIT_REASON).unwrap();
        assert_eq!(reason as u16, exit_reason::NOTIFY, "window {window}");
        assert_eq!(cpu.vmread(f::EXIT_QUALIFICATION).unwrap(), 0);
        // #DB, hardware exception, valid, no error code.
        assert_eq!(cpu.vmread(f::IDT_VECTORING_INFO).unwrap(), 0x8000_0301);
        // Each #DB delivery completed (RIP at the handler) before its own
        // frame write raised the next one: the guest is parked at the handler.
        assert_eq!(cpu.vmread(f::GUEST_RIP).unwrap(), CODE + 0x100);
        // The boundary is after the three one-cycle instructions.
        let since_boundary = cpu.cycles() - start - 3;
        let first = crystal_to_tsc(u64::from(window) + u64::from(model.notify_threshold) + 1);
        assert!(
            (first..first + delivery).contains(&since_boundary),
            "window {window}: {since_boundary} cycles since the boundary, want [{first}, {})",
            first + delivery
        );
    }
}

#[test]
fn the_context_invalid_knob_sets_qualification_bit_0_once() {
    let mut cpu = db_loop_machine(0, harness_model());
    cpu.arm_notify_context_invalid();
    cpu.vmlaunch().unwrap();
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::NOTIFY
    );
    assert_eq!(
        cpu.vmread(f::EXIT_QUALIFICATION).unwrap(),
        q::NOTIFY_CONTEXT_INVALID
    );
    // Resuming re-enters the loop (the hypervisor would re-inject the #DB);
    // the next notify exit is an ordinary one.
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 1_000).unwrap();
    cpu.vmwrite(
        f::VM_ENTRY_INTR_INFO,
        cpu.vmread(f::IDT_VECTORING_INFO).unwrap(),
    )
    .unwrap();
    cpu.vmresume().unwrap();
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::NOTIFY
    );
    assert_eq!(cpu.vmread(f::EXIT_QUALIFICATION).unwrap(), 0);
}

#[test]
fn without_notify_only_power_off_ends_the_db_loop() {
    let mut cpu = db_loop_machine(0, harness_model());
    let proc2 = cpu.vmread(f::SECONDARY_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::SECONDARY_VM_EXEC_CONTROL,
        proc2 & !u64::from(x86::vmx::proc2::NOTIFY_VM_EXITING),
    )
    .unwrap();
    let switch = cpu.power_switch();
    let cutter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        switch.cut();
    });
    cpu.vmlaunch().unwrap();
    cutter.join().unwrap();
    assert!(cpu.powered_off());
    // No VM exit was recorded: the preemption timer (armed at 1,000) and the
    // notify limit of a window-0 machine passed long ago without a boundary.
    assert_eq!(cpu.vmread(f::VM_EXIT_REASON).unwrap(), 0);
    assert!(cpu.cycles() > crystal_to_tsc(u64::from(NOTIFY_THRESHOLD)) * 10);
    // Dead for good: another entry runs nothing.
    let before = cpu.cycles();
    cpu.vmresume().unwrap_or(());
    assert_eq!(cpu.cycles(), before);
}

#[test]
fn an_intercepted_db_reports_its_status_in_the_qualification_not_in_dr6() {
    let mut cpu = db_loop_machine(0, harness_model());
    cpu.vmwrite(f::EXCEPTION_BITMAP, 1 << x86::exception::DB)
        .unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::EXCEPTION_NMI
    );
    // The data breakpoint of the guest's own write: a trap, B0.
    assert_eq!(cpu.vmread(f::VM_EXIT_INTR_INFO).unwrap(), 0x8000_0301);
    assert_eq!(cpu.vmread(f::EXIT_QUALIFICATION).unwrap(), 1);
    assert_eq!(cpu.vmread(f::IDT_VECTORING_INFO).unwrap() & (1 << 31), 0);
    assert_eq!(cpu.state().dr[6] & 0xF, 0, "DR6 is left to the hypervisor");
}
