//! The regular expression searched in each body, with the Python tool's semantics for what is
//! reported, in the cheapest engine that can run it:
//!
//! - **linear** (the `regex` crate) for every pattern it compiles: its time grows with the body
//!   times the compiled pattern, never faster, whatever the page;
//! - **backtracking** (fancy-regex) only for what needs it, look-around and back-references. Its
//!   backtrack limit does not count the scans inside a look-around, so `(?=.*x)y` on a page
//!   without `x` costs time quadratic in the page: such a search is run on bounded input and can
//!   be told to stop ([`StopSignal`]); `probe::search` decides where it runs and for how long.
//!
//! A pattern is refused at start when it is longer than [`MAX_PATTERN_BYTES`] or compiles to more
//! than [`COMPILED_SIZE_LIMIT`], so that neither a huge pattern nor a small one that expands
//! (`\w{1000}`) can take the memory of the process.

mod stop;

use std::{
    ops::Range,
    panic::{catch_unwind, resume_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use regex_syntax::ast::{parse::Parser, visit, Ast, RepetitionKind, Visitor};

pub use self::stop::StopSignal;
use self::stop::{Stop, Watched};

/// The longest pattern accepted, in bytes: far beyond any pattern a health check needs.
pub const MAX_PATTERN_BYTES: usize = 4096;

/// The compiled size a pattern may reach (the `regex` crate's `size_limit`, and fancy-regex's for
/// each part it hands to `regex`). Unicode classes are large: about ten repetitions of `\w` fit.
pub const COMPILED_SIZE_LIMIT: usize = 1 << 20;

/// The lazy DFA's cache of one search (the `regex` crate's `dfa_size_limit`, its default).
pub const SEARCH_CACHE_LIMIT: usize = 2 << 20;

/// Instructions of a backtracking program at most.
const MAX_PROGRAM: usize = 100_000;

/// Backtracking steps one search may take before it is abandoned as a `regex_limit` failure.
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// Body bytes a backtracking pattern searches at most: its first 256 KiB. A search that does not
/// match on a page without look-around costs about one backtrack per position, so this also keeps
/// an ordinary page under [`BACKTRACK_LIMIT`].
pub const BACKTRACKING_INPUT_BYTES: usize = 256 << 10;

/// The longest `regexp_match` reported, in bytes: a pattern like `.*` on a 1 MiB page must not make
/// a report that Kafka refuses as too large. A longer match is cut at a character boundary and ends
/// with `…`.
pub const MAX_MATCH_BYTES: usize = 4096;

/// Which engine runs a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The `regex` crate: time linear in the body.
    Linear,
    /// fancy-regex, for look-around and back-references: bounded input, stoppable.
    Backtracking,
}

/// A compiled pattern; cheap to clone (a clone searches with scratch memory of its own, and shares
/// what was learned of its cost).
#[derive(Debug, Clone)]
pub struct Matcher {
    compiled: Compiled,
    /// A search of it took long: see [`Matcher::mark_costly`].
    costly: Arc<AtomicBool>,
}

#[derive(Debug, Clone)]
enum Compiled {
    Linear(regex::Regex),
    Backtracking(fancy_regex::Regex),
}

/// A pattern refused at start.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("is {len} bytes long; a pattern may have at most {MAX_PATTERN_BYTES}")]
    TooLong { len: usize },
    #[error(
        "compiles to more than {COMPILED_SIZE_LIMIT} bytes; repeat large classes such as \\w fewer times, or \
         use a shorter pattern"
    )]
    TooLarge,
    #[error("does not compile: {0}")]
    Invalid(String),
}

/// A search that ended without an answer.
#[derive(Debug, thiserror::Error)]
pub enum MatchLimit {
    /// The pattern backtracked past [`BACKTRACK_LIMIT`] on this body.
    #[error("pattern search abandoned: {0}")]
    Backtracked(String),
    /// Its [`StopSignal`] was given.
    #[error("pattern search stopped")]
    Stopped,
}

