//! A topic's id and partitions, asked of the broker directly: rskafka 0.6 speaks Metadata v0–v4,
//! which carries no topic id, and only the id tells a topic deleted and created again under the
//! same name (KIP-516) from the one we were reading.
//!
//! One Metadata v12 request per call (request header v2, response header v1, flexible encoding) on
//! one mutual-TLS connection, kept open between calls and opened again after any failure. Each
//! broker gets its own deadline, so one that accepts TCP and never answers does not stop the next
//! one being tried. Answers are read with bounds checks only: bytes that are truncated or hostile
//! give a [`DecodeError`], never a panic.
//!
//! - [`client`]: the connection, deadlines and broker fail-over; what an answer means.
//! - [`wire`]: the bytes of a request and of its answer (Kafka's protocol), checked as they are
//!   read — kept apart from the client, as rskafka keeps `protocol/` apart from `client/`.

pub mod client;
pub mod wire;

pub use client::{MetadataClient, MetadataError, MAX_ATTEMPT};
pub use wire::{DecodeError, TopicMetadata, MAX_FRAME_BYTES};
