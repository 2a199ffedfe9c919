//! vmcs12: the VMCS L1 builds for its L2, kept where L1 put it — in a 4 KiB
//! region of L1's memory — with L0's cached copy of the current one.
//!
//! The region's format is L0's to choose (SDM Vol. 3C §25.2: only the
//! revision identifier and the abort indicator have a defined place): dword
//! 0 is the revision identifier, dword 1 the VMX-abort indicator, dword 2
//! the launch state, and from byte 16 each supported field as a quadword, in
//! the order of the processor's field table. VMPTRLD reads the region into
//! the cache; VMCLEAR, and VMPTRLD of another region, write it back.
//! VMREAD and VMWRITE work on the cache, with the width and read-only rules
//! of SDM Vol. 3C §31.3 — the field storage is the processor model's own
//! (`softcpu::Vmcs`), so vmcs12 supports exactly the fields vmcs01 does.

use crate::hw::{HwError, VmxHardware};
use softcpu::{Vmcs, VMCS_FIELDS};
use x86::vmx::{field as f, proc};

/// Byte offset of the launch state in the region.
const LAUNCH_STATE_OFFSET: u64 = 8;
/// Byte offset of the first field in the region.
const FIELDS_OFFSET: u64 = 16;

/// The VM-execution, exit and entry controls of a vmcs12, with the
/// secondary controls counted as 0 unless activated (SDM Vol. 3C §25.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Controls {
    /// Pin-based controls.
    pub pin: u32,
    /// Primary processor-based controls.
    pub proc: u32,
    /// Secondary processor-based controls in effect.
    pub proc2: u32,
    /// VM-exit controls.
    pub exit: u32,
    /// VM-entry controls.
    pub entry: u32,
}

/// L0's copy of one vmcs12.
#[derive(Debug, Clone)]
pub(crate) struct Vmcs12 {
    fields: Vmcs,
    /// Launched (VMRESUME required) rather than clear.
    pub launched: bool,
}

impl Vmcs12 {
    /// A clear vmcs12 with every field zero, as VMCLEAR leaves a fresh region.
    pub(crate) fn new() -> Self {
        Vmcs12 {
            fields: Vmcs::new(),
            launched: false,
        }
    }

    /// VMREAD: the field zero-extended, or VM-instruction error 12.
    pub(crate) fn read(&self, encoding: u32) -> Result<u64, u32> {
        self.fields.read(encoding).map_err(|e| e.number())
    }

    /// VMWRITE: truncated to the field's width; error 12 for an unsupported
    /// field, 13 for a read-only one (IA32_VMX_MISC bit 29 is 0).
    pub(crate) fn write(&mut self, encoding: u32, value: u64) -> Result<(), u32> {
        self.fields.write(encoding, value).map_err(|e| e.number())
    }

    /// A field L0 knows exists (0 for one the table lacks).
    pub(crate) fn get(&self, encoding: u32) -> u64 {
        self.fields.get(encoding)
    }

    /// Its low 32 bits.
    pub(crate) fn get32(&self, encoding: u32) -> u32 {
        self.fields.get32(encoding)
    }

    /// The controls, secondary ones only when activated.
    pub(crate) fn controls(&self) -> Controls {
        let proc = self.get32(f::CPU_BASED_VM_EXEC_CONTROL);
        Controls {
            pin: self.get32(f::PIN_BASED_VM_EXEC_CONTROL),
            proc,
            proc2: if proc & proc::ACTIVATE_SECONDARY_CONTROLS != 0 {
                self.get32(f::SECONDARY_VM_EXEC_CONTROL)
            } else {
                0
            },
            exit: self.get32(f::VM_EXIT_CONTROLS),
            entry: self.get32(f::VM_ENTRY_CONTROLS),
        }
    }

    /// Writes any field, exit-information fields included (L0 playing the
    /// processor at a nested VM exit).
    pub(crate) fn set(&mut self, encoding: u32, value: u64) {
        self.fields.set(encoding, value);
    }

    /// Reads the vmcs12 in L1's region at `region`.
    pub(crate) fn load(hw: &impl VmxHardware, region: u64) -> Result<Self, HwError> {
        let mut bytes = vec![0u8; 8 * VMCS_FIELDS.len()];
        hw.read_phys(region + FIELDS_OFFSET, &mut bytes)?;
        let mut state = [0u8; 4];
        hw.read_phys(region + LAUNCH_STATE_OFFSET, &mut state)?;
        let mut v = Vmcs12::new();
        for (chunk, &encoding) in bytes.chunks_exact(8).zip(VMCS_FIELDS) {
            v.set(
                encoding,
                u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])),
            );
        }
        v.launched = u32::from_le_bytes(state) == 1;
        Ok(v)
    }

    /// Writes the cache back to L1's region at `region`.
    pub(crate) fn store(&self, hw: &mut impl VmxHardware, region: u64) -> Result<(), HwError> {
        let bytes: Vec<u8> = VMCS_FIELDS
            .iter()
            .flat_map(|&encoding| self.get(encoding).to_le_bytes())
            .collect();
        hw.write_phys(region + FIELDS_OFFSET, &bytes)?;
        hw.write_phys(
            region + LAUNCH_STATE_OFFSET,
            &u32::from(self.launched).to_le_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x86::vmx::instruction_error as ie;

    #[test]
    fn vmwrite_rules() {
        let mut v = Vmcs12::new();
        assert_eq!(v.write(f::GUEST_CS_SELECTOR, 0x1_0008), Ok(()));
        assert_eq!(v.read(f::GUEST_CS_SELECTOR), Ok(8));
        assert_eq!(v.write(f::VM_EXIT_REASON, 1), Err(ie::WRITE_READ_ONLY));
        assert_eq!(v.read(0x7FFE), Err(ie::UNSUPPORTED_COMPONENT));
        assert_eq!(v.read(1 << 20), Err(ie::UNSUPPORTED_COMPONENT));
        v.write(f::TSC_OFFSET + 1, 0xAB).unwrap();
        assert_eq!(v.read(f::TSC_OFFSET), Ok(0xAB << 32));
        v.set(f::VM_EXIT_REASON, 75);
        assert_eq!(v.read(f::VM_EXIT_REASON), Ok(75));
        assert!(FIELDS_OFFSET + 8 * VMCS_FIELDS.len() as u64 <= 4096);
    }
}
