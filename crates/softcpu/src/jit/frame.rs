//! The frame translated code runs on: the part of the processor's state a
//! block reads and writes, and the environment its memory fast path needs,
//! in a fixed (`repr(C)`) layout that the generated code addresses by
//! offset. The dispatcher fills it from the [`SoftCpu`] before a block and
//! copies it back after; helpers called from a block see it too.

use crate::cpu::SoftCpu;
use crate::fault::Stop;
use crate::mmu::{F_DIRTY, F_USER, F_WRITABLE};
use crate::state::Seg;
use std::mem::offset_of;

/// [`Frame::plain`]: RDTSC only reads the TSC (no fault, no exit).
pub(crate) const PLAIN_RDTSC: u64 = 1;
/// [`Frame::plain`]: RDTSCP only reads the TSC and TSC_AUX.
pub(crate) const PLAIN_RDTSCP: u64 = 2;
/// [`Frame::plain`]: PAUSE does nothing.
pub(crate) const PLAIN_PAUSE: u64 = 4;

/// A `need` mask no TLB entry's flags can satisfy: every access takes the
/// helper (the checks the fast path skips may apply).
pub(crate) const NEED_NEVER: u64 = 0x100;

/// The environment of one run of translated code, and the time and count
/// of the start of the current pass. Translated code reads and writes the
/// guest registers in the processor itself (through [`Frame::gpr`]); the
/// helpers write everything else a block changes straight into the
/// processor.
#[repr(C)]
pub(crate) struct Frame {
    /// Virtual time at the start of the current pass.
    pub cycles: u64,
    /// Instructions retired at the start of the current pass.
    pub retired: u64,
    /// A value a helper returns (the load helper's data).
    pub scratch: u64,
    /// The processor's general registers (RAX … R15).
    pub gpr: u64,
    /// The block may start another pass only while `cycles` plus its cost
    /// stays at or below this.
    pub horizon: u64,
    /// Virtual cycles per instruction.
    pub ic: u64,
    /// First byte of physical memory.
    pub mem: u64,
    /// Size of physical memory in bytes.
    pub mem_len: u64,
    /// First TLB entry.
    pub tlb: u64,
    /// The code-page bitmap.
    pub code_pages: u64,
    /// TLB flags a read needs on the fast path.
    pub need_read: u64,
    /// TLB flags a write needs on the fast path.
    pub need_write: u64,
    /// Outside 64-bit mode: bit n set when segment n is flat (base 0,
    /// limit 4 GiB − 1, a present, usable, writable, expand-up data
    /// segment), so the segment checks cannot fail below 4 GiB.
    pub flat: u64,
    /// FS base (64-bit mode).
    pub fs_base: u64,
    /// GS base (64-bit mode).
    pub gs_base: u64,
    /// CS limit (near branches outside 64-bit mode are checked against it).
    pub cs_limit: u64,
    /// What the translated code may do without the interpreter's checks:
    /// [`PLAIN_RDTSC`], [`PLAIN_RDTSCP`], [`PLAIN_PAUSE`].
    pub plain: u64,
    /// The guest's TSC less virtual time.
    pub tsc_delta: u64,
    /// IA32_TSC_AUX (what RDTSCP reads into ECX).
    pub tsc_aux: u64,
    /// The processor, for helpers.
    pub cpu: *mut SoftCpu,
    /// The running block's exit sites, for helpers.
    pub sites: *const super::helpers::ExitSite,
    /// What stopped the block when it returns [`super::EXIT_STOP`].
    pub stop: Option<Stop>,
    /// The length of the instruction that stopped the block.
    pub stop_len: u32,
    /// Set when the interpreter ran an instruction for the block: it may
    /// have changed what the environment was built from (CPL, control
    /// registers, segments), so the next block gets a fresh frame.
    pub stale: bool,
}

/// Byte offsets of the frame's fields, for the code generator.
pub(crate) mod at {
    use super::*;
    pub const CYCLES: i32 = offset_of!(Frame, cycles) as i32;
    pub const RETIRED: i32 = offset_of!(Frame, retired) as i32;
    pub const SCRATCH: i32 = offset_of!(Frame, scratch) as i32;
    pub const GPR: i32 = offset_of!(Frame, gpr) as i32;
    pub const HORIZON: i32 = offset_of!(Frame, horizon) as i32;
    pub const IC: i32 = offset_of!(Frame, ic) as i32;
    pub const MEM: i32 = offset_of!(Frame, mem) as i32;
    pub const MEM_LEN: i32 = offset_of!(Frame, mem_len) as i32;
    pub const TLB: i32 = offset_of!(Frame, tlb) as i32;
    pub const CODE_PAGES: i32 = offset_of!(Frame, code_pages) as i32;
    pub const NEED_READ: i32 = offset_of!(Frame, need_read) as i32;
    pub const NEED_WRITE: i32 = offset_of!(Frame, need_write) as i32;
    pub const FLAT: i32 = offset_of!(Frame, flat) as i32;
    pub const FS_BASE: i32 = offset_of!(Frame, fs_base) as i32;
    pub const GS_BASE: i32 = offset_of!(Frame, gs_base) as i32;
    pub const CS_LIMIT: i32 = offset_of!(Frame, cs_limit) as i32;
    pub const PLAIN: i32 = offset_of!(Frame, plain) as i32;
    pub const TSC_DELTA: i32 = offset_of!(Frame, tsc_delta) as i32;
    pub const TSC_AUX: i32 = offset_of!(Frame, tsc_aux) as i32;
    pub const CPU: i32 = offset_of!(Frame, cpu) as i32;
}

