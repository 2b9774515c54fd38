//! PostgreSQL: the settings and their TLS modes are shared with the other programs that read the
//! archive (`websentry_shared::database`, re-exported here); the consumer adds its blocking client,
//! connected under a deadline (`database/connect.rs`).

mod connect;

pub use connect::connect;
pub use websentry_shared::database::{DatabaseArgs, DatabaseSettings, SslMode, PORT, TIMEOUT};
