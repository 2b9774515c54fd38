//! The consumer's settings: flags and `WEBSENTRY_*` variables as text, then checked into a
//! [`Config`] before any work starts.

use clap::Parser;
use websentry_shared::{
    kafka::{KafkaArgs, KafkaSettings},
    settings::{Named, SettingError, Whole},
    telemetry::{LogArgs, LogSettings},
};

use crate::{
    database::{DatabaseArgs, DatabaseSettings},
    upkeep::Retention,
};

/// Records per transaction at most (a daemon's batch, or a one-off run's fetches together).
pub const BATCH_MAX: Whole<usize> = Whole::new(1, 100_000, 20_000);
/// Bytes fetched per partition and request: at least one small report, at most what a broker
/// sends by default in one response.
pub const BATCH_BYTES: Whole<i32> = Whole::new(1024, 64 * 1024 * 1024, 1024 * 1024);
/// Connections a one-off run writes with at once, each with its share of the partitions: two put
/// a second PostgreSQL backend to work, 1.2–1.4 × faster on the drain bench (docs/benchmarks.md).
pub const WRITERS: Whole<usize> = Whole::new(1, 16, 2);
/// Days of raw reports kept: 0 keeps for ever, else up to a hundred years.
pub const RETENTION_DAYS: Whole<u32> = Whole::new(0, 36_500, 31);
/// Days of daily rollups kept, as raw reports' but a longer default.
pub const ROLLUP_RETENTION_DAYS: Whole<u32> = Whole::new(0, 36_500, 400);
/// Days of hourly rollups kept: a week before today, which the status page's hourly charts and
/// the 7-day window's edge hours read. 96 % of the rollups' bytes are hourly rows when they are
/// kept as long as daily ones (docs/benchmarks.md).
pub const ROLLUP_HOURLY_RETENTION_DAYS: Whole<u32> = Whole::new(0, 36_500, 8);

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
    #[arg(
        long = "batch-max",
        env = "WEBSENTRY_BATCH_MAX",
        default_value_t = BATCH_MAX.default_text(),
        value_name = "RECORDS",
        help = BATCH_MAX.help("Records written per transaction at most (a one-off run puts several fetches in one; {range})")
    )]
    pub batch_max: String,
    #[arg(
        long = "batch-bytes",
        env = "WEBSENTRY_BATCH_BYTES",
        default_value_t = BATCH_BYTES.default_text(),
        value_name = "BYTES",
        help = BATCH_BYTES.help("Record bytes fetched at once at most, shared by the partitions a daemon polls together and by a one-off run's writers: bounds the memory batches take ({range}); the broker sends at least one record batch whatever it says")
    )]
    pub batch_bytes: String,
    #[arg(
        long = "writers",
        env = "WEBSENTRY_CONSUMER_WRITERS",
        default_value_t = WRITERS.default_text(),
        value_name = "N",
        help = WRITERS.help("Database connections a one-off run writes with at once, each with its own share of the partitions, no more than there are ({range}); a daemon writes with one: run replicas to share a topic's partitions between daemons")
    )]
    pub writers: String,
    #[arg(
        long = "retention-days",
        env = "WEBSENTRY_RETENTION_DAYS",
        default_value_t = RETENTION_DAYS.default_text(),
        value_name = "DAYS",
        help = RETENTION_DAYS.help("UTC days of raw reports kept, today included ({range}; 0 keeps them for ever); older days are dropped whole, and a report older than this when it arrives is counted in the rollups only")
    )]
    pub retention_days: String,
    #[arg(
        long = "rollup-retention-days",
        env = "WEBSENTRY_ROLLUP_RETENTION_DAYS",
        default_value_t = ROLLUP_RETENTION_DAYS.default_text(),
        value_name = "DAYS",
        help = ROLLUP_RETENTION_DAYS.help("UTC days of daily rollups kept, today included ({range}; 0 keeps them for ever); hourly ones are kept no longer")
    )]
    pub rollup_retention_days: String,
    #[arg(
        long = "rollup-hourly-retention-days",
        env = "WEBSENTRY_ROLLUP_HOURLY_RETENTION_DAYS",
        default_value_t = ROLLUP_HOURLY_RETENTION_DAYS.default_text(),
        value_name = "DAYS",
        help = ROLLUP_HOURLY_RETENTION_DAYS.help("UTC days of hourly rollups kept, today included ({range}; 0 keeps them as long as daily ones); before them a window's edge is answered in whole days")
    )]
    pub rollup_hourly_retention_days: String,
    /// Address of the HTTP endpoint (/healthz, /readyz, /metrics) of a daemon; empty disables it.
    /// One-off runs never serve it.
    #[arg(long = "listen", env = "WEBSENTRY_LISTEN", default_value = "0.0.0.0:9187", value_name = "ADDR")]
    pub listen: String,
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
    /// Keep running and wait for new reports; otherwise drain what is there at start and exit.
    pub daemon: bool,
    /// The consumer group the offsets are stored under.
    pub group: String,
    /// Migrate the schema, then exit.
    pub migrate_only: bool,
    /// Reports written per transaction at most.
    pub batch_max: usize,
    /// Record bytes fetched per request at most.
    pub batch_bytes: i32,
    /// Connections a one-off run writes with at once (a daemon: 1 whatever this says).
    pub writers: usize,
    /// How long raw reports and rollups are kept.
    pub retention: Retention,
    /// `None`: no HTTP endpoint (disabled, or a one-off run).
    pub listen: Option<std::net::SocketAddr>,
    /// `None` with `--migrate-only`, which needs no Kafka.
    pub kafka: Option<KafkaSettings>,
    pub database: DatabaseSettings,
}

