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
//! of SDM Vol. 3C §31.3.

use crate::hw::{HwError, VmxHardware};
use softcpu::VMCS_FIELDS;
use x86::vmx::field::{self, Width};
use x86::vmx::instruction_error as ie;

/// Byte offset of the launch state in the region.
const LAUNCH_STATE_OFFSET: u64 = 8;
/// Byte offset of the first field in the region.
const FIELDS_OFFSET: u64 = 16;

/// L0's copy of one vmcs12.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Vmcs12 {
    values: Vec<u64>,
    /// Launched (VMRESUME required) rather than clear.
    pub launched: bool,
}

fn slot(encoding: u32) -> Option<usize> {
    VMCS_FIELDS.binary_search(&encoding).ok()
}

fn truncate(encoding: u32, value: u64) -> u64 {
    match field::width(encoding) {
        Width::Word => value & 0xFFFF,
        Width::Dword => value & 0xFFFF_FFFF,
        Width::Quad | Width::Natural => value,
    }
}

impl Vmcs12 {
    /// A clear vmcs12 with every field zero, as VMCLEAR leaves a fresh region.
    pub(crate) fn new() -> Self {
        Vmcs12 {
            values: vec![0; VMCS_FIELDS.len()],
            launched: false,
        }
    }

    /// VMREAD: the field zero-extended, or VM-instruction error 12.
    pub(crate) fn read(&self, encoding: u32) -> Result<u64, u32> {
        if encoding >> 15 != 0 {
            return Err(ie::UNSUPPORTED_COMPONENT);
        }
        if field::is_high_access(encoding) {
            let s = slot(encoding & !1).ok_or(ie::UNSUPPORTED_COMPONENT)?;
            return Ok(self.values[s] >> 32);
        }
        let s = slot(encoding).ok_or(ie::UNSUPPORTED_COMPONENT)?;
        Ok(self.values[s])
    }

    /// VMWRITE: truncated to the field's width; error 12 for an unsupported
    /// field, 13 for a read-only one (IA32_VMX_MISC bit 29 is 0).
    pub(crate) fn write(&mut self, encoding: u32, value: u64) -> Result<(), u32> {
        if encoding >> 15 != 0 {
            return Err(ie::UNSUPPORTED_COMPONENT);
        }
        if field::is_high_access(encoding) {
            let s = slot(encoding & !1).ok_or(ie::UNSUPPORTED_COMPONENT)?;
            self.values[s] = (self.values[s] & 0xFFFF_FFFF) | (value << 32);
            return Ok(());
        }
        let s = slot(encoding).ok_or(ie::UNSUPPORTED_COMPONENT)?;
        if field::is_read_only(encoding) {
            return Err(ie::WRITE_READ_ONLY);
        }
        self.values[s] = truncate(encoding, value);
        Ok(())
    }

    /// A field L0 knows exists (0 for one the table lacks).
    pub(crate) fn get(&self, encoding: u32) -> u64 {
        slot(encoding).map_or(0, |s| self.values[s])
    }

    /// Its low 32 bits.
    pub(crate) fn get32(&self, encoding: u32) -> u32 {
        self.get(encoding) as u32
    }

    /// Writes any field, exit-information fields included (L0 playing the
    /// processor at a nested VM exit).
    pub(crate) fn set(&mut self, encoding: u32, value: u64) {
        if let Some(s) = slot(encoding) {
            self.values[s] = truncate(encoding, value);
        }
    }

    /// Reads the vmcs12 in L1's region at `region`.
    pub(crate) fn load(hw: &impl VmxHardware, region: u64) -> Result<Self, HwError> {
        let mut bytes = vec![0u8; 8 * VMCS_FIELDS.len()];
        hw.read_phys(region + FIELDS_OFFSET, &mut bytes)?;
        let mut state = [0u8; 4];
        hw.read_phys(region + LAUNCH_STATE_OFFSET, &mut state)?;
        Ok(Vmcs12 {
            values: bytes
                .chunks_exact(8)
                .zip(VMCS_FIELDS)
                .map(|(c, &enc)| truncate(enc, u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))))
                .collect(),
            launched: u32::from_le_bytes(state) == 1,
        })
    }

    /// Writes the cache back to L1's region at `region`.
    pub(crate) fn store(&self, hw: &mut impl VmxHardware, region: u64) -> Result<(), HwError> {
        let bytes: Vec<u8> = self.values.iter().flat_map(|v| v.to_le_bytes()).collect();
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
    use x86::vmx::field as f;

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
