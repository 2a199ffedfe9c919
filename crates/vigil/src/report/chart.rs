//! The picture of one run, drawn with `plotters` into an SVG document:
//! VM exits by kind and level over virtual and over host time (notify exits
//! marked by the event whose delivery they stalled, the watchdog and the
//! end as lines), the time in the guest since the last return to L0, and
//! the distribution of host time between returns to L0.

use super::log::{Mark, RunLog, Sample};
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A drawing error of the SVG backend.
pub type DrawError = DrawingAreaErrorKind<std::io::Error>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

const WIDTH: u32 = 1200;
const ROW: u32 = 26;
/// Empty bands on top of a timeline, for the legend and the ends' labels.
const LEGEND_ROWS: u32 = 3;
const FONT: &str = "sans-serif";
const L1: RGBColor = RGBColor(31, 119, 180);
const L2: RGBColor = RGBColor(44, 160, 44);
const END: RGBColor = RGBColor(214, 39, 40);

/// Which clock a timeline runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Clock {
    Virtual,
    Host,
}

impl Clock {
    fn of_sample(self, s: &Sample) -> Option<f64> {
        match self {
            Clock::Virtual => s.virtual_ms,
            Clock::Host => Some(s.host_ms),
        }
    }
    fn of_mark(self, m: &Mark) -> Option<f64> {
        match self {
            Clock::Virtual => m.virtual_ms,
            Clock::Host => Some(m.host_ms),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Clock::Virtual => "virtual time (ms)",
            Clock::Host => "host time (ms)",
        }
    }
}

/// The colour of a notify exit's marker, by the event it stalled.
fn stalled_colour(event: &str) -> RGBColor {
    match event {
        "#AC" => RGBColor(214, 39, 40),
        "#DB" => RGBColor(255, 127, 14),
        "NMI" => RGBColor(148, 103, 189),
        "no event" => RGBColor(127, 127, 127),
        _ => RGBColor(140, 86, 75),
    }
}

/// The SVG picture of `log`, titled `title`.
pub fn svg(log: &RunLog, title: &str) -> Result<String, DrawError> {
    let kinds = log.exit_kinds();
    let rows = kinds.len().max(1) as u32;
    let timeline = 120 + ROW * (rows + LEGEND_ROWS);
    let height = 40 + 2 * timeline + 230 + 270;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, (FONT, 22))?;
        let areas =
            root.split_by_breakpoints([] as [u32; 0], [timeline, 2 * timeline, 2 * timeline + 230]);
        timeline_chart(&areas[0], log, &kinds, Clock::Virtual)?;
        timeline_chart(&areas[1], log, &kinds, Clock::Host)?;
        in_guest_chart(&areas[2], log)?;
        histogram_chart(&areas[3], log)?;
        root.present()?;
    }
    Ok(out)
}

/// The span a timeline covers: from 0 to the latest time seen, padded.
fn span(log: &RunLog, clock: Clock) -> f64 {
    let samples = log.samples.iter().filter_map(|s| clock.of_sample(s));
    let marks = log.marks.iter().filter_map(|m| clock.of_mark(m));
    let max = samples.chain(marks).fold(0.0, f64::max);
    if max > 0.0 {
        max * 1.04
    } else {
        1.0
    }
}

/// Rows of exit kinds over one clock: each sample's exits as a band from
/// the previous sample's time to its own, darker the more exits; notify
/// exits as triangles coloured by the stalled event; the ends as lines.
fn timeline_chart(
    area: &Area<'_>,
    log: &RunLog,
    kinds: &[String],
    clock: Clock,
) -> Result<(), DrawError> {
    let x_max = span(log, clock);
    let rows = (kinds.len().max(1) as u32 + LEGEND_ROWS) as i32;
    let caption = format!(
        "VM exits by kind and level over {}",
        clock.name().trim_end_matches(" (ms)")
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 17))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(190)
        .build_cartesian_2d(0.0..x_max, (0..rows).into_segmented())?;
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => kinds.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows as usize)
        .y_label_formatter(&label)
        .x_desc(clock.name())
        .label_style((FONT, 13))
        .draw()?;
    let max = log
        .samples
        .iter()
        .flat_map(|s| s.exits.iter().map(|e| e.1))
        .max()
        .unwrap_or(1);
    let min_width = x_max / 400.0;
    let mut bands = Vec::new();
    let mut previous: f64 = 0.0;
    for s in &log.samples {
        let Some(t) = clock.of_sample(s) else {
            continue;
        };
        for (kind, n) in &s.exits {
            let Some(row) = kinds.iter().position(|k| k == kind) else {
                continue;
            };
            let colour = if kind.starts_with("L2") { L2 } else { L1 };
            let shade = 0.25 + 0.75 * ((*n as f64).ln_1p() / (max as f64).ln_1p());
            let x0 = previous.min(t - min_width).max(0.0);
            let y0 = SegmentValue::Exact(row as i32);
            let y1 = SegmentValue::Exact(row as i32 + 1);
            bands.push(Rectangle::new(
                [(x0, y0), (t, y1)],
                colour.mix(shade).filled(),
            ));
        }
        previous = t;
    }
    chart.draw_series(bands)?;
    notify_markers(&mut chart, log, kinds, clock)?;
    end_lines(&mut chart, log, clock, rows)?;
    for (level, colour) in [("L1", L1), ("L2", L2)] {
        if kinds.iter().any(|k| k.starts_with(level)) {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, SegmentValue<i32>), i32>>())?
                .label(format!("{level} exits between two ticks (darker: more)"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], colour.filled())
                });
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

