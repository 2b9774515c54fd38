//! The database settings: flags and variables, checked into [`DatabaseSettings`].

use std::{ffi::OsString, ops::RangeInclusive, sync::Arc, time::Duration};

use rustls::RootCertStore;
use secrecy::{ExposeSecret, SecretString};
use websentry_shared::{
    settings::{Setting, SettingError},
    tls,
};

/// Seconds `WEBSENTRY_DATABASE_TIMEOUT` may be: at most an hour, so no deadline can overflow.
pub const TIMEOUT_SECONDS: RangeInclusive<u64> = 1..=3600;

/// Database settings as given.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database name.
    #[arg(id = "database-name", long = "database-name", env = "WEBSENTRY_DATABASE_NAME", value_name = "NAME")]
    pub name: Option<String>,
    /// Database server host name or address.
    #[arg(id = "database-host", long = "database-host", env = "WEBSENTRY_DATABASE_HOST", value_name = "HOST")]
    pub host: Option<String>,
    /// Database server port (1 to 65535).
    #[arg(
        id = "database-port",
        long = "database-port",
        env = "WEBSENTRY_DATABASE_PORT",
        default_value = "5432",
        value_name = "PORT"
    )]
    pub port: String,
    /// Database user.
    #[arg(id = "database-user", long = "database-user", env = "WEBSENTRY_DATABASE_USER", value_name = "USER")]
    pub user: Option<String>,
    /// Database password, not empty (prefer the variable: a flag shows in the process list).
    #[arg(
        id = "database-password",
        long = "database-password",
        env = "WEBSENTRY_DATABASE_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<SecretString>,
    /// TLS to the database: disable, require (unverified), verify-ca or verify-full.
    #[arg(
        id = "database-sslmode",
        long = "database-sslmode",
        env = "WEBSENTRY_DATABASE_SSLMODE",
        default_value = "verify-full",
        value_name = "MODE"
    )]
    pub sslmode: String,
    /// PEM file of the CA that signed the server's certificate [default: the built-in Mozilla roots].
    #[arg(id = "database-cafile", long = "database-cafile", env = "WEBSENTRY_DATABASE_CAFILE", value_name = "FILE")]
    pub cafile: Option<OsString>,
    /// Seconds to wait for the database to accept a connection before giving up (1 to 3600).
    #[arg(
        id = "database-timeout",
        long = "database-timeout",
        env = "WEBSENTRY_DATABASE_TIMEOUT",
        default_value = "30",
        value_name = "SECONDS"
    )]
    pub timeout: String,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Checked database settings.
#[derive(Clone)]
pub struct DatabaseSettings {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    pub(super) password: SecretString,
    pub sslmode: SslMode,
    pub(super) roots: Arc<RootCertStore>,
    pub timeout: Duration,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("name", &self.name)
            .field("user", &self.user)
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
    }
}

/// The setting of the argument `id` of [`DatabaseArgs`].
fn setting(id: &str) -> Setting {
    Setting::of::<DatabaseArgs>(id)
}

impl TryFrom<&DatabaseArgs> for DatabaseSettings {
    type Error = SettingError;

    /// # Errors
    /// The first setting that is missing or malformed.
    fn try_from(args: &DatabaseArgs) -> Result<Self, SettingError> {
        let name = setting("database-name").non_empty(args.name.clone())?;
        let host = setting("database-host").non_empty(args.host.clone())?;
        let port = setting("database-port").number(&args.port, 1..=u16::MAX)?;
        let user = setting("database-user").non_empty(args.user.clone())?;
        let password = setting("database-password").required(args.password.clone())?;
        // Never echoed: an empty one is a Secret or variable templated from nothing.
        if password.expose_secret().is_empty() {
            return Err(setting("database-password").error("is set but empty"));
        }
        let sslmode = match args.sslmode.trim().to_ascii_lowercase().as_str() {
            "disable" => SslMode::Disable,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(setting("database-sslmode")
                    .error(format!("'{other}' is not one of disable, require, verify-ca, verify-full")))
            }
        };
        let cafile = setting("database-cafile");
        let roots = match cafile.optional_readable_file(args.cafile.as_deref())? {
            Some(path) => tls::root_store(&path, &cafile)?,
            None => RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
        };
        let timeout = setting("database-timeout").seconds(&args.timeout, TIMEOUT_SECONDS)?;
        Ok(DatabaseSettings { host, port, name, user, password, sslmode, roots: Arc::new(roots), timeout })
    }
}
