//! The specialised handlers against the general path: each form runs in a
//! bare long-mode machine from random registers, memory and status flags
//! (after a flag-setting instruction whose flags may still be pending), once
//! with specialised handlers and once with the general path only; every
//! register, the memory operand, the flags and the virtual time must agree.

use crate::harness::{machine, run, Mode};
use proptest::prelude::*;
use std::cell::Cell;

thread_local! {
    /// While set, decoding picks the general handler for every instruction.
    pub(crate) static GENERAL_ONLY: Cell<bool> = const { Cell::new(false) };
}

/// Where RBX points: the memory operand of the forms that have one.
const DATA: u64 = 0x20_0000;

/// Instructions whose flags may be pending when the form under test runs.
const BEFORE: &[&[u8]] = &[
    &[],
    &[0x48, 0x39, 0xD0], // cmp rax, rdx
    &[0x48, 0x01, 0xF2], // add rdx, rsi
    &[0xFF, 0xC2],       // inc edx
    &[0x85, 0xC8],       // test eax, ecx
    &[0xFE, 0xC9],       // dec cl
    &[0x28, 0xD0],       // sub al, dl
];

/// The forms with specialised handlers (operands RAX/RCX/RDX, [RBX]).
const FORMS: &[&[u8]] = &[
    // IMUL
    &[0x48, 0x0F, 0xAF, 0xC1],
    &[0x0F, 0xAF, 0xC1],
    &[0x66, 0x0F, 0xAF, 0xC1],
    &[0x48, 0x0F, 0xAF, 0x03],
    &[0x48, 0x6B, 0xC1, 0x85],
    &[0x69, 0xC1, 0x78, 0x56, 0x34, 0x12],
    &[0x66, 0x69, 0xC1, 0x34, 0x92],
    &[0x48, 0x6B, 0x03, 0x07],
    // MOVSXD, MOVSX, MOVZX
    &[0x48, 0x63, 0xC1],
    &[0x48, 0x63, 0x03],
    &[0x63, 0xC1],
    &[0x0F, 0xBE, 0xC1],
    &[0x48, 0x0F, 0xBE, 0xC5],
    &[0x0F, 0xBE, 0xC5],
    &[0x48, 0x0F, 0xBF, 0xC1],
    &[0x66, 0x0F, 0xBE, 0xC1],
    &[0x0F, 0xBF, 0x03],
    &[0x0F, 0xB6, 0xC1],
    &[0x0F, 0xB6, 0xC4],
    &[0x48, 0x0F, 0xB7, 0xC1],
    &[0x66, 0x0F, 0xB6, 0xC1],
    &[0x0F, 0xB6, 0x03],
    // SETcc (all conditions: below), into AH and memory
    &[0x0F, 0x92, 0xC4],
    &[0x0F, 0x94, 0x03],
    // ADC, SBB
    &[0x48, 0x11, 0xC8],
    &[0x11, 0xC8],
    &[0x10, 0xC8],
    &[0x66, 0x11, 0xC8],
    &[0x48, 0x83, 0xD0, 0x05],
    &[0x80, 0xD4, 0xFF],
    &[0x48, 0x13, 0x03],
    &[0x48, 0x11, 0x0B],
    &[0x48, 0x83, 0x13, 0x07],
    &[0x48, 0x81, 0x13, 0x00, 0x00, 0x00, 0x80],
    &[0x48, 0x19, 0xC8],
    &[0x18, 0xC8],
    &[0x48, 0x83, 0xD8, 0x05],
    &[0x48, 0x1B, 0x03],
    &[0x48, 0x19, 0x0B],
    &[0x48, 0x83, 0x1B, 0x80],
    // CMOVcc (all conditions: below), 32-bit, memory, 16-bit
    &[0x0F, 0x44, 0xC1],
    &[0x48, 0x0F, 0x42, 0x03],
    &[0x66, 0x0F, 0x45, 0xC1],
    // CALL rel32 (to the next instruction), RET (lea rax,[rip+2]; push rax; ret)
    &[0xE8, 0x00, 0x00, 0x00, 0x00],
    &[0x48, 0x8D, 0x05, 0x02, 0x00, 0x00, 0x00, 0x50, 0xC3],
    // NOP
    &[0x90],
    &[0x0F, 0x1F, 0x00],
    &[0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00],
    // ROL, ROR by an immediate and by 1; shifts and rotates by CL (RCX is random)
    &[0x48, 0xC1, 0xC0, 0x05],
    &[0xC1, 0xC8, 0x1F],
    &[0xD0, 0xC0],
    &[0x66, 0xD1, 0xC8],
    &[0xC0, 0xC4, 0x03],
    &[0x48, 0xD3, 0xE0],
    &[0xD3, 0xE8],
    &[0x66, 0xD3, 0xFA],
    &[0x48, 0xD3, 0xC2],
    &[0xD2, 0xC8],
    // NEG, NOT of registers; INC, DEC of memory
    &[0x48, 0xF7, 0xD8],
    &[0xF7, 0xD8],
    &[0xF6, 0xDC],
    &[0x66, 0xF7, 0xDA],
    &[0x48, 0xF7, 0xD0],
    &[0xF7, 0xD1],
    &[0xF6, 0xD4],
    &[0x48, 0xFF, 0x03],
    &[0xFF, 0x0B],
    &[0xFE, 0x03],
    &[0x66, 0xFF, 0x0B],
    // The older specialised forms
    &[0x48, 0x01, 0xC8],
    &[0x29, 0x0B],
    &[0x48, 0x83, 0x03, 0x80],
    &[0x48, 0x3B, 0x03],
    &[0x48, 0xC1, 0xE0, 0x05],
    &[0xD1, 0xF9],
    &[0x48, 0xC1, 0xE9, 0x3F],
    &[0xC0, 0xE4, 0x07],
    &[0x48, 0xC1, 0xF8, 0x40],
    &[0x66, 0xC1, 0xF8, 0x0F],
    &[0xD0, 0xE1],
    &[0x48, 0xFF, 0xC8],
    &[0x48, 0x8D, 0x44, 0x8B, 0x10],
];

