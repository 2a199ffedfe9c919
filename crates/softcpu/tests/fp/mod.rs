//! Runs assembled 64-bit code on the bare machine for the x87 and SSE tests.

#![allow(dead_code)]

use iced_x86::code_asm::CodeAssembler;
use softcpu::harness::{machine, Mode, CODE};
use softcpu::SoftCpu;
use x86::vmx::{exit_reason, field as f};

/// Where test data lives (identity-mapped, writable).
pub const DATA: u64 = 0x2_0000;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The code reached its final HLT.
    Hlt,
    /// An exception: vector.
    Exception(u8),
}

/// A machine with CR4.OSFXSR and OSXMMEXCPT set (unless `cr4_clear` names
/// them) and `cr0_set` added to CR0, every exception a VM exit, and `data`
/// placed at [`DATA`].
pub fn run_with(
    build: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>,
    data: &[u8],
    cr0_set: u64,
    cr4_clear: u64,
) -> (SoftCpu, End) {
    let mut a = CodeAssembler::new(64).unwrap();
    build(&mut a).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(CODE).unwrap();
    let mut cpu = machine(Mode::Long64, &code);
    cpu.memory_mut().write(DATA, data).unwrap();
    let cr4 = x86::cr::CR4_VMXE | x86::cr::CR4_PAE | x86::cr::CR4_OSFXSR | x86::cr::CR4_OSXMMEXCPT;
    cpu.vmwrite(f::GUEST_CR4, cr4 & !cr4_clear).unwrap();
    let cr0 = cpu.vmread(f::GUEST_CR0).unwrap();
    cpu.vmwrite(f::GUEST_CR0, cr0 | cr0_set).unwrap();
    cpu.vmwrite(f::EXCEPTION_BITMAP, 0xFFFF_FFFF).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 1_000_000)
        .unwrap();
    assert!(cpu.vmlaunch().is_ok());
    let reason = cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16;
    let end = match reason {
        exit_reason::HLT => End::Hlt,
        exit_reason::EXCEPTION_NMI => {
            End::Exception(cpu.vmread(f::VM_EXIT_INTR_INFO).unwrap() as u8)
        }
        r => panic!("unexpected exit {r}"),
    };
    (cpu, end)
}

/// Runs code that must reach its HLT.
pub fn run(
    build: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>,
    data: &[u8],
) -> SoftCpu {
    let (cpu, end) = run_with(build, data, 0, 0);
    assert_eq!(end, End::Hlt);
    cpu
}

/// Reads `N` bytes of guest memory.
pub fn peek<const N: usize>(cpu: &SoftCpu, addr: u64) -> [u8; N] {
    let mut b = [0u8; N];
    cpu.memory().read(addr, &mut b).unwrap();
    b
}

/// A little-endian u64 of guest memory.
pub fn peek64(cpu: &SoftCpu, addr: u64) -> u64 {
    u64::from_le_bytes(peek(cpu, addr))
}

/// A little-endian u32 of guest memory.
pub fn peek32(cpu: &SoftCpu, addr: u64) -> u32 {
    u32::from_le_bytes(peek(cpu, addr))
}

/// A little-endian u16 of guest memory.
pub fn peek16(cpu: &SoftCpu, addr: u64) -> u16 {
    u16::from_le_bytes(peek(cpu, addr))
}

/// Data bytes from f64 values.
pub fn doubles(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
