//! Waiting for a condition with a deadline, instead of sleeping and hoping; and checking that a
//! condition stays true for a while, instead of looking once.

use std::{
    fmt::Display,
    time::{Duration, Instant},
};

/// How often a condition is polled.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Polls `condition` every 50 ms until it holds; panics naming `what` after `timeout`.
///
/// # Panics
/// When `condition` has not held within `timeout`.
pub fn eventually(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        std::thread::sleep(POLL_EVERY);
    }
}

/// Polls `attempt` every 50 ms until it returns `Ok`, and returns that value: for a wait whose
/// failure should say what was seen instead (the last `Err`), or whose end gives a value.
///
/// # Panics
/// When no attempt succeeded within `timeout`, with `what` and the last attempt's error.
pub fn eventually_ok<T, E: Display>(what: &str, timeout: Duration, mut attempt: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(last) => assert!(Instant::now() < deadline, "not within {timeout:?}: {what}; last: {last}"),
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// Polls `condition` every 50 ms for `duration`, from now to its end, and panics naming `what` at
/// the first time it does not hold: for "stays so", where one look could be lucky.
///
/// # Panics
/// When `condition` does not hold at one of the polls.
pub fn consistently(what: &str, duration: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    loop {
        assert!(condition(), "no longer so after {:?} of {duration:?}: {what}", started.elapsed());
        if started.elapsed() >= duration {
            return;
        }
        std::thread::sleep(POLL_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(300);

    #[test]
    fn eventually_returns_once_the_condition_holds() {
        let mut polls = 0;
        eventually("the third poll", SHORT * 10, || {
            polls += 1;
            polls == 3
        });
        assert_eq!(polls, 3);
    }

    #[test]
    #[should_panic(expected = "not within 300ms: never")]
    fn eventually_names_what_did_not_happen() {
        eventually("never", SHORT, || false);
    }

    #[test]
    fn eventually_ok_returns_the_first_value() {
        let mut polls = 0;
        let value = eventually_ok("a value", SHORT * 10, || {
            polls += 1;
            if polls < 2 {
                Err("not yet")
            } else {
                Ok(polls * 10)
            }
        });
        assert_eq!(value, 20);
    }

    #[test]
    #[should_panic(expected = "not within 300ms: a value; last: still 7")]
    fn eventually_ok_says_what_it_saw_last() {
        eventually_ok::<(), _>("a value", SHORT, || Err("still 7"));
    }

    #[test]
    fn consistently_polls_for_the_whole_duration() {
        let started = Instant::now();
        let mut polls = 0;
        consistently("always", SHORT, || {
            polls += 1;
            true
        });
        assert!(started.elapsed() >= SHORT && polls > 3, "{polls} polls in {:?}", started.elapsed());
    }

    #[test]
    #[should_panic(expected = "holds twice")]
    fn consistently_panics_at_the_first_poll_where_it_fails() {
        let mut polls = 0;
        consistently("holds twice", SHORT * 10, || {
            polls += 1;
            polls <= 2
        });
    }
}
