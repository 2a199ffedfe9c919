//! The translating tier: decoded blocks that run often become host machine
//! code (Cranelift), run on a [`frame::Frame`] that the dispatcher fills
//! from the processor and copies back.
//!
//! The tier changes how fast a block runs, never what it does: a translated
//! block runs only whole (its cost in virtual time fits before the
//! horizon the interpreter would stop at, else the interpreter runs it),
//! charges each instruction what the interpreter charges, leaves a fault
//! with the faulting instruction's RIP and the state before it, and ends
//! where the interpreter's block loop ends (a taken branch, a write to
//! decoded code). Everything outside blocks — event delivery, VMX
//! transitions, instructions that run alone — stays in the interpreter.
//! See `docs/softcpu.md`, "The translating tier".

mod background;
mod code_memory;
mod frame;
mod helpers;
mod translate;

use code_memory::CodeMemory;

use crate::cpu::SoftCpu;
use crate::decode::Block;
use crate::fault::{Exception, Stop};
use std::fmt;

/// A block's translation: its code, and the exit sites the code names by
/// index (`helpers::ExitSite`).
pub(crate) struct Native {
    code: CodeMemory,
    sites: Box<[helpers::ExitSite]>,
}

impl Native {
    /// Points the interpreting sites at the instructions of `ops`, the
    /// block the translation was made from (the translator names them by
    /// index, and may have run on copies).
    fn bind(&mut self, ops: &[crate::decode::Op]) {
        for site in self.sites.iter_mut() {
            if let Some(op) = ops.get(site.op) {
                site.op = op as *const crate::decode::Op as usize;
            }
        }
    }
}

/// [`Block::job`] of a block whose translation failed.
const REFUSED: u32 = u32::MAX;

/// Translated code returned normally: the frame holds the state at the
/// next instruction.
pub(crate) const EXIT_OK: u32 = 0;
/// An instruction stopped; the reason is in the frame.
pub(crate) const EXIT_STOP: u32 = 1;
/// A near branch failed its target check: #GP(0) at the branch.
pub(crate) const EXIT_GP: u32 = 2;

/// Instructions the interpreter runs in a block before the block is
/// translated. Translation costs about as much as interpreting some tens
/// of thousands of the block's instructions (docs/softcpu.md, "The
/// translating tier"), so only code that runs that much more is worth it.
pub const TRANSLATION_THRESHOLD: u32 = 1 << 14;

/// Whether this build forces the tier on (the `translate-all` feature, a
/// test configuration): every processor translates each block once it has
/// run interpreted once, whatever [`SoftCpu::set_translation`] asks, so
/// that the whole test suite runs on translated code.
const FORCED: bool = cfg!(feature = "translate-all");

/// The threshold in a `translate-all` build: a block is translated on its
/// second entry (0 would re-translate self-modifying code for every
/// instruction, as random-code tests write over their own code).
const FORCED_THRESHOLD: u32 = 1;

/// Why a block was not translated.
#[derive(Debug)]
pub(crate) enum JitError {
    /// Cranelift could not be set up for this host.
    Setup(String),
    /// Code generation failed.
    Compile(String),
    /// Executable memory could not be had.
    Map(std::io::Error),
    /// Nothing to translate.
    Empty,
}

impl fmt::Display for JitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JitError::Setup(e) => write!(f, "code generator setup failed: {e}"),
            JitError::Compile(e) => write!(f, "code generation failed: {e}"),
            JitError::Map(e) => write!(f, "executable memory unavailable: {e}"),
            JitError::Empty => write!(f, "empty block"),
        }
    }
}

/// Counters of the translating tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranslationStats {
    /// Blocks translated.
    pub blocks_translated: u64,
    /// Blocks whose translation failed (they stay interpreted).
    pub blocks_refused: u64,
    /// Runs of translated code.
    pub native_runs: u64,
    /// Host time spent translating, in nanoseconds (not part of anything
    /// the guest sees).
    pub translate_ns: u64,
    /// Guest instructions in the blocks translated.
    pub instructions_translated: u64,
}

