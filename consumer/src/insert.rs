//! The writer of reports: binary `COPY` of a batch into `reports`, driven by one table of columns
//! ([`COLUMNS`]): its names, the types the values travel as and where each value comes from.
//!
//! `COPY` has no `ON CONFLICT`: the reports of a batch already archived (a producer's retry) are
//! looked up first and left out, and the rest is copied straight into `reports`. Only when that
//! still hits a unique violation (another writer archived one meanwhile) is the caller's savepoint
//! rolled back and the batch written again through a temporary table and `INSERT … SELECT … ON
//! CONFLICT DO NOTHING RETURNING id`. Either way the caller learns which reports were new: the
//! rollups count only those.
//!
//! `COPY` was chosen by measuring it against a multi-row `INSERT … VALUES` and an `UNNEST` of one
//! array per column; `benches/drain.rs` keeps the `VALUES` writer to compare with.

use std::collections::HashSet;

use anyhow::Context;
use bytes::{BufMut, BytesMut};
use postgres::{
    binary_copy::BinaryCopyInWriter,
    error::SqlState,
    types::{IsNull, ToSql, Type},
    Statement, ToStatement, Transaction,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{batch::Archivable, document};

/// A value of a row, as the driver sends it.
pub type Value<'r> = &'r (dyn ToSql + Sync);

/// A column of `reports` that the writer fills.
#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    /// The type its value is sent as (the column's own type).
    pub ty: Type,
    value: for<'r> fn(&'r Row<'r>) -> Value<'r>,
}

/// Every column the writer fills, in the order the values are sent; `archived_at` takes its default.
pub static COLUMNS: [Column; 30] = [
    Column { name: "checked_at", ty: Type::TIMESTAMPTZ, value: |r| &r.checked_at },
    Column { name: "id", ty: Type::UUID, value: |r| &r.id },
    Column { name: "response_ms", ty: Type::FLOAT8, value: |r| &r.from.report.response_ms },
    Column { name: "timing_dns_ms", ty: Type::FLOAT8, value: |r| &r.from.report.timings_ms.dns },
    Column { name: "timing_connect_ms", ty: Type::FLOAT8, value: |r| &r.from.report.timings_ms.connect },
    Column { name: "timing_tls_ms", ty: Type::FLOAT8, value: |r| &r.from.report.timings_ms.tls },
    Column { name: "timing_ttfb_ms", ty: Type::FLOAT8, value: |r| &r.from.report.timings_ms.ttfb },
    Column { name: "timing_transfer_ms", ty: Type::FLOAT8, value: |r| &r.from.report.timings_ms.transfer },
    Column { name: "tls_expires_at", ty: Type::TIMESTAMPTZ, value: |r| &r.tls_expires_at },
    Column { name: "body_bytes", ty: Type::INT8, value: |r| &r.body_bytes },
    Column { name: "kafka_offset", ty: Type::INT8, value: |r| &r.from.offset },
    Column { name: "code", ty: Type::INT4, value: |r| &r.code },
    Column { name: "redirects", ty: Type::INT4, value: |r| &r.redirects },
    Column { name: "kafka_partition", ty: Type::INT4, value: |r| &r.partition },
    Column { name: "report_version", ty: Type::INT2, value: |r| &r.version },
    Column { name: "checked_at_ns", ty: Type::INT2, value: |r| &r.checked_at_ns },
    Column { name: "url", ty: Type::TEXT, value: |r| &r.from.report.url },
    Column { name: "probe", ty: Type::TEXT, value: |r| &r.from.report.probe },
    Column { name: "error_kind", ty: Type::TEXT, value: |r| &r.error_kind },
    Column { name: "error_message", ty: Type::TEXT, value: |r| &r.error_message },
    Column { name: "http_version", ty: Type::TEXT, value: |r| &r.from.report.http_version },
    Column { name: "regexp_match", ty: Type::TEXT, value: |r| &r.from.report.regexp_match },
    Column { name: "final_url", ty: Type::TEXT, value: |r| &r.final_url },
    Column { name: "kafka_topic", ty: Type::TEXT, value: |r| &r.topic },
    Column { name: "extra", ty: Type::JSONB, value: |r| &r.extra },
    Column { name: "interval_s", ty: Type::INT4, value: |r| &r.interval_s },
    Column { name: "inconclusive", ty: Type::BOOL, value: |r| &r.from.report.inconclusive },
    Column { name: "site_name", ty: Type::TEXT, value: |r| &r.from.report.name },
    Column { name: "site_group", ty: Type::TEXT, value: |r| &r.from.report.group },
    Column { name: "tls_chain_expires_at", ty: Type::TIMESTAMPTZ, value: |r| &r.tls_chain_expires_at },
];

