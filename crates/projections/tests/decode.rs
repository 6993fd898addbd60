//! The one-pass reader of stored envelopes gives exactly what the standard decoder gives, for
//! every event of a generated region (sealed ones through the standard decoder), and for bodies
//! it cannot read in one pass.

use std::time::Duration;

use chrono::NaiveDate;
use contingent_log::{Envelope, EventLog, Hash, RawEvent, RecordedEvent};
use contingent_log_sqlite::SqliteLog;
use contingent_projections::{decode_envelope, open_recorded, read_decoded_after};
use contingent_registry::{Registry, Settings};
use contingent_simulate::{generate, Config, Scale};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_region_decodes_as_the_standard_decoder_decodes_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let registry = Registry::open(Settings::new(dir.path()), |_| {})
        .await
        .expect("the registry opens");
    let config = Config {
        seed: 11,
        scale: Scale::tiny(),
        today: NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date"),
    };
    generate(&registry, &config, |_, _, _| {})
        .await
        .expect("the region generates");
    assert!(registry.wait_caught_up(Duration::from_secs(120)).await);
    registry.shutdown().await;

    let log = SqliteLog::open(&dir.path().join("log.db"))
        .await
        .expect("the log opens");
    let (mut at, mut one_pass, mut standard) = (0u64, 0usize, 0usize);
    loop {
        let raw = log.read_raw_after(at, 500).await.expect("raw events");
        let Some(last) = raw.last() else { break };
        at = last.position;
        for r in &raw {
            let expected = Envelope::decode(&r.body).expect("a stored body decodes");
            if let Some(envelope) = decode_envelope(&r.body) {
                // The derived decoder alone gives the same envelope.
                assert_eq!(
                    Envelope::decode_derived(&r.body).expect("derived"),
                    envelope,
                    "position {}",
                    r.position
                );
            }
            match decode_envelope(&r.body) {
                Some(envelope) => {
                    assert_eq!(envelope, expected, "position {}", r.position);
                    one_pass += 1;
                }
                None => standard += 1,
            }
        }
        let fast = read_decoded_after(&log, last.position - raw.len() as u64, 500)
            .await
            .expect("decoded in one pass");
        let slow = log
            .read_after(last.position - raw.len() as u64, 500)
            .await
            .expect("decoded");
        assert_eq!(fast, slow);
    }
    log.close().await;
    assert!(one_pass > 1000, "{one_pass} events read in one pass");
    // Personal fields are sealed in a registry's log: those events take the standard path.
    assert!(standard > 0, "no sealed event in the region");
}

fn stored(body: &str) -> RawEvent {
    RawEvent {
        position: 1,
        body: body.as_bytes().to_vec(),
        hash: Hash::of(body.as_bytes()).0.to_vec(),
    }
}

const HEAD: &str = r#""position":1,"event_id":"0190a5b4-6c1e-7000-8000-000000000001","schema_version":1,"business_date":"2026-11-02","recorded_at":"2026-11-02T09:00:00Z","source":{"kind":"region","id":"region"},"actor":"region-1","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000""#;
const DATA: &str = r#"{"class_id":"0190a5b4-6c1e-7000-8000-0000000000c1","organization_id":"0190a5b4-6c1e-7000-8000-0000000000a1","capacity":25}"#;

#[test]
fn bodies_it_cannot_read_in_one_pass_get_the_standard_answer() {
    let in_order = format!(r#"{{{HEAD},"type":"class_capacity_changed","data":{DATA}}}"#);
    let expected = Envelope::decode(in_order.as_bytes()).expect("a valid body");
    assert_eq!(decode_envelope(in_order.as_bytes()), Some(expected.clone()));

    // `data` before `type`: the standard decoder reads it, and so the result is the same.
    let reordered = format!(r#"{{{HEAD},"data":{DATA},"type":"class_capacity_changed"}}"#);
    assert_eq!(decode_envelope(reordered.as_bytes()), None);
    let opened = open_recorded(stored(&reordered)).expect("the standard decoder reads it");
    assert_eq!(opened.envelope, expected);

    // Stored with an older version of its type: the standard decoder upcasts it.
    let old = format!(
        r#"{{{HEAD},"type":"exam_result_recorded","data":{{"learner_id":"0190a5b4-6c1e-7000-8000-0000000000b1","form":"ege","subject":"Физика","exam_date":"2026-06-04","primary_points":20,"test_score":71,"grade":11}}}}"#
    );
    assert_eq!(decode_envelope(old.as_bytes()), None);
    let upcast = open_recorded(stored(&old)).expect("the standard decoder upcasts it");
    assert_eq!(upcast.envelope.schema_version, 2);
    assert_eq!(upcast.envelope.stored_schema_version, Some(1));
    assert_eq!(
        upcast.envelope,
        Envelope::decode(old.as_bytes()).expect("decodes")
    );

    // Malformed: the standard decoder's error.
    let broken = format!(r#"{{{HEAD},"type":"class_capacity_changed","data":{DATA}"#);
    let fast = open_recorded(stored(&broken)).expect_err("refused");
    let slow = RecordedEvent::open(broken.into_bytes(), Hash::default()).expect_err("refused");
    assert_eq!(fast.to_string(), slow.to_string());
}
