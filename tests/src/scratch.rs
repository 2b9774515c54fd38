//! Files of one test in a folder of its own under the system's temporary folder, removed when the
//! value is dropped, also when an assertion fails first.

use std::path::{Path, PathBuf};

/// A test's own folder of files.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("websentry-test-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&path).expect("creating the scratch folder");
        Self(path)
    }

    /// Writes `content` to the file `name` in the folder; returns its path as text, ready for a
    /// setting.
    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).expect("writing a scratch file");
        path.display().to_string()
    }

    /// Makes the FIFO (named pipe) `name` in the folder; returns its path as text. Nothing writes
    /// to it: opening it for reading waits forever.
    pub fn fifo(&self, name: &str) -> String {
        let path = self.0.join(name);
        let made = std::process::Command::new("mkfifo").arg(&path).status().expect("running mkfifo");
        assert!(made.success(), "mkfifo {}", path.display());
        path.display().to_string()
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
