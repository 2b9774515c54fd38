//! `cargo bench -p websentry-tests --bench drain`: how fast a one-off consumer drains a topic,
//! against PostgreSQL's own ceiling (binary COPY of the same rows from a file into the same
//! partitioned `reports`) and the naive floor (one INSERT and one commit per row). Needs the running
//! stack (`scripts/stack up`).
//!
//! 200,000 reports (`WEBSENTRY_BENCH_REPORTS` to change) go into a new 4-partition topic, and 0.5 %
//! more records are producer retries: exact copies of an earlier record of the same partition,
//! placed up to [`DUPLICATE_REACH`] records later, so that most batches meet one and take the
//! writer's duplicate path (temporary table + `INSERT … ON CONFLICT DO NOTHING`). The consumer runs
//! as a child process so that its peak RSS (VmHWM) can be read; it writes the rollups too, the
//! COPY ceiling does not. The topic is drained `WEBSENTRY_BENCH_DRAIN_RUNS` times (3 unless set),
//! each into a fresh database and followed by a COPY ceiling run: each drain is set against the
//! COPY beside it, and the figures are the medians (one run took 1.9 × as long as the two beside
//! it on the 2-core machine, and the COPY itself drifts by a third over minutes). Then a daemon
//! catches up with the same topic once, into a fresh database, as after an outage: timed until its
//! stored offsets reach the topic's end. Each run also drains with one writer
//! (`WEBSENTRY_CONSUMER_WRITERS=1`) beside the default two, unless `WEBSENTRY_CONSUMER_WRITERS` is
//! set for the bench (then passed on): what the second connection buys, and costs, in the same
//! run. `WEBSENTRY_BENCH_CONSUMER` names another consumer binary
//! to time instead of this workspace's; `WEBSENTRY_BENCH_AB` names one to drain too in every run,
//! in turns with this one (an A/B on the same topic and machine, run by run; the daemon's catch-up
//! too, as many times), and prints its figures too: name the image's binary
//! (`scripts/build-static`'s, built against musl) to measure what ships. Before the drains, the
//! consumer's writer (`websentry_consumer::insert`, binary COPY) is compared with a multi-row
//! `INSERT … VALUES` of the same columns, on 100,000 reports in batches of 5,000, one transaction
//! each. (An `UNNEST` of one array per column was measured too
//! when COPY was chosen, and was no faster than `VALUES`; it is not kept.) The topic and the
//! databases are removed at the end.
//!
//! The peer: Kafka Connect (standalone, the broker's version) with Debezium's JDBC sink, the
//! archive side's usual answer, drains the same reports with the same 0.5 % retries from a topic
//! of its own into a table it creates, as one row per report (upsert on `id`: at-least-once, no
//! rollups), over mutual TLS as the consumer does. Without a schema registry here, each record is
//! JSON with its schema inline (`JsonConverter`, `schemas.enable`), the report's fields flat.
//! Timed from the worker's start (a JVM, `-Xmx2G` as `connect-standalone.sh` gives it) until
//! every report is a row; its peak RSS too. Its jars come from Maven Central
//! (`scripts/stack connect-libs`); `WEBSENTRY_BENCH_PEER=0` leaves it out.

