//! The `producer` and `consumer` images of the Dockerfile, assembled and run as a runtime would
//! (see [`crate::image`]): they start, probe an https site with a CA from a mounted file, publish to
//! Kafka over mutual TLS and archive into PostgreSQL over TLS, with nothing but their binary.

use std::time::{Duration, Instant};

use websentry_tests::{hostile::TlsSite, http_get, Stack};

use crate::image::{dockerfile_stages, Image};

const IMAGES: [(&str, &str); 2] = [("producer", "websentry-producer"), ("consumer", "websentry-consumer")];
const PATTERN: &str = r"version=(\d+)\.(\d+)";

/// Settings as a container sees them: variables, and the host files mounted where they point.
#[derive(Debug, Default, Clone)]
struct Inside {
    env: Vec<(String, String)>,
    mounts: Vec<(String, String)>,
}

/// The stack's `WEBSENTRY_KAFKA_*` settings for `topic`, with the certificate files as the container
/// sees them, and the mounts that put them there.
fn kafka_inside(stack: &Stack, topic: &str) -> Inside {
    let mut env = Vec::new();
    let mut mounts = Vec::new();
    for (name, value) in stack.kafka_env(topic) {
        let inside = match name.as_str() {
            "WEBSENTRY_KAFKA_CAFILE" => "/pki/kafka/ca.crt",
            "WEBSENTRY_KAFKA_CERTFILE" => "/pki/kafka/client.crt",
            "WEBSENTRY_KAFKA_KEY" => "/pki/kafka/client.key",
            _ => {
                env.push((name, value));
                continue;
            }
        };
        mounts.push((value, inside.to_owned()));
        env.push((name, inside.to_owned()));
    }
    Inside { env, mounts }
}

/// As [`kafka_inside`], for the `WEBSENTRY_DATABASE_*` settings of `database`.
fn database_inside(stack: &Stack, database: &str) -> Inside {
    let mut env = Vec::new();
    let mut mounts = Vec::new();
    for (name, value) in stack.database_env(database) {
        if name == "WEBSENTRY_DATABASE_CAFILE" {
            mounts.push((value, "/pki/database/ca.crt".to_owned()));
            env.push((name, "/pki/database/ca.crt".to_owned()));
        } else {
            env.push((name, value));
        }
    }
    Inside { env, mounts }
}

#[test]
fn each_final_stage_is_scratch_with_one_binary_a_numeric_user_and_labels() {
    let stages = dockerfile_stages();
    let build = stages.iter().find(|s| s.name == "build").expect("a build stage");
    let runs = build.runs.join("\n");
    for needed in ["musl-tools", "rustup target add x86_64-unknown-linux-musl", "scripts/build-static"] {
        assert!(runs.contains(needed), "the build stage does not run {needed:?}:\n{runs}");
    }
    for (stage_name, binary) in IMAGES {
        let stage = stages.iter().find(|s| s.name == stage_name).unwrap_or_else(|| panic!("no stage {stage_name}"));
        let destination = format!("/{binary}");
        assert_eq!(stage.base, "scratch", "stage {stage_name}");
        assert_eq!(
            stage.copies,
            [(Some("build".to_owned()), format!("/out/{binary}"), destination.clone())],
            "stage {stage_name} copies exactly its binary"
        );
        let (uid, gid) = stage.numeric_user();
        assert_eq!(stage.entrypoint.as_slice(), std::slice::from_ref(&destination), "stage {stage_name} ENTRYPOINT");
        for label in ["title", "description", "version", "licenses", "source"] {
            let key = format!("org.opencontainers.image.{label}");
            assert!(stage.labels.contains(&key), "stage {stage_name} lacks the label {key}");
        }
        println!("shipping: image {stage_name}: FROM scratch, {destination} only, USER {uid}:{gid}, ENTRYPOINT {destination}");
    }
}

#[test]
fn both_images_answer_version_and_help_with_nothing_but_their_binary() {
    for (stage_name, binary) in IMAGES {
        let image = Image::assemble(stage_name);
        assert_eq!(image.files(), [format!("/{binary}")], "the image holds only its binary");

        let version = image.run().arg("--version").success();
        assert_eq!(version.stdout.trim(), format!("{binary} {}", env!("CARGO_PKG_VERSION")));
        let help = image.run().arg("--help").success();
        assert!(help.stdout.contains("WEBSENTRY_KAFKA_HOSTS"), "{binary} --help:\n{}", help.stdout);
        println!(
            "shipping: image {stage_name}: --version → {:?}; --help: {} lines",
            version.stdout.trim(),
            help.stdout.lines().count()
        );
    }
}

#[test]
fn a_dynamically_linked_program_does_not_run_in_such_a_sandbox() {
    // The control: proves the sandbox has no loader and no libc, so the images' runs above
    // mean something.
    let image = Image::with_single_file(std::path::Path::new("/bin/ls"), "/ls", "65532:65532");
    let exit = image.run().arg("/").output();
    assert_ne!(exit.code, Some(0), "/bin/ls ran without its libc: the sandbox is not empty");
    println!("shipping: control: /bin/ls in the same sandbox exits {:?}: {}", exit.code, exit.stderr.trim());
}

