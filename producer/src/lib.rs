//! The producer: probes sites and publishes one report per probe.
//!
//! # A round, from start to finish
//!
//! 1. [`settings`] turns flags and `WEBSENTRY_*` variables into a checked [`settings::Config`]
//!    before any work starts: the sites of `--sites` and of the [`sites_file`], each a
//!    [`site::Site`] with its own [`matcher`] and settings.
//! 2. [`schedule`] runs one round, or a round at a fixed rate until a shutdown ([`run`]).
//! 3. In a round, each site gets one [`probe`]: resolve, connect, TLS, HTTP exchange, body,
//!    pattern, under one deadline. A probe never fails: a site that is down is a report with an
//!    `error`. Its leaf certificate's expiry comes from [`certificate`], and the URL's userinfo
//!    becomes Basic authentication and is never shown ([`credentials`]).
//! 4. Each report goes, as its probe ends, to [`publish`] (Kafka: keyed by URL, partitioned like
//!    the Java client, in requests bounded by bytes, under one deadline) or, for a dry run, to
//!    stdout as a JSON line (`printer`).
//!
//! `probe` and `publish` do not know each other; [`schedule`] wires them.

pub mod certificate;
pub mod credentials;
pub mod matcher;
mod printer;
pub mod probe;
pub mod publish;
pub mod schedule;
pub mod settings;
pub mod site;
pub mod sites_file;

pub use schedule::run;
