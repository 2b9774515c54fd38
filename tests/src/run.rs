//! Running the workspace's binaries as a user would, with only the environment a test gives.

use std::{
    io::Read,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{binary, wait::eventually_ok};

/// A command line to run: binary, arguments and its whole environment.
#[derive(Debug, Clone)]
pub struct Run {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct RunOutput {
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// The stderr lines that are not log lines: what `main` printed before exiting.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|line| line.contains(": error: ")).collect()
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl Run {
    /// `websentry-producer` or `websentry-consumer`, built from the current source (see [`binary`]),
    /// with an empty environment. [`Stack::consumer`](crate::Stack::consumer) and
    /// [`Stack::producer`](crate::Stack::producer) start one with the stack's settings.
    pub fn new(name: &str) -> Self {
        Self { program: binary(name), args: Vec::new(), env: Vec::new(), timeout: Duration::from_secs(120) }
    }

    /// Runs `program` instead of the binary built from the current source (another build of it, to
    /// measure beside this one).
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.env.retain(|(n, _)| *n != name);
        self.env.push((name, value.into()));
        self
    }

    pub fn envs(self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        vars.into_iter().fold(self, |run, (name, value)| run.env(name, value))
    }

    /// How long [`Run::output`] lets it run before killing it and failing the test (120 s unless
    /// set).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    pub fn without_env(mut self, name: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self
    }

    /// Runs to completion; a run past the timeout is killed and fails the test.
    pub fn output(&self) -> RunOutput {
        let result = self.spawn().finish(self.timeout);
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!("--- {} exited {:?}\n{}", self.program.display(), result.code, result.stderr);
        }
        result
    }

    /// Runs and asserts a successful exit, showing stderr otherwise.
    pub fn success(&self) -> RunOutput {
        let output = self.output();
        assert_eq!(output.code, Some(0), "{} failed:\n{}", self.program.display(), output.stderr);
        output
    }
}

/// A binary running in the background, for daemons and signals. Dropped while still running (a
/// failed assertion, a panic), it is killed and reaped: no test leaves a daemon behind.
#[derive(Debug)]
pub struct Running {
    child: std::process::Child,
    /// The reader of stdout, which returns all of it at the end; taken by [`Running::finish`].
    stdout: Option<std::thread::JoinHandle<String>>,
    /// Everything written to stderr so far.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// The reader filling `stderr`; taken by [`Running::finish`].
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Run {
    /// Starts the binary and returns at once.
    pub fn spawn(&self) -> Running {
        let loglevel = std::env::var("TEST_LOGLEVEL").unwrap_or_else(|_| "INFO".into());
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .env("WEBSENTRY_LOGLEVEL", loglevel)
            .envs(self.env.iter().map(|(n, v)| (n, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the binary");
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = std::sync::Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().expect("stderr buffer").push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Running { child, stdout: Some(stdout), stderr, stderr_reader: Some(stderr_reader) }
    }
}

impl Running {
    /// Waits until stderr contains `fragment`; panics with what it said after `timeout`.
    pub fn wait_for_log(&self, fragment: &str, timeout: Duration) {
        self.wait_for_log_times(fragment, 1, timeout);
    }

    /// Waits until stderr contains `fragment` `times` times (three "round done": three rounds);
    /// panics with what it said after `timeout`.
    pub fn wait_for_log_times(&self, fragment: &str, times: usize, timeout: Duration) {
        eventually_ok(&format!("{fragment:?} logged {times} times"), timeout, || {
            let stderr = self.stderr();
            if stderr.matches(fragment).count() >= times {
                Ok(())
            } else {
                Err(format!("stderr:\n{stderr}"))
            }
        });
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Sends SIGKILL: the process dies at once, mid-batch or not, as in a node failure.
    pub fn kill_hard(&self) {
        let status = Command::new("kill").args(["-KILL", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success(), "kill -KILL failed");
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The first value of `field=` in a log line containing `fragment`, once it has been logged.
    pub fn log_field(&self, fragment: &str, field: &str, timeout: Duration) -> String {
        self.wait_for_log(fragment, timeout);
        let stderr = self.stderr();
        let line = stderr.lines().find(|l| l.contains(fragment)).expect("the line waited for");
        let start =
            line.find(&format!("{field}=")).unwrap_or_else(|| panic!("no {field}= in {line}")) + field.len() + 1;
        line[start..].split_whitespace().next().unwrap_or_default().trim_matches('"').to_owned()
    }

    /// Waits for the exit (killing it after `timeout`) and collects its output.
    pub fn finish(mut self, timeout: Duration) -> RunOutput {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting") {
                break status;
            }
            if Instant::now() > deadline {
                panic!("still running after {timeout:?} (killed); stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().expect("stderr reader");
        }
        let stdout = self.stdout.take().map(|reader| reader.join().expect("stdout reader")).unwrap_or_default();
        RunOutput { code: status.code(), stdout, stderr: self.stderr() }
    }
}

/// The variables `env` as the flags of the clap definition `P` that take them (`--kafka-hosts=…`
/// for `WEBSENTRY_KAFKA_HOSTS`), for settings built in-process without touching this process's
/// environment.
///
/// # Panics
/// When `P` has no flag for one of the variables.
pub fn as_flags<P: clap::CommandFactory>(env: &[(String, String)]) -> Vec<String> {
    let command = P::command();
    env.iter()
        .map(|(name, value)| {
            let flag = command
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == name.as_str()))
                .and_then(|a| a.get_long())
                .unwrap_or_else(|| panic!("no flag takes {name}"));
            format!("--{flag}={value}")
        })
        .collect()
}
