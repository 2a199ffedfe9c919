//! Programming the VMCS for a new vCPU: controls, hypervisor pages and the
//! initial guest state.

use super::nested::{Nested, NestedPages};
use crate::ept;
use crate::hw::{HwError, VmxHardware};
use accel::{EntryMode, EntryState};
use x86::cr::{CR0_ET, CR0_NE, CR0_PE, CR4_VMXE};
use x86::msr;
use x86::vmx::{entry_ctl, exit_ctl, field as f, pin, proc, proc2};

/// MSRs the guest reads and writes directly (their state lives in the CPU
/// and the VMCS); every other MSR access exits to L0.
const PASSTHROUGH_MSRS: &[u32] = &[
    msr::EFER,
    msr::STAR,
    msr::LSTAR,
    msr::CSTAR,
    msr::FMASK,
    msr::FS_BASE,
    msr::GS_BASE,
    msr::KERNEL_GS_BASE,
    msr::TSC_AUX,
    msr::TSC,
    msr::SYSENTER_CS,
    msr::SYSENTER_ESP,
    msr::SYSENTER_EIP,
    msr::PAT,
    msr::DEBUGCTL,
    msr::MISC_ENABLE,
    msr::MCG_CAP,
    msr::MCG_STATUS,
    msr::BIOS_SIGN_ID,
];

/// The MTRRs the CPU holds (capability, variable ranges, fixed ranges,
/// default type), passed through like the MSRs above.
const PASSTHROUGH_MTRRS: [std::ops::RangeInclusive<u32>; 6] = [
    msr::MTRRCAP..=msr::MTRRCAP,
    msr::MTRR_PHYSBASE0..=msr::MTRR_PHYSBASE0 + 0xF,
    msr::MTRR_FIX64K_00000..=msr::MTRR_FIX64K_00000,
    msr::MTRR_FIX16K_80000..=msr::MTRR_FIX16K_A0000,
    msr::MTRR_FIX4K_C0000..=msr::MTRR_FIX4K_C0000 + 7,
    msr::MTRR_DEF_TYPE..=msr::MTRR_DEF_TYPE,
];

/// Pages for the shadow of an L1 hypervisor's EPT (1 MiB: 255 page tables
/// of 2 MiB each before it starts over).
const SHADOW_EPT_PAGES: u64 = 256;

/// Where the hypervisor's own pages live in host-physical memory.
#[derive(Debug, Clone)]
pub(crate) struct PrivatePages {
    /// The MSR bitmap page.
    pub msr_bitmap: u64,
    /// EPT tables start.
    pub ept_base: u64,
    /// Nested VMX: the VMCS regions of vmcs01 and vmcs02, vmcs02's MSR bitmap.
    pub nested: NestedPages,
    /// End of host-physical memory.
    pub end: u64,
    ram: u64,
}

impl PrivatePages {
    pub(crate) fn layout(ram: u64) -> Self {
        let base = ram.div_ceil(4096) * 4096;
        let msr_bitmap = base;
        let nested = NestedPages {
            vmcs01: base + 4096,
            vmcs02: base + 2 * 4096,
            msr_bitmap02: base + 3 * 4096,
            msr_bitmap01: msr_bitmap,
            shadow_ept: base + 4 * 4096,
            shadow_ept_pages: SHADOW_EPT_PAGES,
            ram,
        };
        let ept_base = nested.shadow_ept + SHADOW_EPT_PAGES * 4096;
        let end = ept_base + ept::pages_needed(ram) * 4096;
        PrivatePages {
            msr_bitmap,
            ept_base,
            nested,
            end,
            ram,
        }
    }

    /// Writes the MSR bitmap and EPT tables into host memory.
    pub(crate) fn install(&self, hw: &mut impl VmxHardware) -> Result<(), HwError> {
        let mut bitmap = vec![0xFFu8; 4096];
        let mtrrs = PASSTHROUGH_MTRRS.into_iter().flatten();
        for m in PASSTHROUGH_MSRS.iter().copied().chain(mtrrs) {
            let (off, bit) = if m >= 0xC000_0000 {
                (1024, m - 0xC000_0000)
            } else {
                (0, m)
            };
            for half in [0usize, 2048] {
                let byte = half + off + (bit / 8) as usize;
                bitmap[byte] &= !(1 << (bit % 8));
            }
        }
        hw.write_phys(self.msr_bitmap, &bitmap)?;
        Nested::install(&self.nested, hw)?;
        let image = ept::build(self.ram, self.ept_base);
        for (addr, page) in &image.pages {
            hw.write_phys(*addr, page)?;
        }
        Ok(())
    }

