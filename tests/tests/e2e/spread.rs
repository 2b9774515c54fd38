//! Probes spread over their interval: a daemon probes each site at its own interval and slot, a
//! one-off run with a cadence probes only the sites due in its period, and shards split a list.
//!
//! The slot is computed here apart from the producer's code, from what the docs say it is: the
//! first eight bytes of the SHA-256 of the URL, big-endian, modulo the interval in milliseconds.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use sha2::{Digest, Sha256};
use websentry_shared::report::Report;
use websentry_tests::{Run, Scratch, SiteServer};

/// The documented slot of `url` within `interval_ms`.
fn offset_ms(url: &str, interval_ms: u64) -> u64 {
    let digest = Sha256::digest(url.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("eight bytes")) % interval_ms
}

fn unix_ms(time: time::OffsetDateTime) -> u64 {
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000).expect("after 1970")
}

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis()).expect("fits")
}

fn reports(stdout: &str) -> Vec<Report> {
    stdout.lines().map(|line| Report::decode(line.as_bytes()).expect("a report per line")).collect()
}

#[test]
fn a_daemon_probes_each_site_at_its_own_interval_and_slot_after_one_probe_at_start() {
    let server = SiteServer::start();
    // Intervals of 2, 3 and 4 s (the daemon's own): rounds of 1 s, the greatest common divisor.
    let (two, three, four) = (server.url("/two"), server.url("/three"), server.url("/four"));
    let scratch = Scratch::new();
    let file = scratch.write(
        "sites.toml",
        format!("[[site]]\nurl = \"{two}\"\ninterval = \"2s\"\n\n[[site]]\nurl = \"{three}\"\ninterval = 3\n"),
    );
    let running = Run::new("websentry-producer")
        .arg("--dry-run")
        .env("WEBSENTRY_SITES", &four)
        .env("WEBSENTRY_SITES_FILE", file)
        .env("WEBSENTRY_INTERVAL", "4")
        .spawn();
    let started_ms = now_ms();
    running.wait_for_log("round_s=1", Duration::from_secs(30));
    running.wait_for_log_times("round done", 10, Duration::from_secs(60));
    running.terminate();
    let output = running.finish(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{}", output.stderr);

    let mut by_url: BTreeMap<String, Vec<Report>> = BTreeMap::new();
    for report in reports(&output.stdout) {
        by_url.entry(report.url.clone()).or_default().push(report);
    }
    for (url, interval_s) in [(&two, 2_u64), (&three, 3), (&four, 4)] {
        let interval_ms = interval_s * 1000;
        let seen = by_url.get(url.as_str()).unwrap_or_else(|| panic!("no report of {url}: {}", output.stdout));
        assert!(seen.len() >= 3, "{url}: {} reports", seen.len());
        let (first, later) = (&seen[0], &seen[1..]);
        // The first probe at start, standing for the time until the first slot.
        let first_at = unix_ms(first.checked_at);
        assert!(first_at >= started_ms.saturating_sub(1000) && first_at < started_ms + 5000, "{url}: {first_at}");
        let until_slot = (offset_ms(url, interval_ms) + interval_ms - first_at % interval_ms) % interval_ms;
        let stated = u64::from(first.interval_s.expect("an interval stated"));
        assert!(stated <= interval_s && stated.abs_diff(until_slot / 1000) <= 1, "{url}: {stated} s, {until_slot} ms");
        let slot = offset_ms(url, interval_ms);
        for (n, report) in later.iter().enumerate() {
            assert_eq!(report.interval_s, Some(u32::try_from(interval_s).expect("small")), "{url}");
            let at = unix_ms(report.checked_at);
            // Probed at its slot: within 300 ms after it (the timer, a loaded test machine).
            let late = (at % interval_ms + interval_ms - slot) % interval_ms;
            assert!(late < 300, "{url} report {n}: {late} ms after its slot {slot} (at {at})");
            if n > 0 {
                let gap = at - unix_ms(later[n - 1].checked_at);
                assert!(gap.abs_diff(interval_ms) < 300, "{url}: {gap} ms between two probes");
            }
        }
    }
}

/// `count` sites that refuse connections at once (their reports are all this test reads).
fn refused_sites(count: usize) -> Vec<String> {
    (0..count).map(|n| format!("http://127.0.0.1:9/site-{n}")).collect()
}

#[test]
fn a_one_off_run_with_a_cadence_probes_only_the_sites_due_in_its_period() {
    let (cadence_ms, interval_ms) = (60_000, 300_000);
    let own = refused_sites(60);
    let plain = "http://127.0.0.1:9/every-run";
    let scratch = Scratch::new();
    let file: String = own.iter().map(|url| format!("[[site]]\nurl = \"{url}\"\ninterval = \"5m\"\n\n")).collect();
    let file = scratch.write("sites.toml", file);
    let due_now = |at: u64| -> BTreeSet<String> {
        let start = at - at % cadence_ms;
        own.iter()
            .filter(|url| {
                let offset = offset_ms(url, interval_ms);
                let next = start + (offset + interval_ms - start % interval_ms) % interval_ms;
                next < start + cadence_ms
            })
            .cloned()
            .chain([plain.to_owned()])
            .collect()
    };
    // A run that straddles two periods cannot be told apart: run again (once a minute at most).
    for attempt in 0..3 {
        let before = now_ms();
        let output = Run::new("websentry-producer")
            .arg("--dry-run")
            .env("WEBSENTRY_SITES", plain)
            .env("WEBSENTRY_SITES_FILE", &file)
            .env("WEBSENTRY_CADENCE", "60")
            .env("WEBSENTRY_TIMEOUT", "2")
            .success();
        let after = now_ms();
        if before / cadence_ms != after / cadence_ms {
            println!("attempt {attempt} straddled two periods");
            continue;
        }
        let probed: BTreeSet<String> = reports(&output.stdout).iter().map(|r| r.url.clone()).collect();
        let expected = due_now(before);
        // 60 sites of 5 minutes in periods of 1: about 12 due, and never all of them.
        println!("{} of {} sites due in this minute", expected.len() - 1, own.len());
        assert!(expected.len() > 1 && expected.len() < own.len(), "{expected:?}");
        assert_eq!(probed, expected, "{}", output.stderr);
        for report in reports(&output.stdout) {
            let stated = if report.url == plain { 60 } else { 300 };
            assert_eq!(report.interval_s, Some(stated), "{}", report.url);
        }
        return;
    }
    panic!("every run straddled two periods");
}

#[test]
fn the_shards_of_an_indexed_job_split_a_list_into_disjoint_balanced_parts() {
    let sites = refused_sites(300);
    let mut probed = Vec::new();
    let mut sizes = Vec::new();
    for index in 0..3 {
        let output = Run::new("websentry-producer")
            .arg("--dry-run")
            .env("WEBSENTRY_SITES", sites.join(","))
            .env("WEBSENTRY_SHARDS", "3")
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("WEBSENTRY_TIMEOUT", "2")
            .success();
        assert!(output.stderr.contains("probing one shard of the sites"), "{}", output.stderr);
        let urls: Vec<String> = reports(&output.stdout).into_iter().map(|r| r.url).collect();
        sizes.push(urls.len());
        probed.extend(urls);
    }
    println!("300 sites in 3 shards: {sizes:?}");
    assert!(sizes.iter().all(|&n| (70..=130).contains(&n)), "{sizes:?}");
    probed.sort();
    let mut expected = sites.clone();
    expected.sort();
    assert_eq!(probed, expected, "each site in exactly one shard");

    let refused = Run::new("websentry-producer")
        .arg("--dry-run")
        .env("WEBSENTRY_SITES", sites.join(","))
        .env("WEBSENTRY_SHARDS", "3")
        .output();
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("WEBSENTRY_SHARDS (--shards): is set but JOB_COMPLETION_INDEX is not"),
        "{}",
        refused.stderr
    );
}

