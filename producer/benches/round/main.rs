//! One round of 10,000 sites against local servers that answer after a fixed delay D, probed with
//! concurrency C, as a one-off dry run would. Prints wall time against the ideal (sites ÷ C × D),
//! CPU time per probe against a bare hyper loop (no timings, no limits) run in the same process,
//! and the peak RSS of the Websentry round.
//!
//!     cargo bench -p websentry-producer --bench round
//!     WEBSENTRY_BENCH_SITES=2000 WEBSENTRY_BENCH_CONCURRENCY=200 WEBSENTRY_BENCH_DELAY_MS=50 cargo bench ...
//!
//! The servers run in a child process so that their CPU time and memory are not counted.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinSet,
};
use websentry_producer::{
    probe::{ProbeSettings, Prober},
    round,
    site::{Site, SiteUrl},
};

const SERVER_PORTS: usize = 8;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    if std::env::var_os("WEBSENTRY_BENCH_SERVE").is_some() {
        serve(Duration::from_millis(setting("WEBSENTRY_BENCH_DELAY_MS", 100)));
        return;
    }
    let sites = setting("WEBSENTRY_BENCH_SITES", 10_000) as usize;
    let concurrency = setting("WEBSENTRY_BENCH_CONCURRENCY", 1_000) as usize;
    let delay = Duration::from_millis(setting("WEBSENTRY_BENCH_DELAY_MS", 100));

    let mut server = Command::new(std::env::current_exe().expect("own path"))
        .env("WEBSENTRY_BENCH_SERVE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the servers");
    let mut ports = String::new();
    BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut ports).expect("server ports");
    let ports: Vec<u16> = ports.split_whitespace().map(|p| p.parse().expect("port")).collect();
    let urls: Vec<String> =
        (0..sites).map(|i| format!("http://127.0.0.1:{}/site/{i}", ports[i % ports.len()])).collect();

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let ideal = delay.as_secs_f64() * (sites as f64 / concurrency as f64).ceil();
    println!("round of {sites} sites, concurrency {concurrency}, server delay {delay:?}; ideal wall time {ideal:.3} s");

    // Websentry first, so that the peak RSS read after it is its own.
    let prober = Arc::new(Prober::new(
        rustls::RootCertStore::empty(),
        ProbeSettings {
            timeout: Duration::from_secs(30),
            body_limit: 1 << 20,
            max_redirects: 10,
            probe_name: "bench".into(),
        },
    ));
    let list: Arc<[Site]> = urls.iter().map(|u| Site::simple(SiteUrl::parse(u).expect("url"), None)).collect();
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let reports = runtime.block_on(round(&prober, &list, concurrency));
    let (ours_wall, ours_cpu) = (wall0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let peak_rss_mb = peak_rss_kb() as f64 / 1024.0;
    let failed = reports.iter().filter(|r| r.code != 200).count();
    assert_eq!(reports.len(), sites);

    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let bare_ok = runtime.block_on(bare_round(&urls, concurrency));
    let (bare_wall, bare_cpu) = (wall0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);

    drop(server.stdin.take());
    let _ = server.wait();

    let per_probe_us = |cpu: f64| cpu / sites as f64 * 1e6;
    let (ours_ratio, bare_ratio, cpu_ratio) = (ours_wall / ideal, bare_wall / ideal, ours_cpu / bare_cpu);
    let (ours_us, bare_us, bare_failed) = (per_probe_us(ours_cpu), per_probe_us(bare_cpu), sites - bare_ok);
    println!(
        "websentry round : wall {ours_wall:.3} s = {ours_ratio:.3} x ideal; cpu {ours_us:.1} us/probe; \
         peak RSS {peak_rss_mb:.1} MB; {failed} probes not 200"
    );
    println!(
        "bare hyper loop : wall {bare_wall:.3} s = {bare_ratio:.3} x ideal; cpu {bare_us:.1} us/probe; \
         {bare_failed} probes not 200"
    );
    println!(
        "ratios          : wall websentry/ideal {ours_ratio:.3} (target <= 1.2); cpu websentry/bare \
         {cpu_ratio:.3} (target <= 1.5); peak RSS {peak_rss_mb:.1} MB (target <= 150)"
    );
}

/// The baseline: a GET per URL on a fresh connection, body read to the end, nothing measured.
async fn bare_round(urls: &[String], concurrency: usize) -> usize {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for url in urls {
        let uri: hyper::Uri = url.parse().expect("uri");
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore");
            let authority = uri.authority().expect("authority").clone();
            let stream = TcpStream::connect(authority.as_str()).await.ok()?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
            tokio::spawn(conn);
            let request = hyper::Request::get(uri.path())
                .header(hyper::header::HOST, authority.as_str())
                .body(Empty::<Bytes>::new())
                .ok()?;
            let response = sender.send_request(request).await.ok()?;
            let ok = response.status() == 200;
            response.into_body().collect().await.ok()?;
            Some(ok)
        });
    }
    let mut ok = 0;
    while let Some(done) = tasks.join_next().await {
        if matches!(done, Ok(Some(true))) {
            ok += 1;
        }
    }
    ok
}

/// Listeners that answer every request with a small page after `delay`; ports on stdout; they
/// stop when stdin closes.
fn serve(delay: Duration) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let mut ports = Vec::new();
        for _ in 0..SERVER_PORTS {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            ports.push(listener.local_addr().expect("addr").port().to_string());
            tokio::spawn(async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 2048];
                        let mut seen = Vec::new();
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            match socket.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        }
                        tokio::time::sleep(delay).await;
                        let body = "<html><body>ok version=1.0</body></html>";
                        let response = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(response.as_bytes()).await;
                    });
                }
            });
        }
        println!("{}", ports.join(" "));
        // Stop when the parent closes our stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        })
        .await;
    });
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("comm").1.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime), counted after the command name.
    let ticks: f64 = fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

/// Peak resident set size in KiB (VmHWM).
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}
