//! SSE and SSE2: moves, integer and floating-point operations, MXCSR
//! rounding and exceptions (#XM, #UD without CR4.OSXMMEXCPT), the #UD and
//! #NM rules of CR0/CR4, MMX and its x87 aliasing.

mod fp;

use fp::{doubles, peek, peek32, peek64, run, run_with, End, DATA};
use iced_x86::code_asm::*;

fn u128_at(cpu: &softcpu::SoftCpu, addr: u64) -> u128 {
    u128::from_le_bytes(peek::<16>(cpu, addr))
}

#[test]
fn moves_and_integer_ops() {
    let data: Vec<u8> = (0u8..32).collect();
    let cpu = run(
        |a| {
            a.movdqa(xmm0, xmmword_ptr(DATA))?;
            a.movdqu(xmm1, xmmword_ptr(DATA + 1))?;
            a.paddb(xmm1, xmm0)?;
            a.movdqa(xmmword_ptr(DATA + 64), xmm1)?;
            a.pxor(xmm2, xmm2)?;
            a.pcmpeqb(xmm2, xmm0)?; // byte 0 equal to zero
            a.pmovmskb(eax, xmm2)?;
            a.mov(dword_ptr(DATA + 80), eax)?;
            a.pshufd(xmm3, xmm0, 0x1B)?;
            a.movdqa(xmmword_ptr(DATA + 96), xmm3)?;
            a.movq(rax, xmm0)?;
            a.mov(qword_ptr(DATA + 112), rax)?;
            a.movdqa(xmm4, xmm0)?;
            a.psrldq(xmm4, 3)?;
            a.psllw(xmm4, 4)?;
            a.movdqa(xmmword_ptr(DATA + 128), xmm4)?;
            a.punpcklbw(xmm0, xmm2)?;
            a.movdqa(xmmword_ptr(DATA + 144), xmm0)
        },
        &data,
    );
    let want: Vec<u8> = (0u8..16).map(|i| i + i + 1).collect();
    assert_eq!(peek::<16>(&cpu, DATA + 64).to_vec(), want);
    assert_eq!(peek32(&cpu, DATA + 80), 1);
    assert_eq!(
        u128_at(&cpu, DATA + 96),
        0x0302_0100_0706_0504_0B0A_0908_0F0E_0D0C
    );
    assert_eq!(peek64(&cpu, DATA + 112), 0x0706_0504_0302_0100);
    let src = u128::from_le_bytes(data[..16].try_into().unwrap());
    let shifted = src >> 24;
    let mut want = 0u128;
    for i in 0..8 {
        let w = ((shifted >> (16 * i)) as u16) << 4;
        want |= u128::from(w) << (16 * i);
    }
    assert_eq!(u128_at(&cpu, DATA + 128), want);
    // Low bytes interleaved with xmm2's (0xFF, then zeros).
    assert_eq!(peek::<4>(&cpu, DATA + 144), [0, 0xFF, 1, 0]);
}

#[test]
fn scalar_and_packed_double_arithmetic() {
    let cpu = run(
        |a| {
            a.movapd(xmm0, xmmword_ptr(DATA))?;
            a.addpd(xmm0, xmmword_ptr(DATA + 16))?;
            a.movapd(xmmword_ptr(DATA + 64), xmm0)?;
            a.movsd_2(xmm1, qword_ptr(DATA))?;
            a.divsd(xmm1, qword_ptr(DATA + 16))?;
            a.movsd_2(qword_ptr(DATA + 80), xmm1)?;
            a.sqrtsd(xmm2, qword_ptr(DATA + 24))?;
            a.movsd_2(qword_ptr(DATA + 88), xmm2)?;
            a.cvttsd2si(eax, qword_ptr(DATA + 32))?;
            a.mov(dword_ptr(DATA + 96), eax)?;
            a.cvtsd2si(rax, qword_ptr(DATA + 32))?;
            a.mov(qword_ptr(DATA + 104), rax)?;
            a.mov(eax, 7)?;
            a.cvtsi2ss(xmm3, eax)?;
            a.cvtss2sd(xmm3, xmm3)?;
            a.movsd_2(qword_ptr(DATA + 112), xmm3)?;
            a.stmxcsr(dword_ptr(DATA + 120))
        },
        &doubles(&[1.0, 2.0, 3.0, 2.0, -2.5, 0.0]),
    );
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 64)), 4.0);
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 72)), 4.0);
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 80)), 1.0 / 3.0);
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 88)), 2f64.sqrt());
    assert_eq!(peek32(&cpu, DATA + 96) as i32, -2);
    assert_eq!(peek64(&cpu, DATA + 104) as i64, -2, "ties to even");
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 112)), 7.0);
    assert_eq!(peek32(&cpu, DATA + 120), 0x1F80 | 0x20, "PE");
}