#[test]
fn three_locations_of_two_shards_each_publish_to_one_topic_and_two_replicas_archive_each_probe_once() {
    const LOCATIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];
    let stack = websentry_tests::Stack::get();
    let topic = stack.create_topic(3);
    let db = stack.create_database();
    let server = SiteServer::start();
    let sites: Vec<String> = (0..30).map(|n| server.url(&format!("/ok/located-{n}"))).collect();
    let replicas: Vec<_> = (0..2).map(|_| stack.consumer_daemon(&topic, &db).spawn()).collect();
    let from = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    // Six producers at once: three places, the list split in two at each.
    let producers: Vec<_> = LOCATIONS
        .iter()
        .flat_map(|location| (0..2).map(move |shard| (location, shard)))
        .map(|(location, shard)| {
            stack
                .producer(&topic)
                .env("WEBSENTRY_SITES", sites.join(","))
                .env("WEBSENTRY_PROBE_NAME", *location)
                .env("WEBSENTRY_SHARD", format!("{shard}/2"))
                .env("WEBSENTRY_CADENCE", "60")
                .spawn()
        })
        .collect();
    for running in producers {
        let output = running.finish(Duration::from_secs(60));
        assert_eq!(output.code, Some(0), "{}", output.stderr);
    }
    let expected = i64::try_from(sites.len() * LOCATIONS.len()).expect("a few");
    websentry_tests::eventually("every probe archived", Duration::from_secs(60), || {
        db.try_count("SELECT count(*) FROM reports") == Some(expected)
    });
    for running in replicas {
        running.terminate();
        let output = running.finish(Duration::from_secs(30));
        assert_eq!(output.code, Some(0), "{}", output.stderr);
    }

    assert_eq!(db.count("SELECT count(DISTINCT id) FROM reports"), expected, "each probe archived once");
    let mut client = db.client();
    let rows = client
        .query(
            "SELECT url, probe, probes, uptime, coverage FROM site_summary($1, now() + interval '1 minute')",
            &[&from],
        )
        .expect("site_summary");
    let mut per_location: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in &rows {
        let (url, probe, probes, uptime): (String, String, i64, Option<f64>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!((probes, uptime), (1, Some(1.0)), "{url} from {probe}: one probe, up");
        assert!(row.get::<_, Option<f64>>(4).is_some_and(|c| c > 0.0), "{url} from {probe}: its minute is measured");
        per_location.entry(probe).or_default().insert(url);
    }
    let all: BTreeSet<String> = sites.iter().cloned().collect();
    assert_eq!(per_location.keys().map(String::as_str).collect::<BTreeSet<_>>(), LOCATIONS.into_iter().collect());
    for (location, urls) in &per_location {
        assert_eq!(urls, &all, "{location} measured every site, across its two shards");
    }
    // Pooled across the locations: every site once, from all three, its probes their sum.
    let pooled = client
        .query(
            "SELECT url, locations, probes, uptime FROM site_summary_pooled($1, now() + interval '1 minute')",
            &[&from],
        )
        .expect("site_summary_pooled");
    assert_eq!(pooled.len(), all.len(), "one pooled row per site");
    for row in &pooled {
        let (url, locations, probes, uptime): (String, i32, i64, Option<f64>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!((locations, probes, uptime), (3, 3, Some(1.0)), "{url}: all three locations, each probe once");
    }
}
