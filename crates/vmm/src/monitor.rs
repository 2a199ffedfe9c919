//! The host side of a running vCPU: a thread that plays the host's timer
//! interrupt, enforces `--timeout`, and watches for a vCPU that never gives
//! the CPU back to L0.
//!
//! Every `tick` it raises a host interrupt on the vCPU
//! ([`VcpuControl::host_tick`]): a guest that reaches instruction boundaries
//! returns to L0 within one tick and is resumed. A vCPU that has been in the
//! guest for longer than the watchdog bound, while the monitor itself kept
//! running on time for that long and kept ticking it, is stalled — inside a
//! stretch with no instruction boundary, such as an endless event delivery,
//! which no interrupt can break — and the monitor powers it off. A late
//! wake-up of the monitor (the whole process was stopped or starved) starts
//! the judgement afresh, so a suspended VMM is not mistaken for a stalled
//! vCPU. At the timeout it powers the vCPU off too: the run is over either
//! way, and power-off is the one thing that stops even a stalled vCPU.
//!
//! The timeout and `--nmi-after` count the time the VM runs: while the run
//! loop holds the vCPU stopped for a debugger ([`Monitor::hold`]), their
//! clock stands still, as a paused machine's does.

use crate::sampler::Sampler;
use accel::VcpuControl;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The monitor's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// End the run after this much host time of running (time held
    /// stopped for a debugger left out).
    pub timeout: Option<Duration>,
    /// A vCPU in the guest this long without returning to L0 is stalled.
    pub watchdog: Duration,
    /// Period of the host timer interrupt.
    pub tick: Duration,
    /// Raise one NMI on the vCPU after it ran this long (QEMU's monitor
    /// `nmi` command, at a fixed time; time held stopped left out).
    pub nmi_after: Option<Duration>,
    /// Make every tick return the vCPU to the VMM, not only to L0, so that
    /// the VMM's timed devices (the PIT) raise their interrupts on time.
    pub kick_userspace: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: None,
            watchdog: Duration::from_secs(1),
            tick: Duration::from_millis(10),
            nmi_after: None,
            kick_userspace: false,
        }
    }
}

/// How long a powered-off, stalled vCPU has to come back before the VMM
/// gives up on it and exits.
pub const UNRESPONSIVE_GRACE: Duration = Duration::from_secs(2);

/// Smallest watchdog bound: ten of the default host ticks.
pub const MIN_WATCHDOG: Duration = Duration::from_millis(100);

impl Limits {
    /// Default limits with `watchdog` as the bound and the tick shortened
    /// to a tenth of it where needed, so that a guest that reaches
    /// instruction boundaries is ticked back to L0 many times per bound.
    /// A bound under [`MIN_WATCHDOG`] is refused.
    pub fn with_watchdog(watchdog: Duration) -> Result<Limits, WatchdogTooShort> {
        if watchdog < MIN_WATCHDOG {
            return Err(WatchdogTooShort { watchdog });
        }
        let d = Limits::default();
        Ok(Limits {
            watchdog,
            tick: d.tick.min(watchdog / 10),
            ..d
        })
    }
}

/// A watchdog bound under [`MIN_WATCHDOG`]: a healthy vCPU could be taken
/// for a stalled one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogTooShort {
    /// The bound asked for.
    pub watchdog: Duration,
}

impl std::fmt::Display for WatchdogTooShort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a watchdog bound of {:.3}s is too short: a healthy vCPU returns to L0 at every 10 ms \
             host tick, so the bound must be at least {} ms",
            self.watchdog.as_secs_f64(),
            MIN_WATCHDOG.as_millis()
        )
    }
}

impl std::error::Error for WatchdogTooShort {}

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
    /// Takes a sample of the vCPU at every tick, and at the end.
    sampler: Option<Sampler>,
    /// Time the VM stood held for a debugger.
    held: Held,
}

/// The monitor's record of the VM held stopped ([`Monitor::hold`]).
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    /// Since when the VM is held, while it is.
    since: Option<Instant>,
    /// The time of the holds that ended.
    total: Duration,
}

impl Held {
    /// Host time since `start`, less the time held.
    fn ran_since(&self, start: Instant, now: Instant) -> Duration {
        let holding = self.since.map_or(Duration::ZERO, |s| now.duration_since(s));
        now.duration_since(start)
            .saturating_sub(self.total + holding)
    }
}

