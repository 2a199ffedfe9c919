//! INT3, INT1 and INTO (their VMX interruption types, instruction lengths,
//! gate-DPL and EXT rules) and the TSS: limits on the stack pointers and IST
//! slots read during delivery, and the I/O permission bitmap.
//!
//! Each test builds a guest with a GDT, IDT and TSS of its own (the harness
//! machine's page tables, EPT and controls underneath) and reads the answer
//! from the VM exit: an exception the bitmap selects, or the HLT of a
//! handler, or the I/O exit of a permitted access.

use softcpu::harness::{machine, Mode, CODE};
use softcpu::SoftCpu;
use x86::vmx::{exit_reason, field as f};

const GDT: u64 = 0x1000;
const IDT: u64 = 0x2000;
const TSS: u64 = 0x3000;
/// Handlers: a HLT each, so that reaching one is a HLT exit.
const HANDLER: u64 = 0x5000;
const RING0_STACK: u64 = 0x7_0000;
const IST1_STACK: u64 = 0x6_0000;
const RING3_STACK: u64 = 0x8_0000;

const K_CS64: u16 = 0x08;
const K_DS: u16 = 0x10;
const K_CS32: u16 = 0x18;
const U_CS32: u16 = 0x23;
const U_DS: u16 = 0x2B;
const U_CS64: u16 = 0x33;
const TSS_SEL: u16 = 0x38;

const INT_GATE: u64 = 0xE;

fn put(cpu: &mut SoftCpu, addr: u64, bytes: &[u8]) {
    cpu.memory_mut().write(addr, bytes).unwrap();
}

fn put64(cpu: &mut SoftCpu, addr: u64, v: u64) {
    put(cpu, addr, &v.to_le_bytes());
}

fn vmw(cpu: &mut SoftCpu, field: u32, v: u64) {
    cpu.vmwrite(field, v).unwrap();
}

fn vmr(cpu: &mut SoftCpu, field: u32) -> u64 {
    cpu.vmread(field).unwrap()
}

