//! The VM-entry checks L0 makes on vmcs12 itself (SDM Vol. 3C §27.2): the
//! VMX controls against what L1 was offered (§27.2.1), the host-state area
//! L1 will return to (§27.2.2–§27.2.4), and the few guest-state rules that
//! vmcs02 would hide because L0 forces bits of it (§27.3.1). Everything
//! else about L2's guest state is checked by the processor when L0 enters
//! vmcs02, and a failure there becomes L1's VM-entry failure.

use super::caps::L1Caps;
use super::ept::eptp_valid;
use super::msr_list::area_valid;
use super::vmcs12::{Controls, Vmcs12};
use x86::address::is_canonical;
use x86::cr::{CR4_PAE, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE};
use x86::vmx::{entry_ctl, exit_ctl, field as f, pin, proc, proc2};

/// Why L0 refuses a nested VM entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryCheck {
    /// VMfailValid: error 7, invalid control fields.
    Controls,
    /// VMfailValid: error 8, invalid host-state fields.
    HostState,
    /// VM-entry failure (exit reason 33 with bit 31) with this qualification
    /// (SDM §27.8: 0 for most guest-state checks, 4 for the VMCS link pointer).
    GuestState(u64),
}

/// Checks on the controls (SDM §27.2.1.1, §27.2.1.2), given the size of
/// L1's memory for bitmap addresses.
pub(crate) fn controls(v: &Vmcs12, caps: &L1Caps, ram: u64) -> Result<(), EntryCheck> {
    let Controls {
        pin: pinv,
        proc: procv,
        proc2: proc2v,
        exit: exitv,
        entry: entryv,
    } = v.controls();
    let fail = Err(EntryCheck::Controls);
    if !caps.pin.admits(pinv)
        || !caps.proc.admits(procv)
        || proc2v & !caps.proc2.may != 0
        || !caps.exit.admits(exitv)
        || !caps.entry.admits(entryv)
    {
        return fail;
    }
    // IA32_VMX_MISC[24:16] = 0: no CR3-target values.
    if v.get32(f::CR3_TARGET_COUNT) != 0 {
        return fail;
    }
    // The MSR areas (§27.2.1.2, §27.2.1.3): 16-byte aligned, within the
    // physical-address width to their last byte.
    for (addr, count) in [
        (f::VM_EXIT_MSR_STORE_ADDR, f::VM_EXIT_MSR_STORE_COUNT),
        (f::VM_EXIT_MSR_LOAD_ADDR, f::VM_EXIT_MSR_LOAD_COUNT),
        (f::VM_ENTRY_MSR_LOAD_ADDR, f::VM_ENTRY_MSR_LOAD_COUNT),
    ] {
        if !area_valid(v.get(addr), v.get32(count), caps.phys_bits) {
            return fail;
        }
    }
    let page_ok = |a: u64| a & 0xFFF == 0 && a.checked_add(4096).is_some_and(|end| end <= ram);
    if procv & proc::USE_IO_BITMAPS != 0
        && !(page_ok(v.get(f::IO_BITMAP_A)) && page_ok(v.get(f::IO_BITMAP_B)))
    {
        return fail;
    }
    if procv & proc::USE_MSR_BITMAPS != 0 && !page_ok(v.get(f::MSR_BITMAP)) {
        return fail;
    }
    if pinv & pin::NMI_EXITING == 0 && pinv & pin::VIRTUAL_NMIS != 0 {
        return fail;
    }
    if pinv & pin::VIRTUAL_NMIS == 0 && procv & proc::NMI_WINDOW_EXITING != 0 {
        return fail;
    }
    if proc2v & proc2::ENABLE_VPID != 0 && v.get(f::VIRTUAL_PROCESSOR_ID) == 0 {
        return fail;
    }
    if proc2v & proc2::ENABLE_EPT != 0 && !eptp_valid(v.get(f::EPT_POINTER), caps.phys_bits) {
        return fail;
    }
    if proc2v & proc2::UNRESTRICTED_GUEST != 0 && proc2v & proc2::ENABLE_EPT == 0 {
        return fail;
    }
    // The event-injection fields are checked by the processor on vmcs02.
    let _ = entryv & entry_ctl::IA32E_MODE_GUEST;
    Ok(())
}

