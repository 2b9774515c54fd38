//! The archive's SQL interface and its migrations against the real PostgreSQL: every object
//! described, the Rust/SQL twins equal, a shipped migration edited refused at start, the interface
//! applied again when it changes, and its documented names the real ones.

use websentry_consumer::{insert, rollup, schema};
use websentry_tests::{Stack, TestDatabase};

fn migrated_database() -> TestDatabase {
    Stack::get().create_database().migrated()
}

#[test]
fn every_table_view_and_function_of_the_schema_has_a_comment() {
    let db = migrated_database();

    // Day partitions are made by the upkeep and described by their parent.
    let undescribed: Vec<String> = db.column(
        "SELECT c.relname::text FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
           AND NOT (c.relispartition AND c.relname ~ '^(reports|rollup_hourly)_p[0-9]{8}$')
           AND coalesce(obj_description(c.oid, 'pg_class'), '') = ''
         UNION ALL
         SELECT p.oid::regprocedure::text FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace AND coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
         ORDER BY 1",
    );

    assert_eq!(undescribed, Vec::<String>::new(), "objects without COMMENT ON");
    let described: String = db
        .client()
        .query_one("SELECT obj_description('site_summary(timestamptz, timestamptz, text)'::regprocedure)", &[])
        .expect("site_summary's comment")
        .get(0);
    assert!(described.starts_with("Uptime and latency of each (url, probe)"), "{described}");
}

#[test]
fn no_function_of_the_schema_is_executable_by_everyone() {
    let db = migrated_database();

    let public: Vec<String> = db.column(
        "SELECT p.oid::regprocedure::text FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace
           AND (p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) a WHERE a.grantee = 0))
         ORDER BY 1",
    );

    assert_eq!(public, Vec::<String>::new(), "functions PUBLIC may execute");
}

#[test]
fn the_rust_and_sql_twins_agree() {
    let db = migrated_database();
    let mut client = db.client();

    // The migration lock: the partition function takes the key the migrations take.
    let source: String = client
        .query_one("SELECT prosrc FROM pg_proc WHERE proname = 'websentry_create_partitions'", &[])
        .expect("the partition function")
        .get(0);
    assert!(
        source.contains(&format!("pg_advisory_xact_lock({})", schema::MIGRATION_LOCK)),
        "websentry_create_partitions does not take the migration lock {}:\n{source}",
        schema::MIGRATION_LOCK
    );

    // The histogram: the bucket of a time, and the time a bucket stands for.
    let mut times = vec![0.0, 0.5, 0.999_999, 1.0, 1.05, 3.7, 1e6, 1e12, -4.0];
    for k in 0..130 {
        let edge = 1.1f64.powi(k);
        times.extend([edge * (1.0 - 1e-9), edge, edge * (1.0 + 1e-9)]);
    }
    for ms in times {
        let sql: i32 = client.query_one("SELECT websentry_bucket($1)", &[&ms]).expect("websentry_bucket").get(0);
        assert_eq!(sql as usize, rollup::bucket(ms), "the bucket of {ms} ms");
    }
    let nan: i32 = client.query_one("SELECT websentry_bucket('NaN')", &[]).expect("NaN").get(0);
    assert_eq!(nan as usize, rollup::bucket(f64::NAN), "the bucket of NaN");
    for bucket in 0..rollup::BUCKETS {
        let sql: f64 = client
            .query_one("SELECT websentry_bucket_ms($1)", &[&(bucket as i32)])
            .expect("websentry_bucket_ms")
            .get(0);
        let rust = rollup::bucket_ms(bucket);
        assert!((sql - rust).abs() <= rust * 1e-12, "bucket {bucket}: {sql} ms in SQL, {rust} ms in Rust");
    }

    // The rollups' columns: a failure counter per error kind, in the writer's order, and the buckets.
    for table in ["rollup_hourly", "rollup_daily"] {
        let columns: Vec<String> = db.column(&format!(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attnum > 0
             AND NOT attisdropped ORDER BY attnum"
        ));
        let failures: Vec<&str> = columns.iter().map(String::as_str).filter(|c| c.starts_with("failures_")).collect();
        assert_eq!(failures, rollup::FAILURES, "{table}'s failure columns");
        let buckets: Vec<String> =
            columns.iter().filter(|c| c.starts_with('b') && c[1..].parse::<u32>().is_ok()).cloned().collect();
        assert_eq!(buckets, (0..rollup::BUCKETS).map(|k| format!("b{k}")).collect::<Vec<_>>(), "{table}'s buckets");
    }

    // The writer fills every column of reports but the one with a default.
    let mut columns: Vec<String> = db.column(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = 'reports'::regclass AND attnum > 0
         AND NOT attisdropped AND attname <> 'archived_at' ORDER BY 1",
    );
    let mut written: Vec<String> = insert::COLUMNS.iter().map(|c| c.name.to_owned()).collect();
    columns.sort();
    written.sort();
    assert_eq!(written, columns, "the writer's columns against the table's");
}

