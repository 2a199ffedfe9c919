//! [`KvmControl`]: the host's handle on a KVM vCPU.
//!
//! The kernel is L0 here: it gets the physical CPU back at every host timer
//! interrupt on its own, and userspace cannot see those returns. What
//! userspace can see is whether the vCPU answers a kick: every host tick
//! sends one, and [`VcpuControl::in_guest_for`] is the time since the oldest
//! kick the vCPU has not answered by leaving `KVM_RUN` — the watchdog's
//! measure here. A vCPU that never answers is stalled (only the notify
//! capability could end a microcode loop; the watchdog detects, it cannot
//! break). To make a vCPU that is
//! inside `KVM_RUN` come back to userspace (an exit request, an NMI to
//! inject, power-off), the control sends its thread a real-time signal with
//! an empty handler installed without `SA_RESTART`: `KVM_RUN` returns
//! `EINTR`, as in QEMU and cloud-hypervisor. A signal that lands just before
//! `KVM_RUN` starts would be lost, so every host tick sends it again while a
//! request is pending.

use accel::{Stopwatch, VcpuControl};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

/// The signal that kicks a vCPU thread out of `KVM_RUN`.
fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN() + 1
}

extern "C" fn ignore_kick(_: libc::c_int) {}

/// Installs the empty handler for the kick signal, once per process.
fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed `sigaction` is a valid value to fill in; the
        // handler is an `extern "C"` function that does nothing, so it is
        // async-signal-safe; `sa_flags` leaves out SA_RESTART so that a
        // blocking ioctl returns EINTR. `sigaction` only reads `act`.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = ignore_kick as *const () as usize;
            act.sa_flags = 0;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(kick_signal(), &act, std::ptr::null_mut());
        }
    });
}

/// Flags shared between the vCPU's thread and the host's threads.
#[derive(Debug, Default)]
pub struct KvmControl {
    exit_requested: AtomicBool,
    powered_off: AtomicBool,
    nmi_pending: AtomicBool,
    /// The thread inside `run()`, while one is.
    thread: Mutex<Option<libc::pthread_t>>,
    /// Runs from the oldest kick the vCPU has not answered.
    unanswered: Stopwatch,
}

impl KvmControl {
    /// Records the calling thread as the vCPU's (before `KVM_RUN`).
    pub(crate) fn enter(&self) {
        install_kick_handler();
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(me);
    }

    /// Forgets the vCPU's thread (after `KVM_RUN`): every kick is answered.
    pub(crate) fn leave(&self) {
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.unanswered.stop();
    }

    /// Takes a pending exit request.
    pub(crate) fn take_exit_request(&self) -> bool {
        self.exit_requested.swap(false, Ordering::AcqRel)
    }

    /// Takes a pending NMI request.
    pub(crate) fn take_nmi(&self) -> bool {
        self.nmi_pending.swap(false, Ordering::AcqRel)
    }

    /// Whether the power was cut.
    pub(crate) fn is_powered_off(&self) -> bool {
        self.powered_off.load(Ordering::Acquire)
    }

    /// Sends the kick signal to the vCPU thread, if it is inside `run()`.
    fn kick(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = *thread {
            self.unanswered.start_if_stopped();
            // SAFETY: `t` is the id of a thread that is inside `run()`: it
            // is cleared (under this lock) before that thread leaves
            // `run()`, so the thread is alive. The signal's handler is
            // installed (in `enter`) before the id is published.
            unsafe {
                libc::pthread_kill(t, kick_signal());
            }
        }
    }

    /// Whether a host thread wants the vCPU back (exit, NMI, power-off).
    pub(crate) fn wants_vcpu(&self) -> bool {
        self.exit_requested.load(Ordering::Acquire)
            || self.powered_off.load(Ordering::Acquire)
            || self.nmi_pending.load(Ordering::Acquire)
    }
}

impl VcpuControl for KvmControl {
    fn request_exit(&self) {
        self.exit_requested.store(true, Ordering::Release);
        self.kick();
    }

    fn host_tick(&self) {
        // Every tick probes the vCPU: a healthy one leaves KVM_RUN with
        // EINTR at once and goes back in (or answers the request, or takes
        // the APIC interrupt that is due).
        self.kick();
    }

    fn in_guest_for(&self) -> Option<Duration> {
        self.unanswered.elapsed()
    }

    fn virtual_ns(&self) -> Option<u64> {
        None
    }

    fn inject_nmi(&self) {
        self.nmi_pending.store(true, Ordering::Release);
        self.kick();
    }

    fn power_off(&self) {
        self.powered_off.store(true, Ordering::Release);
        self.kick();
    }
}
