//! The accelerator-neutral run API.
//!
//! This is the contract between the userspace VMM and whatever runs the guest:
//! Vigil's own L0 hypervisor over the soft CPU (`hv::soft`), or real KVM (the
//! `kvm` crate). It is shaped like KVM's: a VM owns guest memory and creates
//! vCPUs; `run()` returns an exit that userspace must handle before it calls
//! `run()` again.

use std::fmt;

/// Why a vCPU returned to userspace.
///
/// For [`VcpuExit::IoIn`] the caller fills `data` before the next `run()`,
/// which completes the `IN` instruction with those bytes, as KVM does.
#[derive(Debug)]
pub enum VcpuExit<'a> {
    /// The guest executed `IN` on `port`; `data.len()` is the access size.
    IoIn {
        /// I/O port.
        port: u16,
        /// Bytes to return to the guest, little-endian.
        data: &'a mut [u8],
    },
    /// The guest executed `OUT` to `port`.
    IoOut {
        /// I/O port.
        port: u16,
        /// The bytes written, little-endian; `data.len()` is the access size.
        data: &'a [u8],
    },
    /// The guest halted with nothing left to wake it.
    Hlt,
    /// The guest shut down (a triple fault).
    Shutdown,
    /// `run()` returned because the vCPU was kicked from another thread.
    Interrupted,
    /// The accelerator could not enter the guest: the hardware reason is kept.
    FailEntry {
        /// Hardware-specific reason (VMX: exit reason with bit 31 set).
        hardware_reason: u64,
    },
    /// The accelerator met something it cannot handle.
    InternalError(InternalError),
}

impl VcpuExit<'_> {
    /// A short stable name for statistics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            VcpuExit::IoIn { .. } => "io-in",
            VcpuExit::IoOut { .. } => "io-out",
            VcpuExit::Hlt => "hlt",
            VcpuExit::Shutdown => "shutdown",
            VcpuExit::Interrupted => "interrupted",
            VcpuExit::FailEntry { .. } => "fail-entry",
            VcpuExit::InternalError(_) => "internal-error",
        }
    }
}

/// What the accelerator could not handle, with enough detail to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InternalError {
    /// A guest-physical access outside guest RAM (no device model claims it).
    UnmappedAccess {
        /// The guest-physical address.
        gpa: u64,
        /// Guest RIP at the access.
        rip: u64,
    },
    /// A VM exit the L0 hypervisor has no handler for.
    UnhandledExit {
        /// Basic exit reason.
        reason: u16,
        /// Exit qualification.
        qualification: u64,
        /// Guest RIP.
        rip: u64,
    },
    /// An instruction the accelerator cannot emulate here (e.g. string I/O).
    Emulation {
        /// What was attempted.
        what: &'static str,
        /// Guest RIP.
        rip: u64,
    },
    /// VMLAUNCH/VMRESUME failed with this VM-instruction error (SDM Vol. 3C §31.4).
    VmInstruction {
        /// VM-instruction error number.
        error: u32,
    },
    /// The host accelerator reported an internal error (KVM suberror).
    Host {
        /// The host's code for it.
        suberror: u32,
    },
}

impl fmt::Display for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InternalError::UnmappedAccess { gpa, rip } => {
                write!(
                    f,
                    "guest accessed unmapped physical address {gpa:#x} at rip {rip:#x}"
                )
            }
            InternalError::UnhandledExit {
                reason,
                qualification,
                rip,
            } => write!(
                f,
                "unhandled VM exit {reason} ({}) qualification {qualification:#x} at rip {rip:#x}",
                x86::vmx::exit_reason::name(*reason)
            ),
            InternalError::Emulation { what, rip } => {
                write!(f, "cannot emulate {what} at rip {rip:#x}")
            }
            InternalError::VmInstruction { error } => {
                write!(f, "VM entry failed with VM-instruction error {error}")
            }
            InternalError::Host { suberror } => {
                write!(f, "host accelerator internal error, suberror {suberror}")
            }
        }
    }
}

