//! Events recognised at instruction boundaries: NMI (delivery blocked until
//! IRET, NMI exiting), interrupt-window and NMI-window exits.

use softcpu::harness::{machine, Mode};
use x86::vmx::{exit_reason, field as f, pin, proc};

fn enter(cpu: &mut softcpu::SoftCpu) -> u64 {
    // VMRESUME once launched; the first entry is a VMLAUNCH (error 5 otherwise).
    let r = match cpu.vmresume() {
        Err(e) if e.error == x86::vmx::instruction_error::VMRESUME_NONLAUNCHED => cpu.vmlaunch(),
        other => other,
    };
    assert!(
        r.is_ok(),
        "{r:?} error field {:?}",
        cpu.vmread(f::VM_INSTRUCTION_ERROR)
    );
    cpu.vmread(f::VM_EXIT_REASON).unwrap()
}

fn set_bits(cpu: &mut softcpu::SoftCpu, field: u32, bits: u32) {
    let v = cpu.vmread(field).unwrap();
    cpu.vmwrite(field, v | u64::from(bits)).unwrap();
}

#[test]
fn nmi_with_nmi_exiting_is_an_exit_with_nmi_information() {
    // A spinning guest; the NMI pin is raised before entry.
    let mut cpu = machine(Mode::Long64, &[0xEB, 0xFE]);
    set_bits(&mut cpu, f::PIN_BASED_VM_EXEC_CONTROL, pin::NMI_EXITING);
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 100_000).unwrap();
    cpu.nmi_line().kick();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::EXCEPTION_NMI);
    assert_eq!(cpu.vmread(f::VM_EXIT_INTR_INFO).unwrap(), 0x8000_0202);
}

#[test]
fn blocked_nmi_waits_until_unblocked_and_the_nmi_window_opens() {
    let mut cpu = machine(Mode::Long64, &[0xEB, 0xFE]);
    set_bits(
        &mut cpu,
        f::PIN_BASED_VM_EXEC_CONTROL,
        pin::NMI_EXITING | pin::VIRTUAL_NMIS,
    );
    // Blocking by NMI in the guest interruptibility state: the NMI must wait.
    cpu.vmwrite(f::GUEST_INTERRUPTIBILITY_INFO, 1 << 3).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 5_000).unwrap();
    cpu.nmi_line().kick();
    let r = enter(&mut cpu);
    assert_eq!(r as u16, exit_reason::PREEMPTION_TIMER, "exit {r:#x}");
    assert_eq!(
        cpu.vmread(f::GUEST_INTERRUPTIBILITY_INFO).unwrap() & (1 << 3),
        1 << 3,
        "still blocked"
    );
    // Unblocked: the NMI that waited is taken at the first boundary.
    cpu.vmwrite(f::GUEST_INTERRUPTIBILITY_INFO, 0).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 5_000).unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::EXCEPTION_NMI);
    // No NMI pending, NMI-window exiting: the window is open at once.
    set_bits(
        &mut cpu,
        f::CPU_BASED_VM_EXEC_CONTROL,
        proc::NMI_WINDOW_EXITING,
    );
    assert_eq!(enter(&mut cpu) as u16, exit_reason::NMI_WINDOW);
}

#[test]
fn interrupt_window_opens_one_instruction_after_sti() {
    // sti; nop; jmp $
    let mut cpu = machine(Mode::Protected32, &[0xFB, 0x90, 0xEB, 0xFE]);
    set_bits(
        &mut cpu,
        f::CPU_BASED_VM_EXEC_CONTROL,
        proc::INTR_WINDOW_EXITING,
    );
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 1_000).unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::INTERRUPT_WINDOW);
    // IF is set by STI, and the STI shadow covers the NOP: the exit comes at the JMP.
    let rip = cpu.vmread(f::GUEST_RIP).unwrap();
    assert_eq!(rip, softcpu::harness::CODE + 2);
}

