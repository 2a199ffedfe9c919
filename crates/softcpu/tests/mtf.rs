//! The monitor trap flag (SDM Vol. 3C §26.5.2): with the control set, an
//! MTF VM exit (reason 37) comes on the boundary after each instruction,
//! after the delivery of an exception an instruction raised (before the
//! handler's first instruction), and right after a VM entry that injected
//! a vectored event; an instruction that exits for its own reason (HLT
//! here) takes that exit instead. The MTF VM exit comes before a debug
//! trap, which waits in the pending-debug-exceptions field; VM entry
//! delivers what that field holds (§27.7.3, §28.3.4).

use softcpu::harness::{machine, Mode, CODE};
use x86::vmx::{exit_reason, field as f, proc};

const GDT: u64 = 0x2000;
const IDT: u64 = 0x3000;
const HANDLER: u64 = CODE + 0x100;

/// `code` in 64-bit mode with the monitor trap flag, and an IDT whose
/// gates 1 (#DB), 6 (#UD) and 0x20 lead to HANDLER (nop; hlt).
fn mtf_machine(code: &[u8]) -> softcpu::SoftCpu {
    let mut cpu = machine(Mode::Long64, code);
    let w = |cpu: &mut softcpu::SoftCpu, a: u64, v: u64| {
        cpu.memory_mut().write(a, &v.to_le_bytes()).unwrap()
    };
    w(&mut cpu, GDT + 0x10, 0x00AF_9B00_0000_FFFF);
    w(&mut cpu, GDT + 0x18, 0x00CF_9300_0000_FFFF);
    let lo = (HANDLER & 0xFFFF) | (0x10 << 16) | (0x8E << 40) | (((HANDLER >> 16) & 0xFFFF) << 48);
    for vector in [1u64, 6, 0x20] {
        w(&mut cpu, IDT + 16 * vector, lo);
        w(&mut cpu, IDT + 16 * vector + 8, HANDLER >> 32);
    }
    cpu.memory_mut().write(HANDLER, &[0x90, 0xF4]).unwrap();
    for (fld, v) in [
        (f::GUEST_GDTR_BASE, GDT),
        (f::GUEST_GDTR_LIMIT, 0x1F),
        (f::GUEST_IDTR_BASE, IDT),
        (f::GUEST_IDTR_LIMIT, 0xFFF),
        (f::VMX_PREEMPTION_TIMER_VALUE, u64::from(u32::MAX)),
    ] {
        cpu.vmwrite(fld, v).unwrap();
    }
    let p = cpu.vmread(f::CPU_BASED_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::CPU_BASED_VM_EXEC_CONTROL,
        p | u64::from(proc::MONITOR_TRAP_FLAG),
    )
    .unwrap();
    cpu
}

fn exit(cpu: &softcpu::SoftCpu) -> (u16, u64) {
    (
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        cpu.vmread(f::GUEST_RIP).unwrap(),
    )
}

#[test]
fn one_instruction_per_entry_then_the_instructions_own_exit() {
    // nop; xor eax, eax; hlt
    let mut cpu = mtf_machine(&[0x90, 0x31, 0xC0, 0xF4]);
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::MONITOR_TRAP_FLAG, CODE + 1));
    assert_eq!(cpu.vmread(f::EXIT_QUALIFICATION).unwrap(), 0);
    cpu.vmresume().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::MONITOR_TRAP_FLAG, CODE + 3));
    cpu.vmresume().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::HLT, CODE + 3), "HLT exiting wins");
    assert_eq!(cpu.instructions_retired(), 2);
}

#[test]
fn a_fault_is_delivered_before_the_mtf_exit() {
    // ud2: #UD through gate 6; the exit comes with RIP at the handler.
    let mut cpu = mtf_machine(&[0x0F, 0x0B]);
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::MONITOR_TRAP_FLAG, HANDLER));
}

