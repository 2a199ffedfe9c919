//! Debug access to a soft vCPU between two `run()`s, for a debugger in
//! userspace (the GDB stub): the registers of whichever guest runs (L1 or
//! L2), guest memory by physical address or through the guest's page
//! tables, the VMCS fields by name (vmcs01, and vmcs12 and vmcs02 while L2
//! runs), the notify state and the exit counts; single-step, breakpoints
//! and watchpoints through the monitor trap flag (a VM exit after every
//! instruction while any is armed, invisible to the guest). Nothing here
//! prints.

use super::user::ToUser;
use super::{Goes, SoftVcpu};
use crate::hw::{HwError, VmxHardware};
use crate::soft::walk;
use accel::debug::{DebugRegisters, DebugStop, GuestDebug, NotifyState, WhichVmcs};
use accel::{AccelError, GuestLevel, InvalidState, Unsupported, VcpuExit};
use softcpu::SoftCpu;
use x86::vmx::field as f;

fn hw_error(e: HwError) -> AccelError {
    AccelError::hardware(e)
}

/// A linear address the running guest's page tables do not map.
fn unmapped(la: u64) -> AccelError {
    AccelError::InvalidState(InvalidState::Unmapped { la })
}

fn guest_cr(cpu: &SoftCpu, value: u32, mask: u32, shadow: u32) -> Result<u64, HwError> {
    let r = |fld| VmxHardware::vmread(cpu, fld);
    Ok((r(value)? & !r(mask)?) | (r(shadow)? & r(mask)?))
}

impl SoftVcpu {
    fn with_cpu<T>(&self, f: impl FnOnce(&mut SoftCpu) -> T) -> T {
        let mut cpu = self.machine.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut cpu)
    }

    fn check_ram(&self, gpa: u64, len: usize) -> Result<(), AccelError> {
        match gpa.checked_add(len as u64) {
            Some(end) if end <= self.ram => Ok(()),
            _ => Err(AccelError::OutOfRange {
                gpa,
                len: len as u64,
            }),
        }
    }

    /// Where the running guest's linear address `la` lies in the VM's
    /// physical memory: through the guest's page tables and, while L2
    /// runs, L1's EPT; `None` where a page is not present or not mapped.
    pub(crate) fn translate(&self, la: u64) -> Result<Option<u64>, AccelError> {
        let ram = self.ram;
        let l2 = self.nested.as_ref().filter(|n| n.in_l2());
        self.with_cpu(|cpu| {
            let cpu = &*cpu;
            // L2's physical addresses go through L1's EPT.
            let map = |gpa| l2.map_or(Ok(Some(gpa)), |n| n.l2_to_l1(cpu, gpa, ram));
            walk::walk_through(cpu, la, ram, &map)
        })
        .map(|t| t.map(|t| t.gpa))
        .map_err(hw_error)
    }

    /// Runs `each(gpa, range of the buffer)` for every page of `len` bytes
    /// from linear address `la`.
    fn by_page(
        &self,
        la: u64,
        len: usize,
        mut each: impl FnMut(u64, std::ops::Range<usize>) -> Result<(), AccelError>,
    ) -> Result<(), AccelError> {
        let mut done = 0;
        while done < len {
            let here = la.wrapping_add(done as u64);
            let chunk = (4096 - (here & 0xFFF) as usize).min(len - done);
            let gpa = self.translate(here)?.ok_or(unmapped(here))?;
            each(gpa, done..done + chunk)?;
            done += chunk;
        }
        Ok(())
    }
}

impl GuestDebug for SoftVcpu {
    /// Which guest runs now: L2 between a nested VM entry and the exit to L1.
    fn level(&self) -> GuestLevel {
        match &self.nested {
            Some(n) if n.in_l2() => GuestLevel::L2,
            _ => GuestLevel::L1,
        }
    }

