//! [`Tally`]: the running totals of a soft vCPU's VM exits by level and
//! reason, and of the host time of each stretch in the guest, kept in
//! atomics so that the host's threads can read them while the vCPU runs
//! (`VcpuControl::exit_tally`).

use accel::{in_guest_bucket, ExitTally, GuestLevel, IN_GUEST_BUCKETS};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Basic exit reasons counted one by one; larger ones share the last slot.
const REASONS: usize = 80;

/// Counters written by the vCPU's thread only, read by anyone.
#[derive(Debug)]
pub(crate) struct Tally {
    /// `[level][reason]`: level 0 is L1, 1 is L2.
    exits: [[AtomicU64; REASONS]; 2],
    in_guest: [AtomicU64; IN_GUEST_BUCKETS],
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            exits: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            in_guest: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

fn bump(counter: &AtomicU64) {
    // One writer: a load and a store need no read-modify-write.
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl Tally {
    /// Counts a VM exit with basic reason `reason` taken from L1 or L2.
    pub(crate) fn exit(&self, reason: u16, in_l2: bool) {
        let slot = usize::from(reason).min(REASONS - 1);
        bump(&self.exits[usize::from(in_l2)][slot]);
    }

    /// Counts a stretch of `d` in the guest.
    pub(crate) fn stretch(&self, d: Duration) {
        bump(&self.in_guest[in_guest_bucket(d)]);
    }

    /// The totals now.
    pub(crate) fn snapshot(&self) -> ExitTally {
        let mut exits = Vec::new();
        for (level, row) in [GuestLevel::L1, GuestLevel::L2]
            .into_iter()
            .zip(&self.exits)
        {
            for (reason, n) in row.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    exits.push((level, reason as u16, n));
                }
            }
        }
        ExitTally {
            exits,
            in_guest: std::array::from_fn(|i| self.in_guest[i].load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_level_reason_and_stretch() {
        let t = Tally::default();
        t.exit(30, false);
        t.exit(30, false);
        t.exit(75, true);
        t.exit(200, false);
        t.stretch(Duration::from_micros(3));
        t.stretch(Duration::from_secs(2));
        let s = t.snapshot();
        assert_eq!(
            s.exits,
            vec![
                (GuestLevel::L1, 30, 2),
                (GuestLevel::L1, 79, 1),
                (GuestLevel::L2, 75, 1)
            ]
        );
        assert_eq!(s.in_guest[2], 1);
        assert_eq!(s.in_guest[21], 1);
        assert_eq!(s.in_guest.iter().sum::<u64>(), 2);
    }
}
