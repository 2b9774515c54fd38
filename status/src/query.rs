//! Query strings, hostile until checked. A route names the parameters it knows; any other is
//! ignored (as a link with a tracking parameter would carry one). Refused with 400 and one line
//! saying why: a query string over [`MAX_BYTES`], a percent-encoding that is malformed or not
//! UTF-8, a control character, a known parameter given twice, a value a route does not take.

use std::collections::HashMap;

use crate::{
    model::{id, Window},
    reply::Failure,
};

/// Bytes of a query string at most.
pub const MAX_BYTES: usize = 1024;

/// The known parameters of one query string, decoded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Params(HashMap<&'static str, String>);

impl Params {
    /// Checks the raw query string (as sent, percent-encoded) and keeps the parameters of `known`.
    ///
    /// # Errors
    /// [`Failure::BadRequest`], as the module says.
    pub fn parse(raw: Option<&str>, known: &[&'static str]) -> Result<Params, Failure> {
        let raw = raw.unwrap_or_default();
        if raw.len() > MAX_BYTES {
            return Err(bad(format!("The query string is longer than {MAX_BYTES} bytes.")));
        }
        let mut params = HashMap::new();
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)?;
            let value = decode(value)?;
            let Some(known) = known.iter().find(|k| **k == name) else { continue };
            if params.insert(*known, value).is_some() {
                return Err(bad(format!("The parameter {known} is given twice.")));
            }
        }
        Ok(Params(params))
    }

    /// The value of `name`, trimmed; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|value| value.trim()).filter(|value| !value.is_empty())
    }

    /// The window of `window=`, 24 hours when absent.
    ///
    /// # Errors
    /// Another value than the four windows.
    pub fn window(&self) -> Result<Window, Failure> {
        match self.get("window") {
            None => Ok(Window::Day),
            Some(text) => window(text),
        }
    }

    /// The search of `q=`, lowercase (empty: none).
    pub fn search(&self) -> String {
        self.get("q").unwrap_or_default().to_lowercase()
    }
}

/// The window named `text`.
///
/// # Errors
/// [`Failure::BadRequest`] naming the four windows.
pub fn window(text: &str) -> Result<Window, Failure> {
    Window::parse(text).ok_or_else(|| bad("The window must be one of 24h, 7d, 30d and 90d.".into()))
}

/// The site id of a path segment, when it has an id's shape (else no site: 404).
///
/// # Errors
/// [`Failure::NotFound`].
pub fn site_id(segment: &str) -> Result<&str, Failure> {
    if id::is_well_formed(segment) {
        Ok(segment)
    } else {
        Err(Failure::NotFound)
    }
}

fn bad(reason: String) -> Failure {
    Failure::BadRequest(reason)
}

/// `+` as a space, then `%XX` escapes, into UTF-8 without control characters.
fn decode(text: &str) -> Result<String, Failure> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut input = text.bytes();
    while let Some(byte) = input.next() {
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = [input.next(), input.next()];
                let digit = |b: Option<u8>| b.and_then(|b| (b as char).to_digit(16));
                match (digit(hex[0]), digit(hex[1])) {
                    (Some(high), Some(low)) => bytes.push((high * 16 + low) as u8),
                    _ => return Err(bad("The query string has a malformed percent-encoding.".into())),
                }
            }
            other => bytes.push(other),
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| bad("The query string is not UTF-8.".into()))?;
    if text.chars().any(char::is_control) {
        return Err(bad("The query string holds a control character.".into()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [&str; 3] = ["window", "group", "q"];

    #[test]
    fn known_parameters_are_decoded_and_others_ignored() {
        let params = Params::parse(Some("q=Shop+%C3%A9t%C3%A9&group=Public&utm_source=x&window=7d&flag"), &KNOWN)
            .expect("a good query");

        assert_eq!(params.search(), "shop été");
        assert_eq!(params.get("group"), Some("Public"));
        assert_eq!(params.window(), Ok(Window::Week));
        assert_eq!(params.get("utm_source"), None);
        assert_eq!(Params::parse(None, &KNOWN).expect("none").window(), Ok(Window::Day));
        assert_eq!(Params::parse(Some("group=&q="), &KNOWN).expect("empty").get("group"), None);
    }

    #[test]
    fn hostile_query_strings_are_refused_with_one_line_saying_why() {
        let long = format!("q={}", "a".repeat(MAX_BYTES));
        for (raw, why) in [
            (long.as_str(), "longer than 1024 bytes"),
            ("q=%ff%fe", "not UTF-8"),
            ("x=%ff", "not UTF-8"),
            ("q=%zz", "malformed percent-encoding"),
            ("q=%4", "malformed percent-encoding"),
            ("q=a%00b", "control character"),
            ("q=a%0Ab", "control character"),
            ("window=7d&window=30d", "window is given twice"),
        ] {
            let refused = Params::parse(Some(raw), &KNOWN);
            match refused {
                Err(Failure::BadRequest(reason)) => assert!(reason.contains(why), "{raw}: {reason}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_window_is_one_of_the_four_and_nothing_else() {
        for raw in ["window=1y", "window=24H", "window=..%2F", "window=7"] {
            let params = Params::parse(Some(raw), &KNOWN).expect(raw);
            assert!(matches!(params.window(), Err(Failure::BadRequest(_))), "{raw}");
        }
    }

    #[test]
    fn only_an_ids_shape_is_looked_up() {
        assert_eq!(site_id("0f115db062b7"), Ok("0f115db062b7"));
        for segment in ["..", "0F115DB062B7", "0f115db062b7.json", "%2e%2e"] {
            assert_eq!(site_id(segment), Err(Failure::NotFound), "{segment}");
        }
    }
}
