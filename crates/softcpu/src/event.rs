//! Event delivery through the IDT (SDM Vol. 3A §6.12, §6.14), the
//! double-fault rules (§6.15 vector 8, Table 6-5), and the VMX decisions that
//! turn events into VM exits (Vol. 3C §26.2, §28.2.3, §28.2.4).

use crate::cpu::SoftCpu;
use crate::fault::{Ex, Exception, ExitInfo, Stop};
use crate::state::{Seg, Segment};
use x86::exception::{self as vec, Class};
use x86::segment::{SYS_INT_GATE, SYS_TRAP_GATE, TYPE_ACCESSED, TYPE_EC};
use x86::vmx::{exit_reason, intr_info};

/// How an event arose (the interruption types of SDM Vol. 3C Table 25-17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// External interrupt.
    External,
    /// Non-maskable interrupt.
    Nmi,
    /// Hardware exception (faults, traps, aborts).
    HardwareException,
    /// INT n.
    SoftwareInterrupt,
    /// INT1 (ICEBP).
    PrivilegedSoftwareException,
    /// INT3 or INTO.
    SoftwareException,
}

impl EventKind {
    fn vmx_type(self) -> u32 {
        match self {
            EventKind::External => intr_info::TYPE_EXT_INTR,
            EventKind::Nmi => intr_info::TYPE_NMI,
            EventKind::HardwareException => intr_info::TYPE_HW_EXCEPTION,
            EventKind::SoftwareInterrupt => intr_info::TYPE_SW_INTR,
            EventKind::PrivilegedSoftwareException => intr_info::TYPE_PRIV_SW_EXCEPTION,
            EventKind::SoftwareException => intr_info::TYPE_SW_EXCEPTION,
        }
    }

    /// INT n, INT3 and INTO check the gate's DPL against CPL; INT1 and
    /// every other event do not (SDM Vol. 3A §6.12.1.1).
    fn checks_gate_dpl(self) -> bool {
        matches!(
            self,
            EventKind::SoftwareInterrupt | EventKind::SoftwareException
        )
    }

    fn is_software(self) -> bool {
        matches!(
            self,
            EventKind::SoftwareInterrupt
                | EventKind::SoftwareException
                | EventKind::PrivilegedSoftwareException
        )
    }
}

/// An event to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Vector.
    pub vector: u8,
    /// How it arose.
    pub kind: EventKind,
    /// Length of the instruction that raised a software event.
    pub instruction_len: u32,
    /// Error code pushed by the handler's frame.
    pub error_code: Option<u32>,
    /// CR2 value for #PF.
    pub fault_address: Option<u64>,
    /// For a #DB the processor raised: the DR6 status bits (B0–B3, BD, BS)
    /// it reports, written to DR6 when delivery starts or to the exit
    /// qualification when the #DB causes a VM exit instead (SDM Vol. 3C
    /// §27.1, Table 27-1: such an exit leaves DR6 unchanged).
    pub debug_status: u64,
}

impl Event {
    /// An event without an error code.
    pub fn new(vector: u8, kind: EventKind, instruction_len: u32) -> Self {
        Event {
            vector,
            kind,
            instruction_len,
            error_code: None,
            fault_address: None,
            debug_status: 0,
        }
    }

    /// A #DB raised by the processor with DR6 status bits `status`.
    pub fn debug(status: u64) -> Self {
        Event {
            debug_status: status,
            ..Event::new(vec::DB, EventKind::HardwareException, 0)
        }
    }

    /// A hardware exception.
    pub fn exception(e: Exception) -> Self {
        Event {
            vector: e.vector,
            kind: EventKind::HardwareException,
            instruction_len: 0,
            error_code: e.error_code,
            fault_address: None,
            debug_status: 0,
        }
    }

    /// Interruption information in the VMCS format.
    pub fn vmx_info(&self) -> u32 {
        intr_info::make(self.vector, self.kind.vmx_type(), self.error_code.is_some())
    }

    /// Whether an error code for a fault during its delivery has EXT set:
    /// cleared only for INT n, INT3 and INTO (SDM Vol. 3A §6.13), so INT1
    /// counts as external.
    fn external(&self) -> bool {
        !self.kind.checks_gate_dpl()
    }
}

