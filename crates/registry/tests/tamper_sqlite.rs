//! The auditor's tamper table on the embedded log: each way of changing `log.db` behind the
//! registry's back is found by `verify` and named at its position; an untouched log, and one
//! written across a key rotation, are OK.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use contingent_domain::{
    Event, LearnerId, Level, OrganizationId, OrganizationKind, OrganizationRegistered, Snils,
    SnilsRecorded, SourceKind, Text,
};
use contingent_log::{
    Checkpoint, Envelope, EventLog, FindingKind, Hash, Metadata, RecordedEvent, Source, WriterKey,
    WriterKeys,
};
use contingent_log_sqlite::SqliteLog;
use contingent_registry::{verify, VerifyReport};
use sqlx::SqlitePool;

fn meta(actor: &str) -> Metadata {
    Metadata {
        source: Source {
            kind: SourceKind::Region,
            id: "test".into(),
        },
        actor: actor.into(),
        idempotency_key: None,
        request_fingerprint: None,
    }
}

fn event(n: u64, learners: &[LearnerId]) -> Event {
    if n.is_multiple_of(4) {
        Event::OrganizationRegistered(OrganizationRegistered {
            organization_id: OrganizationId::generate(),
            name: Text::parse(&format!("Школа {n}")).expect("text"),
            municipality: Text::parse("Барнаул").expect("text"),
            kind: OrganizationKind::School,
            levels: vec![Level::General],
        })
    } else {
        Event::SnilsRecorded(SnilsRecorded {
            learner_id: learners[(n % 2) as usize],
            snils: Snils::parse("112-233-445 95").expect("snils"),
        })
    }
}

/// Seals `count` events after `head` (its position and hash).
fn sealed(
    head: (u64, Hash),
    count: u64,
    learners: &[LearnerId],
    actor: &str,
) -> Vec<RecordedEvent> {
    let events = (1..=count).map(|i| event(head.0 + i, learners)).collect();
    Envelope::seal_all(events, &meta(actor), head.0 + 1, head.1, Utc::now()).expect("seal")
}

struct Fixture {
    dir: tempfile::TempDir,
    keys: WriterKeys,
    learners: Vec<LearnerId>,
    /// The checkpoint an auditor kept at the head (position 12).
    kept: Checkpoint,
}

impl Fixture {
    /// A log of 12 events in three signed appends of 4, with a checkpoint at its head.
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = Arc::new(WriterKey::generate());
        let mut keys = WriterKeys::default();
        keys.register(&key.public());
        let learners = vec![LearnerId::generate(), LearnerId::generate()];
        let log = SqliteLog::open(&dir.path().join("log.db"))
            .await
            .expect("open")
            .with_writer_key(key);
        for _ in 0..3 {
            let head = log.head().await.expect("head");
            log.append(&sealed((head.position, head.hash), 4, &learners, "writer"))
                .await
                .expect("append");
        }
        let kept = log
            .publish_checkpoint()
            .await
            .expect("checkpoint")
            .expect("signed");
        log.close().await;
        Self {
            dir,
            keys,
            learners,
            kept,
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("log.db")
    }

    /// Runs SQL on the file directly, as someone with write access to it would (the triggers
    /// that refuse UPDATE and DELETE dropped first).
    async fn tamper(&self, sql: &str) {
        raw_sql(&self.path(), sql).await;
    }

    async fn events(&self) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
        let pool = pool(&self.path()).await;
        let rows = sqlx::query_as("SELECT position, body, hash FROM events ORDER BY position")
            .fetch_all(&pool)
            .await
            .expect("rows");
        pool.close().await;
        rows
    }

    async fn verify(&self, against: &[Checkpoint]) -> VerifyReport {
        let log = SqliteLog::open(&self.path()).await.expect("open");
        let report = verify(&log, &self.keys, against, |_| {})
            .await
            .expect("verify");
        log.close().await;
        report
    }
}

async fn pool(path: &Path) -> SqlitePool {
    SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect")
}

