//! Bad configuration exits 2 with one line naming the setting, before any network work: no panic,
//! no value that overflows later, no secret in the message.

use std::time::Duration;

use websentry_tests::{Run, RunOutput, Scratch, Stack, TestDatabase};

/// A topic that does not exist: a bad setting that slipped through fails to publish rather than
/// writing to a topic other tests read.
const NO_TOPIC: &str = "websentry-bad-configuration-no-such-topic";

/// One bad configuration and what its single error line must say.
struct Case {
    name: String,
    run: Run,
    /// `WEBSENTRY_X (--x)`: the variable and the flag.
    setting: &'static str,
    /// What is wrong, as the line says it.
    problem: String,
}

fn case(name: impl Into<String>, run: Run, setting: &'static str, problem: impl Into<String>) -> Case {
    Case { name: name.into(), run, setting, problem: problem.into() }
}

/// Runs each case and checks that it exits 2 with exactly one line that names its setting and
/// problem, no panic, and none of `secrets`.
fn assert_each_is_refused_on_one_line(program: &str, cases: Vec<Case>, secrets: &[&str]) {
    for Case { name, run, setting, problem } in cases {
        let output = run.output();
        assert_eq!(output.code, Some(2), "{name}: exit code; stderr: {}", output.stderr);
        assert_eq!(output.error_lines().len(), 1, "{name}: one error line expected: {}", output.stderr);
        assert_eq!(output.stderr.lines().count(), 1, "{name}: nothing but the error line expected: {}", output.stderr);
        let line = output.error_lines()[0];
        let named = format!("{program}: error: {setting}: ");
        assert!(line.starts_with(&named), "{name}: the line does not start with {named:?}: {line}");
        assert!(line.contains(&problem), "{name}: {problem:?} not said in: {line}");
        assert_no_panic(&name, &output);
        for secret in secrets {
            assert!(!output.stderr.contains(secret), "{name}: a secret is shown: {}", output.stderr);
        }
    }
}

fn assert_no_panic(name: &str, output: &RunOutput) {
    for sign in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!output.stderr.contains(sign), "{name}: {sign:?} in stderr: {}", output.stderr);
    }
}

#[test]
fn the_producer_names_each_bad_setting_and_exits_2() {
    let stack = Stack::get();
    let broken = Scratch::new();
    let broken = broken.write("broken.pem", "-----BEGIN CERTIFICATE-----\nnot base64 @@@\n-----END CERTIFICATE-----\n");
    let cases = vec![
        case("no brokers", publishing(stack).without_env("WEBSENTRY_KAFKA_HOSTS"), KAFKA_HOSTS, "is required"),
        case("broken CA", publishing(stack).env("WEBSENTRY_KAFKA_CAFILE", &broken), KAFKA_CAFILE, &broken),
        case(
            "no key file",
            publishing(stack).env("WEBSENTRY_KAFKA_KEY", "/nonexistent/client.key"),
            KAFKA_KEY,
            "cannot read",
        ),
        case(
            "a certificate as the key",
            publishing(stack).env("WEBSENTRY_KAFKA_KEY", stack.pki("ca.crt").display().to_string()),
            KAFKA_KEY,
            "private key",
        ),
        case("a URL without scheme", probing().env("WEBSENTRY_SITES", "example.com"), SITES, "is not a URL"),
        case("no sites", probing().without_env("WEBSENTRY_SITES"), SITES, "names no site"),
        case("a pattern that does not compile", probing().env("WEBSENTRY_REGEXP", "(unclosed"), REGEXP, "compile"),
        case("an interval in words", probing().env("WEBSENTRY_INTERVAL", "every minute"), INTERVAL, "whole number"),
        case(
            "an unknown log level",
            probing().env("WEBSENTRY_LOGLEVEL", "LOUD"),
            "WEBSENTRY_LOGLEVEL (--loglevel)",
            "'LOUD'",
        ),
    ];
    assert_each_is_refused_on_one_line("websentry-producer", cases, &[]);
}

