//! A daemon's probes spread over their interval, against the burst of a one-off round of the same
//! sites, measured in the same run: local sites that answer after a fixed delay D count the
//! connections open at once (peak) and the probes started in each second; the producer runs as a
//! child process (`--dry-run`, its reports thrown away) and its CPU time is read from the kernel.
//!
//! - **burst**: `websentry-producer` once, every site at once (concurrency C): wall time against
//!   the ideal `D × ⌈sites ÷ C⌉`, CPU per probe, peak connections.
//! - **spread**: `websentry-producer --interval I` (a daemon, the same concurrency bound), measured
//!   over one whole interval after its start-up round: probes, peak connections (even would be
//!   `sites × D ÷ I`), the busiest second (even: `sites ÷ I`), CPU per probe.
//!
//!     cargo bench -p websentry-producer --bench spread
//!
//! Sizes: `WEBSENTRY_BENCH_SITES` (10,000), `_CONCURRENCY` (1,000), `_DELAY_MS` (100),
//! `_INTERVAL_S` (20). Lines are `<figure>: <value>` for a script to read.

use std::{
    collections::HashMap,
    io::Write,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use nix::sys::resource::{getrusage, UsageWho};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn unix_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis()).expect("fits")
}

/// What the sites saw.
#[derive(Default)]
struct Seen {
    open: AtomicI64,
    peak: AtomicI64,
    requests: AtomicU64,
    /// Probes started per Unix second.
    per_second: Mutex<HashMap<u64, u64>>,
}

impl Seen {
    /// Starts counting the peak again, from the connections open now.
    fn reset_peak(&self) {
        self.peak.store(self.open.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// The busiest second from `from_s` (included) to `to_s` (excluded).
    fn busiest_second(&self, from_s: u64, to_s: u64) -> u64 {
        let seconds = self.per_second.lock().expect("not poisoned");
        (from_s..to_s).map(|s| seconds.get(&s).copied().unwrap_or(0)).max().unwrap_or(0)
    }
}

/// Sites on `ports` listeners of 127.0.0.1 that answer every request after `delay`, counting.
fn serve(delay: Duration, ports: usize) -> (Vec<u16>, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let (sender, receiver) = std::sync::mpsc::channel();
    let counting = Arc::clone(&seen);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let mut bound = Vec::new();
            for _ in 0..ports {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                bound.push(listener.local_addr().expect("addr").port());
                let seen = Arc::clone(&counting);
                tokio::spawn(async move {
                    while let Ok((mut socket, _)) = listener.accept().await {
                        let seen = Arc::clone(&seen);
                        tokio::spawn(async move {
                            let open = seen.open.fetch_add(1, Ordering::SeqCst) + 1;
                            seen.peak.fetch_max(open, Ordering::SeqCst);
                            seen.requests.fetch_add(1, Ordering::SeqCst);
                            *seen.per_second.lock().expect("not poisoned").entry(unix_ms() / 1000).or_default() += 1;
                            let mut head = Vec::with_capacity(1024);
                            let mut buffer = [0_u8; 1024];
                            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                                match socket.read(&mut buffer).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                                }
                            }
                            tokio::time::sleep(delay).await;
                            let page = "<html><body>ok</body></html>";
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                                page.len()
                            );
                            let _ = socket.write_all(answer.as_bytes()).await;
                            let _ = socket.shutdown().await;
                            seen.open.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                });
            }
            sender.send(bound).expect("the ports");
            std::future::pending::<()>().await;
        });
    });
    (receiver.recv().expect("the sites started"), seen)
}

/// CPU seconds (user + system) of the children that were waited for.
fn children_cpu() -> f64 {
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    seconds(usage.user_time()) + seconds(usage.system_time())
}

/// CPU seconds (user + system) a running process has used so far.
fn process_cpu(pid: u32, ticks_per_second: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the producer's stat");
    // Fields after the command name, which is in parentheses: utime and stime are 14 and 15.
    let after = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |n: usize| fields[n - 3].parse::<f64>().expect("ticks");
    (ticks(14) + ticks(15)) / ticks_per_second
}

