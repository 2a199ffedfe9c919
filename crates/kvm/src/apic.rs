//! The local APIC of a KVM vCPU, emulated in userspace as QEMU does with
//! `kernel-irqchip=off`: this accelerator creates no in-kernel interrupt
//! controller (so every HLT and port access reaches userspace), and the
//! guest must still find the same xAPIC at 0xFEE00000 as on the soft
//! accelerator. It is the shared register model ([`lapic::Lapic`]) driven by
//! host time: the vCPU's "TSC" for the model is host nanoseconds at the rate
//! of [`TimerClock::default`] (the soft CPU's 2 GHz), so the timer runs at
//! the same 25 MHz crystal rate.
//!
//! Interrupts go in with `KVM_INTERRUPT` when `kvm_run` says the guest can
//! take one, or after `request_interrupt_window` brings it back when it
//! can. The host ticks of [`KvmControl`](crate::control::KvmControl) bring the vCPU out of `KVM_RUN`
//! every 10 ms, which is when a timer that has fired is noticed.

use crate::run_area;
use accel::AccelError;
use kvm_bindings::{
    kvm_enable_cap, KVM_CAP_X86_MSR_FILTER, KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_FILTER,
};
use kvm_ioctls::{Kvm, MsrFilterDefaultAction, MsrFilterRange, MsrFilterRangeFlags, VcpuFd, VmFd};
use lapic::{Lapic, LapicConfig, TimerClock, MSR_TSC_DEADLINE};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// `KVM_INTERRUPT`: `_IOW(KVMIO, 0x86, struct kvm_interrupt)`.
const KVM_INTERRUPT: u64 = 0x4004_AE86;

/// Asks KVM to hand every RDMSR and WRMSR of IA32_TSC_DEADLINE to userspace
/// (`KVM_CAP_X86_USER_SPACE_MSR` with a `KVM_X86_SET_MSR_FILTER` range that
/// denies it in the kernel, so it exits as `KVM_EXIT_X86_RDMSR`/`WRMSR`):
/// without an in-kernel irqchip KVM would drop writes and read 0. Every
/// other MSR stays KVM's. False where the host lacks either capability; the
/// CPUID table then does not offer TSC-deadline mode.
pub(crate) fn route_tsc_deadline_msr(kvm: &Kvm, vm: &VmFd) -> bool {
    if kvm.check_extension_raw(KVM_CAP_X86_USER_SPACE_MSR.into()) <= 0
        || kvm.check_extension_raw(KVM_CAP_X86_MSR_FILTER.into()) <= 0
    {
        return false;
    }
    let cap = kvm_enable_cap {
        cap: KVM_CAP_X86_USER_SPACE_MSR,
        args: [u64::from(KVM_MSR_EXIT_REASON_FILTER), 0, 0, 0],
        ..Default::default()
    };
    // A clear bit denies the access in the kernel, which exits to userspace.
    let deny = [0u8; 1];
    let range = MsrFilterRange {
        flags: MsrFilterRangeFlags::READ | MsrFilterRangeFlags::WRITE,
        base: MSR_TSC_DEADLINE,
        msr_count: 1,
        bitmap: &deny,
    };
    vm.enable_cap(&cap).is_ok()
        && vm
            .set_msr_filter(MsrFilterDefaultAction::ALLOW, &[range])
            .is_ok()
}

/// A vCPU's userspace local APIC.
#[derive(Debug)]
pub(crate) struct UserApic {
    lapic: Lapic,
    /// The model's clocks: host time to its TSC.
    clock: TimerClock,
    start: Instant,
}

impl UserApic {
    /// The bootstrap processor's APIC.
    pub(crate) fn new() -> Self {
        let config = LapicConfig::default();
        UserApic {
            lapic: Lapic::new(config),
            clock: config.clock,
            start: Instant::now(),
        }
    }

    /// The model's time: host nanoseconds since the vCPU was made, as TSC
    /// cycles of its clock.
    fn now(&self) -> u64 {
        let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.clock.tsc_of_ns(ns)
    }

    /// Whether `gpa` lies in the APIC's register page.
    pub(crate) fn claims(&self, gpa: u64) -> bool {
        self.lapic.claims(gpa)
    }

    /// RDMSR of an MSR routed to userspace: IA32_TSC_DEADLINE's value, or
    /// `None` (#GP) for any other.
    pub(crate) fn rdmsr(&mut self, index: u32) -> Option<u64> {
        self.lapic.advance(self.now());
        (index == MSR_TSC_DEADLINE).then(|| self.lapic.tsc_deadline())
    }

    /// WRMSR of an MSR routed to userspace; false (#GP) for any but
    /// IA32_TSC_DEADLINE.
    pub(crate) fn wrmsr(&mut self, index: u32, value: u64) -> bool {
        if index != MSR_TSC_DEADLINE {
            return false;
        }
        self.lapic.write_tsc_deadline(value, self.now());
        true
    }

    /// Completes a `KVM_EXIT_MMIO` to the register page.
    pub(crate) fn mmio(&mut self, fd: &mut VcpuFd) {
        let now = self.now();
        if let Some((addr, write, data)) = run_area::mmio(fd) {
            let offset = self.lapic.page_offset(addr).unwrap_or(addr);
            if write {
                self.lapic.mmio_write(offset, data, now);
            } else {
                self.lapic.mmio_read(offset, data, now);
            }
        }
    }

    /// An interrupt message from the platform (an I/O APIC): into IRR.
    pub(crate) fn accept(&mut self, vector: u8, level: bool) {
        self.lapic.accept_interrupt(vector, level);
    }

    /// Before `KVM_RUN`: injects a deliverable interrupt if the guest can
    /// take it, or asks KVM for an interrupt window.
    pub(crate) fn before_run(&mut self, fd: &mut VcpuFd) -> Result<(), AccelError> {
        self.lapic.advance(self.now());
        let run = fd.get_kvm_run();
        run.request_interrupt_window = 0;
        if self.lapic.pending_vector().is_some() {
            if run.ready_for_interrupt_injection != 0 && run.if_flag != 0 {
                let vector = self.lapic.acknowledge();
                let irq = kvm_bindings::kvm_interrupt {
                    irq: u32::from(vector),
                };
                // SAFETY: KVM_INTERRUPT on a vCPU descriptor this process
                // owns reads one `struct kvm_interrupt`, which `irq` is and
                // which outlives the call; it writes nothing of ours.
                let r = unsafe { libc::ioctl(fd.as_raw_fd(), KVM_INTERRUPT as _, &irq) };
                if r < 0 {
                    return Err(AccelError::Host {
                        op: "KVM_INTERRUPT",
                        source: std::io::Error::last_os_error(),
                    });
                }
            } else {
                fd.get_kvm_run().request_interrupt_window = 1;
            }
        }
        Ok(())
    }

    /// For a HLT, with `interrupts_enabled` as RFLAGS.IF says: how long
    /// until the APIC has an interrupt (zero if it has one now), or `None`
    /// if nothing will come (`Lapic::halt_wakeup`).
    pub(crate) fn wake_in(&mut self, interrupts_enabled: bool) -> Option<Duration> {
        let now = self.now();
        let due = self.lapic.halt_wakeup(now, interrupts_enabled)?;
        Some(Duration::from_nanos(
            self.clock.ns_of_tsc(due.saturating_sub(now)),
        ))
    }
}
