//! The Dockerfile's final stages, and what a container runtime would run from them.
//!
//! No Docker engine runs here, so an image is assembled the way its `FROM scratch` stage says: an
//! empty folder with each `COPY --from=build` file, run with bubblewrap as the stage's `USER`,
//! through its `ENTRYPOINT`, with a read-only root, no capabilities, its own PID, IPC, UTS and user
//! namespaces, and the host's network (so 127.0.0.1 reaches the stack). Besides the image's files
//! the sandbox holds only what a runtime injects, `/etc/hosts` and `/etc/resolv.conf`, and the files
//! a test mounts read-only (certificates). No libc, no shell, no CA store, no `/proc` or `/dev`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::{repo_root, static_binary};

/// One `FROM … AS name` stage of the Dockerfile.
#[derive(Debug, Default)]
pub struct Stage {
    pub name: String,
    pub base: String,
    /// `(from, source, destination)` of each COPY.
    pub copies: Vec<(Option<String>, String, String)>,
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub labels: Vec<String>,
    /// Each RUN's command, continuation lines joined.
    pub runs: Vec<String>,
}

/// The stages of the repository's Dockerfile, in order.
pub fn dockerfile_stages() -> Vec<Stage> {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("reading the Dockerfile");
    parse_stages(&text)
}

/// The stage `name`; panics naming the stages there are.
pub fn stage(name: &str) -> Stage {
    let stages = dockerfile_stages();
    let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
    stages
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stage {name:?} in the Dockerfile: {names:?}"))
}

fn parse_stages(text: &str) -> Vec<Stage> {
    // Instructions: comments dropped, `\` continuations joined.
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions {
        let (keyword, rest) = instruction.split_once(char::is_whitespace).unwrap_or((&instruction, ""));
        let rest = rest.trim();
        let words: Vec<&str> = rest.split_whitespace().collect();
        match keyword.to_ascii_uppercase().as_str() {
            "FROM" => {
                let name = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => (*name).to_owned(),
                    _ => String::new(),
                };
                stages.push(Stage {
                    name,
                    base: words.first().copied().unwrap_or_default().to_owned(),
                    ..Stage::default()
                });
            }
            _ if stages.is_empty() => {}
            "COPY" => {
                let from = words.iter().find_map(|w| w.strip_prefix("--from=")).map(str::to_owned);
                let paths: Vec<&str> = words.iter().copied().filter(|w| !w.starts_with("--")).collect();
                if let [source, destination] = paths.as_slice() {
                    stages.last_mut().expect("a stage").copies.push((from, (*source).into(), (*destination).into()));
                }
            }
            "USER" => stages.last_mut().expect("a stage").user = Some(rest.to_owned()),
            "RUN" => stages.last_mut().expect("a stage").runs.push(rest.to_owned()),
            "ENTRYPOINT" => {
                stages.last_mut().expect("a stage").entrypoint =
                    serde_json::from_str(rest).unwrap_or_else(|_| vec![format!("(shell form) {rest}")]);
            }
            "LABEL" => {
                let stage = stages.last_mut().expect("a stage");
                stage.labels.extend(words.iter().filter_map(|w| w.split_once('=')).map(|(key, _)| key.to_owned()));
            }
            _ => {}
        }
    }
    stages
}

impl Stage {
    /// The numeric `uid:gid` of `USER`; panics when it is absent, a name, or root.
    pub fn numeric_user(&self) -> (u32, u32) {
        let user =
            self.user.as_deref().unwrap_or_else(|| panic!("stage {} has no USER: it would run as root", self.name));
        let (uid, gid) = user.split_once(':').unwrap_or((user, user));
        let uid: u32 = uid.parse().unwrap_or_else(|_| panic!("stage {}: USER {user} is not numeric", self.name));
        let gid: u32 = gid.parse().unwrap_or_else(|_| panic!("stage {}: USER {user} has no numeric group", self.name));
        assert!(uid != 0 && gid != 0, "stage {} runs as root ({user})", self.name);
        (uid, gid)
    }
}

/// An image's files in a folder of its own, removed on drop.
#[derive(Debug)]
pub struct Image {
    pub stage: Stage,
    pub root: PathBuf,
}

