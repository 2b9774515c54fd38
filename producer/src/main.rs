//! `websentry-producer`: parse flags, set up logging, hand over to [`websentry_producer::run`].

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use websentry_producer::settings::{Args, Config};
use websentry_shared::{exit, exit::Fatal, shutdown::Shutdown};

const PROGRAM: &str = "websentry-producer";

/// How long the exit waits for blocking work that no report waits for any more.
const LEFTOVER_WAIT: Duration = Duration::from_secs(1);

/// musl's `malloc` takes one lock for every thread and maps and unmaps memory as probes come and
/// go; mimalloc (compiled in, the binary stays static) keeps a heap per thread.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    exit::finish(PROGRAM, start(&args))
}

fn start(args: &Args) -> Result<(), Fatal> {
    let config = Config::try_from(args)?;
    config.log.install();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| Fatal::Runtime(anyhow::Error::new(err).context("starting the runtime")))?;
    let outcome = runtime.block_on(async {
        let shutdown = Shutdown::on_signals()
            .map_err(|err| Fatal::Runtime(anyhow::Error::new(err).context("installing signal handlers")))?;
        websentry_producer::run(config, shutdown).await
    });
    // Every report is delivered or counted by now. What a probe left on the blocking pool past its
    // deadline (a linear pattern search of a large body, a DNS lookup) is not waited for longer.
    runtime.shutdown_timeout(LEFTOVER_WAIT);
    outcome
}