/// The names of [`COLUMNS`], comma-separated, for SQL.
pub fn column_list() -> String {
    COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}

/// One report as a row: the report and the values that are not stored as the report holds them.
#[derive(Debug)]
pub struct Row<'a> {
    from: &'a Archivable,
    id: uuid::Uuid,
    checked_at: OffsetDateTime,
    checked_at_ns: Option<i16>,
    tls_expires_at: Option<OffsetDateTime>,
    tls_chain_expires_at: Option<OffsetDateTime>,
    final_url: Option<&'a str>,
    code: i32,
    error_kind: Option<&'static str>,
    error_message: Option<&'a str>,
    body_bytes: Option<i64>,
    extra: Option<RawJsonb<'a>>,
    topic: &'a str,
    partition: i32,
    redirects: i32,
    version: i16,
    interval_s: Option<i32>,
}

impl<'a> Row<'a> {
    /// The row of `report`, read from `topic`/`partition`.
    pub fn of(report: &'a Archivable, topic: &'a str, partition: i32) -> Self {
        let r = &report.report;
        let (checked_at, checked_at_ns) = document::split_nanos(r.checked_at);
        Row {
            from: report,
            id: r.id,
            checked_at,
            checked_at_ns,
            tls_expires_at: r.tls_expires_at.map(|t| document::split_nanos(t).0),
            tls_chain_expires_at: r.tls_chain_expires_at.map(|t| document::split_nanos(t).0),
            final_url: document::stored_final_url(r),
            code: i32::from(r.code),
            error_kind: r.error.as_ref().map(|e| e.kind.as_str()),
            error_message: r.error.as_ref().map(|e| e.message.as_str()),
            body_bytes: r.body_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
            extra: report.extra.as_deref().map(RawJsonb),
            topic,
            partition,
            redirects: i32::try_from(r.redirects).unwrap_or(i32::MAX),
            version: i16::try_from(r.v).unwrap_or(i16::MAX),
            interval_s: r.interval_s.map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
        }
    }

    /// The row's values in [`COLUMNS`] order.
    pub fn values(&self) -> impl Iterator<Item = Value<'_>> {
        COLUMNS.iter().map(move |column| (column.value)(self))
    }
}

/// A JSON document already in text, sent as `jsonb` (version byte 1, then the text) without
/// parsing it here: the server validates it.
#[derive(Debug)]
struct RawJsonb<'a>(&'a str);

impl ToSql for RawJsonb<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.put_u8(1);
        }
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::TEXT
    }

    postgres::types::to_sql_checked!();
}

/// The statement of the `COPY` into `reports`, prepared once per connection (see [`insert_reports`]):
/// each batch then costs one round trip less.
///
/// # Errors
/// The database failed.
pub fn prepare_copy(client: &mut impl postgres::GenericClient) -> Result<Statement, postgres::Error> {
    client.prepare(&copy_statement("reports"))
}

/// Writes `reports` of `topic`/`partition`, skipping those already archived (same id and
/// `checked_at`: a producer's retry) and those that repeat one earlier in the batch; returns the
/// reports that were new, in their order.
///
/// `tx` must be in the savepoint named `savepoint`, with nothing written in it yet: when the `COPY`
/// meets a report another writer archived meanwhile, the savepoint is rolled back to and the batch
/// written again through the temporary table. Not opening a savepoint of its own saves the two
/// round trips of one per batch. `copy` is [`prepare_copy`]'s statement on the same connection, or
/// `None` to prepare it now.
///
/// The archived ones are looked up first (one probe of the primary key per report),
/// so that a batch with a retry in it is still one `COPY` of the rest, not done twice.
///
/// # Errors
/// The database failed; the caller's transaction is then unusable.
pub fn insert_reports<'r>(
    tx: &mut Transaction<'_>,
    savepoint: &str,
    copy: Option<&Statement>,
    topic: &str,
    partition: i32,
    reports: &'r [Archivable],
) -> anyhow::Result<Vec<&'r Archivable>> {
    let fresh = not_archived(tx, reports)?;
    if fresh.is_empty() {
        return Ok(fresh);
    }
    let copied = match copy {
        Some(statement) => copy_rows(tx, statement, topic, partition, &fresh),
        None => copy_rows(tx, copy_statement("reports").as_str(), topic, partition, &fresh),
    };
    match copied {
        Ok(_) => Ok(fresh),
        // Archived meanwhile by another writer (a replica that took the partition over).
        Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            tx.batch_execute(&format!("ROLLBACK TO SAVEPOINT {savepoint}")).context("rolling back to the savepoint")?;
            copy_skipping_duplicates(tx, topic, partition, fresh)
        }
        Err(err) => Err(anyhow::Error::new(err).context("copying reports")),
    }
}

