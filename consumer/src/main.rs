//! `websentry-consumer`: parse flags, set up logging, hand over to [`websentry_consumer::run`].

use std::process::ExitCode;

use clap::Parser;
use websentry_consumer::settings::{Args, Config};
use websentry_shared::{exit, exit::Fatal, shutdown::Shutdown};

const PROGRAM: &str = "websentry-consumer";

/// musl's `malloc` hands what is freed back to the kernel and faults it in again at the next fetch,
/// about once a report: the image's binary spent half its CPU in the kernel and drained at 0.42–0.49
/// × COPY. jemalloc (compiled in, the binary stays static) keeps freed pages for reuse; its settings
/// are compiled in too (`.cargo/config.toml`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    let shutdown = runtime
        .block_on(async { Shutdown::on_signals() })
        .map_err(|err| Fatal::Runtime(anyhow::Error::new(err).context("installing signal handlers")))?;
    websentry_consumer::run(&config, &runtime, &shutdown)
}
