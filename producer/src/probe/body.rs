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
//! not UTF-8 (each up to 3 × its size), plus the text of each backtracking search (see
//! [`Body::text_within`] and `probe::search`).

use std::{borrow::Cow, sync::Arc, time::Duration};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use websentry_shared::report::{ErrorKind, ProbeError};

use super::errors::{describe_hyper, failure};
use crate::matcher::{MatchLimit, Matcher};

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

    /// Its first `limit` bytes (fewer if the cut would split a character) as text, invalid
    /// sequences replaced by U+FFFD; and whether bytes were left out. The body, and the budget it
    /// holds, are released: the text is at most `3 × limit` bytes.
    pub fn text_within(self, limit: usize) -> (String, bool) {
        let mut cut = self.bytes.len().min(limit);
        // A character is at most 4 bytes: step back over at most 3 continuation bytes.
        for _ in 0..3 {
            if cut == 0 || cut == self.bytes.len() || self.bytes[cut] & 0xC0 != 0x80 {
                break;
            }
            cut -= 1;
        }
        (String::from_utf8_lossy(&self.bytes[..cut]).into_owned(), cut < self.bytes.len())
    }

    /// A body that was read as `bytes`, kept for a pattern.
    #[cfg(test)]
    pub(crate) fn holding(bytes: &[u8]) -> Self {
        let mut body = Self::new(true);
        body.bytes = bytes.to_vec();
        body.len = bytes.len();
        body.validate();
        body
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::{header, Request};
    use http_body_util::Empty;

    use super::{
        super::{test_server::serve, transport},
        *,
    };

    /// An answer whose body is `len` bytes of `x`: with a Content-Length, or chunked (its length
    /// unknown).
    fn answer_of(len: usize, chunked: bool) -> &'static [u8] {
        let mut answer = if chunked {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec()
        } else {
            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n").into_bytes()
        };
        let chunk = [b'x'; 4096];
        let mut left = len;
        while left > 0 {
            let part = &chunk[..left.min(chunk.len())];
            if chunked {
                answer.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            }
            answer.extend_from_slice(part);
            if chunked {
                answer.extend_from_slice(b"\r\n");
            }
            left -= part.len();
        }
        if chunked {
            answer.extend_from_slice(b"0\r\n\r\n");
        }
        answer.leak()
    }

    /// The body of a local server's `answer`, its head read, and its Content-Length.
    async fn body_of(answer: &'static [u8]) -> (Option<u64>, transport::BodyWithConnection) {
        let url = serve(answer).await;
        let addr = url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
        let tcp = transport::connect("127.0.0.1", &[addr]).await.unwrap();
        let request: Request<Empty<Bytes>> = Request::get(url.as_str()).body(Empty::new()).unwrap();
        let Ok(response) = transport::send(tcp, false, request).await else { panic!("no answer from {url}") };
        let announced = response.headers().get(header::CONTENT_LENGTH).map(|n| n.to_str().unwrap().parse().unwrap());
        (announced, response.into_body())
    }

    #[test]
    fn a_text_within_a_limit_never_splits_a_character_and_says_what_it_left_out() {
        // (case, bytes, limit, text, bytes left out)
        let cases: [(&str, &[u8], usize, &str, bool); 6] = [
            ("shorter than the limit", b"abc", 10, "abc", false),
            ("at the limit", b"abc", 3, "abc", false),
            ("cut", b"abcdef", 4, "abcd", true),
            ("cut inside a character", "aé€".as_bytes(), 4, "aé", true),
            ("cut inside a 4-byte character", "a😀".as_bytes(), 4, "a", true),
            ("not UTF-8", b"\xff\xfeab", 3, "\u{FFFD}\u{FFFD}a", true),
        ];
        for (case, bytes, limit, text, left_out) in cases {
            assert_eq!(Body::holding(bytes).text_within(limit), (text.to_owned(), left_out), "{case}");
        }
    }

    #[test]
    fn a_budget_is_raised_to_the_body_limit_so_that_one_body_always_fits() {
        assert_eq!(BodyBudget::new(10, 100).available(), 100);
        assert_eq!(BodyBudget::new(100, 10).available(), 100);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_keeps_what_was_read_and_says_so() {
        let (announced, mut incoming) =
            body_of(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\nConnection: close\r\n\r\nabcdefghij0123456789").await;
        let budget = BodyBudget::new(1024, 5);
        let mut body = Body::new(true);

        let error = body.read(&mut incoming.body, announced, 5, &budget).await.expect_err("over the limit");

        assert_eq!(error.kind, ErrorKind::BodyLimit);
        assert_eq!(error.message, "body larger than 5 bytes; matched on the first 5");
        assert_eq!(body.len(), 5);
        assert_eq!(body.search(&Matcher::parse("[a-z]+").unwrap()).unwrap().as_deref(), Some("abcde"));
    }

    #[tokio::test]
    async fn without_a_pattern_bytes_are_counted_not_kept_and_need_no_share_of_the_budget() {
        let (announced, mut incoming) = body_of(answer_of(300 * 1024, false)).await;
        let budget = BodyBudget::new(1 << 20, 1 << 20);
        let taken = budget.reserve(usize::MAX).await;
        let mut body = Body::new(false);

        let read =
            tokio::time::timeout(Duration::from_secs(5), body.read(&mut incoming.body, announced, 1 << 20, &budget))
                .await;

        assert!(matches!(read, Ok(Ok(()))), "read without waiting for the budget: {read:?}");
        assert_eq!((body.len(), body.reserved()), (300 * 1024, 0));
        drop(taken);
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_keeps_its_first_free_bytes_without_asking() {
        let (announced, mut incoming) = body_of(answer_of(FREE_BYTES, true)).await;
        let budget = BodyBudget::new(1 << 20, 1 << 20);
        let taken = budget.reserve(usize::MAX).await;
        let mut body = Body::new(true);

        let read =
            tokio::time::timeout(Duration::from_secs(5), body.read(&mut incoming.body, announced, 1 << 20, &budget))
                .await;

        assert!(matches!(read, Ok(Ok(()))), "read without waiting for the budget: {read:?}");
        assert_eq!((body.len(), body.reserved()), (FREE_BYTES, 0));
        drop(taken);
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_gives_back_the_share_it_did_not_fill() {
        let (announced, mut incoming) = body_of(answer_of(100 * 1024, true)).await;
        let budget = BodyBudget::new(2 << 20, 1 << 20);
        let mut body = Body::new(true);

        body.read(&mut incoming.body, announced, 1 << 20, &budget).await.expect("read");

        let kept_beyond_free = 100 * 1024 - FREE_BYTES;
        assert_eq!(body.reserved(), kept_beyond_free, "reserved up to the body limit, then the rest given back");
        assert_eq!(budget.available(), (2 << 20) - kept_beyond_free);
        drop(body);
        assert_eq!(budget.available(), 2 << 20, "all of it given back with the body");
    }
}
