//! The status page as a person sees it, in a headless Chromium with JavaScript off (the pages have
//! none), served by the real `websentry-status` after a producer → Kafka → consumer run: the
//! overview with trouble first, a grey day after a producer outage, a down site's page followed
//! from its link, the group filter and the search submitted as forms, a badge, no Content Security
//! Policy violation anywhere, and a screenshot of each page under `target/screenshots`.
//!
//! `WEBSENTRY_UPDATE_SCREENSHOT=1 cargo test -p websentry-tests --test e2e status_browser` also
//! writes the README's picture, `docs/status-overview.png`, from a realistic set of sites; the
//! plain test leaves `docs/` alone.

use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime, Time};
use websentry_shared::report::{ErrorKind, ProbeError, Report};
use websentry_tests::{
    png_dimensions, repo_root, sample_report, status_site_id, Browser, JavaScript, Scratch, SiteServer, Stack,
    StatusServer, WINDOW,
};

/// How long a page may take to show what a test waits for.
const WAIT: StdDuration = StdDuration::from_secs(10);
/// The location every report of these tests comes from, the producer's included.
const PROBE: &str = "eu-west";
/// What the producer says of a site answering 500.
const FAILED: &str = "status 500 is not one of the expected 200-399";
/// The README's picture: as wide as the window, at most this tall.
const PICTURE_HEIGHT: u32 = 760;

fn report(url: &str, at: OffsetDateTime, interval_s: u32, error: Option<(ErrorKind, &str)>) -> Report {
    Report {
        checked_at: at,
        interval_s: Some(interval_s),
        probe: PROBE.into(),
        code: if error.is_some() { 500 } else { 200 },
        error: error.map(|(kind, message)| ProbeError { kind, message: message.into() }),
        ..sample_report(url)
    }
}

fn midnight(day: OffsetDateTime) -> OffsetDateTime {
    day.replace_time(Time::MIDNIGHT)
}

/// `2026-12-04 10:00:00 UTC`, as the pages write a time.
fn shown(at: OffsetDateTime) -> String {
    format!("{} {:02}:{:02}:{:02} UTC", at.date(), at.hour(), at.minute(), at.second())
}

/// Nothing on the page needs a script, and the browser reported no policy violation so far.
fn clean(browser: &Browser, page: &str) {
    assert_eq!(browser.scripts(), Vec::<String>::new(), "{page}: nothing needs JavaScript");
    assert_eq!(browser.csp_violations(), Vec::<String>::new(), "{page}: keeps to its Content Security Policy");
    assert_eq!(browser.count("h1"), 1, "{page}: one <h1>");
}

