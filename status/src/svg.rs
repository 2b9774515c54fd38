//! The pages' drawings, as inline SVG: a state's shape, a bar of days, a latency chart. Colours
//! come from the stylesheet through classes (light and dark), never from a style attribute (the CSP
//! forbids inline styles); every drawing says in text what it shows (`<title>`, `aria-label`).

use std::fmt::Write;

use time::OffsetDateTime;

use crate::{
    badges::escape,
    model::{
        figures::{percent, whole_percent},
        Day, Figures, State,
    },
};

/// The shape of a state, beside its word (colour is never the only signal): a disc for up, a
/// triangle for down, a diamond for unknown.
pub fn shape(state: State) -> &'static str {
    match state {
        State::Up => {
            r#"<svg class="shape up" viewBox="0 0 12 12" width="12" height="12" aria-hidden="true"><circle cx="6" cy="6" r="5"/></svg>"#
        }
        State::Down => {
            r#"<svg class="shape down" viewBox="0 0 12 12" width="12" height="12" aria-hidden="true"><path d="M6 1 11.5 11h-11z"/></svg>"#
        }
        State::Unknown => {
            r#"<svg class="shape unknown" viewBox="0 0 12 12" width="12" height="12" aria-hidden="true"><path d="M6 .5 11.5 6 6 11.5.5 6z"/></svg>"#
        }
    }
}

/// Pixels per day in a bar.
const DAY_WIDTH: usize = 4;
const BAR_HEIGHT: usize = 20;

/// The class of a day and what it says: `nodata` (grey, "no data": nobody measured), `up` (≥ 99.9 %),
/// `warn` (≥ 99 %), `down`; ` part` added when less than 90 % of it was measured.
pub fn day_class(figures: &Figures) -> (String, String) {
    let Some(uptime) = figures.shown_uptime() else { return ("nodata".into(), "no data".into()) };
    let class = match uptime {
        u if u >= 0.999 => "up",
        u if u >= 0.99 => "warn",
        _ => "down",
    };
    match figures.coverage {
        Some(coverage) => {
            let part = if coverage < 0.9 { " part" } else { "" };
            (format!("{class}{part}"), format!("{} up, {} measured", percent(uptime), whole_percent(coverage)))
        }
        None => (class.into(), format!("{} up by probes (no cadence stated)", percent(uptime))),
    }
}

/// The patterns the bars fill with, once per page (in `base.html`'s `<svg class="defs">`): a day
/// nobody measured is striped grey (`day-none`: seen without colour too), and a merged run is cut
/// into days by 1-pixel gaps of the page's background (`day-gaps`), so every day looks
/// [`DAY_WIDTH`] − 1 pixels wide and [`BAR_HEIGHT`] high, merged or not, measured or not.
const NO_DATA_FILL: &str = "url(#day-none)";
const GAPS_FILL: &str = "url(#day-gaps)";

