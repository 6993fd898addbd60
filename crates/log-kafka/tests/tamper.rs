//! The auditor's tamper table on Kafka, against the real broker. Records cannot be changed or
//! removed in place, so the attacks are records produced with a plain producer: forged appends
//! that continue the chain, a rewritten tail on a branch, altered copies, and topics holding a
//! copy of the log with records left out, swapped or cut off. Each is found and named; two honest
//! writers racing for positions never are.

mod common;

use std::sync::Arc;

use common::*;
use contingent_domain::LearnerId;
use contingent_log::{
    audit, AuditOutcome, Checkpoint, EventLog, FindingKind, Head, LogError, RecordedEvent,
    WriterKey, WriterKeys,
};
use contingent_log_kafka::header;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

struct Fixture {
    topic: String,
    keys: WriterKeys,
    /// The checkpoint an auditor kept at the head (position 12).
    kept: Checkpoint,
    head: Head,
}

/// A topic holding 12 events in three appends of 4, signed by a registered writer.
async fn fixture() -> Fixture {
    let topic = unique_topic();
    let key = Arc::new(WriterKey::generate());
    let mut keys = WriterKeys::default();
    keys.register(&key.public());
    let log = open(&topic).await.with_writer_key(key.clone());
    let learner = LearnerId::generate();
    for i in 0..3 {
        let head = log.head().await.expect("head");
        let events = vec![
            learner_event(learner),
            org_event(&format!("Школа {i}")),
            learner_event(learner),
            learner_event(learner),
        ];
        log.append(&seal(events, head)).await.expect("append");
    }
    let head = log.head().await.expect("head");
    let kept = log
        .publish_checkpoint()
        .await
        .expect("checkpoint")
        .expect("signed");
    assert_eq!(kept.position, head.position);
    log.close().await;
    Fixture {
        topic,
        keys,
        kept,
        head,
    }
}

async fn verify(topic: &str, keys: &WriterKeys, against: &[Checkpoint]) -> AuditOutcome {
    let log = open(topic).await;
    let outcome = audit(&log, keys, against, |_| {}).await.expect("audit");
    log.close().await;
    outcome
}

fn damage(outcome: &AuditOutcome) -> Vec<(FindingKind, u64)> {
    outcome
        .findings
        .iter()
        .filter(|f| f.kind.is_damage())
        .map(|f| (f.kind, f.position))
        .collect()
}

fn detected(outcome: &AuditOutcome, kind: FindingKind, position: u64) {
    assert!(
        outcome
            .findings
            .iter()
            .any(|f| f.kind == kind && f.position == position),
        "no {kind:?} at {position}: {:#?}",
        outcome.findings
    );
}

fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer")
}

/// Produces one record with the given headers, as any client with produce rights could.
async fn produce(topic: &str, key: &str, value: &[u8], headers: &[(String, String)]) {
    let mut owned = OwnedHeaders::new_with_capacity(headers.len());
    for (k, v) in headers {
        owned = owned.insert(Header {
            key: k,
            value: Some(v.as_str()),
        });
    }
    producer()
        .send(
            FutureRecord::to(topic)
                .partition(0)
                .key(key)
                .payload(value)
                .headers(owned),
            std::time::Duration::from_secs(30),
        )
        .await
        .expect("produced");
}

