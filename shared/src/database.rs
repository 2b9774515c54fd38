//! PostgreSQL: the settings of every program that reads or writes the archive, and what a client
//! needs to connect with them. Behind the feature `database`.
//!
//! `WEBSENTRY_DATABASE_SSLMODE` follows libpq's names: `disable` (plain text), `require` (encrypted,
//! server identity NOT checked: [`SslMode::warning`] is logged at every start), `verify-ca`
//! (certificate chain checked) and `verify-full` (chain and host name checked; the default).
//! rust-postgres knows only `disable`, `prefer` and `require`: every TLS mode connects with its
//! `require`, and the checks are the rustls verifier's.
//!
//! - `database/settings.rs`: the flags and variables, checked into [`DatabaseSettings`];
//! - `database/client.rs`: the [`tokio_postgres::Config`] and the TLS connector ([`DatabaseTls`])
//!   built from them, which both the blocking `postgres` client and `tokio-postgres` take;
//! - `database/verifier.rs`: the certificate verifier of `verify-ca` and `require`.
//!
//! Neither client bounds the whole start-up exchange: `connect_timeout` covers the TCP connection
//! only, so a server that accepts it and then stalls the TLS handshake or the authentication is
//! waited for. Whoever connects puts [`DatabaseSettings::timeout`] around the whole of it.

mod client;
mod settings;
mod verifier;

pub use client::{DatabaseTls, Handshake};
pub use settings::{DatabaseArgs, DatabaseSettings, SslMode, PORT, TIMEOUT};
/// The client crate whose types [`DatabaseSettings::tokio_config`] returns.
pub use tokio_postgres;
pub use verifier::VerifierError;
