//! Instruction execution, split by instruction group (as Bochs splits its
//! CPU files): arithmetic and logic, data movement, control transfer, string
//! operations and system instructions.

mod alu;
pub(crate) use alu::shift_result;
mod control;
mod data;
mod fast;
pub(crate) use fast::{is_cmovcc, is_setcc};
pub(crate) mod flags;
mod fp;
mod fxsr;
pub(crate) mod lazy;
mod simd;
mod sse;
mod string;
mod system;
mod x87;

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception};
use iced_x86::{ConditionCode, Instruction, Mnemonic, OpKind, Register};
use x86::rflags::{CF, OF, PF, SF, ZF};

impl SoftCpu {
    /// Size in bytes of operand `i`.
    #[inline]
    pub(crate) fn op_size(&self, ins: &Instruction, i: u32) -> usize {
        match ins.op_kind(i) {
            OpKind::Register => ins.op_register(i).size(),
            OpKind::Memory => ins.memory_size().size(),
            OpKind::Immediate8 => 1,
            OpKind::Immediate16 => 2,
            OpKind::Immediate32 => 4,
            _ => 8,
        }
    }

    /// Reads operand `i` (register, memory or immediate).
    #[inline]
    pub(crate) fn read_op(&mut self, ins: &Instruction, i: u32, size: usize) -> Ex<u64> {
        match ins.op_kind(i) {
            OpKind::Register => Ok(self.reg(ins.op_register(i))),
            OpKind::Memory => {
                let ea = self.effective_address(ins);
                self.read_mem(Self::mem_seg(ins), ea, size)
            }
            k if is_immediate(k) || k == OpKind::Immediate8_2nd => {
                Ok(ins.immediate(i) & flags::mask(size))
            }
            _ => self.undefined(),
        }
    }

    /// Writes operand `i` (register or memory).
    #[inline]
    pub(crate) fn write_op(&mut self, ins: &Instruction, i: u32, size: usize, v: u64) -> Ex<()> {
        match ins.op_kind(i) {
            OpKind::Register => {
                self.set_reg(ins.op_register(i), v);
                Ok(())
            }
            OpKind::Memory => {
                let ea = self.effective_address(ins);
                self.write_mem(Self::mem_seg(ins), ea, size, v)
            }
            _ => self.undefined(),
        }
    }

    /// Replaces the six status flags.
    #[inline]
    pub(crate) fn set_status(&mut self, f: u64) {
        self.lazy.op = lazy::NONE;
        self.s.rflags = (self.s.rflags & !x86::rflags::STATUS) | f;
    }

    /// Whether a flag is set (status flags may be pending, see [`lazy`]).
    #[inline]
    pub(crate) fn flag(&self, f: u64) -> bool {
        if f & x86::rflags::STATUS != 0 {
            self.status_flags() & f != 0
        } else {
            self.s.rflags & f != 0
        }
    }

    /// Evaluates a condition code against RFLAGS.
    #[inline]
    pub(crate) fn condition(&self, cc: ConditionCode) -> bool {
        self.condition_inline(cc)
    }

    /// [`Self::condition`] always inlined, for the handlers specialised by
    /// condition code, where the code is a constant and the match folds.
    #[inline(always)]
    pub(crate) fn condition_inline(&self, cc: ConditionCode) -> bool {
        condition_of(&self.lazy, self.s.rflags, cc)
    }

