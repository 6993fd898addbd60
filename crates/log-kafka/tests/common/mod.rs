//! Shared helpers of the Kafka log's tests: the broker's address, unique topics, and simple
//! domain events.
#![allow(dead_code)]

use std::time::Duration;

use chrono::Utc;
use contingent_domain::{
    Event, LearnerId, Level, OrganizationId, OrganizationKind, OrganizationRegistered, Snils,
    SnilsRecorded, SourceKind, Text,
};
use contingent_log::{Envelope, EventLog, Head, LogError, Metadata, RecordedEvent, Source};
use contingent_log_kafka::{KafkaConfig, KafkaLog};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

/// The tansu broker's address, from `CONTINGENT_TEST_KAFKA`.
pub fn broker() -> String {
    std::env::var("CONTINGENT_TEST_KAFKA")
        .unwrap_or_else(|_| panic!("run through ./scripts/test, which starts the broker"))
}

/// A topic no other test uses.
pub fn unique_topic() -> String {
    KafkaConfig::region_topic(&format!("test-{}", uuid::Uuid::new_v4()))
}

/// A log on `topic`.
pub async fn open(topic: &str) -> KafkaLog {
    let mut config = KafkaConfig::new(broker(), topic);
    config.client_id = "contingent-log-kafka-tests".into();
    KafkaLog::open(config).await.expect("open the Kafka log")
}

/// An organization (a reference fact: no learner).
pub fn org_event(name: &str) -> Event {
    Event::OrganizationRegistered(OrganizationRegistered {
        organization_id: OrganizationId::generate(),
        name: Text::parse(name).expect("text"),
        municipality: Text::parse("Барнаул").expect("text"),
        kind: OrganizationKind::School,
        levels: vec![Level::General],
    })
}

/// A fact about one learner.
pub fn learner_event(learner: LearnerId) -> Event {
    Event::SnilsRecorded(SnilsRecorded {
        learner_id: learner,
        snils: Snils::parse("112-233-445 95").expect("snils"),
    })
}

/// Command metadata.
pub fn meta() -> Metadata {
    Metadata {
        source: Source {
            kind: SourceKind::Region,
            id: "test".into(),
        },
        actor: "tester".into(),
        idempotency_key: None,
        request_fingerprint: None,
    }
}

/// Seals `events` on top of `head`.
pub fn seal(events: Vec<Event>, head: Head) -> Vec<RecordedEvent> {
    Envelope::seal_all(events, &meta(), head.position + 1, head.hash, Utc::now()).expect("seal")
}

/// What the registry's writer does: seal on the head it knows, and on a conflict re-read the
/// head and seal the same facts on top of it. Returns the events that were appended, and every
/// event id of the attempts that lost.
pub async fn append_until_accepted(
    log: &KafkaLog,
    facts: Vec<Event>,
) -> (Vec<RecordedEvent>, Vec<uuid::Uuid>) {
    let mut lost = Vec::new();
    loop {
        let head = log.head().await.expect("head");
        let sealed = seal(facts.clone(), head);
        match log.append(&sealed).await {
            Ok(()) => return (sealed, lost),
            Err(LogError::Conflict(position)) => {
                assert_eq!(position, head.position + 1);
                lost.extend(sealed.iter().map(|e| e.envelope.event_id));
            }
            Err(e) => panic!("append failed: {e}"),
        }
    }
}

/// One record as a plain consumer sees it.
#[derive(Debug, Clone)]
pub struct PlainRecord {
    pub offset: i64,
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl PlainRecord {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every record of the topic's partition 0, read by a plain rdkafka consumer (none of this
/// crate's reading code).
pub fn plain_read_all(topic: &str) -> Vec<PlainRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("group.id", "plain-reader")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(0))
        .expect("partition");
    consumer.assign(&assignment).expect("assign");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // The end is where a fetch reports end-of-partition: tansu 0.6's ListOffsets (and so
    // `fetch_watermarks`) can report less than the real high watermark.
    loop {
        assert!(std::time::Instant::now() < deadline, "timed out reading");
        let message = match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(message) => message,
        };
        let message = message.expect("message");
        let headers = message
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                        (h.key.to_owned(), value.unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(PlainRecord {
            offset: message.offset(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            value: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    out
}
