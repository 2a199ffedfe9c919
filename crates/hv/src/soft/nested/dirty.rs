//! EPT accessed and dirty flags and page-modification logging for L1 (SDM
//! Vol. 3C §29.3.5, §29.3.6), emulated when L0 fills its shadow of L1's EPT.
//!
//! With bit 6 of L1's EPTP set, the fill that lets an access of L2's
//! through sets the accessed flags of the L1 entries the walk used and,
//! for a write, the leaf's dirty flag (`ept::AdUpdate`). With "enable PML"
//! in vmcs12 too, each dirty flag that goes from 0 to 1 logs the 4 KiB
//! page of the guest-physical address at PML address + 8 × PML index, and
//! the index (vmcs12's, which only L0 changes while L2 runs) goes down by
//! one, from 0 to 0xFFFF. When a log entry is due and the index is not in
//! 0–511, the access is a page-modification log-full event (exit 62) for
//! L1 instead: no flag is set, and the access is retried when L1 resumes.

use super::ept::AdUpdate;
use super::Nested;
use crate::hw::{HwError, VmxHardware};
use x86::vmx::{field as f, proc2};

/// What setting the flags for an access came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flags {
    /// Set (or already set): the access goes on. `dirty` when the leaf's
    /// dirty flag is set, so the shadow may let L2 write the page.
    Set { dirty: bool },
    /// The page-modification log is full: exit 62 to L1, nothing set.
    LogFull,
}

