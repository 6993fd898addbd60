//! `contingent migrate-log`: a deployment whose log was written before personal fields were
//! sealed moves to a new log that seals them. The old log here is written in clear as those
//! versions wrote it (every envelope encoded as it is, chained and signed by its writer), from
//! the events of a generated region.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use contingent_domain::Event;
use contingent_log::{Envelope, EventLog, RecordedEvent, WriterKey, WriterKeys, GENESIS_HASH};
use contingent_log_sqlite::SqliteLog;
use contingent_registry::Settings;
use support::{run, BIN};

/// A writer key of `clear`'s own, registered in its trusted keys.
fn writer_key(clear: &Path) -> Arc<WriterKey> {
    std::fs::create_dir_all(clear.join("keys")).expect("keys/");
    let key = Arc::new(WriterKey::load_or_create(&clear.join("keys/writer-key")).expect("key"));
    let mut keys = WriterKeys::load_or_empty(&clear.join("keys/writers.json")).expect("keys");
    keys.register(&key.public());
    keys.save(&clear.join("keys/writers.json")).expect("save");
    key
}

/// Writes the events of the log in `sealed` (opened with its key store) to `clear`'s embedded
/// log without sealing anything, signed by a writer key of `clear`'s own. Returns personal
/// values (names, SNILS) the clear log holds.
async fn write_in_clear(sealed: &Path, clear: &Path) -> Vec<String> {
    let key = writer_key(clear);
    let log = SqliteLog::open(&clear.join("log.db"))
        .await
        .expect("log")
        .with_writer_key(key);
    copy_in_clear(sealed, &log).await
}

/// Writes the events of the log in `sealed`, opened, to `log` without sealing anything.
async fn copy_in_clear(sealed: &Path, log: &dyn EventLog) -> Vec<String> {
    let source = contingent_registry::open_log(&Settings::new(sealed))
        .await
        .expect("the generated log");
    let mut prev = GENESIS_HASH;
    let mut at = 0;
    let mut personal = Vec::new();
    loop {
        let page = source.read_after(at, 1_000).await.expect("read");
        if page.is_empty() {
            break;
        }
        let mut batch = Vec::new();
        for event in page {
            at = event.position();
            if let Event::BirthRegistered(b) = &event.envelope.event {
                assert!(event.envelope.personal.as_ref().is_some_and(|p| p.readable));
                personal.push(format!("\"surname\":\"{}\"", b.child.surname));
            }
            if let Event::SnilsRecorded(s) = &event.envelope.event {
                personal.push(s.snils.to_string());
            }
            let clear = RecordedEvent::seal(Envelope {
                prev_hash: prev,
                personal: None,
                ..event.envelope
            })
            .expect("encode");
            prev = clear.hash;
            batch.push(clear);
        }
        log.append(&batch).await.expect("append");
    }
    log.close().await;
    source.close().await;
    personal.sort();
    personal.dedup();
    personal
}

/// Whether a SQLite file, or its write-ahead log, holds `text`.
fn contains(file: &Path, text: &str) -> bool {
    let wal = file.with_extension("db-wal");
    [file, wal.as_path()]
        .iter()
        .filter(|f| f.exists())
        .any(|f| {
            let bytes = std::fs::read(f).expect("read");
            bytes.windows(text.len()).any(|w| w == text.as_bytes())
        })
}