/// The VM held stopped for a debugger: while this lives, the monitor's
/// clock for the timeout and `--nmi-after` stands still.
pub struct Hold<'a> {
    monitor: &'a Monitor,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        let mut s = lock(&self.monitor.shared.0);
        if let Some(since) = s.held.since.take() {
            s.held.total += since.elapsed();
        }
    }
}

/// Called on the monitor thread with the time the vCPU spent in the guest
/// when a stalled vCPU did not stop within [`UNRESPONSIVE_GRACE`] of being
/// powered off. The run cannot end by itself then (the vCPU thread is stuck
/// where no signal reaches it), so the caller ends the process here; if
/// this returns, the run waits on.
pub type OnUnresponsive = Box<dyn FnOnce(Duration) + Send>;

/// A running monitor thread; stop it with [`Monitor::finish`].
pub struct Monitor {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts watching the vCPU behind `control`; `on_unresponsive` is
    /// called if a stalled vCPU does not stop when powered off.
    pub fn spawn(
        control: Arc<dyn VcpuControl>,
        limits: Limits,
        on_unresponsive: OnUnresponsive,
    ) -> std::io::Result<Monitor> {
        Monitor::spawn_sampling(control, limits, on_unresponsive, None)
    }

    /// As [`Monitor::spawn`], with `sampler` taking a sample at every tick
    /// and a last one when the monitor finishes.
    pub fn spawn_sampling(
        control: Arc<dyn VcpuControl>,
        limits: Limits,
        on_unresponsive: OnUnresponsive,
        sampler: Option<Sampler>,
    ) -> std::io::Result<Monitor> {
        let shared = Arc::new((
            Mutex::new(Shared {
                sampler,
                ..Shared::default()
            }),
            Condvar::new(),
        ));
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-monitor".into())
            .spawn(move || watch(&*control, limits, &theirs, on_unresponsive))?;
        Ok(Monitor {
            shared,
            thread: Some(thread),
        })
    }

    /// The verdict, once the monitor has ended the run.
    pub fn verdict(&self) -> Option<Verdict> {
        lock(&self.shared.0).verdict
    }

