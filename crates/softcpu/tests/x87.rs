//! The x87 FPU: loads and stores in every format, 80-bit arithmetic and its
//! flags, comparisons, the stack rules, the control instructions, #NM and
//! #MF, FSTENV/FSAVE and the FXSAVE image.

mod fp;

use fp::{doubles, peek, peek16, peek32, peek64, run, run_with, End, DATA};
use iced_x86::code_asm::*;

const IE: u16 = 1;
const ZE: u16 = 4;
const PE: u16 = 0x20;
const SF: u16 = 0x40;
const ES: u16 = 0x80;
const C0: u16 = 0x100;
const C1: u16 = 0x200;
const C2: u16 = 0x400;
const C3: u16 = 0x4000;

#[test]
fn add_in_double_and_store() {
    let cpu = run(
        |a| {
            a.fninit()?;
            a.fld(qword_ptr(DATA))?;
            a.fadd(qword_ptr(DATA + 8))?;
            a.fstp(qword_ptr(DATA + 16))
        },
        &doubles(&[1.5, 2.25]),
    );
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 16)), 3.75);
    assert_eq!(cpu.fpu().fsw, 0, "exact, stack balanced");
    assert_eq!(cpu.fpu().ftw, 0);
}

#[test]
fn one_third_in_extended_precision_rounds_up_and_sets_c1() {
    let cpu = run(
        |a| {
            a.fninit()?;
            a.fld1()?;
            a.fld(qword_ptr(DATA))?;
            a.fdivp(st1, st0)?;
            a.fnstsw(word_ptr(DATA + 32))?;
            a.fstp(tword_ptr(DATA + 16))
        },
        &doubles(&[3.0]),
    );
    let v = u128::from_le_bytes({
        let mut b = [0u8; 16];
        b[..10].copy_from_slice(&peek::<10>(&cpu, DATA + 16));
        b
    });
    // 1/3 = 0.AAAA…: significand 0xAAAA_AAAA_AAAA_AAAA|AAA… rounds up to …AB.
    assert_eq!(v, 0x3FFD_AAAA_AAAA_AAAA_AAAB);
    assert_eq!(peek16(&cpu, DATA + 32), PE | C1 | (7 << 11));
}

#[test]
fn fist_follows_the_rounding_control() {
    let cpu = run(
        |a| {
            a.fninit()?;
            for (i, cw) in [0x037Fu64, 0x077F, 0x0B7F, 0x0F7F].iter().enumerate() {
                a.mov(word_ptr(DATA + 64), *cw as u32)?;
                a.fldcw(word_ptr(DATA + 64))?;
                a.fld(qword_ptr(DATA))?;
                a.fistp(dword_ptr(DATA + 16 + 4 * i as u64))?;
                a.fld(qword_ptr(DATA + 8))?;
                a.fistp(dword_ptr(DATA + 32 + 4 * i as u64))?;
            }
            Ok(())
        },
        &doubles(&[2.5, -2.5]),
    );
    let got: Vec<i32> = (0..8)
        .map(|i| peek32(&cpu, DATA + 16 + 4 * i) as i32)
        .collect();
    // nearest-even, down, up, toward zero
    assert_eq!(got, [2, 2, 3, 2, -2, -3, -2, -2]);
    assert_eq!(cpu.fpu().fsw & PE, PE);
}

#[test]
fn fcomi_and_fucomi_set_eflags() {
    let cpu = run(
        |a| {
            a.fninit()?;
            a.fld(qword_ptr(DATA + 8))?; // 2
            a.fld(qword_ptr(DATA))?; // 1
            a.fcomi(st0, st1)?;
            a.pushfq()?;
            a.pop(rax)?;
            a.mov(qword_ptr(DATA + 32), rax)?;
            a.fld(qword_ptr(DATA + 16))?; // NaN
            a.fucomip(st0, st1)?;
            a.pushfq()?;
            a.pop(rax)?;
            a.mov(qword_ptr(DATA + 40), rax)?;
            a.fnstsw(ax)?;
            a.mov(word_ptr(DATA + 48), ax)
        },
        &doubles(&[1.0, 2.0, f64::NAN]),
    );
    assert_eq!(peek64(&cpu, DATA + 32) & 0x8D5, 0x1, "1 < 2: CF");
    assert_eq!(peek64(&cpu, DATA + 40) & 0x8D5, 0x45, "unordered: ZF PF CF");
    assert_eq!(peek16(&cpu, DATA + 48) & 0x3F, 0, "FUCOMI: a QNaN is quiet");
}

