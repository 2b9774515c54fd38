//! When a site is probed and which producer probes it, both from a digest of its URL (SHA-256 of
//! the URL as reports show it), so that every run, restart, replica and version agrees without
//! keeping any state:
//!
//! - its **slot**: an offset within its interval, to the millisecond. A site of interval `I` is
//!   probed at the times `t` (milliseconds since the Unix epoch) with `t ≡ offset (mod I)`, so the
//!   sites of a list spread evenly over their interval, and a site keeps its place across the
//!   runs of a CronJob and the restarts of a daemon;
//! - its **shard** of `n`: another eight bytes of the digest modulo `n`. Independent of the slot,
//!   so a shard's sites spread over the interval like the whole list's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

/// Most shards a list may be split into: far more pods than a site list needs.
pub const MAX_SHARDS: u32 = 1000;

/// What a site's URL decides: its slot and its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    slot: u64,
    shard: u64,
}

impl Placement {
    /// The placement of the site whose reports show `url`.
    pub fn of(url: &str) -> Self {
        let digest = Sha256::digest(url.as_bytes());
        let word = |at: usize| u64::from_be_bytes(digest[at..at + 8].try_into().expect("8 of the 32 bytes"));
        Placement { slot: word(0), shard: word(8) }
    }

    /// The site's offset within an interval of `interval_ms` (not zero).
    pub fn offset_ms(self, interval_ms: u64) -> u64 {
        self.slot % interval_ms
    }

    /// The site's first slot at or after `at_ms`.
    pub fn next_slot_ms(self, interval_ms: u64, at_ms: u64) -> u64 {
        let offset = self.offset_ms(interval_ms);
        // Time since the last slot, without going below zero.
        let since = (at_ms % interval_ms + interval_ms - offset) % interval_ms;
        match since {
            0 => at_ms,
            since => at_ms + (interval_ms - since),
        }
    }

    /// Whether one of the site's slots falls in `[start_ms, start_ms + length_ms)`.
    pub fn due_in(self, interval_ms: u64, start_ms: u64, length_ms: u64) -> bool {
        self.next_slot_ms(interval_ms, start_ms) < start_ms + length_ms
    }

    /// The site's shard of `count`.
    pub fn shard(self, count: u32) -> u32 {
        u32::try_from(self.shard % u64::from(count)).expect("below a u32 count")
    }
}

