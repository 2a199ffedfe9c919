//! `vigil demo --report DIR`: each scenario's event log and picture in DIR,
//! and DIR/index.html with the contained and stalled runs side by side.

use super::page::{self, Column, Entry};
use super::ReportError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Collects the scenarios' logs and pictures into a directory.
pub struct Recorder {
    dir: PathBuf,
    entries: Vec<Entry>,
    /// Each entry's log, for the overviews drawn at the end.
    logs: Vec<super::log::RunLog>,
}

/// The scenario being recorded.
pub struct Pending {
    log: PathBuf,
    svg_file: String,
    scenario: String,
    guest: String,
    policy: String,
}

/// A file-name fragment of `text`: letters and digits, the rest as `-`.
fn slug(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

impl Recorder {
    /// A recorder writing into `dir`, created if missing.
    pub fn new(dir: &Path) -> Result<Recorder, ReportError> {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Recorder {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
            logs: Vec::new(),
        })
    }

    /// Opens the event log of scenario number `n`.
    pub fn start(
        &self,
        n: usize,
        scenario: &str,
        guest: &str,
        policy: &str,
    ) -> Result<(Pending, Box<dyn Write + Send>), ReportError> {
        let stem = format!("{n:02}-{}-{}", slug(guest), slug(policy));
        let log = self.dir.join(format!("{stem}.jsonl"));
        let file = std::fs::File::create(&log).map_err(|source| ReportError::Write {
            path: log.clone(),
            source,
        })?;
        let pending = Pending {
            log,
            svg_file: format!("{stem}.svg"),
            scenario: scenario.into(),
            guest: guest.into(),
            policy: policy.into(),
        };
        Ok((pending, Box::new(std::io::BufWriter::new(file))))
    }

    /// Draws the finished scenario, to go in `column` of the index.
    pub fn finish(&mut self, p: Pending, outcome: &str, column: Column) -> Result<(), ReportError> {
        let log = super::read_log(&p.log)?;
        let title = format!("{} — {} ({})", p.scenario, p.guest, p.policy);
        let svg = super::svg(&log, &title)?;
        super::write(&self.dir.join(&p.svg_file), &svg)?;
        self.entries.push(Entry {
            scenario: p.scenario,
            guest: p.guest,
            policy: p.policy,
            outcome: outcome.into(),
            column,
            svg_file: p.svg_file,
            overview: String::new(),
            summary: log.summary(),
        });
        self.logs.push(log);
        Ok(())
    }

    /// Writes the index page; returns its path. The overviews of the
    /// contained and stalled runs, set side by side, share their axes; the
    /// other scenarios' each span their own run.
    pub fn index(&self) -> Result<PathBuf, ReportError> {
        let padded = |ms: f64| ms.max(1.0) * 1.04;
        let side_by_side = self.entries.iter().filter(|e| e.column != Column::Other);
        let shared = padded(side_by_side.map(|e| e.summary.host_ms).fold(0.0, f64::max));
        let mut entries = self.entries.clone();
        for (e, log) in entries.iter_mut().zip(&self.logs) {
            let span = match e.column {
                Column::Other => padded(e.summary.host_ms),
                _ => shared,
            };
            e.overview = super::chart::overview(log, span)?;
        }
        let path = self.dir.join("index.html");
        super::write(&path, &page::index_page(&entries))?;
        Ok(path)
    }

    /// Bytes of everything in the directory that the recorder wrote.
    pub fn bytes(&self) -> u64 {
        let names = self.entries.iter().map(|e| e.svg_file.clone());
        names
            .chain(std::iter::once("index.html".to_string()))
            .filter_map(|n| std::fs::metadata(self.dir.join(n)).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Writes the index page of `r` and says where it is on `out`; returns the
/// number of failures (0 or 1), which are reported on stderr.
pub fn announce(r: &Recorder, out: &mut impl Write) -> usize {
    match r.index() {
        Ok(path) => {
            let _ = writeln!(
                out,
                "\nPictures: {} ({} KiB with the pictures)",
                path.display(),
                r.bytes().div_ceil(1024)
            );
            0
        }
        Err(e) => {
            eprintln!("vigil: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("#AC storm, context invalid"),
            "ac-storm-context-invalid"
        );
        assert_eq!(slug("nested, L1 uses notify"), "nested-l1-uses-notify");
    }
}
