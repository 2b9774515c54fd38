//! How the probe's steps word what went wrong: a [`ProbeError`] of a kind, and hyper's errors with
//! the cause that says what actually happened. Shared by the orchestration, the transport and the
//! body, so that none of them has to ask another for it.

use websentry_shared::report::{ErrorKind, ProbeError};

/// The report's `error`: what failed (`kind`) and how, in a message for people.
pub(super) fn failure(kind: ErrorKind, message: impl Into<String>) -> ProbeError {
    ProbeError { kind, message: message.into() }
}

/// hyper's own text plus its source, which says what actually happened (reset, parse error…).
pub(super) fn describe_hyper(err: &hyper::Error) -> String {
    match std::error::Error::source(err) {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    }
}
