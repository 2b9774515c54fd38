//! Benchmark figures as lines a script can read: `<figure>: <value> (target <target>)`, one per
//! figure, beside the prose lines that explain them. The figure's name holds no colon, so the
//! first `": "` of such a line ends it.

/// Prints `<name>: <value> (target <target>)`; `target` is `-` where a figure has none (a
/// baseline measured in the same run, printed for the ratio beside it).
pub fn figure(name: &str, value: impl std::fmt::Display, target: &str) {
    debug_assert!(!name.contains(':'), "a figure's name holds no colon: {name}");
    println!("{name}: {value} (target {target})");
}

/// The middle of `values` (the mean of the middle two for an even count): what a benchmark
/// reports of several runs, so that one run slowed by the machine does not make the figure.
///
/// # Panics
/// `values` is empty.
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "the median of no values");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_ignores_one_slow_run_and_averages_the_middle_two_of_an_even_count() {
        assert_eq!(median(&[9.94, 18.47, 9.77]), 9.94);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
    }
}