/// The headers the log writes, for a forged event.
fn forged_headers(event: &RecordedEvent, append_last: u64) -> Vec<(String, String)> {
    let e = &event.envelope;
    [
        (header::TYPE, e.event.type_name().to_owned()),
        (header::SCHEMA_VERSION, e.schema_version.to_string()),
        (header::POSITION, e.position.to_string()),
        (header::EVENT_ID, e.event_id.to_string()),
        (header::HASH, event.hash.to_hex()),
        (header::PREV_HASH, e.prev_hash.to_hex()),
        (header::APPEND_LAST, append_last.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A fresh topic holding copies of the fixture's records at these offsets, in this order.
async fn copy(f: &Fixture, offsets: &[i64]) -> String {
    let records = plain_read_all(&f.topic);
    let topic = unique_topic();
    open(&topic).await.close().await;
    for &offset in offsets {
        let r = &records[offset as usize];
        produce(
            &topic,
            r.key.as_deref().unwrap_or("region"),
            &r.value,
            &r.headers,
        )
        .await;
    }
    topic
}

#[tokio::test]
async fn an_untouched_topic_and_two_honest_racing_writers_raise_no_alarm() {
    let f = fixture().await;
    let outcome = verify(&f.topic, &f.keys, std::slice::from_ref(&f.kept)).await;
    assert!(outcome.findings.is_empty(), "{:#?}", outcome.findings);
    assert_eq!(outcome.verified, 12);
    // The checkpoint is on the checkpoints topic, for every reader.
    let log = open(&f.topic).await;
    assert_eq!(
        log.checkpoints().await.expect("checkpoints"),
        std::slice::from_ref(&f.kept)
    );
    log.close().await;

    // Two writers with registered keys append at once, three times, each retrying a lost race
    // on the new head as the registry's writer does.
    let (a, b) = (
        Arc::new(WriterKey::generate()),
        Arc::new(WriterKey::generate()),
    );
    let mut keys = f.keys.clone();
    keys.register(&a.public());
    keys.register(&b.public());
    let (log_a, log_b) = (
        open(&f.topic).await.with_writer_key(a),
        open(&f.topic).await.with_writer_key(b),
    );
    let learner = LearnerId::generate();
    let mut conflicts = 0;
    for _ in 0..3 {
        let (head_a, head_b) = (
            log_a.head().await.expect("a"),
            log_b.head().await.expect("b"),
        );
        let sealed_a = seal(vec![learner_event(learner), org_event("A")], head_a);
        let sealed_b = seal(vec![learner_event(learner)], head_b);
        let (ra, rb) = tokio::join!(log_a.append(&sealed_a), log_b.append(&sealed_b));
        for (result, log, facts) in [
            (ra, &log_a, vec![learner_event(learner), org_event("A")]),
            (rb, &log_b, vec![learner_event(learner)]),
        ] {
            match result {
                Ok(()) => {}
                Err(LogError::Conflict(_)) => {
                    conflicts += 1;
                    append_until_accepted(log, facts).await;
                }
                Err(e) => panic!("append: {e}"),
            }
        }
    }
    assert!(conflicts >= 3, "every round has a loser: {conflicts}");
    log_a.close().await;
    log_b.close().await;
    let outcome = verify(&f.topic, &keys, std::slice::from_ref(&f.kept)).await;
    assert_eq!(damage(&outcome), [], "{:#?}", outcome.findings);
    assert!(
        outcome
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::LostRace)
            .count()
            >= 3,
        "{:#?}",
        outcome.findings
    );
    assert_eq!(outcome.verified, outcome.head);
}

#[tokio::test]
async fn a_forged_append_that_continues_the_chain_is_named() {
    // Unsigned: the rule accepts it (it continues the head), the audit names it.
    let f = fixture().await;
    let forged = seal(vec![learner_event(LearnerId::generate())], f.head);
    produce(
        &f.topic,
        "region",
        &forged[0].body,
        &forged_headers(&forged[0], 13),
    )
    .await;
    let outcome = verify(&f.topic, &f.keys, &[]).await;
    assert_eq!(outcome.head, 13);
    assert_eq!(damage(&outcome), [(FindingKind::Unsigned, 13)]);

    // Signed by a key the region never registered.
    let f = fixture().await;
    let stranger = open(&f.topic)
        .await
        .with_writer_key(Arc::new(WriterKey::generate()));
    let head = stranger.head().await.expect("head");
    stranger
        .append(&seal(vec![org_event("Подделка")], head))
        .await
        .expect("forged append");
    stranger.close().await;
    let outcome = verify(&f.topic, &f.keys, &[]).await;
    assert_eq!(damage(&outcome), [(FindingKind::BadSignature, 13)]);
}

#[tokio::test]
async fn a_rewritten_tail_on_a_branch_is_named_and_not_taken_for_a_race() {
    let f = fixture().await;
    let log = open(&f.topic).await;
    let eighth = log.read_after(7, 1).await.expect("read")[0].clone();
    log.close().await;
    let branch = seal(
        vec![
            org_event("Ветка 1"),
            org_event("Ветка 2"),
            org_event("Ветка 3"),
            org_event("Ветка 4"),
        ],
        Head {
            position: 8,
            hash: eighth.hash,
        },
    );
    for event in &branch {
        produce(&f.topic, "region", &event.body, &forged_headers(event, 12)).await;
    }
    let outcome = verify(&f.topic, &f.keys, &[]).await;
    assert_eq!(
        damage(&outcome),
        [(FindingKind::Unsigned, 9)],
        "{:#?}",
        outcome.findings
    );
    assert!(outcome.findings[0].problem.contains("not part of the log"));
    assert_eq!(outcome.verified, 12);
}

#[tokio::test]
async fn a_changed_byte_in_a_copied_record_is_named() {
    let f = fixture().await;
    let records = plain_read_all(&f.topic);
    let sixth = &records[5];
    let mut value = sixth.value.clone();
    let at = value.iter().position(|b| *b == b'1').expect("a digit");
    value[at] = b'2';
    produce(&f.topic, "region", &value, &sixth.headers).await;
    let outcome = verify(&f.topic, &f.keys, &[]).await;
    assert_eq!(damage(&outcome), [(FindingKind::Changed, 6)]);
}

#[tokio::test]
async fn copies_with_a_record_removed_swapped_or_cut_off_are_named() {
    let f = fixture().await;
    let all: Vec<i64> = (0..12).collect();
    let kept = std::slice::from_ref(&f.kept);

    // Position 7 left out: the log ends at 4, the records after it are named.
    let removed: Vec<i64> = all.iter().copied().filter(|o| *o != 6).collect();
    let outcome = verify(&copy(&f, &removed).await, &f.keys, kept).await;
    assert_eq!(outcome.head, 4);
    // Positions 5 and 6 alone are what a writer stopped mid-append leaves; the record at 8 and
    // the kept checkpoint name the removal.
    detected(&outcome, FindingKind::UnfinishedAppend, 5);
    detected(&outcome, FindingKind::BadSignature, 8);
    detected(&outcome, FindingKind::Truncated, 5);

    // Positions 3 and 4 swapped: the first append is never whole, so the log is empty.
    let mut swapped = all.clone();
    swapped.swap(2, 3);
    let outcome = verify(&copy(&f, &swapped).await, &f.keys, kept).await;
    assert_eq!(outcome.head, 0);
    detected(&outcome, FindingKind::UnfinishedAppend, 1);
    detected(&outcome, FindingKind::BadSignature, 4);
    detected(&outcome, FindingKind::Truncated, 1);

    // The tail cut off: consistent on its own, found against the kept checkpoint.
    let cut = copy(&f, &all[..8]).await;
    assert_eq!(damage(&verify(&cut, &f.keys, &[]).await), []);
    let outcome = verify(&cut, &f.keys, kept).await;
    assert_eq!(damage(&outcome), [(FindingKind::Truncated, 9)]);
}

/// A writer stopped while its append was on its way leaves the append's first records outside
/// the log. Their first record carries the append's signature and the last hash it covers, so
/// the audit names them an unfinished append, not damage; the same records with the signature
/// taken off are an intruder's, unsigned.
#[tokio::test]
async fn the_beginning_of_an_append_whose_writer_stopped_is_no_intruder() {
    let f = fixture().await;
    // The same history on a scratch topic, and on it an append of four by a registered writer.
    let all: Vec<i64> = (0..12).collect();
    let scratch = copy(&f, &all).await;
    let key = Arc::new(WriterKey::generate());
    let mut keys = f.keys.clone();
    keys.register(&key.public());
    let writer = open(&scratch).await.with_writer_key(key);
    let head = writer.head().await.expect("head");
    assert_eq!(head, f.head);
    let learner = LearnerId::generate();
    writer
        .append(&seal(
            vec![
                learner_event(learner),
                learner_event(learner),
                org_event("Школа 9"),
                learner_event(learner),
            ],
            head,
        ))
        .await
        .expect("append");
    writer.close().await;
    let records = plain_read_all(&scratch);
    let append = &records[12..16];
    assert!(append[0].header(header::APPEND_LAST_HASH).is_some());
    assert_eq!(
        append[0].header(header::APPEND_LAST_HASH),
        append[3].header(header::HASH),
        "the first record names the last hash"
    );

    // Its first two records reach the region's topic; the rest never do.
    produce_all(&f.topic, &append[..2], &[]).await;
    let outcome = verify(&f.topic, &keys, std::slice::from_ref(&f.kept)).await;
    assert_eq!(outcome.head, 12, "not part of the log");
    assert_eq!(damage(&outcome), [], "{:#?}", outcome.findings);
    detected(&outcome, FindingKind::UnfinishedAppend, 13);

    // The same records without the signature, on another copy of the history: an intruder's.
    let bare = copy(&f, &all).await;
    let signing = [header::KEY_ID, header::SIGNATURE, header::APPEND_LAST_HASH];
    produce_all(&bare, &append[..2], &signing).await;
    let outcome = verify(&bare, &keys, &[]).await;
    assert_eq!(outcome.head, 12);
    assert_eq!(
        damage(&outcome),
        [(FindingKind::Unsigned, 13)],
        "{:#?}",
        outcome.findings
    );

    // Signed by a key the region does not trust: not an honest writer's either.
    let untrusted = copy(&f, &all).await;
    produce_all(&untrusted, &append[..2], &[]).await;
    let outcome = verify(&untrusted, &f.keys, &[]).await;
    assert_eq!(outcome.head, 12);
    assert_eq!(
        damage(&outcome),
        [(FindingKind::BadSignature, 13)],
        "{:#?}",
        outcome.findings
    );
}

/// Produces copies of `records` to `topic`, without the headers named in `without`.
async fn produce_all(topic: &str, records: &[PlainRecord], without: &[&str]) {
    for r in records {
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| !without.contains(&k.as_str()))
            .cloned()
            .collect();
        produce(
            topic,
            r.key.as_deref().unwrap_or("region"),
            &r.value,
            &headers,
        )
        .await;
    }
}