/// Byte offsets of the processor's fields an exit writes, for the code
/// generator (translated code leaves through the common exits without a
/// helper: see `helpers::exit` for what it writes).
pub(crate) mod cpu_at {
    use crate::cpu::SoftCpu;
    use std::mem::offset_of;
    pub const RIP: i32 = offset_of!(SoftCpu, s.rip) as i32;
    pub const NEXT_RIP: i32 = offset_of!(SoftCpu, next_rip) as i32;
    pub const CYCLES: i32 = offset_of!(SoftCpu, cycles) as i32;
    pub const RETIRED: i32 = offset_of!(SoftCpu, retired) as i32;
    pub const LAZY_OP: i32 = offset_of!(SoftCpu, lazy.op) as i32;
    pub const LAZY_SIZE: i32 = offset_of!(SoftCpu, lazy.size) as i32;
    pub const LAZY_CF_IN: i32 = offset_of!(SoftCpu, lazy.cf_in) as i32;
    pub const LAZY_A: i32 = offset_of!(SoftCpu, lazy.a) as i32;
    pub const LAZY_B: i32 = offset_of!(SoftCpu, lazy.b) as i32;
    pub const LAZY_R: i32 = offset_of!(SoftCpu, lazy.r) as i32;
}

impl Frame {
    /// A frame for `cpu` about to run a block with time up to `horizon`.
    pub(crate) fn new(cpu: &mut SoftCpu, horizon: u64) -> Frame {
        let (mem, mem_len, code_pages) = cpu.mem.raw_parts();
        let user = cpu.s.cpl() == 3;
        // The fast path is exactly the interpreter's TLB hit; whatever else
        // an access may have to look at sends every access to the helper.
        let checks = cpu.debug.data_bp
            || cpu.mmio.is_some()
            || (user && cpu.s.cr0 & x86::cr::CR0_AM != 0 && cpu.s.rflags & x86::rflags::AC != 0);
        let (need_read, need_write) = if checks {
            (NEED_NEVER, NEED_NEVER)
        } else if user {
            (u64::from(F_USER), u64::from(F_USER | F_WRITABLE | F_DIRTY))
        } else if cpu.s.cr0 & x86::cr::CR0_WP != 0 {
            (0, u64::from(F_WRITABLE | F_DIRTY))
        } else {
            (0, u64::from(F_DIRTY))
        };
        Frame {
            cycles: cpu.cycles,
            retired: cpu.retired,
            scratch: 0,
            gpr: cpu.s.gpr.as_mut_ptr() as u64,
            horizon,
            ic: cpu.instruction_cycles,
            mem: mem as u64,
            mem_len,
            tlb: cpu.tlb.entries_ptr() as u64,
            code_pages: code_pages as u64,
            need_read,
            need_write,
            flat: flat_segments(cpu),
            fs_base: cpu.s.seg[Seg::Fs as usize].base,
            gs_base: cpu.s.seg[Seg::Gs as usize].base,
            cs_limit: u64::from(cpu.s.seg[Seg::Cs as usize].limit),
            plain: plain_bits(cpu),
            tsc_delta: cpu.guest_tsc().wrapping_sub(cpu.cycles),
            tsc_aux: cpu.s.msr.tsc_aux & 0xFFFF_FFFF,
            cpu: cpu as *mut SoftCpu,
            sites: std::ptr::null(),
            stop: None,
            stop_len: 0,
            stale: false,
        }
    }
}
/// The [`Frame::plain`] bits for the processor's state.
fn plain_bits(cpu: &SoftCpu) -> u64 {
    let mut bits = 0;
    if cpu.reads_tsc_plainly(false) {
        bits |= PLAIN_RDTSC;
    }
    if cpu.reads_tsc_plainly(true) {
        bits |= PLAIN_RDTSCP;
    }
    if cpu.pauses_plainly() {
        bits |= PLAIN_PAUSE;
    }
    bits
}

/// The [`Frame::flat`] bits for the current segments.
fn flat_segments(cpu: &SoftCpu) -> u64 {
    use x86::segment::{AR_P, AR_UNUSABLE, TYPE_CODE, TYPE_EC, TYPE_RW};
    if cpu.s.mode64() || cpu.s.cr0 & x86::cr::CR0_PE == 0 || cpu.s.rflags & x86::rflags::VM != 0 {
        return 0;
    }
    let mut bits = 0;
    for (n, s) in cpu.s.seg.iter().enumerate() {
        let ty = s.ar & 0xF;
        if s.ar & AR_UNUSABLE == 0
            && s.ar & AR_P != 0
            && ty & (TYPE_CODE | TYPE_EC) == 0
            && ty & TYPE_RW != 0
            && s.base == 0
            && s.limit == 0xFFFF_FFFF
        {
            bits |= 1 << n;
        }
    }
    bits
}
