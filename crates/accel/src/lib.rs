//! The accelerator-neutral run API.
//!
//! This is the contract between the userspace VMM and whatever runs the guest:
//! Vigil's own L0 hypervisor over the soft CPU (`hv::soft`), or real KVM (the
//! `kvm` crate). It is shaped like KVM's: a VM owns guest memory and creates
//! vCPUs; `run()` returns an exit that userspace must handle before it calls
//! `run()` again.

#![forbid(unsafe_code)]

pub mod debug;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

mod error;
mod stopwatch;

pub use error::{AccelError, Cause, InvalidState, NotifyArgError, Unsupported};
pub use stopwatch::Stopwatch;

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
    /// The guest read a guest-physical address that is not RAM (and that
    /// no device of the accelerator claims). The caller fills `data` before
    /// the next `run()`, which completes the load (`KVM_EXIT_MMIO`).
    MmioRead {
        /// Guest-physical address.
        addr: u64,
        /// Bytes to return, little-endian; `data.len()` is the access size.
        data: &'a mut [u8],
    },
    /// The guest wrote a guest-physical address that is not RAM.
    MmioWrite {
        /// Guest-physical address.
        addr: u64,
        /// The bytes written, little-endian.
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
    /// A notify VM exit userspace must see: every one when notify was
    /// enabled with [`NOTIFY_VMEXIT_USER`], and always when the guest context
    /// is invalid (`KVM_EXIT_NOTIFY`). A valid context resumes on the next
    /// `run()`, with the event that was being delivered re-injected.
    Notify(NotifyExit),
    /// The vCPU's power was cut ([`VcpuControl::power_off`]): it will never
    /// run guest code again.
    PoweredOff,
    /// The guest asserted a bus lock (a locked access split across cache
    /// lines); the instruction has completed (`KVM_EXIT_X86_BUS_LOCK`,
    /// after [`Vm::enable_bus_lock_exit`]).
    BusLock,
    /// The vCPU stopped for the debugger: a single step ended, or a
    /// breakpoint or watchpoint hit (`KVM_EXIT_DEBUG`); the reason is
    /// [`debug::GuestDebug::take_stop`]'s.
    Debug,
}

impl VcpuExit<'_> {
    /// A short stable name for statistics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            VcpuExit::IoIn { .. } => "io-in",
            VcpuExit::IoOut { .. } => "io-out",
            VcpuExit::MmioRead { .. } => "mmio-read",
            VcpuExit::MmioWrite { .. } => "mmio-write",
            VcpuExit::Hlt => "hlt",
            VcpuExit::Shutdown => "shutdown",
            VcpuExit::Interrupted => "interrupted",
            VcpuExit::FailEntry { .. } => "fail-entry",
            VcpuExit::InternalError(_) => "internal-error",
            VcpuExit::Notify(_) => "notify",
            VcpuExit::PoweredOff => "powered-off",
            VcpuExit::BusLock => "bus-lock",
            VcpuExit::Debug => "debug",
        }
    }
}

/// Which guest a vCPU was running when an exit happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestLevel {
    /// The VM's own kernel (L1).
    L1,
    /// A guest of a hypervisor running in the VM (L2).
    L2,
}

impl fmt::Display for GuestLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GuestLevel::L1 => "L1",
            GuestLevel::L2 => "L2",
        })
    }
}

/// A notify VM exit (basic exit reason 75) as userspace sees it. KVM reports
/// only the context-invalid flag; the soft accelerator reports the rest too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyExit {
    /// The guest state cannot be resumed (qualification bit 0;
    /// `KVM_NOTIFY_CONTEXT_INVALID`): the VM must be stopped or reset.
    pub context_invalid: bool,
    /// Which guest was running.
    pub level: GuestLevel,
    /// The exit qualification, where the accelerator reports it.
    pub qualification: Option<u64>,
    /// Guest RIP at the exit, where the accelerator reports it.
    pub rip: Option<u64>,
    /// IDT-vectoring information: the event whose delivery was stalled
    /// (bit 31 valid), where the accelerator reports it.
    pub idt_vectoring_info: Option<u32>,
    /// The exit was L2's and went to L1, which enabled notify VM exiting
    /// for it (nested VMX): L1 handles it, and userspace only records it.
    pub to_l1: bool,
}

