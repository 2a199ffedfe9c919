//! `vigil report`: pictures drawn from a real run's event log.

mod common;
#[path = "../src/report/svg_text.rs"]
mod svg_text;

use common::vigil;
use svg_text::texts;

#[test]
fn a_contained_storm_is_drawn_from_its_event_log() {
    let dir = std::env::temp_dir().join(format!("vigil-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.jsonl");
    let (status, _, err) = vigil(&[
        "run",
        "--guest",
        "ac-storm",
        "--no-intercept-ac-db",
        "--timeout",
        "300ms",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(status, 12, "{err}");
    let log = std::fs::read_to_string(&events).unwrap();
    let notify = log
        .lines()
        .filter(|l| l.contains("\"event\":\"notify-exit\""))
        .count();
    assert!(notify > 0, "{log}");
    assert!(
        log.lines().any(|l| l.contains("\"event\":\"sample\"")),
        "{log}"
    );

    let svg_path = dir.join("run.svg");
    let (status, _, err) = vigil(&[
        "report",
        events.to_str().unwrap(),
        "-o",
        svg_path.to_str().unwrap(),
    ]);
    assert_eq!(status, 0, "{err}");
    assert!(err.contains("run.svg ("), "{err}");
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let texts = texts(&svg);
    let has = |t: &str| texts.iter().filter(|x| *x == t).count();
    assert_eq!(has("L1 notify"), 2, "{texts:?}");
    assert_eq!(has("L1 io-instruction"), 2, "the serial output: {texts:?}");
    assert_eq!(has("notify exit, stalled: #AC"), 2, "{texts:?}");
    assert_eq!(has("timeout"), 2, "{texts:?}");
    // A triangle per notify exit on each timeline, one in each legend.
    assert_eq!(svg.matches("<polygon").count(), 2 * notify + 2);

    let html_path = dir.join("run.html");
    let (status, _, err) = vigil(&[
        "report",
        events.to_str().unwrap(),
        "-o",
        html_path.to_str().unwrap(),
    ]);
    assert_eq!(status, 0, "{err}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 1);
    assert!(
        html.contains(&format!("ended by timeout; {notify} notify exits")),
        "{html}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_errors_name_the_cause_and_the_fix() {
    let dir = std::env::temp_dir().join(format!("vigil-report-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.jsonl");
    std::fs::write(&events, "{\"event\":\"sample\",\"host_ms\":1}\nnot json\n").unwrap();
    let e = events.to_str().unwrap();
    let out = dir.join("x.svg");
    let cases: [(&[&str], &str); 3] = [
        (
            &["report", e, "-o", "x.png"],
            "name the output FILE.svg or FILE.html",
        ),
        (
            &[
                "report",
                "/nonexistent/events.jsonl",
                "-o",
                out.to_str().unwrap(),
            ],
            "check the path",
        ),
        (
            &["report", e, "-o", out.to_str().unwrap()],
            "line 2 is not JSON",
        ),
    ];
    for (args, want) in cases {
        let (status, _, err) = vigil(args);
        assert_eq!(status, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
