//! The archive, read through its SQL interface only (consumer/src/sql/interface.sql, documented in
//! docs/archive.md): a small pool of read-only connections and the queries the pages need, with
//! their rows typed. Every query names an object of the interface, never a table, and takes its
//! input as parameters.
//!
//! Each connection starts with `statement_timeout` and `default_transaction_read_only = on` (the
//! `options` of its start-up packet), so a slow query is cancelled by the server and no statement
//! can write, whatever role the settings name. The queries of one answer are pipelined on one
//! connection.

use std::{sync::Arc, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::{
    metrics::Metrics,
    model::{figures::Bucket, State, Window},
    settings::Config,
};

/// What went wrong reading the archive; the pages say only that the database cannot be read, and
/// the log says this.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database connection: {0}")]
    Pool(#[from] PoolError),
    #[error("query {query} failed: {source}")]
    Query { query: &'static str, source: tokio_postgres::Error },
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
}

/// The latest report of one (url, probe) and its state: a row of `site_states` (the SQL
/// interface defines up, down and unknown once, for every reader).
#[derive(Debug, Clone, PartialEq)]
pub struct LatestRow {
    pub url: String,
    pub probe: String,
    pub state: State,
    /// Conclusive failures since the last success.
    pub consecutive_failures: i64,
    pub checked_at: OffsetDateTime,
    pub code: i32,
    pub response_ms: f64,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub inconclusive: bool,
    pub interval_s: Option<i32>,
    pub tls_expires_at: Option<OffsetDateTime>,
    /// The earliest expiry of the certificate chain the site sent.
    pub tls_chain_expires_at: Option<OffsetDateTime>,
    pub site_name: Option<String>,
    pub site_group: Option<String>,
}

/// One bucket of `site_timeline` of one (url, probe).
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    pub url: String,
    pub probe: String,
    pub bucket_start: OffsetDateTime,
    pub bucket: Bucket,
    /// Whether the bucket has a rollup row (some report reached it), rather than standing for a
    /// day nobody measured: a location counts in a window's pooled figures only where it has one.
    pub reached: bool,
}

/// Latency percentiles of one (url, probe) over a window (`site_summary`), or a bucket
/// (`site_latency`, where `at` is the bucket's start).
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRow {
    pub url: String,
    pub probe: String,
    pub at: Option<OffsetDateTime>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One outage of `site_outages`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutageRow {
    pub probe: String,
    pub started_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
    pub duration_s: f64,
    pub failures: i64,
    pub error_kinds: Vec<String>,
}

/// One report of `site_reports`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    pub probe: String,
    pub checked_at: OffsetDateTime,
    pub code: i32,
    pub response_ms: f64,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub inconclusive: bool,
    pub http_version: Option<String>,
    pub timing_dns_ms: Option<f64>,
    pub timing_connect_ms: Option<f64>,
    pub timing_tls_ms: Option<f64>,
    pub timing_ttfb_ms: Option<f64>,
    pub timing_transfer_ms: Option<f64>,
    pub tls_expires_at: Option<OffsetDateTime>,
}

/// What the overview is computed from: every site's latest reports and states, 90 days by day, and
/// the last 24 hours as one bucket, with their latency.
#[derive(Debug, Clone, Default)]
pub struct OverviewRows {
    pub latest: Vec<LatestRow>,
    pub days: Vec<TimelineRow>,
    /// The last 24 hours exactly (`site_summary`): one bucket per (url, probe), starting 24 hours ago.
    pub hours: Vec<TimelineRow>,
    pub latency: Vec<LatencyRow>,
}

/// What one site's page adds to the overview: latency per hour (7 days) and per day (90 days),
/// outages and the last reports.
#[derive(Debug, Clone, Default)]
pub struct DetailRows {
    pub hourly_latency: Vec<LatencyRow>,
    pub daily_latency: Vec<LatencyRow>,
    pub outages: Vec<OutageRow>,
    pub reports: Vec<ReportRow>,
}

/// Reports listed on a site's page.
pub const LAST_REPORTS: i32 = 50;

const LATEST: &str = "SELECT url, probe, state, consecutive_failures, checked_at, code, response_ms, error_kind, \
                      error_message, inconclusive, interval_s, tls_expires_at, tls_chain_expires_at, site_name, \
                      site_group FROM site_states";
const DAYS: &str = "SELECT url, probe, first_day, days, measured_days, probes, successes, measured_s, unknown_s, \
                    down_s FROM site_days(now() - interval '90 days', now())";
const SUMMARY: &str = "SELECT url, probe, p50_ms, p95_ms, p99_ms, probes, successes, measured_s, unknown_s, down_s \
                       FROM site_summary(now() - $1::float8 * interval '1 second', now())";
const HOURLY_LATENCY: &str = "SELECT url, probe, bucket_start, p50_ms, p95_ms, p99_ms \
                              FROM site_latency(now() - interval '7 days', now(), 'hour', $1)";
const DAILY_LATENCY: &str = "SELECT url, probe, bucket_start, p50_ms, p95_ms, p99_ms \
                             FROM site_latency(now() - interval '90 days', now(), 'day', $1)";
const OUTAGES: &str = "SELECT probe, started_at, ended_at, duration_s, failures, error_kinds \
                       FROM site_outages(now() - interval '90 days', now(), $1)";
const REPORTS: &str = "SELECT probe, checked_at, code, response_ms, error_kind, error_message, inconclusive, \
                       http_version, timing_dns_ms, timing_connect_ms, timing_tls_ms, timing_ttfb_ms, \
                       timing_transfer_ms, tls_expires_at FROM site_reports($1, $2)";
const PING: &str = "SELECT 1";

/// The read pool.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("pool", &self.pool.status()).finish_non_exhaustive()
    }
}

