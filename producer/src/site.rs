//! A site to probe and how: its URL, checked once at start, and its own settings.

use std::time::Duration;

use http::{HeaderMap, Method};
use url::Url;

use crate::matcher::Matcher;

/// An `http` or `https` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteUrl(Url);

impl SiteUrl {
    /// # Errors
    /// A text saying why `text` is not a URL we can probe.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|err| format!("'{text}' is not a URL: {err}"))?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(format!("'{text}': scheme '{other}' is not http or https")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("'{text}' has no host"));
        }
        Ok(Self(url))
    }

    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The URL as configured (normalised by the URL parser): the report's `url` and the record key.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Status codes a site is expected to answer with; another one is reported as an `http` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    /// Parses `200`, `200-299` or a list of those separated by commas.
    ///
    /// # Errors
    /// A part that is not a status code or a range of them.
    pub fn parse(text: &str) -> Result<Self, String> {
        let ranges = text.split(',').map(str::trim).map(parse_range).collect::<Result<Vec<_>, _>>()?;
        if ranges.is_empty() {
            return Err("no status code given".into());
        }
        Ok(Self(ranges))
    }

    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|&(low, high)| (low..=high).contains(&code))
    }
}

impl std::fmt::Display for StatusSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|&(low, high)| if low == high { low.to_string() } else { format!("{low}-{high}") })
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn parse_range(part: &str) -> Result<(u16, u16), String> {
    let code = |text: &str| match text.trim().parse::<u16>() {
        Ok(code) if (100..=599).contains(&code) => Ok(code),
        _ => Err(format!("'{part}' is not a status code (100-599) or a range of them")),
    };
    match part.split_once('-') {
        Some((low, high)) => {
            let (low, high) = (code(low)?, code(high)?);
            if low > high {
                return Err(format!("'{part}': the range is reversed"));
            }
            Ok((low, high))
        }
        None => code(part).map(|c| (c, c)),
    }
}

/// One site and how to probe it; unset fields take the producer's defaults.
#[derive(Debug, Clone)]
pub struct Site {
    pub url: SiteUrl,
    pub method: Method,
    pub headers: HeaderMap,
    pub matcher: Option<Matcher>,
    pub expect_status: Option<StatusSet>,
    pub timeout: Option<Duration>,
}

impl Site {
    /// A site probed with a GET and the producer's defaults.
    pub fn simple(url: SiteUrl, matcher: Option<Matcher>) -> Self {
        Self { url, method: Method::GET, headers: HeaderMap::new(), matcher, expect_status: None, timeout: None }
    }
}

/// Splits the simple form of `WEBSENTRY_SITES`: URLs separated by commas, spaces or newlines.
///
/// # Errors
/// The first entry that is not a URL we can probe.
pub fn parse_list(text: &str) -> Result<Vec<SiteUrl>, String> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()).map(SiteUrl::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_spaces_and_newlines() {
        let sites = parse_list("https://a.example/, http://b.example:8080/x\nhttps://c.example").unwrap();
        let urls: Vec<_> = sites.iter().map(SiteUrl::as_str).collect();
        assert_eq!(urls, ["https://a.example/", "http://b.example:8080/x", "https://c.example/"]);
    }

    #[test]
    fn entries_that_cannot_be_probed_are_refused_by_name() {
        for (input, fragment) in
            [("example.com", "is not a URL"), ("ftp://example.com/", "scheme 'ftp'"), ("https://", "is not a URL")]
        {
            let err = parse_list(input).expect_err(input);
            assert!(err.contains(fragment), "input {input:?}: {err}");
        }
        assert!(parse_list(" , ").unwrap().is_empty());
    }

    #[test]
    fn status_sets_take_codes_and_ranges() {
        let set = StatusSet::parse("200-299, 301,404").unwrap();
        for (code, expected) in
            [(200, true), (250, true), (299, true), (300, false), (301, true), (404, true), (500, false)]
        {
            assert_eq!(set.contains(code), expected, "code {code}");
        }
        assert_eq!(set.to_string(), "200-299,301,404");
        for bad in ["", "2xx", "300-200", "99", "600", "200-"] {
            assert!(StatusSet::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
