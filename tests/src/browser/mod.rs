//! Headless Chromium driven through chromedriver (WebDriver), for tests of web pages as a person
//! sees them: what the page shows, its forms and links, with JavaScript on or off, what the
//! browser's console says (Content Security Policy violations), and a screenshot to look at.
//!
//! Both programs come from Debian's packages `chromium` and `chromium-driver` (`scripts/test`
//! installs them). Each [`Browser`] is a chromedriver of its own on a free port and a Chromium with
//! a new, empty profile, so tests run in parallel; dropped, both are gone. The WebDriver client is
//! async (fantoccini); the harness is not: each call runs it on the browser's own small runtime,
//! under a deadline.

mod commands;
mod driver;

use std::{
    cell::RefCell,
    fmt::{self, Display},
    future::Future,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use base64::Engine as _;
use fantoccini::{wd::Capabilities, Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use self::{commands::SessionPost, driver::Driver};
use crate::{binaries::layout, eventually_ok, Scratch};

/// The window, and so the viewport of a headless browser: a laptop's.
pub const WINDOW: (u32, u32) = (1280, 900);

/// Chromium's flags on a machine without a display and with a closed network: headless, as root
/// (no sandbox), no GPU, and none of its own traffic (updates, sync, QUIC, first-run pages), which
/// a closed network refuses, many connections at a time. Scrollbars hidden and one device pixel
/// per CSS pixel, so that screenshots are the page's size.
const FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
];

/// How long starting Chromium and its session may take (a loaded 2-core machine; seconds usually).
const START_WITHIN: Duration = Duration::from_secs(60);
/// How long one WebDriver command may take, page loads included.
const COMMAND_WITHIN: Duration = Duration::from_secs(30);
/// The tallest full-page screenshot (Chromium's own limit for one capture is 16,384 pixels).
const TALLEST_SCREENSHOT: f64 = 16_384.0;

/// Whether pages may run scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JavaScript {
    Enabled,
    /// No script of a page runs: the setting a person turns off ("Don't allow sites to use
    /// JavaScript", the content setting `profile.default_content_setting_values.javascript`).
    /// The harness still reads and drives the page: WebDriver does not need the page's scripts.
    Disabled,
}

impl JavaScript {
    /// Both, for a test that runs once with each.
    pub const BOTH: [JavaScript; 2] = [JavaScript::Enabled, JavaScript::Disabled];
}

impl Display for JavaScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JavaScript::Enabled => "javascript",
            JavaScript::Disabled => "no-javascript",
        })
    }
}

/// One line of the browser's console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleEntry {
    /// `SEVERE`, `WARNING`, `INFO` or `DEBUG`.
    pub level: String,
    /// Where it came from: `console-api` (a script's `console.log`), `security` (a Content
    /// Security Policy violation), `network`, `javascript` (an uncaught error), …
    pub source: String,
    pub message: String,
}

