//! The reflection matrix: which exits from L2 belong to L1.
//!
//! An exit from vmcs02 happens because L0 or L1 (or both) asked for it, or
//! because the exit is unconditional. It goes to L1 when L1's vmcs12 asks
//! for it — read with the same rules the processor applies to a VMCS (SDM
//! Vol. 3C §26.1–§26.2) — and stays with L0 otherwise. Exits only L0 can
//! have caused (host interrupts, the preemption timer, EPT, bus locks) never
//! go to L1; notify exits are decided apart (`super::notify`).

use super::vmcs12::Vmcs12;
use x86::vmx::{exit_reason as er, field as f, intr_info, pin, proc, proc2};

/// What L0 knows about an exit from L2 when deciding where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExitFacts {
    /// Basic exit reason.
    pub reason: u16,
    /// Exit qualification.
    pub qualification: u64,
    /// VM-exit interruption information (exception and NMI exits).
    pub intr_info: u32,
    /// VM-exit interruption error code.
    pub intr_error_code: u32,
    /// L2's RCX (the MSR of RDMSR/WRMSR).
    pub rcx: u64,
    /// The general-purpose register a MOV to CR0/CR4 writes.
    pub cr_source: u64,
}

/// Bit `bit` of the bitmap at L1-physical `base` (unreadable bitmaps read
/// as all ones, so the exit goes to L1).
pub(crate) trait BitmapReader {
    /// Reads the bit.
    fn bit(&self, base: u64, bit: u64) -> bool;
}

/// Whether L1 asked for this exit.
pub(crate) fn l1_wants(e: &ExitFacts, v: &Vmcs12, mem: &impl BitmapReader) -> bool {
    let c = v.controls();
    let (pinv, procv, proc2v) = (c.pin, c.proc, c.proc2);
    let p = |bit: u32| procv & bit != 0;
    let p2 = |bit: u32| proc2v & bit != 0;
    match e.reason {
        er::EXCEPTION_NMI => exception_wanted(e, v, pinv),
        // L0's own host interrupts, timer, EPT and bus-lock detection.
        er::EXTERNAL_INTERRUPT
        | er::PREEMPTION_TIMER
        | er::EPT_VIOLATION
        | er::EPT_MISCONFIG
        | er::BUS_LOCK
        | er::NOTIFY => false,
        // Unconditional exits (SDM §26.1.2), and the triple fault and task
        // switch, which always exit.
        er::TRIPLE_FAULT
        | er::TASK_SWITCH
        | er::CPUID
        | er::INVD
        | er::VMCALL
        | er::VMCLEAR..=er::VMXON
        | er::INVEPT
        | er::INVVPID
        | er::XSETBV => true,
        er::INTERRUPT_WINDOW => p(proc::INTR_WINDOW_EXITING),
        er::NMI_WINDOW => p(proc::NMI_WINDOW_EXITING),
        er::HLT => p(proc::HLT_EXITING),
        er::INVLPG => p(proc::INVLPG_EXITING),
        er::RDPMC => p(proc::RDPMC_EXITING),
        er::RDTSC | er::RDTSCP => p(proc::RDTSC_EXITING),
        er::MWAIT => p(proc::MWAIT_EXITING),
        // Only L1 uses the TPR shadow (`super::tpr`).
        er::TPR_BELOW_THRESHOLD => p(proc::USE_TPR_SHADOW),
        er::MONITOR => p(proc::MONITOR_EXITING),
        er::PAUSE => p(proc::PAUSE_EXITING) || p2(proc2::PAUSE_LOOP_EXITING),
        // L1's control, or the pending MTF VM exit L1 injected (type 7);
        // the debugger's own MTF exits never get here.
        er::MONITOR_TRAP_FLAG => true,
        er::WBINVD => p2(proc2::WBINVD_EXITING),
        er::GDTR_IDTR | er::LDTR_TR => p2(proc2::DESC_TABLE_EXITING),
        er::DR_ACCESS => p(proc::MOV_DR_EXITING),
        er::CR_ACCESS => cr_wanted(e, v, procv),
        er::IO_INSTRUCTION => io_wanted(e.qualification, v, procv, mem),
        er::MSR_READ | er::MSR_WRITE => {
            if !p(proc::USE_MSR_BITMAPS) {
                return true;
            }
            let msr = e.rcx as u32;
            let base = v.get(f::MSR_BITMAP) + if e.reason == er::MSR_WRITE { 2048 } else { 0 };
            match msr {
                0..=0x1FFF => mem.bit(base, u64::from(msr)),
                0xC000_0000..=0xC000_1FFF => mem.bit(base + 1024, u64::from(msr - 0xC000_0000)),
                _ => true,
            }
        }
        // Anything else L0 handles (and reports if it cannot).
        _ => false,
    }
}

