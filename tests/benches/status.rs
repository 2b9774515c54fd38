//! `cargo bench -p websentry-tests --bench status`: the status page over a large archive. Needs
//! only the stack's PostgreSQL (`scripts/stack up`). Prints figures and ratios measured in this
//! run; asserts only what must hold whatever the machine (answers are 200, counts).
//!
//! 1. `WEBSENTRY_BENCH_SITES` (1,000) sites with 90 days of reports, one every
//!    `WEBSENTRY_BENCH_EVERY_HOURS` (6) hours stating that cadence, ~1 % failures, written through
//!    the consumer's own writer (`Archiver::commit`, batches of 5,000) with the default retention
//!    (31 days of raw reports, the rollups for all 90), then `VACUUM ANALYZE` (as autovacuum would
//!    have run over those 90 days).
//! 2. The overview `/` and `/api/v1/sites` computed afresh (the cache period of 1 s let pass before
//!    each request): time to the first byte and to the whole answer, median and p95 of
//!    `WEBSENTRY_BENCH_RUNS` (11) runs each; `/healthz` the same way as the floor; then the
//!    SQL interface's calls the overview makes, timed alone, and the process's peak RSS.
//! 3. Cached answers per second: `WEBSENTRY_BENCH_CLIENTS` (64) keep-alive clients (hyper) for
//!    `WEBSENTRY_BENCH_SECONDS` (5) s each against a health badge, the overview, and `/healthz`
//!    (the floor: the server and the client alone); then the status process's peak RSS (VmHWM).
//!    The clients share the machine with the server: on 2 cores they take about half of it.
//! 4. With `WEBSENTRY_BENCH_STATUS` naming another build of `websentry-status`, parts 2 and 3 again
//!    with it on the same archive: `scripts/build-static`'s, the binary the image ships (musl's
//!    allocator, the `dist` profile), against this one (glibc's allocator, the `release` profile).

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration as StdDuration, Instant},
};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use time::{Duration, OffsetDateTime, Time};
use websentry_consumer::{schema, upkeep::Retention};
use websentry_shared::report::{ErrorKind, ProbeError, Report};
use websentry_tests::{
    sample_report, status_site_id, upkeep_until_done, ReportWriter, Stack, StatusServer, TestDatabase,
};

const BATCH: usize = 5_000;

fn main() {
    let sites = env_usize("WEBSENTRY_BENCH_SITES", 1_000);
    let every_hours = env_usize("WEBSENTRY_BENCH_EVERY_HOURS", 6) as i64;
    let runs = env_usize("WEBSENTRY_BENCH_RUNS", 11);
    let clients = env_usize("WEBSENTRY_BENCH_CLIENTS", 64);
    let seconds = env_usize("WEBSENTRY_BENCH_SECONDS", 5) as u64;
    let stack = Stack::get();
    let db = stack.create_database();

    archive(&db, sites, every_hours);

    let status = StatusServer::start(stack.status(&db).env("WEBSENTRY_STATUS_CACHE_SECONDS", "1"));
    uncached(&status, sites, runs);
    queries(&db, runs);
    println!("  status process: {}", memory(&status));
    status.running.terminate();

    let status = StatusServer::start(stack.status(&db).env("WEBSENTRY_STATUS_CACHE_SECONDS", "300"));
    cached(&status, sites, clients, StdDuration::from_secs(seconds));
    status.running.terminate();

    if let Some(other) = std::env::var_os("WEBSENTRY_BENCH_STATUS") {
        println!("the same with {}:", std::path::Path::new(&other).display());
        let run = |period: &str| stack.status(&db).program(&other).env("WEBSENTRY_STATUS_CACHE_SECONDS", period);
        let status = StatusServer::start(run("1"));
        uncached(&status, sites, runs);
        println!("  status process: {}", memory(&status));
        status.running.terminate();
        let status = StatusServer::start(run("300"));
        cached(&status, sites, clients, StdDuration::from_secs(seconds));
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|n| n.parse().ok()).unwrap_or(default)
}

fn url(site: usize) -> String {
    format!("https://site-{site:04}.example.com/health")
}

