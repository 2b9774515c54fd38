//! The images `scripts/check-shipping` built from the Dockerfile with podman, run as the `docker run`
//! lines of `docs/operations.md` run them.
//!
//! [`Container::from_readme`] takes a `docker run` line from `docs/operations.md` itself (where the
//! README's deployment pointers lead), word for word, and replaces only what must differ here: the
//! example hosts, database and sites by the local stack's, the mounted folders' host side by the
//! test's, the image by the one built. Every container runs with the documented hardening
//! (`--read-only --cap-drop ALL --security-opt no-new-privileges`, checked to be in each documented
//! line), certificates in folders mounted read-only, and what this machine needs on top: runc (crun
//! fails on this kernel's hybrid cgroups), the vfs storage driver, explicit ulimits (the defaults
//! are refused) and the host's network, so that 127.0.0.1 reaches the local stack whose broker
//! advertises 127.0.0.1 (a published port, `-p`, cannot be used with it: the consumer listens on
//! the host's loopback through `WEBSENTRY_LISTEN` instead).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

/// Options before podman's subcommand, as `scripts/check-shipping` builds the images.
pub const PODMAN: [&str; 3] = ["--storage-driver=vfs", "--runtime", "runc"];
/// Options of every `podman run` that this machine needs beside the documented ones.
const HOST_OPTIONS: [&str; 5] = ["--network=host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
/// The documented hardening of every `docker run` (`docs/operations.md`).
pub const README_OPTIONS: [&str; 5] = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"];

/// `podman` with [`PODMAN`]'s options.
pub fn podman() -> Command {
    let mut command = Command::new("podman");
    command.args(PODMAN);
    command
}

/// Runs `podman args…`; panics with its stderr when it fails.
pub fn podman_ok(args: &[&str]) -> String {
    let output = podman().args(args).output().expect("starting podman (scripts/check-shipping installs it)");
    assert!(output.status.success(), "podman {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The tag of the image of the Dockerfile's stage `stage` (`producer`, `consumer`), built by
/// `scripts/check-shipping`, which names it in `WEBSENTRY_IMAGE_PRODUCER` / `_CONSUMER`.
pub fn image(stage: &str) -> String {
    let variable = format!("WEBSENTRY_IMAGE_{}", stage.to_ascii_uppercase());
    std::env::var(&variable)
        .unwrap_or_else(|_| panic!("{variable} is not set: run scripts/check-shipping, which builds the images"))
}

/// A unique container name; containers are removed by name whatever happens.
fn container_name(what: &str) -> String {
    format!("websentry-test-{what}-{:08x}", rand::random::<u32>())
}

/// A folder of certificates as `docs/operations.md` asks for it: owned by root, readable by
/// everyone, except the private keys, which only user 65532 may read (mode 0400). Removed on drop.
#[derive(Debug)]
pub struct CertificateFolder {
    pub path: PathBuf,
}

impl CertificateFolder {
    /// Copies `files` (`(host file, name in the folder, is a key)`) into a new folder.
    pub fn new(files: &[(&Path, &str, bool)]) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("websentry-certs-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&path).expect("creating the certificate folder");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for (source, name, key) in files {
            let target = path.join(name);
            std::fs::copy(source, &target).unwrap_or_else(|err| panic!("copying {}: {err}", source.display()));
            let mode = if *key { 0o400 } else { 0o444 };
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).expect("chmod");
            if *key {
                std::os::unix::fs::chown(&target, Some(65532), Some(65532)).expect("chown 65532 (run as root)");
            }
        }
        CertificateFolder { path }
    }

    /// Gives the key `name` back to root (mode 0600): the control case of a key the images' user
    /// cannot read.
    pub fn key_owned_by_root(&self, name: &str) {
        use std::os::unix::fs::PermissionsExt;
        let key = self.path.join(name);
        std::os::unix::fs::chown(&key, Some(0), Some(0)).expect("chown root");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

impl Drop for CertificateFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The `docker run` commands of `docs/operations.md` (where the README's deployment pointers lead),
/// each as its words (continuation lines joined).
pub fn readme_docker_runs() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(crate::repo_root().join("docs/operations.md")).expect("reading docs/operations.md");
    let mut runs = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("docker run ") {
            continue;
        }
        let mut command = line.to_owned();
        while command.ends_with('\\') {
            command.pop();
            command.push(' ');
            command.push_str(lines.next().unwrap_or_default());
        }
        runs.push(command.split_whitespace().map(str::to_owned).collect());
    }
    runs
}

/// The documented `docker run` line of `image` (e.g. `websentry-consumer:0.1.0`) whose arguments
/// after the image are `args`.
pub fn readme_line(image: &str, args: &[&str]) -> Vec<String> {
    let runs = readme_docker_runs();
    runs.iter()
        .find(|words| words.iter().position(|w| w == image).is_some_and(|at| words[at + 1..].iter().eq(args.iter())))
        .cloned()
        .unwrap_or_else(|| panic!("no `docker run … {image} {}` in docs/operations.md among {runs:#?}", args.join(" ")))
}

/// Options of `docker run` that take a value, as `docs/operations.md` uses them.
const WITH_VALUE: [&str; 7] = ["--name", "-p", "-v", "-e", "--cap-drop", "--security-opt", "--stop-timeout"];

/// One `podman run` of an image, built up like a documented `docker run` line.
#[derive(Debug, Clone)]
pub struct Container {
    image: String,
    name: String,
    /// The documented hardening, for runs not taken from a documented line (which carries its own).
    hardening: Vec<String>,
    options: Vec<String>,
    /// Variables given as `-e NAME` and passed through podman's own environment (the password).
    passed: Vec<(String, String)>,
    args: Vec<String>,
}

/// What a finished container left behind.
#[derive(Debug)]
pub struct Exit {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Container {
    pub fn of(image: impl Into<String>) -> Self {
        Container {
            image: image.into(),
            name: container_name("run"),
            hardening: README_OPTIONS.iter().map(|o| (*o).to_owned()).collect(),
            options: Vec::new(),
            passed: Vec::new(),
            args: Vec::new(),
        }
    }

    /// The documented `docker run` line `words`, run here: the image replaced by `image`, each
    /// `-e NAME=…` whose NAME is in `values` given that value instead (and `-e NAME` without a
    /// value passed from podman's environment with it), each `-v HOST:PATH:ro` mounted from
    /// `volumes[PATH]`; `--rm`, `-d` and `--name` are the runner's, and a published port (`-p`)
    /// is returned apart, since the host's network publishes nothing. Panics when the line lacks
    /// the documented hardening, mounts something writable, or needs a value or a folder the test
    /// did not give.
    pub fn from_readme(
        words: &[String],
        image: &str,
        values: &HashMap<&str, String>,
        volumes: &HashMap<&str, PathBuf>,
    ) -> (Self, Option<String>) {
        let line = words.join(" ");
        assert!(line.contains(&README_OPTIONS.join(" ")), "the documented line lacks {README_OPTIONS:?}: {line}");
        assert_eq!(words[..2], ["docker", "run"], "{line}");
        let mut run = Container { hardening: Vec::new(), ..Container::of(image) };
        let mut published = None;
        let mut rest = words[2..].iter();
        while let Some(word) = rest.next() {
            if !word.starts_with('-') {
                run.args = rest.cloned().collect();
                break;
            }
            let value = if WITH_VALUE.contains(&word.as_str()) {
                rest.next().unwrap_or_else(|| panic!("{word} without a value: {line}")).clone()
            } else {
                String::new()
            };
            match word.as_str() {
                "--rm" | "-d" | "--name" => {}
                "-p" => published = Some(value),
                "-v" => {
                    let mut parts = value.split(':');
                    let (_, path, mode) = (parts.next(), parts.next().expect("HOST:PATH"), parts.next());
                    assert_eq!(mode, Some("ro"), "docs/operations.md mounts {value} writable: {line}");
                    let host = volumes.get(path).unwrap_or_else(|| panic!("the test gives no folder for {path}"));
                    run = run.volume(host, path);
                }
                "-e" => match value.split_once('=') {
                    Some((name, example)) => run = run.env(name, values.get(name).map_or(example, String::as_str)),
                    None => {
                        let passed = values.get(value.as_str()).unwrap_or_else(|| panic!("the test gives no {value}"));
                        run = run.env_passed(&value, passed.clone());
                    }
                },
                _ if value.is_empty() => run.options.push(word.clone()),
                _ => run.options.extend([word.clone(), value]),
            }
        }
        (run, published)
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// `-e NAME=value`.
    pub fn env(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.options.extend(["-e".to_owned(), format!("{name}={}", value.as_ref())]);
        self
    }

    /// `-e NAME` with the value in podman's environment, so it is not on the command line.
    pub fn env_passed(mut self, name: &str, value: impl Into<String>) -> Self {
        self.options.extend(["-e".to_owned(), name.to_owned()]);
        self.passed.push((name.to_owned(), value.into()));
        self
    }

    /// `-v host:inside:ro`.
    pub fn volume(mut self, host: impl AsRef<Path>, inside: &str) -> Self {
        self.options.extend(["-v".to_owned(), format!("{}:{inside}:ro", host.as_ref().display())]);
        self
    }

    fn command(&self, detached: bool) -> Command {
        let mut command = podman();
        command.arg("run").args(["--name", &self.name]);
        command.arg(if detached { "-d" } else { "--rm" });
        command.args(HOST_OPTIONS).args(&self.hardening).args(&self.options).arg(&self.image).args(&self.args);
        command.envs(self.passed.iter().map(|(name, value)| (name, value)));
        command
    }

    /// Runs to the end (stopped after 90 s) and removes the container.
    pub fn output(&self) -> Exit {
        let output = Command::new("timeout")
            .args(["--kill-after=5", "90"])
            .arg("podman")
            .args(self.command(false).get_args())
            .envs(self.passed.iter().map(|(name, value)| (name, value)))
            .output()
            .expect("starting podman");
        remove(&self.name);
        exit_of(output)
    }

    /// Runs and asserts exit code 0, showing stderr otherwise.
    pub fn success(&self) -> Exit {
        let exit = self.output();
        assert_eq!(exit.code, Some(0), "{} {:?} failed:\n{}", self.image, self.args, exit.stderr);
        exit
    }

    /// Starts it detached (`podman run -d`); the returned handle removes it when dropped.
    pub fn start(&self) -> Running {
        let output = self.command(true).output().expect("starting podman");
        let running = Running { name: self.name.clone() };
        assert!(output.status.success(), "podman run -d failed:\n{}", String::from_utf8_lossy(&output.stderr));
        running
    }
}

fn exit_of(output: Output) -> Exit {
    Exit {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn remove(name: &str) {
    let _ = podman().args(["rm", "-f", "--ignore", name]).output();
}

/// A detached container, removed (`podman rm -f`) on drop.
#[derive(Debug)]
pub struct Running {
    pub name: String,
}

impl Running {
    /// Its state: `running`, `exited`, …
    pub fn status(&self) -> String {
        podman_ok(&["inspect", "--format", "{{.State.Status}}", &self.name]).trim().to_owned()
    }

    /// `podman stop` (SIGTERM, then SIGKILL after the container's stop timeout); returns the exit
    /// code and how long the stop took.
    pub fn stop(&self) -> (i32, Duration) {
        let started = std::time::Instant::now();
        podman_ok(&["stop", &self.name]);
        let took = started.elapsed();
        let code = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", &self.name]);
        (code.trim().parse().expect("an exit code"), took)
    }

    /// Everything it wrote, stdout and stderr.
    pub fn logs(&self) -> String {
        let output = podman().args(["logs", &self.name]).output().expect("podman logs");
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// Builds a `FROM scratch` image holding only `host_file` as `/file`, run as 65532 through it (a
/// control case); removed on drop.
#[derive(Debug)]
pub struct ControlImage {
    pub tag: String,
}

impl ControlImage {
    pub fn with_single_file(host_file: &Path) -> Self {
        let context = std::env::temp_dir().join(format!("websentry-control-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&context).expect("creating the build context");
        std::fs::copy(host_file, context.join("file")).expect("copying the control file");
        std::fs::write(
            context.join("Containerfile"),
            "FROM scratch\nCOPY file /file\nUSER 65532:65532\nENTRYPOINT [\"/file\"]\n",
        )
        .expect("writing the Containerfile");
        let tag = format!("localhost/websentry-control:{:08x}", rand::random::<u32>());
        let context_arg = context.display().to_string();
        let built = podman().args(["build", "--layers=false", "-q", "-t", &tag, &context_arg]).output();
        let _ = std::fs::remove_dir_all(&context);
        let built = built.expect("podman build");
        assert!(built.status.success(), "building the control image:\n{}", String::from_utf8_lossy(&built.stderr));
        ControlImage { tag }
    }
}

impl Drop for ControlImage {
    fn drop(&mut self) {
        let _ = podman().args(["rmi", "-f", &self.tag]).output();
    }
}
