//! Helpers for end-to-end tests against the real services of `scripts/stack`: a Kafka broker with
//! a mutual-TLS listener and a PostgreSQL server with TLS.
//!
//! - [`Stack`]: the running stack's settings, read from `scripts/stack env` (not from this
//!   process's environment, so unit tests never see them); fresh topics and databases per test.
//! - [`SiteServer`]: a local HTTP server with pages of known status and body.
//! - [`hostile`]: servers that misbehave the ways real websites do, and TLS sites for tests.
//! - [`Stack::produce_with_console_producer`]: records written by Kafka's own Java client;
//!   [`Stack::transactional_writer`] and [`Stack::produce_with_producer_performance`]: records
//!   written by its transactional producer, committed, aborted or left open.
//! - [`Scratch`]: a test's own folder of files, removed when dropped.
//! - [`binary`]: the workspace's binaries, built once per test process from the current source.
//! - [`Run`]: a binary of the workspace run with exactly the environment a test gives it;
//!   [`Running`] kills it when dropped. [`Stack::consumer`], [`Stack::consumer_daemon`] and
//!   [`Stack::producer`] start one against the stack in one call.
//! - [`seeded_rng`]: random choices whose seed is printed, to replay a failure.
//! - [`eventually`], [`eventually_ok`], [`consistently`]: a condition polled until a deadline, or
//!   for a while, instead of sleeps.
//! - [`TestDatabase::assert_rollups_match_raw`]: the rollups count exactly the raw rows.
//! - [`Stack::status`] and [`StatusServer`]: the status page for a test's database; [`http`]: a
//!   raw HTTP/1.1 client that sends any bytes as the path, any method, any header.
//! - [`TestDatabase::migrated`], [`day_partition`], [`TestDatabase::partition_holding`]: the
//!   archive's schema and its day partitions.
//! - [`Exposition`]: Prometheus exposition text parsed; [`probe_sites`]: sites up, down, redirected
//!   and https, probed and archived for the per-site metrics; [`prometheus`]: Debian's Prometheus
//!   server and blackbox_exporter on free ports.
//! - [`figure`]: a benchmark's figure with its target, as a line a script can read.
//! - [`Browser`]: a headless Chromium driven through chromedriver, for pages as a person sees them
//!   (with [`JavaScript`] on or off), their console and a screenshot.

mod archive;
mod binaries;
mod browser;
mod exposition;
mod figures;
mod flood;
pub mod hostile;
mod kafka_tools;
pub mod probe_sites;
mod programs;
pub mod prometheus;
mod relay;
mod reports;
mod rollups;
mod run;
mod scratch;
mod seed;
mod sites;
mod stack;
mod status;
mod transactions;
mod wait;

pub use archive::{day_partition, midnight, migrate_to_version, upkeep_until_done, ReportWriter, KEEP_EVERYTHING};
pub use binaries::binary;
pub use browser::{png_dimensions, Browser, ConsoleEntry, JavaScript, WINDOW};
pub use exposition::{Exposition, Sample};
pub use figures::{figure, median};
pub use flood::{probe, rss_kib, Flood};
pub use relay::Relay;
pub use reports::{http_get, metric, sample_report};
pub use run::{as_flags, Run, RunOutput, Running};
pub use scratch::Scratch;
pub use seed::seeded_rng;
pub use sites::{unreachable_url, SiteServer};
pub use stack::{repo_root, Stack, TestDatabase};
pub use status::{http, status_site_id, ArchivedSites, HttpAnswer, StatusServer};
pub use transactions::TransactionalWriter;
pub use wait::{consistently, eventually, eventually_ok};