impl Matcher {
    /// Compiles `pattern` for the linear engine when it can, else for the backtracking one (Python
    /// `re` syntax is mostly accepted: look-around, back-references).
    ///
    /// # Errors
    /// The pattern is too long, compiles too large, or does not compile; the message says which.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(PatternError::TooLong { len: pattern.len() });
        }
        if reads_differently(pattern) {
            return Self::backtracking(pattern);
        }
        let linear = regex::RegexBuilder::new(pattern)
            .size_limit(COMPILED_SIZE_LIMIT)
            .dfa_size_limit(SEARCH_CACHE_LIMIT)
            .build();
        match linear {
            Ok(regex) => Ok(Self::of(Compiled::Linear(regex))),
            Err(regex::Error::CompiledTooBig(_)) => Err(PatternError::TooLarge),
            // A syntax the `regex` crate does not have (look-around, back-references, `\K`…).
            Err(_) => Self::backtracking(pattern),
        }
    }

    /// Compiles `pattern` for the backtracking engine, whatever it holds.
    fn backtracking(pattern: &str) -> Result<Self, PatternError> {
        let built = fancy_regex::RegexBuilder::new(pattern)
            .backtrack_limit(BACKTRACK_LIMIT)
            .delegate_size_limit(COMPILED_SIZE_LIMIT)
            .delegate_dfa_size_limit(SEARCH_CACHE_LIMIT)
            .delegate_dfa_skip_cache_capacity_check(false)
            .max_prog_size(MAX_PROGRAM)
            .build();
        match built {
            Ok(regex) => Ok(Self::of(Compiled::Backtracking(regex))),
            Err(fancy_regex::Error::CompileError(err)) if is_too_large(&err) => Err(PatternError::TooLarge),
            Err(err) => Err(PatternError::Invalid(err.to_string().replace('\n', " "))),
        }
    }

    fn of(compiled: Compiled) -> Self {
        Self { compiled, costly: Arc::default() }
    }

    /// Whether a search of this pattern (by any of its clones) was found to take long.
    pub fn is_costly(&self) -> bool {
        self.costly.load(Ordering::Relaxed)
    }

    /// Remembers that a search of this pattern took long, for all its clones; `true` the first
    /// time.
    pub fn mark_costly(&self) -> bool {
        !self.costly.swap(true, Ordering::Relaxed)
    }

    /// The engine that runs this pattern.
    pub fn engine(&self) -> Engine {
        match self.compiled {
            Compiled::Linear(_) => Engine::Linear,
            Compiled::Backtracking(_) => Engine::Backtracking,
        }
    }

    /// What the report's `regexp_match` holds for `text`: `None` without a match; else the capture
    /// groups of the first match joined (a group that did not take part counts as empty), or the whole
    /// match when the pattern has no groups; at most [`MAX_MATCH_BYTES`]. Nothing stops it but the
    /// backtrack limit: see [`Matcher::find_unless_stopped`].
    ///
    /// # Errors
    /// [`MatchLimit`] when the search backtracked too much.
    pub fn find(&self, text: &str) -> Result<Option<String>, MatchLimit> {
        self.find_unless_stopped(text, &StopSignal::default())
    }

    /// As [`Matcher::find`]; a backtracking search also ends soon after `stop` is given.
    ///
    /// # Errors
    /// [`MatchLimit`] when the search backtracked too much or was stopped.
    pub fn find_unless_stopped(&self, text: &str, stop: &StopSignal) -> Result<Option<String>, MatchLimit> {
        let groups: Vec<Option<Range<usize>>> = match &self.compiled {
            Compiled::Linear(regex) => {
                let Some(captures) = regex.captures(text) else { return Ok(None) };
                captures.iter().map(|group| group.map(|m| m.range())).collect()
            }
            Compiled::Backtracking(regex) => {
                let watched = Watched { text, stop };
                // The text stops the search by unwinding out of it (see `Watched`).
                let searched = catch_unwind(AssertUnwindSafe(|| {
                    regex.captures(&watched).map(|c| c.map(|c| (0..c.len()).map(|i| c.get(i)).collect::<Vec<_>>()))
                }));
                match searched {
                    Ok(Ok(Some(groups))) => groups,
                    Ok(Ok(None)) => return Ok(None),
                    Ok(Err(err)) => return Err(MatchLimit::Backtracked(err.to_string())),
                    Err(unwound) if unwound.is::<Stop>() => return Err(MatchLimit::Stopped),
                    Err(unwound) => resume_unwind(unwound),
                }
            }
        };
        Ok(Some(bounded(reported(text, &groups))))
    }
}

/// Whether the `regex` crate would take `pattern` with another meaning than fancy-regex (and
/// Python) give it: two quantifiers in a row (`a++`, `a*+`: possessive there, a repetition of a
/// repetition in `regex`) and a counted repetition with spaces (`x{ 2 }`: literal text there).
/// Such patterns stay with the backtracking engine, which they always ran on.
fn reads_differently(pattern: &str) -> bool {
    struct Finder<'p> {
        pattern: &'p str,
    }
    impl Visitor for Finder<'_> {
        type Output = ();
        /// Found one.
        type Err = ();

        fn finish(self) -> Result<(), ()> {
            Ok(())
        }

        fn visit_pre(&mut self, ast: &Ast) -> Result<(), ()> {
            let Ast::Repetition(repetition) = ast else { return Ok(()) };
            let spaced = matches!(repetition.op.kind, RepetitionKind::Range(_))
                && self.pattern[repetition.op.span.start.offset..repetition.op.span.end.offset]
                    .contains(char::is_whitespace);
            if spaced || matches!(*repetition.ast, Ast::Repetition(_)) {
                return Err(());
            }
            Ok(())
        }
    }
    // A pattern the parser refuses is not the `regex` crate's to run either.
    Parser::new().parse(pattern).is_ok_and(|ast| visit(&ast, Finder { pattern }).is_err())
}

