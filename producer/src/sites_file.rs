//! `WEBSENTRY_SITES_FILE`: sites with settings of their own, in TOML (a ConfigMap in Kubernetes).
//!
//! ```toml
//! [[site]]
//! url = "https://example.com/"
//! regexp = 'version=(\d+)\.(\d+)'   # overrides WEBSENTRY_REGEXP; "" searches nothing
//! expect_status = ["200-299", 301]  # default 200-399; another status is reported as an `http` error
//! timeout = 5                       # seconds (1 to 3600), overrides WEBSENTRY_TIMEOUT
//! interval = "5m"                   # "30s", "5m", "1h" or seconds (1 s to 1 day); see below
//! method = "HEAD"                   # default GET
//! headers = { "Accept-Language" = "en", Authorization = { file = "/etc/websentry/secrets/api-token" } }
//! ```
//!
//! A site's `interval` is the period it is probed on, overriding `WEBSENTRY_INTERVAL` (a daemon)
//! or `WEBSENTRY_CADENCE` (a one-off run, which must then be a whole multiple of it): whole
//! seconds, written as a number or as humantime text (`"90s"`, `"5m"`, `"1h 30m"`, `"1d"`).
//!
//! A header value is a string, or `{ file = "PATH" }`: read once at start from that file (a mounted
//! Secret, so that credentials need not sit in a ConfigMap), without its trailing newline. A relative
//! path is taken from the sites file's folder. No header value is ever quoted in an error.
//!
//! Each URL may appear once: reports are keyed by URL, so two entries would give reports that
//! cannot be told apart. Headers that frame the request (`Host`, `Content-Length`, …) are the
//! prober's to set and are refused.

use std::{
    collections::{BTreeMap, HashMap},
    io::Read,
    ops::Range,
    path::Path,
    time::Duration,
};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use toml::Spanned;
use websentry_shared::{report::MAX_LABEL_BYTES, settings::regular_file};

use crate::{
    matcher::Matcher,
    site::{Site, SiteUrl, StatusSet, SITE_INTERVAL, TIMEOUT},
};