/// A guest at CPL `cpl` running `code`, with the GDT, IDT (every gate not
/// present) and a TSS of `tss_limit` whose ring-0 stack and IST1 are set.
fn guest(mode: Mode, cpl: u8, code: &[u8], tss_limit: u32) -> SoftCpu {
    let mut cpu = machine(mode, code);
    let gdt: [u64; 7] = [
        0,
        0x00AF_9B00_0000_FFFF, // 0x08 64-bit code, DPL 0
        0x00CF_9300_0000_FFFF, // 0x10 data, DPL 0
        0x00CF_9B00_0000_FFFF, // 0x18 32-bit code, DPL 0
        0x00CF_FB00_0000_FFFF, // 0x20 32-bit code, DPL 3
        0x00CF_F300_0000_FFFF, // 0x28 data, DPL 3
        0x00AF_FB00_0000_FFFF, // 0x30 64-bit code, DPL 3
    ];
    for (i, d) in gdt.iter().enumerate() {
        put64(&mut cpu, GDT + 8 * i as u64, *d);
    }
    // The TSS descriptor (busy); TR itself comes from the VMCS below.
    let tss_desc = 0x0000_8B00_0000_0000 | (TSS & 0xFFFF) << 16 | (TSS >> 16 & 0xFF) << 32;
    put64(
        &mut cpu,
        GDT + 0x38,
        tss_desc | u64::from(tss_limit & 0xFFFF),
    );
    put64(&mut cpu, GDT + 0x40, 0);
    for i in 0..0x100u64 {
        put64(&mut cpu, IDT + 8 * i, 0);
        put64(&mut cpu, IDT + 0x800 + 8 * i, 0);
    }
    put(&mut cpu, HANDLER, &[0xF4; 16]);
    let long = mode == Mode::Long64;
    if long {
        put64(&mut cpu, TSS + 4, RING0_STACK); // RSP0
        put64(&mut cpu, TSS + 0x24, IST1_STACK); // IST1
    } else {
        put64(&mut cpu, TSS + 4, RING0_STACK); // ESP0
        put64(&mut cpu, TSS + 8, u64::from(K_DS)); // SS0
    }
    // The I/O map base beyond the limit unless a test sets it.
    put(&mut cpu, TSS + 0x66, &0xFFFFu16.to_le_bytes());
    vmw(&mut cpu, f::GUEST_GDTR_BASE, GDT);
    vmw(&mut cpu, f::GUEST_GDTR_LIMIT, 0x47);
    vmw(&mut cpu, f::GUEST_IDTR_BASE, IDT);
    vmw(
        &mut cpu,
        f::GUEST_IDTR_LIMIT,
        if long { 0xFFF } else { 0x7FF },
    );
    vmw(&mut cpu, f::GUEST_TR_SELECTOR, u64::from(TSS_SEL));
    vmw(&mut cpu, f::GUEST_TR_BASE, TSS);
    vmw(&mut cpu, f::GUEST_TR_LIMIT, u64::from(tss_limit));
    vmw(&mut cpu, f::GUEST_TR_AR_BYTES, 0x8B);
    let (cs, cs_ar, ds, ds_ar) = match (long, cpl) {
        (true, 0) => (K_CS64, 0xA09B, K_DS, 0xC093),
        (true, _) => (U_CS64, 0xA0FB, U_DS, 0xC0F3),
        (false, 0) => (K_CS32, 0xC09B, K_DS, 0xC093),
        (false, _) => (U_CS32, 0xC0FB, U_DS, 0xC0F3),
    };
    vmw(&mut cpu, f::GUEST_CS_SELECTOR, u64::from(cs));
    vmw(&mut cpu, f::GUEST_CS_AR_BYTES, cs_ar);
    for (sel, ar) in [
        (f::GUEST_SS_SELECTOR, f::GUEST_SS_AR_BYTES),
        (f::GUEST_DS_SELECTOR, f::GUEST_DS_AR_BYTES),
        (f::GUEST_ES_SELECTOR, f::GUEST_ES_AR_BYTES),
        (f::GUEST_FS_SELECTOR, f::GUEST_FS_AR_BYTES),
        (f::GUEST_GS_SELECTOR, f::GUEST_GS_AR_BYTES),
    ] {
        vmw(&mut cpu, sel, u64::from(ds));
        vmw(&mut cpu, ar, ds_ar);
    }
    vmw(&mut cpu, f::GUEST_RSP, RING3_STACK);
    vmw(&mut cpu, f::VMX_PREEMPTION_TIMER_VALUE, 10_000);
    cpu
}

/// Points `vector` at the HLT handler: an interrupt gate of `dpl` with `ist`.
fn gate(cpu: &mut SoftCpu, vector: u8, dpl: u8, ist: u8, present: bool) {
    let long =
        vmr(cpu, f::VM_ENTRY_CONTROLS) & u64::from(x86::vmx::entry_ctl::IA32E_MODE_GUEST) != 0;
    let sel = if long { K_CS64 } else { K_CS32 };
    let attr = u64::from(present) << 7 | u64::from(dpl) << 5 | INT_GATE;
    let lo = (HANDLER & 0xFFFF)
        | u64::from(sel) << 16
        | u64::from(ist) << 32
        | attr << 40
        | (HANDLER >> 16 & 0xFFFF) << 48;
    if long {
        put64(cpu, IDT + 16 * u64::from(vector), lo);
        put64(cpu, IDT + 16 * u64::from(vector) + 8, HANDLER >> 32);
    } else {
        put64(cpu, IDT + 8 * u64::from(vector), lo);
    }
}

fn exception_bitmap(cpu: &mut SoftCpu, bits: u32) {
    vmw(cpu, f::EXCEPTION_BITMAP, u64::from(bits));
}

/// Enters the guest once and returns the basic exit reason.
fn enter(cpu: &mut SoftCpu) -> u16 {
    let r = cpu.vmlaunch();
    assert!(
        r.is_ok(),
        "{r:?}: error {:?}",
        cpu.vmread(f::VM_INSTRUCTION_ERROR)
    );
    vmr(cpu, f::VM_EXIT_REASON) as u16
}

