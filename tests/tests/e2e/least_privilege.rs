//! The consumer archives as a database user with only the grants of `deploy/postgres/grants.sql`,
//! the schema being owned and migrated by another user, both set up by `deploy/postgres/roles.sql`:
//! the very files an administrator runs, with psql, in a database of the test's own. The read-only
//! user of the same files reads the SQL interface and nothing else.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use time::{Duration, OffsetDateTime};
use websentry_tests::{day_partition, midnight, migrate_to_version, sample_report, Run, Stack, TestDatabase};

fn deploy_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/postgres").join(name)
}

/// The owner, consumer and reader roles of one test (roles belong to the whole cluster: random
/// names), dropped on drop, after the test's database (declare this first).
struct Roles {
    stack: &'static Stack,
    owner: String,
    consumer: String,
    reader: String,
    owner_password: String,
    consumer_password: String,
    reader_password: String,
}

impl Roles {
    fn new(stack: &'static Stack) -> Self {
        let suffix = format!("{:016x}", rand::random::<u64>());
        Roles {
            stack,
            owner: format!("test_owner_{suffix}"),
            consumer: format!("test_archiver_{suffix}"),
            reader: format!("test_reader_{suffix}"),
            owner_password: format!("{:032x}", rand::random::<u128>()),
            consumer_password: format!("{:032x}", rand::random::<u128>()),
            reader_password: format!("{:032x}", rand::random::<u128>()),
        }
    }

    /// `scripts/stack psql` (the cluster's superuser) in `database` with `sql` on stdin.
    fn as_superuser(&self, database: &str, vars: &[(&str, &str)], sql: &str) {
        let mut command = Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/stack"));
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

    /// psql over TLS (verify-full) as `user` in `database`: exit status and stderr.
    fn psql_as(&self, user: &str, password: &str, database: &str, args: &[&str]) -> (bool, String) {
        let (ok, _, stderr) = self.psql_output(user, password, database, args);
        (ok, stderr)
    }

    /// A count, read as the owner (the stack's own user may not read the owner's tables).
    fn count(&self, database: &str, sql: &str) -> i64 {
        let (ok, stdout, stderr) = self.psql_output(&self.owner, &self.owner_password, database, &["-At", "-c", sql]);
        assert!(ok, "{sql}: {stderr}");
        stdout.trim().parse().unwrap_or_else(|_| panic!("{sql}: {stdout:?} is not a count"))
    }

    fn psql_output(&self, user: &str, password: &str, database: &str, args: &[&str]) -> (bool, String, String) {
        let stack = self.stack;
        let connection = format!(
            "host={} port={} dbname={database} user={user} sslmode=verify-full sslrootcert={}",
            stack.var("WEBSENTRY_DATABASE_HOST"),
            stack.var("WEBSENTRY_DATABASE_PORT"),
            stack.var("WEBSENTRY_DATABASE_CAFILE")
        );
        let output = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &connection])
            .args(args)
            .env("PGPASSWORD", password)
            .env_remove("PGSERVICE")
            .stdin(Stdio::null())
            .output()
            .expect("psql (Debian's postgresql-client)");
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (output.status.success(), text(&output.stdout), text(&output.stderr))
    }

    /// A one-off consumer run as the consumer role.
    fn consumer(&self, topic: &str, database: &TestDatabase) -> Run {
        self.stack
            .consumer(topic, database)
            .env("WEBSENTRY_DATABASE_USER", &self.consumer)
            .env("WEBSENTRY_DATABASE_PASSWORD", &self.consumer_password)
    }
}

/// What grants.sql gives the consumer's user, one line each as [`grants_of`] lists them.
const CONSUMER_GRANTS: [&str; 26] = [
    "consumer_offsets INSERT",
    "consumer_offsets SELECT",
    "consumer_offsets UPDATE",
    "rejected_messages INSERT",
    "reports INSERT",
    "reports(checked_at) SELECT",
    "reports(id) SELECT",
    "rollup_daily INSERT",
    "rollup_daily SELECT",
    "rollup_daily UPDATE",
    "rollup_hourly INSERT",
    "rollup_hourly SELECT",
    "rollup_hourly UPDATE",
    "websentry_analyze_hourly() EXECUTE",
    "websentry_create_hourly_partitions() EXECUTE",
    "websentry_create_partitions() EXECUTE",
    "websentry_default_rows() EXECUTE",
    "websentry_drop_day() EXECUTE",
    "websentry_drop_expired_hours() EXECUTE",
    "websentry_expire_hours() EXECUTE",
    "websentry_expire_rollups() EXECUTE",
    "websentry_interface SELECT",
    "websentry_keep_windows() EXECUTE",
    "websentry_migrations SELECT",
    "websentry_note_rollup_writes() EXECUTE",
    "websentry_report_days() EXECUTE",
];

