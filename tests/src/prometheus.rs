//! Debian's Prometheus server and blackbox_exporter (`prometheus`, `prometheus-blackbox-exporter`)
//! started for a test on a free port of the loopback, each with its own configuration and storage
//! in a scratch folder, stopped when dropped; and Prometheus's HTTP query API.

use std::{
    collections::BTreeMap,
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{eventually, http, http_get, Exposition, Scratch};

/// Debian's paths of the two programs.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const BLACKBOX_EXPORTER: &str = "/usr/bin/prometheus-blackbox-exporter";

/// A program of ours, killed (and reaped) when dropped.
#[derive(Debug)]
struct Daemon {
    child: Child,
    /// `127.0.0.1:PORT`.
    address: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port's address on the loopback (bound, then released).
fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
    listener.local_addr().expect("address").to_string()
}

/// Starts `program` with `args` (the listen address appended as `--web.listen-address`), and
/// waits until `ready_path` answers 200.
fn start(program: &str, mut args: Vec<String>, ready_path: &str) -> Daemon {
    let address = free_address();
    args.push(format!("--web.listen-address={address}"));
    let child = Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|err| panic!("{program}: {err}: install Debian's prometheus and prometheus-blackbox-exporter"));
    let daemon = Daemon { child, address };
    eventually(&format!("{program} ready"), Duration::from_secs(30), || {
        http_get(&daemon.address, ready_path).is_some_and(|(status, _)| status == 200)
    });
    daemon
}

/// `text` percent-encoded for a query string.
pub fn query_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server.
#[derive(Debug)]
pub struct Prometheus {
    daemon: Daemon,
    _folder: Scratch,
}

/// One series of an instant vector, or a scalar (no labels).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Prometheus {
    /// Starts Prometheus with `config` (prometheus.yml) and the `files` it names (name, content),
    /// written into its folder.
    pub fn start(config: &str, files: &[(&str, String)]) -> Prometheus {
        let folder = Scratch::new();
        let config_file = folder.write("prometheus.yml", config);
        for (name, content) in files {
            folder.write(name, content);
        }
        let args = vec![
            format!("--config.file={config_file}"),
            format!("--storage.tsdb.path={}", folder.path().join("data").display()),
            "--log.level=warn".to_owned(),
        ];
        Prometheus { daemon: start(PROMETHEUS, args, "/-/ready"), _folder: folder }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        &self.daemon.address
    }

    /// The instant query `promql` now.
    ///
    /// # Errors
    /// Prometheus refused it (the reason it gave).
    pub fn query(&self, promql: &str) -> Result<Vec<Point>, String> {
        let target = format!("/api/v1/query?query={}", query_encoded(promql));
        let answer = http(&self.daemon.address, "GET", target.as_bytes(), &[]);
        let body: serde_json::Value =
            serde_json::from_slice(&answer.body).map_err(|err| format!("{err}: {}", answer.text()))?;
        if body["status"] != "success" {
            return Err(format!("{promql}: {}", body["error"]));
        }
        let data = &body["data"];
        let value = |pair: &serde_json::Value| pair[1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        Ok(match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|series| Point {
                    labels: series["metric"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect(),
                    value: value(&series["value"]),
                })
                .collect(),
            Some("scalar") => vec![Point { labels: BTreeMap::new(), value: value(&data["result"]) }],
            other => return Err(format!("{promql}: a result of type {other:?}")),
        })
    }
}

/// A blackbox_exporter.
#[derive(Debug)]
pub struct BlackboxExporter {
    daemon: Daemon,
    _folder: Scratch,
}

impl BlackboxExporter {
    /// Starts blackbox_exporter with `config` (blackbox.yml).
    pub fn start(config: &str) -> BlackboxExporter {
        let folder = Scratch::new();
        let config_file = folder.write("blackbox.yml", config);
        let args = vec![format!("--config.file={config_file}"), "--log.level=warn".to_owned()];
        BlackboxExporter { daemon: start(BLACKBOX_EXPORTER, args, "/-/healthy"), _folder: folder }
    }

    /// Probes `target` with `module` now, as Prometheus would: the exposition it answers.
    pub fn probe(&self, module: &str, target: &str) -> Exposition {
        let path = format!("/probe?module={module}&target={}", query_encoded(target));
        let answer = http(&self.daemon.address, "GET", path.as_bytes(), &[]);
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        Exposition::parse(&answer.text()).unwrap_or_else(|err| panic!("{err}\n{}", answer.text()))
    }
}
