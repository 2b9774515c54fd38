//! Credentials in a site's URL (`http://user:password@host/`): sent as HTTP Basic authentication
//! (RFC 7617) to the site's own origin, never in `Host`, and shown with the password replaced by
//! `***` wherever the URL is written down (reports, record keys, logs, configuration errors).
//!
//! A user name without a password is shown as `***` too: it is often a token
//! (`https://TOKEN@host/`).

use http::HeaderValue;
use url::Url;

/// What stands for a secret wherever the URL is shown.
pub const REDACTED: &str = "***";

/// The userinfo of a site's URL, ready to send and safe to show.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `Basic base64(user:password)`, marked sensitive (HTTP/2 never indexes it).
    authorization: HeaderValue,
    /// The user name as shown: as configured when a password follows it, else `***`.
    shown_username: String,
    has_password: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

impl Credentials {
    /// The credentials in `url`'s userinfo, percent-decoded; `None` without userinfo.
    pub fn from_url(url: &Url) -> Option<Self> {
        let password = url.password();
        if url.username().is_empty() && password.is_none() {
            return None;
        }
        let mut pair = percent_decode(url.username());
        pair.push(b':');
        pair.extend(percent_decode(password.unwrap_or_default()));
        let mut authorization = HeaderValue::try_from(format!("Basic {}", base64(&pair)))
            .expect("base64 is made of characters a header value may hold");
        authorization.set_sensitive(true);
        let shown_username = if password.is_some() { url.username().to_owned() } else { REDACTED.to_owned() };
        Some(Self { authorization, shown_username, has_password: password.is_some() })
    }

    /// The `Authorization` header value.
    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// `url` (which has no userinfo) as it is shown when these credentials go with it.
    pub fn show_with(&self, url: &Url) -> String {
        let mut shown = url.clone();
        // Neither fails: `url` is an http(s) URL with a host.
        let _ = shown.set_username(&self.shown_username);
        let _ = shown.set_password(self.has_password.then_some(REDACTED));
        shown.into()
    }
}

/// `url` without its userinfo: where requests go.
pub fn without_userinfo(url: &Url) -> Url {
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare
}

/// Text that failed to parse as a URL, safe to quote in an error: whatever may be userinfo is
/// replaced by `***` — everything between `://` (or the start) and the last `@`, or, with no `@`, a
/// "port" that is not a number (a password cut short by a `,` or a `/`).
pub fn redact_text(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    let (head, rest) = text.split_at(start);
    if let Some(at) = rest.rfind('@') {
        return format!("{head}{REDACTED}{}", &rest[at..]);
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rfind(':') {
        Some(colon) if is_not_a_port(&authority[colon + 1..]) => {
            format!("{head}{}:{REDACTED}{tail}", &authority[..colon])
        }
        _ => text.to_owned(),
    }
}

/// Whether what follows the last `:` of an authority cannot be a port (nor part of an IPv6 address).
fn is_not_a_port(text: &str) -> bool {
    !text.contains(']') && !text.bytes().all(|b| b.is_ascii_digit())
}

/// `%XX` sequences as the bytes they stand for; anything else as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let sextet = (group >> (18 - 6 * i)) & 63;
            out.push(if i <= chunk.len() { char::from(ALPHABET[sextet as usize]) } else { '=' });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(url: &str) -> Option<Credentials> {
        Credentials::from_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn base64_gives_the_rfc_4648_test_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "input {input:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/", "the last two characters of the alphabet");
    }

    #[test]
    fn userinfo_becomes_basic_authentication_percent_decoded() {
        for (url, pair) in [
            // RFC 7617's example.
            ("http://Aladdin:open%20sesame@h/", "Aladdin:open sesame"),
            ("http://user:p%40ss%3Aw%2Cd@h/", "user:p@ss:w,d"),
            ("http://token@h/", "token:"),
            ("http://:secret@h/", ":secret"),
            ("http://us%C3%A9r:pw@h/", "usér:pw"),
        ] {
            let header = credentials(url).unwrap_or_else(|| panic!("{url}: no credentials"));
            let expected = format!("Basic {}", base64(pair.as_bytes()));
            assert_eq!(header.authorization(), expected.as_str(), "url {url}");
            assert!(header.authorization().is_sensitive(), "url {url}");
        }
        assert_eq!(
            credentials("http://Aladdin:open%20sesame@h/").unwrap().authorization(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert!(credentials("https://h:8443/x").is_none());
    }

    #[test]
    fn a_shown_url_keeps_the_user_name_and_hides_the_password() {
        for (url, shown) in [
            ("http://user:pw@h:8080/a?b", "http://user:***@h:8080/a?b"),
            ("https://TOKEN@h/", "https://***@h/"),
            ("http://:pw@h/", "http://:***@h/"),
        ] {
            let url = Url::parse(url).unwrap();
            let credentials = Credentials::from_url(&url).unwrap();
            assert_eq!(credentials.show_with(&without_userinfo(&url)), shown);
        }
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let shown = format!("{:?}", credentials("http://user:hunter2@h/").unwrap());
        assert!(!shown.contains("hunter2") && !shown.contains("aHVudGVy"), "{shown}");
    }

    #[test]
    fn text_that_is_not_a_url_is_quoted_without_what_may_be_a_password() {
        for (text, shown) in [
            ("http://user:hunter2@exa mple/", "http://***@exa mple/"),
            ("user:hunter2@host", "***@host"),
            ("http://user:hunter2", "http://user:***"),
            ("http://user:hun/ter2@host/", "http://***@host/"),
            ("http://host:99999/", "http://host:99999/"),
            ("http://[::1/", "http://[::1/"),
            ("http://[::1]:8080/ x", "http://[::1]:8080/ x"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_text(text), shown, "text {text:?}");
        }
    }
}