/// What `role` was granted on the database's tables, columns and functions, one line each.
fn grants_of(database: &websentry_tests::TestDatabase, role: &str) -> Vec<String> {
    database.column(&format!(
        "SELECT c.relname || ' ' || g.privilege_type FROM pg_class c, aclexplode(c.relacl) g
         WHERE g.grantee = '{role}'::regrole
         UNION ALL
         SELECT c.relname || '(' || a.attname || ') ' || g.privilege_type
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid, aclexplode(a.attacl) g
         WHERE g.grantee = '{role}'::regrole
         UNION ALL
         SELECT p.proname || '() ' || g.privilege_type FROM pg_proc p, aclexplode(p.proacl) g
         WHERE g.grantee = '{role}'::regrole ORDER BY 1"
    ))
}

impl Drop for Roles {
    fn drop(&mut self) {
        let sql = format!(
            "DROP ROLE IF EXISTS {}; DROP ROLE IF EXISTS {}; DROP ROLE IF EXISTS {};",
            self.reader, self.consumer, self.owner
        );
        self.as_superuser("postgres", &[], &sql);
    }
}

#[test]
fn the_consumer_archives_with_only_the_documented_grants_and_cannot_change_the_schema() {
    let stack = Stack::get();
    let roles = Roles::new(stack);
    let database = stack.create_database();
    let topic = stack.create_topic(2);
    let roles_sql = std::fs::read_to_string(deploy_file("roles.sql")).expect("deploy/postgres/roles.sql");
    let grants_sql = deploy_file("grants.sql").display().to_string();

    // What PostgreSQL gives everyone by default is taken away, so that only the files' grants count.
    roles.as_superuser(&database.name, &[], &format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", database.name));
    // The administrator's part: the two roles, then their passwords (\password in real life).
    // (No reader: roles.sql and grants.sql work without one.)
    roles.as_superuser(&database.name, &[("owner", &roles.owner), ("consumer", &roles.consumer)], &roles_sql);
    let passwords = format!(
        "ALTER ROLE {} PASSWORD '{}'; ALTER ROLE {} PASSWORD '{}';",
        roles.owner, roles.owner_password, roles.consumer, roles.consumer_password
    );
    roles.as_superuser(&database.name, &[], &passwords);

    // The consumer's user cannot create the schema, and says what to do instead.
    let refused = roles.consumer(&topic, &database).output();
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("may not change it: run `websentry-consumer --migrate-only` as the schema owner first"),
        "{}",
        refused.stderr
    );

    // The owner migrates.
    stack
        .consumer_migrating(&database)
        .env("WEBSENTRY_DATABASE_USER", &roles.owner)
        .env("WEBSENTRY_DATABASE_PASSWORD", &roles.owner_password)
        .success();
    let owners: Vec<String> =
        database.column("SELECT DISTINCT tableowner::text FROM pg_tables WHERE schemaname = 'public'");
    assert_eq!(owners, std::slice::from_ref(&roles.owner), "the owner owns every table");

    // Without grants.sql, nothing: the grants are what makes it work.
    let refused = roles.consumer(&topic, &database).output();
    assert_eq!(refused.code, Some(1), "archived without any grant on the tables:\n{}", refused.stderr);
    assert!(refused.stderr.contains("permission denied"), "{}", refused.stderr);

    let (granted, stderr) = roles.psql_as(
        &roles.owner,
        &roles.owner_password,
        &database.name,
        &["-v", &format!("consumer={}", roles.consumer), "-f", &grants_sql],
    );
    assert!(granted, "grants.sql as the owner:\n{stderr}");
    assert_eq!(
        grants_of(&database, &roles.consumer),
        CONSUMER_GRANTS,
        "the consumer's grants are exactly those of grants.sql"
    );

    // Archiving: reports and a record that is not one, in two runs (offsets stored, then moved).
    // The second run's batch repeats a report already archived (a producer's retry), looked up
    // through SELECT (id, checked_at); each batch's rollups go through a temporary table, which
    // needs the TEMPORARY grant.
    let retried = sample_report("https://retried.test/");
    let record = (Some(retried.url.clone().into_bytes()), Some(retried.to_json()));
    let mut ids = stack.produce_reports(&topic, 2, 40, 40);
    stack.produce_raw(&topic, 1, vec![record.clone()]);
    // Upkeep as the consumer: a day past the 31-day retention is dropped, through the owner's
    // functions (the consumer may not drop a table itself: see below). One day, named once: forty
    // days back is past the retention whichever day the consumer's clock says.
    let old = OffsetDateTime::now_utc().date() - Duration::days(40);
    let old_day = format!("SELECT count(*) FROM pg_class WHERE relname = '{}'", day_partition(old));
    let (ok, stderr) = roles.psql_as(
        &roles.owner,
        &roles.owner_password,
        &database.name,
        &["-c", &format!("SELECT websentry_create_partitions('{old}', '{old}', NULL)")],
    );
    assert!(ok && roles.count(&database.name, &old_day) == 1, "an old day partition: {stderr}");
    let archived = roles.consumer(&topic, &database).success();
    assert!(!archived.stderr.contains("upkeep failed"), "{}", archived.stderr);
    assert_eq!(roles.count(&database.name, &old_day), 0, "the consumer's upkeep dropped the day past retention");
    ids.extend(stack.produce_reports(&topic, 2, 10, 10));
    ids.push(retried.id);
    stack.produce_raw(&topic, 1, vec![record]);
    stack.produce_raw(&topic, 0, vec![(None, Some(b"not a report".to_vec()))]);
    roles.consumer(&topic, &database).success();
    assert_eq!(roles.count(&database.name, "SELECT count(*) FROM reports"), ids.len() as i64);
    assert_eq!(roles.count(&database.name, "SELECT count(DISTINCT id) FROM reports"), ids.len() as i64);
    assert_eq!(roles.count(&database.name, "SELECT count(*) FROM rejected_messages"), 1);
    assert_eq!(
        roles.count(&database.name, "SELECT sum(next_offset)::bigint FROM consumer_offsets"),
        53,
        "offsets past all 51 records"
    );

    // And nothing else: every one of these is refused to the consumer's user.
    for statement in [
        "DROP TABLE reports",
        "TRUNCATE reports",
        "DELETE FROM reports",
        "UPDATE reports SET code = 0",
        "ALTER TABLE reports ADD COLUMN x int",
        "CREATE TABLE intruder (x int)",
        "DELETE FROM consumer_offsets",
        "SELECT count(*) FROM log",
        "SELECT url, extra FROM reports",
        "DELETE FROM rollup_hourly",
        "DROP TABLE reports_default",
        "INSERT INTO websentry_migrations (version, name) VALUES (99, 'x')",
    ] {
        let (ok, stderr) = roles.psql_as(&roles.consumer, &roles.consumer_password, &database.name, &["-c", statement]);
        assert!(!ok, "the consumer's user may run {statement:?}");
        assert!(
            stderr.contains("permission denied") || stderr.contains("must be owner"),
            "{statement:?} failed for another reason: {stderr}"
        );
    }
    assert_eq!(roles.count(&database.name, "SELECT count(*) FROM reports"), ids.len() as i64, "nothing was removed");

    // A schema migrated by a newer build is refused without trying to change it.
    let (ok, stderr) = roles.psql_as(
        &roles.owner,
        &roles.owner_password,
        &database.name,
        &["-c", "INSERT INTO websentry_migrations (version, name) VALUES (99, 'from the future')"],
    );
    assert!(ok, "{stderr}");
    let refused = roles.consumer(&topic, &database).output();
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(refused.stderr.contains("the database schema is at version 99, newer than version"), "{}", refused.stderr);
}

