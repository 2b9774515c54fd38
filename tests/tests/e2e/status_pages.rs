//! The status page's HTML after a producer → Kafka → consumer run: every site with its state,
//! trouble first, names and groups, the filter and the search, a site's own page, and a page of
//! 50 sites with 90 days each well under 100 KB.

use std::io::Write;

use time::{Duration, OffsetDateTime};
use websentry_shared::report::{ErrorKind, ProbeError, Report};
use websentry_tests::{sample_report, status_site_id, ArchivedSites, HttpAnswer, Stack, StatusServer};

/// The site rows of an overview, in order: (id, data-state, the row's HTML).
fn rows(html: &str) -> Vec<(String, String, String)> {
    html.split(r#"<tr class="site" data-state=""#)
        .skip(1)
        .map(|rest| {
            let (state, rest) = rest.split_once('"').expect("a closing quote");
            let id = rest.split_once(r#"id="site-"#).and_then(|(_, r)| r.split_once('"')).expect("an id").0;
            let row = rest.split_once("</tr>").expect("a closed row").0;
            (id.to_owned(), state.to_owned(), row.to_owned())
        })
        .collect()
}

fn page(status: &StatusServer, target: &str) -> String {
    let answer = status.get(target);
    assert_eq!(answer.status, 200, "{target}: {}", answer.text());
    assert_eq!(answer.header("content-type"), Some("text/html; charset=utf-8"), "{target}");
    let html = answer.text();
    assert_eq!(html.matches("<h1").count(), 1, "{target}: one <h1>");
    html
}

fn started(stack: &Stack, sites: &ArchivedSites) -> StatusServer {
    StatusServer::start(stack.status(&sites.db))
}

#[test]
fn the_overview_lists_every_site_with_its_state_name_and_group_trouble_first() {
    let stack = Stack::get();
    let sites = stack.archive_three_sites();
    let status = started(stack, &sites);

    let html = page(&status, "/");

    let found = rows(&html);
    let states: Vec<(&str, &str)> = found.iter().map(|(id, state, _)| (id.as_str(), state.as_str())).collect();
    let (down, named, up) = (status_site_id(&sites.down), status_site_id(&sites.named), status_site_id(&sites.up));
    assert_eq!(states.len(), 3, "{html}");
    assert_eq!(states[0], (down.as_str(), "down"), "the down site first: {states:?}");
    let mut rest = states[1..].to_vec();
    rest.sort();
    let mut expected = vec![(named.as_str(), "up"), (up.as_str(), "up")];
    expected.sort();
    assert_eq!(rest, expected);
    let row = |id: &str| &found.iter().find(|(i, _, _)| i == id).expect("the row").2;
    assert!(row(&named).contains(">Shop</a>") && row(&named).contains(">Public</td>"), "{}", row(&named));
    assert!(row(&named).contains(&sites.named), "a named site still shows its URL: {}", row(&named));
    assert!(row(&up).contains(&format!(">{}</a>", sites.up)), "an unnamed site is shown by its URL: {}", row(&up));
    assert!(row(&down).contains(">Internal</td>") && row(&down).contains("down</span>"), "{}", row(&down));
    assert!(row(&down).contains(r#"<svg class="shape down""#), "a shape beside the word: {}", row(&down));
    // Only today was measured: the 89 days before it are one grey run that says so.
    let bar = row(&up);
    assert!(bar.contains(r#"class="day nodata""#) && bar.contains(r#"data-days="89" data-coverage="0.000""#), "{bar}");
    assert!(bar.contains(": no data</title>"), "{bar}");
    assert!(html.contains(r#"<form class="filter" id="filter" method="get" action="/""#), "a GET form");
}

#[test]
fn the_group_filter_and_the_search_keep_only_the_matching_sites() {
    let stack = Stack::get();
    let sites = stack.archive_three_sites();
    let status = started(stack, &sites);
    let (down, named) = (status_site_id(&sites.down), status_site_id(&sites.named));
    let port = sites.up.rsplit(':').next().expect("a port").trim_end_matches("/ok").to_owned();

    for (query, expected) in [
        ("/?group=Public", vec![named.clone()]),
        ("/?group=Internal", vec![down.clone()]),
        ("/?q=SHOP", vec![named.clone()]),
        (&format!("/?q={port}") as &str, vec![status_site_id(&sites.up)]),
        ("/?group=Public&q=shop&utm_source=mail", vec![named.clone()]),
        ("/?group=Nobody", vec![]),
    ] {
        let html = page(&status, query);
        let ids: Vec<String> = rows(&html).into_iter().map(|(id, _, _)| id).collect();
        assert_eq!(ids, expected, "{query}");
        if expected.is_empty() {
            assert!(html.contains(r#"id="no-sites""#), "{query}: says no site matches");
        }
    }
    let html = page(&status, "/?group=Public");
    assert!(html.contains(r#"<option value="Public" selected>"#), "the form keeps the choice");
}

#[test]
fn a_down_sites_page_shows_its_location_outage_and_last_reports() {
    let stack = Stack::get();
    let sites = stack.archive_three_sites();
    let status = started(stack, &sites);

    let html = page(&status, &format!("/sites/{}", status_site_id(&sites.down)));

    assert!(html.contains(&format!(r#"<h1 id="site-name">{}</h1>"#, sites.down)), "{html}");
    assert!(html.contains(r#"id="site-state" data-state="down""#), "{html}");
    assert!(html.contains(r#"<tr class="location" data-state="down""#), "{html}");
    assert!(html.contains(r#"<tr class="outage ongoing">"#), "an outage still going: {html}");
    assert!(html.contains(r#"<tr class="report failed">"#) && html.contains(">connect"), "{html}");
    assert!(html.contains(r#"<figure class="chart" data-step="hour""#), "{html}");
    let named = page(&status, &format!("/sites/{}", status_site_id(&sites.named)));
    assert!(named.contains(r#"<h1 id="site-name">Shop</h1>"#) && named.contains("group: Public"), "{named}");
    assert!(named.contains("No outage"), "{named}");
}

/// 50 sites measured for 90 days (a report every 6 hours, some days mostly unmeasured, one site
/// down now and on some days), then the overview's size as sent plainly and compressed.
#[test]
fn a_page_of_fifty_sites_over_ninety_days_is_well_under_100_kb() {
    let stack = Stack::get();
    let db = stack.create_database();
    let topic = stack.create_topic(1);
    let now = OffsetDateTime::now_utc();
    let mut reports = Vec::new();
    for site in 0..50u32 {
        let url = format!("https://site-{site:02}.example.test/health?region=eu");
        for day in 0..90i64 {
            if (day + i64::from(site)) % 11 == 3 {
                continue; // nobody measured that day
            }
            for hour in [0i64, 6, 12, 18] {
                let at = now - Duration::days(day) - Duration::hours(hour);
                let failed = site == 7 && (day == 0 && hour == 0 || day % 17 == 5);
                reports.push(Report {
                    checked_at: at,
                    interval_s: Some(21_600),
                    response_ms: f64::from(20 + site * 3) + (day % 7) as f64,
                    error: failed.then(|| ProbeError { kind: ErrorKind::Timeout, message: "no answer".into() }),
                    name: (site % 2 == 0).then(|| format!("Service {site:02}")),
                    group: Some(format!("Team {}", site % 4)),
                    tls_expires_at: Some(now + Duration::days(i64::from(site) + 3)),
                    ..sample_report(&url)
                });
            }
        }
    }
    for chunk in reports.chunks(500) {
        let records = chunk.iter().map(|r| (Some(r.url.clone().into_bytes()), Some(r.to_json()))).collect();
        stack.produce_raw(&topic, 0, records);
    }
    stack.consumer(&topic, &db).success();
    let status = StatusServer::start(stack.status(&db));

    let plain = page(&status, "/");
    let compressed: HttpAnswer = status.request("GET", b"/", &[("Accept-Encoding", "gzip")]);

    assert_eq!(rows(&plain).len(), 50);
    assert_eq!(rows(&plain)[0].1, "down", "site 7 is down now, and first");
    assert_eq!(compressed.header("content-encoding"), Some("gzip"));
    let mut decoded = Vec::new();
    let mut decoder = flate2::write::GzDecoder::new(&mut decoded);
    decoder.write_all(&compressed.body).expect("gzip");
    decoder.finish().expect("a whole gzip stream");
    assert_eq!(String::from_utf8_lossy(&decoded).matches(r#"<tr class="site""#).count(), 50);
    println!("the overview of 50 sites × 90 days: {} bytes plain, {} bytes gzip", plain.len(), compressed.body.len());
    // As sent to a browser (every browser asks for gzip or br): well under 100 KB. Plain, the
    // bars of days that alternate (a partial day every few days) make it larger: printed above.
    assert!(compressed.body.len() < 50_000, "{} bytes gzip", compressed.body.len());
}

/// The kept overview is sent in the coding the client weighs most, compressed once: brotli or gzip
/// that decode to the page sent as it is, the same bytes to the next client, `Vary:
/// Accept-Encoding` on each, the page as it is to a client that accepts neither; a search (not
/// kept) is still compressed by the layer. Compressed ahead, a kept page is sent with its length;
/// the layer compresses as it sends, in chunks.
#[test]
fn the_kept_overview_is_sent_compressed_in_the_coding_the_client_weighs_most() {
    use std::io::Read;
    let stack = Stack::get();
    let sites = stack.archive_three_sites();
    let status = started(stack, &sites);
    let get = |encoding: &str| -> HttpAnswer {
        let answer = status.request("GET", b"/", &[("Accept-Encoding", encoding)]);
        assert_eq!(answer.status, 200, "Accept-Encoding: {encoding}");
        let vary = answer.headers.iter().filter(|(name, _)| name == "vary").map(|(_, v)| v.to_ascii_lowercase());
        assert!(vary.collect::<Vec<_>>().join(",").contains("accept-encoding"), "Vary, Accept-Encoding: {encoding}");
        answer
    };
    let plain = get("identity");
    assert_eq!(plain.header("content-encoding"), None);
    let html = plain.text();
    assert_eq!(rows(&html).len(), 3, "{html}");

    let br = get("gzip, deflate, br, zstd");
    assert_eq!(br.header("content-encoding"), Some("br"), "a browser's header");
    let mut unbrotli = String::new();
    brotli::Decompressor::new(&br.body[..], 4096).read_to_string(&mut unbrotli).expect("brotli");
    let gzip = get("br;q=0.5, gzip");
    assert_eq!(gzip.header("content-encoding"), Some("gzip"), "gzip weighed more");
    let mut ungzip = String::new();
    flate2::read::GzDecoder::new(&gzip.body[..]).read_to_string(&mut ungzip).expect("gzip");
    assert_eq!(unbrotli, html, "brotli decodes to the page");
    assert_eq!(ungzip, html, "gzip decodes to the page");
    assert_eq!(get("br").body, br.body, "the kept bytes again");
    let length = |answer: &HttpAnswer| answer.header("content-length").map(str::to_owned);
    assert_eq!(length(&br), Some(br.body.len().to_string()), "compressed ahead, sent with its length");
    assert_eq!(length(&gzip), Some(gzip.body.len().to_string()), "compressed ahead, sent with its length");

    let refused = get("br;q=0, gzip;q=0");
    assert_eq!(refused.header("content-encoding"), None, "both refused");
    assert_eq!(refused.text(), html);
    let malformed = get("br;q=2");
    assert_eq!(malformed.header("content-encoding"), None, "a weight out of range leaves br out");

    let search = status.request("GET", b"/?q=example", &[("Accept-Encoding", "br")]);
    assert_eq!(search.status, 200);
    assert_eq!(search.header("content-encoding"), Some("br"), "a search, not kept, compressed by the layer");
    assert_eq!(length(&search), None, "compressed as it is sent");
}

/// Browsers that ask for the overview at once, as a period begins, wait for one rendering of the
/// page and one compression per coding (`websentry_status_pages_made_total`), and all get it;
/// searches among them, rendered each (in turns, one per CPU at once), get theirs.
#[test]
fn browsers_asking_at_once_share_one_rendering_and_one_compression_per_coding() {
    let stack = Stack::get();
    let sites = stack.archive_three_sites();
    let status = started(stack, &sites);
    let (answers, searches): (Vec<HttpAnswer>, Vec<HttpAnswer>) = std::thread::scope(|scope| {
        let asking: Vec<_> = (0..24)
            .map(|n| {
                let status = &status;
                scope.spawn(move || {
                    let encoding = if n % 3 == 0 { "gzip" } else { "gzip, deflate, br" };
                    status.request("GET", b"/", &[("Accept-Encoding", encoding)])
                })
            })
            .collect();
        let searching: Vec<_> = (0..8)
            .map(|_| {
                let status = &status;
                scope.spawn(move || status.request("GET", b"/?q=http", &[]))
            })
            .collect();
        let join = |threads: Vec<std::thread::ScopedJoinHandle<'_, HttpAnswer>>| -> Vec<HttpAnswer> {
            threads.into_iter().map(|thread| thread.join().expect("a request")).collect()
        };
        (join(asking), join(searching))
    });
    for answer in &answers {
        assert_eq!(answer.status, 200);
        assert!(matches!(answer.header("content-encoding"), Some("br" | "gzip")));
    }
    for search in &searches {
        assert_eq!(search.status, 200, "{}", search.text());
        assert_eq!(rows(&search.text()).len(), 3, "every site's URL holds http");
    }
    let metrics = status.get("/metrics").text();
    let made = |what: &str| {
        let name = format!("websentry_status_pages_made_total{{answer=\"{what}\"}} ");
        metrics.lines().find_map(|line| line.strip_prefix(name.as_str())).map(str::to_owned)
    };
    assert_eq!(made("page").as_deref(), Some("1"), "one rendering:\n{metrics}");
    assert_eq!(made("page_br").as_deref(), Some("1"), "one brotli compression");
    assert_eq!(made("page_gzip").as_deref(), Some("1"), "one gzip compression");
}
