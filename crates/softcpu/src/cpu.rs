//! The processor: state, memory access through segmentation and paging,
//! the fetch–decode-cache–execute loop and virtual time.

use crate::decode::{DecodeCache, Op};
use crate::fault::{Ex, Exception, Stop};
use crate::memory::PhysMemory;
use crate::mmu::{Access, Tlb};
use crate::state::{CpuState, Seg};
use crate::vmx::VmxState;
use iced_x86::{Instruction, Register};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Parameters of the modelled CPU part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuModel {
    /// Core crystal clock in Hz (CPUID.15H:ECX).
    pub crystal_hz: u32,
    /// TSC / crystal ratio numerator (CPUID.15H:EBX).
    pub tsc_ratio_numerator: u32,
    /// TSC / crystal ratio denominator (CPUID.15H:EAX).
    pub tsc_ratio_denominator: u32,
    /// Internal threshold added to the VMCS notify window, in crystal-clock
    /// cycles (Intel quotes about 128,000 for Sapphire Rapids).
    pub notify_threshold: u32,
    /// Virtual cycles one event-delivery attempt takes.
    pub delivery_cycles: u32,
}

impl Default for CpuModel {
    fn default() -> Self {
        // A 25 MHz crystal and a 2.0 GHz TSC, as on many server parts.
        CpuModel {
            crystal_hz: 25_000_000,
            tsc_ratio_numerator: 80,
            tsc_ratio_denominator: 1,
            notify_threshold: 128_000,
            delivery_cycles: 100,
        }
    }
}

/// A handle that raises an external interrupt at the CPU's next instruction
/// boundary: the way the host kicks a vCPU out of the guest.
#[derive(Debug, Clone)]
pub struct Kicker(Arc<AtomicBool>);