impl SoftCpu {
    /// Converts a stop from instruction execution into its event; a VM exit
    /// or a power-off is returned as it is.
    pub(crate) fn event_of(stop: Stop) -> Result<Event, Stop> {
        match stop {
            // The only #DB an instruction raises as a fault is general
            // detection (SDM Vol. 3B §18.2.4), reported with DR6.BD.
            Stop::Exception(e) if e.vector == vec::DB => Ok(Event::debug(crate::debug::DR6_BD)),
            Stop::Exception(e) => Ok(Event::exception(e)),
            Stop::PageFault { addr, error_code } => Ok(Event {
                fault_address: Some(addr),
                ..Event::exception(Exception::with_code(vec::PF, error_code))
            }),
            other => Err(other),
        }
    }

    /// Raises an event from INT n / INT3 / INTO / INT1 and continues at its handler.
    pub(crate) fn raise_instruction_event(&mut self, ev: Event) -> Ex<()> {
        self.raise(ev)?;
        self.next_rip = self.s.rip;
        Ok(())
    }

    /// Whether the exception bitmap selects this exception (SDM Vol. 3C §26.2).
    fn exception_exits(&self, ev: &Event) -> bool {
        if !self.vmx.non_root {
            return false;
        }
        let exception = matches!(
            ev.kind,
            EventKind::HardwareException
                | EventKind::SoftwareException
                | EventKind::PrivilegedSoftwareException
        );
        if !exception {
            return false;
        }
        let bit = self.vmx.ctl.exception_bitmap & (1 << ev.vector) != 0;
        if ev.vector == vec::PF {
            let ec = ev.error_code.unwrap_or(0);
            let matches = ec & self.vmx.ctl.pf_mask == self.vmx.ctl.pf_match;
            return bit == matches;
        }
        bit
    }

    /// Delivers an event, applying the double-fault rules and the VMX exits
    /// that replace delivery. On success RIP is at the handler.
    pub(crate) fn raise(&mut self, first: Event) -> Ex<()> {
        self.raise_from(first, false)
    }

    /// Delivers an event VM entry injects: the exception bitmap does not
    /// apply to it (SDM Vol. 3C §27.6.1: an injected event is delivered as if
    /// it had occurred normally, without consulting the bitmap), but it does
    /// to any exception its delivery raises.
    pub(crate) fn raise_injected(&mut self, first: Event) -> Ex<()> {
        self.raise_from(first, true)
    }

