//! The browser harness in a real headless Chromium, against a small local site with a strict
//! Content Security Policy: a heading read, a form submitted (GET) and echoed by the server, a link
//! followed, inline SVG counted, a full-page screenshot saved, and an inline script under the
//! policy blocked and reported. Once with JavaScript on and once with it off; no stack needed.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    time::{Duration, Instant},
};

use websentry_tests::{eventually, png_dimensions, Browser, JavaScript, WINDOW};

/// The policy of a public page without scripts (what the status page means to send).
const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:";

/// How long a page may take to show what a test waits for.
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn pages_are_read_filled_in_followed_and_photographed_with_javascript() {
    pages_work_in_chromium(JavaScript::Enabled);
}

#[test]
fn pages_are_read_filled_in_followed_and_photographed_without_javascript() {
    pages_work_in_chromium(JavaScript::Disabled);
}

fn pages_work_in_chromium(javascript: JavaScript) {
    let started = Instant::now();
    let site = PageServer::start();
    let browser = Browser::start(javascript);
    let ready = started.elapsed();

    // Arrange: the overview, with its stylesheet, inline SVG and a data: image, under the policy.
    browser.goto(&site.url("/"));
    assert_eq!(browser.title(), "Browser check");
    assert_eq!(browser.text("h1"), "Websentry browser check");
    assert_eq!(browser.count("svg.days rect"), 3, "three days drawn");
    assert_eq!(browser.attribute("svg.days", "aria-label").as_deref(), Some("3 days: up, down, unknown"));
    assert_eq!(browser.scripts(), Vec::<String>::new(), "the overview needs no JavaScript");

    // A full-page screenshot: the stylesheet (allowed: 'self') makes the page taller than the window.
    let screenshot = browser.screenshot(&format!("browser-harness-{javascript}"));
    let png = std::fs::read(&screenshot).expect("the screenshot is written");
    let (width, height) = png_dimensions(&png).unwrap_or_else(|| panic!("{} is not a PNG", screenshot.display()));
    assert_eq!(width, WINDOW.0, "as wide as the window");
    assert!(height >= 1_600, "the whole page, not only the {}-pixel window: {height} pixels high", WINDOW.1);
    assert!(png.len() > 1_000, "an image, not an empty frame: {} bytes", png.len());
    assert_eq!(browser.csp_violations(), Vec::<String>::new(), "the overview keeps to its policy");

    // Act: a search, submitted by its button (GET), echoed by the server.
    browser.fill("form#search input[name=q]", "status & <uptime>");
    browser.submit("form#search");
    let url = browser.wait_for_url("/search?", WAIT);
    assert!(url.ends_with("/search?q=status+%26+%3Cuptime%3E"), "the form's query string: {url}");
    assert_eq!(browser.text("#echo"), "you searched for: status & <uptime>");

    // A link followed by clicking it.
    browser.goto(&site.url("/"));
    browser.follow_link("Details");
    browser.wait_for_url("/details", WAIT);
    assert_eq!(browser.text("h1"), "Details");

    // What needs JavaScript is found; an inline script under the policy is blocked, and reported
    // when scripts run.
    browser.goto(&site.url("/scripted"));
    let scripts = ["<a href=\"javascript:void 0\">", "<button onclick=\"alert(1)\">", "<script>"];
    assert_eq!(browser.scripts(), scripts, "a javascript: link, an inline handler and an inline script");
    assert_eq!(browser.text("h1"), "untouched", "the policy blocked the script");
    if javascript == JavaScript::Enabled {
        eventually("the console reports the blocked inline script", WAIT, || {
            browser.csp_violations().iter().any(|message| message.contains("inline script"))
        });
    }
    // The inline style is refused (style-src 'self') whether scripts run or not.
    eventually("the console reports the refused inline style", WAIT, || {
        browser.csp_violations().iter().any(|message| message.contains("inline style"))
    });

    // JavaScript really is on or off: a page without a policy runs its inline script only when on.
    browser.goto(&site.url("/unguarded"));
    let expected = if javascript == JavaScript::Enabled { "changed by a script" } else { "untouched" };
    assert_eq!(browser.text("h1"), expected);

    eprintln!(
        "browser test ({javascript}): {} ms in all, {} ms of them starting Chromium; screenshot {} ({width}x{height}, \
         {} bytes)",
        started.elapsed().as_millis(),
        ready.as_millis(),
        screenshot.display(),
        png.len()
    );
}

/// A site on 127.0.0.1, a thread per connection: `/` (a heading, a search form, a link, inline SVG,
/// a tall block), `/style.css`, `/search?q=` (echoes `q`), `/details`, `/scripted` (an inline
/// script and style under the policy) and `/unguarded` (an inline script, no policy).
struct PageServer {
    base: String,
}

impl PageServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the page server");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        Self { base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A page: the policy's own icon (`data:`), so the browser asks for no /favicon.ico.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>\
         <link rel=icon href=\"data:,\"><link rel=stylesheet href=/style.css></head><body>{body}</body></html>"
    )
}

const OVERVIEW: &str = "<h1>Websentry browser check</h1>\
    <form id=search action=/search method=get><label>Search <input name=q></label><button type=submit>Search</button></form>\
    <p><a href=/details>Details</a></p>\
    <svg class=days role=img aria-label=\"3 days: up, down, unknown\" width=60 height=20 viewBox=\"0 0 60 20\">\
    <rect x=0 width=18 height=20 fill=green><title>up</title></rect>\
    <rect x=20 width=18 height=20 fill=red><title>down</title></rect>\
    <rect x=40 width=18 height=20 fill=grey><title>unknown</title></rect></svg>\
    <img alt=dot width=8 height=8 src=\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='8' height='8'%3E%3Ccircle cx='4' cy='4' r='4'/%3E%3C/svg%3E\">\
    <div class=tall>the end of the page is further down</div>";

const STYLE: &str =
    "body { font-family: sans-serif; margin: 2rem; } .tall { height: 1600px; border-left: 4px solid #888; }";

fn serve(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        line.clear();
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let html = "text/html; charset=utf-8";
    let (status, content_type, policy, body) = match path {
        "/" => ("200 OK", html, Some(POLICY), page("Browser check", OVERVIEW)),
        "/style.css" => ("200 OK", "text/css", Some(POLICY), STYLE.to_owned()),
        "/search" => {
            let q = url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "q")
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default();
            let echo = format!("<p id=echo>you searched for: {}</p>", escape(&q));
            ("200 OK", html, Some(POLICY), page("Search", &echo))
        }
        "/details" => ("200 OK", html, Some(POLICY), page("Details", "<h1>Details</h1>")),
        "/scripted" => {
            let body = "<h1 id=h>untouched</h1><style>h1 { color: red; }</style>\
                        <p><a href=\"javascript:void 0\">a script's link</a> <button onclick=\"alert(1)\">a handler</button></p>\
                        <script>document.getElementById('h').textContent = 'changed by a script';</script>";
            ("200 OK", html, Some(POLICY), page("Scripted", body))
        }
        "/unguarded" => {
            let body = "<h1 id=h>untouched</h1>\
                        <script>document.getElementById('h').textContent = 'changed by a script';</script>";
            ("200 OK", html, None, page("Unguarded", body))
        }
        _ => ("404 Not Found", html, Some(POLICY), page("Not found", "<h1>no such page</h1>")),
    };
    let policy = policy.map(|p| format!("Content-Security-Policy: {p}\r\n")).unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{policy}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
