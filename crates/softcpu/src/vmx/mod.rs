//! VMX non-root operation: the current VMCS, VM entry with its checks, VM
//! exits, and the controls that decide which guest actions exit.

pub mod caps;
pub mod entry;
mod exit;
mod instruction_info;
pub mod tpr;
pub mod vmcs;

use crate::cpu::SoftCpu;
use crate::fault::{ExitInfo, Stop};
use iced_x86::Instruction;
pub(crate) use instruction_info::vmx_instruction_exit;
use vmcs::Vmcs;
use x86::vmx::{field, proc, proc2};

/// Copies of the controls of the running VMCS, for quick checks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Controls {
    pub pin: u32,
    pub proc: u32,
    pub proc2: u32,
    pub exit: u32,
    pub entry: u32,
    pub exception_bitmap: u32,
    pub pf_mask: u32,
    pub pf_match: u32,
    pub eptp: u64,
    pub io_bitmap_a: u64,
    pub io_bitmap_b: u64,
    pub msr_bitmap: u64,
    pub cr0_mask: u64,
    pub cr4_mask: u64,
    pub cr0_shadow: u64,
    pub cr4_shadow: u64,
    pub tsc_offset: u64,
    pub notify_window: u32,
    /// Virtual-APIC address (with "use TPR shadow").
    pub virtual_apic: u64,
    /// TPR threshold.
    pub tpr_threshold: u32,
}

/// The processor's VMX state.
pub(crate) struct VmxState {
    /// The current VMCS.
    pub vmcs: Vmcs,
    /// Region address of the current VMCS (`None`: the unnamed one a
    /// processor starts with).
    pub current: Option<u64>,
    /// The other VMCSs this processor has had current, by region address.
    pub parked: std::collections::HashMap<Option<u64>, Vmcs>,
    /// True while in VMX non-root operation.
    pub non_root: bool,
    /// Controls of the VMCS in use (valid while `non_root`).
    pub ctl: Controls,
}

impl VmxState {
    pub(crate) fn new() -> Self {
        VmxState {
            vmcs: Vmcs::new(),
            current: None,
            parked: std::collections::HashMap::new(),
            non_root: false,
            ctl: Controls::default(),
        }
    }

    /// Makes the VMCS of `region` current, parking the one that was.
    pub(crate) fn make_current(&mut self, region: u64) {
        if self.current == Some(region) {
            return;
        }
        let next = self.parked.remove(&Some(region)).unwrap_or_default();
        let previous = std::mem::replace(&mut self.vmcs, next);
        self.parked.insert(self.current, previous);
        self.current = Some(region);
    }

    /// The EPT pointer when EPT is in use.
    #[inline]
    pub(crate) fn ept_pointer(&self) -> Option<u64> {
        if self.non_root
            && self.ctl.proc2 & proc2::ENABLE_EPT != 0
            && self.ctl.proc & proc::ACTIVATE_SECONDARY_CONTROLS != 0
        {
            Some(self.ctl.eptp)
        } else {
            None
        }
    }

    /// Whether a primary processor-based control is set (and we are in non-root operation).
    #[inline]
    pub(crate) fn proc(&self, bit: u32) -> bool {
        self.non_root && self.ctl.proc & bit != 0
    }

    /// Whether a secondary control is set and active.
    #[inline]
    pub(crate) fn proc2(&self, bit: u32) -> bool {
        self.non_root
            && self.ctl.proc & proc::ACTIVATE_SECONDARY_CONTROLS != 0
            && self.ctl.proc2 & bit != 0
    }