impl Nested {
    /// Sets the accessed and dirty flags in L1's EPT at `eptp12` for an
    /// access to `gpa2` L1's EPT allows (a write when `write`), and logs a
    /// newly dirtied page when L1 enabled PML.
    pub(crate) fn set_ept_flags(
        &mut self,
        hw: &mut impl VmxHardware,
        eptp12: u64,
        gpa2: u64,
        write: bool,
    ) -> Result<Flags, HwError> {
        let update = AdUpdate::of(&*hw, eptp12, gpa2, write)?;
        if update.dirtied && self.vmcs12.controls().proc2 & proc2::ENABLE_PML != 0 {
            let index = self.vmcs12.get(f::GUEST_PML_INDEX) as u16;
            if index > 511 {
                return Ok(Flags::LogFull);
            }
            update.apply(hw)?;
            // A log outside L1's RAM takes nothing (as a store to no RAM).
            let at = self.vmcs12.get(f::PML_ADDRESS) + 8 * u64::from(index);
            if at < self.pages.ram {
                hw.write_phys(at, &(gpa2 & !0xFFF).to_le_bytes())?;
            }
            self.vmcs12
                .set(f::GUEST_PML_INDEX, u64::from(index.wrapping_sub(1)));
        } else {
            update.apply(hw)?;
        }
        Ok(Flags::Set {
            dirty: update.dirty,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::test_hw::FakeHw;
    use crate::soft::nested::ept::{ACCESSED, DIRTY, EPTP_AD};
    use crate::soft::nested::{NestedPages, Route};
    use x86::vmx::proc;

    const RAM: u64 = 1 << 22;

    fn entry(hw: &FakeHw, at: u64) -> u64 {
        let mut b = [0u8; 8];
        hw.read_phys(at, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    fn put(hw: &mut FakeHw, at: u64, value: u64) {
        hw.write_phys(at, &value.to_le_bytes()).unwrap();
    }

    /// L1's EPT at 0x1000 → 0x2000 → 0x3000 → PT 0x4000; L2 page 5 → L1
    /// page 0x9_0000 (RWX, write-back); a 2 MiB page at 0x20_0000. PML on,
    /// its log at 0x8000.
    fn setup(pml: bool) -> (FakeHw, Nested, u64) {
        let mut hw = FakeHw {
            memory: vec![0; RAM as usize],
            ..FakeHw::default()
        };
        put(&mut hw, 0x1000, 0x2000 | 7);
        put(&mut hw, 0x2000, 0x3000 | 7);
        put(&mut hw, 0x3000, 0x4000 | 7);
        put(&mut hw, 0x3008, 0x20_0000 | 1 << 7 | 6 << 3 | 7);
        put(&mut hw, 0x4000 + 5 * 8, 0x9_0000 | 6 << 3 | 7);
        let pages = NestedPages {
            vmcs01: 0x10_0000,
            vmcs02: 0x10_1000,
            msr_bitmap02: 0x10_2000,
            msr_bitmap01: 0x10_3000,
            shadow_ept: 0x11_0000,
            shadow_ept_pages: 4,
            ram: RAM,
        };
        let mut n = Nested::new(softcpu::capability_msr, 39, pages, None, 0);
        if pml {
            n.vmcs12.set(
                f::CPU_BASED_VM_EXEC_CONTROL,
                u64::from(proc::ACTIVATE_SECONDARY_CONTROLS),
            );
            n.vmcs12.set(
                f::SECONDARY_VM_EXEC_CONTROL,
                u64::from(proc2::ENABLE_EPT | proc2::ENABLE_PML),
            );
        }
        n.vmcs12.set(f::PML_ADDRESS, 0x8000);
        n.vmcs12.set(f::GUEST_PML_INDEX, 511);
        (hw, n, 0x1000 | 6 | 3 << 3 | EPTP_AD)
    }

    #[test]
    fn a_read_sets_accessed_flags_and_a_write_the_dirty_flag() {
        let (mut hw, mut n, eptp) = setup(false);
        let flags = n.set_ept_flags(&mut hw, eptp, 0x5123, false).unwrap();
        assert_eq!(flags, Flags::Set { dirty: false });
        for at in [0x1000, 0x2000, 0x3000, 0x4000 + 5 * 8] {
            assert_eq!(entry(&hw, at) & (ACCESSED | DIRTY), ACCESSED, "{at:#x}");
        }
        let flags = n.set_ept_flags(&mut hw, eptp, 0x5123, true).unwrap();
        assert_eq!(flags, Flags::Set { dirty: true });
        assert_eq!(entry(&hw, 0x4028), 0x9_0000 | 6 << 3 | 7 | ACCESSED | DIRTY);
        // Only leaves have a dirty flag; a 2 MiB page is one.
        assert_eq!(entry(&hw, 0x3000) & DIRTY, 0);
        n.set_ept_flags(&mut hw, eptp, 0x20_1000, true).unwrap();
        assert_ne!(entry(&hw, 0x3008) & DIRTY, 0);
        // Without PML nothing is logged.
        assert_eq!(entry(&hw, 0x8000 + 511 * 8), 0);
        assert_eq!(n.vmcs12.get(f::GUEST_PML_INDEX), 511);
    }

    #[test]
    fn pml_logs_each_newly_dirty_page_then_fills() {
        let (mut hw, mut n, eptp) = setup(true);
        // A read logs nothing; the first write logs the page, the second
        // (already dirty) nothing.
        n.set_ept_flags(&mut hw, eptp, 0x5123, false).unwrap();
        assert_eq!(n.vmcs12.get(f::GUEST_PML_INDEX), 511);
        n.set_ept_flags(&mut hw, eptp, 0x5123, true).unwrap();
        assert_eq!(entry(&hw, 0x8000 + 511 * 8), 0x5000);
        assert_eq!(n.vmcs12.get(f::GUEST_PML_INDEX), 510);
        n.set_ept_flags(&mut hw, eptp, 0x5FF8, true).unwrap();
        assert_eq!(n.vmcs12.get(f::GUEST_PML_INDEX), 510);
        // Index 0 takes the last entry and wraps to 0xFFFF; then the log is
        // full and a write to a clean page sets nothing.
        n.vmcs12.set(f::GUEST_PML_INDEX, 0);
        n.set_ept_flags(&mut hw, eptp, 0x20_1234, true).unwrap();
        assert_eq!(entry(&hw, 0x8000), 0x20_1000);
        assert_eq!(n.vmcs12.get(f::GUEST_PML_INDEX), 0xFFFF);
        put(&mut hw, 0x4028, 0x9_0000 | 6 << 3 | 7);
        assert_eq!(
            n.set_ept_flags(&mut hw, eptp, 0x5000, true),
            Ok(Flags::LogFull)
        );
        assert_eq!(entry(&hw, 0x4028), 0x9_0000 | 6 << 3 | 7, "nothing set");
        // A read needs no log entry: it goes on with the log full.
        assert_eq!(
            n.set_ept_flags(&mut hw, eptp, 0x5000, false),
            Ok(Flags::Set { dirty: false })
        );
        assert_eq!(entry(&hw, 0x4028) & ACCESSED, ACCESSED);
    }

    /// An EPT violation from vmcs02 with `qualification` at `gpa2`.
    fn violation(hw: &mut FakeHw, n: &mut Nested, gpa2: u64, qualification: u64) -> Route {
        hw.fields.insert(f::VM_EXIT_REASON, 48);
        hw.fields.insert(f::GUEST_PHYSICAL_ADDRESS, gpa2);
        hw.fields.insert(f::EXIT_QUALIFICATION, qualification);
        n.l2_exit(hw, 48).unwrap()
    }

    #[test]
    fn the_shadow_is_writable_once_l1s_dirty_flag_is_set_and_a_full_log_exits() {
        let (mut hw, mut n, eptp) = setup(true);
        n.vmcs12.set(f::EPT_POINTER, eptp);
        n.shadow.reset(&mut hw, Some(eptp)).unwrap();
        // The shadow: root 0x11_0000, then 0x11_1000, 0x11_2000, 0x11_3000.
        let shadow_leaf = 0x11_3000 + 5 * 8;
        let translated = 1 << 7 | 1 << 8;
        assert_eq!(
            violation(&mut hw, &mut n, 0x5008, 1 | translated),
            Route::Resume
        );
        assert_eq!(entry(&hw, shadow_leaf) & 7, 5, "R and X until dirty");
        assert_eq!(entry(&hw, 0x4028) & (ACCESSED | DIRTY), ACCESSED);
        assert_eq!(
            violation(&mut hw, &mut n, 0x5008, 2 | translated),
            Route::Resume
        );
        assert_eq!(entry(&hw, shadow_leaf) & 7, 7);
        assert_eq!(entry(&hw, 0x4028) & DIRTY, DIRTY);
        assert_eq!(entry(&hw, 0x8000 + 511 * 8), 0x5000);
        // A walk of L2's (bit 8 clear) through a clean page is a write, as
        // vmcs02's EPTP with bit 6 makes the processor report it.
        assert_eq!(
            violation(&mut hw, &mut n, 0x20_0010, 3 | 1 << 7),
            Route::Resume
        );
        assert_eq!(entry(&hw, 0x3008) & DIRTY, DIRTY);
        assert_eq!(entry(&hw, 0x8000 + 510 * 8), 0x20_0000);
        // With the log full, a write to a clean page is exit 62 for L1.
        n.vmcs12.set(f::GUEST_PML_INDEX, 0xFFFF);
        put(&mut hw, 0x4028, 0x9_0000 | 6 << 3 | 7);
        n.shadow.reset(&mut hw, Some(eptp)).unwrap();
        assert_eq!(
            violation(&mut hw, &mut n, 0x5000, 2 | translated | 1 << 12),
            Route::ToL1
        );
        assert_eq!(n.vmcs12.get(f::VM_EXIT_REASON), 62);
        assert_eq!(n.vmcs12.get(f::EXIT_QUALIFICATION), 1 << 12);
        assert_eq!(entry(&hw, 0x4028) & (ACCESSED | DIRTY), 0);
    }
}
