//! The register set GDB sees: x86-64's core and SSE registers (as
//! `gdbstub_arch`'s `X86_64_SSE` lays them out), then the segment bases,
//! the control registers and EFER, described to GDB by a target
//! description of our own (features `org.gnu.gdb.i386.core`, `.sse`,
//! `.segments`, and `org.vigil.x86.sys` for CR0, CR2, CR3, CR4 and EFER).

use accel::debug::DebugRegisters;
use gdbstub::arch::{Arch, RegId, Registers};
use gdbstub_arch::x86::reg::id::X86_64CoreRegId;
use gdbstub_arch::x86::reg::{X86SegmentRegs, X86_64CoreRegs};
use std::num::NonZeroUsize;

/// x86-64 with the system registers a hypervisor debugger wants.
pub enum VigilX86_64 {}

/// Core registers, then `fs_base`, `gs_base`, `cr0`, `cr2`, `cr3`, `cr4`, `efer`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Regs {
    /// The core and SSE registers.
    pub core: X86_64CoreRegs,
    /// `fs_base`, `gs_base`, `cr0`, `cr2`, `cr3`, `cr4`, `efer`.
    pub system: [u64; 7],
}

/// Bytes of the core and SSE registers in GDB's `g` packet.
const CORE_BYTES: usize = 0x218;

impl Registers for Regs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.core.rip
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        self.core.gdb_serialize(&mut write_byte);
        for r in &self.system {
            for b in r.to_le_bytes() {
                write_byte(Some(b));
            }
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        if bytes.len() < CORE_BYTES {
            return Err(());
        }
        self.core.gdb_deserialize(&bytes[..CORE_BYTES])?;
        for (r, chunk) in self
            .system
            .iter_mut()
            .zip(bytes[CORE_BYTES..].chunks_exact(8))
        {
            *r = u64::from_le_bytes(chunk.try_into().map_err(|_| ())?);
        }
        Ok(())
    }
}

/// A register GDB names by number: 0–56 as `gdbstub_arch` numbers the
/// core and SSE registers, 57–63 `fs_base` … `efer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegNo(pub usize);

/// The first number after the core registers.
const FIRST_SYSTEM: usize = 57;

impl RegId for RegNo {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        if (FIRST_SYSTEM..FIRST_SYSTEM + 7).contains(&id) {
            return Some((RegNo(id), NonZeroUsize::new(8)));
        }
        X86_64CoreRegId::from_raw_id(id).map(|(_, size)| (RegNo(id), size))
    }
}

impl Arch for VigilX86_64 {
    type Usize = u64;
    type Registers = Regs;
    type RegId = RegNo;
    type BreakpointKind = usize;

    fn target_description_xml() -> Option<&'static str> {
        Some(TARGET_XML)
    }
}

/// GDB's order of the general-purpose registers, as indices into the
/// encoding order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8–R15).
const GDB_ORDER: [usize; 16] = [0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15];

impl Regs {
    /// GDB's view of the vCPU's registers (x87 and SSE state read as zero:
    /// the soft CPU's vector state is not shown).
    pub fn from_debug(r: &DebugRegisters) -> Regs {
        let [es, cs, ss, ds, fs, gs] = r.segments.map(u32::from);
        Regs {
            core: X86_64CoreRegs {
                regs: GDB_ORDER.map(|i| r.gpr[i]),
                eflags: r.rflags as u32,
                rip: r.rip,
                segments: X86SegmentRegs {
                    cs,
                    ss,
                    ds,
                    es,
                    fs,
                    gs,
                },
                ..X86_64CoreRegs::default()
            },
            system: [r.fs_base, r.gs_base, r.cr0, r.cr2, r.cr3, r.cr4, r.efer],
        }
    }

    /// `base` with GDB's general-purpose registers, RIP and RFLAGS.
    pub fn to_debug(&self, base: &DebugRegisters) -> DebugRegisters {
        let mut r = *base;
        for (gdb, &enc) in GDB_ORDER.iter().enumerate() {
            r.gpr[enc] = self.core.regs[gdb];
        }
        r.rip = self.core.rip;
        r.rflags = (base.rflags & !0xFFFF_FFFF) | u64::from(self.core.eflags);
        r
    }
}