/// Part 1: 90 days of reports of `sites` sites through the consumer's writer.
fn archive(db: &TestDatabase, sites: usize, every_hours: i64) {
    let mut client = db.client();
    schema::migrate(&mut client).expect("migrating");
    let now = OffsetDateTime::now_utc();
    let today = now.date();
    let retention = Retention::default();
    // Today's partitions and the raw retention's late days, as the consumer's upkeep makes them.
    upkeep_until_done(&mut client, retention, today);
    let mut writer = ReportWriter::new(client, retention, BATCH);
    let first = now.replace_time(Time::from_hms(now.hour(), 0, 0).expect("an hour")) - Duration::days(90);
    let interval_s = u32::try_from(every_hours * 3_600).expect("a cadence");
    let mut offset = 0_usize;
    let started = Instant::now();
    let mut at_time = first;
    while at_time <= now {
        for site in 0..sites {
            let n = offset;
            // ~1 % failures; site 7 is down now.
            let down = n % 97 == 13 || (site == 7 && now - at_time < Duration::hours(every_hours));
            let report = Report {
                checked_at: at_time + Duration::seconds((site % 60) as i64),
                interval_s: Some(interval_s),
                response_ms: 20.0 + (site % 50) as f64 * 4.0 + (n % 17) as f64,
                code: if down { 503 } else { 200 },
                error: down.then(|| ProbeError { kind: ErrorKind::Http, message: "503 Service Unavailable".into() }),
                name: (site % 3 == 0).then(|| format!("Service {site}")),
                group: Some(format!("Team {}", site % 10)),
                tls_expires_at: Some(now + Duration::days(30 + (site % 300) as i64)),
                ..sample_report(&url(site))
            };
            writer.write(&report);
            offset += 1;
        }
        at_time += Duration::hours(every_hours);
    }
    let written = writer.finish();
    assert_eq!(written, offset as u64, "every report archived, or past the raw retention counted in the rollups");
    // As autovacuum would have done many times over 90 days of writes: the statistics, and the
    // visibility map that lets site_days read its index alone (without it, every row is fetched
    // from the table too).
    db.client().batch_execute("VACUUM ANALYZE").expect("VACUUM ANALYZE");
    println!(
        "archive: {sites} sites x 90 days, a report every {every_hours} h: {offset} reports written by Archiver::commit in {:.1} s; {} raw rows kept (31 days), {} daily and {} hourly rollup rows",
        started.elapsed().as_secs_f64(),
        db.count("SELECT count(*) FROM reports"),
        db.count("SELECT count(*) FROM rollup_daily"),
        db.count("SELECT count(*) FROM rollup_hourly"),
    );
}

/// Part 2: the overview and the JSON list computed afresh each time, and `/healthz`.
fn uncached(status: &StatusServer, sites: usize, runs: usize) {
    // The first answer warms the pool's connections and PostgreSQL's caches; not counted.
    let (_, _, body) = timed_get(&status.address, "/");
    assert_eq!(body.matches("<tr class=\"site\"").count(), sites, "every site on the overview");
    println!("uncached answers ({runs} runs each, the 1 s cache period let pass before each):");
    for path in ["/", "/api/v1/sites", "/healthz"] {
        let mut first = Vec::new();
        let mut whole = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            std::thread::sleep(StdDuration::from_millis(1_100));
            let (to_first, to_end, body) = timed_get(&status.address, path);
            first.push(to_first);
            whole.push(to_end);
            size = body.len();
        }
        println!(
            "  {path:<14} first byte {} ms, whole {} ms (median / p95), {size} bytes",
            median_p95(&mut first),
            median_p95(&mut whole)
        );
    }
}

/// One `GET path` on a new connection: time to the answer's first byte, to its end, and the body.
fn timed_get(address: &str, path: &str) -> (f64, f64, String) {
    let mut stream = TcpStream::connect(address).expect("connecting");
    stream.set_read_timeout(Some(StdDuration::from_secs(30))).expect("a timeout");
    let started = Instant::now();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("sending");
    let mut raw = vec![0; 1];
    stream.read_exact(&mut raw).expect("a first byte");
    let to_first = started.elapsed().as_secs_f64() * 1_000.0;
    stream.read_to_end(&mut raw).expect("the whole answer");
    let to_end = started.elapsed().as_secs_f64() * 1_000.0;
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "GET {path}: {}", text.lines().next().unwrap_or_default());
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (to_first, to_end, body)
}

fn median_p95(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    format!("{:.1} / {:.1}", at(0.5), at(0.95))
}

