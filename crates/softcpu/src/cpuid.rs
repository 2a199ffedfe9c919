//! The CPUID model of this processor (documented in `docs/softcpu.md`).
//!
//! The part is an Intel-compatible x86-64 core with the x87 FPU, MMX, SSE,
//! SSE2 and FXSR (nothing newer: no SSE3, no XSAVE), with VMX, one thread
//! of one core (leaf 0xB), and leaf 0x15 giving the crystal clock that
//! drives the notify window. Every feature bit set here is implemented.

use crate::cpu::{CpuModel, SoftCpu};

/// Physical-address width (CPUID.80000008H:EAX[7:0]): 46, as the
/// Sapphire Rapids server parts the model stands for report.
pub(crate) const PHYS_ADDR_BITS: u32 = 46;

/// The highest basic leaf (CPUID.0:EAX).
const MAX_BASIC: u32 = 0x16;
/// The highest extended leaf (CPUID.80000000H:EAX).
const MAX_EXTENDED: u32 = 0x8000_0008;

/// Vendor string "GenuineIntel" as EBX, EDX, ECX.
const VENDOR: [u32; 3] = [0x756E_6547, 0x4965_6E69, 0x6C65_746E];

/// CPUID.1:EDX features: FPU(0) DE(2) PSE(3) TSC(4) MSR(5) PAE(6) CX8(8)
/// APIC(9) SEP(11) MTRR(12) PGE(13) CMOV(15) PAT(16) CLFLUSH(19) MMX(23)
/// FXSR(24) SSE(25) SSE2(26).
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
/// CPUID.1:EBX: initial APIC ID 0 (31:24), one logical processor ID
/// (23:16), CLFLUSH line 8 × 8 bytes (15:8), brand index 0.
const LEAF1_EBX: u32 = 0x0001_0800;
/// CPUID.80000001H:EDX: SYSCALL(11), NX(20), RDTSCP(27), LM(29).
const EXT1_EDX: u32 = 1 << 11 | 1 << 20 | 1 << 27 | 1 << 29;
/// CPUID.80000001H:ECX: LAHF in 64-bit mode(0), LZCNT(5), PREFETCHW(8).
const EXT1_ECX: u32 = 1 | 1 << 5 | 1 << 8;
/// CPUID.80000007H:EDX: invariant TSC (8). The TSC counts virtual cycles at
/// the one rate of leaf 0x15 in every state (halted included: a halted CPU
/// skips ahead, it does not stop the count); there are no P- or C-states.
const EXT7_EDX: u32 = 1 << 8;
/// The processor brand string (leaves 0x80000002–0x80000004), NUL-padded.
const BRAND: &[u8; 48] =
    b"Vigil soft x86-64 CPU\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// One cache of leaf 4 (deterministic cache parameters). The model has no
/// caches (CLFLUSH and WBINVD are ordering no-ops), so these describe the
/// hierarchy software may size buffers by — one Sapphire Rapids core's —
/// consistent with the 64-byte line of leaf 1 and with leaf 0x80000006.
struct Cache {
    /// 1 data, 2 instruction, 3 unified.
    kind: u32,
    level: u32,
    ways: u32,
    sets: u32,
    /// EDX: bit 2 complex (hashed) indexing.
    edx: u32,
}

/// Line size of every cache, bytes.
const LINE: u32 = 64;
/// L1d 48 KiB 12-way, L1i 32 KiB 8-way, L2 2 MiB 16-way, L3 1.875 MiB
/// 15-way (one core's slice).
const CACHES: [Cache; 4] = [
    Cache {
        kind: 1,
        level: 1,
        ways: 12,
        sets: 64,
        edx: 0,
    },
    Cache {
        kind: 2,
        level: 1,
        ways: 8,
        sets: 64,
        edx: 0,
    },
    Cache {
        kind: 3,
        level: 2,
        ways: 16,
        sets: 2048,
        edx: 0,
    },
    Cache {
        kind: 3,
        level: 3,
        ways: 15,
        sets: 2048,
        edx: 1 << 2,
    },
];
/// The L2 of CACHES.
const L2: usize = 2;

impl SoftCpu {
    /// CPUID as this processor answers it outside VMX non-root operation.
    pub fn native_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        self.model.cpuid(leaf, subleaf)
    }
}