/// A translated block found by its RIP alone, without the page and slot
/// lookups of the decode cache: it stands for the block while the TLB and
/// the decode cache are at the generations it was found with (no
/// translation flushed, no decoded page dropped, so the block and its code
/// are still there) and CS and CPL are unchanged (the fetch path's key).
#[derive(Debug, Clone, Copy, Default)]
struct Jump {
    rip: u64,
    /// TLB and decode-cache generations.
    gens: (u64, u64),
    /// `SoftCpu::fetch_key_now` (CS base and attributes, CPL).
    key: (u64, u32, u8),
    /// Instructions the translation covers.
    len: u64,
    /// Addresses of the code and of its exit sites (0: no entry).
    entry: usize,
    sites: usize,
}

/// Entries of the jump table (a power of two).
const JUMPS: usize = 32768;

/// The jump-table entry for `rip`.
fn jump_index(rip: u64) -> usize {
    ((rip ^ (rip >> 12)) as usize) & (JUMPS - 1)
}

/// The tier's state in one processor.
pub(crate) struct Jit {
    /// Whether blocks are translated and run translated.
    pub enabled: bool,
    /// Interpreted instructions after which a block is translated.
    hot: u32,
    /// The code generator, set up on first use.
    translator: Option<translate::Translator>,
    /// Set when the code generator cannot be set up here: the tier stays off.
    unavailable: bool,
    pub stats: TranslationStats,
    /// Translated blocks by RIP (empty until the first translated run).
    jumps: Vec<Jump>,
    /// Whether hot blocks are translated on another thread.
    background: bool,
    /// That thread, once started.
    worker: Option<background::Worker>,
    /// The last job number given out.
    last_job: u32,
}

impl Default for Jit {
    fn default() -> Self {
        Jit {
            enabled: FORCED,
            hot: if FORCED {
                FORCED_THRESHOLD
            } else {
                TRANSLATION_THRESHOLD
            },
            translator: None,
            unavailable: false,
            stats: TranslationStats::default(),
            jumps: Vec::new(),
            background: false,
            worker: None,
            last_job: 0,
        }
    }
}

impl Jit {
    /// Gives `block` its translation, or marks it refused.
    fn install(&mut self, block: &mut Block, translated: Result<Native, JitError>) {
        match translated {
            Ok(mut code) => {
                code.bind(&block.ops);
                self.stats.blocks_translated += 1;
                self.stats.instructions_translated += translated_len(block) as u64;
                block.native = Some(Box::new(code));
            }
            Err(_) => {
                // Not tried again: the block stays interpreted.
                block.job = REFUSED;
                self.stats.blocks_refused += 1;
            }
        }
    }

    fn translate(&mut self, block: &Block, bitness: u32, start: u64) -> Result<Native, JitError> {
        if self.translator.is_none() {
            match translate::Translator::new() {
                Ok(t) => self.translator = Some(t),
                Err(e) => {
                    self.unavailable = true;
                    return Err(e);
                }
            }
        }
        match self.translator.as_mut() {
            Some(t) => t.translate(&block.ops[..translated_len(block)], bitness, start),
            None => Err(JitError::Empty),
        }
    }
}

/// Most instructions of a block that are translated: a longer block is
/// translated up to here and leaves for the rest, which becomes a block of
/// its own. Code generation time grows faster than the code, so long
/// blocks cost more to translate per instruction than they gain; on the
/// Linux boot 40 ran about 3% faster than 24, and as fast as whole blocks
/// (64).
pub(crate) const MAX_TRANSLATED: usize = 40;

/// How many of `block`'s instructions its translation covers.
fn translated_len(block: &Block) -> usize {
    block.len().min(MAX_TRANSLATED)
}

/// The signature of translated code.
type Entry = extern "C" fn(*mut frame::Frame) -> u32;

