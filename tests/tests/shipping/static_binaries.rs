//! The release binaries need nothing from the file system: no program interpreter, no shared
//! library. And the check itself tells a dynamically linked program apart.

use crate::{elf::Linkage, static_binary};

/// The size the issue aims at for each binary (8 MiB); a binary over it is reported, not failed.
const SIZE_TARGET: u64 = 8 * 1024 * 1024;
/// Past this something is wrong (a debug build, symbols not stripped, a second TLS stack).
const SIZE_CEILING: u64 = 16 * 1024 * 1024;

fn linkage_of(path: &std::path::Path) -> Linkage {
    let bytes = std::fs::read(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    Linkage::read(&bytes).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn both_release_binaries_are_static_and_small() {
    for name in ["websentry-producer", "websentry-consumer"] {
        let path = static_binary(name);
        let linkage = linkage_of(&path);
        let size = std::fs::metadata(&path).expect("metadata").len();
        let verdict = if size <= SIZE_TARGET { "within" } else { "OVER" };
        println!(
            "shipping: {name}: {linkage}; {size} bytes ({:.2} MiB, {verdict} the 8 MiB target)",
            size as f64 / (1024.0 * 1024.0)
        );
        assert!(linkage.is_static(), "{} is not static: {linkage}", path.display());
        assert!(size <= SIZE_CEILING, "{} is {size} bytes, over {SIZE_CEILING}", path.display());
    }
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