impl CpuModel {
    /// CPUID as a processor of this model answers it outside VMX non-root
    /// operation: what a description of the part needs, without a machine.
    /// A leaf above the highest basic or extended one answers as the
    /// highest basic leaf, as Intel parts do (SDM Vol. 2A CPUID).
    pub fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        match leaf {
            0 => [MAX_BASIC, VENDOR[0], VENDOR[2], VENDOR[1]],
            // Family 6, model 0x8F (Sapphire Rapids), stepping 8.
            1 => [0x0008_06F8, LEAF1_EBX, LEAF1_ECX, LEAF1_EDX],
            // AL = 1 (one CPUID.2 call); descriptor 0xFF: cache and TLB
            // information is in leaf 4; the other bytes are null descriptors.
            2 => [0x0000_FF01, 0, 0, 0],
            4 => cache_leaf(subleaf),
            0xB => self.topology_leaf(subleaf),
            0x15 => [
                self.tsc_ratio_denominator,
                self.tsc_ratio_numerator,
                self.crystal_hz,
                0,
            ],
            // Base and maximum frequency (the TSC's: no turbo) and a 100 MHz
            // reference clock, in MHz.
            0x16 => {
                let mhz = self.tsc_hz() / 1_000_000;
                [mhz as u32, mhz as u32, 100, 0]
            }
            0x8000_0000 => [MAX_EXTENDED, 0, 0, 0],
            0x8000_0001 => [0, 0, EXT1_ECX, EXT1_EDX],
            0x8000_0002..=0x8000_0004 => brand_leaf(leaf - 0x8000_0002),
            // L2: size in KiB (31:16), associativity 8 = 16 ways (15:12), line size.
            0x8000_0006 => {
                let l2 = &CACHES[L2];
                [
                    0,
                    0,
                    (l2.ways * l2.sets * LINE / 1024) << 16 | 0x8 << 12 | LINE,
                    0,
                ]
            }
            0x8000_0007 => [0, 0, 0, EXT7_EDX],
            // 48 linear, PHYS_ADDR_BITS physical address bits.
            0x8000_0008 => [0x3000 | PHYS_ADDR_BITS, 0, 0, 0],
            l if l > MAX_BASIC && !(0x8000_0000..=MAX_EXTENDED).contains(&l) => {
                self.cpuid(MAX_BASIC, subleaf)
            }
            _ => [0; 4],
        }
    }

    /// The TSC frequency leaf 0x15 gives, in Hz (0 when it gives none).
    fn tsc_hz(&self) -> u64 {
        match self.tsc_ratio_denominator {
            0 => 0,
            d => u64::from(self.crystal_hz) * u64::from(self.tsc_ratio_numerator) / u64::from(d),
        }
    }

    /// Leaf 0xB, extended topology (SDM Vol. 3A §10.9.4): one thread (SMT
    /// level) of one core (core level), no shift between the levels; EDX
    /// is the x2APIC ID, the initial APIC ID of leaf 1. The leaf is given
    /// although x2APIC mode is not offered: its presence is enumerated by
    /// the maximum leaf and a non-zero EBX, not by CPUID.1:ECX.x2APIC.
    fn topology_leaf(&self, subleaf: u32) -> [u32; 4] {
        let x2apic_id = LEAF1_EBX >> 24;
        let level = subleaf & 0xFF;
        match level {
            // One logical processor at this level; level type 1 (SMT), 2 (core).
            0 | 1 => [0, 1, (level + 1) << 8 | level, x2apic_id],
            // An invalid level: type 0, EAX and EBX zero, ECX[7:0] the input.
            _ => [0, 0, level, x2apic_id],
        }
    }
}

/// Leaf 4 subleaf `n`: cache `n`, or type 0 (no more caches).
fn cache_leaf(n: u32) -> [u32; 4] {
    let Some(c) = CACHES.get(n as usize) else {
        return [0; 4];
    };
    // Self-initialising (bit 8); one logical processor shares it (25:14 =
    // 0), one core per package (31:26 = 0).
    let eax = c.kind | c.level << 5 | 1 << 8;
    // Ways − 1 (31:22), partitions − 1 (21:12), line size − 1 (11:0).
    let ebx = (c.ways - 1) << 22 | (LINE - 1);
    [eax, ebx, c.sets - 1, c.edx]
}

/// Brand-string leaf 0x80000002 + `i`: 16 bytes as EAX, EBX, ECX, EDX.
fn brand_leaf(i: u32) -> [u32; 4] {
    let part = &BRAND[16 * i as usize..][..16];
    std::array::from_fn(|r| {
        u32::from_le_bytes([
            part[4 * r],
            part[4 * r + 1],
            part[4 * r + 2],
            part[4 * r + 3],
        ])
    })
}

#[cfg(test)]
mod tests {
    use crate::cpu::{CpuModel, SoftCpu};

    fn cpu() -> SoftCpu {
        SoftCpu::new(1 << 20, CpuModel::default())
    }

    #[test]
    fn clflush_and_the_server_physical_address_width_are_advertised() {
        let cpu = cpu();
        let leaf1 = cpu.native_cpuid(1, 0);
        assert_ne!(leaf1[3] & 1 << 19, 0, "CLFLUSH");
        assert_ne!(leaf1[3] & 1 << 12, 0, "MTRR (mtrr.rs)");
        assert_ne!(leaf1[2] & 1 << 13, 0, "CMPXCHG16B (tests/atomics.rs)");
        assert_eq!((leaf1[1] >> 8) & 0xFF, 8, "CLFLUSH line size 8 * 8 bytes");
        assert_eq!(cpu.native_cpuid(0x8000_0008, 0)[0], 0x302E);
    }

