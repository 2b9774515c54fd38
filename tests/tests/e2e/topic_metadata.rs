//! The consumer's own metadata client against the real broker: a topic's id (KIP-516) and its
//! partitions, a new id for a topic deleted and created again under the same name, and a broker
//! that never answers passed over for the next one.

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use websentry_consumer::metadata::{MetadataClient, TopicMetadata};
use websentry_tests::{eventually_ok, Stack};

/// How long the broker may take to show a topic created or deleted a moment ago.
const SETTLE: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Asks for `topic` until the answer satisfies `done`, for up to [`SETTLE`]; returns that answer.
fn topic_when(
    runtime: &Runtime,
    client: &mut MetadataClient,
    topic: &str,
    done: impl Fn(&Option<TopicMetadata>) -> bool,
) -> Option<TopicMetadata> {
    eventually_ok(&format!("the metadata of topic '{topic}' as expected"), SETTLE, || {
        match runtime.block_on(client.topic(topic)) {
            Ok(answer) if done(&answer) => Ok(answer),
            Ok(answer) => Err(format!("{answer:?}")),
            Err(err) => Err(format!("{err} ({err:?})")),
        }
    })
}

#[test]
fn the_metadata_of_a_new_topic_with_3_partitions_has_an_id_and_partitions_0_1_2() {
    let stack = Stack::get();
    let topic = stack.create_topic(3);
    let mut client = MetadataClient::new(stack.kafka_settings(&topic));

    let metadata = topic_when(&runtime(), &mut client, &topic, Option::is_some).expect("known");

    assert!(metadata.id.is_some(), "{metadata:?}");
    assert_eq!(metadata.partitions, vec![0, 1, 2]);
}

#[test]
fn a_topic_deleted_and_created_again_under_the_same_name_gets_a_different_id() {
    let stack = Stack::get();
    let topic = stack.create_topic(3);
    let runtime = runtime();
    let mut client = MetadataClient::new(stack.kafka_settings(&topic));
    let first = topic_when(&runtime, &mut client, &topic, Option::is_some).expect("known");

    stack.delete_topic(&topic);
    topic_when(&runtime, &mut client, &topic, Option::is_none);
    stack.create_topic_named(&topic, 3);
    let second = topic_when(&runtime, &mut client, &topic, Option::is_some).expect("known");

    assert!(first.id.is_some() && second.id.is_some(), "{first:?} {second:?}");
    assert_ne!(first.id, second.id, "the re-created topic kept its id");
    assert_eq!(second.partitions, vec![0, 1, 2]);
}

#[test]
fn an_unknown_topic_gives_none_and_is_not_created_by_asking() {
    let stack = Stack::get();
    let topic = format!("never-created-{:016x}", rand::random::<u64>());
    let runtime = runtime();
    let mut client = MetadataClient::new(stack.kafka_settings(&topic));

    let first = runtime.block_on(client.topic(&topic)).expect("the broker answers");
    let second = runtime.block_on(client.topic(&topic)).expect("the broker answers again");

    assert_eq!(first, None);
    assert_eq!(second, None);
}

#[test]
fn a_first_broker_that_accepts_tcp_and_never_answers_does_not_stop_the_next_one_answering() {
    let stack = Stack::get();
    let topic = stack.create_topic(3);
    let runtime = runtime();
    let settings = stack.kafka_settings(&topic);
    let mut direct = MetadataClient::new(settings.clone());
    topic_when(&runtime, &mut direct, &topic, Option::is_some);
    let mut settings_behind_a_silent_broker = settings.clone();
    settings_behind_a_silent_broker.brokers.insert(0, websentry_tests::hostile::silent_listener());
    let mut client = MetadataClient::new(settings_behind_a_silent_broker);

    let started = Instant::now();
    let answer = runtime.block_on(client.topic(&topic));
    let elapsed = started.elapsed();

    println!("answered after {elapsed:?} (Kafka timeout {:?})", settings.timeout);
    let metadata = answer.expect("the second broker answers").expect("the topic is known");
    assert_eq!(metadata.partitions, vec![0, 1, 2]);
    assert!(elapsed < settings.timeout / 2, "took {elapsed:?} of a {:?} timeout", settings.timeout);
}
