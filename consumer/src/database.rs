//! PostgreSQL connection settings and the blocking client built from them, over rustls.
//!
//! `WEBSENTRY_DATABASE_SSLMODE` follows libpq's names: `disable` (plain text), `require` (encrypted,
//! server identity NOT checked: logged as a warning at every start), `verify-ca` (certificate chain
//! checked) and `verify-full` (chain and host name checked; the default).

use std::{ffi::OsString, ops::RangeInclusive, sync::Arc, time::Duration};

use anyhow::{anyhow, Context};
use postgres::{config::SslMode as PgSslMode, Client, NoTls};
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    client::WebPkiServerVerifier,
    pki_types::{CertificateDer, ServerName, UnixTime},
    DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use secrecy::{ExposeSecret, SecretString};
use websentry_shared::{
    settings::{Setting, SettingError},
    tls,
};

pub const NAME: Setting = Setting::new("WEBSENTRY_DATABASE_NAME", "database-name");
pub const HOST: Setting = Setting::new("WEBSENTRY_DATABASE_HOST", "database-host");
pub const PORT: Setting = Setting::new("WEBSENTRY_DATABASE_PORT", "database-port");
pub const USER: Setting = Setting::new("WEBSENTRY_DATABASE_USER", "database-user");
pub const PASSWORD: Setting = Setting::new("WEBSENTRY_DATABASE_PASSWORD", "database-password");
pub const SSLMODE: Setting = Setting::new("WEBSENTRY_DATABASE_SSLMODE", "database-sslmode");
pub const CAFILE: Setting = Setting::new("WEBSENTRY_DATABASE_CAFILE", "database-cafile");
pub const TIMEOUT: Setting = Setting::new("WEBSENTRY_DATABASE_TIMEOUT", "database-timeout");

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
    password: SecretString,
    pub sslmode: SslMode,
    roots: Arc<RootCertStore>,
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

impl DatabaseArgs {
    /// # Errors
    /// The first setting that is missing or malformed.
    pub fn parse(&self) -> Result<DatabaseSettings, SettingError> {
        let name = NAME.non_empty(self.name.clone())?;
        let host = HOST.non_empty(self.host.clone())?;
        let port = PORT.number(&self.port, 1..=u16::MAX)?;
        let user = USER.non_empty(self.user.clone())?;
        let password = PASSWORD.required(self.password.clone())?;
        // Never echoed: an empty one is a Secret or variable templated from nothing.
        if password.expose_secret().is_empty() {
            return Err(PASSWORD.error("is set but empty"));
        }
        let sslmode = match self.sslmode.trim().to_ascii_lowercase().as_str() {
            "disable" => SslMode::Disable,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(SSLMODE.error(format!("'{other}' is not one of disable, require, verify-ca, verify-full")))
            }
        };
        let roots = match CAFILE.optional_readable_file(self.cafile.as_deref())? {
            Some(path) => tls::root_store(&path, CAFILE)?,
            None => RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
        };
        let timeout = TIMEOUT.seconds(&self.timeout, TIMEOUT_SECONDS)?;
        Ok(DatabaseSettings { host, port, name, user, password, sslmode, roots: Arc::new(roots), timeout })
    }
}

impl DatabaseSettings {
    /// Where the database is, for messages (no credentials).
    pub fn address(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.name)
    }

    /// Connects, with the whole start-up exchange (TCP, TLS, authentication) under the timeout.
    ///
    /// Must not be called on a Tokio worker thread: the blocking client runs its own runtime.
    ///
    /// # Errors
    /// The server is unreachable, refuses TLS or the credentials, or does not answer in time.
    pub fn connect(&self) -> anyhow::Result<Client> {
        let mut config = postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .dbname(&self.name)
            .user(&self.user)
            .password(self.password.expose_secret())
            .application_name("websentry-consumer")
            .connect_timeout(self.timeout);
        let settings = self.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        // The client has no deadline for the exchange after TCP connect: run it on its own thread
        // and stop waiting at the deadline.
        std::thread::Builder::new()
            .name("websentry-db-connect".into())
            .spawn(move || {
                let _ = tx.send(settings.connect_now(config));
            })
            .context("starting the connection thread")?;
        let connected = rx
            .recv_timeout(self.timeout)
            .map_err(|_| anyhow!("no answer within {:?}", self.timeout))
            .and_then(|result| result);
        connected.with_context(|| format!("cannot connect to PostgreSQL at {}", self.address()))
    }

    fn connect_now(&self, mut config: postgres::Config) -> anyhow::Result<Client> {
        if self.sslmode == SslMode::Disable {
            config.ssl_mode(PgSslMode::Disable);
            return Ok(config.connect(NoTls)?);
        }
        config.ssl_mode(PgSslMode::Require);
        let mut tls = match self.sslmode {
            SslMode::VerifyFull => tls::builder_trusting((*self.roots).clone()).with_no_client_auth(),
            mode => rustls::ClientConfig::builder_with_provider(tls::provider())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(RelaxedVerifier::new(mode, Arc::clone(&self.roots))?))
                .with_no_client_auth(),
        };
        postgres_rustls::set_postgresql_alpn(&mut tls);
        let connector = postgres_rustls::MakeTlsConnector::new(tokio_rustls::TlsConnector::from(Arc::new(tls)));
        Ok(config.connect(connector)?)
    }
}

/// `verify-ca` (the chain is checked, the name is not) and `require` (nothing is checked, but the
/// handshake signatures are, so the channel is at least encrypted to whoever answered).
#[derive(Debug)]
struct RelaxedVerifier {
    check_chain: bool,
    webpki: Arc<WebPkiServerVerifier>,
}

impl RelaxedVerifier {
    fn new(mode: SslMode, roots: Arc<RootCertStore>) -> anyhow::Result<Self> {
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, tls::provider())
            .build()
            .context("building the certificate verifier")?;
        Ok(Self { check_chain: mode == SslMode::VerifyCa, webpki })
    }
}

impl ServerCertVerifier for RelaxedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.check_chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
