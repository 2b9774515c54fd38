//! Up, down or unknown: per location as the SQL interface's `site_states` says, per site from its
//! locations.

use std::fmt;

/// What a site or a location is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    // In the order the overview lists them: trouble first.
    Down,
    Unknown,
    Up,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Unknown => "unknown",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

impl State {
    /// The state the SQL interface's `site_states` gives a location (`up`, `down`, `unknown`);
    /// the interface defines them once, for every reader: unknown when the latest report is older
    /// than twice its cadence (ten minutes when it states none) or an inconclusive failure, else
    /// down when it failed, up when it did not. A word it may add later reads unknown.
    pub fn parse(word: &str) -> State {
        match word {
            "up" => State::Up,
            "down" => State::Down,
            _ => State::Unknown,
        }
    }
}

/// The state of a site from its locations': down when any location says down, else up when any
/// says up, else unknown.
pub fn site_state(locations: impl IntoIterator<Item = State>) -> State {
    let mut state = State::Unknown;
    for location in locations {
        match location {
            State::Down => return State::Down,
            State::Up => state = State::Up,
            State::Unknown => {}
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_reads_the_state_the_interface_gives_it() {
        for (word, state) in
            [("up", State::Up), ("down", State::Down), ("unknown", State::Unknown), ("", State::Unknown)]
        {
            assert_eq!(State::parse(word), state, "{word:?}");
            assert!(word.is_empty() || state.word() == word);
        }
    }

    #[test]
    fn a_site_is_down_when_any_location_says_so() {
        use State::{Down, Unknown, Up};
        for (locations, state) in [
            (vec![Up, Up], Up),
            (vec![Up, Down], Down),
            (vec![Unknown, Down], Down),
            (vec![Unknown, Up], Up),
            (vec![Unknown], Unknown),
            (vec![], Unknown),
        ] {
            assert_eq!(site_state(locations.clone()), state, "{locations:?}");
        }
    }

    #[test]
    fn states_sort_trouble_first() {
        let mut states = vec![State::Up, State::Unknown, State::Down];
        states.sort();
        assert_eq!(states, [State::Down, State::Unknown, State::Up]);
    }
}