/// One shard of a site list: the sites whose [`Placement::shard`] of `count` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether the site of `url` is in this shard.
    pub fn holds(self, url: &str) -> bool {
        Placement::of(url).shard(self.count) == self.index
    }

    /// Parses `k/n`: shard `k` (from 0) of `n`.
    ///
    /// # Errors
    /// A text that is not `k/n` with `0 ≤ k < n ≤ MAX_SHARDS`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (index, count) =
            text.split_once('/').ok_or_else(|| format!("'{text}' is not k/n (shard k, counted from 0, of n)"))?;
        let whole = |part: &str| part.trim().parse::<u32>().ok();
        match (whole(index), whole(count)) {
            (Some(index), Some(count)) => Self::new(index, count),
            _ => Err(format!("'{text}' is not k/n with whole numbers (shard k, counted from 0, of n)")),
        }
    }

    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// `count` is 0 or over [`MAX_SHARDS`], or `index` is not below it.
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if !(1..=MAX_SHARDS).contains(&count) {
            return Err(format!("{count} shards: expected 1 to {MAX_SHARDS}"));
        }
        if index >= count {
            return Err(format!("shard {index} of {count}: shards are counted from 0 to {}", count - 1));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Milliseconds since the Unix epoch now (0 on a clock set before 1970).
pub fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(count: usize) -> Vec<String> {
        (0..count).map(|n| format!("https://site-{n}.example/health")).collect()
    }

    #[test]
    fn a_placement_is_the_same_for_the_same_url_and_fixed_across_versions() {
        assert_eq!(Placement::of("https://example.com/"), Placement::of("https://example.com/"));
        assert_ne!(Placement::of("https://example.com/"), Placement::of("https://example.com/x"));
        // Pinned (and computed apart: Python's hashlib): a change here moves every site's slot and
        // shard in every deployment at once.
        let placement = Placement::of("https://example.com/");
        assert_eq!((placement.offset_ms(60_000), placement.shard(7)), (PINNED_OFFSET, PINNED_SHARD));
    }
    const PINNED_OFFSET: u64 = 37_085;
    const PINNED_SHARD: u32 = 6;

    #[test]
    fn slots_recur_at_the_interval_and_the_next_is_never_before_the_time_asked() {
        for url in urls(200) {
            let placement = Placement::of(&url);
            for interval in [1_000, 60_000, 300_000, 86_400_000] {
                let offset = placement.offset_ms(interval);
                assert!(offset < interval);
                for at in [0, 1, offset, offset + 1, 1_764_410_400_250, 1_764_410_400_250 + interval - 1] {
                    let next = placement.next_slot_ms(interval, at);
                    assert!(next >= at && next - at < interval, "{url} {interval} {at}: {next}");
                    assert_eq!(next % interval, offset, "{url} {interval} {at}");
                }
            }
        }
    }

    #[test]
    fn windows_that_tile_time_find_each_slot_in_exactly_one_of_them() {
        let (interval, window) = (300_000, 60_000);
        let start = 1_764_410_400_000;
        for url in urls(500) {
            let placement = Placement::of(&url);
            // Over an hour, windows of a minute: a five-minute site is due in 12 of them, 5 apart.
            let due: Vec<u64> = (0..60).filter(|w| placement.due_in(interval, start + w * window, window)).collect();
            assert_eq!(due.len(), 12, "{url}: {due:?}");
            assert!(due.windows(2).all(|pair| pair[1] - pair[0] == 5), "{url}: {due:?}");
        }
    }

    #[test]
    fn slots_spread_evenly_over_the_interval() {
        let sites = urls(10_000);
        let mut per_second = [0_u32; 60];
        for url in &sites {
            per_second[usize::try_from(Placement::of(url).offset_ms(60_000) / 1000).expect("small")] += 1;
        }
        let (low, high) = (per_second.iter().min().copied(), per_second.iter().max().copied());
        println!("10,000 sites over a minute: {low:?} to {high:?} slots per second (167 even)");
        // 167 expected per second; a binomial spread stays far within ±30 %.
        assert!(per_second.iter().all(|&n| (117..=217).contains(&n)), "{per_second:?}");
    }

    #[test]
    fn shards_are_disjoint_cover_the_list_and_are_balanced_within_ten_percent() {
        let sites = urls(10_000);
        for count in [2, 3, 5, 8] {
            let shards: Vec<Shard> = (0..count).map(|k| Shard::new(k, count).expect("a shard")).collect();
            let mut sizes = vec![0_usize; count as usize];
            for url in &sites {
                let holding: Vec<&Shard> = shards.iter().filter(|shard| shard.holds(url)).collect();
                assert_eq!(holding.len(), 1, "{url} in {holding:?}");
                sizes[holding[0].index as usize] += 1;
            }
            let even = sites.len() as f64 / f64::from(count);
            println!("10,000 sites in {count} shards: {sizes:?}");
            assert!(sizes.iter().all(|&n| (n as f64 - even).abs() <= 0.1 * even), "{count} shards: {sizes:?}");
        }
    }

    #[test]
    fn a_shards_sites_spread_over_the_interval_like_the_whole_lists() {
        // With the slot and the shard from one number, shard 0 of 2 would hold only even offsets.
        let shard = Shard::new(0, 2).expect("a shard");
        let held: Vec<String> = urls(10_000).into_iter().filter(|url| shard.holds(url)).collect();
        let odd = held.iter().filter(|url| Placement::of(url).offset_ms(2_000) >= 1_000).count();
        let share = odd as f64 / held.len() as f64;
        assert!((0.45..=0.55).contains(&share), "{odd} of {} in the second half", held.len());
    }

    #[test]
    fn shards_are_written_k_of_n_from_zero() {
        assert_eq!(Shard::parse("0/3"), Ok(Shard { index: 0, count: 3 }));
        assert_eq!(Shard::parse(" 2 / 3 ").map(|s| s.to_string()), Ok("2/3".to_owned()));
        assert_eq!(Shard::parse("0/1000").map(|s| s.count), Ok(1000));
        for (bad, fragment) in [
            ("3/3", "counted from 0 to 2"),
            ("1", "is not k/n"),
            ("0/0", "expected 1 to 1000"),
            ("0/1001", "expected 1 to 1000"),
            ("-1/3", "whole numbers"),
            ("a/b", "whole numbers"),
            ("1/3/4", "whole numbers"),
            ("", "is not k/n"),
        ] {
            let err = Shard::parse(bad).expect_err(bad);
            assert!(err.contains(fragment), "{bad:?}: {err}");
        }
    }
}
