//! Our partitioner agrees with Apache Kafka's own: `Utils.murmur2` and the default partitioner's
//! `toPositive(murmur2(key)) % partitions`, run from the broker's jars with Java.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use websentry_producer::publish::partitioner::{murmur2, partition_for_key};
use websentry_tests::{Scratch, Stack};

const JAVA: &str = r#"
import org.apache.kafka.common.utils.Utils;
import java.io.*;
import java.nio.charset.StandardCharsets;

public class Murmur {
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            byte[] key = line.getBytes(StandardCharsets.UTF_8);
            int hash = Utils.murmur2(key);
            System.out.println(hash + " " + Utils.toPositive(hash) % 7);
        }
    }
}
"#;

#[test]
fn murmur2_and_the_partition_match_kafkas_own_code_for_many_keys() {
    let stack = Stack::get();
    let files = Scratch::new();
    let source = files.write("Murmur.java", JAVA);

    let mut keys: Vec<String> = vec![String::new(), "a".into(), "ab".into(), "abc".into(), "abcd".into()];
    keys.extend((0..400).map(|i| format!("https://site-{i}.example/{}", "p/".repeat(i % 13))));
    keys.extend(["https://bücher.example/ü", "http://127.0.0.1:8080/?q=ä€😀"].map(String::from));

    let classpath = format!("{}/*", stack.var("WEBSENTRY_STACK_KAFKA_LIBS"));
    let mut java = Command::new("java")
        .args(["-cp", &classpath])
        .arg(&source)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running java (the stack needs it too)");
    let mut stdin = java.stdin.take().expect("stdin");
    let input = keys.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = java.wait_with_output().expect("java output");
    writer.join().expect("writer").expect("writing keys");
    assert!(output.status.success(), "java failed: {}", String::from_utf8_lossy(&output.stderr));

    let lines: Vec<String> = String::from_utf8(output.stdout).expect("utf-8").lines().map(String::from).collect();
    assert_eq!(lines.len(), keys.len());
    for (key, line) in keys.iter().zip(&lines) {
        let ours = format!("{} {}", murmur2(key.as_bytes()), partition_for_key(key.as_bytes(), 7));
        assert_eq!(&ours, line, "key {key:?}");
    }
}
