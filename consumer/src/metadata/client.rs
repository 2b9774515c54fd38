//! Asking brokers for a topic's metadata: one Metadata v12 request per call on one mutual-TLS
//! connection, kept open between calls and opened again after any failure. Each broker gets its own
//! deadline, so one that accepts TCP and never answers does not stop the next one being tried.

use std::{fmt, future::Future, time::Duration};

use rustls::pki_types::ServerName;
use tokio::{io::AsyncWriteExt, net::TcpStream, time::Instant};
use tokio_rustls::{client::TlsStream, TlsConnector};
use websentry_shared::kafka::KafkaSettings;

use crate::metadata::wire::{decode_response, encode_request, read_frame, DecodeError, TopicEntry, TopicMetadata};

const CLIENT_ID: &str = "websentry-consumer";
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// The longest a broker may take to connect, shake hands and answer, or to answer on an open
/// connection (less if `WEBSENTRY_KAFKA_TIMEOUT` is shorter).
pub const MAX_ATTEMPT: Duration = Duration::from_secs(5);

/// Why a metadata request failed. Names the broker and the step, never key material.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("broker '{broker}' has no host name usable for TLS")]
    ServerName { broker: String },
    #[error("{step} failed (broker {broker})")]
    Io {
        broker: String,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the {limit:?} deadline passed during {step} (broker {broker})")]
    Timeout { broker: String, step: &'static str, limit: Duration },
    #[error("unreadable metadata answer from broker {broker}")]
    Malformed {
        broker: String,
        #[source]
        source: DecodeError,
    },
    #[error("broker {broker} answers error code {code} for topic '{topic}'")]
    Topic { broker: String, topic: String, code: i16 },
    /// Every broker failed; `last` says how the last one did (the others are logged at debug).
    #[error("no broker of '{brokers}' answered the metadata request")]
    NoBroker {
        brokers: String,
        #[source]
        last: Option<Box<MetadataError>>,
    },
}

/// Asks brokers for topic metadata over one reused mutual-TLS connection.
pub struct MetadataClient {
    /// The brokers to ask and the mutual-TLS configuration.
    settings: KafkaSettings,
    /// The open connection, reused until it fails; `None` before the first request or after a failure.
    connection: Option<Connection>,
    /// The id of the last request, checked against each answer.
    correlation_id: i32,
}

struct Connection {
    broker: String,
    stream: TlsStream<TcpStream>,
}

impl fmt::Debug for MetadataClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataClient")
            .field("brokers", &self.settings.brokers)
            .field("connected_to", &self.connection.as_ref().map(|c| &c.broker))
            .finish_non_exhaustive()
    }
}

impl MetadataClient {
    /// A client that connects on first use.
    pub fn new(settings: KafkaSettings) -> Self {
        Self { settings, connection: None, correlation_id: 0 }
    }

    /// The id and partitions of `topic`, or `None` when the broker does not know it. Never creates
    /// the topic. Tries the open connection first, then each broker in order, each within
    /// [`MAX_ATTEMPT`] (or the Kafka timeout if shorter): a call ends within (brokers + 1) times that.
    ///
    /// # Errors
    /// No broker answered in time or readably ([`MetadataError::NoBroker`]), or the broker answered
    /// an error other than "unknown topic" for it ([`MetadataError::Topic`]).
    #[tracing::instrument(skip_all, fields(topic = %topic))]
    pub async fn topic(&mut self, topic: &str) -> Result<Option<TopicMetadata>, MetadataError> {
        let limit = self.settings.timeout.min(MAX_ATTEMPT);
        if let Some(mut connection) = self.connection.take() {
            let correlation_id = next_correlation_id(&mut self.correlation_id);
            match connection.ask(topic, correlation_id, Instant::now() + limit, limit).await {
                Ok(entry) => {
                    let outcome = outcome(entry, &connection.broker, topic);
                    self.connection = Some(connection);
                    return outcome;
                }
                Err(err) => tracing::debug!(cause = %err, "metadata connection lost, connecting again"),
            }
        }
        let mut last = None;
        for broker in &self.settings.brokers {
            let correlation_id = next_correlation_id(&mut self.correlation_id);
            let deadline = Instant::now() + limit;
            let tls = TlsConnector::from(self.settings.tls_config());
            let attempt = async {
                let mut connection = Connection::open(broker, &tls, deadline, limit).await?;
                let entry = connection.ask(topic, correlation_id, deadline, limit).await?;
                Ok::<_, MetadataError>((connection, entry))
            };
            match attempt.await {
                Ok((connection, entry)) => {
                    let outcome = outcome(entry, broker, topic);
                    self.connection = Some(connection);
                    return outcome;
                }
                Err(err) => {
                    tracing::debug!(broker = %broker, cause = %err, "broker did not answer metadata");
                    last = Some(Box::new(err));
                }
            }
        }
        Err(MetadataError::NoBroker { brokers: self.settings.brokers.join(","), last })
    }
}

