//! Uptime and measured time over a window, summed from the buckets (`site_timeline` rows) it holds,
//! and how they are written for people.
//!
//! Two uptimes, as the SQL interface gives them: `uptime` by probes (successes ÷ probes) and
//! `measured_uptime` by time (1 − down ÷ measured), the second only where reports stated their
//! cadence. Time nobody measured is unknown, never up: `coverage` = measured ÷ (measured + unknown).

/// One bucket of `site_timeline` (an hour or a UTC day of one location).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bucket {
    pub probes: i64,
    pub successes: i64,
    /// `None`: its reports stated no cadence. 0 in a bucket no report reached.
    pub measured_s: Option<f64>,
    pub unknown_s: Option<f64>,
    pub down_s: Option<f64>,
}

/// A window's figures.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Figures {
    pub probes: i64,
    pub successes: i64,
    /// successes ÷ probes; `None` without a probe.
    pub uptime: Option<f64>,
    /// measured ÷ (measured + unknown), 0..1; `None` when its reports stated no cadence.
    pub coverage: Option<f64>,
    pub measured_s: Option<f64>,
    pub unknown_s: Option<f64>,
    pub down_s: Option<f64>,
    /// 1 − down ÷ measured; `None` when nothing was measured.
    pub measured_uptime: Option<f64>,
}

impl Figures {
    /// The figures of a window of `window_s` seconds made of `buckets`:
    ///
    /// - some bucket measured time (a report that stated its cadence): measured, unknown and down
    ///   are the buckets' sums (a bucket whose reports stated no cadence counts neither way);
    /// - no bucket was reached by any report (or there is no bucket: the location was not probed in
    ///   the window): all of it unknown, coverage 0;
    /// - reports came, none stating a cadence: the time figures are unknown (`None`).
    pub fn over<'a>(buckets: impl IntoIterator<Item = &'a Bucket>, window_s: f64) -> Figures {
        let (mut probes, mut successes, mut count) = (0, 0, 0usize);
        let (mut measured, mut unknown, mut down, mut cadence) = (0.0, 0.0, 0.0, false);
        for bucket in buckets {
            count += 1;
            probes += bucket.probes;
            successes += bucket.successes;
            cadence |= bucket.measured_s.is_some_and(|s| s > 0.0);
            measured += bucket.measured_s.unwrap_or(0.0);
            unknown += bucket.unknown_s.unwrap_or(0.0);
            down += bucket.down_s.unwrap_or(0.0);
        }
        let uptime = (probes > 0).then(|| successes as f64 / probes as f64);
        let mut figures = Figures { probes, successes, uptime, ..Figures::default() };
        if count == 0 {
            unknown = window_s;
        } else if !cadence && probes > 0 {
            return figures;
        }
        figures.measured_s = Some(measured);
        figures.unknown_s = Some(unknown);
        figures.down_s = Some(down);
        figures.coverage = (measured + unknown > 0.0).then(|| measured / (measured + unknown)).or(Some(0.0));
        figures.measured_uptime = (measured > 0.0).then(|| (1.0 - down / measured).clamp(0.0, 1.0));
        figures
    }

    /// The uptime a person is shown: by time where time was measured; by probes where the reports
    /// stated no cadence; `None` (unknown) where nothing was measured.
    pub fn shown_uptime(&self) -> Option<f64> {
        match self.measured_s {
            Some(measured) if measured > 0.0 => self.measured_uptime,
            Some(_) => None,
            None => self.uptime,
        }
    }

    /// Whether [`Figures::shown_uptime`] is by probes, not by time.
    pub fn by_probes(&self) -> bool {
        self.measured_s.is_none() && self.uptime.is_some()
    }
}

