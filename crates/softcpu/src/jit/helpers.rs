//! Functions translated code calls for what it does not do inline: data
//! accesses off the fast path, instructions it hands back to the
//! interpreter, and flag evaluations that need the full record.
//!
//! Every helper takes the [`Frame`] the block runs on. A helper that can
//! stop the block stores the reason in [`Frame::stop`] and returns
//! [`STOP`]; translated code then returns at once.

#![allow(unsafe_code)]

use super::frame::Frame;
use crate::cpu::SoftCpu;
use crate::decode::Op;
use crate::exec::lazy::Lazy;
use crate::state::Seg;
use iced_x86::ConditionCode;

/// The helper finished; the block goes on.
pub(crate) const OK: u32 = 0;
/// The instruction stopped (fault or VM exit in [`Frame::stop`]); the
/// frame holds the state to leave with.
pub(crate) const STOP: u32 = 1;
/// The instruction finished, and the block must end after it (a branch was
/// taken, or code was written); the frame holds the state to leave with.
pub(crate) const LEAVE: u32 = 2;

fn seg_of(n: u32) -> Seg {
    match n {
        0 => Seg::Es,
        1 => Seg::Cs,
        2 => Seg::Ss,
        4 => Seg::Fs,
        5 => Seg::Gs,
        _ => Seg::Ds,
    }
}

/// Reads `size` bytes at `offset` in segment `seg` the interpreter's way;
/// the value goes to [`Frame::scratch`].
pub(crate) extern "C" fn load(frame: *mut Frame, seg: u32, offset: u64, size: u32) -> u32 {
    // SAFETY: translated code passes the frame the dispatcher handed it,
    // alive and not otherwise borrowed while the block runs; its `cpu`
    // points to the processor the dispatcher runs, whose other borrows
    // are not in use until the block returns.
    let (frame, cpu) = unsafe { (&mut *frame, &mut *(*frame).cpu) };
    match cpu.read_mem(seg_of(seg), offset, size as usize) {
        Ok(v) => {
            frame.scratch = v;
            OK
        }
        Err(stop) => {
            frame.stop = Some(stop);
            STOP
        }
    }
}

/// Writes `size` bytes at `offset` in segment `seg` the interpreter's way;
/// [`LEAVE`] when the write hit a page with decoded code.
pub(crate) extern "C" fn store(
    frame: *mut Frame,
    seg: u32,
    offset: u64,
    size: u32,
    value: u64,
) -> u32 {
    // SAFETY: as in `load`.
    let (frame, cpu) = unsafe { (&mut *frame, &mut *(*frame).cpu) };
    match cpu.write_mem(seg_of(seg), offset, size as usize, value) {
        Ok(()) if cpu.mem.has_dirty_code() => LEAVE,
        Ok(()) => OK,
        Err(stop) => {
            frame.stop = Some(stop);
            STOP
        }
    }
}

/// [`ExitSite::op`] of a site that interprets nothing.
pub(crate) const NO_OP: usize = usize::MAX;

/// What translated code leaves with at one exit site: everything but the
/// flag values is known when the block is translated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExitSite {
    /// What the block returns (`super::EXIT_*`).
    pub status: u32,
    /// The flag state's kind and constants (`translate::packed_flags`).
    pub packed: u64,
    /// RIP and the interpreter's `next_rip` to leave with.
    pub rip: u64,
    pub next_rip: u64,
    /// Instructions of the current pass retired, and charged, at the site.
    pub done: u64,
    pub charged: u64,
    /// The length of the instruction that stops here (0 where none does).
    pub len: u32,
    /// RIP and `next_rip` are the frame's scratch value, not `rip` (a
    /// return's target).
    pub dynamic: bool,
    /// The instruction interpreted at this site: its index in the block
    /// as translated ([`NO_OP`] for an exit), then, once the translation
    /// is bound to its block (`super::Native::bind`), its address — an
    /// address rather than a pointer, so that blocks stay `Send`.
    pub op: usize,
}