impl TryFrom<&Args> for Config {
    type Error = SettingError;

    /// # Errors
    /// The first setting that is missing or malformed, by name.
    fn try_from(args: &Args) -> Result<Self, SettingError> {
        let log = LogSettings::try_from(&args.log)?;
        let daemon = Args::setting("daemon").flag_value(&args.daemon)?;
        let group = Args::setting("group").non_empty(Some(args.group.clone()))?;
        let database = DatabaseSettings::try_from(&args.database)?;
        let kafka = if args.migrate_only { None } else { Some(KafkaSettings::try_from(&args.kafka)?) };
        let batch_max = BATCH_MAX.parse(&Args::setting("batch_max"), &args.batch_max)?;
        let batch_bytes = BATCH_BYTES.parse(&Args::setting("batch_bytes"), &args.batch_bytes)?;
        let writers = WRITERS.parse(&Args::setting("writers"), &args.writers)?;
        let days = |whole: Whole<u32>, id: &str, text: &str| -> Result<Option<u32>, SettingError> {
            let days = whole.parse(&Args::setting(id), text)?;
            Ok((days > 0).then_some(days))
        };
        let retention = Retention {
            raw_days: days(RETENTION_DAYS, "retention_days", &args.retention_days)?,
            rollup_days: days(ROLLUP_RETENTION_DAYS, "rollup_retention_days", &args.rollup_retention_days)?,
            hourly_days: days(
                ROLLUP_HOURLY_RETENTION_DAYS,
                "rollup_hourly_retention_days",
                &args.rollup_hourly_retention_days,
            )?,
        };
        let listen = match args.listen.trim() {
            "" => None,
            _ if !daemon => None,
            text => Some(
                text.parse().map_err(|_| Args::setting("listen").error(format!("'{text}' is not an address:port")))?,
            ),
        };
        Ok(Config {
            log,
            daemon,
            group,
            migrate_only: args.migrate_only,
            batch_max,
            batch_bytes,
            writers,
            retention,
            listen,
            kafka,
            database,
        })
    }
}

#[cfg(test)]
mod tests {
    use websentry_shared::settings::from_flags_only;

    use super::*;

