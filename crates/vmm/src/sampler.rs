//! [`Sampler`]: the `sample` lines of the event log — at every host tick,
//! the VM exits the vCPU took since the previous sample, the host time of
//! the stretches in the guest that ended, and how long the current one has
//! lasted so far. The monitor thread takes them; the last one is taken
//! when the run ends.

use crate::events::{Event, EventLog};
use accel::{ExitTally, VcpuControl, IN_GUEST_BUCKETS};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Takes samples of one vCPU into an event log.
pub struct Sampler {
    control: Arc<dyn VcpuControl>,
    log: EventLog,
    previous: ExitTally,
}

impl Sampler {
    /// A sampler of the vCPU behind `control`, writing to `log`.
    pub fn new(control: Arc<dyn VcpuControl>, log: EventLog) -> Self {
        Sampler {
            control,
            log,
            previous: ExitTally {
                exits: Vec::new(),
                in_guest: [0; IN_GUEST_BUCKETS],
            },
        }
    }

    /// Writes one `sample` line: what changed since the previous one.
    pub fn sample(&mut self) {
        let now = self.control.exit_tally();
        let (exits, l0_returns) = match &now {
            Some(t) => {
                let d = difference(&self.previous, t);
                (Some(d.0), Some(d.1))
            }
            None => (None, None),
        };
        self.log.record(&Event {
            kind: "sample",
            virtual_ns: self.control.virtual_ns(),
            in_guest: self.control.in_guest_for(),
            exits,
            l0_returns,
            ..Event::default()
        });
        if let Some(t) = now {
            self.previous = t;
        }
    }
}

/// What `now` adds to `before`: exits by `"<level> <reason name>"`, and
/// stretches by bucket (trailing empty buckets left off).
fn difference(before: &ExitTally, now: &ExitTally) -> (BTreeMap<String, u64>, Vec<u64>) {
    let mut exits = BTreeMap::new();
    for &(level, reason, n) in &now.exits {
        let old = before
            .exits
            .iter()
            .find(|e| e.0 == level && e.1 == reason)
            .map_or(0, |e| e.2);
        if n > old {
            let name = x86::vmx::exit_reason::name(reason);
            exits.insert(format!("{level} {name}"), n - old);
        }
    }
    let mut buckets: Vec<u64> = now
        .in_guest
        .iter()
        .zip(&before.in_guest)
        .map(|(n, o)| n.saturating_sub(*o))
        .collect();
    while buckets.last() == Some(&0) {
        buckets.pop();
    }
    (exits, buckets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use accel::GuestLevel;

    #[test]
    fn a_sample_holds_only_what_changed() {
        let mut a = ExitTally {
            exits: vec![(GuestLevel::L1, 30, 5)],
            in_guest: [0; IN_GUEST_BUCKETS],
        };
        a.in_guest[2] = 4;
        let mut b = ExitTally {
            exits: vec![(GuestLevel::L1, 30, 7), (GuestLevel::L2, 75, 1)],
            in_guest: a.in_guest,
        };
        b.in_guest[2] = 6;
        b.in_guest[4] = 1;
        let (exits, buckets) = difference(&a, &b);
        assert_eq!(
            exits,
            BTreeMap::from([
                ("L1 io-instruction".to_string(), 2),
                ("L2 notify".to_string(), 1)
            ])
        );
        assert_eq!(buckets, vec![0, 0, 2, 0, 1]);
    }
}