/// `flags` bit of [`Vm::enable_notify_vmexit`]: notify VM exiting is on
/// (`KVM_X86_NOTIFY_VMEXIT_ENABLED`).
pub const NOTIFY_VMEXIT_ENABLED: u64 = 1 << 0;
/// `flags` bit of [`Vm::enable_notify_vmexit`]: every notify exit is returned
/// to userspace as [`VcpuExit::Notify`] (`KVM_X86_NOTIFY_VMEXIT_USER`).
pub const NOTIFY_VMEXIT_USER: u64 = 1 << 1;

/// The argument of [`Vm::enable_notify_vmexit`], laid out as
/// `KVM_CAP_X86_NOTIFY_VMEXIT`'s `args[0]`: the window (crystal-clock
/// cycles) in bits 63:32, the flags in bits 31:0.
pub fn notify_vmexit_arg(window: u32, flags: u64) -> u64 {
    (u64::from(window) << 32) | (flags & 0xFFFF_FFFF)
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
    /// Intercept #AC and #DB in L0 and reflect them into the guest, so that
    /// the delivery loops of CVE-2015-5307 and CVE-2015-8104 go through L0
    /// at every iteration (what KVM and Xen always do). On by default;
    /// turning it off leaves only notify VM exiting to contain them.
    pub intercept_ac_db: bool,
    /// Offer VMX to the guest, so that it can run guests of its own (nested
    /// virtualization; the soft accelerator only). On by default, as KVM's
    /// `nested=1`.
    pub nested_vmx: bool,
    /// How the soft CPU's virtual time relates to host time (the kvm
    /// accelerator always runs on host time).
    pub virtual_time: VirtualTime,
    /// Run hot guest code through the soft CPU's translating tier (the
    /// soft accelerator only). Everything the guest sees, virtual time
    /// included, is the same with it on or off.
    pub translation: bool,
}

/// How a soft CPU's virtual time advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VirtualTime {
    /// One cycle per instruction, a fixed cost per event delivery and per
    /// exit: a run is deterministic for a given image, whatever the host
    /// (what the notify tests assert on).
    #[default]
    Exact,
    /// Kept near host time: each instruction takes as many cycles as keep
    /// virtual time up with the host clock, and a vCPU whose virtual time
    /// ran ahead (a halted CPU skipping to its timer) waits for host time.
    /// Not deterministic (QEMU's `-icount shift=auto`).
    Paced,
}

impl VmConfig {
    /// A VM with `memory_bytes` of RAM and the default settings.
    pub fn with_memory(memory_bytes: u64) -> Self {
        VmConfig {
            memory_bytes,
            intercept_ac_db: true,
            nested_vmx: true,
            virtual_time: VirtualTime::Exact,
            translation: false,
        }
    }
}

/// Per-vCPU counters kept by the accelerator (exits it handled itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VcpuStats {
    /// Exits handled below userspace, by name, in a stable order.
    pub internal_exits: Vec<(&'static str, u64)>,
    /// Notify VM exits taken (KVM's `notify_window_exits`).
    pub notify_exits: u64,
    /// The longest host time the vCPU spent in the guest without returning
    /// to L0 ("responsiveness"), where the accelerator can measure it.
    pub longest_without_l0: Option<Duration>,
    /// Bus-lock exits taken.
    pub bus_lock_exits: u64,
    /// Nested VM exits: exits of an L2 guest that L0 passed to the L1
    /// hypervisor running it (0 without nested VMX).
    pub nested_exits_to_l1: u64,
    /// Guest instructions retired and decoded (decode-cache misses), where
    /// the accelerator counts them.
    pub instructions: Option<InstructionCounts>,
}

/// Instructions a software CPU executed and decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstructionCounts {
    /// Instructions retired (all levels: L1 and L2 alike).
    pub retired: u64,
    /// Instructions decoded: the decode cache's misses.
    pub decoded: u64,
    /// Blocks translated to host code by a translating tier (0 with the
    /// tier off).
    pub blocks_translated: u64,
    /// Runs of translated code.
    pub translated_runs: u64,
    /// Host time spent translating, in nanoseconds.
    pub translate_ns: u64,
}