fn fails(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("CI", "1")
        .output()
        .expect("runs");
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

fn head_hash(verified: &str) -> String {
    verified
        .lines()
        .find_map(|l| l.strip_prefix("OK: ")?.split("head hash ").nth(1))
        .unwrap_or_else(|| panic!("no head in {verified}"))
        .trim()
        .to_owned()
}

fn path(p: &Path) -> String {
    p.to_str().expect("utf-8").to_owned()
}

/// A temporary directory with a region of `learners` generated into `generated/`, and the
/// paths of the old and the new deployments' data directories beside it.
fn generated_region(learners: &str) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (generated, old, new) = (
        dir.path().join("generated"),
        dir.path().join("old"),
        dir.path().join("new"),
    );
    run(&[
        "simulate",
        "--learners",
        learners,
        "--seed",
        "7",
        "--data",
        &path(&generated),
    ]);
    (dir, generated, old, new)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_in_clear_moves_to_a_sealed_log_that_names_its_head_and_says_the_same() {
    let (dir, generated, old, new) = generated_region("12");
    let personal = write_in_clear(&generated, &old).await;
    assert!(personal.len() > 5, "{personal:?}");
    let old_log = old.join("log.db");
    assert!(
        personal.iter().all(|v| contains(&old_log, v)),
        "the old log holds personal data in clear"
    );
    let verified_old = run(&["verify", "--data", &path(&old)]);
    let old_head = head_hash(&verified_old);
    let old_length: u64 = verified_old
        .split("OK: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a count");

    let migrated = run(&[
        "migrate-log",
        "--from-data",
        &path(&old),
        "--data",
        &path(&new),
    ]);
    assert!(
        migrated.contains(&format!("{old_length} events of the embedded log")),
        "{migrated}"
    );

    // A copy of the new deployment as an interrupted migration leaves it: its first append only.
    let interrupted = dir.path().join("interrupted");
    std::fs::create_dir_all(interrupted.join("keys")).expect("dir");
    // SQLite's write-ahead logs too: what they hold is committed.
    for f in [
        "log.db",
        "log.db-wal",
        "log.db-shm",
        "keys.db",
        "keys.db-wal",
        "keys.db-shm",
        "keys/master-key",
        "keys/writer-key",
        "keys/writers.json",
    ] {
        if new.join(f).exists() {
            std::fs::copy(new.join(f), interrupted.join(f)).expect("copy");
        }
    }
    assert!(
        old_length > 1_001,
        "{old_length} events: more than one append"
    );
    cut_after(&interrupted.join("log.db"), 1_001).await;

    // The new log verifies, begins with the old head, and holds no personal value in clear.
    let verified_new = run(&["verify", "--data", &path(&new)]);
    assert!(
        verified_new.contains(&format!(
            "ended at position {old_length} with head hash {old_head}"
        )),
        "{verified_new}"
    );
    assert!(
        verified_new.contains(&format!("OK: {} events verified", old_length + 1)),
        "{verified_new}"
    );
    let new_log = new.join("log.db");
    for value in &personal {
        assert!(
            !contains(&new_log, value),
            "{value} in the new log in clear"
        );
    }
    // Nothing changed in the old log.
    assert_eq!(run(&["verify", "--data", &path(&old)]), verified_old);

    // The new deployment projects the same region and erases as any sealed one does.
    run(&["rebuild", "--data", &path(&new)]);
    run(&["rebuild", "--data", &path(&generated)]);
    let counts = |d: &Path| run(&["export", "--what", "counts", "--data", &path(d)]);
    assert_eq!(counts(&new), counts(&generated));
    let erased = run(&[
        "retention",
        "--after-leaving-years",
        "0",
        "--after-death-years",
        "0",
        "--today",
        "2100-01-01",
        "--erase",
        "--data",
        &path(&new),
    ]);
    assert!(!erased.contains(" 0 learners erased"), "{erased}");
    assert!(run(&["verify", "--data", &path(&new)]).contains("OK: "));

    // The interrupted migration is taken up where it stopped, and ends as the whole one did.
    let resumed = run(&[
        "migrate-log",
        "--from-data",
        &path(&old),
        "--data",
        &path(&interrupted),
    ]);
    assert!(
        resumed.contains(&format!("{old_length} events")),
        "{resumed}"
    );
    let verified = run(&["verify", "--data", &path(&interrupted)]);
    assert!(
        verified.contains(&format!("OK: {} events verified", old_length + 1))
            && verified.contains(&format!("with head hash {old_head}")),
        "{verified}"
    );
    run(&["rebuild", "--data", &path(&interrupted)]);
    assert_eq!(counts(&interrupted), counts(&generated));

    // Refused: into a log that is not empty, from a log already sealed, from a log that does
    // not verify; nothing is written.
    let again = fails(&[
        "migrate-log",
        "--from-data",
        &path(&old),
        "--data",
        &path(&new),
    ]);
    assert!(again.contains("not a migration of this log"), "{again}");
    let elsewhere = dir.path().join("elsewhere");
    let sealed = fails(&[
        "migrate-log",
        "--from-data",
        &path(&generated),
        "--data",
        &path(&elsewhere),
    ]);
    assert!(sealed.contains("nothing to migrate"), "{sealed}");
    let damaged = dir.path().join("damaged");
    std::fs::create_dir_all(damaged.join("keys")).expect("dir");
    for f in ["log.db", "keys/writers.json"] {
        std::fs::copy(old.join(f), damaged.join(f)).expect("copy");
    }
    change_a_stored_event(&damaged.join("log.db")).await;
    let refused = fails(&[
        "migrate-log",
        "--from-data",
        &path(&damaged),
        "--data",
        &path(&elsewhere),
    ]);
    assert!(refused.contains("does not verify"), "{refused}");
    let untouched = elsewhere.join("log.db");
    assert!(
        !untouched.exists()
            || SqliteLog::open(&untouched)
                .await
                .expect("log")
                .head()
                .await
                .expect("head")
                .position
                == 0,
        "nothing written"
    );
}

/// Changes one digit of a stored event's body in place, as someone with write access to the
/// file could.
async fn change_a_stored_event(db: &Path) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("the log file");
    // An attacker with write access to the file drops the append-only triggers first.
    sqlx::raw_sql(
        "DROP TRIGGER IF EXISTS events_are_never_updated; \
         DROP TRIGGER IF EXISTS events_are_never_deleted;",
    )
    .execute(&mut conn)
    .await
    .expect("drop triggers");
    let changed = sqlx::query(
        "UPDATE events SET body = CAST(REPLACE(CAST(body AS TEXT), '\"grade\":1', '\"grade\":2') AS BLOB) \
         WHERE position = (SELECT MIN(position) FROM events WHERE CAST(body AS TEXT) LIKE '%\"grade\":1%')",
    )
    .execute(&mut conn)
    .await
    .expect("update")
    .rows_affected();
    assert_eq!(changed, 1, "a stored event changed");
    conn.close().await.expect("close");
}

