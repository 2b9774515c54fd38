//! Helpers for end-to-end tests against the real services of `scripts/stack`: a Kafka broker with
//! a mutual-TLS listener and a PostgreSQL server with TLS.
//!
//! - [`Stack`]: the running stack's settings, read from `scripts/stack env` (not from this
//!   process's environment, so unit tests never see them); fresh topics and databases per test.
//! - [`SiteServer`]: a local HTTP server with pages of known status and body.
//! - [`hostile`]: servers that misbehave the ways real websites do, and TLS sites for tests.
//! - [`Stack::produce_with_console_producer`]: records written by Kafka's own Java client.
//! - [`Scratch`]: a test's own folder of files, removed when dropped.
//! - [`Run`]: a binary of the workspace run with exactly the environment a test gives it.

pub mod hostile;
mod kafka_tools;
mod reports;
mod run;
mod scratch;
mod sites;
mod stack;
mod wait;

pub use reports::{http_get, metric, sample_report};
pub use run::{binary, Run, RunOutput, Running};
pub use scratch::Scratch;
pub use sites::{unreachable_url, SiteServer};
pub use stack::{Stack, TestDatabase};
pub use wait::eventually;