#[test]
fn a_halted_guest_stays_halted_across_timer_and_interrupt_exits() {
    // jmp $ — never executed while the guest is in the HLT state.
    let mut cpu = machine(Mode::Protected32, &[0xEB, 0xFE]);
    let pinv = cpu.vmread(f::PIN_BASED_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::PIN_BASED_VM_EXEC_CONTROL,
        pinv | u64::from(pin::PREEMPTION_TIMER | pin::EXT_INTR_EXITING),
    )
    .unwrap();
    cpu.vmwrite(f::GUEST_ACTIVITY_STATE, 1).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 5_000).unwrap();
    let rip = cpu.vmread(f::GUEST_RIP).unwrap();
    let before = cpu.cycles();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::PREEMPTION_TIMER);
    assert!(cpu.cycles() - before >= 5_000);
    // SDM Vol. 3C §27.1: the return to the active state happens only after
    // an exit caused directly by the event; the saved state is still HLT.
    assert_eq!(cpu.vmread(f::GUEST_ACTIVITY_STATE).unwrap(), 1);
    assert_eq!(cpu.vmread(f::GUEST_RIP).unwrap(), rip);
    // The same for the host's interrupt.
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, u64::from(u32::MAX))
        .unwrap();
    cpu.kicker().kick();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::EXTERNAL_INTERRUPT);
    assert_eq!(cpu.vmread(f::GUEST_ACTIVITY_STATE).unwrap(), 1);
}

#[test]
fn a_faulting_iret_still_unblocks_nmis() {
    // IRETQ with a null CS in its frame: #GP(0). SDM Vol. 3A §6.7.1: the
    // IRET unblocks NMIs even so; the exception exit says it (bit 12 of the
    // exit interruption information, SDM Vol. 3C §28.2.2).
    let mut cpu = machine(Mode::Long64, &[0x48, 0xCF]);
    cpu.vmwrite(f::GUEST_INTERRUPTIBILITY_INFO, 1 << 3).unwrap();
    cpu.vmwrite(f::EXCEPTION_BITMAP, 1 << 13).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 5_000).unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::EXCEPTION_NMI);
    assert_eq!(cpu.vmread(f::VM_EXIT_INTR_INFO).unwrap(), 0x8000_1B0D);
    assert_eq!(
        cpu.vmread(f::GUEST_INTERRUPTIBILITY_INFO).unwrap() & (1 << 3),
        0,
        "NMIs unblocked"
    );
    assert_eq!(cpu.vmread(f::GUEST_RIP).unwrap(), softcpu::harness::CODE);
}

#[test]
fn an_iret_fault_without_nmi_blocking_reports_no_unblocking() {
    let mut cpu = machine(Mode::Long64, &[0x48, 0xCF]);
    cpu.vmwrite(f::EXCEPTION_BITMAP, 1 << 13).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 5_000).unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::EXCEPTION_NMI);
    assert_eq!(cpu.vmread(f::VM_EXIT_INTR_INFO).unwrap(), 0x8000_0B0D);
}

#[test]
fn a_failed_vm_entry_leaves_the_vmcs_clear() {
    // RFLAGS bit 1 clear: invalid guest state, a VM-entry failure.
    let mut cpu = machine(Mode::Long64, &[0xF4]);
    cpu.vmwrite(f::GUEST_RFLAGS, 0).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 5_000).unwrap();
    assert!(cpu.vmlaunch().is_ok());
    let reason = cpu.vmread(f::VM_EXIT_REASON).unwrap();
    assert_eq!(
        reason,
        0x8000_0000 | u64::from(exit_reason::INVALID_GUEST_STATE)
    );
    // Not launched (SDM Vol. 3C §27.8): VMRESUME fails, VMLAUNCH may try again.
    let r = cpu.vmresume();
    assert_eq!(
        r.map_err(|e| e.error),
        Err(x86::vmx::instruction_error::VMRESUME_NONLAUNCHED)
    );
    cpu.vmwrite(f::GUEST_RFLAGS, 2).unwrap();
    assert!(cpu.vmlaunch().is_ok());
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::HLT
    );
    assert!(
        cpu.vmresume().is_ok(),
        "launched by the entry that succeeded"
    );
}

