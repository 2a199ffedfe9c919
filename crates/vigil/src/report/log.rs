//! Reading an event log (`vigil run --events FILE`, keys in
//! `vmm::events::KEYS`) into what the pictures draw.

use serde_json::Value;
use std::fmt;

/// A periodic `sample` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Host milliseconds since the run started.
    pub host_ms: f64,
    /// Virtual time of the vCPU, in milliseconds, where known.
    pub virtual_ms: Option<f64>,
    /// Time in the guest since the last return to L0, if it was in the guest.
    pub in_guest_ms: Option<f64>,
    /// VM exits since the previous sample: (`"<level> <reason>"`, count).
    pub exits: Vec<(String, u64)>,
    /// Stretches in the guest by host-time bucket (`accel::in_guest_bucket`).
    pub l0_returns: Vec<u64>,
}

/// Any other line: a notify exit, a policy action, the end of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// The `event` key.
    pub kind: String,
    /// Host milliseconds since the run started.
    pub host_ms: f64,
    /// Virtual time, in milliseconds, where known.
    pub virtual_ms: Option<f64>,
    /// `L1` or `L2`, where known.
    pub level: Option<String>,
    /// IDT-vectoring information: the event whose delivery was stalled.
    pub idt_vectoring_info: Option<u32>,
    /// The sentence for people.
    pub detail: String,
}

impl Mark {
    /// What the stalled event was, for a notify exit: `#AC`, `#DB`, `NMI`,
    /// `vector N`, or `no event` when nothing was being delivered.
    pub fn stalled_event(&self) -> String {
        match self.idt_vectoring_info {
            Some(info) if info & (1 << 31) != 0 => {
                let vector = info & 0xFF;
                match ((info >> 8) & 7, vector) {
                    (2, _) => "NMI".into(),
                    (3, 1) => "#DB".into(),
                    (3, 17) => "#AC".into(),
                    (3, v) => format!("exception {v}"),
                    (_, v) => format!("vector {v}"),
                }
            }
            _ => "no event".into(),
        }
    }
}

/// A whole log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLog {
    /// The samples, in order.
    pub samples: Vec<Sample>,
    /// Every other line, in order.
    pub marks: Vec<Mark>,
}