/// A headless Chromium with its own chromedriver and its own empty profile; dropped, the session
/// ends and both processes are killed.
///
/// Every method panics, naming what it did, when the browser does not answer within 30 s or the
/// page lacks what it was asked for: a test fails there, saying so.
#[derive(Debug)]
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    /// `None` once closed, in `drop`.
    client: Option<Client>,
    javascript: JavaScript,
    /// Everything the console said so far (chromedriver hands each entry over once).
    console: RefCell<Vec<ConsoleEntry>>,
    // Held to be dropped in this order, after the session ended: chromedriver and the Chromium
    // processes left, then their folder (the profile and chromedriver's log).
    _driver: Driver,
    _scratch: Scratch,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a new, empty profile and a
    /// [`WINDOW`]-sized window; prints how long that took.
    ///
    /// # Panics
    /// When chromedriver or Chromium is missing (saying how to install them), or does not start
    /// within 60 s (with chromedriver's log).
    pub fn start(javascript: JavaScript) -> Self {
        let started = Instant::now();
        let scratch = Scratch::new();
        let profile = scratch.path().join("profile");
        let log = scratch.path().join("chromedriver.log");
        let chromium = driver::installed("chromium");
        let driver = Driver::start(&log, &profile);
        let driver_ready = started.elapsed();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let capabilities = capabilities(&chromium, &profile, javascript);
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let endpoint = driver.url();
        let connected =
            runtime.block_on(async { tokio::time::timeout(START_WITHIN, builder.connect(&endpoint)).await });
        let client = match connected {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => panic!("starting Chromium through chromedriver: {err}\nits log:\n{}", tail(&log)),
            Err(_) => panic!("Chromium did not start within {START_WITHIN:?}\nchromedriver's log:\n{}", tail(&log)),
        };
        let version = client
            .capabilities()
            .and_then(|c| c.get("browserVersion"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        eprintln!(
            "browser: Chromium {version} ({javascript}) ready in {} ms (chromedriver in {} ms)",
            started.elapsed().as_millis(),
            driver_ready.as_millis()
        );
        Self {
            runtime,
            client: Some(client),
            javascript,
            console: RefCell::default(),
            _driver: driver,
            _scratch: scratch,
        }
    }

    /// Whether its pages run scripts.
    pub fn javascript(&self) -> JavaScript {
        self.javascript
    }

    /// Loads `url` and waits until the page has loaded (its `load` event).
    pub fn goto(&self, url: &str) {
        self.run(format!("loading {url}"), self.client().goto(url));
    }

    /// The address of the page shown now.
    pub fn current_url(&self) -> String {
        self.run("reading the current URL", self.client().current_url()).to_string()
    }

    pub fn title(&self) -> String {
        self.run("reading the title", self.client().title())
    }

    /// The page's HTML as the browser holds it now.
    pub fn source(&self) -> String {
        self.run("reading the page source", self.client().source())
    }

    /// Waits until the page has an element matching the CSS selector `css` (polled every 50 ms).
    ///
    /// # Panics
    /// When none appeared within `timeout`, with the page's address.
    pub fn wait_for(&self, css: &str, timeout: Duration) {
        eventually_ok(&format!("an element {css:?}"), timeout, || match self.count(css) {
            0 => Err(format!("none on {}", self.current_url())),
            _ => Ok(()),
        });
    }

    /// Waits until the address of the page contains `fragment` (after a click or a submitted
    /// form); returns it.
    pub fn wait_for_url(&self, fragment: &str, timeout: Duration) -> String {
        eventually_ok(&format!("an address with {fragment:?}"), timeout, || {
            let url = self.current_url();
            if url.contains(fragment) {
                Ok(url)
            } else {
                Err(url)
            }
        })
    }

    /// How many elements match the CSS selector `css` (inline SVG's elements too: `svg rect`).
    pub fn count(&self, css: &str) -> usize {
        self.run(format!("finding {css:?}"), self.client().find_all(Locator::Css(css))).len()
    }

    /// The text shown by each element matching `css`, in document order, as a person reads it
    /// (rendered text: hidden elements give "").
    pub fn texts(&self, css: &str) -> Vec<String> {
        self.run(format!("reading the text of {css:?}"), async {
            let mut texts = Vec::new();
            for element in self.client().find_all(Locator::Css(css)).await? {
                texts.push(element.text().await?);
            }
            Ok::<_, fantoccini::error::CmdError>(texts)
        })
    }

    /// The text shown by the first element matching `css`.
    ///
    /// # Panics
    /// When nothing matches.
    pub fn text(&self, css: &str) -> String {
        self.run(format!("reading the text of {css:?}"), async { self.find(css).await?.text().await })
    }

    /// The attribute `name` of the first element matching `css`, as written in the page (`None`
    /// when it has none).
    ///
    /// # Panics
    /// When nothing matches.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        self.run(format!("reading {name:?} of {css:?}"), async { self.find(css).await?.attr(name).await })
    }

    /// The attribute `name` of every element matching `css`, in document order.
    pub fn attributes(&self, css: &str, name: &str) -> Vec<Option<String>> {
        self.run(format!("reading {name:?} of every {css:?}"), async {
            let mut values = Vec::new();
            for element in self.client().find_all(Locator::Css(css)).await? {
                values.push(element.attr(name).await?);
            }
            Ok::<_, fantoccini::error::CmdError>(values)
        })
    }

    /// The text an element holds, shown or not (its `textContent`: an SVG `<title>`'s tooltip).
    ///
    /// # Panics
    /// When nothing matches.
    pub fn text_content(&self, css: &str) -> String {
        self.run(format!("reading the textContent of {css:?}"), async {
            self.find(css).await?.prop("textContent").await
        })
        .unwrap_or_default()
    }

    /// Chooses the option whose value is `value` in the `<select>` matching `css`.
    pub fn select(&self, css: &str, value: &str) {
        self.run(format!("choosing {value:?} in {css:?}"), async {
            self.find(css).await?.select_by_value(value).await
        });
    }

    /// Types `value` into the form field matching `css`, replacing what it held.
    pub fn fill(&self, css: &str, value: &str) {
        self.run(format!("filling {css:?}"), async {
            let field = self.find(css).await?;
            field.clear().await?;
            field.send_keys(value).await
        });
    }

    /// Submits the form matching `form` by clicking its submit button, as a person does (no script
    /// needed). Wait for what follows with [`Browser::wait_for_url`] or [`Browser::wait_for`].
    pub fn submit(&self, form: &str) {
        self.run(format!("submitting {form:?}"), async {
            self.client().form(Locator::Css(form)).await?.submit().await
        });
    }

    /// Clicks the first element matching `css`.
    pub fn click(&self, css: &str) {
        self.run(format!("clicking {css:?}"), async { self.find(css).await?.click().await });
    }

    /// Clicks the link whose text is exactly `text`.
    pub fn follow_link(&self, text: &str) {
        self.run(format!("following the link {text:?}"), async {
            self.client().find(Locator::LinkText(text)).await?.click().await
        });
    }

    /// What on the page would need JavaScript: `<script>` elements (HTML or SVG), inline event
    /// handlers (any `on…` attribute) and `javascript:` addresses, each as its opening tag. Empty
    /// for a page that works without JavaScript by construction.
    pub fn scripts(&self) -> Vec<String> {
        const SCRIPTS: &str = "//*[local-name()='script'] | //*[@*[starts-with(name(), 'on')]] | \
            //*[@*[local-name()='href' or local-name()='src' or local-name()='action' or local-name()='formaction']\
            [starts-with(translate(normalize-space(.), 'JAVSCRIPT', 'javscript'), 'javascript:')]]";
        self.run("finding scripts", async {
            let mut found = Vec::new();
            for element in self.client().find_all(Locator::XPath(SCRIPTS)).await? {
                let html = element.html(false).await?;
                let opening = html.find('>').map_or(html.as_str(), |end| &html[..=end]);
                found.push(opening.to_owned());
            }
            Ok::<_, fantoccini::error::CmdError>(found)
        })
    }

    /// Everything the browser's console said since it started (page errors, `console.*` calls,
    /// Content Security Policy violations, failed loads).
    pub fn console(&self) -> Vec<ConsoleEntry> {
        let fresh = self.run("reading the browser's console", self.client().issue_cmd(SessionPost::browser_log()));
        let field = |entry: &Value, name: &str| entry[name].as_str().unwrap_or_default().to_owned();
        let mut console = self.console.borrow_mut();
        console.extend(fresh.as_array().into_iter().flatten().map(|entry| ConsoleEntry {
            level: field(entry, "level"),
            source: field(entry, "source"),
            message: field(entry, "message"),
        }));
        console.clone()
    }

    /// The console's messages about Content Security Policy violations so far (a blocked inline
    /// script or style, a load from a source the policy does not allow).
    pub fn csp_violations(&self) -> Vec<String> {
        self.console()
            .into_iter()
            .filter(|entry| entry.message.contains("Content Security Policy"))
            .map(|entry| entry.message)
            .collect()
    }

    /// Saves a PNG of the whole page (not only the window: as tall as the page, up to 16,384
    /// pixels) as `<target>/screenshots/<name>.png`; returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        self.capture(name, None, TALLEST_SCREENSHOT)
    }

    /// A picture of the page for documentation, kept small: at most `widest` pixels wide (a page
    /// wider than that is scaled down whole, never cut) and `tallest` pixels high (its top part),
    /// as `<target>/screenshots/<name>.png`; returns the path.
    pub fn picture(&self, name: &str, widest: u32, tallest: u32) -> PathBuf {
        self.capture(name, Some(f64::from(widest)), f64::from(tallest).min(TALLEST_SCREENSHOT))
    }

    fn capture(&self, name: &str, widest: Option<f64>, tallest: f64) -> PathBuf {
        let metrics = self.devtools("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().unwrap_or(f64::from(WINDOW.0)).ceil();
        let scale = widest.map_or(1.0, |widest| (widest / width).min(1.0));
        let height = size["height"].as_f64().unwrap_or(f64::from(WINDOW.1)).ceil().min((tallest / scale).floor());
        let shot = self.devtools(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": scale },
            }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .unwrap_or_else(|err| panic!("the screenshot {name} is not base64: {err}"));
        let (target, _) = layout().unwrap_or_else(|err| panic!("{err}"));
        let folder = target.join("screenshots");
        std::fs::create_dir_all(&folder).unwrap_or_else(|err| panic!("creating {}: {err}", folder.display()));
        let path = folder.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
        path
    }

    /// One DevTools Protocol command's result.
    fn devtools(&self, command: &str, params: Value) -> Value {
        self.run(format!("DevTools {command}"), self.client().issue_cmd(SessionPost::devtools(command, params)))
    }

    async fn find(&self, css: &str) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
        self.client().find(Locator::Css(css)).await
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open until dropped")
    }

    /// Runs one exchange with the browser to its end, on the browser's runtime.
    ///
    /// # Panics
    /// When it fails or takes over 30 s, naming `what`.
    fn run<T, E: Display>(&self, what: impl Display, exchange: impl Future<Output = Result<T, E>>) -> T {
        match self.runtime.block_on(async { tokio::time::timeout(COMMAND_WITHIN, exchange).await }) {
            Ok(Ok(value)) => value,
            Ok(Err(err)) => panic!("browser: {what}: {err}"),
            Err(_) => panic!("browser: {what}: no answer within {COMMAND_WITHIN:?}"),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Ending the session quits Chromium; the driver's drop kills whatever is left.
            let _ =
                self.runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), client.close()).await });
        }
    }
}