    pub(crate) fn load_controls(&mut self) {
        let v = &self.vmcs;
        self.ctl = Controls {
            pin: v.get32(field::PIN_BASED_VM_EXEC_CONTROL),
            proc: v.get32(field::CPU_BASED_VM_EXEC_CONTROL),
            proc2: v.get32(field::SECONDARY_VM_EXEC_CONTROL),
            exit: v.get32(field::VM_EXIT_CONTROLS),
            entry: v.get32(field::VM_ENTRY_CONTROLS),
            exception_bitmap: v.get32(field::EXCEPTION_BITMAP),
            pf_mask: v.get32(field::PAGE_FAULT_ERROR_CODE_MASK),
            pf_match: v.get32(field::PAGE_FAULT_ERROR_CODE_MATCH),
            eptp: v.get(field::EPT_POINTER),
            io_bitmap_a: v.get(field::IO_BITMAP_A),
            io_bitmap_b: v.get(field::IO_BITMAP_B),
            msr_bitmap: v.get(field::MSR_BITMAP),
            cr0_mask: v.get(field::CR0_GUEST_HOST_MASK),
            cr4_mask: v.get(field::CR4_GUEST_HOST_MASK),
            cr0_shadow: v.get(field::CR0_READ_SHADOW),
            cr4_shadow: v.get(field::CR4_READ_SHADOW),
            tsc_offset: v.get(field::TSC_OFFSET),
            notify_window: v.get32(field::NOTIFY_WINDOW),
            virtual_apic: v.get(field::VIRTUAL_APIC_PAGE_ADDR),
            tpr_threshold: v.get32(field::TPR_THRESHOLD),
        };
    }
}

/// An instruction-caused VM exit (SDM Vol. 3C §26.1.2, §26.1.3).
pub(crate) fn instruction_exit(ins: &Instruction, reason: u16, qualification: u64) -> Stop {
    let mut info = ExitInfo::new(reason, qualification);
    info.instruction_len = ins.len() as u32;
    Stop::VmExit(info)
}

impl SoftCpu {
    /// Whether an I/O access to `port` of `size` bytes exits (SDM Vol. 3C §26.1.3, I/O bitmaps §25.6.4).
    pub(crate) fn io_exits(&self, port: u16, size: usize) -> bool {
        if !self.vmx.non_root {
            return false;
        }
        if self.vmx.ctl.proc & proc::USE_IO_BITMAPS == 0 {
            return self.vmx.ctl.proc & proc::UNCOND_IO_EXITING != 0;
        }
        (0..size as u32).any(|k| {
            let p = u32::from(port) + k;
            if p > 0xFFFF {
                return true;
            }
            let (bitmap, bit) = if p < 0x8000 {
                (self.vmx.ctl.io_bitmap_a, p)
            } else {
                (self.vmx.ctl.io_bitmap_b, p - 0x8000)
            };
            let byte = self.phys_read(bitmap + u64::from(bit / 8), 1);
            byte & (1 << (bit % 8)) != 0
        })
    }

    /// Whether RDMSR/WRMSR of `msr` exits (MSR bitmaps, SDM Vol. 3C §25.6.9).
    pub(crate) fn msr_exits(&self, msr: u32, write: bool) -> bool {
        if !self.vmx.non_root {
            return false;
        }
        if self.vmx.ctl.proc & proc::USE_MSR_BITMAPS == 0 {
            return true;
        }
        let base = self.vmx.ctl.msr_bitmap + if write { 2048 } else { 0 };
        let (offset, bit) = match msr {
            0..=0x1FFF => (0, msr),
            0xC000_0000..=0xC000_1FFF => (1024, msr - 0xC000_0000),
            _ => return true,
        };
        let byte = self.phys_read(base + offset + u64::from(bit / 8), 1);
        byte & (1 << (bit % 8)) != 0
    }
}

impl SoftCpu {
    /// RDMSR at CPL 0, outside the guest: how a VM exit's MSR-store list
    /// reads an MSR (SDM Vol. 3C §28.4). `None` where RDMSR would be #GP.
    /// A hypervisor that emulates VMX for its own guest uses it to process
    /// that guest's MSR lists.
    pub fn list_rdmsr(&mut self, msr: u32) -> Option<u64> {
        self.read_msr(msr).ok()
    }

    /// WRMSR at CPL 0, outside the guest: how a VM entry's or VM exit's
    /// MSR-load list writes an MSR (SDM Vol. 3C §27.4, §28.6). `false`
    /// where WRMSR would be #GP (nothing is written then).
    pub fn list_wrmsr(&mut self, msr: u32, value: u64) -> bool {
        self.write_msr(msr, value).is_ok()
    }
}
