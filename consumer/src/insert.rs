//! Three ways to write a batch of reports in one statement, kept side by side because the fastest
//! was chosen by measuring them (`cargo bench -p websentry-consumer --bench drain` prints all
//! three): a multi-row `VALUES`, `UNNEST` of one array per column, and binary `COPY`. Every one
//! skips ids already archived.
//!
//! `COPY` has no `ON CONFLICT`, and a duplicate id (a producer retry) is rare, so it copies straight
//! into `reports` under a savepoint; only when that hits a unique violation does the batch go again
//! through a temporary table and `INSERT … SELECT … ON CONFLICT DO NOTHING`.

use anyhow::Context;
use bytes::{BufMut, BytesMut};
use postgres::{
    binary_copy::BinaryCopyInWriter,
    error::SqlState,
    types::{IsNull, ToSql, Type},
    Transaction,
};

use crate::batch::Archivable;

/// How [`insert_reports`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `INSERT … VALUES (…), (…)`: 24 parameters per row, split under PostgreSQL's 65,535.
    Values,
    /// `INSERT … SELECT FROM UNNEST($1::uuid[], …)`: 24 parameters per batch.
    Unnest,
    /// Binary `COPY` into a temporary table, then `INSERT … SELECT … ON CONFLICT DO NOTHING`.
    Copy,
}

const COLUMNS: &str = "id, url, code, response_ms, regexp_match, checked_at, probe, error_kind, error_message, \
     http_version, body_bytes, report, kafka_topic, kafka_partition, kafka_offset, timing_dns_ms, \
     timing_connect_ms, timing_tls_ms, timing_ttfb_ms, timing_transfer_ms, final_url, redirects, \
     tls_expires_at, report_version";

/// Parameter types of [`COLUMNS`], in order (the document travels as text and is cast to jsonb).
const TYPES: [Type; 24] = [
    Type::UUID,
    Type::TEXT,
    Type::INT4,
    Type::FLOAT8,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::INT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::TEXT,
    Type::INT4,
    Type::TIMESTAMPTZ,
    Type::INT4,
];

/// Writes `reports` of `topic`/`partition`; returns how many were new.
///
/// # Errors
/// The database failed; the caller's transaction is then unusable.
pub fn insert_reports(
    tx: &mut Transaction<'_>,
    method: Method,
    topic: &str,
    partition: i32,
    reports: &[Archivable],
) -> anyhow::Result<u64> {
    if reports.is_empty() {
        return Ok(0);
    }
    match method {
        Method::Values => values(tx, topic, partition, reports),
        Method::Unnest => unnest(tx, topic, partition, reports),
        Method::Copy => copy(tx, topic, partition, reports),
    }
}

/// One row's values in [`COLUMNS`] order.
struct Row<'a> {
    id: uuid::Uuid,
    url: &'a str,
    code: i32,
    response_ms: f64,
    regexp_match: Option<&'a str>,
    checked_at: time::OffsetDateTime,
    probe: &'a str,
    error_kind: Option<&'static str>,
    error_message: Option<&'a str>,
    http_version: Option<&'a str>,
    body_bytes: Option<i64>,
    report: &'a str,
    topic: &'a str,
    partition: i32,
    offset: i64,
    timings: [Option<f64>; 5],
    final_url: Option<&'a str>,
    redirects: i32,
    tls_expires_at: Option<time::OffsetDateTime>,
    version: i32,
}

