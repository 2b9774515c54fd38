//! Pieces that the producer and the consumer both need, and nothing that only one of them needs.
//!
//! - [`report`]: the JSON report, the one contract between producer and consumer.
//! - [`settings`]: how a bad setting is named in the one-line error that exits with code 2.
//! - [`tls`]: PEM files to a verified rustls client configuration (ring, no OpenSSL).
//! - [`kafka`]: Kafka connection settings and the client built from them.
//! - [`telemetry`]: logging set-up (`WEBSENTRY_LOGLEVEL`, `WEBSENTRY_LOG_FORMAT`).
//! - [`shutdown`]: a stop request wired to SIGTERM in `main` and triggered by hand in tests.
//! - [`exit`]: how `main` turns an error chain into one line and an exit code.
//!
//! This crate pulls in neither hyper nor postgres: those belong to one side only.

pub mod exit;
pub mod kafka;
pub mod report;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
