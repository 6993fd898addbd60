//! What sealing personal fields costs per event, on the writer's path (encoding an envelope)
//! and on a projector's (decoding it, and opening the sealed part with the learner's key): a
//! birth with every personal field, and a mark with none, each encoded and decoded in clear and
//! sealed, in alternating rounds. Run on purpose, in release:
//!
//! ```sh
//! cargo test --release -p contingent-log --test seal_cost -- --ignored --nocapture
//! ```
//!
//! Beside it, what upcasting costs a reader: an exam result stored with version 1 of its type,
//! decoded through the upcaster chain, against the same result stored with the current version.

use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use contingent_domain::{
    BirthRegistered, CivilRecord, ClassId, Document, Event, ExamForm, ExamResultRecorded,
    ExamScore, FullName, LearnerId, Mark, MarkId, MarkKind, MarkRecorded, Sex, Snils, SourceKind,
    Text,
};
use contingent_log::{
    seal_personal, unseal, DataKey, Envelope, Metadata, RecordedEvent, Source, GENESIS_HASH,
};

const ROUNDS: usize = 7;
const EVENTS: usize = 20_000;

fn t(s: &str) -> Text {
    Text::parse(s).expect("text")
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("date")
}

fn birth(learner: LearnerId) -> Event {
    Event::BirthRegistered(BirthRegistered {
        learner_id: learner,
        record: CivilRecord {
            number: t("1102012008000001"),
            date: d(2008, 9, 21),
            office: t("Отдел ЗАГС г. Барнаул"),
        },
        child: FullName {
            surname: t("Савельев"),
            name: t("Иван"),
            patronymic: Some(t("Русланович")),
        },
        sex: Sex::Male,
        birth_date: d(2008, 8, 24),
        certificate: Some(Document {
            kind: t("birth_certificate"),
            series: Some(t("II-ТО")),
            number: t("514545"),
        }),
        snils: Some(Snils::parse("500-982-421 63").expect("snils")),
    })
}

fn mark(learner: LearnerId) -> Event {
    Event::MarkRecorded(MarkRecorded {
        mark_id: MarkId::generate(),
        learner_id: learner,
        class_id: ClassId::generate(),
        subject: t("Математика"),
        lesson_date: d(2025, 9, 15),
        kind: MarkKind::Current,
        work: t("контрольная работа"),
        period: Some(t("term-1")),
        value: Mark::parse("5").expect("mark"),
        weight: 2,
        teacher: t("teacher-7"),
    })
}

fn meta() -> Metadata {
    Metadata {
        source: Source {
            kind: SourceKind::Organization,
            id: "bench".into(),
        },
        actor: "user:bench".into(),
        idempotency_key: None,
        request_fingerprint: None,
    }
}

