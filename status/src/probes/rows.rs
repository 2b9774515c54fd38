//! What the per-site metrics are made of, read through the SQL interface only: `site_states` (the
//! latest report of each (url, probe) and its state, one definition for every reader) for the
//! sites measured lately, and `site_uptime` (`site_summary` without the latency) over 24 hours,
//! 7 days and 30 days for uptime and coverage. The states are read for every exposition; the
//! windows, which move slowly and cost most (up to ~1.4 s for 10,000 sites, docs/benchmarks.md),
//! are kept longer by the caller.

use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::{
    db::{Database, DbError},
    model::Window,
};

/// The windows of `websentry_site_uptime_ratio` and `websentry_site_coverage_ratio`.
pub const WINDOWS: [Window; 3] = [Window::Day, Window::Week, Window::Month];

/// The latest report of one (url, probe) measured lately: a row of `site_states` that is not
/// `stale` (its latest report is younger than twice its cadence, ten minutes without one).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRow {
    pub url: String,
    pub probe: String,
    pub site_name: Option<String>,
    pub site_group: Option<String>,
    /// `up`, `down` or `unknown` (here: an inconclusive failure, since stale rows are left out).
    pub state: String,
    pub consecutive_failures: i64,
    pub checked_at: OffsetDateTime,
    pub interval_s: Option<i32>,
    pub code: i32,
    pub response_ms: f64,
    pub error_kind: Option<String>,
    /// `HTTP/1.1`, `HTTP/2.0`…; none without a response.
    pub http_version: Option<String>,
    pub redirects: i32,
    pub timing_dns_ms: Option<f64>,
    pub timing_connect_ms: Option<f64>,
    pub timing_tls_ms: Option<f64>,
    pub timing_ttfb_ms: Option<f64>,
    pub timing_transfer_ms: Option<f64>,
    pub tls_expires_at: Option<OffsetDateTime>,
    pub tls_chain_expires_at: Option<OffsetDateTime>,
}

/// Uptime and coverage of one (url, probe) over a window (`site_uptime`).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    pub url: String,
    pub probe: String,
    pub window: Window,
    /// `measured_uptime`: 1 − down ÷ measured; none when nothing of the window was measured.
    pub uptime: Option<f64>,
    /// Measured ÷ window; none when no report stated a cadence.
    pub coverage: Option<f64>,
}

/// Everything one exposition is made of.
#[derive(Debug, Clone, Default)]
pub struct ProbeRows {
    pub states: Vec<ProbeRow>,
    pub windows: std::sync::Arc<Vec<WindowRow>>,
}

pub(crate) const STATES: &str = "SELECT url, probe, site_name, site_group, state, consecutive_failures, checked_at, \
                                 interval_s, code, response_ms, error_kind, http_version, redirects, timing_dns_ms, \
                                 timing_connect_ms, timing_tls_ms, timing_ttfb_ms, timing_transfer_ms, \
                                 tls_expires_at, tls_chain_expires_at FROM site_states WHERE NOT stale";
pub(crate) const WINDOW: &str = "SELECT url, probe, measured_uptime, coverage \
                                 FROM site_uptime(now() - $1::float8 * interval '1 second', now())";

/// The latest report of every (url, probe) measured lately (`site_states`).
///
/// # Errors
/// No connection, or the query failed (as [`DbError`]).
pub async fn load_states(db: &Database) -> Result<Vec<ProbeRow>, DbError> {
    let client = db.client().await?;
    let rows = db.query(&client, "site_states", STATES, &[]).await?;
    rows.iter().map(probe_row).collect::<Result<_, _>>().map_err(decode("site_states"))
}

/// Uptime and coverage of every (url, probe) over each of [`WINDOWS`] (`site_uptime`, three
/// calls pipelined on one connection).
///
/// # Errors
/// No connection, or a query failed (as [`DbError`]).
pub async fn load_windows(db: &Database) -> Result<Vec<WindowRow>, DbError> {
    let client = db.client().await?;
    let [day, week, month] = WINDOWS.map(|window| window.duration().as_seconds_f64());
    let params: [[&(dyn tokio_postgres::types::ToSql + Sync); 1]; 3] = [[&day], [&week], [&month]];
    let (day, week, month) = futures::try_join!(
        db.query(&client, "site_uptime", WINDOW, &params[0]),
        db.query(&client, "site_uptime", WINDOW, &params[1]),
        db.query(&client, "site_uptime", WINDOW, &params[2]),
    )?;
    let mut windows = Vec::with_capacity(day.len() + week.len() + month.len());
    for (window, rows) in WINDOWS.into_iter().zip([day, week, month]) {
        for row in &rows {
            windows.push(window_row(row, window).map_err(decode("site_uptime"))?);
        }
    }
    Ok(windows)
}

fn decode(query: &'static str) -> impl Fn(tokio_postgres::Error) -> DbError {
    move |source| DbError::Query { query, source }
}

fn probe_row(row: &Row) -> Result<ProbeRow, tokio_postgres::Error> {
    Ok(ProbeRow {
        url: row.try_get("url")?,
        probe: row.try_get("probe")?,
        site_name: row.try_get("site_name")?,
        site_group: row.try_get("site_group")?,
        state: row.try_get("state")?,
        consecutive_failures: row.try_get("consecutive_failures")?,
        checked_at: row.try_get("checked_at")?,
        interval_s: row.try_get("interval_s")?,
        code: row.try_get("code")?,
        response_ms: row.try_get("response_ms")?,
        error_kind: row.try_get("error_kind")?,
        http_version: row.try_get("http_version")?,
        redirects: row.try_get("redirects")?,
        timing_dns_ms: row.try_get("timing_dns_ms")?,
        timing_connect_ms: row.try_get("timing_connect_ms")?,
        timing_tls_ms: row.try_get("timing_tls_ms")?,
        timing_ttfb_ms: row.try_get("timing_ttfb_ms")?,
        timing_transfer_ms: row.try_get("timing_transfer_ms")?,
        tls_expires_at: row.try_get("tls_expires_at")?,
        tls_chain_expires_at: row.try_get("tls_chain_expires_at")?,
    })
}

fn window_row(row: &Row, window: Window) -> Result<WindowRow, tokio_postgres::Error> {
    Ok(WindowRow {
        url: row.try_get("url")?,
        probe: row.try_get("probe")?,
        window,
        uptime: row.try_get("measured_uptime")?,
        coverage: row.try_get("coverage")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queries_name_only_the_sql_interface() {
        for (sql, object) in [(STATES, "site_states "), (WINDOW, "site_uptime(")] {
            let from = sql.split(" FROM ").nth(1).expect("a FROM");
            assert!(from.starts_with(object), "{sql}");
            assert!(!sql.contains("rollup_") && !sql.contains(" reports"), "{sql}");
        }
    }
}
