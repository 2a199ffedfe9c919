//! `vigil report`: pictures of a run drawn from its event log, and the
//! pages of `vigil demo --report`.

mod chart;
pub mod demo;
pub mod log;
pub mod page;
#[cfg(test)]
mod svg_text;

use crate::cli::ReportArgs;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a report could not be made.
#[derive(Debug)]
pub enum ReportError {
    /// The event log cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The event log is not one `vigil run --events` writes.
    Log {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: log::LogError,
    },
    /// The output's name ends in neither `.svg` nor `.html`.
    Format(PathBuf),
    /// Drawing failed.
    Draw(chart::DrawError),
    /// The picture or page cannot be written.
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Read { path, source } => write!(
                f,
                "cannot read the event log '{}': {source}; check the path",
                path.display()
            ),
            ReportError::Log { path, source } => write!(f, "'{}': {source}", path.display()),
            ReportError::Format(path) => write!(
                f,
                "cannot tell what to write from '{}': name the output FILE.svg or FILE.html",
                path.display()
            ),
            ReportError::Draw(e) => write!(f, "drawing the picture failed: {e}"),
            ReportError::Write { path, source } => write!(
                f,
                "cannot write '{}': {source}; check the path and its directory",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ReportError {}

impl From<chart::DrawError> for ReportError {
    fn from(e: chart::DrawError) -> Self {
        ReportError::Draw(e)
    }
}

/// Reads the event log at `path`.
pub fn read_log(path: &Path) -> Result<log::RunLog, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    log::parse(&text).map_err(|source| ReportError::Log {
        path: path.to_path_buf(),
        source,
    })
}

/// The SVG picture of `log`.
pub fn svg(log: &log::RunLog, title: &str) -> Result<String, ReportError> {
    Ok(chart::svg(log, title)?)
}

/// Writes `text` to `path`.
pub fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Draws the log at `events` into `out`, an SVG picture or an HTML page
/// by the name's ending; returns the bytes written.
pub fn draw(events: &Path, out: &Path) -> Result<usize, ReportError> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let html = match ext.as_deref() {
        Some("svg") => false,
        Some("html" | "htm") => true,
        _ => return Err(ReportError::Format(out.to_path_buf())),
    };
    let log = read_log(events)?;
    let title = format!("Vigil run: {}", events.display());
    let picture = svg(&log, &title)?;
    let text = if html {
        page::run_page(&title, &log.summary(), &picture)
    } else {
        picture
    };
    write(out, &text)?;
    Ok(text.len())
}

/// `vigil report`: returns the process status.
pub fn run(args: &ReportArgs) -> u8 {
    match draw(&args.events, &args.output) {
        Ok(bytes) => {
            eprintln!("vigil: wrote {} ({bytes} bytes)", args.output.display());
            0
        }
        Err(e) => {
            eprintln!("vigil: {e}");
            match e {
                ReportError::Read { .. } | ReportError::Log { .. } | ReportError::Format(_) => {
                    crate::status::USAGE
                }
                _ => 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::svg_text::texts;
    use super::*;

    const LOG: &str = r#"{"event":"sample","host_ms":10.0,"virtual_ns":2000000,"in_guest_ms":0.5,"exits":{"L1 io-instruction":40,"L1 vmlaunch":1},"l0_returns":[3,30,7]}
{"event":"notify-exit","host_ms":12.0,"virtual_ns":5000000,"level":"L1","idt_vectoring_info":2147486481,"detail":"n"}
{"event":"sample","host_ms":20.0,"virtual_ns":6000000,"in_guest_ms":1.0,"exits":{"L1 notify":1,"L2 cpuid":9},"l0_returns":[0,9]}
{"event":"notify-exit","host_ms":25.0,"virtual_ns":7000000,"level":"L2","idt_vectoring_info":2147484162,"detail":"n"}
{"event":"sample","host_ms":30.0,"virtual_ns":7000000,"in_guest_ms":600.0,"exits":{"L2 notify":1},"l0_returns":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]}
{"event":"watchdog","host_ms":640.0,"virtual_ns":7100000,"detail":"w"}
"#;

    #[test]
    fn a_synthetic_log_draws_every_part() {
        let log = log::parse(LOG).unwrap();
        let svg = svg(&log, "synthetic run").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.trim_end().ends_with("</svg>"));
        let texts = texts(&svg);
        let has = |t: &str| texts.iter().filter(|x| *x == t).count();
        assert_eq!(has("synthetic run"), 1);
        for caption in [
            "VM exits by kind and level over virtual time",
            "VM exits by kind and level over host time",
            "Time in the guest since the last return to L0, at each host tick",
            "Host time between returns to L0 (stretches in the guest)",
        ] {
            assert_eq!(has(caption), 1, "{caption}: {texts:?}");
        }
        // Each timeline names every row of exits, by level and kind.
        for row in [
            "L1 io-instruction",
            "L1 vmlaunch",
            "L1 notify",
            "L2 cpuid",
            "L2 notify",
        ] {
            assert_eq!(has(row), 2, "{row}: {texts:?}");
        }
        assert_eq!(has("notify exit, stalled: #AC"), 2);
        assert_eq!(has("notify exit, stalled: NMI"), 2);
        assert_eq!(has("L1 exits between two ticks (darker: more)"), 2);
        assert_eq!(has("L2 exits between two ticks (darker: more)"), 2);
        assert_eq!(has("watchdog"), 2);
        // A triangle per notify exit per timeline, and one per legend entry.
        assert_eq!(svg.matches("<polygon").count(), 2 * 2 + 2 * 2);
        // The histogram's buckets: <1us, 1us, 2us, and the 512 ms one.
        assert!(
            texts.iter().any(|t| t == "<1us" || t == "&lt;1us"),
            "{texts:?}"
        );
        assert_eq!(log.l0_returns().iter().filter(|n| **n > 0).count(), 4);
    }

    #[test]
    fn an_html_page_holds_the_picture_and_the_summary() {
        let log = log::parse(LOG).unwrap();
        let picture = svg(&log, "t").unwrap();
        let html = page::run_page("a <run>", &log.summary(), &picture);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(html.matches("<svg").count(), 1);
        assert!(!html.contains("<?xml"));
        assert!(html.contains("<h1>a &lt;run&gt;</h1>"));
        assert!(
            html.contains("ended by watchdog; 2 notify exits; 52 VM exits"),
            "{html}"
        );
    }
}