#[test]
fn an_injected_event_is_delivered_and_the_exit_comes_before_its_handler_runs() {
    let mut cpu = mtf_machine(&[0x90, 0xF4]);
    // External interrupt 0x20, with RFLAGS.IF set.
    cpu.vmwrite(f::GUEST_RFLAGS, 0x202).unwrap();
    cpu.vmwrite(f::VM_ENTRY_INTR_INFO, 0x8000_0020).unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::MONITOR_TRAP_FLAG, HANDLER));
    assert_eq!(cpu.instructions_retired(), 0, "no instruction ran");
    // The frame holds the interrupted RIP.
    let rsp = cpu.vmread(f::GUEST_RSP).unwrap();
    let mut rip = [0u8; 8];
    cpu.memory().read(rsp, &mut rip).unwrap();
    assert_eq!(u64::from_le_bytes(rip), CODE);
}

#[test]
fn a_pending_mtf_exit_injected_comes_before_any_instruction() {
    // Type 7 (other event), vector 0, with the control clear.
    let mut cpu = mtf_machine(&[0x90, 0xF4]);
    let p = cpu.vmread(f::CPU_BASED_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::CPU_BASED_VM_EXEC_CONTROL,
        p & !u64::from(proc::MONITOR_TRAP_FLAG),
    )
    .unwrap();
    cpu.vmwrite(f::VM_ENTRY_INTR_INFO, 0x8000_0700).unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::MONITOR_TRAP_FLAG, CODE));
    assert_eq!(cpu.instructions_retired(), 0);
    assert_eq!(
        cpu.vmread(f::VM_ENTRY_INTR_INFO).unwrap() >> 31,
        0,
        "valid bit cleared"
    );
    cpu.vmresume().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::HLT, CODE + 1));
}

#[test]
fn other_event_injection_takes_only_vector_0() {
    let mut cpu = mtf_machine(&[0x90, 0xF4]);
    cpu.vmwrite(f::VM_ENTRY_INTR_INFO, 0x8000_0701).unwrap();
    let e = cpu.vmlaunch().unwrap_err();
    assert_eq!(e.error, x86::vmx::instruction_error::ENTRY_INVALID_CONTROL);
}

/// BS in the pending-debug-exceptions field (and DR6).
const BS: u64 = 1 << 14;

fn without_mtf(cpu: &mut softcpu::SoftCpu) {
    let p = cpu.vmread(f::CPU_BASED_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::CPU_BASED_VM_EXEC_CONTROL,
        p & !u64::from(proc::MONITOR_TRAP_FLAG),
    )
    .unwrap();
}

#[test]
fn a_single_step_trap_waits_behind_the_mtf_exit_and_the_next_entry_delivers_it() {
    // TF = 1: after the nop both a single-step #DB and an MTF VM exit are
    // due; the exit wins (§26.5.2) and saves the trap (§28.3.4).
    let mut cpu = mtf_machine(&[0x90, 0x90, 0xF4]);
    cpu.vmwrite(f::GUEST_RFLAGS, 0x102).unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::MONITOR_TRAP_FLAG, CODE + 1));
    assert_eq!(cpu.vmread(f::GUEST_PENDING_DBG_EXCEPTIONS).unwrap(), BS);
    assert_eq!(cpu.dr6() & BS, 0, "not delivered");
    // The entry delivers it before any instruction, then the MTF exit
    // comes before the handler's first instruction.
    cpu.vmresume().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::MONITOR_TRAP_FLAG, HANDLER));
    assert_eq!(cpu.instructions_retired(), 1);
    assert_eq!(cpu.dr6() & BS, BS);
    assert_eq!(cpu.vmread(f::GUEST_PENDING_DBG_EXCEPTIONS).unwrap(), 0);
    let rsp = cpu.vmread(f::GUEST_RSP).unwrap();
    let mut rip = [0u8; 8];
    cpu.memory().read(rsp, &mut rip).unwrap();
    assert_eq!(u64::from_le_bytes(rip), CODE + 1, "a trap of the nop");
}

