//! Real-address mode under unrestricted guest: LMSW and the CR0 guest/host
//! mask, segment limits, IVT delivery, far transfers, LIDT with a 16-bit
//! operand, and the VM-entry checks on real-mode guest state.
//!
//! In `Mode::Real` the harness starts at CS:IP = 0:0 with CS base
//! `harness::CODE` (0x100000), flat 64 KiB data segments at base 0, SS:SP =
//! 0:`REAL_MODE_SP`, IDTR base 0 and HLT exiting on.

use softcpu::harness::{machine, Mode, CODE, REAL_MODE_SP};
use softcpu::SoftCpu;
use x86::vmx::{exit_reason, field as f};

const HLT: u8 = 0xF4;

fn enter(cpu: &mut SoftCpu) -> u64 {
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 100_000).unwrap();
    let r = match cpu.vmresume() {
        Err(e) if e.error == x86::vmx::instruction_error::VMRESUME_NONLAUNCHED => cpu.vmlaunch(),
        other => other,
    };
    assert!(r.is_ok(), "{r:?}");
    cpu.vmread(f::VM_EXIT_REASON).unwrap()
}

fn read(cpu: &SoftCpu, field: u32) -> u64 {
    cpu.vmread(field).unwrap()
}

fn poke(cpu: &mut SoftCpu, addr: u64, bytes: &[u8]) {
    cpu.memory_mut().write(addr, bytes).unwrap();
}

fn peek16(cpu: &SoftCpu, addr: u64) -> u16 {
    let mut b = [0u8; 2];
    cpu.memory().read(addr, &mut b).unwrap();
    u16::from_le_bytes(b)
}

/// The hypervisor's CR0 ownership (crates/hv/src/soft/setup.rs): only NE,
/// whose read shadow is 0.
fn hv_cr0_ownership(cpu: &mut SoftCpu) {
    cpu.vmwrite(f::CR0_GUEST_HOST_MASK, x86::cr::CR0_NE)
        .unwrap();
    cpu.vmwrite(f::CR0_READ_SHADOW, x86::cr::CR0_ET).unwrap();
}

#[test]
fn lmsw_sets_pe_without_an_exit_when_the_mask_owns_only_ne() {
    // mov ax, 1; lmsw ax; hlt
    let mut cpu = machine(Mode::Real, &[0xB8, 0x01, 0x00, 0x0F, 0x01, 0xF0, HLT]);
    hv_cr0_ownership(&mut cpu);
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    let cr0 = read(&cpu, f::GUEST_CR0);
    assert_eq!(cr0 & x86::cr::CR0_PE, x86::cr::CR0_PE, "cr0 {cr0:#x}");
    // NE is host-owned: it keeps its value (SDM Vol. 3C §26.3).
    assert_eq!(cr0 & x86::cr::CR0_NE, x86::cr::CR0_NE, "cr0 {cr0:#x}");
}

#[test]
fn lmsw_exits_when_it_would_set_an_owned_pe_and_reports_its_source() {
    // mov ax, 0x0009; lmsw ax
    let mut cpu = machine(Mode::Real, &[0xB8, 0x09, 0x00, 0x0F, 0x01, 0xF0, HLT]);
    cpu.vmwrite(f::CR0_GUEST_HOST_MASK, x86::cr::CR0_PE | x86::cr::CR0_NE)
        .unwrap();
    cpu.vmwrite(f::CR0_READ_SHADOW, x86::cr::CR0_ET).unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::CR_ACCESS);
    // CR0, access type 3 (LMSW), register operand, source data in 31:16.
    assert_eq!(read(&cpu, f::EXIT_QUALIFICATION), 0x0009_0030);
    assert_eq!(read(&cpu, f::VM_EXIT_INSTRUCTION_LEN), 3);
    assert_eq!(read(&cpu, f::GUEST_RIP), 3, "the LMSW did not execute");
    assert_eq!(read(&cpu, f::GUEST_CR0) & x86::cr::CR0_PE, 0);
}

#[test]
fn lmsw_never_clears_pe() {
    // 32-bit: xor eax, eax; lmsw ax; hlt
    let mut cpu = machine(Mode::Protected32, &[0x31, 0xC0, 0x0F, 0x01, 0xF0, HLT]);
    hv_cr0_ownership(&mut cpu);
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    assert_eq!(read(&cpu, f::GUEST_CR0) & x86::cr::CR0_PE, x86::cr::CR0_PE);
}

