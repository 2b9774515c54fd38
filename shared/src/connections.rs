//! The open connections of an HTTP endpoint (the consumer's `/healthz`, the status page): at most
//! a fixed number, which one gives way when a new one comes at the cap, and the accepting loop that
//! applies it.
//!
//! A connection is new (idle) until a read leaves a request head incomplete, then waiting until
//! the head is complete, then answered until its answer is on its way, then idle again when the
//! server keeps it alive ([`Slot::answered`]). The endpoint tells the slot which reads leave a
//! head incomplete ([`Slot::head_waiting`]): legitimate clients (browsers, the kubelet,
//! Prometheus) send a whole head at once, so they go from idle to answered without waiting, even
//! while their head is read but not yet parsed; a slow client that trickles its head waits until
//! the server's head timeout. When a new connection comes at the cap:
//!
//! 1. the oldest waiting connection is closed to make room: slow clients give way to newcomers,
//!    however many they are, and the process never holds more than the cap;
//! 2. with none waiting, the oldest idle one gives way once it has sent nothing for [`GRACE`] (a
//!    kept-alive or silent client); until then the newcomer waits for a slot;
//! 3. when every slot holds an answer on its way, the newcomer is closed.
//!
//! A probe whose whole head has been read is answered, and one whose head has not begun to
//! arrive has [`GRACE`] for it to come, however many slow clients come after it; a head that
//! comes in pieces is a slow client's until it is whole. (Waiting for a free slot instead, as
//! the consumer's endpoint once did, let a hundred slow clients hold every slot while the
//! kubelet's probes queued behind them until they timed out. Counting every read as waiting, as
//! the status page did until 2026-12, closed a probe whose whole head hyper had read but not yet
//! parsed: see `status/src/server/stream.rs`.)

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::AbortHandle,
    time::Instant,
};

use crate::shutdown::Shutdown;

/// What an endpoint counts of its connections (its own metric names).
pub trait ConnectionMetrics: Send + Sync + std::fmt::Debug {
    /// Connections open now.
    fn set_open(&self, open: usize);
    /// A connection was closed to make room for a new one.
    fn count_shed(&self);
}

/// How long a connection that has sent nothing keeps its slot against newcomers: far longer than
/// a client needs to send its head after connecting, far shorter than the kubelet's probe timeout.
pub const GRACE: Duration = Duration::from_millis(100);

/// The open connections, shared by the accepting loop and each connection's task.
#[derive(Debug)]
struct Slots {
    cap: usize,
    metrics: Arc<dyn ConnectionMetrics>,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// Sequence number of the next connection: the keys below are in the order of arrival.
    next: u64,
    open: BTreeMap<u64, Connection>,
}

#[derive(Debug)]
struct Connection {
    stage: Stage,
    /// When it was given its slot.
    since: Instant,
    /// Closes the connection (its task); set once the task is started.
    task: Option<AbortHandle>,
}

/// Where a connection is in reading its request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing of a request read yet (new, or kept alive after an answer).
    New,
    /// Part of its head read: it gives way to newcomers at the cap.
    Waiting,
    /// Its head is complete: the answer is on its way; it does not give way until it is sent.
    Answered,
}

/// Why a new connection gets no slot now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoRoom {
    /// Every slot is taken and none may give way yet: ask again by this time at the latest.
    NotYet(Instant),
    /// Every slot holds a connection whose answer is on its way: close the new one.
    Full,
}

/// A connection's slot; freed when dropped, that is when the connection's task ends or is
/// aborted.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    slots: Arc<Slots>,
}

impl Slots {
    pub fn new(cap: usize, metrics: Arc<dyn ConnectionMetrics>) -> Arc<Self> {
        Arc::new(Slots { cap, metrics, table: Mutex::default() })
    }