type Timeline<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordi32>,
    >,
>;

/// A triangle per notify exit on its level's notify row, one legend entry
/// per stalled event.
fn notify_markers(
    chart: &mut Timeline<'_, '_>,
    log: &RunLog,
    kinds: &[String],
    clock: Clock,
) -> Result<(), DrawError> {
    let mut events: Vec<String> = log.notifies().map(|m| m.stalled_event()).collect();
    events.sort();
    events.dedup();
    for event in events {
        let colour = stalled_colour(&event);
        let points: Vec<(f64, SegmentValue<i32>)> = log
            .notifies()
            .filter(|m| m.stalled_event() == event)
            .filter_map(|m| {
                let kind = format!("{} notify", m.level.as_deref().unwrap_or("L1"));
                let row = kinds.iter().position(|k| *k == kind).unwrap_or(0) as i32;
                Some((clock.of_mark(m)?, SegmentValue::CenterOf(row)))
            })
            .collect();
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| TriangleMarker::new(p, 6, colour.filled())),
            )?
            .label(format!("notify exit, stalled: {event}"))
            .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 6, colour.filled()));
    }
    Ok(())
}

/// A vertical line and a label for the watchdog, the timeout, a shutdown,
/// the guest's exit, a policy action (or the end of the log where none
/// is), each label a row below the last.
fn end_lines(
    chart: &mut Timeline<'_, '_>,
    log: &RunLog,
    clock: Clock,
    rows: i32,
) -> Result<(), DrawError> {
    let mut lines: Vec<(f64, String)> = log
        .ends()
        .filter_map(|m| Some((clock.of_mark(m)?, m.kind.clone())))
        .collect();
    let last = log
        .samples
        .iter()
        .filter_map(|s| clock.of_sample(s))
        .fold(0.0, f64::max);
    if lines.is_empty() && last > 0.0 {
        lines.push((last, "end".to_string()));
    }
    let (x_lo, x_hi) = (chart.x_range().start, chart.x_range().end);
    let x_of_px = (x_hi - x_lo) / 200.0;
    for (i, (x, what)) in lines.into_iter().enumerate() {
        let top = SegmentValue::Exact(rows);
        let bottom = SegmentValue::Exact(0);
        chart.draw_series(LineSeries::new(
            [(x, bottom), (x, top)],
            END.stroke_width(2),
        ))?;
        chart.draw_series([Text::new(
            what,
            (
                x - x_of_px,
                SegmentValue::CenterOf((rows - 1 - i as i32).max(0)),
            ),
            (FONT, 14)
                .into_font()
                .color(&END)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        )])?;
    }
    Ok(())
}

/// How long the vCPU had been in the guest at each sample, over host time.
fn in_guest_chart(area: &Area<'_>, log: &RunLog) -> Result<(), DrawError> {
    let x_max = span(log, Clock::Host);
    let points: Vec<(f64, f64)> = log
        .samples
        .iter()
        .map(|s| (s.host_ms, s.in_guest_ms.unwrap_or(0.0)))
        .collect();
    let y_max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Time in the guest since the last return to L0, at each host tick",
            (FONT, 17),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(190)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc(Clock::Host.name())
        .y_desc("in guest (ms)")
        .label_style((FONT, 13))
        .draw()?;
    chart.draw_series(LineSeries::new(points.iter().copied(), L1.stroke_width(2)))?;
    chart.draw_series(points.iter().map(|p| Circle::new(*p, 2, L1.filled())))?;
    Ok(())
}

