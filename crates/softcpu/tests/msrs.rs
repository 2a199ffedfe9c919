//! MSRs a booting kernel touches: IA32_MISC_ENABLE, IA32_MCG_CAP, a write of
//! IA32_TSC, IA32_DEBUGCTL, IA32_PAT's memory-type check.

use softcpu::harness::{machine, Mode};
use x86::vmx::{exit_reason, field as f, proc};

/// Runs `code` in 64-bit mode with no MSR exits and #GP as an exit; returns
/// the exit reason and the registers.
fn run(code: &[u8]) -> (u16, [u64; 16]) {
    let mut cpu = machine(Mode::Long64, code);
    // A zeroed MSR bitmap in guest RAM: no RDMSR/WRMSR exits.
    let p = cpu.vmread(f::CPU_BASED_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::CPU_BASED_VM_EXEC_CONTROL,
        p | u64::from(proc::USE_MSR_BITMAPS),
    )
    .unwrap();
    cpu.vmwrite(f::MSR_BITMAP, 0x20_0000).unwrap();
    cpu.vmwrite(f::EXCEPTION_BITMAP, 1 << 13).unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 10_000).unwrap();
    assert!(cpu.vmlaunch().is_ok());
    (cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16, cpu.gprs())
}

const MOV_ECX: u8 = 0xB9;

fn mov_ecx(msr: u32) -> Vec<u8> {
    let mut v = vec![MOV_ECX];
    v.extend_from_slice(&msr.to_le_bytes());
    v
}

#[test]
fn misc_enable_mcg_cap_debugctl_and_a_tsc_write() {
    let mut code = mov_ecx(0x1A0);
    code.extend_from_slice(&[0x0F, 0x32, 0x89, 0xC3]); // rdmsr; mov ebx, eax
    code.extend(mov_ecx(0x179));
    code.extend_from_slice(&[0x0F, 0x32, 0x89, 0xC6]); // rdmsr; mov esi, eax
    code.extend(mov_ecx(0x1D9));
    code.extend_from_slice(&[0x31, 0xC0, 0x31, 0xD2, 0x0F, 0x30]); // wrmsr 0
    code.extend(mov_ecx(0x10));
    // xor eax, eax; mov edx, 1; wrmsr; rdtsc; hlt
    code.extend_from_slice(&[0x31, 0xC0, 0xBA, 1, 0, 0, 0, 0x0F, 0x30, 0x0F, 0x31, 0xF4]);
    let (reason, g) = run(&code);
    assert_eq!(reason, exit_reason::HLT, "{g:x?}");
    assert_eq!(g[3], 0x1801, "MISC_ENABLE: fast strings, no BTS, no PEBS");
    assert_eq!(g[6], 0, "MCG_CAP: no banks");
    assert_eq!(g[2], 1, "RDTSC after writing 1 << 32 to IA32_TSC");
    assert!(g[0] < 100, "a few cycles later: {:#x}", g[0]);
}

#[test]
fn misc_enable_read_only_bits_and_debugctl_features_are_gp() {
    // MISC_ENABLE with PEBS "available" (bit 12 cleared): #GP.
    let mut code = mov_ecx(0x1A0);
    code.extend_from_slice(&[0xB8, 0x01, 0x08, 0, 0, 0x31, 0xD2, 0x0F, 0x30, 0xF4]);
    assert_eq!(run(&code).0, exit_reason::EXCEPTION_NMI);
    // DEBUGCTL.BTF: not modelled, #GP.
    let mut code = mov_ecx(0x1D9);
    code.extend_from_slice(&[0xB8, 0x02, 0, 0, 0, 0x31, 0xD2, 0x0F, 0x30, 0xF4]);
    assert_eq!(run(&code).0, exit_reason::EXCEPTION_NMI);
    // PAT with an entry of reserved type 2: #GP.
    let mut code = mov_ecx(0x277);
    code.extend_from_slice(&[0xB8, 0x02, 0, 0, 0, 0x31, 0xD2, 0x0F, 0x30, 0xF4]);
    assert_eq!(run(&code).0, exit_reason::EXCEPTION_NMI);
    // Clearing fast strings is allowed.
    let mut code = mov_ecx(0x1A0);
    code.extend_from_slice(&[
        0xB8, 0x00, 0x18, 0, 0, 0x31, 0xD2, 0x0F, 0x30, 0x0F, 0x32, 0xF4,
    ]);
    let (reason, g) = run(&code);
    assert_eq!(reason, exit_reason::HLT);
    assert_eq!(g[0], 0x1800);
}

/// `mov ecx, msr; mov eax, lo; mov edx, hi; wrmsr`.
fn wrmsr(msr: u32, v: u64) -> Vec<u8> {
    let mut code = mov_ecx(msr);
    code.push(0xB8);
    code.extend_from_slice(&(v as u32).to_le_bytes());
    code.push(0xBA);
    code.extend_from_slice(&((v >> 32) as u32).to_le_bytes());
    code.extend_from_slice(&[0x0F, 0x30]);
    code
}

#[test]
fn mtrrs_are_advertised_held_and_checked() {
    // MTRRCAP; DEF_TYPE enabled write-back; PHYSMASK0 read back. (CPUID,
    // which exits, is checked in the unit tests of cpuid.rs.)
    let mut code = mov_ecx(0xFE);
    code.extend_from_slice(&[0x0F, 0x32, 0x89, 0xC6]); // rdmsr; mov esi, eax
    code.extend(wrmsr(0x2FF, 0xC06));
    code.extend(wrmsr(0x201, 0x3FFF_8000_0800));
    code.extend(mov_ecx(0x2FF));
    code.extend_from_slice(&[0x0F, 0x32, 0x89, 0xC3]); // rdmsr; mov ebx, eax
    code.extend(mov_ecx(0x201));
    code.extend_from_slice(&[0x0F, 0x32, 0xF4]); // rdmsr; hlt
    let (reason, g) = run(&code);
    assert_eq!(reason, exit_reason::HLT, "{g:x?}");
    assert_eq!(g[6], 0x508, "VCNT 8, FIX, WC");
    assert_eq!(g[3], 0xC06);
    assert_eq!((g[0], g[2]), (0x8000_0800, 0x3FFF));
}

#[test]
fn mtrr_reserved_bits_undefined_types_and_mtrrcap_writes_are_gp() {
    for (msr, v) in [
        (0xFE, 0x508),
        (0x2FF, 0x800 | 2),
        (0x2FF, 0x100 | 6),
        (0x250, 0x0606_0606_0606_0607),
        (0x204, 0x100),
        (0x205, 1 << 46 | 0x800),
        (0x210, 0), // PHYSBASE8: beyond VCNT
        (0x251, 0), // between the fixed ranges
    ] {
        let mut code = wrmsr(msr, v);
        code.push(0xF4);
        assert_eq!(run(&code).0, exit_reason::EXCEPTION_NMI, "{msr:#x} {v:#x}");
    }
}

#[test]
fn pat_reads_its_reset_value_until_written() {
    // rdmsr IA32_PAT; mov ebx, eax; hlt — WB, WT, UC-, UC twice (SDM Vol. 3A
    // Table 13-12); KVM refuses to load when entry 0 is not WB.
    let mut code = mov_ecx(0x277);
    code.extend_from_slice(&[0x0F, 0x32, 0x89, 0xC3, 0xF4]);
    let (reason, g) = run(&code);
    assert_eq!(reason, exit_reason::HLT, "{g:x?}");
    assert_eq!((g[2] << 32) | g[3], 0x0007_0406_0007_0406);
}
