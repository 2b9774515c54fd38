//! Websentry's per-site metrics beside blackbox_exporter's (Debian's 0.23) for the same local sites
//! (http up, down, redirected; https with an intermediate that expires before the leaf): the same
//! names and types, the same phases, and the same values where both measure the same thing.

use std::collections::BTreeSet;

use websentry_tests::{
    probe_sites::{unix_midnight, CHAIN_NOT_AFTER, PROBE_NAME},
    prometheus::BlackboxExporter,
    Exposition, Stack, StatusServer,
};

/// The metrics whose values must agree, and the sites each is present for.
const AGREEING: [&str; 5] = [
    "probe_success",
    "probe_http_status_code",
    "probe_http_redirects",
    "probe_http_version",
    "probe_ssl_earliest_cert_expiry",
];

/// The metrics both export, whose values are times measured separately.
const SAME_NAMES: [&str; 3] = ["probe_duration_seconds", "probe_http_duration_seconds", "probe_failed_due_to_regex"];

#[test]
fn blackbox_exporter_and_websentry_agree_on_the_same_sites() {
    let stack = Stack::get();
    let sites = stack.archive_probed_sites(1, &[]);
    let status = StatusServer::start(stack.status(&sites.db));
    let ours = Exposition::parse(&status.get("/probes/metrics").text()).expect("our exposition");
    let blackbox = BlackboxExporter::start(&format!(
        "modules:\n  http_test:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n\
         \x20     tls_config:\n        ca_file: {}\n",
        sites.ca_file
    ));

    for (site, url) in
        [("up", &sites.up), ("down", &sites.down), ("redirected", &sites.redirected), ("https", &sites.https)]
    {
        let theirs = blackbox.probe("http_test", url);
        let labels = [("instance", url.as_str()), ("probe", PROBE_NAME)];
        for name in AGREEING.into_iter().chain(SAME_NAMES) {
            let (mine, their) = (ours.series(name, &labels), theirs.series(name, &[]));
            assert_eq!(mine.is_empty(), their.is_empty(), "{site}: {name}: ours {mine:?}, blackbox {their:?}");
            if !their.is_empty() {
                assert_eq!(ours.type_of(name), Some("gauge"), "{site}: {name}");
                assert_eq!(theirs.type_of(name), Some("gauge"), "{site}: {name}");
            }
        }
        for name in AGREEING {
            assert_eq!(ours.value(name, &labels), theirs.value(name, &[]), "{site}: {name}");
        }
        let phases = |e: &Exposition, labels: &[(&str, &str)]| -> BTreeSet<String> {
            e.series("probe_http_duration_seconds", labels).iter().map(|s| s.labels["phase"].clone()).collect()
        };
        assert_eq!(phases(&ours, &labels), phases(&theirs, &[]), "{site}: the phases");
        // Both in seconds: a local probe takes well under one.
        for e in [&ours, &theirs] {
            let seconds = e.series("probe_duration_seconds", &[]).iter().map(|s| s.value).fold(0.0, f64::max);
            assert!(seconds > 0.0 && seconds < 5.0, "{site}: {seconds}");
        }
    }
    // The control: the values compared do differ between sites, so agreeing means something.
    let (up, down) = (blackbox.probe("http_test", &sites.up), blackbox.probe("http_test", &sites.down));
    assert_ne!(up.value("probe_success", &[]), down.value("probe_success", &[]));
    assert_ne!(up.value("probe_http_version", &[]), down.value("probe_http_version", &[]));
    let https = blackbox.probe("http_test", &sites.https);
    let redirected = blackbox.probe("http_test", &sites.redirected);
    assert_eq!(https.value("probe_ssl_earliest_cert_expiry", &[]), Some(unix_midnight(CHAIN_NOT_AFTER)), "the chain's");
    assert_eq!(redirected.value("probe_http_redirects", &[]), Some(1.0));
}