#[test]
fn rounding_control_and_comparisons() {
    let cpu = run(
        |a| {
            a.mov(dword_ptr(DATA + 200), 0x1F80 | 0x4000)?; // round up
            a.ldmxcsr(dword_ptr(DATA + 200))?;
            a.movsd_2(xmm0, qword_ptr(DATA))?;
            a.divsd(xmm0, qword_ptr(DATA + 8))?;
            a.movsd_2(qword_ptr(DATA + 64), xmm0)?;
            a.movsd_2(xmm1, qword_ptr(DATA + 16))?; // NaN
            a.ucomisd(xmm1, xmm0)?;
            a.pushfq()?;
            a.pop(rax)?;
            a.mov(qword_ptr(DATA + 72), rax)?;
            a.cmpsd_3(xmm1, xmm0, 3)?; // unordered
            a.movq(qword_ptr(DATA + 80), xmm1)?;
            a.maxsd(xmm0, qword_ptr(DATA + 16))?; // NaN source: returns it
            a.movsd_2(qword_ptr(DATA + 88), xmm0)
        },
        &doubles(&[1.0, 3.0, f64::NAN]),
    );
    assert_eq!(peek64(&cpu, DATA + 64), (1.0f64 / 3.0).to_bits() + 1);
    assert_eq!(peek64(&cpu, DATA + 72) & 0x8D5, 0x45);
    assert_eq!(peek64(&cpu, DATA + 80), u64::MAX);
    assert!(f64::from_bits(peek64(&cpu, DATA + 88)).is_nan());
    assert_eq!(
        cpu.fpu().mxcsr & 0x3F,
        0x21,
        "PE from the divide, IE from MAXSD"
    );
}

#[test]
fn unmasked_exceptions_raise_xm_or_ud_and_leave_the_destination() {
    let prog = |a: &mut CodeAssembler| {
        a.mov(dword_ptr(DATA + 200), 0x1F80 & !0x200)?; // unmask ZE
        a.ldmxcsr(dword_ptr(DATA + 200))?;
        a.movsd_2(xmm0, qword_ptr(DATA))?;
        a.divsd(xmm0, qword_ptr(DATA + 8))
    };
    let (cpu, end) = run_with(prog, &doubles(&[1.0, 0.0]), 0, 0);
    assert_eq!(end, End::Exception(x86::exception::XM));
    assert_eq!(cpu.fpu().xmm[0] as u64, 1f64.to_bits(), "unchanged");
    assert_eq!(cpu.fpu().mxcsr & 0x3F, 0x4, "ZE recorded");
    let (_, end) = run_with(prog, &doubles(&[1.0, 0.0]), 0, x86::cr::CR4_OSXMMEXCPT);
    assert_eq!(end, End::Exception(x86::exception::UD));
}

