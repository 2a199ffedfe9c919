//! The decode cache: instructions decoded once per physical page and reused
//! until the page is written.
//!
//! Each cached page remembers the bitness it was decoded in and the distance
//! between the instruction pointer and the physical address, because iced
//! resolves branch targets and RIP-relative operands to absolute addresses at
//! decode time; a page reached through a different mapping is decoded again.
//! Every cached instruction carries its handler, chosen once at decode time.
//! An instruction is moved out of its slot while it executes and put back
//! afterwards, so executing needs neither a copy nor shared ownership.

use crate::cpu::SoftCpu;
use crate::fault::Ex;
use iced_x86::{Decoder, DecoderOptions, Instruction};

/// The function that executes one decoded instruction.
pub(crate) type Handler = fn(&mut SoftCpu, &Op) -> Ex<()>;

/// A general-purpose register operand resolved at decode time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Gpr {
    /// Index into the register file (RAX = 0 … R15 = 15).
    pub index: u8,
    /// Width and position: see the `GPR_*` constants.
    pub kind: u8,
}

/// Low byte (AL, SPL, R8L, …).
pub(crate) const GPR_BYTE: u8 = 1;
/// Second byte (AH, CH, DH, BH).
pub(crate) const GPR_HIGH: u8 = 2;
/// 16 bits.
pub(crate) const GPR_WORD: u8 = 3;
/// 32 bits (writes zero-extend).
pub(crate) const GPR_DWORD: u8 = 4;
/// 64 bits.
pub(crate) const GPR_QWORD: u8 = 5;

impl Gpr {
    /// Resolves an iced register; `None` for anything but a general-purpose register.
    pub(crate) fn of(r: iced_x86::Register) -> Option<Gpr> {
        use iced_x86::Register as R;
        if !r.is_gpr() {
            return None;
        }
        if matches!(r, R::AH | R::CH | R::DH | R::BH) {
            return Some(Gpr {
                index: (r as u8 - R::AH as u8) & 3,
                kind: GPR_HIGH,
            });
        }
        let index = ((r.full_register() as usize - R::RAX as usize) & 15) as u8;
        let kind = match r.size() {
            1 => GPR_BYTE,
            2 => GPR_WORD,
            4 => GPR_DWORD,
            _ => GPR_QWORD,
        };
        Some(Gpr { index, kind })
    }

    /// Operand size in bytes.
    #[inline(always)]
    pub(crate) fn size(self) -> usize {
        match self.kind {
            GPR_BYTE | GPR_HIGH => 1,
            GPR_WORD => 2,
            GPR_DWORD => 4,
            _ => 8,
        }
    }
}

/// A memory operand resolved at decode time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemRef {
    /// Base register index, or 16 for none (RIP-relative operands carry
    /// their absolute address in `disp`).
    pub base: u8,
    /// Index register index, or 16 for none.
    pub index: u8,
    /// Index scale.
    pub scale: u8,
    /// Displacement (absolute address for RIP-relative operands).
    pub disp: u64,
    /// Address-size mask.
    pub mask: u64,
    /// Segment.
    pub seg: crate::state::Seg,
}

impl MemRef {
    fn of(ins: &Instruction, bitness: u32) -> MemRef {
        use iced_x86::Register as R;
        let idx = |r: R| ((r.full_register() as usize - R::RAX as usize) & 15) as u8;
        let base_reg = ins.memory_base();
        let index_reg = ins.memory_index();
        let mut asize = 0;
        let base = if base_reg != R::None && base_reg != R::RIP && base_reg != R::EIP {
            asize = base_reg.size();
            idx(base_reg)
        } else {
            if base_reg != R::None {
                asize = base_reg.size();
            }
            16
        };
        let index = if index_reg != R::None {
            asize = index_reg.size();
            idx(index_reg)
        } else {
            16
        };
        if asize == 0 {
            asize = match ins.memory_displ_size() {
                2 => 2,
                4 if bitness != 64 => 4,
                _ => 8,
            };
        }
        MemRef {
            base,
            index,
            scale: ins.memory_index_scale() as u8,
            disp: ins.memory_displacement64(),
            mask: crate::exec::flags::mask(asize),
            seg: crate::cpu::seg_of(ins.memory_segment()),
        }
    }
}

