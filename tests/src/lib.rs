//! Helpers for end-to-end tests against the real services of `scripts/stack`: a Kafka broker with
//! a mutual-TLS listener and a PostgreSQL server with TLS.
//!
//! - [`Stack`]: the running stack's settings, read from `scripts/stack env` (not from this
//!   process's environment, so unit tests never see them); fresh topics and databases per test.
//! - [`SiteServer`]: a local HTTP server with pages of known status and body.
//! - [`hostile`]: servers that misbehave the ways real websites do, and TLS sites for tests.
//! - [`Stack::produce_with_console_producer`]: records written by Kafka's own Java client.
//! - [`Scratch`]: a test's own folder of files, removed when dropped.
//! - [`Run`]: a binary of the workspace run with exactly the environment a test gives it;
//!   [`Running`] kills it when dropped.
//! - [`seeded_rng`]: random choices whose seed is printed, to replay a failure.
//! - [`eventually`]: a condition polled until a deadline, instead of sleeps.
//! - [`TestDatabase::assert_rollups_match_raw`]: the rollups count exactly the raw rows.

pub mod hostile;
mod kafka_tools;
mod reports;
mod rollups;
mod run;
mod scratch;
mod seed;
mod sites;
mod stack;
mod wait;

pub use reports::{http_get, metric, sample_report};
pub use run::{as_flags, binary, Run, RunOutput, Running};
pub use scratch::Scratch;
pub use seed::seeded_rng;
pub use sites::{unreachable_url, SiteServer};
pub use stack::{repo_root, Stack, TestDatabase};
pub use wait::eventually;
