//! Kafka: the settings both binaries share, the rskafka client they build, and the partitioner.
//!
//! Only mutual TLS is offered: the broker's certificate is always verified against the given CA.

use std::{ffi::OsString, net::Ipv4Addr, ops::RangeInclusive, sync::Arc, time::Duration};

use rskafka::{
    client::{Client, ClientBuilder},
    BackoffConfig,
};

use crate::{
    settings::{quoted, Setting, SettingError},
    tls::{mutual_tls_config, MutualTlsFiles},
};

pub const HOSTS: Setting = Setting::new("WEBSENTRY_KAFKA_HOSTS", "kafka-hosts");
pub const CAFILE: Setting = Setting::new("WEBSENTRY_KAFKA_CAFILE", "kafka-cafile");
pub const CERTFILE: Setting = Setting::new("WEBSENTRY_KAFKA_CERTFILE", "kafka-certfile");
pub const KEY: Setting = Setting::new("WEBSENTRY_KAFKA_KEY", "kafka-key");
pub const TOPIC: Setting = Setting::new("WEBSENTRY_KAFKA_TOPIC", "kafka-topic");
pub const TIMEOUT: Setting = Setting::new("WEBSENTRY_KAFKA_TIMEOUT", "kafka-timeout");

/// Seconds `WEBSENTRY_KAFKA_TIMEOUT` may be: at least one, at most an hour (a broker gone for longer
/// is an outage to report, not to wait through; and no deadline computed from it can overflow).
pub const TIMEOUT_SECONDS: RangeInclusive<u64> = 1..=3600;

/// The longest one bootstrap broker is given to answer before the next in the list is tried.
pub const BROKER_ATTEMPT: Duration = Duration::from_secs(5);

/// Kafka settings as given on the command line or in the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers of the TLS listener, comma-separated HOST:PORT pairs without spaces
    /// (a DNS name or an IPv4 address, and a port from 1 to 65535).
    #[arg(id = "kafka-hosts", long = "kafka-hosts", env = "WEBSENTRY_KAFKA_HOSTS", value_name = "HOST:PORT,...")]
    pub hosts: Option<String>,
    /// PEM file with the CA certificate(s) that signed the brokers' certificates.
    #[arg(id = "kafka-cafile", long = "kafka-cafile", env = "WEBSENTRY_KAFKA_CAFILE", value_name = "FILE")]
    pub cafile: Option<OsString>,
    /// PEM file with this client's certificate (chain), presented to the brokers.
    #[arg(id = "kafka-certfile", long = "kafka-certfile", env = "WEBSENTRY_KAFKA_CERTFILE", value_name = "FILE")]
    pub certfile: Option<OsString>,
    /// PEM file with this client's private key (PKCS#8, PKCS#1 or SEC1, unencrypted).
    #[arg(id = "kafka-key", long = "kafka-key", env = "WEBSENTRY_KAFKA_KEY", value_name = "FILE")]
    pub key: Option<OsString>,
    /// Topic the reports are published to and read from.
    #[arg(
        id = "kafka-topic",
        long = "kafka-topic",
        env = "WEBSENTRY_KAFKA_TOPIC",
        default_value = "sitecheck",
        value_name = "NAME"
    )]
    pub topic: String,
    /// Seconds to keep retrying an unreachable broker before giving up (1 to 3600).
    #[arg(
        id = "kafka-timeout",
        long = "kafka-timeout",
        env = "WEBSENTRY_KAFKA_TIMEOUT",
        default_value = "30",
        value_name = "SECONDS"
    )]
    pub connect_timeout: String,
}

