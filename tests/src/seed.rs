//! Random choices that can be replayed: the seed is printed with the test's output, and
//! `TEST_SEED` sets it.

use rand::{rngs::StdRng, SeedableRng};

/// A random generator for `test`. Its seed comes from `TEST_SEED` when that is set,
/// otherwise from the system, and is printed either way, so that a failure shows how to replay it.
///
/// # Panics
/// When `TEST_SEED` is set but is not a whole number.
pub fn seeded_rng(test: &str) -> StdRng {
    let seed = match std::env::var("TEST_SEED") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("TEST_SEED={text:?} is not a u64")),
        Err(_) => rand::random(),
    };
    eprintln!("{test}: random seed {seed} (replay with TEST_SEED={seed})");
    StdRng::seed_from_u64(seed)
}
