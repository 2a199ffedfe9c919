//! Control-register and EFER bits (SDM Vol. 3A §2.5, §2.2.1).

/// CR0.PE: protection enable.
pub const CR0_PE: u64 = 1 << 0;
/// CR0.MP: monitor coprocessor.
pub const CR0_MP: u64 = 1 << 1;
/// CR0.EM: x87 emulation.
pub const CR0_EM: u64 = 1 << 2;
/// CR0.TS: task switched.
pub const CR0_TS: u64 = 1 << 3;
/// CR0.ET: extension type (hard-wired to 1 on modern CPUs).
pub const CR0_ET: u64 = 1 << 4;
/// CR0.NE: numeric error.
pub const CR0_NE: u64 = 1 << 5;
/// CR0.WP: write protect for supervisor writes.
pub const CR0_WP: u64 = 1 << 16;
/// CR0.AM: alignment mask.
pub const CR0_AM: u64 = 1 << 18;
/// CR0.NW: not write-through.
pub const CR0_NW: u64 = 1 << 29;
/// CR0.CD: cache disable.
pub const CR0_CD: u64 = 1 << 30;
/// CR0.PG: paging.
pub const CR0_PG: u64 = 1 << 31;

/// CR4.VME: virtual-8086 mode extensions.
pub const CR4_VME: u64 = 1 << 0;
/// CR4.PVI: protected-mode virtual interrupts.
pub const CR4_PVI: u64 = 1 << 1;
/// CR4.TSD: time stamp disable.
pub const CR4_TSD: u64 = 1 << 2;
/// CR4.DE: debugging extensions.
pub const CR4_DE: u64 = 1 << 3;
/// CR4.PSE: page size extensions.
pub const CR4_PSE: u64 = 1 << 4;
/// CR4.PAE: physical address extension.
pub const CR4_PAE: u64 = 1 << 5;
/// CR4.MCE: machine-check enable.
pub const CR4_MCE: u64 = 1 << 6;
/// CR4.PGE: global pages.
pub const CR4_PGE: u64 = 1 << 7;
/// CR4.PCE: performance-counter enable.
pub const CR4_PCE: u64 = 1 << 8;
/// CR4.OSFXSR: OS supports FXSAVE/FXRSTOR.
pub const CR4_OSFXSR: u64 = 1 << 9;
/// CR4.OSXMMEXCPT: OS supports unmasked SIMD exceptions.
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
/// CR4.VMXE: VMX enable.
pub const CR4_VMXE: u64 = 1 << 13;

/// EFER.SCE: SYSCALL enable.
pub const EFER_SCE: u64 = 1 << 0;
/// EFER.LME: long mode enable.
pub const EFER_LME: u64 = 1 << 8;
/// EFER.LMA: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// EFER.NXE: no-execute enable.
pub const EFER_NXE: u64 = 1 << 11;
