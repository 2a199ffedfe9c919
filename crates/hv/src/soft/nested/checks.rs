//! The VM-entry checks L0 makes on vmcs12's VMX controls (SDM Vol. 3C
//! §27.2.1: against what L1 was offered, the bitmap and MSR-area
//! addresses, event injection) and host-state area (§27.2.2–§27.2.4), each
//! a VMfailValid (7 or 8). The guest-state checks are `guest_checks`'.

use super::caps::L1Caps;
use super::ept::eptp_valid;
use super::guest_checks::pat_valid;
use super::msr_list::area_valid;
use super::vmcs12::{Controls, Vmcs12};
use x86::address::is_canonical;
use x86::cr::{CR4_PAE, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE};
use x86::vmx::{entry_ctl, exit_ctl, field as f, intr_info, pin, proc, proc2};

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

/// Checks on the controls (SDM §27.2.1.1–§27.2.1.3).
pub(crate) fn controls(v: &Vmcs12, caps: &L1Caps) -> Result<(), EntryCheck> {
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
    // Bitmap addresses: bits 11:0 clear, none beyond the physical-address
    // width (§27.2.1.1). A bitmap outside L1's RAM reads as all ones.
    let page_ok = |a: u64| a & 0xFFF == 0 && a >> caps.phys_bits == 0;
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
    // §27.2.1.2: the timer's value is saved only when the timer runs.
    if pinv & pin::PREEMPTION_TIMER == 0 && exitv & exit_ctl::SAVE_PREEMPTION_TIMER != 0 {
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
    // PML needs EPT, and a log page-aligned within the width (§27.2.1.1).
    if proc2v & proc2::ENABLE_PML != 0
        && (proc2v & proc2::ENABLE_EPT == 0 || !page_ok(v.get(f::PML_ADDRESS)))
    {
        return fail;
    }
    if !injection_valid(v, proc2v) {
        return fail;
    }
    let _ = entryv;
    Ok(())
}

/// The event-injection fields (SDM §27.2.1.3), when the valid bit is set:
/// no reserved type (1; 7 is not reserved, as the monitor trap flag is
/// offered, and must have vector 0), a vector that fits the type, an error code delivered exactly
/// for hardware exceptions that push one outside real mode, reserved bits
/// 30:12 clear, error-code bits 31:16 clear, and an instruction length of
/// 1 to 15 for software events (IA32_VMX_MISC[30] = 0).
fn injection_valid(v: &Vmcs12, proc2v: u32) -> bool {
    let protected =
        proc2v & proc2::UNRESTRICTED_GUEST == 0 || v.get(f::GUEST_CR0) & x86::cr::CR0_PE != 0;
    intr_info::injection_valid(
        v.get32(f::VM_ENTRY_INTR_INFO),
        v.get32(f::VM_ENTRY_EXCEPTION_ERROR_CODE),
        v.get32(f::VM_ENTRY_INSTRUCTION_LEN),
        protected,
    )
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
    if exitv & exit_ctl::LOAD_IA32_PAT != 0 && !pat_valid(v.get(f::HOST_IA32_PAT)) {
        return fail;
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

#[cfg(test)]
pub(crate) mod tests {
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
        // A flat 32-bit protected-mode guest with a busy TSS.
        v.set(f::GUEST_CS_SELECTOR, 8);
        v.set(f::GUEST_CS_LIMIT, 0xFFFF_FFFF);
        v.set(f::GUEST_CS_AR_BYTES, u64::from(x86::segment::AR_CODE32));
        for (sel, limit, ar) in [
            (
                f::GUEST_SS_SELECTOR,
                f::GUEST_SS_LIMIT,
                f::GUEST_SS_AR_BYTES,
            ),
            (
                f::GUEST_DS_SELECTOR,
                f::GUEST_DS_LIMIT,
                f::GUEST_DS_AR_BYTES,
            ),
            (
                f::GUEST_ES_SELECTOR,
                f::GUEST_ES_LIMIT,
                f::GUEST_ES_AR_BYTES,
            ),
            (
                f::GUEST_FS_SELECTOR,
                f::GUEST_FS_LIMIT,
                f::GUEST_FS_AR_BYTES,
            ),
            (
                f::GUEST_GS_SELECTOR,
                f::GUEST_GS_LIMIT,
                f::GUEST_GS_AR_BYTES,
            ),
        ] {
            v.set(sel, 0x10);
            v.set(limit, 0xFFFF_FFFF);
            v.set(ar, u64::from(x86::segment::AR_DATA32));
        }
        v.set(f::GUEST_TR_SELECTOR, 0x18);
        v.set(f::GUEST_TR_LIMIT, 0x67);
        v.set(f::GUEST_TR_AR_BYTES, u64::from(x86::segment::AR_TSS_BUSY));
        v.set(f::GUEST_LDTR_AR_BYTES, u64::from(x86::segment::AR_UNUSABLE));
        v.set(f::GUEST_RFLAGS, 2);
        v
    }

    #[test]
    fn a_good_vmcs12_passes() {
        let v = good();
        assert_eq!(controls(&v, &caps()), Ok(()));
        assert_eq!(host_state(&v, &caps(), true), Ok(()));
        assert_eq!(super::super::guest_checks::guest_state(&v, &caps()), Ok(()));
    }

    #[test]
    fn control_failures() {
        let c = caps();
        let mut v = good();
        // A must-be-1 pin bit cleared.
        v.set(f::PIN_BASED_VM_EXEC_CONTROL, 0);
        assert_eq!(controls(&v, &c), Err(EntryCheck::Controls));
        // The preemption timer is offered; saving its value needs it on.
        let mut v = good();
        v.set(
            f::PIN_BASED_VM_EXEC_CONTROL,
            u64::from(c.pin.must | pin::PREEMPTION_TIMER),
        );
        assert_eq!(controls(&v, &c), Ok(()));
        let exit = v.get32(f::VM_EXIT_CONTROLS) | exit_ctl::SAVE_PREEMPTION_TIMER;
        v.set(f::VM_EXIT_CONTROLS, u64::from(exit));
        assert_eq!(controls(&v, &c), Ok(()));
        v.set(f::PIN_BASED_VM_EXEC_CONTROL, u64::from(c.pin.must));
        assert_eq!(controls(&v, &c), Err(EntryCheck::Controls));
        // HLT exiting may be 0.
        let mut v = good();
        v.set(
            f::CPU_BASED_VM_EXEC_CONTROL,
            u64::from(c.proc.must & !proc::HLT_EXITING),
        );
        assert_eq!(controls(&v, &c), Ok(()));
        // An MSR bitmap outside L1's memory.
        let mut v = good();
        v.set(
            f::CPU_BASED_VM_EXEC_CONTROL,
            u64::from(c.proc.must | proc::USE_MSR_BITMAPS),
        );
        v.set(f::MSR_BITMAP, 1 << 39);
        assert_eq!(
            controls(&v, &c),
            Err(EntryCheck::Controls),
            "beyond the width"
        );
        v.set(f::MSR_BITMAP, 0x1800);
        assert_eq!(
            controls(&v, &c),
            Err(EntryCheck::Controls),
            "not page-aligned"
        );
        v.set(f::MSR_BITMAP, 1 << 30);
        assert_eq!(controls(&v, &c), Ok(()), "beyond RAM reads as all ones");
        v.set(f::MSR_BITMAP, 0x1000);
        assert_eq!(controls(&v, &c), Ok(()));
        // Secondary controls ignored unless activated; EPT needs a good EPTP
        // and unrestricted guest needs EPT.
        let mut v = good();
        v.set(
            f::SECONDARY_VM_EXEC_CONTROL,
            u64::from(proc2::UNRESTRICTED_GUEST),
        );
        assert_eq!(controls(&v, &c), Ok(()));
        v.set(
            f::CPU_BASED_VM_EXEC_CONTROL,
            u64::from(c.proc.must | proc::ACTIVATE_SECONDARY_CONTROLS),
        );
        assert_eq!(controls(&v, &c), Err(EntryCheck::Controls));
        v.set(
            f::SECONDARY_VM_EXEC_CONTROL,
            u64::from(proc2::UNRESTRICTED_GUEST | proc2::ENABLE_EPT),
        );
        v.set(f::EPT_POINTER, 0x5000 | 6 | 3 << 3);
        assert_eq!(controls(&v, &c), Ok(()));
        v.set(f::EPT_POINTER, 0x5000 | 6 | 3 << 3 | 1 << 6);
        assert_eq!(controls(&v, &c), Ok(()), "A/D flags offered");
        v.set(f::EPT_POINTER, 0x5000 | 6 | 3 << 3 | 1 << 7);
        assert_eq!(controls(&v, &c), Err(EntryCheck::Controls), "bit 7");
        // PML: EPT, and a page-aligned log within the width.
        v.set(f::EPT_POINTER, 0x5000 | 6 | 3 << 3 | 1 << 6);
        v.set(
            f::SECONDARY_VM_EXEC_CONTROL,
            u64::from(proc2::ENABLE_PML | proc2::ENABLE_EPT),
        );
        v.set(f::PML_ADDRESS, 0x7000);
        assert_eq!(controls(&v, &c), Ok(()));
        for bad in [0x7008, 1 << 39] {
            v.set(f::PML_ADDRESS, bad);
            assert_eq!(controls(&v, &c), Err(EntryCheck::Controls), "{bad:#x}");
        }
        v.set(f::PML_ADDRESS, 0x7000);
        v.set(f::SECONDARY_VM_EXEC_CONTROL, u64::from(proc2::ENABLE_PML));
        assert_eq!(controls(&v, &c), Err(EntryCheck::Controls), "no EPT");
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
}
