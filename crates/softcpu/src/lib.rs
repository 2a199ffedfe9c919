//! Vigil's silicon: a software x86-64 processor with VMX non-root operation.
//!
//! The model is an Intel-style core: 32-bit protected mode and 64-bit long
//! mode with 32-bit, PAE and 4-level paging, exception and interrupt delivery
//! with the double-fault rules, and VMX non-root operation driven by a VMCS
//! (entry checks, guest-state load, event injection, VM exits with exit
//! qualification, instruction length, interruption and IDT-vectoring
//! information, EPT). Decoded instructions are cached per physical page.
//! Virtual time advances a set number of cycles per instruction (one unless
//! the hypervisor paces it to a host clock), so a run with a fixed number
//! is deterministic for a given image.
//!
//! The crate knows nothing of policy: the L0 hypervisor (`hv`) programs it
//! through VMREAD/VMWRITE/VMLAUNCH/VMRESUME and reads exits from the VMCS.

// `unsafe` is denied everywhere but in the translating tier (`jit`), which
// maps executable memory, calls the code it generated and is called back
// by it; each block there says why it is sound.
#![deny(unsafe_code)]

mod cpu;
mod cpuid;
mod debug;
mod decode;
mod event;
mod exec;
mod fault;
mod float;
pub mod fpu;
mod gates;
pub mod harness;
mod jit;
pub mod memory;
pub mod mmio;
mod mmu;
mod msr;
mod mtrr;
mod run;
mod segments;
mod stall;
pub mod state;
mod tss;
pub mod vmx;

pub use cpu::{CpuModel, Kicker, PowerSwitch, SoftCpu};
pub use jit::{TranslationStats, TRANSLATION_THRESHOLD};
pub use memory::{OutOfRange, PhysMemory};
pub use mmio::{MmioLoad, MmioSession, MmioStep, MmioStore};
pub use run::KICK_VECTOR;
pub use vmx::caps::capability_msr;
pub use vmx::entry::VmFail;
pub use vmx::vmcs::{FieldError, LaunchState, Vmcs, FIELDS as VMCS_FIELDS};

impl SoftCpu {
    /// VMREAD from the current VMCS.
    pub fn vmread(&self, field: u32) -> Result<u64, FieldError> {
        self.vmx.vmcs.read(field)
    }

    /// VMWRITE to the current VMCS.
    pub fn vmwrite(&mut self, field: u32, value: u64) -> Result<(), FieldError> {
        self.vmx.vmcs.write(field, value)
    }

    /// The general-purpose registers (RAX … R15 in encoding order). Like real
    /// hardware, VM entry and exit leave them to the hypervisor.
    pub fn gprs(&self) -> [u64; 16] {
        self.s.gpr
    }

    /// Sets the general-purpose registers.
    pub fn set_gprs(&mut self, gprs: &[u64; 16]) {
        self.s.gpr = *gprs;
    }

    /// CR2, which VM exits do not save in the VMCS.
    pub fn cr2(&self) -> u64 {
        self.s.cr2
    }

    /// DR6, which is not part of the VMCS either.
    pub fn dr6(&self) -> u64 {
        self.s.dr[6]
    }

    /// Sets DR6 (the hypervisor's half of reflecting a #DB, SDM Vol. 3C §27.1).
    pub fn set_dr6(&mut self, value: u64) {
        self.s.dr[6] = value;
    }

    /// Sets CR2 (a hypervisor injecting a #PF sets CR2 first: VM entry does
    /// not, SDM Vol. 3C §27.6.1).
    pub fn set_cr2(&mut self, value: u64) {
        self.s.cr2 = value;
    }

    /// VMCLEAR of the current VMCS: launch state becomes clear.
    pub fn vmclear(&mut self) {
        self.vmx.vmcs.launch_state = LaunchState::Clear;
    }

    /// VMPTRLD: makes the VMCS in the 4 KiB region at `region` current (SDM
    /// Vol. 3C §31.3 VMPTRLD). The region's first dword must hold this
    /// processor's revision identifier; the VMCS data itself is kept on chip,
    /// as the SDM allows (§25.11.1), so switching back and forth between
    /// VMCSs keeps each one's fields and launch state. Before the first
    /// VMPTRLD the processor has one unnamed current VMCS.
    pub fn vmptrld(&mut self, region: u64) -> Result<(), VmFail> {
        use x86::vmx::instruction_error as ie;
        if region & 0xFFF != 0
            || region
                .checked_add(4096)
                .is_none_or(|end| end > self.memory().size())
        {
            return Err(VmFail {
                error: ie::VMPTRLD_INVALID_ADDRESS,
            });
        }
        let revision = self.phys_read(region, 4) as u32 & 0x7FFF_FFFF;
        if u64::from(revision) != capability_msr(x86::msr::VMX_BASIC).unwrap_or(0) & 0x7FFF_FFFF {
            return Err(VmFail {
                error: ie::VMPTRLD_INCORRECT_REVISION,
            });
        }
        self.vmx.make_current(region);
        Ok(())
    }

    /// VMPTRST: the region address of the current VMCS (`None` for the
    /// unnamed VMCS of a processor that never executed VMPTRLD).
    pub fn vmptrst(&self) -> Option<u64> {
        self.vmx.current
    }
}
