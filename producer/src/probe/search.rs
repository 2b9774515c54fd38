//! The probe's pattern search, under the probe's deadline: where it runs, and for how long.
//!
//! - **Linear patterns** (the `regex` crate) take time linear in the body, but with a factor that
//!   the pattern decides: microseconds for 16 KiB with usual patterns, tens of milliseconds with
//!   some the size limit lets through (`(?s).*(.{400})`). A body up to [`SEARCH_HERE_BYTES`] is
//!   searched right on the probe's I/O thread, which costs less than a hop to another thread (about
//!   30 µs of CPU), until one search of the pattern takes longer than [`HERE_BUDGET`]: from then on
//!   that pattern is searched on the blocking pool, like larger bodies.
//! - **Backtracking patterns** (look-around, back-references) never run on an I/O thread. One
//!   search runs on the blocking pool over the body's first [`BACKTRACKING_INPUT_BYTES`], holding
//!   one of the prober's [`SearchSlots`] (one per CPU), so that hostile pages cannot take more
//!   threads or CPU than that; a probe that finds every slot taken waits for one within its
//!   deadline.
//!
//! Every search ends by the probe's deadline, its timeout counted from its start, plus
//! [`SEARCH_MARGIN`]: a search that has not ended by then makes the report a `regex_limit` saying
//! how long it had. A backtracking search is stopped then (see [`StopSignal`]) and gives its slot
//! back within one scan of its text; a linear one cannot be stopped and finishes on the blocking
//! pool, in time linear in its body, with its body's share of the budget.

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{timeout_at, Instant},
};
use websentry_shared::report::{ErrorKind, ProbeError};

use super::{
    body::{Body, BodyBudget, FREE_BYTES},
    errors::failure,
};
use crate::matcher::{Engine, MatchLimit, Matcher, StopSignal, BACKTRACKING_INPUT_BYTES};

/// Time a search may take past the probe's timeout, so that a body read at the last moment is
/// still searched; a report comes at most this late.
pub const SEARCH_MARGIN: Duration = Duration::from_millis(250);

/// Bodies up to this size are searched by the linear engine on the probe's own thread.
pub const SEARCH_HERE_BYTES: usize = FREE_BYTES;

/// A search on the probe's own thread that takes longer than this sends its pattern to the
/// blocking pool for good.
pub const HERE_BUDGET: Duration = Duration::from_millis(1);

/// The backtracking searches that may run at once; cheap to clone.
#[derive(Debug, Clone)]
pub struct SearchSlots {
    permits: Arc<Semaphore>,
    size: usize,
}

impl SearchSlots {
    /// `size` slots (at least one).
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        Self { permits: Arc::new(Semaphore::new(size)), size }
    }

    /// One slot per CPU this process may use (its cgroup's quota included).
    pub fn per_cpu() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// How many there are.
    pub fn size(&self) -> usize {
        self.size
    }

    async fn take(&self) -> OwnedSemaphorePermit {
        Arc::clone(&self.permits).acquire_owned().await.expect("the slots are never closed")
    }
}

/// Where a search runs and until when.
#[derive(Debug)]
pub(super) struct Search<'a> {
    pub matcher: &'a Matcher,
    pub budget: &'a BodyBudget,
    pub slots: &'a SearchSlots,
    /// The probe's timeout, for messages.
    pub timeout: Duration,
    /// When the search must have ended: the probe's start + its timeout + [`SEARCH_MARGIN`].
    pub deadline: Instant,
}

