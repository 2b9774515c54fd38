//! The consumer's settings: flags and `WEBSENTRY_*` variables as text, then checked into a
//! [`Config`] before any work starts.

use clap::Parser;
use websentry_shared::{
    kafka::{KafkaArgs, KafkaSettings},
    settings::{Setting, SettingError},
    telemetry::{LogArgs, LogSettings},
};

use crate::database::{DatabaseArgs, DatabaseSettings};

const DAEMON: Setting = Setting::new("WEBSENTRY_CONSUMER_ENABLE_DAEMON", "daemon");
const GROUP: Setting = Setting::new("WEBSENTRY_CONSUMER_GROUP", "group");

/// Archives Websentry reports from Kafka into PostgreSQL, exactly once.
///
/// Every flag can also be given as the environment variable shown beside it.
#[derive(Debug, Parser)]
#[command(name = "websentry-consumer", version)]
pub struct Args {
    /// Keep running and wait for new reports; without it, archive what the topic holds at start
    /// and exit.
    #[arg(
        long = "daemon",
        env = "WEBSENTRY_CONSUMER_ENABLE_DAEMON",
        default_value = "false",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub daemon: String,
    /// Name under which this consumer's offsets are stored; consumers with different groups each
    /// archive every report.
    #[arg(long = "group", env = "WEBSENTRY_CONSUMER_GROUP", default_value = "healthcheck-relay", value_name = "NAME")]
    pub group: String,
    /// Create or upgrade the database schema, then exit (for operators who run DDL separately).
    #[arg(long = "migrate-only")]
    pub migrate_only: bool,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Everything checked.
#[derive(Debug)]
pub struct Config {
    pub log: LogSettings,
    pub daemon: bool,
    pub group: String,
    pub migrate_only: bool,
    /// `None` with `--migrate-only`, which needs no Kafka.
    pub kafka: Option<KafkaSettings>,
    pub database: DatabaseSettings,
}

impl Args {
    /// # Errors
    /// The first setting that is missing or malformed, by name.
    pub fn parse_config(&self) -> Result<Config, SettingError> {
        let log = self.log.parse()?;
        let daemon = DAEMON.flag_value(&self.daemon)?;
        let group = GROUP.non_empty(Some(self.group.clone()))?;
        let database = self.database.parse()?;
        let kafka = if self.migrate_only { None } else { Some(self.kafka.parse()?) };
        Ok(Config { log, daemon, group, migrate_only: self.migrate_only, kafka, database })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Config, SettingError> {
        let mut argv = vec![
            "websentry-consumer",
            "--migrate-only",
            "--database-name=w",
            "--database-host=localhost",
            "--database-user=u",
            "--database-password=secret-pw",
        ];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap().parse_config()
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_are_one_off_with_the_python_tools_group_and_verified_tls() {
        let config = parse(&[]).unwrap();
        assert!(!config.daemon);
        assert_eq!(config.group, "healthcheck-relay");
        assert_eq!(config.database.port, 5432);
        assert_eq!(config.database.sslmode, crate::database::SslMode::VerifyFull);
    }

    #[test]
    fn the_daemon_switch_takes_python_style_values() {
        assert!(parse(&["--daemon=True"]).unwrap().daemon);
        assert!(parse(&["--daemon"]).unwrap().daemon);
        assert!(!parse(&["--daemon=0"]).unwrap().daemon);
        let err = parse(&["--daemon=sometimes"]).unwrap_err().to_string();
        assert!(err.starts_with("WEBSENTRY_CONSUMER_ENABLE_DAEMON (--daemon)"), "{err}");
    }

    #[test]
    fn each_bad_database_setting_is_named_and_the_password_never_shown() {
        for (flag, expected) in [
            ("--database-port=99999", "WEBSENTRY_DATABASE_PORT"),
            ("--database-sslmode=prefer", "WEBSENTRY_DATABASE_SSLMODE"),
            ("--database-cafile=/nonexistent", "WEBSENTRY_DATABASE_CAFILE"),
            ("--database-timeout=x", "WEBSENTRY_DATABASE_TIMEOUT"),
        ] {
            let err = parse(&[flag]).expect_err(flag).to_string();
            assert!(err.starts_with(expected), "{flag}: {err}");
            assert!(!err.contains("secret-pw"), "{flag}: {err}");
        }
        let debug = format!("{:?}", parse(&[]).unwrap());
        assert!(!debug.contains("secret-pw"), "{debug}");
    }
}