/// The target description: the register numbers follow the order of
/// [`Regs::gdb_serialize`].
const TARGET_XML: &str = r#"<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
<architecture>i386:x86-64</architecture>
<feature name="org.gnu.gdb.i386.core">
<reg name="rax" bitsize="64" type="int64" regnum="0"/>
<reg name="rbx" bitsize="64" type="int64"/>
<reg name="rcx" bitsize="64" type="int64"/>
<reg name="rdx" bitsize="64" type="int64"/>
<reg name="rsi" bitsize="64" type="int64"/>
<reg name="rdi" bitsize="64" type="int64"/>
<reg name="rbp" bitsize="64" type="data_ptr"/>
<reg name="rsp" bitsize="64" type="data_ptr"/>
<reg name="r8" bitsize="64" type="int64"/>
<reg name="r9" bitsize="64" type="int64"/>
<reg name="r10" bitsize="64" type="int64"/>
<reg name="r11" bitsize="64" type="int64"/>
<reg name="r12" bitsize="64" type="int64"/>
<reg name="r13" bitsize="64" type="int64"/>
<reg name="r14" bitsize="64" type="int64"/>
<reg name="r15" bitsize="64" type="int64"/>
<reg name="rip" bitsize="64" type="code_ptr"/>
<reg name="eflags" bitsize="32" type="int32"/>
<reg name="cs" bitsize="32" type="int32"/>
<reg name="ss" bitsize="32" type="int32"/>
<reg name="ds" bitsize="32" type="int32"/>
<reg name="es" bitsize="32" type="int32"/>
<reg name="fs" bitsize="32" type="int32"/>
<reg name="gs" bitsize="32" type="int32"/>
<reg name="st0" bitsize="80" type="i387_ext"/>
<reg name="st1" bitsize="80" type="i387_ext"/>
<reg name="st2" bitsize="80" type="i387_ext"/>
<reg name="st3" bitsize="80" type="i387_ext"/>
<reg name="st4" bitsize="80" type="i387_ext"/>
<reg name="st5" bitsize="80" type="i387_ext"/>
<reg name="st6" bitsize="80" type="i387_ext"/>
<reg name="st7" bitsize="80" type="i387_ext"/>
<reg name="fctrl" bitsize="32" type="int" group="float"/>
<reg name="fstat" bitsize="32" type="int" group="float"/>
<reg name="ftag" bitsize="32" type="int" group="float"/>
<reg name="fiseg" bitsize="32" type="int" group="float"/>
<reg name="fioff" bitsize="32" type="int" group="float"/>
<reg name="foseg" bitsize="32" type="int" group="float"/>
<reg name="fooff" bitsize="32" type="int" group="float"/>
<reg name="fop" bitsize="32" type="int" group="float"/>
</feature>
<feature name="org.gnu.gdb.i386.sse">
<vector id="v2i64" type="int64" count="2"/>
<reg name="xmm0" bitsize="128" type="v2i64" regnum="40"/>
<reg name="xmm1" bitsize="128" type="v2i64"/>
<reg name="xmm2" bitsize="128" type="v2i64"/>
<reg name="xmm3" bitsize="128" type="v2i64"/>
<reg name="xmm4" bitsize="128" type="v2i64"/>
<reg name="xmm5" bitsize="128" type="v2i64"/>
<reg name="xmm6" bitsize="128" type="v2i64"/>
<reg name="xmm7" bitsize="128" type="v2i64"/>
<reg name="xmm8" bitsize="128" type="v2i64"/>
<reg name="xmm9" bitsize="128" type="v2i64"/>
<reg name="xmm10" bitsize="128" type="v2i64"/>
<reg name="xmm11" bitsize="128" type="v2i64"/>
<reg name="xmm12" bitsize="128" type="v2i64"/>
<reg name="xmm13" bitsize="128" type="v2i64"/>
<reg name="xmm14" bitsize="128" type="v2i64"/>
<reg name="xmm15" bitsize="128" type="v2i64"/>
<reg name="mxcsr" bitsize="32" type="int" group="vector"/>
</feature>
<feature name="org.gnu.gdb.i386.segments">
<reg name="fs_base" bitsize="64" type="int64" regnum="57"/>
<reg name="gs_base" bitsize="64" type="int64"/>
</feature>
<feature name="org.vigil.x86.sys">
<reg name="cr0" bitsize="64" type="int64" regnum="59"/>
<reg name="cr2" bitsize="64" type="int64"/>
<reg name="cr3" bitsize="64" type="int64"/>
<reg name="cr4" bitsize="64" type="int64"/>
<reg name="efer" bitsize="64" type="int64"/>
</feature>
</target>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_go_to_gdb_and_back() {
        let d = DebugRegisters {
            gpr: std::array::from_fn(|i| i as u64 + 1),
            rip: 0x10_0000,
            rflags: 0x246,
            segments: [0x18, 0x10, 0x18, 0x18, 0, 0],
            cr0: 0x8000_0011,
            efer: 0x500,
            ..DebugRegisters::default()
        };
        let r = Regs::from_debug(&d);
        assert_eq!(r.core.regs[1], 4, "rbx second");
        assert_eq!(r.core.regs[7], 5, "rsp eighth");
        assert_eq!(r.core.segments.cs, 0x10);
        let mut bytes = Vec::new();
        r.gdb_serialize(|b| bytes.push(b.unwrap()));
        assert_eq!(bytes.len(), CORE_BYTES + 7 * 8);
        let mut back = Regs::default();
        back.gdb_deserialize(&bytes).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.to_debug(&d), d);
        assert_eq!(RegNo::from_raw_id(59).map(|r| r.0), Some(RegNo(59)), "cr0");
        assert_eq!(RegNo::from_raw_id(64).map(|r| r.0), None);
        // 57 core registers are numbered before ours.
        assert!(TARGET_XML.contains("regnum=\"57\""));
        assert_eq!(TARGET_XML.matches("<reg ").count(), FIRST_SYSTEM + 7);
    }
}