/// An exception or NMI exit: the NMI-exiting control, the exception bitmap,
/// and for #PF the error-code mask and match (SDM §26.2).
pub(crate) fn exception_wanted(e: &ExitFacts, v: &Vmcs12, pinv: u32) -> bool {
    let kind = (e.intr_info >> intr_info::TYPE_SHIFT) & 7;
    if kind == intr_info::TYPE_NMI {
        return pinv & pin::NMI_EXITING != 0;
    }
    let vector = e.intr_info & intr_info::VECTOR_MASK;
    let bitmap = v.get32(f::EXCEPTION_BITMAP);
    if vector == u32::from(x86::exception::PF) {
        let mask = v.get32(f::PAGE_FAULT_ERROR_CODE_MASK);
        let matched = v.get32(f::PAGE_FAULT_ERROR_CODE_MATCH);
        let set = bitmap & 1 << 14 != 0;
        return if e.intr_error_code & mask == matched {
            set
        } else {
            !set
        };
    }
    vector < 32 && bitmap & 1 << vector != 0
}

/// A control-register access (SDM §26.1.3 and Table 28-3): MOV to CR0/CR4
/// exits for L1 when it changes a bit L1 owns away from L1's read shadow;
/// CR3 and CR8 moves by their exiting controls; CLTS when L1 owns TS and
/// shadows it as 1; LMSW when it changes an owned bit of the low four, or
/// sets an owned PE shadowed as 0.
fn cr_wanted(e: &ExitFacts, v: &Vmcs12, procv: u32) -> bool {
    use x86::cr::{CR0_PE, CR0_TS};
    use x86::vmx::qualification as q;
    let cr = q::cr_number(e.qualification);
    let access = q::cr_access_type(e.qualification);
    let mask = |n| {
        if n == 0 {
            (v.get(f::CR0_GUEST_HOST_MASK), v.get(f::CR0_READ_SHADOW))
        } else {
            (v.get(f::CR4_GUEST_HOST_MASK), v.get(f::CR4_READ_SHADOW))
        }
    };
    match (access, cr) {
        (q::CR_MOV_TO, 0 | 4) => {
            let (m, shadow) = mask(cr);
            (e.cr_source ^ shadow) & m != 0
        }
        (q::CR_MOV_TO, 3) => procv & proc::CR3_LOAD_EXITING != 0,
        (q::CR_MOV_FROM, 3) => procv & proc::CR3_STORE_EXITING != 0,
        (q::CR_MOV_TO, 8) => procv & proc::CR8_LOAD_EXITING != 0,
        (q::CR_MOV_FROM, 8) => procv & proc::CR8_STORE_EXITING != 0,
        (q::CR_CLTS, _) => {
            let (m, shadow) = mask(0);
            m & CR0_TS != 0 && shadow & CR0_TS != 0
        }
        (q::CR_LMSW, _) => {
            let (m, shadow) = mask(0);
            let source = q::cr_lmsw_source(e.qualification);
            (m & 0xE & (source ^ shadow)) != 0
                || (m & CR0_PE != 0 && shadow & CR0_PE == 0 && source & CR0_PE != 0)
        }
        _ => true,
    }
}