    /// A slot for a new connection at `now`, closing the connection that gives way first when at
    /// the cap (then the flag is true). Start the connection's task with the slot, then hand its
    /// handle to [`Slots::started`].
    ///
    /// # Errors
    /// [`NoRoom`]: at the cap with no connection that may give way now.
    pub fn admit(self: &Arc<Self>, now: Instant) -> Result<(Slot, bool), NoRoom> {
        let mut table = self.lock();
        let mut shed = None;
        if table.open.len() >= self.cap {
            let id = match (table.oldest(Stage::Waiting), table.oldest(Stage::New)) {
                (Some(id), _) => id,
                (None, Some(id)) if table.open[&id].since + GRACE <= now => id,
                (None, Some(id)) => return Err(NoRoom::NotYet(table.open[&id].since + GRACE)),
                (None, None) => return Err(NoRoom::Full),
            };
            shed = table.open.remove(&id).and_then(|connection| connection.task);
        }
        let id = table.next;
        table.next += 1;
        table.open.insert(id, Connection { stage: Stage::New, since: now, task: None });
        self.metrics.set_open(table.open.len());
        drop(table);
        // Outside the lock: the aborted task's slot takes it when the task is dropped.
        let shed = shed.map(|task| task.abort()).is_some();
        if shed {
            self.metrics.count_shed();
        }
        Ok((Slot { id, slots: Arc::clone(self) }, shed))
    }

    /// The task of connection `id` is running: `task` closes it if it has to give way.
    pub fn started(&self, id: u64, task: AbortHandle) {
        if let Some(connection) = self.lock().open.get_mut(&id) {
            connection.task = Some(task);
        }
    }