/// The CPU state a guest starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryMode {
    /// 32-bit protected mode, paging off, flat 4 GiB code and data segments
    /// (CS 0x10, data 0x18), interrupts off: the multiboot v1 hand-off.
    Protected32Flat,
}

/// Initial vCPU state, independent of the accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryState {
    /// Processor mode and segments.
    pub mode: EntryMode,
    /// Instruction pointer.
    pub rip: u64,
    /// Stack pointer.
    pub rsp: u64,
    /// RAX.
    pub rax: u64,
    /// RBX.
    pub rbx: u64,
}

/// A snapshot of the vCPU's architectural registers, for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Registers {
    /// RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8–R15 in encoding order.
    pub gpr: [u64; 16],
    /// RIP.
    pub rip: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// CR0.
    pub cr0: u64,
    /// CR2.
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// CS selector.
    pub cs: u16,
}

impl fmt::Display for Registers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 16] = [
            "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11",
            "r12", "r13", "r14", "r15",
        ];
        write!(
            f,
            "rip={:#x} rflags={:#x} cs={:#x} cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x}",
            self.rip, self.rflags, self.cs, self.cr0, self.cr2, self.cr3, self.cr4, self.efer
        )?;
        for (name, value) in NAMES.iter().zip(self.gpr.iter()) {
            write!(f, " {name}={value:#x}")?;
        }
        Ok(())
    }
}

/// VM configuration common to every accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmConfig {
    /// Guest RAM in bytes, mapped at guest-physical 0.
    pub memory_bytes: u64,
}

/// A failure of the accelerator itself (not of the guest).
#[derive(Debug)]
pub enum AccelError {
    /// The accelerator is not usable on this host.
    Unavailable(String),
    /// The requested configuration is invalid.
    InvalidConfig(String),
    /// A guest-physical range lies outside guest RAM.
    OutOfRange {
        /// Start of the range.
        gpa: u64,
        /// Its length.
        len: u64,
    },
    /// A host system call failed.
    Host {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

impl fmt::Display for AccelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccelError::Unavailable(why) => write!(f, "accelerator unavailable: {why}"),
            AccelError::InvalidConfig(why) => write!(f, "invalid VM configuration: {why}"),
            AccelError::OutOfRange { gpa, len } => write!(
                f,
                "guest-physical range {gpa:#x}+{len:#x} lies outside guest RAM"
            ),
            AccelError::Host { op, source } => write!(f, "{op} failed: {source}"),
        }
    }
}

impl std::error::Error for AccelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AccelError::Host { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Per-vCPU counters kept by the accelerator (exits it handled itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VcpuStats {
    /// Exits handled below userspace, by name, in a stable order.
    pub internal_exits: Vec<(&'static str, u64)>,
}

/// A running vCPU.
pub trait Vcpu {
    /// Runs the guest until it needs userspace.
    fn run(&mut self) -> Result<VcpuExit<'_>, AccelError>;
    /// The vCPU's registers now.
    fn registers(&self) -> Result<Registers, AccelError>;
    /// Counters of exits the accelerator handled without userspace.
    fn stats(&self) -> VcpuStats;
}

/// A virtual machine: guest memory and vCPUs.
pub trait Vm {
    /// The vCPU type this VM creates.
    type Vcpu: Vcpu;
    /// Copies `data` into guest memory at `gpa`.
    fn write_memory(&mut self, gpa: u64, data: &[u8]) -> Result<(), AccelError>;
    /// Reads guest memory at `gpa` into `buf`.
    fn read_memory(&self, gpa: u64, buf: &mut [u8]) -> Result<(), AccelError>;
    /// Creates vCPU `id` in the given initial state.
    fn create_vcpu(&mut self, id: u32, entry: &EntryState) -> Result<Self::Vcpu, AccelError>;
}

/// A source of VMs.
pub trait Accelerator {
    /// The VM type.
    type Vm: Vm;
    /// A short name: "soft" or "kvm".
    fn name(&self) -> &'static str;
    /// Creates a VM with the given configuration.
    fn create_vm(&self, config: &VmConfig) -> Result<Self::Vm, AccelError>;
}
