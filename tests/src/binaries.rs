//! The workspace's binaries, built once per test process: `cargo test` builds the test targets, not
//! the binaries they start, so a test that took whatever binary was left in `target/` could pass
//! against yesterday's code until someone rebuilt it.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use crate::repo_root;

/// The path of the binary `name` of this workspace (`websentry-producer`, `websentry-consumer`),
/// built from the current source.
///
/// The first call in a test process runs `cargo build --workspace --bins` (quiet) with the
/// profile and the target folder of the running test binary, so that `cargo test` from the
/// workspace root or from `tests/`, `cargo test --release` and `cargo bench` each use binaries of
/// their own build; a test that calls it meanwhile waits for that one build. An up-to-date build
/// takes well under a second.
///
/// # Panics
/// When the build fails (with cargo's stderr, once for every caller), or builds no binary `name`.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let folder = BUILT.get_or_init(build).as_ref().unwrap_or_else(|err| panic!("{err}"));
    let path = folder.join(name);
    assert!(path.is_file(), "{} is missing: `cargo build --workspace --bins` built no {name}", path.display());
    path
}

/// Builds the workspace's binaries into the folder of the running test binary's profile; returns
/// that folder, or what went wrong.
fn build() -> Result<PathBuf, String> {
    let (target, profile_folder) = layout()?;
    // The folder is named after its profile, except the `dev` profile's (and `test`'s): `debug`.
    // (`cargo bench` builds in `release`, the folder of the `bench` profile.)
    let profile = match profile_folder.file_name().and_then(OsStr::to_str) {
        Some("debug") => "dev",
        Some(name) => name,
        None => return Err(format!("no profile folder in {}", profile_folder.display())),
    };
    // Cargo sets CARGO for the tests it runs: the same toolchain that built this test.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_for_this_test) {
            command.env_remove(name);
        }
    }
    let output = command
        .args(["build", "--quiet", "--workspace", "--bins", "--profile", profile])
        .arg("--manifest-path")
        .arg(repo_root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .map_err(|err| format!("running {} build: {err}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo build --workspace --bins --profile {profile}` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(profile_folder)
}

/// Whether cargo set the variable `name` for the test it runs, about this package (not the user's
/// settings). A build seeing them would look changed to the build scripts that watch them (ring's
/// watches `CARGO_MANIFEST_DIR`): those crates would be built again, here and at the next
/// `cargo test`, every time.
fn set_for_this_test(name: &str) -> bool {
    const SET: [&str; 8] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    name.starts_with("CARGO_PKG_") || SET.contains(&name)
}

/// The target folder and the profile's folder of the running test binary:
/// `<target>/<profile>/deps/e2e-<hash>` (benches and unit tests alike).
pub(crate) fn layout() -> Result<(PathBuf, PathBuf), String> {
    let exe = std::env::current_exe().map_err(|err| format!("the test binary's path: {err}"))?;
    let deps = exe.parent().filter(|folder| folder.ends_with("deps"));
    let profile_folder =
        deps.and_then(Path::parent).ok_or_else(|| format!("{} is not in <target>/<profile>/deps", exe.display()))?;
    let target = profile_folder.parent().ok_or_else(|| format!("no folder above {}", profile_folder.display()))?;
    Ok((target.to_path_buf(), profile_folder.to_path_buf()))
}