impl<'a> Row<'a> {
    fn of(a: &'a Archivable, topic: &'a str, partition: i32) -> Self {
        let r = &a.report;
        let t = r.timings_ms;
        Row {
            id: r.id,
            url: &r.url,
            code: i32::from(r.code),
            response_ms: r.response_ms,
            regexp_match: r.regexp_match.as_deref(),
            checked_at: r.checked_at,
            probe: &r.probe,
            error_kind: r.error.as_ref().map(|e| e.kind.as_str()),
            error_message: r.error.as_ref().map(|e| e.message.as_str()),
            http_version: r.http_version.as_deref(),
            body_bytes: r.body_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
            report: &a.json,
            topic,
            partition,
            offset: a.offset,
            timings: [t.dns, t.connect, t.tls, t.ttfb, t.transfer],
            final_url: r.final_url.as_deref(),
            redirects: i32::try_from(r.redirects).unwrap_or(i32::MAX),
            tls_expires_at: r.tls_expires_at,
            version: i32::try_from(r.v).unwrap_or(i32::MAX),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 24] {
        [
            &self.id,
            &self.url,
            &self.code,
            &self.response_ms,
            &self.regexp_match,
            &self.checked_at,
            &self.probe,
            &self.error_kind,
            &self.error_message,
            &self.http_version,
            &self.body_bytes,
            &self.report,
            &self.topic,
            &self.partition,
            &self.offset,
            &self.timings[0],
            &self.timings[1],
            &self.timings[2],
            &self.timings[3],
            &self.timings[4],
            &self.final_url,
            &self.redirects,
            &self.tls_expires_at,
            &self.version,
        ]
    }
}

fn values(tx: &mut Transaction<'_>, topic: &str, partition: i32, reports: &[Archivable]) -> anyhow::Result<u64> {
    const ROWS_PER_STATEMENT: usize = 65_535 / TYPES.len();
    let mut inserted = 0;
    for chunk in reports.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<Row> = chunk.iter().map(|a| Row::of(a, topic, partition)).collect();
        let mut sql = format!("INSERT INTO reports ({COLUMNS}) VALUES ");
        for n in 0..rows.len() {
            sql.push_str(if n == 0 { "(" } else { ",(" });
            for (c, ty) in TYPES.iter().enumerate() {
                let cast = if c == 11 { "::jsonb" } else { "" };
                let sep = if c == 0 { "" } else { "," };
                sql.push_str(&format!("{sep}${}::{}{cast}", n * TYPES.len() + c + 1, ty.name()));
            }
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT (id) DO NOTHING");
        let params: Vec<&(dyn ToSql + Sync)> = rows.iter().flat_map(Row::params).collect();
        inserted += tx.execute(&sql, &params).context("inserting reports (VALUES)")?;
    }
    Ok(inserted)
}

fn unnest(tx: &mut Transaction<'_>, topic: &str, partition: i32, reports: &[Archivable]) -> anyhow::Result<u64> {
    let rows: Vec<Row> = reports.iter().map(|a| Row::of(a, topic, partition)).collect();
    let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
    let urls: Vec<_> = rows.iter().map(|r| r.url).collect();
    let codes: Vec<_> = rows.iter().map(|r| r.code).collect();
    let times: Vec<_> = rows.iter().map(|r| r.response_ms).collect();
    let matches: Vec<_> = rows.iter().map(|r| r.regexp_match).collect();
    let checked: Vec<_> = rows.iter().map(|r| r.checked_at).collect();
    let probes: Vec<_> = rows.iter().map(|r| r.probe).collect();
    let kinds: Vec<_> = rows.iter().map(|r| r.error_kind).collect();
    let messages: Vec<_> = rows.iter().map(|r| r.error_message).collect();
    let versions: Vec<_> = rows.iter().map(|r| r.http_version).collect();
    let bytes: Vec<_> = rows.iter().map(|r| r.body_bytes).collect();
    let docs: Vec<_> = rows.iter().map(|r| r.report).collect();
    let offsets: Vec<_> = rows.iter().map(|r| r.offset).collect();
    let timing = |i: usize| -> Vec<Option<f64>> { rows.iter().map(|r| r.timings[i]).collect() };
    let (dns, connect, tls, ttfb, transfer) = (timing(0), timing(1), timing(2), timing(3), timing(4));
    let final_urls: Vec<_> = rows.iter().map(|r| r.final_url).collect();
    let redirects: Vec<_> = rows.iter().map(|r| r.redirects).collect();
    let expires: Vec<_> = rows.iter().map(|r| r.tls_expires_at).collect();
    let report_versions: Vec<_> = rows.iter().map(|r| r.version).collect();
    let sql = format!(
        "INSERT INTO reports ({COLUMNS})
         SELECT r.id, r.url, r.code, r.response_ms, r.regexp_match, r.checked_at, r.probe, r.error_kind,
                r.error_message, r.http_version, r.body_bytes, r.report::jsonb, $13, $14, r.kafka_offset,
                r.dns, r.connect, r.tls, r.ttfb, r.transfer, r.final_url, r.redirects, r.tls_expires_at,
                r.report_version
         FROM UNNEST($1::uuid[], $2::text[], $3::int4[], $4::float8[], $5::text[], $6::timestamptz[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::int8[], $12::text[], $15::int8[],
                     $16::float8[], $17::float8[], $18::float8[], $19::float8[], $20::float8[], $21::text[],
                     $22::int4[], $23::timestamptz[], $24::int4[])
              AS r(id, url, code, response_ms, regexp_match, checked_at, probe, error_kind, error_message,
                   http_version, body_bytes, report, kafka_offset, dns, connect, tls, ttfb, transfer,
                   final_url, redirects, tls_expires_at, report_version)
         ON CONFLICT (id) DO NOTHING"
    );
    tx.execute(
        &sql,
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
            &topic,
            &partition,
            &offsets,
            &dns,
            &connect,
            &tls,
            &ttfb,
            &transfer,
            &final_urls,
            &redirects,
            &expires,
            &report_versions,
        ],
    )
    .context("inserting reports (UNNEST)")
}

/// A JSON document already in text, sent as `jsonb` in binary COPY (version byte 1, then the text)
/// without parsing it here: the server validates it.
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

fn copy(tx: &mut Transaction<'_>, topic: &str, partition: i32, reports: &[Archivable]) -> anyhow::Result<u64> {
    let mut direct = tx.savepoint("direct_copy").context("starting a savepoint")?;
    match copy_rows(&mut direct, "reports", Type::JSONB, topic, partition, reports) {
        Ok(copied) => {
            direct.commit().context("releasing the savepoint")?;
            Ok(copied)
        }
        Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            direct.rollback().context("rolling back to the savepoint")?;
            copy_skipping_duplicates(tx, topic, partition, reports)
        }
        Err(err) => Err(anyhow::Error::new(err).context("copying reports")),
    }
}