/// The reports not archived yet, each (id, `checked_at`) once.
///
/// One probe of the primary key per report, in key order: a `LATERAL` subquery with `LIMIT 1` is
/// always run as a probe, pruned to the report's day at run time. (`id = ANY($1)` over the days
/// the batch covered was planned as a scan of the whole day for batches of ~2,000 reports while the
/// day held under a million rows: 27 ms a batch at 200,000 rows, growing with the day.)
fn not_archived<'r>(tx: &mut Transaction<'_>, reports: &'r [Archivable]) -> anyhow::Result<Vec<&'r Archivable>> {
    let keys: Vec<(Uuid, OffsetDateTime)> = reports.iter().map(|r| stored_key(&r.report)).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut probed = keys.clone();
    probed.sort_unstable();
    probed.dedup();
    let (ids, times): (Vec<Uuid>, Vec<OffsetDateTime>) = probed.into_iter().unzip();
    // Typed: one round trip, without preparing the statement first.
    let mut seen: HashSet<(Uuid, OffsetDateTime)> = tx
        .query_typed(
            "SELECT k.id, k.checked_at FROM unnest($1::uuid[], $2::timestamptz[]) AS k(id, checked_at)
             CROSS JOIN LATERAL (
                 SELECT FROM reports r WHERE r.id = k.id AND r.checked_at = k.checked_at LIMIT 1
             ) AS archived",
            &[(&ids, Type::UUID_ARRAY), (&times, Type::TIMESTAMPTZ_ARRAY)],
        )
        .context("looking for reports archived already")?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    Ok(reports.iter().zip(keys).filter(|(_, key)| seen.insert(*key)).map(|(r, _)| r).collect())
}

/// The primary key a report is stored under: its id and `checked_at` as `timestamptz` keeps it. A
/// producer's retry repeats both.
pub fn stored_key(report: &websentry_shared::report::Report) -> (Uuid, OffsetDateTime) {
    (report.id, document::split_nanos(report.checked_at).0)
}

/// The binary `COPY` into `table`, which has the columns of `reports`.
fn copy_statement(table: &str) -> String {
    format!("COPY {table} ({}) FROM STDIN (FORMAT binary)", column_list())
}

/// Binary COPY of the rows by `statement` ([`copy_statement`]).
fn copy_rows<S: ToStatement + ?Sized>(
    tx: &mut Transaction<'_>,
    statement: &S,
    topic: &str,
    partition: i32,
    reports: &[&Archivable],
) -> Result<u64, postgres::Error> {
    let types: Vec<Type> = COLUMNS.iter().map(|c| c.ty.clone()).collect();
    let sink = tx.copy_in(statement)?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let rows: Vec<Row> = reports.iter().map(|report| Row::of(report, topic, partition)).collect();
    let mut values = Vec::with_capacity(COLUMNS.len());
    for row in &rows {
        values.clear();
        values.extend(row.values());
        writer.write(&values)?;
    }
    writer.finish()
}

fn copy_skipping_duplicates<'r>(
    tx: &mut Transaction<'_>,
    topic: &str,
    partition: i32,
    reports: Vec<&'r Archivable>,
) -> anyhow::Result<Vec<&'r Archivable>> {
    // One temporary table per session, emptied at each commit and before each use (a batch being
    // split under savepoints may come here more than once in one transaction). Its columns come
    // from COLUMNS, not from `reports`: the consumer's user may not read `reports` (see
    // deploy/postgres/grants.sql).
    let columns: Vec<String> = COLUMNS.iter().map(|c| format!("{} {}", c.name, c.ty.name())).collect();
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS incoming_reports ({}) ON COMMIT DELETE ROWS;
         DELETE FROM incoming_reports",
        columns.join(", ")
    ))
    .context("preparing the COPY table")?;
    copy_rows(tx, copy_statement("incoming_reports").as_str(), topic, partition, &reports)
        .context("copying reports")?;
    let columns = column_list();
    let new = tx
        .query(
            &format!(
                "INSERT INTO reports ({columns}) SELECT {columns} FROM incoming_reports
                 ON CONFLICT (id, checked_at) DO NOTHING RETURNING id"
            ),
            &[],
        )
        .context("inserting the new reports")?;
    // Each (id, checked_at) is once in `reports` (see `not_archived`), so the id alone tells them.
    let new: HashSet<Uuid> = new.iter().map(|row| row.get(0)).collect();
    Ok(reports.into_iter().filter(|r| new.contains(&r.report.id)).collect())
}