#[test]
fn a_shipped_migration_whose_file_changed_is_refused_at_start_naming_it() {
    let stack = Stack::get();
    let db = migrated_database();
    // As if the database had applied another text of migration 4 than this build's.
    db.client()
        .execute("UPDATE websentry_migrations SET checksum = repeat('ab', 32) WHERE version = 4", &[])
        .expect("changing a recorded checksum");

    let one_off = stack.consumer_migrating(&db).output();
    let daemon = stack.consumer_daemon("never-read", &db).output();

    for (case, output) in [("one-off", one_off), ("daemon", daemon)] {
        assert_eq!(output.code, Some(1), "{case}: {}", output.stderr);
        let errors = output.error_lines();
        assert_eq!(errors.len(), 1, "{case}: one line: {}", output.stderr);
        assert!(
            errors[0].contains("migration 4 (archive at scale) was applied from a file with checksum abababababab but this build's 0004_archive_at_scale.sql has"),
            "{case}: {}",
            errors[0]
        );
    }
}

#[test]
fn the_interface_is_applied_again_when_it_changed_keeping_its_grants_and_a_newer_one_is_refused() {
    let stack = Stack::get();
    let db = migrated_database();
    let mut client = db.client();
    // A role that exists in every cluster stands for the reader (creating roles needs more rights).
    let reader = "pg_read_all_data";
    client
        .batch_execute(&format!(
            "GRANT EXECUTE ON FUNCTION site_summary(timestamptz, timestamptz, text) TO {reader};
             UPDATE websentry_interface SET version = 0, checksum = 'an older interface';
             CREATE OR REPLACE FUNCTION websentry_bucket_ms(bucket integer) RETURNS double precision
                 LANGUAGE sql IMMUTABLE RETURN -1"
        ))
        .expect("an older interface");

    let applied = stack.consumer_migrating(&db).success();

    assert!(applied.stderr.contains("SQL interface applied"), "{}", applied.stderr);
    let recorded: (i32, String) = client
        .query_one("SELECT version, checksum FROM websentry_interface", &[])
        .map(|row| (row.get(0), row.get(1)))
        .expect("the recorded interface");
    assert_eq!(recorded, (schema::interface::VERSION, schema::migrations::checksum(schema::interface::SQL)));
    let midpoint: f64 = client.query_one("SELECT websentry_bucket_ms(0)", &[]).expect("the helper").get(0);
    assert_eq!(midpoint, 0.5, "the helper is this build's again");
    let granted: bool = client
        .query_one(
            &format!(
                "SELECT has_function_privilege('{reader}', 'site_summary(timestamptz, timestamptz, text)', 'EXECUTE')"
            ),
            &[],
        )
        .expect("the grant")
        .get(0);
    assert!(granted, "CREATE OR REPLACE keeps the grants");
    let again = stack.consumer_migrating(&db).success();
    assert!(!again.stderr.contains("SQL interface applied"), "applied only when it changed:\n{}", again.stderr);

    client.execute("UPDATE websentry_interface SET version = version + 1", &[]).expect("a newer interface");
    let refused = stack.consumer_migrating(&db).output();
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "the database's SQL interface is at version {}, newer than version {} that this build knows",
            schema::interface::VERSION + 1,
            schema::interface::VERSION
        )),
        "{}",
        refused.stderr
    );
}
