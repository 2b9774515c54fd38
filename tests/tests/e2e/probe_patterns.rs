//! Pattern searches are part of the probe's deadline: hostile patterns whose search time is
//! quadratic in the page (`(?=.*x)y` on a page without `x`) end as `regex_limit` reports within the
//! probe's timeout, never hold up another probe, a daemon's rounds or a SIGTERM. Runs the real
//! producer with `--dry-run`.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use websentry_shared::report::{ErrorKind, Report};
use websentry_tests::{
    eventually,
    hostile::{ok_with, RecordingServer},
    Run, Scratch, SiteServer,
};

/// Patterns whose look-ahead scans to the end of the page at every position: quadratic, and not
/// counted by fancy-regex's backtrack limit.
const HOSTILE_PATTERNS: [&str; 2] = [r"(?=.*x)y", r"(?!.*x).{5}y"];

/// The pages they are searched in: (path, size).
const PAGES: [(&str, usize); 3] = [("/16k", 16 * 1024), ("/100k", 100_000), ("/1m", 1 << 20)];

/// A bound on a report past the probe's timeout: the search's margin (0.25 s), and the start and
/// exit of a debug build on a loaded 2-core machine. Before, a 100 KB page took 18.6 s past a
/// timeout of 5 s and a 1 MiB page never ended.
const LATE: Duration = Duration::from_secs(3);

/// A server of pages without `x` or `y` (nor a newline, which `.` does not cross) at the paths of
/// [`PAGES`], whatever the query: at every position a look-ahead scans to the end, and fails.
fn hostile_pages() -> RecordingServer {
    RecordingServer::start(|request| {
        let path = request.path.split('?').next().unwrap_or_default();
        let size = PAGES.iter().find(|(p, _)| *p == path).map_or(0, |(_, size)| *size);
        ok_with(&page_without_x_or_y(size))
    })
}

fn page_without_x_or_y(size: usize) -> String {
    "lorem ipsum dolor sit amet, consectetur adipiscing elit ".chars().cycle().take(size).collect()
}

/// A sites file entry.
fn site(url: &str, pattern: &str) -> String {
    format!("[[site]]\nurl = \"{url}\"\nregexp = '{pattern}'\n\n")
}

/// One site per page of `pages` and hostile pattern: (url, page size).
fn hostile_sites(server: &RecordingServer, pages: &[(&str, usize)], sites_file: &mut String) -> Vec<(String, usize)> {
    let mut sites = Vec::new();
    for &(path, size) in pages {
        for (index, pattern) in HOSTILE_PATTERNS.iter().enumerate() {
            let url = server.url(&format!("{path}?pattern={index}"));
            sites_file.push_str(&site(&url, pattern));
            sites.push((url, size));
        }
    }
    sites
}

fn reports_of(stdout: &str) -> BTreeMap<String, Vec<Report>> {
    let mut by_url: BTreeMap<String, Vec<Report>> = BTreeMap::new();
    for line in stdout.lines() {
        let report = Report::decode(line.as_bytes()).expect("a report per line");
        by_url.entry(report.url.clone()).or_default().push(report);
    }
    by_url
}

fn assert_is_a_regex_limit_with_the_page(url: &str, size: usize, report: &Report) {
    assert_eq!((report.code, report.body_bytes), (200, Some(size as u64)), "{url}: the answer is kept");
    if size <= 16 * 1024 && report.error.is_none() {
        // A release build searches 16 KiB in about 0.2 s: within the timeout, and nothing found.
        assert_eq!(report.regexp_match, None, "{url}: finished");
        return;
    }
    let error = report.error.as_ref().unwrap_or_else(|| panic!("{url}: no error, match {:?}", report.regexp_match));
    assert_eq!(error.kind, ErrorKind::RegexLimit, "{url}: {}", error.message);
    assert!(error.message.starts_with("pattern search "), "{url}: {}", error.message);
    assert!(report.timings_ms.ttfb.is_some() && report.timings_ms.transfer.is_some(), "{url}: timings kept");
    assert_eq!(report.regexp_match, None, "{url}");
}

#[test]
fn hostile_patterns_end_as_regex_limit_within_the_timeout_on_pages_of_16_kib_100_kb_and_1_mib() {
    const TIMEOUT: Duration = Duration::from_secs(1);
    let server = hostile_pages();
    let mut sites_file = String::new();
    let hostile = hostile_sites(&server, &PAGES, &mut sites_file);
    let scratch = Scratch::new();
    let path = scratch.write("sites.toml", sites_file);
    let started = Instant::now();

    let output = Run::new("websentry-producer")
        .arg("--dry-run")
        .env("WEBSENTRY_SITES_FILE", path)
        .env("WEBSENTRY_TIMEOUT", TIMEOUT.as_secs().to_string())
        .env("WEBSENTRY_BODY_LIMIT", (2 << 20).to_string())
        .timeout(Duration::from_secs(60))
        .success();

    let took = started.elapsed();
    println!("a round of {} hostile searches with a timeout of {TIMEOUT:?} took {took:?}", hostile.len());
    let reports = reports_of(&output.stdout);
    assert_eq!(reports.len(), hostile.len(), "one report per site:\n{}", output.stdout);
    for (url, size) in &hostile {
        let report = &reports[url][0];
        println!("{url}: {:?}", report.error.as_ref().map(|e| &e.message));
        assert_is_a_regex_limit_with_the_page(url, *size, report);
    }
    assert!(took <= TIMEOUT + LATE, "the round took {took:?}, over its timeout {TIMEOUT:?} + {LATE:?}");
}

