//! The kept diaries: an event about no learner evicts none; an event about the learner evicts
//! theirs, and the diary read next shows it.

use serde_json::json;

use crate::helpers::{birth, enrolled, world, TestApp};

macro_rules! on_every_backend {
    ($scenario:ident, $embedded:ident, $kafka_postgres:ident) => {
        #[tokio::test]
        async fn $embedded() {
            $scenario(TestApp::spawn().await).await;
        }

        #[tokio::test]
        async fn $kafka_postgres() {
            $scenario(TestApp::spawn_on_kafka_and_postgres().await).await;
        }
    };
}

on_every_backend!(
    region_wide_events_keep_diaries,
    a_capacity_change_elsewhere_keeps_a_diary_and_a_mark_evicts_it,
    a_capacity_change_elsewhere_keeps_a_diary_on_kafka_and_postgres
);

async fn counter(app: &TestApp, name: &str) -> u64 {
    let text = app.metrics_text().await;
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

async fn hits_and_misses(app: &TestApp) -> (u64, u64) {
    (
        counter(app, "contingent_read_cache_hits_total").await,
        counter(app, "contingent_read_cache_misses_total").await,
    )
}

async fn region_wide_events_keep_diaries(app: TestApp) {
    let w = world(&app).await;
    let receipt = app
        .ok(
            "register_birth",
            birth("1301", "Кузнецова", "Дарья", "2008-05-02", None),
        )
        .await;
    let learner = receipt["learner_id"]
        .as_str()
        .expect("learner id")
        .to_owned();
    enrolled(&app, &learner, &w.class_11a, "2025-09-01").await;
    let mark = |date: &str, value: &str| {
        json!({
            "learner_id": learner, "class_id": w.class_11a, "subject": "Физика", "lesson_date": date,
            "kind": "current", "work": "ответ у доски", "value": value, "weight": 1, "teacher": "Орлова Е. В.",
        })
    };
    app.ok("record_mark", mark("2025-09-15", "5")).await;
    let path = format!("/v1/learners/{learner}/diary?academic_year=2025/2026");
    let first = app.get_ok(&path).await;
    let (hits, misses) = hits_and_misses(&app).await;

    // Events about no learner: another class's capacity, a class and an organization opened.
    for capacity in [30, 31, 32] {
        app.ok(
            "change_class_capacity",
            json!({ "class_id": w.class_11b, "capacity": capacity }),
        )
        .await;
    }
    app.ok(
        "open_class",
        json!({ "organization_id": w.school, "academic_year": "2025/2026", "level": "general",
                "grade": 10, "name": "10А", "capacity": 25 }),
    )
    .await;
    let kept = app.get_ok(&path).await;
    assert_eq!(kept, first);
    assert_eq!(
        hits_and_misses(&app).await,
        (hits + 1, misses),
        "the diary is answered from the cache after events about no learner"
    );

    // A mark for the learner: the diary is read again and shows it.
    app.ok("record_mark", mark("2025-09-16", "3")).await;
    let fresh = app.get_ok(&path).await;
    assert_eq!(hits_and_misses(&app).await, (hits + 1, misses + 1));
    let marks = fresh["subjects"][0]["periods"][0]["marks"]
        .as_array()
        .expect("marks");
    assert_eq!(marks.len(), 2, "{fresh}");
    assert_eq!(marks[1]["value"], "3");
    assert_eq!(fresh["subjects"][0]["average"], 4.0);
}
