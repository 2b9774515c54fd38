//! Writing batches: reports, rejected records and the partition's next offset, in one transaction
//! with the rollups they add ([`Span`]: one batch, or several merged once).

use anyhow::Context;
use std::collections::HashSet;

use postgres::{Client, GenericClient, Statement, Transaction};
use uuid::Uuid;

use crate::{
    batch::{Archivable, Batch, Origin, Rejected},
    insert, keeper,
    metrics::Metrics,
    rollup, storable,
    upkeep::{self, Retention},
};

/// What the database holds of a partition's reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The offset to read from next.
    pub next_offset: i64,
    /// The id of the topic the offset was stored for; `None` when stored before schema version 3.
    pub topic_id: Option<Uuid>,
}

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Rows and offset are in; `archived` new reports (duplicates by `id` are not counted), and
    /// `past_retention` reports older than the raw retention, counted in the rollups only.
    Done { archived: u64, rejected: u64, past_retention: u64 },
    /// The stored offset was not where this batch started: another consumer moved it. Nothing was
    /// written; read the offset again.
    Moved,
}

/// The database side of the consumer; owns the connection.
pub struct Archiver {
    /// The consumer's one connection: batches, offsets and the partition locks of its session.
    client: Client,
    retention: Retention,
    /// The statements every batch runs, prepared on `client` at its first transaction.
    prepared: Option<Prepared>,
}

/// Statements prepared once per connection: a batch then sends each in one round trip.
struct Prepared {
    copy: Statement,
    advance: Statement,
}

impl std::fmt::Debug for Archiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archiver").finish_non_exhaustive()
    }
}

const INSERT_REJECTED: &str = "
    INSERT INTO rejected_messages (kafka_topic, kafka_topic_id, kafka_partition, kafka_offset, key, payload, reason)
    SELECT $1, coalesce($7, '00000000-0000-0000-0000-000000000000'::uuid), $2, r.kafka_offset, r.key, r.payload, r.reason
    FROM UNNEST($3::int8[], $4::bytea[], $5::bytea[], $6::text[]) AS r(kafka_offset, key, payload, reason)
    ON CONFLICT DO NOTHING";

/// Moves the offset only from where this batch started (compare-and-set).
const ADVANCE_OFFSET: &str = "
    INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, topic_id)
    VALUES ($1, $2, $3, $4, $6)
    ON CONFLICT (consumer_group, topic, partition)
    DO UPDATE SET next_offset = EXCLUDED.next_offset, topic_id = EXCLUDED.topic_id, updated_at = now()
    WHERE consumer_offsets.next_offset = $5";

impl Archiver {
    pub fn new(client: Client, retention: Retention) -> Self {
        Self { client, retention, prepared: None }
    }

    /// The connection, for the partition locks that live in its session (see `lease`).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// One turn of upkeep (see `upkeep`), logged and counted. A failure is not fatal: a day
    /// without its partition only sends its reports to the default partition, where none is lost,
    /// and the next turn tries again.
    pub fn upkeep(&mut self, metrics: &Metrics) {
        let today = time::OffsetDateTime::now_utc().date();
        match upkeep::run(&mut self.client, self.retention, today) {
            Ok(done) if done.skipped => tracing::debug!("upkeep skipped: another replica is doing it"),
            Ok(done) => {
                metrics.record_upkeep(
                    done.created.len() as u64,
                    done.dropped.len() as u64,
                    u64::try_from(done.rollup_rows_expired).unwrap_or(0),
                    true,
                );
                tracing::info!(
                    created = ?done.created,
                    hourly_created = ?done.hourly_created,
                    hourly_dropped = ?done.hourly_dropped,
                    dropped = ?done.dropped,
                    postponed = ?done.postponed,
                    rollup_rows_expired = done.rollup_rows_expired,
                    hours_expired = ?done.hours_expired,
                    "archive upkeep done"
                );
                metrics.set_default_rows(done.waiting);
                if done.expiry_cut_short {
                    tracing::info!(
                        days = done.hours_expired.len(),
                        "more days of hourly rollups may be past their retention: expired next turn"
                    );
                }
                if done.creation_cut_short {
                    tracing::info!(
                        created = done.created.len(),
                        hourly_created = done.hourly_created.len(),
                        "more day partitions may be due: created next turn"
                    );
                }
                if done.waiting > 0 {
                    tracing::warn!(
                        reports = done.waiting,
                        late_days = upkeep::LATE_DAYS,
                        days_ahead = upkeep::DAYS_AHEAD,
                        "reports wait in the default partition: dated too far from today for a day partition (a producer's clock?) or not moved yet; each day created scans them"
                    );
                }
                if done.hourly_drop_postponed {
                    tracing::warn!("expired days of hourly rollups not dropped yet: rollup_hourly was busy, trying again next turn");
                }
                if !done.postponed.is_empty() {
                    tracing::warn!(days = ?done.postponed, "old days not dropped yet: their locks were busy, trying again next turn");
                }
            }
            Err(err) => {
                metrics.record_upkeep(0, 0, 0, false);
                let cause = websentry_shared::exit::one_line(&err);
                tracing::error!(cause = %cause, "archive upkeep failed, archiving goes on (late days wait in the default partition)");
            }
        }
    }

