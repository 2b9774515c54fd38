//! The endpoint's open connections: at most a fixed number, and which one gives way when a new
//! one comes at the cap.
//!
//! A connection is new until the first bytes of its request head are read, then waiting until the
//! head is complete, then answered. Legitimate clients (the kubelet, Prometheus) send their whole
//! head at once, so they go from new to answered on their first read; a slow client that trickles
//! its head waits until the head timeout. When a new connection comes at the cap:
//!
//! 1. the oldest waiting connection is closed to make room: slow clients give way to newcomers,
//!    however many they are, and the process never holds more than the cap;
//! 2. with none waiting, the oldest new one gives way once it has sent nothing for [`GRACE`] (an
//!    idle client); until then the newcomer waits to be given a slot, for [`GRACE`] at most;
//! 3. when every slot holds an answer on its way, the newcomer is closed.
//!
//! A probe whose head has come is answered at once, and one whose head is on its way has
//! [`GRACE`] to deliver it, however many slow clients come after it. (Waiting for a free slot
//! instead, as the endpoint used to, let a hundred slow clients hold every slot while the
//! kubelet's probes queued behind them until they timed out.)

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tokio::{task::AbortHandle, time::Instant};

use crate::metrics::Metrics;

/// How long a connection that has sent nothing keeps its slot against newcomers: far longer than
/// a client needs to send its head after connecting, far shorter than the kubelet's probe timeout.
pub const GRACE: Duration = Duration::from_millis(100);

/// The open connections, shared by the accepting loop and each connection's task.
#[derive(Debug)]
pub struct Slots {
    cap: usize,
    metrics: Arc<Metrics>,
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
    /// Nothing read yet.
    New,
    /// Part of its head read: it gives way to newcomers at the cap.
    Waiting,
    /// Its head is complete: the answer is on its way; it never gives way.
    Answered,
}

/// Why a new connection gets no slot now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoom {
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
    pub fn new(cap: usize, metrics: Arc<Metrics>) -> Arc<Self> {
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
        self.metrics.set_http_connections(table.open.len());
        drop(table);
        // Outside the lock: the aborted task's slot takes it when the task is dropped.
        let shed = shed.map(|task| task.abort()).is_some();
        if shed {
            self.metrics.count_http_shed();
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
        self.metrics.set_http_connections(table.open.len());
        drop(table);
        let shed = shed.map(|task| task.abort()).is_some();
        if shed {
            self.metrics.count_http_shed();
        }
        shed
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

    /// Part of the request head was read, not all of it: from now on the connection gives way to
    /// newcomers at the cap.
    pub fn head_waiting(&self) {
        self.set(Stage::Waiting);
    }

    /// The request head has arrived: the answer is on its way, the connection no longer gives
    /// way.
    pub fn head_complete(&self) {
        self.set(Stage::Answered);
    }

    fn set(&self, stage: Stage) {
        if let Some(connection) = self.slots.lock().open.get_mut(&self.id) {
            // Answered is final.
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
        self.slots.metrics.set_http_connections(table.open.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let metrics = Arc::new(Metrics::default());
        let slots = Slots::new(4, Arc::clone(&metrics));
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

        until("the closed connections' slots are free", || metrics.render().contains("websentry_http_connections 4\n"))
            .await;
        assert!(metrics.render().contains("websentry_http_connections_shed_total 3\n"), "{}", metrics.render());
    }

    #[tokio::test]
    async fn a_slot_is_freed_when_its_task_ends_or_is_aborted() {
        let metrics = Arc::new(Metrics::default());
        let slots = Slots::new(4, Arc::clone(&metrics));
        let (slot, _) = slots.admit(Instant::now()).expect("room");
        tokio::spawn(async move { drop(slot) });
        start(&slots, Stage::Waiting, Instant::now()).expect("room");
        until("the finished task's slot is free", || ids(&slots).len() == 1).await;
        assert!(slots.shed_oldest_waiting(), "the waiting one is closed");
        until("the aborted task's slot is free", || ids(&slots).is_empty()).await;
        assert!(metrics.render().contains("websentry_http_connections 0\n"), "{}", metrics.render());
    }
}