/// Buckets of [`ExitTally::in_guest`]: bucket 0 counts stretches under
/// 1 µs, bucket `i` (1 ≤ i < 31) stretches of `[2^(i-1), 2^i)` µs, and the
/// last one everything longer.
pub const IN_GUEST_BUCKETS: usize = 32;

/// The bucket of [`ExitTally::in_guest`] that a stretch of `d` falls in.
pub fn in_guest_bucket(d: Duration) -> usize {
    let us = d.as_micros();
    if us == 0 {
        0
    } else {
        ((128 - us.leading_zeros()) as usize).min(IN_GUEST_BUCKETS - 1)
    }
}

/// Running totals of a vCPU's VM exits, readable from any thread while the
/// vCPU runs ([`VcpuControl::exit_tally`]): what a picture of the run needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitTally {
    /// VM exits L0 took, by the level that was running and the basic exit
    /// reason; only non-zero entries, ordered by level then reason.
    pub exits: Vec<(GuestLevel, u16, u64)>,
    /// How many stretches in the guest (VM entry to the VM exit that
    /// brought the CPU back to L0) lasted how long in host time, by
    /// [`in_guest_bucket`].
    pub in_guest: [u64; IN_GUEST_BUCKETS],
}

/// Thread-safe control of a vCPU for the host side: the timers, the watchdog
/// and the operator, while another thread is inside [`Vcpu::run`].
pub trait VcpuControl: Send + Sync {
    /// Makes `run()` return [`VcpuExit::Interrupted`] at the guest's next
    /// instruction boundary (or at once, if it is not in the guest).
    fn request_exit(&self);
    /// A host timer interrupt: the processor returns to L0 at the guest's
    /// next instruction boundary, and L0 resumes the guest unless an exit was
    /// requested. A guest stuck inside event delivery never reaches one.
    fn host_tick(&self);
    /// How long the vCPU has been in the guest since it last returned to L0,
    /// or `None` when it is not in the guest (or the accelerator cannot tell).
    fn in_guest_for(&self) -> Option<Duration>;
    /// The vCPU's virtual time in nanoseconds as of its last VM exit, where
    /// the accelerator keeps one (devices that count time read it).
    fn virtual_ns(&self) -> Option<u64>;
    /// Raises an NMI on the vCPU (QEMU's monitor `nmi`, `KVM_NMI`): the
    /// guest takes it through its IDT at the next instruction boundary where
    /// NMIs are not blocked.
    fn inject_nmi(&self);
    /// Pulls the plug: the vCPU stops wherever it is, even inside an endless
    /// event delivery, and every later `run()` returns
    /// [`VcpuExit::PoweredOff`]. Not a VM exit; the VM cannot be resumed.
    fn power_off(&self);
    /// The running totals of VM exits and of host time per stretch in the
    /// guest, where the accelerator keeps them (the soft one does; KVM's
    /// exits happen in the kernel, out of sight).
    fn exit_tally(&self) -> Option<ExitTally> {
        None
    }
}