    /// One turn at the kept window answers on the archiving connection (a one-off run; a daemon
    /// sums them on a connection of its own, see `keeper`), logged and counted.
    pub fn keep_windows(&mut self, metrics: &Metrics) {
        keeper::turn(&mut self.client, metrics);
    }

    /// What is stored of a partition, `None` before its first commit.
    ///
    /// # Errors
    /// The query failed.
    pub fn stored(&mut self, at: Origin<'_>) -> anyhow::Result<Option<Stored>> {
        stored(&mut self.client, at)
    }

    /// Stores that the partition is read from `next_offset` of the topic `at.topic_id`, if the
    /// stored offset is still `from`: after the topic was created again, before anything of it is
    /// archived. Returns false when another consumer moved it meanwhile.
    ///
    /// # Errors
    /// The query failed.
    pub fn restart_at(&mut self, at: Origin<'_>, from: i64, next_offset: i64) -> anyhow::Result<bool> {
        let moved = self
            .client
            .execute(ADVANCE_OFFSET, &[&at.group, &at.topic, &at.partition, &next_offset, &from, &at.topic_id])
            .context("storing the offset of the new topic")?;
        Ok(moved == 1)
    }

    /// Writes the batch fetched from `from` and moves the partition's offset past it, all or
    /// nothing, in a transaction of its own. Reports the database refuses for their data are kept
    /// as rejected records with its message, and the rest of the batch is archived (see
    /// [`insert_isolating`]).
    ///
    /// # Errors
    /// The database failed; nothing of the batch is kept.
    pub fn commit(&mut self, at: Origin<'_>, from: i64, batch: &Batch) -> anyhow::Result<Committed> {
        let mut span = self.begin()?;
        match span.add(at, from, batch)? {
            Committed::Moved => {
                span.rollback()?;
                Ok(Committed::Moved)
            }
            done => span.commit().map(|_| done),
        }
    }

    /// Opens a transaction that batches are added to, one after the other, until it commits: a
    /// one-off run catching up writes several fetches in one (see `session::drain`), and merges
    /// their rollups once.
    ///
    /// # Errors
    /// The database failed.
    pub fn begin(&mut self) -> anyhow::Result<Span<'_>> {
        if self.prepared.is_none() {
            let copy = insert::prepare_copy(&mut self.client).context("preparing the COPY of reports")?;
            let advance = self.client.prepare(ADVANCE_OFFSET).context("preparing the offset's update")?;
            self.prepared = Some(Prepared { copy, advance });
        }
        let Some(prepared) = &self.prepared else { unreachable!("prepared above") };
        let tx = self.client.transaction().context("starting a transaction")?;
        // A report older than the raw retention would land in a day already dropped (or about to
        // be): it goes into the rollups only.
        let kept_from = self.retention.raw_kept_from(time::OffsetDateTime::now_utc());
        Ok(Span {
            tx,
            prepared,
            kept_from,
            tally: rollup::Tally::default(),
            past: HashSet::new(),
            refused: Vec::new(),
            records: 0,
            archived: 0,
            rejected: 0,
        })
    }
}