/// Binary COPY of the rows into `table`, whose `report` column has type `report_type`.
fn copy_rows(
    tx: &mut Transaction<'_>,
    table: &str,
    report_type: Type,
    topic: &str,
    partition: i32,
    reports: &[Archivable],
) -> Result<u64, postgres::Error> {
    let mut types = TYPES.to_vec();
    types[11] = report_type;
    let sink = tx.copy_in(&format!("COPY {table} ({COLUMNS}) FROM STDIN (FORMAT binary)"))?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    for a in reports {
        let row = Row::of(a, topic, partition);
        let report = RawJsonb(row.report);
        let mut params = row.params();
        params[11] = &report;
        writer.write(&params)?;
    }
    writer.finish()
}

fn copy_skipping_duplicates(
    tx: &mut Transaction<'_>,
    topic: &str,
    partition: i32,
    reports: &[Archivable],
) -> anyhow::Result<u64> {
    // One temporary table per session, emptied at each commit; `report` stays text until the INSERT.
    let as_text = COLUMNS.replace("report, kafka_topic", "report::text AS report, kafka_topic");
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS incoming_reports ON COMMIT DELETE ROWS AS
             SELECT {as_text} FROM reports WITH NO DATA"
    ))
    .context("preparing the COPY table")?;
    let sink = tx
        .copy_in(&format!("COPY incoming_reports ({COLUMNS}) FROM STDIN (FORMAT binary)"))
        .context("starting COPY")?;
    let mut writer = BinaryCopyInWriter::new(sink, &TYPES);
    for a in reports {
        writer.write(&Row::of(a, topic, partition).params()).context("copying a report")?;
    }
    writer.finish().context("finishing COPY")?;
    tx.execute(
        &format!(
            "INSERT INTO reports ({COLUMNS})
             SELECT {} FROM incoming_reports ON CONFLICT (id) DO NOTHING",
            COLUMNS.replace("report, kafka_topic", "report::jsonb, kafka_topic")
        ),
        &[],
    )
    .context("inserting reports (COPY)")
}
