//! The producer: probes sites and publishes one report per probe.
//!
//! # A round, from start to finish
//!
//! 1. [`settings`] checks flags and `WEBSENTRY_*` variables into a [`settings::Config`] before any
//!    work starts: the sites of `--sites` and of the [`sites_file`], each a [`site::Site`] with its
//!    own [`matcher`] (the body pattern) and settings.
//! 2. [`schedule`] runs one round, or rounds at a fixed rate until a shutdown ([`run`], what `main`
//!    calls), at most `concurrency` probes at a time.
//! 3. Each site gets one [`probe`]: resolve, connect, TLS, HTTP exchange, body (under the round's
//!    memory budget, [`probe::body`]), pattern ([`probe::search`]), all under one deadline. A probe never fails: a site
//!    that is down is a report with an `error`. [`certificate`] reads the leaf certificate's
//!    expiry; [`credentials`] turns a URL's userinfo into Basic authentication and keeps the
//!    password out of what is shown.
//! 4. Each report, as its probe ends, goes to [`publish`] (Kafka: keyed by URL, partitioned like the
//!    Java client, in requests bounded by bytes, under one deadline) or, for a dry run, to stdout as
//!    a JSON line (`printer`). A daemon sends what Kafka did not acknowledge again with the next
//!    round.
//!
//! `probe` and `publish` do not know each other; [`schedule`] wires them.

pub mod certificate;
pub mod credentials;
mod daemon;
pub mod matcher;
mod printer;
pub mod probe;
pub mod publish;
pub mod schedule;
pub mod settings;
pub mod site;
pub mod sites_file;
pub mod slot;

pub use schedule::run;
