//! The chromedriver process of one [`Browser`](super::Browser): started on a port of its own
//! choosing, killed when dropped, and the Chromium processes it started with it.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// How long chromedriver may take to say which port it listens on.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A running chromedriver; dropped, it is killed and reaped, and so is every process still using
/// the browser's profile folder (Chromium outlives a killed chromedriver otherwise).
#[derive(Debug)]
pub(super) struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Driver {
    /// Starts `chromedriver` on a free port (`--port=0`: it picks one and prints it, so no other
    /// test can take it in between), logging to `log`, for a browser whose profile is `profile`.
    /// With `--port=0` chromedriver picks the port on one address family and then binds it on the
    /// other, which another process may hold meanwhile ("IPv4 port not available", seen once in
    /// CI among ~40 starts): such a start is tried again, up to three times in all.
    ///
    /// # Panics
    /// When chromedriver is missing, exits before listening for another reason, or does not say
    /// its port within 30 s.
    pub(super) fn start(log: &Path, profile: &Path) -> Self {
        const ATTEMPTS: usize = 3;
        let mut attempt = 1;
        loop {
            match Self::try_start(log, profile) {
                Ok(driver) => return driver,
                Err(said) if said.contains("port not available") && attempt < ATTEMPTS => attempt += 1,
                Err(said) => panic!("chromedriver exited before listening (attempt {attempt}); it said:\n{said}"),
            }
        }
    }

    /// One start: the driver listening, or what chromedriver said before it exited.
    fn try_start(log: &Path, profile: &Path) -> Result<Self, String> {
        let program = installed("chromedriver");
        let mut child = Command::new(&program)
            .args(["--port=0", "--log-level=INFO"])
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", program.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (port_tx, port_rx) = mpsc::channel();
        // Read on until it exits, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut said = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.split("started successfully on port ").nth(1) {
                    let _ = port_tx.send(Ok(port.trim_end_matches('.').to_owned()));
                }
                said.push_str(&line);
                said.push('\n');
            }
            let _ = port_tx.send(Err(said));
        });
        std::thread::spawn(move || {
            let _ = BufReader::new(stderr).read_to_end(&mut Vec::new());
        });
        let mut driver = Self { child, port: 0, profile: profile.to_path_buf() };
        driver.port = match port_rx.recv_timeout(READY_WITHIN) {
            Ok(Ok(port)) => port.parse().unwrap_or_else(|_| panic!("chromedriver said port {port:?}")),
            // (Dropping the driver reaps the exited process.)
            Ok(Err(said)) => return Err(said),
            Err(_) => panic!("chromedriver did not say its port within {READY_WITHIN:?}"),
        };
        Ok(driver)
    }

    /// The WebDriver endpoint.
    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for pid in processes_using(&self.profile) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

/// The ids of the processes whose command line names `profile` (the browser's
/// `--user-data-dir=…`, a folder of its own): the Chromium processes of this browser alone.
fn processes_using(profile: &Path) -> Vec<u32> {
    let needle = format!("--user-data-dir={}", profile.display());
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).any(|arg| arg == needle.as_bytes()))
        })
        .collect()
}

/// The path of `program` on `PATH`.
///
/// # Panics
/// When it is not installed, saying how to install it.
pub(super) fn installed(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|folder| folder.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{program} is missing: the browser tests need Debian's chromium and chromium-driver \
                 (scripts/test installs them; as root: apt-get install chromium chromium-driver)"
            )
        })
}
