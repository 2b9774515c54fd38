//! A round's memory follows the body budget, not the body limit × the concurrency: hundreds of
//! probes at once of pages over the body limit, with a pattern, stay well under the Kubernetes
//! memory limit (256 Mi). Runs the real producer with `--dry-run` and reads its peak RSS (VmHWM).

use std::time::Duration;

use websentry_shared::report::{ErrorKind, Report};
use websentry_tests::{
    hostile::{serve, Behaviour},
    Run, Scratch,
};

const SITES: usize = 250;
const PAGE_BYTES: usize = 1_100_000;
const BODY_LIMIT: u64 = 1 << 20;
/// The 32 MiB body budget, the buffers of 250 probes in flight and the process itself: about 72 MiB
/// measured with the debug build. Without the budget, bodies alone would take up to body limit ×
/// concurrency = 250 MiB (228 MiB measured).
const PEAK_BOUND_KIB: u64 = 128 * 1024;

#[test]
fn a_round_of_large_pages_with_a_pattern_stays_within_the_memory_bound() {
    let mut page = String::from("version=4.2 ");
    page.push_str(&"x".repeat(PAGE_BYTES - page.len()));
    let base = serve(Behaviour::Body(page.leak()));
    let sites: String = (0..SITES).map(|i| format!("[[site]]\nurl = \"{base}page/{i}\"\n\n")).collect();
    let scratch = Scratch::new();
    let path = scratch.write("sites.toml", sites);
    let marker = format!("memory-{:016x}", rand::random::<u64>());

    // A daemon stays up after its first round, so its high-water mark can be read before it exits.
    let running = Run::new("websentry-producer")
        .arg("--dry-run")
        .arg("--probe-name")
        .arg(&marker)
        .env("WEBSENTRY_SITES_FILE", path)
        .env("WEBSENTRY_REGEXP", r"version=(\d+)\.(\d+)")
        .env("WEBSENTRY_CONCURRENCY", SITES.to_string())
        .env("WEBSENTRY_BODY_LIMIT", BODY_LIMIT.to_string())
        .env("WEBSENTRY_TIMEOUT", "60")
        .env("WEBSENTRY_INTERVAL", "3600")
        .spawn();
    running.wait_for_log("round done", Duration::from_secs(120));
    let peak_kib = peak_rss_kib(&marker);
    running.terminate();
    let output = running.finish(Duration::from_secs(30));

    println!("peak RSS of the producer: {} MiB ({peak_kib} KiB) for {SITES} probes at once", peak_kib / 1024);
    let reports: Vec<Report> =
        output.stdout.lines().map(|l| Report::decode(l.as_bytes()).expect("a report per line")).collect();
    // Every site is probed at start; a site whose first slot comes before the test stops the
    // daemon (the start's probes of 1 MiB pages can take long on a loaded machine) is probed
    // again at it, by design (producer/src/daemon.rs). Each site once at least, none more than
    // twice.
    let mut per_site = std::collections::BTreeMap::<&str, usize>::new();
    for report in &reports {
        *per_site.entry(report.url.as_str()).or_default() += 1;
    }
    assert_eq!(per_site.len(), SITES, "a report for every site");
    assert!(per_site.values().all(|&n| n <= 2), "at most the start's probe and one slot's: {per_site:?}");
    for report in &reports {
        assert_eq!(
            report.error.as_ref().map(|e| e.kind),
            Some(ErrorKind::BodyLimit),
            "{}: {:?}",
            report.url,
            report.error
        );
        assert_eq!(report.body_bytes, Some(BODY_LIMIT), "{}: read up to the limit", report.url);
        assert_eq!(report.regexp_match.as_deref(), Some("42"), "{}: searched", report.url);
    }
    assert!(peak_kib <= PEAK_BOUND_KIB, "peak RSS {peak_kib} KiB is over {PEAK_BOUND_KIB} KiB");
}

/// The peak resident set (VmHWM) of the running process whose command line holds `marker`.
fn peak_rss_kib(marker: &str) -> u64 {
    let pid = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .find(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).any(|arg| arg == marker.as_bytes()))
        })
        .unwrap_or_else(|| panic!("no process with {marker} in its command line"))
        .path();
    let status = std::fs::read_to_string(pid.join("status")).expect("reading its status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("a VmHWM line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmHWM in kB")
}