#[test]
fn control_register_checks() {
    let (_, end) = run_with(|a| a.addps(xmm0, xmm1), &[], 0, x86::cr::CR4_OSFXSR);
    assert_eq!(end, End::Exception(x86::exception::UD), "OSFXSR clear");
    let (_, end) = run_with(|a| a.addps(xmm0, xmm1), &[], x86::cr::CR0_EM, 0);
    assert_eq!(end, End::Exception(x86::exception::UD), "EM set");
    let (_, end) = run_with(|a| a.addps(xmm0, xmm1), &[], x86::cr::CR0_TS, 0);
    assert_eq!(end, End::Exception(x86::exception::NM), "TS set");
    let (_, end) = run_with(|a| a.movaps(xmm0, xmmword_ptr(DATA + 8)), &[], 0, 0);
    assert_eq!(end, End::Exception(x86::exception::GP), "misaligned MOVAPS");
    let (_, end) = run_with(|a| a.movups(xmm0, xmmword_ptr(DATA + 8)), &[], 0, 0);
    assert_eq!(end, End::Hlt, "MOVUPS may be misaligned");
    let (_, end) = run_with(|a| a.db(&[0x66, 0x0F, 0x38, 0x00, 0xC1]), &[], 0, 0);
    assert_eq!(
        end,
        End::Exception(x86::exception::UD),
        "PSHUFB (SSSE3) is not implemented"
    );
}

#[test]
fn mmx_aliases_the_x87_registers() {
    let cpu = run(
        |a| {
            a.fninit()?;
            a.mov(rax, 0x1122_3344_5566_7788u64)?;
            a.movq(mm1, rax)?;
            a.paddw(mm1, mm1)?;
            a.movq(qword_ptr(DATA), mm1)?;
            a.fnstsw(word_ptr(DATA + 8))?;
            a.fnstenv(ptr(DATA + 16))?;
            a.emms()?;
            a.fnstenv(ptr(DATA + 64))
        },
        &[],
    );
    assert_eq!(peek64(&cpu, DATA), 0x2244_6688_AACC_EF10);
    // All in use after MMX, tagged by contents: R1 special (exponent all
    // ones), the others zero.
    assert_eq!(peek32(&cpu, DATA + 16 + 8) & 0xFFFF, 0x5559);
    assert_eq!(
        peek32(&cpu, DATA + 64 + 8) & 0xFFFF,
        0xFFFF,
        "all empty after EMMS"
    );
    // R1 holds the value with an all-ones exponent.
    assert_eq!(cpu.fpu().regs[1] >> 64, 0xFFFF);
}

#[test]
fn packed_conversions_and_shuffles() {
    let cpu = run(
        |a| {
            a.movaps(xmm0, xmmword_ptr(DATA))?;
            a.cvtps2dq(xmm1, xmm0)?;
            a.movdqa(xmmword_ptr(DATA + 64), xmm1)?;
            a.cvtdq2pd(xmm2, xmm1)?;
            a.movapd(xmmword_ptr(DATA + 80), xmm2)?;
            a.shufps(xmm0, xmm0, 0x4E)?;
            a.movaps(xmmword_ptr(DATA + 96), xmm0)?;
            a.packsswb(xmm1, xmm1)?;
            a.movq(qword_ptr(DATA + 112), xmm1)
        },
        &[1.5f32, -2.5, 3e10, 300.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    // 1.5 → 2, −2.5 → −2, 3e10 → indefinite, 300 → 300.
    assert_eq!(peek::<16>(&cpu, DATA + 64), {
        let mut b = [0u8; 16];
        for (i, v) in [2i32, -2, i32::MIN, 300].iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    });
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 80)), 2.0);
    assert_eq!(f64::from_bits(peek64(&cpu, DATA + 88)), -2.0);
    assert_eq!(f32::from_bits(peek32(&cpu, DATA + 96)), 3e10);
    // The dwords read as words (2, 0, −2, −1, 0, −32768, 300, 0), saturated.
    assert_eq!(
        peek::<8>(&cpu, DATA + 112),
        [2, 0, 0xFE, 0xFF, 0, 0x80, 0x7F, 0]
    );
    assert_eq!(
        cpu.fpu().mxcsr & 0x3F,
        0x21,
        "IE from 3e10, PE from 1.5 and −2.5"
    );
}