/// Part 3: cached answers per second with many keep-alive clients, and the peak RSS.
fn cached(status: &StatusServer, sites: usize, clients: usize, seconds: StdDuration) {
    let badge = format!("/api/v1/sites/{}/health/badge.svg", status_site_id(&url(7)));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    println!(
        "cached answers ({clients} keep-alive clients, {} s each, client and server on the same machine):",
        seconds.as_secs()
    );
    let mut rates = Vec::new();
    // The overview twice: as the bench's client asks (no compression), and as a browser asks
    // (`Accept-Encoding: br, gzip`: compressed as it is sent).
    for (what, path, encoding) in [
        ("health badge", badge.as_str(), None),
        ("overview", "/", None),
        ("overview, br", "/", Some("br, gzip")),
        ("/healthz (floor)", "/healthz", None),
    ] {
        // Warm the cache first: the first request computes the answer.
        let (_, _, body) = timed_get(&status.address, path);
        if path == "/" {
            assert_eq!(body.matches("<tr class=\"site\"").count(), sites);
        }
        if let Some(encoding) = encoding {
            let (coding, bytes) = runtime.block_on(encoded(&status.address, path, encoding));
            assert_eq!(coding, "br", "GET {path} with Accept-Encoding: {encoding}");
            println!("  ({what}: {bytes} bytes as sent, Content-Encoding {coding})");
        }
        let (count, errors) = runtime.block_on(flood(&status.address, path, encoding, clients, seconds));
        let rate = count as f64 / seconds.as_secs_f64();
        println!("  {what:<17} {rate:>8.0} req/s ({errors} errors)");
        rates.push(rate);
    }
    println!(
        "  badge / floor: {:.2}; overview / floor: {:.2}; overview, br / floor: {:.3}",
        rates[0] / rates[3],
        rates[1] / rates[3],
        rates[2] / rates[3]
    );
    println!("  status process: {}", memory(status));
}

/// The status process's peak and current resident memory, from `/proc/<pid>/status`.
fn memory(status: &StatusServer) -> String {
    let proc = std::fs::read_to_string(format!("/proc/{}/status", status.running.id())).expect("/proc status");
    let field = |name: &str| {
        let line = proc.lines().find(|l| l.starts_with(name)).unwrap_or_default();
        line.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()).unwrap_or(0.0) / 1_024.0
    };
    format!("peak RSS (VmHWM) {:.1} MB, RSS now {:.1} MB", field("VmHWM:"), field("VmRSS:"))
}

/// Where the overview's time goes: the SQL interface's calls it makes, alone, as the stack's user
/// (rows fetched whole, median and p95 of `runs`), and in brackets the calls it made before.
fn queries(db: &TestDatabase, runs: usize) {
    let mut client = db.client();
    println!("  the overview's queries alone (median / p95 of {runs}):");
    for (what, sql) in [
        ("site_states", "SELECT * FROM site_states"),
        ("site_days 90 days", "SELECT * FROM site_days(now() - interval '90 days', now())"),
        ("site_summary 24 h", "SELECT * FROM site_summary(now() - interval '24 hours', now())"),
        // What the overview read before SQL interface 7, for comparison.
        ("(site_timeline 90 days by day)", "SELECT * FROM site_timeline(now() - interval '90 days', now(), 'day')"),
        ("(site_timeline 24 h by hour)", "SELECT * FROM site_timeline(now() - interval '24 hours', now(), 'hour')"),
    ] {
        let mut times = Vec::with_capacity(runs);
        let mut rows = 0;
        for _ in 0..runs {
            let started = Instant::now();
            rows = client.query(sql, &[]).expect(sql).len();
            times.push(started.elapsed().as_secs_f64() * 1_000.0);
        }
        println!("    {what:<29} {} ms, {rows} rows", median_p95(&mut times));
    }
}

/// One `GET path` with `Accept-Encoding: encoding`: the answer's `Content-Encoding` and its
/// bytes as sent.
async fn encoded(address: &str, path: &str, encoding: &str) -> (String, usize) {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let request = hyper::Request::get(format!("http://{address}{path}"))
        .header(hyper::header::ACCEPT_ENCODING, encoding)
        .body(Empty::new())
        .expect("a request");
    let answer = client.request(request).await.expect("an answer");
    let coding = answer.headers().get(hyper::header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("none");
    let coding = coding.to_owned();
    let body = answer.into_body().collect().await.expect("the body").to_bytes();
    (coding, body.len())
}

/// `clients` tasks sending `GET path` (with `Accept-Encoding: encoding` when given) one after
/// another on their keep-alive connection for `seconds`: (answers 200, other outcomes).
async fn flood(address: &str, path: &str, encoding: Option<&str>, clients: usize, seconds: StdDuration) -> (u64, u64) {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).pool_max_idle_per_host(clients).build_http();
    let uri: hyper::Uri = format!("http://{address}{path}").parse().expect("a URI");
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, uri, ok, failed, stop) =
                (client.clone(), uri.clone(), ok.clone(), failed.clone(), stop.clone());
            let encoding = encoding.map(str::to_owned);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let mut request = hyper::Request::get(uri.clone());
                    if let Some(encoding) = &encoding {
                        request = request.header(hyper::header::ACCEPT_ENCODING, encoding);
                    }
                    let request = request.body(Empty::new()).expect("a request");
                    match client.request(request).await {
                        Ok(answer) if answer.status() == 200 => match answer.into_body().collect().await {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                        },
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(seconds).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
}
