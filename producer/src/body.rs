//! Response bodies under two bounds: each probe's body limit, and a memory budget that all the
//! probes of a round share.
//!
//! The pattern needs the whole body (a regular expression runs on all of the text), so without a
//! budget memory follows the body limit × the concurrency. Here a probe reserves its share of the
//! budget in one piece: a body whose `Content-Length` is over [`FREE_BYTES`] reserves it (up to the
//! body limit) before its first byte is read; a body of unknown length keeps its first
//! [`FREE_BYTES`] without asking, then reserves up to the body limit. What a body did not use is
//! given back once it is read, the rest when its pattern search ends. A probe holds either none of
//! the budget or all it will need, so no probe waits while holding part of it: reservations cannot
//! deadlock. A probe waits for its share within its own deadline. Without a pattern, bytes are
//! counted, not kept, and need no share.
//!
//! Body memory stays under `budget + concurrency × (FREE_BYTES + one chunk read ahead, at most
//! 64 KiB)`, plus the lossy copies of at most [`LOSSY_AT_ONCE`] bodies over [`FREE_BYTES`] that are
//! not UTF-8 (each up to 3 × its size).

use std::{borrow::Cow, sync::Arc, time::Duration};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use websentry_shared::report::{ErrorKind, ProbeError};

use crate::{
    matcher::{MatchLimit, Matcher},
    probe::{describe_hyper, failure},
};

/// The budget of body bytes kept at once by all probes, unless the body limit is larger. With the
/// rest of the process (about 50 MiB at a concurrency of 100 to 250) a producer stays well under
/// a 256 MiB memory limit.
pub const BODY_BUDGET: usize = 32 << 20;

/// Body bytes a probe keeps without a reservation: small pages need none.
pub const FREE_BYTES: usize = 16 << 10;

/// Larger bodies that are not UTF-8 being turned into text (a copy) at once at most.
pub const LOSSY_AT_ONCE: usize = 2;

/// Body bytes that the probes of a round may keep at once; cheap to clone.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    size: usize,
    lossy: Arc<Semaphore>,
}

impl BodyBudget {
    /// A budget of `bytes`, raised to `body_limit` so that one body always fits.
    pub fn new(bytes: usize, body_limit: usize) -> Self {
        let size = bytes.max(body_limit).min(u32::MAX as usize).min(Semaphore::MAX_PERMITS);
        Self { permits: Arc::new(Semaphore::new(size)), size, lossy: Arc::new(Semaphore::new(LOSSY_AT_ONCE)) }
    }

    /// Bytes of the budget not reserved right now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Waits for `bytes` of the budget (at most all of it), in one piece.
    pub(crate) async fn reserve(&self, bytes: usize) -> OwnedSemaphorePermit {
        let bytes = u32::try_from(bytes.min(self.size)).unwrap_or(u32::MAX);
        Arc::clone(&self.permits).acquire_many_owned(bytes).await.expect("the budget is never closed")
    }
}

/// A response body as read so far: its length, and its bytes when a pattern will search them.
#[derive(Debug, Default)]
pub struct Body {
    /// Bytes read, kept or not.
    len: usize,
    keep: bool,
    bytes: Vec<u8>,
    /// The budget this body holds, beyond its free bytes.
    reserved: Option<OwnedSemaphorePermit>,
    /// Where UTF-8 validation of `bytes` goes on; `None` once they are known not to be UTF-8.
    valid_up_to: Option<usize>,
    /// Time spent waiting for the reservation: not the site's, so not in the transfer time.
    waited: Duration,
    /// Waiting for the reservation right now.
    waiting: bool,
}

impl Body {
    /// An empty body; its bytes are kept when `keep` (for the pattern), else only counted.
    pub fn new(keep: bool) -> Self {
        Self { keep, valid_up_to: Some(0), ..Self::default() }
    }

    /// Bytes read.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Time spent waiting for a share of the budget.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// Whether it is waiting for a share of the budget (when a deadline cuts it short).
    pub fn is_waiting(&self) -> bool {
        self.waiting
    }