#[test]
fn every_producer_number_out_of_range_overflowing_or_garbage_exits_2_naming_it() {
    let stack = Stack::get();
    const MAX: &str = "18446744073709551615";
    const PAST_MAX: &str = "18446744073709551616";
    const OUT: &str = "is out of range";
    const GARBAGE: &str = "is not a whole number";
    let mut cases = Vec::new();
    for (variable, setting, value, problem) in [
        ("WEBSENTRY_CONCURRENCY", CONCURRENCY, MAX, OUT),
        ("WEBSENTRY_CONCURRENCY", CONCURRENCY, PAST_MAX, OUT),
        ("WEBSENTRY_CONCURRENCY", CONCURRENCY, "0", OUT),
        ("WEBSENTRY_CONCURRENCY", CONCURRENCY, "100001", OUT),
        ("WEBSENTRY_CONCURRENCY", CONCURRENCY, "-1", OUT),
        ("WEBSENTRY_CONCURRENCY", CONCURRENCY, "many", GARBAGE),
        ("WEBSENTRY_CONCURRENCY", CONCURRENCY, "", "is set but empty"),
        ("WEBSENTRY_TIMEOUT", TIMEOUT, MAX, OUT),
        ("WEBSENTRY_TIMEOUT", TIMEOUT, "0", OUT),
        ("WEBSENTRY_TIMEOUT", TIMEOUT, "3601", OUT),
        ("WEBSENTRY_TIMEOUT", TIMEOUT, "1.5", GARBAGE),
        ("WEBSENTRY_TIMEOUT", TIMEOUT, "10s", GARBAGE),
        ("WEBSENTRY_INTERVAL", INTERVAL, MAX, OUT),
        ("WEBSENTRY_INTERVAL", INTERVAL, "86401", OUT),
        ("WEBSENTRY_INTERVAL", INTERVAL, "-60", OUT),
        ("WEBSENTRY_BODY_LIMIT", BODY_LIMIT, MAX, OUT),
        ("WEBSENTRY_BODY_LIMIT", BODY_LIMIT, "0", OUT),
        ("WEBSENTRY_BODY_LIMIT", BODY_LIMIT, "67108865", OUT),
        ("WEBSENTRY_BODY_LIMIT", BODY_LIMIT, "1MiB", GARBAGE),
        ("WEBSENTRY_MAX_REDIRECTS", MAX_REDIRECTS, "4294967296", OUT),
        ("WEBSENTRY_MAX_REDIRECTS", MAX_REDIRECTS, MAX, OUT),
        ("WEBSENTRY_MAX_REDIRECTS", MAX_REDIRECTS, "51", OUT),
        ("WEBSENTRY_MAX_REDIRECTS", MAX_REDIRECTS, "ten", GARBAGE),
    ] {
        cases.push(case(format!("{variable}={value:?}"), probing().env(variable, value), setting, problem));
    }
    for value in [MAX, "0", "3601"] {
        let run = publishing(stack).env("WEBSENTRY_KAFKA_TIMEOUT", value);
        cases.push(case(format!("WEBSENTRY_KAFKA_TIMEOUT={value}"), run, KAFKA_TIMEOUT, "out of range"));
    }
    assert_each_is_refused_on_one_line("websentry-producer", cases, &[]);
}

#[test]
fn an_empty_path_exits_2_with_the_one_line_of_every_other_setting() {
    let stack = Stack::get();
    let cases = vec![
        case("empty CA", publishing(stack).env("WEBSENTRY_KAFKA_CAFILE", ""), KAFKA_CAFILE, "is set but empty"),
        case("empty cert", publishing(stack).env("WEBSENTRY_KAFKA_CERTFILE", ""), KAFKA_CERTFILE, "is set but empty"),
        case("empty key", publishing(stack).env("WEBSENTRY_KAFKA_KEY", ""), KAFKA_KEY, "is set but empty"),
        case("empty sites file", probing().env("WEBSENTRY_SITES_FILE", ""), SITES_FILE, "is set but empty"),
        case("empty probe CA", probing().env("WEBSENTRY_PROBE_CAFILE", ""), PROBE_CAFILE, "is set but empty"),
    ];
    assert_each_is_refused_on_one_line("websentry-producer", cases, &[]);
}