    /// Holds the VM stopped (for a debugger) until the returned guard is
    /// dropped: the time does not count toward the timeout or `--nmi-after`.
    pub fn hold(&self) -> Hold<'_> {
        let mut s = lock(&self.shared.0);
        s.held.since.get_or_insert_with(Instant::now);
        Hold { monitor: self }
    }

    /// Stops the thread and returns the verdict it reached, if any.
    pub fn finish(mut self) -> Option<Verdict> {
        self.stop_thread();
        if let Some(s) = lock(&self.shared.0).sampler.as_mut() {
            s.sample();
        }
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

fn watch(
    control: &dyn VcpuControl,
    limits: Limits,
    shared: &(Mutex<Shared>, Condvar),
    on_unresponsive: OnUnresponsive,
) {
    let start = Instant::now();
    let (state, wake) = shared;
    let mut guard = lock(state);
    let mut nmi = limits.nmi_after;
    let mut last_wake = start;
    // Since when the monitor has woken on time at every tick.
    let mut punctual_since = start;
    // A wake this much later than asked means the host did not run us.
    let late = limits.tick * 2 + Duration::from_millis(50);
    loop {
        let (g, _) = wake
            .wait_timeout_while(guard, limits.tick, |s| !s.stop)
            .unwrap_or_else(|p| p.into_inner());
        guard = g;
        if guard.stop {
            return;
        }
        let now = Instant::now();
        if now.duration_since(last_wake) > late {
            punctual_since = now;
        }
        last_wake = now;
        if let Some(s) = guard.sampler.as_mut() {
            s.sample();
        }
        if limits.kick_userspace {
            control.request_exit();
        } else {
            control.host_tick();
        }
        let ran = guard.held.ran_since(start, now);
        if nmi.is_some_and(|t| ran >= t) {
            nmi = None;
            control.inject_nmi();
        }
        let stalled = control.in_guest_for().filter(|d| {
            *d > limits.watchdog && now.duration_since(punctual_since) > limits.watchdog
        });
        let verdict = match stalled {
            Some(d) => Some(Verdict::Stalled(d)),
            None => limits
                .timeout
                .filter(|t| ran >= *t)
                .map(|_| Verdict::Timeout(ran)),
        };
        if let Some(v) = verdict {
            guard.verdict = Some(v);
            control.power_off();
            if let Verdict::Stalled(d) = v {
                // Power-off stops a soft vCPU wherever it is. A vCPU of a
                // hardware accelerator stuck where no signal reaches it
                // never comes back to the run loop: the caller then
                // reports and ends the process.
                let (g, _) = wake
                    .wait_timeout_while(guard, UNRESPONSIVE_GRACE, |s| !s.stop)
                    .unwrap_or_else(|p| p.into_inner());
                if !g.stop {
                    drop(g);
                    on_unresponsive(d);
                }
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// A vCPU that is always in the guest: stuck since the start, or
    /// returning to L0 and re-entering at every host tick, as a healthy
    /// guest does.
    struct Fake {
        start: Instant,
        stuck: AtomicBool,
        ticks: AtomicU64,
        off: AtomicBool,
        entered: Mutex<Instant>,
    }
    impl VcpuControl for Fake {
        fn request_exit(&self) {}
        fn host_tick(&self) {
            self.ticks.fetch_add(1, Ordering::Relaxed);
            if !self.stuck.load(Ordering::Relaxed) {
                *self.entered.lock().unwrap() = Instant::now();
            }
        }
        fn in_guest_for(&self) -> Option<Duration> {
            if self.stuck.load(Ordering::Relaxed) {
                Some(self.start.elapsed())
            } else {
                Some(self.entered.lock().unwrap().elapsed())
            }
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
            entered: Mutex::new(Instant::now()),
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
            kick_userspace: false,
        };
        let m = Monitor::spawn(f.clone(), limits, Box::new(|_| {})).unwrap();
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
            kick_userspace: false,
        };
        let m = Monitor::spawn(f.clone(), limits, Box::new(|_| {})).unwrap();
        assert!(matches!(wait_for(&m), Verdict::Timeout(_)));
        assert!(f.off.load(Ordering::Relaxed));
    }

    #[test]
    fn a_vcpu_ticked_back_to_l0_is_never_stalled() {
        let f = fake(false);
        let limits = Limits {
            timeout: Some(Duration::from_millis(400)),
            ..Limits::with_watchdog(Duration::from_millis(100)).unwrap()
        };
        let m = Monitor::spawn(f.clone(), limits, Box::new(|_| {})).unwrap();
        assert!(matches!(wait_for(&m), Verdict::Timeout(_)));
    }

    #[test]
    fn time_held_for_a_debugger_does_not_count_toward_the_timeout() {
        let f = fake(false);
        let limits = Limits {
            timeout: Some(Duration::from_millis(100)),
            watchdog: Duration::from_millis(50),
            tick: Duration::from_millis(5),
            nmi_after: None,
            kick_userspace: false,
        };
        let m = Monitor::spawn(f.clone(), limits, Box::new(|_| {})).unwrap();
        let hold = m.hold();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(m.verdict(), None, "held past the timeout");
        drop(hold);
        let Verdict::Timeout(ran) = wait_for(&m) else {
            panic!("not a timeout")
        };
        assert!(ran >= Duration::from_millis(100), "{ran:?}");
        assert!(
            ran < Duration::from_millis(300),
            "the hold counted: {ran:?}"
        );
    }

    #[test]
    fn held_time_is_left_out_of_the_time_run() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let held = Held {
            since: Some(t0 + s(8)),
            total: s(3),
        };
        assert_eq!(held.ran_since(t0, t0 + s(10)), s(5));
        assert_eq!(Held::default().ran_since(t0, t0 + s(10)), s(10));
    }

    #[test]
    fn too_short_a_watchdog_is_refused_and_the_tick_follows_the_bound() {
        assert!(Limits::with_watchdog(Duration::from_millis(20)).is_err());
        let l = Limits::with_watchdog(Duration::from_millis(100)).unwrap();
        assert_eq!(l.tick, Duration::from_millis(10));
        let l = Limits::with_watchdog(Duration::from_secs(5)).unwrap();
        assert_eq!(l.tick, Duration::from_millis(10));
    }

    #[test]
    fn finishing_early_gives_no_verdict() {
        let f = fake(false);
        let m = Monitor::spawn(f.clone(), Limits::default(), Box::new(|_| {})).unwrap();
        assert_eq!(m.finish(), None);
        assert!(!f.off.load(Ordering::Relaxed));
    }
}
