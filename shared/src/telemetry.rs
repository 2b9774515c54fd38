//! Logging set-up: `tracing` to stderr, human-readable or JSON lines.

use tracing_subscriber::{fmt, EnvFilter};

use crate::settings::{Named, SettingError};

/// Logging settings as given.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log level: TRACE, DEBUG, INFO, WARNING (WARN), ERROR or CRITICAL (as the Python tool took).
    #[arg(long, env = "WEBSENTRY_LOGLEVEL", default_value = "INFO", value_name = "LEVEL")]
    pub loglevel: String,
    /// Log format: `text` (human-readable) or `json` (one JSON object per line).
    #[arg(long, env = "WEBSENTRY_LOG_FORMAT", default_value = "text", value_name = "FORMAT")]
    pub log_format: String,
}

/// Checked logging settings.
#[derive(Debug, Clone, Copy)]
pub struct LogSettings {
    level: tracing::Level,
    json: bool,
}

impl TryFrom<&LogArgs> for LogSettings {
    type Error = SettingError;

    /// # Errors
    /// An unknown level or format.
    fn try_from(args: &LogArgs) -> Result<Self, SettingError> {
        use tracing::Level;
        let level = match args.loglevel.trim().to_ascii_uppercase().as_str() {
            "TRACE" => Level::TRACE,
            "DEBUG" => Level::DEBUG,
            "INFO" | "" => Level::INFO,
            "WARNING" | "WARN" => Level::WARN,
            "ERROR" | "CRITICAL" | "FATAL" => Level::ERROR,
            other => {
                return Err(
                    LogArgs::setting("loglevel").error(format!("'{other}' is not one of DEBUG, INFO, WARNING, ERROR"))
                )
            }
        };
        let json = match args.log_format.trim().to_ascii_lowercase().as_str() {
            "text" | "" => false,
            "json" => true,
            other => return Err(LogArgs::setting("log_format").error(format!("'{other}' is not text or json"))),
        };
        Ok(LogSettings { level, json })
    }
}

impl LogSettings {
    /// Installs the global subscriber. Our crates log at the chosen level; libraries only warnings
    /// and errors unless the level is DEBUG or TRACE. rskafka warns on every retry of a request,
    /// hundreds of lines while a broker is down, where our own code logs one line per change of
    /// state: its errors only, unless DEBUG or TRACE.
    pub fn install(self) {
        let ours = self.level.to_string().to_ascii_lowercase();
        let (theirs, rskafka) = if self.level >= tracing::Level::DEBUG { ("info", "info") } else { ("warn", "error") };
        let filter = EnvFilter::new(format!(
            "{theirs},rskafka={rskafka},websentry_shared={ours},websentry_producer={ours},websentry_consumer={ours},\
             websentry_status={ours}"
        ));
        let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
        // A second install (tests) is harmless: the first one stays.
        let _ = if self.json {
            builder.json().flatten_event(true).try_init()
        } else {
            builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(level: &str, format: &str) -> LogArgs {
        LogArgs { loglevel: level.into(), log_format: format.into() }
    }

    #[test]
    fn python_level_names_are_accepted() {
        for level in ["DEBUG", "info", "WARNING", "warn", "ERROR", "CRITICAL"] {
            assert!(LogSettings::try_from(&args(level, "text")).is_ok(), "{level}");
        }
    }

    #[test]
    fn unknown_levels_and_formats_name_their_setting() {
        let err = LogSettings::try_from(&args("LOUD", "text")).unwrap_err().to_string();
        assert!(err.starts_with("WEBSENTRY_LOGLEVEL (--loglevel): 'LOUD'"), "{err}");
        let err = LogSettings::try_from(&args("INFO", "xml")).unwrap_err().to_string();
        assert!(err.starts_with("WEBSENTRY_LOG_FORMAT (--log-format)"), "{err}");
    }
}
