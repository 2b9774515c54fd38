//! Apache Kafka's own command-line tools, run from the broker's jars: a client independent of
//! rskafka, so that what the consumer reads was not written by the library it reads with.

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use crate::Stack;

impl Stack {
    /// Writes keyed records to `topic` with Kafka's console producer (Java, over the broker's
    /// plaintext listener). Keys and values are one line each and must not hold a tab.
    pub fn produce_with_console_producer(&self, topic: &str, records: &[(&str, &str)]) {
        let mut input = String::new();
        for (key, value) in records {
            assert!(!key.contains(['\t', '\n']) && !value.contains('\n'), "one line per record: {key:?}");
            input.push_str(&format!("{key}\t{value}\n"));
        }
        let args = ["--topic", topic, "--property", "parse.key=true", "--property", "key.separator=\t"];
        let producer = ["--producer-property", "acks=all", "--producer-property", "max.request.size=4194304"];
        self.kafka_tool("org.apache.kafka.tools.ConsoleProducer", &[&args[..], &producer[..]].concat(), &input);
    }

    /// Raises the partition count of `topic` to `total` with Kafka's topic tool.
    pub fn add_partitions(&self, topic: &str, total: i32) {
        let total = total.to_string();
        let args = ["--alter", "--topic", topic, "--partitions", &total];
        self.kafka_tool("org.apache.kafka.tools.TopicCommand", &args, "");
    }

    /// Writes `count` records to `topic` with Kafka's ProducerPerformance over about a second
    /// (throttled: unthrottled, a few transactions would hold them all), in transactions of
    /// `transaction_ms` milliseconds each, under the transactional id `transactional_id`: what Kafka
    /// Streams, Connect, MirrorMaker 2 and Flink write. The values are the counters `0` to
    /// `count - 1` as text (`--payload-monotonic`), the keys null, spread over the partitions by the
    /// Java client's default partitioner.
    pub fn produce_with_producer_performance(
        &self,
        topic: &str,
        count: u32,
        transactional_id: &str,
        transaction_ms: u32,
    ) {
        let (count, transaction_ms) = (count.to_string(), transaction_ms.to_string());
        let bootstrap = format!("bootstrap.servers={}", self.var("WEBSENTRY_STACK_KAFKA_PLAINTEXT"));
        let args = [
            "--topic",
            topic,
            "--num-records",
            &count,
            "--throughput",
            &count,
            "--payload-monotonic",
            "--transactional-id",
            transactional_id,
            "--transaction-duration-ms",
            &transaction_ms,
            "--producer-props",
            &bootstrap,
            "acks=all",
        ];
        self.run_java("org.apache.kafka.tools.ProducerPerformance", &args, "");
    }

    /// Runs one of Kafka's Java tools (`class`) against the broker's plaintext listener, `input` on
    /// its standard input; panics with its output when it fails.
    fn kafka_tool(&self, class: &str, args: &[&str], input: &str) {
        let bootstrap = ["--bootstrap-server", self.var("WEBSENTRY_STACK_KAFKA_PLAINTEXT")];
        self.run_java(class, &[&bootstrap[..], args].concat(), input);
    }

    /// Runs the Java class `class` with the broker's jars, `input` on its standard input; panics
    /// with its output when it fails.
    fn run_java(&self, class: &str, args: &[&str], input: &str) {
        let mut java = self
            .java(&[])
            .arg(class)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("running Kafka's {class} (java, as the stack): {err}"));
        java.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("writing to the tool");
        let output = java.wait_with_output().expect("tool output");
        assert!(output.status.success(), "{class} failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// `java` with the broker's jars and `extra` folders on its class path, a small heap and quiet
    /// logs (warnings and errors, on stderr).
    pub(crate) fn java(&self, extra: &[&Path]) -> Command {
        let mut class_path = format!("{}/*", self.var("WEBSENTRY_STACK_KAFKA_LIBS"));
        for folder in extra {
            class_path.push(':');
            class_path.push_str(&folder.to_string_lossy());
        }
        let mut java = Command::new("java");
        java.args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg(format!(
                "-Dlog4j2.configurationFile={}/kafka/tools-log4j2.properties",
                self.var("WEBSENTRY_STACK_DIR")
            ))
            .args(["-cp", &class_path]);
        java
    }
}