/// Every form: the list above and SETcc CL / CMOVcc RAX, RCX for all 16 conditions.
fn all_forms() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = FORMS.iter().map(|f| f.to_vec()).collect();
    for cc in 0..16u8 {
        v.push(vec![0x0F, 0x90 + cc, 0xC1]);
        v.push(vec![0x48, 0x0F, 0x40 + cc, 0xC1]);
        // A conditional jump over one byte (a NOP) taken or not.
        v.push(vec![0x70 + cc, 0x01, 0x90]);
    }
    v
}

fn mov_imm(code: &mut Vec<u8>, reg: u8, value: u64) {
    code.extend_from_slice(&[0x48, 0xB8 + reg]);
    code.extend_from_slice(&value.to_le_bytes());
}

/// Registers, the memory operand and the virtual time after `form` ran
/// from the given state.
fn outcome(
    form: &[u8],
    before: &[u8],
    regs: [u64; 4],
    flags: u64,
    general: bool,
) -> ([u64; 16], u64, u64) {
    let mut code = Vec::new();
    mov_imm(&mut code, 0, regs[0]);
    mov_imm(&mut code, 1, regs[1]);
    mov_imm(&mut code, 2, regs[2]);
    mov_imm(&mut code, 6, regs[3]);
    mov_imm(&mut code, 3, DATA);
    code.extend_from_slice(&[0x48, 0x89, 0x33]); // mov [rbx], rsi
    mov_imm(&mut code, 7, flags);
    code.extend_from_slice(&[0x57, 0x9D]); // push rdi; popfq
    code.extend_from_slice(before);
    code.extend_from_slice(form);
    code.extend_from_slice(&[0x9C, 0x5F]); // pushfq; pop rdi
    code.extend_from_slice(&[0x48, 0x8B, 0x33]); // mov rsi, [rbx]
    code.extend_from_slice(&[0xEB, 0xFE]); // jmp $
    GENERAL_ONLY.set(general);
    let mut cpu = machine(Mode::Long64, &code);
    let out = run(&mut cpu, 4_000);
    GENERAL_ONLY.set(false);
    let mut mem = [0u8; 8];
    cpu.memory().read(DATA, &mut mem).unwrap();
    (cpu.gprs(), u64::from_le_bytes(mem), out.cycles)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn specialised_handlers_match_the_general_path(
        form in 0..all_forms().len(),
        before in 0..BEFORE.len(),
        regs in any::<[u64; 4]>(),
        flags in any::<u64>(),
    ) {
        let forms = all_forms();
        let flags = (flags & x86::rflags::STATUS) | 2;
        let fast = outcome(&forms[form], BEFORE[before], regs, flags, false);
        let general = outcome(&forms[form], BEFORE[before], regs, flags, true);
        prop_assert_eq!(fast, general, "form {:02X?} after {:02X?}", forms[form], BEFORE[before]);
    }
}

/// The comparison is not vacuous: the general path really is taken when asked.
#[test]
fn general_only_changes_the_handler() {
    let ins = iced_x86::Decoder::new(64, &[0x48, 0x0F, 0xAF, 0xC1], 0).decode();
    let fast = super::specialised(&ins).expect("IMUL r64, r64 is specialised");
    GENERAL_ONLY.set(true);
    let chosen = super::super::select_handler(&ins);
    GENERAL_ONLY.set(false);
    assert_ne!(chosen as usize, fast as usize);
}

/// Every form compared above has a specialised handler (or the comparison
/// would be of the general path with itself).
#[test]
fn every_form_compared_is_specialised() {
    for form in all_forms() {
        let mut decoder = iced_x86::Decoder::new(64, &form, 0);
        while decoder.can_decode() {
            let ins = decoder.decode();
            assert!(
                super::specialised(&ins).is_some(),
                "{form:02X?}: {:?} has no specialised handler",
                ins.mnemonic()
            );
        }
    }
}