impl SoftCpu {
    /// Runs `block` (which starts at RIP) translated, translating it first
    /// once it is hot; `None` when it does not run translated (the tier is
    /// off, the block is not hot yet or cannot be translated, or its whole
    /// cost does not fit before `horizon`), and the interpreter runs it.
    /// Otherwise the outcome as the interpreter's block loop reports it: a
    /// stop comes with the stopping instruction's length.
    pub(crate) fn run_translated(
        &mut self,
        block: &mut Block,
        hpa: u64,
        horizon: u64,
    ) -> Option<Result<(), (Stop, u32)>> {
        if !self.jit.enabled || self.jit.unavailable {
            return None;
        }
        let cost = (translated_len(block) as u64).saturating_mul(self.instruction_cycles);
        if cost > horizon.saturating_sub(self.cycles) {
            return None;
        }
        if block.native.is_none() {
            if block.job != 0 || block.heat < self.jit.hot {
                return None;
            }
            if self.jit.background && self.queue_translation(block, hpa) {
                return None;
            }
            let t0 = std::time::Instant::now();
            let translated = self.jit.translate(block, self.s.bitness(), self.s.rip);
            self.jit.stats.translate_ns += t0.elapsed().as_nanos() as u64;
            self.jit.install(block, translated);
        }
        let native = block.native.as_ref()?;
        let jump = Jump {
            rip: self.s.rip,
            gens: (self.tlb.gen, self.code.gen),
            key: self.fetch_key_now(),
            len: translated_len(block) as u64,
            entry: native.code.entry(),
            sites: native.sites.as_ptr() as usize,
        };
        if self.jit.jumps.is_empty() {
            self.jit.jumps = vec![Jump::default(); JUMPS];
        }
        self.jit.jumps[jump_index(jump.rip)] = jump;
        Some(self.run_native(&jump, horizon))
    }

    /// Runs the translated block at RIP found in the jump table, as
    /// [`Self::run_translated`] would run it, and the translated blocks it
    /// leads to while time before `horizon` is left, on one frame; `None`
    /// when the table has no valid entry for RIP (or a code page was
    /// written, or the block's cost does not fit before `horizon`): the
    /// dispatcher looks further. As the interpreter's block loop, it goes
    /// from block to block without looking at events: nothing a block
    /// does changes what `block_mode` looks at.
    #[inline]
    pub(crate) fn run_jump(&mut self, horizon: u64) -> Option<Result<(), (Stop, u32)>> {
        if !self.jit.enabled {
            return None;
        }
        let mut jump = self.jump_at(horizon)?;
        let mut frame = frame::Frame::new(self, horizon);
        loop {
            if let Err(e) = self.enter_native(&jump, &mut frame) {
                return Some(Err(e));
            }
            if self.cycles >= horizon {
                return Some(Ok(()));
            }
            match self.jump_at(horizon) {
                Some(next) => jump = next,
                None => return Some(Ok(())),
            }
            if frame.stale {
                frame = frame::Frame::new(self, horizon);
            } else {
                frame.cycles = self.cycles;
                frame.retired = self.retired;
            }
        }
    }

    /// The jump-table entry for RIP, if valid now and its block's cost fits
    /// before `horizon`.
    #[inline]
    fn jump_at(&self, horizon: u64) -> Option<Jump> {
        let rip = self.s.rip;
        let jump = *self.jit.jumps.get(jump_index(rip))?;
        if jump.rip != rip
            || jump.entry == 0
            || jump.gens != (self.tlb.gen, self.code.gen)
            || jump.key != self.fetch_key_now()
            || self.mem.has_dirty_code()
            || jump.len.saturating_mul(self.instruction_cycles)
                > horizon.saturating_sub(self.cycles)
        {
            return None;
        }
        Some(jump)
    }

    /// Runs the translation `jump` names, starting at RIP, on a fresh frame.
    fn run_native(&mut self, jump: &Jump, horizon: u64) -> Result<(), (Stop, u32)> {
        let mut frame = frame::Frame::new(self, horizon);
        self.enter_native(jump, &mut frame)
    }

