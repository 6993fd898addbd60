//! The Kafka log against a real broker (tansu, started by `./scripts/services start`).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use contingent_domain::LearnerId;
use contingent_log::{verify_chain, EventLog, Hash, Head, LogError, GENESIS_HASH};
use contingent_log_kafka::{header, KafkaLog, REGION_KEY};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::test]
async fn appends_read_back_and_survive_reopening() {
    let topic = unique_topic();
    let log = open(&topic).await;
    assert_eq!(log.head().await.expect("head"), Head::EMPTY);
    assert!(log.read_after(0, 10).await.expect("read").is_empty());

    let (ann, boris) = (LearnerId::generate(), LearnerId::generate());
    let first = seal(
        vec![
            org_event("Школа 1"),
            learner_event(ann),
            learner_event(boris),
        ],
        Head::EMPTY,
    );
    log.append(&first).await.expect("append");
    let head = log.head().await.expect("head");
    assert_eq!(head.position, 3);
    let second = seal(vec![learner_event(ann), org_event("Школа 2")], head);
    log.append(&second).await.expect("append");
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();

    let back = log.read_after(0, 100).await.expect("read");
    assert_eq!(back, all, "the same events, byte for byte");
    assert_eq!(verify_chain(&back), Ok(5));
    assert_eq!(log.read_after(2, 2).await.expect("read"), all[2..4]);
    assert_eq!(log.read_after(5, 10).await.expect("read"), []);

    let raw = log.read_raw_after(1, 100).await.expect("raw");
    assert_eq!(raw.len(), 4);
    for (raw, event) in raw.iter().zip(&all[1..]) {
        assert_eq!(raw.position, event.position());
        assert_eq!(raw.body, event.body);
        assert_eq!(raw.hash, event.hash.0.to_vec());
    }

    let anns = log.read_learner(ann).await.expect("learner");
    assert_eq!(anns, vec![all[1].clone(), all[3].clone()]);
    assert_eq!(
        log.read_learner(boris).await.expect("learner"),
        [all[2].clone()]
    );
    assert_eq!(
        log.read_learner(LearnerId::generate())
            .await
            .expect("learner"),
        []
    );
    let head = Head {
        position: 5,
        hash: all[4].hash,
    };
    log.close().await;
    assert!(matches!(
        log.append(&seal(vec![org_event("Школа 3")], head)).await,
        Err(LogError::Storage(_))
    ));

    // A new instance (nothing in memory) rebuilds the same log from the topic.
    let reopened = open(&topic).await;
    assert_eq!(reopened.head().await.expect("head"), head);
    assert_eq!(reopened.read_after(0, usize::MAX).await.expect("read"), all);
    assert_eq!(reopened.read_learner(ann).await.expect("learner"), anns);
}

/// Large appends become record batches of many records; a fresh reader must read any range of
/// them, including ranges that start inside a batch and lie beyond its cache of recent bodies,
/// and must find the end of the partition again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_reader_reads_any_range_of_a_log_written_in_large_appends() {
    let topic = unique_topic();
    let writer = open(&topic).await;
    let mut head = Head::EMPTY;
    let mut written = Vec::new();
    for _ in 0..24 {
        let batch = seal(
            (0..1000)
                .map(|_| learner_event(LearnerId::generate()))
                .collect(),
            head,
        );
        writer.append(&batch).await.expect("append");
        head = writer.head().await.expect("head");
        written.extend(batch);
    }
    assert_eq!(head.position, 24_000);
    let bytes: usize = written.iter().map(|e| e.body.len()).sum();
    assert!(
        bytes > 8 << 20,
        "more than the reader caches: {bytes} bytes"
    );

    let reader = open(&topic).await;
    for after in [0u64, 300, 777, 1000, 5_555, 12_001, 23_950] {
        let read = reader.read_after(after, 300).await.expect("read");
        let want = &written[after as usize..(after as usize + 300).min(written.len())];
        assert_eq!(read, want, "300 events after {after}");
        assert_eq!(reader.head().await.expect("head"), head);
    }
    let learner = written[4_321].envelope.learner_id.expect("learner");
    assert_eq!(
        reader.read_learner(learner).await.expect("learner"),
        [written[4_321].clone()]
    );
}

