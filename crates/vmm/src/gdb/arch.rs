//! The register sets GDB sees, in either of two target descriptions
//! chosen when GDB attaches ([`GdbArch`]): x86-64's core and SSE registers
//! (as `gdbstub_arch`'s `X86_64_SSE` lays them out) or i386's (as its
//! `X86_SSE` does), then the segment bases, the control registers and
//! EFER, described to GDB by target descriptions of our own (features
//! `org.gnu.gdb.i386.core`, `.sse`, `.segments` (x86-64 only), and
//! `org.vigil.x86.sys` for CR0, CR2, CR3, CR4 and EFER).

use accel::debug::DebugRegisters;
use gdbstub::arch::{Arch, RegId, Registers};
use gdbstub_arch::x86::reg::id::X86_64CoreRegId;
use gdbstub_arch::x86::reg::{X86CoreRegs, X86SegmentRegs, X86_64CoreRegs};
use std::num::NonZeroUsize;

/// The target description GDB gets: GDB fixes it for the whole session,
/// and it must match the ELF file GDB debugs (GDB refuses registers of the
/// other width).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GdbArch {
    /// 32-bit x86 (`i386`): 32-bit registers, code disassembled as 32-bit.
    I386,
    /// x86-64 (`i386:x86-64`).
    #[default]
    X86_64,
}

impl GdbArch {
    /// The description that fits a vCPU with these registers: x86-64 in
    /// long mode (EFER.LMA), i386 otherwise.
    pub fn of_mode(r: &DebugRegisters) -> GdbArch {
        const EFER_LMA: u64 = 1 << 10;
        if r.efer & EFER_LMA != 0 {
            GdbArch::X86_64
        } else {
            GdbArch::I386
        }
    }

    /// GDB's name of the architecture.
    pub fn name(self) -> &'static str {
        match self {
            GdbArch::I386 => "i386",
            GdbArch::X86_64 => "i386:x86-64",
        }
    }

    /// The target description (`target.xml`).
    pub fn target_xml(self) -> &'static str {
        match self {
            GdbArch::I386 => TARGET_XML_I386,
            GdbArch::X86_64 => TARGET_XML,
        }
    }

    /// Bytes of each system register after the core ones: `fs_base`,
    /// `gs_base`, `cr0`, `cr2`, `cr3`, `cr4`, `efer`. In i386 the segment
    /// bases (as GDB's own `32bit-segments.xml`) and the control registers
    /// (32 bits outside long mode, SDM Vol. 3A 2.5) are 4 bytes; EFER is a
    /// 64-bit MSR in both.
    fn system_sizes(self) -> [usize; 7] {
        match self {
            GdbArch::I386 => [4, 4, 4, 4, 4, 4, 8],
            GdbArch::X86_64 => [8; 7],
        }
    }

    /// Bytes of the core and SSE registers in GDB's `g` packet.
    fn core_bytes(self) -> usize {
        match self {
            GdbArch::I386 => 0x134,
            GdbArch::X86_64 => 0x218,
        }
    }

    /// Bytes of the whole `g` packet.
    fn packet_bytes(self) -> usize {
        self.core_bytes() + self.system_sizes().iter().sum::<usize>()
    }
}

impl std::fmt::Display for GdbArch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// x86 with the system registers a hypervisor debugger wants, in the
/// layout of the session's [`GdbArch`]; `gdbstub` sees x86-64's
/// description, which the stub overrides with the session's.
pub enum VigilX86 {}

/// The registers GDB reads and writes, in the layout of `arch`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Regs {
    /// The layout.
    pub arch: GdbArch,
    /// The vCPU's registers (x87 and SSE state read as zero: the soft
    /// CPU's vector state is not shown). In i386 only their low halves go
    /// to GDB.
    pub cpu: DebugRegisters,
}