/// Size of an overview picture (`overview`).
const OVERVIEW: (u32, u32) = (460, 240);
/// The overviews' shared y range: time in the guest, ms (log scale).
const OVERVIEW_MS: std::ops::Range<f64> = 0.01..3000.0;

/// A small picture of one run for the demo's index, on axes every overview
/// shares (host time up to `span_ms`, time in the guest on one log scale)
/// so that runs set side by side compare at a glance: the time in the
/// guest since the last return to L0 at each host tick (at the floor when
/// the vCPU was not in the guest), notify exits as triangles along the
/// floor, the ends as labelled lines.
pub fn overview(log: &RunLog, span_ms: f64) -> Result<String, DrawError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, OVERVIEW).into_drawing_area();
        root.fill(&WHITE)?;
        let floor = OVERVIEW_MS.start;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(58)
            .build_cartesian_2d(0.0..span_ms, OVERVIEW_MS.log_scale())?;
        chart
            .configure_mesh()
            .x_desc("host time (ms)")
            .y_desc("in the guest (ms)")
            .y_label_formatter(&|v| format!("{v}"))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()?;
        let points: Vec<(f64, f64)> = log
            .samples
            .iter()
            .map(|s| (s.host_ms, s.in_guest_ms.unwrap_or(0.0).max(floor)))
            .collect();
        chart.draw_series(LineSeries::new(points.iter().copied(), L1.stroke_width(2)))?;
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 2, L1.filled())))?;
        chart.draw_series(
            log.notifies()
                .map(|m| TriangleMarker::new((m.host_ms, floor * 1.6), 4, END.filled())),
        )?;
        // Labels right of lines in the left half, left of them in the right
        // half, each further down than the last.
        for (i, m) in log.ends().enumerate() {
            let line = [(m.host_ms, floor), (m.host_ms, OVERVIEW_MS.end)];
            chart.draw_series(LineSeries::new(line, END.stroke_width(2)))?;
            let (side, dx) = if m.host_ms < span_ms / 2.0 {
                (HPos::Left, 1.0)
            } else {
                (HPos::Right, -1.0)
            };
            let style = (FONT, 13)
                .into_font()
                .color(&END)
                .pos(Pos::new(side, VPos::Top));
            let y = OVERVIEW_MS.end * 0.8 / 4f64.powi(i as i32);
            let x = m.host_ms + dx * span_ms / 100.0;
            chart.draw_series([Text::new(m.kind.clone(), (x, y), style)])?;
        }
        root.present()?;
    }
    Ok(out)
}

/// The label of bucket `i` of `accel::in_guest_bucket`: its lower bound.
fn bucket_label(i: usize) -> String {
    if i == 0 {
        return "<1us".into();
    }
    let us = 1u64 << (i - 1);
    match us {
        0..=999 => format!("{us}us"),
        1000..=999_999 => format!("{}ms", us / 1000),
        _ => format!("{}s", us / 1_000_000),
    }
}

/// The distribution of host time between returns to L0: stretches in the
/// guest per power-of-two bucket, on a log scale.
fn histogram_chart(area: &Area<'_>, log: &RunLog) -> Result<(), DrawError> {
    let counts = log.l0_returns();
    let buckets = counts.len().max(24) as i32;
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 3.0;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Host time between returns to L0 (stretches in the guest)",
            (FONT, 17),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(190)
        .build_cartesian_2d((0..buckets).into_segmented(), (0.5..top).log_scale())?;
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) if i % 2 == 0 => bucket_label(*i as usize),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(buckets as usize)
        .x_label_formatter(&label)
        .x_desc("host time in the guest (bucket's lower bound)")
        .y_desc("stretches")
        .label_style((FONT, 13))
        .draw()?;
    chart.draw_series(
        counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let i = i as i32;
                Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.5),
                        (SegmentValue::Exact(i + 1), *n as f64),
                    ],
                    L1.mix(0.8).filled(),
                )
            }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_labelled_by_their_lower_bound() {
        assert_eq!(bucket_label(0), "<1us");
        assert_eq!(bucket_label(1), "1us");
        assert_eq!(bucket_label(11), "1ms");
        assert_eq!(bucket_label(21), "1s");
    }
}
