//! `run()` of each program called in this process with a manual shutdown: what SIGTERM does
//! through `main`, without a process in between, so that a hang or an error shows here with its
//! stack rather than as a timeout of a child.

use std::{thread::JoinHandle, time::Duration};

use websentry_shared::{exit::Fatal, settings::from_flags_only, shutdown::Shutdown};
use websentry_tests::{as_flags, eventually, SiteServer, Stack};

/// Builds the checked settings `C` of a program from the flags of its definition `A`, as its `main`
/// would from flags and variables.
fn settings<A: clap::Parser, C: for<'a> TryFrom<&'a A, Error = websentry_shared::settings::SettingError>>(
    argv: &[String],
) -> C {
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let args = from_flags_only::<A>(&argv).expect("flags");
    C::try_from(&args).unwrap_or_else(|err| panic!("settings: {err}"))
}

/// Waits until `run` returns after the shutdown, and what it returned.
fn returned(runner: JoinHandle<Result<(), Fatal>>, within: Duration) -> Result<(), Fatal> {
    eventually("run() to return after the shutdown", within, || runner.is_finished());
    runner.join().expect("run() panicked")
}

#[test]
fn a_consumer_daemon_archives_and_returns_from_run_when_shut_down() {
    use websentry_consumer::settings::{Args, Config};
    let stack = Stack::get();
    let topic = stack.create_topic(2);
    let db = stack.create_database();
    stack.produce_reports(&topic, 2, 40, 20);
    let mut argv = vec!["websentry-consumer".to_owned(), "--daemon".into(), "--listen=".into()];
    argv.extend(as_flags::<Args>(&stack.kafka_env(&topic)));
    argv.extend(as_flags::<Args>(&stack.database_env(&db.name)));
    let config: Config = settings::<Args, Config>(&argv);

    let (trigger, shutdown) = Shutdown::manual();
    let runner = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        websentry_consumer::run(&config, &runtime, &shutdown)
    });
    eventually("the 40 reports archived", Duration::from_secs(60), || {
        db.try_count("SELECT count(*) FROM reports") == Some(40)
    });
    assert!(!runner.is_finished(), "a daemon keeps running once the topic is drained");
    trigger.trigger();
    returned(runner, Duration::from_secs(15)).expect("a daemon stopped by a shutdown ends well");
    assert_eq!(db.count("SELECT sum(next_offset)::bigint FROM consumer_offsets"), 40);
}

#[test]
fn a_producer_daemon_publishes_a_round_and_returns_from_run_when_shut_down_between_rounds() {
    use websentry_producer::settings::{Args, Config};
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let site = SiteServer::start();
    // An hour between rounds: returning promptly proves the wait for the next round is cut short.
    let mut argv =
        vec!["websentry-producer".to_owned(), "--interval=3600".into(), format!("--sites={}", site.url("/ok"))];
    argv.extend(as_flags::<Args>(&stack.kafka_env(&topic)));
    let config: Config = settings::<Args, Config>(&argv);

    let (trigger, shutdown) = Shutdown::manual();
    let runner = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        runtime.block_on(websentry_producer::run(config, shutdown))
    });
    eventually("the first round's report published", Duration::from_secs(60), || stack.read_topic(&topic).len() == 1);
    assert!(!runner.is_finished(), "a daemon waits for its next round");
    trigger.trigger();
    returned(runner, Duration::from_secs(15)).expect("a daemon stopped by a shutdown ends well");
    assert_eq!(stack.read_topic(&topic).len(), 1, "no second round was started by the shutdown");
}
