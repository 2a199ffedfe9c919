//! The VMX that L0 offers L1: the capability MSRs 0x480–0x491 L1 reads
//! (SDM Vol. 3C Appendix A), derived from the processor's own by keeping the
//! controls L0 knows how to merge into vmcs02 and reflect.
//!
//! What is offered, and why the rest is not:
//! - pin-based: external-interrupt exiting, NMI exiting, virtual NMIs, and
//!   the VMX-preemption timer, which L0 emulates (`super::timer`): the
//!   processor's own stays L0's (it drives L1's APIC timer). L1's counts at
//!   the TSC rate divided by 2^`L1_TIMER_RATE`, as IA32_VMX_MISC says.
//! - primary: every control the processor has but `PROC_WITHHELD`: the exiting controls (interrupt and NMI windows, HLT, INVLPG,
//!   MWAIT, RDPMC, RDTSC, CR3 and CR8 accesses, MOV DR, I/O unconditionally
//!   or through bitmaps, MSR bitmaps, MONITOR, PAUSE) and the secondary
//!   controls, and TSC offsetting (vmcs02's offset is L0's plus L1's).
//!   HLT exiting may be 0: L2's HLT then halts the processor in vmcs02, in
//!   the HLT activity state, until an event for L2 or an exit. The monitor
//!   trap flag is L1's (vmcs02 carries it; its exits go to
//!   L1). The TPR shadow is L1's (`super::tpr`): vmcs02 names L1's
//!   virtual-APIC page and TPR threshold, L2's MOV CR8 works on L1's VTPR,
//!   and TPR-below-threshold exits go to L1. TSC scaling (a secondary
//!   control) is not offered.
//! - secondary: EPT (shadowed by L0, `super::ept`), unrestricted guest,
//!   descriptor-table exiting, PAUSE-loop exiting (PLE_Gap and PLE_Window
//!   go into vmcs02 as L1 wrote them), RDTSCP, VPID (L0 flushes the TLB at every
//!   nested transition, so any VPID is correct), WBINVD exiting, notify
//!   VM exiting, and PML (emulated: L0 logs the pages whose EPT dirty flag
//!   it sets, `super::dirty`).
//! - EPT accessed and dirty flags (IA32_VMX_EPT_VPID_CAP bit 21): L0 sets
//!   them in L1's EPT when it fills its shadow, and maps a page writable in
//!   the shadow only once L1's dirty flag for it is set (`super::ept`).
//! - exit: host address-space size, acknowledge interrupt on exit, save/load
//!   PAT, save/load EFER, save VMX-preemption timer value.  entry: IA-32e mode guest, load PAT, load EFER.
//! - INVEPT single-context and all-context; INVVPID with all four types.
//!   No VM functions (0x491 does not exist: RDMSR of it is #GP).

use x86::msr;
use x86::vmx::{entry_ctl, exit_ctl, pin, proc2};

/// Pin-based controls L1 may set.
pub(crate) const PIN_OFFERED: u32 =
    pin::EXT_INTR_EXITING | pin::NMI_EXITING | pin::VIRTUAL_NMIS | pin::PREEMPTION_TIMER;

/// IA32_VMX_MISC[4:0] as L1 reads it: L1's VMX-preemption timer counts down
/// each time this bit of its TSC changes. 5, as many processors report:
/// KVM as L1 uses the timer only when its rate stays below 2^32 / 10 Hz.
pub(crate) const L1_TIMER_RATE: u32 = 5;

/// Primary processor-based controls L1 is not offered, whatever the
/// processor has: none now (the TPR shadow is L1's, `super::tpr`).
pub(crate) const PROC_WITHHELD: u32 = 0;

/// Secondary controls L1 may set.
pub(crate) const PROC2_OFFERED: u32 = proc2::ENABLE_EPT
    | proc2::UNRESTRICTED_GUEST
    | proc2::DESC_TABLE_EXITING
    | proc2::PAUSE_LOOP_EXITING
    | proc2::ENABLE_RDTSCP
    | proc2::WBINVD_EXITING
    | proc2::NOTIFY_VM_EXITING;

/// Secondary controls L0 emulates whatever the processor has: VPIDs (L0
/// flushes the TLB at every nested transition, which is what any VPID
/// assignment must at least allow) and PML (L0 logs the pages whose EPT
/// dirty flag it sets, `super::dirty`).
pub(crate) const PROC2_EMULATED: u32 = proc2::ENABLE_VPID | proc2::ENABLE_PML;