#[tokio::test]
async fn a_stale_append_conflicts_and_no_reader_sees_it() {
    let topic = unique_topic();
    let writer = open(&topic).await;
    let first = seal(
        vec![org_event("Школа 1"), org_event("Школа 2")],
        Head::EMPTY,
    );
    writer.append(&first).await.expect("append");

    // A second writer whose index is current, appending at a taken position, is refused
    // before anything is written.
    let other = open(&topic).await;
    assert_eq!(other.head().await.expect("head").position, 2);
    let taken = seal(
        vec![org_event("Школа 3")],
        Head {
            position: 1,
            hash: first[0].hash,
        },
    );
    assert!(matches!(
        other.append(&taken).await,
        Err(LogError::Conflict(2))
    ));
    let wrong_hash = seal(
        vec![org_event("Школа 3")],
        Head {
            position: 2,
            hash: Hash([7; 32]),
        },
    );
    assert!(matches!(
        other.append(&wrong_hash).await,
        Err(LogError::Conflict(3))
    ));

    // A writer that has not caught up writes its records to the topic, and learns only from
    // the agreed history that it lost.
    let stale = open(&topic).await;
    let on_genesis = seal(
        vec![org_event("Школа X"), org_event("Школа Y")],
        Head::EMPTY,
    );
    assert!(matches!(
        stale.append(&on_genesis).await,
        Err(LogError::Conflict(1))
    ));
    assert_eq!(
        plain_read_all(&topic).len(),
        4,
        "the losing records are in the topic"
    );
    // ...and then appends fine on top of the real head.
    let head = stale.head().await.expect("head");
    assert_eq!(head.position, 2);
    let third = seal(vec![org_event("Школа 3")], head);
    stale.append(&third).await.expect("append");

    for reader in [open(&topic).await, writer, other] {
        let back = reader.read_after(0, 100).await.expect("read");
        let expected: Vec<_> = first.iter().chain(&third).cloned().collect();
        assert_eq!(back, expected);
        assert_eq!(verify_chain(&back), Ok(3));
    }
}

#[tokio::test]
async fn a_plain_consumer_sees_the_documented_headers_and_bodies() {
    let topic = unique_topic();
    let log = open(&topic).await;
    let learner = LearnerId::generate();
    let events = seal(
        vec![org_event("Школа 1"), learner_event(learner)],
        Head::EMPTY,
    );
    log.append(&events).await.expect("append");

    let records = plain_read_all(&topic);
    assert_eq!(records.len(), 2);
    for (record, event) in records.iter().zip(&events) {
        let envelope = &event.envelope;
        assert_eq!(record.value, event.body, "the value is the stored bytes");
        assert_eq!(
            record.header(header::TYPE),
            Some(envelope.event.type_name())
        );
        assert_eq!(record.header(header::SCHEMA_VERSION), Some("1"));
        assert_eq!(
            record.header(header::POSITION),
            Some(envelope.position.to_string().as_str())
        );
        assert_eq!(
            record.header(header::EVENT_ID),
            Some(envelope.event_id.to_string().as_str())
        );
        assert_eq!(
            record.header(header::HASH),
            Some(event.hash.to_hex().as_str())
        );
        assert_eq!(
            record.header(header::PREV_HASH),
            Some(envelope.prev_hash.to_hex().as_str())
        );
        assert_eq!(record.header(header::APPEND_LAST), Some("2"));
    }
    assert_eq!(records[0].key.as_deref(), Some(REGION_KEY));
    assert_eq!(
        records[0].header(header::TYPE),
        Some("organization_registered")
    );
    assert_eq!(
        records[0].header(header::PREV_HASH),
        Some(GENESIS_HASH.to_hex().as_str())
    );
    assert_eq!(records[1].key, Some(learner.to_string()));
    assert_eq!(records[1].header(header::TYPE), Some("snils_recorded"));
}

