//! What a session holds: one connection to each service, the topic as it was when the session
//! started, and its table of partitions. The jobs of a session (claims, the one-off drain, the
//! daemon's poll, writing batches) are functions of this state, each in a file of its own.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::runtime::Runtime;
use uuid::Uuid;
use websentry_shared::shutdown::Shutdown;

use crate::{
    archive::Archiver,
    batch::Origin,
    bridge,
    fetch::Source,
    metadata::MetadataClient,
    metrics::Metrics,
    partitions::PartitionTable,
    session::{
        claims::Slot,
        outcome::{on, Interrupted, Service},
    },
    settings::Config,
};

/// The state of a session: both connections, the topic and its partitions.
pub struct Session<'a> {
    pub(super) config: &'a Config,
    /// Where the Kafka side runs; the database side blocks on this thread.
    pub(super) runtime: &'a Runtime,
    /// Checked between batches and around every Kafka wait.
    pub(super) shutdown: Shutdown,
    /// Shared with the HTTP endpoint.
    pub(super) metrics: Arc<Metrics>,
    /// Asks the broker for the topic's id and partitions (a daemon: every 1.5 s).
    pub(super) metadata: MetadataClient,
    /// The topic's id when the session started; another id means the topic was created again.
    pub(super) topic_id: Option<Uuid>,
    /// The partition clients, shared with prefetch tasks.
    pub(super) source: Arc<Source>,
    /// The database connection, which also holds the partition locks.
    pub(super) archiver: Archiver,
    /// What this replica knows of each partition.
    pub(super) table: PartitionTable,
    /// Which of them this writer may claim (a one-off run may write with several connections).
    pub(super) slot: Slot,
    /// The longest one Kafka request is waited for before the broker counts as gone.
    pub(super) request_deadline: Duration,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("topic_id", &self.topic_id).field("table", &self.table).finish_non_exhaustive()
    }
}

/// What writing and fetching need of a session besides the connection and the table, borrowed
/// apart from them (see [`Session::split`]): a transaction open on the connection then leaves
/// the rest usable.
pub(super) struct Parts<'s> {
    pub(super) config: &'s Config,
    pub(super) runtime: &'s Runtime,
    pub(super) shutdown: &'s Shutdown,
    pub(super) metrics: &'s Metrics,
    pub(super) source: &'s Arc<Source>,
    pub(super) topic_id: Option<Uuid>,
    pub(super) request_deadline: Duration,
}

impl Parts<'_> {
    /// As [`Session::kafka`].
    pub(super) fn kafka<T, E: std::error::Error + Send + Sync + 'static>(
        &self,
        wait: Duration,
        request: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Interrupted> {
        bridge::within(self.runtime, self.shutdown, wait + self.request_deadline, request).map_err(on(Service::Kafka))
    }

    /// Where partition `id`'s records come from: what decoding them needs (see `batch::sort`).
    pub(super) fn origin(&self, id: i32) -> Origin<'_> {
        Origin { group: &self.config.group, topic: self.source.topic(), topic_id: self.topic_id, partition: id }
    }
}

impl Session<'_> {
    /// The session taken apart: the connection, the table, and the rest.
    pub(super) fn split(&mut self) -> (Parts<'_>, &mut Archiver, &mut PartitionTable) {
        let Session { config, runtime, shutdown, metrics, source, topic_id, archiver, table, request_deadline, .. } =
            self;
        let parts = Parts {
            config,
            runtime,
            shutdown,
            metrics,
            source,
            topic_id: *topic_id,
            request_deadline: *request_deadline,
        };
        (parts, archiver, table)
    }

    /// Runs a Kafka request on the runtime, ending it after `wait` plus the request deadline (the
    /// broker counts as lost) or on shutdown.
    ///
    /// # Errors
    /// The request failed or timed out, or shutdown came first: Kafka is counted as lost.
    pub(super) fn kafka<T, E: std::error::Error + Send + Sync + 'static>(
        &self,
        wait: Duration,
        request: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Interrupted> {
        bridge::within(self.runtime, &self.shutdown, wait + self.request_deadline, request).map_err(on(Service::Kafka))
    }

    /// The next offset to fetch of partition `id`.
    pub(super) fn offset(&self, id: i32) -> i64 {
        self.table.offset(id)
    }

    /// The topic's name.
    pub(super) fn topic(&self) -> &str {
        self.source.topic()
    }

    /// Which partitions this session's writer claims, and of how many writers.
    pub fn slot(&self) -> Slot {
        self.slot
    }
}