#[test]
fn the_reader_reads_the_sql_interface_and_nothing_else() {
    let stack = Stack::get();
    let roles = Roles::new(stack);
    let database = stack.create_database();
    let topic = stack.create_topic(1);
    let roles_sql = std::fs::read_to_string(deploy_file("roles.sql")).expect("deploy/postgres/roles.sql");
    let grants_sql = deploy_file("grants.sql").display().to_string();
    roles.as_superuser(&database.name, &[], &format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", database.name));
    let names = [("owner", roles.owner.as_str()), ("consumer", &roles.consumer), ("reader", &roles.reader)];
    roles.as_superuser(&database.name, &names, &roles_sql);
    let passwords = format!(
        "ALTER ROLE {} PASSWORD '{}'; ALTER ROLE {} PASSWORD '{}'; ALTER ROLE {} PASSWORD '{}';",
        roles.owner, roles.owner_password, roles.consumer, roles.consumer_password, roles.reader, roles.reader_password
    );
    roles.as_superuser(&database.name, &[], &passwords);
    stack
        .consumer_migrating(&database)
        .env("WEBSENTRY_DATABASE_USER", &roles.owner)
        .env("WEBSENTRY_DATABASE_PASSWORD", &roles.owner_password)
        .success();
    let (granted, stderr) = roles.psql_as(
        &roles.owner,
        &roles.owner_password,
        &database.name,
        &["-v", &format!("consumer={}", roles.consumer), "-v", &format!("reader={}", roles.reader), "-f", &grants_sql],
    );
    assert!(granted, "grants.sql as the owner:\n{stderr}");
    let up = sample_report("https://up.test/");
    let mut down = sample_report("https://down.test/");
    down.error = Some(websentry_shared::report::ProbeError {
        kind: websentry_shared::report::ErrorKind::Connect,
        message: "refused".into(),
    });
    let records = [&up, &down].map(|r| (Some(r.url.clone().into_bytes()), Some(r.to_json())));
    stack.produce_raw(&topic, 0, records.to_vec());
    roles.consumer(&topic, &database).success();

    assert_eq!(
        grants_of(&database, &roles.reader),
        [
            "certificates_expiring SELECT",
            "latest_reports SELECT",
            "log SELECT",
            "report_document() EXECUTE",
            "report_documents SELECT",
            "rollup_horizons SELECT",
            "site_days() EXECUTE",
            "site_latency() EXECUTE",
            "site_outages() EXECUTE",
            "site_reports() EXECUTE",
            "site_states SELECT",
            "site_summary() EXECUTE",
            "site_summary_pooled() EXECUTE",
            "site_timeline() EXECUTE",
            "site_timeline_pooled() EXECUTE",
            "site_uptime() EXECUTE",
            "site_uptime_pooled() EXECUTE",
            "websentry_rfc3339() EXECUTE"
        ],
        "the reader's grants are exactly those of grants.sql"
    );
    let read = |sql: &str| {
        let (ok, stdout, stderr) =
            roles.psql_output(&roles.reader, &roles.reader_password, &database.name, &["-At", "-c", sql]);
        assert!(ok, "the reader cannot run {sql:?}: {stderr}");
        stdout.trim().to_owned()
    };
    assert_eq!(
        read("SELECT url || ' ' || probes || ' ' || successes FROM site_summary(now() - interval '1 day', now() + interval '1 hour') ORDER BY url"),
        "https://down.test/ 1 0\nhttps://up.test/ 1 1",
        "site_summary, all sites"
    );
    assert_eq!(
        read("SELECT url || ' ' || locations || ' ' || probes FROM site_summary_pooled(now() - interval '1 day', now() + interval '1 hour') ORDER BY url"),
        "https://down.test/ 1 1\nhttps://up.test/ 1 1",
        "site_summary_pooled, all sites"
    );
    assert_eq!(
        read("SELECT url || ' ' || probes || ' ' || successes FROM site_uptime(now() - interval '1 day', now() + interval '1 hour') ORDER BY url"),
        "https://down.test/ 1 0\nhttps://up.test/ 1 1",
        "site_uptime, all sites"
    );
    assert_eq!(
        read("SELECT url || ' ' || locations || ' ' || uptime FROM site_uptime_pooled(now() - interval '1 day', now() + interval '1 hour', url => 'https://down.test/')"),
        "https://down.test/ 1 0",
        "site_uptime_pooled, one site, by the documented parameter name"
    );
    assert_eq!(
        read("SELECT string_agg(DISTINCT url || ' ' || locations, ' ') FROM site_timeline_pooled(now() - interval '2 hours', now(), 'hour')"),
        "https://down.test/ 1 https://up.test/ 1",
        "site_timeline_pooled, all sites"
    );
    assert_eq!(
        read("SELECT uptime FROM site_summary(now() - interval '1 day', now() + interval '1 hour', url => 'https://up.test/')"),
        "1",
        "site_summary, one site, by the documented parameter name"
    );
    assert_eq!(
        read("SELECT string_agg(url, ' ' ORDER BY url) FROM latest_reports"),
        "https://down.test/ https://up.test/"
    );
    assert_eq!(
        read("SELECT report->>'id' FROM report_documents WHERE id = '{}'".replace("{}", &up.id.to_string()).as_str()),
        up.id.to_string()
    );
    assert_eq!(read("SELECT count(*) FROM log"), "2");
    assert_eq!(
        read("SELECT string_agg(DISTINCT url, ' ') FROM site_timeline(now() - interval '2 hours', now(), 'hour')"),
        "https://down.test/ https://up.test/",
        "site_timeline, all sites"
    );
    assert_eq!(
        read(
            "SELECT string_agg(url || ' ' || days, ', ' ORDER BY url) FROM site_days(now() - interval '2 days', now())"
        ),
        "https://down.test/ 3, https://up.test/ 3",
        "site_days, all sites"
    );
    assert_eq!(read("SELECT count(*) FROM site_reports('https://down.test/')"), "1", "site_reports");
    assert_eq!(
        read(
            "SELECT string_agg(level || ' ' || ((now() AT TIME ZONE 'UTC')::date - (kept_from AT TIME ZONE 'UTC')::date), ', ' \
             ORDER BY level) FROM rollup_horizons"
        ),
        "day 399, hour 7",
        "rollup_horizons: days before today kept, at the default retention the consumer's upkeep applied"
    );
    assert_eq!(read("SELECT string_agg(state, ' ' ORDER BY url) FROM site_states"), "down up", "site_states");
    assert_eq!(
        read("SELECT count(*) FROM site_outages(now() - interval '1 day', now() + interval '1 hour', 'https://down.test/')"),
        "1",
        "site_outages"
    );
    assert_eq!(
        read("SELECT count(*) FROM site_latency(now() - interval '1 day', now() + interval '1 hour', 'hour', 'https://up.test/')"),
        "1",
        "site_latency"
    );
    assert_eq!(read("SELECT count(*) FROM certificates_expiring WHERE days_left < 30"), "0");

    for statement in [
        "SELECT count(*) FROM reports",
        "SELECT count(*) FROM reports_default",
        "SELECT count(*) FROM rollup_hourly",
        "SELECT count(*) FROM rollup_daily",
        "SELECT count(*) FROM consumer_offsets",
        "SELECT count(*) FROM rejected_messages",
        "SELECT count(*) FROM websentry_migrations",
        "SELECT * FROM websentry_site_summary_all(now() - interval '1 day', now(), true, false)",
        "SELECT websentry_drop_day(current_date - 1000)",
        "SELECT websentry_expire_rollups(current_date)",
        "SELECT websentry_expire_hours(current_date)",
        "SELECT websentry_drop_expired_hours()",
        "SELECT websentry_analyze_hourly()",
        "SELECT count(*) FROM rollup_retention",
        "SELECT count(*) FROM rollup_window_sums",
        "SELECT * FROM websentry_keep_windows(ARRAY[interval '1 day'], interval '5 minutes')",
        "SELECT websentry_note_rollup_writes(now(), now())",
        "SELECT websentry_create_partitions(current_date, current_date, NULL)",
        "SELECT websentry_create_hourly_partitions(current_date, current_date, NULL)",
        "SELECT count(*) FROM rollup_hourly_default",
        "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset) VALUES ('g', 't', 0, 0)",
        "DELETE FROM log",
        "CREATE TABLE intruder (x int)",
        "CREATE TEMP TABLE intruder (x int)",
    ] {
        let (ok, stderr) = roles.psql_as(&roles.reader, &roles.reader_password, &database.name, &["-c", statement]);
        assert!(!ok, "the reader may run {statement:?}");
        assert!(
            stderr.contains("permission denied") || stderr.contains("must be owner"),
            "{statement:?} failed for another reason: {stderr}"
        );
    }
}

#[test]
fn an_archive_of_version_17_upgraded_by_its_owner_keeps_the_consumers_grants_and_archives_on() {
    let stack = Stack::get();
    let roles = Roles::new(stack);
    let database = stack.create_database();
    let topic = stack.create_topic(1);
    let roles_sql = std::fs::read_to_string(deploy_file("roles.sql")).expect("deploy/postgres/roles.sql");
    roles.as_superuser(&database.name, &[], &format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", database.name));
    roles.as_superuser(&database.name, &[("owner", &roles.owner), ("consumer", &roles.consumer)], &roles_sql);
    let passwords = format!(
        "ALTER ROLE {} PASSWORD '{}'; ALTER ROLE {} PASSWORD '{}';",
        roles.owner, roles.owner_password, roles.consumer, roles.consumer_password
    );
    roles.as_superuser(&database.name, &[], &passwords);

    // The archive as a version-17 consumer's owner left it: its migrations and SQL interface, an
    // hour of rollups of yesterday, and the grants of that version's grants.sql (this one's without
    // the hourly rollups' partition functions, which version 18 adds).
    let mut args = stack.database_args(&database.name);
    args.database_user = Some(roles.owner.clone());
    args.database_password = Some(roles.owner_password.as_str().into());
    let settings = websentry_consumer::database::DatabaseSettings::try_from(&args).expect("the owner's settings");
    let mut owner = websentry_consumer::database::connect(&settings).expect("connecting as the owner");
    migrate_to_version(&mut owner, 17);
    let yesterday = midnight(OffsetDateTime::now_utc().date() - Duration::days(1)) + Duration::hours(5);
    owner
        .execute(
            "INSERT INTO rollup_hourly (hour, url, probe, last_checked_at, probes, successes) VALUES ($1, 'https://before.test/', 'p', $1, 7, 7)",
            &[&yesterday],
        )
        .expect("an hourly rollup of version 17");
    let grants = std::fs::read_to_string(deploy_file("grants.sql")).expect("deploy/postgres/grants.sql");
    let grants_17 = grants
        .replace("\n    websentry_create_hourly_partitions(date, date, date), ", "\n    ")
        .replace("\n    websentry_drop_expired_hours(), websentry_analyze_hourly(), ", "\n    ");
    assert_eq!(grants.len() - grants_17.len(), 114, "grants.sql grants the three functions version 18 adds");
    let path = std::env::temp_dir().join(format!("grants-17-{}.sql", roles.consumer));
    std::fs::write(&path, grants_17).expect("writing version 17's grants.sql");
    let (granted, stderr) = roles.psql_as(
        &roles.owner,
        &roles.owner_password,
        &database.name,
        &["-v", &format!("consumer={}", roles.consumer), "-f", &path.display().to_string()],
    );
    std::fs::remove_file(&path).ok();
    assert!(granted, "version 17's grants.sql:\n{stderr}");
    let before = grants_of(&database, &roles.consumer);
    assert_eq!(before.len(), CONSUMER_GRANTS.len() - 3, "{before:?}");

    // The owner upgrades; grants.sql is not run again. The consumer keeps what it was granted on
    // the table the migration re-creates, and may run the functions it adds.
    stack
        .consumer_migrating(&database)
        .env("WEBSENTRY_DATABASE_USER", &roles.owner)
        .env("WEBSENTRY_DATABASE_PASSWORD", &roles.owner_password)
        .success();
    assert_eq!(grants_of(&database, &roles.consumer), CONSUMER_GRANTS, "as a fresh grants.sql would give");
    assert_eq!(
        roles.count(&database.name, "SELECT sum(probes) FROM rollup_hourly WHERE url = 'https://before.test/'"),
        7,
        "the hourly rows of version 17 are kept"
    );

    // The consumer archives and keeps the archive: its upkeep creates the hourly partition of a day
    // ahead that is missing (the upgrade created today's and the two days after; the owner drops
    // the last one here, empty).
    let ahead = OffsetDateTime::now_utc().date() + Duration::days(2);
    let ahead_partition = day_partition(ahead).replace("reports_p", "rollup_hourly_p");
    let (dropped, stderr) = roles.psql_as(
        &roles.owner,
        &roles.owner_password,
        &database.name,
        &["-c", &format!("DROP TABLE {ahead_partition}")],
    );
    assert!(dropped, "{stderr}");
    let exists = format!("SELECT count(*) FROM pg_class WHERE relname = '{ahead_partition}'");
    let ids = stack.produce_reports(&topic, 1, 10, 10);
    let archived = roles.consumer(&topic, &database).success();
    assert!(!archived.stderr.contains("upkeep failed"), "{}", archived.stderr);
    assert_eq!(roles.count(&database.name, &exists), 1, "the consumer's upkeep created it:\n{}", archived.stderr);
    assert_eq!(roles.count(&database.name, "SELECT count(*) FROM reports"), ids.len() as i64);
    assert_eq!(
        roles.count(&database.name, "SELECT sum(probes) FROM rollup_hourly WHERE url <> 'https://before.test/'"),
        ids.len() as i64,
        "every report counted in the hourly rollups"
    );
}