    /// Runs the translation `jump` names, starting at RIP, on `frame`
    /// (built for the processor's current state).
    #[allow(unsafe_code)]
    #[inline]
    fn enter_native(&mut self, jump: &Jump, frame: &mut frame::Frame) -> Result<(), (Stop, u32)> {
        // SAFETY: `jump.entry` is the entry of code the translator
        // generated for the signature `(i64) -> i32` in the host's default
        // calling convention, which is `extern "C"`. Its mapping lives as
        // long as the block holding it, which is dropped only with its
        // page, and dropping a page moves the decode cache to a new
        // generation: a jump-table entry is used only at the generation
        // it was made at, while the code is alive.
        let entry = unsafe { std::mem::transmute::<usize, Entry>(jump.entry) };
        frame.sites = jump.sites as *const helpers::ExitSite;
        let status = entry(frame);
        self.jit.stats.native_runs += 1;
        if status == EXIT_OK {
            return Ok(());
        }
        let stop = match (status, frame.stop.take()) {
            (EXIT_GP, _) => Exception::gp(0).into(),
            (_, Some(stop)) => stop,
            // Not produced by the translator; treated as the interpreter
            // treats an internal inconsistency.
            (_, None) => Stop::Exception(Exception::ud()),
        };
        Err((stop, frame.stop_len))
    }

    /// Asks the background translator for `block` (at `hpa`, starting at
    /// RIP); false when there is no background translator to ask (it could
    /// not be started): the caller translates it at once.
    fn queue_translation(&mut self, block: &mut Block, hpa: u64) -> bool {
        if self.jit.worker.is_none() {
            match background::Worker::start() {
                Ok(w) => self.jit.worker = Some(w),
                Err(_) => {
                    self.jit.background = false;
                    return false;
                }
            }
        }
        let id = match self.jit.last_job.wrapping_add(1) {
            0 | REFUSED => 1,
            n => n,
        };
        self.jit.last_job = id;
        let job = background::Job {
            id,
            hpa,
            ops: block.ops[..translated_len(block)].to_vec(),
            bitness: self.s.bitness(),
            start: self.s.rip,
        };
        let sent = self.jit.worker.as_mut().is_some_and(|w| w.submit(job));
        if sent {
            block.job = id;
        } else {
            self.jit.worker = None;
            self.jit.background = false;
        }
        sent
    }

    /// Whether translations are on their way from the background translator.
    #[inline]
    pub(crate) fn translations_in_flight(&self) -> bool {
        self.jit.worker.as_ref().is_some_and(|w| w.in_flight != 0)
    }

    /// Installs the translations the background translator finished, each
    /// in its block if the block is still there and still waits for it.
    pub(crate) fn install_translations(&mut self) {
        let Some(mut worker) = self.jit.worker.take() else {
            return;
        };
        while let Some(done) = worker.next_done() {
            self.jit.stats.translate_ns += done.ns;
            match self.code.block_mut(done.hpa) {
                Some(block) if block.job == done.id && block.native.is_none() => {
                    self.jit.install(block, done.result)
                }
                _ => {}
            }
        }
        self.jit.worker = Some(worker);
    }

    /// Translates hot blocks on another thread (on) or at once, before
    /// their next run (off, the default). Either way the guest sees the
    /// same: only when blocks start to run translated differs. A build with
    /// the `translate-all` feature translates at once.
    pub fn set_translation_background(&mut self, on: bool) {
        self.jit.background = on && !FORCED;
    }

    /// Turns the translating tier on or off (off by default). Virtual time,
    /// and everything the guest sees, are the same either way. A build
    /// with the `translate-all` feature keeps it on.
    pub fn set_translation(&mut self, on: bool) {
        self.jit.enabled = on || FORCED;
    }

    /// Sets after how many interpreted instructions a block is translated
    /// ([`TRANSLATION_THRESHOLD`] by default). Tests use 0, so that every
    /// block runs translated from its first entry on. A build with the
    /// `translate-all` feature keeps it at 1 or below.
    pub fn set_translation_threshold(&mut self, instructions: u32) {
        self.jit.hot = if FORCED {
            instructions.min(FORCED_THRESHOLD)
        } else {
            instructions
        };
    }

    /// Whether the translating tier is on.
    pub fn translation(&self) -> bool {
        self.jit.enabled
    }

    /// The translating tier's counters.
    pub fn translation_stats(&self) -> TranslationStats {
        self.jit.stats
    }
}
