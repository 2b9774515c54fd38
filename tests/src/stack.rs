//! The running stack, and fresh topics and databases carved out of it for one test each.

use std::{collections::BTreeMap, path::PathBuf, process::Command, sync::OnceLock, time::Duration};

use anyhow::{bail, Context};
use rskafka::{
    client::{
        partition::{OffsetAt, UnknownTopicHandling},
        Client,
    },
    record::Record,
};
use websentry_consumer::database::{self, DatabaseArgs, DatabaseSettings};
use websentry_shared::kafka::{KafkaArgs, KafkaSettings};

use crate::eventually;

/// A record's key and value, exactly as written to Kafka.
pub type RawRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The settings `scripts/stack env` prints for the running stack.
#[derive(Debug, Clone)]
pub struct Stack {
    vars: BTreeMap<String, String>,
}

impl Stack {
    /// The stack, read once per test binary. Panics with what to do when it is not up: a test that
    /// needs real services must not pass without them.
    pub fn get() -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(|| Stack::load().unwrap_or_else(|err| panic!("{err:#}\nstart it with: scripts/stack up")))
    }

    fn load() -> anyhow::Result<Stack> {
        let script = repo_root().join("scripts/stack");
        let output =
            Command::new(&script).arg("env").output().with_context(|| format!("running {}", script.display()))?;
        if !output.status.success() {
            bail!("scripts/stack env failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        let mut vars = BTreeMap::new();
        for line in String::from_utf8(output.stdout)?.lines() {
            let Some(assignment) = line.strip_prefix("export ") else { continue };
            let Some((name, value)) = assignment.split_once('=') else { continue };
            vars.insert(name.to_owned(), unquote(value));
        }
        Ok(Stack { vars })
    }

    /// One variable of the stack's environment.
    pub fn var(&self, name: &str) -> &str {
        self.vars.get(name).unwrap_or_else(|| panic!("scripts/stack env does not print {name}"))
    }

    /// The address of the stack's PostgreSQL, for a relay in front of it.
    pub fn database_address(&self) -> std::net::SocketAddr {
        format!("{}:{}", self.var("WEBSENTRY_DATABASE_HOST"), self.var("WEBSENTRY_DATABASE_PORT"))
            .parse()
            .expect("the stack's database address")
    }

    /// A path of the stack's PKI folder.
    pub fn pki(&self, file: &str) -> PathBuf {
        PathBuf::from(self.var("WEBSENTRY_STACK_PKI")).join(file)
    }

    /// The `WEBSENTRY_KAFKA_*` variables for `topic`, as the binaries take them.
    pub fn kafka_env(&self, topic: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> =
            ["WEBSENTRY_KAFKA_HOSTS", "WEBSENTRY_KAFKA_CAFILE", "WEBSENTRY_KAFKA_CERTFILE", "WEBSENTRY_KAFKA_KEY"]
                .iter()
                .map(|name| ((*name).to_owned(), self.var(name).to_owned()))
                .collect();
        env.push(("WEBSENTRY_KAFKA_TOPIC".into(), topic.into()));
        env
    }

    /// The `WEBSENTRY_DATABASE_*` variables for `database`.
    pub fn database_env(&self, database: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            "WEBSENTRY_DATABASE_HOST",
            "WEBSENTRY_DATABASE_PORT",
            "WEBSENTRY_DATABASE_USER",
            "WEBSENTRY_DATABASE_PASSWORD",
            "WEBSENTRY_DATABASE_SSLMODE",
            "WEBSENTRY_DATABASE_CAFILE",
        ]
        .iter()
        .map(|name| ((*name).to_owned(), self.var(name).to_owned()))
        .collect();
        env.push(("WEBSENTRY_DATABASE_NAME".into(), database.into()));
        env
    }

    /// Kafka settings as the binaries would build them from [`Stack::kafka_env`].
    pub fn kafka_settings(&self, topic: &str) -> KafkaSettings {
        let args = KafkaArgs {
            kafka_hosts: Some(self.var("WEBSENTRY_KAFKA_HOSTS").into()),
            kafka_cafile: Some(self.var("WEBSENTRY_KAFKA_CAFILE").into()),
            kafka_certfile: Some(self.var("WEBSENTRY_KAFKA_CERTFILE").into()),
            kafka_key: Some(self.var("WEBSENTRY_KAFKA_KEY").into()),
            kafka_topic: topic.into(),
            kafka_timeout: "30".into(),
        };
        KafkaSettings::try_from(&args).expect("the stack's Kafka settings are valid")
    }

    /// Database settings as the consumer would build them from [`Stack::database_env`].
    fn database_settings(&self, database: &str) -> DatabaseSettings {
        DatabaseSettings::try_from(&self.database_args(database)).expect("the stack's database settings are valid")
    }

    /// The database settings of [`Stack::database_env`] as given, before they are checked: for a
    /// test to change one of them.
    pub fn database_args(&self, database: &str) -> DatabaseArgs {
        DatabaseArgs {
            database_name: Some(database.into()),
            database_host: Some(self.var("WEBSENTRY_DATABASE_HOST").into()),
            database_port: self.var("WEBSENTRY_DATABASE_PORT").into(),
            database_user: Some(self.var("WEBSENTRY_DATABASE_USER").into()),
            database_password: Some(self.var("WEBSENTRY_DATABASE_PASSWORD").into()),
            database_sslmode: self.var("WEBSENTRY_DATABASE_SSLMODE").into(),
            database_cafile: Some(self.var("WEBSENTRY_DATABASE_CAFILE").into()),
            database_timeout: "30".into(),
        }
    }

    /// A new topic with a random name and `partitions` partitions, created over mutual TLS.
    pub fn create_topic(&self, partitions: i32) -> String {
        let topic = format!("test-{}", random_suffix());
        self.create_topic_named(&topic, partitions);
        topic
    }

    /// Creates the topic `name` with `partitions` partitions, e.g. again after deleting it.
    /// Returns once the broker lists the topic with all its partitions: right after a broker
    /// restart its metadata can lag the creation, and a binary started then would not find it.
    pub fn create_topic_named(&self, name: &str, partitions: i32) {
        let runtime = runtime();
        let settings = self.kafka_settings(name);
        let client = runtime.block_on(within_a_minute(async {
            let client = self.kafka_client(name).await;
            let controller = client.controller_client().expect("controller client");
            controller.create_topic(name, partitions, 1, 10_000).await.expect("creating the test topic");
            client
        }));
        let listed = |client: &Client| runtime.block_on(within_a_minute(settings.partitions(client))).ok();
        eventually(&format!("topic {name} listed with its {partitions} partitions"), Duration::from_secs(30), || {
            listed(&client).map(|p| p.len()) == usize::try_from(partitions).ok()
        });
    }

    /// Deletes a topic, e.g. to make publishing to it fail.
    pub fn delete_topic(&self, topic: &str) {
        block_on(async {
            let client = self.kafka_client(topic).await;
            let controller = client.controller_client().expect("controller client");
            controller.delete_topic(topic, 10_000).await.expect("deleting the test topic");
        });
    }

    async fn kafka_client(&self, topic: &str) -> Client {
        self.kafka_settings(topic).connect("websentry-tests").await.expect("connecting to the stack's Kafka")
    }

    /// Writes raw records to one partition of `topic` (keys and values exactly as given), stamped
    /// now (to the millisecond, as Kafka keeps it).
    pub fn produce_raw(&self, topic: &str, partition: i32, records: Vec<RawRecord>) {
        let now_nanos = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000 * 1_000_000)
            .expect("a time before 2262");
        block_on(async {
            let client = self.kafka_client(topic).await;
            let partition =
                client.partition_client(topic, partition, UnknownTopicHandling::Retry).await.expect("partition client");
            let records = records
                .into_iter()
                .map(|(key, value)| Record {
                    key,
                    value,
                    headers: BTreeMap::new(),
                    timestamp: rskafka::chrono::DateTime::from_timestamp_nanos(now_nanos),
                })
                .collect();
            partition.produce(records, Default::default()).await.expect("producing raw records");
        });
    }

    /// The offset up to which `partition` of `topic` is readable now: its last stable offset, the
    /// end of the log when no transaction is open.
    pub fn readable_end(&self, topic: &str, partition: i32) -> i64 {
        block_on(async {
            let client = self.kafka_client(topic).await;
            let partition =
                client.partition_client(topic, partition, UnknownTopicHandling::Retry).await.expect("partition client");
            partition.get_offset(OffsetAt::Latest).await.expect("listing the latest offset")
        })
    }

    /// Every record value of `topic`, partition by partition.
    pub fn read_topic(&self, topic: &str) -> Vec<(i32, Vec<u8>)> {
        block_on(async {
            let settings = self.kafka_settings(topic);
            let client = settings.connect("websentry-tests").await.expect("connect");
            let mut values = Vec::new();
            for id in settings.partitions(&client).await.expect("partitions") {
                let partition =
                    client.partition_client(topic, id, UnknownTopicHandling::Retry).await.expect("partition client");
                let mut offset = 0;
                loop {
                    let (records, high_watermark) =
                        partition.fetch_records(offset, 1..1_000_000, 100).await.expect("fetch");
                    for r in &records {
                        values.push((id, r.record.value.clone().unwrap_or_default()));
                        offset = r.offset + 1;
                    }
                    if offset >= high_watermark || records.is_empty() {
                        break;
                    }
                }
            }
            values
        })
    }

    /// A new, empty database with a random name, dropped when the value is.
    pub fn create_database(&self) -> TestDatabase {
        let name = format!("test_{}", random_suffix().replace('-', "_"));
        let mut admin = database::connect(&self.database_settings(self.var("WEBSENTRY_DATABASE_NAME")))
            .expect("connecting to the stack's database");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("creating the test database");
        TestDatabase {
            name,
            settings: self.database_settings(self.var("WEBSENTRY_DATABASE_NAME")),
            stack: self.clone(),
        }
    }
}

