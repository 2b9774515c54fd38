//! One-off rounds against local sites that answer after a fixed delay D, probed by websentry and
//! by its peers in the same run: a bare hyper loop (the floor of our own stack), a Go `net/http`
//! prober (`benches/goprober`, built with the Go toolchain when there is one) and `curl --parallel`.
//! Two rounds: HTTP (10,000 sites, concurrency 1,000) and HTTPS (2,000 sites, concurrency 500, a
//! certificate from a test CA made for the run, every probe a full handshake). Each contender runs as
//! a child process, is timed from start to exit, and its CPU time and peak RSS are read from the
//! kernel (`getrusage` of the child). Repeats are interleaved (every contender once per repeat, the
//! order rotating), and the table shows the median of the repeats: wall ÷ ideal (ideal = D × ⌈sites
//! ÷ concurrency⌉), CPU µs per probe, peak RSS, probes answered 200, TLS handshakes that resumed (as
//! the server saw them), and websentry ÷ Go.
//!
//!     scripts/build-static && cargo bench -p websentry-producer --bench round
//!
//! Which websentry: `WEBSENTRY_BENCH_PRODUCERS=today=/path/a,new=/path/b` (label=path, several
//! allowed, all measured in the same run); by default the static build of `scripts/build-static`
//! when it is there, else the binary cargo built for this benchmark. Sizes and repeats:
//! `WEBSENTRY_BENCH_SITES`, `_CONCURRENCY`, `_TLS_SITES`, `_TLS_CONCURRENCY`, `_DELAY_MS`,
//! `_REPEATS` (3), `_ROUNDS` (`http,https`), `_REGEXP` (a pattern for websentry and Go; curl and
//! the bare loop search nothing). curl runs at most 300 transfers at once (`--parallel-max` is
//! capped there), whatever the round's concurrency.
//!
//! The sites run in a child process of their own (`serve.rs`) so that their CPU and memory are not
//! counted.

mod bare;
mod peers;
mod serve;

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use nix::sys::resource::{getrusage, UsageWho};
use peers::{contenders, describe, Contender, Kind, CURL_PARALLEL_MAX};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// The bare loop runs in this binary: give it the producer's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve::serve(
            Duration::from_millis(args[2].parse().expect("delay")),
            Path::new(&args[3]),
            Path::new(&args[4]),
        ),
        Some("measure") => measure(Path::new(&args[2]), &args[3..]),
        Some("bare") => bare::run(Path::new(&args[2]), args[3].parse().expect("concurrency"), Path::new(&args[4])),
        _ => compare(),
    }
}

/// Runs `command` with its stdout to `output`, and prints on stdout its wall seconds, user and
/// system CPU seconds, peak RSS in KiB and exit code. The only child of this process, so the
/// kernel's figures for "children" are its own.
fn measure(output: &Path, command: &[String]) {
    let output = std::fs::File::create(output).expect("output file");
    let started = Instant::now();
    let status = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(Stdio::null())
        .status()
        .expect("starting the contender");
    let wall = started.elapsed().as_secs_f64();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    println!(
        "{wall} {} {} {} {}",
        seconds(usage.user_time()),
        seconds(usage.system_time()),
        usage.max_rss(),
        status.code().unwrap_or(-1)
    );
}

/// One round: its sites (as files for each contender), concurrency and ideal wall time.
#[derive(Debug)]
struct Round {
    name: &'static str,
    sites: usize,
    concurrency: usize,
    ideal: f64,
    urls: PathBuf,
    sites_toml: PathBuf,
    curl_config: PathBuf,
}

/// What one run of one contender cost.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    ok: usize,
    resumed: u64,
    handshakes: u64,
}