#[test]
fn fcom_sets_condition_codes_and_signals_on_qnan() {
    let cpu = run(
        |a| {
            a.fninit()?;
            a.fld(qword_ptr(DATA))?; // 1
            a.fcom(qword_ptr(DATA))?;
            a.fnstsw(word_ptr(DATA + 32))?;
            a.fcom(qword_ptr(DATA + 8))?; // vs NaN
            a.fnstsw(word_ptr(DATA + 34))
        },
        &doubles(&[1.0, f64::NAN]),
    );
    assert_eq!(peek16(&cpu, DATA + 32), C3 | (7 << 11));
    assert_eq!(peek16(&cpu, DATA + 34), C3 | C2 | C0 | IE | (7 << 11));
}

#[test]
fn stack_underflow_gives_the_indefinite() {
    let cpu = run(
        |a| {
            a.fninit()?;
            a.fadd_2(st0, st1)?;
            a.fstp(qword_ptr(DATA))
        },
        &[],
    );
    assert_eq!(peek64(&cpu, DATA), 0xFFF8_0000_0000_0000);
    assert_eq!(cpu.fpu().fsw, IE | SF | (1 << 11), "popped once");
}

#[test]
fn sqrt_and_prem() {
    let cpu = run(
        |a| {
            a.fninit()?;
            a.fld(qword_ptr(DATA))?; // 2
            a.fsqrt()?;
            a.fstp(tword_ptr(DATA + 32))?;
            a.fld(qword_ptr(DATA))?; // 2
            a.fld(qword_ptr(DATA + 8))?; // 7.5
            a.fprem()?;
            a.fnstsw(word_ptr(DATA + 48))?;
            a.fstp(qword_ptr(DATA + 16))
        },
        &doubles(&[2.0, 7.5]),
    );
    assert_eq!(peek64(&cpu, DATA + 32), 0xB504_F333_F9DE_6484);
    assert_eq!(peek16(&cpu, DATA + 40), 0x3FFF);
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 16)), 1.5);
    // Quotient 3: C1 = bit 0, C3 = bit 1, C0 = bit 2; C2 clear (complete).
    assert_eq!(peek16(&cpu, DATA + 48) & (C0 | C1 | C2 | C3), C1 | C3);
}

#[test]
fn ts_raises_nm_and_an_unmasked_exception_raises_mf_at_the_next_waiting_instruction() {
    let (_, end) = run_with(|a| a.fld1(), &[], x86::cr::CR0_TS, 0);
    assert_eq!(end, End::Exception(x86::exception::NM));
    let (_, end) = run_with(|a| a.wait(), &[], x86::cr::CR0_TS | x86::cr::CR0_MP, 0);
    assert_eq!(end, End::Exception(x86::exception::NM));
    let (_, end) = run_with(|a| a.wait(), &[], x86::cr::CR0_TS, 0);
    assert_eq!(end, End::Hlt, "WAIT ignores TS without MP");
    let (cpu, end) = run_with(
        |a| {
            a.fninit()?;
            a.mov(word_ptr(DATA + 64), 0x037Bu32)?; // unmask ZE
            a.fldcw(word_ptr(DATA + 64))?;
            a.fld1()?;
            a.fldz()?;
            a.fdivp(st1, st0)?;
            a.fnstsw(ax)?; // no-wait: no #MF
            a.mov(word_ptr(DATA + 66), ax)?;
            a.fld1()
        },
        &[],
        0,
        0,
    );
    assert_eq!(end, End::Exception(x86::exception::MF));
    let fsw = peek16(&cpu, DATA + 66);
    assert_eq!(fsw & 0xFF, ZE | ES, "fsw {fsw:#x}");
    assert_eq!(fsw & 0x8000, 0x8000, "B follows ES");
}