/// An open transaction of the archive: the batches added to it (raw rows, rejected records,
/// offsets) are written as they come, the rollups they add are summed here and merged when it
/// commits. Nothing of it is kept unless it commits; dropped, it rolls back.
pub struct Span<'c> {
    tx: Transaction<'c>,
    prepared: &'c Prepared,
    /// Reports checked before this go into the rollups only (see `Retention::raw_kept_from`).
    kept_from: Option<time::OffsetDateTime>,
    /// The rollups of the reports written.
    tally: rollup::Tally,
    /// The reports past the raw retention counted so far: without a raw row to be recognised by,
    /// a repeat within the transaction is left out by this.
    past: HashSet<(uuid::Uuid, time::OffsetDateTime)>,
    /// Reports the database refused, logged once committed: (partition, offset, reason).
    refused: Vec<(i32, i64, String)>,
    records: usize,
    archived: u64,
    rejected: u64,
}

impl std::fmt::Debug for Span<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Span")
            .field("records", &self.records)
            .field("rollups", &self.tally.len())
            .finish_non_exhaustive()
    }
}

/// What a span wrote, once committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub archived: u64,
    pub rejected: u64,
}

impl Span<'_> {
    /// Records added so far (reports and rejected ones).
    pub fn records(&self) -> usize {
        self.records
    }

    /// Rollup rows the commit will merge.
    pub fn rollup_rows(&self) -> usize {
        self.tally.len()
    }

    /// Adds the batch fetched from `from`: its reports, its rejected records, and the partition's
    /// offset moved past it if the stored one is still `from`. When it is not (another consumer
    /// moved it), nothing of this batch is kept and the span goes on without it.
    ///
    /// # Errors
    /// The database failed; the span is then unusable, and nothing of it is kept.
    pub fn add(&mut self, at: Origin<'_>, from: i64, batch: &Batch) -> anyhow::Result<Committed> {
        let kept_from = self.kept_from;
        let too_old = |r: &&Archivable| kept_from.is_some_and(|from| r.report.checked_at < from);
        let mut keys = HashSet::new();
        let past_here: Vec<_> = (batch.reports.iter().filter(too_old))
            .map(|report| (insert::stored_key(&report.report), report))
            .filter(|(key, _)| !self.past.contains(key) && keys.insert(*key))
            .collect();
        // Every report past the retention is left out of the raw rows, also a repeat of one an
        // earlier batch of this transaction counted (it is not in `past_here`).
        let recent: std::borrow::Cow<[Archivable]> = match !batch.reports.iter().any(|r| too_old(&r)) {
            true => std::borrow::Cow::Borrowed(&batch.reports),
            false => batch.reports.iter().filter(|r| !too_old(r)).cloned().collect(),
        };
        // Under a savepoint: a batch whose offset moved is taken back alone.
        let mut tx = self.tx.savepoint("batch").context("starting a savepoint")?;
        let mut refused = Vec::new();
        let mut new = Vec::with_capacity(recent.len());
        // The reports first: a refusal rolls back to the savepoint, which holds nothing else yet.
        let copy = Some(&self.prepared.copy);
        insert_isolating(&mut tx, "batch", copy, at, &recent, &mut refused, &mut new)?;
        let rejected = insert_rejected(&mut tx, at, batch.rejected.iter().chain(&refused))?;
        let advance = &self.prepared.advance;
        let moved = tx
            .execute(advance, &[&at.group, &at.topic, &at.partition, &batch.next_offset, &from, &at.topic_id])
            .context("advancing the offset")?;
        if moved == 0 {
            tx.rollback().context("rolling back to the savepoint")?;
            return Ok(Committed::Moved);
        }
        tx.commit().context("releasing the savepoint")?;
        for report in new.iter().map(|r| &r.report).chain(past_here.iter().map(|(_, r)| &r.report)) {
            self.tally.add(report);
        }
        let past_retention = past_here.len() as u64;
        self.past.extend(past_here.into_iter().map(|(key, _)| key));
        self.refused.extend(refused.into_iter().map(|r| (at.partition, r.offset, r.reason)));
        self.records += batch.reports.len() + batch.rejected.len();
        self.archived += new.len() as u64;
        self.rejected += rejected;
        Ok(Committed::Done { archived: new.len() as u64, rejected, past_retention })
    }

    /// What is stored of a partition, as this transaction sees it.
    ///
    /// # Errors
    /// The query failed.
    pub fn stored(&mut self, at: Origin<'_>) -> anyhow::Result<Option<Stored>> {
        stored(&mut self.tx, at)
    }

    /// Merges the rollups of everything added and commits.
    ///
    /// # Errors
    /// The database failed; nothing of the span is kept.
    pub fn commit(mut self) -> anyhow::Result<Totals> {
        rollup::write(&mut self.tx, &self.tally.into_rows())?;
        self.tx.commit().context("committing the batch")?;
        for (partition, offset, reason) in &self.refused {
            tracing::warn!(partition, offset, reason = %reason, "report refused by the database, kept as rejected");
        }
        Ok(Totals { archived: self.archived, rejected: self.rejected })
    }

    /// Keeps nothing of the span.
    ///
    /// # Errors
    /// The database failed (nothing is kept either way).
    pub fn rollback(self) -> anyhow::Result<()> {
        self.tx.rollback().context("rolling back")
    }
}