/// The `options` of every connection: the statement timeout and read-only transactions.
pub fn session_options(statement_timeout: Duration) -> String {
    format!("-c statement_timeout={} -c default_transaction_read_only=on", statement_timeout.as_millis())
}

impl Database {
    /// The pool of `config`; connects lazily, at the first query, so that the page starts (and
    /// says the database is unreachable) while the database is down.
    ///
    /// # Errors
    /// The TLS verifier cannot be built, or the pool refuses its settings.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Database> {
        let (mut pg, tls) = config.database.tokio_config("websentry-status")?;
        pg.options(session_options(config.statement_timeout));
        let manager = Manager::from_config(pg, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            // Connecting (TCP, TLS, authentication) within the database timeout; waiting for a
            // free connection no longer than a query may take.
            .create_timeout(Some(config.database.timeout))
            .wait_timeout(Some(config.statement_timeout + config.database.timeout))
            .recycle_timeout(Some(config.statement_timeout))
            .build()?;
        Ok(Database { pool, metrics })
    }

    /// Connections open and idle, for the metrics.
    pub fn pool_status(&self) -> (usize, usize) {
        let status = self.pool.status();
        (status.size, status.available)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, DbError> {
        self.pool.get().await.map_err(|err| {
            self.metrics.count_db_error();
            DbError::Pool(err)
        })
    }

    /// Runs `sql` (named `name` in metrics and errors) on `client`.
    pub(crate) async fn query(
        &self,
        client: &deadpool_postgres::Object,
        name: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, DbError> {
        self.metrics.count_query(name);
        let run = async { client.query(&client.prepare_cached(sql).await?, params).await };
        run.await.map_err(|source| {
            self.metrics.count_db_error();
            DbError::Query { query: name, source }
        })
    }

    /// The database answers a trivial query within `within`.
    ///
    /// # Errors
    /// No connection, the query failed, or no answer in time.
    pub async fn ping(&self, within: Duration) -> Result<(), DbError> {
        let ping = async {
            let client = self.client().await?;
            self.query(&client, "ping", PING, &[]).await.map(drop)
        };
        tokio::time::timeout(within, ping).await.map_err(|_| DbError::Timeout(within))?
    }

    /// The rows of the overview: three queries, on two connections.
    ///
    /// # Errors
    /// As [`DbError`].
    pub async fn overview(&self) -> Result<OverviewRows, DbError> {
        let client = self.client().await?;
        // site_days, the longest, on a second connection where the pool allows one: the database
        // runs it beside the others rather than after them. (Only the overview takes two, and one
        // overview loads at a time, so two loads never wait for each other's second connection.)
        let second = if self.pool.status().max_size > 1 { Some(self.client().await?) } else { None };
        let days_client = second.as_ref().unwrap_or(&client);
        let day = Window::Day.duration().as_seconds_f64();
        let day: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&day];
        // The last 24 hours come whole from site_summary, exact to the second, which the latency
        // needs anyway: their hours from site_timeline were a third of the overview's time.
        let (latest, days, summary) = futures::try_join!(
            self.query(&client, "site_states", LATEST, &[]),
            self.query(days_client, "site_days", DAYS, &[]),
            self.query(&client, "site_summary", SUMMARY, &day),
        )?;
        let now = OffsetDateTime::now_utc();
        let since = now - Window::Day.duration();
        Ok(OverviewRows {
            latest: latest.iter().map(latest_row).collect::<Result<_, _>>().map_err(decode("site_states"))?,
            days: days_rows(&days, now).map_err(decode("site_days"))?,
            hours: summary
                .iter()
                .map(|row| summary_bucket(row, since))
                .collect::<Result<_, _>>()
                .map_err(decode("site_summary"))?,
            latency: summary.iter().map(summary_row).collect::<Result<_, _>>().map_err(decode("site_summary"))?,
        })
    }

    /// Latency percentiles of every (url, probe) over `window` (`site_summary`).
    ///
    /// # Errors
    /// As [`DbError`].
    pub async fn latency(&self, window: Window) -> Result<Vec<LatencyRow>, DbError> {
        let client = self.client().await?;
        let seconds = window.duration().as_seconds_f64();
        let rows = self.query(&client, "site_summary", SUMMARY, &[&seconds]).await?;
        rows.iter().map(summary_row).collect::<Result<_, _>>().map_err(decode("site_summary"))
    }

    /// What one site's page adds to the overview: four queries, pipelined on one connection.
    ///
    /// # Errors
    /// As [`DbError`].
    pub async fn detail(&self, url: &str) -> Result<DetailRows, DbError> {
        let client = self.client().await?;
        let site: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&url];
        let last: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&url, &LAST_REPORTS];
        let (hourly, daily, outages, reports) = futures::try_join!(
            self.query(&client, "site_latency_hours", HOURLY_LATENCY, &site),
            self.query(&client, "site_latency_days", DAILY_LATENCY, &site),
            self.query(&client, "site_outages", OUTAGES, &site),
            self.query(&client, "site_reports", REPORTS, &last),
        )?;
        Ok(DetailRows {
            hourly_latency: hourly.iter().map(latency_row).collect::<Result<_, _>>().map_err(decode("site_latency"))?,
            daily_latency: daily.iter().map(latency_row).collect::<Result<_, _>>().map_err(decode("site_latency"))?,
            outages: outages.iter().map(outage_row).collect::<Result<_, _>>().map_err(decode("site_outages"))?,
            reports: reports.iter().map(report_row).collect::<Result<_, _>>().map_err(decode("site_reports"))?,
        })
    }
}