impl Search<'_> {
    /// What the report's `regexp_match` holds for `body` (see [`Matcher::find`]).
    ///
    /// # Errors
    /// A `regex_limit` error: the search backtracked too much, ran out of time, or (backtracking
    /// patterns) found no match in the part of a larger body that it searches.
    pub async fn run(&self, body: Body) -> Result<Option<String>, ProbeError> {
        match self.matcher.engine() {
            Engine::Linear if body.len() <= SEARCH_HERE_BYTES && !self.matcher.is_costly() => self.here(body),
            Engine::Linear => self.off_thread(body).await,
            Engine::Backtracking => self.backtracking(body).await,
        }
    }

    /// A linear search of a small body on this thread; one over [`HERE_BUDGET`] marks its pattern
    /// costly.
    fn here(&self, body: Body) -> Result<Option<String>, ProbeError> {
        let started = std::time::Instant::now();
        // Searched with a clone: a search leaves its scratch memory (tens of KiB) in the pool of the
        // regex it ran on, so the site's own regex would keep it for good, per site.
        let found = body.search(&self.matcher.clone());
        let took = started.elapsed();
        if took > HERE_BUDGET && self.matcher.mark_costly() {
            let took_ms = took.as_secs_f64() * 1000.0;
            tracing::info!(
                took_ms,
                "a pattern search took long: that pattern is searched off the I/O threads from now on"
            );
        }
        found.map_err(limit)
    }

    /// A linear search of a large body, on the blocking pool. The body and its share of the
    /// budget are released when the search ends, even after the deadline.
    async fn off_thread(&self, body: Body) -> Result<Option<String>, ProbeError> {
        let had = self.time_left();
        let matcher = self.matcher.clone();
        let searched = timeout_at(self.deadline, async move {
            let turn = body.lossy_turn(self.budget).await;
            tokio::task::spawn_blocking(move || {
                let found = body.search(&matcher);
                drop(turn);
                found
            })
            .await
        })
        .await;
        match searched {
            Ok(Ok(found)) => found.map_err(limit),
            Ok(Err(join)) => Err(failure(ErrorKind::RegexLimit, format!("pattern search failed: {join}"))),
            Err(_) => Err(self.out_of_time(had)),
        }
    }

    /// A backtracking search, on the blocking pool with a slot, over the body's first
    /// [`BACKTRACKING_INPUT_BYTES`]; stopped at the deadline.
    async fn backtracking(&self, body: Body) -> Result<Option<String>, ProbeError> {
        let had = self.time_left();
        let Ok(slot) = timeout_at(self.deadline, self.slots.take()).await else {
            let message = format!(
                "pattern search not started: its {} slots were taken for all of the {:.2?} it had (the probe's \
                 timeout is {:?})",
                self.slots.size(),
                had,
                self.timeout
            );
            return Err(failure(ErrorKind::RegexLimit, message));
        };
        let read = body.len();
        let (text, cut) = body.text_within(BACKTRACKING_INPUT_BYTES);
        let stop = StopSignal::default();
        // Whichever way this probe goes on (an answer, the deadline, or the probe dropped), the
        // search stops and gives its slot back.
        let _stop_when_done = StopWhenDropped(stop.clone());
        let matcher = self.matcher.clone();
        let searching = tokio::task::spawn_blocking(move || {
            let found = matcher.find_unless_stopped(&text, &stop);
            drop(slot);
            found
        });
        match timeout_at(self.deadline, searching).await {
            Ok(Ok(Ok(None))) if cut => Err(failure(
                ErrorKind::RegexLimit,
                format!(
                    "no match in the first {BACKTRACKING_INPUT_BYTES} of {read} body bytes: a pattern with \
                     look-around or back-references searches no further"
                ),
            )),
            Ok(Ok(Ok(found))) => Ok(found),
            Ok(Ok(Err(MatchLimit::Stopped))) | Err(_) => Err(self.out_of_time(had)),
            Ok(Ok(Err(backtracked))) => Err(limit(backtracked)),
            Ok(Err(join)) => Err(failure(ErrorKind::RegexLimit, format!("pattern search failed: {join}"))),
        }
    }

    fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn out_of_time(&self, had: Duration) -> ProbeError {
        let message = format!(
            "pattern search stopped: no result in the {had:.2?} it had (the probe's timeout is {:?})",
            self.timeout
        );
        failure(ErrorKind::RegexLimit, message)
    }
}

fn limit(limit: MatchLimit) -> ProbeError {
    failure(ErrorKind::RegexLimit, limit.to_string())
}

/// Gives its signal when dropped.
struct StopWhenDropped(StopSignal);

impl Drop for StopWhenDropped {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::body::BODY_BUDGET;

    /// A page of `len` bytes without `x`, on which `(?=.*x)y` is quadratic.
    fn page_without_x(len: usize) -> Vec<u8> {
        b"lorem ipsum y ".iter().copied().cycle().take(len).collect()
    }

