//! Connecting: the blocking client over the shared TLS connector, with the whole start-up exchange
//! under a deadline.

use anyhow::{anyhow, Context};
use postgres::Client;

use super::DatabaseSettings;

/// Connects, with the whole start-up exchange (TCP, TLS, authentication) under the settings'
/// timeout.
///
/// Must not be called on a Tokio worker thread: the blocking client runs its own runtime.
///
/// # Errors
/// The server is unreachable, refuses TLS or the credentials, or does not answer in time.
pub fn connect(settings: &DatabaseSettings) -> anyhow::Result<Client> {
    connect_within_timeout(settings).with_context(|| format!("cannot connect to PostgreSQL at {}", settings.address()))
}

fn connect_within_timeout(settings: &DatabaseSettings) -> anyhow::Result<Client> {
    let (config, tls) = settings.tokio_config("websentry-consumer")?;
    let config = postgres::Config::from(config);
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    // The client has no deadline for the exchange after TCP connect: run it on its own thread and
    // stop waiting at the deadline.
    std::thread::Builder::new()
        .name("websentry-db-connect".into())
        .spawn(move || {
            let _ = tx.send(config.connect(tls));
        })
        .context("starting the connection thread")?;
    let connected =
        rx.recv_timeout(settings.timeout).map_err(|_| anyhow!("no answer within {:?}", settings.timeout))?;
    Ok(connected?)
}
