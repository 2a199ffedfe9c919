//! Pure translation between Vigil's accelerator-neutral CPU state
//! ([`EntryState`], [`Registers`]) and KVM's `kvm_regs` / `kvm_sregs`.

use accel::{EntryMode, EntryState, Registers};
use kvm_bindings::{kvm_dtable, kvm_regs, kvm_segment, kvm_sregs};
use x86::cr::{CR0_ET, CR0_PE};
use x86::segment::{SYS_LDT, SYS_TSS_BUSY, TYPE_ACCESSED, TYPE_CODE, TYPE_RW};

/// The flat 32-bit code selector of the multiboot hand-off.
pub const FLAT_CODE_SELECTOR: u16 = 0x10;
/// The flat 32-bit data selector of the multiboot hand-off.
pub const FLAT_DATA_SELECTOR: u16 = 0x18;

/// Segment type: execute/read code, accessed.
const TYPE_CODE_EXEC_READ_ACCESSED: u8 = (TYPE_CODE | TYPE_RW | TYPE_ACCESSED) as u8;
/// Segment type: read/write data, accessed.
const TYPE_DATA_READ_WRITE_ACCESSED: u8 = (TYPE_RW | TYPE_ACCESSED) as u8;
/// System segment type: busy 32-bit TSS.
const TYPE_TSS32_BUSY: u8 = SYS_TSS_BUSY as u8;
/// System segment type: LDT.
const TYPE_LDT: u8 = SYS_LDT as u8;