/// The frame, the processor and site `index` of the running block.
///
/// # Safety
/// `frame` is the frame the dispatcher handed the running block (alive, not
/// otherwise borrowed, its `cpu` the processor it runs, whose other borrows
/// are idle until the block returns), and `index` numbers one of the
/// block's sites (`frame.sites`; the translator numbers them).
unsafe fn at_site<'a>(frame: *mut Frame, index: u64) -> (&'a mut Frame, &'a mut SoftCpu, ExitSite) {
    // SAFETY: see the function's contract.
    unsafe {
        let site = *(*frame).sites.add(index as usize);
        let cpu = &mut *(*frame).cpu;
        (&mut *frame, cpu, site)
    }
}

/// Leaves at exit site `index` with flag values `a`, `b`, `r`, `cf`:
/// writes the flags, RIP, time and count into the frame (which holds the
/// time and count of the start of the current pass) and returns the
/// site's status.
pub(crate) extern "C" fn exit(
    frame: *mut Frame,
    index: u64,
    a: u64,
    b: u64,
    r: u64,
    cf: u64,
) -> u32 {
    // SAFETY: translated code passes its frame and one of its sites.
    let (frame, cpu, site) = unsafe { at_site(frame, index) };
    leave_at(cpu, frame, &site, [a, b, r, cf]);
    frame.stop_len = site.len;
    site.status
}

/// The processor's state at `site` (its registers are already there).
fn leave_at(cpu: &mut SoftCpu, frame: &Frame, site: &ExitSite, values: [u64; 4]) {
    materialize(cpu, site.packed, values);
    let (rip, next_rip) = if site.dynamic {
        (frame.scratch, frame.scratch)
    } else {
        (site.rip, site.next_rip)
    };
    cpu.s.rip = rip;
    cpu.next_rip = next_rip;
    cpu.cycles = frame
        .cycles
        .wrapping_add(site.charged.wrapping_mul(frame.ic));
    cpu.retired = frame.retired.wrapping_add(site.done);
}

/// Writes a flag state the translated code tracked into the processor:
/// `packed` holds the kind in bits 7:0 (0: nothing, the processor has
/// them; 1: a lazy record; 2: a shift, its count in CF-in; 3: a signed
/// multiply; 4: an add or subtract with carry; 5: the status bits, in
/// `r`), the lazy operation, shift kind or borrow in 15:8 and the size in
/// 23:16; `values` are the state's a, b, r and CF-in (see
/// `translate::FlagState`).
fn materialize(cpu: &mut SoftCpu, packed: u64, values: [u64; 4]) {
    let [a, b, r, cf] = values;
    match packed & 0xFF {
        0 => {}
        1 => {
            cpu.lazy = Lazy {
                op: (packed >> 8) as u8,
                size: (packed >> 16) as u8,
                cf_in: cf & 1 != 0,
                a,
                b,
                r,
            }
        }
        _ => cpu.set_status(status(packed, a, b, r, cf)),
    }
}
/// Runs the instruction of site `index` in the interpreter: the frame,
/// brought to the state before it (flag values `a`, `b`, `r`, `cf`), goes
/// to the processor and comes back afterwards. [`OK`]: the block goes on,
/// and the frame's time and count are those of the start of the pass
/// again; otherwise the frame is the state to leave with.
pub(crate) extern "C" fn interpret(
    frame: *mut Frame,
    index: u64,
    a: u64,
    b: u64,
    r: u64,
    cf: u64,
) -> u32 {
    // SAFETY: translated code passes its frame and one of its sites.
    let (frame, cpu, site) = unsafe { at_site(frame, index) };
    // SAFETY: an interpreting site's `op` is the address of an instruction
    // of the block being run, which the dispatcher holds unchanged until
    // the block returns.
    let op = unsafe { &*(site.op as *const Op) };
    frame.stale = true;
    leave_at(cpu, frame, &site, [a, b, r, cf]);
    let result = (op.handler)(cpu, op);
    let status = match result {
        Ok(()) => {
            cpu.s.rip = cpu.next_rip;
            cpu.retired += 1;
            if cpu.next_rip != op.next_ip || cpu.mem.has_dirty_code() {
                LEAVE
            } else {
                OK
            }
        }
        Err(stop) => {
            frame.stop = Some(stop);
            frame.stop_len = site.len;
            STOP
        }
    };
    if status == OK {
        // The frame counts from the start of the pass again (time the
        // interpreter charged of its own stays charged).
        frame.cycles = cpu.cycles.wrapping_sub(site.charged.wrapping_mul(frame.ic));
        frame.retired = cpu.retired.wrapping_sub(site.done + 1);
    }
    status
}

