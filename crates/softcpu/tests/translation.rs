//! The translating tier against the interpreter: the same code run with the
//! tier off and on (every block translated from its first entry) ends in the
//! same registers, flags, memory, exits, virtual time and retired count.

use iced_x86::code_asm::*;
use proptest::prelude::*;
use softcpu::harness::{machine, run, Mode, Outcome, CODE, RAM};
use softcpu::SoftCpu;

/// Everything a run leaves that the tier could change.
#[derive(Debug, PartialEq, Eq)]
struct Result {
    outcome: Outcome,
    state: softcpu::state::CpuState,
    retired: u64,
    exit_reason: u64,
    exit_qualification: u64,
    /// The guest's RFLAGS as the last exit saved them (the state above is
    /// the host's after the exit).
    guest_rflags: u64,
    memory_hash: u64,
}

fn hash(mem: &softcpu::PhysMemory) -> u64 {
    let mut buf = vec![0u8; RAM as usize];
    mem.read(0, &mut buf).unwrap();
    // FNV-1a: cheap, and enough to tell two memories apart.
    buf.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn result(cpu: &SoftCpu, outcome: Outcome) -> Result {
    use x86::vmx::field as f;
    Result {
        outcome,
        state: cpu.state().clone(),
        retired: cpu.instructions_retired(),
        exit_reason: cpu.vmread(f::VM_EXIT_REASON).unwrap_or(0),
        exit_qualification: cpu.vmread(f::EXIT_QUALIFICATION).unwrap_or(0),
        guest_rflags: cpu.vmread(f::GUEST_RFLAGS).unwrap_or(0),
        memory_hash: hash(cpu.memory()),
    }
}

/// Runs `code` in `mode` for `budget` cycles with the tier off, then on;
/// asserts both end alike and returns the translated run's CPU.
fn both(mode: Mode, code: &[u8], budget: u64) -> SoftCpu {
    both_at(mode, code, budget, 0)
}

/// [`both`] with blocks translated once they have run `threshold`
/// instructions interpreted.
fn both_at(mode: Mode, code: &[u8], budget: u64, threshold: u32) -> SoftCpu {
    both_with(mode, code, budget, threshold, |_| {})
}

/// `build`, then HLT and a jump to itself (the harness skips the HLT).
fn assemble(
    bits: u32,
    build: impl FnOnce(&mut CodeAssembler) -> core::result::Result<(), IcedError>,
) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits).unwrap();
    build(&mut a).unwrap();
    a.hlt().unwrap();
    let mut end = a.create_label();
    a.set_label(&mut end).unwrap();
    a.jmp(end).unwrap();
    a.assemble(CODE).unwrap()
}

/// The ALU loop of `bench/guest/alu.S`.
fn alu_loop(a: &mut CodeAssembler, iters: u32) -> core::result::Result<(), IcedError> {
    a.mov(eax, 0x1234_5678u32)?;
    a.mov(ebx, 0x9abc_def0u32)?;
    a.mov(edx, 0x0f1e_2d3cu32)?;
    a.xor(esi, esi)?;
    a.mov(edi, 0x1357_9bdfu32)?;
    a.mov(ecx, iters)?;
    let mut top = a.create_label();
    a.set_label(&mut top)?;
    a.add(eax, ebx)?;
    a.xor(edx, eax)?;
    a.shl(ebx, 3)?;
    a.sub(ebx, edx)?;
    a.inc(esi)?;
    a.add(edi, esi)?;
    a.xor(eax, edi)?;
    a.shl(edx, 1)?;
    a.cmp(edi, eax)?;
    a.sub(eax, 0x61c8_8647)?;
    a.dec(ecx)?;
    a.jnz(top)
}