async fn raw_sql(path: &Path, sql: &str) {
    let pool = pool(path).await;
    sqlx::raw_sql(&format!(
        "DROP TRIGGER IF EXISTS events_are_never_updated; \
         DROP TRIGGER IF EXISTS events_are_never_deleted; {sql}"
    ))
    .execute(&pool)
    .await
    .expect("tamper");
    pool.close().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts the report names `kind` at `position`, and is not OK.
fn detected(report: &VerifyReport, kind: FindingKind, position: u64) {
    assert!(!report.is_ok(), "reported OK: {report:#?}");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == kind && f.position == position),
        "no {kind:?} at {position}: {:#?}",
        report.findings
    );
}

#[tokio::test]
async fn an_untouched_log_and_one_signed_across_a_key_rotation_are_ok() {
    let f = Fixture::new().await;
    let report = f.verify(std::slice::from_ref(&f.kept)).await;
    assert!(report.is_ok(), "{report:#?}");
    assert_eq!((report.verified, report.head), (12, 12));
    assert!(report.findings.is_empty());

    // Rotate: the old key is retired, a new one signs the next append; both verify.
    let mut keys = f.keys.clone();
    let old = keys.writers[0].key_id.clone();
    keys.retire(&old);
    let new = Arc::new(WriterKey::generate());
    keys.register(&new.public());
    let log = SqliteLog::open(&f.path())
        .await
        .expect("open")
        .with_writer_key(new);
    let head = log.head().await.expect("head");
    log.append(&sealed(
        (head.position, head.hash),
        3,
        &f.learners,
        "writer",
    ))
    .await
    .expect("append");
    let report = verify(&log, &keys, std::slice::from_ref(&f.kept), |_| {})
        .await
        .expect("verify");
    assert!(report.is_ok(), "{report:#?}");
    assert_eq!(report.verified, 15);
    log.close().await;
}

#[tokio::test]
async fn a_changed_byte_is_named_at_its_position() {
    let f = Fixture::new().await;
    let mut body = f.events().await[5].1.clone();
    let at = body.iter().position(|b| *b == b'2').expect("a digit");
    body[at] = b'3';
    f.tamper(&format!(
        "UPDATE events SET body = x'{}' WHERE position = 6",
        hex(&body)
    ))
    .await;
    detected(&f.verify(&[]).await, FindingKind::Changed, 6);
}

#[tokio::test]
async fn a_removed_event_is_named_at_its_position() {
    let f = Fixture::new().await;
    f.tamper("DELETE FROM events WHERE position = 7").await;
    detected(&f.verify(&[]).await, FindingKind::Removed, 7);
}

#[tokio::test]
async fn two_swapped_events_are_named() {
    let f = Fixture::new().await;
    let events = f.events().await;
    let (a, b) = (&events[2], &events[3]);
    f.tamper(&format!(
        "UPDATE events SET body = x'{}', hash = x'{}' WHERE position = 3; \
         UPDATE events SET body = x'{}', hash = x'{}' WHERE position = 4;",
        hex(&b.1),
        hex(&b.2),
        hex(&a.1),
        hex(&a.2)
    ))
    .await;
    let report = f.verify(&[]).await;
    detected(&report, FindingKind::Reordered, 3);
    detected(&report, FindingKind::Reordered, 4);
}

#[tokio::test]
async fn a_truncated_tail_is_found_against_a_kept_checkpoint() {
    let f = Fixture::new().await;
    // Everything of the last append goes: events, signature, the stored checkpoints.
    f.tamper(
        "DELETE FROM events WHERE position > 8; DELETE FROM signatures WHERE last_position > 8; \
         DELETE FROM checkpoints;",
    )
    .await;
    let report = f.verify(std::slice::from_ref(&f.kept)).await;
    detected(&report, FindingKind::Truncated, 9);
    assert!(report
        .findings
        .iter()
        .any(|f| f.problem.contains("kept by the auditor")));

    // Only the events: the log's own signature still vouches for the missing tail.
    let f = Fixture::new().await;
    f.tamper("DELETE FROM events WHERE position > 10").await;
    detected(&f.verify(&[]).await, FindingKind::Truncated, 11);
}

