//! The event log (`--events FILE`): one JSON object per line for every
//! notable event of a run — notify exits, shutdowns, the watchdog, the
//! timeout and each policy action — and, at every host tick, a `sample` of
//! the VM exits taken since the previous one (what `vigil report` draws).
//!
//! Every line carries the same keys, `null` where a value does not apply or
//! the accelerator cannot report it:
//!
//! | key | meaning |
//! |---|---|
//! | `event` | `notify-exit`, `shutdown`, `watchdog`, `timeout`, `exit` (the guest ended the run at the debug-exit port), `policy`, `notify-unavailable`, `sample` |
//! | `host_ms` | host milliseconds since the run started |
//! | `virtual_ns` | the vCPU's virtual time (soft accelerator) |
//! | `vcpu` | vCPU index |
//! | `level` | `L1` or `L2` |
//! | `exit_reason` | basic VM exit reason (75 for notify) |
//! | `qualification` | exit qualification |
//! | `rip` | guest RIP |
//! | `idt_vectoring_info` | IDT-vectoring information (bit 31: an event was being delivered) |
//! | `detail` | a sentence for people |
//! | `in_guest_ms` | `sample`: host time the vCPU has been in the guest since it last returned to L0 (`null`: not in the guest) |
//! | `exits` | `sample`: VM exits L0 took since the previous sample, as `{"L1 cpuid": 3, "L2 notify": 1}` (level, then `x86::vmx::exit_reason::name`) |
//! | `l0_returns` | `sample`: stretches in the guest that ended since the previous sample, counted by host time in 32 buckets (`accel::in_guest_bucket`: under 1 µs, then `[2^(i-1), 2^i)` µs) |

use accel::GuestLevel;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The keys of every line, in the order of the table above.
pub const KEYS: [&str; 13] = [
    "event",
    "host_ms",
    "virtual_ns",
    "vcpu",
    "level",
    "exit_reason",
    "qualification",
    "rip",
    "idt_vectoring_info",
    "detail",
    "in_guest_ms",
    "exits",
    "l0_returns",
];

/// One event, before it is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// What happened (the `event` key).
    pub kind: &'static str,
    /// Virtual time of the vCPU, in nanoseconds.
    pub virtual_ns: Option<u64>,
    /// vCPU index.
    pub vcpu: u32,
    /// Which guest was running.
    pub level: Option<GuestLevel>,
    /// Basic VM exit reason.
    pub exit_reason: Option<u16>,
    /// Exit qualification.
    pub qualification: Option<u64>,
    /// Guest RIP.
    pub rip: Option<u64>,
    /// IDT-vectoring information.
    pub idt_vectoring_info: Option<u32>,
    /// A sentence for people.
    pub detail: String,
    /// Time in the guest since the last return to L0 (samples).
    pub in_guest: Option<Duration>,
    /// VM exits since the previous sample, by `"<level> <reason>"`.
    pub exits: Option<BTreeMap<String, u64>>,
    /// Stretches in the guest since the previous sample, by host-time bucket.
    pub l0_returns: Option<Vec<u64>>,
}

/// Where events go: a JSON-lines writer, or nowhere. A clone writes to the
/// same place (the vCPU loop and the monitor thread, which writes the
/// samples, share one).
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Mutex<Sink>>,
    start: Instant,
}

struct Sink {
    out: Option<Box<dyn Write + Send>>,
    written: u64,
    error: Option<std::io::Error>,
}

impl EventLog {
    /// A log writing to `out`, or discarding events when `None`; host times
    /// count from now.
    pub fn new(out: Option<Box<dyn Write + Send>>) -> Self {
        EventLog {
            inner: Arc::new(Mutex::new(Sink {
                out,
                written: 0,
                error: None,
            })),
            start: Instant::now(),
        }
    }

    /// Whether events go anywhere.
    pub fn is_active(&self) -> bool {
        self.sink().out.is_some()
    }

    fn sink(&self) -> std::sync::MutexGuard<'_, Sink> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The JSON object for `ev` as of now.
    pub fn to_json(&self, ev: &Event) -> Value {
        json!({
            "event": ev.kind,
            "host_ms": self.start.elapsed().as_secs_f64() * 1e3,
            "virtual_ns": ev.virtual_ns,
            "vcpu": ev.vcpu,
            "level": ev.level.map(|l| l.to_string()),
            "exit_reason": ev.exit_reason,
            "qualification": ev.qualification,
            "rip": ev.rip,
            "idt_vectoring_info": ev.idt_vectoring_info,
            "detail": ev.detail,
            "in_guest_ms": ev.in_guest.map(|d| d.as_secs_f64() * 1e3),
            "exits": ev.exits,
            "l0_returns": ev.l0_returns,
        })
    }

    /// Writes one line for `ev` (flushed, so a stalled run loses nothing).
    /// The first write error is kept and later events are dropped.
    pub fn record(&self, ev: &Event) {
        let line = self.to_json(ev).to_string();
        let sink = &mut *self.sink();
        if let (Some(out), None) = (sink.out.as_mut(), sink.error.as_ref()) {
            let r = writeln!(out, "{line}").and_then(|()| out.flush());
            match r {
                Ok(()) => sink.written += 1,
                Err(e) => sink.error = Some(e),
            }
        }
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.sink().written
    }

    /// The write error that stopped the log, if any.
    pub fn take_error(&self) -> Option<std::io::Error> {
        self.sink().error.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::SharedBuf;

    #[test]
    fn every_line_is_json_with_every_key() {
        let out = SharedBuf::default();
        let log = EventLog::new(Some(Box::new(out.clone())));
        log.record(&Event {
            kind: "notify-exit",
            virtual_ns: Some(5_120_000),
            level: Some(GuestLevel::L1),
            exit_reason: Some(75),
            qualification: Some(0),
            rip: Some(0x10_0000),
            idt_vectoring_info: Some(0x8000_0b11),
            detail: "a \"quoted\" detail".into(),
            ..Event::default()
        });
        log.record(&Event {
            kind: "watchdog",
            ..Event::default()
        });
        assert_eq!(log.written(), 2);
        let text = String::from_utf8(out.bytes()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        for v in &lines {
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            let mut want = KEYS.to_vec();
            want.sort_unstable();
            assert_eq!(keys, want, "{v}");
        }
        assert_eq!(lines[0]["level"], "L1");
        assert_eq!(lines[0]["idt_vectoring_info"], 0x8000_0b11u32);
        assert_eq!(lines[0]["detail"], "a \"quoted\" detail");
        assert!(lines[1]["rip"].is_null());
        assert!(lines[1]["exits"].is_null());
    }

    #[test]
    fn a_sample_carries_exits_and_stretches() {
        let out = SharedBuf::default();
        let log = EventLog::new(Some(Box::new(out.clone())));
        log.record(&Event {
            kind: "sample",
            in_guest: Some(Duration::from_micros(1500)),
            exits: Some(BTreeMap::from([("L2 notify".to_string(), 7)])),
            l0_returns: Some(vec![0, 3, 1]),
            ..Event::default()
        });
        let v: Value = serde_json::from_slice(&out.bytes()).unwrap();
        assert_eq!(v["event"], "sample");
        assert_eq!(v["in_guest_ms"], 1.5);
        assert_eq!(v["exits"]["L2 notify"], 7);
        assert_eq!(v["l0_returns"][1], 3);
    }
}