#[test]
fn a_pending_breakpoint_is_delivered_before_the_first_instruction() {
    // B0 and "enabled breakpoint", no blocking: #DB before mov eax, 1.
    let mut cpu = mtf_machine(&[0xB8, 1, 0, 0, 0, 0xF4]);
    without_mtf(&mut cpu);
    cpu.vmwrite(f::GUEST_PENDING_DBG_EXCEPTIONS, 1 << 12 | 1)
        .unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::HLT, HANDLER + 1));
    assert_eq!(cpu.gprs()[0], 0, "the mov did not run");
    assert_eq!(cpu.dr6() & 0xF, 1);
}

#[test]
fn mov_ss_blocking_holds_a_pending_debug_exception_for_one_instruction() {
    // The same with blocking by MOV SS: the mov runs first (§27.7.3).
    let mut cpu = mtf_machine(&[0xB8, 1, 0, 0, 0, 0xF4]);
    without_mtf(&mut cpu);
    cpu.vmwrite(f::GUEST_PENDING_DBG_EXCEPTIONS, 1 << 12 | 1)
        .unwrap();
    cpu.vmwrite(f::GUEST_INTERRUPTIBILITY_INFO, 2).unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::HLT, HANDLER + 1));
    assert_eq!(cpu.gprs()[0], 1, "the mov ran first");
    assert_eq!(cpu.dr6() & 0xF, 1);
}

#[test]
fn an_entry_that_injects_an_event_loses_pending_debug_exceptions() {
    let mut cpu = mtf_machine(&[0x90, 0xF4]);
    without_mtf(&mut cpu);
    cpu.vmwrite(f::GUEST_RFLAGS, 0x202).unwrap();
    cpu.vmwrite(f::GUEST_PENDING_DBG_EXCEPTIONS, BS).unwrap();
    cpu.vmwrite(f::VM_ENTRY_INTR_INFO, 0x8000_0020).unwrap();
    cpu.vmlaunch().unwrap();
    assert_eq!(exit(&cpu), (exit_reason::HLT, HANDLER + 1));
    assert_eq!(cpu.dr6() & BS, 0);
    assert_eq!(cpu.vmread(f::GUEST_PENDING_DBG_EXCEPTIONS).unwrap(), 0);
}

#[test]
fn the_pending_debug_exceptions_entry_checks() {
    // §27.3.1.5: a reserved bit; BS without TF under STI blocking; TF
    // without BS in the HLT activity state. Each is a VM-entry failure
    // (reason 33); the same BS without blocking enters.
    let failed = |cpu: &softcpu::SoftCpu| cpu.vmread(f::VM_EXIT_REASON).unwrap() == 0x8000_0021;
    let cases: [(u64, u64, u64, u64, bool); 4] = [
        (1 << 4, 0x2, 0, 0, true),
        (BS, 0x202, 1, 0, true),
        (0, 0x102, 0, 1, true),
        (BS, 0x2, 0, 0, false),
    ];
    for (pending, rflags, blocking, activity, fails) in cases {
        let mut cpu = mtf_machine(&[0x90, 0xF4]);
        without_mtf(&mut cpu);
        cpu.vmwrite(f::GUEST_PENDING_DBG_EXCEPTIONS, pending)
            .unwrap();
        cpu.vmwrite(f::GUEST_RFLAGS, rflags).unwrap();
        cpu.vmwrite(f::GUEST_INTERRUPTIBILITY_INFO, blocking)
            .unwrap();
        cpu.vmwrite(f::GUEST_ACTIVITY_STATE, activity).unwrap();
        cpu.vmlaunch().unwrap();
        assert_eq!(
            failed(&cpu),
            fails,
            "{pending:#x} {rflags:#x} {blocking} {activity}"
        );
    }
}