/// A condition code against the processor's flags.
pub(crate) extern "C" fn condition_frame(frame: *const Frame, cc: u32) -> u32 {
    // SAFETY: as in `load` (read only).
    let cpu = unsafe { &*(*frame).cpu };
    u32::from(crate::exec::condition_of(
        &cpu.lazy,
        cpu.s.rflags,
        condition_code(cc),
    ))
}

/// The processor's status flags.
pub(crate) extern "C" fn status_frame(frame: *const Frame) -> u64 {
    // SAFETY: as in `load` (read only).
    let cpu = unsafe { &*(*frame).cpu };
    cpu.status_flags()
}

/// CF of the processor's flags.
pub(crate) extern "C" fn carry_frame(frame: *const Frame) -> u64 {
    // SAFETY: as in `load` (read only).
    let cpu = unsafe { &*(*frame).cpu };
    cpu.status_flags() & x86::rflags::CF
}

/// The status flags of the flag state `packed` (as in [`materialize`])
/// with values `a`, `b`, `r` and `cf`, each computed as the interpreter's
/// handler for the instruction that set them computes it.
pub(crate) extern "C" fn status(packed: u64, a: u64, b: u64, r: u64, cf: u64) -> u64 {
    use crate::exec::flags;
    let kind = (packed >> 8) as u8;
    let size = (packed >> 16) as u8;
    let carry = cf & 1 != 0;
    match packed & 0xFF {
        1 => Lazy {
            op: kind,
            size,
            cf_in: carry,
            a,
            b,
            r,
        }
        .status(),
        2 => shift_status(u32::from(kind), u32::from(size), a, cf as u32),
        3 => {
            let of = if carry {
                x86::rflags::CF | x86::rflags::OF
            } else {
                0
            };
            flags::szp(usize::from(size), r) | of
        }
        4 if kind != 0 => flags::sub(usize::from(size), a, b, carry).1,
        4 => flags::add(usize::from(size), a, b, carry).1,
        5 => r,
        _ => 0,
    }
}

/// The status flags of a shift (`kind`: 0 SHL, 1 SHR, 2 SAR) of `a`,
/// `size` bytes wide, by `count` (not 0, masked as the processor masks
/// it).
fn shift_status(kind: u32, size: u32, a: u64, count: u32) -> u64 {
    let m = match kind {
        0 => iced_x86::Mnemonic::Shl,
        1 => iced_x86::Mnemonic::Shr,
        _ => iced_x86::Mnemonic::Sar,
    };
    crate::exec::shift_result(m, size as usize, a, count, 0).1
}

/// A condition code against status flags `status`.
pub(crate) extern "C" fn condition_status(status: u64, cc: u32) -> u32 {
    u32::from(crate::exec::condition_of(
        &Lazy::default(),
        status,
        condition_code(cc),
    ))
}

/// iced's condition code numbered `n` (1 = O … 16 = G).
pub(crate) fn condition_code(n: u32) -> ConditionCode {
    crate::exec::cond_of(u8::try_from(n).unwrap_or(0))
}