    /// Bytes of the budget this body holds.
    pub fn reserved(&self) -> usize {
        self.reserved.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Reads `incoming` until it ends or `limit` bytes were read; `announced` is its Content-Length.
    ///
    /// # Errors
    /// An `http` error when the body breaks off, a `body_limit` error past `limit` (what was read
    /// is kept).
    pub async fn read(
        &mut self,
        incoming: &mut Incoming,
        announced: Option<u64>,
        limit: usize,
        budget: &BodyBudget,
    ) -> Result<(), ProbeError> {
        let result = self.read_frames(incoming, announced, limit, budget).await;
        self.give_back_unused();
        result
    }

    async fn read_frames(
        &mut self,
        incoming: &mut Incoming,
        announced: Option<u64>,
        limit: usize,
        budget: &BodyBudget,
    ) -> Result<(), ProbeError> {
        let claim = announced.and_then(|n| usize::try_from(n).ok()).map_or(limit, |n| n.min(limit));
        if self.keep && announced.is_some() && claim > FREE_BYTES {
            // The size is known: wait for it before any byte is read, so that a waiting probe holds
            // no body bytes (nor a chunk that did not fit).
            self.make_room(claim, claim, budget).await?;
        } else if self.keep {
            self.bytes.reserve_exact(claim.min(FREE_BYTES));
        }
        while let Some(frame) = incoming.frame().await {
            let frame =
                frame.map_err(|err| failure(ErrorKind::Http, format!("reading the body: {}", describe_hyper(&err))))?;
            let Ok(data) = frame.into_data() else { continue };
            let room = limit - self.len;
            let taken = data.len().min(room);
            if self.keep {
                self.make_room(taken, claim, budget).await?;
                self.bytes.extend_from_slice(&data[..taken]);
                self.validate();
            }
            self.len += taken;
            if data.len() > room {
                return Err(failure(
                    ErrorKind::BodyLimit,
                    format!("body larger than {limit} bytes; matched on the first {limit}"),
                ));
            }
        }
        Ok(())
    }

    /// Makes sure `more` bytes may be kept: free below [`FREE_BYTES`], else from the reservation,
    /// made once, for all of `claim`.
    async fn make_room(&mut self, more: usize, claim: usize, budget: &BodyBudget) -> Result<(), ProbeError> {
        let wanted = self.bytes.len() + more;
        if wanted <= FREE_BYTES + self.reserved() {
            return Ok(());
        }
        if self.reserved.is_some() {
            // More than Content-Length announced: hyper and h2 refuse that before we see it.
            return Err(failure(ErrorKind::Http, "the body is longer than its Content-Length"));
        }
        let started = Instant::now();
        self.waiting = true;
        let permit = budget.reserve(claim.max(wanted) - FREE_BYTES).await;
        self.waiting = false;
        self.waited += started.elapsed();
        self.bytes.reserve_exact(claim.max(wanted) - self.bytes.len());
        self.reserved = Some(permit);
        Ok(())
    }

    /// Returns the reserved bytes that the body did not fill.
    fn give_back_unused(&mut self) {
        let used = self.bytes.len().saturating_sub(FREE_BYTES);
        if let Some(permit) = &mut self.reserved {
            drop(permit.split(permit.num_permits() - used.min(permit.num_permits())));
            if permit.num_permits() == 0 {
                self.reserved = None;
            }
        }
    }

    /// Moves UTF-8 validation on over the bytes added, so that it is known before the search
    /// whether the text needs a lossy copy.
    fn validate(&mut self) {
        let Some(from) = self.valid_up_to else { return };
        match std::str::from_utf8(&self.bytes[from..]) {
            Ok(_) => self.valid_up_to = Some(self.bytes.len()),
            // An incomplete sequence at the end may be completed by the next chunk.
            Err(err) if err.error_len().is_none() => self.valid_up_to = Some(from + err.valid_up_to()),
            Err(_) => self.valid_up_to = None,
        }
    }

    /// Searches `matcher` in the kept bytes, decoded as UTF-8 with invalid sequences replaced by
    /// U+FFFD. Blocking: run it off the I/O threads. The body, and the budget it holds, are released
    /// when the search ends.
    ///
    /// # Errors
    /// [`MatchLimit`] when the search backtracked too much.
    pub fn search(self, matcher: &Matcher) -> Result<Option<String>, MatchLimit> {
        let text: Cow<'_, str> = String::from_utf8_lossy(&self.bytes);
        matcher.find(&text)
    }

    /// Waits for a turn to make a lossy copy when this body needs a large one; `None` when it does
    /// not need one (it is UTF-8, or small enough to count as the probe's own).
    pub async fn lossy_turn(&self, budget: &BodyBudget) -> Option<OwnedSemaphorePermit> {
        let utf8 = self.valid_up_to == Some(self.bytes.len());
        if utf8 || self.bytes.len() <= FREE_BYTES {
            return None;
        }
        Some(Arc::clone(&budget.lossy).acquire_owned().await.expect("the lossy turns are never closed"))
    }
}
