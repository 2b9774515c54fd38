//! A site's certificate: the leaf's expiry and the earliest of the chain it presents, told apart
//! from the probe to the archive (blackbox_exporter's `probe_ssl_earliest_cert_expiry` is the
//! chain's; users are surprised either way, so both are kept and named).

use time::macros::datetime;
use websentry_tests::{hostile::TlsSite, Stack};

#[test]
fn an_intermediate_that_expires_before_the_leaf_is_the_chains_expiry_in_the_report_and_the_archive() {
    let stack = Stack::get();
    let db = stack.create_database();
    let topic = stack.create_topic(1);
    let site = TlsSite::with_intermediate_until((2031, 1, 15), "ok");
    let ca = site.ca_file.as_ref().expect("a test CA").display().to_string();

    let printed = stack
        .producer(&topic)
        .arg("--dry-run")
        .env("WEBSENTRY_SITES", &site.url)
        .env("WEBSENTRY_PROBE_CAFILE", &ca)
        .success();
    stack.producer(&topic).env("WEBSENTRY_SITES", &site.url).env("WEBSENTRY_PROBE_CAFILE", &ca).success();
    stack.consumer(&topic, &db).success();

    let report: serde_json::Value = serde_json::from_str(printed.stdout.trim()).expect("one report");
    assert_eq!(report["error"], serde_json::Value::Null, "the chain verifies: {report}");
    assert_eq!(report["tls_expires_at"], "2040-06-30T00:00:00Z", "the leaf's");
    assert_eq!(report["tls_chain_expires_at"], "2031-01-15T00:00:00Z", "the intermediate's, which comes first");
    let row = db
        .client()
        .query_one(
            "SELECT tls_expires_at, tls_chain_expires_at, chain_days_left < days_left FROM certificates_expiring",
            &[],
        )
        .expect("the certificate");
    let (leaf, chain, sooner): (time::OffsetDateTime, time::OffsetDateTime, bool) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!((leaf, chain, sooner), (datetime!(2040-06-30 0:00 UTC), datetime!(2031-01-15 0:00 UTC), true));
    let rebuilt: serde_json::Value =
        db.client().query_one("SELECT report FROM report_documents", &[]).expect("the document").get(0);
    assert_eq!(rebuilt["tls_chain_expires_at"], "2031-01-15T00:00:00Z", "report_document gives it back");
}