impl Registers for Regs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.cpu.rip
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        match self.arch {
            GdbArch::I386 => core32(&self.cpu).gdb_serialize(&mut write_byte),
            GdbArch::X86_64 => core64(&self.cpu).gdb_serialize(&mut write_byte),
        }
        for (r, size) in system(&self.cpu).iter().zip(self.arch.system_sizes()) {
            for b in &r.to_le_bytes()[..size] {
                write_byte(Some(*b));
            }
        }
    }

    /// The layout is the one whose packet has this length.
    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        let arch = [GdbArch::I386, GdbArch::X86_64]
            .into_iter()
            .find(|a| a.packet_bytes() == bytes.len())
            .ok_or(())?;
        let (core, rest) = bytes.split_at(arch.core_bytes());
        let mut cpu = DebugRegisters::default();
        match arch {
            GdbArch::I386 => {
                let mut c = X86CoreRegs::default();
                c.gdb_deserialize(core)?;
                let gpr = [c.eax, c.ecx, c.edx, c.ebx, c.esp, c.ebp, c.esi, c.edi];
                for (r, v) in cpu.gpr.iter_mut().zip(gpr) {
                    *r = v.into();
                }
                cpu.rip = c.eip.into();
                cpu.rflags = c.eflags.into();
            }
            GdbArch::X86_64 => {
                let mut c = X86_64CoreRegs::default();
                c.gdb_deserialize(core)?;
                for (gdb, &enc) in GDB_ORDER.iter().enumerate() {
                    cpu.gpr[enc] = c.regs[gdb];
                }
                cpu.rip = c.rip;
                cpu.rflags = c.eflags.into();
            }
        }
        let mut values = [0u64; 7];
        let mut at = 0;
        for (v, size) in values.iter_mut().zip(arch.system_sizes()) {
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(rest.get(at..at + size).ok_or(())?);
            *v = u64::from_le_bytes(b);
            at += size;
        }
        [
            cpu.fs_base,
            cpu.gs_base,
            cpu.cr0,
            cpu.cr2,
            cpu.cr3,
            cpu.cr4,
            cpu.efer,
        ] = values;
        *self = Regs { arch, cpu };
        Ok(())
    }
}

/// `fs_base`, `gs_base`, `cr0`, `cr2`, `cr3`, `cr4`, `efer`.
fn system(r: &DebugRegisters) -> [u64; 7] {
    [r.fs_base, r.gs_base, r.cr0, r.cr2, r.cr3, r.cr4, r.efer]
}

fn segments(r: &DebugRegisters) -> X86SegmentRegs {
    let [es, cs, ss, ds, fs, gs] = r.segments.map(u32::from);
    X86SegmentRegs {
        cs,
        ss,
        ds,
        es,
        fs,
        gs,
    }
}

fn core64(r: &DebugRegisters) -> X86_64CoreRegs {
    X86_64CoreRegs {
        regs: GDB_ORDER.map(|i| r.gpr[i]),
        eflags: r.rflags as u32,
        rip: r.rip,
        segments: segments(r),
        ..X86_64CoreRegs::default()
    }
}

/// i386's registers are the low halves; GDB orders them as the encoding.
fn core32(r: &DebugRegisters) -> X86CoreRegs {
    let g = r.gpr.map(|v| v as u32);
    X86CoreRegs {
        eax: g[0],
        ecx: g[1],
        edx: g[2],
        ebx: g[3],
        esp: g[4],
        ebp: g[5],
        esi: g[6],
        edi: g[7],
        eip: r.rip as u32,
        eflags: r.rflags as u32,
        segments: segments(r),
        ..X86CoreRegs::default()
    }
}

/// A register GDB names by number: 0–56 as `gdbstub_arch` numbers
/// x86-64's core and SSE registers, 57–63 `fs_base` … `efer`. (GDB reads
/// and writes all registers at once: the stub offers no single-register
/// access, so these numbers are never asked of it.)
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

impl Arch for VigilX86 {
    type Usize = u64;
    type Registers = Regs;
    type RegId = RegNo;
    type BreakpointKind = usize;

    fn target_description_xml() -> Option<&'static str> {
        Some(TARGET_XML)
    }
}

/// GDB's order of x86-64's general-purpose registers, as indices into the
/// encoding order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8–R15).
const GDB_ORDER: [usize; 16] = [0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15];