/// A running vCPU.
pub trait Vcpu {
    /// Runs the guest until it needs userspace.
    fn run(&mut self) -> Result<VcpuExit<'_>, AccelError>;
    /// The vCPU's registers now.
    fn registers(&self) -> Result<Registers, AccelError>;
    /// Counters of exits the accelerator handled without userspace.
    fn stats(&self) -> VcpuStats;
    /// A handle to control this vCPU from other threads.
    fn control(&self) -> Arc<dyn VcpuControl>;
    /// Makes the vCPU take a triple fault before it runs again (the
    /// `KVM_SET_VCPU_EVENTS` triple-fault event): the next `run()` returns
    /// [`VcpuExit::Shutdown`].
    fn inject_triple_fault(&mut self) -> Result<(), AccelError>;
    /// Virtual time of the vCPU in nanoseconds, where the accelerator keeps one.
    fn virtual_ns(&self) -> Option<u64>;
    /// An interrupt message for the vCPU's local APIC, as an I/O APIC or an
    /// MSI sends one (`KVM_SIGNAL_MSI`): fixed delivery of `vector`, edge-
    /// or level-triggered (TMR). The APIC accepts it into IRR, and the guest
    /// takes it through its IDT when priority and RFLAGS.IF allow, at the
    /// next `run()`. Vectors 0–15 are illegal and dropped, as the APIC
    /// drops them.
    fn deliver_interrupt(&mut self, vector: u8, level: bool) -> Result<(), AccelError>;
    /// Asks the vCPU to return [`VcpuExit::Interrupted`] once its virtual
    /// time reaches `virtual_ns` (`None` cancels), so that a device of the
    /// VMM whose line changes at a known time (the PIT's next IRQ 0 edge)
    /// is sampled then rather than at the next host tick; a halted vCPU
    /// with interrupts enabled waits for it as for its own timer. The
    /// request is one-shot. Accelerators without virtual time keep the
    /// host's clock and return at host ticks; they ignore it.
    fn set_exit_deadline(&mut self, virtual_ns: Option<u64>) -> Result<(), AccelError> {
        let _ = virtual_ns;
        Ok(())
    }
    /// Debug access for a debugger (registers, memory, steps, breakpoints,
    /// the VMCS), where the accelerator offers it (the soft one does).
    fn debug(&mut self) -> Option<&mut dyn debug::GuestDebug> {
        None
    }
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
    /// Enables notify VM exiting for every vCPU of this VM, as
    /// `KVM_ENABLE_CAP(KVM_CAP_X86_NOTIFY_VMEXIT)`: `arg` is
    /// [`notify_vmexit_arg`]`(window, flags)`. Allowed only before the first
    /// vCPU exists; flags other than [`NOTIFY_VMEXIT_ENABLED`] and
    /// [`NOTIFY_VMEXIT_USER`] are refused, and so is an argument without
    /// `ENABLED`.
    fn enable_notify_vmexit(&mut self, arg: u64) -> Result<(), AccelError>;
    /// Makes every bus lock the guest asserts end `run()` with
    /// [`VcpuExit::BusLock`] (`KVM_CAP_X86_BUS_LOCK_EXIT` with
    /// `KVM_BUS_LOCK_DETECTION_EXIT`). Allowed only before the first vCPU.
    fn enable_bus_lock_exit(&mut self) -> Result<(), AccelError>;
    /// Makes the next notify VM exit report an invalid guest context — the
    /// next one taken while `level` runs, or any when `level` is `None` — a
    /// fault-injection hook for tests and demonstrations: silicon is
    /// documented never to produce one. Only the soft accelerator has it;
    /// allowed only before the first vCPU.
    fn arm_notify_context_invalid(&mut self, level: Option<GuestLevel>) -> Result<(), AccelError> {
        let _ = level;
        Err(AccelError::Unsupported(
            Unsupported::NotifyContextInvalidInjection,
        ))
    }
    /// Makes the processor stall inside microcode, with no instruction
    /// boundary, at a defined point ([`StallInjection`]): what notify VM
    /// exits exist for, on request. Only the soft accelerator has it;
    /// allowed only before the first vCPU.
    fn inject_stall(&mut self, stall: StallInjection) -> Result<(), AccelError> {
        let _ = stall;
        Err(AccelError::Unsupported(Unsupported::StallInjection))
    }
}

/// A stall the soft CPU is told to take (docs/notify.md, "The stall
/// model"): the first instruction started at or after `at_ns` of virtual
/// time while `level` runs spends `duration_ns` — counted in the
/// processor's crystal-clock cycles (CPUID.15H) — without reaching an
/// instruction boundary before it executes. A notify VM exit cuts it; the
/// stall resumes with what is left on the next entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallInjection {
    /// Length of the stall in nanoseconds of virtual time.
    pub duration_ns: u64,
    /// The guest whose instruction stalls; `None`: whichever runs.
    pub level: Option<GuestLevel>,
    /// Virtual time since reset, in nanoseconds, before which no stall
    /// begins.
    pub at_ns: u64,
}