/// Headers that say how the request is framed or where it goes. The prober sets them from the URL
/// and the connection; a value given here would contradict them (a smuggled request, a probe of
/// another virtual host than the URL says), so they are refused.
const FRAMING_HEADERS: [&str; 8] =
    ["host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "keep-alive", "proxy-connection"];

/// Bytes a header value file may hold at most: far more than any token, and a bound when the path
/// names something endless such as `/dev/zero`.
const HEADER_FILE_LIMIT: u64 = 16 * 1024;

/// A site of the file and the line of its `url`, for messages.
#[derive(Debug)]
pub struct FileSite {
    pub line: usize,
    pub site: Site,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    site: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    url: Spanned<String>,
    regexp: Option<Spanned<String>>,
    expect_status: Option<Spanned<Statuses>>,
    timeout: Option<Spanned<u64>>,
    interval: Option<Spanned<Interval>>,
    method: Option<Spanned<String>>,
    headers: Option<BTreeMap<String, Spanned<HeaderSource>>>,
    name: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Statuses {
    One(Status),
    Many(Vec<Status>),
}

/// A site's interval as written: seconds, or text such as `"5m"`.
#[derive(Deserialize)]
#[serde(untagged, expecting = "an interval: whole seconds, or text such as \"30s\", \"5m\" or \"1h\"")]
enum Interval {
    Seconds(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Status {
    Code(u16),
    Text(String),
}

/// Where a header's value comes from. Not `Debug`: the text may be a credential.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a header value: a string, or { file = \"/path/to/file\" }")]
enum HeaderSource {
    Text(String),
    File(ValueFile),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueFile {
    file: String,
}

/// Reads and checks the sites file, and every file a header value comes from. `default_matcher` is
/// `WEBSENTRY_REGEXP`, for sites without a `regexp` of their own.
///
/// # Errors
/// A text naming the file, the line and the problem; never a header's value.
pub fn load(path: &Path, default_matcher: Option<&Matcher>) -> Result<Vec<FileSite>, String> {
    regular_file(path)?;
    let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let folder = path.parent().unwrap_or(Path::new(""));
    parse(&text, default_matcher, folder).map_err(|err| format!("{}{err}", path.display()))
}

/// As [`load`], from text, with header value files relative to `folder`; errors start with
/// ` line N: `.
fn parse(text: &str, default_matcher: Option<&Matcher>, folder: &Path) -> Result<Vec<FileSite>, String> {
    let lines_of = LineNumbers::of(text);
    let at = |span: Range<usize>, problem: String| format!(" line {}: {problem}", lines_of.at(span.start));
    let file: File = toml::from_str(text).map_err(|err| match err.span() {
        Some(span) => at(span, err.message().to_owned()),
        None => format!(": {}", err.message()),
    })?;
    let mut sites: Vec<FileSite> = Vec::with_capacity(file.site.len());
    let mut lines: HashMap<String, usize> = HashMap::new();
    // Each pattern compiled once, however many sites share it.
    let mut compiled: HashMap<String, Matcher> = HashMap::new();
    for entry in file.site {
        let line = lines_of.at(entry.url.span().start);
        let url = SiteUrl::parse(entry.url.get_ref()).map_err(|e| at(entry.url.span(), e))?;
        if let Some(first) = lines.insert(url.as_str().to_owned(), line) {
            return Err(at(
                entry.url.span(),
                format!("'{}' is already listed at line {first}; each URL may appear once", url.as_str()),
            ));
        }
        let matcher = match &entry.regexp {
            Some(pattern) if pattern.get_ref().is_empty() => None,
            Some(pattern) => Some(match compiled.get(pattern.get_ref()) {
                Some(matcher) => matcher.clone(),
                None => {
                    let matcher =
                        Matcher::parse(pattern.get_ref()).map_err(|e| at(pattern.span(), format!("regexp {e}")))?;
                    compiled.entry(pattern.get_ref().clone()).or_insert(matcher).clone()
                }
            }),
            None => default_matcher.cloned(),
        };
        let mut site = Site::simple(url, matcher);
        if let Some(statuses) = &entry.expect_status {
            let text = match statuses.get_ref() {
                Statuses::One(status) => status.to_text(),
                Statuses::Many(list) => list.iter().map(Status::to_text).collect::<Vec<_>>().join(","),
            };
            site.expect_status =
                StatusSet::parse(&text).map_err(|e| at(statuses.span(), format!("expect_status: {e}")))?;
        }
        if let Some(timeout) = &entry.timeout {
            if !TIMEOUT.range().contains(timeout.get_ref()) {
                let (low, high) = (TIMEOUT.min, TIMEOUT.max);
                return Err(at(timeout.span(), format!("timeout must be from {low} to {high} seconds")));
            }
            site.timeout = Some(Duration::from_secs(*timeout.get_ref()));
        }
        if let Some(interval) = &entry.interval {
            site.interval = Some(interval.get_ref().to_duration().map_err(|e| at(interval.span(), e))?);
        }
        if let Some(method) = &entry.method {
            site.method = Method::from_bytes(method.get_ref().to_ascii_uppercase().as_bytes())
                .map_err(|_| at(method.span(), format!("'{}' is not an HTTP method", method.get_ref())))?;
        }
        if let Some(headers) = &entry.headers {
            site.headers = header_map(headers, folder, &at)?;
        }
        site.name = entry.name.as_ref().map(|name| label("name", name, &at)).transpose()?;
        site.group = entry.group.as_ref().map(|group| label("group", group, &at)).transpose()?;
        sites.push(FileSite { line, site });
    }
    Ok(sites)
}

/// A site's `name` or `group`: shown on status pages, so one line of printable text, not empty, at
/// most [`MAX_LABEL_BYTES`] bytes.
fn label(key: &str, value: &Spanned<String>, at: &impl Fn(Range<usize>, String) -> String) -> Result<String, String> {
    let text = value.get_ref().trim();
    if text.is_empty() {
        return Err(at(value.span(), format!("{key} is empty")));
    }
    if text.len() > MAX_LABEL_BYTES {
        return Err(at(value.span(), format!("{key} is longer than {MAX_LABEL_BYTES} bytes")));
    }
    if text.chars().any(char::is_control) {
        return Err(at(value.span(), format!("{key} holds a control character")));
    }
    Ok(text.to_owned())
}

impl Interval {
    /// # Errors
    /// Not a duration, not whole seconds, or outside [`SITE_INTERVAL`].
    fn to_duration(&self) -> Result<Duration, String> {
        let (low, high) = (SITE_INTERVAL.start(), SITE_INTERVAL.end());
        let out_of_range = |shown: &str| format!("interval {shown} is outside {low} s to {high} s (a day)");
        let seconds = match self {
            Interval::Seconds(seconds) => u64::try_from(*seconds).map_err(|_| out_of_range(&seconds.to_string()))?,
            Interval::Text(text) => {
                let duration = humantime::parse_duration(text.trim()).map_err(|err| {
                    format!("interval '{text}' is not a duration ({err}); write \"30s\", \"5m\", \"1h\" or seconds")
                })?;
                if duration.subsec_nanos() != 0 {
                    return Err(format!("interval '{text}' is not a whole number of seconds"));
                }
                duration.as_secs()
            }
        };
        if !SITE_INTERVAL.contains(&seconds) {
            return Err(out_of_range(&format!("{seconds} s")));
        }
        Ok(Duration::from_secs(seconds))
    }
}

impl Status {
    fn to_text(&self) -> String {
        match self {
            Status::Code(code) => code.to_string(),
            Status::Text(text) => text.clone(),
        }
    }
}

/// The headers of a site, their values read and marked sensitive (kept out of `Debug` output and of
/// HTTP/2 header compression tables).
fn header_map(
    headers: &BTreeMap<String, Spanned<HeaderSource>>,
    folder: &Path,
    at: &impl Fn(Range<usize>, String) -> String,
) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, source) in headers {
        let fail = |problem: String| at(source.span(), problem);
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| fail(format!("'{name}' is not a header name")))?;
        if FRAMING_HEADERS.contains(&name.as_str()) {
            return Err(fail(format!("header '{name}' is set by the prober from the URL; it cannot be given")));
        }
        if map.contains_key(&name) {
            return Err(fail(format!("header '{name}' is given twice")));
        }
        let mut value = match source.get_ref() {
            // The value may be a credential: never quote it.
            HeaderSource::Text(text) => HeaderValue::from_str(text)
                .map_err(|_| fail(format!("the value of header '{name}' is not valid (not shown)")))?,
            HeaderSource::File(ValueFile { file }) if file.trim().is_empty() => {
                return Err(fail(format!("header '{name}': {{ file = \"\" }} names no file")));
            }
            HeaderSource::File(ValueFile { file }) => {
                read_value(&folder.join(file)).map_err(|problem| fail(format!("header '{name}': {problem}")))?
            }
        };
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// A header value from a file, without its trailing newline.
///
/// # Errors
/// The file is unreadable, not a regular file, empty, too large, or does not hold a valid header
/// value; the text names the path, never the content.
fn read_value(path: &Path) -> Result<HeaderValue, String> {
    let shown = path.display();
    // Before opening it: opening a FIFO waits for a writer.
    regular_file(path)?;
    let file = std::fs::File::open(path).map_err(|err| format!("cannot read {shown}: {err}"))?;
    let mut bytes = Vec::new();
    file.take(HEADER_FILE_LIMIT + 1).read_to_end(&mut bytes).map_err(|err| format!("cannot read {shown}: {err}"))?;
    if bytes.len() as u64 > HEADER_FILE_LIMIT {
        return Err(format!("{shown} is larger than {HEADER_FILE_LIMIT} bytes"));
    }
    while bytes.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(format!("{shown} is empty"));
    }
    HeaderValue::from_bytes(&bytes).map_err(|_| format!("{shown} does not hold a valid header value (not shown)"))
}

/// The line numbers (from 1) of byte offsets in a text. Found by a binary search in the offsets of
/// its newlines: counting the newlines before each entry again made a file of 10,000 sites take
/// 1.4 s of CPU to read.
struct LineNumbers(Vec<usize>);

impl LineNumbers {
    fn of(text: &str) -> Self {
        Self(text.match_indices('\n').map(|(at, _)| at).collect())
    }

    /// The line of the byte at `offset`: one more than the newlines before it.
    fn at(&self, offset: usize) -> usize {
        self.0.partition_point(|&newline| newline < offset) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::MAX_PATTERN_BYTES;

    #[test]
    fn line_numbers_count_the_newlines_before_an_offset() {
        let text = "a\nbc\n\nd";
        let lines = LineNumbers::of(text);
        let expected = |offset: usize| text[..offset].matches('\n').count() + 1;
        for offset in 0..=text.len() {
            assert_eq!(lines.at(offset), expected(offset), "offset {offset}");
        }
    }

    fn parse_text(text: &str) -> Result<Vec<Site>, String> {
        parse(text, None, Path::new("/nonexistent")).map(|sites| sites.into_iter().map(|s| s.site).collect())
    }

    /// A folder of its own under the system's temporary folder, removed when dropped.
    struct Folder(tempfile::TempDir);

    impl Folder {
        fn new() -> Self {
            Self(tempfile::tempdir().unwrap())
        }

        fn write(&self, name: &str, content: &[u8]) -> std::path::PathBuf {
            let path = self.0.path().join(name);
            std::fs::write(&path, content).unwrap();
            path
        }
    }

    #[test]
    fn a_name_and_a_group_are_read_trimmed_and_checked() {
        let sites = parse_text(
            "[[site]]\nurl = \"https://a.example/\"\nname = \" Shop \"\ngroup = \"Public\"\n\n[[site]]\nurl = \"https://b.example/\"\n",
        )
        .expect("a valid file");
        assert_eq!((sites[0].name.as_deref(), sites[0].group.as_deref()), (Some("Shop"), Some("Public")));
        assert_eq!((sites[1].name.as_deref(), sites[1].group.as_deref()), (None, None), "none by default");

        let long = "x".repeat(MAX_LABEL_BYTES + 1);
        // (case, the entry's line, the error's end)
        for (case, line, expected) in [
            ("empty", "name = \"  \"".to_owned(), "name is empty"),
            ("too long", format!("group = \"{long}\""), "group is longer than 200 bytes"),
            ("a control character", "name = \"a\\tb\"".to_owned(), "name holds a control character"),
        ] {
            let err = parse_text(&format!("[[site]]\nurl = \"https://a.example/\"\n{line}\n")).expect_err(case);
            assert!(err.ends_with(expected) && err.contains("line 3"), "{case}: {err}");
        }
    }

    #[test]
    fn an_interval_is_whole_seconds_from_one_to_a_day_written_as_seconds_or_text() {
        for (written, seconds) in
            [("30", 30), ("\"30s\"", 30), ("\"5m\"", 300), ("\"1h 30m\"", 5400), ("\"1d\"", 86_400), ("1", 1)]
        {
            let sites = parse_text(&format!("[[site]]\nurl = \"https://a.example/\"\ninterval = {written}\n"))
                .unwrap_or_else(|e| panic!("{written}: {e}"));
            assert_eq!(sites[0].interval, Some(Duration::from_secs(seconds)), "{written}");
        }
        let none = parse_text("[[site]]\nurl = \"https://a.example/\"\n").expect("a valid file");
        assert_eq!(none[0].interval, None, "the producer's own by default");
        for (written, expected) in [
            ("0", "interval 0 s is outside 1 s to 86400 s (a day)"),
            ("-5", "interval -5 is outside 1 s to 86400 s (a day)"),
            ("86401", "interval 86401 s is outside 1 s to 86400 s (a day)"),
            ("\"2d\"", "interval 172800 s is outside 1 s to 86400 s (a day)"),
            ("\"0s\"", "interval 0 s is outside"),
            ("\"1500ms\"", "interval '1500ms' is not a whole number of seconds"),
            ("\"soon\"", "interval 'soon' is not a duration"),
            ("1.5", "an interval: whole seconds, or text"),
            ("true", "an interval: whole seconds, or text"),
        ] {
            let err = parse_text(&format!("[[site]]\nurl = \"https://a.example/\"\ninterval = {written}\n"))
                .expect_err(written);
            assert!(err.contains(expected) && err.contains("line 3"), "{written}: {err}");
        }
    }

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
            Path::new("/nonexistent"),
        )
        .unwrap();
        assert_eq!(sites.iter().map(|s| s.line).collect::<Vec<_>>(), [3, 11]);
        let first = &sites[0].site;
        assert_eq!(first.url.as_str(), "https://example.com/");
        assert_eq!(first.matcher.as_ref().unwrap().find("v=42").unwrap().as_deref(), Some("42"));
        assert!(first.expect_status.contains(301));
        assert!(!first.expect_status.contains(302));
        assert_eq!(first.timeout, Some(Duration::from_secs(5)));
        assert_eq!(first.method, Method::HEAD);
        assert_eq!(first.headers["accept-language"], "en");
        let second = &sites[1].site;
        assert_eq!(second.matcher.as_ref().unwrap().find("the default").unwrap().as_deref(), Some("default"));
        assert_eq!(second.method, Method::GET);
        assert_eq!(second.expect_status, StatusSet::default_expected(), "without expect_status: 200-399");
    }

    #[test]
    fn an_expect_status_replaces_the_default_set_entirely() {
        let sites = parse_text("[[site]]\nurl = \"https://ok/\"\nexpect_status = [404]\n").unwrap();
        let expected = &sites[0].expect_status;
        assert!(expected.contains(404));
        assert!(!expected.contains(200), "200 is no longer expected");
        assert_eq!(expected.to_string(), "404");
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        for (text, line, fragment) in [
            ("[[site]]\nurl = \"https://ok/\"\n\n[[site]]\nurl = \"nope\"\n", 5, "is not a URL"),
            ("[[site]]\nurl = \"https://ok/\"\nregexp = \"(\"\n", 3, "regexp does not compile"),
            ("[[site]]\nurl = \"https://ok/\"\nexpect_status = \"2xx\"\n", 3, "expect_status"),
            ("[[site]]\nurl = \"https://ok/\"\ntimeout = 0\n", 3, "timeout must be from 1 to 3600 seconds"),
            ("[[site]]\nurl = \"https://ok/\"\ntimeout = 3601\n", 3, "timeout must be from 1 to 3600 seconds"),
            ("[[site]]\nurl = \"https://ok/\"\ntimeout = 9223372036854775807\n", 3, "from 1 to 3600 seconds"),
            ("[[site]]\nurl = \"https://ok/\"\nmethod = \"GE T\"\n", 3, "not an HTTP method"),
            ("[[site]]\nurl = \"https://ok/\"\ncolour = \"red\"\n", 3, "unknown field"),
            ("[[site]]\nurl = \"https://ok/\n", 2, ""),
            ("[[site]]\nregexp = \"x\"\n", 1, "missing field `url`"),
            ("[[site]]\nurl = \"https://ok/\"\nheaders = { X = { path = \"/x\" } }\n", 3, "a string, or { file ="),
            ("[[site]]\nurl = \"https://ok/\"\nheaders = { X = 1 }\n", 3, "a string, or { file ="),
        ] {
            let err = parse_text(text).expect_err(text);
            assert!(err.starts_with(&format!(" line {line}: ")), "{text:?}: {err}");
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_regexp_too_long_or_compiling_too_large_is_refused_with_its_line() {
        for (pattern, fragment) in [
            ("a".repeat(MAX_PATTERN_BYTES + 1), "regexp is 4097 bytes long; a pattern may have at most 4096"),
            (r"\\w{1000}".to_owned(), "regexp compiles to more than 1048576 bytes"),
        ] {
            let err = parse_text(&format!("[[site]]\nurl = \"https://ok/\"\n\nregexp = \"{pattern}\"\n")).unwrap_err();
            assert!(err.starts_with(&format!(" line 4: {fragment}")), "{err}");
        }
    }

    #[test]
    fn a_url_listed_twice_is_refused_with_both_lines() {
        let text = "[[site]]\nurl = \"https://a.example/\"\n\n[[site]]\nurl = \"https://b.example/\"\n\n\
                    [[site]]\nurl = \"HTTPS://A.example\"\nmethod = \"HEAD\"\n";
        let err = parse_text(text).unwrap_err();
        assert_eq!(err, " line 8: 'https://a.example/' is already listed at line 2; each URL may appear once");
    }

    #[test]
    fn headers_that_frame_the_request_are_refused_in_any_case() {
        for name in [
            "Host",
            "Content-Length",
            "Transfer-Encoding",
            "Connection",
            "Upgrade",
            "TE",
            "Keep-Alive",
            "Proxy-Connection",
            "HOST",
            "content-length",
        ] {
            let text =
                format!("[[site]]\nurl = \"https://ok/\"\n\n[site.headers]\nAccept = \"*/*\"\n\"{name}\" = \"x\"\n");
            let err = parse_text(&text).expect_err(name);
            let expected = format!(" line 6: header '{}' is set by", name.to_ascii_lowercase());
            assert!(err.starts_with(&expected), "{name}: {err}");
        }
    }

    #[test]
    fn a_header_given_twice_in_different_cases_is_refused() {
        let err =
            parse_text("[[site]]\nurl = \"https://ok/\"\nheaders = { Accept = \"a\", accept = \"b\" }\n").unwrap_err();
        assert!(err.contains("header 'accept' is given twice"), "{err}");
    }

    #[test]
    fn a_bad_header_value_is_refused_without_quoting_it() {
        let err = parse_text("[[site]]\nurl = \"https://ok/\"\nheaders = { Authorization = \"Bearer s3cret\\n\" }\n")
            .unwrap_err();
        assert!(err.contains("authorization"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn a_header_value_is_read_from_its_file_without_the_trailing_newline() {
        let folder = Folder::new();
        let token = folder.write("api-token", b"Bearer t0ken-from-file\r\n");
        folder.write("relative-token", b"rel\n");
        let text = format!(
            "[[site]]\nurl = \"https://ok/\"\n\
             headers = {{ Authorization = {{ file = \"{}\" }}, X-Key = {{ file = \"relative-token\" }} }}\n",
            token.display()
        );
        let sites = parse(&text, None, folder.0.path()).unwrap();
        let headers = &sites[0].site.headers;
        assert_eq!(headers["authorization"], "Bearer t0ken-from-file");
        assert!(headers["authorization"].is_sensitive());
        assert_eq!(headers["x-key"], "rel", "a relative path is taken from the sites file's folder");
        assert!(!format!("{:?}", sites[0].site).contains("t0ken"), "Debug shows no header value");
    }

    #[test]
    fn a_header_value_file_that_cannot_be_used_is_refused_by_header_and_path_never_by_content() {
        let folder = Folder::new();
        let cases: [(&str, Option<&[u8]>, &str); 5] = [
            ("missing", None, "cannot read"),
            ("empty", Some(b""), "is empty"),
            ("newline-only", Some(b"\n"), "is empty"),
            ("control-characters", Some(b"Bearer s3cret\x01\n"), "does not hold a valid header value (not shown)"),
            ("two-lines", Some(b"Bearer s3cret\nsecond s3cret line\n"), "does not hold a valid header value"),
        ];
        for (name, content, fragment) in cases {
            let path = folder.0.path().join(name);
            if let Some(content) = content {
                std::fs::write(&path, content).unwrap();
            }
            let text = format!(
                "[[site]]\nurl = \"https://ok/\"\nheaders = {{ Authorization = {{ file = \"{}\" }} }}\n",
                path.display()
            );
            let err = parse(&text, None, folder.0.path()).map(|_| ()).expect_err(name);
            assert!(err.starts_with(" line 3: header 'authorization': "), "{name}: {err}");
            assert!(err.contains(&path.display().to_string()), "{name}: {err}");
            assert!(err.contains(fragment), "{name}: {err}");
            assert!(!err.contains("s3cret"), "{name}: {err}");
        }
        let err = parse(
            "[[site]]\nurl = \"https://ok/\"\nheaders = { Authorization = { file = \"/dev/zero\" } }\n",
            None,
            folder.0.path(),
        )
        .map(|_| ())
        .unwrap_err();
        assert!(err.contains("/dev/zero is not a regular file: it is a character device"), "{err}");
        let fifo = folder.0.path().join("fifo-token");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
        let text =
            format!("[[site]]\nurl = \"https://ok/\"\nheaders = {{ X = {{ file = \"{}\" }} }}\n", fifo.display());
        // Opening it would wait for a writer: a failing test would hang here.
        let err = parse(&text, None, folder.0.path()).map(|_| ()).unwrap_err();
        assert!(err.ends_with("fifo-token is not a regular file: it is a FIFO (named pipe)"), "{err}");
        let err = parse("[[site]]\nurl = \"https://ok/\"\nheaders = { X = { file = \"\" } }\n", None, folder.0.path())
            .map(|_| ())
            .unwrap_err();
        assert!(err.contains("header 'x': { file = \"\" } names no file"), "{err}");
    }
}
