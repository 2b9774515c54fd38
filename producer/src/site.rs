//! A site to probe and how: its URL, checked once at start, and its own settings.

use std::time::Duration;

use http::{HeaderMap, Method};
use url::Url;
use websentry_shared::settings::Whole;

use crate::{
    credentials::{self, Credentials},
    matcher::Matcher,
};

/// An `http` or `https` URL with a host. Userinfo (`user:password@`) is taken out of it: it becomes
/// [`Credentials`] for the site's origin, and the URL is shown with the password as `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteUrl {
    /// Without userinfo: where requests go.
    url: Url,
    /// The URL as reports, record keys, logs and errors show it.
    shown: String,
    credentials: Option<Credentials>,
}

impl SiteUrl {
    /// # Errors
    /// A text saying why `text` is not a URL we can probe; it quotes `text` without its password.
    pub fn parse(text: &str) -> Result<Self, String> {
        // Until it is known to be an http(s) URL, the text is quoted as if anything could be userinfo:
        // `user:password@host` parses as the scheme `user`.
        let quoted = || credentials::redact_text(text);
        let url = Url::parse(text).map_err(|err| format!("'{}' is not a URL: {err}", quoted()))?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(format!("'{}': scheme '{other}' is not http or https", quoted())),
        }
        let credentials = Credentials::from_url(&url);
        let bare = credentials::without_userinfo(&url);
        let shown = credentials.as_ref().map_or_else(|| bare.to_string(), |c| c.show_with(&bare));
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("'{shown}' has no host"));
        }
        Ok(Self { url: bare, shown, credentials })
    }

    /// The URL without userinfo: where the first request goes.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL as configured (normalised by the URL parser), the password replaced by `***`: the
    /// report's `url`, the record key and the `url` of log lines.
    pub fn as_str(&self) -> &str {
        &self.shown
    }

    /// The credentials of the URL's userinfo, for its origin only.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }
}

/// Status codes a site is expected to answer with; another one is reported as an `http` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    /// What a site without `expect_status` accepts: 200-399, the answers of a site that is up. A
    /// 3xx counts only when it is the final answer (no `Location` to follow, a `304`); a redirect
    /// that is followed is judged by where it leads. So a report without an error means "up".
    pub fn default_expected() -> Self {
        Self(vec![(200, 399)])
    }

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

/// Seconds one probe may take (`WEBSENTRY_TIMEOUT`, its default, and the range of a site's
/// `timeout` too): at most an hour, so no deadline computed from it can overflow.
pub const TIMEOUT: Whole<u64> = Whole::seconds(1, 3600, 10);

/// Seconds a site's own `interval` may be: what a report's `interval_s` holds.
pub const SITE_INTERVAL: std::ops::RangeInclusive<u64> = 1..=86_400;

/// One site and how to probe it; unset fields take the producer's defaults.
#[derive(Debug, Clone)]
pub struct Site {
    /// The URL probed and reported (credentials kept apart, never in the report).
    pub url: SiteUrl,
    /// GET unless the sites file says otherwise.
    pub method: Method,
    /// Request headers of the sites file, values from files included.
    pub headers: HeaderMap,
    /// The pattern searched in the body, if any.
    pub matcher: Option<Matcher>,
    /// The statuses that count as success: the sites file's `expect_status`, or
    /// [`StatusSet::default_expected`].
    pub expect_status: StatusSet,
    /// This site's probe timeout; `None`: `WEBSENTRY_TIMEOUT`.
    pub timeout: Option<Duration>,
    /// The period this site is probed on: its own from the sites file, else the producer's
    /// (`WEBSENTRY_INTERVAL` for a daemon, `WEBSENTRY_CADENCE` for a one-off run), once the
    /// settings are checked. `None`: a one-off run with no cadence, whose time is unknown.
    pub interval: Option<Duration>,
    /// The display name and group of the sites file, written into each report.
    pub name: Option<String>,
    pub group: Option<String>,
}

impl Site {
    /// A site probed with a GET and the producer's defaults: 200-399 expected.
    pub fn simple(url: SiteUrl, matcher: Option<Matcher>) -> Self {
        Self {
            url,
            method: Method::GET,
            headers: HeaderMap::new(),
            matcher,
            expect_status: StatusSet::default_expected(),
            timeout: None,
            interval: None,
            name: None,
            group: None,
        }
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
    fn userinfo_is_taken_out_of_the_url_and_shown_without_the_password() {
        let site = SiteUrl::parse("http://user:hunter2@example.com:8080/status").unwrap();
        assert_eq!(site.url().as_str(), "http://example.com:8080/status", "requests go to the bare URL");
        assert_eq!(site.as_str(), "http://user:***@example.com:8080/status");
        assert!(site.credentials().is_some());
        assert!(!format!("{site:?}").contains("hunter2"), "{site:?}");
        assert!(SiteUrl::parse("https://example.com/").unwrap().credentials().is_none());
    }

    #[test]
    fn an_error_about_a_url_with_a_password_does_not_quote_the_password() {
        for input in [
            "ftp://user:hunter2@example.com/",
            "http://user:hunter2@exa mple.com/",
            "user:hunter2@example.com",
            "http://user:hunter2@/",
            "http://user:hun,ter2@example.com/",
        ] {
            let err = parse_list(input).expect_err(input);
            assert!(
                !err.contains("hunter2") && !err.contains("hun") && !err.contains("ter2"),
                "input {input:?}: {err}"
            );
        }
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

    #[test]
    fn the_default_set_is_200_to_399() {
        let set = StatusSet::default_expected();
        for (code, expected) in [(199, false), (200, true), (301, true), (304, true), (399, true), (400, false)] {
            assert_eq!(set.contains(code), expected, "code {code}");
        }
        assert_eq!(set.to_string(), "200-399");
        assert_eq!(set, StatusSet::parse("200-399").unwrap());
    }

    #[test]
    fn a_site_given_by_url_alone_expects_200_to_399() {
        let site = Site::simple(SiteUrl::parse("https://example.com/").unwrap(), None);
        assert_eq!(site.expect_status, StatusSet::default_expected());
    }
}
