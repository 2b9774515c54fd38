//! The status page's JSON API, badges, caching and hostile input, against the real binary after a
//! producer → Kafka → consumer run.

use websentry_tests::{status_site_id, Stack, StatusServer};

#[test]
fn the_api_gives_each_site_with_stable_fields_and_a_window() {
    let stack = Stack::get();
    let sites = stack.archive_three_sites();
    let status = StatusServer::start(stack.status(&sites.db));

    let list = status.get("/api/v1/sites");
    let one = status.get(&format!("/api/v1/sites/{}?window=7d", status_site_id(&sites.named)));

    assert_eq!((list.status, list.header("content-type")), (200, Some("application/json")));
    assert_eq!(list.header("cache-control"), Some("max-age=5"));
    let doc: serde_json::Value = serde_json::from_slice(&list.body).expect("JSON");
    let states: Vec<(&str, &str)> = doc["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .map(|s| (s["url"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states[0], (sites.down.as_str(), "down"), "{states:?}");
    assert_eq!(states.len(), 3);
    let doc: serde_json::Value = serde_json::from_slice(&one.body).expect("JSON");
    assert_eq!(
        (doc["name"].as_str(), doc["group"].as_str(), doc["window"].as_str()),
        (Some("Shop"), Some("Public"), Some("7d"))
    );
    assert_eq!(doc["id"].as_str(), Some(status_site_id(&sites.named).as_str()));
    for field in [
        "uptime",
        "coverage",
        "measured_s",
        "unknown_s",
        "down_s",
        "measured_uptime",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "last_checked_at",
        "locations",
    ] {
        assert!(doc.get(field).is_some(), "{field} in {doc}");
    }
    assert_eq!(doc["locations"][0]["state"].as_str(), Some("up"));
}

#[test]
fn badges_are_svg_with_cache_headers_and_an_etag() {
    let stack = Stack::get();
    let sites = stack.archive_three_sites();
    let status = StatusServer::start(stack.status(&sites.db));
    let down = status_site_id(&sites.down);

    for (path, text) in [
        (format!("/api/v1/sites/{down}/health/badge.svg"), "down"),
        (format!("/api/v1/sites/{}/uptime/24h/badge.svg", status_site_id(&sites.up)), "100%"),
    ] {
        let badge = status.get(&path);
        assert_eq!((badge.status, badge.header("content-type")), (200, Some("image/svg+xml; charset=utf-8")), "{path}");
        assert_eq!(badge.header("cache-control"), Some("max-age=5"), "{path}");
        let svg = badge.text();
        let document = roxmltree::Document::parse(&svg).expect("a badge parses as XML");
        assert_eq!(document.root_element().tag_name().name(), "svg");
        assert!(document.descendants().any(|n| n.text() == Some(text)), "{path}: {svg}");
        let etag = badge.header("etag").expect("an ETag").to_owned();
        let again = status.request("GET", path.as_bytes(), &[("If-None-Match", &etag)]);
        assert_eq!(again.status, 304, "{path}");
    }
    assert_eq!(status.get(&format!("/api/v1/sites/{down}/uptime/1y/badge.svg")).status, 400);
}

#[test]
fn hostile_paths_methods_queries_and_headers_get_a_clear_refusal_with_the_security_headers() {
    let stack = Stack::get();
    let sites = stack.archive_three_sites();
    let status = StatusServer::start(stack.status(&sites.db));
    let id = status_site_id(&sites.up);
    let huge = "x".repeat(20_000);
    let long_query = format!("/?q={}", "a".repeat(2000));

    for (method, target, headers, expected) in [
        ("GET", b"/../../etc/passwd".to_vec(), vec![], 404),
        ("GET", b"/sites/..%2f..%2fetc%2fpasswd".to_vec(), vec![], 404),
        ("GET", b"/sites/000000000000".to_vec(), vec![], 404),
        ("GET", id.to_uppercase().into_bytes(), vec![], 404),
        ("GET", format!("/sites/{id}/x").into_bytes(), vec![], 404),
        ("GET", b"/api/v1/sites/zz".to_vec(), vec![], 404),
        ("GET", format!("/api/v1/sites/{id}?window=1y").into_bytes(), vec![], 400),
        ("GET", format!("/api/v1/sites/{id}?window=7d&window=30d").into_bytes(), vec![], 400),
        ("GET", b"/?q=%ff%fe".to_vec(), vec![], 400),
        ("GET", b"/?q=%zz".to_vec(), vec![], 400),
        ("GET", long_query.into_bytes(), vec![], 400),
        ("GET", b"/?utm_source=mail".to_vec(), vec![], 200),
        ("POST", b"/".to_vec(), vec![("Content-Length", "0")], 405),
        ("DELETE", format!("/api/v1/sites/{id}").into_bytes(), vec![], 405),
        ("GET", b"/".to_vec(), vec![("X-Huge", huge.as_str())], 431),
        ("HEAD", b"/".to_vec(), vec![], 200),
        ("HEAD", format!("/api/v1/sites/{id}/health/badge.svg").into_bytes(), vec![], 200),
    ] {
        let what = format!("{method} {}", String::from_utf8_lossy(&target[..target.len().min(60)]));
        let answer = status.request(method, &target, &headers);
        assert_eq!(answer.status, expected, "{what}: {}", answer.text());
        if expected == 405 {
            assert!(answer.header("allow").is_some_and(|a| a.contains("GET")), "{what}: {:?}", answer.headers);
        }
        if method == "HEAD" {
            assert!(answer.body.is_empty(), "{what}");
        }
        if expected != 431 {
            assert_eq!(answer.header("x-content-type-options"), Some("nosniff"), "{what}");
            assert_eq!(answer.header("referrer-policy"), Some("no-referrer"), "{what}");
            let csp = answer.header("content-security-policy").unwrap_or_default();
            assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        }
        if expected == 404 && !what.contains("/api/") {
            assert!(answer.text().contains(r#"<h1 id="error" data-status="404">"#), "{what}: a clear page");
        }
    }
    assert_eq!(status.get("/healthz").status, 200);
}

/// With a cache period longer than the test, 200 concurrent requests for the overview, its JSON
/// and a badge cost the database one overview load: its first query counted once.
#[test]
fn a_flood_of_concurrent_requests_costs_one_query_per_answer_per_period() {
    let stack = Stack::get();
    let sites = stack.archive_three_sites();
    let status = StatusServer::start(stack.status(&sites.db).env("WEBSENTRY_STATUS_CACHE_SECONDS", "300"));
    let badge = format!("/api/v1/sites/{}/health/badge.svg", status_site_id(&sites.up));
    let targets = ["/", "/api/v1/sites", badge.as_str()];

    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..200)
            .map(|i| {
                let (status, target) = (&status, targets[i % 3]);
                scope.spawn(move || status.get(target).status)
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().expect("a request"), 200);
        }
    });

    let loads = status.metric(r#"websentry_status_db_queries_total{query="site_states"}"#);
    let misses = status.metric(r#"websentry_status_cache_misses_total{answer="overview"}"#);
    let hits = status.metric(r#"websentry_status_cache_hits_total{answer="overview"}"#);
    println!("200 concurrent requests: {loads} site_states queries, {misses} overview misses, {hits} hits");
    assert_eq!((loads, misses), (1.0, 1.0), "one load shared by every request");
    assert!(hits >= 199.0, "{hits}");
}
