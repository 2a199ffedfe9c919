//! The MSR lists of vmcs12 (SDM Vol. 3C §25.7.2, §25.8.2): the VM-entry
//! MSR-load list, processed after L2's guest state is in vmcs02 (§27.4),
//! and the VM-exit MSR-store and MSR-load lists, processed around loading
//! L1's host state (§28.4, §28.6).
//!
//! Each list is an array of 16-byte entries in L1's memory: the MSR index
//! in bits 31:0, reserved bits 63:32, the data in bits 127:64. Entries are
//! processed in order, as RDMSR or WRMSR at CPL 0 would read or write them,
//! with the rules of §27.4/§28.4/§28.6 on top:
//!
//! - reserved bits 63:32 set, an x2APIC MSR (0x800–0x8FF), IA32_SMBASE or
//!   IA32_SMM_MONITOR_CTL (SMM only), or an MSR RDMSR/WRMSR would refuse,
//!   fail the entry;
//! - IA32_FS_BASE and IA32_GS_BASE may not be loaded (their VMCS fields are
//!   the way), but may be stored;
//! - IA32_APIC_BASE and IA32_TSC_DEADLINE belong to L0's local APIC model,
//!   not to the processor: this model refuses them in every list (the
//!   model-specific reasons §27.4 allows);
//! - an entry beyond 512 × (N + 1), N = IA32_VMX_MISC[27:25] (§A.6), fails.
//!
//! A failure at VM entry is a VM-entry failure with exit reason 34 whose
//! qualification is the failing entry's 1-based number (§27.8); at VM exit
//! it is a VMX abort (§28.7): the abort indicator is written into the
//! vmcs12 region and L1 shuts down.
//!
//! The MSRs the processor keeps in the current VMCS's guest-state area
//! (EFER, SYSENTER_CS/ESP/EIP, and DEBUGCTL and PAT where the VMCS's
//! entry controls load them) are written there, since the next entry of
//! that VMCS loads them; the others are the processor's own.

use super::Nested;
use crate::hw::{HwError, VmxHardware};
use x86::cr::{CR0_PG, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE};
use x86::msr;
use x86::vmx::{entry_ctl, field as f};

/// Bytes per list entry.
pub(crate) const ENTRY_BYTES: u64 = 16;
/// IA32_SMBASE: readable and writable only in SMM.
const SMBASE: u32 = 0x9E;
/// IA32_SMM_MONITOR_CTL: writable only in SMM.
const SMM_MONITOR_CTL: u32 = 0x9B;

/// VMX-abort indicators (SDM Vol. 3C §28.7).
pub(crate) mod abort {
    /// Saving guest MSRs (the VM-exit MSR-store list) failed.
    pub const SAVING_GUEST_MSRS: u32 = 1;
    /// Loading host MSRs (the VM-exit MSR-load list) failed.
    pub const LOADING_HOST_MSRS: u32 = 4;
}

/// The most entries a list may hold: 512 × (N + 1), N = IA32_VMX_MISC[27:25]
/// (SDM Vol. 3C §A.6).
pub(crate) fn max_entries(misc: u64) -> u64 {
    512 * (((misc >> 25) & 7) + 1)
}

/// The VM-entry check on an MSR area of `count` entries at `addr` (SDM Vol.
/// 3C §27.2.1.2, §27.2.1.3): with a nonzero count, bits 3:0 of the address
/// are 0, and neither the address nor that of the area's last byte sets a
/// bit beyond the physical-address width.
pub(crate) fn area_valid(addr: u64, count: u32, phys_bits: u32) -> bool {
    if count == 0 {
        return true;
    }
    let last = addr.checked_add(u64::from(count) * ENTRY_BYTES - 1);
    addr & 0xF == 0 && addr >> phys_bits == 0 && last.is_some_and(|l| l >> phys_bits == 0)
}

/// One entry of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ListEntry {
    index: u32,
    reserved: u32,
    data: u64,
}

/// MSRs no list may name, loading (`load`) or storing.
fn refused(index: u32, load: bool) -> bool {
    index >> 8 == 0x8
        || index == SMBASE
        || index == SMM_MONITOR_CTL
        || index == msr::APIC_BASE
        || index == msr::TSC_DEADLINE
        || (load && (index == msr::FS_BASE || index == msr::GS_BASE))
}