fn decode(query: &'static str) -> impl Fn(tokio_postgres::Error) -> DbError {
    move |source| DbError::Query { query, source }
}

fn latest_row(row: &Row) -> Result<LatestRow, tokio_postgres::Error> {
    Ok(LatestRow {
        url: row.try_get("url")?,
        probe: row.try_get("probe")?,
        state: State::parse(row.try_get("state")?),
        consecutive_failures: row.try_get("consecutive_failures")?,
        checked_at: row.try_get("checked_at")?,
        code: row.try_get("code")?,
        response_ms: row.try_get("response_ms")?,
        error_kind: row.try_get("error_kind")?,
        error_message: row.try_get("error_message")?,
        inconclusive: row.try_get("inconclusive")?,
        interval_s: row.try_get("interval_s")?,
        tls_expires_at: row.try_get("tls_expires_at")?,
        tls_chain_expires_at: row.try_get("tls_chain_expires_at")?,
        site_name: row.try_get("site_name")?,
        site_group: row.try_get("site_group")?,
    })
}

/// The rows of `site_days`, one per (url, probe), as the day buckets `site_timeline` would give:
/// a day absent from `measured_days` had no report, so nothing of its passed time (up to `now`)
/// was measured.
fn days_rows(rows: &[Row], now: OffsetDateTime) -> Result<Vec<TimelineRow>, tokio_postgres::Error> {
    let mut buckets = Vec::new();
    for row in rows {
        let (url, probe): (String, String) = (row.try_get("url")?, row.try_get("probe")?);
        let first_day: time::Date = row.try_get("first_day")?;
        let days: i32 = row.try_get("days")?;
        let measured: Vec<i32> = row.try_get("measured_days")?;
        let probes: Vec<i64> = row.try_get("probes")?;
        let successes: Vec<i64> = row.try_get("successes")?;
        let measured_s: Vec<Option<f64>> = row.try_get("measured_s")?;
        let unknown_s: Vec<Option<f64>> = row.try_get("unknown_s")?;
        let down_s: Vec<Option<f64>> = row.try_get("down_s")?;
        let mut present = measured.iter().enumerate().peekable();
        for day in 0..days {
            let bucket_start = (first_day + time::Duration::days(i64::from(day))).midnight().assume_utc();
            let found = present.next_if(|(_, &offset)| offset == day);
            let reached = found.is_some();
            let bucket = match found {
                Some((i, _)) => Bucket {
                    probes: probes.get(i).copied().unwrap_or_default(),
                    successes: successes.get(i).copied().unwrap_or_default(),
                    measured_s: measured_s.get(i).copied().flatten(),
                    unknown_s: unknown_s.get(i).copied().flatten(),
                    down_s: down_s.get(i).copied().flatten(),
                },
                None => {
                    let passed = (now - bucket_start).as_seconds_f64().clamp(0.0, 86_400.0);
                    Bucket { measured_s: Some(0.0), unknown_s: Some(passed), down_s: Some(0.0), ..Bucket::default() }
                }
            };
            buckets.push(TimelineRow { url: url.clone(), probe: probe.clone(), bucket_start, bucket, reached });
        }
    }
    Ok(buckets)
}

