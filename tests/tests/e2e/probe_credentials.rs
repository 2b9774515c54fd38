//! Credentials go only where they were meant to: a site's headers and its URL's userinfo reach its
//! own origin (scheme, host, port) and no other, even after redirects, and the password is in no
//! report, log line or configuration error. Runs the real producer with `--dry-run` against local
//! servers that record what they got.

use websentry_shared::report::Report;
use websentry_tests::{
    hostile::{ok_with, redirect_to, RecordedRequest, RecordingServer},
    Run, Scratch,
};

const SECRET_HEADERS: [(&str, &str); 3] =
    [("Authorization", "Bearer s3cret-token"), ("Cookie", "session=s3cret-cookie"), ("X-Api-Key", "s3cret-key")];

/// `user:p@ss w0rd` percent-encoded in the URL, and `Basic base64(user:p@ss w0rd)`.
const USERINFO: &str = "user:p%40ss%20w0rd";
const BASIC: &str = "Basic dXNlcjpwQHNzIHcwcmQ=";

/// Runs one dry round over `sites_file`, logging at debug level: the reports, stdout and the log.
fn probe(sites_file: &str) -> (Vec<Report>, String, String) {
    let scratch = Scratch::new();
    let output = Run::new("websentry-producer")
        .arg("--dry-run")
        .env("WEBSENTRY_SITES_FILE", scratch.write("sites.toml", sites_file))
        .env("WEBSENTRY_TIMEOUT", "5")
        .env("WEBSENTRY_LOGLEVEL", "DEBUG")
        .success();
    let reports = output.stdout.lines().map(|l| Report::decode(l.as_bytes()).expect("a report per line")).collect();
    (reports, output.stdout, output.stderr)
}

fn secrets_in(request: &RecordedRequest) -> Vec<&str> {
    SECRET_HEADERS.iter().filter_map(|(name, _)| request.header(name)).collect()
}

/// The first request for `path` (the query left out).
fn request_to<'a>(requests: &'a [RecordedRequest], path: &str) -> &'a RecordedRequest {
    requests
        .iter()
        .find(|r| r.path.split('?').next() == Some(path))
        .unwrap_or_else(|| panic!("no request for {path}: {requests:?}"))
}

#[test]
fn a_site_header_is_not_sent_to_another_origin_after_a_redirect() {
    // On another port: answers /elsewhere, and sends /bounce?to=URL back to URL.
    let other = RecordingServer::start(|request| match request.path.split_once("/bounce?to=") {
        Some((_, back)) => redirect_to(back),
        None => ok_with("elsewhere"),
    });
    let (elsewhere, bounce) = (other.url("/elsewhere"), other.url("/bounce?to="));
    let to_other_port = RecordingServer::start(move |_| redirect_to(&elsewhere));
    let to_other_host = RecordingServer::start(|request| match request.path.as_str() {
        "/" => redirect_to(&format!("http://localhost:{}/landed", request.port)),
        _ => ok_with("landed"),
    });
    let there_and_back = RecordingServer::start(move |request| match request.path.as_str() {
        "/" => redirect_to(&format!("{bounce}http://127.0.0.1:{}/back", request.port)),
        _ => ok_with("back"),
    });
    let headers: Vec<String> = SECRET_HEADERS.iter().map(|(n, v)| format!("\"{n}\" = \"{v}\"")).collect();
    let mut sites_file = String::new();
    for server in [&to_other_port, &to_other_host, &there_and_back] {
        sites_file.push_str(&format!(
            "[[site]]\nurl = \"{}\"\nheaders = {{ {} }}\n\n",
            server.url("/"),
            headers.join(", ")
        ));
    }

    let (reports, ..) = probe(&sites_file);

    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(reports.iter().all(|r| r.error.is_none() && r.code == 200), "{reports:?}");
    // (case, the site, the server of the other origin, the request it got)
    for (case, site, server, path) in [
        ("another port", &to_other_port, &other, "/elsewhere"),
        ("another host name", &to_other_host, &to_other_host, "/landed"),
        ("on the way back", &there_and_back, &other, "/bounce"),
        ("back after another origin", &there_and_back, &there_and_back, "/back"),
    ] {
        let requests = site.requests();
        let first = request_to(&requests, "/");
        assert_eq!(secrets_in(first).len(), SECRET_HEADERS.len(), "{case}: the site gets its headers: {first:?}");
        let requests = server.requests();
        let leaked = secrets_in(request_to(&requests, path));
        assert!(leaked.is_empty(), "{case}: {path} got {leaked:?}");
    }
}

#[test]
fn a_site_header_is_sent_again_after_a_redirect_on_the_same_origin() {
    let site =
        RecordingServer::start(|request| if request.path == "/" { redirect_to("/landed") } else { ok_with("landed") });
    let (reports, ..) = probe(&format!("[[site]]\nurl = \"{}\"\nheaders = {{ Cookie = \"a=1\" }}\n", site.url("/")));

    assert_eq!((reports[0].code, reports[0].redirects), (200, 1), "{:?}", reports[0]);
    let requests = site.requests();
    assert_eq!(request_to(&requests, "/landed").header("cookie"), Some("a=1"), "{requests:?}");
}

