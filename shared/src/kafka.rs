//! Kafka: the settings both binaries share (`kafka/settings.rs`) and the rskafka client built from
//! them (`kafka/client.rs`).
//!
//! Only mutual TLS is offered: the broker's certificate is always verified against the given CA.

mod client;
mod settings;

pub use client::{KafkaError, BROKER_ATTEMPT};
pub use settings::{KafkaArgs, KafkaSettings, TIMEOUT};