use std::{
    collections::BTreeMap,
    io::{BufReader, BufWriter, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use postgres::{types::ToSql, Transaction};
use rskafka::{
    client::partition::{Compression, UnknownTopicHandling},
    record::Record,
};
use websentry_consumer::{
    batch::Archivable,
    insert::{self, Row, COLUMNS},
    schema,
};
use websentry_shared::report::Report;
use websentry_tests::{binary, figure, median, repo_root, sample_report, Relay, Stack, TestDatabase};

const PARTITIONS: i32 = 4;
const RECORDS_PER_REQUEST: usize = 2_000;
/// The peer's records carry their schema (~2.3 kB each): fewer per request, under the broker's 1 MB.
const PEER_RECORDS_PER_REQUEST: usize = 300;
const METHOD_ROWS: usize = 100_000;
const METHOD_BATCH: usize = 5_000;
const ROW_AT_A_TIME_SAMPLE: usize = 2_000;
/// One record in this many is followed by a copy of an earlier one (0.5 %);
/// `WEBSENTRY_BENCH_DUPLICATE_EVERY` to change, 0 for none.
const DUPLICATE_EVERY: usize = 200;
/// How far back (in records of the partition) a duplicated record may be.
const DUPLICATE_REACH: usize = 20_000;
/// How long a daemon may take to catch up with the whole topic.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(600);
/// How long the peer may take to write every report.
const PEER_DEADLINE: Duration = Duration::from_secs(900);

fn main() {
    let reports: usize = std::env::var("WEBSENTRY_BENCH_REPORTS").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let every: usize =
        std::env::var("WEBSENTRY_BENCH_DUPLICATE_EVERY").ok().and_then(|n| n.parse().ok()).unwrap_or(DUPLICATE_EVERY);
    let runs = runs();
    let stack = Stack::get();
    let relay = database_delay().map(|one_way| {
        let relay = Relay::delayed(stack.database_address(), one_way);
        let port = relay.address().port();
        DATABASE_PORT.set(port).expect("set once");
        println!(
            "database delayed: {:.2} ms each way through a relay on port {port}; a round trip of SELECT 1 took {:.2} ms (median of 50); the COPY ceiling is not delayed",
            one_way.as_secs_f64() * 1e3,
            round_trip_ms(stack, port)
        );
        relay
    });
    println!(
        "drain benchmark: {reports} reports, {PARTITIONS} partitions, default batch max {}",
        websentry_consumer::settings::BATCH_MAX.default_text()
    );

    let copy = insert_rate(stack, |tx, topic, partition, reports| {
        // In a savepoint of the transaction, as the consumer writes a batch.
        let mut batch = tx.savepoint("batch")?;
        let new = insert::insert_reports(&mut batch, "batch", None, topic, partition, reports)?.len() as u64;
        batch.commit()?;
        Ok(new)
    });
    let values = insert_rate(stack, insert_values);
    println!(
        "writers ({METHOD_ROWS} rows, batches of {METHOD_BATCH}, one transaction each): the consumer's COPY {copy:.0} rows/s; INSERT ... VALUES {values:.0} rows/s ({:.2} x)",
        copy / values
    );

    let topic = stack.create_topic(PARTITIONS);
    let started = Instant::now();
    let duplicates = produce(stack, &topic, reports, every, (Report::to_json, RECORDS_PER_REQUEST));
    println!(
        "loaded {reports} reports + {duplicates} duplicate records ({:.2} %) into {topic} in {:.1} s",
        duplicates as f64 * 100.0 / reports as f64,
        started.elapsed().as_secs_f64()
    );

    // The same topic drained into a fresh database each run (the offsets live in the database),
    // each drain followed by a COPY of the same rows: the machine's speed drifts by up to a third
    // over minutes, so each drain is set against the COPY timed beside it, and the figures are the
    // runs' medians. With `WEBSENTRY_BENCH_AB`, the other build drains too in each run, the two in
    // turns (first one, then the other).
    let other = std::env::var_os("WEBSENTRY_BENCH_AB").map(PathBuf::from);
    let this = consumer_binary();
    let (mut drains, mut copies, mut others) = (Vec::with_capacity(runs), Vec::with_capacity(runs), Vec::new());
    let (mut cpus, mut other_cpus) = (Vec::with_capacity(runs), Vec::new());
    let (mut peak_kb, mut other_kb) = (0, 0);
    // The drains of this build with one writer, unless the writers are set for the bench.
    let (mut alone, mut alone_kb) = (Vec::new(), 0);
    let one_writer = std::env::var_os("WEBSENTRY_CONSUMER_WRITERS").is_none();
    let mut ceiling: Option<Ceiling> = None;
    // Every run's database is kept to the end: dropping one makes PostgreSQL checkpoint, which
    // would write out in the next run's time.
    let mut databases = Vec::with_capacity(runs);
    for run in 1..=runs {
        let mut order = vec![(&this, "consumer", None)];
        if one_writer {
            order.push((&this, "one writer", Some("1")));
        }
        if let Some(other) = &other {
            order.push((other, "other build", None));
        }
        if run % 2 == 0 {
            order.reverse();
        }
        for (binary, name, writers) in order {
            let db = stack.create_database();
            let (took, kb, cpu) = drain(stack, binary, &topic, &db, writers);
            let archived = db.count("SELECT count(*) FROM reports");
            assert_eq!(archived, reports as i64, "{name}: archived every distinct report once");
            for table in ["rollup_hourly", "rollup_daily"] {
                let counted = db.count(&format!("SELECT sum(probes)::bigint FROM {table}"));
                assert_eq!(counted, reports as i64, "{name}: {table} counts every distinct report once");
            }
            println!(
                "{name} drain, run {run}/{runs}: {:.0} distinct rows/s ({took:.2} s), peak RSS {:.1} MB, CPU {cpu:.2} s ({:.1} µs a report)",
                reports as f64 / took,
                kb as f64 / 1024.0,
                cpu * 1e6 / reports as f64
            );
            if writers.is_some() {
                alone.push(took);
                alone_kb = alone_kb.max(kb);
            } else if binary == &this {
                drains.push(took);
                cpus.push(cpu);
                peak_kb = peak_kb.max(kb);
            } else {
                others.push(took);
                other_cpus.push(cpu);
                other_kb = other_kb.max(kb);
            }
            databases.push(db);
        }
        let ceiling = ceiling.get_or_insert_with(|| Ceiling::new(&databases[0]));
        let took = ceiling.time(stack);
        println!("PostgreSQL COPY, run {run}/{runs}: {:.0} rows/s ({took:.2} s)", reports as f64 / took);
        copies.push(took);
    }
    let db = &databases[0];
    let drain_s = median(&drains);
    let consumer_rate = reports as f64 / drain_s;
    println!(
        "consumer one-off drain : {consumer_rate:.0} distinct rows/s ({:.0} records/s, median {drain_s:.2} s of {runs} runs, {:.0}-{:.0} rows/s, rollups included), peak RSS {:.1} MB, CPU {:.1} µs a report (median)",
        (reports + duplicates) as f64 / drain_s,
        reports as f64 / drains.iter().copied().fold(f64::MIN, f64::max),
        reports as f64 / drains.iter().copied().fold(f64::MAX, f64::min),
        peak_kb as f64 / 1024.0,
        median(&cpus) * 1e6 / reports as f64
    );
    // Rows a direct COPY wrote before it met a duplicate, thrown away with its savepoint (the batch
    // then went through the temporary table): the duplicate path's wasted work.
    let wasted = db.count(
        "SELECT coalesce(sum(n_dead_tup), 0)::bigint FROM pg_stat_user_tables
         WHERE relname = 'reports_default' OR relname LIKE 'reports_p%'",
    );
    println!(
        "duplicate path         : {wasted} rows written then rolled back by direct COPYs that met a duplicate (n_dead_tup, {:.0} % of the rows)",
        wasted as f64 * 100.0 / reports as f64
    );

    let copy_s = median(&copies);
    let copy_rate = reports as f64 / copy_s;
    println!(
        "PostgreSQL COPY ceiling: {copy_rate:.0} rows/s (median {copy_s:.2} s of {runs} runs, binary COPY of the same rows from a file into the partitioned reports, no rollups)"
    );
    // Each drain against the COPY of its own run.
    let paired: Vec<f64> = copies.iter().zip(&drains).map(|(copy, drain)| copy / drain).collect();
    let against_copy = median(&paired);
    if !others.is_empty() {
        let changes: Vec<f64> = others.iter().zip(&drains).map(|(other, this)| other / this).collect();
        let against: Vec<f64> = copies.iter().zip(&others).map(|(copy, other)| copy / other).collect();
        println!(
            "A/B                    : this build {consumer_rate:.0} rows/s and {:.1} µs of CPU a report, the other {:.0} rows/s and {:.1} µs (medians); this build against the other, run by run: {} (median {:.2} x); against COPY: {:.2} x and {:.2} x",
            median(&cpus) * 1e6 / reports as f64,
            reports as f64 / median(&others),
            median(&other_cpus) * 1e6 / reports as f64,
            changes.iter().map(|c| format!("{c:.2}")).collect::<Vec<_>>().join(", "),
            median(&changes),
            against_copy,
            median(&against),
        );
    }

    let row_rate = row_at_a_time(db);
    println!(
        "row-at-a-time          : {row_rate:.0} rows/s (sample of {ROW_AT_A_TIME_SAMPLE}, extrapolated {:.0} s for {reports})",
        reports as f64 / row_rate
    );
    println!(
        "ratios                 : consumer/COPY {against_copy:.2} (median of the runs' own; version 3: 0.43); consumer/row-at-a-time {:.0}; peak RSS {:.1} MB",
        consumer_rate / row_rate,
        peak_kb as f64 / 1024.0
    );
    let retries = if every == 0 { "no retries".to_owned() } else { format!("{:.1} % retries", 100.0 / every as f64) };
    // The batch settings the consumer was given (see `drain`), or its defaults.
    let mut batches = match (std::env::var("WEBSENTRY_BATCH_BYTES"), std::env::var("WEBSENTRY_BATCH_MAX")) {
        (Err(_), Err(_)) => "default batches".to_owned(),
        (bytes, max) => format!(
            "batches of {} bytes and {} records",
            bytes.as_deref().unwrap_or("default"),
            max.as_deref().unwrap_or("default")
        ),
    };
    if let Ok(writers) = std::env::var("WEBSENTRY_CONSUMER_WRITERS") {
        batches.push_str(&format!(", {writers} writer(s)"));
    }
    figure(
        &format!("drain with rollups, {batches}, {retries}, against COPY"),
        format!("{against_copy:.2} x"),
        ">= 0.5 x",
    );
    figure(&format!("drain with rollups, {batches}"), format!("{consumer_rate:.0} rows/s"), "-");
    figure("PostgreSQL COPY of the same rows", format!("{copy_rate:.0} rows/s"), "-");
    figure("drain peak RSS", format!("{:.1} MB", peak_kb as f64 / 1024.0), "<= 30 MB");
    if !alone.is_empty() {
        let paired: Vec<f64> = copies.iter().zip(&alone).map(|(copy, drain)| copy / drain).collect();
        let gains: Vec<f64> = alone.iter().zip(&drains).map(|(one, two)| one / two).collect();
        println!(
            "one writer             : {:.0} rows/s (median), the default writers {} faster run by run (median {:.2} x)",
            reports as f64 / median(&alone),
            gains.iter().map(|g| format!("{g:.2}")).collect::<Vec<_>>().join(", "),
            median(&gains)
        );
        figure(
            &format!("drain with rollups, {batches}, one writer, {retries}, against COPY"),
            format!("{:.2} x", median(&paired)),
            ">= 0.5 x",
        );
        figure("drain peak RSS, one writer", format!("{:.1} MB", alone_kb as f64 / 1024.0), "<= 30 MB");
    }
    if !others.is_empty() {
        // The other build's own figures: given the image's binary (`scripts/build-static`), what
        // ships, built against musl.
        let against: Vec<f64> = copies.iter().zip(&others).map(|(copy, other)| copy / other).collect();
        figure(
            &format!("drain with rollups, {batches}, {retries}, against COPY, other build"),
            format!("{:.2} x", median(&against)),
            ">= 0.5 x",
        );
        figure("drain peak RSS, other build", format!("{:.1} MB", other_kb as f64 / 1024.0), "<= 30 MB");
    }

    // A daemon catching up with the same topic (as after an outage), once, into a fresh database.
    let daemon_db = stack.create_database();
    let (took, kb) = catch_up(stack, &topic, &daemon_db, (reports + duplicates) as i64);
    assert_eq!(
        daemon_db.count("SELECT count(*) FROM reports"),
        reports as i64,
        "the daemon archived every report once"
    );
    for table in ["rollup_hourly", "rollup_daily"] {
        let counted = daemon_db.count(&format!("SELECT sum(probes)::bigint FROM {table}"));
        assert_eq!(counted, reports as i64, "the daemon's {table} counts every distinct report once");
    }
    let daemon_rate = reports as f64 / took;
    println!(
        "consumer daemon catch-up: {daemon_rate:.0} distinct rows/s ({took:.2} s, one run), peak RSS {:.1} MB",
        kb as f64 / 1024.0
    );
    figure(&format!("daemon catching up with rollups, {batches}"), format!("{daemon_rate:.0} rows/s"), "-");
    figure(
        &format!("daemon catching up with rollups, {batches}, against COPY"),
        format!("{:.2} x", daemon_rate / copy_rate),
        "-",
    );
    databases.push(daemon_db);
    // With `WEBSENTRY_BENCH_AB`, both builds catch up in turns, `runs` times each, each into a
    // fresh database: an A/B of the daemon's path.
    if let Some(other) = &other {
        let (mut these, mut those) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        for run in 1..=runs {
            let mut order = [(&this, true), (other, false)];
            if run % 2 == 0 {
                order.reverse();
            }
            for (binary, mine) in order {
                let db = stack.create_database();
                let (took, kb) = catch_up_with(stack, binary, &topic, &db, (reports + duplicates) as i64);
                assert_eq!(db.count("SELECT count(*) FROM reports"), reports as i64, "every report once");
                println!(
                    "{} daemon catch-up, run {run}/{runs}: {:.0} distinct rows/s ({took:.2} s), peak RSS {:.1} MB",
                    if mine { "this build's" } else { "other build's" },
                    reports as f64 / took,
                    kb as f64 / 1024.0
                );
                if mine {
                    these.push(took)
                } else {
                    those.push(took)
                }
                databases.push(db);
            }
        }
        let changes: Vec<f64> = those.iter().zip(&these).map(|(other, this)| other / this).collect();
        println!(
            "A/B daemon catch-up    : this build {:.0} rows/s, the other {:.0} rows/s (medians); this build against the other, run by run: {} (median {:.2} x)",
            reports as f64 / median(&these),
            reports as f64 / median(&those),
            changes.iter().map(|c| format!("{c:.2}")).collect::<Vec<_>>().join(", "),
            median(&changes)
        );
    }
    delete_topic(stack, &topic);
    drop(relay);

    if std::env::var("WEBSENTRY_BENCH_PEER").is_ok_and(|v| v == "0") {
        println!("peer: left out (WEBSENTRY_BENCH_PEER=0)");
        return;
    }
    let peer = connect_peer(stack, reports, every);
    let peer_rate = reports as f64 / peer.whole_s;
    println!(
        "Kafka Connect + Debezium JDBC sink: {peer_rate:.0} distinct rows/s ({:.2} s from the worker's start; {:.0} rows/s from its first row, {:.2} s), peak RSS {:.0} MB; {} records written ({:.0} bytes each, schema inline)",
        peer.whole_s,
        peer.steady_rows as f64 / peer.steady_s,
        peer.steady_s,
        peer.peak_kb as f64 / 1024.0,
        reports + peer.duplicates,
        peer.record_bytes
    );
    // The peer's rate from its first row leaves its JVM's start out (ours starts in milliseconds):
    // the comparison that favours it is the one held to the target.
    let peer_steady = peer.steady_rows as f64 / peer.steady_s;
    figure(
        &format!("drain with rollups, {batches}, against Kafka Connect + Debezium's JDBC sink from its first row"),
        format!("{:.2} x", consumer_rate / peer_steady),
        ">= 2 x",
    );
    figure(
        &format!("drain with rollups, {batches}, against Kafka Connect + Debezium's JDBC sink from its start"),
        format!("{:.2} x", consumer_rate / peer_rate),
        "-",
    );
    figure("Kafka Connect + Debezium's JDBC sink from its first row", format!("{peer_steady:.0} rows/s"), "-");
    figure("Kafka Connect + Debezium's JDBC sink peak RSS", format!("{:.0} MB", peer.peak_kb as f64 / 1024.0), "-");
}

/// What the peer took: from its start, and from its first row written; its peak RSS (KiB).
struct Peer {
    whole_s: f64,
    steady_s: f64,
    steady_rows: i64,
    peak_kb: u64,
    duplicates: usize,
    record_bytes: f64,
}

/// The JSON converter's schema of a report, its fields flat (the JDBC sink writes no nested ones).
const PEER_SCHEMA: &str = r#"{"type":"struct","name":"websentry.report","optional":false,"fields":[
{"field":"id","type":"string","optional":false},{"field":"checked_at","type":"string","optional":false},
{"field":"url","type":"string","optional":false},{"field":"probe","type":"string","optional":false},
{"field":"code","type":"int32","optional":false},{"field":"response_ms","type":"double","optional":false},
{"field":"regexp_match","type":"string","optional":true},{"field":"error_kind","type":"string","optional":true},
{"field":"error_message","type":"string","optional":true},{"field":"timing_dns_ms","type":"double","optional":true},
{"field":"timing_connect_ms","type":"double","optional":true},{"field":"timing_tls_ms","type":"double","optional":true},
{"field":"timing_ttfb_ms","type":"double","optional":true},{"field":"timing_transfer_ms","type":"double","optional":true},
{"field":"http_version","type":"string","optional":true},{"field":"final_url","type":"string","optional":true},
{"field":"redirects","type":"int32","optional":false},{"field":"body_bytes","type":"int64","optional":true},
{"field":"tls_expires_at","type":"string","optional":true},{"field":"interval_s","type":"int32","optional":true},
{"field":"inconclusive","type":"boolean","optional":false}]}"#;

