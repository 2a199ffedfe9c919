//! The VMCS link pointer's VM-entry check (SDM Vol. 3C §27.3.1.5): all
//! ones, or a 4 KiB-aligned address within the physical-address width,
//! not the current VMCS, whose first dword holds the VMCS revision with bit
//! 31 equal to "VMCS shadowing" (0 here). Anything else is a VM-entry
//! failure with qualification 4 (§27.8). (The harness runs an unnamed
//! VMCS, so "not the current VMCS" is l1hv's to check, against L0.)

use softcpu::harness::{machine, Mode};
use x86::vmx::{exit_reason, field as f};

/// A free page for a second VMCS region.
const OTHER: u64 = 0x0030_0000;

/// Launches `nop; hlt` with the link pointer at `link`; the exit reason
/// and qualification.
fn launch(link: u64, header: u32) -> (u32, u64) {
    let mut cpu = machine(Mode::Long64, &[0x90, 0xF4]);
    cpu.memory_mut()
        .write(OTHER, &header.to_le_bytes())
        .unwrap();
    cpu.vmwrite(f::VMCS_LINK_POINTER, link).unwrap();
    cpu.vmlaunch().unwrap();
    (
        cpu.vmread(f::VM_EXIT_REASON).unwrap() as u32,
        cpu.vmread(f::EXIT_QUALIFICATION).unwrap(),
    )
}

const FAILED: u32 = exit_reason::ENTRY_FAILURE | exit_reason::INVALID_GUEST_STATE as u32;

#[test]
fn another_vmcs_region_is_a_valid_link_pointer() {
    // The guest runs (to the harness's step budget): no entry failure.
    assert_eq!(launch(OTHER, 1).0 & exit_reason::ENTRY_FAILURE, 0);
    assert_eq!(launch(u64::MAX, 0).0 & exit_reason::ENTRY_FAILURE, 0);
}

#[test]
fn an_invalid_link_pointer_fails_the_entry_with_qualification_4() {
    for (what, reason) in [
        ("unaligned", launch(OTHER + 8, 1)),
        ("beyond the width", launch(1 << 52, 1)),
        ("wrong revision", launch(OTHER, 2)),
        ("shadow bit 31 set", launch(OTHER, 1 | 1 << 31)),
    ] {
        assert_eq!(reason, (FAILED, 4), "{what}");
    }
}
