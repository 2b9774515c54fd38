//! What the schema module refuses for good, told apart from a database that is only unreachable.

/// A database this build must not use, whatever it waits for: its encoding is not UTF-8, or its
/// schema was made by a newer build or by migration files that differ from this build's. Waiting
/// does not change that, so even a daemon stops (the supervisor tells it from a database outage).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Returns early with a [`Refused`] error.
macro_rules! refuse {
    ($($arg:tt)*) => { return Err($crate::schema::refused::Refused(format!($($arg)*)).into()) };
}
pub(crate) use refuse;
