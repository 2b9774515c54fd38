//! How the pages write times, latencies and figures.

use time::OffsetDateTime;

use crate::model::{
    figures::{percent, whole_percent},
    Figures,
};

/// `2026-06-01 12:30 UTC`.
pub fn time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute())
}

/// `2026-06-01 12:30:05 UTC`.
pub fn time_seconds(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02}:{:02} UTC", at.date(), at.hour(), at.minute(), at.second())
}

/// A latency: `123 ms`, `1.2 s`; `–` when not known.
pub fn ms(value: Option<f64>) -> String {
    match value {
        None => "–".into(),
        Some(ms) if ms >= 1000.0 => format!("{:.1} s", ms / 1000.0),
        Some(ms) if ms >= 10.0 => format!("{ms:.0} ms"),
        Some(ms) => format!("{ms:.1} ms"),
    }
}

/// A window's figures in a cell: the uptime ("unknown" where nothing was measured) and how much of
/// the window was measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub uptime: String,
    pub coverage: String,
    /// The whole story, for the cell's title.
    pub title: String,
    /// `unknown` when there is no uptime to show.
    pub class: &'static str,
}

impl Cell {
    pub fn of(figures: &Figures, window: &str) -> Cell {
        let uptime = figures.shown_uptime();
        let coverage = match figures.coverage {
            Some(coverage) => format!("{} measured", whole_percent(coverage)),
            None => "by probes".into(),
        };
        let title = match (uptime, figures.coverage) {
            (None, _) => format!("{window}: nobody measured this site, its uptime is unknown"),
            (Some(u), Some(c)) => format!(
                "{window}: {} up over the {} of the time that was measured; {} probes",
                percent(u),
                whole_percent(c),
                figures.probes
            ),
            (Some(u), None) => {
                format!(
                    "{window}: {} of {} probes succeeded (the reports state no cadence)",
                    percent(u),
                    figures.probes
                )
            }
        };
        Cell {
            uptime: uptime.map_or_else(|| "unknown".into(), percent),
            coverage,
            title,
            class: if uptime.is_some() { "known" } else { "unknown" },
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn times_and_latencies_read_plainly() {
        assert_eq!(time(datetime!(2026-06-01 12:30:59 UTC)), "2026-06-01 12:30 UTC");
        assert_eq!(time(datetime!(2026-06-01 14:30 +2)), "2026-06-01 12:30 UTC");
        assert_eq!(
            (ms(Some(3.25)), ms(Some(123.4)), ms(Some(1234.0)), ms(None)),
            ("3.2 ms".into(), "123 ms".into(), "1.2 s".into(), "–".into())
        );
    }

    #[test]
    fn a_window_nobody_measured_reads_unknown() {
        let cell = Cell::of(&Figures::over([], 86_400.0), "24h");
        assert_eq!((cell.uptime.as_str(), cell.coverage.as_str(), cell.class), ("unknown", "0% measured", "unknown"));
        assert!(cell.title.contains("unknown"), "{}", cell.title);
    }
}