impl Regs {
    /// `base` with GDB's general-purpose registers, RIP and RFLAGS (in
    /// i386, their low halves; the high halves stay as they were).
    pub fn to_debug(&self, base: &DebugRegisters) -> DebugRegisters {
        let keep = match self.arch {
            GdbArch::I386 => !0xFFFF_FFFF_u64,
            GdbArch::X86_64 => 0,
        };
        let merge = |old: u64, new: u64| (old & keep) | (new & !keep);
        let shown = match self.arch {
            GdbArch::I386 => 8,
            GdbArch::X86_64 => 16,
        };
        let mut r = *base;
        for (old, new) in r.gpr.iter_mut().zip(self.cpu.gpr).take(shown) {
            *old = merge(*old, new);
        }
        r.rip = merge(base.rip, self.cpu.rip);
        // EFLAGS is 32 bits in both layouts.
        r.rflags = (base.rflags & !0xFFFF_FFFF) | (self.cpu.rflags & 0xFFFF_FFFF);
        r
    }
}

/// The segment selectors, as both descriptions have them.
macro_rules! segment_regs {
    () => {
        r#"<reg name="cs" bitsize="32" type="int32"/>
<reg name="ss" bitsize="32" type="int32"/>
<reg name="ds" bitsize="32" type="int32"/>
<reg name="es" bitsize="32" type="int32"/>
<reg name="fs" bitsize="32" type="int32"/>
<reg name="gs" bitsize="32" type="int32"/>
"#
    };
}

/// The x87 registers, as both descriptions have them.
macro_rules! x87_regs {
    () => {
        r#"<reg name="st0" bitsize="80" type="i387_ext"/>
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
"#
    };
}

/// XMM1–XMM7 (XMM0 carries the feature's first number).
macro_rules! xmm1_to_7 {
    () => {
        r#"<reg name="xmm1" bitsize="128" type="v2i64"/>
<reg name="xmm2" bitsize="128" type="v2i64"/>
<reg name="xmm3" bitsize="128" type="v2i64"/>
<reg name="xmm4" bitsize="128" type="v2i64"/>
<reg name="xmm5" bitsize="128" type="v2i64"/>
<reg name="xmm6" bitsize="128" type="v2i64"/>
<reg name="xmm7" bitsize="128" type="v2i64"/>
"#
    };
}

/// The target description: the register numbers follow the order of
/// [`Regs::gdb_serialize`].
const TARGET_XML: &str = concat!(
    r#"<?xml version="1.0"?>
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
"#,
    segment_regs!(),
    x87_regs!(),
    r#"</feature>
<feature name="org.gnu.gdb.i386.sse">
<vector id="v2i64" type="int64" count="2"/>
<reg name="xmm0" bitsize="128" type="v2i64" regnum="40"/>
"#,
    xmm1_to_7!(),
    r#"<reg name="xmm8" bitsize="128" type="v2i64"/>
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
"#,
);