/// WRMSR of EFER for the guest of the current VMCS: reserved bits are #GP,
/// and so is changing LME while its CR0.PG is 1; LMA is not written.
fn load_efer(hw: &mut impl VmxHardware, data: u64) -> Result<bool, HwError> {
    let current = hw.vmread(f::GUEST_IA32_EFER)?;
    let paging = hw.vmread(f::GUEST_CR0)? & CR0_PG != 0;
    if data & !(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE) != 0
        || (paging && (data ^ current) & EFER_LME != 0)
    {
        return Ok(false);
    }
    hw.vmwrite(
        f::GUEST_IA32_EFER,
        (data & !EFER_LMA) | (current & EFER_LMA),
    )?;
    Ok(true)
}

/// WRMSR of `index` with `data` at CPL 0 for the guest of the current VMCS;
/// `false` where it would be #GP.
fn load_one(hw: &mut impl VmxHardware, index: u32, data: u64) -> Result<bool, HwError> {
    if index == msr::EFER {
        return load_efer(hw, data);
    }
    if !hw.wrmsr(index, data) {
        return Ok(false);
    }
    let entry = hw.vmread(f::VM_ENTRY_CONTROLS)? as u32;
    let field = match index {
        msr::SYSENTER_CS => Some(f::GUEST_SYSENTER_CS),
        msr::SYSENTER_ESP => Some(f::GUEST_SYSENTER_ESP),
        msr::SYSENTER_EIP => Some(f::GUEST_SYSENTER_EIP),
        msr::DEBUGCTL if entry & entry_ctl::LOAD_DEBUG_CONTROLS != 0 => {
            Some(f::GUEST_IA32_DEBUGCTL)
        }
        msr::PAT if entry & entry_ctl::LOAD_IA32_PAT != 0 => Some(f::GUEST_IA32_PAT),
        _ => None,
    };
    if let Some(field) = field {
        // The value as WRMSR left it (SYSENTER_CS keeps 32 bits).
        let written = hw.rdmsr(index).unwrap_or(data);
        hw.vmwrite(field, written)?;
    }
    Ok(true)
}

impl Nested {
    /// Reads the entry at `addr` of L1's memory; outside L1's RAM the
    /// bus reads all ones (an entry that fails).
    fn list_entry(&self, hw: &impl VmxHardware, addr: u64) -> Result<ListEntry, HwError> {
        let mut b = [0xFFu8; ENTRY_BYTES as usize];
        if addr
            .checked_add(ENTRY_BYTES)
            .is_some_and(|end| end <= self.pages.ram)
        {
            hw.read_phys(addr, &mut b)?;
        }
        let dword = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Ok(ListEntry {
            index: dword(0),
            reserved: dword(4),
            data: u64::from(dword(8)) | u64::from(dword(12)) << 32,
        })
    }

    /// RDMSR of the MSRs L0 answers for L1 itself: IA32_FEATURE_CONTROL and
    /// the VMX capability MSRs (`crate::soft::exits`); `None` for the
    /// processor's.
    fn l0_msr(&self, index: u32) -> Option<Option<u64>> {
        match index {
            msr::FEATURE_CONTROL => Some(Some(5)),
            0x480..=0x491 => Some(self.caps.rdmsr(index)),
            _ => None,
        }
    }

    /// Loads the list of `count_field` entries at `addr_field` of vmcs12
    /// into the guest of the current VMCS; `Err(n)` when entry `n`
    /// (1-based) failed, the entries before it loaded.
    pub(super) fn load_msr_list(
        &self,
        hw: &mut impl VmxHardware,
        addr_field: u32,
        count_field: u32,
    ) -> Result<Result<(), u32>, HwError> {
        let addr = self.vmcs12.get(addr_field);
        let count = u64::from(self.vmcs12.get32(count_field));
        let max = max_entries(self.caps.rdmsr(msr::VMX_MISC).unwrap_or(0));
        for i in 0..count {
            let failed = Ok(Err(i as u32 + 1));
            if i >= max {
                return failed;
            }
            let e = self.list_entry(hw, addr.wrapping_add(i * ENTRY_BYTES))?;
            if e.reserved != 0 || refused(e.index, true) || !load_one(hw, e.index, e.data)? {
                return failed;
            }
        }
        Ok(Ok(()))
    }