    /// Executes one decoded instruction. On success `self.next_rip` holds the
    /// address of the next instruction.
    pub(crate) fn execute(&mut self, ins: &Instruction) -> Ex<()> {
        use Mnemonic as M;
        if ins.has_lock_prefix() && !lockable(ins) {
            return Err(Exception::ud().into());
        }
        match ins.mnemonic() {
            M::Add | M::Or | M::Adc | M::Sbb | M::And | M::Sub | M::Xor | M::Cmp | M::Test => {
                self.alu2(ins)
            }
            M::Inc | M::Dec | M::Neg | M::Not => self.alu1(ins),
            M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror | M::Rcl | M::Rcr => {
                self.shift(ins)
            }
            M::Shld | M::Shrd => self.shift_double(ins),
            M::Mul | M::Imul | M::Div | M::Idiv => self.muldiv(ins),
            M::Bt | M::Bts | M::Btr | M::Btc => self.bit_test(ins),
            M::Bsf | M::Bsr | M::Tzcnt | M::Lzcnt | M::Popcnt => self.bit_scan(ins),
            M::Mov | M::Movzx | M::Movsx | M::Movsxd => self.mov(ins),
            M::Lea => self.lea(ins),
            M::Xchg | M::Xadd | M::Cmpxchg | M::Cmpxchg8b | M::Cmpxchg16b => self.exchange(ins),
            M::Push
            | M::Pop
            | M::Pushf
            | M::Pushfd
            | M::Pushfq
            | M::Popf
            | M::Popfd
            | M::Popfq
            | M::Pusha
            | M::Pushad
            | M::Popa
            | M::Popad
            | M::Leave
            | M::Enter => self.stack_op(ins),
            M::Cbw | M::Cwde | M::Cdqe | M::Cwd | M::Cdq | M::Cqo => self.convert(ins),
            M::Bswap => self.bswap(ins),
            M::Lahf | M::Sahf | M::Clc | M::Stc | M::Cmc | M::Cld | M::Std => self.flag_op(ins),
            M::Xlatb => self.xlat(ins),
            M::Pause => self.pause(ins),
            M::Nop
            | M::Lfence
            | M::Mfence
            | M::Sfence
            | M::Clflush
            | M::Prefetchnta
            | M::Prefetcht0
            | M::Prefetcht1
            | M::Prefetcht2
            | M::Prefetchw
            // 0F 0D /0 and /2 (PREFETCH, PREFETCHWT1: the prefetch group
            // CPUID.80000001H:ECX.PREFETCHW enumerates, AMD APM Vol. 3) and
            // the reserved-NOP space 0F 0D, 0F 18–0F 1F (SDM Vol. 2B NOP;
            // opcode map "NOP Ev"): hints, no operation.
            | M::Prefetch
            | M::Prefetchwt1
            | M::Reservednop
            // CLDEMOTE (0F 1C /0) is a hint in that space too: a NOP
            // where CPUID.7:ECX.CLDEMOTE is 0.
            | M::Cldemote
            // So are PREFETCHIT0/1 (0F 18 /7, /6) without PREFETCHI.
            | M::Prefetchit0
            | M::Prefetchit1
            // RDSSPD/RDSSPQ sit in the same NOP space: without CET they
            // leave their register alone, which glibc's longjmp relies on.
            | M::Rdsspd
            | M::Rdsspq
            | M::Endbr32
            | M::Endbr64 => Ok(()),
            M::Jmp | M::Call | M::Ret | M::Retf | M::Jmpe => self.branch(ins),
            M::Loop | M::Loope | M::Loopne | M::Jcxz | M::Jecxz | M::Jrcxz => self.loop_op(ins),
            M::Int | M::Int3 | M::Int1 | M::Into | M::Iret | M::Iretd | M::Iretq => {
                self.soft_int(ins)
            }
            m if is_string(m) && !fp::sse_string_alias(ins) => self.string_op(ins),
            M::Ud0 | M::Ud1 | M::Ud2 => Err(Exception::ud().into()),
            M::Wait => self.fwait(),
            _ if ins.condition_code() != ConditionCode::None => self.conditional(ins),
            _ => match fp::unit(ins) {
                Some(unit) => self.fp_simd(ins, unit),
                None => self.system(ins),
            },
        }
    }
}

/// How an instruction may take part in a decoded block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockRole {
    /// Anywhere in a block.
    Inside,
    /// Only as the last instruction (control transfers).
    Last,
    /// Never: it runs on its own through the single-instruction path.
    Alone,
}

/// The condition code numbered `cc` (iced's numbering, 1 = O … 16 = G; 0
/// and anything else is `None`).
pub(crate) const fn cond_of(cc: u8) -> ConditionCode {
    use ConditionCode as C;
    match cc {
        1 => C::o,
        2 => C::no,
        3 => C::b,
        4 => C::ae,
        5 => C::e,
        6 => C::ne,
        7 => C::be,
        8 => C::a,
        9 => C::s,
        10 => C::ns,
        11 => C::p,
        12 => C::np,
        13 => C::l,
        14 => C::ge,
        15 => C::le,
        16 => C::g,
        _ => C::None,
    }
}