    pub(crate) fn eptp(&self) -> u64 {
        ept::build(self.ram, self.ept_base).eptp
    }
}

/// The VM-wide choices every vCPU is programmed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VmSettings {
    /// Intercept #AC and #DB (exception bitmap bits 17 and 1).
    pub intercept_ac_db: bool,
    /// Notify VM exiting: the window, and whether every exit goes to userspace.
    pub notify: Option<NotifySettings>,
    /// Bus-lock detection (secondary control bit 30): exit 74 after each.
    pub bus_lock_exit: bool,
    /// VMX is offered to the guest (nested virtualization).
    pub nested_vmx: bool,
    /// Virtual time exact or paced to host time (`super::time`).
    pub virtual_time: accel::VirtualTime,
    /// Faults the operator asked for (`super::vcpu::faults`).
    pub faults: FaultSettings,
}

/// Faults injected at defined points (`Vm::inject_stall`,
/// `Vm::arm_notify_context_invalid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FaultSettings {
    /// A stall inside microcode.
    pub stall: Option<accel::StallInjection>,
    /// The next notify exit (while this level runs, or any: `Some(None)`)
    /// reports an invalid context.
    pub context_invalid: Option<Option<accel::GuestLevel>>,
}

/// Notify VM exiting as enabled on the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotifySettings {
    /// Notify window in crystal-clock cycles (VMCS field 0x4024).
    pub window: u32,
    /// Every notify exit goes to userspace.
    pub user: bool,
}

fn adjust(hw: &impl VmxHardware, cap_msr: u32, want: u32) -> u32 {
    let cap = hw.capability(cap_msr).unwrap_or(0);
    (want | cap as u32) & (cap >> 32) as u32
}

/// Writes controls and guest state for a vCPU entering in `entry`.
pub(crate) fn program(
    hw: &mut impl VmxHardware,
    pages: &PrivatePages,
    entry: &EntryState,
    settings: &VmSettings,
) -> Result<(), HwError> {
    hw.vmptrld(pages.nested.vmcs01)?;
    hw.vmclear();
    controls(hw, pages, settings)?;
    guest_state(hw, entry)?;
    let mut gprs = [0u64; 16];
    gprs[0] = entry.rax;
    gprs[3] = entry.rbx;
    gprs[4] = entry.rsp;
    hw.set_gprs(&gprs);
    Ok(())
}

/// vmcs01's execution, exit and entry controls, as the capability MSRs
/// allow them, and the pages and masks they point to.
fn controls(
    hw: &mut impl VmxHardware,
    pages: &PrivatePages,
    settings: &VmSettings,
) -> Result<(), HwError> {
    let pinv = adjust(hw, msr::VMX_PINBASED_CTLS, pin::EXT_INTR_EXITING);
    let procv = adjust(
        hw,
        msr::VMX_PROCBASED_CTLS,
        proc::HLT_EXITING
            | proc::UNCOND_IO_EXITING
            | proc::USE_MSR_BITMAPS
            | proc::ACTIVATE_SECONDARY_CONTROLS,
    );
    let proc2v = adjust(
        hw,
        msr::VMX_PROCBASED_CTLS2,
        proc2::ENABLE_EPT
            | proc2::UNRESTRICTED_GUEST
            | proc2::ENABLE_RDTSCP
            | if settings.notify.is_some() {
                proc2::NOTIFY_VM_EXITING
            } else {
                0
            }
            | if settings.bus_lock_exit {
                proc2::BUS_LOCK_DETECTION
            } else {
                0
            },
    );
    let exitv = adjust(
        hw,
        msr::VMX_EXIT_CTLS,
        exit_ctl::HOST_ADDR_SPACE_SIZE | exit_ctl::SAVE_IA32_EFER | exit_ctl::LOAD_IA32_EFER,
    );
    let entryv = adjust(hw, msr::VMX_ENTRY_CTLS, entry_ctl::LOAD_IA32_EFER);
    let mut put = |fld: u32, v: u64| hw.vmwrite(fld, v);
    put(f::PIN_BASED_VM_EXEC_CONTROL, u64::from(pinv))?;
    put(f::CPU_BASED_VM_EXEC_CONTROL, u64::from(procv))?;
    put(f::SECONDARY_VM_EXEC_CONTROL, u64::from(proc2v))?;
    put(f::VM_EXIT_CONTROLS, u64::from(exitv))?;
    put(f::VM_ENTRY_CONTROLS, u64::from(entryv))?;
    let intercepted = if settings.intercept_ac_db {
        1 << x86::exception::AC | 1 << x86::exception::DB
    } else {
        0
    };
    put(f::EXCEPTION_BITMAP, intercepted)?;
    put(
        f::NOTIFY_WINDOW,
        settings.notify.map_or(0, |n| u64::from(n.window)),
    )?;
    put(f::MSR_BITMAP, pages.msr_bitmap)?;
    put(f::EPT_POINTER, pages.eptp())?;
    put(f::VMCS_LINK_POINTER, u64::MAX)?;
    // The guest owns CR0 and CR4 except the bits VMX operation fixes (SDM
    // Vol. 3C §24.8): NE and VMXE are host-owned and read from the shadows.
    put(f::CR0_GUEST_HOST_MASK, CR0_NE)?;
    put(f::CR4_GUEST_HOST_MASK, CR4_VMXE)
}