#[test]
fn url_credentials_are_sent_as_basic_authentication_to_the_site_origin_only() {
    let other = RecordingServer::start(|_| ok_with("elsewhere"));
    let elsewhere = other.url("/elsewhere");
    let site = RecordingServer::start(move |request| match request.path.as_str() {
        "/" => redirect_to("/then"),
        "/then" => redirect_to(&elsewhere),
        _ => ok_with("?"),
    });
    let url = format!("http://{USERINFO}@127.0.0.1:{}/", site.port);

    let (reports, ..) = probe(&format!("[[site]]\nurl = \"{url}\"\n"));

    assert_eq!((reports[0].code, reports[0].redirects), (200, 2), "{:?}", reports[0]);
    let requests = site.requests();
    for path in ["/", "/then"] {
        let request = request_to(&requests, path);
        assert_eq!(request.header("authorization"), Some(BASIC), "{path}: {request:?}");
        assert_eq!(request.header("host"), Some(format!("127.0.0.1:{}", site.port).as_str()), "{path}");
    }
    let away = other.requests();
    let away = request_to(&away, "/elsewhere");
    assert_eq!(away.header("authorization"), None, "another origin got the credentials: {away:?}");
    assert_eq!(away.header("host"), Some(format!("127.0.0.1:{}", other.port).as_str()));
}

#[test]
fn url_credentials_appear_in_no_report_and_no_log_line() {
    let other = RecordingServer::start(|_| ok_with("elsewhere"));
    let elsewhere = other.url("/elsewhere");
    let site = RecordingServer::start(move |request| match request.path.as_str() {
        "/stay" => redirect_to("/landed"),
        "/leave" => redirect_to(&elsewhere),
        "/missing" => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
        _ => ok_with("landed"),
    });
    let base = format!("http://{USERINFO}@127.0.0.1:{}", site.port);
    let shown = format!("http://user:***@127.0.0.1:{}", site.port);
    let mut sites_file = String::new();
    for path in ["/stay", "/leave", "/missing"] {
        sites_file.push_str(&format!("[[site]]\nurl = \"{base}{path}\"\nexpect_status = 200\n\n"));
    }

    let (reports, stdout, log) = probe(&sites_file);

    let by_path = |path: &str| {
        let url = format!("{shown}{path}");
        reports.iter().find(|r| r.url == url).unwrap_or_else(|| panic!("no report with url {url}: {reports:?}"))
    };
    assert_eq!(
        by_path("/stay").final_url.as_deref(),
        Some(format!("{shown}/landed").as_str()),
        "credentials went along"
    );
    assert_eq!(by_path("/leave").final_url.as_deref(), Some(other.url("/elsewhere").as_str()), "credentials stayed");
    assert!(by_path("/missing").error.is_some(), "a failed probe, logged at debug level");
    let logged = log.lines().find(|l| l.contains("probe failed")).unwrap_or_else(|| panic!("not logged:\n{log}"));
    assert!(logged.contains(&format!("{shown}/missing")), "the url is logged as shown: {logged}");
    for secret in ["p%40ss", "p@ss", "w0rd", BASIC, "dXNlcjpwQHNzIHcwcmQ"] {
        assert!(!stdout.contains(secret), "{secret:?} in a report:\n{stdout}");
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
}

#[test]
fn a_url_with_a_password_that_cannot_be_probed_is_refused_without_echoing_the_password() {
    // (case, URL, whether it is invalid in a sites file too: there a comma is part of the URL)
    for (case, url, in_file) in [
        ("scheme", "ftp://user:hunter2@example.com/", true),
        ("not a URL", "http://user:hunter2@exa mple.com/", true),
        ("no scheme", "user:hunter2@example.com", true),
        ("empty host", "http://user:hunter2@/", true),
        ("cut by a comma", "http://user:hun,ter2@example.com/", false),
    ] {
        let scratch = Scratch::new();
        let path = scratch.write("sites.toml", format!("[[site]]\nurl = \"{url}\"\n"));
        let from_file = Run::new("websentry-producer").arg("--dry-run").env("WEBSENTRY_SITES_FILE", path);
        let runs = [
            Some(("WEBSENTRY_SITES", Run::new("websentry-producer").arg("--dry-run").env("WEBSENTRY_SITES", url))),
            in_file.then_some(("WEBSENTRY_SITES_FILE", from_file)),
        ];
        for (setting, run) in runs.into_iter().flatten() {
            let output = run.output();
            assert_eq!(output.code, Some(2), "{case}, {setting}: {}", output.stderr);
            assert!(output.stderr.contains(setting), "{case}: {setting} not named in {}", output.stderr);
            for secret in ["hunter2", "hun", "ter2"] {
                assert!(!output.stderr.contains(secret), "{case}, {setting}: {secret} echoed: {}", output.stderr);
            }
        }
    }
}

#[test]
fn help_does_not_show_a_password_given_in_the_sites_variable() {
    let output =
        Run::new("websentry-producer").env("WEBSENTRY_SITES", "http://user:hunter2@127.0.0.1/").arg("--help").success();

    assert!(output.stdout.contains("WEBSENTRY_SITES"), "{}", output.stdout);
    assert!(!output.stdout.contains("hunter2") && !output.stderr.contains("hunter2"), "{}", output.stdout);
}