/// A report as the peer's record: `{"schema": …, "payload": …}`.
fn peer_value(report: &Report) -> Vec<u8> {
    let rfc3339 = |t: &time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).expect("a time");
    let t = &report.timings_ms;
    let payload = serde_json::json!({
        "id": report.id.to_string(), "checked_at": rfc3339(&report.checked_at), "url": report.url,
        "probe": report.probe, "code": report.code, "response_ms": report.response_ms,
        "regexp_match": report.regexp_match,
        "error_kind": report.error.as_ref().map(|e| serde_json::to_value(e.kind).expect("a kind")),
        "error_message": report.error.as_ref().map(|e| e.message.clone()),
        "timing_dns_ms": t.dns, "timing_connect_ms": t.connect, "timing_tls_ms": t.tls, "timing_ttfb_ms": t.ttfb,
        "timing_transfer_ms": t.transfer, "http_version": report.http_version, "final_url": report.final_url,
        "redirects": report.redirects, "body_bytes": report.body_bytes,
        "tls_expires_at": report.tls_expires_at.as_ref().map(rfc3339), "interval_s": report.interval_s,
        "inconclusive": report.inconclusive,
    });
    format!(r#"{{"schema":{},"payload":{payload}}}"#, PEER_SCHEMA.replace('\n', "")).into_bytes()
}