#[test]
fn mov_cr0_clears_and_sets_pe_in_the_guest() {
    // 32-bit: mov eax, cr0; and eax, ~1; mov cr0, eax; hlt; or eax, 1; mov cr0, eax; hlt
    // (the guest's view of NE is the shadow's 0, which matches: no exit).
    let code = [
        0x0F, 0x20, 0xC0, 0x83, 0xE0, 0xFE, 0x0F, 0x22, 0xC0, HLT, 0x83, 0xC8, 0x01, 0x0F, 0x22,
        0xC0, HLT,
    ];
    let mut cpu = machine(Mode::Protected32, &code);
    hv_cr0_ownership(&mut cpu);
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    assert_eq!(read(&cpu, f::GUEST_CR0) & x86::cr::CR0_PE, 0);
    // The real-mode state saved by the exit passes the entry checks.
    cpu.vmwrite(f::GUEST_RIP, read(&cpu, f::GUEST_RIP) + 1)
        .unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    assert_eq!(read(&cpu, f::GUEST_CR0) & x86::cr::CR0_PE, x86::cr::CR0_PE);
}

#[test]
fn a_word_at_offset_ffff_is_gp_without_an_error_code() {
    // mov ax, [0xFFFF]; hlt — #GP intercepted through the exception bitmap.
    let mut cpu = machine(Mode::Real, &[0xA1, 0xFF, 0xFF, HLT]);
    cpu.vmwrite(f::EXCEPTION_BITMAP, 1 << x86::exception::GP)
        .unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::EXCEPTION_NMI);
    // Valid, hardware exception, vector 13, no error code (bit 11 clear).
    assert_eq!(read(&cpu, f::VM_EXIT_INTR_INFO), 0x8000_030D);
    assert_eq!(read(&cpu, f::GUEST_RIP), 0);
}

#[test]
fn a_byte_at_offset_ffff_is_inside_the_limit() {
    // mov al, [0xFFFF]; hlt
    let mut cpu = machine(Mode::Real, &[0xA0, 0xFF, 0xFF, HLT]);
    cpu.vmwrite(f::EXCEPTION_BITMAP, 1 << x86::exception::GP)
        .unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
}

#[test]
fn an_exception_goes_through_the_ivt_with_a_three_word_frame() {
    // ud2 at CS:IP 0:0; IVT[6] = 0xFFFF:0x0050 (linear CODE + 0x40), a HLT.
    let mut code = vec![0x0F, 0x0B];
    code.resize(0x40, 0x90);
    code.push(HLT);
    let mut cpu = machine(Mode::Real, &code);
    poke(&mut cpu, 6 * 4, &[0x50, 0x00, 0xFF, 0xFF]);
    cpu.vmwrite(f::GUEST_RFLAGS, 0x0402).unwrap(); // DF set, IF clear
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    assert_eq!(read(&cpu, f::GUEST_CS_SELECTOR), 0xFFFF);
    assert_eq!(read(&cpu, f::GUEST_CS_BASE), 0xFFFF0);
    assert_eq!(read(&cpu, f::GUEST_RIP), 0x50);
    let sp = REAL_MODE_SP - 6;
    assert_eq!(read(&cpu, f::GUEST_RSP), sp);
    // IP of the UD2 (a fault), CS, FLAGS.
    assert_eq!(peek16(&cpu, sp), 0);
    assert_eq!(peek16(&cpu, sp + 2), 0);
    assert_eq!(peek16(&cpu, sp + 4), 0x0402);
    let _ = CODE;
}

#[test]
fn int_beyond_the_idtr_limit_is_gp() {
    // int 0x41 with IDTR limit 0x103 (vectors 0..0x40); #GP intercepted.
    let mut cpu = machine(Mode::Real, &[0xCD, 0x41, HLT]);
    cpu.vmwrite(f::GUEST_IDTR_LIMIT, 0x103).unwrap();
    cpu.vmwrite(f::EXCEPTION_BITMAP, 1 << x86::exception::GP)
        .unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::EXCEPTION_NMI);
    assert_eq!(read(&cpu, f::VM_EXIT_INTR_INFO), 0x8000_030D);
    assert_eq!(read(&cpu, f::GUEST_RSP), REAL_MODE_SP, "nothing pushed");
}

#[test]
fn retf_to_a_segment_with_low_bits_3_stays_in_real_mode() {
    // push 0x0FFF; push 0x0010; retf  ->  0x0FFF:0x0010 = linear 0x10000 (a HLT).
    let mut cpu = machine(Mode::Real, &[0x68, 0xFF, 0x0F, 0x68, 0x10, 0x00, 0xCB]);
    poke(&mut cpu, 0x10000, &[HLT]);
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    assert_eq!(read(&cpu, f::GUEST_CS_SELECTOR), 0x0FFF);
    assert_eq!(read(&cpu, f::GUEST_RIP), 0x10);
    assert_eq!(read(&cpu, f::GUEST_RSP), REAL_MODE_SP);
}

