//! How a session ends, and how each of its steps tells the loop to go on: the types the supervisor
//! decides on.

/// Which service a session lost; the supervisor logs once per change of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Kafka,
    Database,
}

/// Why a session ended early: a service failed (or shutdown cut a wait short).
#[derive(Debug)]
pub struct Interrupted {
    pub service: Service,
    pub error: anyhow::Error,
    /// Whether waiting may help (a service unreachable); false for what waiting does not change
    /// (a schema this build must not use), which stops even a daemon.
    pub transient: bool,
}

/// Wraps an error as the loss of `service`, for `map_err`.
pub fn on(service: Service) -> impl FnOnce(anyhow::Error) -> Interrupted {
    move |error| Interrupted { service, error, transient: true }
}

/// Wraps an error as a refusal by `service` that waiting does not change, for `map_err`.
pub fn refused(service: Service) -> impl FnOnce(anyhow::Error) -> Interrupted {
    move |error| Interrupted { service, error, transient: false }
}

/// How a session that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// One-off: every claimed partition read to its start watermark; or shutdown was requested.
    Done,
    /// The topic was deleted and created again: start a new session, which reads it from its
    /// beginning.
    TopicChanged,
}

/// What a step of a session (a look at the topic, a fetch handled) tells its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Flow {
    /// Go on with the next step.
    CarryOn,
    /// The topic was created again: end this session with [`Ended::TopicChanged`].
    TopicChanged,
}