#[test]
fn the_producer_image_probes_an_https_site_trusted_through_a_mounted_ca_file() {
    let site = TlsSite::signed_by_test_ca("<html>version=4.2</html>");
    let ca_file = site.ca_file.as_ref().expect("a CA file");
    let image = Image::assemble("producer");
    let dry_run = |with_ca: bool| {
        let mut run = image.run().arg("--dry-run").env("WEBSENTRY_SITES", &site.url).env("WEBSENTRY_REGEXP", PATTERN);
        if with_ca {
            run = run.mount(ca_file, "/pki/probe-ca.pem").env("WEBSENTRY_PROBE_CAFILE", "/pki/probe-ca.pem");
        }
        let exit = run.success();
        let report: serde_json::Value = serde_json::from_str(exit.stdout.trim()).expect("one JSON report on stdout");
        report
    };

    let trusted = dry_run(true);
    assert_eq!(trusted["url"], site.url.as_str());
    assert_eq!(trusted["code"], 200, "{trusted}");
    assert_eq!(trusted["regexp_match"], "42", "{trusted}");
    println!("shipping: image producer --dry-run with WEBSENTRY_PROBE_CAFILE: {trusted}");

    let untrusted = dry_run(false);
    assert_eq!(untrusted["code"], 0, "without the CA file the site must not be trusted: {untrusted}");
    assert_eq!(untrusted["error"]["kind"], "tls", "{untrusted}");
}

#[test]
fn the_images_publish_over_mutual_tls_and_archive_over_tls() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let database = stack.create_database();
    let site = TlsSite::signed_by_test_ca("<html>version=4.2</html>");
    let Inside { env: kafka_env, mounts: kafka_mounts } = kafka_inside(stack, &topic);

    let producer = Image::assemble("producer");
    let mut run = producer
        .run()
        .envs(kafka_env.clone())
        .env("WEBSENTRY_SITES", &site.url)
        .env("WEBSENTRY_REGEXP", PATTERN)
        .env("WEBSENTRY_PROBE_CAFILE", "/pki/probe-ca.pem")
        .mount(site.ca_file.as_ref().expect("a CA file"), "/pki/probe-ca.pem");
    for (host, inside) in &kafka_mounts {
        run = run.mount(host, inside.clone());
    }
    run.success();

    let records = stack.read_topic(&topic);
    assert_eq!(records.len(), 1, "one report published");
    let report: serde_json::Value = serde_json::from_slice(&records[0].1).expect("a JSON report");
    assert_eq!((report["url"].as_str(), report["code"].as_i64()), (Some(site.url.as_str()), Some(200)), "{report}");
    println!("shipping: image producer published to {topic} over mutual TLS: {report}");

    let consumer = Image::assemble("consumer");
    let Inside { env: database_env, mounts: database_mounts } = database_inside(stack, &database.name);
    let mut run = consumer.run().envs(kafka_env).envs(database_env);
    for (host, inside) in kafka_mounts.iter().chain(&database_mounts) {
        run = run.mount(host, inside.clone());
    }
    run.success();
    assert_eq!(database.count("SELECT count(*) FROM reports WHERE code = 200 AND regexp_match = '42'"), 1);
    println!("shipping: image consumer archived it into PostgreSQL over TLS (verify-full)");
}

#[test]
fn the_consumer_image_migrates_only_with_no_kafka_settings() {
    let stack = Stack::get();
    let database = stack.create_database();
    let Inside { env, mounts } = database_inside(stack, &database.name);
    let image = Image::assemble("consumer");
    let mut run = image.run().arg("--migrate-only").envs(env);
    for (host, inside) in &mounts {
        run = run.mount(host, inside.clone());
    }
    run.success();
    let applied = database.count("SELECT count(*) FROM websentry_migrations");
    assert!(applied >= 1, "no migration recorded");
    assert_eq!(database.count("SELECT count(*) FROM reports"), 0);
    println!("shipping: image consumer --migrate-only applied {applied} migration(s)");
}

#[test]
fn the_consumer_image_as_a_daemon_answers_its_kubernetes_probes() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let database = stack.create_database();
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let address = format!("127.0.0.1:{port}");
    let Inside { env: kafka_env, mounts: kafka_mounts } = kafka_inside(stack, &topic);
    let Inside { env: database_env, mounts: database_mounts } = database_inside(stack, &database.name);
    let image = Image::assemble("consumer");
    let mut run = image
        .run()
        .envs(kafka_env)
        .envs(database_env)
        .env("WEBSENTRY_CONSUMER_ENABLE_DAEMON", "true")
        .env("WEBSENTRY_LISTEN", &address);
    for (host, inside) in kafka_mounts.iter().chain(&database_mounts) {
        run = run.mount(host, inside.clone());
    }
    let log = std::env::temp_dir().join(format!("websentry-consumer-image-{port}.log"));
    let mut daemon = run.spawn(&log);

    // What the Deployment's readiness probe waits for: connected to both, holding the partition.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        if let Some((200, _)) = http_get(&address, "/readyz") {
            break true;
        }
        if Instant::now() > deadline || daemon.try_wait().ok().flatten().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let healthz = http_get(&address, "/healthz");
    let metrics = http_get(&address, "/metrics");
    let _ = daemon.kill();
    let _ = daemon.wait();
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);

    assert!(ready, "/readyz never answered 200 within 60 s:\n{output}");
    assert_eq!(healthz.map(|(status, _)| status), Some(200), "/healthz");
    let (status, body) = metrics.expect("/metrics answers");
    assert_eq!(status, 200);
    assert!(body.contains("websentry_partitions_held"), "{body}");
    println!("shipping: image consumer as a daemon: /readyz 200, /healthz 200, /metrics served on {address}");
}
