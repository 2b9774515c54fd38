//! chromedriver's own commands, beside the WebDriver standard's: the browser's console log, and
//! the Chrome DevTools Protocol (for a screenshot of the whole page, not only the window).

use fantoccini::wd::WebDriverCompatibleCommand;
use hyper::Method;
use serde_json::{json, Value};

/// A POST to `session/{id}/{path}` with a JSON body.
#[derive(Debug)]
pub(super) struct SessionPost {
    path: &'static str,
    body: Value,
}

impl SessionPost {
    /// What the browser logged since the last call (`goog:loggingPrefs` says how much): an array
    /// of `{level, source, message, timestamp}`.
    pub(super) fn browser_log() -> Self {
        Self { path: "se/log", body: json!({ "type": "browser" }) }
    }

    /// One DevTools Protocol command, e.g. `Page.captureScreenshot`; answers its result.
    pub(super) fn devtools(command: &str, params: Value) -> Self {
        Self { path: "goog/cdp/execute", body: json!({ "cmd": command, "params": params }) }
    }
}

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/{}", session_id.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.body.to_string()))
    }
}