    #[test]
    fn nothing_newer_than_sse2_nor_x2apic_nor_xsave_is_claimed() {
        let leaf1 = cpu().native_cpuid(1, 0);
        // SSE3(0) SSSE3(9) FMA(12) SSE4.1(19) SSE4.2(20) x2APIC(21) MOVBE(22)
        // XSAVE(26) OSXSAVE(27) AVX(28) RDRAND(30).
        for bit in [0, 9, 12, 19, 20, 21, 22, 26, 27, 28, 30] {
            assert_eq!(leaf1[2] & 1 << bit, 0, "ECX bit {bit}");
        }
        assert_eq!(cpu().native_cpuid(7, 0), [0; 4], "no leaf-7 features");
        assert_eq!(cpu().native_cpuid(0xD, 0), [0; 4], "no XSAVE state");
    }

    #[test]
    fn topology_is_one_thread_of_one_core_with_the_leaf_1_apic_id() {
        let cpu = cpu();
        let apic_id = cpu.native_cpuid(1, 0)[1] >> 24;
        assert_eq!(cpu.native_cpuid(0xB, 0), [0, 1, 0x100, apic_id]);
        assert_eq!(cpu.native_cpuid(0xB, 1), [0, 1, 0x201, apic_id]);
        assert_eq!(cpu.native_cpuid(0xB, 2), [0, 0, 2, apic_id]);
        assert_eq!(cpu.native_cpuid(0xB, 7), [0, 0, 7, apic_id]);
    }

    #[test]
    fn leaf_4_enumerates_four_caches_of_64_byte_lines_then_stops() {
        let cpu = cpu();
        let size = |r: [u32; 4]| {
            ((r[1] >> 22) + 1) * (((r[1] >> 12) & 0x3FF) + 1) * ((r[1] & 0xFFF) + 1) * (r[2] + 1)
        };
        let l1d = cpu.native_cpuid(4, 0);
        assert_eq!((l1d[0] & 0x1F, (l1d[0] >> 5) & 7), (1, 1));
        assert_eq!(size(l1d), 48 << 10);
        assert_eq!(size(cpu.native_cpuid(4, 1)), 32 << 10);
        let l2 = cpu.native_cpuid(4, 2);
        assert_eq!(size(l2), 2 << 20);
        assert_eq!(
            cpu.native_cpuid(0x8000_0006, 0)[2] >> 16,
            2048,
            "L2 KiB as leaf 4"
        );
        for n in 0..4 {
            let r = cpu.native_cpuid(4, n);
            assert_eq!(r[1] & 0xFFF, 63, "line size of cache {n}");
            assert_eq!(r[0] >> 14, 0, "not shared");
        }
        assert_eq!(cpu.native_cpuid(4, 4)[0] & 0x1F, 0, "no fifth cache");
        assert_eq!(cpu.native_cpuid(2, 0)[0], 0xFF01, "leaf 2 defers to leaf 4");
    }

    #[test]
    fn frequency_leaf_matches_the_tsc_of_leaf_0x15() {
        let cpu = cpu();
        let [den, num, crystal, _] = cpu.native_cpuid(0x15, 0);
        let tsc_mhz = u64::from(crystal) * u64::from(num) / u64::from(den) / 1_000_000;
        assert_eq!(tsc_mhz, 2000);
        let f = cpu.native_cpuid(0x16, 0);
        assert_eq!(
            (u64::from(f[0]), u64::from(f[1]), f[2]),
            (tsc_mhz, tsc_mhz, 100)
        );
        let mut model = CpuModel {
            tsc_ratio_numerator: 120,
            ..CpuModel::default()
        };
        assert_eq!(model.cpuid(0x16, 0)[0], 3000);
        model.tsc_ratio_denominator = 0;
        assert_eq!(model.cpuid(0x16, 0)[0], 0, "no TSC frequency enumerated");
    }

    #[test]
    fn maximum_leaves_brand_string_and_leaves_beyond_them() {
        let cpu = cpu();
        assert_eq!(cpu.native_cpuid(0, 0)[0], 0x16);
        assert_eq!(cpu.native_cpuid(0x8000_0000, 0)[0], 0x8000_0008);
        let brand: Vec<u8> = (0x8000_0002..=0x8000_0004)
            .flat_map(|l| cpu.native_cpuid(l, 0))
            .flat_map(u32::to_le_bytes)
            .collect();
        assert_eq!(&brand[..22], b"Vigil soft x86-64 CPU\0");
        assert_eq!(cpu.native_cpuid(0x8000_0007, 0)[3], 1 << 8, "invariant TSC");
        // Above the highest basic or extended leaf: the highest basic leaf.
        let top = cpu.native_cpuid(0x16, 0);
        assert_eq!(cpu.native_cpuid(0x17, 0), top);
        assert_eq!(cpu.native_cpuid(0x4000_0000, 0), top);
        assert_eq!(cpu.native_cpuid(0x8000_0009, 0), top);
        // Within range and not described: zero (leaf 3, 5, 6, 0xA, 0x80000005).
        for leaf in [3, 5, 6, 0xA, 0x8000_0005] {
            assert_eq!(cpu.native_cpuid(leaf, 0), [0; 4], "{leaf:#x}");
        }
    }
}