    /// The running guest's registers.
    fn debug_registers(&self) -> Result<DebugRegisters, AccelError> {
        self.with_cpu(|cpu| {
            let r = |fld| VmxHardware::vmread(&*cpu, fld);
            let seg = [
                f::GUEST_ES_SELECTOR,
                f::GUEST_CS_SELECTOR,
                f::GUEST_SS_SELECTOR,
                f::GUEST_DS_SELECTOR,
                f::GUEST_FS_SELECTOR,
                f::GUEST_GS_SELECTOR,
            ];
            let mut segments = [0u16; 6];
            for (s, fld) in segments.iter_mut().zip(seg) {
                *s = r(fld)? as u16;
            }
            let mut gpr = cpu.gprs();
            gpr[4] = r(f::GUEST_RSP)?;
            Ok(DebugRegisters {
                gpr,
                rip: r(f::GUEST_RIP)?,
                rflags: r(f::GUEST_RFLAGS)?,
                segments,
                fs_base: r(f::GUEST_FS_BASE)?,
                gs_base: r(f::GUEST_GS_BASE)?,
                cr0: guest_cr(
                    cpu,
                    f::GUEST_CR0,
                    f::CR0_GUEST_HOST_MASK,
                    f::CR0_READ_SHADOW,
                )?,
                cr2: cpu.cr2(),
                cr3: r(f::GUEST_CR3)?,
                cr4: guest_cr(
                    cpu,
                    f::GUEST_CR4,
                    f::CR4_GUEST_HOST_MASK,
                    f::CR4_READ_SHADOW,
                )?,
                efer: r(f::GUEST_IA32_EFER)?,
            })
        })
        .map_err(hw_error)
    }

    /// Sets the running guest's general-purpose registers, RIP and RFLAGS
    /// (bit 1 of RFLAGS stays set); segments and control registers are
    /// shown, not changed.
    fn set_debug_registers(&mut self, regs: &DebugRegisters) -> Result<(), AccelError> {
        self.with_cpu(|cpu| {
            cpu.set_gprs(&regs.gpr);
            VmxHardware::vmwrite(cpu, f::GUEST_RSP, regs.gpr[4])?;
            VmxHardware::vmwrite(cpu, f::GUEST_RIP, regs.rip)?;
            VmxHardware::vmwrite(cpu, f::GUEST_RFLAGS, regs.rflags | 2)
        })
        .map_err(hw_error)
    }

    /// Reads guest-physical memory (RAM only).
    fn read_physical(&self, gpa: u64, buf: &mut [u8]) -> Result<(), AccelError> {
        self.check_ram(gpa, buf.len())?;
        self.with_cpu(|cpu| VmxHardware::read_phys(&*cpu, gpa, buf))
            .map_err(hw_error)
    }

    /// Writes guest-physical memory (RAM only); the CPU's decoded code for
    /// the page is dropped as for any write.
    fn write_physical(&mut self, gpa: u64, data: &[u8]) -> Result<(), AccelError> {
        self.check_ram(gpa, data.len())?;
        self.with_cpu(|cpu| VmxHardware::write_phys(cpu, gpa, data))
            .map_err(hw_error)
    }

    /// Reads the running guest's memory at linear address `la`.
    fn read_linear(&self, la: u64, buf: &mut [u8]) -> Result<(), AccelError> {
        let len = buf.len();
        self.by_page(la, len, |gpa, r| self.read_physical(gpa, &mut buf[r]))
    }

    /// Writes the running guest's memory at linear address `la`.
    fn write_linear(&mut self, la: u64, data: &[u8]) -> Result<(), AccelError> {
        let mut pages = Vec::new();
        self.by_page(la, data.len(), |gpa, r| {
            pages.push((gpa, r));
            Ok(())
        })?;
        for (gpa, r) in pages {
            self.write_physical(gpa, &data[r])?;
        }
        Ok(())
    }

    /// Every named field of a VMCS: `(name, value)`, fields the VMCS does
    /// not hold left out. vmcs02 and vmcs12 exist only while L2 runs.
    fn vmcs_fields(&self, which: WhichVmcs) -> Result<Vec<(&'static str, u64)>, AccelError> {
        let in_l2 = self.level() == GuestLevel::L2;
        let absent = |which| AccelError::InvalidState(InvalidState::OnlyWhileL2Runs(which));
        let named = |read: &dyn Fn(u32) -> Option<u64>| {
            f::ALL
                .iter()
                .filter_map(|&e| Some((f::name(e)?, read(e)?)))
                .collect::<Vec<_>>()
        };
        match which {
            WhichVmcs::Vmcs12 => {
                let n = self
                    .nested
                    .as_ref()
                    .filter(|_| in_l2)
                    .ok_or_else(|| absent(WhichVmcs::Vmcs12))?;
                Ok(named(&|e| n.vmcs12_field(e)))
            }
            WhichVmcs::Vmcs02 if !in_l2 => Err(absent(WhichVmcs::Vmcs02)),
            WhichVmcs::Vmcs02 => {
                Ok(self.with_cpu(|cpu| named(&|e| VmxHardware::vmread(&*cpu, e).ok())))
            }
            WhichVmcs::Vmcs01 if !in_l2 => {
                Ok(self.with_cpu(|cpu| named(&|e| VmxHardware::vmread(&*cpu, e).ok())))
            }
            WhichVmcs::Vmcs01 => {
                let n = self
                    .nested
                    .as_ref()
                    .ok_or_else(|| absent(WhichVmcs::Vmcs02))?;
                let (v01, v02) = n.vmcs_regions();
                self.with_cpu(|cpu| {
                    VmxHardware::vmptrld(cpu, v01)?;
                    let fields = named(&|e| VmxHardware::vmread(&*cpu, e).ok());
                    VmxHardware::vmptrld(cpu, v02)?;
                    Ok(fields)
                })
                .map_err(hw_error)
            }
        }
    }

