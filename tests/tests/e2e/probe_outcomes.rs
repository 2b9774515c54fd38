//! Every way a website can misbehave ends as exactly one report with the right `error.kind`,
//! within the probe's timeout plus a small margin. Runs the real producer with `--dry-run`.

use std::{collections::BTreeMap, time::Duration};

use websentry_shared::report::{ErrorKind, Report};
use websentry_tests::{
    hostile::{serve, Behaviour, TlsSite},
    Run, Scratch,
};

const TIMEOUT_S: u64 = 3;
const BODY_LIMIT: u64 = 64 * 1024;

#[test]
fn each_misbehaving_site_gives_one_report_of_the_right_kind_within_the_timeout() {
    let signed = TlsSite::signed_by_test_ca("secure version=3.9");
    let self_signed = TlsSite::self_signed();
    // (name, url, regexp, expected kind, expected code)
    let cases: Vec<(&str, String, &str, Option<ErrorKind>, u16)> = vec![
        ("silent", serve(Behaviour::Silent), "", Some(ErrorKind::Timeout), 0),
        (
            "dribble",
            serve(Behaviour::Dribble { interval: Duration::from_millis(200) }),
            "",
            Some(ErrorKind::Timeout),
            200,
        ),
        ("endless", serve(Behaviour::Endless), "y+", Some(ErrorKind::BodyLimit), 200),
        ("redirect loop", serve(Behaviour::RedirectLoop), "", Some(ErrorKind::Http), 302),
        ("redirect once", serve(Behaviour::RedirectOnce), "landed", None, 200),
        ("huge headers", serve(Behaviour::HugeHeaders { bytes: 200 * 1024 }), "", Some(ErrorKind::Http), 0),
        ("garbage", serve(Behaviour::Garbage), "", Some(ErrorKind::Http), 0),
        ("reset", serve(Behaviour::Reset), "", Some(ErrorKind::Http), 0),
        ("self-signed", self_signed.url.clone(), "", Some(ErrorKind::Tls), 0),
        ("signed by the given CA", signed.url.clone(), r"version=(\d+)\.(\d+)", None, 200),
        ("not UTF-8", serve(Behaviour::NotUtf8), r"version=(\d+)\.(\d+)", None, 200),
        (
            "catastrophic pattern",
            serve(Behaviour::Body("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
            r"(a|aa)+\1c",
            Some(ErrorKind::RegexLimit),
            200,
        ),
    ];
    let mut sites_file = String::new();
    for (_, url, regexp, _, _) in &cases {
        sites_file.push_str(&format!("[[site]]\nurl = \"{url}\"\nregexp = '{regexp}'\n\n"));
    }
    let scratch = Scratch::new();
    let path = scratch.write("sites.toml", sites_file);

    let output = Run::new("websentry-producer")
        .arg("--dry-run")
        .env("WEBSENTRY_SITES_FILE", path)
        .env("WEBSENTRY_TIMEOUT", TIMEOUT_S.to_string())
        .env("WEBSENTRY_BODY_LIMIT", BODY_LIMIT.to_string())
        .env("WEBSENTRY_MAX_REDIRECTS", "5")
        .env("WEBSENTRY_PROBE_CAFILE", signed.ca_file.as_ref().expect("CA file").display().to_string())
        .success();

    let reports: Vec<Report> =
        output.stdout.lines().map(|line| Report::decode(line.as_bytes()).expect("a report per line")).collect();
    assert_eq!(reports.len(), cases.len(), "one report per site:\n{}", output.stdout);
    let by_url: BTreeMap<&str, &Report> = reports.iter().map(|r| (r.url.as_str(), r)).collect();
    for (name, url, _, kind, code) in &cases {
        let report = by_url.get(url.as_str()).unwrap_or_else(|| panic!("{name}: no report for {url}"));
        assert_eq!(report.error.as_ref().map(|e| e.kind), *kind, "{name}: {:?}", report.error);
        assert_eq!(report.code, *code, "{name}: code");
        let bound_ms = (TIMEOUT_S * 1000 + 1000) as f64;
        assert!(report.response_ms <= bound_ms, "{name}: took {} ms, over {bound_ms}", report.response_ms);
    }

    let report = |name: &str| {
        let (_, url, ..) = cases.iter().find(|case| case.0 == name).unwrap_or_else(|| panic!("no case {name:?}"));
        by_url[url.as_str()]
    };
    let endless = report("endless");
    assert_eq!(endless.body_bytes, Some(BODY_LIMIT), "the body stops at the limit");
    // The pattern matches all that was read; the report holds the first 4 KiB of it.
    let matched = endless.regexp_match.as_deref().unwrap_or_default();
    assert!(
        matched.len() == websentry_producer::matcher::MAX_MATCH_BYTES && matched.ends_with('…'),
        "matched on what was read, reported up to the cap: {} bytes",
        matched.len()
    );
    assert_eq!(report("redirect loop").redirects, 5);
    let once = report("redirect once");
    assert_eq!(once.redirects, 1);
    assert!(once.final_url.as_deref().is_some_and(|u| u.ends_with("/landed")), "{:?}", once.final_url);
    assert_eq!(once.regexp_match.as_deref(), Some("landed"));
    let secure = report("signed by the given CA");
    assert_eq!(secure.regexp_match.as_deref(), Some("39"));
    assert_eq!(secure.tls_expires_at.map(|t| t.to_string()), Some("2040-06-30 0:00:00.0 +00:00:00".to_owned()));
    assert!(secure.timings_ms.tls.is_some() && secure.timings_ms.dns.is_some(), "{:?}", secure.timings_ms);
    assert_eq!(report("not UTF-8").regexp_match.as_deref(), Some("71"), "matched on a lossy decoding");
}

#[test]
fn an_http2_site_is_probed_over_http2_negotiated_by_alpn() {
    let site = TlsSite::http2_signed_by_test_ca("over h2, version=2.0");
    let output = Run::new("websentry-producer")
        .arg("--dry-run")
        .env("WEBSENTRY_SITES", site.url.clone())
        .env("WEBSENTRY_REGEXP", r"version=(\d+)\.(\d+)")
        .env("WEBSENTRY_PROBE_CAFILE", site.ca_file.as_ref().expect("CA file").display().to_string())
        .success();
    let report = Report::decode(output.stdout.trim().as_bytes()).expect("one report");
    assert_eq!(report.error, None);
    assert_eq!(report.code, 200);
    assert_eq!(report.http_version.as_deref(), Some("HTTP/2.0"));
    assert_eq!(report.regexp_match.as_deref(), Some("20"));
    assert!(report.tls_expires_at.is_some());
}