/// VM-exit controls L1 may set.
pub(crate) const EXIT_OFFERED: u32 = exit_ctl::HOST_ADDR_SPACE_SIZE
    | exit_ctl::ACK_INTR_ON_EXIT
    | exit_ctl::SAVE_IA32_PAT
    | exit_ctl::LOAD_IA32_PAT
    | exit_ctl::SAVE_IA32_EFER
    | exit_ctl::LOAD_IA32_EFER
    | exit_ctl::SAVE_PREEMPTION_TIMER;

/// VM-entry controls L1 may set.
pub(crate) const ENTRY_OFFERED: u32 =
    entry_ctl::IA32E_MODE_GUEST | entry_ctl::LOAD_IA32_PAT | entry_ctl::LOAD_IA32_EFER;

/// The default1 class of each control MSR (SDM Vol. 3C §A.2): the bits the
/// non-TRUE MSRs report as must-be-1; the TRUE MSRs report which of them
/// may really be 0. Pin-based, primary, exit, entry.
const DEFAULT1_CLASS: [u32; 4] = [0x16, 0x0401_E172, 0x0003_6DFF, 0x0000_11FF];

/// The VMCS revision identifier of vmcs12 regions.
pub(crate) const REVISION: u32 = 1;

/// IA32_VMX_EPT_VPID_CAP: 4-level EPT walks (bit 6), write-back EPT
/// structures (bit 14), 2 MiB and 1 GiB pages (bits 16, 17), INVEPT (bit 20)
/// with the single-context and all-context types (bits 25, 26); INVVPID
/// (bit 32) with the individual-address, single-context, all-context and
/// single-context-retaining-globals types (bits 40–43); accessed and dirty
/// flags (bit 21, emulated by L0: `super::dirty`). No execute-only pages.
pub(crate) const EPT_VPID_CAP: u64 = 1 << 6
    | 1 << 14
    | 1 << 16
    | 1 << 17
    | 1 << 20
    | 1 << 21
    | 1 << 25
    | 1 << 26
    | 1 << 32
    | 0xF << 40;

/// A control MSR pair: must-be-1 bits low, may-be-1 bits high.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Allowed {
    /// Bits that must be 1.
    pub must: u32,
    /// Bits that may be 1.
    pub may: u32,
}

impl Allowed {
    fn of(value: u64) -> Self {
        Allowed {
            must: value as u32,
            may: (value >> 32) as u32,
        }
    }

    fn msr(self) -> u64 {
        u64::from(self.must) | u64::from(self.may) << 32
    }

    /// The non-TRUE MSR of this pair: the default1 class `class` must be 1.
    fn with_default1(self, class: u32) -> u64 {
        Allowed {
            must: self.must | class,
            may: self.may | class,
        }
        .msr()
    }

    /// Whether `value` honours both halves.
    pub(crate) fn admits(self, value: u32) -> bool {
        value & self.must == self.must && value & !self.may == 0
    }
}

/// The processor's control MSR `msr`, narrowed to `offered` (plus `extra`
/// must-be-1 bits).
fn narrowed(hw_cap: impl Fn(u32) -> Option<u64>, msr: u32, offered: u32, extra: u32) -> Allowed {
    let hw = Allowed::of(hw_cap(msr).unwrap_or(0));
    Allowed {
        must: hw.must | extra,
        may: hw.must | extra | (hw.may & offered),
    }
}

/// L1's view of the VMX controls, computed once from the processor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct L1Caps {
    /// Pin-based controls.
    pub pin: Allowed,
    /// Primary processor-based controls.
    pub proc: Allowed,
    /// Secondary processor-based controls.
    pub proc2: Allowed,
    /// VM-exit controls.
    pub exit: Allowed,
    /// VM-entry controls.
    pub entry: Allowed,
    /// The processor's own IA32_VMX_BASIC, MISC and fixed-bit MSRs.
    basic: u64,
    misc: u64,
    cr0_fixed: (u64, u64),
    cr4_fixed: (u64, u64),
    /// The physical-address width (CPUID.80000008H:EAX[7:0]).
    pub phys_bits: u32,
}