/// (interruption information, error code, instruction length) of an exception exit.
fn exception_exit(cpu: &mut SoftCpu) -> (u64, u64, u64) {
    let reason = enter(cpu);
    assert_eq!(reason, exit_reason::EXCEPTION_NMI, "exit reason {reason}");
    (
        vmr(cpu, f::VM_EXIT_INTR_INFO),
        vmr(cpu, f::VM_EXIT_INTR_ERROR_CODE),
        vmr(cpu, f::VM_EXIT_INSTRUCTION_LEN),
    )
}

const VALID: u64 = 1 << 31;
const HAS_ERROR: u64 = 1 << 11;
/// Interruption information of a hardware exception with an error code.
fn hw_fault(vector: u64) -> u64 {
    VALID | HAS_ERROR | 3 << 8 | vector
}

// ------------------------------------------------------- INT3, INT1, INTO

#[test]
fn int3_is_a_breakpoint_software_exception_of_length_one() {
    let mut cpu = guest(Mode::Long64, 0, &[0xCC], 0x67);
    exception_bitmap(&mut cpu, 1 << 3);
    let (info, _, len) = exception_exit(&mut cpu);
    assert_eq!(info, VALID | 6 << 8 | 3, "type 6 (software exception), #BP");
    assert_eq!(len, 1);
    assert_eq!(vmr(&mut cpu, f::GUEST_RIP), CODE, "RIP at the INT3");
}

#[test]
fn int_3_with_an_immediate_is_a_software_interrupt_of_length_two() {
    // CD 03 is INT n: the exception bitmap does not apply to it (SDM Vol. 3C
    // §26.2), so it is delivered, and the #NP of its absent gate exits with
    // the INT n as the vectoring event (type 4, length 2).
    let mut cpu = guest(Mode::Long64, 0, &[0xCD, 0x03], 0x67);
    gate(&mut cpu, 3, 0, 0, false);
    exception_bitmap(&mut cpu, 1 << 3 | 1 << 11);
    let (info, code, len) = exception_exit(&mut cpu);
    assert_eq!(info, hw_fault(11));
    assert_eq!(code, 3 << 3 | 2, "IDT bit, EXT clear");
    assert_eq!(vmr(&mut cpu, f::IDT_VECTORING_INFO), VALID | 4 << 8 | 3);
    assert_eq!(len, 2);
}

#[test]
fn int1_is_a_privileged_software_exception_of_length_one() {
    let mut cpu = guest(Mode::Long64, 0, &[0xF1], 0x67);
    exception_bitmap(&mut cpu, 1 << 1);
    let (info, _, len) = exception_exit(&mut cpu);
    assert_eq!(
        info,
        VALID | 5 << 8 | 1,
        "type 5 (privileged software exception)"
    );
    assert_eq!(len, 1);
}

#[test]
fn into_with_of_set_is_an_overflow_software_exception() {
    let mut cpu = guest(Mode::Protected32, 0, &[0xCE], 0x67);
    exception_bitmap(&mut cpu, 1 << 4);
    vmw(&mut cpu, f::GUEST_RFLAGS, 0x802);
    let (info, _, len) = exception_exit(&mut cpu);
    assert_eq!(info, VALID | 6 << 8 | 4);
    assert_eq!(len, 1);
}

#[test]
fn int3_is_delivered_through_the_idt_past_the_instruction() {
    let mut cpu = guest(Mode::Long64, 3, &[0xCC], 0x67);
    gate(&mut cpu, 3, 3, 0, true);
    assert_eq!(enter(&mut cpu), exit_reason::HLT);
    // The handler runs at CPL 0 on RSP0, with the return RIP after the INT3.
    assert_eq!(vmr(&mut cpu, f::GUEST_CS_SELECTOR), u64::from(K_CS64));
    let rsp = vmr(&mut cpu, f::GUEST_RSP);
    assert_eq!(rsp, RING0_STACK - 40);
    let mut frame = [0u8; 8];
    cpu.memory().read(rsp, &mut frame).unwrap();
    assert_eq!(u64::from_le_bytes(frame), CODE + 1);
}

