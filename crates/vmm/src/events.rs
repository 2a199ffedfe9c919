//! The event log (`--events FILE`): one JSON object per line for every
//! notable event of a run — notify exits, shutdowns, the watchdog, the
//! timeout and each policy action.
//!
//! Every line carries the same keys, `null` where a value does not apply or
//! the accelerator cannot report it:
//!
//! | key | meaning |
//! |---|---|
//! | `event` | `notify-exit`, `shutdown`, `watchdog`, `timeout`, `policy`, `notify-unavailable` |
//! | `host_ms` | host milliseconds since the run started |
//! | `virtual_ns` | the vCPU's virtual time (soft accelerator) |
//! | `vcpu` | vCPU index |
//! | `level` | `L1` or `L2` |
//! | `exit_reason` | basic VM exit reason (75 for notify) |
//! | `qualification` | exit qualification |
//! | `rip` | guest RIP |
//! | `idt_vectoring_info` | IDT-vectoring information (bit 31: an event was being delivered) |
//! | `detail` | a sentence for people |

use accel::GuestLevel;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Instant;

/// The keys of every line, in the order of the table above.
pub const KEYS: [&str; 10] = [
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
}

/// Where events go: a JSON-lines writer, or nowhere.
pub struct EventLog {
    out: Option<Box<dyn Write + Send>>,
    start: Instant,
    written: u64,
    error: Option<std::io::Error>,
}

impl EventLog {
    /// A log writing to `out`, or discarding events when `None`; host times
    /// count from now.
    pub fn new(out: Option<Box<dyn Write + Send>>) -> Self {
        EventLog {
            out,
            start: Instant::now(),
            written: 0,
            error: None,
        }
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
        })
    }

    /// Writes one line for `ev` (flushed, so a stalled run loses nothing).
    /// The first write error is kept and later events are dropped.
    pub fn record(&mut self, ev: &Event) {
        let line = self.to_json(ev).to_string();
        if let (Some(out), None) = (self.out.as_mut(), self.error.as_ref()) {
            let r = writeln!(out, "{line}").and_then(|()| out.flush());
            match r {
                Ok(()) => self.written += 1,
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The write error that stopped the log, if any.
    pub fn take_error(&mut self) -> Option<std::io::Error> {
        self.error.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::SharedBuf;

    #[test]
    fn every_line_is_json_with_every_key() {
        let out = SharedBuf::default();
        let mut log = EventLog::new(Some(Box::new(out.clone())));
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
    }
}
