//! Nested VMX: L0 emulates VMX for L1, so that L1 can run L2 guests.
//!
//! L1's VMX instructions exit to L0 (unconditionally, SDM Vol. 3C §26.1.2)
//! and are emulated here (`instructions`) against vmcs12, which lives in
//! L1's memory with a cached copy in L0 (`vmcs12`). A nested VM entry
//! (`transition`) checks vmcs12 (`checks`), builds vmcs02 from vmcs01 and
//! vmcs12 and makes it current; the processor then runs L2 on vmcs02. Each
//! exit from L2 either goes to L1 (`reflect`), as a nested VM exit that
//! writes the exit into vmcs12 and loads vmcs12's host state into vmcs01, or
//! is handled by L0 on vmcs02 like any exit of its own.
//!
//! Notify VM exits (`notify`): L0's window stays armed in vmcs02 whatever L1
//! does. L1 may enable notify VM exiting in vmcs12 with its own window;
//! L0 then reflects a notify exit once L2 has been stalled for L1's
//! threshold. A notify exit with an invalid context goes to userspace, and
//! the triple fault userspace may inject becomes a TRIPLE_FAULT exit to L1.
//!
//! What L1 is offered is in `caps`; what is not emulated is said there and in
//! docs/nested.md.

mod caps;
mod checks;
mod dirty;
mod ept;
mod guest_checks;
mod instructions;
mod msr_list;
mod notify;
mod operand;
mod reflect;
mod timer;
mod tpr;
mod transition;
mod vmcs12;

pub(crate) use caps::L1Caps;
pub(crate) use notify::Route;

use crate::hw::{HwError, VmxHardware};
use vmcs12::Vmcs12;

/// Where L0 keeps its nested VMX pages in host-physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NestedPages {
    /// The VMCS region of vmcs01 (L0's VMCS for L1).
    pub vmcs01: u64,
    /// The VMCS region of vmcs02 (L0's VMCS for L2).
    pub vmcs02: u64,
    /// vmcs02's MSR bitmap: L0's and L1's merged.
    pub msr_bitmap02: u64,
    /// L0's MSR bitmap (vmcs01's).
    pub msr_bitmap01: u64,
    /// The pool of pages for the shadow of L1's EPT, root first.
    pub shadow_ept: u64,
    /// Its size in pages.
    pub shadow_ept_pages: u64,
    /// Size of L1's RAM (guest-physical `[0, ram)`).
    pub ram: u64,
}

/// Which level the vCPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// L1, on vmcs01.
    L1,
    /// L2, on vmcs02. `entering` between L1's VMLAUNCH or VMRESUME and the
    /// processor's verdict on the fresh vmcs02.
    L2 { entering: bool },
}

/// The nested VMX state of one vCPU.
#[derive(Debug)]
pub(crate) struct Nested {
    caps: L1Caps,
    pages: NestedPages,
    /// L0's notify window when L0 enabled notify VM exiting.
    l0_window: Option<u32>,
    /// The processor's notify threshold, in crystal-clock cycles.
    threshold: u64,
    /// The VMXON region while L1 is in VMX operation.
    vmxon: Option<u64>,
    /// L1's current VMCS pointer.
    current: Option<u64>,
    /// The cached copy of the current vmcs12.
    vmcs12: Vmcs12,
    level: Level,
    /// vmcs02 has been launched since it was last built.
    launched02: bool,
    /// Crystal-clock cycles L2 has spent stalled, as notify exits measured
    /// them, since its last exit of any other kind.
    stalled: u64,
    /// L0's shadow of L1's EPT.
    shadow: ept::ShadowEpt,
    /// A VMX abort put L1 into shutdown (`msr_list`).
    aborted: bool,
    /// L2's VMX-preemption timer, while vmcs12 activates it (`timer`).
    l2_timer: Option<timer::L2Timer>,
}

impl Nested {
    /// The nested state of a vCPU on a processor whose capability MSRs
    /// `hw_cap` reads and whose physical addresses are `phys_bits` wide,
    /// with L0's notify window and the processor's notify threshold.
    pub(crate) fn new(
        hw_cap: impl Fn(u32) -> Option<u64>,
        phys_bits: u32,
        pages: NestedPages,
        l0_window: Option<u32>,
        threshold: u32,
    ) -> Self {
        Nested {
            caps: L1Caps::new(hw_cap, phys_bits),
            pages,
            l0_window,
            threshold: u64::from(threshold),
            vmxon: None,
            current: None,
            vmcs12: Vmcs12::new(),
            level: Level::L1,
            launched02: false,
            stalled: 0,
            shadow: ept::ShadowEpt::new(pages.shadow_ept, pages.shadow_ept_pages),
            aborted: false,
            l2_timer: None,
        }
    }

    /// What L1 is offered.
    pub(crate) fn caps(&self) -> &L1Caps {
        &self.caps
    }

    /// Whether L1 is in VMX operation (after VMXON, before VMXOFF).
    pub(crate) fn in_vmx_operation(&self) -> bool {
        self.vmxon.is_some()
    }

    /// The L1-physical address of L2-physical `gpa2` (a debugger's view):
    /// through L1's EPT when L1 enabled it, else the same; `None` where
    /// L1's EPT does not map it. Tables outside `[0, ram)` map nothing.
    pub(crate) fn l2_to_l1(
        &self,
        hw: &impl VmxHardware,
        gpa2: u64,
        ram: u64,
    ) -> Result<Option<u64>, HwError> {
        let Some(eptp) = self.l1_eptp() else {
            return Ok(Some(gpa2));
        };
        Ok(
            match ept::walk_l1(hw, eptp, gpa2, self.caps().phys_bits, ram)? {
                ept::L1Walk::Mapped { gpa1, .. } => Some(gpa1),
                _ => None,
            },
        )
    }

    /// A field of the cached vmcs12 (a debugger's view), `None` where
    /// vmcs12 does not hold it.
    pub(crate) fn vmcs12_field(&self, encoding: u32) -> Option<u64> {
        self.vmcs12.read(encoding).ok()
    }

    /// The regions of vmcs01 and vmcs02.
    pub(crate) fn vmcs_regions(&self) -> (u64, u64) {
        (self.pages.vmcs01, self.pages.vmcs02)
    }

    /// Whether L2 runs (vmcs02 is current).
    pub(crate) fn in_l2(&self) -> bool {
        matches!(self.level, Level::L2 { .. })
    }

    /// Whether L1's VMLAUNCH/VMRESUME awaits the processor's verdict on a
    /// fresh vmcs02: until it enters, nothing may be taken from L1 (an
    /// interrupt) or done to L2 (an injected shutdown).
    pub(crate) fn entering(&self) -> bool {
        matches!(self.level, Level::L2 { entering: true })
    }

    /// Whether the next entry of vmcs02 is a VMRESUME.
    pub(crate) fn vmcs02_launched(&self) -> bool {
        self.launched02
    }

    /// Writes vmcs01's and vmcs02's revision identifiers into their regions.
    pub(crate) fn install(pages: &NestedPages, hw: &mut impl VmxHardware) -> Result<(), HwError> {
        let revision = (hw.capability(x86::msr::VMX_BASIC).unwrap_or(0) as u32).to_le_bytes();
        hw.write_phys(pages.vmcs01, &revision)?;
        hw.write_phys(pages.vmcs02, &revision)
    }
}