    fn search<'a>(
        matcher: &'a Matcher,
        slots: &'a SearchSlots,
        budget: &'a BodyBudget,
        within: Duration,
    ) -> Search<'a> {
        Search { matcher, budget, slots, timeout: within, deadline: Instant::now() + within }
    }

    #[tokio::test]
    async fn a_hostile_backtracking_search_ends_by_the_deadline_as_a_regex_limit_and_frees_its_slot() {
        let matcher = Matcher::parse(r"(?=.*x)y").unwrap();
        let (slots, budget) = (SearchSlots::new(1), BodyBudget::new(BODY_BUDGET, 1 << 20));
        let started = Instant::now();

        let found = search(&matcher, &slots, &budget, Duration::from_millis(300))
            .run(Body::holding(&page_without_x(1 << 20)))
            .await;

        let took = started.elapsed();
        let error = found.expect_err("out of time");
        assert_eq!(error.kind, ErrorKind::RegexLimit);
        assert!(error.message.starts_with("pattern search stopped: no result in the "), "{}", error.message);
        assert!(took < Duration::from_secs(2), "ended {took:?} after a deadline of 300 ms");
        let slot = tokio::time::timeout(Duration::from_secs(5), slots.take()).await;
        assert!(slot.is_ok(), "the stopped search gave its slot back");
    }

    #[tokio::test]
    async fn a_backtracking_search_waits_for_a_slot_only_until_the_deadline() {
        let matcher = Matcher::parse(r"(?<=id=)\d+").unwrap();
        let (slots, budget) = (SearchSlots::new(1), BodyBudget::new(BODY_BUDGET, 1 << 20));
        let taken = slots.take().await;

        let found = search(&matcher, &slots, &budget, Duration::from_millis(100)).run(Body::holding(b"id=42")).await;

        let error = found.expect_err("no slot");
        assert_eq!(error.kind, ErrorKind::RegexLimit);
        assert!(error.message.starts_with("pattern search not started: its 1 slots were taken"), "{}", error.message);
        drop(taken);
        let found = search(&matcher, &slots, &budget, Duration::from_secs(5)).run(Body::holding(b"id=42")).await;
        assert_eq!(found.unwrap().as_deref(), Some("42"));
    }

    #[tokio::test]
    async fn a_backtracking_search_reports_a_match_in_its_part_of_the_body_and_says_when_it_found_none() {
        let matcher = Matcher::parse(r"(?<=id=)\d+").unwrap();
        let (slots, budget) = (SearchSlots::new(1), BodyBudget::new(BODY_BUDGET, 1 << 20));
        let mut early = b"id=7 ".to_vec();
        early.resize(BACKTRACKING_INPUT_BYTES * 2, b'.');
        let mut late = vec![b'.'; BACKTRACKING_INPUT_BYTES];
        late.extend_from_slice(b" id=8");

        let early = search(&matcher, &slots, &budget, Duration::from_secs(5)).run(Body::holding(&early)).await;
        let late = search(&matcher, &slots, &budget, Duration::from_secs(5)).run(Body::holding(&late)).await;

        assert_eq!(early.unwrap().as_deref(), Some("7"));
        let error = late.expect_err("not searched that far");
        assert_eq!(error.kind, ErrorKind::RegexLimit);
        let expected = format!("no match in the first 262144 of {} body bytes", BACKTRACKING_INPUT_BYTES + 5);
        assert!(error.message.starts_with(&expected), "{}", error.message);
    }

    #[tokio::test]
    async fn a_pattern_whose_search_took_long_here_is_searched_off_thread_from_then_on() {
        // Tens of milliseconds for 16 KiB (release build): capturing over a long match.
        let costly = Matcher::parse(r"(?s).*(.{400})").unwrap();
        let (slots, budget) = (SearchSlots::new(1), BodyBudget::new(BODY_BUDGET, 1 << 20));
        let page = vec![b'.'; SEARCH_HERE_BYTES];
        assert!(!costly.is_costly());

        let found = search(&costly, &slots, &budget, Duration::from_secs(5)).run(Body::holding(&page)).await;

        assert_eq!(found.unwrap().map(|m| m.len()), Some(400));
        assert!(costly.is_costly(), "marked by its first search");
        assert!(costly.clone().is_costly(), "for every clone");
    }

    #[tokio::test]
    async fn a_linear_pattern_searches_the_whole_body_here_or_off_thread() {
        let matcher = Matcher::parse(r"id=(\d+)").unwrap();
        let (slots, budget) = (SearchSlots::new(1), BodyBudget::new(BODY_BUDGET, 4 << 20));
        for len in [100, SEARCH_HERE_BYTES, 3 << 20] {
            let mut page = vec![b'.'; len - 5];
            page.extend_from_slice(b"id=42");

            let found = search(&matcher, &slots, &budget, Duration::from_secs(5)).run(Body::holding(&page)).await;

            assert_eq!(found.unwrap().as_deref(), Some("42"), "{len} bytes");
        }
    }
}