    fn raise_from(&mut self, first: Event, injected: bool) -> Ex<()> {
        self.materialize_flags();
        let mut skip_bitmap = injected;
        // The last instruction boundary was at (or within one cycle before)
        // the start of this delivery sequence.
        let boundary = self.cycles;
        let mut ev = first;
        let mut outer: Option<Event> = None;
        loop {
            // Only a notify exit or the loss of power ends a delivery loop
            // that never reaches an instruction boundary.
            if self.power_cut() {
                return Err(Stop::PowerOff);
            }
            if self.s.real_mode() {
                // Real-address mode has no error codes: none is pushed, and
                // none is reported with an exit (SDM Vol. 3A §20.1.4; Vol. 3C
                // §28.2.2: the error-code-valid bit is 0 when CR0.PE is 0).
                ev.error_code = None;
            }
            if !std::mem::take(&mut skip_bitmap) && self.exception_exits(&ev) {
                let mut info = ExitInfo::new(exit_reason::EXCEPTION_NMI, 0);
                info.intr_info = ev.vmx_info();
                // A fault of an IRET that unblocked NMIs (bit 12 is
                // undefined for #DF, and a fault of the delivery that
                // followed is no fault of the IRET; SDM Vol. 3C §28.2.2).
                if self.iret_unblocked_nmi && outer.is_none() && ev.vector != vec::DF {
                    info.intr_info |= intr_info::NMI_UNBLOCKING_IRET;
                }
                info.intr_error_code = ev.error_code.unwrap_or(0);
                if ev.vector == vec::PF {
                    info.qualification = ev.fault_address.unwrap_or(0);
                }
                if ev.vector == vec::DB {
                    info.qualification = ev.debug_status;
                }
                if ev.kind.is_software() {
                    info.instruction_len = ev.instruction_len;
                }
                self.vectoring = outer;
                return Err(Stop::VmExit(info));
            }
            // Each delivery attempt takes virtual time; with notify VM exiting
            // the CPU leaves once the time since the last boundary exceeds
            // the window plus the model's threshold (SDM Vol. 3C §26.2, notify
            // VM exiting; exit reason 75 with this event as IDT-vectoring
            // information).
            self.tick(u64::from(self.model.delivery_cycles));
            if let Some(info) = self.notify_due(boundary) {
                self.vectoring = Some(ev);
                return Err(Stop::VmExit(info));
            }
            self.vectoring = Some(ev);
            if ev.debug_status != 0 {
                self.report_debug(ev.debug_status);
            }
            let result = self.deliver(&ev);
            self.vectoring = None;
            let second = match result {
                Ok(()) => {
                    // A data breakpoint hit by the delivery's own stack writes
                    // is a trap reported before the handler's first
                    // instruction: another delivery, still without an
                    // instruction boundary (the CVE-2015-8104 loop).
                    let hits = std::mem::take(&mut self.debug.pending);
                    if hits == 0 {
                        return Ok(());
                    }
                    outer = None;
                    ev = Event::debug(hits);
                    continue;
                }
                Err(Stop::VmExit(info)) => {
                    self.vectoring = Some(ev);
                    return Err(Stop::VmExit(info));
                }
                Err(stop) => Self::event_of(stop)?,
            };
            // SDM Vol. 3A Table 6-5: conditions for generating a double fault.
            if ev.kind == EventKind::HardwareException {
                let first_class = vec::class(ev.vector);
                let second_class = vec::class(second.vector);
                // SDM Vol. 3A §6.15, interrupt 8: a contributory exception or
                // a page fault while calling the #DF handler is a shutdown; a
                // benign one is delivered like any other.
                if first_class == Class::DoubleFault
                    && matches!(
                        second_class,
                        Class::Contributory | Class::PageFault | Class::DoubleFault
                    )
                {
                    self.vectoring = None;
                    return Err(Stop::VmExit(ExitInfo::new(exit_reason::TRIPLE_FAULT, 0)));
                }
                let df = matches!(
                    (first_class, second_class),
                    (Class::Contributory, Class::Contributory)
                        | (Class::PageFault, Class::Contributory)
                        | (Class::PageFault, Class::PageFault)
                );
                if df {
                    // A #PF that turns into #DF still loads CR2 (SDM Vol. 3A §6.15, vector 14).
                    if let Some(addr) = second.fault_address {
                        self.s.cr2 = addr;
                    }
                    outer = Some(ev);
                    ev = Event::exception(Exception::with_code(vec::DF, 0));
                    continue;
                }
            }
            // Benign combinations are delivered one after the other.
            outer = Some(ev);
            ev = second;
        }
    }

    /// The cycle count at which a notify VM exit is due for a stretch
    /// without an instruction boundary that began at `boundary`: the first
    /// at which more than the window plus the model's threshold of
    /// crystal-clock cycles have passed (TSC cycles × denominator /
    /// numerator, CPUID.15H). `None` while notify VM exiting is off.
    pub(crate) fn notify_deadline(&self, boundary: u64) -> Option<u64> {
        if !self.vmx.proc2(x86::vmx::proc2::NOTIFY_VM_EXITING) {
            return None;
        }
        let window = u64::from(self.vmx.ctl.notify_window) + u64::from(self.model.notify_threshold);
        if self.model.tsc_ratio_denominator == 0 {
            return None;
        }
        // floor(tsc * den / num) > window  <=>  tsc >= ceil((window + 1) * num / den).
        Some(boundary.saturating_add(self.crystal_to_tsc(window + 1)))
    }

    /// TSC cycles that span at least `crystal` crystal-clock cycles:
    /// ceil(crystal × numerator / denominator) of CPUID.15H (a zero ratio
    /// term counts as 1).
    pub(crate) fn crystal_to_tsc(&self, crystal: u64) -> u64 {
        let num = u128::from(self.model.tsc_ratio_numerator.max(1));
        let den = u128::from(self.model.tsc_ratio_denominator.max(1));
        u64::try_from((u128::from(crystal) * num).div_ceil(den)).unwrap_or(u64::MAX)
    }

