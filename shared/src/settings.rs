//! Settings come from flags or `WEBSENTRY_*` variables as raw text first (clap), then are checked
//! here into typed values before any work starts. A bad one is a [`SettingError`] that names both the
//! variable and the flag, so an operator can find it in a manifest or on a command line.

use std::{fmt, path::PathBuf, time::Duration};

/// A setting that is missing or malformed. Its message never contains the setting's value when the
/// setting is a secret.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct SettingError {
    setting: Setting,
    problem: String,
}

impl SettingError {
    pub fn new(setting: Setting, problem: impl Into<String>) -> Self {
        Self { setting, problem: problem.into() }
    }
}

/// The name of a setting: its environment variable and its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub env: &'static str,
    pub flag: &'static str,
}

impl Setting {
    pub const fn new(env: &'static str, flag: &'static str) -> Self {
        Self { env, flag }
    }

    /// An error about this setting.
    pub fn error(self, problem: impl Into<String>) -> SettingError {
        SettingError::new(self, problem)
    }

    /// The value, or an error saying that it is required.
    pub fn required<T>(self, value: Option<T>) -> Result<T, SettingError> {
        value.ok_or_else(|| self.error("is required but not set"))
    }

    /// A non-empty text value, trimmed.
    pub fn non_empty(self, value: Option<String>) -> Result<String, SettingError> {
        let value = self.required(value)?;
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(self.error("is set but empty"));
        }
        Ok(trimmed.to_owned())
    }

    /// A path to a file that exists and can be read now.
    pub fn readable_file(self, value: Option<PathBuf>) -> Result<PathBuf, SettingError> {
        let path = self.required(value)?;
        match std::fs::File::open(&path) {
            Ok(_) if path.is_file() => Ok(path),
            Ok(_) => Err(self.error(format!("{} is not a regular file", path.display()))),
            Err(err) => Err(self.error(format!("cannot read {}: {err}", path.display()))),
        }
    }

    /// A whole number of seconds, given as text (`30`, `0`, `1.5` is refused).
    pub fn seconds(self, value: &str) -> Result<Duration, SettingError> {
        value
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| self.error(format!("'{value}' is not a whole number of seconds")))
    }

    /// A yes/no value in any of the spellings a Python tool or a YAML file would use.
    pub fn flag_value(self, value: &str) -> Result<bool, SettingError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
            "0" | "false" | "no" | "off" | "n" | "f" | "" => Ok(false),
            _ => Err(self.error(format!("'{value}' is not a yes/no value (use true or false)"))),
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (--{})", self.env, self.flag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Setting = Setting::new("WEBSENTRY_X", "x");

    #[test]
    fn errors_name_the_variable_and_the_flag() {
        let err = S.seconds("ten").unwrap_err();
        assert_eq!(err.to_string(), "WEBSENTRY_X (--x): 'ten' is not a whole number of seconds");
    }

    #[test]
    fn seconds_accepts_whole_numbers_only() {
        for (input, expected) in [("0", Some(0)), (" 30 ", Some(30)), ("-1", None), ("1.5", None), ("", None)] {
            let got = S.seconds(input).ok().map(|d| d.as_secs());
            assert_eq!(got, expected, "input {input:?}");
        }
    }

    #[test]
    fn flag_values_accept_common_spellings_and_refuse_others() {
        for (input, expected) in [
            ("true", Some(true)),
            ("True", Some(true)),
            ("1", Some(true)),
            ("yes", Some(true)),
            ("false", Some(false)),
            ("0", Some(false)),
            ("", Some(false)),
            ("maybe", None),
        ] {
            assert_eq!(S.flag_value(input).ok(), expected, "input {input:?}");
        }
    }

    #[test]
    fn a_missing_or_blank_value_is_refused() {
        assert!(S.non_empty(None).unwrap_err().to_string().contains("is required"));
        assert!(S.non_empty(Some("  ".into())).unwrap_err().to_string().contains("empty"));
        assert_eq!(S.non_empty(Some(" a ".into())).unwrap(), "a");
    }

    #[test]
    fn an_unreadable_file_is_refused_with_its_path() {
        let err = S.readable_file(Some("/nonexistent/ca.crt".into())).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.crt"), "{err}");
    }
}