struct Servers {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Servers {
    /// TLS handshakes (full, resumed) since the last call.
    fn handshakes(&mut self) -> (u64, u64) {
        writeln!(self.stdin, "stats").expect("asking the servers");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("servers' stats");
        let words: Vec<&str> = line.split_whitespace().collect();
        (words[1].parse().expect("full"), words[3].parse().expect("resumed"))
    }
}

fn compare() {
    let delay_ms = setting("WEBSENTRY_BENCH_DELAY_MS", 100);
    let repeats = setting("WEBSENTRY_BENCH_REPEATS", 3).max(1) as usize;
    let regexp = std::env::var("WEBSENTRY_BENCH_REGEXP").ok().filter(|r| !r.is_empty());
    let rounds_wanted = std::env::var("WEBSENTRY_BENCH_ROUNDS").unwrap_or_else(|_| "http,https".into());
    let scratch = std::env::temp_dir().join(format!("websentry-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    let (ca, cert, key) = test_ca(&scratch);

    let own = std::env::current_exe().expect("own path");
    let mut servers = Command::new(&own)
        .args(["serve", &delay_ms.to_string()])
        .arg(&cert)
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the servers");
    let mut servers = Servers {
        stdin: servers.stdin.take().expect("stdin"),
        stdout: BufReader::new(servers.stdout.take().expect("stdout")),
        child: servers,
    };
    let mut ports = String::new();
    servers.stdout.read_line(&mut ports).expect("server ports");
    let (http_ports, https_ports) = ports.trim().split_once(';').expect("two port lists");

    let delay = delay_ms as f64 / 1000.0;
    let mut rounds = Vec::new();
    for (name, scheme, ports, sites, concurrency) in [
        ("HTTP", "http", http_ports, "WEBSENTRY_BENCH_SITES", ("WEBSENTRY_BENCH_CONCURRENCY", 1_000)),
        ("HTTPS", "https", https_ports, "WEBSENTRY_BENCH_TLS_SITES", ("WEBSENTRY_BENCH_TLS_CONCURRENCY", 500)),
    ] {
        if !rounds_wanted.split(',').any(|r| r.trim().eq_ignore_ascii_case(scheme)) {
            continue;
        }
        let sites = setting(sites, if scheme == "http" { 10_000 } else { 2_000 }) as usize;
        let concurrency = setting(concurrency.0, concurrency.1).max(1) as usize;
        let ports: Vec<&str> = ports.split_whitespace().collect();
        let urls: Vec<String> =
            (0..sites).map(|i| format!("{scheme}://127.0.0.1:{}/site/{i}", ports[i % ports.len()])).collect();
        let ideal = delay * (sites as f64 / concurrency as f64).ceil();
        rounds.push(round_files(&scratch, name, scheme, &urls, concurrency, ideal));
    }

    let contenders = contenders(&scratch);
    println!(
        "rounds of sites answering after {delay_ms} ms; {repeats} interleaved repeats, median shown; \
         pattern: {}",
        regexp.as_deref().unwrap_or("none")
    );
    for contender in &contenders {
        println!("  {:<22} {}", contender.name, describe(&contender.kind));
    }

    let mut runs: Vec<Vec<Vec<Run>>> = vec![vec![Vec::new(); contenders.len()]; rounds.len()];
    for repeat in 0..repeats {
        for (r, round) in rounds.iter().enumerate() {
            for offset in 0..contenders.len() {
                let c = (offset + repeat) % contenders.len();
                let run = run_once(&own, &scratch, &contenders[c], round, regexp.as_deref(), &ca, &mut servers);
                println!(
                    "  [{}/{repeats}] {:<5} {:<22} wall {:.3} s, cpu {:.1} us/probe, peak RSS {:.1} MB, \
                     {}/{} ok, {} of {} handshakes resumed",
                    repeat + 1,
                    round.name,
                    contenders[c].name,
                    run.wall,
                    run.cpu / round.sites as f64 * 1e6,
                    run.rss_mb,
                    run.ok,
                    round.sites,
                    run.resumed,
                    run.handshakes
                );
                runs[r][c].push(run);
            }
        }
    }
    drop(servers.stdin);
    let _ = servers.child.wait();
    if std::env::var_os("WEBSENTRY_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }

    for (round, runs) in rounds.iter().zip(&runs) {
        report(round, &contenders, runs);
    }
}

/// A CA and a certificate for 127.0.0.1 and localhost signed by it, as PEM files.
fn test_ca(scratch: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: with rcgen's one default name for both, OpenSSL (curl) would take the
    // site's certificate for a self-signed one.
    ca_params.distinguished_name.push(DnType::CommonName, "websentry benchmark CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let leaf = params.signed_by(&key, &ca).expect("leaf");
    let paths = (scratch.join("ca.pem"), scratch.join("site.pem"), scratch.join("site.key"));
    std::fs::write(&paths.0, ca.pem()).expect("CA file");
    std::fs::write(&paths.1, leaf.pem()).expect("certificate file");
    std::fs::write(&paths.2, key.serialize_pem()).expect("key file");
    paths
}

/// Writes the round's sites as each contender reads them.
fn round_files(
    scratch: &Path,
    name: &'static str,
    scheme: &str,
    urls: &[String],
    concurrency: usize,
    ideal: f64,
) -> Round {
    let path = |ext: &str| scratch.join(format!("{scheme}.{ext}"));
    let (list, toml, curl) = (path("urls"), path("toml"), path("curl"));
    std::fs::write(&list, urls.join("\n")).expect("url list");
    std::fs::write(&toml, urls.iter().map(|u| format!("[[site]]\nurl = \"{u}\"\n")).collect::<String>())
        .expect("sites file");
    std::fs::write(&curl, urls.iter().map(|u| format!("url = \"{u}\"\noutput = \"/dev/null\"\n")).collect::<String>())
        .expect("curl config");
    Round { name, sites: urls.len(), concurrency, ideal, urls: list, sites_toml: toml, curl_config: curl }
}

/// Runs `contender` once over `round` under the measurer.
fn run_once(
    own: &Path,
    scratch: &Path,
    contender: &Contender,
    round: &Round,
    regexp: Option<&str>,
    ca: &Path,
    servers: &mut Servers,
) -> Run {
    let c = round.concurrency.to_string();
    let ca = ca.to_str().expect("UTF-8 path").to_owned();
    let path = |p: &Path| p.to_str().expect("UTF-8 path").to_owned();
    let mut command: Vec<String> = match &contender.kind {
        Kind::Websentry(bin) => {
            let mut command = vec![path(bin), "--dry-run".into(), "--sites-file".into(), path(&round.sites_toml)];
            command.extend(["--concurrency".into(), c, "--timeout".into(), "30".into()]);
            command.extend(["--probe-cafile".into(), ca, "--loglevel".into(), "ERROR".into()]);
            command
        }
        Kind::Bare => vec![path(own), "bare".into(), path(&round.urls), c, ca],
        Kind::Go(bin) => {
            let mut command = vec![path(bin), "-sites".into(), path(&round.urls), "-concurrency".into(), c];
            command.extend(["-timeout".into(), "30s".into(), "-cafile".into(), ca]);
            command
        }
        Kind::Curl => {
            let parallel = round.concurrency.min(CURL_PARALLEL_MAX).to_string();
            let mut command = vec!["curl".into(), "-q".into(), "--parallel".into(), "--parallel-immediate".into()];
            command.extend(["--parallel-max".into(), parallel]);
            command.extend(["--silent".into(), "--no-sessionid".into(), "--cacert".into(), ca]);
            command.extend(["--max-time".into(), "30".into(), "--write-out".into(), "%{http_code}\\n".into()]);
            command.extend(["--config".into(), path(&round.curl_config)]);
            command
        }
    };
    if let (Some(regexp), Kind::Websentry(_)) = (regexp, &contender.kind) {
        command.extend(["--regexp".into(), regexp.into()]);
    }
    if let (Some(regexp), Kind::Go(_)) = (regexp, &contender.kind) {
        command.extend(["-regexp".into(), regexp.into()]);
    }
    let output = scratch.join("output");
    let mut measurer = Command::new(own);
    measurer.arg("measure").arg(&output).args(&command);
    // A shell with `scripts/stack env` evaluated must not add its sites or settings to the round.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WEBSENTRY_") {
            measurer.env_remove(name);
        }
    }
    let measured = measurer.output().expect("running the measurer");
    let line = String::from_utf8_lossy(&measured.stdout);
    let fields: Vec<f64> = line.split_whitespace().map(|f| f.parse().expect("measurer figure")).collect();
    assert_eq!(fields.len(), 5, "measurer said {line:?}");
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    let ok = match contender.kind {
        Kind::Websentry(_) | Kind::Go(_) => {
            text.lines().filter(|l| l.contains("\"code\":200") && l.contains("\"error\":null")).count()
        }
        Kind::Bare => text.trim().strip_prefix("ok ").and_then(|n| n.parse().ok()).unwrap_or(0),
        Kind::Curl => text.lines().filter(|l| l.trim() == "200").count(),
    };
    let (full, resumed) = servers.handshakes();
    Run {
        wall: fields[0],
        cpu: fields[1] + fields[2],
        rss_mb: fields[3] / 1024.0,
        ok,
        resumed,
        handshakes: full + resumed,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The round's table of medians, websentry ÷ Go, and the targets.
fn report(round: &Round, contenders: &[Contender], runs: &[Vec<Run>]) {
    println!();
    println!(
        "{} round: {} sites, concurrency {}, ideal {:.3} s (curl: at most {CURL_PARALLEL_MAX} at once)",
        round.name, round.sites, round.concurrency, round.ideal
    );
    println!(
        "| {:<22} | {:>10} | {:>12} | {:>11} | {:>11} | {:>9} |",
        "contender", "wall/ideal", "CPU us/probe", "peak RSS MB", "200s", "resumed"
    );
    println!("|{:-<24}|{:->12}|{:->14}|{:->13}|{:->13}|{:->11}|", "", "", "", "", "", "");
    let mut medians = Vec::new();
    for (contender, runs) in contenders.iter().zip(runs) {
        let wall = median(runs.iter().map(|r| r.wall / round.ideal).collect());
        let cpu = median(runs.iter().map(|r| r.cpu / round.sites as f64 * 1e6).collect());
        let rss = median(runs.iter().map(|r| r.rss_mb).collect());
        let ok = median(runs.iter().map(|r| r.ok as f64).collect());
        let resumed = runs.iter().map(|r| r.resumed).sum::<u64>();
        let handshakes = runs.iter().map(|r| r.handshakes).sum::<u64>();
        let resumed = if handshakes == 0 { "-".to_owned() } else { format!("{resumed}/{handshakes}") };
        println!(
            "| {:<22} | {wall:>10.2} | {cpu:>12.0} | {rss:>11.1} | {:>11} | {resumed:>9} |",
            contender.name,
            format!("{ok:.0}/{}", round.sites)
        );
        medians.push((contender, wall, cpu, rss));
    }
    let Some(&(_, go_wall, go_cpu, _)) = medians.iter().find(|m| matches!(m.0.kind, Kind::Go(_))) else {
        return;
    };
    let https = round.name == "HTTPS";
    for &(contender, wall, cpu, rss) in medians.iter().filter(|m| matches!(m.0.kind, Kind::Websentry(_))) {
        let (cpu_ratio, wall_ratio) = (cpu / go_cpu, wall / go_wall);
        let verdict = |met: bool| if met { "met" } else { "NOT met" };
        if https {
            println!(
                "{} / Go: CPU {cpu_ratio:.2} (target <= 0.9: {}), wall {wall_ratio:.2}",
                contender.name,
                verdict(cpu_ratio <= 0.9)
            );
        } else {
            println!(
                "{} / Go: CPU {cpu_ratio:.2} (target <= 0.8: {}), wall {wall_ratio:.2} (target <= 1: {}); \
                 peak RSS {rss:.1} MB (target <= 60: {})",
                contender.name,
                verdict(cpu_ratio <= 0.8),
                verdict(wall_ratio <= 1.0),
                verdict(rss <= 60.0)
            );
        }
    }
}
