//! SVG badges in the shields.io style (label | value, each as wide as its text), for READMEs and
//! dashboards: `/api/v1/sites/{id}/uptime/{24h|7d|30d|90d}/badge.svg` ("99.95%", or "unknown"
//! where nothing was measured) and `/api/v1/sites/{id}/health/badge.svg` (up, down or unknown).
//! Cached for the cache period, with an ETag of their content (a matching `If-None-Match` gets
//! 304).

use axum::{
    extract::{rejection::PathRejection, Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use sha2::{Digest, Sha256};

use crate::{
    model::{figures::percent, State as SiteState},
    query,
    reply::{self, Failure},
    routes::App,
};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/sites/{id}/uptime/{window}/badge.svg", get(uptime))
        .route("/api/v1/sites/{id}/health/badge.svg", get(health))
}

/// Colours of shields.io's palette.
const GREEN: &str = "#4c1";
const YELLOW_GREEN: &str = "#97ca00";
const YELLOW: &str = "#dfb317";
const ORANGE: &str = "#fe7d37";
const RED: &str = "#e05d44";
const GREY: &str = "#9f9f9f";

/// The colour of an uptime.
pub fn uptime_colour(uptime: Option<f64>) -> &'static str {
    match uptime {
        None => GREY,
        Some(u) if u >= 0.999 => GREEN,
        Some(u) if u >= 0.99 => YELLOW_GREEN,
        Some(u) if u >= 0.97 => YELLOW,
        Some(u) if u >= 0.95 => ORANGE,
        Some(_) => RED,
    }
}

/// The colour of a state.
pub fn state_colour(state: SiteState) -> &'static str {
    match state {
        SiteState::Up => GREEN,
        SiteState::Down => RED,
        SiteState::Unknown => GREY,
    }
}

async fn uptime(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path((id, window))) = path else { return Failure::NotFound.json() };
    let found = async {
        let id = query::site_id(&id)?;
        let window = query::window(&window)?;
        let overview = app.answers.overview().await.map_err(|_| Failure::Unavailable)?;
        let site = overview.site(id).ok_or(Failure::NotFound)?;
        let uptime = site.figures(window).shown_uptime();
        let value = uptime.map_or_else(|| "unknown".to_owned(), percent);
        Ok::<_, Failure>(render(&format!("uptime {window}"), &value, uptime_colour(uptime)))
    };
    match found.await {
        Ok(svg) => answer(svg, &headers, app.cache_seconds),
        Err(failure) => failure.json(),
    }
}

async fn health(State(app): State<App>, id: Result<Path<String>, PathRejection>, headers: HeaderMap) -> Response {
    let Ok(Path(id)) = id else { return Failure::NotFound.json() };
    let found = async {
        let id = query::site_id(&id)?;
        let overview = app.answers.overview().await.map_err(|_| Failure::Unavailable)?;
        let site = overview.site(id).ok_or(Failure::NotFound)?;
        Ok::<_, Failure>(render("health", site.state.word(), state_colour(site.state)))
    };
    match found.await {
        Ok(svg) => answer(svg, &headers, app.cache_seconds),
        Err(failure) => failure.json(),
    }
}

/// The badge with its cache headers, or 304 when the client has it.
fn answer(svg: String, headers: &HeaderMap, cache_seconds: u64) -> Response {
    let digest = Sha256::digest(svg.as_bytes());
    let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{tag}\"");
    let known = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*"));
    let mut response = if known {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        reply::with_type(svg.into(), "image/svg+xml; charset=utf-8")
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    reply::cached_for(response, cache_seconds)
}

/// Width in pixels of `text` in Verdana 11 px, as shields.io measures it (rounded per character).
pub fn text_width(text: &str) -> f64 {
    text.chars()
        .map(|c| match c {
            ' ' => 3.9,
            '.' | ',' | ':' | ';' | 'i' | 'l' | 'j' | '!' | '|' | '\'' => 3.4,
            'f' | 't' | 'r' | 'I' | '(' | ')' | '[' | ']' | '/' | '-' => 4.6,
            '%' => 11.9,
            'm' | 'M' | 'W' => 10.7,
            'w' => 9.0,
            '0'..='9' => 7.0,
            'A'..='Z' => 7.6,
            'a'..='z' => 6.6,
            _ => 7.5,
        })
        .sum()
}

/// A shields.io "flat" badge: `label` on grey, `value` on `colour`; the text escaped for XML.
pub fn render(label: &str, value: &str, colour: &str) -> String {
    let (label_w, value_w) = ((text_width(label) + 10.0).round(), (text_width(value) + 10.0).round());
    let width = label_w + value_w;
    let (label_x, value_x) = (label_w / 2.0, label_w + value_w / 2.0);
    let (label, value) = (escape(label), escape(value));
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{label}: {value}"><title>{label}: {value}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{label_w}" height="20" fill="#555"/><rect x="{label_w}" width="{value_w}" height="20" fill="{colour}"/><rect width="{width}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11"><text x="{label_x}" y="15" fill="#010101" fill-opacity=".3">{label}</text><text x="{label_x}" y="14">{label}</text><text x="{value_x}" y="15" fill="#010101" fill-opacity=".3">{value}</text><text x="{value_x}" y="14">{value}</text></g></svg>"##
    )
}

/// Text for XML content and attributes.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_badge_is_svg_as_wide_as_its_texts() {
        let narrow = render("health", "up", GREEN);
        let wide = render("uptime 24h", "99.95%", GREEN);

        for svg in [&narrow, &wide] {
            let document = roxmltree::Document::parse(svg).expect("well-formed SVG");
            assert_eq!(document.root_element().tag_name().name(), "svg");
        }
        let width = |svg: &str| -> f64 {
            let document = roxmltree::Document::parse(svg).expect("SVG");
            document.root_element().attribute("width").and_then(|w| w.parse().ok()).expect("a width")
        };
        assert!(width(&wide) > width(&narrow) + 30.0, "{} vs {}", width(&wide), width(&narrow));
        assert!(wide.contains(">99.95%</text>") && wide.contains("<title>uptime 24h: 99.95%</title>"));
    }

    #[test]
    fn colours_follow_the_uptime_and_unknown_is_grey() {
        for (uptime, colour) in [
            (Some(1.0), GREEN),
            (Some(0.9991), GREEN),
            (Some(0.995), YELLOW_GREEN),
            (Some(0.96), ORANGE),
            (Some(0.5), RED),
            (None, GREY),
        ] {
            assert_eq!(uptime_colour(uptime), colour, "{uptime:?}");
        }
        assert_eq!(state_colour(SiteState::Down), RED);
    }

    #[test]
    fn text_is_escaped() {
        let svg = render("a<b", "\"&'", GREY);
        roxmltree::Document::parse(&svg).expect("still well-formed");
        assert!(svg.contains("a&lt;b") && svg.contains("&quot;&amp;&#39;"));
    }
}
