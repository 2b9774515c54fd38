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
//! COPY ceiling does not. Before that, the consumer's writer (`websentry_consumer::insert`, binary
//! COPY) is compared with a multi-row `INSERT … VALUES` of the same columns, on 100,000 reports in
//! batches of 5,000, one transaction each. (An `UNNEST` of one array per column was measured too
//! when COPY was chosen, and was no faster than `VALUES`; it is not kept.) The topic and the
//! databases are removed at the end.

use std::{
    collections::BTreeMap,
    io::{BufReader, BufWriter, Write},
    process::{Command, Stdio},
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
use websentry_tests::{binary, figure, sample_report, Stack, TestDatabase};

const PARTITIONS: i32 = 4;
const RECORDS_PER_REQUEST: usize = 2_000;
const METHOD_ROWS: usize = 100_000;
const METHOD_BATCH: usize = 5_000;
const ROW_AT_A_TIME_SAMPLE: usize = 2_000;
/// One record in this many is followed by a copy of an earlier one (0.5 %);
/// `WEBSENTRY_BENCH_DUPLICATE_EVERY` to change, 0 for none.
const DUPLICATE_EVERY: usize = 200;
/// How far back (in records of the partition) a duplicated record may be.
const DUPLICATE_REACH: usize = 20_000;

fn main() {
    let reports: usize = std::env::var("WEBSENTRY_BENCH_REPORTS").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let every: usize =
        std::env::var("WEBSENTRY_BENCH_DUPLICATE_EVERY").ok().and_then(|n| n.parse().ok()).unwrap_or(DUPLICATE_EVERY);
    let stack = Stack::get();
    println!("drain benchmark: {reports} reports, {PARTITIONS} partitions, default batch max 5000");

    let copy = insert_rate(stack, |tx, topic, partition, reports| {
        insert::insert_reports(tx, topic, partition, reports).map(|new| new.len() as u64)
    });
    let values = insert_rate(stack, insert_values);
    println!(
        "writers ({METHOD_ROWS} rows, batches of {METHOD_BATCH}, one transaction each): the consumer's COPY {copy:.0} rows/s; INSERT ... VALUES {values:.0} rows/s ({:.2} x)",
        copy / values
    );

    let topic = stack.create_topic(PARTITIONS);
    let started = Instant::now();
    let duplicates = produce(stack, &topic, reports, every);
    println!(
        "loaded {reports} reports + {duplicates} duplicate records ({:.2} %) into {topic} in {:.1} s",
        duplicates as f64 * 100.0 / reports as f64,
        started.elapsed().as_secs_f64()
    );

    let db = stack.create_database();
    let (drain_s, peak_kb) = drain(stack, &topic, &db);
    let archived = db.count("SELECT count(*) FROM reports");
    assert_eq!(archived, reports as i64, "the consumer archived every distinct report once");
    for table in ["rollup_hourly", "rollup_daily"] {
        let counted = db.count(&format!("SELECT sum(probes)::bigint FROM {table}"));
        assert_eq!(counted, reports as i64, "{table} counts every distinct report once");
    }
    let consumer_rate = reports as f64 / drain_s;
    println!(
        "consumer one-off drain : {consumer_rate:.0} distinct rows/s ({:.0} records/s, {drain_s:.2} s, rollups included), peak RSS {:.1} MB",
        (reports + duplicates) as f64 / drain_s,
        peak_kb as f64 / 1024.0
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

    let copy_s = copy_ceiling(stack, &db);
    let copy_rate = reports as f64 / copy_s;
    println!(
        "PostgreSQL COPY ceiling: {copy_rate:.0} rows/s ({copy_s:.2} s, binary COPY of the same rows from a file into the partitioned reports, no rollups)"
    );

    let row_rate = row_at_a_time(&db);
    println!(
        "row-at-a-time          : {row_rate:.0} rows/s (sample of {ROW_AT_A_TIME_SAMPLE}, extrapolated {:.0} s for {reports})",
        reports as f64 / row_rate
    );
    println!(
        "ratios                 : consumer/COPY {:.2} (version 3: 0.43); consumer/row-at-a-time {:.0}; peak RSS {:.1} MB",
        consumer_rate / copy_rate,
        consumer_rate / row_rate,
        peak_kb as f64 / 1024.0
    );
    let retries = if every == 0 { "no retries".to_owned() } else { format!("{:.1} % retries", 100.0 / every as f64) };
    // The batch settings the consumer was given (see `drain`), or its defaults.
    let batches = match (std::env::var("WEBSENTRY_BATCH_BYTES"), std::env::var("WEBSENTRY_BATCH_MAX")) {
        (Err(_), Err(_)) => "default batches".to_owned(),
        (bytes, max) => format!(
            "batches of {} bytes and {} records",
            bytes.as_deref().unwrap_or("default"),
            max.as_deref().unwrap_or("default")
        ),
    };
    figure(
        &format!("drain with rollups, {batches}, {retries}, against COPY"),
        format!("{:.2} x", consumer_rate / copy_rate),
        ">= 0.5 x",
    );
    figure(&format!("drain with rollups, {batches}"), format!("{consumer_rate:.0} rows/s"), "-");
    figure("PostgreSQL COPY of the same rows", format!("{copy_rate:.0} rows/s"), "-");
    figure("drain peak RSS", format!("{:.1} MB", peak_kb as f64 / 1024.0), "<= 30 MB");
    delete_topic(stack, &topic);
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

/// Writes `count` reports round-robin over the partitions, the partitions in parallel, and after
/// every `every`th record of a partition (none for 0) an exact copy of an earlier record of it (a
/// producer retry), up to [`DUPLICATE_REACH`] records back. Returns how many copies were written.
fn produce(stack: &Stack, topic: &str, count: usize, every: usize) -> usize {
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
                    let n = RECORDS_PER_REQUEST.min(mine - written);
                    let mut records = Vec::with_capacity(n + n / every.max(1) + 1);
                    for i in written..written + n {
                        let report = sample_report(&format!("http://site-{}.test/", i % 997));
                        let value = report.to_json();
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
fn drain(stack: &Stack, topic: &str, db: &TestDatabase) -> (f64, u64) {
    let mut migrate = db.client();
    schema::migrate(&mut migrate).expect("migrating before timing");
    // Built (or found up to date) before the clock starts.
    let consumer = binary("websentry-consumer");
    let started = Instant::now();
    let mut child = Command::new(consumer)
        .env_clear()
        .envs(stack.kafka_env(topic))
        .envs(stack.database_env(&db.name))
        .env("WEBSENTRY_LOGLEVEL", "WARNING")
        .envs(std::env::vars().filter(|(k, _)| k == "WEBSENTRY_BATCH_BYTES" || k == "WEBSENTRY_BATCH_MAX"))
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the consumer");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next());
            peak_kb = peak_kb.max(hwm.and_then(|kb| kb.parse().ok()).unwrap_or(0));
        }
        if let Some(status) = child.try_wait().expect("waiting") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed().as_secs_f64();
    assert!(status.success(), "the consumer failed: {status}");
    (took, peak_kb)
}

/// The archived rows out to a file, then timed back in by binary COPY into the `reports` of a
/// fresh database, partitioned as the consumer's (the days present each have their partition).
fn copy_ceiling(stack: &Stack, drained: &TestDatabase) -> f64 {
    let path = std::env::temp_dir().join(format!("websentry-bench-{}.copy", std::process::id()));
    let mut source = drained.client();
    {
        let mut file = BufWriter::new(std::fs::File::create(&path).expect("creating the copy file"));
        let mut out = source.copy_out("COPY (SELECT * FROM reports) TO STDOUT (FORMAT binary)").expect("COPY TO");
        std::io::copy(&mut out, &mut file).expect("writing the copy file");
        file.flush().expect("flushing the copy file");
    }
    let (first, last): (time::Date, time::Date) = source
        .query_one(
            "SELECT min((checked_at AT TIME ZONE 'UTC')::date), max((checked_at AT TIME ZONE 'UTC')::date) FROM reports",
            &[],
        )
        .map(|row| (row.get(0), row.get(1)))
        .expect("days present");
    let db = stack.create_database();
    let mut client = db.client();
    schema::migrate(&mut client).expect("migrating the ceiling database");
    client.execute("SELECT websentry_create_partitions($1, $2, NULL)", &[&first, &last]).expect("partitions");
    let started = Instant::now();
    let mut tx = client.transaction().expect("transaction");
    {
        let mut sink = tx.copy_in("COPY reports FROM STDIN (FORMAT binary)").expect("COPY FROM");
        let mut file = BufReader::new(std::fs::File::open(&path).expect("opening the copy file"));
        std::io::copy(&mut file, &mut sink).expect("streaming the copy file");
        sink.finish().expect("finishing COPY");
    }
    tx.commit().expect("commit");
    let took = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    took
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