#[test]
fn int3_at_cpl3_through_a_dpl0_gate_is_gp_without_ext() {
    let mut cpu = guest(Mode::Long64, 3, &[0xCC], 0x67);
    gate(&mut cpu, 3, 0, 0, true);
    exception_bitmap(&mut cpu, 1 << 13);
    let (info, code, _) = exception_exit(&mut cpu);
    assert_eq!(info, hw_fault(13));
    assert_eq!(code, 3 << 3 | 2, "IDT bit, EXT clear");
}

#[test]
fn int1_at_cpl3_ignores_the_gate_dpl() {
    let mut cpu = guest(Mode::Long64, 3, &[0xF1], 0x67);
    gate(&mut cpu, 1, 0, 0, true);
    exception_bitmap(&mut cpu, 1 << 13);
    assert_eq!(enter(&mut cpu), exit_reason::HLT);
    assert_eq!(vmr(&mut cpu, f::GUEST_CS_SELECTOR), u64::from(K_CS64));
}

#[test]
fn a_fault_delivering_int1_has_ext_set() {
    let mut cpu = guest(Mode::Long64, 0, &[0xF1], 0x67);
    gate(&mut cpu, 1, 0, 0, false);
    exception_bitmap(&mut cpu, 1 << 11);
    let (info, code, _) = exception_exit(&mut cpu);
    assert_eq!(info, hw_fault(11));
    assert_eq!(code, 1 << 3 | 2 | 1, "IDT bit and EXT");
}

// ------------------------------------------------------- TSS limits

/// INT3 from CPL 3 through a DPL-3 gate to ring 0: the stack switch reads
/// RSP0 (or ESP0 and SS0) below `limit`.
fn ring_change(mode: Mode, limit: u32, ist: u8) -> SoftCpu {
    let mut cpu = guest(mode, 3, &[0xCC], limit);
    gate(&mut cpu, 3, 3, ist, true);
    exception_bitmap(&mut cpu, 1 << 10);
    cpu
}

#[test]
fn rsp0_within_the_tss_limit_is_used() {
    let mut cpu = ring_change(Mode::Long64, 0xB, 0);
    assert_eq!(enter(&mut cpu), exit_reason::HLT);
    assert_eq!(vmr(&mut cpu, f::GUEST_RSP), RING0_STACK - 40);
}

#[test]
fn rsp0_beyond_the_tss_limit_is_ts_with_the_tss_selector() {
    let mut cpu = ring_change(Mode::Long64, 0xA, 0);
    let (info, code, _) = exception_exit(&mut cpu);
    assert_eq!(info, hw_fault(10));
    assert_eq!(code, u64::from(TSS_SEL), "EXT clear for INT3");
    // The INT3 is the event whose delivery failed.
    assert_eq!(vmr(&mut cpu, f::IDT_VECTORING_INFO), VALID | 6 << 8 | 3);
}

#[test]
fn an_ist_slot_beyond_the_tss_limit_is_ts() {
    let mut cpu = ring_change(Mode::Long64, 0x2B, 1);
    assert_eq!(enter(&mut cpu), exit_reason::HLT);
    assert_eq!(vmr(&mut cpu, f::GUEST_RSP), IST1_STACK - 40);
    let mut cpu = ring_change(Mode::Long64, 0x2A, 1);
    let (info, code, _) = exception_exit(&mut cpu);
    assert_eq!(info, hw_fault(10));
    assert_eq!(code, u64::from(TSS_SEL));
}

#[test]
fn an_external_event_gets_ext_in_the_ts_error_code() {
    // INT1 counts as external: EXT = 1.
    let mut cpu = guest(Mode::Long64, 3, &[0xF1], 0xA);
    gate(&mut cpu, 1, 0, 0, true);
    exception_bitmap(&mut cpu, 1 << 10);
    let (info, code, _) = exception_exit(&mut cpu);
    assert_eq!(info, hw_fault(10));
    assert_eq!(code, u64::from(TSS_SEL) | 1);
}

#[test]
fn esp0_and_ss0_must_lie_within_a_32_bit_tss_limit() {
    // ESP0 at 4..8, SS0 at 8..10: the limit must reach offset 9.
    let mut cpu = ring_change(Mode::Protected32, 9, 0);
    assert_eq!(enter(&mut cpu), exit_reason::HLT);
    assert_eq!(vmr(&mut cpu, f::GUEST_SS_SELECTOR), u64::from(K_DS));
    let mut cpu = ring_change(Mode::Protected32, 8, 0);
    let (info, code, _) = exception_exit(&mut cpu);
    assert_eq!(info, hw_fault(10));
    assert_eq!(code, u64::from(TSS_SEL));
}

