//! Pieces that several of the programs need, and nothing that only one of them needs.
//!
//! - [`report`]: the JSON report, the one contract between producer and consumer.
//! - [`settings`]: how a bad setting is named in the one-line error that exits with code 2.
//! - [`tls`]: PEM files to a verified rustls client configuration (ring, no OpenSSL).
//! - [`kafka`]: Kafka connection settings and the client built from them.
//! - `database` (feature `database`): PostgreSQL settings, their TLS modes and the client
//!   configuration built from them, for the consumer and the status page.
//! - [`telemetry`]: logging set-up (`WEBSENTRY_LOGLEVEL`, `WEBSENTRY_LOG_FORMAT`).
//! - [`shutdown`]: a stop request wired to SIGTERM in `main` and triggered by hand in tests.
//! - [`exit`]: how `main` turns an error chain into one line and an exit code.
//! - [`listen`]: the listening socket of an HTTP endpoint, with a backlog for floods;
//!   [`connections`]: its open connections, slow clients giving way to new ones at the cap.
//!
//! This crate never pulls in hyper, and pulls in postgres only with the feature `database`: the
//! producer leaves it off and builds no postgres crate.

pub mod connections;
#[cfg(feature = "database")]
pub mod database;
pub mod exit;
pub mod kafka;
pub mod listen;
pub mod report;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