/// On Kafka: an old log in clear on one topic moves to another topic, and the new topic verifies
/// and names the old head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_in_clear_on_a_kafka_topic_moves_to_a_sealed_topic() {
    use contingent_log_kafka::{KafkaConfig, KafkaLog};
    let (_dir, generated, old, new) = generated_region("6");
    let broker = contingent_testkit::kafka_broker();
    let old_topic = KafkaConfig::region_topic(&contingent_testkit::unique_region());
    let new_topic = KafkaConfig::region_topic(&contingent_testkit::unique_region());
    let log = KafkaLog::open(KafkaConfig::new(broker.clone(), &old_topic))
        .await
        .expect("the old topic")
        .with_writer_key(writer_key(&old));
    let personal = copy_in_clear(&generated, &log).await;
    log.close().await;
    let on = |topic: &str, d: &Path| {
        vec![
            "--kafka".to_owned(),
            broker.clone(),
            "--kafka-topic".to_owned(),
            topic.to_owned(),
            "--data".to_owned(),
            path(d),
        ]
    };
    let mut verify_old = vec!["verify".to_owned()];
    verify_old.extend(on(&old_topic, &old));
    let verified_old = run(&verify_old);
    let old_head = head_hash(&verified_old);

    let mut migrate = vec![
        "migrate-log".to_owned(),
        "--from-data".to_owned(),
        path(&old),
        "--from-kafka-topic".to_owned(),
        old_topic.clone(),
    ];
    migrate.extend(on(&new_topic, &new));
    let migrated = run(&migrate);
    assert!(
        migrated.contains(&format!("Kafka topic {old_topic}")),
        "{migrated}"
    );

    let mut verify_new = vec!["verify".to_owned()];
    verify_new.extend(on(&new_topic, &new));
    let verified_new = run(&verify_new);
    assert!(
        verified_new.contains(&format!("with head hash {old_head}")),
        "{verified_new}"
    );
    assert!(verified_new.contains("OK: "), "{verified_new}");
    // The new topic's records hold no personal value in clear.
    let records = KafkaLog::open(KafkaConfig::new(broker.clone(), &new_topic))
        .await
        .expect("the new topic")
        .read_raw_after(0, 100_000)
        .await
        .expect("records");
    for value in &personal {
        assert!(
            !records
                .iter()
                .any(|r| r.body.windows(value.len()).any(|w| w == value.as_bytes())),
            "{value} on the new topic in clear"
        );
    }
}

/// Cuts an embedded log after `position`, as a process stopped after that append leaves it.
async fn cut_after(db: &Path, position: u64) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("the log file");
    sqlx::raw_sql(&format!(
        "DROP TRIGGER IF EXISTS events_are_never_updated; \
         DROP TRIGGER IF EXISTS events_are_never_deleted; \
         DELETE FROM events WHERE position > {position}; \
         DELETE FROM signatures WHERE last_position > {position}; \
         DELETE FROM checkpoints WHERE position > {position}; \
         DELETE FROM learner_index WHERE position > {position}; \
         UPDATE log_meta SET value = MIN(value, {position}) WHERE name = 'indexed_through';"
    ))
    .execute(&mut conn)
    .await
    .expect("cut");
    conn.close().await.expect("close");
}
