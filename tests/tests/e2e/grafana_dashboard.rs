//! The Grafana dashboard of `deploy/grafana/`, where Grafana cannot run: its JSON checked
//! structurally (panel ids unique, a query in every panel, data sources taken from its variables,
//! no table outside the SQL interface, every PromQL expression parsed by promtool), and every SQL
//! query in it (panels and the `site` variable) expanded as Grafana's PostgreSQL data source
//! expands it and run against a real archive AS the read-only role `websentry_reader` of
//! `deploy/postgres/`, returning rows with the columns its panel shows.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use serde_json::Value;
use time::{Duration, OffsetDateTime};
use websentry_consumer::database::{self, DatabaseSettings};
use websentry_shared::report::{ErrorKind, ProbeError};
use websentry_tests::{sample_report, Scratch, Stack};

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo_file("deploy/grafana/dashboards/websentry.json")).expect("the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// The query of the dashboard's panel titled `title` (its first target).
pub(crate) fn panel_query(title: &str) -> String {
    let dashboard = dashboard();
    let panel = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .find(|panel| panel["title"] == title)
        .unwrap_or_else(|| panic!("the {title} panel"));
    panel["targets"][0]["expr"].as_str().expect("its query").to_owned()
}

/// What the archive's readers may read: the SQL interface (consumer/src/sql/interface.sql).
const INTERFACE: &[&str] = &[
    "site_summary",
    "site_timeline",
    "site_latency",
    "site_outages",
    "site_reports",
    "latest_reports",
    "certificates_expiring",
    "site_states",
    "rollup_horizons",
    "report_documents",
    "log",
];

/// The columns each SQL panel shows, by title (its `$site` as written).
const COLUMNS: &[(&str, &[&str])] = &[
    ("Sites down now", &["down", "unknown", "sites and locations"]),
    (
        "States now",
        &["url", "probe", "name", "state", "consecutive_failures", "last_checked", "code", "error_kind", "response_ms"],
    ),
    (
        "Uptime and coverage",
        &[
            "url",
            "probe",
            "probes",
            "uptime_pct",
            "coverage_pct",
            "down_s",
            "unknown_s",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "last_checked_at",
        ],
    ),
    ("Down and unknown time per day, all sites", &["time", "down_minutes", "unknown_minutes"]),
    (
        "Certificates",
        &["url", "probe", "days_left", "chain_days_left", "tls_expires_at", "tls_chain_expires_at", "last_checked_at"],
    ),
    ("Latency percentiles of $site", &["time", "probe", "p50_ms", "p95_ms", "p99_ms"]),
    (
        "Uptime and coverage of $site per hour (per day beyond the hours kept)",
        &["time", "probe", "uptime_pct", "coverage_pct"],
    ),
    ("Outages of $site", &["probe", "started_at", "ended_at", "duration_s", "failures", "error_kinds"]),
    ("Last reports of $site", &["time", "probe", "code", "response_ms", "error_kind", "error_message", "inconclusive"]),
    (
        "Latest report of every site",
        &["url", "probe", "checked_at", "code", "response_ms", "error_kind", "http_version", "redirects"],
    ),
    ("variable site", &["url"]),
];

/// One query of the dashboard: where it is, its text as written, and SQL or PromQL.
struct Query {
    place: String,
    title: String,
    text: String,
    sql: bool,
    datasource: String,
}

fn queries(dashboard: &Value) -> Vec<Query> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("a panel's title").to_owned();
        for target in panel["targets"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let (text, sql) = match (target["rawSql"].as_str(), target["expr"].as_str()) {
                (Some(sql), None) => (sql, true),
                (None, Some(expr)) => (expr, false),
                _ => panic!("panel {title:?}: a target with neither or both of rawSql and expr: {target}"),
            };
            found.push(Query {
                place: format!("panel {} ({title}) {}", panel["id"], target["refId"]),
                title: title.clone(),
                text: text.to_owned(),
                sql,
                datasource: target["datasource"]["uid"].as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    for variable in dashboard["templating"]["list"].as_array().expect("the variables") {
        if variable["type"] == "query" {
            found.push(Query {
                place: format!("variable {}", variable["name"].as_str().expect("a name")),
                title: format!("variable {}", variable["name"].as_str().expect("a name")),
                text: variable["query"].as_str().expect("a query variable's query").to_owned(),
                sql: true,
                datasource: variable["datasource"]["uid"].as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    found
}

/// The identifiers of a query, lower-cased, in order.
fn words(sql: &str) -> Vec<String> {
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

#[test]
fn the_dashboard_is_well_formed_and_reads_only_the_sql_interface() {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().expect("panels");
    let variables: BTreeMap<&str, &Value> = dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| (v["name"].as_str().expect("a variable's name"), v))
        .collect();
    let queries = queries(&dashboard);

    let ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().expect("a panel id")).collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "panel ids are unique: {ids:?}");
    for panel in panels {
        let title = panel["title"].as_str().expect("a title");
        assert!(
            !panel["targets"].as_array().map(Vec::as_slice).unwrap_or_default().is_empty(),
            "panel {title:?} has no query"
        );
        assert!(
            ["${DS_POSTGRES}", "${DS_PROMETHEUS}"].contains(&panel["datasource"]["uid"].as_str().unwrap_or_default()),
            "panel {title:?}'s data source is not one of the dashboard's variables: {}",
            panel["datasource"]
        );
    }
    assert_eq!(variables["DS_POSTGRES"]["type"], "datasource");
    assert_eq!(variables["DS_POSTGRES"]["query"], "grafana-postgresql-datasource");
    assert_eq!(variables["DS_PROMETHEUS"]["type"], "datasource");
    assert_eq!(variables["DS_PROMETHEUS"]["query"], "prometheus");

    let expected: BTreeSet<&str> = COLUMNS.iter().map(|(title, _)| *title).collect();
    let sql_titles: BTreeSet<&str> = queries.iter().filter(|q| q.sql).map(|q| q.title.as_str()).collect();
    assert_eq!(sql_titles, expected, "the SQL panels against those whose columns this test knows");
    assert!(queries.iter().filter(|q| !q.sql).count() >= 5, "the Prometheus panels");
    let tables = ["reports", "rollup_hourly", "rollup_daily", "consumer_offsets", "rejected_messages"];
    for query in &queries {
        let datasource = if query.sql { "${DS_POSTGRES}" } else { "${DS_PROMETHEUS}" };
        assert_eq!(query.datasource, datasource, "{}: its data source", query.place);
        if !query.sql {
            continue;
        }
        let words = words(&query.text);
        for pair in words.windows(2) {
            if pair[0] == "from" || pair[0] == "join" {
                assert!(
                    INTERFACE.contains(&pair[1].as_str()),
                    "{} reads {:?}, not in the SQL interface",
                    query.place,
                    pair[1]
                );
            }
        }
        for table in tables {
            assert!(!words.iter().any(|w| w == table), "{} names the table {table}", query.place);
        }
    }
}

#[test]
fn every_promql_expression_of_the_dashboard_parses() {
    let queries: Vec<Query> = queries(&dashboard()).into_iter().filter(|q| !q.sql).collect();
    // promtool parses expressions in rules: one recording rule per expression.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, query) in queries.iter().enumerate() {
        let expr = query.text.replace("$site", "https://example.com/");
        let indented: String = expr.lines().map(|line| format!("          {line}\n")).collect();
        rules.push_str(&format!("      - record: websentry_dashboard_expression_{n}\n        expr: |\n{indented}"));
    }
    let scratch = Scratch::new();
    scratch.write("dashboard.rules.yml", &rules);

    let output = Command::new("promtool")
        .args(["check", "rules", "dashboard.rules.yml"])
        .current_dir(scratch.path())
        .output()
        .expect("promtool: install Debian's prometheus package (scripts/test does)");

    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{text}\n{rules}");
    assert!(text.contains(&format!("SUCCESS: {} rules found", queries.len())), "{text}");
}

/// Grafana's time range, as its PostgreSQL data source writes it: RFC 3339 in UTC with the
/// fraction's trailing zeros left out (Go's RFC3339Nano).
fn rfc3339_nano(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fraction = format!("{:09}", t.nanosecond());
    let fraction = fraction.trim_end_matches('0');
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        if fraction.is_empty() { "" } else { "." },
        fraction
    )
}

/// Seconds of a Grafana interval ('1h', '5m', '1d', '1w'; gtime.ParseInterval), as Go prints a
/// float64 with %v.
fn interval_seconds(interval: &str) -> Result<String, String> {
    let interval = interval.trim_matches('\'');
    let split = interval.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| format!("no unit in {interval:?}"))?;
    let (number, unit) = interval.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("no number in {interval:?}"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("unit of {interval:?}")),
    };
    Ok((number * unit).to_string())
}

/// `sql` with Grafana's PostgreSQL macros expanded as its data source does (macros.go: a macro is
/// `$name(args)`, args up to the first `)`, split at commas and trimmed; `$__timeGroup` directly
/// followed by a comma becomes `$__timeGroupAlias`, for dashboards older than 5.3; TimescaleDB
/// off), after the template variables (single values, inserted as they are).
fn expand(sql: &str, from: OffsetDateTime, to: OffsetDateTime, variables: &[(&str, &str)]) -> Result<String, String> {
    let mut sql = sql.to_owned();
    for (name, value) in variables {
        sql = sql.replace(&format!("${{{name}}}"), value);
        // $name, not a longer name that starts with it.
        let mut out = String::new();
        let mut rest = sql.as_str();
        let needle = format!("${name}");
        while let Some(at) = rest.find(&needle) {
            let after = &rest[at + needle.len()..];
            out.push_str(&rest[..at]);
            if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                out.push_str(&needle);
            } else {
                out.push_str(value);
            }
            rest = after;
        }
        out.push_str(rest);
        sql = out;
    }
    let (from, to) = (rfc3339_nano(from), rfc3339_nano(to));
    let mut out = String::new();
    let mut rest = sql.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        let name_end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let (name, after) = tail.split_at(name_end);
        let Some(close) = after.strip_prefix('(').and_then(|a| a.find(')')) else {
            out.push('$');
            rest = tail;
            continue;
        };
        let args: Vec<&str> = after[1..=close].split(',').map(str::trim).collect();
        let after = &after[close + 2..];
        let name = if name == "__timeGroup" && after.starts_with(',') { "__timeGroupAlias" } else { name };
        let group = |args: &[&str]| -> Result<String, String> {
            let column =
                args.first().filter(|_| args.len() >= 2).ok_or(format!("${name} needs a column and an interval"))?;
            let seconds = interval_seconds(args[1])?;
            Ok(format!("floor(extract(epoch from {column})/{seconds})*{seconds}"))
        };
        let column = || args.first().filter(|a| !a.is_empty()).ok_or(format!("${name} needs a column"));
        out.push_str(&match name {
            "__time" => format!("{} AS \"time\"", column()?),
            "__timeEpoch" => format!("extract(epoch from {}) as \"time\"", column()?),
            "__timeFilter" => format!("{} BETWEEN '{from}' AND '{to}'", column()?),
            "__timeFrom" => format!("'{from}'"),
            "__timeTo" => format!("'{to}'"),
            "__timeGroup" => group(&args)?,
            "__timeGroupAlias" => format!("{} AS \"time\"", group(&args)?),
            other => return Err(format!("unknown macro {other:?}")),
        });
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

#[test]
fn macros_expand_as_grafana_expands_them() {
    let from = OffsetDateTime::from_unix_timestamp_nanos(1_500_376_552_001_000_000).expect("a time");
    let to = OffsetDateTime::from_unix_timestamp(1_500_377_152).expect("a time");
    let cases = [
        ("SELECT $__time(time_column)", "SELECT time_column AS \"time\""),
        ("$__timeEpoch(time)", "extract(epoch from time) as \"time\""),
        (
            "WHERE $__timeFilter(time_column)",
            "WHERE time_column BETWEEN '2017-07-18T11:15:52.001Z' AND '2017-07-18T11:25:52Z'",
        ),
        ("f($__timeFrom(), $__timeTo())", "f('2017-07-18T11:15:52.001Z', '2017-07-18T11:25:52Z')"),
        ("GROUP BY $__timeGroup(time_column,'5m')", "GROUP BY floor(extract(epoch from time_column)/300)*300"),
        (
            "SELECT $__timeGroup(time_column, '1d'), x",
            "SELECT floor(extract(epoch from time_column)/86400)*86400 AS \"time\", x",
        ),
        ("$__timeGroupAlias(c, '1h')", "floor(extract(epoch from c)/3600)*3600 AS \"time\""),
        ("f('$site', '${site}', '$site_name')", "f('https://a.test/', 'https://a.test/', '$site_name')"),
    ];
    for (sql, expected) in cases {
        assert_eq!(expand(sql, from, to, &[("site", "https://a.test/")]).as_deref(), Ok(expected), "{sql}");
    }
    assert!(expand("$__nope()", from, to, &[]).is_err(), "an unknown macro is an error, as in Grafana");
}

/// The owner, consumer and reader roles of one test (roles.sql), dropped on drop, after the
/// test's database (declare this first).
struct Roles {
    stack: &'static Stack,
    suffix: String,
    password: String,
}

impl Roles {
    fn name(&self, role: &str) -> String {
        format!("test_{role}_{}", self.suffix)
    }

    fn as_superuser(&self, database: &str, vars: &[(&str, String)], sql: &str) {
        let mut command = Command::new(repo_file("scripts/stack"));
        command.args(["psql", "-d", database]).env("WEBSENTRY_STACK_DIR", self.stack.var("WEBSENTRY_STACK_DIR"));
        for (name, value) in vars {
            command.args(["-v", &format!("{name}={value}")]);
        }
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("psql");
        child.stdin.take().expect("stdin").write_all(sql.as_bytes()).expect("writing SQL to psql");
        let output = child.wait_with_output().expect("psql");
        assert!(output.status.success(), "psql as the superuser failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![("owner", self.name("owner")), ("consumer", self.name("archiver")), ("reader", self.name("reader"))]
    }

    /// Settings to connect to `database` as `role`.
    fn settings(&self, database: &str, role: &str) -> DatabaseSettings {
        let mut args = self.stack.database_args(database);
        args.database_user = Some(self.name(role));
        args.database_password = Some(self.password.clone().into());
        DatabaseSettings::try_from(&args).expect("the role's settings")
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        let sql: String =
            ["reader", "archiver", "owner"].map(|r| format!("DROP ROLE IF EXISTS {};", self.name(r))).concat();
        self.as_superuser("postgres", &[], &sql);
    }
}

#[test]
fn every_sql_query_of_the_dashboard_returns_rows_as_the_read_only_role() {
    let stack = Stack::get();
    let roles = Roles {
        stack,
        suffix: format!("{:016x}", rand::random::<u64>()),
        password: format!("{:032x}", rand::random::<u128>()),
    };
    let db = stack.create_database();
    let topic = stack.create_topic(1);
    // The archive as an administrator sets it up: roles.sql, the migrations as the owner,
    // grants.sql, the consumer archiving as its own user.
    let roles_sql = std::fs::read_to_string(repo_file("deploy/postgres/roles.sql")).expect("roles.sql");
    let grants_sql = std::fs::read_to_string(repo_file("deploy/postgres/grants.sql")).expect("grants.sql");
    roles.as_superuser(&db.name, &roles.vars(), &roles_sql);
    let passwords: String = ["owner", "archiver", "reader"]
        .map(|r| format!("ALTER ROLE {} PASSWORD '{}';", roles.name(r), roles.password))
        .concat();
    roles.as_superuser(&db.name, &[], &passwords);
    stack
        .consumer_migrating(&db)
        .env("WEBSENTRY_DATABASE_USER", roles.name("owner"))
        .env("WEBSENTRY_DATABASE_PASSWORD", &roles.password)
        .success();
    roles.as_superuser(&db.name, &roles.vars(), &format!("SET ROLE {};\n{grants_sql}", roles.name("owner")));

    // Three hours of a flaky site probed every 5 minutes from one location (down for 20 minutes
    // in the middle, with a certificate), and a steady one from two.
    let now = OffsetDateTime::now_utc();
    let mut reports = Vec::new();
    for step in 0..36i64 {
        let at = now - Duration::minutes(5 * (36 - step));
        let mut flaky = sample_report("https://flaky.test/");
        flaky.checked_at = at;
        flaky.probe = "eu".into();
        flaky.interval_s = Some(300);
        flaky.name = Some("Flaky".into());
        flaky.group = Some("shop".into());
        flaky.tls_expires_at = Some(now + Duration::days(10));
        flaky.tls_chain_expires_at = Some(now + Duration::days(8));
        flaky.response_ms = 40.0 + step as f64;
        if (18..22).contains(&step) {
            flaky.error = Some(ProbeError { kind: ErrorKind::Connect, message: "refused".into() });
            flaky.code = 0;
        }
        reports.push(flaky);
        for probe in ["eu", "us"] {
            let mut steady = sample_report("https://steady.test/");
            steady.checked_at = at;
            steady.probe = probe.into();
            steady.interval_s = Some(300);
            reports.push(steady);
        }
    }
    let records = reports.iter().map(|r| (Some(r.url.clone().into_bytes()), Some(r.to_json()))).collect();
    stack.produce_raw(&topic, 0, records);
    stack
        .consumer(&topic, &db)
        .env("WEBSENTRY_DATABASE_USER", roles.name("archiver"))
        .env("WEBSENTRY_DATABASE_PASSWORD", &roles.password)
        .success();
    let mut reader = database::connect(&roles.settings(&db.name, "reader")).expect("connecting as websentry_reader");
    let from = now - Duration::hours(6);
    let columns: BTreeMap<&str, &[&str]> = COLUMNS.iter().copied().collect();

    let mut ran = 0;
    for query in queries(&dashboard()).into_iter().filter(|q| q.sql) {
        let sql = expand(&query.text, from, now, &[("site", "https://flaky.test/")])
            .unwrap_or_else(|err| panic!("{}: {err}", query.place));
        let statement = reader.prepare(&sql).unwrap_or_else(|err| panic!("{}: {err}\n{sql}", query.place));
        let rows = reader.query(&statement, &[]).unwrap_or_else(|err| panic!("{}: {err}\n{sql}", query.place));

        let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
        assert_eq!(names, columns[query.title.as_str()], "{}: its columns\n{sql}", query.place);
        assert!(!rows.is_empty(), "{}: no row\n{sql}", query.place);
        println!("{}: {} rows", query.place, rows.len());
        ran += 1;
    }
    assert_eq!(ran, COLUMNS.len(), "every SQL query ran");
    // The per-hour panels ask for days when the range starts before the hourly rollups kept (the
    // consumer's upkeep above set the horizon a week back): a month is drawn per UTC day.
    let stepped: Vec<Query> =
        queries(&dashboard()).into_iter().filter(|q| q.text.contains("rollup_horizons")).collect();
    assert_eq!(stepped.len(), 2, "site_latency and site_timeline choose their step");
    for query in stepped {
        for (from, daily) in [(now - Duration::hours(6), false), (now - Duration::days(30), true)] {
            let sql = expand(&query.text, from, now, &[("site", "https://flaky.test/")]).expect("expanded");
            let times: Vec<OffsetDateTime> =
                reader.query(&sql, &[]).expect("a stepped query").iter().map(|row| row.get(0)).collect();
            let midnights = times.iter().filter(|t| t.time() == time::Time::MIDNIGHT).count();
            assert!(!times.is_empty(), "{}: no row from {from}", query.place);
            assert_eq!(midnights == times.len(), daily, "{}: buckets from {from}: {times:?}", query.place);
        }
    }
    let sites: Vec<String> = reader
        .query("SELECT DISTINCT url FROM latest_reports ORDER BY 1", &[])
        .expect("the site variable's query")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(sites, ["https://flaky.test/", "https://steady.test/"], "the site variable's values");
    let refused = reader.query("SELECT count(*) FROM reports", &[]);
    assert!(refused.is_err(), "the reader is read-only on the interface: it cannot read reports");
}
