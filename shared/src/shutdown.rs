//! A shutdown request that `main` wires to SIGTERM/SIGINT and tests trigger by hand.

use tokio::sync::watch;

/// The receiving side: cheap to clone, can be asked or awaited.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// The sending side, for tests and for the signal task.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    /// Requests shutdown; every [`Shutdown`] sees it.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// A shutdown requested only through the returned trigger.
    pub fn manual() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// A shutdown requested by SIGTERM or SIGINT. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// The signal handlers could not be installed.
    pub fn on_signals() -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (trigger, shutdown) = Shutdown::manual();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received, finishing the work in flight"),
                _ = int.recv() => tracing::info!("SIGINT received, finishing the work in flight"),
            }
            trigger.trigger();
            // Keep the sender alive so that receivers do not see a closed channel as a request.
            std::future::pending::<()>().await;
        });
        Ok(shutdown)
    }

    /// Whether shutdown has been requested.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until shutdown is requested. A dropped trigger never requests it.
    pub async fn requested(&mut self) {
        if self.0.wait_for(|requested| *requested).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trigger_is_seen_by_every_clone() {
        let (trigger, shutdown) = Shutdown::manual();
        let mut other = shutdown.clone();
        assert!(!shutdown.is_requested());
        trigger.trigger();
        other.requested().await;
        assert!(shutdown.is_requested());
    }
}