impl Image {
    /// Assembles the stage `name`: each COPY's file (the static binary of that name) and nothing else.
    pub fn assemble(name: &str) -> Image {
        let stage = stage(name);
        assert_eq!(stage.base, "scratch", "stage {name} is not FROM scratch");
        let root = std::env::temp_dir().join(format!("websentry-image-{name}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&root).expect("creating the image folder");
        let image = Image { stage, root };
        for (_, source, destination) in &image.stage.copies {
            let file = Path::new(source).file_name().expect("a file name").to_str().expect("UTF-8");
            image.add_file(&static_binary(file), destination);
        }
        image
    }

    /// An image with a single file of the host (a control case), run like the others.
    pub fn with_single_file(host_file: &Path, destination: &str, user: &str) -> Image {
        let stage = Stage {
            name: "control".into(),
            base: "scratch".into(),
            user: Some(user.into()),
            entrypoint: vec![destination.into()],
            ..Stage::default()
        };
        let root = std::env::temp_dir().join(format!("websentry-image-control-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&root).expect("creating the image folder");
        let image = Image { stage, root };
        image.add_file(host_file, destination);
        image
    }

    fn add_file(&self, source: &Path, destination: &str) {
        use std::os::unix::fs::PermissionsExt;
        let target = self.root.join(destination.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("creating folders");
        std::fs::copy(source, &target).unwrap_or_else(|err| panic!("copying {}: {err}", source.display()));
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    }

    /// Every file of the image, as paths inside it, sorted.
    pub fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("reading the image folder").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(format!("/{}", path.strip_prefix(root).expect("inside").display()));
                }
            }
        }
        let mut files = Vec::new();
        walk(&self.root, &self.root, &mut files);
        files.sort();
        files
    }

    /// A run of this image's entrypoint with `args`.
    pub fn run(&self) -> Container<'_> {
        Container { image: self, args: Vec::new(), env: Vec::new(), mounts: Vec::new() }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// One run of an image, like `docker run --read-only --cap-drop ALL -v file:path:ro IMAGE args`.
#[derive(Debug)]
pub struct Container<'a> {
    image: &'a Image,
    args: Vec<String>,
    env: Vec<(String, String)>,
    mounts: Vec<(PathBuf, String)>,
}

/// What a finished container left behind.
#[derive(Debug)]
pub struct Exit {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Container<'_> {
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn envs(self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        vars.into_iter().fold(self, |run, (name, value)| run.env(name, value))
    }

    /// Mounts a host file read-only at `path` inside.
    pub fn mount(mut self, host: impl AsRef<Path>, path: impl Into<String>) -> Self {
        self.mounts.push((host.as_ref().to_path_buf(), path.into()));
        self
    }

    /// The bwrap command line.
    fn command(&self) -> Command {
        let (uid, gid) = self.image.stage.numeric_user();
        let mut command = Command::new("timeout");
        command.args(["--kill-after=5", &TIMEOUT.as_secs().to_string(), "bwrap"]);
        command.args(["--unshare-all", "--share-net", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]);
        command.args(["--uid", &uid.to_string(), "--gid", &gid.to_string(), "--clearenv"]);
        for file in self.image.files() {
            let host = self.image.root.join(file.trim_start_matches('/'));
            command.arg("--ro-bind").arg(host).arg(&file);
        }
        for injected in ["/etc/hosts", "/etc/resolv.conf"] {
            command.args(["--ro-bind", injected, injected]);
        }
        for (host, path) in &self.mounts {
            command.arg("--ro-bind").arg(host).arg(path);
        }
        for (name, value) in &self.env {
            command.args(["--setenv", name, value]);
        }
        command.args(["--remount-ro", "/", "--chdir", "/", "--"]);
        command.args(&self.image.stage.entrypoint).args(&self.args);
        command
    }

    /// Runs to the end (killed after a minute).
    pub fn output(&self) -> Exit {
        let output = self.command().output().expect("starting bwrap (apt-get install bubblewrap)");
        Exit {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Starts it in the background (a daemon); its output goes to `log`. Killing the returned
    /// child ends the sandbox (`--die-with-parent`).
    pub fn spawn(&self, log: &Path) -> std::process::Child {
        let log = std::fs::File::create(log).expect("creating the log file");
        self.command()
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("starting bwrap (apt-get install bubblewrap)")
    }

    /// Runs and asserts exit code 0, showing stderr otherwise.
    pub fn success(&self) -> Exit {
        let exit = self.output();
        assert_eq!(exit.code, Some(0), "{:?} {:?} failed:\n{}", self.image.stage.entrypoint, self.args, exit.stderr);
        exit
    }
}

const TIMEOUT: Duration = Duration::from_secs(90);
