//! The CPUID model of this processor (documented in `docs/softcpu.md`).
//!
//! The part is an Intel-compatible x86-64 core with the x87 FPU, MMX, SSE,
//! SSE2 and FXSR (nothing newer: no SSE3, no XSAVE), with VMX, and leaf 0x15 giving the crystal clock that drives the notify
//! window.

use crate::cpu::{CpuModel, SoftCpu};

/// Physical-address width (CPUID.80000008H:EAX[7:0]): 46, as the
/// Sapphire Rapids server parts the model stands for report.
pub(crate) const PHYS_ADDR_BITS: u32 = 46;

/// Vendor string "GenuineIntel" as EBX, EDX, ECX.
const VENDOR: [u32; 3] = [0x756E_6547, 0x4965_6E69, 0x6C65_746E];

/// CPUID.1:EDX features: FPU(0) TSC(4) MSR(5) PAE(6) CX8(8) APIC(9) SEP(11)
/// MTRR(12) PGE(13) CMOV(15) PAT(16) PSE(3) DE(2) CLFLUSH(19) MMX(23) FXSR(24) SSE(25)
/// SSE2(26).
const LEAF1_EDX: u32 = 1
    | 1 << 2
    | 1 << 3
    | 1 << 4
    | 1 << 5
    | 1 << 6
    | 1 << 8
    | 1 << 9
    | 1 << 11
    | 1 << 12
    | 1 << 13
    | 1 << 15
    | 1 << 16
    | 1 << 19
    | 1 << 23
    | 1 << 24
    | 1 << 25
    | 1 << 26;
/// CPUID.1:ECX features: VMX(5), CMPXCHG16B(13), POPCNT(23).
const LEAF1_ECX: u32 = 1 << 5 | 1 << 13 | 1 << 23;
/// CPUID.80000001H:EDX: SYSCALL(11), NX(20), RDTSCP(27), LM(29).
const EXT1_EDX: u32 = 1 << 11 | 1 << 20 | 1 << 27 | 1 << 29;
/// CPUID.80000001H:ECX: LAHF in 64-bit mode(0), LZCNT(5).
const EXT1_ECX: u32 = 1 | 1 << 5;

impl SoftCpu {
    /// CPUID as this processor answers it outside VMX non-root operation.
    pub fn native_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        self.model.cpuid(leaf, subleaf)
    }
}

impl CpuModel {
    /// CPUID as a processor of this model answers it outside VMX non-root
    /// operation: what a description of the part needs, without a machine.
    pub fn cpuid(&self, leaf: u32, _subleaf: u32) -> [u32; 4] {
        match leaf {
            0 => [0x15, VENDOR[0], VENDOR[2], VENDOR[1]],
            // Family 6, model 0x8F (Sapphire Rapids), stepping 8.
            1 => [0x0008_06F8, 0x0001_0800, LEAF1_ECX, LEAF1_EDX],
            0x15 => [
                self.tsc_ratio_denominator,
                self.tsc_ratio_numerator,
                self.crystal_hz,
                0,
            ],
            0x8000_0000 => [0x8000_0008, 0, 0, 0],
            0x8000_0001 => [0, 0, EXT1_ECX, EXT1_EDX],
            // 48 linear, PHYS_ADDR_BITS physical address bits.
            0x8000_0008 => [0x3000 | PHYS_ADDR_BITS, 0, 0, 0],
            _ => [0; 4],
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::{CpuModel, SoftCpu};

    #[test]
    fn clflush_and_the_server_physical_address_width_are_advertised() {
        let cpu = SoftCpu::new(1 << 20, CpuModel::default());
        let leaf1 = cpu.native_cpuid(1, 0);
        assert_ne!(leaf1[3] & 1 << 19, 0, "CLFLUSH");
        assert_ne!(leaf1[3] & 1 << 12, 0, "MTRR (mtrr.rs)");
        assert_ne!(leaf1[2] & 1 << 13, 0, "CMPXCHG16B (tests/atomics.rs)");
        assert_eq!((leaf1[1] >> 8) & 0xFF, 8, "CLFLUSH line size 8 * 8 bytes");
        assert_eq!(cpu.native_cpuid(0x8000_0008, 0)[0], 0x302E);
    }
}