/// Checks on the host-state area (SDM §27.2.2–§27.2.4). `l1_in_ia32e` is
/// whether L1 runs in IA-32e mode now.
pub(crate) fn host_state(v: &Vmcs12, caps: &L1Caps, l1_in_ia32e: bool) -> Result<(), EntryCheck> {
    let fail = Err(EntryCheck::HostState);
    let exitv = v.get32(f::VM_EXIT_CONTROLS);
    let entryv = v.get32(f::VM_ENTRY_CONTROLS);
    let host64 = exitv & exit_ctl::HOST_ADDR_SPACE_SIZE != 0;
    let fixed_ok =
        |value: u64, (fixed0, fixed1): (u64, u64)| value & fixed0 == fixed0 && value & !fixed1 == 0;
    let cr4 = v.get(f::HOST_CR4);
    if !fixed_ok(v.get(f::HOST_CR0) & 0xFFFF_FFFF, caps.cr0_fixed())
        || v.get(f::HOST_CR0) >> 32 != 0
        || !fixed_ok(cr4, caps.cr4_fixed())
        || v.get(f::HOST_CR3) >> caps.phys_bits != 0
    {
        return fail;
    }
    for a in [
        f::HOST_IA32_SYSENTER_ESP,
        f::HOST_IA32_SYSENTER_EIP,
        f::HOST_FS_BASE,
        f::HOST_GS_BASE,
        f::HOST_GDTR_BASE,
        f::HOST_IDTR_BASE,
        f::HOST_TR_BASE,
    ] {
        if !is_canonical(v.get(a)) {
            return fail;
        }
    }
    if exitv & exit_ctl::LOAD_IA32_EFER != 0 {
        let efer = v.get(f::HOST_IA32_EFER);
        let lma = efer & EFER_LMA != 0;
        if efer & !(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE) != 0
            || lma != host64
            || (efer & EFER_LME != 0) != host64
        {
            return fail;
        }
    }
    // Selectors: RPL and TI 0; CS and TR not null; SS not null outside
    // 64-bit hosts (SDM §27.2.3).
    let selectors = [
        f::HOST_ES_SELECTOR,
        f::HOST_CS_SELECTOR,
        f::HOST_SS_SELECTOR,
        f::HOST_DS_SELECTOR,
        f::HOST_FS_SELECTOR,
        f::HOST_GS_SELECTOR,
        f::HOST_TR_SELECTOR,
    ];
    if selectors.iter().any(|&s| v.get(s) & 7 != 0)
        || v.get(f::HOST_CS_SELECTOR) == 0
        || v.get(f::HOST_TR_SELECTOR) == 0
        || (!host64 && v.get(f::HOST_SS_SELECTOR) == 0)
    {
        return fail;
    }
    // Address-space size (SDM §27.2.4).
    if l1_in_ia32e {
        if !host64 || cr4 & CR4_PAE == 0 || !is_canonical(v.get(f::HOST_RIP)) {
            return fail;
        }
    } else if host64 || entryv & entry_ctl::IA32E_MODE_GUEST != 0 || v.get(f::HOST_RIP) >> 32 != 0 {
        return fail;
    }
    Ok(())
}