/// The processor an accelerator gives its guests, as the accelerator
/// describes it, without building a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuDescription {
    /// What the part calls itself: the CPUID brand string of real silicon
    /// (empty when it has none), the model's name for a modelled one.
    pub name: String,
    /// The vendor string of CPUID.0 (EBX, EDX, ECX).
    pub vendor: String,
    /// CPUID.1:EAX, the signature: stepping, model and family with their
    /// extended fields, undecoded.
    pub signature: u32,
    /// The clocks and timing of a modelled part; `None` for real silicon.
    pub timing: Option<ModelTiming>,
}

/// The clocks and timing of a modelled processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelTiming {
    /// The core crystal clock in Hz (CPUID.15H:ECX).
    pub crystal_hz: u32,
    /// TSC / crystal ratio numerator (CPUID.15H:EBX).
    pub tsc_ratio_numerator: u32,
    /// TSC / crystal ratio denominator (CPUID.15H:EAX).
    pub tsc_ratio_denominator: u32,
    /// What the processor adds to the VMCS notify window, in crystal-clock
    /// cycles.
    pub notify_threshold: u32,
    /// Virtual cycles one event-delivery attempt takes.
    pub delivery_cycles: u32,
}

impl ModelTiming {
    /// The TSC frequency in Hz: crystal × numerator / denominator.
    pub fn tsc_hz(&self) -> u64 {
        u64::from(self.crystal_hz) * u64::from(self.tsc_ratio_numerator)
            / u64::from(self.tsc_ratio_denominator.max(1))
    }
}

/// The 12-byte vendor string CPUID.0 returns in EBX, EDX, ECX.
pub fn cpuid_vendor(ebx: u32, edx: u32, ecx: u32) -> String {
    let bytes: Vec<u8> = [ebx, edx, ecx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A source of VMs.
pub trait Accelerator {
    /// The VM type.
    type Vm: Vm;
    /// A short name: "soft" or "kvm".
    fn name(&self) -> &'static str;
    /// Creates a VM with the given configuration.
    fn create_vm(&self, config: &VmConfig) -> Result<Self::Vm, AccelError>;
    /// Whether VMs can enable notify VM exiting
    /// (`KVM_CHECK_EXTENSION(KVM_CAP_X86_NOTIFY_VMEXIT)`).
    fn supports_notify_vmexit(&self) -> bool;
    /// Whether VMs can enable bus-lock exits
    /// (`KVM_CHECK_EXTENSION(KVM_CAP_X86_BUS_LOCK_EXIT)` has the exit mode).
    fn supports_bus_lock_exit(&self) -> bool;
    /// The processor guests get (for KVM, what `KVM_GET_SUPPORTED_CPUID`
    /// offers).
    fn describe_cpu(&self) -> Result<CpuDescription, AccelError>;
}

/// Checks the argument of [`Vm::enable_notify_vmexit`] and returns the
/// window and whether exits go to userspace. Unknown flags and a missing
/// `ENABLED` are refused, as KVM refuses them (EINVAL). Shared by the
/// accelerators so they refuse the same arguments.
pub fn parse_notify_vmexit_arg(arg: u64) -> Result<(u32, bool), AccelError> {
    let flags = arg & 0xFFFF_FFFF;
    let known = NOTIFY_VMEXIT_ENABLED | NOTIFY_VMEXIT_USER;
    if flags & !known != 0 {
        return Err(AccelError::invalid_config(NotifyArgError::UnknownFlags {
            flags,
            unknown: flags & !known,
        }));
    }
    if flags & NOTIFY_VMEXIT_ENABLED == 0 {
        return Err(AccelError::invalid_config(NotifyArgError::NotEnabled));
    }
    Ok(((arg >> 32) as u32, flags & NOTIFY_VMEXIT_USER != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_guest_buckets_are_powers_of_two_microseconds() {
        let us = Duration::from_micros;
        assert_eq!(in_guest_bucket(Duration::from_nanos(999)), 0);
        assert_eq!(in_guest_bucket(us(1)), 1);
        assert_eq!(in_guest_bucket(us(2)), 2);
        assert_eq!(in_guest_bucket(us(3)), 2);
        assert_eq!(in_guest_bucket(us(4)), 3);
        assert_eq!(in_guest_bucket(Duration::from_secs(1)), 20);
        assert_eq!(
            in_guest_bucket(Duration::from_secs(1 << 40)),
            IN_GUEST_BUCKETS - 1
        );
    }
}