    #[test]
    fn docs_configuration_md_shows_these_settings_as_defined() {
        use clap::CommandFactory;
        websentry_shared::settings::docs::assert_documented("websentry-consumer", &Args::command());
    }

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
        Config::try_from(&from_flags_only::<Args>(&argv).unwrap())
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
            ("--database-port=99999", "WEBSENTRY_DATABASE_PORT (--database-port): '99999' is out of range"),
            (
                "--database-port=0",
                "WEBSENTRY_DATABASE_PORT (--database-port): '0' is out of range (expected 1 to 65535)",
            ),
            ("--database-port=postgres", "WEBSENTRY_DATABASE_PORT (--database-port): 'postgres' is not a whole number"),
            ("--database-sslmode=prefer", "WEBSENTRY_DATABASE_SSLMODE"),
            ("--database-cafile=/nonexistent", "WEBSENTRY_DATABASE_CAFILE"),
            ("--database-cafile=", "WEBSENTRY_DATABASE_CAFILE (--database-cafile): is set but empty"),
            ("--database-timeout=x", "WEBSENTRY_DATABASE_TIMEOUT"),
            ("--database-timeout=0", "WEBSENTRY_DATABASE_TIMEOUT (--database-timeout): '0' is out of range"),
            ("--database-timeout=3601", "WEBSENTRY_DATABASE_TIMEOUT (--database-timeout): '3601' is out of range"),
            ("--database-timeout=18446744073709551615", "WEBSENTRY_DATABASE_TIMEOUT (--database-timeout): '1844"),
        ] {
            let err = parse(&[flag]).expect_err(flag).to_string();
            assert!(err.starts_with(expected), "{flag}: {err}");
            assert!(!err.contains("secret-pw"), "{flag}: {err}");
        }
        let debug = format!("{:?}", parse(&[]).unwrap());
        assert!(!debug.contains("secret-pw"), "{debug}");
    }

    #[test]
    fn an_empty_database_password_is_refused_without_showing_anything() {
        let argv =
            ["websentry-consumer", "--migrate-only", "--database-name=w", "--database-host=h", "--database-user=u"];
        let parse = |password: &str| {
            let argv: Vec<&str> = argv.into_iter().chain([password]).collect();
            Config::try_from(&from_flags_only::<Args>(&argv).unwrap())
        };
        let err = parse("--database-password=").unwrap_err().to_string();
        assert_eq!(err, "WEBSENTRY_DATABASE_PASSWORD (--database-password): is set but empty");
        assert!(parse("--database-password= ").is_ok(), "a password of a space is a password");
    }

    #[test]
    fn the_kafka_timeout_is_checked_before_any_work() {
        let args = from_flags_only::<Args>(&[
            "websentry-consumer",
            "--database-name=w",
            "--database-host=h",
            "--database-user=u",
            "--database-password=secret-pw",
            "--kafka-hosts=kafka:9093",
            "--kafka-timeout=18446744073709551615",
        ])
        .unwrap();
        let err = Config::try_from(&args).unwrap_err().to_string();
        assert!(
            err.starts_with("WEBSENTRY_KAFKA_TIMEOUT (--kafka-timeout): '18446744073709551615' is out of range"),
            "{err}"
        );
    }

    #[test]
    fn batch_and_listen_settings_are_checked_and_named() {
        let config = parse(&["--daemon"]).unwrap();
        assert_eq!((config.batch_max, config.batch_bytes), (20_000, 1024 * 1024));
        assert_eq!(parse(&[]).unwrap().writers, 2, "a one-off run writes with two connections unless told");
        assert_eq!(parse(&["--writers=1"]).unwrap().writers, 1);
        assert_eq!(config.listen, Some("0.0.0.0:9187".parse().unwrap()));
        assert_eq!(parse(&["--daemon", "--listen="]).unwrap().listen, None, "empty disables");
        assert_eq!(parse(&[]).unwrap().listen, None, "one-off runs serve nothing");
        for (flag, expected) in [
            ("--batch-max=0", "WEBSENTRY_BATCH_MAX"),
            ("--batch-max=lots", "WEBSENTRY_BATCH_MAX"),
            (
                "--batch-max=100001",
                "WEBSENTRY_BATCH_MAX (--batch-max): '100001' is out of range (expected 1 to 100000)",
            ),
            ("--batch-max=18446744073709551616", "WEBSENTRY_BATCH_MAX (--batch-max): '18446744073709551616' is out"),
            (
                "--batch-bytes=12",
                "WEBSENTRY_BATCH_BYTES (--batch-bytes): '12' is out of range (expected 1024 to 67108864)",
            ),
            ("--batch-bytes=4294967296", "WEBSENTRY_BATCH_BYTES (--batch-bytes): '4294967296' is out of range"),
            ("--listen=localhost", "WEBSENTRY_LISTEN"),
            ("--writers=0", "WEBSENTRY_CONSUMER_WRITERS (--writers): '0' is out of range (expected 1 to 16)"),
            ("--writers=17", "WEBSENTRY_CONSUMER_WRITERS (--writers): '17' is out of range (expected 1 to 16)"),
            ("--writers=two", "WEBSENTRY_CONSUMER_WRITERS (--writers): 'two'"),
        ] {
            let err = parse(&["--daemon", flag]).expect_err(flag).to_string();
            assert!(err.starts_with(expected), "{flag}: {err}");
        }
    }

    #[test]
    fn retention_defaults_to_31_400_and_8_days_and_zero_keeps_for_ever() {
        assert_eq!(
            parse(&[]).unwrap().retention,
            Retention { raw_days: Some(31), rollup_days: Some(400), hourly_days: Some(8) }
        );
        assert_eq!(parse(&[]).unwrap().retention, Retention::default());
        let forever = parse(&["--retention-days=0", "--rollup-retention-days=0", "--rollup-hourly-retention-days=0"])
            .unwrap()
            .retention;
        assert_eq!(forever, Retention { raw_days: None, rollup_days: None, hourly_days: None });
        for (flag, expected) in [
            ("--retention-days=-1", "WEBSENTRY_RETENTION_DAYS (--retention-days): '-1'"),
            ("--retention-days=a month", "WEBSENTRY_RETENTION_DAYS (--retention-days): 'a month'"),
            (
                "--rollup-retention-days=36501",
                "WEBSENTRY_ROLLUP_RETENTION_DAYS (--rollup-retention-days): '36501' is out of range (expected 0 to 36500)",
            ),
            (
                "--rollup-hourly-retention-days=a week",
                "WEBSENTRY_ROLLUP_HOURLY_RETENTION_DAYS (--rollup-hourly-retention-days): 'a week'",
            ),
        ] {
            let err = parse(&[flag]).expect_err(flag).to_string();
            assert!(err.starts_with(expected), "{flag}: {err}");
        }
    }
}