/// Port I/O: unconditional I/O exiting, or the I/O bitmaps when L1 uses
/// them, for every port the access touches (SDM §26.1.3, §25.6.4).
fn io_wanted(qualification: u64, v: &Vmcs12, procv: u32, mem: &impl BitmapReader) -> bool {
    if procv & proc::USE_IO_BITMAPS == 0 {
        return procv & proc::UNCOND_IO_EXITING != 0;
    }
    let size = (qualification & 7) + 1;
    let port = (qualification >> 16) & 0xFFFF;
    (port..port + size).any(|p| {
        if p > 0xFFFF {
            return true;
        }
        if p < 0x8000 {
            mem.bit(v.get(f::IO_BITMAP_A), p)
        } else {
            mem.bit(v.get(f::IO_BITMAP_B), p - 0x8000)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use x86::vmx::qualification as q;

    /// Bitmaps as a set of (base, bit) pairs that are 1.
    #[derive(Default)]
    struct Bits(BTreeSet<(u64, u64)>);

    impl BitmapReader for Bits {
        fn bit(&self, base: u64, bit: u64) -> bool {
            self.0.contains(&(base, bit))
        }
    }

    fn facts(reason: u16) -> ExitFacts {
        ExitFacts {
            reason,
            qualification: 0,
            intr_info: 0,
            intr_error_code: 0,
            rcx: 0,
            cr_source: 0,
        }
    }

    fn vmcs(procv: u32, proc2v: u32) -> Vmcs12 {
        let mut v = Vmcs12::new();
        v.set(f::CPU_BASED_VM_EXEC_CONTROL, u64::from(procv));
        v.set(f::SECONDARY_VM_EXEC_CONTROL, u64::from(proc2v));
        v
    }

    #[test]
    fn unconditional_exits_and_l0_only_exits() {
        let v = vmcs(0, 0);
        let m = Bits::default();
        for r in [
            er::TRIPLE_FAULT,
            er::CPUID,
            er::VMCALL,
            er::VMLAUNCH,
            er::VMXON,
            er::INVEPT,
            er::XSETBV,
            er::TASK_SWITCH,
        ] {
            assert!(l1_wants(&facts(r), &v, &m), "{r}");
        }
        for r in [
            er::EXTERNAL_INTERRUPT,
            er::PREEMPTION_TIMER,
            er::EPT_VIOLATION,
            er::BUS_LOCK,
            er::NOTIFY,
        ] {
            assert!(!l1_wants(&facts(r), &v, &m), "{r}");
        }
    }

    #[test]
    fn exiting_controls_decide() {
        let m = Bits::default();
        let cases = [
            (er::HLT, proc::HLT_EXITING, 0),
            (er::RDTSC, proc::RDTSC_EXITING, 0),
            (er::INVLPG, proc::INVLPG_EXITING, 0),
            (er::DR_ACCESS, proc::MOV_DR_EXITING, 0),
            (er::INTERRUPT_WINDOW, proc::INTR_WINDOW_EXITING, 0),
            (er::PAUSE, proc::PAUSE_EXITING, 0),
            (er::TPR_BELOW_THRESHOLD, proc::USE_TPR_SHADOW, 0),
            (
                er::WBINVD,
                proc::ACTIVATE_SECONDARY_CONTROLS,
                proc2::WBINVD_EXITING,
            ),
            (
                er::GDTR_IDTR,
                proc::ACTIVATE_SECONDARY_CONTROLS,
                proc2::DESC_TABLE_EXITING,
            ),
        ];
        for (reason, p, p2) in cases {
            assert!(
                l1_wants(&facts(reason), &vmcs(p, p2), &m),
                "{reason} wanted"
            );
            assert!(
                !l1_wants(&facts(reason), &vmcs(0, 0), &m),
                "{reason} unwanted"
            );
        }
        // Secondary controls count only when activated.
        assert!(!l1_wants(
            &facts(er::WBINVD),
            &vmcs(0, proc2::WBINVD_EXITING),
            &m
        ));
    }

    #[test]
    fn exceptions_follow_the_bitmap_and_page_faults_the_mask_and_match() {
        let m = Bits::default();
        let mut v = vmcs(0, 0);
        v.set(f::EXCEPTION_BITMAP, 1 << 17 | 1 << 14);
        let mut e = facts(er::EXCEPTION_NMI);
        e.intr_info = intr_info::make(17, intr_info::TYPE_HW_EXCEPTION, true);
        assert!(l1_wants(&e, &v, &m));
        e.intr_info = intr_info::make(1, intr_info::TYPE_HW_EXCEPTION, false);
        assert!(!l1_wants(&e, &v, &m));
        // #PF: bit 14 set, mask = P, match = P: only protection faults.
        v.set(f::PAGE_FAULT_ERROR_CODE_MASK, 1);
        v.set(f::PAGE_FAULT_ERROR_CODE_MATCH, 1);
        e.intr_info = intr_info::make(14, intr_info::TYPE_HW_EXCEPTION, true);
        e.intr_error_code = 3;
        assert!(l1_wants(&e, &v, &m));
        e.intr_error_code = 2;
        assert!(!l1_wants(&e, &v, &m));
        // NMIs follow NMI exiting.
        e.intr_info = intr_info::make(2, intr_info::TYPE_NMI, false);
        assert!(!l1_wants(&e, &v, &m));
        v.set(f::PIN_BASED_VM_EXEC_CONTROL, u64::from(pin::NMI_EXITING));
        assert!(l1_wants(&e, &v, &m));
    }

    #[test]
    fn io_by_unconditional_exiting_or_bitmaps() {
        let mut m = Bits::default();
        let out_port = |port: u64, size: u64| {
            let mut e = facts(er::IO_INSTRUCTION);
            e.qualification = (port << 16) | (size - 1);
            e
        };
        assert!(!l1_wants(&out_port(0x80, 1), &vmcs(0, 0), &m));
        assert!(l1_wants(
            &out_port(0x80, 1),
            &vmcs(proc::UNCOND_IO_EXITING, 0),
            &m
        ));
        let mut v = vmcs(proc::USE_IO_BITMAPS | proc::UNCOND_IO_EXITING, 0);
        v.set(f::IO_BITMAP_A, 0x1000);
        v.set(f::IO_BITMAP_B, 0x2000);
        // Bitmaps take precedence over unconditional exiting.
        assert!(!l1_wants(&out_port(0x80, 1), &v, &m));
        m.0.insert((0x1000, 0x81));
        assert!(
            l1_wants(&out_port(0x80, 2), &v, &m),
            "a word access touching 0x81"
        );
        m.0.insert((0x2000, 0x10));
        assert!(l1_wants(&out_port(0x8010, 1), &v, &m));
        assert!(l1_wants(&out_port(0xFFFF, 2), &v, &m), "wraps past 0xFFFF");
    }

    #[test]
    fn msrs_by_bitmap_ranges() {
        let mut m = Bits::default();
        let mut e = facts(er::MSR_READ);
        e.rcx = 0x10;
        assert!(l1_wants(&e, &vmcs(0, 0), &m), "no bitmaps: every MSR");
        let mut v = vmcs(proc::USE_MSR_BITMAPS, 0);
        v.set(f::MSR_BITMAP, 0x3000);
        assert!(!l1_wants(&e, &v, &m));
        m.0.insert((0x3000, 0x10));
        assert!(l1_wants(&e, &v, &m));
        e.reason = er::MSR_WRITE;
        assert!(!l1_wants(&e, &v, &m), "the write half is apart");
        e.rcx = 0xC000_0080;
        m.0.insert((0x3000 + 2048 + 1024, 0x80));
        assert!(l1_wants(&e, &v, &m));
        e.rcx = 0x4000_0000;
        assert!(l1_wants(&e, &v, &m), "outside both ranges");
    }

    #[test]
    fn control_register_ownership() {
        use x86::cr::{CR0_PE, CR0_TS};
        let m = Bits::default();
        let mut v = vmcs(proc::CR3_LOAD_EXITING, 0);
        v.set(f::CR0_GUEST_HOST_MASK, CR0_TS | CR0_PE);
        v.set(f::CR0_READ_SHADOW, CR0_TS);
        let mut e = facts(er::CR_ACCESS);
        // MOV to CR0 keeping TS = 1, PE = 0 as shadowed: not L1's.
        e.cr_source = CR0_TS;
        assert!(!l1_wants(&e, &v, &m));
        e.cr_source = 0;
        assert!(l1_wants(&e, &v, &m), "clears an owned bit");
        // MOV to CR3 (load exiting), MOV from CR3 (store exiting off).
        e.qualification = q::cr_access(3, q::CR_MOV_TO, 0);
        assert!(l1_wants(&e, &v, &m));
        e.qualification = q::cr_access(3, q::CR_MOV_FROM, 0);
        assert!(!l1_wants(&e, &v, &m));
        // MOV to and from CR8 by their exiting controls, TPR shadow or not.
        let mut v8 = vmcs(proc::CR8_LOAD_EXITING | proc::USE_TPR_SHADOW, 0);
        e.qualification = q::cr_access(8, q::CR_MOV_TO, 0);
        assert!(l1_wants(&e, &v8, &m));
        e.qualification = q::cr_access(8, q::CR_MOV_FROM, 3);
        assert!(!l1_wants(&e, &v8, &m));
        v8.set(
            f::CPU_BASED_VM_EXEC_CONTROL,
            u64::from(proc::CR8_STORE_EXITING),
        );
        assert!(l1_wants(&e, &v8, &m));
        // CLTS with TS owned and shadowed 1.
        e.qualification = q::cr_access(0, q::CR_CLTS, 0);
        assert!(l1_wants(&e, &v, &m));
        // LMSW setting PE, owned and shadowed 0.
        e.qualification = q::cr_lmsw(CR0_TS as u16 | 1, false);
        assert!(l1_wants(&e, &v, &m));
    }
}