// ------------------------------------------------------- the I/O bitmap

const IO_MAP: u64 = 0x68;

/// `code` at CPL 3 with IOPL 0 and an I/O bitmap at 0x68 of `bytes`, the
/// TSS limit covering exactly them.
fn io_guest(mode: Mode, code: &[u8], bytes: &[u8]) -> SoftCpu {
    let limit = IO_MAP as u32 + bytes.len() as u32 - 1;
    let mut cpu = guest(mode, 3, code, limit.max(0x67));
    put(&mut cpu, TSS + 0x66, &(IO_MAP as u16).to_le_bytes());
    put(&mut cpu, TSS + IO_MAP, bytes);
    exception_bitmap(&mut cpu, 1 << 13);
    cpu
}

/// The bitmap up to port 0x8F, all clear, plus the byte after it.
fn clear_map() -> Vec<u8> {
    vec![0; 0x90 / 8 + 1]
}

fn set_dx(cpu: &mut SoftCpu, v: u64) {
    let mut g = cpu.gprs();
    g[2] = v;
    cpu.set_gprs(&g);
}

fn gp0(cpu: &mut SoftCpu) {
    let (info, code, _) = exception_exit(cpu);
    assert_eq!(info, hw_fault(13));
    assert_eq!(code, 0);
}

#[test]
fn in_at_cpl3_with_a_clear_bitmap_bit_is_allowed() {
    for mode in [Mode::Long64, Mode::Protected32] {
        // in al, 0x80
        let mut cpu = io_guest(mode, &[0xE4, 0x80], &clear_map());
        assert_eq!(enter(&mut cpu), exit_reason::IO_INSTRUCTION, "{mode:?}");
    }
}

#[test]
fn in_at_cpl3_without_an_io_bitmap_is_gp() {
    // Limit 0x67: the map base field exists but the map lies beyond the limit.
    let mut cpu = io_guest(Mode::Long64, &[0xE4, 0x80], &[]);
    gp0(&mut cpu);
}

#[test]
fn a_set_bitmap_bit_is_gp() {
    let mut map = clear_map();
    map[0x80 / 8] = 1;
    // out 0x80, al
    let mut cpu = io_guest(Mode::Long64, &[0xE6, 0x80], &map);
    gp0(&mut cpu);
}

#[test]
fn every_port_of_a_wide_access_is_checked_across_bitmap_bytes() {
    // in eax, dx with DX = 0x7E: ports 0x7E..0x81, bit 0x81 set.
    let mut map = clear_map();
    map[0x81 / 8] = 1 << 1;
    let mut cpu = io_guest(Mode::Long64, &[0xED], &map);
    set_dx(&mut cpu, 0x7E);
    gp0(&mut cpu);
    // The same access with only port 0x82 set is allowed.
    let mut map = clear_map();
    map[0x82 / 8] = 1 << 2;
    let mut cpu = io_guest(Mode::Long64, &[0xED], &map);
    set_dx(&mut cpu, 0x7E);
    assert_eq!(enter(&mut cpu), exit_reason::IO_INSTRUCTION);
}

#[test]
fn the_second_bitmap_byte_must_lie_within_the_limit() {
    // Port 0x80 reads bitmap bytes 0x10 and 0x11; the limit ends at 0x10.
    let map = vec![0; 0x80 / 8 + 1];
    let mut cpu = io_guest(Mode::Long64, &[0xE4, 0x80], &map);
    gp0(&mut cpu);
}

#[test]
fn cpl_at_or_below_iopl_skips_the_bitmap() {
    let mut map = clear_map();
    map[0x80 / 8] = 1;
    let mut cpu = io_guest(Mode::Long64, &[0xE4, 0x80], &map);
    vmw(&mut cpu, f::GUEST_RFLAGS, 0x3002);
    assert_eq!(enter(&mut cpu), exit_reason::IO_INSTRUCTION);
}
