//! The VMX hardware interface this hypervisor programs.
//!
//! `hv` owns this trait, as KVM owns its view of VMX: the soft CPU implements
//! it (see [`crate::hw::soft`]), and any other VMX implementation could.
//! Everything L0 does to the processor goes through here.

/// A VMX instruction failed (VMfailValid with a VM-instruction error number,
/// SDM Vol. 3C §31.4), or a physical access was out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HwError {
    /// VMfailValid with this VM-instruction error number.
    #[error("VMfailValid with VM-instruction error {0}")]
    VmFail(u32),
    /// A physical address outside the machine's memory.
    #[error("physical address {0:#x} lies outside the machine's memory")]
    PhysicalRange(u64),
}

/// A processor with VMX, as the L0 hypervisor sees it.
pub trait VmxHardware {
    /// VMREAD from the current VMCS.
    fn vmread(&self, field: u32) -> Result<u64, HwError>;
    /// VMWRITE to the current VMCS.
    fn vmwrite(&mut self, field: u32, value: u64) -> Result<(), HwError>;
    /// VMCLEAR of the current VMCS.
    fn vmclear(&mut self);
    /// VMPTRLD: makes the VMCS in the region at host-physical `region`
    /// current (its first dword holds the revision identifier).
    fn vmptrld(&mut self, region: u64) -> Result<(), HwError>;
    /// VMLAUNCH; returns after the VM exit (or VM-entry failure) it leads to.
    fn vmlaunch(&mut self) -> Result<(), HwError>;
    /// VMRESUME; returns after the VM exit it leads to.
    fn vmresume(&mut self) -> Result<(), HwError>;
    /// A VMX capability MSR (0x480–0x491).
    fn capability(&self, msr: u32) -> Option<u64>;
    /// CPUID as the processor answers it in root operation.
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4];
    /// General-purpose registers (not part of the VMCS).
    fn gprs(&self) -> [u64; 16];
    /// Sets the general-purpose registers.
    fn set_gprs(&mut self, gprs: &[u64; 16]);
    /// CR2 (not part of the VMCS).
    fn cr2(&self) -> u64;
    /// Sets CR2 (before injecting a page fault).
    fn set_cr2(&mut self, value: u64);
    /// DR6 (not part of the VMCS).
    fn dr6(&self) -> u64;
    /// Sets DR6.
    fn set_dr6(&mut self, value: u64);
    /// The processor lost power while in the guest and will not run again.
    fn powered_off(&self) -> bool;
    /// Size of physical memory.
    fn phys_size(&self) -> u64;
    /// Reads physical memory.
    fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<(), HwError>;
    /// Writes physical memory.
    fn write_phys(&mut self, addr: u64, data: &[u8]) -> Result<(), HwError>;
    /// RDMSR at CPL 0 in root operation; `None` where it would be #GP.
    fn rdmsr(&mut self, msr: u32) -> Option<u64>;
    /// WRMSR at CPL 0 in root operation; `false` where it would be #GP.
    fn wrmsr(&mut self, msr: u32, value: u64) -> bool;
}

/// The soft CPU as VMX hardware.
pub mod soft {
    use super::{HwError, VmxHardware};
    use softcpu::SoftCpu;

    impl VmxHardware for SoftCpu {
        fn vmread(&self, field: u32) -> Result<u64, HwError> {
            SoftCpu::vmread(self, field).map_err(|e| HwError::VmFail(e.number()))
        }
        fn vmwrite(&mut self, field: u32, value: u64) -> Result<(), HwError> {
            SoftCpu::vmwrite(self, field, value).map_err(|e| HwError::VmFail(e.number()))
        }
        fn vmclear(&mut self) {
            SoftCpu::vmclear(self)
        }
        fn vmptrld(&mut self, region: u64) -> Result<(), HwError> {
            SoftCpu::vmptrld(self, region).map_err(|f| HwError::VmFail(f.error))
        }
        fn vmlaunch(&mut self) -> Result<(), HwError> {
            SoftCpu::vmlaunch(self).map_err(|f| HwError::VmFail(f.error))
        }
        fn vmresume(&mut self) -> Result<(), HwError> {
            SoftCpu::vmresume(self).map_err(|f| HwError::VmFail(f.error))
        }
        fn capability(&self, msr: u32) -> Option<u64> {
            softcpu::capability_msr(msr)
        }
        fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
            self.native_cpuid(leaf, subleaf)
        }
        fn gprs(&self) -> [u64; 16] {
            SoftCpu::gprs(self)
        }
        fn set_gprs(&mut self, gprs: &[u64; 16]) {
            SoftCpu::set_gprs(self, gprs)
        }
        fn cr2(&self) -> u64 {
            SoftCpu::cr2(self)
        }
        fn set_cr2(&mut self, value: u64) {
            SoftCpu::set_cr2(self, value)
        }
        fn dr6(&self) -> u64 {
            SoftCpu::dr6(self)
        }
        fn set_dr6(&mut self, value: u64) {
            SoftCpu::set_dr6(self, value)
        }
        fn powered_off(&self) -> bool {
            SoftCpu::powered_off(self)
        }
        fn phys_size(&self) -> u64 {
            self.memory().size()
        }
        fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<(), HwError> {
            self.memory()
                .read(addr, buf)
                .map_err(|e| HwError::PhysicalRange(e.addr))
        }
        fn write_phys(&mut self, addr: u64, data: &[u8]) -> Result<(), HwError> {
            self.memory_mut()
                .write(addr, data)
                .map_err(|e| HwError::PhysicalRange(e.addr))
        }
        fn rdmsr(&mut self, msr: u32) -> Option<u64> {
            self.list_rdmsr(msr)
        }
        fn wrmsr(&mut self, msr: u32, value: u64) -> bool {
            self.list_wrmsr(msr, value)
        }
    }
}

