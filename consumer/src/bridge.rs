//! The bridge between the archiving thread and the Tokio runtime. The blocking PostgreSQL client
//! must not run on a runtime thread, so the consumer keeps the database on its own thread and
//! enters the runtime only to wait for Kafka (and for a pause): every such wait ends on shutdown,
//! and a Kafka request also at its deadline.

use std::{future::Future, time::Duration};

use anyhow::anyhow;
use tokio::runtime::Runtime;
use websentry_shared::shutdown::Shutdown;

/// Runs `future` on the runtime unless shutdown comes first.
///
/// # Errors
/// Shutdown was requested before it ended.
pub fn until_shutdown<T>(runtime: &Runtime, shutdown: &Shutdown, future: impl Future<Output = T>) -> anyhow::Result<T> {
    let mut shutdown = shutdown.clone();
    runtime.block_on(async {
        tokio::select! {
            () = shutdown.requested() => Err(anyhow!("stopped by shutdown")),
            value = future => Ok(value),
        }
    })
}

/// Runs a request on the runtime, ending it after `limit` or on shutdown.
///
/// # Errors
/// The request failed, did not end within `limit` ("Kafka did not answer within …"), or shutdown
/// was requested first.
pub fn within<T, E: std::error::Error + Send + Sync + 'static>(
    runtime: &Runtime,
    shutdown: &Shutdown,
    limit: Duration,
    request: impl Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    let bounded = async move {
        tokio::time::timeout(limit, request)
            .await
            .map_err(|_| anyhow!("Kafka did not answer within {limit:?}"))?
            .map_err(anyhow::Error::from)
    };
    until_shutdown(runtime, shutdown, bounded).and_then(|result| result)
}

/// Sleeps for `pause` unless shutdown comes first; true if it did.
pub fn wait_or_shutdown(runtime: &Runtime, shutdown: &Shutdown, pause: Duration) -> bool {
    // The timer is made inside the runtime: an async block is not polled before `block_on`.
    until_shutdown(runtime, shutdown, async { tokio::time::sleep(pause).await }).is_err()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn runtime() -> Runtime {
        tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime")
    }

    #[test]
    fn a_wait_ends_at_its_pause_or_at_once_on_shutdown() {
        let runtime = runtime();
        let (trigger, shutdown) = Shutdown::manual();

        assert!(!wait_or_shutdown(&runtime, &shutdown, Duration::from_millis(1)), "the pause ended it");
        trigger.trigger();
        let started = Instant::now();
        assert!(wait_or_shutdown(&runtime, &shutdown, Duration::from_secs(60)), "shutdown ended it");
        assert!(started.elapsed() < Duration::from_secs(5), "it did not wait for the pause");
    }

    #[test]
    fn a_request_that_hangs_fails_at_its_limit_naming_it() {
        let runtime = runtime();
        let (_trigger, shutdown) = Shutdown::manual();
        let hangs = std::future::pending::<Result<(), std::io::Error>>();

        let error = within(&runtime, &shutdown, Duration::from_millis(20), hangs).expect_err("it hangs");

        assert_eq!(error.to_string(), "Kafka did not answer within 20ms");
    }

    #[test]
    fn a_request_gives_its_own_answer_or_error_within_its_limit() {
        let runtime = runtime();
        let (_trigger, shutdown) = Shutdown::manual();
        let limit = Duration::from_secs(5);

        let answer = within(&runtime, &shutdown, limit, async { Ok::<_, std::io::Error>(7) });
        let refused = within(&runtime, &shutdown, limit, async { Err::<(), _>(std::io::Error::other("refused")) });

        assert_eq!(answer.expect("answered"), 7);
        assert_eq!(refused.expect_err("refused").to_string(), "refused");
    }

    #[test]
    fn shutdown_ends_a_request_in_flight() {
        let runtime = runtime();
        let (trigger, shutdown) = Shutdown::manual();
        trigger.trigger();
        let hangs = std::future::pending::<Result<(), std::io::Error>>();

        let error = within(&runtime, &shutdown, Duration::from_secs(60), hangs).expect_err("stopped");

        assert_eq!(error.to_string(), "stopped by shutdown");
    }
}
