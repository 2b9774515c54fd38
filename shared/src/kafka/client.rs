//! The rskafka client built from [`KafkaSettings`], and the errors of using it.

use std::{sync::Arc, time::Duration};

use rskafka::{
    client::{Client, ClientBuilder},
    BackoffConfig,
};

use super::KafkaSettings;

/// The longest one bootstrap broker is given to answer before the next in the list is tried.
pub const BROKER_ATTEMPT: Duration = Duration::from_secs(5);

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
