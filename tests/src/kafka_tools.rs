//! Apache Kafka's own command-line tools, run from the broker's jars: a client independent of
//! rskafka, so that what the consumer reads was not written by the library it reads with.

use std::{
    io::Write,
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

    /// Runs one of Kafka's Java tools (`class`) against the broker's plaintext listener, `input` on
    /// its standard input; panics with its output when it fails.
    fn kafka_tool(&self, class: &str, args: &[&str], input: &str) {
        let mut java = Command::new("java")
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg(format!(
                "-Dlog4j2.configurationFile={}/kafka/tools-log4j2.properties",
                self.var("WEBSENTRY_STACK_DIR")
            ))
            .args(["-cp", &format!("{}/*", self.var("WEBSENTRY_STACK_KAFKA_LIBS"))])
            .arg(class)
            .args(["--bootstrap-server", self.var("WEBSENTRY_STACK_KAFKA_PLAINTEXT")])
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
}
