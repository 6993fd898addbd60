//! What signing every append costs on the embedded log: the same sealed events appended in
//! batches of 1, 16 and 256 events to a log without a writer key and to one with a key, in
//! alternating rounds. Run on purpose, in release:
//!
//! ```sh
//! cargo test --release -p contingent-log-sqlite --test sign_cost -- --ignored --nocapture
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use contingent_domain::{Event, LearnerId, Snils, SnilsRecorded, SourceKind};
use contingent_log::{Envelope, EventLog, Hash, Metadata, RecordedEvent, Source, WriterKey};
use contingent_log_sqlite::SqliteLog;

fn events(count: u64) -> Vec<RecordedEvent> {
    let meta = Metadata {
        source: Source {
            kind: SourceKind::Region,
            id: "bench".into(),
        },
        actor: "bench".into(),
        idempotency_key: None,
    };
    let facts = (0..count)
        .map(|_| {
            Event::SnilsRecorded(SnilsRecorded {
                learner_id: LearnerId::generate(),
                snils: Snils::parse("112-233-445 95").expect("snils"),
            })
        })
        .collect();
    Envelope::seal_all(facts, &meta, 1, contingent_log::GENESIS_HASH, Utc::now()).expect("seal")
}

async fn append_all(
    key: Option<Arc<WriterKey>>,
    sealed: &[RecordedEvent],
    batch: usize,
) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = SqliteLog::open(&dir.path().join("log.db"))
        .await
        .expect("open");
    if let Some(key) = key {
        log = log.with_writer_key(key);
    }
    let started = Instant::now();
    for chunk in sealed.chunks(batch) {
        log.append(chunk).await.expect("append");
    }
    let elapsed = started.elapsed();
    log.close().await;
    elapsed
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
async fn signing_cost_per_append() {
    let key = Arc::new(WriterKey::generate());
    let started = Instant::now();
    for i in 0..10_000u64 {
        std::hint::black_box(key.sign_batch(i, i, Hash::of(b"a"), Hash::of(b"b")));
    }
    println!(
        "Ed25519 batch signature: {:.1} µs each",
        started.elapsed().as_secs_f64() * 1e6 / 10_000.0
    );
    for (batch, total) in [(1usize, 2_000u64), (16, 16_000), (256, 64_000)] {
        let sealed = events(total);
        let (mut plain, mut signed) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..3 {
            plain += append_all(None, &sealed, batch).await;
            signed += append_all(Some(key.clone()), &sealed, batch).await;
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / (3 * total / batch as u64) as f64;
        println!(
            "batches of {batch:>3} events ({total} events, 3 rounds): {:.0} µs per append unsigned, \
             {:.0} µs signed: {:+.1} %",
            per(plain),
            per(signed),
            100.0 * (signed.as_secs_f64() / plain.as_secs_f64() - 1.0)
        );
    }
}
