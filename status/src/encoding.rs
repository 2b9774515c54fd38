//! Answers compressed once and kept: the overview's page of 1,000 sites is 3 MB of HTML, and
//! compressing it for every browser's request (the compression layer's way, right for answers made
//! per request) took the cached overview from ~1,400 to ~190 answers a second and the process's
//! peak RSS from 47 to 79 MB (`benches/status.rs`, 64 clients). A kept page is compressed once per
//! coding, when a client first asks for it, off the async threads; the requests that ask at the
//! same time wait for that one.
//!
//! The choice of encoding reads `Accept-Encoding` as RFC 9110 §12.5.3 says: each coding with its
//! weight (`q`, 1 when absent; 0 refuses it), `*` for any coding not named. tower-http's own
//! negotiation is private to its layer, so it is written here; an answer sent as it is goes
//! through the layer, which then does what it does for any answer.

use axum::http::{header, HeaderMap, HeaderValue};
use bytes::Bytes;
use tokio::sync::OnceCell;

/// A coding the kept answers are compressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Br,
    Gzip,
}

impl Coding {
    fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The name a compression is counted under (`websentry_status_pages_made_total`).
    pub fn made(self) -> &'static str {
        match self {
            Coding::Br => "page_br",
            Coding::Gzip => "page_gzip",
        }
    }

    /// The coding to send to a client whose request has `headers`: the one it weighs most (brotli
    /// when equal), `None` when it accepts neither (or sent no `Accept-Encoding`).
    pub fn accepted(headers: &HeaderMap) -> Option<Coding> {
        let (mut br, mut gzip, mut any) = (None, None, None);
        for value in headers.get_all(header::ACCEPT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for item in value.split(',') {
                let mut parts = item.split(';');
                let name = parts.next().unwrap_or_default().trim();
                let Some(weight) = weight(parts) else { continue };
                let slot = if name.eq_ignore_ascii_case("br") {
                    &mut br
                } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                    &mut gzip
                } else if name == "*" {
                    &mut any
                } else {
                    continue;
                };
                *slot = Some(weight);
            }
        }
        let (br, gzip) = (br.or(any).unwrap_or(0), gzip.or(any).unwrap_or(0));
        match (br, gzip) {
            (0, 0) => None,
            (br, gzip) if br >= gzip => Some(Coding::Br),
            _ => Some(Coding::Gzip),
        }
    }
}

/// The weight of a coding from its parameters, in thousandths; `None` when malformed (the coding
/// is then left out, as if not named).
fn weight<'a>(mut params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let Some(param) = params.next() else { return Some(1000) };
    let (name, value) = param.split_once('=')?;
    if !name.trim().eq_ignore_ascii_case("q") || params.next().is_some() {
        return None;
    }
    // qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
    let value = value.trim();
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths =
        fraction.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// An answer kept for a while, as it is and compressed in each coding once asked for.
#[derive(Debug)]
pub struct Kept {
    plain: Bytes,
    br: OnceCell<Bytes>,
    gzip: OnceCell<Bytes>,
}

impl Kept {
    pub fn new(plain: Bytes) -> Self {
        Kept { plain, br: OnceCell::new(), gzip: OnceCell::new() }
    }

    /// The answer as it is.
    pub fn plain(&self) -> Bytes {
        self.plain.clone()
    }

    /// The answer in `coding`, compressed on a blocking thread the first time (`made` is then
    /// called); the requests that ask meanwhile wait for it. `None` when compressing failed (the
    /// caller sends the answer as it is; the next request tries again).
    pub async fn encoded(&self, coding: Coding, made: impl FnOnce()) -> Option<Bytes> {
        let slot = match coding {
            Coding::Br => &self.br,
            Coding::Gzip => &self.gzip,
        };
        let compressed = slot
            .get_or_try_init(|| async {
                made();
                let plain = self.plain.clone();
                match tokio::task::spawn_blocking(move || compress(&plain, coding)).await {
                    Ok(compressed) => compressed.map_err(|err| err.to_string()),
                    Err(err) => Err(err.to_string()),
                }
            })
            .await;
        match compressed {
            Ok(bytes) => Some(bytes.clone()),
            Err(cause) => {
                tracing::error!(cause = %cause, coding = coding.token(), "compressing a kept answer failed");
                None
            }
        }
    }
}

/// The headers of a kept answer sent in `coding` (`None`: as it is). Each says that it depends on
/// `Accept-Encoding`.
pub fn mark(headers: &mut HeaderMap, coding: Option<Coding>) {
    if let Some(coding) = coding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
    }
    headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
}

