//! Debug access to a stopped vCPU, for a debugger in userspace (a GDB
//! stub), as `KVM_SET_GUEST_DEBUG`, `KVM_GET_REGS` and friends give it:
//! registers, guest memory by linear or physical address, single-step,
//! breakpoints and watchpoints, and what a hypervisor debugger wants beyond
//! them — the VMCS fields by name, the notify state, the running level.
//! [`Vcpu::debug`](crate::Vcpu::debug) offers it where the accelerator can.

use crate::{AccelError, GuestLevel};

/// The registers of the running guest, as a debugger sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DebugRegisters {
    /// RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8–R15 in encoding order.
    pub gpr: [u64; 16],
    /// RIP.
    pub rip: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// Selectors of ES, CS, SS, DS, FS, GS.
    pub segments: [u16; 6],
    /// FS base.
    pub fs_base: u64,
    /// GS base.
    pub gs_base: u64,
    /// CR0 as the guest reads it.
    pub cr0: u64,
    /// CR2.
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4 as the guest reads it.
    pub cr4: u64,
    /// IA32_EFER.
    pub efer: u64,
}

/// Which VMCS to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhichVmcs {
    /// L0's VMCS for L1.
    Vmcs01,
    /// L0's VMCS for L2 (while L2 runs).
    Vmcs02,
    /// L1's VMCS for L2, as L0's cached copy holds it (while L2 runs).
    Vmcs12,
}

impl std::fmt::Display for WhichVmcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WhichVmcs::Vmcs01 => "vmcs01",
            WhichVmcs::Vmcs02 => "vmcs02",
            WhichVmcs::Vmcs12 => "vmcs12",
        })
    }
}

/// The notify state of the running guest's VMCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyState {
    /// Notify VM exiting is on in the current VMCS.
    pub enabled: bool,
    /// The window in the current VMCS, in crystal-clock cycles.
    pub window: u32,
    /// The processor's own threshold on top of it, in crystal-clock cycles.
    pub threshold: u32,
    /// Notify exits taken so far.
    pub exits: u64,
    /// Virtual time now, in nanoseconds.
    pub virtual_ns: u64,
    /// Virtual time since the last instruction boundary, in nanoseconds: 0
    /// when the vCPU stopped at a boundary, as a debugger stop always is.
    pub since_boundary_ns: u64,
    /// IDT-vectoring information of the last VM exit: the event being
    /// delivered when it happened (bit 31 valid) — after a notify exit, the
    /// stalled event.
    pub last_idt_vectoring_info: u32,
    /// Basic reason of the last VM exit.
    pub last_exit_reason: u16,
}

/// Why the vCPU stopped for the debugger ([`VcpuExit::Debug`](crate::VcpuExit::Debug)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugStop {
    /// A single step completed.
    Step,
    /// RIP reached a breakpoint.
    Breakpoint(u64),
    /// A watched range changed; the watchpoint's address.
    Watch(u64),
}

/// Debug access to a vCPU between two `run()`s.
pub trait GuestDebug {
    /// Which guest runs now.
    fn level(&self) -> GuestLevel;
    /// The running guest's registers.
    fn debug_registers(&self) -> Result<DebugRegisters, AccelError>;
    /// Sets the running guest's general-purpose registers, RIP and RFLAGS.
    fn set_debug_registers(&mut self, regs: &DebugRegisters) -> Result<(), AccelError>;
    /// Reads guest-physical memory.
    fn read_physical(&self, gpa: u64, buf: &mut [u8]) -> Result<(), AccelError>;
    /// Writes guest-physical memory.
    fn write_physical(&mut self, gpa: u64, data: &[u8]) -> Result<(), AccelError>;
    /// Reads memory at a linear address, through the running guest's page tables.
    fn read_linear(&self, la: u64, buf: &mut [u8]) -> Result<(), AccelError>;
    /// Writes memory at a linear address, through the running guest's page tables.
    fn write_linear(&mut self, la: u64, data: &[u8]) -> Result<(), AccelError>;
    /// Makes the next `run()` stop after one instruction (or not).
    fn set_single_step(&mut self, on: bool);
    /// Stops the vCPU when RIP reaches `addr`, in whichever guest runs.
    fn add_breakpoint(&mut self, addr: u64);
    /// Removes a breakpoint; whether there was one.
    fn remove_breakpoint(&mut self, addr: u64) -> bool;
    /// Stops the vCPU after an instruction that changed `len` bytes at linear address `addr`.
    fn add_watchpoint(&mut self, addr: u64, len: u64) -> Result<(), AccelError>;
    /// Removes a watchpoint; whether there was one.
    fn remove_watchpoint(&mut self, addr: u64, len: u64) -> bool;
    /// Why the vCPU last stopped for the debugger, taken.
    fn take_stop(&mut self) -> Option<DebugStop>;
    /// Every named field of a VMCS: `(name, value)`.
    fn vmcs_fields(&self, which: WhichVmcs) -> Result<Vec<(&'static str, u64)>, AccelError>;
    /// The notify state of the running guest's VMCS.
    fn notify_state(&self) -> Result<NotifyState, AccelError>;
    /// VM exits L0 took, by basic exit reason.
    fn exits_by_reason(&self) -> Vec<(u16, u64)>;
    /// The vCPU goes on after standing still for the debugger for
    /// `stopped` of host time: virtual time paced to host time leaves the
    /// stop out, as a paused machine's clocks do.
    fn resume_after_stop(&mut self, stopped: std::time::Duration) {
        let _ = stopped;
    }
}
