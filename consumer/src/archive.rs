//! Writing batches: reports, rejected records and the partition's next offset, in one transaction.

use anyhow::Context;
use postgres::Client;

use crate::{
    batch::Batch,
    insert::{self, Method},
};

/// The insert method of the consumer, chosen by measuring all three (see `insert`).
pub const FASTEST: Method = Method::Copy;

/// Where a batch came from and who read it.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    pub group: &'a str,
    pub topic: &'a str,
    pub partition: i32,
}

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Rows and offset are in; `archived` new reports (duplicates by `id` are not counted).
    Done { archived: u64, rejected: u64 },
    /// The stored offset was not where this batch started: another consumer moved it. Nothing was
    /// written; read the offset again.
    Moved,
}

/// The database side of the consumer; owns the connection.
pub struct Archiver {
    client: Client,
    method: Method,
}

impl std::fmt::Debug for Archiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archiver").finish_non_exhaustive()
    }
}

const INSERT_REJECTED: &str = "
    INSERT INTO rejected_messages (kafka_topic, kafka_partition, kafka_offset, key, payload, reason)
    SELECT $1, $2, r.kafka_offset, r.key, r.payload, r.reason
    FROM UNNEST($3::int8[], $4::bytea[], $5::bytea[], $6::text[]) AS r(kafka_offset, key, payload, reason)
    ON CONFLICT DO NOTHING";

/// Moves the offset only from where this batch started (compare-and-set).
const ADVANCE_OFFSET: &str = "
    INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (consumer_group, topic, partition)
    DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
    WHERE consumer_offsets.next_offset = $5";

impl Archiver {
    /// An archiver writing with the fastest measured method, [`FASTEST`].
    pub fn new(client: Client) -> Self {
        Self { client, method: FASTEST }
    }

    /// An archiver writing with `method`, to compare them.
    pub fn with_method(client: Client, method: Method) -> Self {
        Self { client, method }
    }

    /// The connection, for the partition locks that live in its session (see `lease`).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The stored next offset of a partition, `None` before its first commit.
    ///
    /// # Errors
    /// The query failed.
    pub fn next_offset(&mut self, at: Position<'_>) -> anyhow::Result<Option<i64>> {
        let row = self
            .client
            .query_opt(
                "SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
                &[&at.group, &at.topic, &at.partition],
            )
            .context("reading the stored offset")?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Writes the batch fetched from `from` and moves the partition's offset past it, all or
    /// nothing.
    ///
    /// # Errors
    /// The database failed; nothing of the batch is kept.
    pub fn commit(&mut self, at: Position<'_>, from: i64, batch: &Batch) -> anyhow::Result<Committed> {
        let mut tx = self.client.transaction().context("starting a transaction")?;
        let archived = insert::insert_reports(&mut tx, self.method, at.topic, at.partition, &batch.reports)?;
        let rejected = if batch.rejected.is_empty() {
            0
        } else {
            let r = &batch.rejected;
            let offsets: Vec<_> = r.iter().map(|x| x.offset).collect();
            let keys: Vec<_> = r.iter().map(|x| x.key.as_deref()).collect();
            let payloads: Vec<_> = r.iter().map(|x| x.payload.as_deref()).collect();
            let reasons: Vec<_> = r.iter().map(|x| x.reason.as_str()).collect();
            tx.execute(INSERT_REJECTED, &[&at.topic, &at.partition, &offsets, &keys, &payloads, &reasons])
                .context("keeping rejected records")?
        };
        let moved = tx
            .execute(ADVANCE_OFFSET, &[&at.group, &at.topic, &at.partition, &batch.next_offset, &from])
            .context("advancing the offset")?;
        if moved == 0 {
            tx.rollback().context("rolling back")?;
            return Ok(Committed::Moved);
        }
        tx.commit().context("committing the batch")?;
        Ok(Committed::Done { archived, rejected })
    }
}