    /// Stores the MSRs the VM-exit MSR-store list names, as L2 left them
    /// (the processor still holds L2's state; vmcs02 is current); `Err(n)`
    /// when entry `n` failed. Stores outside L1's RAM are dropped.
    pub(super) fn store_exit_msrs(
        &self,
        hw: &mut impl VmxHardware,
    ) -> Result<Result<(), u32>, HwError> {
        let addr = self.vmcs12.get(f::VM_EXIT_MSR_STORE_ADDR);
        let count = u64::from(self.vmcs12.get32(f::VM_EXIT_MSR_STORE_COUNT));
        let max = max_entries(self.caps.rdmsr(msr::VMX_MISC).unwrap_or(0));
        for i in 0..count {
            let failed = Ok(Err(i as u32 + 1));
            let at = addr.wrapping_add(i * ENTRY_BYTES);
            if i >= max {
                return failed;
            }
            let e = self.list_entry(hw, at)?;
            if e.reserved != 0 || refused(e.index, false) {
                return failed;
            }
            let value = match self.l0_msr(e.index) {
                Some(v) => v,
                None => hw.rdmsr(e.index),
            };
            let Some(value) = value else {
                return failed;
            };
            if at
                .checked_add(ENTRY_BYTES)
                .is_some_and(|end| end <= self.pages.ram)
            {
                hw.write_phys(at + 8, &value.to_le_bytes())?;
            }
        }
        Ok(Ok(()))
    }

    /// A VMX abort (SDM Vol. 3C §28.7): the indicator goes into dword 1 of
    /// the current vmcs12 region, and L1 shuts down (`take_abort`).
    pub(super) fn vmx_abort(
        &mut self,
        hw: &mut impl VmxHardware,
        indicator: u32,
    ) -> Result<(), HwError> {
        if let Some(region) = self.current.filter(|r| r + 8 <= self.pages.ram) {
            hw.write_phys(region + 4, &indicator.to_le_bytes())?;
        }
        self.aborted = true;
        Ok(())
    }

