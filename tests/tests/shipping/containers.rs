//! The `producer` and `consumer` images, built from the Dockerfile by podman, run as the README's
//! `docker run` lines say (see [`crate::image`]): the producer probes an https site and publishes
//! its report to Kafka over mutual TLS; the consumer, a daemon, archives it into PostgreSQL over
//! TLS with `verify-full`, answers its probes and stops cleanly on `podman stop`; `--migrate-only`
//! migrates. Certificates come from folders mounted read-only, private keys readable by 65532 only.

use std::time::{Duration, Instant};

use websentry_tests::{eventually, hostile::TlsSite, http_get, Stack};

use crate::image::{image, CertificateFolder, Container, ControlImage};

const PATTERN: &str = r"version=(\d+)\.(\d+)";
/// The README's paths inside the containers.
const KAFKA_DIR: &str = "/etc/websentry/kafka";
const DATABASE_CA: &str = "/etc/websentry/database/ca.crt";
/// The README's `--stop-timeout` (the Kubernetes grace period is the same 60 s).
const GRACE: Duration = Duration::from_secs(60);

/// The stack's Kafka CA, client certificate and key in a folder as the README prescribes.
fn kafka_folder(stack: &Stack) -> CertificateFolder {
    CertificateFolder::new(&[
        (&stack.pki("ca.crt"), "ca.crt", false),
        (&stack.pki("client.crt"), "client.crt", false),
        (&stack.pki("client.key"), "client.key", true),
    ])
}

/// The README's Kafka lines: the folder mounted read-only, the settings pointing into it.
fn with_kafka(run: Container, stack: &Stack, folder: &CertificateFolder, topic: &str) -> Container {
    run.volume(&folder.path, KAFKA_DIR)
        .env("WEBSENTRY_KAFKA_HOSTS", stack.var("WEBSENTRY_KAFKA_HOSTS"))
        .env("WEBSENTRY_KAFKA_CAFILE", format!("{KAFKA_DIR}/ca.crt"))
        .env("WEBSENTRY_KAFKA_CERTFILE", format!("{KAFKA_DIR}/client.crt"))
        .env("WEBSENTRY_KAFKA_KEY", format!("{KAFKA_DIR}/client.key"))
        .env("WEBSENTRY_KAFKA_TOPIC", topic)
}

/// The README's database lines: the CA file mounted read-only, `verify-full`, the password passed
/// as `-e WEBSENTRY_DATABASE_PASSWORD` from podman's environment, not on its command line.
fn with_database(run: Container, stack: &Stack, database: &str) -> Container {
    run.volume(stack.pki("ca.crt"), DATABASE_CA)
        .env("WEBSENTRY_DATABASE_HOST", stack.var("WEBSENTRY_DATABASE_HOST"))
        .env("WEBSENTRY_DATABASE_PORT", stack.var("WEBSENTRY_DATABASE_PORT"))
        .env("WEBSENTRY_DATABASE_NAME", database)
        .env("WEBSENTRY_DATABASE_USER", stack.var("WEBSENTRY_DATABASE_USER"))
        .env_passed("WEBSENTRY_DATABASE_PASSWORD", stack.var("WEBSENTRY_DATABASE_PASSWORD"))
        .env("WEBSENTRY_DATABASE_SSLMODE", "verify-full")
        .env("WEBSENTRY_DATABASE_CAFILE", DATABASE_CA)
}

#[test]
fn both_images_answer_version_and_help() {
    for (stage, binary) in [("producer", "websentry-producer"), ("consumer", "websentry-consumer")] {
        let version = Container::of(image(stage)).arg("--version").success();
        assert_eq!(version.stdout.trim(), format!("{binary} {}", env!("CARGO_PKG_VERSION")));
        let help = Container::of(image(stage)).arg("--help").success();
        assert!(help.stdout.contains("WEBSENTRY_KAFKA_HOSTS"), "{binary} --help:\n{}", help.stdout);
        println!(
            "shipping: podman run {} --version → {:?}; --help: {} lines",
            image(stage),
            version.stdout.trim(),
            help.stdout.lines().count()
        );
    }
}

#[test]
fn a_dynamically_linked_program_does_not_run_in_such_an_image() {
    // The control: a FROM scratch image has no loader and no libc, so the runs above mean that the
    // binaries need nothing but themselves.
    let control = ControlImage::with_single_file(std::path::Path::new("/bin/ls"));
    let exit = Container::of(&control.tag).arg("/").output();
    assert_ne!(exit.code, Some(0), "/bin/ls ran in a scratch image without its libc");
    println!("shipping: control: /bin/ls in a FROM scratch image exits {:?}: {}", exit.code, exit.stderr.trim());
}

