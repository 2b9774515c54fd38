//! Many well-formed reports written straight to Kafka, for consumer tests that need volume, and a
//! tiny HTTP GET for the consumer's endpoint.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use websentry_shared::report::{Report, Timings, SCHEMA_VERSION};

use crate::Stack;

/// A report of `url` with a fresh UUIDv7, as the producer would write it.
pub fn sample_report(url: &str) -> Report {
    Report {
        v: SCHEMA_VERSION,
        id: uuid::Uuid::now_v7(),
        url: url.to_owned(),
        code: 200,
        response_ms: 12.5,
        regexp_match: None,
        checked_at: time::OffsetDateTime::now_utc(),
        probe: "tests".into(),
        error: None,
        timings_ms: Timings { dns: Some(0.5), connect: Some(1.0), tls: None, ttfb: Some(3.0), transfer: Some(0.25) },
        http_version: Some("HTTP/1.1".into()),
        final_url: Some(url.to_owned()),
        redirects: 0,
        body_bytes: Some(100),
        tls_expires_at: None,
        tls_chain_expires_at: None,
        interval_s: None,
        inconclusive: false,
        name: None,
        group: None,
    }
}

impl Stack {
    /// Writes `count` new reports spread round-robin over `partitions` partitions of `topic`, in
    /// requests of `chunk` records; returns their ids in the order written.
    pub fn produce_reports(&self, topic: &str, partitions: i32, count: usize, chunk: usize) -> Vec<uuid::Uuid> {
        let mut ids = Vec::with_capacity(count);
        let mut written = 0;
        while written < count {
            let n = chunk.min(count - written);
            for partition in 0..partitions {
                let records: Vec<_> = (written..written + n)
                    .filter(|i| (*i as i32) % partitions == partition)
                    .map(|i| {
                        let report = sample_report(&format!("http://site-{}.test/", i % 97));
                        ids.push(report.id);
                        (Some(report.url.clone().into_bytes()), Some(report.to_json()))
                    })
                    .collect();
                if !records.is_empty() {
                    self.produce_raw(topic, partition, records);
                }
            }
            written += n;
        }
        ids
    }
}

/// The value of the Prometheus sample `name` (with its labels, e.g. `m{a="b"}`) in an exposition.
pub fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// `GET path` on `address`: the status code and the body, or `None` if nothing answered.
pub fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    // One write: `write!` on the bare stream sends each piece of the format on its own.
    let head = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Some((status, body))
}