    /// The notify VM exit, if notify VM exiting is on and its deadline for
    /// the boundary at `boundary` has come.
    fn notify_due(&mut self, boundary: u64) -> Option<ExitInfo> {
        let deadline = self.notify_deadline(boundary)?;
        (self.cycles >= deadline).then(|| self.notify_exit())
    }

    /// The notify VM exit's information (SDM Vol. 3C §28.2.1, exit reason
    /// 75): context invalid when a test armed it, NMI unblocking by IRET.
    pub(crate) fn notify_exit(&mut self) -> ExitInfo {
        let mut q = 0;
        if std::mem::take(&mut self.notify_invalid_armed) {
            q |= x86::vmx::qualification::NOTIFY_CONTEXT_INVALID;
        }
        if self.iret_unblocked_nmi {
            q |= x86::vmx::qualification::NOTIFY_NMI_UNBLOCKING_IRET;
        }
        ExitInfo::new(exit_reason::NOTIFY, q)
    }

    /// One attempt at delivering `ev` through the IDT; any fault it raises is
    /// returned with the architectural state unchanged.
    fn deliver(&mut self, ev: &Event) -> Ex<()> {
        let saved = self.s.clone();
        let r = if self.s.cr0 & x86::cr::CR0_PE == 0 {
            self.deliver_real(ev)
        } else if self.s.long_mode() {
            self.deliver_long(ev)
        } else {
            self.deliver_protected(ev)
        };
        if r.is_err() {
            self.s = saved;
        } else {
            if let Some(addr) = ev.fault_address {
                self.s.cr2 = addr;
            }
            if ev.kind == EventKind::Nmi {
                self.nmi_blocked = true;
            }
            if ev.vector == vec::DB && ev.kind == EventKind::HardwareException {
                // Entering the #DB handler clears DR7.GD (SDM Vol. 3B §18.2.4).
                self.s.dr[7] &= !crate::debug::DR7_GD;
            }
        }
        r
    }

    /// RFLAGS as pushed in the handler's frame: RF is 1 for fault-class
    /// exceptions other than instruction-breakpoint #DB (SDM Vol. 3B §18.3.1.1).
    fn pushed_flags(&self, ev: &Event) -> u64 {
        let fault = ev.kind == EventKind::HardwareException
            && matches!(
                ev.vector,
                vec::DE
                    | vec::BR
                    | vec::UD
                    | vec::NM
                    | vec::TS
                    | vec::NP
                    | vec::SS
                    | vec::GP
                    | vec::PF
                    | vec::MF
                    | vec::AC
                    | vec::XM
            );
        if fault {
            self.s.rflags | x86::rflags::RF
        } else {
            self.s.rflags
        }
    }

    fn return_rip(&self, ev: &Event) -> u64 {
        if ev.kind.is_software() {
            self.s.rip.wrapping_add(u64::from(ev.instruction_len))
        } else {
            self.s.rip
        }
    }

    /// Real-address-mode delivery through the interrupt vector table (SDM
    /// Vol. 3A §20.1.4, Vol. 2A INT n "REAL-ADDRESS-MODE"): the IDTR base
    /// locates a table of 4-byte offset:segment entries; an entry beyond the
    /// IDTR limit is #GP (which, delivered the same way, may become #DF and a
    /// triple fault). FLAGS, CS and IP are pushed as three words on the
    /// current stack (#SS if it has no room, the state untouched), no error
    /// code; IF, TF and AC are cleared, and CS:IP is loaded from the entry
    /// with CS's base = selector * 16 (CS keeps its hidden limit and
    /// attributes, as any real-mode CS load does).
    fn deliver_real(&mut self, ev: &Event) -> Ex<()> {
        let off = u64::from(ev.vector) * 4;
        if off + 3 > u64::from(self.s.idtr.limit) {
            return Err(Exception::gp(0).into());
        }
        let entry = self.read_linear(self.s.idtr.base.wrapping_add(off), 4, false)?;
        let ret = self.return_rip(ev);
        let flags = self.pushed_flags(ev);
        self.push(2, flags & 0xFFFF)?;
        self.push(2, u64::from(self.s.seg[Seg::Cs as usize].selector))?;
        self.push(2, ret & 0xFFFF)?;
        self.s.rflags &= !(x86::rflags::IF | x86::rflags::TF | x86::rflags::AC | x86::rflags::RF);
        let cs = (entry >> 16) as u16;
        self.s.seg[Seg::Cs as usize].selector = cs;
        self.s.seg[Seg::Cs as usize].base = u64::from(cs) << 4;
        self.s.rip = entry & 0xFFFF;
        Ok(())
    }