/// What the session asks of chromedriver: Debian's Chromium with [`FLAGS`], its own profile, the
/// window size, JavaScript on or off, and the whole console kept. It starts on `about:blank`:
/// Debian's Chromium otherwise opens its new-tab page, which goes to https://start.duckduckgo.com/,
/// and on a closed network the first command then waits about 5 s for that to fail.
fn capabilities(chromium: &Path, profile: &Path, javascript: JavaScript) -> Capabilities {
    let mut args: Vec<String> = FLAGS.iter().map(|flag| (*flag).to_owned()).collect();
    args.push(format!("--window-size={},{}", WINDOW.0, WINDOW.1));
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": args,
            "prefs": {
                "profile.default_content_setting_values.javascript": if javascript == JavaScript::Enabled { 1 } else { 2 },
                "session.restore_on_startup": 4,
                "session.startup_urls": ["about:blank"],
            },
        },
        "goog:loggingPrefs": { "browser": "ALL" },
        "timeouts": { "pageLoad": COMMAND_WITHIN.as_millis(), "script": 10_000, "implicit": 0 },
    });
    match capabilities {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

/// The last lines of chromedriver's log, for a failure to start.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_else(|err| format!("(unreadable: {err})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The width and height of a PNG, from its signature and header (IHDR) chunk; `None` for
/// anything else.
pub fn png_dimensions(png: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let header = png.strip_prefix(SIGNATURE)?.get(..16)?;
    if &header[4..8] != b"IHDR" {
        return None;
    }
    let number = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    Some((number(8), number(12)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_dimensions_are_read_from_the_header_and_anything_else_is_refused() {
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend_from_slice(&1280u32.to_be_bytes());
        png.extend_from_slice(&2400u32.to_be_bytes());
        assert_eq!(png_dimensions(&png), Some((1280, 2400)));
        assert_eq!(png_dimensions(&png[..20]), None, "cut short");
        assert_eq!(png_dimensions(b"GIF89a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), None);
        let mut other_chunk = png.clone();
        other_chunk[12..16].copy_from_slice(b"IDAT");
        assert_eq!(png_dimensions(&other_chunk), None, "no IHDR first");
    }

    #[test]
    fn javascript_names_itself_for_file_names() {
        assert_eq!(JavaScript::BOTH.map(|js| js.to_string()), ["javascript", "no-javascript"]);
    }
}