/// A condition code evaluated against a lazy flag record and RFLAGS (the
/// status flags come from the record while it holds an operation).
#[inline(always)]
pub(crate) fn condition_of(lazy: &lazy::Lazy, rflags: u64, cc: ConditionCode) -> bool {
    let st = if lazy.op != lazy::NONE {
        if let Some(v) = lazy.condition(cc) {
            return v;
        }
        lazy.status()
    } else {
        rflags & x86::rflags::STATUS
    };
    let f = |b| st & b != 0;
    match cc {
        ConditionCode::o => f(OF),
        ConditionCode::no => !f(OF),
        ConditionCode::b => f(CF),
        ConditionCode::ae => !f(CF),
        ConditionCode::e => f(ZF),
        ConditionCode::ne => !f(ZF),
        ConditionCode::be => f(CF) || f(ZF),
        ConditionCode::a => !f(CF) && !f(ZF),
        ConditionCode::s => f(SF),
        ConditionCode::ns => !f(SF),
        ConditionCode::p => f(PF),
        ConditionCode::np => !f(PF),
        ConditionCode::l => f(SF) != f(OF),
        ConditionCode::ge => f(SF) == f(OF),
        ConditionCode::le => f(ZF) || f(SF) != f(OF),
        ConditionCode::g => !f(ZF) && f(SF) == f(OF),
        ConditionCode::None => true,
    }
}

/// The block role of an instruction. Blocks hold only instructions that
/// change nothing but general registers, status flags and memory (plus
/// RIP, at the end), so that the conditions checked between instructions
/// (breakpoints, single-step, interrupt shadows) cannot change inside one.
pub(crate) fn block_role(ins: &Instruction) -> BlockRole {
    use Mnemonic as M;
    // Locked accesses (a LOCK prefix, or XCHG with memory, locked
    // implicitly) run alone: bus-lock detection looks at each one.
    let xchg_mem =
        ins.mnemonic() == M::Xchg && (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
    if ins.has_lock_prefix() || xchg_mem {
        return BlockRole::Alone;
    }
    // Segment-register operands (MOV/PUSH/POP sreg) change what blocks assume.
    for i in 0..ins.op_count() {
        if ins.op_kind(i) == OpKind::Register {
            let r = ins.op_register(i);
            if r.is_segment_register() || r.is_cr() || r.is_dr() {
                return BlockRole::Alone;
            }
        }
    }
    match ins.mnemonic() {
        M::Add
        | M::Or
        | M::Adc
        | M::Sbb
        | M::And
        | M::Sub
        | M::Xor
        | M::Cmp
        | M::Test
        | M::Inc
        | M::Dec
        | M::Neg
        | M::Not
        | M::Shl
        | M::Sal
        | M::Shr
        | M::Sar
        | M::Rol
        | M::Ror
        | M::Rcl
        | M::Rcr
        | M::Shld
        | M::Shrd
        | M::Mul
        | M::Imul
        | M::Div
        | M::Idiv
        | M::Bt
        | M::Bts
        | M::Btr
        | M::Btc
        | M::Bsf
        | M::Bsr
        | M::Tzcnt
        | M::Lzcnt
        | M::Popcnt
        | M::Mov
        | M::Movzx
        | M::Movsx
        | M::Movsxd
        | M::Lea
        | M::Xchg
        | M::Xadd
        | M::Cmpxchg
        | M::Push
        | M::Pop
        | M::Leave
        | M::Cbw
        | M::Cwde
        | M::Cdqe
        | M::Cwd
        | M::Cdq
        | M::Cqo
        | M::Bswap
        | M::Lahf
        | M::Sahf
        | M::Clc
        | M::Stc
        | M::Cmc
        | M::Cld
        | M::Std
        | M::Nop
        | M::Pause
        | M::Rdtsc
        | M::Rdtscp
        | M::Lfence
        | M::Mfence
        | M::Sfence
        | M::Pushfd
        | M::Pushfq => BlockRole::Inside,
        // Memory string ops may sit in a block; INS and OUTS do port I/O and run alone.
        m if is_string(m)
            && !fp::sse_string_alias(ins)
            && !matches!(
                m,
                M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd
            ) =>
        {
            BlockRole::Inside
        }
        M::Jmp
        | M::Call
        | M::Ret
        | M::Loop
        | M::Loope
        | M::Loopne
        | M::Jcxz
        | M::Jecxz
        | M::Jrcxz
            if !is_far_branch(ins) =>
        {
            BlockRole::Last
        }
        // Jcc, SETcc and CMOVcc: a block goes on past a conditional branch
        // and is left where one is taken.
        _ if ins.condition_code() != ConditionCode::None => BlockRole::Inside,
        _ => BlockRole::Alone,
    }
}

/// Whether a JMP or CALL is a far transfer (pointer operand or m16:16/32/64).
pub(crate) fn is_far_branch(ins: &Instruction) -> bool {
    matches!(ins.op0_kind(), OpKind::FarBranch16 | OpKind::FarBranch32)
        || (ins.op0_kind() == OpKind::Memory
            && matches!(
                ins.memory_size(),
                iced_x86::MemorySize::SegPtr16
                    | iced_x86::MemorySize::SegPtr32
                    | iced_x86::MemorySize::SegPtr64
            ))
}

/// Chooses the handler for a decoded instruction (once, at decode time).
pub(crate) fn select_handler(ins: &Instruction) -> crate::decode::Handler {
    #[cfg(test)]
    if fast::tests::GENERAL_ONLY.get() {
        return general;
    }
    fast::specialised(ins).unwrap_or(general)
}

/// The general handler: dispatch on the mnemonic at every execution.
fn general(cpu: &mut SoftCpu, op: &crate::decode::Op) -> Ex<()> {
    cpu.materialize_flags();
    cpu.execute(&op.ins)
}

/// Whether an operand kind is an immediate (other than ENTER's second one).
pub(crate) fn is_immediate(k: OpKind) -> bool {
    matches!(
        k,
        OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64
    )
}

/// MOVS, STOS, LODS, CMPS, SCAS, INS and OUTS in every width.
pub(crate) fn is_string(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Movsb
            | M::Movsw
            | M::Movsd
            | M::Movsq
            | M::Stosb
            | M::Stosw
            | M::Stosd
            | M::Stosq
            | M::Lodsb
            | M::Lodsw
            | M::Lodsd
            | M::Lodsq
            | M::Cmpsb
            | M::Cmpsw
            | M::Cmpsd
            | M::Cmpsq
            | M::Scasb
            | M::Scasw
            | M::Scasd
            | M::Scasq
            | M::Insb
            | M::Insw
            | M::Insd
            | M::Outsb
            | M::Outsw
            | M::Outsd
    )
}