#[test]
fn fstenv_fldenv_and_fsave_frstor() {
    let cpu = run(
        |a| {
            a.fninit()?;
            a.fld1()?;
            a.fldpi()?;
            a.fnstenv(ptr(DATA))?;
            a.fnstcw(word_ptr(DATA + 200))?; // masks all after FNSTENV
            a.fnsave(ptr(DATA + 256))?;
            a.fnstsw(word_ptr(DATA + 202))?; // FNSAVE initialises
            a.frstor(ptr(DATA + 256))?;
            a.fstp(qword_ptr(DATA + 400))?;
            a.fstp(qword_ptr(DATA + 408))
        },
        &[],
    );
    assert_eq!(peek32(&cpu, DATA), 0xFFFF_037F);
    assert_eq!(peek32(&cpu, DATA + 4), 0xFFFF_3000, "TOP = 6");
    // R6 and R7 valid, the rest empty.
    assert_eq!(peek32(&cpu, DATA + 8), 0xFFFF_0FFF);
    assert_eq!(peek16(&cpu, DATA + 200), 0x037F);
    assert_eq!(peek16(&cpu, DATA + 202), 0);
    // FSAVE's registers: ST0 = π at offset 28.
    assert_eq!(peek64(&cpu, DATA + 256 + 28), 0xC90F_DAA2_2168_C235);
    assert_eq!(
        f64::from_bits(peek64(&cpu, DATA + 400)),
        std::f64::consts::PI
    );
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 408)), 1.0);
}

#[test]
fn fxsave_layout() {
    let cpu = run(
        |a| {
            a.fninit()?;
            a.fld1()?;
            a.fxsave64(ptr(DATA))?;
            a.fxsave64(ptr(DATA + 512))?;
            a.mov(dword_ptr(DATA + 512 + 24), 0x1F80 | 0x6000)?;
            a.fxrstor64(ptr(DATA + 512))
        },
        &[],
    );
    assert_eq!(peek16(&cpu, DATA), 0x037F);
    assert_eq!(peek16(&cpu, DATA + 2), 7 << 11);
    assert_eq!(peek::<1>(&cpu, DATA + 4)[0], 0x80, "abridged tag: R7 valid");
    assert_eq!(peek32(&cpu, DATA + 24), 0x1F80);
    assert_eq!(peek32(&cpu, DATA + 28), 0xFFFF, "MXCSR_MASK");
    assert_eq!(peek64(&cpu, DATA + 32), 0x8000_0000_0000_0000);
    assert_eq!(peek16(&cpu, DATA + 40), 0x3FFF);
    assert_eq!(cpu.fpu().mxcsr, 0x7F80, "FXRSTOR loaded MXCSR");
    let (_, end) = run_with(|a| a.fxsave(ptr(DATA + 8)), &[], 0, 0);
    assert_eq!(end, End::Exception(x86::exception::GP), "misaligned");
}

#[test]
fn fxam_and_fxtract_and_fscale() {
    let cpu = run(
        |a| {
            a.fninit()?;
            a.fxam()?;
            a.fnstsw(word_ptr(DATA + 32))?;
            a.fld(qword_ptr(DATA))?; // -48
            a.fxam()?;
            a.fnstsw(word_ptr(DATA + 34))?;
            a.fxtract()?;
            a.fstp(qword_ptr(DATA + 40))?; // significand -1.5
            a.fstp(qword_ptr(DATA + 48))?; // exponent 5
            a.fld(qword_ptr(DATA + 8))?; // 4.7
            a.fld1()?;
            a.fscale()?;
            a.fstp(qword_ptr(DATA + 56))
        },
        &doubles(&[-48.0, 4.7]),
    );
    assert_eq!(
        peek16(&cpu, DATA + 32) & (C0 | C1 | C2 | C3),
        C3 | C0,
        "empty"
    );
    assert_eq!(
        peek16(&cpu, DATA + 34) & (C0 | C1 | C2 | C3),
        C2 | C1,
        "negative normal"
    );
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 40)), -1.5);
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 48)), 5.0);
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 56)), 16.0);
}
