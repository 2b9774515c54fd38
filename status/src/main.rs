//! `websentry-status`: parse flags, set up logging, hand over to [`websentry_status::run`].

use std::process::ExitCode;

use clap::Parser;
use websentry_shared::{exit, exit::Fatal, shutdown::Shutdown};
use websentry_status::settings::{Args, Config};

const PROGRAM: &str = "websentry-status";

fn main() -> ExitCode {
    let args = Args::parse();
    exit::finish(PROGRAM, start(&args))
}

fn start(args: &Args) -> Result<(), Fatal> {
    let config = Config::try_from(args)?;
    config.log.install();
    if let Some(warning) = config.database.sslmode.warning() {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| Fatal::Runtime(anyhow::Error::new(err).context("starting the runtime")))?;
    runtime.block_on(async {
        let shutdown = Shutdown::on_signals()
            .map_err(|err| Fatal::Runtime(anyhow::Error::new(err).context("installing signal handlers")))?;
        websentry_status::run(config, shutdown).await
    })
}
