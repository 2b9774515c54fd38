//! End-to-end tests against the real services of `scripts/stack`: a Kafka broker over mutual TLS
//! and PostgreSQL over TLS. One test binary; a file per scenario. Each test uses its own topic and
//! its own database, so they run in parallel.
//!
//! Run them with `scripts/test`, which brings the stack up and builds the binaries first.

mod archive_properties;
mod archive_scale;
mod bad_configuration;
mod concurrent_writers;
mod consumer_daemon;
mod daemon;
mod in_process;
mod least_privilege;
mod partitioner;
mod pipeline;
mod poison_records;
mod probe_credentials;
mod probe_memory;
mod probe_outcomes;
mod publishing;
mod refused_connections;
mod secret_headers;
mod sql_interface;
mod topic_changes;
mod topic_metadata;