/// A database of one test.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    settings: DatabaseSettings,
    stack: Stack,
}

impl TestDatabase {
    /// A new connection to this database.
    pub fn client(&self) -> postgres::Client {
        database::connect(&self.stack.database_settings(&self.name)).expect("connecting to the test database")
    }

    /// Rows of a query whose single column converts to `T`.
    pub fn column<T: for<'a> postgres::types::FromSql<'a>>(&self, sql: &str) -> Vec<T> {
        self.client().query(sql, &[]).expect(sql).iter().map(|row| row.get(0)).collect()
    }

    /// The value of a query returning one `bigint`.
    pub fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).expect(sql).get(0)
    }

    /// The value of a query returning one `bigint`, or `None` while it fails (e.g. before the
    /// consumer has created the table it reads).
    pub fn try_count(&self, sql: &str) -> Option<i64> {
        database::connect(&self.stack.database_settings(&self.name))
            .ok()?
            .query_one(sql, &[])
            .ok()
            .map(|row| row.get(0))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = database::connect(&self.settings) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.replace(r"'\''", "'");
    }
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        return inner.to_owned();
    }
    value.to_owned()
}

fn random_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The workspace root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// `future`, which panics when it takes over a minute.
async fn within_a_minute<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), future).await.expect("a Kafka helper took over 60 s")
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(within_a_minute(future))
}