/// A VMCS-shaped fake for unit tests of the exit handlers.
#[cfg(test)]
pub(crate) mod test_hw {
    use super::{HwError, VmxHardware};
    use std::collections::BTreeMap;

    /// Fields default to 0; nothing runs; physical memory is `memory`.
    #[derive(Debug, Default)]
    pub(crate) struct FakeHw {
        pub fields: BTreeMap<u32, u64>,
        pub gprs: [u64; 16],
        pub dr6: u64,
        pub cr2: u64,
        pub memory: Vec<u8>,
        /// The MSRs that exist (any other is #GP), with their values.
        pub msrs: BTreeMap<u32, u64>,
    }

    impl FakeHw {
        /// The bytes `[addr, addr + len)` of `memory`, if all are there.
        fn span(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, HwError> {
            usize::try_from(addr)
                .ok()
                .and_then(|start| Some(start..start.checked_add(len)?))
                .filter(|r| r.end <= self.memory.len())
                .ok_or(HwError::PhysicalRange(addr))
        }
    }

    impl VmxHardware for FakeHw {
        fn vmread(&self, field: u32) -> Result<u64, HwError> {
            Ok(self.fields.get(&field).copied().unwrap_or(0))
        }
        fn vmwrite(&mut self, field: u32, value: u64) -> Result<(), HwError> {
            self.fields.insert(field, value);
            Ok(())
        }
        fn vmclear(&mut self) {}
        fn vmptrld(&mut self, _region: u64) -> Result<(), HwError> {
            Ok(())
        }
        fn vmlaunch(&mut self) -> Result<(), HwError> {
            Ok(())
        }
        fn vmresume(&mut self) -> Result<(), HwError> {
            Ok(())
        }
        fn capability(&self, _msr: u32) -> Option<u64> {
            None
        }
        fn cpuid(&self, _leaf: u32, _subleaf: u32) -> [u32; 4] {
            [0; 4]
        }
        fn gprs(&self) -> [u64; 16] {
            self.gprs
        }
        fn set_gprs(&mut self, gprs: &[u64; 16]) {
            self.gprs = *gprs;
        }
        fn cr2(&self) -> u64 {
            self.cr2
        }
        fn set_cr2(&mut self, value: u64) {
            self.cr2 = value;
        }
        fn dr6(&self) -> u64 {
            self.dr6
        }
        fn set_dr6(&mut self, value: u64) {
            self.dr6 = value;
        }
        fn powered_off(&self) -> bool {
            false
        }
        fn phys_size(&self) -> u64 {
            self.memory.len() as u64
        }
        fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<(), HwError> {
            let span = self.span(addr, buf.len())?;
            buf.copy_from_slice(&self.memory[span]);
            Ok(())
        }
        fn write_phys(&mut self, addr: u64, data: &[u8]) -> Result<(), HwError> {
            let span = self.span(addr, data.len())?;
            self.memory[span].copy_from_slice(data);
            Ok(())
        }
        fn rdmsr(&mut self, msr: u32) -> Option<u64> {
            self.msrs.get(&msr).copied()
        }
        fn wrmsr(&mut self, msr: u32, value: u64) -> bool {
            match self.msrs.get_mut(&msr) {
                Some(v) => {
                    *v = value;
                    true
                }
                None => false,
            }
        }
    }
}
