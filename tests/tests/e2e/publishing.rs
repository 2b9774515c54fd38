//! Publishing rounds of any size, and reports that reach Kafka as their probes finish instead of
//! when the whole round does.

use std::{collections::BTreeSet, time::Duration};

use websentry_tests::{eventually, hostile, Scratch, SiteServer, Stack};

/// A sites file holding `urls`.
fn sites_file(scratch: &Scratch, urls: &[String]) -> String {
    let entries: String = urls.iter().map(|url| format!("[[site]]\nurl = \"{url}\"\n")).collect();
    scratch.write("sites.toml", entries)
}

#[test]
fn a_round_of_20000_sites_is_published_in_full_to_a_3_partition_topic() {
    let stack = Stack::get();
    let topic = stack.create_topic(3);
    let site = SiteServer::start();
    let urls: Vec<String> = (0..20_000).map(|n| site.url(&format!("/page-{n}"))).collect();
    let scratch = Scratch::new();

    let output = stack
        .producer(&topic)
        .env("WEBSENTRY_SITES_FILE", sites_file(&scratch, &urls))
        .env("WEBSENTRY_CONCURRENCY", "200")
        .success();

    let records = stack.read_topic(&topic);
    let published: BTreeSet<String> = records
        .iter()
        .map(|(_, value)| websentry_shared::report::Report::decode(value).expect("a report").url)
        .collect();
    assert_eq!(records.len(), 20_000, "one record per site:\n{}", output.stderr);
    assert_eq!(published.len(), 20_000, "every site once");
    let partitions: BTreeSet<i32> = records.iter().map(|(p, _)| *p).collect();
    assert_eq!(partitions.len(), 3, "spread over the partitions");
}

#[test]
fn reports_reach_the_archive_while_a_slow_site_holds_its_round() {
    let stack = Stack::get();
    let topic = stack.create_topic(3);
    let db = stack.create_database();
    let site = SiteServer::start();
    let mut sites: Vec<String> = (0..40).map(|n| site.url(&format!("/fast-{n}"))).collect();
    sites.push(hostile::serve(hostile::Behaviour::Silent));
    let consumer = stack.consumer_daemon(&topic, &db).spawn();
    consumer.wait_for_log("archiving", Duration::from_secs(30));

    stack.producer(&topic).env("WEBSENTRY_SITES", sites.join(",")).env("WEBSENTRY_TIMEOUT", "5").success();

    eventually("the whole round is archived", Duration::from_secs(30), || {
        db.try_count("SELECT count(*) FROM reports") == Some(41)
    });
    consumer.terminate();
    assert_eq!(consumer.finish(Duration::from_secs(20)).code, Some(0));
    let latency = |filter: &str| -> f64 {
        let sql = format!(
            "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM archived_at - checked_at))::float8
             FROM reports WHERE {filter}"
        );
        db.client().query_one(&sql, &[]).expect("latency").get(0)
    };
    let (fast, slow) = (latency("url LIKE '%/fast-%'"), latency("error_kind = 'timeout'"));
    println!("probe → row p95: fast sites {fast:.3} s, the slow one {slow:.3} s");
    assert!(slow >= 5.0, "the slow site took its whole timeout: {slow}");
    assert!(fast < 1.0, "fast sites are archived without waiting for the slow one: p95 {fast:.3} s");
}