/// Checked Kafka settings: everything needed to connect, nothing left to fail on but the network.
#[derive(Clone)]
pub struct KafkaSettings {
    pub brokers: Vec<String>,
    pub topic: String,
    pub timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl KafkaArgs {
    /// Checks every setting, reads and parses the PEM files.
    ///
    /// # Errors
    /// The first setting that is missing or malformed.
    pub fn parse(&self) -> Result<KafkaSettings, SettingError> {
        let brokers = parse_brokers(HOSTS.required(self.hosts.as_deref())?)?;
        let topic = parse_topic(&self.topic)?;
        let timeout = TIMEOUT.seconds(&self.connect_timeout, TIMEOUT_SECONDS)?;
        let ca = CAFILE.readable_file(self.cafile.as_deref())?;
        let cert = CERTFILE.readable_file(self.certfile.as_deref())?;
        let key = KEY.readable_file(self.key.as_deref())?;
        let tls = mutual_tls_config(&MutualTlsFiles { ca: (&ca, CAFILE), cert: (&cert, CERTFILE), key: (&key, KEY) })?;
        Ok(KafkaSettings { brokers, topic, timeout, tls: Arc::new(tls) })
    }
}

/// `HOST:PORT,HOST:PORT`, strictly: a stray space would otherwise pass here and fail only when the
/// connection times out, long after start.
fn parse_brokers(value: &str) -> Result<Vec<String>, SettingError> {
    if value.trim().is_empty() {
        return Err(HOSTS.error("is set but empty"));
    }
    value.split(',').map(parse_broker).collect()
}

fn parse_broker(broker: &str) -> Result<String, SettingError> {
    if broker.is_empty() {
        return Err(HOSTS.error("has an empty entry between commas"));
    }
    let problem = |what: String| HOSTS.error(format!("broker {}: {what}", quoted(broker)));
    if broker.chars().any(char::is_whitespace) {
        return Err(problem("contains whitespace".into()));
    }
    if broker.starts_with('[') {
        return Err(problem("IPv6 literals are not supported; use a host name".into()));
    }
    let Some((host, port)) = broker.rsplit_once(':') else {
        return Err(problem("is not HOST:PORT".into()));
    };
    check_host(host).map_err(problem)?;
    match port.parse::<u16>() {
        Ok(1..) if port.bytes().all(|b| b.is_ascii_digit()) => Ok(broker.to_owned()),
        _ => Err(problem(format!("port {} is not a number from 1 to 65535", quoted(port)))),
    }
}

/// A DNS name (letters, digits and `-` in dot-separated labels) or an IPv4 address.
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("has no host".into());
    }
    if let Some(bad) = host.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')) {
        return Err(format!(
            "host {} contains {} (a DNS name or an IPv4 address has letters, digits, '-' and '.' only)",
            quoted(host),
            quoted(&bad.to_string())
        ));
    }
    if host.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "host {} is not a DNS name (labels of 1 to 63 characters, not starting or ending with '-')",
                quoted(host)
            ));
        }
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') && host.parse::<Ipv4Addr>().is_err() {
        return Err(format!("host {} is not an IPv4 address", quoted(host)));
    }
    Ok(())
}

fn parse_topic(value: &str) -> Result<String, SettingError> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if value.is_empty() || value.len() > 249 || !value.chars().all(legal) || value == "." || value == ".." {
        return Err(TOPIC.error(format!("'{value}' is not a legal topic name (1 to 249 of a-z A-Z 0-9 . _ -)")));
    }
    Ok(value.to_owned())
}

/// A Kafka failure at run time.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot reach Kafka at {brokers} within {timeout:?} (check the address and that the broker accepts this client certificate)")]
    Connect {
        brokers: String,
        timeout: Duration,
        #[source]
        source: rskafka::client::error::Error,
    },
    #[error("topic '{0}' does not exist")]
    NoSuchTopic(String),
    #[error("{action} on topic '{topic}'")]
    Request {
        action: &'static str,
        topic: String,
        #[source]
        source: rskafka::client::error::Error,
    },
}

impl KafkaSettings {
    /// The mutual-TLS client configuration (CA, client certificate and key), for connections that
    /// rskafka does not make itself.
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.tls)
    }

    /// Connects to the cluster over mutual TLS and reads its metadata; retries with backoff up to the
    /// timeout, so a broker that is restarting is waited for, and one that is gone is reported.
    /// The brokers are tried in turn, each attempt bounded by [`BROKER_ATTEMPT`] (or the timeout when
    /// shorter): a broker that accepts connections and never answers does not stop the next.
    ///
    /// # Errors
    /// [`KafkaError::Connect`] when no broker answered in time.
    pub async fn connect(&self, client_id: &str) -> Result<Client, KafkaError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(100);
        let mut last = None;
        loop {
            for broker in &self.brokers {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let attempt = self.attempt(broker, client_id);
                let err = match tokio::time::timeout(left.min(BROKER_ATTEMPT), attempt).await {
                    Ok(Ok(client)) => return Ok(client),
                    Ok(Err(err)) => err,
                    Err(_elapsed) => rskafka::client::error::Error::Timeout,
                };
                tracing::debug!(broker, cause = %err, "bootstrap broker did not answer, trying the next");
                last = Some(err);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(KafkaError::Connect {
                    brokers: self.brokers.join(","),
                    timeout: self.timeout,
                    source: last.unwrap_or(rskafka::client::error::Error::Timeout),
                });
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// One bootstrap attempt through `broker` alone. Requests of the client it builds retry up to
    /// the timeout.
    async fn attempt(&self, broker: &str, client_id: &str) -> Result<Client, rskafka::client::error::Error> {
        let backoff = BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
            deadline: Some(self.timeout),
        };
        ClientBuilder::new(vec![broker.to_owned()])
            .client_id(client_id.to_owned())
            .tls_config(Arc::clone(&self.tls))
            .backoff_config(backoff)
            .build()
            .await
    }

    /// The partitions of the topic, in order.
    ///
    /// # Errors
    /// The topic does not exist, or the metadata request failed.
    pub async fn partitions(&self, client: &Client) -> Result<Vec<i32>, KafkaError> {
        let topics = client.list_topics().await.map_err(|source| KafkaError::Request {
            action: "listing partitions",
            topic: self.topic.clone(),
            source,
        })?;
        let topic = topics
            .into_iter()
            .find(|t| t.name == self.topic)
            .ok_or_else(|| KafkaError::NoSuchTopic(self.topic.clone()))?;
        Ok(topic.partitions.into_iter().collect())
    }
}

