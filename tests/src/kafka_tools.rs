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
        let mut java = Command::new("java")
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg(format!(
                "-Dlog4j2.configurationFile={}/kafka/tools-log4j2.properties",
                self.var("WEBSENTRY_STACK_DIR")
            ))
            .args(["-cp", &format!("{}/*", self.var("WEBSENTRY_STACK_KAFKA_LIBS"))])
            .arg("org.apache.kafka.tools.ConsoleProducer")
            .args(["--bootstrap-server", self.var("WEBSENTRY_STACK_KAFKA_PLAINTEXT"), "--topic", topic])
            .args(["--property", "parse.key=true", "--property", "key.separator=\t"])
            .args(["--producer-property", "acks=all", "--producer-property", "max.request.size=4194304"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running Kafka's console producer (java, as the stack)");
        java.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("writing records to the producer");
        let output = java.wait_with_output().expect("console producer output");
        assert!(output.status.success(), "console producer failed: {}", String::from_utf8_lossy(&output.stderr));
    }
}
