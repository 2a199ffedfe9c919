//! The host side of a running vCPU: a thread that plays the host's timer
//! interrupt, enforces `--timeout`, and watches for a vCPU that never gives
//! the CPU back to L0.
//!
//! Every `tick` it raises a host interrupt on the vCPU
//! ([`VcpuControl::host_tick`]): a guest that reaches instruction boundaries
//! returns to L0 within one tick and is resumed. A vCPU that has been in the
//! guest for longer than the watchdog bound is stalled — inside an endless
//! event delivery, which no interrupt can break — and the monitor powers it
//! off. At the timeout it powers the vCPU off too: the run is over either
//! way, and power-off is the one thing that stops even a stalled vCPU.

use hv::accel::VcpuControl;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The monitor's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// End the run after this much host time.
    pub timeout: Option<Duration>,
    /// A vCPU in the guest this long without returning to L0 is stalled.
    pub watchdog: Duration,
    /// Period of the host timer interrupt.
    pub tick: Duration,
    /// Raise one NMI on the vCPU this long after the start (QEMU's monitor
    /// `nmi` command, at a fixed time).
    pub nmi_after: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: None,
            watchdog: Duration::from_secs(1),
            tick: Duration::from_millis(10),
            nmi_after: None,
        }
    }
}

/// Why the monitor ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The timeout passed.
    Timeout(Duration),
    /// The vCPU stayed in the guest, without returning to L0, for this long.
    Stalled(Duration),
}

#[derive(Default)]
struct Shared {
    stop: bool,
    verdict: Option<Verdict>,
}

/// A running monitor thread; stop it with [`Monitor::finish`].
pub struct Monitor {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts watching the vCPU behind `control`.
    pub fn spawn(control: Arc<dyn VcpuControl>, limits: Limits) -> std::io::Result<Monitor> {
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-monitor".into())
            .spawn(move || watch(&*control, limits, &theirs))?;
        Ok(Monitor {
            shared,
            thread: Some(thread),
        })
    }

    /// The verdict, once the monitor has ended the run.
    pub fn verdict(&self) -> Option<Verdict> {
        lock(&self.shared.0).verdict
    }

    /// Stops the thread and returns the verdict it reached, if any.
    pub fn finish(mut self) -> Option<Verdict> {
        self.stop_thread();
        self.verdict()
    }

    fn stop_thread(&mut self) {
        lock(&self.shared.0).stop = true;
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn watch(control: &dyn VcpuControl, limits: Limits, shared: &(Mutex<Shared>, Condvar)) {
    let start = Instant::now();
    let (state, wake) = shared;
    let mut guard = lock(state);
    let mut nmi = limits.nmi_after;
    loop {
        let (g, _) = wake
            .wait_timeout_while(guard, limits.tick, |s| !s.stop)
            .unwrap_or_else(|p| p.into_inner());
        guard = g;
        if guard.stop {
            return;
        }
        control.host_tick();
        if nmi.is_some_and(|t| start.elapsed() >= t) {
            nmi = None;
            control.inject_nmi();
        }
        let verdict = match control.in_guest_for() {
            Some(d) if d > limits.watchdog => Some(Verdict::Stalled(d)),
            _ => limits
                .timeout
                .filter(|t| start.elapsed() >= *t)
                .map(Verdict::Timeout),
        };
        if let Some(v) = verdict {
            guard.verdict = Some(v);
            control.power_off();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// A vCPU that is "in the guest" since `entered` (ms after start), or not.
    struct Fake {
        start: Instant,
        stuck: AtomicBool,
        ticks: AtomicU64,
        off: AtomicBool,
    }
    impl VcpuControl for Fake {
        fn request_exit(&self) {}
        fn host_tick(&self) {
            self.ticks.fetch_add(1, Ordering::Relaxed);
        }
        fn in_guest_for(&self) -> Option<Duration> {
            self.stuck
                .load(Ordering::Relaxed)
                .then(|| self.start.elapsed())
        }
        fn virtual_ns(&self) -> Option<u64> {
            None
        }
        fn inject_nmi(&self) {}
        fn power_off(&self) {
            self.off.store(true, Ordering::Relaxed);
        }
    }

    fn fake(stuck: bool) -> Arc<Fake> {
        Arc::new(Fake {
            start: Instant::now(),
            stuck: AtomicBool::new(stuck),
            ticks: AtomicU64::new(0),
            off: AtomicBool::new(false),
        })
    }

    fn wait_for(m: &Monitor) -> Verdict {
        for _ in 0..500 {
            if let Some(v) = m.verdict() {
                return v;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no verdict");
    }

    #[test]
    fn a_stuck_vcpu_is_powered_off_by_the_watchdog() {
        let f = fake(true);
        let limits = Limits {
            timeout: Some(Duration::from_secs(60)),
            watchdog: Duration::from_millis(50),
            tick: Duration::from_millis(5),
            nmi_after: None,
        };
        let m = Monitor::spawn(f.clone(), limits).unwrap();
        let Verdict::Stalled(d) = wait_for(&m) else {
            panic!("not stalled")
        };
        assert!(d > Duration::from_millis(50));
        assert!(f.off.load(Ordering::Relaxed));
        assert!(f.ticks.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn a_responsive_vcpu_runs_until_the_timeout() {
        let f = fake(false);
        let limits = Limits {
            timeout: Some(Duration::from_millis(60)),
            watchdog: Duration::from_millis(20),
            tick: Duration::from_millis(5),
            nmi_after: None,
        };
        let m = Monitor::spawn(f.clone(), limits).unwrap();
        assert!(matches!(wait_for(&m), Verdict::Timeout(_)));
        assert!(f.off.load(Ordering::Relaxed));
    }

    #[test]
    fn finishing_early_gives_no_verdict() {
        let f = fake(false);
        let m = Monitor::spawn(f.clone(), Limits::default()).unwrap();
        assert_eq!(m.finish(), None);
        assert!(!f.off.load(Ordering::Relaxed));
    }
}