#[tokio::test]
async fn a_tail_rewritten_with_a_recomputed_chain_is_found() {
    let f = Fixture::new().await;
    // The attacker replaces the last append with other events, chained and hashed right, and
    // removes its signature (it has no writer key to sign the new one).
    f.tamper("DELETE FROM events WHERE position > 8; DELETE FROM signatures WHERE last_position > 8; DELETE FROM checkpoints;").await;
    let events = f.events().await;
    let last = events.last().expect("events");
    let head = (8, Hash(last.2.clone().try_into().expect("32 bytes")));
    let rewritten = sealed(head, 4, &f.learners, "forger");
    let log = SqliteLog::open(&f.path()).await.expect("open");
    log.append(&rewritten).await.expect("forged append");
    log.close().await;
    let report = f.verify(std::slice::from_ref(&f.kept)).await;
    detected(&report, FindingKind::Unsigned, 9);
    detected(&report, FindingKind::Rewritten, 12);
}

#[tokio::test]
async fn a_forged_append_with_a_right_chain_and_no_valid_signature_is_found() {
    // Without a signature.
    let f = Fixture::new().await;
    let log = SqliteLog::open(&f.path()).await.expect("open");
    let head = log.head().await.expect("head");
    log.append(&sealed(
        (head.position, head.hash),
        1,
        &f.learners,
        "forger",
    ))
    .await
    .expect("forged append");
    log.close().await;
    let report = f.verify(&[]).await;
    detected(&report, FindingKind::Unsigned, 13);
    assert_eq!(report.verified, 12);

    // Signed by a key the region never registered.
    let f = Fixture::new().await;
    let log = SqliteLog::open(&f.path())
        .await
        .expect("open")
        .with_writer_key(Arc::new(WriterKey::generate()));
    let head = log.head().await.expect("head");
    log.append(&sealed(
        (head.position, head.hash),
        2,
        &f.learners,
        "forger",
    ))
    .await
    .expect("forged append");
    log.close().await;
    let report = f.verify(&[]).await;
    detected(&report, FindingKind::BadSignature, 13);
    assert!(report.findings[0]
        .problem
        .contains("not a registered writer key"));
}

#[tokio::test]
async fn an_edited_learner_index_is_found_and_reads_follow_the_hashed_bytes() {
    let f = Fixture::new().await;
    // Events 3 and 5 are about `a` (odd positions), 1, 2, 6... alternate.
    let [a, b] = [f.learners[1], f.learners[0]];
    let log = SqliteLog::open(&f.path()).await.expect("open");
    let before_a = log.read_learner(a).await.expect("a").len();
    let before_b = log.read_learner(b).await.expect("b").len();
    log.close().await;
    // Move event 3 (learner a's, as its bytes say) into learner b's history, and add an index
    // entry that claims event 5 for learner b.
    let events = f.events().await;
    for at in [2, 4] {
        let e = RecordedEvent::open(events[at].1.clone(), Hash::of(&events[at].1)).expect("event");
        assert_eq!(e.envelope.learner_id, Some(a));
    }
    f.tamper(&format!(
        "UPDATE events SET learner_id = x'{b}' WHERE position = 3; \
         INSERT INTO learner_index (segment, learner_id, position) VALUES (0, x'{b}', 5);",
        b = hex(b.as_uuid().as_bytes())
    ))
    .await;
    let report = f.verify(&[]).await;
    detected(&report, FindingKind::LearnerIndex, 3);
    detected(&report, FindingKind::LearnerIndex, 5);

    // Reads keep only what the bytes say: b gains nothing, a keeps what the index still finds.
    let log = SqliteLog::open(&f.path()).await.expect("open");
    assert_eq!(log.read_learner(b).await.expect("b").len(), before_b);
    assert!(log
        .read_learner(b)
        .await
        .expect("b")
        .iter()
        .all(|e| e.envelope.learner_id == Some(b)));
    assert!(log.read_learner(a).await.expect("a").len() < before_a);
    log.close().await;
}
