//! The release binaries need nothing from the file system: no program interpreter, no shared
//! library. And the check itself tells a dynamically linked program apart.

use crate::{elf::Linkage, static_binary};

/// The most a shipped binary may weigh: 8 MB, counted as 8,000,000 bytes (the stricter reading; 8 MiB
/// would allow 388,608 more). Over it the check fails: a heavier binary means a debug build, symbols
/// not stripped, a second TLS stack, or a build profile that traded size for nothing.
const SIZE_LIMIT: u64 = 8_000_000;

fn linkage_of(path: &std::path::Path) -> Linkage {
    let bytes = std::fs::read(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    Linkage::read(&bytes).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn both_release_binaries_are_static_and_at_most_8_mb() {
    let mut failures = Vec::new();
    for name in ["websentry-producer", "websentry-consumer"] {
        let path = static_binary(name);
        let linkage = linkage_of(&path);
        let size = std::fs::metadata(&path).expect("metadata").len();
        println!("shipping: {name}: {linkage}; {size} bytes (limit {SIZE_LIMIT})");
        if !linkage.is_static() {
            failures.push(format!("{} is not static: {linkage}", path.display()));
        }
        if let Some(problem) = over_the_limit(size) {
            failures.push(format!("{}: {problem}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("; "));
}

/// Why a binary of `size` bytes may not ship, if it may not.
fn over_the_limit(size: u64) -> Option<String> {
    (size > SIZE_LIMIT).then(|| format!("{size} bytes is over the limit of {SIZE_LIMIT} bytes (8 MB)"))
}

#[test]
fn the_size_check_fails_a_binary_over_8_mb() {
    assert_eq!(over_the_limit(SIZE_LIMIT), None, "exactly the limit ships");
    assert!(over_the_limit(SIZE_LIMIT + 1).is_some_and(|why| why.contains("8000001 bytes is over")));
    assert!(over_the_limit(8 * 1024 * 1024).is_some(), "8 MiB is over 8 MB");
}

#[test]
fn the_static_check_rejects_a_dynamically_linked_program() {
    let linkage = linkage_of(std::path::Path::new("/bin/ls"));
    println!("shipping: /bin/ls (control): {linkage}");
    assert!(!linkage.is_static());
    assert!(linkage.interpreter.as_deref().is_some_and(|i| i.contains("ld-linux")), "{linkage}");
    assert!(linkage.needed.iter().any(|lib| lib.starts_with("libc.so")), "{linkage}");
}

#[test]
fn the_static_check_refuses_a_file_that_is_not_a_program() {
    let err = Linkage::read(b"#!/bin/sh\necho hello\n").expect_err("a script is not ELF");
    assert_eq!(err, "not an ELF file");
    let truncated = &std::fs::read("/bin/ls").expect("reading /bin/ls")[..40];
    assert!(Linkage::read(truncated).is_err(), "a truncated header is an error, not a static program");
}

/// The consumer ships with jemalloc as its allocator, with the settings `.cargo/config.toml` compiles
/// in (one arena; freed pages kept 5 s): with jemalloc's defaults it peaked over its 30 MB in the
/// drain benchmark. jemalloc prints its settings at exit when asked (`stats_print`), so this fails
/// for a binary on musl's malloc (nothing printed) and for one built without the settings (no
/// compiled-in configuration, whatever the machine's CPUs make of the defaults).
#[test]
fn the_static_consumer_allocates_with_jemalloc_and_one_arena() {
    let path = static_binary("websentry-consumer");
    let output = std::process::Command::new(&path)
        .arg("--version")
        .env_clear()
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap_or_else(|err| panic!("running {}: {err}", path.display()));
    assert!(output.status.success(), "{} --version: {:?}", path.display(), output.status);
    let stats = String::from_utf8_lossy(&output.stderr);
    let setting =
        |name: &str| stats.lines().find_map(|line| line.trim().strip_prefix(name).map(str::trim).map(str::to_owned));
    assert_eq!(
        setting("config.malloc_conf:").as_deref(),
        Some("\"abort_conf:true,narenas:1,dirty_decay_ms:5000\""),
        "jemalloc's statistics:\n{stats}"
    );
    assert_eq!(setting("opt.narenas:").as_deref(), Some("1"), "jemalloc's statistics:\n{stats}");
    assert!(
        setting("opt.dirty_decay_ms:").is_some_and(|decay| decay.starts_with("5000")),
        "jemalloc's statistics:\n{stats}"
    );
}

/// An override of the allocator's settings that jemalloc cannot read stops the consumer before it
/// starts, naming the value (the compiled-in `abort_conf`): ignored with a warning, a typo would
/// leave a limit someone meant to set unset.
#[test]
fn the_static_consumer_refuses_a_malformed_allocator_setting() {
    let path = static_binary("websentry-consumer");
    for (conf, said) in [("narenas:x", "Invalid conf value: narenas:x"), ("narenaz:1", "Invalid conf pair: narenaz:1")]
    {
        let output = std::process::Command::new(&path)
            .arg("--version")
            .env_clear()
            .env("_RJEM_MALLOC_CONF", conf)
            .output()
            .unwrap_or_else(|err| panic!("running {}: {err}", path.display()));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "_RJEM_MALLOC_CONF={conf}: started anyway ({:?})", output.status);
        assert!(stderr.contains(said), "_RJEM_MALLOC_CONF={conf}: {stderr}");
        assert!(output.stdout.is_empty(), "_RJEM_MALLOC_CONF={conf}: ran on to print its version");
    }
}