    /// Closes the oldest waiting connection, to give back a file descriptor; whether there was
    /// one.
    pub fn shed_oldest_waiting(&self) -> bool {
        let mut table = self.lock();
        let shed = table.oldest(Stage::Waiting).and_then(|id| table.open.remove(&id)).and_then(|c| c.task);
        self.metrics.set_open(table.open.len());
        drop(table);
        let shed = shed.map(|task| task.abort()).is_some();
        if shed {
            self.metrics.count_shed();
        }
        shed
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Plain data: still good after a panic elsewhere.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Table {
    /// The connection that arrived first among those at `stage` whose task can be closed.
    fn oldest(&self, stage: Stage) -> Option<u64> {
        self.open.iter().find(|(_, c)| c.stage == stage && c.task.is_some()).map(|(id, _)| *id)
    }
}

impl Slot {
    /// The connection's number, for [`Slots::started`].
    pub fn id(&self) -> u64 {
        self.id
    }

    /// A read left a request head incomplete (more must come): from now on the connection gives
    /// way to newcomers at the cap. Not for a read that brings a whole head, which the server is
    /// about to answer.
    pub fn head_waiting(&self) {
        self.set(Stage::Waiting);
    }

    /// The request head has arrived: the request is being answered, the connection does not give
    /// way.
    pub fn head_complete(&self) {
        self.set(Stage::Answered);
    }

    /// The answer is on its way: the connection is idle (kept alive) from `now`, and gives way
    /// to newcomers at the cap once idle for [`GRACE`].
    pub fn answered(&self, now: Instant) {
        if let Some(connection) = self.slots.lock().open.get_mut(&self.id) {
            connection.stage = Stage::New;
            connection.since = now;
        }
    }

    fn set(&self, stage: Stage) {
        if let Some(connection) = self.slots.lock().open.get_mut(&self.id) {
            // While answered, reading more (a pipelined request) does not make it give way.
            if connection.stage != Stage::Answered {
                connection.stage = stage;
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.slots.lock();
        table.open.remove(&self.id);
        self.slots.metrics.set_open(table.open.len());
    }
}

/// How often at most the accepting loop logs that it closes slow connections.
const SHED_LOG_EVERY: Duration = Duration::from_secs(60);

/// The accepting side: new connections with their slots, the slow ones closed for them logged.
#[derive(Debug)]
pub struct Connections {
    slots: Arc<Slots>,
    shed_log: ShedLog,
}

impl Connections {
    /// At most `cap` connections open at once, counted in `metrics`.
    pub fn new(cap: usize, metrics: Arc<dyn ConnectionMetrics>) -> Self {
        Connections { slots: Slots::new(cap, metrics), shed_log: ShedLog::default() }
    }

    /// The next connection of `listener` with its slot; `None` once `shutdown` is requested.
    /// Start the connection's task with the slot, then hand its handle to [`Connections::started`].
    pub async fn next(&mut self, listener: &TcpListener, shutdown: &mut Shutdown) -> Option<(TcpStream, Slot)> {
        loop {
            let accepted = tokio::select! {
                () = shutdown.requested() => return None,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors (EMFILE, ENFILE): a slow client gives one back.
                Err(err) if matches!(err.raw_os_error(), Some(23 | 24)) && self.slots.shed_oldest_waiting() => {
                    self.shed_log.shed(self.slots.cap);
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(err) => {
                    tracing::warn!(cause = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // The wait for a slot ends on shutdown too: answering clients may hold every slot.
            let admitted = tokio::select! {
                () = shutdown.requested() => return None,
                admitted = self.admit() => admitted,
            };
            let Some((slot, shed)) = admitted else { continue };
            if shed {
                self.shed_log.shed(self.slots.cap);
            }
            return Some((stream, slot));
        }
    }

    /// The task of the connection of `slot` id is running: `task` closes it if it has to give way.
    pub fn started(&self, id: u64, task: AbortHandle) {
        self.slots.started(id, task);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.slots.open()
    }

    /// A slot for a new connection, and whether a slow one was closed for it; `None` when every
    /// slot holds an answer on its way (the new connection is then closed). When no connection may
    /// give way yet (idle ones within their grace), waits until one may.
    async fn admit(&self) -> Option<(Slot, bool)> {
        loop {
            match self.slots.admit(Instant::now()) {
                Ok(admitted) => return Some(admitted),
                Err(NoRoom::Full) => return None,
                Err(NoRoom::NotYet(until)) => {
                    tokio::time::sleep_until(until.min(Instant::now() + Duration::from_millis(5))).await;
                }
            }
        }
    }
}

/// Logs that slow connections are closed: once, then at most every [`SHED_LOG_EVERY`] with how
/// many since, so that a flood does not flood the log too.
#[derive(Debug, Default)]
struct ShedLog {
    logged: Option<Instant>,
    since: u64,
}

impl ShedLog {
    fn shed(&mut self, cap: usize) {
        self.since += 1;
        if self.logged.is_none_or(|at| at.elapsed() >= SHED_LOG_EVERY) {
            tracing::warn!(
                closed = self.since,
                cap,
                "http connections at the cap: closing the oldest whose request head is incomplete (slow clients?)"
            );
            (self.logged, self.since) = (Some(Instant::now()), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use super::*;

    #[derive(Debug, Default)]
    struct Counted {
        open: AtomicUsize,
        shed: AtomicU64,
    }

    impl ConnectionMetrics for Counted {
        fn set_open(&self, open: usize) {
            self.open.store(open, Ordering::Relaxed);
        }
        fn count_shed(&self) {
            self.shed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection's task that holds its slot at `stage` until aborted.
    fn start(slots: &Arc<Slots>, stage: Stage, now: Instant) -> Result<u64, NoRoom> {
        let (slot, _) = slots.admit(now)?;
        let id = slot.id;
        match stage {
            Stage::New => {}
            Stage::Waiting => slot.head_waiting(),
            Stage::Answered => slot.head_complete(),
        }
        let task = tokio::spawn(async move {
            let _slot = &slot;
            std::future::pending::<()>().await;
        });
        slots.started(id, task.abort_handle());
        Ok(id)
    }

    /// Waits (5 s at most) until `condition` holds.
    async fn until(what: &str, mut condition: impl FnMut() -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            while !condition() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        assert!(waited.await.is_ok(), "not within 5 s: {what}");
    }

    fn ids(slots: &Slots) -> Vec<u64> {
        slots.lock().open.keys().copied().collect()
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_waiting_connection_gives_way_then_an_idle_one_and_never_an_answered_one() {
        let metrics = Arc::new(Counted::default());
        let slots = Slots::new(4, metrics.clone());
        let t0 = Instant::now();
        let later = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(start(&slots, Stage::Answered, t0), Ok(0));
        assert_eq!(start(&slots, Stage::New, t0), Ok(1));
        assert_eq!(start(&slots, Stage::Waiting, t0), Ok(2));
        assert_eq!(start(&slots, Stage::Waiting, t0), Ok(3));

        assert_eq!(start(&slots, Stage::New, later(1)), Ok(4), "the oldest waiting one gives way");
        assert_eq!(ids(&slots), [0, 1, 3, 4]);
        assert_eq!(start(&slots, Stage::New, later(2)), Ok(5));
        assert_eq!(ids(&slots), [0, 1, 4, 5], "answered and new ones do not give way while one waits");
        assert_eq!(
            slots.admit(later(50)).map(|_| ()),
            Err(NoRoom::NotYet(t0 + GRACE)),
            "the oldest new one is 50 ms old"
        );
        assert_eq!(start(&slots, Stage::Answered, t0 + GRACE), Ok(6), "idle for the grace, it gives way");
        assert_eq!(ids(&slots), [0, 4, 5, 6]);
        slots.lock().open.values_mut().for_each(|c| c.stage = Stage::Answered);
        assert_eq!(slots.admit(later(10_000)).map(|_| ()), Err(NoRoom::Full), "every answer is on its way");
        assert!(!slots.shed_oldest_waiting(), "nothing to close");

        until("the closed connections' slots are free", || metrics.open.load(Ordering::Relaxed) == 4).await;
        assert_eq!(metrics.shed.load(Ordering::Relaxed), 3);
    }

    /// A client whose requests keep its connection from ever being idle for the grace holds its
    /// slot; a newcomer waits for it, until shutdown is requested.
    #[tokio::test]
    async fn the_wait_for_a_slot_ends_on_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let address = listener.local_addr().expect("an address");
        let mut open = Connections::new(1, Arc::new(Counted::default()));
        let (trigger, mut shutdown) = Shutdown::manual();
        let _busy = tokio::net::TcpStream::connect(address).await.expect("connecting");
        let (_stream, slot) = open.next(&listener, &mut shutdown).await.expect("a slot");
        let id = slot.id();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(GRACE / 10).await;
                slot.head_complete();
                slot.answered(Instant::now());
            }
        });
        open.started(id, task.abort_handle());

        let _newcomer = tokio::net::TcpStream::connect(address).await.expect("connecting");
        let asked = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(GRACE * 3).await;
            trigger.trigger();
        });
        match tokio::time::timeout(Duration::from_secs(5), open.next(&listener, &mut shutdown)).await {
            Ok(None) => {}
            Ok(Some(_)) => panic!("the busy client gave way after {:?}", asked.elapsed()),
            Err(_) => panic!("still waiting for a slot 5 s after shutdown was requested"),
        }
        task.abort();
    }

    #[tokio::test]
    async fn a_slot_is_freed_when_its_task_ends_or_is_aborted() {
        let metrics = Arc::new(Counted::default());
        let slots = Slots::new(4, metrics.clone());
        let (slot, _) = slots.admit(Instant::now()).expect("room");
        tokio::spawn(async move { drop(slot) });
        start(&slots, Stage::Waiting, Instant::now()).expect("room");
        until("the finished task's slot is free", || ids(&slots).len() == 1).await;
        assert!(slots.shed_oldest_waiting(), "the waiting one is closed");
        until("the aborted task's slot is free", || ids(&slots).is_empty()).await;
        assert_eq!(metrics.open.load(Ordering::Relaxed), 0);
    }
}
