//! The workspace's programs started against the stack in one call: each with the stack's settings
//! for its topic (and database) and nothing else. A test adds or overrides what it is about with
//! [`Run::env`] and [`Run::arg`], then runs it ([`Run::success`], [`Run::output`]) or starts it
//! ([`Run::spawn`]).

use crate::{Run, Stack, TestDatabase};

impl Stack {
    /// A one-off consumer run archiving `topic` into `database`.
    pub fn consumer(&self, topic: &str, database: &TestDatabase) -> Run {
        self.consumer_of(topic, &database.name)
    }

    /// A one-off consumer run archiving `topic` into the database named `database`, which need
    /// not be a test's own: for runs that are not meant to reach it (a wrong password, a closed
    /// port), with the stack's own `websentry`.
    pub fn consumer_of(&self, topic: &str, database: &str) -> Run {
        Run::new("websentry-consumer").envs(self.kafka_env(topic)).envs(self.database_env(database))
    }

    /// A consumer daemon archiving `topic` into `database`, without an HTTP endpoint: add
    /// `.env("WEBSENTRY_LISTEN", "127.0.0.1:0")` for one on a free port (its address is logged).
    pub fn consumer_daemon(&self, topic: &str, database: &TestDatabase) -> Run {
        self.consumer(topic, database).env("WEBSENTRY_CONSUMER_ENABLE_DAEMON", "true").env("WEBSENTRY_LISTEN", "")
    }

    /// The consumer's `--migrate-only` for `database`, with the database settings alone (no Kafka
    /// settings), as an operator who runs the schema changes with other rights does.
    pub fn consumer_migrating(&self, database: &TestDatabase) -> Run {
        Run::new("websentry-consumer").arg("--migrate-only").envs(self.database_env(&database.name))
    }

    /// A one-off producer run publishing to `topic`; its sites are the test's to give
    /// (`WEBSENTRY_SITES` or `WEBSENTRY_SITES_FILE`), and `WEBSENTRY_INTERVAL` makes it a daemon.
    pub fn producer(&self, topic: &str) -> Run {
        Run::new("websentry-producer").envs(self.kafka_env(topic))
    }
}