    /// Reads and checks the gate; returns (selector, offset, is_interrupt_gate, gate_size).
    fn read_gate(&mut self, ev: &Event, long: bool) -> Ex<(u16, u64, bool, usize, u8)> {
        let entry_size: u64 = if long { 16 } else { 8 };
        let off = u64::from(ev.vector) * entry_size;
        let ext = ev.external();
        if off + entry_size - 1 > u64::from(self.s.idtr.limit) {
            return Err(Self::idt_fault(ev.vector, ext, Self::GP_VECTOR).into());
        }
        let addr = self.table_linear(self.s.idtr.base.wrapping_add(off));
        let lo = self.read_linear(addr, 8, false)?;
        let hi = if long {
            self.read_linear(addr.wrapping_add(8), 8, false)?
        } else {
            0
        };
        let ty = ((lo >> 40) & 0xF) as u32;
        let dpl = ((lo >> 45) & 3) as u8;
        let present = lo & (1 << 47) != 0;
        let (is_int, size) = match ty {
            SYS_INT_GATE => (true, if long { 8 } else { 4 }),
            SYS_TRAP_GATE => (false, if long { 8 } else { 4 }),
            6 if !long => (true, 2),
            7 if !long => (false, 2),
            _ => return Err(Self::idt_fault(ev.vector, ext, Self::GP_VECTOR).into()),
        };
        // INT n, INT3 and INTO check the gate DPL against CPL (SDM §6.12.1.1).
        if ev.kind.checks_gate_dpl() && dpl < self.s.cpl() {
            return Err(Self::idt_fault(ev.vector, ext, Self::GP_VECTOR).into());
        }
        if !present {
            return Err(Self::idt_fault(ev.vector, ext, vec::NP).into());
        }
        let sel = (lo >> 16) as u16;
        let mut offset = (lo & 0xFFFF) | ((lo >> 32) & 0xFFFF_0000);
        if long {
            offset |= (hi & 0xFFFF_FFFF) << 32;
        }
        let ist = (lo >> 32) as u8 & 7;
        Ok((sel, offset, is_int, size, if long { ist } else { 0 }))
    }

    /// Checks the handler's code segment; returns its descriptor and new CPL.
    fn handler_cs(&mut self, sel: u16, ext: bool) -> Ex<(Segment, u8)> {
        let code = u32::from(sel & !3) | u32::from(ext);
        if sel & !3 == 0 {
            return Err(Exception::gp(u32::from(ext)).into());
        }
        let d = self.read_descriptor_or(sel, Exception::gp(code))?;
        let cpl = self.s.cpl();
        if !d.is_code() || d.dpl() > cpl {
            return Err(Exception::gp(code).into());
        }
        if !d.present() {
            return Err(Exception::with_code(vec::NP, code).into());
        }
        let conforming = d.seg.ar & TYPE_EC != 0;
        let new_cpl = if conforming { cpl } else { d.dpl() };
        let mut seg = d.seg;
        seg.ar |= TYPE_ACCESSED;
        seg.selector = (sel & !3) | u16::from(new_cpl);
        Ok((seg, new_cpl))
    }

    /// Pushes one frame value on the new stack at `*sp` in segment base `base`.
    fn push_frame(
        &mut self,
        base: u64,
        sp: &mut u64,
        size: usize,
        v: u64,
        user: bool,
        mask: u64,
    ) -> Ex<()> {
        *sp = sp.wrapping_sub(size as u64) & mask;
        let la = if self.s.mode64() || mask == u64::MAX {
            *sp
        } else {
            base.wrapping_add(*sp) & 0xFFFF_FFFF
        };
        self.write_linear(la, size, v, user)
    }

    fn clear_flags_on_delivery(&mut self, interrupt_gate: bool) {
        let mut clear = x86::rflags::TF | x86::rflags::NT | x86::rflags::RF | x86::rflags::VM;
        if interrupt_gate {
            clear |= x86::rflags::IF;
        }
        self.s.rflags &= !clear;
    }

