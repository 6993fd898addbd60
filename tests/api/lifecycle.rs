//! One learner from the civil registry's birth record to graduation and college, seen in every
//! read model, the history, the state as of a date, and the chain.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{birth, enrolled, order, world, TestApp};

fn types(history: &Value) -> Vec<String> {
    history["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect()
}

/// Runs a scenario on the embedded registry and, unchanged, on Kafka and PostgreSQL.
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
    birth_to_college,
    a_learner_from_birth_to_college_is_seen_in_every_read_model,
    a_learner_from_birth_to_college_on_kafka_and_postgres
);
on_every_backend!(
    idempotent_retry,
    an_idempotent_retry_is_recorded_once_and_answered_the_same,
    an_idempotent_retry_on_kafka_and_postgres
);
on_every_backend!(
    concurrent_commands,
    concurrent_commands_are_group_committed_into_one_gapless_chain,
    concurrent_commands_on_kafka_and_postgres
);

/// One learner's whole lifecycle, checked in every read model.
async fn birth_to_college(app: TestApp) {
    let w = world(&app).await;

    // Civil registry: the birth record.
    let receipt = app
        .ok(
            "register_birth",
            birth(
                "1200",
                "Смирнов",
                "Алексей",
                "2008-03-14",
                Some("112-233-445 95"),
            ),
        )
        .await;
    let learner = receipt["learner_id"]
        .as_str()
        .expect("learner id")
        .to_owned();
    assert_eq!(receipt["events"][0]["type"], "birth_registered");
    assert_eq!(receipt["replayed"], false);

    // School: the mother's SNILS with consent, then enrollment into 11А.
    app.ok("link_guardian", json!({
        "learner_id": learner, "guardian_snils": "123-456-789 64",
        "guardian": { "surname": "Смирнова", "name": "Мария", "patronymic": "Ивановна" },
        "relation": "mother", "consent": { "given_on": "2025-08-25", "document": "Согласие № 17" },
    })).await;
    let enrollment = enrolled(&app, &learner, &w.class_11a, "2025-09-01").await;

    // Teacher: marks, a correction, attendance.
    let mark = |date: &str, value: &str, weight: u8| {
        json!({
            "learner_id": learner, "class_id": w.class_11a, "subject": "Математика", "lesson_date": date,
            "kind": "current", "work": "контрольная работа", "value": value, "weight": weight, "teacher": "Петрова Н. С.",
        })
    };
    app.ok("record_mark", mark("2025-09-15", "5", 1)).await;
    // A diary read now is kept and read again from the cache; everything recorded about the
    // learner afterwards must still show in the diary read at the end.
    let diary_path = format!("/v1/learners/{learner}/diary?academic_year=2025/2026");
    for _ in 0..2 {
        let early = app.get_ok(&diary_path).await;
        let marks = early["subjects"][0]["periods"][0]["marks"].as_array();
        assert_eq!(marks.map(Vec::len), Some(1), "{early}");
    }
    let (_, metrics) = app.get("/metrics").await;
    let hits = metrics
        .as_str()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("contingent_read_cache_hits_total "))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
    assert!(hits.is_some_and(|h| h >= 1), "{metrics}");
    let corrected = app.ok("record_mark", mark("2025-09-22", "3", 2)).await;
    let mark_id = corrected["events"][0]["data"]["mark_id"]
        .as_str()
        .expect("mark id")
        .to_owned();
    app.ok("correct_mark", json!({ "mark_id": mark_id, "value": "4", "reason": "перепроверка работы", "teacher": "Петрова Н. С." })).await;
    app.ok("record_attendance", json!({ "learner_id": learner, "class_id": w.class_11a, "date": "2025-09-16", "status": "ill" })).await;

    // Exam centre: ЕГЭ. School: graduation with a certificate.
    app.ok("record_exam_result", json!({
        "learner_id": learner, "form": "ege", "subject": "Математика", "exam_date": "2026-06-01",
        "primary_points": 22, "test_score": 78,
    })).await;
    app.ok("leave", json!({
        "learner_id": learner, "enrollment_id": enrollment, "left_on": "2026-06-30", "reason": "graduation",
        "order": order("Приказ № 77-у", "2026-06-30"),
        "certificate": { "number": "12224000123456", "issued_on": "2026-06-30" },
    })).await;

    // A new enrollment after leaving: college.
    let college_enrollment = app
        .ok("enroll", json!({
            "learner_id": learner, "class_id": w.college_group, "enrolled_on": "2026-09-01",
            "programme": { "name": "09.02.07 Информационные системы и программирование", "focus": "программист" },
            "order": order("Приказ № 310-к", "2026-08-25"),
        }))
        .await;
    assert_eq!(
        college_enrollment["events"][0]["data"]["level"],
        "vocational"
    );

    // Register.
    let card = app.get_ok(&format!("/v1/learners/{learner}")).await;
    assert_eq!(card["status"], "enrolled");
    assert_eq!(card["snils"], "112-233-445 95");
    assert_eq!(card["guardians"][0]["relation"], "mother");
    let enrollments = card["enrollments"].as_array().expect("enrollments");
    assert_eq!(enrollments.len(), 2);
    assert_eq!(enrollments[0]["level"], "vocational");
    assert_eq!(enrollments[1]["end_reason"], "graduation");
    let kinds: Vec<&str> = card["movements"]
        .as_array()
        .expect("movements")
        .iter()
        .map(|m| m["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["enrolled", "left", "enrolled"]);

    // Diary: weighted average (5·1 + 4·2) / 3 = 4.33, the correction visible, attendance, exam.
    let diary = app.get_ok(&diary_path).await;
    let maths = &diary["subjects"][0];
    assert_eq!(maths["subject"], "Математика");
    assert_eq!(maths["average"], 4.33);
    let marks = maths["periods"][0]["marks"].as_array().expect("marks");
    assert_eq!(marks.len(), 2);
    assert_eq!(marks[1]["value"], "4");
    assert_eq!(marks[1]["original_value"], "3");
    assert_eq!(marks[1]["corrections"], 1);
    assert_eq!(diary["attendance"]["counts"]["ill"], 1);
    assert_eq!(diary["exams"][0]["test_score"], 78);

    // Class register: in the roster during the year, not after graduation.
    let register = app
        .get_ok(&format!(
            "/v1/classes/{}/register?on=2025-10-01",
            w.class_11a
        ))
        .await;
    assert_eq!(register["roster"].as_array().expect("roster").len(), 1);
    assert_eq!(register["roster"][0]["learner_id"], learner);
    assert_eq!(
        register["marks"][0]["marks"]
            .as_array()
            .expect("grid")
            .len(),
        2
    );
    assert_eq!(register["attendance"][0]["records"][0]["status"], "ill");
    let after = app
        .get_ok(&format!(
            "/v1/classes/{}/register?on=2026-07-01",
            w.class_11a
        ))
        .await;
    assert!(after["roster"].as_array().expect("roster").is_empty());

    // Vacancies: 11А's place is free again; the college group has one taken.
    let vacancies = app
        .get_ok(&format!("/v1/vacancies?organization_id={}", w.school))
        .await;
    let row = vacancies["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .find(|c| c["class_id"] == w.class_11a.as_str())
        .expect("11А")
        .clone();
    assert_eq!(
        (
            row["capacity"].as_i64(),
            row["enrolled"].as_i64(),
            row["free"].as_i64()
        ),
        (Some(2), Some(0), Some(2))
    );
    let college = app
        .get_ok(&format!("/v1/vacancies?organization_id={}", w.college))
        .await;
    assert_eq!(college["enrolled"], 1);

    // Federal export: the learner without a name, counted under vocational education.
    let federal = app.get_ok("/v1/federal/register?limit=10").await;
    let entry = federal["learners"]
        .as_array()
        .expect("learners")
        .iter()
        .find(|l| l["learner_id"] == learner.as_str())
        .expect("exported")
        .clone();
    assert_eq!(entry["status"], "enrolled");
    assert_eq!(entry["birth_year"], 2008);
    assert!(entry.get("surname").is_none() && entry.get("snils").is_none());
    let counts = app.get_ok("/v1/federal/counts?by=municipality,level").await;
    assert_eq!(
        counts["counts"],
        json!([{ "municipality": "Барнаул", "level": "vocational", "learners": 1 }])
    );

    // History, in log order, chained.
    let history = app.get_ok(&format!("/v1/learners/{learner}/history")).await;
    assert_eq!(
        types(&history),
        [
            "birth_registered",
            "guardian_linked",
            "enrolled",
            "mark_recorded",
            "mark_recorded",
            "mark_corrected",
            "attendance_recorded",
            "exam_result_recorded",
            "left",
            "enrolled"
        ]
    );
    assert_eq!(history["altered_positions"], json!([]));

    // State as of a date: what the registry knew of the school year on 31 December 2025.
    let state = app
        .get_ok(&format!("/v1/learners/{learner}/state?as_of=2025-12-31"))
        .await;
    assert_eq!(state["status"], "enrolled");
    assert_eq!(
        state["enrollments"].as_array().expect("enrollments").len(),
        1
    );
    assert_eq!(state["marks"].as_object().expect("marks").len(), 2);
    assert!(state["exams"].as_array().expect("exams").is_empty());
    let before = app
        .get(&format!("/v1/learners/{learner}/state?known_at=2000-01-01"))
        .await;
    assert_eq!(before.0, StatusCode::NOT_FOUND);

    // The chain is intact.
    let verify = app.get_ok("/v1/audit/verify").await;
    assert_eq!(verify["first_break"], Value::Null);
    assert_eq!(verify["verified"].as_u64(), Some(app.registry.head()));
}

/// A command retried with its idempotency key, and a civil record reported twice.
async fn idempotent_retry(app: TestApp) {
    world(&app).await;
    let body = birth("3300", "Козлов", "Денис", "2010-05-05", None);
    let first = app
        .command_with_key("register_birth", "zags-3300", body.clone())
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("receipt");
    let head = app.registry.head();
    let second = app
        .command_with_key("register_birth", "zags-3300", body.clone())
        .await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(
        second
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().ok()),
        Some(Some("true"))
    );
    let second: Value = second.json().await.expect("receipt");
    assert_eq!(first["events"], second["events"]);
    assert_eq!(first["learner_id"], second["learner_id"]);
    assert_eq!(app.registry.head(), head, "nothing new appended");

    // The same civil record without a key: recognized, nothing appended, the same learner.
    let again = app.ok("register_birth", body).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["events"], json!([]));
    assert_eq!(again["learner_id"], first["learner_id"]);
    assert_eq!(app.registry.head(), head);

    // A key its account reuses for another command is refused (another account's same key is
    // another key: tests/api/idempotency.rs).
    let other = app
        .command_with_key("register_death", "zags-3300", json!({
            "person": { "learner_id": first["learner_id"] }, "death_date": "2025-10-01",
            "record": { "number": "D-3300", "date": "2025-10-02", "office": "Отдел ЗАГС г. Барнаула" } }))
        .await;
    crate::helpers::assert_problem(
        other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
}

/// 200 commands at once form one gapless chain.
async fn concurrent_commands(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200u32 {
        let app = app.clone();
        tasks.spawn(async move {
            let r = app
                .command(
                    "register_birth",
                    birth(&format!("9{i:04}"), "Новиков", "Илья", "2015-01-10", None),
                )
                .await;
            assert_eq!(r.status(), StatusCode::CREATED);
            let v: Value = r.json().await.expect("receipt");
            v["events"][0]["position"].as_u64().expect("position")
        });
    }
    let mut positions = Vec::new();
    while let Some(p) = tasks.join_next().await {
        positions.push(p.expect("task"));
    }
    positions.sort_unstable();
    assert_eq!(positions, (1..=200).collect::<Vec<u64>>());
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(app.region())
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let commits: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("contingent_group_commits_total "))
        .and_then(|v| v.parse().ok())
        .expect("group commit counter");
    assert!((1..=200).contains(&commits), "{commits} commits");
    let verify = app.get_ok("/v1/audit/verify").await;
    assert_eq!(verify["verified"], 200);
}
