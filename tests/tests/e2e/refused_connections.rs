//! A service that refuses us, or is not there, ends the run with exit code 1 and one clear line.

use websentry_tests::{RunOutput, SiteServer, Stack};

fn assert_one_line_failure(output: &RunOutput, fragment: &str) {
    assert_eq!(output.code, Some(1), "stderr:\n{}", output.stderr);
    let lines = output.error_lines();
    assert_eq!(lines.len(), 1, "one error line expected:\n{}", output.stderr);
    assert!(lines[0].contains(fragment), "expected {fragment:?} in {:?}", lines[0]);
    assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
}

#[test]
fn a_client_certificate_from_an_untrusted_ca_is_refused_by_the_broker() {
    let stack = Stack::get();
    let server = SiteServer::start();
    let output = stack
        .producer("sitecheck")
        .env("WEBSENTRY_KAFKA_CERTFILE", stack.var("WEBSENTRY_STACK_UNTRUSTED_CERTFILE"))
        .env("WEBSENTRY_KAFKA_KEY", stack.var("WEBSENTRY_STACK_UNTRUSTED_KEY"))
        .env("WEBSENTRY_KAFKA_TIMEOUT", "3")
        .env("WEBSENTRY_SITES", server.url("/ok"))
        .output();
    assert_one_line_failure(&output, "cannot reach Kafka");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_broker_whose_certificate_is_not_signed_by_our_ca_is_refused() {
    let stack = Stack::get();
    let output = stack
        .producer("sitecheck")
        .env("WEBSENTRY_KAFKA_CAFILE", stack.pki("untrusted-ca.crt").display().to_string())
        .env("WEBSENTRY_KAFKA_TIMEOUT", "3")
        .env("WEBSENTRY_SITES", "http://127.0.0.1:9/")
        .output();
    assert_one_line_failure(&output, "cannot reach Kafka");
}

#[test]
fn an_unreachable_database_fails_after_its_timeout_without_showing_the_password() {
    let stack = Stack::get();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port().to_string();
    drop(closed);
    let output = stack
        .consumer_of("sitecheck", "websentry")
        .env("WEBSENTRY_DATABASE_PORT", port)
        .env("WEBSENTRY_DATABASE_TIMEOUT", "3")
        .output();
    assert_one_line_failure(&output, "cannot connect to PostgreSQL");
    assert!(!output.stderr.contains(stack.var("WEBSENTRY_DATABASE_PASSWORD")));
}

#[test]
fn a_wrong_database_password_is_refused_and_never_printed() {
    let stack = Stack::get();
    let output =
        stack.consumer_of("sitecheck", "websentry").env("WEBSENTRY_DATABASE_PASSWORD", "Wrong-Password-123").output();
    assert_one_line_failure(&output, "password authentication failed");
    assert!(!output.stderr.contains("Wrong-Password-123"), "{}", output.stderr);
}

#[test]
fn verify_full_refuses_a_database_certificate_outside_the_trusted_roots() {
    let stack = Stack::get();
    let output = stack
        .consumer_of("sitecheck", "websentry")
        .without_env("WEBSENTRY_DATABASE_CAFILE")
        .env("WEBSENTRY_DATABASE_TIMEOUT", "5")
        .output();
    assert_one_line_failure(&output, "cannot connect to PostgreSQL");
    assert!(output.stderr.contains("certificate"), "the cause names the certificate: {}", output.stderr);
}
