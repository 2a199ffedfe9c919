//! SYSENTER and SYSEXIT, TZCNT without BMI1, XSETBV without XSAVE, the
//! reserved NOPs and prefetch hints.

use iced_x86::code_asm::*;
use softcpu::harness::{machine, Mode, CODE};
use softcpu::SoftCpu;
use x86::vmx::{exit_reason, field as f, proc};

/// Assembles `build` + HLT, runs it in 64-bit mode with every exception a
/// VM exit and no MSR exits; the CPU and the exit reason.
fn run(build: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> (SoftCpu, u16) {
    let mut a = CodeAssembler::new(64).unwrap();
    build(&mut a).unwrap();
    a.hlt().unwrap();
    let mut cpu = machine(Mode::Long64, &a.assemble(CODE).unwrap());
    let p = cpu.vmread(f::CPU_BASED_VM_EXEC_CONTROL).unwrap();
    let p = p | u64::from(proc::USE_MSR_BITMAPS);
    cpu.vmwrite(f::CPU_BASED_VM_EXEC_CONTROL, p).unwrap();
    cpu.vmwrite(f::MSR_BITMAP, 0x20_0000).unwrap();
    cpu.vmwrite(f::EXCEPTION_BITMAP, 0xFFFF_FFFF).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 100_000).unwrap();
    assert!(cpu.vmlaunch().is_ok());
    let reason = cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16;
    (cpu, reason)
}

/// `wrmsr(msr, rax)` with the value already in RAX.
fn wrmsr_rax(a: &mut CodeAssembler, msr: u32) -> Result<(), IcedError> {
    a.mov(ecx, msr)?;
    a.mov(rdx, rax)?;
    a.shr(rdx, 32)?;
    a.wrmsr()
}

/// Vector of the exception an exit reports.
fn vector(cpu: &SoftCpu, reason: u16) -> u8 {
    assert_eq!(reason, exit_reason::EXCEPTION_NMI);
    cpu.vmread(f::VM_EXIT_INTR_INFO).unwrap() as u8
}

#[test]
fn sysenter_enters_64_bit_cpl0_code_from_the_sysenter_msrs() {
    let (cpu, reason) = run(|a| {
        let mut target = a.create_label();
        a.mov(rax, 0x10u64)?;
        wrmsr_rax(a, 0x174)?;
        a.mov(rax, 0x9000u64)?;
        wrmsr_rax(a, 0x175)?;
        a.lea(rax, ptr(target))?;
        wrmsr_rax(a, 0x176)?;
        a.sti()?;
        a.sysenter()?;
        a.ud2()?;
        a.set_label(&mut target)?;
        a.pushfq()?;
        a.pop(rbx)
    });
    assert_eq!(reason, exit_reason::HLT);
    assert_eq!(cpu.vmread(f::GUEST_CS_SELECTOR).unwrap(), 0x10);
    assert_eq!(cpu.vmread(f::GUEST_SS_SELECTOR).unwrap(), 0x18);
    let cs_ar = cpu.vmread(f::GUEST_CS_AR_BYTES).unwrap();
    assert_ne!(cs_ar & 1 << 13, 0, "64-bit code segment (L)");
    assert_eq!(cs_ar >> 5 & 3, 0, "DPL 0");
    assert_eq!(
        cpu.gprs()[4],
        0x9000,
        "RSP from SYSENTER_ESP (after a push and a pop)"
    );
    assert_eq!(cpu.gprs()[3] & 1 << 9, 0, "IF cleared");
}

#[test]
fn sysexit_with_rex_w_returns_to_64_bit_cpl3_at_rdx_with_rcx_as_stack() {
    let (cpu, reason) = run(|a| {
        let mut target = a.create_label();
        a.mov(rax, 0x10u64)?;
        wrmsr_rax(a, 0x174)?;
        a.lea(rdx, ptr(target))?;
        a.mov(rcx, 0x7000u64)?;
        a.sysexitq()?;
        a.set_label(&mut target)?;
        // HLT at CPL 3: #GP(0), with the state SYSEXIT loaded.
        a.nop()
    });
    assert_eq!(vector(&cpu, reason), x86::exception::GP);
    assert_eq!(cpu.vmread(f::GUEST_CS_SELECTOR).unwrap(), 0x33);
    assert_eq!(cpu.vmread(f::GUEST_SS_SELECTOR).unwrap(), 0x3B);
    assert_eq!(cpu.vmread(f::GUEST_SS_AR_BYTES).unwrap() >> 5 & 3, 3);
    assert_eq!(cpu.gprs()[4], 0x7000);
}

#[test]
fn sysenter_and_sysexit_with_a_null_sysenter_cs_are_gp0() {
    let (cpu, reason) = run(|a| a.sysenter());
    assert_eq!(vector(&cpu, reason), x86::exception::GP);
    let (cpu, reason) = run(|a| a.sysexit());
    assert_eq!(vector(&cpu, reason), x86::exception::GP);
}

#[test]
fn tzcnt_is_bsf_without_bmi1() {
    let (cpu, reason) = run(|a| {
        a.mov(eax, 0x1234)?;
        a.xor(ebx, ebx)?;
        a.tzcnt(eax, ebx)?; // BSF of 0: ZF, destination unchanged
        a.setz(cl)?;
        a.mov(edx, 8)?;
        a.tzcnt(esi, edx)
    });
    assert_eq!(reason, exit_reason::HLT);
    let g = cpu.gprs();
    assert_eq!((g[0], g[1] & 0xFF, g[6]), (0x1234, 1, 3));
}

#[test]
fn xsetbv_is_ud_without_xsave() {
    let (cpu, reason) = run(|a| {
        a.xor(ecx, ecx)?;
        a.mov(eax, 1)?;
        a.xor(edx, edx)?;
        a.xsetbv()
    });
    assert_eq!(vector(&cpu, reason), x86::exception::UD);
}

#[test]
fn reserved_nops_prefetch_hints_and_rdssp_without_cet_do_nothing() {
    let (cpu, reason) = run(|a| {
        a.mov(eax, 0x5A)?;
        a.db(&[0x0F, 0x0D, 0x00])?; // PREFETCH [rax]
        a.db(&[0x0F, 0x0D, 0x10])?; // 0F 0D /2
        a.db(&[0x0F, 0x19, 0x00])?; // reserved NOP
        a.db(&[0x0F, 0x1F, 0x08])?; // 0F 1F /1
        a.db(&[0x0F, 0x18, 0x20])?; // 0F 18 /4
        a.db(&[0x0F, 0x18, 0x38])?; // 0F 18 /7 (PREFETCHIT0 encoding)
        a.db(&[0x0F, 0x1C, 0x00])?; // CLDEMOTE
        a.db(&[0xF3, 0x48, 0x0F, 0x1E, 0xC8]) // RDSSPQ rax: no CET, no write
    });
    assert_eq!(reason, exit_reason::HLT);
    assert_eq!(cpu.gprs()[0], 0x5A);
}