/// Guest-state rules L0 checks itself: CR0 and CR4 against the fixed bits
/// (L0 forces CR0.NE and CR4.VMXE in vmcs02, so the processor would not see
/// an L1 mistake there; PE and PG are fixed too unless L1 made L2 an
/// unrestricted guest),
/// and the VMCS link pointer (no VMCS shadowing: it must be all ones).
pub(crate) fn guest_state(v: &Vmcs12, caps: &L1Caps) -> Result<(), EntryCheck> {
    let (mut cr0_fixed0, cr0_fixed1) = caps.cr0_fixed();
    if v.controls().proc2 & proc2::UNRESTRICTED_GUEST != 0 {
        cr0_fixed0 &= !(x86::cr::CR0_PE | x86::cr::CR0_PG);
    }
    let (cr4_fixed0, cr4_fixed1) = caps.cr4_fixed();
    let cr0 = v.get(f::GUEST_CR0);
    let cr4 = v.get(f::GUEST_CR4);
    if cr0 & cr0_fixed0 != cr0_fixed0
        || cr0 & !cr0_fixed1 != 0
        || cr4 & cr4_fixed0 != cr4_fixed0
        || cr4 & !cr4_fixed1 != 0
    {
        return Err(EntryCheck::GuestState(0));
    }
    if v.get(f::VMCS_LINK_POINTER) != u64::MAX {
        return Err(EntryCheck::GuestState(4));
    }
    // Activity states: active, or HLT (IA32_VMX_MISC bit 6) with SS.DPL = 0
    // (SDM §27.3.1.5).
    let ss_dpl = x86::segment::dpl(v.get32(f::GUEST_SS_AR_BYTES));
    match v.get32(f::GUEST_ACTIVITY_STATE) {
        0 => {}
        1 if ss_dpl == 0 => {}
        _ => return Err(EntryCheck::GuestState(0)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> L1Caps {
        L1Caps::new(softcpu::capability_msr, 39)
    }

    /// A vmcs12 that passes every check: a 64-bit host and controls at
    /// their must-be-1 settings.
    pub(crate) fn good() -> Vmcs12 {
        let c = caps();
        let mut v = Vmcs12::new();
        v.set(f::PIN_BASED_VM_EXEC_CONTROL, u64::from(c.pin.must));
        v.set(f::CPU_BASED_VM_EXEC_CONTROL, u64::from(c.proc.must));
        v.set(
            f::VM_EXIT_CONTROLS,
            u64::from(c.exit.must | exit_ctl::HOST_ADDR_SPACE_SIZE),
        );
        v.set(f::VM_ENTRY_CONTROLS, u64::from(c.entry.must));
        v.set(f::HOST_CR0, 0x8000_0031);
        v.set(f::HOST_CR4, x86::cr::CR4_VMXE | CR4_PAE);
        v.set(f::HOST_CS_SELECTOR, 8);
        v.set(f::HOST_TR_SELECTOR, 0x18);
        v.set(f::HOST_RIP, 0x10_0000);
        v.set(f::GUEST_CR0, 0x8000_0031);
        v.set(f::GUEST_CR4, x86::cr::CR4_VMXE);
        v.set(f::VMCS_LINK_POINTER, u64::MAX);
        v
    }

    #[test]
    fn a_good_vmcs12_passes() {
        let v = good();
        assert_eq!(controls(&v, &caps(), 1 << 20), Ok(()));
        assert_eq!(host_state(&v, &caps(), true), Ok(()));
        assert_eq!(guest_state(&v, &caps()), Ok(()));
    }

    #[test]
    fn control_failures() {
        let c = caps();
        let mut v = good();
        // A must-be-1 pin bit cleared.
        v.set(f::PIN_BASED_VM_EXEC_CONTROL, 0);
        assert_eq!(controls(&v, &c, 1 << 20), Err(EntryCheck::Controls));
        // The preemption timer is not offered.
        let mut v = good();
        v.set(
            f::PIN_BASED_VM_EXEC_CONTROL,
            u64::from(c.pin.must | pin::PREEMPTION_TIMER),
        );
        assert_eq!(controls(&v, &c, 1 << 20), Err(EntryCheck::Controls));
        // HLT exiting must be 1.
        let mut v = good();
        v.set(
            f::CPU_BASED_VM_EXEC_CONTROL,
            u64::from(c.proc.must & !proc::HLT_EXITING),
        );
        assert_eq!(controls(&v, &c, 1 << 20), Err(EntryCheck::Controls));
        // An MSR bitmap outside L1's memory.
        let mut v = good();
        v.set(
            f::CPU_BASED_VM_EXEC_CONTROL,
            u64::from(c.proc.must | proc::USE_MSR_BITMAPS),
        );
        v.set(f::MSR_BITMAP, 1 << 20);
        assert_eq!(controls(&v, &c, 1 << 20), Err(EntryCheck::Controls));
        v.set(f::MSR_BITMAP, 0x1000);
        assert_eq!(controls(&v, &c, 1 << 20), Ok(()));
        // Secondary controls ignored unless activated; EPT needs a good EPTP
        // and unrestricted guest needs EPT.
        let mut v = good();
        v.set(
            f::SECONDARY_VM_EXEC_CONTROL,
            u64::from(proc2::UNRESTRICTED_GUEST),
        );
        assert_eq!(controls(&v, &c, 1 << 20), Ok(()));
        v.set(
            f::CPU_BASED_VM_EXEC_CONTROL,
            u64::from(c.proc.must | proc::ACTIVATE_SECONDARY_CONTROLS),
        );
        assert_eq!(controls(&v, &c, 1 << 20), Err(EntryCheck::Controls));
        v.set(
            f::SECONDARY_VM_EXEC_CONTROL,
            u64::from(proc2::UNRESTRICTED_GUEST | proc2::ENABLE_EPT),
        );
        v.set(f::EPT_POINTER, 0x5000 | 6 | 3 << 3);
        assert_eq!(controls(&v, &c, 1 << 20), Ok(()));
        v.set(f::EPT_POINTER, 0x5000 | 6 | 3 << 3 | 1 << 6);
        assert_eq!(
            controls(&v, &c, 1 << 20),
            Err(EntryCheck::Controls),
            "A/D not offered"
        );
    }

    #[test]
    fn host_state_failures() {
        let c = caps();
        let mut v = good();
        v.set(f::HOST_CR4, CR4_PAE);
        assert_eq!(host_state(&v, &c, true), Err(EntryCheck::HostState));
        let mut v = good();
        v.set(f::HOST_RIP, 0x8000_0000_0000_0000);
        assert_eq!(host_state(&v, &c, true), Err(EntryCheck::HostState));
        let mut v = good();
        v.set(f::HOST_CS_SELECTOR, 0);
        assert_eq!(host_state(&v, &c, true), Err(EntryCheck::HostState));
        // A 64-bit host from a 32-bit L1.
        assert_eq!(host_state(&good(), &c, false), Err(EntryCheck::HostState));
    }

    #[test]
    fn guest_state_rules_l0_keeps() {
        let c = caps();
        let mut v = good();
        v.set(f::GUEST_CR0, 0x8000_0011);
        assert_eq!(guest_state(&v, &c), Err(EntryCheck::GuestState(0)));
        let mut v = good();
        v.set(f::VMCS_LINK_POINTER, 0x1000);
        assert_eq!(guest_state(&v, &c), Err(EntryCheck::GuestState(4)));
    }
}