#[test]
fn hostile_searches_do_not_hold_up_an_unrelated_probe_in_the_same_round() {
    // A page that answers in 300 ms: its probe is under way while the hostile pages are searched.
    let unrelated = RecordingServer::start(|_| {
        std::thread::sleep(Duration::from_millis(300));
        ok_with("status: healthy, version=4.2")
    });
    let unrelated_url = unrelated.url("/health");
    let server = hostile_pages();
    let round = |hostile_pages: usize| {
        let mut sites_file = String::new();
        for index in 0..hostile_pages {
            let pattern = HOSTILE_PATTERNS[index % HOSTILE_PATTERNS.len()];
            sites_file.push_str(&site(&server.url(&format!("/16k?site={index}")), pattern));
        }
        sites_file.push_str(&site(&unrelated_url, r"version=(\d+)\.(\d+)"));
        let scratch = Scratch::new();
        let output = Run::new("websentry-producer")
            .arg("--dry-run")
            .env("WEBSENTRY_SITES_FILE", scratch.write("sites.toml", sites_file))
            .env("WEBSENTRY_TIMEOUT", "2")
            .timeout(Duration::from_secs(120))
            .success();
        let reports = reports_of(&output.stdout);
        let report = reports[&unrelated_url][0].clone();
        assert_eq!((report.error, report.regexp_match.as_deref()), (None, Some("42")), "the unrelated page");
        report.response_ms
    };

    let alone = round(0);
    let beside_hostile_pages = round(20);

    println!("the unrelated page: {alone} ms alone, {beside_hostile_pages} ms beside 20 hostile 16 KiB pages");
    // Before, searches of 16 KiB pages ran on the I/O threads: 60 such pages delayed a 16 ms page
    // to 1,271 ms. Now only the scheduling of the search threads beside the I/O threads is felt.
    assert!(
        beside_hostile_pages <= alone + 500.0,
        "{beside_hostile_pages} ms beside the hostile pages, {alone} ms alone"
    );
}

#[test]
fn a_daemon_with_a_hostile_page_keeps_probing_every_site_round_after_round() {
    let server = hostile_pages();
    let healthy = SiteServer::start();
    let hostile_url = server.url("/1m");
    let scratch = Scratch::new();
    let sites_file =
        format!("{}{}", site(&hostile_url, HOSTILE_PATTERNS[0]), site(&healthy.url("/ok"), r"version=(\d+)\.(\d+)"));
    let running = Run::new("websentry-producer")
        .arg("--dry-run")
        .env("WEBSENTRY_SITES_FILE", scratch.write("sites.toml", sites_file))
        .env("WEBSENTRY_INTERVAL", "1")
        .env("WEBSENTRY_TIMEOUT", "1")
        .spawn();

    // Before, the first round never ended: the 1 MiB search went on for hours. Each round holds
    // every site but the one under way at start, which holds only the slots still to come: four
    // rounds done hold at least three probes of the healthy site.
    running.wait_for_log_times("round done", 4, Duration::from_secs(30));
    running.terminate();
    let output = running.finish(Duration::from_secs(10));

    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let reports = reports_of(&output.stdout);
    let healthy_reports = &reports[&healthy.url("/ok")];
    assert!(healthy_reports.len() >= 3, "{} reports of the healthy site", healthy_reports.len());
    assert!(healthy_reports.iter().all(|r| r.error.is_none() && r.regexp_match.as_deref() == Some("42")));
    for report in &reports[&hostile_url] {
        assert_is_a_regex_limit_with_the_page(&hostile_url, 1 << 20, report);
    }
}

#[test]
fn sigterm_during_hostile_searches_ends_the_round_within_the_grace() {
    const TIMEOUT: Duration = Duration::from_secs(5);
    let server = hostile_pages();
    let mut sites_file = String::new();
    // Pages whose search takes far longer than the timeout in any build (9 s and 30 min, release).
    let hostile = hostile_sites(&server, &PAGES[1..], &mut sites_file);
    let scratch = Scratch::new();
    let running = Run::new("websentry-producer")
        .arg("--dry-run")
        .env("WEBSENTRY_SITES_FILE", scratch.write("sites.toml", sites_file))
        .env("WEBSENTRY_INTERVAL", "60")
        .env("WEBSENTRY_TIMEOUT", TIMEOUT.as_secs().to_string())
        .env("WEBSENTRY_BODY_LIMIT", (2 << 20).to_string())
        .spawn();
    // Every page served: its search starts as soon as its body is read.
    eventually("every hostile page served", Duration::from_secs(30), || server.requests().len() == hostile.len());

    let asked = Instant::now();
    running.terminate();
    // Kubernetes' default grace is 30 s; the round in flight must end by its probes' deadlines.
    let output = running.finish(TIMEOUT + LATE);

    println!("exited {:?} after SIGTERM", asked.elapsed());
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let reports = reports_of(&output.stdout);
    assert_eq!(reports.len(), hostile.len(), "the round in flight was finished:\n{}", output.stdout);
    for (url, size) in &hostile {
        assert_is_a_regex_limit_with_the_page(url, *size, &reports[url][0]);
    }
}