    /// The notify state of the running guest's VMCS.
    fn notify_state(&self) -> Result<NotifyState, AccelError> {
        let exits = self.notify_exits;
        self.with_cpu(|cpu| {
            let r = |fld| VmxHardware::vmread(&*cpu, fld);
            let proc2 = r(f::SECONDARY_VM_EXEC_CONTROL)?;
            Ok(NotifyState {
                enabled: proc2 & u64::from(x86::vmx::proc2::NOTIFY_VM_EXITING) != 0,
                window: r(f::NOTIFY_WINDOW)? as u32,
                threshold: cpu.model().notify_threshold,
                exits,
                virtual_ns: self.control.ns_of(cpu.cycles()),
                // Between two run()s the vCPU always stands at a boundary.
                since_boundary_ns: 0,
                last_idt_vectoring_info: r(f::IDT_VECTORING_INFO)? as u32,
                last_exit_reason: r(f::VM_EXIT_REASON)? as u16,
            })
        })
        .map_err(hw_error)
    }

    fn set_single_step(&mut self, on: bool) {
        self.stops.step = on;
    }

    fn add_breakpoint(&mut self, addr: u64) {
        if !self.stops.breakpoints.contains(&addr) {
            self.stops.breakpoints.push(addr);
        }
    }

    fn remove_breakpoint(&mut self, addr: u64) -> bool {
        let before = self.stops.breakpoints.len();
        self.stops.breakpoints.retain(|b| *b != addr);
        self.stops.breakpoints.len() != before
    }

    fn add_watchpoint(&mut self, addr: u64, len: u64) -> Result<(), AccelError> {
        let gpa = self.translate(addr)?.ok_or(unmapped(addr))?;
        if len == 0 || len > 8 || (gpa & 0xFFF) + len > 0x1000 {
            return Err(AccelError::Unsupported(Unsupported::WatchpointShape {
                addr,
                len,
            }));
        }
        let mut last = vec![0u8; len as usize];
        self.read_physical(gpa, &mut last)?;
        self.stops.watches.push(Watch {
            addr,
            len,
            gpa,
            last,
        });
        Ok(())
    }

    fn remove_watchpoint(&mut self, addr: u64, len: u64) -> bool {
        let before = self.stops.watches.len();
        self.stops
            .watches
            .retain(|w| (w.addr, w.len) != (addr, len));
        self.stops.watches.len() != before
    }

    fn take_stop(&mut self) -> Option<DebugStop> {
        self.stops.stop.take()
    }

    fn exits_by_reason(&self) -> Vec<(u16, u64)> {
        self.exit_counts().iter().map(|(r, n)| (*r, *n)).collect()
    }

    fn resume_after_stop(&mut self, stopped: std::time::Duration) {
        if let Some(p) = self.pacer.as_mut() {
            p.skip(stopped);
        }
    }
}

/// A watched range: its linear address and length, where it lies, and the
/// bytes it held after the last instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watch {
    addr: u64,
    len: u64,
    gpa: u64,
    last: Vec<u8>,
}

/// What the debugger armed, and why the vCPU last stopped.
#[derive(Debug, Default)]
pub(crate) struct Stops {
    step: bool,
    breakpoints: Vec<u64>,
    watches: Vec<Watch>,
    stop: Option<DebugStop>,
    /// The RIP of the last stop: the entry right after it does not stop
    /// there again.
    stopped_at: Option<u64>,
}

