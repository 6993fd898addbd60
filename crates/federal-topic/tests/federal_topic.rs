//! The federal topic against the real broker (`CONTINGENT_TEST_KAFKA`), read the way a federal
//! subscriber reads it: a plain rdkafka consumer in a consumer group, none of this project's
//! reading code.

mod common;
mod memory_log;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use contingent_access::{federal_view, FEDERAL_ENVELOPE_FIELDS, FEDERAL_FIELDS};
use contingent_federal_topic::{FederalError, FederalPublisher, CHECKPOINT_REFRESH, REGION_KEY};
use contingent_log::{Checkpoint, EventLog, Hash, RecordedEvent, WriterKey};
use contingent_log_kafka::KafkaConfig;
use memory_log::MemoryLog;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// Appends every append of `appends`; returns the sealed events.
async fn append_all(
    log: &dyn EventLog,
    appends: Vec<Vec<contingent_domain::Event>>,
) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    for facts in appends {
        out.extend(append(log, facts).await);
    }
    out
}

fn keys(value: &serde_json::Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

/// Checks the records a subscriber read against the log's events: one record per event in log
/// order, key, headers, and a value that holds exactly the documented fields and nothing
/// personal.
fn assert_federal_records(records: &[SubscribedRecord], events: &[RecordedEvent]) {
    let positions: Vec<u64> = records.iter().map(SubscribedRecord::position).collect();
    let expected: Vec<u64> = events.iter().map(RecordedEvent::position).collect();
    assert_eq!(positions, expected, "one record per event, in log order");
    assert!(
        records.windows(2).all(|w| w[0].offset < w[1].offset),
        "offsets ascend"
    );
    let secrets = secrets();
    for (record, event) in records.iter().zip(events) {
        let envelope = &event.envelope;
        let ty = envelope.event.type_name();
        assert_eq!(record.header("type").as_deref(), Some(ty));
        assert_eq!(
            record.header("schema_version"),
            Some(envelope.schema_version.to_string())
        );
        assert_eq!(
            record.header("event_id"),
            Some(envelope.event_id.to_string())
        );
        assert_eq!(
            record.header("hash"),
            Some(event.hash.to_hex()),
            "{ty}: hash"
        );
        let key = envelope
            .learner_id
            .map_or_else(|| REGION_KEY.to_owned(), |l| l.to_string());
        assert_eq!(record.key.as_deref(), Some(key.as_bytes()), "{ty}: key");

        let value = record.json();
        let mut top: BTreeSet<String> = FEDERAL_ENVELOPE_FIELDS
            .iter()
            .filter(|f| **f != "learner_id" || envelope.learner_id.is_some())
            .map(|f| (*f).to_owned())
            .collect();
        top.extend(["source_kind".to_owned(), "data".to_owned()]);
        assert_eq!(keys(&value), top, "{ty}: envelope fields");
        let documented: BTreeSet<String> = FEDERAL_FIELDS
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, fields)| fields.iter().map(|f| (*f).to_owned()).collect())
            .unwrap_or_else(|| panic!("{ty} is not in FEDERAL_FIELDS"));
        assert_eq!(keys(&value["data"]), documented, "{ty}: data fields");
        assert_eq!(value["position"], envelope.position);
        assert_eq!(value["event_id"], envelope.event_id.to_string());
        assert_eq!(value["type"], ty);
        let stored: serde_json::Value = serde_json::from_slice(&event.body).expect("JSON");
        assert_eq!(value, federal_view(&stored), "{ty}: the federal view");

        let bytes = record.all_bytes();
        for secret in &secrets {
            assert!(!contains(&bytes, secret), "{ty}: {secret} left the region");
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn types_of(events: &[RecordedEvent]) -> BTreeSet<&'static str> {
    events
        .iter()
        .map(|e| e.envelope.event.type_name())
        .collect()
}

#[tokio::test]
async fn the_story_holds_every_string_the_topic_must_not() {
    let log = MemoryLog::default();
    let story = Story::new();
    let mut appends = story.first_appends();
    appends.extend(story.later_appends());
    let events = append_all(&log, appends).await;
    let bytes: Vec<u8> = events.iter().flat_map(|e| e.body.clone()).collect();
    for secret in secrets() {
        // SNILS are stored formatted; the digits alone are checked too.
        if !secret.chars().all(|c| c.is_ascii_digit()) {
            assert!(contains(&bytes, &secret), "the log does not hold {secret}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_every_event_once_in_log_order_with_only_the_federal_fields() {
    let region = unique_region();
    let log = open_log(&region).await;
    let story = Story::new();
    let events = append_all(&log, story.first_appends()).await;
    assert!(types_of(&events).is_superset(&BTreeSet::from([
        "organization_registered",
        "learner_registered",
        "guardian_linked",
        "enrolled",
        "mark_recorded",
        "attendance_recorded",
    ])));

    let mut publisher = open_publisher(&region).await;
    assert_eq!(publisher.topic(), format!("contingent.{region}.federal"));
    assert_eq!(publisher.position(), 0);
    // Batches of 3 cut through appends.
    assert_eq!(publish_all(&mut publisher, &log, 3).await, events.len());
    assert_eq!(publisher.position(), events.len() as u64);

    let consumer = subscriber(
        publisher.topic(),
        &format!("federal-{}", uuid::Uuid::new_v4()),
    );
    let records = read_to_end(&consumer).await;
    assert_federal_records(&records, &events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_publisher_continues_after_the_last_record_without_republishing() {
    let region = unique_region();
    let log = open_log(&region).await;
    let story = Story::new();

    // An empty log: nothing to publish, and an empty topic to start from.
    let mut publisher = open_publisher(&region).await;
    assert_eq!(publisher.run_once(&log, 100).await.expect("run_once"), 0);
    drop(publisher);
    let mut publisher = open_publisher(&region).await;
    assert_eq!(publisher.position(), 0);

    let first = append_all(&log, story.first_appends()).await;
    assert_eq!(publish_all(&mut publisher, &log, 100).await, first.len());
    drop(publisher);

    // A subscriber group reads what there is and commits its offsets.
    let group = format!("federal-{}", uuid::Uuid::new_v4());
    let consumer = subscriber(&KafkaConfig::federal_topic(&region), &group);
    let seen = read_to_end(&consumer).await;
    assert_federal_records(&seen, &first);
    drop(consumer);

    let later = append_all(&log, story.later_appends()).await;
    let mut publisher = open_publisher(&region).await;
    assert_eq!(
        publisher.position(),
        first.len() as u64,
        "the reopened publisher starts after the topic's last record"
    );
    assert_eq!(publish_all(&mut publisher, &log, 2).await, later.len());
    assert_eq!(publisher.position(), (first.len() + later.len()) as u64);
    drop(publisher);
    // Reopened with nothing new: nothing is published again.
    let mut publisher = open_publisher(&region).await;
    assert_eq!(publisher.run_once(&log, 100).await.expect("run_once"), 0);

    // The same group continues where it committed: exactly the new events.
    let consumer = subscriber(&KafkaConfig::federal_topic(&region), &group);
    let new = read_to_end(&consumer).await;
    assert_federal_records(&new, &later);

    // A new subscriber reads the whole feed: every event of the log once, by event id.
    let consumer = subscriber(
        &KafkaConfig::federal_topic(&region),
        &format!("federal-{}", uuid::Uuid::new_v4()),
    );
    let all = read_to_end(&consumer).await;
    let logged = log.read_after(0, 1000).await.expect("read the log");
    assert_eq!(logged.len(), first.len() + later.len());
    let published_ids: Vec<String> = all
        .iter()
        .map(|r| r.header("event_id").expect("event_id"))
        .collect();
    let logged_ids: Vec<String> = logged
        .iter()
        .map(|e| e.envelope.event_id.to_string())
        .collect();
    assert_eq!(published_ids, logged_ids);
    assert_federal_records(&all, &logged);
}

/// The checkpoint a record carries, read from its headers as a subscriber reads them.
fn carried_checkpoint(record: &SubscribedRecord) -> Option<Checkpoint> {
    let position = record.header("checkpoint_position")?;
    let millis: i64 = record
        .header("checkpoint_time_ms")
        .expect("checkpoint_time_ms")
        .parse()
        .expect("decimal milliseconds");
    Some(Checkpoint {
        position: position.parse().expect("decimal position"),
        head_hash: Hash::parse(&record.header("checkpoint_head_hash").expect("head hash"))
            .expect("64 hex digits"),
        time: chrono::DateTime::from_timestamp_millis(millis).expect("a time"),
        key_id: record.header("checkpoint_key_id").expect("key id"),
        signature: record.header("checkpoint_signature").expect("signature"),
    })
}

/// Whether `public` signed `checkpoint`: Ed25519 over `Checkpoint::message`.
fn signed_by(checkpoint: &Checkpoint, public: &ed25519_dalek::VerifyingKey) -> bool {
    use ed25519_dalek::Verifier;
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(&checkpoint.signature, &mut bytes).expect("128 hex digits");
    public
        .verify(
            &checkpoint.message(),
            &ed25519_dalek::Signature::from_bytes(&bytes),
        )
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topic_carries_the_regions_signed_checkpoints_which_verify_with_its_writer_key() {
    let region = unique_region();
    let key = std::sync::Arc::new(WriterKey::generate());
    let log = open_log(&region).await.with_writer_key(key.clone());
    let story = Story::new();
    let first = append_all(&log, story.first_appends()).await;
    let at_first = log
        .publish_checkpoint()
        .await
        .expect("sign a checkpoint")
        .expect("a checkpoint");
    assert_eq!(at_first.position, first.len() as u64);
    let later = append_all(&log, story.later_appends()).await;

    // Known before its record is published: carried on the record at its position.
    let mut publisher = open_publisher(&region).await;
    publish_all(&mut publisher, &log, 3).await;
    // Signed after its record was published: carried on the next record.
    let at_head = log
        .publish_checkpoint()
        .await
        .expect("sign a checkpoint")
        .expect("a checkpoint");
    assert_eq!(at_head.position, (first.len() + later.len()) as u64);
    let last = append(
        &log,
        vec![contingent_domain::Event::ClassCapacityChanged(
            contingent_domain::ClassCapacityChanged {
                class_id: story.class_1a,
                organization_id: story.school,
                capacity: 30,
                reason: None,
            },
        )],
    )
    .await;
    tokio::time::sleep(CHECKPOINT_REFRESH).await;
    assert_eq!(publish_all(&mut publisher, &log, 3).await, 1);

    let consumer = subscriber(
        publisher.topic(),
        &format!("federal-{}", uuid::Uuid::new_v4()),
    );
    let records = read_to_end(&consumer).await;
    let logged = log.read_after(0, 1000).await.expect("read the log");
    assert_federal_records(&records, &logged);
    let carrying: Vec<(u64, Checkpoint)> = records
        .iter()
        .filter_map(|r| carried_checkpoint(r).map(|c| (r.position(), c)))
        .collect();
    assert_eq!(
        carrying,
        vec![
            (at_first.position, at_first.clone()),
            (last[0].position(), at_head.clone())
        ],
        "each checkpoint once: at its position, or on the first record after it"
    );
    for (_, checkpoint) in &carrying {
        assert!(signed_by(checkpoint, &key.public()), "{checkpoint:?}");
        assert_eq!(checkpoint.key_id, key.id());
        let at = &records[checkpoint.position as usize - 1];
        assert_eq!(at.position(), checkpoint.position);
        assert_eq!(
            at.header("hash"),
            Some(checkpoint.head_hash.to_hex()),
            "the signed head is the hash the topic holds at that position"
        );
    }
    // A head the region did not sign does not verify.
    let mut forged = at_head.clone();
    forged.position += 1;
    assert!(!signed_by(&forged, &key.public()));
    assert!(!signed_by(&at_head, &WriterKey::generate().public()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_abandoned_midway_is_not_published_twice() {
    let region = unique_region();
    let log = MemoryLog::default();
    let story = Story::new();
    let events = append_all(&log, story.first_appends()).await;

    let mut publisher = open_publisher(&region).await;
    // Polled once: the batch is read and produced, then the future is dropped while it awaits
    // the first acknowledgement.
    let abandoned = tokio::time::timeout(Duration::ZERO, publisher.run_once(&log, 100)).await;
    assert!(abandoned.is_err(), "the batch was still in flight");
    assert_eq!(publisher.position(), 0, "nothing was acknowledged");

    // The next call lets the records land, reads the topic's end and continues after it.
    assert_eq!(publisher.run_once(&log, 100).await.expect("run_once"), 0);
    assert_eq!(publisher.position(), events.len() as u64);

    let consumer = subscriber(
        &KafkaConfig::federal_topic(&region),
        &format!("federal-{}", uuid::Uuid::new_v4()),
    );
    assert_federal_records(&read_to_end(&consumer).await, &events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_published_from_another_log_is_refused() {
    let region = unique_region();
    let story = Story::new();
    let log = MemoryLog::default();
    let events = append_all(&log, story.first_appends()).await;
    let mut publisher = open_publisher(&region).await;
    publish_all(&mut publisher, &log, 100).await;
    drop(publisher);

    // Another log as long as this one, with other events.
    let other = MemoryLog::default();
    append_all(&other, story.first_appends()).await;
    let mut publisher = open_publisher(&region).await;
    let refused = publisher.run_once(&other, 100).await;
    assert!(
        matches!(refused, Err(FederalError::Diverged { position, .. }) if position == events.len() as u64),
        "{refused:?}"
    );

    // A log shorter than the topic.
    let short = MemoryLog::default();
    append_all(&short, story.first_appends().into_iter().take(1).collect()).await;
    let refused = publisher.run_once(&short, 100).await;
    assert!(
        matches!(&refused, Err(FederalError::Diverged { detail, .. }) if detail.contains("ends at")),
        "{refused:?}"
    );

    // The log it was published from is continued.
    assert_eq!(publisher.run_once(&log, 100).await.expect("run_once"), 0);
    let later = append_all(&log, story.later_appends()).await;
    assert_eq!(publish_all(&mut publisher, &log, 100).await, later.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_with_more_than_one_partition_is_refused() {
    let config = federal_config(&unique_region());
    let admin: AdminClient<DefaultClientContext> =
        config.admin_config().create().expect("admin client");
    let topic = NewTopic::new(&config.topic, 2, TopicReplication::Fixed(-1));
    for result in admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .expect("create topics")
    {
        result.expect("topic created");
    }
    let refused = FederalPublisher::open(config).await;
    assert!(
        matches!(&refused, Err(FederalError::Topic { detail, .. }) if detail.contains("2 partitions")),
        "{refused:?}"
    );
}

#[path = "../../log-kafka/tests/private_broker/mod.rs"]
mod private_broker;

/// The broker stops answering while a batch is in flight, past the producer's message timeout,
/// then answers again (and writes what it received meanwhile). The publisher recovers on its
/// own, and a subscriber reads every position in order, without a gap: a position seen again is
/// the same event (the at-least-once duplicate of docs/federal-topic.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_paused_past_the_timeout_leaves_no_gap_and_no_reordering() {
    let broker = private_broker::PrivateBroker::start();
    let log = MemoryLog::default();
    let story = Story::new();
    let first = append_all(&log, story.first_appends()).await;
    let mut config = KafkaConfig::new(
        broker.address.clone(),
        KafkaConfig::federal_topic(&unique_region()),
    );
    config.client_id = "contingent-federal-topic-tests".into();
    config.extra = vec![
        ("message.timeout.ms".into(), "1500".into()),
        ("request.timeout.ms".into(), "1000".into()),
    ];
    let mut publisher = FederalPublisher::open(config.clone())
        .await
        .expect("open the federal publisher");
    assert_eq!(publish_all(&mut publisher, &log, 100).await, first.len());

    let later = append_all(&log, story.later_appends()).await;
    let total = (first.len() + later.len()) as u64;
    broker.pause();
    // The batch's produce requests wait in the paused broker's socket past the timeout.
    let failed = publisher.run_once(&log, 100).await;
    assert!(
        failed.is_err(),
        "the batch failed while the broker was paused"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    broker.resume();

    let deadline = std::time::Instant::now() + Duration::from_secs(25);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the publisher did not recover"
        );
        match publisher.run_once(&log, 2).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(publisher.position(), total);

    let consumer = subscriber_at(
        &broker.address,
        &config.topic,
        &format!("federal-{}", uuid::Uuid::new_v4()),
    );
    let records = read_to_end(&consumer).await;
    let logged = log.read_after(0, 1000).await.expect("read the log");
    let mut last = 0u64;
    let mut duplicates = 0;
    for record in &records {
        let position = record.position();
        assert!(
            position <= last + 1,
            "a gap: position {position} after {last}"
        );
        let event = &logged[(position - 1) as usize];
        assert_eq!(
            record.header("event_id"),
            Some(event.envelope.event_id.to_string()),
            "the record at position {position} is the log's event there"
        );
        if position == last + 1 {
            last = position;
        } else {
            duplicates += 1;
        }
    }
    assert_eq!(last, total, "every position reached the topic");
    eprintln!(
        "{} records for {total} events ({duplicates} duplicates)",
        records.len()
    );
}