/// Kafka Connect with Debezium's JDBC sink over a topic of `reports` reports (and the same
/// retries), until each is a row of a fresh database.
fn connect_peer(stack: &Stack, reports: usize, every: usize) -> Peer {
    let libs = connect_libs();
    let topic = stack.create_topic(PARTITIONS);
    let duplicates = produce(stack, &topic, reports, every, (peer_value, PEER_RECORDS_PER_REQUEST));
    let record_bytes = peer_value(&sample_report("http://site-1.test/")).len() as f64;
    let db = stack.create_database();
    let dir = std::env::temp_dir().join(format!("websentry-bench-connect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the peer's folder");
    let mut keystore = std::fs::read_to_string(stack.pki("client.key")).expect("the client key");
    keystore.push_str(&std::fs::read_to_string(stack.pki("client.crt")).expect("the client certificate"));
    std::fs::write(dir.join("client.pem"), keystore).expect("writing the PEM keystore");
    let tls = [
        "security.protocol=SSL".to_owned(),
        "ssl.truststore.type=PEM".to_owned(),
        format!("ssl.truststore.location={}", stack.pki("ca.crt").display()),
        "ssl.keystore.type=PEM".to_owned(),
        format!("ssl.keystore.location={}", dir.join("client.pem").display()),
    ];
    let mut worker = vec![
        format!("bootstrap.servers={}", stack.var("WEBSENTRY_KAFKA_HOSTS")),
        "key.converter=org.apache.kafka.connect.storage.StringConverter".to_owned(),
        "value.converter=org.apache.kafka.connect.json.JsonConverter".to_owned(),
        "value.converter.schemas.enable=true".to_owned(),
        format!("offset.storage.file.filename={}", dir.join("offsets").display()),
        format!("listeners=http://127.0.0.1:{}", free_port()),
        "consumer.auto.offset.reset=earliest".to_owned(),
    ];
    worker.extend(tls.iter().cloned());
    worker.extend(tls.iter().map(|line| format!("consumer.{line}")));
    std::fs::write(dir.join("worker.properties"), worker.join("\n")).expect("writing the worker's settings");
    let url = format!(
        "jdbc:postgresql://{}:{}/{}?sslmode=verify-full&sslrootcert={}",
        stack.var("WEBSENTRY_DATABASE_HOST"),
        stack.var("WEBSENTRY_DATABASE_PORT"),
        db.name,
        stack.pki("ca.crt").display()
    );
    let sink = [
        "name=websentry-peer".to_owned(),
        "connector.class=io.debezium.connector.jdbc.JdbcSinkConnector".to_owned(),
        "tasks.max=1".to_owned(),
        format!("topics={topic}"),
        format!("connection.url={url}"),
        format!("connection.username={}", stack.var("WEBSENTRY_DATABASE_USER")),
        format!("connection.password={}", stack.var("WEBSENTRY_DATABASE_PASSWORD")),
        "insert.mode=upsert".to_owned(),
        "primary.key.mode=record_value".to_owned(),
        "primary.key.fields=id".to_owned(),
        "schema.evolution=basic".to_owned(),
        "table.name.format=peer_reports".to_owned(),
    ];
    std::fs::write(dir.join("sink.properties"), sink.join("\n")).expect("writing the sink's settings");
    std::fs::write(
        dir.join("log4j2.properties"),
        format!(
            "status = warn\nappender.file.type = File\nappender.file.name = FILE\nappender.file.fileName = {}\n\
             appender.file.layout.type = PatternLayout\nappender.file.layout.pattern = [%d] %p %m (%c)%n\n\
             rootLogger.level = WARN\nrootLogger.appenderRef.file.ref = FILE\n",
            dir.join("connect.log").display()
        ),
    )
    .expect("writing the log settings");

    let started = Instant::now();
    let child = Command::new("java")
        .args(["-Xms256M", "-Xmx2G", "-XX:+UseG1GC"])
        .arg(format!("-Dlog4j2.configurationFile={}", dir.join("log4j2.properties").display()))
        .arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .arg("org.apache.kafka.connect.cli.ConnectStandalone")
        .arg(dir.join("worker.properties"))
        .arg(dir.join("sink.properties"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting Kafka Connect");
    let mut worker = Running(child);
    let status_file = format!("/proc/{}/status", worker.0.id());
    let (mut peak_kb, mut first) = (0, None);
    let done = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next());
            peak_kb = peak_kb.max(hwm.and_then(|kb| kb.parse().ok()).unwrap_or(0));
        }
        let rows = db.try_count("SELECT count(*) FROM peer_reports").unwrap_or(0);
        if rows > 0 && first.is_none() {
            first = Some((started.elapsed().as_secs_f64(), rows));
        }
        if rows >= reports as i64 {
            break started.elapsed().as_secs_f64();
        }
        if let Some(status) = worker.0.try_wait().expect("waiting") {
            panic!("Kafka Connect stopped ({status}) at {rows} rows: see {}", dir.join("connect.log").display());
        }
        assert!(
            started.elapsed() < PEER_DEADLINE,
            "Kafka Connect wrote {rows} of {reports} rows in {PEER_DEADLINE:?}: see {}",
            dir.join("connect.log").display()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(worker);
    assert_eq!(db.count("SELECT count(*) FROM peer_reports"), reports as i64, "the peer wrote each report once");
    let (first_s, first_rows) = first.expect("a first row before the last");
    let _ = std::fs::remove_dir_all(&dir);
    delete_topic(stack, &topic);
    Peer {
        whole_s: done,
        steady_s: done - first_s,
        steady_rows: reports as i64 - first_rows,
        peak_kb,
        duplicates,
        record_bytes,
    }
}

/// A child process (the Connect worker, a consumer), killed when dropped: also when the bench
/// panics, so that no daemon outlives a failed run and holds the metrics port the next one needs.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The folder of Kafka Connect's and the sink's jars, fetched by the stack's script if needed.
fn connect_libs() -> PathBuf {
    let script = repo_root().join("scripts/stack");
    let output = Command::new(&script).arg("connect-libs").stderr(Stdio::inherit()).output().expect("scripts/stack");
    assert!(output.status.success(), "scripts/stack connect-libs failed (WEBSENTRY_BENCH_PEER=0 leaves the peer out)");
    let folder = PathBuf::from(String::from_utf8(output.stdout).expect("a path").trim());
    assert!(Path::new(&folder).is_dir(), "no folder {}", folder.display());
    folder
}

/// A port nobody listens on now, for the worker's REST listener.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A batch writer: what it wrote, or why not.
type Writer = fn(&mut Transaction<'_>, &str, i32, &[Archivable]) -> anyhow::Result<u64>;

/// Rows per second of one writer, a transaction per batch, in a fresh database.
fn insert_rate(stack: &Stack, write: Writer) -> f64 {
    let db = stack.create_database();
    let mut client = db.client();
    schema::migrate(&mut client).expect("migrating");
    create_todays_partitions(&mut client);
    let all: Vec<Archivable> = (0..METHOD_ROWS)
        .map(|i| {
            let report = sample_report(&format!("http://site-{}.test/", i % 997));
            let payload = report.to_json();
            Archivable { report, extra: None, offset: i as i64, key: None, payload }
        })
        .collect();
    let started = Instant::now();
    for chunk in all.chunks(METHOD_BATCH) {
        let mut tx = client.transaction().expect("transaction");
        assert_eq!(write(&mut tx, "bench", 0, chunk).expect("writing"), chunk.len() as u64);
        tx.commit().expect("commit");
    }
    METHOD_ROWS as f64 / started.elapsed().as_secs_f64()
}

/// The alternative to COPY: `INSERT … VALUES (…), (…) ON CONFLICT (id, checked_at) DO NOTHING`, the rows split
/// under PostgreSQL's limit of 65,535 parameters per statement.
fn insert_values(tx: &mut Transaction<'_>, topic: &str, partition: i32, reports: &[Archivable]) -> anyhow::Result<u64> {
    let columns: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
    let mut inserted = 0;
    for chunk in reports.chunks(65_535 / COLUMNS.len()) {
        let rows: Vec<Row> = chunk.iter().map(|report| Row::of(report, topic, partition)).collect();
        let tuples: Vec<String> = (0..rows.len())
            .map(|n| {
                let casts = COLUMNS
                    .iter()
                    .enumerate()
                    .map(|(c, column)| format!("${}::{}", n * COLUMNS.len() + c + 1, column.ty.name()));
                format!("({})", casts.collect::<Vec<_>>().join(","))
            })
            .collect();
        let sql = format!(
            "INSERT INTO reports ({}) VALUES {} ON CONFLICT (id, checked_at) DO NOTHING",
            columns.join(", "),
            tuples.join(",")
        );
        let params: Vec<&(dyn ToSql + Sync)> = rows.iter().flat_map(Row::values).collect();
        inserted += tx.execute(&sql, &params)?;
    }
    Ok(inserted)
}

/// Writes `count` reports round-robin over the partitions, encoded by `encode`, `per_request` to a
/// produce request, the partitions in parallel, and after every `every`th record of a partition
/// (none for 0) an exact copy of an earlier record of it (a producer retry), up to
/// [`DUPLICATE_REACH`] records back. Returns how many copies were written.
fn produce(
    stack: &Stack,
    topic: &str,
    count: usize,
    every: usize,
    (encode, per_request): (fn(&Report) -> Vec<u8>, usize),
) -> usize {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let client = stack.kafka_settings(topic).connect("websentry-bench").await.expect("Kafka");
        let tasks = (0..PARTITIONS).map(|partition| {
            let client = &client;
            async move {
                let writer =
                    client.partition_client(topic, partition, UnknownTopicHandling::Retry).await.expect("partition");
                let mine =
                    count / PARTITIONS as usize + usize::from((partition as usize) < count % PARTITIONS as usize);
                // The last DUPLICATE_REACH values of this partition, to copy from.
                let mut recent: std::collections::VecDeque<(Vec<u8>, Vec<u8>)> = Default::default();
                let (mut written, mut copies) = (0, 0);
                while written < mine {
                    let n = per_request.min(mine - written);
                    let mut records = Vec::with_capacity(n + n / every.max(1) + 1);
                    for i in written..written + n {
                        let report = sample_report(&format!("http://site-{}.test/", i % 997));
                        let value = encode(&report);
                        let key = report.url.into_bytes();
                        records.push(record(&key, &value));
                        if recent.len() == DUPLICATE_REACH {
                            recent.pop_front();
                        }
                        recent.push_back((key, value));
                        if every > 0 && i % every == every - 1 {
                            // Spread over the reach, deterministically.
                            let back = (i * 7_919) % recent.len();
                            let (key, value) = &recent[recent.len() - 1 - back];
                            records.push(record(key, value));
                            copies += 1;
                        }
                    }
                    writer.produce(records, Compression::NoCompression).await.expect("produce");
                    written += n;
                }
                copies
            }
        });
        futures::future::join_all(tasks).await.into_iter().sum()
    })
}

fn record(key: &[u8], value: &[u8]) -> Record {
    Record {
        key: Some(key.to_vec()),
        value: Some(value.to_vec()),
        headers: BTreeMap::new(),
        // Now: a record dated 1970 is past the broker's time retention, and its next retention
        // check deletes the topic's log under the draining consumer.
        timestamp: rskafka::chrono::DateTime::from_timestamp_nanos(
            time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64,
        ),
    }
}

/// Partitions of `reports` for yesterday, today and tomorrow (UTC), as the consumer's upkeep
/// keeps them.
fn create_todays_partitions(client: &mut postgres::Client) {
    client
        .batch_execute(
            "SELECT websentry_create_partitions((now() AT TIME ZONE 'UTC')::date - 1,
                                                (now() AT TIME ZONE 'UTC')::date + 1, NULL)",
        )
        .expect("creating partitions");
}

