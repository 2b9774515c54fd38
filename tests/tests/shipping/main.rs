//! Shipping checks: the release binaries are static, and the images built from the Dockerfile run
//! as docs/operations.md says. Run by `scripts/check-shipping` (which installs podman and runc, builds the
//! binaries and both images, and inspects the images first) as
//! `cargo test -p websentry-tests --test shipping`; this target is not part of a plain `cargo test`
//! because it needs a release musl build and the images.
//!
//! - [`elf`]: reads an ELF file's program interpreter and NEEDED libraries.
//! - [`image`]: `podman run` of the images, with the options of docs/operations.md and certificate folders.
//! - [`containers`]: the images against the local stack.

mod containers;
mod elf;
mod image;
mod static_binaries;

use std::{path::PathBuf, process::Command, sync::OnceLock};

/// The static binary `name` (`websentry-producer` or `websentry-consumer`): from the folder in
/// `WEBSENTRY_STATIC_BINARIES` when set (`scripts/check-shipping` sets it), else built now by
/// `scripts/build-static`.
pub fn static_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("WEBSENTRY_STATIC_BINARIES") {
            let dir = PathBuf::from(dir);
            return ["websentry-producer", "websentry-consumer"].iter().map(|bin| dir.join(bin)).collect();
        }
        let script = repo_root().join("scripts/build-static");
        let output = Command::new(&script).output().expect("running scripts/build-static");
        assert!(output.status.success(), "scripts/build-static failed:\n{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("paths").lines().map(PathBuf::from).collect()
    });
    let path = built.iter().find(|path| path.file_name().is_some_and(|file| file == name));
    let path = path.unwrap_or_else(|| panic!("no static {name} among {built:?}"));
    assert!(path.is_file(), "{} is missing: run scripts/build-static", path.display());
    path.clone()
}

/// The workspace root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}