impl L1Caps {
    /// L1's capabilities on a processor whose capability MSRs `hw_cap` reads
    /// and whose physical addresses are `phys_bits` wide.
    pub(crate) fn new(hw_cap: impl Fn(u32) -> Option<u64>, phys_bits: u32) -> Self {
        let get = |m| hw_cap(m).unwrap_or(0);
        L1Caps {
            pin: narrowed(&hw_cap, msr::VMX_PINBASED_CTLS, PIN_OFFERED, 0),
            proc: narrowed(&hw_cap, msr::VMX_PROCBASED_CTLS, !PROC_WITHHELD, 0),
            proc2: {
                let a = narrowed(&hw_cap, msr::VMX_PROCBASED_CTLS2, PROC2_OFFERED, 0);
                Allowed {
                    must: a.must,
                    may: a.may | PROC2_EMULATED,
                }
            },
            exit: narrowed(&hw_cap, msr::VMX_EXIT_CTLS, EXIT_OFFERED, 0),
            entry: narrowed(&hw_cap, msr::VMX_ENTRY_CTLS, ENTRY_OFFERED, 0),
            basic: get(msr::VMX_BASIC),
            misc: get(msr::VMX_MISC),
            cr0_fixed: (get(msr::VMX_CR0_FIXED0), get(msr::VMX_CR0_FIXED1)),
            cr4_fixed: (get(msr::VMX_CR4_FIXED0), get(msr::VMX_CR4_FIXED1)),
            phys_bits,
        }
    }

    /// CR0 bits fixed to 1 and to 0 in VMX operation: (fixed0, fixed1).
    pub(crate) fn cr0_fixed(&self) -> (u64, u64) {
        self.cr0_fixed
    }

    /// CR4 bits fixed to 1 and to 0 in VMX operation: (fixed0, fixed1).
    pub(crate) fn cr4_fixed(&self) -> (u64, u64) {
        self.cr4_fixed
    }

    /// RDMSR of a VMX capability MSR by L1; `None` means #GP (not a VMX
    /// capability MSR, or one this VMX does not have).
    pub(crate) fn rdmsr(&self, index: u32) -> Option<u64> {
        // The TRUE MSRs (0x48D–0x490) report what L1 may really clear; the
        // others report the whole default1 class as must-be-1 (§A.3–§A.5).
        Some(match index {
            // Revision, region size and memory type as the processor's; bit
            // 55 (TRUE MSRs present) and bit 54 (INS/OUTS information) kept;
            // dual-monitor SMM treatment (bit 49) never offered.
            msr::VMX_BASIC => {
                (self.basic & !(0x7FFF_FFFF | 1 << 49)) | u64::from(REVISION) | 1 << 55
            }
            TRUE_PINBASED => self.pin.msr(),
            TRUE_PROCBASED => self.proc.msr(),
            TRUE_EXIT => self.exit.msr(),
            TRUE_ENTRY => self.entry.msr(),
            msr::VMX_PINBASED_CTLS => self.pin.with_default1(DEFAULT1_CLASS[0]),
            msr::VMX_PROCBASED_CTLS => self.proc.with_default1(DEFAULT1_CLASS[1]),
            msr::VMX_EXIT_CTLS => self.exit.with_default1(DEFAULT1_CLASS[2]),
            msr::VMX_ENTRY_CTLS => self.entry.with_default1(DEFAULT1_CLASS[3]),
            // L1's preemption timer rate (bits 4:0); of the activity
            // states only HLT (bit 6), not shutdown (bit 7).
            msr::VMX_MISC => (self.misc & !(0x1F | 1 << 7)) | u64::from(L1_TIMER_RATE),
            msr::VMX_CR0_FIXED0 => self.cr0_fixed.0,
            msr::VMX_CR0_FIXED1 => self.cr0_fixed.1,
            msr::VMX_CR4_FIXED0 => self.cr4_fixed.0,
            msr::VMX_CR4_FIXED1 => self.cr4_fixed.1,
            // The highest field index vmcs12 supports (bits 9:1).
            msr::VMX_VMCS_ENUM => {
                let highest = softcpu::VMCS_FIELDS.iter().map(|&e| (e >> 1) & 0x1FF).max();
                u64::from(highest.unwrap_or(0)) << 1
            }
            msr::VMX_PROCBASED_CTLS2 => self.proc2.msr(),
            msr::VMX_EPT_VPID_CAP => EPT_VPID_CAP,
            _ => return None,
        })
    }
}

