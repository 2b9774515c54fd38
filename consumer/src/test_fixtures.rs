//! What the unit tests of several modules start from.

use websentry_shared::report::Report;

/// A report as this build's producer writes it after a successful probe, for unit tests to change.
pub fn report() -> Report {
    Report {
        v: 1,
        id: uuid::Uuid::now_v7(),
        url: "https://example.com/".into(),
        code: 200,
        response_ms: 12.5,
        regexp_match: None,
        checked_at: time::macros::datetime!(2026-11-29 10:00:00.123456789 UTC),
        probe: "p".into(),
        error: None,
        timings_ms: Default::default(),
        http_version: Some("HTTP/1.1".into()),
        final_url: Some("https://example.com/".into()),
        redirects: 0,
        body_bytes: Some(10),
        tls_expires_at: None,
        tls_chain_expires_at: None,
        interval_s: None,
        inconclusive: false,
        name: None,
        group: None,
    }
}