/// The memory loop of `bench/guest/mem.S`, over 1024 dwords at 0x200000.
fn mem_loop(a: &mut CodeAssembler, iters: u32) -> core::result::Result<(), IcedError> {
    const ARRAY: u32 = 0x20_0000;
    a.xor(ebx, ebx)?;
    a.mov(edx, 0x2545_f491u32)?;
    a.mov(ecx, iters)?;
    let mut top = a.create_label();
    a.set_label(&mut top)?;
    a.mov(eax, ebx)?;
    a.and(eax, 1023)?;
    a.mov(esi, dword_ptr(eax * 4 + ARRAY))?;
    a.add(esi, edx)?;
    a.mov(dword_ptr(eax * 4 + ARRAY), esi)?;
    a.lea(edi, ptr(ebx + 0x155))?;
    a.and(edi, 1023)?;
    a.xor(edx, dword_ptr(edi * 4 + ARRAY))?;
    a.add(dword_ptr(edi * 4 + ARRAY), esi)?;
    a.add(ebx, 7)?;
    a.dec(ecx)?;
    a.jnz(top)
}

#[test]
fn the_alu_loop_ends_alike() {
    for (mode, bits) in [(Mode::Protected32, 32), (Mode::Long64, 64)] {
        let code = assemble(bits, |a| alu_loop(a, 5000));
        let cpu = both(mode, &code, 200_000);
        assert!(cpu.translation_stats().native_runs > 0, "{mode:?}");
    }
}

#[test]
fn the_memory_loop_ends_alike() {
    for (mode, bits) in [(Mode::Protected32, 32), (Mode::Long64, 64)] {
        let code = assemble(bits, |a| mem_loop(a, 5000));
        let cpu = both(mode, &code, 200_000);
        assert!(cpu.translation_stats().native_runs > 0, "{mode:?}");
    }
}

#[test]
fn a_loop_cut_by_the_budget_stops_at_the_same_cycle() {
    // 12-instruction passes against budgets that end inside a pass.
    for budget in [1_000, 1_001, 1_005, 4_099, 9_999] {
        let code = assemble(64, |a| alu_loop(a, 1_000_000));
        both(Mode::Long64, &code, budget);
    }
}

#[test]
fn code_that_rewrites_itself_runs_alike() {
    // The loop stores a new immediate into its own `add` each pass; every
    // pass must see the value the one before it wrote (SDM Vol. 3A §11.6).
    for (mode, bits) in [(Mode::Protected32, 32), (Mode::Long64, 64)] {
        let code = assemble(bits, |a| {
            let mut top = a.create_label();
            a.mov(ecx, 300u32)?; // 5 bytes
            a.xor(eax, eax)?; // 2
            a.set_label(&mut top)?;
            a.add(eax, ecx)?; // 2
                              // add edx, imm32 (81 C2 imm32): the immediate, at byte 11, is
                              // rewritten.
            a.db(&[0x81, 0xC2])?;
            a.dd(&[1])?;
            a.mov(ebx, (CODE + 11) as u32)?;
            a.mov(dword_ptr(ebx), eax)?;
            a.dec(ecx)?;
            a.jnz(top)
        });
        let cpu = both(mode, &code, 20_000);
        assert!(cpu.translation_stats().blocks_translated > 0, "{mode:?}");
    }
}

#[test]
fn a_fault_inside_a_translated_loop_leaves_its_rip_and_no_partial_state() {
    // Each pass loads from 1 MiB further on; past the end of RAM the load
    // takes an EPT violation. The exit names the load's RIP, and the
    // registers hold what the instructions before it left.
    let code = assemble(64, |a| {
        let mut top = a.create_label();
        a.mov(rbx, CODE)?;
        a.xor(esi, esi)?;
        a.set_label(&mut top)?;
        a.inc(esi)?;
        a.add(rdi, rsi)?;
        a.mov(rax, qword_ptr(rbx))?;
        a.add(rbx, 0x10_0000)?;
        a.jmp(top)
    });
    let cpu = both(Mode::Long64, &code, 100_000);
    assert_eq!(
        cpu.vmread(x86::vmx::field::VM_EXIT_REASON).unwrap(),
        u64::from(x86::vmx::exit_reason::EPT_VIOLATION)
    );
    assert!(cpu.gprs()[3] >= RAM, "rbx {:#x}", cpu.gprs()[3]);
}