/// A decoded instruction with its pre-selected handler and pre-resolved operands.
#[derive(Clone)]
pub(crate) struct Op {
    /// The decoded instruction.
    pub ins: Instruction,
    /// Its handler.
    pub handler: Handler,
    /// Address of the next instruction, masked to the code size.
    pub next_ip: u64,
    /// Operand 0 when it is a general-purpose register.
    pub r0: Gpr,
    /// Operand 1 when it is a general-purpose register.
    pub r1: Gpr,
    /// The immediate of operand 1 masked to operand 0's size, when there
    /// is one; the target of a near relative branch.
    pub imm: u64,
    /// The memory operand, resolved (meaningful when the instruction has one).
    pub mem: MemRef,
}

impl Op {
    /// Decodes the operand shortcuts of `ins` and picks its handler.
    pub(crate) fn new(ins: Instruction, bitness: u32) -> Op {
        let gpr = |i: u32| {
            if i < ins.op_count() && ins.op_kind(i) == iced_x86::OpKind::Register {
                Gpr::of(ins.op_register(i)).unwrap_or_default()
            } else {
                Gpr::default()
            }
        };
        let r0 = gpr(0);
        let size0 = match ins.op0_kind() {
            iced_x86::OpKind::Memory => ins.memory_size().size(),
            _ => r0.size(),
        };
        let near_branch = matches!(
            ins.op0_kind(),
            iced_x86::OpKind::NearBranch16
                | iced_x86::OpKind::NearBranch32
                | iced_x86::OpKind::NearBranch64
        );
        let imm = if near_branch {
            ins.near_branch_target()
        } else if ins.op_count() > 1 {
            if crate::exec::is_immediate(ins.op1_kind()) {
                ins.immediate(1) & crate::exec::flags::mask(size0.max(1))
            } else {
                0
            }
        } else {
            0
        };
        Op {
            handler: crate::exec::select_handler(&ins),
            next_ip: mask_ip(bitness, ins.next_ip()),
            r0,
            r1: gpr(1),
            imm,
            mem: MemRef::of(&ins, bitness),
            ins,
        }
    }
}

/// A straight run of decoded instructions that executes without going back
/// to the fetch path: it ends with a control transfer, before an
/// instruction that must run on its own (system instructions, anything that
/// changes segments, flags beyond the status flags, or interrupt shadows),
/// or at the end of the page. The instructions sit at consecutive
/// addresses. A block that runs often is translated to host code
/// (`crate::jit`); the translation lives and dies with the block.
#[derive(Default)]
pub(crate) struct Block {
    /// The instructions.
    pub ops: Box<[Op]>,
    /// Instructions the interpreter ran in the block (towards translation).
    pub heat: u32,
    /// Where the block's translation stands (`crate::jit`): not asked
    /// for yet (0), asked of the background translator as job `job`, or
    /// refused (`u32::MAX`: the block stays interpreted).
    pub job: u32,
    /// The block's translation (boxed: blocks move in and out of their
    /// page's slots on every run, and most have none).
    pub native: Option<Box<crate::jit::Native>>,
}

impl std::ops::Deref for Block {
    type Target = [Op];
    fn deref(&self) -> &[Op] {
        &self.ops
    }
}

/// Longest block.
const MAX_BLOCK: usize = 64;

/// Decoded instructions of one physical page.
struct PageCode {
    bitness: u32,
    ip_minus_phys: u64,
    slots: Vec<Option<Box<Op>>>,
    /// Blocks by start offset: `None` not tried yet; an empty block means
    /// "tried: no block here" (and while a block runs, its slot holds an
    /// empty one too). Boxed, so that the table of a page is small (8
    /// bytes a slot) and its lookups stay in cache.
    blocks: Vec<Option<Box<Block>>>,
}

