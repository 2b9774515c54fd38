//! What a client needs to connect with the settings: the `tokio-postgres` configuration and the TLS
//! connector of the mode. The blocking `postgres` client takes both as well
//! (`postgres::Config::from(config).connect(tls)`), so the consumer and the status page check the
//! server alike.

use std::{future::Future, io, pin::Pin, sync::Arc};

use postgres_rustls::{MakeTlsConnector, TlsConnector, TlsStream};
use rustls::{pki_types::InvalidDnsNameError, ClientConfig};
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::{
    config::SslMode as PgSslMode,
    tls::{MakeTlsConnect, TlsConnect},
};

use super::{
    verifier::{RelaxedVerifier, VerifierError},
    DatabaseSettings, SslMode,
};
use crate::tls;

impl DatabaseSettings {
    /// The client configuration and the TLS connector of these settings, for `tokio-postgres`
    /// (`config.connect(tls)`, or a pool's manager built from both) and for the blocking client
    /// (`postgres::Config::from(config)`). The server is where the settings say, the connection is
    /// named `application_name` in `pg_stat_activity`, and `connect_timeout` bounds the TCP
    /// connection: put [`DatabaseSettings::timeout`] around the whole of connecting too (a pool's
    /// create timeout), as the TLS handshake and the authentication have no deadline of their own.
    ///
    /// # Errors
    /// The certificate verifier cannot be built from the CAs (`verify-ca` and `require` only).
    pub fn tokio_config(&self, application_name: &str) -> Result<(tokio_postgres::Config, DatabaseTls), VerifierError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .dbname(&self.name)
            .user(&self.user)
            .password(self.password.expose_secret())
            .application_name(application_name)
            .connect_timeout(self.timeout)
            // rust-postgres' `require` is "TLS or nothing"; what is checked is the verifier's.
            .ssl_mode(if self.sslmode == SslMode::Disable { PgSslMode::Disable } else { PgSslMode::Require });
        Ok((config, self.tls()?))
    }

    /// The TLS connector of the mode: none with `disable`; else rustls with ring, checking the
    /// certificate chain against the CAs and the host name (`verify-full`), the chain only
    /// (`verify-ca`) or nothing but the handshake's signatures (`require`).
    ///
    /// # Errors
    /// As [`DatabaseSettings::tokio_config`].
    pub fn tls(&self) -> Result<DatabaseTls, VerifierError> {
        let mut config = match self.sslmode {
            SslMode::Disable => return Ok(DatabaseTls(None)),
            SslMode::VerifyFull => tls::builder_trusting((*self.roots).clone()).with_no_client_auth(),
            mode @ (SslMode::VerifyCa | SslMode::Require) => ClientConfig::builder_with_provider(tls::provider())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(RelaxedVerifier::new(mode, Arc::clone(&self.roots))?))
                .with_no_client_auth(),
        };
        postgres_rustls::set_postgresql_alpn(&mut config);
        Ok(DatabaseTls(Some(MakeTlsConnector::new(tokio_rustls::TlsConnector::from(Arc::new(config))))))
    }
}

/// The TLS connector of the settings' mode, taken by both clients as their `tls` argument: rustls,
/// or nothing with `disable` (which then connects as `NoTls` would, a Unix socket included).
#[derive(Clone)]
pub struct DatabaseTls(Option<MakeTlsConnector>);

impl std::fmt::Debug for DatabaseTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "DatabaseTls(rustls)" } else { "DatabaseTls(disabled)" })
    }
}

impl<S> MakeTlsConnect<S> for DatabaseTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Handshake;
    type Error = InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Handshake, InvalidDnsNameError> {
        match &mut self.0 {
            Some(rustls) => MakeTlsConnect::<S>::make_tls_connect(rustls, domain).map(|tls| Handshake(Some(tls))),
            // No name to check: `disable` never starts a handshake (nor a Unix socket's empty name).
            None => Ok(Handshake(None)),
        }
    }
}

/// One connection's TLS handshake, made by [`DatabaseTls`].
pub struct Handshake(Option<TlsConnector<'static>>);

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Handshake").field(&self.0.is_some()).finish()
    }
}

impl<S> TlsConnect<S> for Handshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        match self.0 {
            Some(rustls) => Box::pin(rustls.connect(stream)),
            // Only reached when a caller asks for TLS on a configuration whose mode is `disable`.
            None => Box::pin(std::future::ready(Err(io::Error::other("TLS is disabled (WEBSENTRY_DATABASE_SSLMODE)")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_postgres::config::Host;

    use super::*;
    use crate::database::DatabaseArgs;

    fn settings(sslmode: &str) -> DatabaseSettings {
        let args = DatabaseArgs {
            database_name: Some("archive".into()),
            database_host: Some("db.example".into()),
            database_port: "6432".into(),
            database_user: Some("reader".into()),
            database_password: Some("secret".to_owned().into()),
            database_sslmode: sslmode.into(),
            database_cafile: None,
            database_timeout: "7".into(),
        };
        DatabaseSettings::try_from(&args).expect("valid settings")
    }

    #[test]
    fn the_configuration_is_the_settings_with_tls_required_unless_disabled() {
        for (sslmode, expected) in [
            ("verify-full", PgSslMode::Require),
            ("verify-ca", PgSslMode::Require),
            ("require", PgSslMode::Require),
            ("disable", PgSslMode::Disable),
        ] {
            let (config, tls) = settings(sslmode).tokio_config("websentry-test").expect(sslmode);

            assert_eq!(config.get_ssl_mode(), expected, "sslmode {sslmode}");
            assert_eq!(tls.0.is_some(), sslmode != "disable", "sslmode {sslmode}: {tls:?}");
            assert_eq!(config.get_hosts(), [Host::Tcp("db.example".into())], "sslmode {sslmode}");
            assert_eq!(config.get_ports(), [6432], "sslmode {sslmode}");
            assert_eq!(config.get_dbname(), Some("archive"));
            assert_eq!(config.get_user(), Some("reader"));
            assert_eq!(config.get_password(), Some(&b"secret"[..]));
            assert_eq!(config.get_application_name(), Some("websentry-test"));
            assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(7)));
        }
    }

    #[test]
    fn only_require_is_warned_about() {
        let warned: Vec<_> = [SslMode::Disable, SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull]
            .into_iter()
            .filter(|mode| mode.warning().is_some())
            .collect();

        assert_eq!(warned, [SslMode::Require]);
    }

    #[test]
    fn neither_the_settings_nor_the_connector_show_the_password() {
        let settings = settings("verify-full");
        let (_, tls) = settings.tokio_config("websentry-test").expect("a configuration");

        let shown = format!("{settings:?} {tls:?} {}", settings.address());

        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(settings.address(), "db.example:6432/archive");
    }
}
