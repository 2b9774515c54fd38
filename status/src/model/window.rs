//! The windows a site's figures are given over.

use std::fmt;

/// One of the four windows of the pages, the API and the badges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    Day,
    Week,
    Month,
    Quarter,
}

impl Window {
    pub const ALL: [Window; 4] = [Window::Day, Window::Week, Window::Month, Window::Quarter];

    /// How paths and query strings name it: `24h`, `7d`, `30d`, `90d`.
    pub fn label(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
            Window::Quarter => "90d",
        }
    }

    /// The window named `text`, exactly as [`Window::label`] writes it.
    pub fn parse(text: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|window| window.label() == text)
    }

    /// Its length.
    pub fn duration(self) -> time::Duration {
        match self {
            Window::Day => time::Duration::hours(24),
            Window::Week => time::Duration::days(7),
            Window::Month => time::Duration::days(30),
            Window::Quarter => time::Duration::days(90),
        }
    }

    /// Its position in [`Window::ALL`], for arrays of figures per window.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_named_exactly_and_nothing_else_is_one() {
        for window in Window::ALL {
            assert_eq!(Window::parse(window.label()), Some(window));
            assert_eq!(Window::ALL[window.index()], window);
        }
        for other in ["", "1d", "24H", " 7d", "7d ", "90", "365d", "24h\0"] {
            assert_eq!(Window::parse(other), None, "{other:?}");
        }
        assert_eq!(Window::Month.duration(), time::Duration::days(30));
    }
}
