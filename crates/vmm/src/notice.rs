//! What a run tells its caller while it runs: conditions the operator
//! should know of at the moment they arise, though the run goes on. The
//! caller decides how to say them (the `vigil` command prints warnings).

use accel::GuestLevel;

/// Something the run wants the operator to know.
#[derive(Debug)]
pub enum Notice {
    /// The notify policy asks for notify VM exits but the accelerator has
    /// none: CPU-stall attacks inside event delivery are not contained, and
    /// the run goes on without them.
    NotifyUnavailable {
        /// The accelerator's name.
        accel: &'static str,
    },
    /// The first notify exit with a valid guest context under a policy that
    /// resumes the guest; later ones are only counted.
    NotifyWindowExceeded {
        /// Which guest was running.
        level: GuestLevel,
        /// Guest RIP, where the accelerator reports it.
        rip: Option<u64>,
    },
    /// Writing the event log failed; events after that were lost (given at
    /// the end of the run, which went on).
    EventLogLost(std::io::Error),
}

/// Where a run's notices go, one call each as it happens.
pub trait NoticeSink {
    /// Takes one notice.
    fn notice(&mut self, notice: Notice);
}

impl<F: FnMut(Notice)> NoticeSink for F {
    fn notice(&mut self, notice: Notice) {
        self(notice)
    }
}
