//! CMPXCHG8B and CMPXCHG16B: both outcomes, the LOCK prefix, and
//! CMPXCHG16B's alignment rule.

mod fp;

use fp::{peek64, run, run_with, End, DATA};
use iced_x86::code_asm::*;

const A: [u64; 2] = [0x1111_2222_3333_4444, 0x5555_6666_7777_8888];
const B: [u64; 2] = [0x9999_AAAA_BBBB_CCCC, 0xDDDD_EEEE_FFFF_0000];

fn data(v: [u64; 2]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Loads RDX:RAX = `expect`, RCX:RBX = B, runs `op` on [DATA + offset], SETZ R8B.
fn cmpxchg(
    expect: [u64; 2],
    op: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError> {
    move |a| {
        a.mov(rax, expect[0])?;
        a.mov(rdx, expect[1])?;
        a.mov(rbx, B[0])?;
        a.mov(rcx, B[1])?;
        a.xor(r8d, r8d)?;
        op(a)?;
        a.setz(r8b)
    }
}

#[test]
fn cmpxchg16b_stores_rcx_rbx_when_memory_equals_rdx_rax() {
    let cpu = run(
        cmpxchg(A, |a| a.lock().cmpxchg16b(xmmword_ptr(DATA))),
        &data(A),
    );
    let g = cpu.gprs();
    assert_eq!((peek64(&cpu, DATA), peek64(&cpu, DATA + 8)), (B[0], B[1]));
    assert_eq!((g[0], g[2]), (A[0], A[1]), "RDX:RAX unchanged");
    assert_eq!(g[8], 1, "ZF");
}

#[test]
fn cmpxchg16b_loads_memory_into_rdx_rax_on_a_mismatch() {
    let other = [A[0], A[1] ^ 1];
    let cpu = run(
        cmpxchg(other, |a| a.cmpxchg16b(xmmword_ptr(DATA))),
        &data(A),
    );
    let g = cpu.gprs();
    assert_eq!((peek64(&cpu, DATA), peek64(&cpu, DATA + 8)), (A[0], A[1]));
    assert_eq!((g[0], g[2]), (A[0], A[1]));
    assert_eq!(g[8], 0, "ZF clear");
}

#[test]
fn cmpxchg16b_on_an_unaligned_operand_is_gp_and_changes_nothing() {
    let mut d = data([0, 0]);
    d.extend(data(A));
    let (cpu, end) = run_with(
        cmpxchg(A, |a| a.cmpxchg16b(xmmword_ptr(DATA + 8))),
        &d,
        0,
        0,
    );
    assert_eq!(end, End::Exception(x86::exception::GP));
    assert_eq!((peek64(&cpu, DATA + 8), peek64(&cpu, DATA + 16)), (0, A[0]));
    assert_eq!(cpu.gprs()[0], A[0]);
}

#[test]
fn cmpxchg8b_in_64_bit_mode_zero_extends_edx_eax_on_a_mismatch() {
    let cpu = run(
        |a| {
            a.mov(rax, 0xFFFF_FFFF_0000_0000u64)?;
            a.mov(rdx, 0xFFFF_FFFF_0000_0000u64)?;
            a.lock().cmpxchg8b(qword_ptr(DATA))?;
            a.setz(r8b)
        },
        &data(A),
    );
    let g = cpu.gprs();
    assert_eq!((g[0], g[2]), (A[0] & 0xFFFF_FFFF, A[0] >> 32));
    assert_eq!(g[8], 0);
}

#[test]
fn lock_on_a_register_operand_is_ud() {
    // LOCK CMPXCHG16B with a register operand (F0 48 0F C7 C8): the encoding
    // has no register form, #UD with or without LOCK.
    let (_, end) = run_with(|a| a.db(&[0xF0, 0x48, 0x0F, 0xC7, 0xC8]), &[], 0, 0);
    assert_eq!(end, End::Exception(x86::exception::UD));
}
