//! What signing every append costs on the embedded log: the same sealed events appended in
//! batches of 1, 16 and 256 events to a log without a writer key and to one with a key, batch by
//! batch in alternation. Run on purpose, in release:
//!
//! ```sh
//! cargo test --release -p contingent-log-sqlite --test sign_cost -- --ignored --nocapture
//! ```

use std::sync::Arc;
use std::time::Instant;

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
        request_fingerprint: None,
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

/// Appends `sealed` in batches of `batch` to an unsigned and a signed log in turn (each batch to
/// one, then the same batch to the other, the order alternating), so that both see the same disk
/// at the same moments; returns the latencies of each, in microseconds.
async fn alternate(
    key: Arc<WriterKey>,
    sealed: &[RecordedEvent],
    batch: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let plain = SqliteLog::open(&a.path().join("log.db"))
        .await
        .expect("open");
    let signed = SqliteLog::open(&b.path().join("log.db"))
        .await
        .expect("open")
        .with_writer_key(key);
    let (mut p, mut s) = (Vec::new(), Vec::new());
    for (i, chunk) in sealed.chunks(batch).enumerate() {
        for signed_first in [i % 2 == 0, i % 2 != 0] {
            let (log, out) = if signed_first {
                (&signed, &mut s)
            } else {
                (&plain, &mut p)
            };
            let started = Instant::now();
            log.append(chunk).await.expect("append");
            out.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    plain.close().await;
    signed.close().await;
    (p, s)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
    for (batch, total) in [(1usize, 3_000u64), (16, 24_000), (256, 128_000)] {
        let sealed = events(total);
        let (plain, signed) = alternate(key.clone(), &sealed, batch).await;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (pm, sm) = (mean(&plain), mean(&signed));
        let (pmed, smed) = (median(plain), median(signed));
        println!(
            "batches of {batch:>3} events, {} appends each: median {pmed:.0} µs unsigned, \
             {smed:.0} µs signed ({:+.1} %); mean {pm:.0} / {sm:.0} µs ({:+.1} %)",
            total / batch as u64,
            100.0 * (smed / pmed - 1.0),
            100.0 * (sm / pm - 1.0)
        );
    }
}