impl Kicker {
    /// Raises the interrupt line.
    pub fn kick(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The machine's power switch, for the host: once cut, the CPU stops where
/// it is — inside an instruction or in the middle of an endless event
/// delivery — and never executes again. This is not a VM exit; nothing of
/// the guest's state is saved.
#[derive(Debug, Clone)]
pub struct PowerSwitch(Arc<AtomicBool>);

impl PowerSwitch {
    /// Cuts the power.
    pub fn cut(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the power has been cut.
    pub fn is_cut(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Interrupt-shadow and blocking state (SDM Vol. 3A §6.8.3, Vol. 3C §25.4.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Blocking {
    /// Blocking by STI for the next instruction.
    pub sti: bool,
    /// Blocking by MOV SS / POP SS for the next instruction.
    pub mov_ss: bool,
}

/// The software CPU: one logical processor and the machine's physical memory.
pub struct SoftCpu {
    pub(crate) s: CpuState,
    pub(crate) mem: PhysMemory,
    pub(crate) tlb: Tlb,
    pub(crate) code: DecodeCache,
    pub(crate) vmx: VmxState,
    /// x87, MMX and SSE registers (`fpu.rs`).
    pub(crate) fpu: crate::fpu::FpuState,
    /// The last flag-setting operation of a specialised handler, not yet in RFLAGS.
    pub(crate) lazy: crate::exec::lazy::Lazy,
    /// Interrupt shadow in effect at the current instruction boundary.
    pub(crate) shadow: Blocking,
    /// Interrupt shadow the executing instruction creates for the next boundary.
    pub(crate) next_blocking: Blocking,
    /// NMIs blocked until the next IRET.
    pub(crate) nmi_blocked: bool,
    /// An event the VMCS asks VM entry to inject.
    pub(crate) injection: Option<crate::event::Event>,
    pub(crate) model: CpuModel,
    /// Virtual time in core cycles since reset.
    pub(crate) cycles: u64,
    /// Instructions retired since reset.
    pub(crate) retired: u64,
    /// Address of the next instruction while one executes.
    pub(crate) next_rip: u64,
    /// RIP value at offset 0 of the page the last instruction came from.
    pub(crate) fetch_ip_base: u64,
    /// Host-physical address of that page.
    pub(crate) fetch_hpa_base: u64,
    /// TLB and decode-cache generations the page was looked up in.
    pub(crate) fetch_gen: (u64, u64),
    /// CS base, CS attributes and CPL the page was looked up with.
    pub(crate) fetch_key: (u64, u32, u8),
    /// Breakpoint state derived from DR7, and debug traps collected.
    pub(crate) debug: crate::debug::DebugState,
    /// The next notify VM exit reports "VM context invalid" (a test knob: the
    /// model never produces an unresumable context by itself).
    pub(crate) notify_invalid_armed: bool,
    /// TSC cycles of an injected stall the next instruction still has to
    /// spend (`crate::stall`).
    pub(crate) stall_cycles: u64,
    /// VM entry injected a pending MTF VM exit (type 7, vector 0).
    pub(crate) mtf_pending: bool,
    /// A MOV to CR8 took VTPR below the TPR threshold: a trap-like VM exit
    /// follows the instruction (`crate::vmx::tpr`).
    pub(crate) tpr_below_threshold: bool,
    /// PAUSE-loop exiting: the cycle counts of the first PAUSE of the
    /// current loop and of the latest PAUSE at CPL 0 since the VM entry.
    pub(crate) pause_loop: Option<(u64, u64)>,
    /// The instruction now executing is an IRET that unblocked NMIs.
    pub(crate) iret_unblocked_nmi: bool,
    /// Virtual time at which the VMX-preemption timer expires, while armed.
    pub(crate) preemption_deadline: Option<u64>,
    /// In the HLT activity state.
    pub(crate) halted: bool,
    /// Virtual cycles that passed in the HLT activity state since reset.
    pub(crate) halted_cycles: u64,
    /// The event being delivered, for IDT-vectoring information on a VM exit.
    pub(crate) vectoring: Option<crate::event::Event>,
    pub(crate) ext_intr: Arc<AtomicBool>,
    /// The NMI pin.
    pub(crate) nmi_pin: Arc<AtomicBool>,
    /// Set by the host to cut the power.
    pub(crate) power: Arc<AtomicBool>,
    /// The CPU stopped because the power was cut.
    pub(crate) powered_off: bool,
    /// While the hypervisor has an instruction emulated for MMIO: the
    /// session that takes the accesses EPT does not map (`crate::mmio`).
    pub(crate) mmio: Option<crate::mmio::MmioSession>,
    /// Virtual cycles each instruction takes (1: the exact model).
    pub(crate) instruction_cycles: u64,
    /// The MMIO load an emulated instruction stopped at.
    pub(crate) mmio_wanted: Option<crate::mmio::MmioLoad>,
    /// What [`Self::quick_mode`] said when the running block was entered
    /// (nothing a block runs changes it); [`QUICK_UNKNOWN`] outside blocks.
    pub(crate) quick: u8,
    /// The translating tier (`crate::jit`).
    pub(crate) jit: crate::jit::Jit,
}

/// Quick data accesses: the state must be looked at on each one.
pub(crate) const QUICK_UNKNOWN: u8 = 0;
/// Quick data accesses are not possible in the current state.
pub(crate) const QUICK_NONE: u8 = 1;
/// Quick data accesses possible, at CPL 0–2.
pub(crate) const QUICK_SUPERVISOR: u8 = 2;
/// Quick data accesses possible, at CPL 3.
pub(crate) const QUICK_USER: u8 = 3;

impl SoftCpu {
    /// A CPU after reset with `memory_bytes` of zeroed physical memory.
    pub fn new(memory_bytes: u64, model: CpuModel) -> Self {
        let mem = PhysMemory::new(memory_bytes);
        let size = mem.size();
        SoftCpu {
            s: CpuState {
                rflags: x86::rflags::FIXED1,
                cr0: x86::cr::CR0_ET,
                ..CpuState::default()
            },
            mem,
            tlb: Tlb::new(),
            code: DecodeCache::new(size),
            vmx: VmxState::new(),
            fpu: crate::fpu::FpuState::default(),
            lazy: crate::exec::lazy::Lazy::default(),
            shadow: Blocking::default(),
            next_blocking: Blocking::default(),
            nmi_blocked: false,
            injection: None,
            model,
            cycles: 0,
            retired: 0,
            next_rip: 0,
            halted: false,
            halted_cycles: 0,
            preemption_deadline: None,
            notify_invalid_armed: false,
            stall_cycles: 0,
            mtf_pending: false,
            tpr_below_threshold: false,
            pause_loop: None,
            iret_unblocked_nmi: false,
            debug: crate::debug::DebugState::default(),
            fetch_ip_base: 0,
            fetch_hpa_base: 0,
            fetch_gen: (u64::MAX, u64::MAX),
            fetch_key: (0, 0, 0),
            vectoring: None,
            ext_intr: Arc::new(AtomicBool::new(false)),
            nmi_pin: Arc::new(AtomicBool::new(false)),
            power: Arc::new(AtomicBool::new(false)),
            powered_off: false,
            mmio: None,
            mmio_wanted: None,
            instruction_cycles: 1,
            quick: QUICK_UNKNOWN,
            jit: crate::jit::Jit::default(),
        }
    }

    /// The machine's physical memory.
    pub fn memory(&self) -> &PhysMemory {
        &self.mem
    }

    /// The machine's physical memory, for writes (decode caches stay coherent).
    pub fn memory_mut(&mut self) -> &mut PhysMemory {
        &mut self.mem
    }

    /// The CPU model parameters.
    pub fn model(&self) -> CpuModel {
        self.model
    }

    /// A handle to kick this CPU from another thread.
    pub fn kicker(&self) -> Kicker {
        Kicker(self.ext_intr.clone())
    }

    /// A handle that raises an NMI, recognised at the next instruction
    /// boundary where NMIs are not blocked.
    pub fn nmi_line(&self) -> Kicker {
        Kicker(self.nmi_pin.clone())
    }

    /// The machine's power switch (see [`PowerSwitch`]).
    pub fn power_switch(&self) -> PowerSwitch {
        PowerSwitch(self.power.clone())
    }

    /// Whether the CPU has stopped for good because its power was cut. A
    /// VMLAUNCH or VMRESUME after that does nothing.
    pub fn powered_off(&self) -> bool {
        self.powered_off
    }

    /// Whether the host has cut the power (checked where execution could
    /// otherwise go on without an instruction boundary).
    #[inline]
    pub(crate) fn power_cut(&self) -> bool {
        self.power.load(Ordering::Relaxed)
    }

    /// Makes the next notify VM exit report "VM context invalid"
    /// (qualification bit 0). Silicon is documented never to set the bit and
    /// this model never does on its own (see `docs/softcpu.md`), so tests
    /// arm it here.
    pub fn arm_notify_context_invalid(&mut self) {
        self.notify_invalid_armed = true;
    }

    /// Withdraws [`Self::arm_notify_context_invalid`]; returns whether it
    /// was still armed (no notify exit has reported it yet).
    pub fn disarm_notify_context_invalid(&mut self) -> bool {
        std::mem::take(&mut self.notify_invalid_armed)
    }

    /// Virtual time: core cycles since reset.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// Sets how many cycles of virtual time each instruction takes: 1 by
    /// default (the exact, deterministic model); a hypervisor that paces
    /// virtual time to a host clock raises it while the guest runs slower
    /// than the modelled part (see `docs/softcpu.md`, "Virtual time").
    /// Event delivery keeps its own cost (`CpuModel::delivery_cycles`).
    pub fn set_instruction_cycles(&mut self, cycles: u32) {
        self.instruction_cycles = u64::from(cycles.max(1));
    }

    /// Cycles of virtual time each instruction takes.
    pub fn instruction_cycles(&self) -> u32 {
        self.instruction_cycles as u32
    }

    /// Lets `cycles` of virtual time pass outside the guest: the
    /// hypervisor's own work on an exit, or waiting, as the TSC keeps
    /// counting in VMX root operation. The VMX-preemption timer is not
    /// affected (it counts only in non-root operation, from the value the
    /// next VM entry loads).
    pub fn advance_time(&mut self, cycles: u64) {
        self.cycles = self.cycles.wrapping_add(cycles);
    }

    /// Instructions retired since reset.
    pub fn instructions_retired(&self) -> u64 {
        self.retired
    }

    /// Virtual cycles that passed while the CPU was in the HLT activity
    /// state, since reset: the part of [`Self::cycles`] no instruction
    /// took, as virtual time ran on to the next event.
    pub fn halted_cycles(&self) -> u64 {
        self.halted_cycles
    }

    /// Instructions decoded since reset (decode-cache misses).
    pub fn instructions_decoded(&self) -> u64 {
        self.code.decodes
    }

    /// The architectural state (read-only view, for diagnostics and tests).
    pub fn state(&self) -> &CpuState {
        &self.s
    }

    // ---- registers -------------------------------------------------------

    /// Reads a general-purpose register of any width.
    #[inline]
    pub(crate) fn reg(&self, r: Register) -> u64 {
        let full = r.full_register();
        let i = full as usize - Register::RAX as usize;
        let v = self.s.gpr[i & 15];
        match r.size() {
            8 => v,
            4 => v & 0xFFFF_FFFF,
            2 => v & 0xFFFF,
            _ => {
                if matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) {
                    (self.s.gpr[(r as usize - Register::AH as usize) & 3] >> 8) & 0xFF
                } else {
                    v & 0xFF
                }
            }
        }
    }

    /// Writes a general-purpose register with the architectural width rules
    /// (32-bit writes zero-extend, 8/16-bit writes merge).
    #[inline]
    pub(crate) fn set_reg(&mut self, r: Register, value: u64) {
        if matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) {
            let i = (r as usize - Register::AH as usize) & 3;
            self.s.gpr[i] = (self.s.gpr[i] & !0xFF00) | ((value & 0xFF) << 8);
            return;
        }
        let full = r.full_register();
        let i = (full as usize - Register::RAX as usize) & 15;
        let old = self.s.gpr[i];
        self.s.gpr[i] = match r.size() {
            8 => value,
            4 => value & 0xFFFF_FFFF,
            2 => (old & !0xFFFF) | (value & 0xFFFF),
            _ => (old & !0xFF) | (value & 0xFF),
        };
    }

    /// Reads a pre-resolved general-purpose register.
    #[inline(always)]
    pub(crate) fn rd(&self, g: crate::decode::Gpr) -> u64 {
        use crate::decode::*;
        let v = self.s.gpr[(g.index & 15) as usize];
        match g.kind {
            GPR_QWORD => v,
            GPR_DWORD => v & 0xFFFF_FFFF,
            GPR_WORD => v & 0xFFFF,
            GPR_BYTE => v & 0xFF,
            _ => (v >> 8) & 0xFF,
        }
    }

    /// Writes a pre-resolved general-purpose register with the width rules of [`Self::set_reg`].
    #[inline(always)]
    pub(crate) fn wr(&mut self, g: crate::decode::Gpr, value: u64) {
        use crate::decode::*;
        let r = &mut self.s.gpr[(g.index & 15) as usize];
        *r = match g.kind {
            GPR_QWORD => value,
            GPR_DWORD => value & 0xFFFF_FFFF,
            GPR_WORD => (*r & !0xFFFF) | (value & 0xFFFF),
            GPR_BYTE => (*r & !0xFF) | (value & 0xFF),
            _ => (*r & !0xFF00) | ((value & 0xFF) << 8),
        };
    }

    /// Address-size mask for the current code size and an address-size override.
    #[inline]
    pub(crate) fn mask_addr(size: u32, value: u64) -> u64 {
        match size {
            8 => value,
            4 => value & 0xFFFF_FFFF,
            _ => value & 0xFFFF,
        }
    }

    // ---- memory through segmentation -------------------------------------

    /// Linear address of `offset` in segment `seg`.
    #[inline]
    pub(crate) fn linear(&self, seg: Seg, offset: u64) -> u64 {
        if self.s.mode64() {
            match seg {
                Seg::Fs | Seg::Gs => self.s.seg[seg as usize].base.wrapping_add(offset),
                _ => offset,
            }
        } else {
            self.s.seg[seg as usize].base.wrapping_add(offset) & 0xFFFF_FFFF
        }
    }

    fn check_canonical(&self, la: u64, seg: Seg) -> Ex<()> {
        if self.s.mode64() && !x86::address::is_canonical(la) {
            let vector = if seg == Seg::Ss {
                x86::exception::SS
            } else {
                x86::exception::GP
            };
            return Err(Exception::with_code(vector, 0).into());
        }
        Ok(())
    }

    /// Whether an access of `size` at `la` raises #AC when made at CPL 3
    /// (SDM Vol. 3A §6.15, vector 17; callers pass `user` for CPL 3 accesses).
    #[inline]
    fn misaligned_ac(&self, la: u64, size: usize) -> bool {
        size > 1
            && la & (size as u64 - 1) != 0
            && self.s.cr0 & x86::cr::CR0_AM != 0
            && self.s.rflags & x86::rflags::AC != 0
    }

    /// Reads `size` bytes (1, 2, 4 or 8) at a linear address.
    #[inline(always)]
    pub(crate) fn read_linear(&mut self, la: u64, size: usize, user: bool) -> Ex<u64> {
        if self.misaligned_ac(la, size) && user {
            return Err(Exception::with_code(x86::exception::AC, 0).into());
        }
        self.note_data_access(la, size, false);
        if (la & 0xFFF) as usize + size <= 4096 && self.mmio.is_none() {
            let hpa = self.translate_as(la, Access::Read, user)?;
            return Ok(self.phys_read(hpa, size));
        }
        self.read_pieces(la, size, user)
    }

    /// Writes `size` bytes at a linear address; both pages are checked before any byte is written.
    #[inline(always)]
    pub(crate) fn write_linear(&mut self, la: u64, size: usize, value: u64, user: bool) -> Ex<()> {
        if self.misaligned_ac(la, size) && user {
            return Err(Exception::with_code(x86::exception::AC, 0).into());
        }
        self.note_data_access(la, size, true);
        if (la & 0xFFF) as usize + size <= 4096 && self.mmio.is_none() {
            let hpa = self.translate_as(la, Access::Write, user)?;
            self.phys_write(hpa, size, value);
            return Ok(());
        }
        self.write_pieces(la, size, value, user)
    }

    /// Where the parts of an access go: one part per page it touches (at
    /// most two), each with its length. Both translations happen before
    /// any byte moves, so a fault on the second page leaves the first
    /// untouched.
    fn pieces(
        &mut self,
        la: u64,
        size: usize,
        access: Access,
        user: bool,
    ) -> Ex<[(Place, usize); 2]> {
        let first = (4096 - (la & 0xFFF) as usize).min(size);
        let a = self.place(la, access, user)?;
        if first == size {
            return Ok([(a, size), (a, 0)]);
        }
        let b = self.place(la.wrapping_add(first as u64), access, user)?;
        Ok([(a, first), (b, size - first)])
    }

    /// Where one page's part of an access goes: memory, or — while an
    /// instruction is emulated for MMIO — the session, for an address EPT
    /// does not map (an EPT violation on the translation of the operand's
    /// own linear address, qualification bit 8; SDM Vol. 3C Table 28-7).
    fn place(&mut self, la: u64, access: Access, user: bool) -> Ex<Place> {
        match self.translate_as(la, access, user) {
            Ok(hpa) => Ok(Place::Memory(hpa)),
            Err(Stop::VmExit(info))
                if self.mmio.is_some()
                    && info.reason == x86::vmx::exit_reason::EPT_VIOLATION
                    && info.qualification & (1 << 8) != 0 =>
            {
                Ok(Place::Mmio(info.guest_physical))
            }
            Err(stop) => Err(stop),
        }
    }

    /// A read that crosses a page boundary or may reach MMIO: each part
    /// from where its own translation says.
    #[cold]
    fn read_pieces(&mut self, la: u64, size: usize, user: bool) -> Ex<u64> {
        let mut bytes = [0u8; 8];
        let mut at = 0;
        for (place, len) in self.pieces(la, size, Access::Read, user)? {
            let part = match place {
                _ if len == 0 => continue,
                Place::Memory(hpa) => {
                    let mut v = 0u64;
                    for i in (0..len).rev() {
                        v = v << 8 | self.phys_read(hpa + i as u64, 1);
                    }
                    v
                }
                Place::Mmio(gpa) => self.mmio_load(gpa, len)?,
            };
            bytes[at..at + len].copy_from_slice(&part.to_le_bytes()[..len]);
            at += len;
        }
        Ok(u64::from_le_bytes(bytes))
    }

    /// A write that crosses a page boundary or may reach MMIO.
    #[cold]
    fn write_pieces(&mut self, la: u64, size: usize, value: u64, user: bool) -> Ex<()> {
        let mut rest = value;
        for (place, len) in self.pieces(la, size, Access::Write, user)? {
            let part = if len >= 8 {
                rest
            } else {
                rest & ((1 << (len * 8)) - 1)
            };
            match place {
                _ if len == 0 => continue,
                Place::Memory(hpa) => {
                    for i in 0..len {
                        self.phys_write(hpa + i as u64, 1, part >> (8 * i));
                    }
                }
                Place::Mmio(gpa) => self.mmio_store(gpa, len, part),
            }
            rest = rest.checked_shr(len as u32 * 8).unwrap_or(0);
        }
        Ok(())
    }

    /// A load from MMIO: the session's next value, or a stop until the
    /// hypervisor supplies it.
    fn mmio_load(&mut self, gpa: u64, size: usize) -> Ex<u64> {
        let value = self.mmio.as_mut().and_then(|s| s.load());
        match value {
            Some(v) => Ok(v),
            None => {
                self.mmio_wanted = Some(crate::mmio::MmioLoad { gpa, size });
                Err(Stop::MmioPending)
            }
        }
    }

    /// A store to MMIO, recorded in the session.
    fn mmio_store(&mut self, gpa: u64, size: usize, value: u64) {
        if let Some(s) = self.mmio.as_mut() {
            s.store(crate::mmio::MmioStore { gpa, size, value });
        }
    }

    /// The work of an emulated instruction so far is done for good (one
    /// iteration of a REP string instruction).
    #[inline]
    pub(crate) fn mmio_commit(&mut self) {
        if let Some(s) = self.mmio.as_mut() {
            s.commit();
        }
    }

    /// Physical read; outside memory reads as all ones (open bus).
    #[inline(always)]
    pub(crate) fn phys_read(&self, hpa: u64, size: usize) -> u64 {
        let r = match size {
            1 => self.mem.read_le::<1>(hpa).map(|b| u64::from(b[0])),
            2 => self
                .mem
                .read_le::<2>(hpa)
                .map(|b| u64::from(u16::from_le_bytes(b))),
            4 => self
                .mem
                .read_le::<4>(hpa)
                .map(|b| u64::from(u32::from_le_bytes(b))),
            _ => self.mem.read_le::<8>(hpa).map(u64::from_le_bytes),
        };
        r.unwrap_or(u64::MAX >> (64 - 8 * size as u32))
    }

    /// Physical write; outside memory is ignored (open bus).
    #[inline(always)]
    pub(crate) fn phys_write(&mut self, hpa: u64, size: usize, value: u64) {
        let _ = match size {
            1 => self.mem.write_le::<1>(hpa, [value as u8]),
            2 => self.mem.write_le::<2>(hpa, (value as u16).to_le_bytes()),
            4 => self.mem.write_le::<4>(hpa, (value as u32).to_le_bytes()),
            _ => self.mem.write_le::<8>(hpa, value.to_le_bytes()),
        };
    }

    /// Reads from a segment at the current privilege.
    #[inline(always)]
    pub(crate) fn read_mem(&mut self, seg: Seg, offset: u64, size: usize) -> Ex<u64> {
        if let Some(hpa) = self.quick_data(seg, offset, size, Access::Read) {
            return Ok(self.phys_read(hpa, size));
        }
        self.read_mem_full(seg, offset, size)
    }

    /// Writes to a segment at the current privilege.
    #[inline(always)]
    pub(crate) fn write_mem(&mut self, seg: Seg, offset: u64, size: usize, value: u64) -> Ex<()> {
        if let Some(hpa) = self.quick_data(seg, offset, size, Access::Write) {
            self.phys_write(hpa, size, value);
            return Ok(());
        }
        self.write_mem_full(seg, offset, size, value)
    }

    /// The host-physical address of a data access in 64-bit mode that
    /// needs none of the checks that can fail or look further: a canonical
    /// address, inside one page, translated by a TLB entry that allows the
    /// access, with no data breakpoint armed, no MMIO emulation under way
    /// and no alignment check possible. `None`: the full path decides
    /// (and faults where it must). Nothing here changes any state.
    #[inline(always)]
    fn quick_data(&self, seg: Seg, offset: u64, size: usize, access: Access) -> Option<u64> {
        let user = match self.quick {
            QUICK_SUPERVISOR => false,
            QUICK_USER => true,
            QUICK_NONE => return None,
            _ => match self.quick_mode() {
                QUICK_SUPERVISOR => false,
                QUICK_USER => true,
                _ => return None,
            },
        };
        let la = match seg {
            Seg::Fs | Seg::Gs => self.s.seg[seg as usize].base.wrapping_add(offset),
            _ => offset,
        };
        if !x86::address::is_canonical(la) || (la & 0xFFF) as usize + size > 4096 {
            return None;
        }
        self.tlb_hit(la, access, user)
    }

    /// Whether data accesses may take the quick path in the current state
    /// (64-bit mode, no data breakpoint armed, no MMIO emulation under way,
    /// no alignment check possible), and at which privilege: one of the
    /// `QUICK_*` constants other than [`QUICK_UNKNOWN`].
    #[inline(always)]
    pub(crate) fn quick_mode(&self) -> u8 {
        if !self.s.mode64() || self.debug.data_bp || self.mmio.is_some() {
            return QUICK_NONE;
        }
        if self.s.cpl() != 3 {
            return QUICK_SUPERVISOR;
        }
        if self.s.cr0 & x86::cr::CR0_AM != 0 && self.s.rflags & x86::rflags::AC != 0 {
            return QUICK_NONE;
        }
        QUICK_USER
    }

    /// Reads from a segment at the current privilege, every check made.
    #[inline(never)]
    fn read_mem_full(&mut self, seg: Seg, offset: u64, size: usize) -> Ex<u64> {
        self.segment_check(seg, offset, size, false)?;
        let la = self.linear(seg, offset);
        self.check_canonical(la, seg)?;
        let user = self.s.cpl() == 3;
        self.read_linear(la, size, user)
    }

    /// Writes to a segment at the current privilege, every check made.
    #[inline(never)]
    fn write_mem_full(&mut self, seg: Seg, offset: u64, size: usize, value: u64) -> Ex<()> {
        self.segment_check(seg, offset, size, true)?;
        let la = self.linear(seg, offset);
        self.check_canonical(la, seg)?;
        let user = self.s.cpl() == 3;
        self.write_linear(la, size, value, user)
    }

    /// Protected-mode segment checks on a data access: null (unusable)
    /// segment, type and limit, including expand-down segments (SDM Vol. 3A
    /// §5.3, §5.4.1). #SS(0) for SS, #GP(0) otherwise; none in 64-bit mode.
    ///
    /// Real-address mode keeps only the limit check, against the limit in
    /// the hidden part of the segment register (0xFFFF unless protected mode
    /// left another one): an operand that extends beyond it is #GP, or #SS
    /// for SS, without an error code (SDM Vol. 3A §20.1.1, and the
    /// "Real-Address Mode Exceptions" of every instruction in Vol. 2). There
    /// are no type or privilege checks there.
    #[inline]
    pub(crate) fn segment_check(&self, seg: Seg, offset: u64, size: usize, write: bool) -> Ex<()> {
        if self.s.mode64() || self.s.rflags & x86::rflags::VM != 0 {
            return Ok(());
        }
        let real = self.s.cr0 & x86::cr::CR0_PE == 0;
        let s = &self.s.seg[seg as usize];
        let vector = if seg == Seg::Ss {
            x86::exception::SS
        } else {
            x86::exception::GP
        };
        let fault = Err(Exception::with_code(vector, 0).into());
        let ty = s.ar & 0xF;
        let code = ty & x86::segment::TYPE_CODE != 0;
        if !real {
            if s.ar & x86::segment::AR_UNUSABLE != 0 || s.ar & x86::segment::AR_P == 0 {
                return fault;
            }
            let readable_or_writable = ty & x86::segment::TYPE_RW != 0;
            // Writes need writable data; reads of code need a readable segment.
            let denied = if write {
                code || !readable_or_writable
            } else {
                code && !readable_or_writable
            };
            if denied {
                return fault;
            }
        }
        let last = offset.wrapping_add(size as u64 - 1);
        let limit = u64::from(s.limit);
        if !code && ty & x86::segment::TYPE_EC != 0 {
            // Expand-down: valid offsets are limit+1 ..= 0xFFFF or 0xFFFFFFFF.
            let top = if s.big() { 0xFFFF_FFFF } else { 0xFFFF };
            if offset <= limit || last > top || last < offset {
                return fault;
            }
        } else if last > limit || last < offset {
            return fault;
        }
        Ok(())
    }

    /// Pushes a value of `size` bytes on the stack.
    pub(crate) fn push(&mut self, size: usize, value: u64) -> Ex<()> {
        let ss = self.s.stack_size();
        let rsp = self.s.gpr[4];
        let new = Self::mask_addr(u32::from(ss), rsp.wrapping_sub(size as u64));
        self.write_mem(Seg::Ss, new, size, value)?;
        self.set_rsp(ss, new);
        Ok(())
    }

    /// Pops a value of `size` bytes from the stack.
    pub(crate) fn pop(&mut self, size: usize) -> Ex<u64> {
        let ss = self.s.stack_size();
        let rsp = Self::mask_addr(u32::from(ss), self.s.gpr[4]);
        let v = self.read_mem(Seg::Ss, rsp, size)?;
        self.set_rsp(ss, rsp.wrapping_add(size as u64));
        Ok(v)
    }

    /// Writes RSP with the stack-size rule (a 16-bit stack keeps RSP's upper bits).
    pub(crate) fn set_rsp(&mut self, stack_size: u8, value: u64) {
        self.s.gpr[4] = match stack_size {
            8 => value,
            4 => value & 0xFFFF_FFFF,
            _ => (self.s.gpr[4] & !0xFFFF) | (value & 0xFFFF),
        };
    }

    // ---- fetch -----------------------------------------------------------

    /// Fetches (from the decode cache when possible) the instruction at RIP.
    /// Returns it with the host-physical address of its cache slot when it
    /// must be put back there after execution.
    #[inline]
    pub(crate) fn fetch(&mut self) -> Ex<(Box<Op>, Option<u64>)> {
        if self.mem.has_dirty_code() {
            if let Some(pages) = self.mem.take_dirty_code() {
                for p in pages {
                    self.code.invalidate(p);
                }
            }
        }
        let rip = self.s.rip;
        // Fast path: still inside the page the previous instruction came
        // from, with the same translation, code segment and privilege.
        if let Some(hpa) = self.fetch_page_hpa(rip) {
            if let Some(op) = self.code.take(hpa) {
                return Ok((op, Some(hpa)));
            }
        }
        self.fetch_slow(rip)
    }

    /// Host-physical address of `rip` when it lies in the page the previous
    /// instruction came from, looked up with the same TLB and decode-cache
    /// generations, code segment and privilege (the fast fetch path).
    #[inline]
    pub(crate) fn fetch_page_hpa(&self, rip: u64) -> Option<u64> {
        let off = rip.wrapping_sub(self.fetch_ip_base);
        // The sum is formed only once `off` is known to lie in the page.
        if off < 4096
            && self.fetch_gen == (self.tlb.gen, self.code.gen)
            && self.fetch_key == self.fetch_key_now()
        {
            Some(self.fetch_hpa_base + off)
        } else {
            None
        }
    }

    /// What the fast fetch path depends on besides the TLB: CS base and
    /// attributes, and CPL.
    #[inline]
    pub(crate) fn fetch_key_now(&self) -> (u64, u32, u8) {
        let cs = &self.s.seg[Seg::Cs as usize];
        (cs.base, cs.ar, self.s.cpl())
    }

    /// Translates `rip` for an instruction fetch and, when its page is
    /// already decoded for the current mode, points the fast fetch path at
    /// that page. The host-physical address, and whether the page was decoded.
    fn translate_fetch(&mut self, rip: u64) -> Ex<(u64, bool)> {
        let la = self.linear(Seg::Cs, rip);
        self.check_canonical(la, Seg::Cs)?;
        let user = self.s.cpl() == 3;
        let hpa = self.translate_as(la, Access::Fetch, user)?;
        let decoded = self.code.page_matches(hpa, rip, self.s.bitness());
        if decoded {
            self.note_fetch_page(hpa, rip);
        }
        Ok((hpa, decoded))
    }

    fn fetch_slow(&mut self, rip: u64) -> Ex<(Box<Op>, Option<u64>)> {
        let bitness = self.s.bitness();
        let (hpa, decoded) = self.translate_fetch(rip)?;
        if decoded {
            if let Some(op) = self.code.take(hpa) {
                return Ok((op, Some(hpa)));
            }
        }
        let off = hpa & 0xFFF;
        let in_page = 4096 - off as usize;
        let mut buf = [0u8; 15];
        let n = in_page.min(15);
        match self.mem.slice(hpa, n) {
            Ok(s) => buf[..n].copy_from_slice(s),
            Err(_) => buf[..n].fill(0xFF),
        }
        let mut avail = n;
        if n < 15 {
            // Near the end of the page: the instruction may continue on the
            // next linear page. Try the bytes of this page first.
            let (probe, cached) = self.code.decode(hpa, rip, bitness, &buf[..n], n);
            if !probe.ins.is_invalid() {
                return Ok(self.cached(probe, cached, hpa, rip));
            }
            let next = self.linear(Seg::Cs, rip).wrapping_add(n as u64);
            let hpa2 = self.translate_as(next, Access::Fetch, self.s.cpl() == 3)?;
            for (k, b) in buf[n..].iter_mut().enumerate() {
                *b = self.phys_read(hpa2 + k as u64, 1) as u8;
            }
            avail = 15;
        }
        let (op, cached) = self.code.decode(hpa, rip, bitness, &buf[..avail], in_page);
        if op.ins.is_invalid() {
            return Err(Exception::ud().into());
        }
        Ok(self.cached(op, cached, hpa, rip))
    }

    /// Notes a freshly decoded op's page for the fast path.
    fn cached(&mut self, op: Box<Op>, cached: bool, hpa: u64, rip: u64) -> (Box<Op>, Option<u64>) {
        if !cached {
            return (op, None);
        }
        self.mem.mark_code(hpa >> 12);
        self.note_fetch_page(hpa, rip);
        (op, Some(hpa))
    }

    /// Points the fast fetch path at the page holding `rip` (at `hpa`).
    fn note_fetch_page(&mut self, hpa: u64, rip: u64) {
        let off = hpa & 0xFFF;
        self.fetch_ip_base = rip.wrapping_sub(off);
        self.fetch_hpa_base = hpa - off;
        self.fetch_gen = (self.tlb.gen, self.code.gen);
        self.fetch_key = self.fetch_key_now();
    }

    /// Host-physical address of `rip` when its page is already decoded for
    /// the current mode, pointing the fast fetch path at that page: how a
    /// block that branched to another page goes on without the full fetch.
    /// Nothing is delivered here: a fault, or a page not decoded yet, gives
    /// `None` and the ordinary [`Self::fetch`] meets it again.
    pub(crate) fn enter_fetch_page(&mut self, rip: u64) -> Option<u64> {
        if let Some(hpa) = self.fetch_page_hpa(rip) {
            return Some(hpa);
        }
        match self.translate_fetch(rip) {
            Ok((hpa, true)) => Some(hpa),
            _ => None,
        }
    }

    /// Clears the decode cache and TLB (used when hv rewrites memory wholesale).
    pub fn flush_caches(&mut self) {
        self.code.clear();
        self.tlb.flush();
    }

    /// Memory operand offset (effective address) of `instr`, masked to its address size.
    #[inline]
    pub(crate) fn effective_address(&self, instr: &Instruction) -> u64 {
        let base = instr.memory_base();
        let index = instr.memory_index();
        let mut ea = instr.memory_displacement64();
        let mut asize = 0;
        if base != Register::None {
            if base != Register::RIP && base != Register::EIP {
                ea = ea.wrapping_add(self.reg(base));
            }
            asize = base.size();
        }
        if index != Register::None {
            ea = ea.wrapping_add(
                self.reg(index)
                    .wrapping_mul(u64::from(instr.memory_index_scale())),
            );
            asize = index.size();
        }
        if asize == 0 {
            asize = match instr.memory_displ_size() {
                2 => 2,
                4 if !self.s.mode64() => 4,
                _ => 8,
            };
        }
        Self::mask_addr(asize as u32, ea)
    }

    /// Effective address of a memory operand resolved at decode time.
    #[inline(always)]
    pub(crate) fn ea(&self, m: &crate::decode::MemRef) -> u64 {
        let mut ea = m.disp;
        if m.base < 16 {
            ea = ea.wrapping_add(self.s.gpr[m.base as usize]);
        }
        if m.index < 16 {
            ea = ea.wrapping_add(self.s.gpr[m.index as usize].wrapping_mul(u64::from(m.scale)));
        }
        ea & m.mask
    }

    /// The segment of a memory operand.
    #[inline]
    pub(crate) fn mem_seg(instr: &Instruction) -> Seg {
        seg_of(instr.memory_segment())
    }
}

/// Where one page's part of a data access goes.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// Host-physical memory at this address.
    Memory(u64),
    /// MMIO at this guest-physical address (while an instruction is emulated).
    Mmio(u64),
}

/// Maps an iced segment register to [`Seg`].
pub(crate) fn seg_of(r: Register) -> Seg {
    match r {
        Register::ES => Seg::Es,
        Register::CS => Seg::Cs,
        Register::SS => Seg::Ss,
        Register::FS => Seg::Fs,
        Register::GS => Seg::Gs,
        _ => Seg::Ds,
    }
}

/// Advances virtual time.
impl SoftCpu {
    #[inline]
    pub(crate) fn tick(&mut self, cycles: u64) {
        self.cycles = self.cycles.wrapping_add(cycles);
    }

    /// The time-stamp counter the guest sees (before any TSC offset).
    pub(crate) fn tsc(&self) -> u64 {
        self.cycles.wrapping_add(self.s.msr.tsc_adjust)
    }

    /// Whether the kick line is raised (and lowers it if `take`).
    pub(crate) fn ext_intr_pending(&self) -> bool {
        self.ext_intr.load(Ordering::Acquire)
    }

    /// Lowers the kick line.
    pub(crate) fn ack_ext_intr(&self) {
        self.ext_intr.store(false, Ordering::Release);
    }

    /// Reports an unexpected internal condition as #UD rather than panicking.
    pub(crate) fn undefined<T>(&self) -> Ex<T> {
        Err(Stop::Exception(Exception::ud()))
    }
}
