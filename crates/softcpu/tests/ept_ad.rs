//! Accessed and dirty flags for EPT (EPTP bit 6, SDM Vol. 3C §29.3.5): the
//! walk sets them, and the processor's accesses to guest paging structures
//! are writes (§29.3.3.2).

use softcpu::harness::{machine, Mode, RAM};
use x86::vmx::{exit_reason, field as f};

/// The harness's EPT: PML4 at RAM, PDPT, then the PD of 2 MiB pages.
const EPT_PML4: u64 = RAM;
const EPT_PD: u64 = RAM + 0x2000;
const A: u64 = 1 << 8;
const D: u64 = 1 << 9;

fn enter(cpu: &mut softcpu::SoftCpu) -> u64 {
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 100_000).unwrap();
    assert!(
        cpu.vmlaunch().is_ok(),
        "{:?}",
        cpu.vmread(f::VM_INSTRUCTION_ERROR)
    );
    cpu.vmread(f::VM_EXIT_REASON).unwrap()
}

fn entry(cpu: &softcpu::SoftCpu, at: u64) -> u64 {
    let mut b = [0u8; 8];
    cpu.memory().read(at, &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// A 64-bit guest running `code` (which ends in HLT) with A/D on.
fn with_ad(code: &[u8]) -> softcpu::SoftCpu {
    let mut cpu = machine(Mode::Long64, code);
    let eptp = cpu.vmread(f::EPT_POINTER).unwrap();
    cpu.vmwrite(f::EPT_POINTER, eptp | 1 << 6).unwrap();
    cpu
}

#[test]
fn a_read_sets_accessed_flags_and_a_write_the_dirty_flag() {
    // mov eax, [0x200000]; hlt
    let mut cpu = with_ad(&[0x8B, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0xF4]);
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    assert_eq!(entry(&cpu, EPT_PML4) & A, A);
    // PD entry 0 holds the code and the guest's page tables, which the
    // walks wrote; entry 1 was only read; entry 2 was not used.
    assert_eq!(entry(&cpu, EPT_PD) & (A | D), A | D);
    assert_eq!(entry(&cpu, EPT_PD + 8) & (A | D), A);
    assert_eq!(entry(&cpu, EPT_PD + 16) & (A | D), 0, "RAM is 4 MiB");

    // mov [0x200000], eax; hlt
    let mut cpu = with_ad(&[0x89, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0xF4]);
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    assert_eq!(entry(&cpu, EPT_PD + 8) & (A | D), A | D);
}

#[test]
fn without_the_eptp_bit_no_flag_is_set() {
    let mut cpu = machine(
        Mode::Long64,
        &[0x89, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0xF4],
    );
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
    for at in [EPT_PML4, EPT_PD, EPT_PD + 8] {
        assert_eq!(entry(&cpu, at) & (A | D), 0, "{at:#x}");
    }
}

#[test]
fn a_page_walk_through_a_read_only_page_is_a_write_violation() {
    // PD entry 0 (code and guest page tables) read/execute only.
    let mut cpu = with_ad(&[0xF4]);
    let pde = entry(&cpu, EPT_PD);
    cpu.memory_mut()
        .write(EPT_PD, &(pde & !2).to_le_bytes())
        .unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::EPT_VIOLATION);
    // Read and write (bits 0, 1), R and X allowed (5:3), linear address
    // valid (7), a paging-structure access (8 clear): the guest's PML4.
    let q = cpu.vmread(f::EXIT_QUALIFICATION).unwrap();
    assert_eq!(q & 0x1BF, 3 | 5 << 3 | 1 << 7, "{q:#x}");
    assert_eq!(cpu.vmread(f::GUEST_PHYSICAL_ADDRESS).unwrap(), 0x8000);
    // Without A/D the walk is a read and goes through.
    let mut cpu = machine(Mode::Long64, &[0xF4]);
    let pde = entry(&cpu, EPT_PD);
    cpu.memory_mut()
        .write(EPT_PD, &(pde & !2).to_le_bytes())
        .unwrap();
    assert_eq!(enter(&mut cpu) as u16, exit_reason::HLT);
}

#[test]
fn the_eptp_is_checked_against_the_capability_msr() {
    // IA32_VMX_EPT_VPID_CAP reports write-back (bit 14) and not uncacheable
    // (bit 8): an EPTP of memory type UC fails VM entry (§27.2.1.1), as does
    // a 3-level walk; WB with A/D (bit 21 reported) enters.
    let cap = softcpu::capability_msr(x86::msr::VMX_EPT_VPID_CAP).unwrap();
    assert_eq!((cap >> 8 & 1, cap >> 14 & 1, cap >> 21 & 1), (0, 1, 1));
    for (low, enters) in [(0x18, false), (0x16, false), (0x1E | 1 << 6, true)] {
        let mut cpu = machine(Mode::Long64, &[0x90, 0xF4]);
        let eptp = cpu.vmread(f::EPT_POINTER).unwrap();
        cpu.vmwrite(f::EPT_POINTER, (eptp & !0xFFF) | low).unwrap();
        let r = cpu.vmlaunch();
        assert_eq!(r.is_ok(), enters, "EPTP low bits {low:#x}: {r:?}");
    }
}