/// Kafka's murmur2 (as in `org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java's length is an int; keys here are URLs, far below 2 GiB.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner picks for a keyed record:
/// `toPositive(murmur2(key)) % partitions`.
///
/// # Panics
/// When `partitions` is not positive (a topic always has at least one).
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_clients_test_vectors() {
        // From Apache Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), expected, "key {:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn partitions_are_never_negative_and_stay_in_range() {
        for key in ["21", "foobar", "https://example.com/", ""] {
            let p = partition_for_key(key.as_bytes(), 3);
            assert!((0..3).contains(&p), "key {key:?} gave {p}");
        }
    }

    #[test]
    fn broker_lists_take_names_and_ipv4_addresses_with_ports() {
        assert_eq!(parse_brokers("a:1,b:2").unwrap(), vec!["a:1", "b:2"]);
        assert_eq!(
            parse_brokers("kafka-0.kafka.example.com:9093,127.0.0.1:19093,localhost:65535").unwrap(),
            vec!["kafka-0.kafka.example.com:9093", "127.0.0.1:19093", "localhost:65535"]
        );
    }

    #[test]
    fn each_malformed_broker_list_is_refused_naming_the_broker() {
        for (bad, fragment) in [
            ("127.0.0.1 :9093", "broker '127.0.0.1 :9093': contains whitespace"),
            ("host:9093 ", "broker 'host:9093 ': contains whitespace"),
            (" host:9093", "broker ' host:9093': contains whitespace"),
            ("a:1, b:2", "broker ' b:2': contains whitespace"),
            ("a:1\tb:2", "contains whitespace"),
            ("a", "broker 'a': is not HOST:PORT"),
            ("a:", "broker 'a:': port '' is not a number from 1 to 65535"),
            ("a:x", "port 'x'"),
            ("a:0", "port '0'"),
            ("a:65536", "port '65536'"),
            ("a:+9093", "port '+9093'"),
            (":9092", "broker ':9092': has no host"),
            ("[::1]:9092", "IPv6 literals are not supported"),
            ("a:b:9092", "host 'a:b' contains ':'"),
            ("kafka_1:9092", "host 'kafka_1' contains '_'"),
            ("http://a:9092", "host 'http://a' contains ':'"),
            ("käfka:9092", "contains 'ä'"),
            ("a..b:9092", "host 'a..b' is not a DNS name"),
            ("-a:9092", "host '-a' is not a DNS name"),
            ("a.:9092", "is not a DNS name"),
            ("999.0.0.1:9092", "host '999.0.0.1' is not an IPv4 address"),
            ("1.2.3:9092", "is not an IPv4 address"),
            (",", "has an empty entry between commas"),
            ("a:1,", "has an empty entry between commas"),
            ("a:1,,b:2", "has an empty entry between commas"),
            ("", "is set but empty"),
        ] {
            let err = parse_brokers(bad).expect_err(bad).to_string();
            assert!(err.starts_with("WEBSENTRY_KAFKA_HOSTS (--kafka-hosts): "), "{bad:?}: {err}");
            assert!(err.contains(fragment), "{bad:?}: {err}");
            assert!(!err.contains('\n'), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_timeout_has_a_range_so_no_deadline_can_overflow() {
        let args = |timeout: &str| KafkaArgs {
            hosts: Some("a:1".into()),
            cafile: Some("/nonexistent/ca.crt".into()),
            certfile: None,
            key: None,
            topic: "sitecheck".into(),
            connect_timeout: timeout.into(),
        };
        for bad in ["0", "3601", "18446744073709551615", "soon"] {
            let err = args(bad).parse().expect_err(bad).to_string();
            assert!(err.starts_with("WEBSENTRY_KAFKA_TIMEOUT (--kafka-timeout): "), "{bad}: {err}");
            assert!(err.contains("expected 1 to 3600 seconds"), "{bad}: {err}");
        }
        let err = args("3600").parse().unwrap_err().to_string();
        assert!(err.starts_with("WEBSENTRY_KAFKA_CAFILE"), "3600 s is accepted, the next setting fails: {err}");
    }

    #[test]
    fn an_empty_path_is_named_like_any_other_setting() {
        let args = KafkaArgs {
            hosts: Some("a:1".into()),
            cafile: Some("".into()),
            certfile: None,
            key: None,
            topic: "sitecheck".into(),
            connect_timeout: "30".into(),
        };
        assert_eq!(args.parse().unwrap_err().to_string(), "WEBSENTRY_KAFKA_CAFILE (--kafka-cafile): is set but empty");
    }

    #[test]
    fn topic_names_are_checked() {
        assert!(parse_topic("sitecheck").is_ok());
        for bad in ["", "a b", "ä", ".."] {
            assert!(parse_topic(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