/// A share as a percentage, rounded down to hundredths so that an uptime below 100 % never reads
/// 100 %: `99.99%`, `100%`.
pub fn percent(share: f64) -> String {
    if share >= 1.0 {
        return "100%".into();
    }
    let hundredths = (share.max(0.0) * 10_000.0).floor() / 100.0;
    let text = format!("{hundredths:.2}");
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A coverage in whole percent, rounded down (`<1%` for a little above none).
pub fn whole_percent(share: f64) -> String {
    match share {
        s if s >= 1.0 => "100%".into(),
        s if s > 0.0 && s < 0.01 => "<1%".into(),
        s => format!("{}%", (s.max(0.0) * 100.0).floor()),
    }
}

/// A duration in seconds, for people: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => match (s / 3600, s % 3600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
        _ => match (s / 86_400, s % 86_400 / 3600) {
            (d, 0) => format!("{d} d"),
            (d, h) => format!("{d} d {h} h"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(probes: i64, successes: i64, measured: Option<f64>, unknown: Option<f64>, down: Option<f64>) -> Bucket {
        Bucket { probes, successes, measured_s: measured, unknown_s: unknown, down_s: down }
    }

    #[test]
    fn measured_time_is_summed_and_unknown_time_is_never_up() {
        let buckets = [
            bucket(60, 60, Some(3600.0), Some(0.0), Some(0.0)),
            bucket(30, 27, Some(1800.0), Some(1800.0), Some(180.0)),
            bucket(0, 0, Some(0.0), Some(3600.0), Some(0.0)),
        ];

        let figures = Figures::over(&buckets, 3.0 * 3600.0);

        assert_eq!((figures.probes, figures.successes), (90, 87));
        assert_eq!(figures.uptime, Some(87.0 / 90.0));
        assert_eq!(figures.measured_s, Some(5400.0));
        assert_eq!(figures.unknown_s, Some(5400.0));
        assert_eq!(figures.down_s, Some(180.0));
        assert_eq!(figures.coverage, Some(0.5), "half of the window measured");
        assert_eq!(figures.measured_uptime, Some(1.0 - 180.0 / 5400.0), "over the measured time only");
        assert_eq!(figures.shown_uptime(), figures.measured_uptime);
        assert!(!figures.by_probes());
    }

    #[test]
    fn a_window_nobody_measured_is_all_unknown_with_no_uptime() {
        for (what, buckets) in [
            ("no bucket at all", vec![]),
            ("buckets no report reached", vec![bucket(0, 0, Some(0.0), Some(3600.0), Some(0.0)); 24]),
        ] {
            let figures = Figures::over(&buckets, 86_400.0);

            assert_eq!(figures.coverage, Some(0.0), "{what}");
            assert_eq!(figures.unknown_s, Some(86_400.0), "{what}");
            assert_eq!((figures.uptime, figures.measured_uptime, figures.shown_uptime()), (None, None, None), "{what}");
        }
    }

    #[test]
    fn reports_without_a_cadence_leave_the_time_unknown_and_show_the_uptime_by_probes() {
        let buckets = [bucket(10, 9, None, None, None), bucket(0, 0, Some(0.0), Some(3600.0), Some(0.0))];

        let figures = Figures::over(&buckets, 7200.0);

        assert_eq!((figures.coverage, figures.measured_s, figures.measured_uptime), (None, None, None));
        assert_eq!(figures.shown_uptime(), Some(0.9));
        assert!(figures.by_probes());
    }

    #[test]
    fn percentages_round_down_so_that_almost_up_never_reads_100() {
        for (share, text) in [
            (1.0, "100%"),
            (0.99999, "99.99%"),
            (0.9995, "99.95%"),
            (0.995, "99.5%"),
            (0.5, "50%"),
            (0.0, "0%"),
            (-0.1, "0%"),
        ] {
            assert_eq!(percent(share), text, "{share}");
        }
        assert_eq!(whole_percent(0.999), "99%");
        assert_eq!(whole_percent(0.001), "<1%");
        assert_eq!(whole_percent(0.0), "0%");
    }

    #[test]
    fn durations_read_in_the_largest_units_that_fit() {
        for (seconds, text) in [
            (0.4, "0 s"),
            (59.0, "59 s"),
            (61.0, "1 min"),
            (3600.0, "1 h"),
            (3900.0, "1 h 5 min"),
            (86_400.0 * 2.0 + 3600.0 * 4.0, "2 d 4 h"),
        ] {
            assert_eq!(duration(seconds), text, "{seconds}");
        }
    }
}