/// Brotli at quality 5 (the layer uses 4 per answer; a kept one is compressed once), gzip at
/// flate2's default level 6.
fn compress(plain: &[u8], coding: Coding) -> std::io::Result<Bytes> {
    use std::io::Write;
    match coding {
        Coding::Br => {
            let mut out = Vec::with_capacity(plain.len() / 16);
            {
                let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, 5, 22);
                writer.write_all(plain)?;
                writer.flush()?;
            }
            Ok(Bytes::from(out))
        }
        Coding::Gzip => {
            let mut writer =
                flate2::write::GzEncoder::new(Vec::with_capacity(plain.len() / 8), flate2::Compression::default());
            writer.write_all(plain)?;
            Ok(Bytes::from(writer.finish()?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(values: &[&str]) -> Option<Coding> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT_ENCODING, HeaderValue::from_str(value).expect("a header value"));
        }
        Coding::accepted(&headers)
    }

    #[test]
    fn the_coding_a_client_weighs_most_is_chosen_brotli_when_equal() {
        assert_eq!(accepted(&["gzip, deflate, br, zstd"]), Some(Coding::Br), "a browser's");
        assert_eq!(accepted(&["gzip"]), Some(Coding::Gzip));
        assert_eq!(accepted(&["br;q=0.5, gzip;q=0.8"]), Some(Coding::Gzip));
        assert_eq!(accepted(&["gzip;q=1.0, br;q=1"]), Some(Coding::Br));
        assert_eq!(accepted(&["gzip", "br"]), Some(Coding::Br), "over two header lines");
        assert_eq!(accepted(&["BR"]), Some(Coding::Br), "case-insensitive");
        assert_eq!(accepted(&["x-gzip"]), Some(Coding::Gzip));
        assert_eq!(accepted(&["*"]), Some(Coding::Br));
        assert_eq!(accepted(&["*;q=0.1, br;q=0"]), Some(Coding::Gzip), "a star for what is not named");
    }

    #[test]
    fn no_coding_without_a_header_or_when_each_is_refused() {
        assert_eq!(accepted(&[]), None);
        assert_eq!(accepted(&["identity"]), None);
        assert_eq!(accepted(&["deflate, zstd"]), None);
        assert_eq!(accepted(&["br;q=0, gzip;q=0.000"]), None);
        assert_eq!(accepted(&["*;q=0"]), None);
        assert_eq!(accepted(&[""]), None);
        let mut not_text = HeaderMap::new();
        not_text.insert(header::ACCEPT_ENCODING, HeaderValue::from_bytes(b"br\xff").expect("a header value"));
        assert_eq!(Coding::accepted(&not_text), None, "a value that is not text is left out");
    }

    #[test]
    fn a_malformed_weight_leaves_its_coding_out() {
        for value in [
            "br;q=2",
            "br;q=1.5",
            "br;q=0.1234",
            "br;q=x",
            "br;q=",
            "br;level=1",
            "br;q=0.5;q=1",
            "br;q=-1",
            "br;q=1.001",
        ] {
            assert_eq!(accepted(&[value]), None, "{value}");
        }
        assert_eq!(accepted(&["br;q=2, gzip"]), Some(Coding::Gzip));
        assert_eq!(accepted(&["br ; q = 0.5"]), Some(Coding::Br), "spaces around the parameter");
    }

    #[test]
    fn a_kept_answer_is_compressed_once_and_decompresses_to_itself() {
        use std::io::Read;
        let page: String =
            (0..20_000).map(|n| format!("<tr class=\"site\" id=\"site-{n}\"><td>{n}</td></tr>\n")).collect();
        let kept = Kept::new(Bytes::from(page.clone()));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let made = std::cell::Cell::new(0);
        let count = || made.set(made.get() + 1);
        let br = runtime.block_on(kept.encoded(Coding::Br, count)).expect("brotli");
        let gzip = runtime.block_on(kept.encoded(Coding::Gzip, count)).expect("gzip");
        assert!(
            br.len() * 10 < page.len() && gzip.len() * 5 < page.len(),
            "{} and {} of {}",
            br.len(),
            gzip.len(),
            page.len()
        );
        let again = runtime.block_on(kept.encoded(Coding::Br, count)).expect("brotli again");
        assert_eq!(again.as_ptr(), br.as_ptr(), "the same bytes, not compressed again");
        assert_eq!(made.get(), 2, "once per coding");

        let mut unbrotli = String::new();
        brotli::Decompressor::new(&br[..], 4096).read_to_string(&mut unbrotli).expect("brotli decodes");
        let mut ungzip = String::new();
        flate2::read::GzDecoder::new(&gzip[..]).read_to_string(&mut ungzip).expect("gzip decodes");
        assert!(unbrotli == page && ungzip == page);
    }
}