    /// Protected-mode delivery (SDM Vol. 3A §6.12.1).
    fn deliver_protected(&mut self, ev: &Event) -> Ex<()> {
        let ext = ev.external();
        let (sel, offset, is_int, size, _) = self.read_gate(ev, false)?;
        let (cs, new_cpl) = self.handler_cs(sel, ext)?;
        let cpl = self.s.cpl();
        let ret = self.return_rip(ev);
        let old_flags = self.pushed_flags(ev);
        let old_cs = u64::from(self.s.seg[Seg::Cs as usize].selector);
        let old_ss = self.s.seg[Seg::Ss as usize];
        let old_sp = self.s.gpr[4];
        let user = new_cpl == 3;
        let (ss_base, mut sp, mask) = if new_cpl < cpl {
            // Inner privilege: stack from the 32-bit TSS (SDM Figure 8-2).
            let (ss, esp) = self.tss_stack32(new_cpl, ext)?;
            let mask = if ss.big() { 0xFFFF_FFFF } else { 0xFFFF };
            self.s.seg[Seg::Ss as usize] = ss;
            let base = ss.base;
            let mut sp = esp & mask;
            self.push_frame(base, &mut sp, size, u64::from(old_ss.selector), user, mask)?;
            self.push_frame(base, &mut sp, size, old_sp, user, mask)?;
            (base, sp, mask)
        } else {
            let mask = if old_ss.big() { 0xFFFF_FFFF } else { 0xFFFF };
            (old_ss.base, old_sp & mask, mask)
        };
        self.push_frame(ss_base, &mut sp, size, old_flags, user, mask)?;
        self.push_frame(ss_base, &mut sp, size, old_cs, user, mask)?;
        self.push_frame(ss_base, &mut sp, size, ret, user, mask)?;
        if let Some(code) = ev.error_code {
            self.push_frame(ss_base, &mut sp, size, u64::from(code), user, mask)?;
        }
        let target = if size == 2 {
            offset & 0xFFFF
        } else {
            offset & 0xFFFF_FFFF
        };
        if target > u64::from(cs.limit) {
            return Err(Exception::gp(u32::from(ext)).into());
        }
        self.s.gpr[4] = if mask == 0xFFFF {
            (self.s.gpr[4] & !0xFFFF) | sp
        } else {
            sp
        };
        self.s.seg[Seg::Cs as usize] = cs;
        self.clear_flags_on_delivery(is_int);
        self.s.rip = target;
        Ok(())
    }

    /// IA-32e mode delivery (SDM Vol. 3A §6.14).
    fn deliver_long(&mut self, ev: &Event) -> Ex<()> {
        let ext = ev.external();
        let (sel, offset, is_int, _, ist) = self.read_gate(ev, true)?;
        let (cs, new_cpl) = self.handler_cs(sel, ext)?;
        if !cs.long() || cs.big() {
            return Err(Exception::gp(u32::from(sel & !3) | u32::from(ext)).into());
        }
        let cpl = self.s.cpl();
        let ret = self.return_rip(ev);
        let old_flags = self.pushed_flags(ev);
        let old_cs = u64::from(self.s.seg[Seg::Cs as usize].selector);
        let old_ss = u64::from(self.s.seg[Seg::Ss as usize].selector);
        let old_sp = self.s.gpr[4];
        let mut sp = if ist != 0 || new_cpl < cpl {
            self.tss_rsp64(new_cpl, ist, ext)?
        } else {
            old_sp
        };
        if !x86::address::is_canonical(sp) {
            return Err(Exception::with_code(vec::SS, u32::from(ext)).into());
        }
        sp &= !0xF;
        let user = new_cpl == 3;
        for v in [old_ss, old_sp, old_flags, old_cs, ret] {
            self.push_frame(0, &mut sp, 8, v, user, u64::MAX)?;
        }
        if let Some(code) = ev.error_code {
            self.push_frame(0, &mut sp, 8, u64::from(code), user, u64::MAX)?;
        }
        if !x86::address::is_canonical(offset) {
            return Err(Exception::gp(u32::from(ext)).into());
        }
        if new_cpl < cpl {
            // SS becomes a null selector with RPL = new CPL (SDM §6.14.4).
            let ss = &mut self.s.seg[Seg::Ss as usize];
            ss.selector = u16::from(new_cpl);
            ss.ar = x86::segment::AR_UNUSABLE | x86::segment::ar_dpl(new_cpl);
            ss.base = 0;
        }
        self.s.gpr[4] = sp;
        self.s.seg[Seg::Cs as usize] = cs;
        self.clear_flags_on_delivery(is_int);
        self.s.rip = offset;
        Ok(())
    }

