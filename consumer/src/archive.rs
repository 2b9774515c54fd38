//! Writing batches: reports, rejected records and the partition's next offset, in one transaction.

use anyhow::Context;
use postgres::Client;

use crate::batch::Batch;

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
}

impl std::fmt::Debug for Archiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archiver").finish_non_exhaustive()
    }
}

const INSERT_REPORTS: &str = "
    INSERT INTO reports (id, url, code, response_ms, regexp_match, checked_at, probe, error_kind,
                         error_message, http_version, body_bytes, report, kafka_topic, kafka_partition,
                         kafka_offset)
    SELECT r.id, r.url, r.code, r.response_ms, r.regexp_match, r.checked_at, r.probe, r.error_kind,
           r.error_message, r.http_version, r.body_bytes, r.report::jsonb, $13, $14, r.kafka_offset
    FROM UNNEST($1::uuid[], $2::text[], $3::int4[], $4::float8[], $5::text[], $6::timestamptz[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::int8[], $12::text[], $15::int8[])
         AS r(id, url, code, response_ms, regexp_match, checked_at, probe, error_kind, error_message,
              http_version, body_bytes, report, kafka_offset)
    ON CONFLICT (id) DO NOTHING";

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
    pub fn new(client: Client) -> Self {
        Self { client }
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
        let archived = if batch.reports.is_empty() {
            0
        } else {
            let r = &batch.reports;
            let ids: Vec<_> = r.iter().map(|a| a.report.id).collect();
            let urls: Vec<_> = r.iter().map(|a| a.report.url.as_str()).collect();
            let codes: Vec<_> = r.iter().map(|a| i32::from(a.report.code)).collect();
            let times: Vec<_> = r.iter().map(|a| a.report.response_ms).collect();
            let matches: Vec<_> = r.iter().map(|a| a.report.regexp_match.as_deref()).collect();
            let checked: Vec<_> = r.iter().map(|a| a.report.checked_at).collect();
            let probes: Vec<_> = r.iter().map(|a| a.report.probe.as_str()).collect();
            let kinds: Vec<_> = r.iter().map(|a| a.report.error.as_ref().map(|e| e.kind.as_str())).collect();
            let messages: Vec<_> = r.iter().map(|a| a.report.error.as_ref().map(|e| e.message.as_str())).collect();
            let versions: Vec<_> = r.iter().map(|a| a.report.http_version.as_deref()).collect();
            let bytes: Vec<_> = r.iter().map(|a| a.report.body_bytes.map(|b| b as i64)).collect();
            let docs: Vec<_> = r.iter().map(|a| a.json.as_str()).collect();
            let offsets: Vec<_> = r.iter().map(|a| a.offset).collect();
            tx.execute(
                INSERT_REPORTS,
                &[
                    &ids,
                    &urls,
                    &codes,
                    &times,
                    &matches,
                    &checked,
                    &probes,
                    &kinds,
                    &messages,
                    &versions,
                    &bytes,
                    &docs,
                    &at.topic,
                    &at.partition,
                    &offsets,
                ],
            )
            .context("inserting reports")?
        };
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
