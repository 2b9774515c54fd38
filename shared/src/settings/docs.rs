//! The configuration tables of docs/configuration.md, generated from the clap definitions (as
//! ripgrep generates its docs from its flags): a unit test of each binary renders its table from
//! `--help`'s own texts and compares it with the file, so the docs and the flags cannot disagree.
//! `WEBSENTRY_UPDATE_DOCS=1 cargo test` writes the tables instead of comparing them.

use std::path::{Path, PathBuf};

/// The rows of `command`'s arguments, leaving out those whose ids are in `except` (another
/// table's): variable, flag, default, and `--help`'s text.
pub fn table(command: &clap::Command, except: &[&str]) -> String {
    let mut out = String::from("| variable | flag | default | meaning |\n|---|---|---|---|\n");
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if except.contains(&id) || arg.is_hide_set() || ["help", "version"].contains(&id) {
            continue;
        }
        let variable = arg.get_env().map_or("–".to_owned(), |env| format!("`{}`", env.to_string_lossy()));
        let flag = arg.get_long().map_or("–".to_owned(), |long| format!("`--{long}`"));
        let defaults: Vec<String> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
        let default = match (defaults.as_slice(), arg.get_action().takes_values()) {
            ([], true) => "–".to_owned(),
            ([], false) => "off".to_owned(),
            ([value], _) if value.is_empty() => "empty".to_owned(),
            (values, _) => format!("`{}`", values.join(",")),
        };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        out.push_str(&format!("| {variable} | {flag} | {default} | {} |\n", cell(&help)));
    }
    out
}

/// The settings both binaries take (Kafka and logging): the table `shared`.
pub fn shared_command() -> clap::Command {
    use clap::Args;
    crate::telemetry::LogArgs::augment_args(crate::kafka::KafkaArgs::augment_args(clap::Command::new("shared")))
}

/// The ids of [`shared_command`]'s arguments, which the binaries' own tables leave out.
pub fn shared_ids() -> Vec<String> {
    shared_command().get_arguments().map(|arg| arg.get_id().to_string()).collect()
}

/// Checks the table `name` of docs/configuration.md against `command`'s own arguments.
///
/// # Panics
/// When they differ, with what to run to regenerate it (a test's failure).
pub fn assert_documented(name: &str, command: &clap::Command) {
    let shared = shared_ids();
    let except: Vec<&str> = match name {
        "shared" => Vec::new(),
        _ => shared.iter().map(String::as_str).collect(),
    };
    let update = std::env::var_os("WEBSENTRY_UPDATE_DOCS").is_some();
    if let Err(problem) = check_block(&configuration_md(), name, &table(command, &except), update) {
        panic!("{problem}");
    }
}

/// Text for one table cell: on one line, its pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

/// docs/configuration.md of the workspace.
pub fn configuration_md() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md")
}

/// Compares the generated block `name` of the file at `path` with `rendered`, or writes it when
/// `update` (`WEBSENTRY_UPDATE_DOCS` set).
///
/// # Errors
/// The file is unreadable, has no such block, or the block differs: the message says how to
/// regenerate it.
pub fn check_block(path: &Path, name: &str, rendered: &str, update: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("reading {}: {err}", path.display()))?;
    let (begin, end) = (format!("<!-- BEGIN GENERATED: {name} -->\n"), format!("<!-- END GENERATED: {name} -->"));
    let start = text.find(&begin).ok_or_else(|| format!("{} has no line {begin:?}", path.display()))? + begin.len();
    let stop = start + text[start..].find(&end).ok_or_else(|| format!("{} has no line {end:?}", path.display()))?;
    if text[start..stop] == *rendered {
        return Ok(());
    }
    if update {
        let updated = format!("{}{rendered}{}", &text[..start], &text[stop..]);
        return std::fs::write(path, updated).map_err(|err| format!("writing {}: {err}", path.display()));
    }
    Err(format!(
        "the table {name} of {} differs from the flags' definitions; run `WEBSENTRY_UPDATE_DOCS=1 cargo test` and \
         review the change.\n--- in the file:\n{}\n--- from the definitions:\n{rendered}",
        path.display(),
        &text[start..stop]
    ))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Example {
        /// Seconds to wait | at most.
        #[arg(long, env = "WEBSENTRY_WAIT", default_value = "30")]
        wait: String,
        /// A path.
        #[arg(long)]
        path: Option<String>,
        /// Do it.
        #[arg(long)]
        dry_run: bool,
    }

    #[test]
    fn a_table_shows_each_flag_with_its_variable_default_and_help() {
        let table = table(&Example::command(), &["path"]);

        assert_eq!(
            table,
            "| variable | flag | default | meaning |\n|---|---|---|---|\n\
             | `WEBSENTRY_WAIT` | `--wait` | `30` | Seconds to wait \\| at most |\n\
             | – | `--dry-run` | off | Do it |\n"
        );
    }

    #[test]
    fn a_block_that_differs_from_the_definitions_fails_with_what_to_run() {
        let path = std::env::temp_dir().join(format!("websentry-docs-{}.md", std::process::id()));
        let file = "intro\n<!-- BEGIN GENERATED: x -->\n| old |\n<!-- END GENERATED: x -->\nafter\n";
        std::fs::write(&path, file).expect("a scratch file");

        let same = check_block(&path, "x", "| old |\n", false);
        let differs = check_block(&path, "x", "| new |\n", false);
        let missing = check_block(&path, "y", "| new |\n", false);
        let written =
            check_block(&path, "x", "| new |\n", true).and_then(|()| check_block(&path, "x", "| new |\n", false));
        let kept = std::fs::read_to_string(&path).expect("the scratch file");
        std::fs::remove_file(&path).expect("removing the scratch file");

        assert!(kept.starts_with("intro\n") && kept.ends_with("-->\nafter\n"), "{kept}");
        assert_eq!(same, Ok(()));
        assert!(differs.as_ref().is_err_and(|e| e.contains("WEBSENTRY_UPDATE_DOCS=1 cargo test")), "{differs:?}");
        assert!(missing.as_ref().is_err_and(|e| e.contains("has no line")), "{missing:?}");
        assert_eq!(written, Ok(()), "updating writes the block, the rest kept");
    }

    #[test]
    fn docs_configuration_md_shows_the_shared_settings_as_defined() {
        assert_documented("shared", &shared_command());
    }
}