    /// IRET / IRETD / IRETQ (SDM Vol. 2A IRET), including the NMI-unblocking rule.
    pub(crate) fn iret(&mut self, size: usize) -> Ex<()> {
        let saved = self.s.clone();
        let r = self.iret_inner(size);
        if r.is_err() {
            self.s = saved;
        }
        // IRET ends NMI blocking even when it faults (SDM Vol. 3A §6.7.1:
        // the NMIs are unmasked before the fault's handler is invoked). A
        // VM exit for the fault, or a notify exit during the rest of the
        // instruction, reports it ("NMI unblocking due to IRET", bit 12 of
        // the exit interruption information or qualification; Vol. 3C
        // §28.2.2, §28.2.3).
        self.iret_unblocked_nmi = self.nmi_blocked;
        self.nmi_blocked = false;
        match r {
            Err(Stop::VmExit(mut info))
                if info.reason == exit_reason::EPT_VIOLATION && self.iret_unblocked_nmi =>
            {
                info.qualification |= x86::vmx::qualification::NOTIFY_NMI_UNBLOCKING_IRET;
                Err(Stop::VmExit(info))
            }
            r => r,
        }
    }

    fn iret_inner(&mut self, size: usize) -> Ex<()> {
        if self.s.cr0 & x86::cr::CR0_PE == 0 {
            let ip = self.pop(size)?;
            let cs = self.pop(size)? as u16;
            let fl = self.pop(size)?;
            self.far_jump_privileged(cs, ip, None)?;
            self.write_rflags_popf(fl, size);
            return Ok(());
        }
        if self.s.rflags & x86::rflags::NT != 0 {
            // IA-32e mode: #GP(0) (SDM Vol. 2A IRET). Outside it this would be
            // a task return, which is not modelled: #GP(0) as well.
            return Err(Exception::gp(0).into());
        }
        let ip = self.pop(size)?;
        let cs = self.pop(size)? as u16;
        let fl = self.pop(size)?;
        let rpl = (cs & 3) as u8;
        let cpl = self.s.cpl();
        if rpl < cpl {
            return Err(Exception::gp(u32::from(cs & !3)).into());
        }
        if self.s.mode64() || rpl > cpl {
            let sp = self.pop(size)?;
            let ss = self.pop(size)? as u16;
            if rpl > cpl {
                self.far_jump_privileged(cs, ip, Some((ss, sp)))?;
            } else {
                self.far_jump(cs, ip)?;
                if ss & !3 == 0 && self.s.mode64() {
                    let s = &mut self.s.seg[Seg::Ss as usize];
                    s.selector = ss;
                    s.ar = x86::segment::AR_UNUSABLE | x86::segment::ar_dpl(cpl);
                } else {
                    self.load_segment_checked(Seg::Ss, ss)?;
                }
            }
            self.s.gpr[4] = match size {
                8 => sp,
                4 => sp & 0xFFFF_FFFF,
                _ => (self.s.gpr[4] & !0xFFFF) | (sp & 0xFFFF),
            };
        } else {
            self.far_jump(cs, ip)?;
        }
        // Flags are restored with the privilege of the old CPL (SDM IRET).
        let old_cpl_flags = self.s.rflags;
        let iopl = x86::rflags::iopl(old_cpl_flags);
        let mut writable = x86::rflags::STATUS
            | x86::rflags::TF
            | x86::rflags::DF
            | x86::rflags::NT
            | x86::rflags::AC
            | x86::rflags::ID
            | x86::rflags::RF
            | x86::rflags::VIF
            | x86::rflags::VIP;
        if cpl <= iopl {
            writable |= x86::rflags::IF;
        }
        if cpl == 0 {
            writable |= x86::rflags::IOPL;
        }
        writable &= super::exec::flags::mask(size);
        self.s.rflags = (old_cpl_flags & !writable) | (fl & writable) | x86::rflags::FIXED1;
        Ok(())
    }
}