/// IA32_VMX_TRUE_PINBASED_CTLS.
const TRUE_PINBASED: u32 = 0x48D;
/// IA32_VMX_TRUE_PROCBASED_CTLS.
const TRUE_PROCBASED: u32 = 0x48E;
/// IA32_VMX_TRUE_EXIT_CTLS.
const TRUE_EXIT: u32 = 0x48F;
/// IA32_VMX_TRUE_ENTRY_CTLS.
const TRUE_ENTRY: u32 = 0x490;

#[cfg(test)]
mod tests {
    use super::*;
    use x86::vmx::proc;

    fn caps() -> L1Caps {
        L1Caps::new(softcpu::capability_msr, 39)
    }

    #[test]
    fn every_offered_set_is_coherent() {
        let c = caps();
        for a in [c.pin, c.proc, c.proc2, c.exit, c.entry] {
            assert_eq!(a.must & !a.may, 0, "{a:?}");
        }
        assert_ne!(c.proc2.may & proc2::NOTIFY_VM_EXITING, 0);
        assert_ne!(c.proc2.may & proc2::ENABLE_VPID, 0, "INVVPID needs VPIDs");
        assert_eq!(c.proc.must & proc::HLT_EXITING, 0, "HLT exiting may be 0");
        assert_ne!(c.proc.may & proc::MONITOR_TRAP_FLAG, 0);
        assert_ne!(c.pin.may & pin::PREEMPTION_TIMER, 0);
        assert_ne!(c.exit.may & exit_ctl::SAVE_PREEMPTION_TIMER, 0);
        assert_eq!(c.rdmsr(msr::VMX_MISC).unwrap() & 0x1F, 5);
        assert_eq!(c.proc.may & PROC_WITHHELD, 0);
        assert_ne!(c.proc.may & proc::USE_TPR_SHADOW, 0);
        assert_ne!(c.proc.may & proc::USE_IO_BITMAPS, 0);
        assert_ne!(c.proc.may & proc::USE_TSC_OFFSETTING, 0, "KVM's minimum");
        assert_eq!(
            c.proc2.may & (proc2::ENABLE_EPT | proc2::UNRESTRICTED_GUEST),
            proc2::ENABLE_EPT | proc2::UNRESTRICTED_GUEST
        );
    }

    #[test]
    fn the_msrs_l1_reads() {
        let c = caps();
        let basic = c.rdmsr(msr::VMX_BASIC).unwrap();
        assert_eq!(basic & 0x7FFF_FFFF, u64::from(REVISION));
        assert_eq!((basic >> 32) & 0x1FFF, 4096);
        assert_ne!(basic & 1 << 55, 0);
        for m in 0x480..=0x490 {
            assert!(c.rdmsr(m).is_some(), "{m:#x}");
        }
        assert_eq!(c.rdmsr(0x491), None);
        // Each pair: the non-TRUE MSR reports the default1 class as
        // must-be-1, the TRUE one what may really be 0 (CR3 exiting here).
        for (i, (plain, true_msr)) in [
            (msr::VMX_PINBASED_CTLS, TRUE_PINBASED),
            (msr::VMX_PROCBASED_CTLS, TRUE_PROCBASED),
            (msr::VMX_EXIT_CTLS, TRUE_EXIT),
            (msr::VMX_ENTRY_CTLS, TRUE_ENTRY),
        ]
        .into_iter()
        .enumerate()
        {
            let (p, t) = (c.rdmsr(plain).unwrap(), c.rdmsr(true_msr).unwrap());
            assert_eq!(p as u32, t as u32 | DEFAULT1_CLASS[i], "{plain:#x}");
            assert_eq!(p >> 32, t >> 32, "{plain:#x}: the same may-be-1 bits");
        }
        let cr3 = proc::CR3_LOAD_EXITING | proc::CR3_STORE_EXITING;
        assert_eq!(c.rdmsr(TRUE_PROCBASED).unwrap() as u32 & cr3, 0);
        // VMCS_ENUM: the highest index among the fields vmcs12 supports.
        let vmcs_enum = c.rdmsr(msr::VMX_VMCS_ENUM).unwrap();
        assert!(softcpu::VMCS_FIELDS
            .iter()
            .any(|&e| u64::from(e) & 0x3FE == vmcs_enum));
        assert!(softcpu::VMCS_FIELDS
            .iter()
            .all(|&e| u64::from(e) & 0x3FE <= vmcs_enum));
    }
}