/// Nanoseconds per event of `f` over `events`.
fn per_event(events: usize, f: impl FnOnce()) -> f64 {
    let started = Instant::now();
    f();
    started.elapsed().as_nanos() as f64 / events as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn measure(name: &str, make: fn(LearnerId) -> Event) {
    let learner = LearnerId::generate();
    let key = Arc::new(DataKey::generate(learner));
    let facts: Vec<Event> = (0..EVENTS).map(|_| make(learner)).collect();
    let seal = |sealed: bool| -> Vec<RecordedEvent> {
        Envelope::seal_all_with(facts.clone(), &meta(), 1, GENESIS_HASH, Utc::now(), |e| {
            if sealed {
                seal_personal(e, |_| Ok(key.clone()))
            } else {
                RecordedEvent::seal(e)
            }
        })
        .expect("seal")
    };
    let (mut enc_clear, mut enc_sealed, mut dec_clear, mut dec_sealed, mut dec_serde) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        for sealed in [round % 2 == 0, round % 2 != 0] {
            let mut out = Vec::new();
            let ns = per_event(EVENTS, || out = seal(sealed));
            let bodies: Vec<(Vec<u8>, contingent_log::Hash)> =
                out.into_iter().map(|r| (r.body, r.hash)).collect();
            let dec = per_event(EVENTS, || {
                for (body, hash) in &bodies {
                    let mut r = RecordedEvent::open(body.clone(), *hash).expect("open");
                    if sealed {
                        unseal(&mut r, &key).expect("unseal");
                    }
                    std::hint::black_box(&r);
                }
            });
            if sealed {
                enc_sealed.push(ns);
                dec_sealed.push(dec);
            } else {
                enc_clear.push(ns);
                dec_clear.push(dec);
                // The decoder before sealing existed: serde straight into the envelope.
                dec_serde.push(per_event(EVENTS, || {
                    for (body, _) in &bodies {
                        let body = body.clone();
                        let e: Envelope = serde_json::from_slice(&body).expect("decode");
                        std::hint::black_box((&e, body));
                    }
                }));
            }
        }
    }
    let (ec, es, dc, ds, d0) = (
        median(enc_clear),
        median(enc_sealed),
        median(dec_clear),
        median(dec_sealed),
        median(dec_serde),
    );
    println!(
        "{name}: encode {:.2} µs clear, {:.2} µs sealed; decode {:.2} µs before sealing existed, {:.2} µs clear, {:.2} µs sealed and opened",
        ec / 1000.0,
        es / 1000.0,
        d0 / 1000.0,
        dc / 1000.0,
        ds / 1000.0,
    );
}

#[test]
#[ignore = "a measurement: run in release on purpose"]
fn sealing_cost_per_event() {
    measure("birth_registered (every personal field)", birth);
    measure("mark_recorded (none)", mark);
}

fn exam(learner: LearnerId) -> Event {
    Event::ExamResultRecorded(ExamResultRecorded {
        learner_id: learner,
        form: ExamForm::Ege,
        subject: t("Математика (профильный уровень)"),
        exam_date: d(2026, 6, 4),
        primary_points: 25,
        result: ExamScore::TestScore(86),
        grade: 11,
    })
}

#[test]
#[ignore = "a measurement: run in release on purpose"]
fn upcasting_cost_per_event() {
    let learner = LearnerId::generate();
    let facts: Vec<Event> = (0..EVENTS).map(|_| exam(learner)).collect();
    let current: Vec<(Vec<u8>, contingent_log::Hash)> =
        Envelope::seal_all(facts, &meta(), 1, GENESIS_HASH, Utc::now())
            .expect("seal")
            .into_iter()
            .map(|r| (r.body, r.hash))
            .collect();
    // The same results as version 1 stored them: the score in `test_score`.
    let old: Vec<(Vec<u8>, contingent_log::Hash)> = current
        .iter()
        .map(|(body, _)| {
            let mut v: serde_json::Value = serde_json::from_slice(body).expect("json");
            v["schema_version"] = 1.into();
            let data = v["data"].as_object_mut().expect("data");
            let result = data.remove("result").expect("result");
            data.insert("test_score".into(), result["test_score"].clone());
            let body = serde_json::to_vec(&v).expect("bytes");
            let hash = contingent_log::Hash::of(&body);
            (body, hash)
        })
        .collect();
    let decode = |bodies: &[(Vec<u8>, contingent_log::Hash)]| {
        per_event(EVENTS, || {
            for (body, hash) in bodies {
                let r = RecordedEvent::open(body.clone(), *hash).expect("open");
                std::hint::black_box(&r);
            }
        })
    };
    let (mut direct, mut upcast) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            direct.push(decode(&current));
            upcast.push(decode(&old));
        } else {
            upcast.push(decode(&old));
            direct.push(decode(&current));
        }
    }
    println!(
        "exam_result_recorded: decode {:.2} µs stored as version 2 (current), {:.2} µs stored as version 1 (upcast)",
        median(direct) / 1000.0,
        median(upcast) / 1000.0,
    );
}