/// fancy-regex's errors for a pattern over the size limits.
fn is_too_large(err: &fancy_regex::CompileError) -> bool {
    use fancy_regex::CompileError;
    match err {
        CompileError::InnerError(inner) => inner.size_limit().is_some(),
        // A look-behind whose reverse DFA needs a cache over the limit; a program over MAX_PROGRAM.
        CompileError::DfaBuildError(..) | CompileError::PatternTooComplex => true,
        _ => false,
    }
}

/// The capture groups of a match joined, or the whole match (`groups[0]`) when there are no others.
fn reported(text: &str, groups: &[Option<Range<usize>>]) -> String {
    match groups {
        [] => String::new(),
        [whole] => whole.clone().map(|span| text[span].to_owned()).unwrap_or_default(),
        [_, rest @ ..] => rest.iter().flatten().map(|span| &text[span.clone()]).collect(),
    }
}

fn bounded(mut text: String) -> String {
    if text.len() > MAX_MATCH_BYTES {
        let mut cut = MAX_MATCH_BYTES - '…'.len_utf8();
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn find(pattern: &str, text: &str) -> Option<String> {
        Matcher::parse(pattern).unwrap().find(text).unwrap()
    }

    /// `pattern` compiled for the backtracking engine even when the linear one could run it.
    fn backtracking(pattern: &str) -> Matcher {
        Matcher::backtracking(pattern).unwrap()
    }

    #[test]
    fn capture_groups_of_the_first_match_are_joined() {
        assert_eq!(find(r"(\d+)-(\d+)", "a 12-34 b 56-78"), Some("1234".into()));
    }

    #[test]
    fn the_whole_match_is_reported_when_the_pattern_has_no_groups() {
        assert_eq!(find(r"\d+", "abc 123 def 456"), Some("123".into()));
    }

    #[test]
    fn a_long_match_is_cut_to_the_limit_at_a_character_boundary() {
        let page = "é".repeat(MAX_MATCH_BYTES);
        let found = find("(é+)", &page).expect("a match");
        assert!(found.len() <= MAX_MATCH_BYTES && found.ends_with('…'), "{} bytes", found.len());
        assert_eq!(find("é{3}", &page).as_deref(), Some("ééé"), "a short match is whole");
    }

    #[test]
    fn no_match_is_none() {
        assert_eq!(find(r"\d+", "no digits here"), None);
    }

    #[test]
    fn a_group_that_did_not_take_part_counts_as_empty() {
        assert_eq!(find(r"(a)|(b)", "b"), Some("b".into()));
    }

    #[test]
    fn python_style_look_around_compiles() {
        assert_eq!(find(r"(?<=id=)\w+", "x id=abc"), Some("abc".into()));
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_refused() {
        let err = Matcher::parse("(unclosed").unwrap_err();
        assert!(matches!(err, PatternError::Invalid(_)), "{err}");
        assert!(err.to_string().starts_with("does not compile: "), "{err}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }

    #[test]
    fn catastrophic_backtracking_gives_up_instead_of_hanging() {
        let matcher = Matcher::parse(r"(a|aa)+\1c").unwrap();
        let text = "a".repeat(40);
        let found = matcher.find(&text);
        assert!(matches!(found, Err(MatchLimit::Backtracked(_))), "{found:?}");
    }

    #[test]
    fn each_pattern_runs_in_the_linear_engine_unless_it_needs_backtracking() {
        // (pattern, engine)
        let cases = [
            (r"version=(\d+)\.(\d+)", Engine::Linear),
            (r"<title>(.*?)</title>", Engine::Linear),
            (r"(?i)^status:\s*(ok|healthy)$", Engine::Linear),
            (r"(?P<major>\d+)\.(?<minor>\d+)", Engine::Linear),
            (r"\bok\b", Engine::Linear),
            (r"(?=.*x)y", Engine::Backtracking),
            (r"(?!.*x).{5}y", Engine::Backtracking),
            (r"(?<=id=)\w+", Engine::Backtracking),
            (r"(?<!no )ok", Engine::Backtracking),
            (r"(\w)\1", Engine::Backtracking),
            (r"a++b", Engine::Backtracking),
            (r"a*+a", Engine::Backtracking),
            (r"a{1,2}+a", Engine::Backtracking),
            (r"x{ 2 }", Engine::Backtracking),
            (r"x{2}", Engine::Linear),
            (r"a+?b", Engine::Linear),
            (r"(?>a|ab)c", Engine::Backtracking),
            (r"id=\K\d+", Engine::Backtracking),
        ];
        for (pattern, engine) in cases {
            assert_eq!(Matcher::parse(pattern).unwrap().engine(), engine, "{pattern}");
        }
    }

    #[test]
    fn patterns_that_read_differently_in_the_two_engines_keep_fancy_regex_s_meaning() {
        // (pattern, text, what fancy-regex and Python report)
        let cases = [(r"a++a", "aaa", None), (r"a?+a", "aaa", Some("aa")), (r"x{ 2 }", "xx x{ 2 }", Some("x{ 2 }"))];
        for (pattern, text, expected) in cases {
            assert_eq!(find(pattern, text).as_deref(), expected, "{pattern} on {text}");
        }
        assert!(Matcher::parse("a**").is_err(), "a repetition of nothing, as before");
    }

    #[test]
    fn both_engines_report_the_same_for_ordinary_patterns() {
        let not_utf8 = String::from_utf8_lossy(b"\xff\xfe version=7.1 \xc3\x28 end").into_owned();
        let texts = [
            "<html><title>Status: OK</title> version=4.2 build 17</html>\n",
            "a 12-34 b 56-78",
            "line one\nline two\r\nstatus: healthy",
            "Ünïcödé wörds ４２ and ascii 42",
            not_utf8.as_str(),
            "",
        ];
        let patterns = [
            r"version=(\d+)\.(\d+)",
            r"version=\d+\.\d+",
            r"(\d+)-(\d+)",
            r"(a)|(b)|(\d)",
            r"<title>(.*?)</title>",
            r"(?i)STATUS:\s*(\w+)",
            r"(?m)^line (\w+)$",
            r"(?s)one.*two",
            r"\w+",
            r"\d+",
            r"\bwords?\b",
            r"(?P<v>\d)\.(?<w>\d)",
            r"\u{FFFD}+",
            r"x*",
            r"$",
            r"healthy$",
            r"\<title\>",
        ];
        for pattern in patterns {
            let linear = Matcher::parse(pattern).unwrap();
            assert_eq!(linear.engine(), Engine::Linear, "{pattern}");
            let fancy = backtracking(pattern);
            for text in texts {
                let (a, b) = (linear.find(text).unwrap(), fancy.find(text).unwrap());
                assert_eq!(a, b, "{pattern:?} on {text:?}");
            }
        }
    }

    #[test]
    fn a_pattern_over_the_size_limit_is_refused_before_it_is_compiled() {
        let err = Matcher::parse(&"a".repeat(MAX_PATTERN_BYTES + 1)).unwrap_err();
        assert!(matches!(err, PatternError::TooLong { len } if len == MAX_PATTERN_BYTES + 1), "{err}");
        assert_eq!(err.to_string(), "is 4097 bytes long; a pattern may have at most 4096");
        assert!(Matcher::parse(&"a".repeat(MAX_PATTERN_BYTES)).is_ok(), "the limit itself is taken");
    }

    #[test]
    fn a_small_pattern_that_compiles_huge_is_refused_in_either_engine() {
        for pattern in [r"\w{1000}", r"(?:\w{50}){50}", r"(?=\w{1000})x", r"(?<=\w{1,200})x", r"(a)\1(?:\w{20}){20}"] {
            let err = Matcher::parse(pattern).expect_err(pattern);
            assert!(matches!(err, PatternError::TooLarge), "{pattern}: {err}");
        }
    }

    #[test]
    fn a_stopped_backtracking_search_ends_soon_and_says_so() {
        // Quadratic: at each of 256 KiB positions the look-ahead scans to the end of the text.
        let matcher = Matcher::parse(r"(?=.*x)y").unwrap();
        let text = "lorem ipsum y ".repeat(BACKTRACKING_INPUT_BYTES / 14);
        let stop = StopSignal::default();
        let stopper = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                stop.stop();
            })
        };
        let started = Instant::now();

        let found = matcher.find_unless_stopped(&text, &stop);

        let took = started.elapsed();
        stopper.join().unwrap();
        assert!(matches!(found, Err(MatchLimit::Stopped)), "{found:?}");
        println!("stopped after {took:?} (signal at 100 ms)");
        // Unstopped, this search takes over a minute (release build).
        assert!(took < Duration::from_secs(10), "took {took:?}");
    }

    #[test]
    fn a_linear_search_ignores_the_stop_signal() {
        let stop = StopSignal::default();
        stop.stop();
        assert_eq!(Matcher::parse(r"\d+").unwrap().find_unless_stopped("a 42", &stop).unwrap().as_deref(), Some("42"));
    }
}
