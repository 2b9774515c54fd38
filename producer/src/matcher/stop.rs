//! Stopping a backtracking search: fancy-regex has no way to be cancelled, but it asks its input
//! for the text at every step and before each scan it hands to the `regex` crate, so the text
//! itself ends a stopped search. It unwinds out of it with [`resume_unwind`] (which runs no panic
//! hook and prints nothing), and `Matcher::find_unless_stopped` catches that. A stop takes effect
//! within one such scan: at most the text's length, linear (measured: 2 ms after the signal on
//! 256 KiB, release build). This needs `panic = "unwind"`, which every profile of the workspace
//! keeps.

use std::{
    ops::Range,
    panic::resume_unwind,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

/// Tells a backtracking search to stop; cheap to clone. A linear search does not look at it: it
/// ends in time linear in its input anyway.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// Stops the searches that watch this signal, at their next look at the text.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_given(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a stopped search unwinds with.
pub(super) struct Stop;

/// The text of a backtracking search, which unwinds with [`Stop`] out of the search that reads it
/// once its [`StopSignal`] is given.
pub(super) struct Watched<'a> {
    pub text: &'a str,
    pub stop: &'a StopSignal,
}

impl Watched<'_> {
    fn go_on(&self) {
        if self.stop.is_given() {
            resume_unwind(Box::new(Stop));
        }
    }
}

impl fancy_regex::Input for Watched<'_> {
    type Match<'t>
        = Range<usize>
    where
        Self: 't;

    fn len(&self) -> usize {
        self.go_on();
        self.text.len()
    }

    fn as_bytes(&self) -> &[u8] {
        self.go_on();
        self.text.as_bytes()
    }

    fn is_char_boundary(&self, ix: usize) -> bool {
        self.text.is_char_boundary(ix)
    }

    fn is_ascii(&self) -> bool {
        self.text.is_ascii()
    }

    fn prev_codepoint_ix(&self, i: usize) -> usize {
        fancy_regex::Input::prev_codepoint_ix(self.text, i)
    }

    fn make_match(&self, start: usize, end: usize) -> Range<usize> {
        start..end
    }

    fn advance_position(&self, i: usize) -> usize {
        fancy_regex::Input::advance_position(self.text, i)
    }
}