/// Saves a screenshot of the whole page as `name` and checks that the page is no wider than the
/// window (1,280 px): a full-page screenshot is as wide as the page's content, so a table pushing
/// out of the window (a sideways scroll) makes it wider.
fn fits_the_window(browser: &Browser, name: &str) {
    let path = browser.screenshot(name);
    let png = std::fs::read(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    let (width, _) = png_dimensions(&png).expect("a PNG");
    assert_eq!(width, WINDOW.0, "{name}: the page is {width} px wide in a {} px window", WINDOW.0);
}

/// The page's title is its one heading: once in an `<h1>`, not again in the header above it.
fn titled_once(browser: &Browser, title: &str) {
    assert_eq!(browser.text("h1"), title);
    let shown = browser.texts("header.top a, header.top h1, main h1");
    assert_eq!(shown.iter().filter(|text| *text == title).count(), 1, "the title shown once: {shown:?}");
}

/// Every day of every bar looks the same size: a rectangle is 3 px wide per day (4 px a day, 1 px
/// gap) and the full height, a merged run is cut into days by the gap pattern over the whole bar,
/// and a day nobody measured is striped (not only grey), with the patterns defined on the page.
/// `bars` selects the `svg.bar` elements.
fn days_look_alike(browser: &Browser, bars: &str, merged: bool) {
    assert_eq!(browser.count("svg.defs pattern#day-none"), 1, "the no-data stripes are defined once");
    assert_eq!(browser.count("svg.defs pattern#day-gaps"), 1, "the day gaps are defined once");
    let rects = format!("{bars} rect.day");
    let days = browser.attributes(&rects, "data-days");
    let widths = browser.attributes(&rects, "width");
    let heights = browser.attributes(&rects, "height");
    assert!(!days.is_empty(), "{rects}");
    for ((days, width), height) in days.iter().zip(&widths).zip(&heights) {
        let days: usize = days.as_deref().and_then(|d| d.parse().ok()).expect("data-days");
        assert!(merged || days == 1, "one rectangle a day on a site's page");
        assert_eq!(width.as_deref(), Some((days * 4 - 1).to_string().as_str()), "{days} days");
        assert_eq!(height.as_deref(), Some("20"));
    }
    for fill in browser.attributes(&format!("{bars} rect.day.nodata"), "fill") {
        assert_eq!(fill.as_deref(), Some("url(#day-none)"), "a day without data is striped");
    }
    let bar_count = browser.count(bars);
    let gaps = browser.attributes(&format!("{bars} rect.gaps"), "fill");
    match merged {
        true => assert_eq!(gaps, vec![Some("url(#day-gaps)".to_owned()); bar_count], "each merged bar cut into days"),
        false => assert!(gaps.is_empty(), "{gaps:?}"),
    }
}

/// The ids of the overview's rows, in order, and their states.
fn rows(browser: &Browser) -> Vec<(String, String)> {
    let ids = browser.attributes("tr.site", "id");
    let states = browser.attributes("tr.site", "data-state");
    ids.into_iter()
        .zip(states)
        .map(|(id, state)| {
            let id = id.expect("a row's id").trim_start_matches("site-").to_owned();
            (id, state.expect("a row's state"))
        })
        .collect()
}

#[test]
fn the_status_pages_work_in_a_browser_without_javascript() {
    let stack = Stack::get();
    let db = stack.create_database();
    let topic = stack.create_topic(1);
    let servers = [SiteServer::start(), SiteServer::start(), SiteServer::start()];
    let (up, named, down) = (servers[0].url("/ok"), servers[1].url("/ok"), servers[2].url("/fail"));
    let grey = "https://grey.example.test/";
    let now = OffsetDateTime::now_utc();
    let today = midnight(now);

    // Arrange: history written straight to the topic. The down site answered for three hours in a
    // row (a line in the latency chart), then was down for an hour that ended an hour ago; the grey site was measured every 6 hours on days -3 and -1 and now, and
    // nobody measured it on day -2 (the producer was down).
    let mut history = vec![
        report(&down, now - Duration::hours(5), 1_800, None),
        report(&down, now - Duration::hours(4), 1_800, None),
        report(&down, now - Duration::hours(3), 1_800, None),
        report(&down, now - Duration::hours(2), 1_800, Some((ErrorKind::Http, FAILED))),
        report(&down, now - Duration::minutes(90), 1_800, Some((ErrorKind::Http, FAILED))),
        report(&down, now - Duration::hours(1), 1_800, None),
        report(grey, now - Duration::minutes(1), 21_600, None),
    ];
    for day in [3, 1] {
        for hour in [0, 6, 12, 18] {
            history.push(report(grey, today - Duration::days(day) + Duration::hours(hour), 21_600, None));
        }
    }
    let records = history.iter().map(|r| (Some(r.url.clone().into_bytes()), Some(r.to_json()))).collect();
    stack.produce_raw(&topic, 0, records);
    // Then one round of the real producer: the down site answers 500 now.
    let scratch = Scratch::new();
    let file = scratch.write(
        "sites.toml",
        format!(
            "[[site]]\nurl = \"{up}\"\n\n[[site]]\nurl = \"{named}\"\nname = \"Shop\"\ngroup = \"Public\"\n\n\
             [[site]]\nurl = \"{down}\"\ngroup = \"Internal\"\n"
        )
        .as_bytes(),
    );
    stack.producer(&topic).env("WEBSENTRY_SITES_FILE", &file).env("WEBSENTRY_PROBE_NAME", PROBE).success();
    stack.consumer(&topic, &db).success();
    let status = StatusServer::start(stack.status(&db));
    let base = format!("http://{}", status.address);
    let id = |url: &str| status_site_id(url);
    let browser = Browser::start(JavaScript::Disabled);

    // The overview: every site, the down one first, its state as a word and a shape.
    browser.goto(&format!("{base}/"));
    browser.wait_for("tr.site", WAIT);
    clean(&browser, "the overview");
    let found = rows(&browser);
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(found[0], (id(&down), "down".to_owned()), "sites in trouble first: {found:?}");
    let mut rest: Vec<&str> = found[1..].iter().map(|(id, _)| id.as_str()).collect();
    rest.sort_unstable();
    let mut expected = [id(&up), id(&named), id(grey)];
    expected.sort_unstable();
    assert_eq!(rest, expected.iter().map(String::as_str).collect::<Vec<_>>());
    let row = |url: &str| format!("#site-{}", id(url));
    assert_eq!(browser.text(&format!("{} td.state > span.state", row(&down))), "down");
    assert_eq!(browser.text(&format!("{} td.state > .where", row(&down))), format!("at {PROBE}"));
    assert_eq!(browser.texts(&format!("{} td.state span.location.down", row(&down))), [PROBE], "each location's state");
    assert_eq!(
        browser.count(&format!("{} td.state > span.state svg.shape.down", row(&down))),
        1,
        "a shape beside the word"
    );
    assert_eq!(browser.text(&format!("{} td.group", row(&down))), "Internal");
    assert_eq!(browser.text(&format!("{} td.state > span.state", row(&up))), "up");
    assert_eq!(browser.count(&format!("{} td.state > span.state svg.shape.up", row(&up))), 1);
    assert_eq!(browser.text(&format!("{} td.name a", row(&up))), up, "an unnamed site is shown by its URL");
    assert_eq!(browser.text(&format!("{} td.name a", row(&named))), "Shop");
    assert_eq!(browser.text(&format!("{} td.group", row(&named))), "Public");

    // The grey day: day -2 is one grey rectangle that says "no data"; days -3 and -1 are measured.
    let day = |n: i64| (today - Duration::days(n)).date().to_string();
    let rect = |n: i64| format!("{} svg.bar rect[data-from=\"{}\"]", row(grey), day(n));
    assert_eq!(browser.attribute(&rect(2), "class").as_deref(), Some("day nodata"));
    assert_eq!(browser.attribute(&rect(2), "data-days").as_deref(), Some("1"));
    assert_eq!(browser.text_content(&rect(2)), format!("{}: no data", day(2)));
    for measured in [3, 1] {
        assert_eq!(browser.attribute(&rect(measured), "class").as_deref(), Some("day up"), "day -{measured}");
        assert!(!browser.text_content(&rect(measured)).contains("no data"), "day -{measured}");
    }
    titled_once(&browser, "Websentry");
    days_look_alike(&browser, "tr.site svg.bar", true);
    for url in [&up, &named] {
        let site = |css: &str| format!("{} td.name {css}", row(url));
        let (shown, css) = if url == &named { ("Shop", ".url") } else { (url.as_str(), "a") };
        assert_eq!(browser.attribute(&site(css), "title").as_deref(), Some(url.as_str()), "the whole URL, {shown}");
    }
    fits_the_window(&browser, "status-overview-test");

    // The group filter and the search, submitted as a person does.
    browser.select("form#filter select[name=group]", "Internal");
    browser.submit("form#filter");
    browser.wait_for_url("group=Internal", WAIT);
    clean(&browser, "the overview of a group");
    assert_eq!(rows(&browser), [(id(&down), "down".to_owned())], "only the group's site");
    browser.goto(&format!("{base}/"));
    browser.fill("form#filter input[name=q]", "shop");
    browser.submit("form#filter");
    browser.wait_for_url("q=shop", WAIT);
    clean(&browser, "a search");
    assert_eq!(rows(&browser), [(id(&named), "up".to_owned())], "only the site whose name matches");
    fits_the_window(&browser, "status-search");

    // The down site's page, followed from its link on the overview.
    browser.goto(&format!("{base}/"));
    browser.click(&format!("{} td.name a", row(&down)));
    browser.wait_for_url(&format!("/sites/{}", id(&down)), WAIT);
    browser.wait_for("#site-state", WAIT);
    clean(&browser, "the down site's page");
    assert_eq!(browser.text("h1#site-name"), down);
    assert_eq!(browser.attribute("#site-state", "data-state").as_deref(), Some("down"));
    assert_eq!(browser.count("tr.outage.ongoing"), 1, "down now");
    let ended = browser.texts("tr.outage:not(.ongoing) td");
    let started = now - Duration::hours(2);
    let recovered = now - Duration::hours(1);
    assert_eq!(ended[..4], [PROBE.to_owned(), shown(started), shown(recovered), "1 h".to_owned()], "{ended:?}");
    let newest = browser.texts("tr.report.failed td");
    assert_eq!(newest[1..4], [PROBE.to_owned(), "http".to_owned(), FAILED.to_owned()], "the producer's report now");
    assert!(browser.count("figure.chart[data-step=hour] svg polyline") >= 1, "a latency chart is drawn");
    titled_once(&browser, &down);
    assert_eq!(browser.attribute("#site-url", "title").as_deref(), Some(down.as_str()));
    fits_the_window(&browser, "status-site-down");

    // The grey site's own page: one rectangle a day, day -2 grey.
    browser.goto(&format!("{base}/sites/{}", id(grey)));
    browser.wait_for("#days", WAIT);
    clean(&browser, "the grey site's page");
    let own = |n: i64| format!("#days rect[data-from=\"{}\"]", day(n));
    assert_eq!(browser.attribute(&own(2), "class").as_deref(), Some("day nodata"));
    assert_eq!(browser.attribute(&own(1), "class").as_deref(), Some("day up"));
    days_look_alike(&browser, "#days svg.bar", false);
    fits_the_window(&browser, "status-site-grey");

    // A badge, loaded as an image document and parsed.
    for (path, expected) in [
        (format!("/api/v1/sites/{}/health/badge.svg", id(&down)), ["health", "down"]),
        (format!("/api/v1/sites/{}/uptime/7d/badge.svg", id(grey)), ["uptime 7d", "100%"]),
    ] {
        browser.goto(&format!("{base}{path}"));
        let source = browser.source();
        let svg = roxmltree::Document::parse(&source).unwrap_or_else(|err| panic!("{path}: {err}\n{source}"));
        assert_eq!(svg.root_element().tag_name().name(), "svg", "{path}");
        let texts: Vec<&str> = svg.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).collect();
        assert_eq!(texts, [expected[0], expected[0], expected[1], expected[1]], "{path}: label | value");
        assert_eq!(browser.csp_violations(), Vec::<String>::new(), "{path}");
    }
    browser.screenshot("status-badge");
}

