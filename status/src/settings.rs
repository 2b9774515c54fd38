//! Settings: flags and `WEBSENTRY_*` variables as given ([`Args`]), checked into [`Config`] before
//! anything starts. The database settings are the consumer's own (`websentry_shared::database`).

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use websentry_shared::{
    database::{DatabaseArgs, DatabaseSettings},
    settings::{Named, SettingError, Whole},
    telemetry::{LogArgs, LogSettings},
};

/// Seconds an answer (the overview's data, one site's, a window's latency) is kept and shared.
pub const CACHE_SECONDS: Whole<u64> = Whole::seconds(1, 300, 5);
/// Connections to the database at most.
pub const POOL_SIZE: Whole<usize> = Whole::new(1, 64, 4);
/// Seconds one query may run before the database cancels it.
pub const STATEMENT_TIMEOUT: Whole<u64> = Whole::seconds(1, 300, 5);
/// Characters of a page title at most.
const TITLE_MAX: usize = 100;

/// Settings as given.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "websentry-status",
    version,
    about = "Serves Websentry's status page, JSON API and badges from the archive"
)]
pub struct Args {
    /// Address the status page listens on.
    #[arg(long = "listen", env = "WEBSENTRY_STATUS_LISTEN", default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub listen: String,
    /// Groups of sites shown, comma-separated (empty: every site). An empty item (`Public,`) stands
    /// for the sites without a group; a site outside these groups is not found anywhere.
    #[arg(long = "groups", env = "WEBSENTRY_STATUS_GROUPS", default_value = "", value_name = "GROUPS")]
    pub groups: String,
    #[arg(
        long = "cache-seconds",
        env = "WEBSENTRY_STATUS_CACHE_SECONDS",
        default_value_t = CACHE_SECONDS.default_text(),
        value_name = "SECONDS",
        help = CACHE_SECONDS.help("Seconds each answer is kept and shared by every request, and said in Cache-Control ({range})")
    )]
    pub cache_seconds: String,
    /// Title of the pages.
    #[arg(long = "title", env = "WEBSENTRY_STATUS_TITLE", default_value = "Websentry", value_name = "TEXT")]
    pub title: String,
    #[arg(
        long = "pool-size",
        env = "WEBSENTRY_STATUS_POOL_SIZE",
        default_value_t = POOL_SIZE.default_text(),
        value_name = "CONNECTIONS",
        help = POOL_SIZE.help("Database connections at most")
    )]
    pub pool_size: String,
    #[arg(
        long = "statement-timeout",
        env = "WEBSENTRY_STATUS_STATEMENT_TIMEOUT",
        default_value_t = STATEMENT_TIMEOUT.default_text(),
        value_name = "SECONDS",
        help = STATEMENT_TIMEOUT.help("Seconds one query may run before the database cancels it ({range})")
    )]
    pub statement_timeout: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// The groups of sites shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Groups {
    All,
    /// Only these; `""` stands for the sites without a group.
    Only(BTreeSet<String>),
}

impl Groups {
    /// Whether a site of `group` (`None`: without one) is shown.
    pub fn shows(&self, group: Option<&str>) -> bool {
        match self {
            Groups::All => true,
            Groups::Only(groups) => groups.contains(group.unwrap_or_default()),
        }
    }

    fn parse(text: &str) -> Groups {
        if text.trim().is_empty() {
            return Groups::All;
        }
        Groups::Only(text.split(',').map(|group| group.trim().to_owned()).collect())
    }
}

/// Everything checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub log: LogSettings,
    pub listen: SocketAddr,
    pub groups: Groups,
    pub cache: Duration,
    pub title: String,
    pub pool_size: usize,
    pub statement_timeout: Duration,
    pub database: DatabaseSettings,
}

impl TryFrom<&Args> for Config {
    type Error = SettingError;