/// The i386 target description: the register numbers follow the order of
/// [`Regs::gdb_serialize`] in [`GdbArch::I386`]. The segment bases are in
/// our own feature: GDB's i386 architecture without an OS ABI numbers
/// `org.gnu.gdb.i386.segments` past its last register (GDB 13 stops on an
/// internal error), while extra registers of a feature it does not know
/// are simply added.
const TARGET_XML_I386: &str = concat!(
    r#"<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
<architecture>i386</architecture>
<feature name="org.gnu.gdb.i386.core">
<reg name="eax" bitsize="32" type="int32" regnum="0"/>
<reg name="ecx" bitsize="32" type="int32"/>
<reg name="edx" bitsize="32" type="int32"/>
<reg name="ebx" bitsize="32" type="int32"/>
<reg name="esp" bitsize="32" type="data_ptr"/>
<reg name="ebp" bitsize="32" type="data_ptr"/>
<reg name="esi" bitsize="32" type="int32"/>
<reg name="edi" bitsize="32" type="int32"/>
<reg name="eip" bitsize="32" type="code_ptr"/>
<reg name="eflags" bitsize="32" type="int32"/>
"#,
    segment_regs!(),
    x87_regs!(),
    r#"</feature>
<feature name="org.gnu.gdb.i386.sse">
<vector id="v2i64" type="int64" count="2"/>
<reg name="xmm0" bitsize="128" type="v2i64" regnum="32"/>
"#,
    xmm1_to_7!(),
    r#"<reg name="mxcsr" bitsize="32" type="int" group="vector"/>
</feature>
<feature name="org.vigil.x86.sys">
<reg name="fs_base" bitsize="32" type="int32" regnum="41"/>
<reg name="gs_base" bitsize="32" type="int32"/>
<reg name="cr0" bitsize="32" type="int32"/>
<reg name="cr2" bitsize="32" type="int32"/>
<reg name="cr3" bitsize="32" type="int32"/>
<reg name="cr4" bitsize="32" type="int32"/>
<reg name="efer" bitsize="64" type="int64"/>
</feature>
</target>
"#,
);

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DebugRegisters {
        DebugRegisters {
            gpr: std::array::from_fn(|i| i as u64 + 1),
            rip: 0x10_0000,
            rflags: 0x246,
            segments: [0x18, 0x10, 0x18, 0x18, 0, 0],
            cr0: 0x8000_0011,
            efer: 0x500,
            ..DebugRegisters::default()
        }
    }

    fn serialized(r: &Regs) -> Vec<u8> {
        let mut bytes = Vec::new();
        r.gdb_serialize(|b| bytes.push(b.unwrap()));
        bytes
    }

    #[test]
    fn x86_64_registers_go_to_gdb_and_back() {
        let d = sample();
        let r = Regs {
            arch: GdbArch::X86_64,
            cpu: d,
        };
        let bytes = serialized(&r);
        assert_eq!(bytes.len(), 0x218 + 7 * 8);
        // GDB's order: rax, rbx (encoding 3, holding 4), …, rsp eighth.
        assert_eq!(bytes[8], 4, "rbx second");
        assert_eq!(bytes[7 * 8], 5, "rsp eighth");
        let mut back = Regs::default();
        back.gdb_deserialize(&bytes).unwrap();
        assert_eq!(back.arch, GdbArch::X86_64);
        assert_eq!(back.to_debug(&d), d);
        assert_eq!(back.cpu.cr0, d.cr0);
        assert_eq!(RegNo::from_raw_id(59).map(|r| r.0), Some(RegNo(59)), "cr0");
        assert_eq!(RegNo::from_raw_id(64).map(|r| r.0), None);
        // 57 core registers are numbered before ours.
        assert!(TARGET_XML.contains("regnum=\"57\""));
        assert_eq!(TARGET_XML.matches("<reg ").count(), FIRST_SYSTEM + 7);
    }

    #[test]
    fn i386_registers_are_the_low_halves_in_encoding_order() {
        let mut d = sample();
        d.gpr[0] = 0xAAAA_BBBB_0000_0001;
        let r = Regs {
            arch: GdbArch::I386,
            cpu: d,
        };
        let bytes = serialized(&r);
        assert_eq!(bytes.len(), GdbArch::I386.packet_bytes());
        assert_eq!(bytes[..4], [1, 0, 0, 0], "eax, the low half");
        assert_eq!(bytes[4], 2, "ecx second");
        assert_eq!(bytes[8 * 4..8 * 4 + 4], [0, 0, 0x10, 0], "eip after edi");
        // cr0 after the core registers and the two 4-byte segment bases.
        let cr0 = 0x134 + 8;
        assert_eq!(bytes[cr0..cr0 + 4], [0x11, 0, 0, 0x80]);
        let efer = 0x134 + 6 * 4;
        assert_eq!(bytes[efer..efer + 8], 0x500u64.to_le_bytes());
        // GDB writes eax: the high half of RAX stays, R8–R15 too.
        let mut changed = bytes.clone();
        changed[0] = 7;
        let mut back = Regs::default();
        back.gdb_deserialize(&changed).unwrap();
        assert_eq!(back.arch, GdbArch::I386);
        let w = back.to_debug(&d);
        assert_eq!(w.gpr[0], 0xAAAA_BBBB_0000_0007);
        assert_eq!(w.gpr[1..], d.gpr[1..]);
        assert_eq!(w.rip, d.rip);
        // Registers 0–47: 32 core, 8 xmm and mxcsr, 2 segment bases, 5 ours.
        assert_eq!(TARGET_XML_I386.matches("<reg ").count(), 48);
        assert!(TARGET_XML_I386.contains("regnum=\"41\""));
        // A packet of neither length is refused.
        assert!(Regs::default().gdb_deserialize(&bytes[1..]).is_err());
    }

    #[test]
    fn long_mode_picks_x86_64() {
        let mut d = sample();
        assert_eq!(GdbArch::of_mode(&d), GdbArch::X86_64, "EFER.LMA set");
        d.efer = 0;
        assert_eq!(GdbArch::of_mode(&d), GdbArch::I386);
    }
}
