//! A site to probe: a URL checked once, at start.

use url::Url;

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

    /// The URL exactly as the user wrote it (normalised by the URL parser), the record key.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Splits the simple form of `WEBSENTRY_SITES`: URLs separated by commas, spaces or newlines.
///
/// # Errors
/// The first entry that is not a URL we can probe.
pub fn parse_list(text: &str) -> Result<Vec<SiteUrl>, String> {
    let sites: Vec<SiteUrl> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(SiteUrl::parse)
        .collect::<Result<_, _>>()?;
    if sites.is_empty() {
        return Err("names no site".into());
    }
    Ok(sites)
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
        for (input, fragment) in [
            ("example.com", "is not a URL"),
            ("ftp://example.com/", "scheme 'ftp'"),
            ("https://", "is not a URL"),
            (" , ", "names no site"),
        ] {
            let err = parse_list(input).expect_err(input);
            assert!(err.contains(fragment), "input {input:?}: {err}");
        }
    }
}