#[test]
fn a_kick_is_taken_within_the_poll_interval_in_a_translated_loop() {
    use x86::vmx::{exit_reason, field as f, pin};
    let code = assemble(64, |a| alu_loop(a, u32::MAX));
    let mut cpu = machine(Mode::Long64, &code);
    cpu.set_translation(true);
    cpu.set_translation_threshold(0);
    let pinv = cpu.vmread(f::PIN_BASED_VM_EXEC_CONTROL).unwrap();
    cpu.vmwrite(
        f::PIN_BASED_VM_EXEC_CONTROL,
        pinv | u64::from(pin::EXT_INTR_EXITING),
    )
    .unwrap();
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, u64::from(u32::MAX))
        .unwrap();
    let kicker = cpu.kicker();
    let kick = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        kicker.kick();
    });
    assert!(cpu.vmlaunch().is_ok());
    kick.join().unwrap();
    assert_eq!(
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16,
        exit_reason::EXTERNAL_INTERRUPT
    );
    assert!(cpu.translation_stats().native_runs > 0);
}

#[test]
fn translations_made_in_the_background_run_alike() {
    // The block is translated on another thread while the interpreter
    // goes on; the runs grow until its translation has come back and run.
    for (mode, bits) in [(Mode::Protected32, 32), (Mode::Long64, 64)] {
        let code = assemble(bits, |a| alu_loop(a, u32::MAX));
        let mut budget = 100_000;
        loop {
            let mut off = machine(mode, &code);
            let out_off = run(&mut off, budget);
            let mut on = machine(mode, &code);
            on.set_translation(true);
            on.set_translation_threshold(0);
            on.set_translation_background(true);
            let out_on = run(&mut on, budget);
            assert_eq!(result(&off, out_off), result(&on, out_on), "{mode:?}");
            if on.translation_stats().native_runs > 0 {
                break;
            }
            budget *= 4;
            assert!(budget < 1 << 34, "{mode:?}: no translation came back");
        }
    }
}

#[test]
fn calls_returns_pushes_and_pops_run_alike() {
    // A loop calling a function that saves, uses and restores registers.
    let code = assemble(64, |a| {
        let mut top = a.create_label();
        let mut f = a.create_label();
        let mut out = a.create_label();
        a.mov(rsp, 0x38_0000u64)?;
        a.mov(ecx, 3000u32)?;
        a.mov(rbx, 0x1234_5678_9abc_def0u64)?;
        a.set_label(&mut top)?;
        a.call(f)?;
        a.add(rax, rbx)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.jmp(out)?;
        a.set_label(&mut f)?;
        a.push(rbx)?;
        a.push(rsi)?;
        a.push(rsp)?;
        a.pop(rdx)?;
        a.push(si)?;
        a.pop(di)?;
        a.imul_2(rbx, rcx)?;
        a.mov(rsi, rbx)?;
        a.pop(rsi)?;
        a.pop(rbx)?;
        a.ret()?;
        a.set_label(&mut out)
    });
    for threshold in [0, 1, 32] {
        let cpu = both_at(Mode::Long64, &code, 100_000, threshold);
        assert!(cpu.translation_stats().native_runs > 0);
    }
}

#[test]
fn stack_faults_in_translated_code_leave_as_the_interpreter_does() {
    // A return to a non-canonical address (#GP with RSP as it was), a
    // push below the start of RAM and a pop past its end (EPT violations).
    let ret_gp = assemble(64, |a| {
        a.mov(rsp, 0x38_0000u64)?;
        a.mov(rax, 0x8000_0000_0000u64)?;
        a.push(rax)?;
        a.ret()
    });
    let push_out = assemble(64, |a| {
        a.xor(esp, esp)?;
        a.push(rax)
    });
    let pop_out = assemble(64, |a| {
        a.mov(rsp, RAM)?;
        a.pop(rax)
    });
    for code in [ret_gp, push_out, pop_out] {
        for threshold in [0, 1] {
            both_at(Mode::Long64, &code, 10_000, threshold);
        }
    }
}

/// Found by the fuzz target: `std; jns $-1` (a loop whose flags come from
/// the processor, not from the block) translated after it had run
/// interpreted.
#[test]
fn a_loop_translated_after_running_interpreted_keeps_the_processor_flags() {
    let code = [0xfd, 0x79, 0xfd, 0x2b, 0xfd];
    for threshold in [0, 1, 32] {
        both_at(Mode::Protected32, &code, 20_000, threshold);
    }
}