/// What is stored of a partition, `None` before its first commit.
fn stored(client: &mut impl GenericClient, at: Origin<'_>) -> anyhow::Result<Option<Stored>> {
    let row = client
        .query_opt(
            "SELECT next_offset, topic_id FROM consumer_offsets
             WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
            &[&at.group, &at.topic, &at.partition],
        )
        .context("reading the stored offset")?;
    Ok(row.map(|row| Stored { next_offset: row.get(0), topic_id: row.get(1) }))
}

/// Inserts `reports` in the savepoint `savepoint` that `tx` is in and holds nothing written yet,
/// adding those that were new to `new`. When the database refuses them for their data (not for a
/// lost connection), the savepoint is rolled back to and the batch split in halves, each under a
/// savepoint of its own, until the refused reports are found; each one goes to `refused` with the
/// database's message and the others are inserted. Costs the look-up and the `COPY` when nothing is
/// refused, and about `2 log2(n)` statements per refused report.
///
/// # Errors
/// The database failed for another reason than the data.
fn insert_isolating<'r>(
    tx: &mut Transaction<'_>,
    savepoint: &str,
    copy: Option<&Statement>,
    at: Origin<'_>,
    reports: &'r [Archivable],
    refused: &mut Vec<Rejected>,
    new: &mut Vec<&'r Archivable>,
) -> anyhow::Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let error = match insert::insert_reports(tx, savepoint, copy, at.topic, at.partition, reports) {
        Ok(inserted) => {
            new.extend(inserted);
            return Ok(());
        }
        Err(err) => err,
    };
    let Some(refusal) = data_refusal(&error) else { return Err(error) };
    tx.batch_execute(&format!("ROLLBACK TO SAVEPOINT {savepoint}")).context("rolling back to the savepoint")?;
    if let [report] = reports {
        refused.push(Rejected {
            offset: report.offset,
            key: report.key.clone(),
            payload: Some(report.payload.clone()),
            reason: storable::reason_text(&format!("refused by the database: {refusal}")),
        });
        return Ok(());
    }
    for half in reports.chunks(reports.len().div_ceil(2)) {
        let mut attempt = tx.savepoint("isolate").context("starting a savepoint")?;
        insert_isolating(&mut attempt, "isolate", copy, at, half, refused, new)?;
        attempt.commit().context("releasing the savepoint")?;
    }
    Ok(())
}

/// The database's message when `error` is a refusal of the data itself (SQLSTATE classes 22 data
/// exception, 23 integrity constraint violation, 54 program limit exceeded, such as an index row
/// too large), which retrying would only repeat; `None` for anything else (connection lost, server
/// shutting down…), which is retried.
fn data_refusal(error: &anyhow::Error) -> Option<String> {
    let db = error.chain().find_map(|cause| cause.downcast_ref::<postgres::Error>())?.as_db_error()?;
    let class = &db.code().code()[..2];
    matches!(class, "22" | "23" | "54").then(|| format!("{} ({})", db.message(), db.code().code()))
}

fn insert_rejected<'r>(
    tx: &mut Transaction<'_>,
    at: Origin<'_>,
    rejected: impl Iterator<Item = &'r Rejected>,
) -> anyhow::Result<u64> {
    let (mut offsets, mut keys, mut payloads, mut reasons) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for record in rejected {
        offsets.push(record.offset);
        keys.push(record.key.as_deref());
        payloads.push(record.payload.as_deref());
        reasons.push(record.reason.as_str());
    }
    if offsets.is_empty() {
        return Ok(0);
    }
    tx.execute(INSERT_REJECTED, &[&at.topic, &at.partition, &offsets, &keys, &payloads, &reasons, &at.topic_id])
        .context("keeping rejected records")
}