/// Seven sites over 90 days, as a team might watch them: names and groups, one down now, one with
/// grey days (the producer was down), one with a certificate about to expire. Reports every hour.
fn realistic_history(now: OffsetDateTime) -> Vec<Report> {
    struct Site {
        url: &'static str,
        name: Option<&'static str>,
        group: Option<&'static str>,
        base_ms: f64,
        certificate_days: Option<i64>,
    }
    let site = |url, name, group, base_ms, certificate_days| Site { url, name, group, base_ms, certificate_days };
    let sites = [
        site("https://www.example.com/", Some("Website"), Some("Public"), 84.0, Some(61)),
        site("https://shop.example.com/cart", Some("Shop"), Some("Public"), 182.0, Some(61)),
        site("https://api.example.com/v1/health", Some("Payments API"), Some("Public"), 46.0, Some(9)),
        site("https://docs.example.com/", Some("Docs"), Some("Public"), 120.0, Some(61)),
        site("https://grafana.internal.example.com/login", Some("Grafana"), Some("Internal"), 230.0, Some(200)),
        site("https://ci.internal.example.com/", Some("CI"), Some("Internal"), 310.0, Some(200)),
        site("http://legacy.example.org/ping", None, None, 520.0, None),
    ];
    let today = midnight(now);
    let mut reports = Vec::new();
    for (n, site) in sites.iter().enumerate() {
        for hours_ago in 0..(90 * 24) {
            let at = now - Duration::minutes(7) - Duration::hours(hours_ago);
            let days_ago = (today - midnight(at)).whole_days();
            let error = match site.name {
                // Down for the last 40 minutes.
                Some("Payments API") if hours_ago == 0 => Some((ErrorKind::Http, "503 Service Unavailable")),
                Some("Payments API") if hours_ago % 331 == 17 => Some((ErrorKind::Timeout, "no answer within 10 s")),
                // The producer watching the internal sites was down on these days.
                Some("Grafana" | "CI") if [2, 11, 12, 13, 40].contains(&days_ago) => continue,
                Some("Shop") if hours_ago % 443 == 5 => Some((ErrorKind::Http, "502 Bad Gateway")),
                None if hours_ago % 173 == 3 => Some((ErrorKind::Connect, "connection refused")),
                _ => None,
            };
            let wobble = ((hours_ago * 7 + n as i64 * 13) % 23) as f64;
            reports.push(Report {
                checked_at: at,
                interval_s: Some(3_600),
                probe: if site.group == Some("Internal") { "office".into() } else { PROBE.into() },
                code: if error.is_some() { 503 } else { 200 },
                response_ms: site.base_ms + wobble * site.base_ms / 40.0,
                error: error.map(|(kind, message)| ProbeError { kind, message: message.into() }),
                name: site.name.map(Into::into),
                group: site.group.map(Into::into),
                tls_expires_at: site.certificate_days.map(|days| now + Duration::days(days)),
                ..sample_report(site.url)
            });
        }
    }
    reports
}