/// vmcs01's guest-state area for the entry `entry` describes.
fn guest_state(hw: &mut impl VmxHardware, entry: &EntryState) -> Result<(), HwError> {
    let mut put = |fld: u32, v: u64| hw.vmwrite(fld, v);
    match entry.mode {
        EntryMode::Protected32Flat => {
            let code_ar = u64::from(x86::segment::AR_CODE32);
            let data_ar = u64::from(x86::segment::AR_DATA32);
            for (sel, base, limit, ar, s, a) in [
                (
                    f::GUEST_CS_SELECTOR,
                    f::GUEST_CS_BASE,
                    f::GUEST_CS_LIMIT,
                    f::GUEST_CS_AR_BYTES,
                    0x10,
                    code_ar,
                ),
                (
                    f::GUEST_DS_SELECTOR,
                    f::GUEST_DS_BASE,
                    f::GUEST_DS_LIMIT,
                    f::GUEST_DS_AR_BYTES,
                    0x18,
                    data_ar,
                ),
                (
                    f::GUEST_ES_SELECTOR,
                    f::GUEST_ES_BASE,
                    f::GUEST_ES_LIMIT,
                    f::GUEST_ES_AR_BYTES,
                    0x18,
                    data_ar,
                ),
                (
                    f::GUEST_SS_SELECTOR,
                    f::GUEST_SS_BASE,
                    f::GUEST_SS_LIMIT,
                    f::GUEST_SS_AR_BYTES,
                    0x18,
                    data_ar,
                ),
                (
                    f::GUEST_FS_SELECTOR,
                    f::GUEST_FS_BASE,
                    f::GUEST_FS_LIMIT,
                    f::GUEST_FS_AR_BYTES,
                    0x18,
                    data_ar,
                ),
                (
                    f::GUEST_GS_SELECTOR,
                    f::GUEST_GS_BASE,
                    f::GUEST_GS_LIMIT,
                    f::GUEST_GS_AR_BYTES,
                    0x18,
                    data_ar,
                ),
            ] {
                put(sel, s)?;
                put(base, 0)?;
                put(limit, 0xFFFF_FFFF)?;
                put(ar, a)?;
            }
            // TR: a busy 32-bit TSS, present; LDTR unusable.
            put(f::GUEST_TR_SELECTOR, 0)?;
            put(f::GUEST_TR_BASE, 0)?;
            put(f::GUEST_TR_LIMIT, 0xFFFF)?;
            put(f::GUEST_TR_AR_BYTES, u64::from(x86::segment::AR_TSS_BUSY))?;
            put(f::GUEST_LDTR_AR_BYTES, u64::from(x86::segment::AR_UNUSABLE))?;
            put(f::GUEST_GDTR_BASE, 0)?;
            put(f::GUEST_GDTR_LIMIT, 0xFFFF)?;
            put(f::GUEST_IDTR_BASE, 0)?;
            put(f::GUEST_IDTR_LIMIT, 0xFFFF)?;
            let cr0 = CR0_PE | CR0_ET;
            put(f::GUEST_CR0, cr0 | CR0_NE)?;
            put(f::CR0_READ_SHADOW, cr0)?;
            put(f::GUEST_CR3, 0)?;
            put(f::GUEST_CR4, CR4_VMXE)?;
            put(f::CR4_READ_SHADOW, 0)?;
            put(f::GUEST_IA32_EFER, 0)?;
            put(f::GUEST_RFLAGS, x86::rflags::FIXED1)?;
            put(f::GUEST_RIP, entry.rip)?;
            put(f::GUEST_RSP, entry.rsp)?;
            put(f::GUEST_DR7, 0x400)?;
            put(f::GUEST_ACTIVITY_STATE, 0)?;
            put(f::GUEST_INTERRUPTIBILITY_INFO, 0)?;
        }
    }
    Ok(())
}