/// Records written by hand (not through `KafkaLog::append`): a multi-event append whose records
/// are interleaved with another writer's, and a record whose value does not match its hash.
#[tokio::test]
async fn readers_apply_the_rule_to_records_from_any_producer() {
    let topic = unique_topic();
    let log = open(&topic).await; // creates the topic
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer");
    let produce = |event: &contingent_log::RecordedEvent, append_last: u64, value: &[u8]| {
        let e = &event.envelope;
        let text = [
            (header::TYPE, e.event.type_name().to_owned()),
            (header::SCHEMA_VERSION, e.schema_version.to_string()),
            (header::POSITION, e.position.to_string()),
            (header::EVENT_ID, e.event_id.to_string()),
            (header::HASH, event.hash.to_hex()),
            (header::PREV_HASH, e.prev_hash.to_hex()),
            (header::APPEND_LAST, append_last.to_string()),
        ];
        let mut headers = OwnedHeaders::new();
        for (key, value) in &text {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let producer = producer.clone();
        let (topic, value) = (topic.clone(), value.to_vec());
        async move {
            producer
                .send(
                    FutureRecord::to(&topic)
                        .partition(0)
                        .key(REGION_KEY)
                        .payload(&value)
                        .headers(headers),
                    Duration::from_secs(10),
                )
                .await
                .expect("produce");
        }
    };
    let a = seal(
        vec![org_event("A1"), org_event("A2"), org_event("A3")],
        Head::EMPTY,
    );
    let b = seal(vec![org_event("B1"), org_event("B2")], Head::EMPTY);
    produce(&a[0], 3, &a[0].body).await;
    produce(&a[1], 3, &a[1].body).await;
    produce(&b[0], 2, &b[0].body).await;
    produce(&a[2], 3, &a[2].body).await;
    produce(&b[1], 2, &b[1].body).await;
    let b_head = Head {
        position: 2,
        hash: b[1].hash,
    };
    assert_eq!(log.head().await.expect("head"), b_head);
    // A record whose bytes were altered after hashing is never accepted.
    let c = seal(vec![org_event("C3")], b_head);
    let mut altered = c[0].body.clone();
    altered.push(b' ');
    produce(&c[0], 3, &altered).await;
    assert_eq!(log.head().await.expect("head"), b_head);
    produce(&c[0], 3, &c[0].body).await;

    let expected: Vec<_> = b.iter().chain(&c).cloned().collect();
    for reader in [log, open(&topic).await] {
        assert_eq!(reader.read_after(0, 100).await.expect("read"), expected);
    }
    assert_eq!(plain_read_all(&topic).len(), 7);
}

/// Two writers race from the same head, round after round; each re-reads the head and re-seals
/// its facts when it loses. Fresh readers must agree on one log holding every accepted append
/// exactly once and nothing of the lost attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_converge_on_one_log() {
    const ROUNDS: usize = 60;
    let topic = unique_topic();
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut writers = Vec::new();
    for w in 0..2 {
        let log = open(&topic).await;
        let barrier = barrier.clone();
        writers.push(tokio::spawn(async move {
            let learners: Vec<LearnerId> = (0..3).map(|_| LearnerId::generate()).collect();
            let (mut accepted, mut lost, mut conflicts) = (Vec::new(), Vec::new(), 0);
            for round in 0..ROUNDS {
                // 1 to 3 events per append, learner facts and reference facts mixed.
                let facts = (0..=(round + w) % 3)
                    .map(|i| {
                        if i == 1 {
                            org_event(&format!("Школа {w}-{round}"))
                        } else {
                            learner_event(learners[(round + i) % learners.len()])
                        }
                    })
                    .collect();
                barrier.wait().await;
                let (sealed, lost_ids) = append_until_accepted(&log, facts).await;
                conflicts += usize::from(!lost_ids.is_empty());
                accepted.extend(sealed);
                lost.extend(lost_ids);
            }
            (accepted, lost, conflicts)
        }));
    }
    let mut accepted = Vec::new();
    let mut lost = Vec::new();
    let mut conflicts = 0;
    for writer in writers {
        let (a, l, c) = writer.await.expect("writer");
        accepted.extend(a);
        lost.extend(l);
        conflicts += c;
    }
    assert!(conflicts > 0, "the writers never raced");

    let mut logs = Vec::new();
    for _ in 0..3 {
        let reader = open(&topic).await;
        logs.push(reader.read_after(0, usize::MAX).await.expect("read"));
    }
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[1], logs[2]);
    let log = &logs[0];
    assert_eq!(verify_chain(log), Ok(log.len() as u64));
    assert_eq!(log.len(), accepted.len(), "exactly the accepted appends");
    let mut count: HashMap<uuid::Uuid, usize> = HashMap::new();
    for event in log {
        *count.entry(event.envelope.event_id).or_default() += 1;
    }
    for event in &accepted {
        assert_eq!(count.get(&event.envelope.event_id), Some(&1));
    }
    for id in &lost {
        assert!(!count.contains_key(id), "a lost attempt is in the log");
    }
    let topic_records = plain_read_all(&topic).len();
    eprintln!(
        "racing writers: {} events accepted; {} rounds with a lost race ({} events written but \
         not accepted); {} records in the topic",
        log.len(),
        conflicts,
        lost.len(),
        topic_records
    );
    assert_eq!(topic_records, log.len() + lost.len());
}