#[test]
fn the_producer_image_probes_an_https_site_trusted_through_a_mounted_ca_file() {
    let site = TlsSite::signed_by_test_ca("<html>version=4.2</html>");
    let ca_file = site.ca_file.as_ref().expect("a CA file");
    let dry_run = |with_ca: bool| {
        let mut run = Container::of(image("producer"))
            .arg("--dry-run")
            .env("WEBSENTRY_SITES", &site.url)
            .env("WEBSENTRY_REGEXP", PATTERN);
        if with_ca {
            run = run
                .volume(ca_file, "/etc/websentry/probe-ca.pem")
                .env("WEBSENTRY_PROBE_CAFILE", "/etc/websentry/probe-ca.pem");
        }
        let exit = run.success();
        let report: serde_json::Value = serde_json::from_str(exit.stdout.trim()).expect("one JSON report on stdout");
        report
    };

    let trusted = dry_run(true);
    assert_eq!(trusted["url"], site.url.as_str());
    assert_eq!(trusted["code"], 200, "{trusted}");
    assert_eq!(trusted["regexp_match"], "42", "{trusted}");
    println!("shipping: producer image --dry-run with WEBSENTRY_PROBE_CAFILE: {trusted}");

    let untrusted = dry_run(false);
    assert_eq!(untrusted["code"], 0, "without the CA file the site must not be trusted: {untrusted}");
    assert_eq!(untrusted["error"]["kind"], "tls", "{untrusted}");
}

#[test]
fn a_key_the_images_user_cannot_read_stops_the_producer_naming_the_setting() {
    // The control of the README's "key readable by 65532 only": the images do not run as root.
    let stack = Stack::get();
    let folder = kafka_folder(stack);
    folder.key_owned_by_root("client.key");
    let exit = with_kafka(Container::of(image("producer")), stack, &folder, "sitecheck")
        .env("WEBSENTRY_SITES", "https://example.invalid/")
        .output();
    assert_eq!(exit.code, Some(2), "a key only root can read must be refused:\n{}", exit.stderr);
    assert!(exit.stderr.contains("WEBSENTRY_KAFKA_KEY"), "{}", exit.stderr);
    println!("shipping: producer image with a root-only key: exit 2, {}", exit.stderr.trim());
}

#[test]
fn the_readme_lines_publish_over_mutual_tls_and_the_consumer_daemon_archives_and_stops_cleanly() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let database = stack.create_database();
    let site = TlsSite::signed_by_test_ca("<html>version=4.2</html>");
    let kafka = kafka_folder(stack);

    // The producer: one round, published over mutual TLS.
    let producer = with_kafka(Container::of(image("producer")), stack, &kafka, &topic)
        .volume(site.ca_file.as_ref().expect("a CA file"), "/etc/websentry/probe-ca.pem")
        .env("WEBSENTRY_PROBE_CAFILE", "/etc/websentry/probe-ca.pem")
        .env("WEBSENTRY_SITES", &site.url)
        .env("WEBSENTRY_REGEXP", PATTERN);
    producer.success();
    let records = stack.read_topic(&topic);
    assert_eq!(records.len(), 1, "one report published");
    let report: serde_json::Value = serde_json::from_slice(&records[0].1).expect("a JSON report");
    assert_eq!((report["url"].as_str(), report["code"].as_i64()), (Some(site.url.as_str()), Some(200)), "{report}");
    println!("shipping: producer image published to {topic} over mutual TLS: {report}");

    // The consumer as the README's daemon. With the host's network a port cannot be published:
    // WEBSENTRY_LISTEN puts the endpoint on a free port of the host's loopback instead.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let address = format!("127.0.0.1:{port}");
    let consumer =
        with_database(with_kafka(Container::of(image("consumer")), stack, &kafka, &topic), stack, &database.name)
            .option("--stop-timeout")
            .option(GRACE.as_secs().to_string())
            .env("WEBSENTRY_CONSUMER_ENABLE_DAEMON", "true")
            .env("WEBSENTRY_LISTEN", &address);
    let daemon = consumer.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(&address, "/readyz").map(|(status, _)| status) != Some(200) {
        assert!(
            Instant::now() < deadline && daemon.status() == "running",
            "/readyz never answered 200:\n{}",
            daemon.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eventually("the report is archived", Duration::from_secs(30), || {
        database.try_count("SELECT count(*) FROM reports WHERE code = 200 AND regexp_match = '42'") == Some(1)
    });
    assert_eq!(http_get(&address, "/healthz").map(|(status, _)| status), Some(200), "/healthz");
    let (status, metrics) = http_get(&address, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200);
    assert!(metrics.contains("websentry_reports_archived_total 1"), "{metrics}");

    let (code, took) = daemon.stop();
    let logs = daemon.logs();
    assert_eq!(code, 0, "podman stop: the consumer must exit 0 on SIGTERM:\n{logs}");
    assert!(took < GRACE, "podman stop took {took:?}, past the {GRACE:?} grace (killed?)");
    assert!(!logs.contains(stack.var("WEBSENTRY_DATABASE_PASSWORD")), "the password reached the log");
    assert_eq!(database.count("SELECT count(*) FROM reports"), 1, "archived once");
    println!(
        "shipping: consumer image (daemon) archived it with verify-full, /readyz 200 on {address}; podman stop: exit {code} after {:.1} s",
        took.as_secs_f64()
    );
}

#[test]
fn the_consumer_image_migrates_only_with_no_kafka_settings() {
    let stack = Stack::get();
    let database = stack.create_database();
    with_database(Container::of(image("consumer")), stack, &database.name).arg("--migrate-only").success();
    let applied = database.count("SELECT count(*) FROM websentry_migrations");
    assert!(applied >= 1, "no migration recorded");
    assert_eq!(database.count("SELECT count(*) FROM reports"), 0);
    println!("shipping: consumer image --migrate-only applied {applied} migration(s)");
}
