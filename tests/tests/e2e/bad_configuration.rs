//! Bad configuration exits 2 with one line naming the setting, before any network work.

use websentry_tests::{Run, Stack};

fn broken_pem() -> String {
    let path = std::env::temp_dir().join(format!("websentry-broken-{}.pem", std::process::id()));
    std::fs::write(&path, "-----BEGIN CERTIFICATE-----\nnot base64 @@@\n-----END CERTIFICATE-----\n").expect("write");
    path.display().to_string()
}

#[test]
fn the_producer_names_each_bad_setting_and_exits_2() {
    let stack = Stack::get();
    let broken = broken_pem();
    let cases: Vec<(&str, Run)> = vec![
        ("WEBSENTRY_KAFKA_HOSTS", base(stack).without_env("WEBSENTRY_KAFKA_HOSTS")),
        ("WEBSENTRY_KAFKA_CAFILE", base(stack).env("WEBSENTRY_KAFKA_CAFILE", broken.clone())),
        ("WEBSENTRY_KAFKA_KEY", base(stack).env("WEBSENTRY_KAFKA_KEY", "/nonexistent/client.key")),
        ("WEBSENTRY_KAFKA_KEY", base(stack).env("WEBSENTRY_KAFKA_KEY", stack.pki("ca.crt").display().to_string())),
        ("WEBSENTRY_SITES", base(stack).env("WEBSENTRY_SITES", "example.com")),
        ("WEBSENTRY_SITES", base(stack).without_env("WEBSENTRY_SITES")),
        ("WEBSENTRY_REGEXP", base(stack).env("WEBSENTRY_REGEXP", "(unclosed")),
        ("WEBSENTRY_INTERVAL", base(stack).env("WEBSENTRY_INTERVAL", "every minute")),
        ("WEBSENTRY_LOGLEVEL", base(stack).env("WEBSENTRY_LOGLEVEL", "LOUD")),
    ];
    for (setting, run) in cases {
        let output = run.output();
        assert_eq!(output.code, Some(2), "{setting}: {}", output.stderr);
        let lines: Vec<&str> = output.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{setting}: one line expected: {}", output.stderr);
        assert!(lines[0].starts_with("websentry-producer: error: "), "{setting}: {}", lines[0]);
        assert!(lines[0].contains(setting), "{setting} not named in {}", lines[0]);
    }
}

#[test]
fn the_consumer_names_each_bad_setting_and_exits_2() {
    let stack = Stack::get();
    let consumer =
        || Run::new("websentry-consumer").envs(stack.kafka_env("sitecheck")).envs(stack.database_env("websentry"));
    let cases: Vec<(&str, Run)> = vec![
        ("WEBSENTRY_DATABASE_PASSWORD", consumer().without_env("WEBSENTRY_DATABASE_PASSWORD")),
        ("WEBSENTRY_DATABASE_PORT", consumer().env("WEBSENTRY_DATABASE_PORT", "postgres")),
        ("WEBSENTRY_DATABASE_SSLMODE", consumer().env("WEBSENTRY_DATABASE_SSLMODE", "prefer")),
        ("WEBSENTRY_CONSUMER_ENABLE_DAEMON", consumer().env("WEBSENTRY_CONSUMER_ENABLE_DAEMON", "sometimes")),
        ("WEBSENTRY_KAFKA_CERTFILE", consumer().without_env("WEBSENTRY_KAFKA_CERTFILE")),
    ];
    for (setting, run) in cases {
        let output = run.output();
        assert_eq!(output.code, Some(2), "{setting}: {}", output.stderr);
        assert_eq!(output.stderr.lines().count(), 1, "{setting}: {}", output.stderr);
        assert!(output.stderr.contains(setting), "{setting} not named in {}", output.stderr);
        assert!(!output.stderr.contains(stack.var("WEBSENTRY_DATABASE_PASSWORD")), "{}", output.stderr);
    }
}

fn base(stack: &Stack) -> Run {
    Run::new("websentry-producer").envs(stack.kafka_env("sitecheck")).env("WEBSENTRY_SITES", "http://127.0.0.1:9/")
}
