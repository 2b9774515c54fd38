//! The regular expression searched in each body, with the Python tool's semantics for what is
//! reported, and a backtrack limit so that a hostile page or pattern costs bounded time.

use fancy_regex::{Regex, RegexBuilder};

/// Backtracking steps one search may take before it is abandoned as a `regex_limit` failure.
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// The longest `regexp_match` reported, in bytes: a pattern like `.*` on a 1 MiB page must not make
/// a report that Kafka refuses as too large. A longer match is cut at a character boundary and ends
/// with `…`.
pub const MAX_MATCH_BYTES: usize = 4096;

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Matcher {
    regex: Regex,
}

/// The search gave up: the pattern backtracked past the limit on this body.
#[derive(Debug, thiserror::Error)]
#[error("pattern search abandoned: {0}")]
pub struct MatchLimit(String);

impl Matcher {
    /// Compiles `pattern` (Python `re` syntax is mostly accepted: look-around, back-references).
    ///
    /// # Errors
    /// The pattern does not compile; the message says where.
    pub fn parse(pattern: &str) -> Result<Self, fancy_regex::Error> {
        let regex = RegexBuilder::new(pattern).backtrack_limit(BACKTRACK_LIMIT).build()?;
        Ok(Self { regex })
    }

    /// What the report's `regexp_match` holds for `text`: `None` without a match; else the capture
    /// groups of the first match joined (a group that did not take part counts as empty), or the whole
    /// match when the pattern has no groups; at most [`MAX_MATCH_BYTES`].
    ///
    /// # Errors
    /// [`MatchLimit`] when the search backtracked too much.
    pub fn find(&self, text: &str) -> Result<Option<String>, MatchLimit> {
        let captures = self.regex.captures(text).map_err(|err| MatchLimit(err.to_string()))?;
        let Some(captures) = captures else { return Ok(None) };
        if captures.len() == 1 {
            return Ok(captures.get(0).map(|m| bounded(m.as_str().to_owned())));
        }
        let joined = (1..captures.len()).filter_map(|i| captures.get(i)).map(|m| m.as_str()).collect();
        Ok(Some(bounded(joined)))
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
    use super::*;

    fn find(pattern: &str, text: &str) -> Option<String> {
        Matcher::parse(pattern).unwrap().find(text).unwrap()
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
        assert!(Matcher::parse("(unclosed").is_err());
    }

    #[test]
    fn catastrophic_backtracking_gives_up_instead_of_hanging() {
        let matcher = Matcher::parse(r"(a|aa)+\1c").unwrap();
        let text = "a".repeat(40);
        assert!(matcher.find(&text).is_err(), "the search should have hit the backtrack limit");
    }
}