/// Scratch memory of the flag-consumer property test, reached through EBP.
const SCRATCH: u32 = 0x30_0000;

/// Appends instruction `k` of a small alphabet that mixes what sets flags
/// in every way the translator tracks (ALU, INC/DEC of registers and
/// memory, shifts by constants and by CL, IMUL, ADC/SBB, NEG, rotates)
/// with what reads them (SETcc, CMOVcc, ADC/SBB, INC/DEC keeping CF), and
/// the extensions; `x` and `y` pick registers, `cc` a condition, `imm` an
/// immediate. `wide` uses 64-bit registers.
fn flag_op(
    a: &mut CodeAssembler,
    wide: bool,
    k: u8,
    x: u8,
    y: u8,
    cc: u8,
    imm: i32,
) -> core::result::Result<(), IcedError> {
    let g32 = [eax, ebx, edx, esi, edi];
    let g64 = [rax, rbx, rdx, rsi, rdi];
    let g16 = [ax, bx, dx, si, di];
    let g8 = [al, bl, dl, ah, bh, dh];
    let (d, s) = (g32[x as usize % 5], g32[y as usize % 5]);
    let (dq, sq) = (g64[x as usize % 5], g64[y as usize % 5]);
    let (dw, sw) = (g16[x as usize % 5], g16[y as usize % 5]);
    let (db, sb) = (g8[x as usize % 6], g8[y as usize % 6]);
    let m = dword_ptr(ebp + (i32::from(y % 16) * 4));
    let mb = byte_ptr(ebp + (i32::from(y % 64)));
    match k % KINDS {
        0 if wide => a.imul_2(dq, sq),
        0 => a.imul_2(d, s),
        1 => a.imul_3(d, s, imm),
        2 => a.imul_2(d, m),
        3 => a.imul_3(dw, sw, imm as i16 as i32),
        4 => a.movzx(d, sb),
        5 => a.movsx(d, sw),
        6 => a.movzx(d, mb),
        7 if wide => a.movsxd(dq, s),
        7 => a.movsx(d, mb),
        8 | 9 => {
            let dest = |a: &mut CodeAssembler, n: u8| -> core::result::Result<(), IcedError> {
                macro_rules! set {
                    ($($i:literal => $f:ident),*) => {
                        match cc % 16 {
                            $($i => if k % KINDS == 8 { a.$f(db) } else { a.$f(mb) },)*
                            _ => a.setg(db),
                        }
                    };
                }
                let _ = n;
                set!(0 => seto, 1 => setno, 2 => setb, 3 => setae, 4 => sete, 5 => setne,
                     6 => setbe, 7 => seta, 8 => sets, 9 => setns, 10 => setp, 11 => setnp,
                     12 => setl, 13 => setge, 14 => setle)
            };
            dest(a, 0)
        }
        10 | 11 => {
            macro_rules! cmov {
                ($($i:literal => $f:ident),*) => {
                    match cc % 16 {
                        $($i => if k % KINDS == 10 { a.$f(d, s) } else { a.$f(d, m) },)*
                        _ => a.cmovg(d, s),
                    }
                };
            }
            cmov!(0 => cmovo, 1 => cmovno, 2 => cmovb, 3 => cmovae, 4 => cmove, 5 => cmovne,
                  6 => cmovbe, 7 => cmova, 8 => cmovs, 9 => cmovns, 10 => cmovp, 11 => cmovnp,
                  12 => cmovl, 13 => cmovge, 14 => cmovle)
        }
        12 if wide => a.adc(dq, sq),
        12 => a.adc(d, s),
        13 => a.sbb(d, imm),
        14 => a.adc(db, sb),
        15 => a.sbb(d, m),
        16 => a.add(d, s),
        17 => a.sub(d, imm),
        18 => a.cmp(d, s),
        19 => a.shl(d, (imm as u32 % 31 + 1) as i32),
        20 => a.inc(d),
        21 => a.dec(dw),
        22 => a.test(d, s),
        23 => a.sar(d, (imm as u32 % 31 + 1) as i32),
        24 if wide => a.neg(dq),
        24 => a.neg(d),
        25 => a.neg(db),
        26 => a.not(dw),
        27 if wide => a.rol(dq, imm & 0x3F),
        27 => a.rol(d, imm & 0x1F),
        28 => a.ror(db, imm & 0x1F),
        29 => a.rol(dw, imm & 0x1F),
        30 => a.ror(d, 1),
        // By CL, the loop's counter: a count of 0 (which changes no flag)
        // every 32 passes.
        31 if wide => a.shl(dq, cl),
        31 => a.shl(d, cl),
        32 => a.shr(dw, cl),
        33 => a.sar(db, cl),
        34 => a.inc(m),
        _ => a.dec(mb),
    }
}