/// A log that cannot be read.
#[derive(Debug)]
pub enum LogError {
    /// Line `line` is not JSON.
    Json {
        /// 1-based line number.
        line: usize,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// Line `line` lacks a key every line has, or holds a value of the wrong type.
    Key {
        /// 1-based line number.
        line: usize,
        /// The key.
        key: &'static str,
    },
    /// The log has no lines.
    Empty,
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Json { line, source } => write!(
                f,
                "line {line} is not JSON ({source}); pass a log written by `vigil run --events FILE`"
            ),
            LogError::Key { line, key } => write!(
                f,
                "line {line} lacks '{key}' or holds the wrong type there; pass a log written by \
                 `vigil run --events FILE`"
            ),
            LogError::Empty => write!(
                f,
                "the event log is empty; write one with `vigil run --events FILE`"
            ),
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Json { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn ms_of_ns(v: &Value) -> Option<f64> {
    v.as_u64().map(|ns| ns as f64 / 1e6)
}

/// Reads the JSON lines of `text` (blank lines are skipped).
pub fn parse(text: &str) -> Result<RunLog, LogError> {
    let mut log = RunLog::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(raw).map_err(|source| LogError::Json { line, source })?;
        let key = |key| LogError::Key { line, key };
        let kind = v["event"].as_str().ok_or_else(|| key("event"))?;
        let host_ms = v["host_ms"].as_f64().ok_or_else(|| key("host_ms"))?;
        let virtual_ms = ms_of_ns(&v["virtual_ns"]);
        if kind == "sample" {
            let exits = match v["exits"].as_object() {
                Some(m) => m
                    .iter()
                    .map(|(k, n)| {
                        n.as_u64()
                            .map(|n| (k.clone(), n))
                            .ok_or_else(|| key("exits"))
                    })
                    .collect::<Result<_, _>>()?,
                None if v["exits"].is_null() => Vec::new(),
                None => return Err(key("exits")),
            };
            let l0_returns = match v["l0_returns"].as_array() {
                Some(a) => a
                    .iter()
                    .map(|n| n.as_u64().ok_or_else(|| key("l0_returns")))
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            };
            log.samples.push(Sample {
                host_ms,
                virtual_ms,
                in_guest_ms: v["in_guest_ms"].as_f64(),
                exits,
                l0_returns,
            });
        } else {
            log.marks.push(Mark {
                kind: kind.to_string(),
                host_ms,
                virtual_ms,
                level: v["level"].as_str().map(str::to_string),
                idt_vectoring_info: v["idt_vectoring_info"].as_u64().map(|x| x as u32),
                detail: v["detail"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    if log.samples.is_empty() && log.marks.is_empty() {
        return Err(LogError::Empty);
    }
    Ok(log)
}

/// The events that end a run, or act on it (a policy's): drawn as lines.
pub const ENDS: [&str; 5] = ["watchdog", "timeout", "shutdown", "exit", "policy"];

/// What a run's log says in a few figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// How the run ended: the last of [`ENDS`], or `end of log`.
    pub end: String,
    /// Notify exits logged.
    pub notify_exits: usize,
    /// VM exits in the samples, all kinds.
    pub exits: u64,
    /// Host time covered, ms.
    pub host_ms: f64,
    /// Virtual time covered, ms.
    pub virtual_ms: f64,
    /// The longest stretch in the guest seen by a sample, ms.
    pub longest_in_guest_ms: f64,
}

impl RunLog {
    /// The figures of the summary line.
    pub fn summary(&self) -> Summary {
        let end = self
            .ends()
            .last()
            .map_or("end of log".to_string(), |m| m.kind.clone());
        let host = self.samples.iter().map(|s| s.host_ms);
        let host = host.chain(self.marks.iter().map(|m| m.host_ms));
        let virt = self.samples.iter().filter_map(|s| s.virtual_ms);
        let virt = virt.chain(self.marks.iter().filter_map(|m| m.virtual_ms));
        Summary {
            end,
            notify_exits: self.notifies().count(),
            exits: self
                .samples
                .iter()
                .flat_map(|s| &s.exits)
                .map(|e| e.1)
                .sum(),
            host_ms: host.fold(0.0, f64::max),
            virtual_ms: virt.fold(0.0, f64::max),
            longest_in_guest_ms: self
                .samples
                .iter()
                .filter_map(|s| s.in_guest_ms)
                .fold(0.0, f64::max),
        }
    }

    /// The lines that end a run (or act on it: a policy's).
    pub fn ends(&self) -> impl Iterator<Item = &Mark> {
        self.marks
            .iter()
            .filter(|m| ENDS.contains(&m.kind.as_str()))
    }

    /// The notify-exit lines.
    pub fn notifies(&self) -> impl Iterator<Item = &Mark> {
        self.marks.iter().filter(|m| m.kind == "notify-exit")
    }

    /// The exit kinds of the samples (`"<level> <reason>"`), L1 before L2,
    /// then by name.
    pub fn exit_kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .samples
            .iter()
            .flat_map(|s| s.exits.iter().map(|e| e.0.clone()))
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// Stretches in the guest by bucket, over the whole run.
    pub fn l0_returns(&self) -> Vec<u64> {
        let mut total: Vec<u64> = Vec::new();
        for s in &self.samples {
            if total.len() < s.l0_returns.len() {
                total.resize(s.l0_returns.len(), 0);
            }
            for (t, n) in total.iter_mut().zip(&s.l0_returns) {
                *t += n;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"event":"notify-exit","host_ms":1.5,"virtual_ns":5000000,"level":"L1","idt_vectoring_info":2147486481,"detail":"n"}
{"event":"sample","host_ms":10.0,"virtual_ns":6000000,"in_guest_ms":2.0,"exits":{"L1 notify":1,"L1 io-instruction":4},"l0_returns":[0,4,1]}

{"event":"sample","host_ms":20.0,"virtual_ns":7000000,"in_guest_ms":null,"exits":{"L2 cpuid":2},"l0_returns":[1]}
{"event":"timeout","host_ms":21.0,"virtual_ns":7000000,"detail":"t"}
"#;

    #[test]
    fn a_log_reads_into_samples_and_marks() {
        let log = parse(LOG).unwrap();
        assert_eq!(log.samples.len(), 2);
        assert_eq!(log.marks.len(), 2);
        assert_eq!(log.samples[0].virtual_ms, Some(6.0));
        assert_eq!(log.samples[1].in_guest_ms, None);
        assert_eq!(log.marks[0].stalled_event(), "#AC");
        assert_eq!(
            log.exit_kinds(),
            ["L1 io-instruction", "L1 notify", "L2 cpuid"]
        );
        assert_eq!(log.l0_returns(), [1, 4, 1]);
        let s = log.summary();
        assert_eq!(s.end, "timeout");
        assert_eq!(s.notify_exits, 1);
        assert_eq!(s.exits, 7);
        assert_eq!(s.host_ms, 21.0);
        assert_eq!(s.longest_in_guest_ms, 2.0);
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(matches!(parse("{"), Err(LogError::Json { line: 1, .. })));
        assert!(matches!(
            parse("{\"event\":\"sample\"}"),
            Err(LogError::Key {
                line: 1,
                key: "host_ms"
            })
        ));
        assert!(matches!(parse("\n"), Err(LogError::Empty)));
    }

    #[test]
    fn stalled_events_are_named() {
        let m = |info| Mark {
            kind: "notify-exit".into(),
            host_ms: 0.0,
            virtual_ms: None,
            level: None,
            idt_vectoring_info: info,
            detail: String::new(),
        };
        assert_eq!(m(Some(0x8000_0301)).stalled_event(), "#DB");
        assert_eq!(m(Some(0x8000_0202)).stalled_event(), "NMI");
        assert_eq!(m(Some(0x301)).stalled_event(), "no event");
        assert_eq!(m(None).stalled_event(), "no event");
    }
}