/// Runs the consumer once over the topic (built by the harness in the profile of this benchmark,
/// `release`); its wall time and peak RSS (KiB).
fn drain(stack: &Stack, binary: &Path, topic: &str, db: &TestDatabase, writers: Option<&str>) -> (f64, u64, f64) {
    let Running(child) = &mut start_consumer(stack, binary, topic, db, false, writers);
    let started = Instant::now();
    let (mut peak_kb, mut cpu) = (0, 0.0);
    let status = loop {
        peak_kb = peak_kb.max(peak_rss_kb(child));
        cpu = cpu_seconds(child).unwrap_or(cpu);
        if let Some(status) = child.try_wait().expect("waiting") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed().as_secs_f64();
    assert!(status.success(), "the consumer failed: {status}");
    (took, peak_kb, cpu)
}

/// The CPU time a child has used so far, all its threads (user and system); `None` once it is
/// gone. Read every 10 ms, it misses at most the last 10 ms of a run.
fn cpu_seconds(child: &Child) -> Option<f64> {
    static TICKS: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output().expect("getconf CLK_TCK");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("CLK_TCK is a number")
    });
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).ok()?;
    // The fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / *TICKS)
}

/// A daemon started on the whole topic, as after an outage: the seconds until its stored offsets
/// reach the end of the topic (`records` in all), and its peak RSS (KiB). Then stopped by SIGTERM.
fn catch_up(stack: &Stack, topic: &str, db: &TestDatabase, records: i64) -> (f64, u64) {
    catch_up_with(stack, &consumer_binary(), topic, db, records)
}

