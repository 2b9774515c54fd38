//! The `producer` and `consumer` images, built from the Dockerfile by podman, run with the
//! `docker run` lines of `docs/operations.md` (see [`crate::image`]): the producer probes an https
//! site and publishes its report to Kafka over mutual TLS; the consumer, a daemon, archives it into
//! PostgreSQL over TLS with `verify-full`, answers its probes and stops cleanly on `podman stop`;
//! `--migrate-only` migrates. Certificates come from folders mounted read-only, private keys readable by 65532 only.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use websentry_tests::{eventually, eventually_ok, hostile::TlsSite, http_get, Stack};

use crate::image::{image, readme_docker_runs, readme_line, CertificateFolder, Container, ControlImage};

const PATTERN: &str = r"version=(\d+)\.(\d+)";
/// The documented paths inside the containers.
const KAFKA_DIR: &str = "/etc/websentry/kafka";
const DATABASE_CA: &str = "/etc/websentry/database/ca.crt";
/// The consumer's grace: the documented `--stop-timeout`, the Kubernetes terminationGracePeriodSeconds.
const GRACE: Duration = Duration::from_secs(60);

/// The image as `docs/operations.md` names it, e.g. `websentry-producer:0.1.0`.
fn readme_image(stage: &str) -> String {
    format!("websentry-{stage}:{}", env!("CARGO_PKG_VERSION"))
}

/// The stack's Kafka CA, client certificate and key in a folder as `docs/operations.md` prescribes.
fn kafka_folder(stack: &Stack) -> CertificateFolder {
    CertificateFolder::new(&[
        (&stack.pki("ca.crt"), "ca.crt", false),
        (&stack.pki("client.crt"), "client.crt", false),
        (&stack.pki("client.key"), "client.key", true),
    ])
}

/// What replaces the documented examples: the stack's brokers and database (its user stands for both
/// the consumer's and the schema owner's), and the folders mounted in their place.
fn local(
    stack: &Stack,
    kafka: Option<&CertificateFolder>,
    database: &str,
) -> (HashMap<&'static str, String>, HashMap<&'static str, PathBuf>) {
    let values = HashMap::from([
        ("WEBSENTRY_KAFKA_HOSTS", stack.var("WEBSENTRY_KAFKA_HOSTS").to_owned()),
        ("WEBSENTRY_DATABASE_HOST", stack.var("WEBSENTRY_DATABASE_HOST").to_owned()),
        ("WEBSENTRY_DATABASE_NAME", database.to_owned()),
        ("WEBSENTRY_DATABASE_USER", stack.var("WEBSENTRY_DATABASE_USER").to_owned()),
        ("WEBSENTRY_DATABASE_PASSWORD", stack.var("WEBSENTRY_DATABASE_PASSWORD").to_owned()),
    ]);
    let mut volumes = HashMap::from([(DATABASE_CA, stack.pki("ca.crt"))]);
    if let Some(folder) = kafka {
        volumes.insert(KAFKA_DIR, folder.path.clone());
    }
    (values, volumes)
}

/// The documented producer line, run here: its sites replaced by `sites`.
fn readme_producer(stack: &Stack, kafka: &CertificateFolder, sites: &str) -> Container {
    let (mut values, volumes) = local(stack, Some(kafka), "unused");
    values.insert("WEBSENTRY_SITES", sites.to_owned());
    let (run, published) =
        Container::from_readme(&readme_line(&readme_image("producer"), &[]), &image("producer"), &values, &volumes);
    assert_eq!(published, None, "the producer serves nothing");
    run
}

#[test]
fn every_docker_run_line_of_the_readme_is_run_here() {
    let runs = readme_docker_runs();
    let known = [
        (readme_image("producer"), vec![]),
        (readme_image("consumer"), vec![]),
        (readme_image("consumer"), vec!["--migrate-only".to_owned()]),
    ];
    for words in &runs {
        let at = words
            .iter()
            .position(|w| w.starts_with("websentry-") && w.contains(':'))
            .unwrap_or_else(|| panic!("no image in {words:?}"));
        let run = (words[at].clone(), words[at + 1..].to_vec());
        assert!(known.contains(&run), "docs/operations.md runs {run:?}, which no test here runs: {}", words.join(" "));
    }
    assert_eq!(runs.len(), known.len(), "{runs:#?}");
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
    // The control of the documented "key readable by 65532 only": the images do not run as root.
    let stack = Stack::get();
    let folder = kafka_folder(stack);
    folder.key_owned_by_root("client.key");
    let exit = readme_producer(stack, &folder, "https://example.invalid/").output();
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

    // The documented producer line: one round, published over mutual TLS.
    readme_producer(stack, &kafka, &site.url)
        .volume(site.ca_file.as_ref().expect("a CA file"), "/etc/websentry/probe-ca.pem")
        .env("WEBSENTRY_PROBE_CAFILE", "/etc/websentry/probe-ca.pem")
        .env("WEBSENTRY_REGEXP", PATTERN)
        .env("WEBSENTRY_KAFKA_TOPIC", &topic)
        .success();
    let records = stack.read_topic(&topic);
    assert_eq!(records.len(), 1, "one report published");
    let report: serde_json::Value = serde_json::from_slice(&records[0].1).expect("a JSON report");
    assert_eq!((report["url"].as_str(), report["code"].as_i64()), (Some(site.url.as_str()), Some(200)), "{report}");
    println!("shipping: producer image published to {topic} over mutual TLS: {report}");

    // The documented consumer line, a daemon. With the host's network a port cannot be published:
    // WEBSENTRY_LISTEN puts the endpoint on a free port of the host's loopback instead.
    let line = readme_line(&readme_image("consumer"), &[]);
    let grace = line.iter().position(|w| w == "--stop-timeout").map(|at| line[at + 1].clone());
    assert_eq!(grace, Some(GRACE.as_secs().to_string()), "the documented --stop-timeout: {line:?}");
    let (values, volumes) = local(stack, Some(&kafka), &database.name);
    let (consumer, published) = Container::from_readme(&line, &image("consumer"), &values, &volumes);
    assert_eq!(published.as_deref(), Some("127.0.0.1:9187:9187"), "the documented line publishes on loopback");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let address = format!("127.0.0.1:{port}");
    let daemon = consumer
        .env("WEBSENTRY_KAFKA_TOPIC", &topic)
        .env("WEBSENTRY_DATABASE_PORT", stack.var("WEBSENTRY_DATABASE_PORT"))
        .env("WEBSENTRY_LISTEN", &address)
        .start();
    eventually_ok("/readyz answers 200", Duration::from_secs(60), || {
        let status = http_get(&address, "/readyz").map(|(status, _)| status);
        if status == Some(200) {
            return Ok(());
        }
        assert_eq!(daemon.status(), "running", "the consumer stopped before /readyz answered 200:\n{}", daemon.logs());
        Err(format!("/readyz answered {status:?}"))
    });
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
    let (values, volumes) = local(stack, None, &database.name);
    let line = readme_line(&readme_image("consumer"), &["--migrate-only"]);
    let (migrate, _) = Container::from_readme(&line, &image("consumer"), &values, &volumes);
    migrate.env("WEBSENTRY_DATABASE_PORT", stack.var("WEBSENTRY_DATABASE_PORT")).success();
    let applied = database.count("SELECT count(*) FROM websentry_migrations");
    assert!(applied >= 1, "no migration recorded");
    assert_eq!(database.count("SELECT count(*) FROM reports"), 0);
    println!("shipping: consumer image --migrate-only applied {applied} migration(s)");
}