#[test]
fn jmp_far_o32_beyond_the_cs_limit_is_gp() {
    // jmp far dword 0x1000:0x00010000 (0x66 0xEA): EIP beyond the 0xFFFF limit.
    let code = [0x66, 0xEA, 0x00, 0x00, 0x01, 0x00, 0x00, 0x10, HLT];
    let mut cpu = machine(Mode::Real, &code);
    cpu.vmwrite(f::EXCEPTION_BITMAP, 1 << x86::exception::GP)
        .unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::EXCEPTION_NMI);
    assert_eq!(read(&cpu, f::VM_EXIT_INTR_INFO), 0x8000_030D);
    assert_eq!(read(&cpu, f::GUEST_CS_SELECTOR), 0, "CS not loaded");
}

#[test]
fn lidt_with_a_16_bit_operand_loads_a_24_bit_base() {
    // lidt [0x200]; hlt; o32 lidt [0x200]; hlt
    let code = [
        0x0F, 0x01, 0x1E, 0x00, 0x02, HLT, 0x66, 0x0F, 0x01, 0x1E, 0x00, 0x02, HLT,
    ];
    let mut cpu = machine(Mode::Real, &code);
    poke(&mut cpu, 0x200, &[0xFF, 0x03, 0x00, 0x00, 0x03, 0xAB]);
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    assert_eq!(read(&cpu, f::GUEST_IDTR_BASE), 0x0003_0000);
    assert_eq!(read(&cpu, f::GUEST_IDTR_LIMIT), 0x3FF);
    cpu.vmwrite(f::GUEST_RIP, read(&cpu, f::GUEST_RIP) + 1)
        .unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    assert_eq!(read(&cpu, f::GUEST_IDTR_BASE), 0xAB03_0000);
}

#[test]
fn loading_a_null_segment_register_in_real_mode_makes_it_usable() {
    // mov ax, 0x4000; mov ds, ax; hlt — DS was left unusable by protected mode.
    let mut cpu = machine(Mode::Real, &[0xB8, 0x00, 0x40, 0x8E, 0xD8, HLT]);
    cpu.vmwrite(f::GUEST_DS_AR_BYTES, u64::from(x86::segment::AR_UNUSABLE))
        .unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    assert_eq!(read(&cpu, f::GUEST_DS_BASE), 0x40000);
    assert_eq!(read(&cpu, f::GUEST_DS_AR_BYTES), 0x93);
    assert_eq!(read(&cpu, f::GUEST_DS_LIMIT), 0xFFFF);
}

fn entry_fails(cpu: &mut SoftCpu) -> bool {
    let reason = enter(cpu);
    reason & u64::from(exit_reason::ENTRY_FAILURE) != 0
        && reason as u16 == exit_reason::INVALID_GUEST_STATE
}

#[test]
fn real_mode_entry_requires_ss_dpl_0() {
    // A conforming CS with DPL 0 and SS.DPL 3: acceptable in protected
    // mode under unrestricted guest (CS.DPL <= SS.DPL), not with CR0.PE = 0.
    let mut cpu = machine(Mode::Real, &[HLT]);
    cpu.vmwrite(f::GUEST_CS_AR_BYTES, 0x9F).unwrap();
    cpu.vmwrite(f::GUEST_SS_AR_BYTES, 0xF3).unwrap();
    assert!(entry_fails(&mut cpu));
    let mut cpu = machine(Mode::Protected32, &[HLT]);
    cpu.vmwrite(f::GUEST_CS_AR_BYTES, 0xC09F).unwrap();
    cpu.vmwrite(f::GUEST_SS_AR_BYTES, 0xC0F3).unwrap();
    assert!(!entry_fails(&mut cpu));
    let mut cpu = machine(Mode::Real, &[HLT]);
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
}

#[test]
fn entry_requires_a_data_segment_cs_to_have_dpl_0() {
    // CS type 3 (unrestricted guest only) with DPL 1.
    let mut cpu = machine(Mode::Real, &[HLT]);
    cpu.vmwrite(f::GUEST_CS_AR_BYTES, 0xB3).unwrap();
    assert!(entry_fails(&mut cpu));
    let mut cpu = machine(Mode::Real, &[HLT]);
    cpu.vmwrite(f::GUEST_CS_AR_BYTES, 0x93).unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
}

#[test]
fn entry_requires_granularity_to_match_the_limit() {
    // G = 1 with limit bits 11:0 not all ones.
    let mut cpu = machine(Mode::Protected32, &[HLT]);
    cpu.vmwrite(f::GUEST_DS_LIMIT, 0x1000).unwrap();
    assert!(entry_fails(&mut cpu));
    // G = 0 with a limit above 1 MiB.
    let mut cpu = machine(Mode::Real, &[HLT]);
    cpu.vmwrite(f::GUEST_ES_LIMIT, 0x10_0000).unwrap();
    assert!(entry_fails(&mut cpu));
    // Reserved access-rights bits 11:8.
    let mut cpu = machine(Mode::Real, &[HLT]);
    cpu.vmwrite(f::GUEST_FS_AR_BYTES, 0x193).unwrap();
    assert!(entry_fails(&mut cpu));
}