/// As [`catch_up`], with `binary`.
fn catch_up_with(stack: &Stack, binary: &Path, topic: &str, db: &TestDatabase, records: i64) -> (f64, u64) {
    let mut offsets = db.client();
    let Running(child) = &mut start_consumer(stack, binary, topic, db, true, None);
    let started = Instant::now();
    let mut peak_kb = 0;
    loop {
        peak_kb = peak_kb.max(peak_rss_kb(child));
        let stored: i64 = offsets
            .query_one("SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets", &[])
            .expect("reading the stored offsets")
            .get(0);
        if stored >= records {
            break;
        }
        assert!(child.try_wait().expect("waiting").is_none(), "the daemon stopped before catching up");
        assert!(started.elapsed() < CATCH_UP_DEADLINE, "the daemon did not catch up within {CATCH_UP_DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed().as_secs_f64();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success(), "kill -TERM failed");
    let status = child.wait().expect("waiting for the daemon");
    assert!(status.success(), "the daemon failed: {status}");
    (took, peak_kb)
}

/// The consumer on `topic` into `db` (migrated first, before any clock starts), one-off or as a
/// daemon, with the bench's batch settings if any and `writers` (`WEBSENTRY_CONSUMER_WRITERS`) if given.
fn start_consumer(
    stack: &Stack,
    binary: &Path,
    topic: &str,
    db: &TestDatabase,
    daemon: bool,
    writers: Option<&str>,
) -> Running {
    let mut migrate = db.client();
    schema::migrate(&mut migrate).expect("migrating before timing");
    Command::new(binary)
        .env_clear()
        .envs(stack.kafka_env(topic))
        .envs(stack.database_env(&db.name))
        .envs(DATABASE_PORT.get().map(|port| ("WEBSENTRY_DATABASE_PORT", port.to_string())))
        .env("WEBSENTRY_LOGLEVEL", "WARNING")
        .env("WEBSENTRY_CONSUMER_ENABLE_DAEMON", daemon.to_string())
        .envs(std::env::vars().filter(|(k, _)| {
            k == "WEBSENTRY_BATCH_BYTES" || k == "WEBSENTRY_BATCH_MAX" || k == "WEBSENTRY_CONSUMER_WRITERS"
        }))
        .envs(writers.map(|n| ("WEBSENTRY_CONSUMER_WRITERS", n)))
        .stdout(Stdio::null())
        .spawn()
        .map(Running)
        .expect("starting the consumer")
}

/// The consumer binary timed: this workspace's (built, or found up to date, before any clock
/// starts), or `WEBSENTRY_BENCH_CONSUMER`'s, another build to compare with on the same topic.
fn consumer_binary() -> PathBuf {
    std::env::var_os("WEBSENTRY_BENCH_CONSUMER").map_or_else(|| binary("websentry-consumer"), PathBuf::from)
}

/// A child's peak RSS so far (VmHWM, KiB); 0 once it is gone.
fn peak_rss_kb(child: &Child) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) else { return 0 };
    let hwm = text.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next());
    hwm.and_then(|kb| kb.parse().ok()).unwrap_or(0)
}