/// Instructions that accept a LOCK prefix with a memory destination (SDM Vol. 2A LOCK).
fn lockable(ins: &Instruction) -> bool {
    use Mnemonic as M;
    ins.op0_kind() == OpKind::Memory
        && matches!(
            ins.mnemonic(),
            M::Add
                | M::Adc
                | M::And
                | M::Btc
                | M::Btr
                | M::Bts
                | M::Cmpxchg
                | M::Cmpxchg8b
                | M::Cmpxchg16b
                | M::Dec
                | M::Inc
                | M::Neg
                | M::Not
                | M::Or
                | M::Sbb
                | M::Sub
                | M::Xor
                | M::Xadd
                | M::Xchg
        )
}

/// Register operand helper for instructions with implicit accumulators.
pub(crate) fn acc(size: usize) -> Register {
    match size {
        1 => Register::AL,
        2 => Register::AX,
        4 => Register::EAX,
        _ => Register::RAX,
    }
}

/// The register of a given width with encoding number `n` (0 = RAX … 7 = RDI).
pub(crate) fn gpr(size: usize, n: usize) -> Register {
    const Q: [Register; 8] = [
        Register::RAX,
        Register::RCX,
        Register::RDX,
        Register::RBX,
        Register::RSP,
        Register::RBP,
        Register::RSI,
        Register::RDI,
    ];
    const D: [Register; 8] = [
        Register::EAX,
        Register::ECX,
        Register::EDX,
        Register::EBX,
        Register::ESP,
        Register::EBP,
        Register::ESI,
        Register::EDI,
    ];
    const W: [Register; 8] = [
        Register::AX,
        Register::CX,
        Register::DX,
        Register::BX,
        Register::SP,
        Register::BP,
        Register::SI,
        Register::DI,
    ];
    match size {
        8 => Q[n & 7],
        4 => D[n & 7],
        2 => W[n & 7],
        _ => [
            Register::AL,
            Register::CL,
            Register::DL,
            Register::BL,
            Register::AH,
            Register::CH,
            Register::DH,
            Register::BH,
        ][n & 7],
    }
}
