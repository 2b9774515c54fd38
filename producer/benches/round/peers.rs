//! The contenders of a round: websentry (one build or several), the bare hyper loop, and the
//! peers found on this machine (a Go `net/http` prober built here, `curl --parallel`).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// curl silently caps `--parallel-max` here (larger values fall back to 50).
pub const CURL_PARALLEL_MAX: usize = 300;

/// A program probing a round.
#[derive(Debug, Clone)]
pub enum Kind {
    Websentry(PathBuf),
    Bare,
    Go(PathBuf),
    Curl,
}

#[derive(Debug, Clone)]
pub struct Contender {
    pub name: String,
    pub kind: Kind,
}

/// The contenders found on this machine, websentry first.
pub fn contenders(scratch: &Path) -> Vec<Contender> {
    let mut list: Vec<Contender> = match std::env::var("WEBSENTRY_BENCH_PRODUCERS") {
        Ok(given) => given
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|entry| {
                let (label, path) = entry.split_once('=').unwrap_or(("websentry", entry));
                let path = PathBuf::from(path.trim());
                assert!(path.is_file(), "{} (WEBSENTRY_BENCH_PRODUCERS) is not a file", path.display());
                Contender { name: format!("websentry {}", label.trim()), kind: Kind::Websentry(path) }
            })
            .collect(),
        Err(_) => {
            let target = std::env::current_exe().ok().and_then(|p| Some(p.ancestors().nth(3)?.to_path_buf()));
            let built_static =
                target.map(|t| t.join("x86_64-unknown-linux-musl/dist/websentry-producer")).filter(|p| p.is_file());
            let (name, path) = match built_static {
                Some(path) => ("websentry static", path),
                None => {
                    println!("no static build (scripts/build-static): measuring the benchmark's own build");
                    ("websentry", PathBuf::from(env!("CARGO_BIN_EXE_websentry-producer")))
                }
            };
            vec![Contender { name: name.into(), kind: Kind::Websentry(path) }]
        }
    };
    list.push(Contender { name: "bare hyper loop".into(), kind: Kind::Bare });
    match build_go_prober(scratch) {
        Ok(path) => list.push(Contender { name: "Go net/http".into(), kind: Kind::Go(path) }),
        Err(why) => println!("Go prober skipped: {why}"),
    }
    match Command::new("curl").arg("--version").output() {
        Ok(out) if out.status.success() => list.push(Contender { name: "curl --parallel".into(), kind: Kind::Curl }),
        _ => println!("curl skipped: no curl on PATH"),
    }
    list
}

pub fn describe(kind: &Kind) -> String {
    match kind {
        Kind::Websentry(path) => {
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            format!("{} ({size} bytes)", path.display())
        }
        Kind::Bare => "hyper + tokio-rustls, this benchmark's build, nothing measured".into(),
        Kind::Go(_) => "benches/goprober: net/http, keep-alives off, no TLS session cache".into(),
        Kind::Curl => format!("curl --parallel --parallel-immediate --parallel-max {CURL_PARALLEL_MAX} --no-sessionid"),
    }
}

/// Builds `benches/goprober` with the Go toolchain on PATH (or /usr/local/go).
fn build_go_prober(scratch: &Path) -> Result<PathBuf, String> {
    let go = ["go", "/usr/local/go/bin/go"]
        .into_iter()
        .find(|go| Command::new(go).arg("version").output().is_ok_and(|o| o.status.success()))
        .ok_or("no Go toolchain (go on PATH or /usr/local/go/bin/go)")?;
    let out = scratch.join("goprober");
    let built = Command::new(go)
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/goprober"))
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(|err| format!("running go build: {err}"))?;
    if !built.status.success() {
        return Err(format!("go build failed: {}", String::from_utf8_lossy(&built.stderr).trim()));
    }
    Ok(out)
}