fn main() {
    let sites = setting("WEBSENTRY_BENCH_SITES", 10_000) as usize;
    let concurrency = setting("WEBSENTRY_BENCH_CONCURRENCY", 1_000);
    let delay_ms = setting("WEBSENTRY_BENCH_DELAY_MS", 100);
    let interval_s = setting("WEBSENTRY_BENCH_INTERVAL_S", 20);
    let producer = env!("CARGO_BIN_EXE_websentry-producer");
    let ticks_per_second: f64 =
        String::from_utf8(Command::new("getconf").arg("CLK_TCK").output().expect("getconf").stdout)
            .expect("text")
            .trim()
            .parse()
            .expect("CLK_TCK");

    let (ports, seen) = serve(Duration::from_millis(delay_ms), 8);
    let scratch = std::env::temp_dir().join(format!("websentry-spread-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    let sites_toml = scratch.join("sites.toml");
    let mut file = std::fs::File::create(&sites_toml).expect("sites file");
    for n in 0..sites {
        writeln!(file, "[[site]]\nurl = \"http://127.0.0.1:{}/site-{n}\"\n", ports[n % ports.len()]).expect("write");
    }
    drop(file);
    let base = |command: &mut Command| {
        command
            .arg("--dry-run")
            .env_clear()
            .env("WEBSENTRY_SITES_FILE", &sites_toml)
            .env("WEBSENTRY_CONCURRENCY", concurrency.to_string())
            .env("WEBSENTRY_TIMEOUT", "10")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    };
    println!(
        "sites: {sites}, concurrency {concurrency}, delay {delay_ms} ms, interval {interval_s} s, producer {producer}"
    );

    // Burst: one round of every site at once.
    seen.reset_peak();
    let (requests, cpu) = (seen.requests.load(Ordering::SeqCst), children_cpu());
    let started = Instant::now();
    let mut command = Command::new(producer);
    base(&mut command);
    let status = command.status().expect("the one-off run");
    assert!(status.success(), "the one-off run failed: {status}");
    let wall = started.elapsed().as_secs_f64();
    let probes = seen.requests.load(Ordering::SeqCst) - requests;
    let burst_cpu_us = (children_cpu() - cpu) / probes as f64 * 1e6;
    let ideal = delay_ms as f64 / 1000.0 * (sites as f64 / concurrency as f64).ceil();
    let burst_peak = seen.peak.load(Ordering::SeqCst);
    println!("burst probes: {probes}");
    println!("burst wall: {wall:.2} s = {:.2} × ideal ({ideal:.2} s)", wall / ideal);
    println!("burst peak connections: {burst_peak}");
    println!("burst CPU per probe: {burst_cpu_us:.0} µs (start-up included)");

    // Spread: a daemon, measured over one whole interval after its start-up round.
    let mut command = Command::new(producer);
    base(&mut command);
    let mut daemon = command.env("WEBSENTRY_INTERVAL", interval_s.to_string()).spawn().expect("the daemon");
    let before = seen.requests.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.requests.load(Ordering::SeqCst) - before < sites as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The interval after the next boundary, once the start-up round has ended.
    std::thread::sleep(Duration::from_millis(delay_ms * 3));
    let interval_ms = interval_s * 1000;
    let from_ms = (unix_ms() / interval_ms + 1) * interval_ms;
    std::thread::sleep(Duration::from_millis(from_ms - unix_ms()));
    seen.reset_peak();
    let (requests, cpu) = (seen.requests.load(Ordering::SeqCst), process_cpu(daemon.id(), ticks_per_second));
    std::thread::sleep(Duration::from_millis(from_ms + interval_ms - unix_ms()));
    let probes = seen.requests.load(Ordering::SeqCst) - requests;
    let spread_cpu_us = (process_cpu(daemon.id(), ticks_per_second) - cpu) / probes.max(1) as f64 * 1e6;
    let spread_peak = seen.peak.load(Ordering::SeqCst);
    let busiest = seen.busiest_second(from_ms / 1000, (from_ms + interval_ms) / 1000);
    let _ = Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status();
    let _ = daemon.wait();
    let even_connections = sites as f64 * delay_ms as f64 / interval_ms as f64;
    println!("spread probes in one interval: {probes} (sites {sites})");
    println!("spread peak connections: {spread_peak} (even {even_connections:.0})");
    println!("spread busiest second: {busiest} probes (even {:.0})", sites as f64 / interval_s as f64);
    println!("spread CPU per probe: {spread_cpu_us:.0} µs");
    println!("peak connections spread ÷ burst: {:.3}", spread_peak as f64 / burst_peak.max(1) as f64);
    println!("CPU per probe spread ÷ burst: {:.2}", spread_cpu_us / burst_cpu_us);
    let _ = std::fs::remove_dir_all(&scratch);
}
