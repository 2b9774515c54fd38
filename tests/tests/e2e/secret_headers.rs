//! A site header can take its value from a file (a mounted Secret, not the sites ConfigMap): the
//! value is read at start and sent to the site, and shown nowhere else.

use websentry_shared::report::Report;
use websentry_tests::{
    hostile::{ok_with, RecordingServer},
    Run, Scratch,
};

#[test]
fn a_header_value_read_from_a_file_is_sent_to_the_site_and_shown_nowhere_else() {
    let site = RecordingServer::start(|_| ok_with("healthy"));
    let token = format!("t0ken-{:016x}", rand::random::<u64>());
    let scratch = Scratch::new();
    scratch.write("api-token", format!("Bearer {token}\n"));
    let sites = format!(
        "[[site]]\nurl = \"{}\"\n\
         headers = {{ Authorization = {{ file = \"api-token\" }}, \"Accept-Language\" = \"en\" }}\n",
        site.url("/health")
    );
    let sites_file = scratch.write("sites.toml", sites);

    let output = Run::new("websentry-producer")
        .arg("--dry-run")
        .env("WEBSENTRY_SITES_FILE", sites_file)
        .env("WEBSENTRY_LOGLEVEL", "DEBUG")
        .output();

    assert_eq!(output.code, Some(0), "the run failed: {}", output.stderr);
    let requests = site.requests();
    assert_eq!(requests.len(), 1, "one request expected: {requests:?}");
    assert_eq!(requests[0].path, "/health");
    let sent: Vec<&str> =
        requests[0].headers.iter().filter(|(name, _)| name == "authorization").map(|(_, v)| v.as_str()).collect();
    assert_eq!(sent, [format!("Bearer {token}")], "the file's content once, without its newline");
    assert_eq!(requests[0].header("Accept-Language"), Some("en"));
    let report = Report::decode(output.stdout.trim().as_bytes()).expect("one report on stdout");
    assert_eq!(report.code, 200, "{:?}", report.error);
    assert!(!output.stdout.contains(&token), "the report shows the token: {}", output.stdout);
    assert!(!output.stderr.contains(&token), "a log line shows the token: {}", output.stderr);
}
