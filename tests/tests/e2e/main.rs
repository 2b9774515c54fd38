//! End-to-end tests against the real services of `scripts/stack`: a Kafka broker over mutual TLS
//! and PostgreSQL over TLS. One test binary; a file per scenario. Each test uses its own topic and
//! its own database, so they run in parallel.
//!
//! With the stack up (`scripts/stack up`), `cargo test -p websentry-tests --test e2e` runs them all
//! and `cargo test -p websentry-tests --test e2e -- pipeline::` one file's; the harness builds the
//! binaries they start first (see `websentry_tests::binary`). `scripts/test` runs everything.

mod alert_rules;
mod archive_alerts;
mod archive_far_days;
mod archive_late_reports;
mod archive_migration_v17;
mod archive_migration_v3;
mod archive_properties;
mod archive_retention;
mod archive_site_summary;
mod archived_documents;
mod bad_configuration;
mod batch_transactions;
mod blackbox_comparison;
mod browser;
mod certificate_expiry;
mod concurrent_writers;
mod consumer_daemon;
mod daemon;
mod database_tls;

mod grafana_dashboard;
mod http_slow_clients;
mod in_process;
mod kept_windows;
mod least_privilege;
mod measured_time;
mod partitioner;
mod pipeline;
mod poison_records;
mod pooled_locations;
mod probe_credentials;
mod probe_memory;
mod probe_metrics;
mod probe_outcomes;
mod probe_patterns;
mod prometheus_alerts;
mod publishing;
mod refused_connections;
mod secret_headers;
mod site_detail;
mod spread;
mod sql_interface;
mod status_api;
mod status_browser;
mod status_faults;
mod status_pages;
mod status_windows;
mod topic_changes;
mod topic_metadata;
mod transactions;