fn next_correlation_id(last: &mut i32) -> i32 {
    *last = last.wrapping_add(1);
    *last
}

impl Connection {
    async fn open(broker: &str, tls: &TlsConnector, deadline: Instant, limit: Duration) -> Result<Self, MetadataError> {
        let host = broker.rsplit_once(':').map_or(broker, |(host, _)| host);
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| MetadataError::ServerName { broker: broker.to_owned() })?;
        let step = Step { broker, deadline, limit };
        let tcp = step.run("connecting over TCP", TcpStream::connect(broker)).await?;
        tcp.set_nodelay(true).map_err(|source| step.io("connecting over TCP", source))?;
        let stream = step.run("TLS handshake", tls.connect(name, tcp)).await?;
        Ok(Self { broker: broker.to_owned(), stream })
    }

    /// Sends one request for `topic` and reads its answer, all before `deadline`.
    async fn ask(
        &mut self,
        topic: &str,
        correlation_id: i32,
        deadline: Instant,
        limit: Duration,
    ) -> Result<TopicEntry, MetadataError> {
        let step = Step { broker: &self.broker, deadline, limit };
        let request = encode_request(correlation_id, CLIENT_ID, topic);
        let stream = &mut self.stream;
        step.run("sending the metadata request", async {
            stream.write_all(&request).await?;
            stream.flush().await
        })
        .await?;
        let frame = match step.run("reading the metadata answer", read_frame(stream)).await? {
            Ok(frame) => frame,
            Err(source) => return Err(MetadataError::Malformed { broker: self.broker.clone(), source }),
        };
        decode_response(&frame, correlation_id, topic)
            .map_err(|source| MetadataError::Malformed { broker: self.broker.clone(), source })
    }
}

/// One step of talking to a broker, bounded by the attempt's deadline.
struct Step<'a> {
    broker: &'a str,
    deadline: Instant,
    limit: Duration,
}

impl Step<'_> {
    async fn run<T>(
        &self,
        step: &'static str,
        work: impl Future<Output = std::io::Result<T>>,
    ) -> Result<T, MetadataError> {
        match tokio::time::timeout_at(self.deadline, work).await {
            Ok(outcome) => outcome.map_err(|source| self.io(step, source)),
            Err(_) => Err(MetadataError::Timeout { broker: self.broker.to_owned(), step, limit: self.limit }),
        }
    }

    fn io(&self, step: &'static str, source: std::io::Error) -> MetadataError {
        MetadataError::Io { broker: self.broker.to_owned(), step, source }
    }
}

/// What the broker's entry for the topic means: its metadata, `None` for "unknown topic", or an
/// error for any other code.
fn outcome(entry: TopicEntry, broker: &str, topic: &str) -> Result<Option<TopicMetadata>, MetadataError> {
    match entry.error_code {
        0 => Ok(Some(entry.metadata)),
        UNKNOWN_TOPIC_OR_PARTITION => Ok(None),
        code => Err(MetadataError::Topic { broker: broker.to_owned(), topic: topic.to_owned(), code }),
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn entry(error_code: i16, partitions: Vec<i32>) -> TopicEntry {
        TopicEntry { error_code, metadata: TopicMetadata { id: Some(Uuid::from_u128(7)), partitions } }
    }

    #[test]
    fn a_topic_without_error_gives_its_metadata() {
        let found = outcome(entry(0, vec![0, 1, 2]), "b:1", "t1").expect("no error");

        assert_eq!(found.map(|m| m.partitions.len()), Some(3));
    }

    #[test]
    fn an_unknown_topic_gives_none() {
        assert_eq!(outcome(entry(3, vec![]), "b:1", "nope").expect("not an error"), None);
    }

    #[test]
    fn other_topic_error_codes_are_errors_naming_the_broker_and_topic() {
        let err = outcome(entry(5, vec![]), "kafka-1:9093", "t1").expect_err("error 5 is an error");

        assert_eq!(err.to_string(), "broker kafka-1:9093 answers error code 5 for topic 't1'");
    }
}
