//! The consumer: reads reports from Kafka and archives them into PostgreSQL, exactly once.
//!
//! # A tour
//! `main` checks the [`settings`] and hands over to the [`supervisor`], which migrates the
//! schema ([`schema`]), keeps the archive ([`upkeep`]) and starts a [`session`]: one connection to
//! each service. A session claims partitions ([`lease`] between replicas, [`partitions`] as plain
//! data), fetches them ([`fetch`]; the topic's identity from [`metadata`]) and writes what came in
//! batches: [`batch`] sorts records into reports and rejected records ([`storable`] decides what
//! PostgreSQL can store), and [`archive`] writes a batch, its rollups ([`rollup`]) and the
//! partition's next offset in one transaction (a one-off run: several fetches' batches, their
//! rollups merged once) ([`insert`] copies the rows; [`document`] decides
//! what a row keeps beside its columns). When either service fails, the session ends and the
//! supervisor starts another after a pause; [`metrics`] and [`http`] tell the outside.
//!
//! The blocking PostgreSQL client must not run on a Tokio worker thread, so the database side runs
//! on the calling thread and enters the runtime only to talk to Kafka and to wait ([`bridge`]).
//!
//! # Modules
//! - [`settings`]: flags and variables, checked into a [`settings::Config`]; [`database`]:
//!   connecting over rustls.
//! - [`supervisor`]: the run loop with backoff; [`session`]: claims, the one-off drain, the daemon's
//!   poll and the writing of batches; [`bridge`]: waits on the runtime that end on shutdown.
//! - [`fetch`]: Kafka partitions read from offsets we choose; [`metadata`]: a topic's id and
//!   partitions, asked of the broker directly; [`lease`] and [`partitions`]: who reads what.
//! - [`batch`], [`storable`]: records to reports or rejected records; [`archive`], [`insert`],
//!   [`document`], [`rollup`]: the transaction of a batch.
//! - [`schema`]: versioned migrations and the SQL interface; [`upkeep`]: day partitions and
//!   retention.
//! - [`metrics`], [`http`]: `/healthz`, `/readyz`, `/metrics`.

pub mod archive;
pub mod batch;
pub mod bridge;
pub mod database;
pub mod document;
pub mod fetch;
pub mod http;
pub mod insert;
pub mod keeper;
pub mod lease;
pub mod metadata;
pub mod metrics;
pub mod partitions;
pub mod rollup;
pub mod schema;
pub mod session;
pub mod settings;
pub mod storable;
pub mod supervisor;
pub mod upkeep;

#[cfg(test)]
mod test_fixtures;

pub use supervisor::run;