/// Kinds of instruction in [`flag_op`]'s alphabet.
const KINDS: u8 = 36;

/// One instruction of [`flag_op`]'s alphabet: kind, registers, condition,
/// immediate.
type FlagOp = (u8, u8, u8, u8, i32);

/// Any value, one time in two a value at an edge of carries and
/// overflows (0, 1, all ones, the most and least signed ones).
fn edge<T>() -> impl Strategy<Value = T>
where
    T: Arbitrary + Copy + std::fmt::Debug + num_edges::Edges,
{
    prop_oneof![proptest::sample::select(T::EDGES.to_vec()), any::<T>(),]
}

/// The edge values of [`edge`].
mod num_edges {
    pub trait Edges: Sized + 'static {
        const EDGES: &'static [Self];
    }
    impl Edges for u32 {
        const EDGES: &'static [u32] = &[0, 1, u32::MAX, 0x7fff_ffff, 0x8000_0000, 0xffff, 0x8000];
    }
    impl Edges for i32 {
        const EDGES: &'static [i32] = &[0, 1, -1, i32::MAX, i32::MIN, 0x7fff, -0x8000];
    }
}

/// A loop of `ops` run `iters` times from registers `init`.
fn flag_loop(bits: u32, init: [u32; 5], ops: &[FlagOp], iters: u32) -> Vec<u8> {
    assemble(bits, |a| {
        for (r, v) in [eax, ebx, edx, esi, edi].into_iter().zip(init) {
            a.mov(r, v)?;
        }
        a.mov(ebp, SCRATCH)?;
        a.mov(ecx, iters)?;
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        for &(k, x, y, cc, imm) in ops {
            flag_op(a, bits == 64, k, x, y, cc, imm)?;
        }
        a.dec(ecx)?;
        a.jnz(top)
    })
}