/// Delivering an injected #AC to a ring-3 handler whose GDT lies in a page
/// the EPT does not map: the descriptor read is an EPT violation, a VM exit
/// with the #AC as IDT-vectoring information (SDM Vol. 3C §28.2.4), not a
/// #GP of the delivery. (Linux's KVM as L1 maps L2's pages on demand and
/// met this: the #GP became a #DF and a triple fault.)
#[test]
fn an_ept_violation_on_the_handlers_descriptor_is_an_exit_during_delivery() {
    use softcpu::harness::{CODE, RAM};
    let mut cpu = machine(Mode::Protected32, &[0x50, 0xEB, 0xFE]);
    let gdt_base = RAM + 0x10_0000; // beyond the harness's identity EPT
    let gate: u64 = (CODE & 0xFFFF) | (0x1B << 16) | (0xEE00 << 32) | ((CODE >> 16) << 48);
    cpu.memory_mut()
        .write(0x3000 + 17 * 8, &gate.to_le_bytes())
        .unwrap();
    for (fld, v) in [
        (f::GUEST_GDTR_BASE, gdt_base),
        (f::GUEST_GDTR_LIMIT, 39),
        (f::GUEST_IDTR_BASE, 0x3000),
        (f::GUEST_IDTR_LIMIT, 255),
        (f::GUEST_CS_SELECTOR, 0x1B),
        (f::GUEST_CS_AR_BYTES, 0xC0FB),
        (f::GUEST_SS_SELECTOR, 0x23),
        (f::GUEST_SS_AR_BYTES, 0xC0F3),
        (f::GUEST_CR0, 0x4_0031),
        (f::GUEST_RFLAGS, 0x4_0002),
        (f::GUEST_RSP, 0x8_0001),
        (f::EXCEPTION_BITMAP, 1 << 17),
        (f::VM_ENTRY_INTR_INFO, 0x8000_0B11),
        (f::VM_ENTRY_EXCEPTION_ERROR_CODE, 0),
    ] {
        cpu.vmwrite(fld, v).unwrap();
    }
    assert_eq!(enter(&mut cpu), u64::from(exit_reason::EPT_VIOLATION));
    assert_eq!(cpu.vmread(f::IDT_VECTORING_INFO).unwrap(), 0x8000_0B11);
    assert_eq!(
        cpu.vmread(f::GUEST_PHYSICAL_ADDRESS).unwrap(),
        gdt_base + 0x18
    );
}

#[test]
fn event_injection_is_checked_as_the_sdm_says() {
    // §27.2.1.3, each a VMfailValid 7: a software interrupt of length 0
    // (IA32_VMX_MISC[30] = 0); #GP without its error code with "unrestricted
    // guest" 0, even with CR0.PE = 0 in the guest-state area (checked
    // later); an NMI with vector 3. Type 4 with length 2 enters.
    let cases: [(u64, u64, u64, bool); 4] = [
        (0x8000_0430, 0, 0x8000_0031, false),
        (0x8000_030D, 2, 0x8000_0030, false),
        (0x8000_0203, 0, 0x8000_0031, false),
        (0x8000_0430, 2, 0x8000_0031, true),
    ];
    for (info, len, cr0, enters) in cases {
        let mut cpu = machine(Mode::Long64, &[0x90, 0xF4]);
        cpu.vmwrite(f::VM_ENTRY_INTR_INFO, info).unwrap();
        cpu.vmwrite(f::VM_ENTRY_INSTRUCTION_LEN, len).unwrap();
        cpu.vmwrite(f::GUEST_CR0, cr0).unwrap();
        let p2 = cpu.vmread(f::SECONDARY_VM_EXEC_CONTROL).unwrap();
        let unrestricted = u64::from(x86::vmx::proc2::UNRESTRICTED_GUEST);
        cpu.vmwrite(f::SECONDARY_VM_EXEC_CONTROL, p2 & !unrestricted)
            .unwrap();
        let r = cpu.vmlaunch();
        let refused =
            r.is_err_and(|e| e.error == x86::vmx::instruction_error::ENTRY_INVALID_CONTROL);
        assert_eq!(refused, !enters, "{info:#x} length {len}");
    }
}