    /// # Errors
    /// The first setting that is missing or malformed, by name.
    fn try_from(args: &Args) -> Result<Self, SettingError> {
        let log = LogSettings::try_from(&args.log)?;
        let listen = args.listen.trim();
        let listen = listen.parse().map_err(|_| {
            Args::setting("listen").error(format!("'{}' is not an address:port", listen.escape_debug()))
        })?;
        let title = Args::setting("title").non_empty(Some(args.title.clone()))?;
        if title.chars().count() > TITLE_MAX || title.chars().any(char::is_control) {
            return Err(Args::setting("title").error(format!("must be one line of at most {TITLE_MAX} characters")));
        }
        Ok(Config {
            log,
            listen,
            groups: Groups::parse(&args.groups),
            cache: CACHE_SECONDS.duration(&Args::setting("cache_seconds"), &args.cache_seconds)?,
            title,
            pool_size: POOL_SIZE.parse(&Args::setting("pool_size"), &args.pool_size)?,
            statement_timeout: STATEMENT_TIMEOUT
                .duration(&Args::setting("statement_timeout"), &args.statement_timeout)?,
            database: DatabaseSettings::try_from(&args.database)?,
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
        websentry_shared::settings::docs::assert_documented("websentry-status", &Args::command());
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    fn parse(extra: &[&str]) -> Result<Config, SettingError> {
        let mut argv = vec![
            "websentry-status",
            "--database-name=w",
            "--database-host=localhost",
            "--database-user=reader",
            "--database-password=secret-pw",
        ];
        argv.extend_from_slice(extra);
        Config::try_from(&from_flags_only::<Args>(&argv).expect("flags"))
    }

    #[test]
    fn defaults_show_every_site_for_five_seconds_on_port_8080_with_verified_tls() {
        let config = parse(&[]).expect("defaults");

        assert_eq!(config.listen, "0.0.0.0:8080".parse().expect("an address"));
        assert_eq!(config.groups, Groups::All);
        assert_eq!(config.cache, Duration::from_secs(5));
        assert_eq!(config.title, "Websentry");
        assert_eq!(config.pool_size, 4);
        assert_eq!(config.statement_timeout, Duration::from_secs(5));
        assert_eq!(config.database.sslmode, websentry_shared::database::SslMode::VerifyFull);
    }

    #[test]
    fn groups_are_a_comma_list_where_an_empty_item_stands_for_sites_without_a_group() {
        for (given, shown, hidden) in [
            ("", vec![Some("a"), None], vec![]),
            ("  ", vec![Some("a"), None], vec![]),
            ("Public", vec![Some("Public")], vec![Some("public"), Some("Internal"), None]),
            (" Public , Shop ", vec![Some("Public"), Some("Shop")], vec![Some("Internal"), None]),
            ("Public,", vec![Some("Public"), None], vec![Some("Internal")]),
        ] {
            let config = parse(&[&format!("--groups={given}")]).expect(given);
            for group in shown {
                assert!(config.groups.shows(group), "groups {given:?} show {group:?}");
            }
            for group in hidden {
                assert!(!config.groups.shows(group), "groups {given:?} hide {group:?}");
            }
        }
    }

    #[test]
    fn each_bad_setting_is_named_and_the_password_never_shown() {
        for (flag, expected) in [
            ("--listen=localhost", "WEBSENTRY_STATUS_LISTEN (--listen): 'localhost' is not an address:port"),
            ("--listen=", "WEBSENTRY_STATUS_LISTEN (--listen): '' is not an address:port"),
            (
                "--cache-seconds=0",
                "WEBSENTRY_STATUS_CACHE_SECONDS (--cache-seconds): '0' is out of range (expected 1 to 300 seconds)",
            ),
            ("--cache-seconds=301", "WEBSENTRY_STATUS_CACHE_SECONDS (--cache-seconds): '301' is out of range"),
            ("--pool-size=0", "WEBSENTRY_STATUS_POOL_SIZE (--pool-size): '0' is out of range (expected 1 to 64)"),
            ("--pool-size=many", "WEBSENTRY_STATUS_POOL_SIZE (--pool-size): 'many' is not a whole number"),
            ("--statement-timeout=0", "WEBSENTRY_STATUS_STATEMENT_TIMEOUT (--statement-timeout): '0' is out of range"),
            ("--title= ", "WEBSENTRY_STATUS_TITLE (--title): is set but empty"),
            ("--title=a\nb", "WEBSENTRY_STATUS_TITLE (--title): must be one line"),
            ("--database-sslmode=prefer", "WEBSENTRY_DATABASE_SSLMODE"),
            ("--database-port=0", "WEBSENTRY_DATABASE_PORT (--database-port): '0' is out of range"),
            ("--loglevel=LOUD", "WEBSENTRY_LOGLEVEL (--loglevel)"),
        ] {
            let err = parse(&[flag]).expect_err(flag).to_string();
            assert!(err.starts_with(expected), "{flag}: {err}");
            assert!(!err.contains("secret-pw"), "{flag}: {err}");
        }
        let debug = format!("{:?}", parse(&[]).expect("defaults"));
        assert!(!debug.contains("secret-pw"), "{debug}");
    }
}
