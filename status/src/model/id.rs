//! A site's id in paths: short, stable, and no URL (which may hold a token in its query) in a path
//! that proxies log.

use sha2::{Digest, Sha256};

/// Hex characters of an id.
pub const LENGTH: usize = 12;

/// The id of the site `url`: the first 12 hex characters of the SHA-256 of the URL as stored.
pub fn site_id(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    digest.iter().take(LENGTH / 2).map(|byte| format!("{byte:02x}")).collect()
}

/// Whether `text` has the shape of an id (12 lowercase hex characters); anything else is no site.
pub fn is_well_formed(text: &str) -> bool {
    text.len() == LENGTH && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_the_start_of_the_urls_sha256_in_lowercase_hex() {
        // sha256("https://example.com/") = 0f115db062b7c0dd030b16878c99dea5c354b49dc37b38eb8846179c7783e9d7
        assert_eq!(site_id("https://example.com/"), "0f115db062b7");
        assert_ne!(site_id("https://example.com/"), site_id("https://example.com"));
        assert!(is_well_formed(&site_id("anything")));
    }

    #[test]
    fn only_twelve_lowercase_hex_characters_are_an_id() {
        for (text, ok) in [
            ("0f115db062b7", true),
            ("0F115DB062B7", false),
            ("0f115db062b", false),
            ("0f115db062b70", false),
            ("0f115db062bg", false),
            ("..%2f..%2f..", false),
            ("", false),
            ("0f115db062b\u{e9}", false),
        ] {
            assert_eq!(is_well_formed(text), ok, "{text:?}");
        }
    }
}