/// All cached pages, indexed by host-physical page number.
pub(crate) struct DecodeCache {
    pages: Vec<Option<Box<PageCode>>>,
    /// Incremented whenever a page is dropped or replaced.
    pub(crate) gen: u64,
    /// Instructions decoded since creation (for statistics and tests).
    pub(crate) decodes: u64,
}

fn mask_ip(bitness: u32, ip: u64) -> u64 {
    match bitness {
        64 => ip,
        32 => ip & 0xFFFF_FFFF,
        _ => ip & 0xFFFF,
    }
}

impl DecodeCache {
    pub(crate) fn new(memory_bytes: u64) -> Self {
        let n = memory_bytes.div_ceil(4096) as usize;
        let mut pages = Vec::with_capacity(n);
        pages.resize_with(n, || None);
        DecodeCache {
            pages,
            gen: 0,
            decodes: 0,
        }
    }

    /// Drops a page's decoded instructions.
    pub(crate) fn invalidate(&mut self, page: u64) {
        if let Some(slot) = self.pages.get_mut(page as usize) {
            if slot.take().is_some() {
                self.gen += 1;
            }
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&mut self) {
        for p in &mut self.pages {
            *p = None;
        }
        self.gen += 1;
    }

    /// Whether the page at `hpa` holds instructions decoded for `ip` in `bitness`.
    #[inline]
    pub(crate) fn page_matches(&self, hpa: u64, ip: u64, bitness: u32) -> bool {
        match self.pages.get((hpa >> 12) as usize) {
            Some(Some(p)) => p.bitness == bitness && p.ip_minus_phys == ip.wrapping_sub(hpa),
            _ => false,
        }
    }

    /// Moves the op at `hpa` out of its slot (the page must match, see
    /// [`Self::page_matches`]); [`Self::put_back`] returns it.
    #[inline]
    pub(crate) fn take(&mut self, hpa: u64) -> Option<Box<Op>> {
        let page = self.pages.get_mut((hpa >> 12) as usize)?.as_mut()?;
        page.slots.get_mut((hpa & 0xFFF) as usize)?.take()
    }

    /// Returns an op taken with [`Self::take`] or just decoded, if its page
    /// is still cached (generation `gen`).
    #[inline]
    pub(crate) fn put_back(&mut self, hpa: u64, gen: u64, op: Box<Op>) {
        if let Some(slot) = self
            .live_page(hpa, gen)
            .and_then(|p| p.slots.get_mut((hpa & 0xFFF) as usize))
        {
            *slot = Some(op);
        }
    }

    /// The page of `hpa` if nothing was dropped or replaced since generation `gen`.
    #[inline]
    fn live_page(&mut self, hpa: u64, gen: u64) -> Option<&mut PageCode> {
        if gen != self.gen {
            return None;
        }
        self.pages.get_mut((hpa >> 12) as usize)?.as_deref_mut()
    }

    /// Takes the block starting at `hpa` out of its page (which must match,
    /// see [`Self::page_matches`]), building it from `code` (the rest of the
    /// page, starting at `hpa`, decoded at `ip`) the first time. `None`: no
    /// block can start here; run the instruction on its own.
    #[inline]
    pub(crate) fn take_block(&mut self, hpa: u64, ip: u64, code: &[u8]) -> Option<Block> {
        let page = self.pages.get_mut((hpa >> 12) as usize)?.as_mut()?;
        let block = match page.blocks.get_mut((hpa & 0xFFF) as usize)? {
            Some(b) => std::mem::take(&mut **b),
            None => return self.first_block(hpa, ip, code),
        };
        if block.is_empty() {
            None
        } else {
            Some(block)
        }
    }

    /// [`Self::take_block`] the first time: builds the block and marks its
    /// slot as tried (the block itself comes back with [`Self::put_block`]).
    #[cold]
    #[inline(never)]
    fn first_block(&mut self, hpa: u64, ip: u64, code: &[u8]) -> Option<Block> {
        let page = self.pages.get_mut((hpa >> 12) as usize)?.as_mut()?;
        let slot = page.blocks.get_mut((hpa & 0xFFF) as usize)?;
        let block = build_block(page.bitness, ip, code);
        *slot = Some(Box::default());
        self.decodes += block.len() as u64;
        if block.is_empty() {
            None
        } else {
            Some(block)
        }
    }

    /// The block starting at `hpa`, if one was built there and is in its
    /// slot (not taken out to run).
    pub(crate) fn block_mut(&mut self, hpa: u64) -> Option<&mut Block> {
        let page = self.pages.get_mut((hpa >> 12) as usize)?.as_mut()?;
        page.blocks
            .get_mut((hpa & 0xFFF) as usize)?
            .as_deref_mut()
            .filter(|b| !b.is_empty())
    }

    /// Returns a block taken with [`Self::take_block`] if its page is still cached.
    #[inline]
    pub(crate) fn put_block(&mut self, hpa: u64, gen: u64, block: Block) {
        if let Some(slot) = self
            .live_page(hpa, gen)
            .and_then(|p| p.blocks.get_mut((hpa & 0xFFF) as usize))
        {
            match slot {
                Some(b) => **b = block,
                None => *slot = Some(Box::new(block)),
            }
        }
    }

    /// Decodes one instruction from `bytes` (which start at `hpa`). When it
    /// lies inside the page, its page is made ready to hold it and the second
    /// value is true: the caller puts it back with [`Self::put_back`].
    pub(crate) fn decode(
        &mut self,
        hpa: u64,
        ip: u64,
        bitness: u32,
        bytes: &[u8],
        same_page_len: usize,
    ) -> (Box<Op>, bool) {
        let mut decoder = Decoder::with_ip(bitness, bytes, ip, DecoderOptions::NONE);
        let ins = decoder.decode();
        self.decodes += 1;
        let op = Box::new(Op::new(ins, bitness));
        let fits = op.ins.len() <= same_page_len && !op.ins.is_invalid();
        if !fits {
            return (op, false);
        }
        let Some(slot) = self.pages.get_mut((hpa >> 12) as usize) else {
            return (op, false);
        };
        let ipmp = ip.wrapping_sub(hpa);
        let fresh = match slot {
            Some(p) => p.bitness != bitness || p.ip_minus_phys != ipmp,
            None => true,
        };
        if fresh {
            let mut slots = Vec::with_capacity(4096);
            slots.resize_with(4096, || None);
            let mut blocks = Vec::with_capacity(4096);
            blocks.resize_with(4096, || None);
            *slot = Some(Box::new(PageCode {
                bitness,
                ip_minus_phys: ipmp,
                slots,
                blocks,
            }));
            self.gen += 1;
        }
        (op, true)
    }
}

/// Decodes a block from `code` (which starts at `ip`); see [`Block`].
/// Empty when no block can start here.
fn build_block(bitness: u32, ip: u64, code: &[u8]) -> Block {
    let mut decoder = Decoder::with_ip(bitness, code, ip, DecoderOptions::NONE);
    let mut ops = Vec::new();
    while ops.len() < MAX_BLOCK && decoder.can_decode() {
        let ins = decoder.decode();
        if ins.is_invalid() {
            break;
        }
        let role = crate::exec::block_role(&ins);
        if role == crate::exec::BlockRole::Alone {
            break;
        }
        ops.push(Op::new(ins, bitness));
        if role == crate::exec::BlockRole::Last {
            break;
        }
    }
    Block {
        ops: ops.into_boxed_slice(),
        heat: 0,
        job: 0,
        native: None,
    }
}

// A block is moved out of its slot and back on every run: keep it small.
const _: () = assert!(std::mem::size_of::<Option<Block>>() <= 32);
