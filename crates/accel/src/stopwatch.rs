//! [`Stopwatch`]: how long a vCPU has been in the guest, as the host's
//! threads read it for [`VcpuControl::in_guest_for`](crate::VcpuControl::in_guest_for).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A stopwatch the vCPU's thread starts and stops and any thread reads,
/// without a lock. The soft accelerator starts it at every VM entry; the kvm
/// accelerator at the first host kick the vCPU has not answered yet.
#[derive(Debug)]
pub struct Stopwatch {
    epoch: Instant,
    /// When it was started, in nanoseconds after `epoch` plus one; 0 while
    /// it is stopped.
    started: AtomicU64,
}

impl Default for Stopwatch {
    fn default() -> Self {
        Stopwatch::new()
    }
}

impl Stopwatch {
    /// A stopped stopwatch.
    pub fn new() -> Self {
        Stopwatch {
            epoch: Instant::now(),
            started: AtomicU64::new(0),
        }
    }

    /// The time now, as the stopwatch stores it (never 0).
    fn stamp(&self) -> u64 {
        let ns = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        ns.saturating_add(1)
    }

    /// Starts it now, or starts it again.
    pub fn start(&self) {
        self.started.store(self.stamp(), Ordering::Release);
    }

    /// Starts it now unless it is running already (it keeps the older start).
    pub fn start_if_stopped(&self) {
        let _ = self
            .started
            .compare_exchange(0, self.stamp(), Ordering::AcqRel, Ordering::Acquire);
    }

    /// Stops it; the time it ran, `None` if it was not running.
    pub fn stop(&self) -> Option<Duration> {
        match self.started.swap(0, Ordering::AcqRel) {
            0 => None,
            t => Some(self.since(t)),
        }
    }

    /// How long it has been running, `None` while it is stopped.
    pub fn elapsed(&self) -> Option<Duration> {
        match self.started.load(Ordering::Acquire) {
            0 => None,
            t => Some(self.since(t)),
        }
    }

    fn since(&self, stamp: u64) -> Duration {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(now.saturating_sub(stamp - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_only_between_start_and_stop() {
        let w = Stopwatch::new();
        assert_eq!(w.elapsed(), None);
        assert_eq!(w.stop(), None);
        w.start();
        std::thread::sleep(Duration::from_millis(2));
        let running = w.elapsed().expect("running");
        assert!(running >= Duration::from_millis(2), "{running:?}");
        let ran = w.stop().expect("it ran");
        assert!(ran >= running);
        assert_eq!(w.elapsed(), None);
    }

    #[test]
    fn start_if_stopped_keeps_the_older_start() {
        let w = Stopwatch::new();
        w.start_if_stopped();
        std::thread::sleep(Duration::from_millis(2));
        w.start_if_stopped();
        assert!(w.elapsed().expect("running") >= Duration::from_millis(2));
        // `start` restarts: it has run no longer than since just before.
        let before = Instant::now();
        w.start();
        let restarted = w.elapsed().expect("running");
        assert!(restarted <= before.elapsed() + Duration::from_nanos(1));
    }
}