/// The port of the relay the consumers reach the database through, when it is delayed.
static DATABASE_PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();

/// `WEBSENTRY_BENCH_DB_DELAY_MS`: milliseconds added each way between the consumers and the
/// database (a relay, see `Relay::delayed`), as for a database on another host; none unless set.
fn database_delay() -> Option<Duration> {
    let text = std::env::var("WEBSENTRY_BENCH_DB_DELAY_MS").ok()?;
    match text.parse::<f64>() {
        Ok(ms) if ms.is_finite() && ms > 0.0 && ms <= 100.0 => Some(Duration::from_secs_f64(ms / 1e3)),
        _ => panic!("WEBSENTRY_BENCH_DB_DELAY_MS: milliseconds above 0, at most 100, not {text:?}"),
    }
}

/// The median round trip of `SELECT 1` through the relay on `port`, in milliseconds.
fn round_trip_ms(stack: &Stack, port: u16) -> f64 {
    let db = stack.create_database();
    let mut args = stack.database_args(&db.name);
    args.database_port = port.to_string();
    let settings = websentry_consumer::database::DatabaseSettings::try_from(&args).expect("settings");
    let mut client = websentry_consumer::database::connect(&settings).expect("connecting through the relay");
    let times: Vec<f64> = (0..50)
        .map(|_| {
            let started = Instant::now();
            client.simple_query("SELECT 1").expect("SELECT 1");
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(&times)
}

/// Drains (and COPY ceilings) timed: `WEBSENTRY_BENCH_DRAIN_RUNS`, 3 unless set.
fn runs() -> usize {
    match std::env::var("WEBSENTRY_BENCH_DRAIN_RUNS") {
        Err(_) => 3,
        Ok(text) => match text.parse() {
            Ok(runs) if runs >= 1 => runs,
            _ => panic!("WEBSENTRY_BENCH_DRAIN_RUNS: a whole number from 1 up, not {text:?}"),
        },
    }
}

/// PostgreSQL's ceiling: the archived rows out to a file once, then timed back in by binary COPY
/// into the `reports` of a fresh database, partitioned as the consumer's (the days present each
/// have their partition), as often as asked.
struct Ceiling {
    path: PathBuf,
    days: (time::Date, time::Date),
    /// Kept to the end, as the drains' databases are (see `main`).
    databases: Vec<TestDatabase>,
}

impl Ceiling {
    fn new(drained: &TestDatabase) -> Self {
        let path = std::env::temp_dir().join(format!("websentry-bench-{}.copy", std::process::id()));
        let mut source = drained.client();
        {
            let mut file = BufWriter::new(std::fs::File::create(&path).expect("creating the copy file"));
            let mut out = source.copy_out("COPY (SELECT * FROM reports) TO STDOUT (FORMAT binary)").expect("COPY TO");
            std::io::copy(&mut out, &mut file).expect("writing the copy file");
            file.flush().expect("flushing the copy file");
        }
        let days = source
            .query_one(
                "SELECT min((checked_at AT TIME ZONE 'UTC')::date), max((checked_at AT TIME ZONE 'UTC')::date) FROM reports",
                &[],
            )
            .map(|row| (row.get(0), row.get(1)))
            .expect("days present");
        Self { path, days, databases: Vec::new() }
    }

    /// The seconds of one COPY of the rows into a fresh database.
    fn time(&mut self, stack: &Stack) -> f64 {
        let db = stack.create_database();
        let mut client = db.client();
        schema::migrate(&mut client).expect("migrating the ceiling database");
        let (first, last) = self.days;
        client.execute("SELECT websentry_create_partitions($1, $2, NULL)", &[&first, &last]).expect("partitions");
        let started = Instant::now();
        let mut tx = client.transaction().expect("transaction");
        {
            let mut sink = tx.copy_in("COPY reports FROM STDIN (FORMAT binary)").expect("COPY FROM");
            let mut file = BufReader::new(std::fs::File::open(&self.path).expect("opening the copy file"));
            std::io::copy(&mut file, &mut sink).expect("streaming the copy file");
            sink.finish().expect("finishing COPY");
        }
        tx.commit().expect("commit");
        let took = started.elapsed().as_secs_f64();
        self.databases.push(db);
        took
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Rows per second inserting and committing one row at a time (a sample of the archived rows).
fn row_at_a_time(db: &TestDatabase) -> f64 {
    let mut client = db.client();
    client.batch_execute("CREATE TABLE rowwise (LIKE reports INCLUDING ALL)").expect("creating the table");
    let rows: Vec<String> = client
        .query("SELECT row_to_json(r)::text FROM reports r LIMIT $1", &[&(ROW_AT_A_TIME_SAMPLE as i64)])
        .expect("sample")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let insert = client
        .prepare("INSERT INTO rowwise SELECT * FROM json_populate_record(NULL::rowwise, $1::text::json)")
        .expect("prepare");
    let started = Instant::now();
    for row in &rows {
        let mut tx = client.transaction().expect("transaction");
        tx.execute(&insert, &[row]).expect("insert one row");
        tx.commit().expect("commit one row");
    }
    rows.len() as f64 / started.elapsed().as_secs_f64()
}

fn delete_topic(stack: &Stack, topic: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let client = stack.kafka_settings(topic).connect("websentry-bench").await.expect("Kafka");
        let controller = client.controller_client().expect("controller");
        if let Err(err) = controller.delete_topic(topic, 30_000).await {
            eprintln!("could not delete {topic}: {err}");
        }
    });
}
