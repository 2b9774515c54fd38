//! Connecting: the blocking client over rustls, with the whole start-up exchange under a deadline.

use std::sync::Arc;

use anyhow::{anyhow, Context};
use postgres::{config::SslMode as PgSslMode, Client, NoTls};
use secrecy::ExposeSecret;
use websentry_shared::tls;

use super::{verifier::RelaxedVerifier, DatabaseSettings, SslMode};

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
