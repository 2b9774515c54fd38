//! PostgreSQL connection settings and the blocking client built from them, over rustls.
//!
//! `WEBSENTRY_DATABASE_SSLMODE` follows libpq's names: `disable` (plain text), `require` (encrypted,
//! server identity NOT checked: logged as a warning at every start), `verify-ca` (certificate chain
//! checked) and `verify-full` (chain and host name checked; the default).
//!
//! - `database/settings.rs`: the flags and variables, checked into [`DatabaseSettings`];
//! - `database/connect.rs`: the blocking client over rustls, under the connect timeout;
//! - `database/verifier.rs`: the certificate verifier of `verify-ca` and `require`.

mod connect;
mod settings;
mod verifier;

pub use settings::{DatabaseArgs, DatabaseSettings, SslMode, PORT, TIMEOUT};