    /// Whether a VMX abort put L1 into shutdown since the last call.
    pub(crate) fn take_abort(&mut self) -> bool {
        std::mem::take(&mut self.aborted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::test_hw::FakeHw;

    #[test]
    fn area_checks() {
        assert!(area_valid(0x1234_5678, 0, 39), "no entries: no check");
        assert!(area_valid(0x1000, 3, 39));
        assert!(!area_valid(0x1008, 1, 39), "16-byte alignment");
        assert!(!area_valid(1 << 39, 1, 39), "beyond the width");
        assert!(area_valid((1 << 39) - 16, 1, 39));
        assert!(
            !area_valid((1 << 39) - 16, 2, 39),
            "last byte beyond the width"
        );
        assert!(!area_valid(u64::MAX - 15, 2, 39));
        assert_eq!(max_entries(0), 512);
        assert_eq!(max_entries(3 << 25), 2048);
    }

    fn nested(ram: u64) -> Nested {
        let pages = super::super::NestedPages {
            vmcs01: ram,
            vmcs02: ram + 0x1000,
            msr_bitmap02: ram + 0x2000,
            msr_bitmap01: ram + 0x3000,
            shadow_ept: ram + 0x4000,
            shadow_ept_pages: 1,
            ram,
        };
        Nested::new(softcpu::capability_msr, 39, pages, None, 0)
    }

    #[test]
    fn the_store_list_and_a_vmx_abort() {
        let mut n = nested(0x4000);
        let mut hw = FakeHw {
            memory: vec![0; 0x5000],
            ..FakeHw::default()
        };
        hw.msrs.insert(msr::STAR, 0xAB);
        let entries = [(msr::STAR, 0u32), (msr::FEATURE_CONTROL, 0), (0x1234, 0)];
        for (i, (index, reserved)) in entries.iter().enumerate() {
            let at = 0x100 + 16 * i;
            hw.memory[at..at + 4].copy_from_slice(&index.to_le_bytes());
            hw.memory[at + 4..at + 8].copy_from_slice(&reserved.to_le_bytes());
        }
        n.vmcs12.set(f::VM_EXIT_MSR_STORE_ADDR, 0x100);
        n.vmcs12.set(f::VM_EXIT_MSR_STORE_COUNT, 2);
        assert_eq!(n.store_exit_msrs(&mut hw), Ok(Ok(())));
        assert_eq!(hw.memory[0x108], 0xAB);
        assert_eq!(hw.memory[0x118], 5, "IA32_FEATURE_CONTROL as L0 answers it");
        // An MSR RDMSR refuses: entry 3 fails.
        n.vmcs12.set(f::VM_EXIT_MSR_STORE_COUNT, 3);
        assert_eq!(n.store_exit_msrs(&mut hw), Ok(Err(3)));
        // Entries outside L1's RAM read as all ones: entry 1 fails.
        n.vmcs12.set(f::VM_EXIT_MSR_STORE_ADDR, 0x3FF8);
        assert_eq!(n.store_exit_msrs(&mut hw), Ok(Err(1)));
        n.current = Some(0x2000);
        n.vmx_abort(&mut hw, abort::SAVING_GUEST_MSRS).unwrap();
        assert_eq!(hw.memory[0x2004], 1, "the abort indicator");
        assert!(n.take_abort());
        assert!(!n.take_abort());
    }

    #[test]
    fn the_load_list_counts_entries_from_one() {
        let n = {
            let mut n = nested(0x4000);
            n.vmcs12.set(f::VM_ENTRY_MSR_LOAD_ADDR, 0x200);
            n.vmcs12.set(f::VM_ENTRY_MSR_LOAD_COUNT, 600);
            n
        };
        let mut hw = FakeHw {
            memory: vec![0; 0x5000],
            ..FakeHw::default()
        };
        hw.msrs.insert(msr::STAR, 0);
        for i in 0..600 {
            let at = 0x200 + 16 * i;
            hw.memory[at..at + 4].copy_from_slice(&msr::STAR.to_le_bytes());
            hw.memory[at + 8] = i as u8;
        }
        assert_eq!(
            n.load_msr_list(
                &mut hw,
                f::VM_ENTRY_MSR_LOAD_ADDR,
                f::VM_ENTRY_MSR_LOAD_COUNT
            ),
            Ok(Err(513)),
            "512 entries at most"
        );
        assert_eq!(hw.msrs[&msr::STAR], 511 % 256);
        // FS_BASE may not be loaded.
        hw.memory[0x200 + 16 * 3..0x200 + 16 * 3 + 4].copy_from_slice(&msr::FS_BASE.to_le_bytes());
        hw.msrs.insert(msr::FS_BASE, 0);
        assert_eq!(
            n.load_msr_list(
                &mut hw,
                f::VM_ENTRY_MSR_LOAD_ADDR,
                f::VM_ENTRY_MSR_LOAD_COUNT
            ),
            Ok(Err(4))
        );
    }

    #[test]
    fn refused_msrs() {
        for index in [0x800, 0x8FF, SMBASE, SMM_MONITOR_CTL, msr::APIC_BASE] {
            assert!(refused(index, true) && refused(index, false), "{index:#x}");
        }
        assert!(refused(msr::FS_BASE, true) && !refused(msr::FS_BASE, false));
        assert!(refused(msr::GS_BASE, true) && !refused(msr::GS_BASE, false));
        assert!(!refused(msr::KERNEL_GS_BASE, true));
    }

    #[test]
    fn loads_go_to_the_vmcs_or_the_processor() {
        let mut hw = FakeHw::default();
        hw.msrs.insert(msr::STAR, 0);
        hw.msrs.insert(msr::SYSENTER_ESP, 0);
        hw.fields.insert(f::GUEST_CR0, CR0_PG);
        hw.fields.insert(f::GUEST_IA32_EFER, EFER_LME | EFER_LMA);
        assert_eq!(load_one(&mut hw, msr::STAR, 7), Ok(true));
        assert_eq!(hw.msrs[&msr::STAR], 7);
        assert_eq!(load_one(&mut hw, msr::SYSENTER_ESP, 0x1000), Ok(true));
        assert_eq!(hw.fields[&f::GUEST_SYSENTER_ESP], 0x1000);
        assert_eq!(load_one(&mut hw, 0x1234, 0), Ok(false), "#GP");
        // EFER: NXE may change, LME not while paging; LMA is kept.
        let nxe = EFER_LME | EFER_NXE;
        assert_eq!(load_one(&mut hw, msr::EFER, nxe), Ok(true));
        assert_eq!(hw.fields[&f::GUEST_IA32_EFER], nxe | EFER_LMA);
        assert_eq!(load_one(&mut hw, msr::EFER, 0), Ok(false));
        assert_eq!(load_one(&mut hw, msr::EFER, 1 << 9), Ok(false));
    }
}