#[test]
fn multiplies_extensions_and_flag_readers_run_alike() {
    // Every kind once, each reading the flags the one before it left, then
    // ADC and SBB of a register with itself (carry in with equal operands)
    // and by all ones.
    let mut ops: Vec<FlagOp> = (0..KINDS)
        .map(|k| (k, k, k.wrapping_mul(7), k, 0x7fff_0000 - i32::from(k)))
        .collect();
    ops.extend([
        (19, 1, 1, 0, 31),
        (12, 1, 1, 0, 0),
        (8, 2, 2, 2, 0),
        (13, 3, 3, 3, -1),
    ]);
    ops.extend([
        (12, 0, 0, 0, 0),
        (9, 4, 5, 3, 0),
        (15, 4, 4, 2, 0),
        (8, 1, 1, 2, 0),
    ]);
    for (mode, bits) in [(Mode::Protected32, 32), (Mode::Long64, 64)] {
        let init = [0x8000_0001, 0xffff_fffe, 0x1234_5678, 7, 0x4000_0000];
        let code = flag_loop(bits, init, &ops, 200);
        for threshold in [0, 1, 32] {
            let cpu = both_at(mode, &code, 40_000, threshold);
            assert!(cpu.translation_stats().native_runs > 0, "{mode:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_code_runs_alike_in_protected_mode(code in proptest::collection::vec(any::<u8>(), 1..256)) {
        both(Mode::Protected32, &code, 5_000);
    }

    #[test]
    fn random_code_runs_alike_in_long_mode(code in proptest::collection::vec(any::<u8>(), 1..256)) {
        both(Mode::Long64, &code, 5_000);
    }

    #[test]
    fn random_code_runs_alike_in_real_mode(code in proptest::collection::vec(any::<u8>(), 1..256)) {
        both(Mode::Real, &code, 5_000);
    }

    #[test]
    fn flag_setters_and_readers_run_alike(
        init in proptest::array::uniform5(edge::<u32>()),
        ops in proptest::collection::vec(
            (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), edge::<i32>()),
            1..24,
        ),
        wide in any::<bool>(),
        threshold in prop_oneof![Just(0u32), Just(1), Just(32)],
    ) {
        let (mode, bits) = if wide { (Mode::Long64, 64) } else { (Mode::Protected32, 32) };
        let code = flag_loop(bits, init, &ops, 100);
        both_at(mode, &code, 20_000, threshold);
    }
}

/// [`both_at`] on machines that `setup` adjusts first.
fn both_with(
    mode: Mode,
    code: &[u8],
    budget: u64,
    threshold: u32,
    setup: impl Fn(&mut SoftCpu),
) -> SoftCpu {
    let mut off = machine(mode, code);
    setup(&mut off);
    let out_off = run(&mut off, budget);
    let mut on = machine(mode, code);
    setup(&mut on);
    on.set_translation(true);
    on.set_translation_threshold(threshold);
    let out_on = run(&mut on, budget);
    assert_eq!(
        result(&off, out_off),
        result(&on, out_on),
        "{mode:?}, threshold {threshold}"
    );
    on
}

#[test]
fn reading_the_tsc_and_pausing_run_alike_under_each_control() {
    use x86::vmx::{field as f, proc, proc2};
    // RDTSC, RDTSCP and PAUSE inside a loop (and RDTSC first in a block,
    // after the branch back), then a spin loop that starts with PAUSE.
    let code = assemble(64, |a| {
        a.mov(ecx, 300)?;
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.rdtsc()?;
        a.mov(ebx, eax)?;
        a.pause()?;
        a.rdtscp()?;
        a.sub(eax, ebx)?;
        a.add(esi, eax)?;
        a.pause()?;
        a.add(edi, edx)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.mov(ecx, 300)?;
        let mut spin = a.create_label();
        a.set_label(&mut spin)?;
        a.pause()?;
        a.dec(ecx)?;
        a.jnz(spin)
    });
    let set = |cpu: &mut SoftCpu, procs: u32, procs2: u32| {
        let p = cpu.vmread(f::CPU_BASED_VM_EXEC_CONTROL).unwrap();
        cpu.vmwrite(f::CPU_BASED_VM_EXEC_CONTROL, p | u64::from(procs))
            .unwrap();
        let p2 = cpu.vmread(f::SECONDARY_VM_EXEC_CONTROL).unwrap();
        cpu.vmwrite(f::SECONDARY_VM_EXEC_CONTROL, p2 | u64::from(procs2))
            .unwrap();
        cpu.vmwrite(f::TSC_OFFSET, 0xFFFF_FFF0_0000_1234).unwrap();
        cpu.vmwrite(f::PLE_GAP, 64).unwrap();
        cpu.vmwrite(f::PLE_WINDOW, 4096).unwrap();
    };
    let cases: [(u32, u32); 6] = [
        (0, 0),
        (0, proc2::ENABLE_RDTSCP),
        (proc::USE_TSC_OFFSETTING, proc2::ENABLE_RDTSCP),
        (proc::RDTSC_EXITING, proc2::ENABLE_RDTSCP),
        (proc::PAUSE_EXITING, proc2::ENABLE_RDTSCP),
        (0, proc2::ENABLE_RDTSCP | proc2::PAUSE_LOOP_EXITING),
    ];
    for (procs, procs2) in cases {
        for threshold in [0, 1, 32] {
            let cpu = both_with(Mode::Long64, &code, 40_000, threshold, |c| {
                set(c, procs, procs2)
            });
            // Without "enable RDTSCP", RDTSCP raises #UD, which ends the run
            // (no IDT) before anything is translated.
            assert!(
                procs2 == 0 || cpu.translation_stats().native_runs > 0,
                "{procs:#x} {procs2:#x}"
            );
        }
    }
}
