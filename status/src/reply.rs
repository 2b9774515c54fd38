//! Answers every route shares: HTML, JSON and SVG with their headers, and the failures (404, 400,
//! 503) as a clear page, or JSON under `/api/`. A failure never shows an error chain: the log has
//! it.

use askama::Template;
use axum::{
    body::Body,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

/// What every page carries: the title of the site and the stylesheet's path.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    /// `/static/status-<hash>.css`: a new path when the stylesheet changes, so it may be cached.
    pub css: String,
}

/// Why a request gets no answer of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No such page, site or badge (also a site outside the shown groups, and a malformed id).
    NotFound,
    /// A query string or parameter that is not understood: one line saying why.
    BadRequest(String),
    /// The archive's database cannot be read now.
    Unavailable,
}

impl Failure {
    fn status(&self) -> StatusCode {
        match self {
            Failure::NotFound => StatusCode::NOT_FOUND,
            Failure::BadRequest(_) => StatusCode::BAD_REQUEST,
            Failure::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn heading(&self) -> &'static str {
        match self {
            Failure::NotFound => "Not found",
            Failure::BadRequest(_) => "Bad request",
            Failure::Unavailable => "The archive cannot be read right now",
        }
    }

    fn reason(&self) -> String {
        match self {
            Failure::NotFound => "There is no such page or site here.".into(),
            Failure::BadRequest(reason) => reason.clone(),
            Failure::Unavailable => {
                "The status page cannot reach its database. It answers again as soon as the database does; \
                 try again in a moment."
                    .into()
            }
        }
    }

    /// The failure as a page.
    pub fn page(&self, chrome: &Chrome) -> Response {
        let page = ErrorPage { chrome, status: self.status().as_u16(), heading: self.heading(), reason: self.reason() };
        let mut response = html(page.render().unwrap_or_else(|_| self.reason()));
        *response.status_mut() = self.status();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    /// The failure as JSON: `{"error": "...", "status": 404}`.
    pub fn json(&self) -> Response {
        let body = serde_json::json!({ "error": self.reason(), "status": self.status().as_u16() });
        let mut response = json_bytes(body.to_string().into_bytes());
        *response.status_mut() = self.status();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: &'a Chrome,
    status: u16,
    heading: &'static str,
    reason: String,
}

/// An HTML page.
pub fn html(body: String) -> Response {
    with_type(Body::from(body), HTML)
}

/// The content type of pages.
pub const HTML: &str = "text/html; charset=utf-8";

/// A JSON document.
pub fn json_bytes(body: Vec<u8>) -> Response {
    with_type(Body::from(body), "application/json")
}

/// Plain text.
pub fn text(status: StatusCode, body: &'static str) -> Response {
    let mut response = with_type(Body::from(body), "text/plain; charset=utf-8");
    *response.status_mut() = status;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `body` with its content type.
pub fn with_type(body: Body, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Marks `response` as fresh for `seconds` (the cache period: no client needs it newer).
pub fn cached_for(mut response: Response, seconds: u64) -> Response {
    let value = HeaderValue::from_str(&format!("max-age={seconds}")).unwrap_or(HeaderValue::from_static("no-cache"));
    response.headers_mut().insert(header::CACHE_CONTROL, value);
    response
}
