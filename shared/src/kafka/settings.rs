//! Kafka settings: the flags and variables both binaries take, checked into [`KafkaSettings`].

use std::{ffi::OsString, net::Ipv4Addr, sync::Arc, time::Duration};

use crate::{
    settings::{quoted, Named, SettingError, Whole},
    tls::{mutual_tls_config, MutualTlsFiles},
};

/// Seconds `WEBSENTRY_KAFKA_TIMEOUT` may be: at least one, at most an hour (a broker gone for longer
/// is an outage to report, not to wait through; and no deadline computed from it can overflow).
pub const TIMEOUT: Whole<u64> = Whole::seconds(1, 3600, 30);

/// Kafka settings as given on the command line or in the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers of the TLS listener, comma-separated HOST:PORT pairs without spaces
    /// (a DNS name or an IPv4 address, and a port from 1 to 65535); required to publish or archive.
    #[arg(long, env = "WEBSENTRY_KAFKA_HOSTS", value_name = "HOST:PORT,...")]
    pub kafka_hosts: Option<String>,
    /// PEM file with the CA certificate(s) that signed the brokers' certificates; required with
    /// the brokers.
    #[arg(long, env = "WEBSENTRY_KAFKA_CAFILE", value_name = "FILE")]
    pub kafka_cafile: Option<OsString>,
    /// PEM file with this client's certificate (chain), presented to the brokers; required with the
    /// brokers.
    #[arg(long, env = "WEBSENTRY_KAFKA_CERTFILE", value_name = "FILE")]
    pub kafka_certfile: Option<OsString>,
    /// PEM file with this client's private key (PKCS#8, PKCS#1 or SEC1, unencrypted); required with
    /// the brokers.
    #[arg(long, env = "WEBSENTRY_KAFKA_KEY", value_name = "FILE")]
    pub kafka_key: Option<OsString>,
    /// Topic the reports are published to and read from; it must exist.
    #[arg(long, env = "WEBSENTRY_KAFKA_TOPIC", default_value = "sitecheck", value_name = "NAME")]
    pub kafka_topic: String,
    #[arg(
        long,
        env = "WEBSENTRY_KAFKA_TIMEOUT",
        default_value_t = TIMEOUT.default_text(),
        value_name = "SECONDS",
        help = TIMEOUT.help("Seconds to keep retrying an unreachable broker before giving up, and the longest one produce request may take")
    )]
    pub kafka_timeout: String,
}

/// Checked Kafka settings: everything needed to connect, nothing left to fail on but the network.
#[derive(Clone)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `HOST:PORT`, tried in turn.
    pub brokers: Vec<String>,
    /// The topic of the reports.
    pub topic: String,
    /// How long an unreachable broker is retried before giving up.
    pub timeout: Duration,
    /// The CA, the client certificate and its key, loaded and checked.
    pub(super) tls: Arc<rustls::ClientConfig>,
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

impl TryFrom<&KafkaArgs> for KafkaSettings {
    type Error = SettingError;

    /// Checks every setting, reads and parses the PEM files.
    ///
    /// # Errors
    /// The first setting that is missing or malformed.
    fn try_from(args: &KafkaArgs) -> Result<Self, SettingError> {
        let brokers = parse_brokers(KafkaArgs::setting("kafka_hosts").required(args.kafka_hosts.as_deref())?)?;
        let topic = parse_topic(&args.kafka_topic)?;
        let timeout = TIMEOUT.duration(&KafkaArgs::setting("kafka_timeout"), &args.kafka_timeout)?;
        let (ca, cert, key) =
            (KafkaArgs::setting("kafka_cafile"), KafkaArgs::setting("kafka_certfile"), KafkaArgs::setting("kafka_key"));
        let ca_path = ca.readable_file(args.kafka_cafile.as_deref())?;
        let cert_path = cert.readable_file(args.kafka_certfile.as_deref())?;
        let key_path = key.readable_file(args.kafka_key.as_deref())?;
        let tls =
            mutual_tls_config(&MutualTlsFiles { ca: (&ca_path, ca), cert: (&cert_path, cert), key: (&key_path, key) })?;
        Ok(KafkaSettings { brokers, topic, timeout, tls: Arc::new(tls) })
    }
}

/// `HOST:PORT,HOST:PORT`, strictly: a stray space would otherwise pass here and fail only when the
/// connection times out, long after start.
fn parse_brokers(value: &str) -> Result<Vec<String>, SettingError> {
    if value.trim().is_empty() {
        return Err(KafkaArgs::setting("kafka_hosts").error("is set but empty"));
    }
    value.split(',').map(parse_broker).collect()
}

fn parse_broker(broker: &str) -> Result<String, SettingError> {
    if broker.is_empty() {
        return Err(KafkaArgs::setting("kafka_hosts").error("has an empty entry between commas"));
    }
    let problem = |what: String| KafkaArgs::setting("kafka_hosts").error(format!("broker {}: {what}", quoted(broker)));
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
        return Err(KafkaArgs::setting("kafka_topic")
            .error(format!("'{value}' is not a legal topic name (1 to 249 of a-z A-Z 0-9 . _ -)")));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            kafka_hosts: Some("a:1".into()),
            kafka_cafile: Some("/nonexistent/ca.crt".into()),
            kafka_certfile: None,
            kafka_key: None,
            kafka_topic: "sitecheck".into(),
            kafka_timeout: timeout.into(),
        };
        for bad in ["0", "3601", "18446744073709551615", "soon"] {
            let err = KafkaSettings::try_from(&args(bad)).expect_err(bad).to_string();
            assert!(err.starts_with("WEBSENTRY_KAFKA_TIMEOUT (--kafka-timeout): "), "{bad}: {err}");
            assert!(err.contains("expected 1 to 3600 seconds"), "{bad}: {err}");
        }
        let err = KafkaSettings::try_from(&args("3600")).unwrap_err().to_string();
        assert!(err.starts_with("WEBSENTRY_KAFKA_CAFILE"), "3600 s is accepted, the next setting fails: {err}");
    }

    #[test]
    fn an_empty_path_is_named_like_any_other_setting() {
        let args = KafkaArgs {
            kafka_hosts: Some("a:1".into()),
            kafka_cafile: Some("".into()),
            kafka_certfile: None,
            kafka_key: None,
            kafka_topic: "sitecheck".into(),
            kafka_timeout: "30".into(),
        };
        assert_eq!(
            KafkaSettings::try_from(&args).unwrap_err().to_string(),
            "WEBSENTRY_KAFKA_CAFILE (--kafka-cafile): is set but empty"
        );
    }

    #[test]
    fn topic_names_are_checked() {
        assert!(parse_topic("sitecheck").is_ok());
        for bad in ["", "a b", "ä", ".."] {
            assert!(parse_topic(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
