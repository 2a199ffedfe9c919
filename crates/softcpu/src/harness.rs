//! A bare machine for tests and fuzzing: code placed in memory runs as a
//! VMX guest in a chosen mode, with an identity EPT, every exit taken, the
//! VMX-preemption timer as the step budget, and notify VM exiting (window 0,
//! threshold [`NOTIFY_THRESHOLD`]) so that an endless event-delivery loop,
//! which no timer can interrupt, still ends the run.
//!
//! This is not a hypervisor: exits are only counted and the guest resumed
//! (instructions that exit are skipped), so arbitrary code can run for a
//! bounded time without any policy.

use crate::cpu::{CpuModel, SoftCpu};
use x86::segment::{AR_CODE, AR_CODE32, AR_CODE64, AR_DATA, AR_DATA32, AR_TSS_BUSY};
use x86::vmx::{exit_ctl, exit_reason, field as f, pin, proc, proc2};

/// Processor mode the code runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 16-bit real mode (unrestricted guest).
    Real,
    /// 32-bit protected mode, paging off.
    Protected32,
    /// 64-bit mode with identity 4-level paging of the first 1 GiB.
    Long64,
}

/// Guest RAM of the bare machine.
pub const RAM: u64 = 4 << 20;
/// Where the code is placed (and where it starts).
pub const CODE: u64 = 0x10_0000;
const EPT_BASE: u64 = RAM;
const PT_BASE: u64 = 0x8000;

/// The initial stack pointer in [`Mode::Real`] (SS base 0).
pub const REAL_MODE_SP: u64 = 0xFFF0;

/// The harness CPU's notify threshold in crystal-clock cycles (lower than a
/// real part's, so that delivery loops end quickly in tests).
pub const NOTIFY_THRESHOLD: u32 = 1_000;

/// Most virtual cycles a run can go past its budget: an event-delivery loop
/// running until the notify exit.
pub fn max_overshoot() -> u64 {
    let m = machine_model();
    u64::from(NOTIFY_THRESHOLD + 1) * u64::from(m.tsc_ratio_numerator)
        / u64::from(m.tsc_ratio_denominator)
        + 2 * u64::from(m.delivery_cycles)
        + 64
}

fn machine_model() -> CpuModel {
    CpuModel {
        notify_threshold: NOTIFY_THRESHOLD,
        ..CpuModel::default()
    }
}

/// What a bounded run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// VM entries made.
    pub entries: u64,
    /// Whether the guest shut down (triple fault).
    pub shutdown: bool,
    /// Whether a VM entry failed (invalid guest state after an exit was skipped).
    pub entry_failed: bool,
    /// Whether the budget ran out.
    pub budget_exhausted: bool,
    /// Whether a notify VM exit ended the run (an endless delivery loop).
    pub notify_exit: bool,
    /// Virtual cycles consumed.
    pub cycles: u64,
}

/// Builds a machine with `code` at [`CODE`] in `mode`.
pub fn machine(mode: Mode, code: &[u8]) -> SoftCpu {
    machine_with_model(mode, code, machine_model())
}

/// [`machine`] on a CPU of `model` (for tests of the model's own timing,
/// such as the notify window at the default threshold).
pub fn machine_with_model(mode: Mode, code: &[u8], model: CpuModel) -> SoftCpu {
    let mut cpu = SoftCpu::new(RAM + 0x4000, model);
    let len = code.len().min((RAM - CODE) as usize);
    let _ = cpu.memory_mut().write(CODE, &code[..len]);
    // Identity EPT for RAM with 2 MiB pages: PML4 → PDPT → PD.
    let w = |cpu: &mut SoftCpu, a: u64, v: u64| {
        let _ = cpu.memory_mut().write(a, &v.to_le_bytes());
    };
    w(&mut cpu, EPT_BASE, (EPT_BASE + 0x1000) | 7);
    w(&mut cpu, EPT_BASE + 0x1000, (EPT_BASE + 0x2000) | 7);
    for i in 0..RAM >> 21 {
        w(
            &mut cpu,
            EPT_BASE + 0x2000 + i * 8,
            (i << 21) | 7 | (6 << 3) | (1 << 7),
        );
    }
    if mode == Mode::Long64 {
        // Guest page tables at 0x8000: PML4, PDPT, PD with 2 MiB pages over 1 GiB.
        w(&mut cpu, PT_BASE, (PT_BASE + 0x1000) | 7);
        w(&mut cpu, PT_BASE + 0x1000, (PT_BASE + 0x2000) | 7);
        for i in 0..512u64 {
            w(&mut cpu, PT_BASE + 0x2000 + i * 8, (i << 21) | 0x87);
        }
    }
    program(&mut cpu, mode);
    cpu
}