impl Stops {
    /// Whether every instruction must end in a VM exit.
    pub(super) fn armed(&self) -> bool {
        self.step || !self.breakpoints.is_empty() || !self.watches.is_empty()
    }
}

impl SoftVcpu {
    /// Before a VM entry: the monitor trap flag on in the current VMCS while
    /// anything is armed or L1 set it for L2, off otherwise (SDM Vol. 3C
    /// §26.5.2). Whether the
    /// vCPU stops instead, at a breakpoint on the RIP it would enter at
    /// (a guest's first instruction, L2's after L1's VMLAUNCH), which no
    /// instruction's end reaches.
    pub(super) fn debug_before_entry(&mut self, cpu: &mut SoftCpu) -> Result<bool, HwError> {
        let mtf = u64::from(x86::vmx::proc::MONITOR_TRAP_FLAG);
        let procv = VmxHardware::vmread(&*cpu, f::CPU_BASED_VM_EXEC_CONTROL)?;
        let l1_wants = self.nested.as_ref().is_some_and(|n| n.l1_monitor_trap());
        let want = if self.stops.armed() || l1_wants {
            procv | mtf
        } else {
            procv & !mtf
        };
        if want != procv {
            VmxHardware::vmwrite(cpu, f::CPU_BASED_VM_EXEC_CONTROL, want)?;
        }
        if self.stops.breakpoints.is_empty() {
            return Ok(false);
        }
        let rip = VmxHardware::vmread(&*cpu, f::GUEST_RIP)?;
        let again = self.stops.stopped_at == Some(rip);
        self.stops.stopped_at = None;
        if !again && self.stops.breakpoints.contains(&rip) {
            self.stops.stop = Some(DebugStop::Breakpoint(rip));
            self.stops.stopped_at = Some(rip);
            return Ok(true);
        }
        Ok(false)
    }

    /// After `run()` completed an I/O or MMIO instruction for userspace
    /// while single-stepping: that instruction was the step.
    pub(super) fn debug_step_completed_io(&mut self) -> bool {
        if self.stops.step {
            self.stops.stop = Some(DebugStop::Step);
            return true;
        }
        false
    }

    /// Whether the exit just taken is the debugger's: a monitor-trap-flag
    /// exit while anything is armed (while a debugger steps L2, an MTF exit
    /// L1 asked for too is the debugger's; L1 does not see it).
    pub(super) fn debugger_exit(&self, cpu: &SoftCpu) -> bool {
        self.stops.armed()
            && VmxHardware::vmread(cpu, f::VM_EXIT_REASON)
                .is_ok_and(|raw| raw as u16 == x86::vmx::exit_reason::MONITOR_TRAP_FLAG)
    }

    /// The hook after exit for the debugger's exits: `None` for any other
    /// exit; the vCPU stops for the debugger or goes on.
    pub(super) fn debug_exit(&mut self, cpu: &SoftCpu, raw: u64) -> Result<Option<Goes>, HwError> {
        if raw as u16 != x86::vmx::exit_reason::MONITOR_TRAP_FLAG || !self.stops.armed() {
            return Ok(None);
        }
        Ok(Some(if self.debug_after_instruction(cpu)? {
            Goes::User(ToUser::Exit(VcpuExit::Debug))
        } else {
            Goes::L0
        }))
    }

    /// A monitor-trap-flag VM exit: whether the debugger must see it (a
    /// step, a breakpoint at the new RIP, a watched range that changed).
    fn debug_after_instruction(&mut self, cpu: &SoftCpu) -> Result<bool, HwError> {
        let rip = VmxHardware::vmread(cpu, f::GUEST_RIP)?;
        let mut stop = None;
        for w in &mut self.stops.watches {
            let mut now = vec![0u8; w.last.len()];
            VmxHardware::read_phys(cpu, w.gpa, &mut now)?;
            if now != w.last {
                w.last = now;
                stop = stop.or(Some(DebugStop::Watch(w.addr)));
            }
        }
        if stop.is_none() && self.stops.breakpoints.contains(&rip) {
            stop = Some(DebugStop::Breakpoint(rip));
        }
        if stop.is_none() && self.stops.step {
            stop = Some(DebugStop::Step);
        }
        self.stops.stop = stop;
        self.stops.stopped_at = stop.map(|_| rip);
        Ok(stop.is_some())
    }
}
