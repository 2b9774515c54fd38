//! Benchmark figures as lines a script can read: `<figure>: <value> (target <target>)`, one per
//! figure, beside the prose lines that explain them. The figure's name holds no colon, so the
//! first `": "` of such a line ends it.

/// Prints `<name>: <value> (target <target>)`; `target` is `-` where a figure has none (a
/// baseline measured in the same run, printed for the ratio beside it).
pub fn figure(name: &str, value: impl std::fmt::Display, target: &str) {
    debug_assert!(!name.contains(':'), "a figure's name holds no colon: {name}");
    println!("{name}: {value} (target {target})");
}
