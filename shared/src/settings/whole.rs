//! A whole-number setting defined once: its range and its default. Its `--help` text, its default
//! for clap, its line in docs/configuration.md (generated from `--help`) and its check all come
//! from the one [`Whole`], so that the four can no longer disagree.

use std::{fmt, ops::RangeInclusive, str::FromStr, time::Duration};

use crate::settings::{Setting, SettingError};

/// A whole number in a range, with a default unless the setting is optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole<T> {
    pub min: T,
    pub max: T,
    /// `None` for an optional setting (no default: unset means "none").
    pub default: Option<T>,
    /// Said after the range in `--help` and errors (`" seconds"`), or `""`.
    pub unit: &'static str,
}

impl<T: Copy + PartialOrd + FromStr + fmt::Display> Whole<T> {
    /// A count, a size or any number without a unit.
    pub const fn new(min: T, max: T, default: T) -> Self {
        Self { min, max, default: Some(default), unit: "" }
    }

    pub fn range(&self) -> RangeInclusive<T> {
        self.min..=self.max
    }

    /// The `--help` text: `purpose` with the range where it says `{range}`, or after it.
    pub fn help(&self, purpose: &str) -> String {
        let range = format!("{} to {}", self.min, self.max);
        match purpose.contains("{range}") {
            true => purpose.replace("{range}", &range),
            false => format!("{purpose} ({range})"),
        }
    }

    /// The default as clap shows and parses it (empty for an optional setting, which clap is not
    /// given a default for).
    pub fn default_text(&self) -> String {
        self.default.map(|d| d.to_string()).unwrap_or_default()
    }

    /// Checks `text` for `setting`.
    ///
    /// # Errors
    /// Not a whole number, or outside the range: one line with the range.
    pub fn parse(&self, setting: &Setting, text: &str) -> Result<T, SettingError> {
        setting.whole(text, &self.range(), self.unit)
    }
}

impl Whole<u64> {
    /// A number of seconds.
    pub const fn seconds(min: u64, max: u64, default: u64) -> Self {
        Self { min, max, default: Some(default), unit: " seconds" }
    }

    /// A number of seconds that may be left unset.
    pub const fn optional_seconds(min: u64, max: u64) -> Self {
        Self { min, max, default: None, unit: " seconds" }
    }

    /// Checks `text` for `setting`, as a duration.
    ///
    /// # Errors
    /// Not a whole number of seconds, or outside the range.
    pub fn duration(&self, setting: &Setting, text: &str) -> Result<Duration, SettingError> {
        self.parse(setting, text).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Whole<u64> = Whole::seconds(1, 3600, 10);

    #[test]
    fn the_help_says_the_range_where_asked_or_at_the_end() {
        assert_eq!(TIMEOUT.help("Seconds a probe may take"), "Seconds a probe may take (1 to 3600)");
        assert_eq!(TIMEOUT.help("Seconds ({range}); 0 never"), "Seconds (1 to 3600); 0 never");
    }

    #[test]
    fn values_are_checked_against_the_range_with_the_unit_in_the_error() {
        let setting = Setting::new("WEBSENTRY_TIMEOUT", "timeout");
        assert_eq!(TIMEOUT.duration(&setting, "30").ok(), Some(Duration::from_secs(30)));
        let error = TIMEOUT.duration(&setting, "0").expect_err("out of range").to_string();
        assert_eq!(error, "WEBSENTRY_TIMEOUT (--timeout): '0' is out of range (expected 1 to 3600 seconds)");
        let count = Whole::new(1usize, 5, 2);
        assert_eq!(
            count.parse(&setting, "6").expect_err("over").to_string(),
            "WEBSENTRY_TIMEOUT (--timeout): '6' is out of range (expected 1 to 5)"
        );
        assert_eq!(count.default_text(), "2");
    }
}