#[test]
fn a_broker_address_with_a_stray_character_exits_2_naming_the_broker() {
    let stack = Stack::get();
    let mut cases = Vec::new();
    for (hosts, problem) in [
        ("127.0.0.1 :9093", "broker '127.0.0.1 :9093': contains whitespace"),
        ("host:9093 ", "broker 'host:9093 ': contains whitespace"),
        ("a:9093, b:9093", "broker ' b:9093': contains whitespace"),
        ("kafka_1:9093", "host 'kafka_1' contains '_'"),
        ("kafka:65536", "port '65536' is not a number from 1 to 65535"),
        ("kafka:0", "port '0'"),
        ("999.0.0.1:9093", "host '999.0.0.1' is not an IPv4 address"),
        ("a:9093,,b:9093", "has an empty entry between commas"),
        ("[::1]:9093", "IPv6 literals are not supported"),
    ] {
        let run = publishing(stack).env("WEBSENTRY_KAFKA_HOSTS", hosts);
        cases.push(case(format!("WEBSENTRY_KAFKA_HOSTS={hosts:?}"), run, KAFKA_HOSTS, problem));
    }
    assert_each_is_refused_on_one_line("websentry-producer", cases, &[]);
}

#[test]
fn a_url_listed_twice_exits_2_naming_both_places() {
    let scratch = Scratch::new();
    let twice_in_file = scratch.write(
        "twice.toml",
        "[[site]]\nurl = \"http://127.0.0.1:9/\"\n\n[[site]]\nurl = \"http://127.0.0.1:9\"\nmethod = \"HEAD\"\n",
    );
    let also_listed = scratch.write("also-listed.toml", "[[site]]\nurl = \"http://127.0.0.1:9/\"\n");
    let cases = vec![
        case(
            "twice in WEBSENTRY_SITES",
            probing().env("WEBSENTRY_SITES", "http://127.0.0.1:9/,http://127.0.0.1:8/ http://127.0.0.1:9"),
            SITES,
            "'http://127.0.0.1:9/' is listed twice (entries 1 and 3)",
        ),
        case(
            "twice in the sites file",
            probing().without_env("WEBSENTRY_SITES").env("WEBSENTRY_SITES_FILE", &twice_in_file),
            SITES_FILE,
            "line 5: 'http://127.0.0.1:9/' is already listed at line 2",
        ),
        case(
            "in WEBSENTRY_SITES and in the sites file",
            probing().env("WEBSENTRY_SITES_FILE", &also_listed),
            SITES_FILE,
            "line 2: 'http://127.0.0.1:9/' is also entry 1 of WEBSENTRY_SITES",
        ),
    ];
    assert_each_is_refused_on_one_line("websentry-producer", cases, &[]);
}