fn program(cpu: &mut SoftCpu, mode: Mode) {
    let cap = |m: u32| crate::capability_msr(m).unwrap_or(0);
    let adj = |m: u32, want: u32| {
        let c = cap(m);
        (want | c as u32) & (c >> 32) as u32
    };
    let mut put = |fld: u32, v: u64| {
        let _ = cpu.vmwrite(fld, v);
    };
    put(
        f::PIN_BASED_VM_EXEC_CONTROL,
        u64::from(adj(x86::msr::VMX_PINBASED_CTLS, pin::PREEMPTION_TIMER)),
    );
    put(
        f::CPU_BASED_VM_EXEC_CONTROL,
        u64::from(adj(
            x86::msr::VMX_PROCBASED_CTLS,
            proc::HLT_EXITING | proc::UNCOND_IO_EXITING | proc::ACTIVATE_SECONDARY_CONTROLS,
        )),
    );
    put(
        f::SECONDARY_VM_EXEC_CONTROL,
        u64::from(proc2::ENABLE_EPT | proc2::UNRESTRICTED_GUEST | proc2::NOTIFY_VM_EXITING),
    );
    put(
        f::VM_EXIT_CONTROLS,
        u64::from(adj(
            x86::msr::VMX_EXIT_CTLS,
            exit_ctl::HOST_ADDR_SPACE_SIZE
                | exit_ctl::SAVE_IA32_EFER
                | exit_ctl::SAVE_PREEMPTION_TIMER,
        )),
    );
    let long = mode == Mode::Long64;
    let entry = adj(
        x86::msr::VMX_ENTRY_CTLS,
        x86::vmx::entry_ctl::LOAD_IA32_EFER
            | if long {
                x86::vmx::entry_ctl::IA32E_MODE_GUEST
            } else {
                0
            },
    );
    put(f::VM_ENTRY_CONTROLS, u64::from(entry));
    put(f::EPT_POINTER, EPT_BASE | 0x1E);
    put(f::VMCS_LINK_POINTER, u64::MAX);
    let (code_ar, data_ar, cr0, sel_cs, sel_ds) = match mode {
        Mode::Real => (AR_CODE, AR_DATA, x86::cr::CR0_ET | x86::cr::CR0_NE, 0, 0),
        Mode::Protected32 => (AR_CODE32, AR_DATA32, 0x31, 0x10, 0x18),
        Mode::Long64 => (AR_CODE64, AR_DATA32, 0x8000_0031, 0x10, 0x18),
    };
    // Every data segment (all but CS, index 1) gets the flat data descriptor.
    let segs = crate::vmx::entry::seg_fields()
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != crate::state::Seg::Cs as usize)
        .map(|(_, f)| *f);
    let limit = if mode == Mode::Real {
        0xFFFF
    } else {
        0xFFFF_FFFF
    };
    for (s, b, l, a) in segs {
        put(s, sel_ds);
        put(b, 0);
        put(l, limit);
        put(a, u64::from(data_ar));
    }
    put(f::GUEST_CS_SELECTOR, sel_cs);
    put(f::GUEST_CS_LIMIT, limit);
    put(f::GUEST_CS_AR_BYTES, u64::from(code_ar));
    let (cs_base, rip) = if mode == Mode::Real {
        (CODE, 0)
    } else {
        (0, CODE)
    };
    put(f::GUEST_CS_BASE, cs_base);
    put(f::GUEST_TR_LIMIT, 0xFFFF);
    put(f::GUEST_TR_AR_BYTES, u64::from(AR_TSS_BUSY));
    put(f::GUEST_LDTR_AR_BYTES, u64::from(x86::segment::AR_UNUSABLE));
    put(f::GUEST_GDTR_LIMIT, 0xFFFF);
    put(f::GUEST_IDTR_LIMIT, 0xFFFF);
    put(f::GUEST_CR0, cr0);
    put(f::GUEST_CR3, if long { PT_BASE } else { 0 });
    put(
        f::GUEST_CR4,
        x86::cr::CR4_VMXE | if long { x86::cr::CR4_PAE } else { 0 },
    );
    put(
        f::GUEST_IA32_EFER,
        if long {
            x86::cr::EFER_LME | x86::cr::EFER_LMA
        } else {
            0
        },
    );
    put(f::GUEST_RFLAGS, x86::rflags::FIXED1);
    put(f::GUEST_RIP, rip);
    // Real mode: a stack inside SS's 64 KiB limit (offsets beyond it are #SS there).
    put(
        f::GUEST_RSP,
        if mode == Mode::Real {
            REAL_MODE_SP
        } else {
            0x8_0000
        },
    );
    put(f::GUEST_DR7, 0x400);
}

/// Runs the machine until `budget` virtual cycles are spent, resuming after
/// every exit (an instruction that exits is skipped).
pub fn run(cpu: &mut SoftCpu, budget: u64) -> Outcome {
    let start = cpu.cycles();
    let mut out = Outcome::default();
    let mut launched = false;
    loop {
        let spent = cpu.cycles() - start;
        if spent >= budget {
            out.budget_exhausted = true;
            break;
        }
        let _ = cpu.vmwrite(
            f::VMX_PREEMPTION_TIMER_VALUE,
            (budget - spent).min(u64::from(u32::MAX)),
        );
        let r = if launched {
            cpu.vmresume()
        } else {
            cpu.vmlaunch()
        };
        out.entries += 1;
        if r.is_err() {
            out.entry_failed = true;
            break;
        }
        launched = true;
        let reason = cpu.vmread(f::VM_EXIT_REASON).unwrap_or(0);
        if reason & u64::from(exit_reason::ENTRY_FAILURE) != 0 {
            out.entry_failed = true;
            break;
        }
        match reason as u16 {
            exit_reason::TRIPLE_FAULT => {
                out.shutdown = true;
                break;
            }
            exit_reason::PREEMPTION_TIMER | exit_reason::EXTERNAL_INTERRUPT => {}
            exit_reason::NOTIFY => {
                out.notify_exit = true;
                break;
            }
            exit_reason::EPT_VIOLATION | exit_reason::EPT_MISCONFIG => {
                // Nothing maps there: stop as a shutdown would.
                out.shutdown = true;
                break;
            }
            _ => {
                let len = cpu.vmread(f::VM_EXIT_INSTRUCTION_LEN).unwrap_or(0);
                let rip = cpu.vmread(f::GUEST_RIP).unwrap_or(0);
                if len == 0 {
                    // An exit that is not instruction-caused and not handled here.
                    out.shutdown = true;
                    break;
                }
                let _ = cpu.vmwrite(f::GUEST_RIP, rip.wrapping_add(len));
                let _ = cpu.vmwrite(f::VM_ENTRY_INTR_INFO, 0);
            }
        }
    }
    out.cycles = cpu.cycles() - start;
    out
}
