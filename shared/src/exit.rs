//! Exit codes and the one-line error a binary prints before it exits.

use std::process::ExitCode;

/// Why a run stopped before it was done; decides the exit code.
#[derive(Debug)]
pub enum Fatal {
    /// Bad usage or configuration, found before any work started (exit code 2).
    Config(anyhow::Error),
    /// A failure at run time: a service unreachable past its deadline, TLS refused (exit code 1).
    Runtime(anyhow::Error),
}

impl Fatal {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Fatal::Config(_) => 2,
            Fatal::Runtime(_) => 1,
        }
    }
}

impl From<crate::settings::SettingError> for Fatal {
    fn from(err: crate::settings::SettingError) -> Self {
        Fatal::Config(err.into())
    }
}

/// Ends a run: for a failure, prints `program: error: cause: cause…` on one line to stderr; returns
/// the exit code.
///
/// The whole chain goes on one line so that a log collector keeps it as one event; no backtrace is
/// printed, whatever `RUST_BACKTRACE` says.
pub fn finish(program: &str, outcome: Result<(), Fatal>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => {
            let code = fatal.exit_code();
            let (Fatal::Config(err) | Fatal::Runtime(err)) = fatal;
            eprintln!("{program}: error: {}", one_line(&err));
            ExitCode::from(code)
        }
    }
}

/// Joins an error and its causes with `: `, dropping a cause already contained in the message before it.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string().replace('\n', " ");
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn one_line_joins_the_chain_and_drops_repeated_causes() {
        let inner = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = Err::<(), _>(inner).context("cannot read /etc/x").context("loading settings").unwrap_err();
        assert_eq!(one_line(&err), "loading settings: cannot read /etc/x: no such file");
    }

    #[test]
    fn config_errors_exit_2_and_runtime_errors_exit_1() {
        assert_eq!(Fatal::Config(anyhow::anyhow!("x")).exit_code(), 2);
        assert_eq!(Fatal::Runtime(anyhow::anyhow!("x")).exit_code(), 1);
    }
}