#[test]
fn a_sites_file_with_a_framing_header_or_an_unusable_header_file_exits_2_without_showing_a_value() {
    const SECRET: &str = "s3cret-never-shown";
    let scratch = Scratch::new();
    let mut cases = Vec::new();
    for header in
        ["Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "TE", "Keep-Alive", "Proxy-Connection"]
    {
        let file = scratch.write(
            &format!("{header}.toml"),
            format!("[[site]]\nurl = \"http://127.0.0.1:9/\"\nheaders = {{ \"{header}\" = \"{SECRET}\" }}\n"),
        );
        cases.push(case(format!("a {header} header"), with_sites_file(&file), SITES_FILE, "is set by the prober"));
    }
    let not_a_value = scratch.write("not-a-value", format!("Bearer {SECRET}\nsecond line\n"));
    let empty = scratch.write("empty", "\n");
    for (name, path, problem) in [
        ("a missing header file", "/nonexistent/api-token".to_owned(), "cannot read /nonexistent/api-token"),
        ("an empty header file", empty.clone(), "is empty"),
        ("a header file that is no header value", not_a_value.clone(), "does not hold a valid header value"),
    ] {
        let file = scratch.write(
            &format!("{name}.toml"),
            format!(
                "[[site]]\nurl = \"http://127.0.0.1:9/\"\nheaders = {{ Authorization = {{ file = \"{path}\" }} }}\n"
            ),
        );
        cases.push(case(name, with_sites_file(&file), SITES_FILE, "line 3: header 'authorization': "));
        cases.push(case(format!("{name}, said"), with_sites_file(&file), SITES_FILE, problem));
    }
    let inline = scratch.write(
        "inline.toml",
        format!("[[site]]\nurl = \"http://127.0.0.1:9/\"\nheaders = {{ Authorization = \"{SECRET}\\u0001\" }}\n"),
    );
    cases.push(case("an inline value that is no header value", with_sites_file(&inline), SITES_FILE, "not valid"));
    let site_timeout = scratch.write("timeout.toml", "[[site]]\nurl = \"http://127.0.0.1:9/\"\ntimeout = 3601\n");
    cases.push(case("a site timeout past an hour", with_sites_file(&site_timeout), SITES_FILE, "1 to 3600 seconds"));
    assert_each_is_refused_on_one_line("websentry-producer", cases, &[SECRET]);
}

#[test]
fn a_pattern_too_long_or_compiling_too_large_exits_2_naming_it() {
    let scratch = Scratch::new();
    let huge = "a".repeat(1_000_000);
    let in_file = scratch.write("huge.toml", format!("[[site]]\nurl = \"http://127.0.0.1:9/\"\nregexp = '{huge}'\n"));
    let cases = vec![
        case(
            "a long WEBSENTRY_REGEXP",
            probing().env("WEBSENTRY_REGEXP", "a".repeat(5000)),
            REGEXP,
            "is 5000 bytes long; a pattern may have at most 4096",
        ),
        case(
            "a WEBSENTRY_REGEXP that compiles huge",
            probing().env("WEBSENTRY_REGEXP", r"\w{1000}"),
            REGEXP,
            "compiles to more than 1048576 bytes",
        ),
        case(
            "a long regexp in the sites file",
            with_sites_file(&in_file),
            SITES_FILE,
            "line 3: regexp is 1000000 bytes long; a pattern may have at most 4096",
        ),
    ];
    assert_each_is_refused_on_one_line("websentry-producer", cases, &[]);
}

#[test]
fn a_fifo_socket_or_device_given_as_a_file_exits_2_naming_it_instead_of_waiting_on_it() {
    let stack = Stack::get();
    let database = stack.create_database();
    let scratch = Scratch::new();
    let fifo = scratch.fifo("fifo");
    let socket = scratch.path().join("socket").display().to_string();
    let _listening = std::os::unix::net::UnixListener::bind(&socket).expect("a socket");
    let header_from_fifo = scratch.write(
        "header-from-fifo.toml",
        format!("[[site]]\nurl = \"http://127.0.0.1:9/\"\nheaders = {{ Authorization = {{ file = \"{fifo}\" }} }}\n"),
    );
    let is_fifo = format!("{fifo} is not a regular file: it is a FIFO (named pipe)");
    // Before, opening a FIFO waited for a writer: the start hung, silent, until killed.
    let quick = |run: Run| run.timeout(Duration::from_secs(20));
    let producer_cases = vec![
        case("the sites file", quick(probing().env("WEBSENTRY_SITES_FILE", &fifo)), SITES_FILE, &is_fifo),
        case(
            "a header value file",
            quick(with_sites_file(&header_from_fifo)),
            SITES_FILE,
            format!("line 3: header 'authorization': {is_fifo}"),
        ),
        case("the probe CA", quick(probing().env("WEBSENTRY_PROBE_CAFILE", &fifo)), PROBE_CAFILE, &is_fifo),
        case("the Kafka CA", quick(publishing(stack).env("WEBSENTRY_KAFKA_CAFILE", &fifo)), KAFKA_CAFILE, &is_fifo),
        case(
            "the Kafka certificate",
            quick(publishing(stack).env("WEBSENTRY_KAFKA_CERTFILE", &fifo)),
            KAFKA_CERTFILE,
            &is_fifo,
        ),
        case("the Kafka key", quick(publishing(stack).env("WEBSENTRY_KAFKA_KEY", &fifo)), KAFKA_KEY, &is_fifo),
        case(
            "a socket as the sites file",
            quick(probing().env("WEBSENTRY_SITES_FILE", &socket)),
            SITES_FILE,
            format!("{socket} is not a regular file: it is a socket"),
        ),
        case(
            "a device as the probe CA",
            quick(probing().env("WEBSENTRY_PROBE_CAFILE", "/dev/zero")),
            PROBE_CAFILE,
            "/dev/zero is not a regular file: it is a character device",
        ),
    ];
    assert_each_is_refused_on_one_line("websentry-producer", producer_cases, &[]);
    let consumer = || quick(archiving(stack, &database));
    let consumer_cases = vec![
        case("the database CA", consumer().env("WEBSENTRY_DATABASE_CAFILE", &fifo), DATABASE_CAFILE, &is_fifo),
        case("the Kafka CA", consumer().env("WEBSENTRY_KAFKA_CAFILE", &fifo), KAFKA_CAFILE, &is_fifo),
        case("the Kafka key", consumer().env("WEBSENTRY_KAFKA_KEY", &fifo), KAFKA_KEY, &is_fifo),
    ];
    assert_each_is_refused_on_one_line("websentry-consumer", consumer_cases, &[]);
}

#[test]
fn the_consumer_names_each_bad_setting_and_exits_2() {
    let stack = Stack::get();
    let database = stack.create_database();
    let consumer = || archiving(stack, &database);
    const MAX: &str = "18446744073709551615";
    let cases = vec![
        case("no password", consumer().without_env("WEBSENTRY_DATABASE_PASSWORD"), DATABASE_PASSWORD, "is required"),
        case(
            "empty password",
            consumer().env("WEBSENTRY_DATABASE_PASSWORD", ""),
            DATABASE_PASSWORD,
            "is set but empty",
        ),
        case("a port in words", consumer().env("WEBSENTRY_DATABASE_PORT", "postgres"), DATABASE_PORT, "whole number"),
        case("port 65536", consumer().env("WEBSENTRY_DATABASE_PORT", "65536"), DATABASE_PORT, "out of range"),
        case("port 0", consumer().env("WEBSENTRY_DATABASE_PORT", "0"), DATABASE_PORT, "out of range"),
        case("sslmode prefer", consumer().env("WEBSENTRY_DATABASE_SSLMODE", "prefer"), DATABASE_SSLMODE, "prefer"),
        case("empty database CA", consumer().env("WEBSENTRY_DATABASE_CAFILE", ""), DATABASE_CAFILE, "is set but empty"),
        case("database timeout", consumer().env("WEBSENTRY_DATABASE_TIMEOUT", MAX), DATABASE_TIMEOUT, "out of range"),
        case("database timeout 0", consumer().env("WEBSENTRY_DATABASE_TIMEOUT", "0"), DATABASE_TIMEOUT, "out of range"),
        case("daemon sometimes", consumer().env("WEBSENTRY_CONSUMER_ENABLE_DAEMON", "sometimes"), DAEMON, "yes/no"),
        case("no certificate", consumer().without_env("WEBSENTRY_KAFKA_CERTFILE"), KAFKA_CERTFILE, "is required"),
        case("empty key", consumer().env("WEBSENTRY_KAFKA_KEY", ""), KAFKA_KEY, "is set but empty"),
        case("kafka timeout", consumer().env("WEBSENTRY_KAFKA_TIMEOUT", MAX), KAFKA_TIMEOUT, "out of range"),
        case("spaced broker", consumer().env("WEBSENTRY_KAFKA_HOSTS", "127.0.0.1 :9093"), KAFKA_HOSTS, "whitespace"),
        case("batch max", consumer().env("WEBSENTRY_BATCH_MAX", MAX), BATCH_MAX, "out of range"),
        case("batch bytes", consumer().env("WEBSENTRY_BATCH_BYTES", "4294967296"), BATCH_BYTES, "out of range"),
    ];
    assert_each_is_refused_on_one_line("websentry-consumer", cases, &[stack.var("WEBSENTRY_DATABASE_PASSWORD")]);
    let migrated = database.try_count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
    assert_eq!(migrated, Some(0), "no case may start work, such as migrating the database");
}

const KAFKA_HOSTS: &str = "WEBSENTRY_KAFKA_HOSTS (--kafka-hosts)";
const KAFKA_CAFILE: &str = "WEBSENTRY_KAFKA_CAFILE (--kafka-cafile)";
const KAFKA_CERTFILE: &str = "WEBSENTRY_KAFKA_CERTFILE (--kafka-certfile)";
const KAFKA_KEY: &str = "WEBSENTRY_KAFKA_KEY (--kafka-key)";
const KAFKA_TIMEOUT: &str = "WEBSENTRY_KAFKA_TIMEOUT (--kafka-timeout)";
const SITES: &str = "WEBSENTRY_SITES (--sites)";
const SITES_FILE: &str = "WEBSENTRY_SITES_FILE (--sites-file)";
const REGEXP: &str = "WEBSENTRY_REGEXP (--regexp)";
const INTERVAL: &str = "WEBSENTRY_INTERVAL (--interval)";
const TIMEOUT: &str = "WEBSENTRY_TIMEOUT (--timeout)";
const CONCURRENCY: &str = "WEBSENTRY_CONCURRENCY (--concurrency)";
const BODY_LIMIT: &str = "WEBSENTRY_BODY_LIMIT (--body-limit)";
const MAX_REDIRECTS: &str = "WEBSENTRY_MAX_REDIRECTS (--max-redirects)";
const PROBE_CAFILE: &str = "WEBSENTRY_PROBE_CAFILE (--probe-cafile)";
const DAEMON: &str = "WEBSENTRY_CONSUMER_ENABLE_DAEMON (--daemon)";
const DATABASE_PASSWORD: &str = "WEBSENTRY_DATABASE_PASSWORD (--database-password)";
const DATABASE_PORT: &str = "WEBSENTRY_DATABASE_PORT (--database-port)";
const DATABASE_SSLMODE: &str = "WEBSENTRY_DATABASE_SSLMODE (--database-sslmode)";
const DATABASE_CAFILE: &str = "WEBSENTRY_DATABASE_CAFILE (--database-cafile)";
const DATABASE_TIMEOUT: &str = "WEBSENTRY_DATABASE_TIMEOUT (--database-timeout)";
const BATCH_MAX: &str = "WEBSENTRY_BATCH_MAX (--batch-max)";
const BATCH_BYTES: &str = "WEBSENTRY_BATCH_BYTES (--batch-bytes)";

/// A producer that would publish to the stack's Kafka (to a topic that does not exist).
fn publishing(stack: &Stack) -> Run {
    stack.producer(NO_TOPIC).env("WEBSENTRY_SITES", "http://127.0.0.1:9/")
}

/// A producer that would probe a closed local port and print its report (`--dry-run`).
fn probing() -> Run {
    Run::new("websentry-producer").arg("--dry-run").env("WEBSENTRY_SITES", "http://127.0.0.1:9/")
}

fn with_sites_file(path: &str) -> Run {
    probing().without_env("WEBSENTRY_SITES").env("WEBSENTRY_SITES_FILE", path)
}

/// A consumer that would archive into `database` from a topic that does not exist.
fn archiving(stack: &Stack, database: &TestDatabase) -> Run {
    stack.consumer(NO_TOPIC, database)
}