/// A bar of `days` (oldest first). With `merge` (the overview: 50 sites × 90 days must stay small),
/// neighbouring days of the same class are one rectangle whose title gives the run's range of
/// uptime and coverage, and whose `data-coverage` is the run's lowest, with one gap pattern over
/// the bar marking the days; without it (a site's page), one rectangle per day.
pub fn day_bar(days: &[Day], merge: bool) -> String {
    let width = days.len() * DAY_WIDTH;
    let described: Vec<(String, String)> = days.iter().map(|day| day_class(&day.figures)).collect();
    let unmeasured = described.iter().filter(|(class, _)| class == "nodata").count();
    let mut out = format!(
        r#"<svg class="bar" viewBox="0 0 {width} {BAR_HEIGHT}" width="{width}" height="{BAR_HEIGHT}" role="img" aria-label="{} days, {} of them without data">"#,
        days.len(),
        unmeasured
    );
    let mut at = 0;
    while at < days.len() {
        let mut end = at + 1;
        while merge && end < days.len() && described[end].0 == described[at].0 {
            end += 1;
        }
        let run = &days[at..end];
        let (class, text) = match run.len() {
            1 => described[at].clone(),
            _ => (described[at].0.clone(), run_text(run).unwrap_or_else(|| described[at].1.clone())),
        };
        let title = match run.len() {
            1 => format!("{}: {text}", days[at].date),
            n => format!("{} to {} ({n} days): {text}", days[at].date, days[end - 1].date),
        };
        let lowest = run.iter().filter_map(|day| day.figures.coverage).reduce(f64::min);
        let coverage = lowest.map_or_else(String::new, |c| format!(r#" data-coverage="{c:.3}""#));
        let fill = if class == "nodata" { format!(r#" fill="{NO_DATA_FILL}""#) } else { String::new() };
        let _ = write!(
            out,
            r#"<rect class="day {class}" x="{}" width="{}" height="{BAR_HEIGHT}"{fill} data-from="{}" data-days="{}"{coverage}><title>{}</title></rect>"#,
            at * DAY_WIDTH,
            (end - at) * DAY_WIDTH - 1,
            days[at].date,
            end - at,
            escape(&title)
        );
        at = end;
    }
    if merge && days.len() > 1 {
        let _ = write!(out, r#"<rect class="gaps" width="{width}" height="{BAR_HEIGHT}" fill="{GAPS_FILL}"/>"#);
    }
    out.push_str("</svg>");
    out
}

/// What a run of days of one class says: the range of their uptime and of their coverage
/// (`99.5–100% up, 80–100% measured`); `None` when they have no uptime (no data).
fn run_text(run: &[Day]) -> Option<String> {
    let range = |values: Vec<f64>, write: fn(f64) -> String| -> Option<String> {
        let low = values.iter().copied().reduce(f64::min)?;
        let high = values.iter().copied().reduce(f64::max)?;
        let (low, high) = (write(low), write(high));
        Some(if low == high { low } else { format!("{}–{high}", low.trim_end_matches('%')) })
    };
    let uptime = range(run.iter().filter_map(|d| d.figures.shown_uptime()).collect(), percent)?;
    Some(match range(run.iter().filter_map(|d| d.figures.coverage).collect(), whole_percent) {
        Some(coverage) => format!("{uptime} up, {coverage} measured"),
        None => format!("{uptime} up by probes (no cadence stated)"),
    })
}

/// One point of a latency series: a bucket's start and its p50 and p95.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at: OffsetDateTime,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 150.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// A latency chart of `points` between `from` and `to`: p50 and p95 as polylines, broken where a
/// bucket has no success (`step` apart: an hour or a day), the scale in ms on the left.
pub fn latency_chart(
    points: &[Point],
    from: OffsetDateTime,
    to: OffsetDateTime,
    step: time::Duration,
    what: &str,
) -> String {
    let top_ms = nice_ceiling(points.iter().filter_map(|p| p.p95_ms.or(p.p50_ms)).fold(0.0, f64::max));
    let span = (to - from).as_seconds_f64().max(1.0);
    let x = |at: OffsetDateTime| LEFT + (at - from).as_seconds_f64() / span * (CHART_WIDTH - LEFT - RIGHT);
    let y = |ms: f64| TOP + (1.0 - ms / top_ms) * (CHART_HEIGHT - TOP - BOTTOM);
    let mut out = format!(
        r#"<svg class="chart" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" role="img" aria-label="{}"><title>{}</title>"#,
        escape(what),
        escape(what)
    );
    let (bottom, right) = (CHART_HEIGHT - BOTTOM, CHART_WIDTH - RIGHT);
    let _ = write!(
        out,
        r#"<path class="axis" d="M{LEFT} {TOP}V{bottom}H{right}"/><path class="grid" d="M{LEFT} {TOP}H{right}M{LEFT} {}H{right}"/><text class="label" x="{}" y="{}" text-anchor="end">{} ms</text><text class="label" x="{}" y="{}" text-anchor="end">{} ms</text><text class="label" x="{}" y="{bottom}" text-anchor="end">0</text>"#,
        y(top_ms / 2.0),
        LEFT - 4.0,
        TOP + 4.0,
        trim(top_ms),
        LEFT - 4.0,
        y(top_ms / 2.0) + 4.0,
        trim(top_ms / 2.0),
        LEFT - 4.0,
    );
    let date = |at: OffsetDateTime| at.date().to_string();
    let _ = write!(
        out,
        r#"<text class="label" x="{LEFT}" y="{}">{}</text><text class="label" x="{right}" y="{}" text-anchor="end">{}</text>"#,
        CHART_HEIGHT - 6.0,
        date(from),
        CHART_HEIGHT - 6.0,
        date(to)
    );
    if points.is_empty() {
        let _ = write!(
            out,
            r#"<text class="label" x="{}" y="{}" text-anchor="middle">no successful probe in this period</text>"#,
            CHART_WIDTH / 2.0,
            CHART_HEIGHT / 2.0
        );
    }
    for (class, value) in [("p95", (|p: &Point| p.p95_ms) as fn(&Point) -> Option<f64>), ("p50", |p: &Point| p.p50_ms)]
    {
        for run in runs(points, step, value) {
            let coordinates: Vec<String> =
                run.iter().map(|p| format!("{:.1},{:.1}", x(p.at), y(value(p).unwrap_or(0.0)))).collect();
            let _ = match coordinates.len() {
                1 => write!(
                    out,
                    r#"<circle class="{class}" cx="{}" cy="{}" r="2"/>"#,
                    x(run[0].at),
                    y(value(&run[0]).unwrap_or(0.0))
                ),
                _ => write!(out, r#"<polyline class="{class}" points="{}"/>"#, coordinates.join(" ")),
            };
        }
    }
    out.push_str("</svg>");
    out
}

/// The points of `points` with a value, in runs of neighbours (`step` apart).
fn runs(points: &[Point], step: time::Duration, value: fn(&Point) -> Option<f64>) -> Vec<Vec<Point>> {
    let mut runs: Vec<Vec<Point>> = Vec::new();
    for point in points.iter().filter(|p| value(p).is_some()) {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|last| point.at - last.at <= step) => run.push(*point),
            _ => runs.push(vec![*point]),
        }
    }
    runs
}

/// The smallest of 1, 2, 2.5, 5 × a power of ten at or above `ms` (at least 1 ms).
fn nice_ceiling(ms: f64) -> f64 {
    let ms = ms.max(1.0);
    let power = 10f64.powf(ms.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|f| f * power).find(|v| *v >= ms).unwrap_or(10.0 * power)
}

fn trim(ms: f64) -> String {
    if ms.fract() == 0.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.1}")
    }
}

#[cfg(test)]
mod tests {
    use time::{macros::datetime, Duration};

    use super::*;
    use crate::model::figures::Bucket;

    fn day(n: i64, figures: Figures) -> Day {
        Day { date: time::macros::date!(2026 - 01 - 01) + Duration::days(n), figures }
    }

    fn measured(uptime: f64) -> Figures {
        let bucket = Bucket {
            probes: 10,
            successes: 10,
            measured_s: Some(86_400.0),
            unknown_s: Some(0.0),
            down_s: Some((1.0 - uptime) * 86_400.0),
        };
        Figures::over([&bucket], 86_400.0)
    }

    #[test]
    fn a_day_nobody_measured_is_grey_and_says_no_data() {
        assert_eq!(day_class(&Figures::over([], 86_400.0)), ("nodata".into(), "no data".into()));
        assert_eq!(day_class(&measured(1.0)), ("up".into(), "100% up, 100% measured".into()));
        assert_eq!(day_class(&measured(0.995)).0, "warn");
        assert_eq!(day_class(&measured(0.5)).0, "down");
    }

    #[test]
    fn an_overview_bar_merges_days_of_one_class_and_a_detail_bar_does_not() {
        let days: Vec<Day> = (0..6)
            .map(|n| match n {
                2 => day(n, Figures::over([], 86_400.0)),
                5 => day(n, measured(0.9995)),
                _ => day(n, measured(1.0)),
            })
            .collect();

        let merged = day_bar(&days, true);
        let each = day_bar(&days, false);

        roxmltree::Document::parse(&merged).expect("well-formed SVG");
        assert_eq!(merged.matches("<rect").count(), 4, "three runs and the gaps: {merged}");
        assert!(merged.contains(r#"<rect class="gaps" width="24" height="20" fill="url(#day-gaps)"/>"#), "{merged}");
        assert!(!each.contains("gaps"), "{each}");
        assert_eq!(each.matches("<rect").count(), 6, "{each}");
        assert!(
            merged.contains(r#"class="day nodata""#)
                && merged.contains(r#"data-coverage="0.000""#)
                && merged.contains(r#"fill="url(#day-none)""#)
                && merged.contains("<title>2026-01-03: no data</title>"),
            "{merged}"
        );
        assert!(merged.contains("2026-01-01 to 2026-01-02 (2 days): 100% up, 100% measured"), "{merged}");
        assert!(merged.contains("2026-01-04 to 2026-01-06 (3 days): 99.95–100% up, 100% measured"), "{merged}");
    }

    #[test]
    fn a_chart_breaks_its_lines_where_no_probe_succeeded() {
        let from = datetime!(2026-01-01 0:00 UTC);
        let point = |h: i64, ms: f64| Point { at: from + Duration::hours(h), p50_ms: Some(ms / 2.0), p95_ms: Some(ms) };
        let points = [point(0, 100.0), point(1, 120.0), point(5, 300.0), point(6, 280.0), point(9, 90.0)];

        let chart = latency_chart(&points, from, from + Duration::hours(10), Duration::HOUR, "latency");

        roxmltree::Document::parse(&chart).expect("well-formed SVG");
        assert_eq!(chart.matches(r#"<polyline class="p95""#).count(), 2, "{chart}");
        assert_eq!(chart.matches(r#"<circle class="p95""#).count(), 1, "a lone point: {chart}");
        assert!(chart.contains(">500 ms</text>"), "the scale rounds 300 ms up: {chart}");
        assert_eq!(nice_ceiling(0.2), 1.0);
        assert_eq!(nice_ceiling(2100.0), 2500.0);
    }
}
