//! Kafka's own transactional producer, driven by a test one step at a time: `tests/java/
//! TransactionalWriter.java`, compiled with `javac` against the broker's jars once per test process
//! (like the binaries, see [`binary`](crate::binary)), so that a test decides what is committed, what
//! is aborted and what is still open while the consumer reads.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        mpsc::{self, Receiver},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};

use crate::{binaries::layout, repo_root, Stack};

/// How long one step of the writer may take (the first transaction of a fresh broker creates its
/// transaction log, 50 partitions, which takes seconds on a loaded machine).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// A transactional producer of Kafka's Java client writing to one topic, one step at a time. Dropped
/// (or at the end of its input), it ends without ending an open transaction, as a writer that
/// crashed would: the broker aborts that one after the transaction timeout (60 s).
#[derive(Debug)]
pub struct TransactionalWriter {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its answers, a line each.
    answers: Receiver<String>,
    /// What it has written to stderr so far.
    stderr: Arc<Mutex<String>>,
}

impl Stack {
    /// Starts a transactional writer to `topic` with the transactional id `transactional_id`, over
    /// the broker's plaintext listener; returns once it holds its id.
    pub fn transactional_writer(&self, topic: &str, transactional_id: &str) -> TransactionalWriter {
        let classes = writer_classes();
        let mut child = self
            .java(&[classes])
            .arg("TransactionalWriter")
            .args([self.var("WEBSENTRY_STACK_KAFKA_PLAINTEXT"), topic, transactional_id])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("running the transactional writer (java): {err}"));
        let (sender, answers) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut pipe, sink) = (child.stderr.take().expect("piped stderr"), Arc::clone(&stderr));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().expect("stderr buffer").push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdin = child.stdin.take();
        let writer = TransactionalWriter { child, stdin, answers, stderr };
        writer.expect_answer("ready");
        writer
    }
}

impl TransactionalWriter {
    /// Begins a transaction.
    pub fn begin(&mut self) {
        self.step("begin");
    }

    /// Sends one record to `partition` and waits until it is written; returns its offset.
    pub fn send(&mut self, partition: i32, key: &str, value: &str) -> i64 {
        assert!(![key, value].iter().any(|field| field.contains(['\t', '\n'])), "one line per record: {key:?}");
        let answer = self.step(&format!("send\t{partition}\t{key}\t{value}"));
        answer
            .split_whitespace()
            .nth(2)
            .and_then(|offset| offset.parse().ok())
            .unwrap_or_else(|| panic!("no offset in the writer's answer {answer:?}"))
    }

    /// Commits the transaction.
    pub fn commit(&mut self) {
        self.step("commit");
    }

    /// Aborts the transaction.
    pub fn abort(&mut self) {
        self.step("abort");
    }

    /// Sends a command; returns the writer's answer once it has carried it out.
    fn step(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().expect("the writer's input is open");
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|err| panic!("writing to the transactional writer: {err}\nits stderr:\n{}", self.stderr()));
        let verb = command.split('\t').next().unwrap_or(command);
        let answer = self.expect_answer("ok");
        assert!(answer.starts_with("ok"), "{verb}: {answer}");
        answer
    }

    /// The next answer, which must start with `expected`.
    fn expect_answer(&self, expected: &str) -> String {
        match self.answers.recv_timeout(STEP_TIMEOUT) {
            Ok(answer) if answer.starts_with(expected) => answer,
            Ok(answer) => panic!("the transactional writer answered {answer:?}, not {expected:?}:\n{}", self.stderr()),
            Err(err) => panic!("no answer from the transactional writer ({err}):\n{}", self.stderr()),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }
}

impl Drop for TransactionalWriter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The folder of the compiled writer: `javac` runs once per test process, into the running test's
/// target folder (`<target>/java`).
///
/// # Panics
/// When `javac` fails, with its output, once for every caller.
fn writer_classes() -> &'static Path {
    static COMPILED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    COMPILED.get_or_init(compile).as_deref().unwrap_or_else(|err| panic!("{err}"))
}

fn compile() -> Result<PathBuf, String> {
    let (target, _) = layout()?;
    let classes = target.join("java");
    let source = repo_root().join("tests/java/TransactionalWriter.java");
    let libs = format!("{}/*", Stack::get().var("WEBSENTRY_STACK_KAFKA_LIBS"));
    let output = Command::new("javac")
        .args(["-nowarn", "-d"])
        .arg(&classes)
        .args(["-cp", &libs])
        .arg(&source)
        .output()
        .map_err(|err| format!("running javac (a JDK, as scripts/stack installs it): {err}"))?;
    if !output.status.success() {
        return Err(format!("javac {} failed:\n{}", source.display(), String::from_utf8_lossy(&output.stderr)));
    }
    Ok(classes)
}
