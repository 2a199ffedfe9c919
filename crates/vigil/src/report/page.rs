//! HTML around the pictures: one run's page, and `vigil demo --report`'s
//! index that sets the contained and the stalled runs side by side.

use super::log::Summary;

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:6px;vertical-align:top}\
th{background:#f3f3f3}td svg{display:block;width:460px;height:auto}\
.sum{color:#555;font-size:13px;max-width:460px}td{max-width:470px}";

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One line of figures for people.
pub fn summary_line(s: &Summary) -> String {
    format!(
        "ended by {}; {} notify exits; {} VM exits; {:.1} ms host time, {:.3} ms virtual time; \
         longest stretch in the guest seen at a tick {:.1} ms",
        s.end, s.notify_exits, s.exits, s.host_ms, s.virtual_ms, s.longest_in_guest_ms
    )
}

/// A whole page holding `body`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>{STYLE}</style></head>\n<body><h1>{t}</h1>\n{body}</body></html>\n",
        t = escape(title)
    )
}

/// The page of one run: its summary line and its picture inline.
pub fn run_page(title: &str, summary: &Summary, svg: &str) -> String {
    let svg = svg.trim_start_matches(|c| c != '<');
    let svg = svg.strip_prefix("<?xml").map_or(svg, |rest| {
        rest.split_once("?>").map_or(rest, |(_, after)| after)
    });
    page(
        title,
        &format!(
            "<p class=\"sum\">{}</p>\n<div class=\"run\">{svg}</div>\n",
            escape(&summary_line(summary))
        ),
    )
}

/// One scenario of the demo, drawn.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The scenario's name.
    pub scenario: String,
    /// The guest.
    pub guest: String,
    /// The policy column of the table.
    pub policy: String,
    /// The outcome column.
    pub outcome: String,
    /// Which column of the index it goes in.
    pub column: Column,
    /// The picture's file name, beside the index.
    pub svg_file: String,
    /// The overview drawn into the index (an SVG document), on the axes
    /// every overview of the index shares.
    pub overview: String,
    /// Its summary.
    pub summary: Summary,
}

/// The columns of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    /// Notify exits gave L0 the CPU back.
    ContainedByNotify,
    /// L0's #AC/#DB interception did.
    ContainedByInterception,
    /// Nothing did: the watchdog powered the VM off.
    Stalled,
    /// Every other outcome.
    Other,
}

impl Column {
    fn heading(self) -> &'static str {
        match self {
            Column::ContainedByNotify => "contained by notify VM exits",
            Column::ContainedByInterception => "contained by #AC/#DB interception",
            Column::Stalled => "stalled: no notify, the watchdog powers off",
            Column::Other => "other",
        }
    }
}

fn cell(e: &Entry) -> String {
    format!(
        "<a href=\"{f}\" title=\"{alt}: the whole picture\">{overview}</a><b>{s}</b> ({g}; {p})\
         <br>{o}<br><span class=\"sum\">{sum}</span><br><a href=\"{f}\">the whole picture</a>",
        f = escape(&e.svg_file),
        overview = e.overview,
        alt = escape(&format!("{} on {}", e.scenario, e.guest)),
        s = escape(&e.scenario),
        g = escape(&e.guest),
        p = escape(&e.policy),
        o = escape(&e.outcome),
        sum = escape(&summary_line(&e.summary)),
    )
}

/// The index: a table with one row per guest that has contained or stalled
/// runs and one column per outcome, then every other scenario.
pub fn index_page(entries: &[Entry]) -> String {
    let columns = [
        Column::ContainedByNotify,
        Column::ContainedByInterception,
        Column::Stalled,
    ];
    let mut guests: Vec<&str> = Vec::new();
    for e in entries.iter().filter(|e| e.column != Column::Other) {
        if !guests.contains(&e.guest.as_str()) {
            guests.push(&e.guest);
        }
    }
    let mut body = String::from(
        "<p>Each scenario's event log drawn on the same axes: the blue line is how long the vCPU \
         had been in the guest without returning to L0, at each host tick (log scale); red \
         triangles are notify exits, red lines how the run ended. Contained runs keep returning \
         to L0 within milliseconds; a stalled one stops returning until the watchdog cuts the \
         power. Each overview links to the run's whole picture (<code>vigil report</code>: exits \
         by kind and level over virtual and host time, and the distribution of host time \
         between returns to L0).</p>\n<table>\n<tr><th>guest</th>",
    );
    for c in columns {
        body += &format!("<th>{}</th>", c.heading());
    }
    body += "</tr>\n";
    for g in &guests {
        body += &format!("<tr><th>{}</th>", escape(g));
        for c in columns {
            let cells: Vec<String> = entries
                .iter()
                .filter(|e| e.guest == *g && e.column == c)
                .map(cell)
                .collect();
            body += &format!("<td>{}</td>", cells.join("<hr>"));
        }
        body += "</tr>\n";
    }
    body += "</table>\n<h2>The other scenarios</h2>\n<table><tr>";
    let others: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.column == Column::Other)
        .collect();
    for (i, e) in others.iter().enumerate() {
        if i > 0 && i % 3 == 0 {
            body += "</tr>\n<tr>";
        }
        body += &format!("<td>{}</td>", cell(e));
    }
    body += "</tr></table>\n";
    page("Vigil notify demo: pictures of each run", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }

    #[test]
    fn the_index_sets_outcomes_side_by_side() {
        let e = |scenario: &str, guest: &str, column| Entry {
            scenario: scenario.into(),
            guest: guest.into(),
            policy: "p".into(),
            outcome: "o".into(),
            column,
            svg_file: format!("{scenario}.svg"),
            overview: "<svg></svg>".into(),
            summary: Summary::default(),
        };
        let html = index_page(&[
            e("a", "ac-storm", Column::ContainedByNotify),
            e("d", "db-storm", Column::ContainedByNotify),
            e("b", "ac-storm", Column::Stalled),
            e("c", "hello64", Column::Other),
        ]);
        let row = html.split("<tr><th>ac-storm</th>").nth(1).unwrap();
        let row = row.split("</tr>").next().unwrap();
        assert_eq!(row.matches("<td>").count(), 3);
        assert!(row.contains("a.svg") && row.contains("b.svg"));
        assert_eq!(html.matches("<tr><th>ac-storm</th>").count(), 1);
        assert!(html.contains("<h2>The other scenarios</h2>"));
        assert!(html.split("<h2>").nth(1).unwrap().contains("c.svg"));
    }
}
