//! `WEBSENTRY_SITES_FILE`: sites with settings of their own, in TOML (a ConfigMap in Kubernetes).
//!
//! ```toml
//! [[site]]
//! url = "https://example.com/"
//! regexp = 'version=(\d+)\.(\d+)'   # overrides WEBSENTRY_REGEXP; "" searches nothing
//! expect_status = ["200-299", 301]  # another status is reported as an `http` error
//! timeout = 5                       # seconds, overrides WEBSENTRY_TIMEOUT
//! method = "HEAD"                   # default GET
//! headers = { "Accept-Language" = "en" }
//! ```

use std::{collections::BTreeMap, ops::Range, path::Path, time::Duration};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use toml::Spanned;

use crate::{
    matcher::Matcher,
    site::{Site, SiteUrl, StatusSet},
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    site: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    url: Spanned<String>,
    regexp: Option<Spanned<String>>,
    expect_status: Option<Spanned<Statuses>>,
    timeout: Option<Spanned<u64>>,
    method: Option<Spanned<String>>,
    headers: Option<Spanned<BTreeMap<String, String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Statuses {
    One(Status),
    Many(Vec<Status>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Status {
    Code(u16),
    Text(String),
}

/// Reads and checks the sites file. `default_matcher` is `WEBSENTRY_REGEXP`, for sites without a
/// `regexp` of their own.
///
/// # Errors
/// A text naming the file, the line and the problem.
pub fn load(path: &Path, default_matcher: Option<&Matcher>) -> Result<Vec<Site>, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    parse(&text, default_matcher).map_err(|err| format!("{}{err}", path.display()))
}

/// As [`load`], from text; errors start with ` line N: `.
fn parse(text: &str, default_matcher: Option<&Matcher>) -> Result<Vec<Site>, String> {
    let at = |span: Range<usize>, problem: String| format!(" line {}: {problem}", line_of(text, span.start));
    let file: File = toml::from_str(text).map_err(|err| match err.span() {
        Some(span) => at(span, err.message().to_owned()),
        None => format!(": {}", err.message()),
    })?;
    let mut sites = Vec::with_capacity(file.site.len());
    for entry in file.site {
        let url = SiteUrl::parse(entry.url.get_ref()).map_err(|e| at(entry.url.span(), e))?;
        let matcher = match &entry.regexp {
            Some(pattern) if pattern.get_ref().is_empty() => None,
            Some(pattern) => Some(
                Matcher::parse(pattern.get_ref())
                    .map_err(|e| at(pattern.span(), format!("regexp does not compile: {e}")))?,
            ),
            None => default_matcher.cloned(),
        };
        let mut site = Site::simple(url, matcher);
        if let Some(statuses) = &entry.expect_status {
            let text = match statuses.get_ref() {
                Statuses::One(status) => status.to_text(),
                Statuses::Many(list) => list.iter().map(Status::to_text).collect::<Vec<_>>().join(","),
            };
            site.expect_status =
                Some(StatusSet::parse(&text).map_err(|e| at(statuses.span(), format!("expect_status: {e}")))?);
        }
        if let Some(timeout) = &entry.timeout {
            if *timeout.get_ref() == 0 {
                return Err(at(timeout.span(), "timeout must be at least 1 second".into()));
            }
            site.timeout = Some(Duration::from_secs(*timeout.get_ref()));
        }
        if let Some(method) = &entry.method {
            site.method = Method::from_bytes(method.get_ref().to_ascii_uppercase().as_bytes())
                .map_err(|_| at(method.span(), format!("'{}' is not an HTTP method", method.get_ref())))?;
        }
        if let Some(headers) = &entry.headers {
            site.headers = header_map(headers.get_ref()).map_err(|e| at(headers.span(), e))?;
        }
        sites.push(site);
    }
    Ok(sites)
}

impl Status {
    fn to_text(&self) -> String {
        match self {
            Status::Code(code) => code.to_string(),
            Status::Text(text) => text.clone(),
        }
    }
}

fn header_map(headers: &BTreeMap<String, String>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("'{name}' is not a header name"))?;
        // The value may be a credential: never quote it.
        let value = HeaderValue::from_str(value).map_err(|_| format!("the value of header '{name}' is not valid"))?;
        map.insert(name, value);
    }
    Ok(map)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_of_a_site_is_read() {
        let sites = parse(
            r#"
[[site]]
url = "https://example.com/"
regexp = 'v=(\d+)'
expect_status = ["200-299", 301]
timeout = 5
method = "head"
headers = { "Accept-Language" = "en" }

[[site]]
url = "http://plain.example/"
"#,
            Some(&Matcher::parse("default").unwrap()),
        )
        .unwrap();
        assert_eq!(sites.len(), 2);
        let first = &sites[0];
        assert_eq!(first.url.as_str(), "https://example.com/");
        assert_eq!(first.matcher.as_ref().unwrap().find("v=42").unwrap().as_deref(), Some("42"));
        assert!(first.expect_status.as_ref().unwrap().contains(301));
        assert!(!first.expect_status.as_ref().unwrap().contains(302));
        assert_eq!(first.timeout, Some(Duration::from_secs(5)));
        assert_eq!(first.method, Method::HEAD);
        assert_eq!(first.headers["accept-language"], "en");
        let second = &sites[1];
        assert_eq!(second.matcher.as_ref().unwrap().find("the default").unwrap().as_deref(), Some("default"));
        assert_eq!(second.method, Method::GET);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        for (text, line, fragment) in [
            ("[[site]]\nurl = \"https://ok/\"\n\n[[site]]\nurl = \"nope\"\n", 5, "is not a URL"),
            ("[[site]]\nurl = \"https://ok/\"\nregexp = \"(\"\n", 3, "regexp does not compile"),
            ("[[site]]\nurl = \"https://ok/\"\nexpect_status = \"2xx\"\n", 3, "expect_status"),
            ("[[site]]\nurl = \"https://ok/\"\ntimeout = 0\n", 3, "at least 1 second"),
            ("[[site]]\nurl = \"https://ok/\"\nmethod = \"GE T\"\n", 3, "not an HTTP method"),
            ("[[site]]\nurl = \"https://ok/\"\ncolour = \"red\"\n", 3, "unknown field"),
            ("[[site]]\nurl = \"https://ok/\n", 2, ""),
            ("[[site]]\nregexp = \"x\"\n", 1, "missing field `url`"),
        ] {
            let err = parse(text, None).expect_err(text);
            assert!(err.starts_with(&format!(" line {line}: ")), "{text:?}: {err}");
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_bad_header_value_is_refused_without_quoting_it() {
        let err = parse("[[site]]\nurl = \"https://ok/\"\nheaders = { Authorization = \"Bearer s3cret\\n\" }\n", None)
            .unwrap_err();
        assert!(err.contains("authorization"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