/// A row of `site_summary` as one bucket starting at `since`.
fn summary_bucket(row: &Row, since: OffsetDateTime) -> Result<TimelineRow, tokio_postgres::Error> {
    Ok(TimelineRow {
        url: row.try_get("url")?,
        probe: row.try_get("probe")?,
        bucket_start: since,
        bucket: Bucket {
            probes: row.try_get("probes")?,
            successes: row.try_get("successes")?,
            measured_s: row.try_get("measured_s")?,
            unknown_s: row.try_get("unknown_s")?,
            down_s: row.try_get("down_s")?,
        },
        reached: true,
    })
}

fn summary_row(row: &Row) -> Result<LatencyRow, tokio_postgres::Error> {
    Ok(LatencyRow {
        url: row.try_get("url")?,
        probe: row.try_get("probe")?,
        at: None,
        p50_ms: row.try_get("p50_ms")?,
        p95_ms: row.try_get("p95_ms")?,
        p99_ms: row.try_get("p99_ms")?,
    })
}

fn latency_row(row: &Row) -> Result<LatencyRow, tokio_postgres::Error> {
    Ok(LatencyRow { at: Some(row.try_get("bucket_start")?), ..summary_row(row)? })
}

fn outage_row(row: &Row) -> Result<OutageRow, tokio_postgres::Error> {
    Ok(OutageRow {
        probe: row.try_get("probe")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        duration_s: row.try_get("duration_s")?,
        failures: row.try_get("failures")?,
        error_kinds: row
            .try_get::<_, Option<Vec<Option<String>>>>("error_kinds")?
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect(),
    })
}

fn report_row(row: &Row) -> Result<ReportRow, tokio_postgres::Error> {
    Ok(ReportRow {
        probe: row.try_get("probe")?,
        checked_at: row.try_get("checked_at")?,
        code: row.try_get("code")?,
        response_ms: row.try_get("response_ms")?,
        error_kind: row.try_get("error_kind")?,
        error_message: row.try_get("error_message")?,
        inconclusive: row.try_get("inconclusive")?,
        http_version: row.try_get("http_version")?,
        timing_dns_ms: row.try_get("timing_dns_ms")?,
        timing_connect_ms: row.try_get("timing_connect_ms")?,
        timing_tls_ms: row.try_get("timing_tls_ms")?,
        timing_ttfb_ms: row.try_get("timing_ttfb_ms")?,
        timing_transfer_ms: row.try_get("timing_transfer_ms")?,
        tls_expires_at: row.try_get("tls_expires_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_is_read_only_with_the_statement_timeout() {
        assert_eq!(
            session_options(Duration::from_secs(5)),
            "-c statement_timeout=5000 -c default_transaction_read_only=on"
        );
    }

    #[test]
    fn the_queries_name_only_the_sql_interface() {
        // The interface's objects (docs/archive.md); the tables behind it may change.
        let interface = [
            "site_states",
            "site_timeline(",
            "site_days(",
            "site_summary(",
            "site_latency(",
            "site_outages(",
            "site_reports(",
        ];
        for sql in [LATEST, DAYS, SUMMARY, HOURLY_LATENCY, DAILY_LATENCY, OUTAGES, REPORTS] {
            let from = sql.split(" FROM ").nth(1).expect("a FROM");
            assert!(interface.iter().any(|object| from.starts_with(object)), "{sql}");
            assert!(!sql.contains("rollup_") && !sql.contains(" reports "), "{sql}");
        }
    }
}