/// Not a benchmark: prints raw produce and append rates on this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn measure_rates() {
    let learner = LearnerId::generate();
    let sample = seal(vec![learner_event(learner)], Head::EMPTY);
    let body_len = sample[0].body.len();

    // Raw: the same bodies through a plain idempotent producer, no rule, no read-back.
    let topic = unique_topic();
    drop(open(&topic).await);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .create()
        .expect("producer");
    let n = 20_000;
    let start = Instant::now();
    let mut deliveries = Vec::with_capacity(n);
    for _ in 0..n {
        let record = FutureRecord::to(&topic)
            .partition(0)
            .key(REGION_KEY)
            .payload(&sample[0].body);
        deliveries.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
    }
    for d in deliveries {
        d.await.expect("report").expect("delivered");
    }
    let raw = n as f64 / start.elapsed().as_secs_f64();

    let topic = unique_topic();
    let log: KafkaLog = open(&topic).await;
    let mut head = Head::EMPTY;
    let singles = 1_000;
    let start = Instant::now();
    for _ in 0..singles {
        let events = seal(vec![learner_event(learner)], head);
        log.append(&events).await.expect("append");
        head = Head {
            position: events[0].position(),
            hash: events[0].hash,
        };
    }
    let single = singles as f64 / start.elapsed().as_secs_f64();
    let (batch, batches) = (1_000, 20);
    let start = Instant::now();
    for _ in 0..batches {
        let events = seal((0..batch).map(|_| learner_event(learner)).collect(), head);
        log.append(&events).await.expect("append");
        let last = events.last().expect("last");
        head = Head {
            position: last.position(),
            hash: last.hash,
        };
    }
    let batched = (batch * batches) as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..100 {
        log.head().await.expect("head");
    }
    let head_ms = start.elapsed().as_secs_f64() * 10.0;
    let reader = open(&topic).await;
    let start = Instant::now();
    let cold_head = reader.head().await.expect("head");
    let follow = cold_head.position as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let all = reader.read_after(0, usize::MAX).await.expect("read");
    let read = all.len() as f64 / start.elapsed().as_secs_f64();
    eprintln!(
        "bodies of {body_len} B: raw produce {raw:.0}/s; append of 1 event {single:.0}/s; \
         appends of {batch}: {batched:.0} events/s; head() {head_ms:.1} ms; \
         cold index of {} events {follow:.0}/s; read_after of all {read:.0}/s",
        cold_head.position
    );
}
