//! The database settings: flags and variables, checked into [`DatabaseSettings`].

use std::{ffi::OsString, sync::Arc, time::Duration};

use rustls::RootCertStore;
use secrecy::{ExposeSecret, SecretString};

use crate::{
    settings::{Named, SettingError, Whole},
    tls,
};

/// Seconds `WEBSENTRY_DATABASE_TIMEOUT` may be: at most an hour, so no deadline can overflow.
pub const TIMEOUT: Whole<u64> = Whole::seconds(1, 3600, 30);
/// The server's port.
pub const PORT: Whole<u16> = Whole::new(1, u16::MAX, 5432);

/// Database settings as given.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database name; required.
    #[arg(long, env = "WEBSENTRY_DATABASE_NAME", value_name = "NAME")]
    pub database_name: Option<String>,
    /// Database server host name or address; required.
    #[arg(long, env = "WEBSENTRY_DATABASE_HOST", value_name = "HOST")]
    pub database_host: Option<String>,
    #[arg(
        long,
        env = "WEBSENTRY_DATABASE_PORT",
        default_value_t = PORT.default_text(),
        value_name = "PORT",
        help = PORT.help("Database server port")
    )]
    pub database_port: String,
    /// Database user; required.
    #[arg(long, env = "WEBSENTRY_DATABASE_USER", value_name = "USER")]
    pub database_user: Option<String>,
    /// Database password, not empty; required (prefer the variable: a flag shows in the process
    /// list).
    #[arg(long, env = "WEBSENTRY_DATABASE_PASSWORD", hide_env_values = true, value_name = "PASSWORD")]
    pub database_password: Option<SecretString>,
    /// TLS to the database: disable, require (unverified), verify-ca or verify-full.
    #[arg(long, env = "WEBSENTRY_DATABASE_SSLMODE", default_value = "verify-full", value_name = "MODE")]
    pub database_sslmode: String,
    /// PEM file of the CA that signed the server's certificate [default: the built-in Mozilla roots].
    #[arg(long, env = "WEBSENTRY_DATABASE_CAFILE", value_name = "FILE")]
    pub database_cafile: Option<OsString>,
    #[arg(
        long,
        env = "WEBSENTRY_DATABASE_TIMEOUT",
        default_value_t = TIMEOUT.default_text(),
        value_name = "SECONDS",
        help = TIMEOUT.help("Seconds to wait for the database to accept a connection before giving up")
    )]
    pub database_timeout: String,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// What to log as a warning at start with this mode: `require` encrypts without knowing to whom.
    pub fn warning(self) -> Option<&'static str> {
        (self == SslMode::Require).then_some(
            "WEBSENTRY_DATABASE_SSLMODE=require: the database server's identity is NOT verified; use verify-full",
        )
    }
}

/// Checked database settings.
#[derive(Clone)]
pub struct DatabaseSettings {
    pub host: String,
    pub port: u16,
    /// The database's name.
    pub name: String,
    pub user: String,
    /// Never shown: not in `Debug`, not in any message.
    pub(super) password: SecretString,
    pub sslmode: SslMode,
    /// The CAs the server's certificate is checked against (all but `disable` and `require`).
    pub(super) roots: Arc<RootCertStore>,
    /// How long connecting (TCP, TLS, authentication) may take.
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

impl DatabaseSettings {
    /// Where the database is, for messages (no credentials).
    pub fn address(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.name)
    }
}

impl TryFrom<&DatabaseArgs> for DatabaseSettings {
    type Error = SettingError;

    /// # Errors
    /// The first setting that is missing or malformed.
    fn try_from(args: &DatabaseArgs) -> Result<Self, SettingError> {
        let name = DatabaseArgs::setting("database_name").non_empty(args.database_name.clone())?;
        let host = DatabaseArgs::setting("database_host").non_empty(args.database_host.clone())?;
        let port = PORT.parse(&DatabaseArgs::setting("database_port"), &args.database_port)?;
        let user = DatabaseArgs::setting("database_user").non_empty(args.database_user.clone())?;
        let password = DatabaseArgs::setting("database_password").required(args.database_password.clone())?;
        // Never echoed: an empty one is a Secret or variable templated from nothing.
        if password.expose_secret().is_empty() {
            return Err(DatabaseArgs::setting("database_password").error("is set but empty"));
        }
        let sslmode = match args.database_sslmode.trim().to_ascii_lowercase().as_str() {
            "disable" => SslMode::Disable,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(DatabaseArgs::setting("database_sslmode")
                    .error(format!("'{other}' is not one of disable, require, verify-ca, verify-full")))
            }
        };
        let cafile = DatabaseArgs::setting("database_cafile");
        let roots = match cafile.optional_readable_file(args.database_cafile.as_deref())? {
            Some(path) => tls::root_store(&path, &cafile)?,
            None => RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
        };
        let timeout = TIMEOUT.duration(&DatabaseArgs::setting("database_timeout"), &args.database_timeout)?;
        Ok(DatabaseSettings { host, port, name, user, password, sslmode, roots: Arc::new(roots), timeout })
    }
}