/// The README's picture: the overview of [`realistic_history`], at most `PICTURE_HEIGHT` pixels
/// tall, written to `docs/status-overview.png` only with `WEBSENTRY_UPDATE_SCREENSHOT=1`.
#[test]
fn the_overview_of_a_realistic_set_of_sites_is_photographed() {
    let stack = Stack::get();
    let db = stack.create_database();
    let topic = stack.create_topic(1);
    let now = OffsetDateTime::now_utc();
    for chunk in realistic_history(now).chunks(1_000) {
        let records = chunk.iter().map(|r| (Some(r.url.clone().into_bytes()), Some(r.to_json()))).collect();
        stack.produce_raw(&topic, 0, records);
    }
    stack.consumer(&topic, &db).success();
    let status = StatusServer::start(stack.status(&db).env("WEBSENTRY_STATUS_TITLE", "Example Corp status"));
    let browser = Browser::start(JavaScript::Disabled);

    browser.goto(&format!("http://{}/", status.address));
    browser.wait_for("tr.site", WAIT);

    clean(&browser, "the overview");
    titled_once(&browser, "Example Corp status");
    days_look_alike(&browser, "tr.site svg.bar", true);
    fits_the_window(&browser, "status-overview-whole");
    let states: Vec<String> = rows(&browser).into_iter().map(|(_, state)| state).collect();
    assert_eq!(states, ["down", "up", "up", "up", "up", "up", "up"], "seven sites, the down one first");
    assert_eq!(browser.text("tr.site td.name a"), "Payments API", "first though not first by name");
    assert!(browser.count("tr.site rect.day.nodata") >= 2, "grey days on the internal sites");
    let path = browser.picture("status-overview", WINDOW.0, PICTURE_HEIGHT);
    let png = std::fs::read(&path).expect("the screenshot is written");
    let (width, height) = png_dimensions(&png).expect("a PNG");
    assert_eq!(width, WINDOW.0);
    assert!(height <= PICTURE_HEIGHT, "{height} pixels high");
    println!("{}: {width}x{height}, {} bytes", path.display(), png.len());
    if std::env::var_os("WEBSENTRY_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        let picture = repo_root().join("docs/status-overview.png");
        std::fs::write(&picture, &png).unwrap_or_else(|err| panic!("writing {}: {err}", picture.display()));
        println!("updated {}", picture.display());
    }
}
