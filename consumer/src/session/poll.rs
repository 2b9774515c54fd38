//! Daemons: long-poll every held partition at once (sharing the byte bound between them) and, on
//! their own schedules, look at the topic and the claims (new partitions, a new identity, a replica
//! gone or come) and keep the archive (day partitions, retention).

use std::time::{Duration, Instant};

use websentry_shared::kafka::KafkaError;

use crate::{
    batch,
    bridge::wait_or_shutdown,
    fetch::Fetched,
    session::{
        claims::{claim, refresh_topic},
        outcome::{Ended, Flow, Interrupted},
        state::Session,
        write::{handle, write, Fetch},
    },
};

/// How long a daemon's fetch waits at the broker for new records.
const LONG_POLL_MS: i32 = 500;
/// How often a daemon looks at the topic (new partitions, a new identity), for partitions nobody
/// holds (a replica died) and for its fair share.
const CLAIM_EVERY: Duration = Duration::from_millis(1500);
/// How often a daemon keeps the archive: day partitions ahead, retention (see `upkeep`).
const UPKEEP_EVERY: Duration = Duration::from_secs(3600);

/// When the claims and the upkeep are due next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timers {
    claim: Instant,
    upkeep: Instant,
}

impl Timers {
    /// Timers for a session whose claims and upkeep were done at `now` (when it started).
    fn started(now: Instant) -> Self {
        Self { claim: now + CLAIM_EVERY, upkeep: now + UPKEEP_EVERY }
    }

    /// Whether the upkeep is due at `now`; if so, its next turn is an interval from `now`.
    fn upkeep_due(&mut self, now: Instant) -> bool {
        let due = now >= self.upkeep;
        if due {
            self.upkeep = now + UPKEEP_EVERY;
        }
        due
    }

    /// Whether the claims are due at `now`; if so, their next turn is an interval from `now`.
    fn claim_due(&mut self, now: Instant) -> bool {
        let due = now >= self.claim;
        if due {
            self.claim = now + CLAIM_EVERY;
        }
        due
    }

    /// How long an idle daemon (no partition held) waits before claiming again.
    fn idle_pause(&self, now: Instant) -> Duration {
        self.claim.saturating_duration_since(now)
    }
}

/// Polls until shutdown or until the topic is created again.
///
/// # Errors
/// Either service failed; what was committed stays committed.
pub fn poll_until_stopped(session: &mut Session<'_>) -> Result<Ended, Interrupted> {
    let mut timers = Timers::started(Instant::now());
    while !session.shutdown.is_requested() {
        session.metrics.session_turned();
        if timers.upkeep_due(Instant::now()) {
            session.archiver.upkeep(&session.metrics);
        }
        if timers.claim_due(Instant::now()) {
            if refresh_topic(session)? == Flow::TopicChanged {
                return Ok(Ended::TopicChanged);
            }
            claim(session)?;
        }
        let active = session.table.active();
        if active.is_empty() {
            if wait_or_shutdown(session.runtime, &session.shutdown, timers.idle_pause(Instant::now())) {
                break;
            }
            continue;
        }
        let fetches = active.iter().map(|&id| session.source.fetch(id, session.offset(id), LONG_POLL_MS, active.len()));
        let all = async { Ok::<_, KafkaError>(futures::future::join_all(fetches).await) };
        let fetched = session.kafka(Duration::from_millis(LONG_POLL_MS as u64), all)?;
        // What brought records is written together, in one transaction (more when it is over
        // WEBSENTRY_BATCH_MAX records); the rest (past the end of the log, failed) is handled after.
        let mut others = Vec::new();
        {
            let (parts, archiver, table) = session.split();
            let mut fetches = Vec::new();
            for (&id, result) in active.iter().zip(fetched) {
                match result.map(|fetched| fetched.map(|records| batch::sort(parts.origin(id), records))) {
                    Ok(Fetched::Records(records)) => fetches.push(Fetch::new(table, id, records)),
                    other => others.push((id, other)),
                }
            }
            write(&parts, archiver, table, &mut fetches)?;
        }
        for (id, other) in others {
            if session.shutdown.is_requested() {
                break;
            }
            if handle(session, id, other)? == Flow::TopicChanged {
                return Ok(Ended::TopicChanged);
            }
        }
    }
    Ok(Ended::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_come_every_interval_and_the_upkeep_every_hour() {
        let start = Instant::now();
        let mut timers = Timers::started(start);

        assert!(!timers.claim_due(start + CLAIM_EVERY / 2), "not before its interval");
        assert!(timers.claim_due(start + CLAIM_EVERY), "at its interval");
        assert!(!timers.claim_due(start + CLAIM_EVERY), "once");
        assert!(!timers.upkeep_due(start + UPKEEP_EVERY - Duration::from_secs(1)));
        assert!(timers.upkeep_due(start + UPKEEP_EVERY));
        assert_eq!(timers.upkeep, start + 2 * UPKEEP_EVERY, "the next turn an hour later");
    }

    #[test]
    fn a_late_turn_schedules_the_next_one_from_when_it_ran() {
        let start = Instant::now();
        let mut timers = Timers::started(start);
        let late = start + 10 * CLAIM_EVERY;

        assert!(timers.claim_due(late));
        assert_eq!(timers.claim, late + CLAIM_EVERY, "no burst of turns to catch up");
    }

    #[test]
    fn an_idle_daemon_waits_until_its_next_claims() {
        let start = Instant::now();
        let timers = Timers::started(start);

        assert_eq!(timers.idle_pause(start), CLAIM_EVERY);
        assert_eq!(timers.idle_pause(start + 2 * CLAIM_EVERY), Duration::ZERO, "overdue: no wait");
    }
}