/// A flat 4 GiB ring-0 segment of the given type and selector.
fn flat_segment(selector: u16, type_: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xFFFF_FFFF,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: 1,
        s: 1,
        l: 0,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// CS of the multiboot hand-off: selector 0x10, base 0, limit 4 GiB,
/// execute/read accessed code, 32-bit, ring 0.
pub fn flat_code_segment() -> kvm_segment {
    flat_segment(FLAT_CODE_SELECTOR, TYPE_CODE_EXEC_READ_ACCESSED)
}

/// DS/ES/SS/FS/GS of the multiboot hand-off: selector 0x18, base 0,
/// limit 4 GiB, read/write accessed data, 32-bit, ring 0.
pub fn flat_data_segment() -> kvm_segment {
    flat_segment(FLAT_DATA_SELECTOR, TYPE_DATA_READ_WRITE_ACCESSED)
}

/// A task register that VM entry accepts: a present busy 32-bit TSS at base 0
/// with the minimum 32-bit TSS limit. The guest never switches tasks through
/// it; a multiboot kernel loads its own TR if it needs one.
pub fn entry_task_register() -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0x67,
        selector: 0,
        type_: TYPE_TSS32_BUSY,
        present: 1,
        dpl: 0,
        db: 0,
        s: 0,
        l: 0,
        g: 0,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// An empty but valid LDT register (selector 0, present, base 0).
pub fn entry_ldt_register() -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xFFFF,
        selector: 0,
        type_: TYPE_LDT,
        present: 1,
        dpl: 0,
        db: 0,
        s: 0,
        l: 0,
        g: 0,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// The special registers for `entry`, starting from the vCPU's reset values
/// `initial` (of which only the APIC base is kept).
///
/// [`EntryMode::Protected32Flat`] is what `qemu-system-x86_64 -kernel` hands
/// a multiboot kernel: CR0 = PE|ET, paging off, CR3/CR4/EFER zero, flat
/// segments, GDTR and IDTR zero (the kernel loads its own).
pub fn entry_sregs(initial: &kvm_sregs, entry: &EntryState) -> kvm_sregs {
    match entry.mode {
        EntryMode::Protected32Flat => {
            let data = flat_data_segment();
            kvm_sregs {
                cs: flat_code_segment(),
                ds: data,
                es: data,
                fs: data,
                gs: data,
                ss: data,
                tr: entry_task_register(),
                ldt: entry_ldt_register(),
                gdt: kvm_dtable::default(),
                idt: kvm_dtable::default(),
                cr0: CR0_PE | CR0_ET,
                cr2: 0,
                cr3: 0,
                cr4: 0,
                cr8: 0,
                efer: 0,
                apic_base: initial.apic_base,
                interrupt_bitmap: [0; 4],
            }
        }
    }
}

/// The general registers for `entry`: RIP, RSP, RAX and RBX from it,
/// RFLAGS = 0x2 (interrupts off), everything else zero.
pub fn entry_regs(entry: &EntryState) -> kvm_regs {
    kvm_regs {
        rax: entry.rax,
        rbx: entry.rbx,
        rsp: entry.rsp,
        rip: entry.rip,
        rflags: x86::rflags::FIXED1,
        ..kvm_regs::default()
    }
}

/// Vigil's register snapshot from KVM's general and special registers.
pub fn registers_from_kvm(regs: &kvm_regs, sregs: &kvm_sregs) -> Registers {
    Registers {
        gpr: [
            regs.rax, regs.rcx, regs.rdx, regs.rbx, regs.rsp, regs.rbp, regs.rsi, regs.rdi,
            regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
        ],
        rip: regs.rip,
        rflags: regs.rflags,
        cr0: sregs.cr0,
        cr2: sregs.cr2,
        cr3: sregs.cr3,
        cr4: sregs.cr4,
        efer: sregs.efer,
        cs: sregs.cs.selector,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> EntryState {
        EntryState {
            mode: EntryMode::Protected32Flat,
            rip: 0x10_0000,
            rsp: 0x8_0000,
            rax: 0x2BAD_B002,
            rbx: 0x9000,
        }
    }

    #[test]
    fn protected32_flat_matches_the_multiboot_hand_off() {
        let initial = kvm_sregs {
            apic_base: 0xFEE0_0900,
            cr0: 0x6000_0010,
            ..kvm_sregs::default()
        };
        let s = entry_sregs(&initial, &entry());
        assert_eq!(s.cr0, 0x11);
        assert_eq!((s.cr3, s.cr4, s.efer), (0, 0, 0));
        assert_eq!(s.apic_base, 0xFEE0_0900);
        assert_eq!(s.cs.selector, 0x10);
        assert_eq!(s.cs.type_, 0xB);
        assert_eq!(
            (s.cs.s, s.cs.present, s.cs.db, s.cs.g, s.cs.l),
            (1, 1, 1, 1, 0)
        );
        assert_eq!((s.cs.base, s.cs.limit, s.cs.dpl), (0, 0xFFFF_FFFF, 0));
        for seg in [s.ds, s.es, s.fs, s.gs, s.ss] {
            assert_eq!(seg.selector, 0x18);
            assert_eq!(seg.type_, 0x3);
            assert_eq!((seg.s, seg.present, seg.db, seg.g), (1, 1, 1, 1));
            assert_eq!((seg.base, seg.limit), (0, 0xFFFF_FFFF));
        }
        assert_eq!((s.tr.type_, s.tr.present, s.tr.s), (11, 1, 0));
        assert_eq!((s.ldt.type_, s.ldt.present, s.ldt.s), (2, 1, 0));
    }

    #[test]
    fn entry_regs_carry_the_entry_state() {
        let r = entry_regs(&entry());
        assert_eq!(r.rip, 0x10_0000);
        assert_eq!(r.rsp, 0x8_0000);
        assert_eq!(r.rax, 0x2BAD_B002);
        assert_eq!(r.rbx, 0x9000);
        assert_eq!(r.rflags, 0x2);
        assert_eq!(
            (r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r15),
            (0, 0, 0, 0, 0, 0)
        );
    }

    #[test]
    fn registers_follow_encoding_order() {
        let regs = kvm_regs {
            rax: 0,
            rcx: 1,
            rdx: 2,
            rbx: 3,
            rsp: 4,
            rbp: 5,
            rsi: 6,
            rdi: 7,
            r8: 8,
            r9: 9,
            r10: 10,
            r11: 11,
            r12: 12,
            r13: 13,
            r14: 14,
            r15: 15,
            rip: 0x1234,
            rflags: 0x202,
        };
        let sregs = entry_sregs(&kvm_sregs::default(), &entry());
        let r = registers_from_kvm(&regs, &sregs);
        for (i, v) in r.gpr.iter().enumerate() {
            assert_eq!(*v, i as u64);
        }
        assert_eq!((r.rip, r.rflags, r.cr0, r.cs), (0x1234, 0x202, 0x11, 0x10));
    }
}
