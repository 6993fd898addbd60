//! Reach follows the rules, not what a caller can arrange: each test here is a way a caller
//! could once widen their reach or slip past a rule, and shows it closed.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{born, order, world, TestApp};

fn class_id(receipt: &Value) -> String {
    receipt["events"][0]["data"]["class_id"]
        .as_str()
        .expect("class id")
        .to_owned()
}

async fn open(app: &TestApp, school: &str, grade: u8, name: &str) -> String {
    class_id(
        &app.ok(
            "open_class",
            json!({ "organization_id": school, "academic_year": "2025/2026", "level": "general",
                "grade": grade, "name": name, "capacity": 25 }),
        )
        .await,
    )
}

#[tokio::test]
async fn the_grade_one_age_rule_holds_for_a_transfer_into_grade_one() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let class_2a = open(&app, &w.school, 2, "2А").await;
    let class_1a = open(&app, &w.school, 1, "1А").await;
    // Twelve years old: no grade 1 would take them, grade 2 has no age rule.
    let learner = born(&app, "900", "Сидоров", "2014-03-01").await;
    let receipt = app
        .ok(
            "enroll",
            json!({ "learner_id": learner, "class_id": class_2a, "enrolled_on": "2025-09-01",
            "programme": { "name": "ООП НОО" }, "order": order("1-у", "2025-09-01") }),
        )
        .await;
    let enrollment = receipt["events"][0]["data"]["enrollment_id"]
        .as_str()
        .expect("enrollment id")
        .to_owned();
    let head = app.registry.head();
    app.refused(
        "transfer",
        json!({ "learner_id": learner, "enrollment_id": enrollment, "kind": "within_organization",
            "to_class_id": class_1a, "transferred_on": "2025-10-01", "order": order("2-у", "2025-10-01") }),
        StatusCode::UNPROCESSABLE_ENTITY,
        "grade_one_age_rule",
    )
    .await;
    assert_eq!(app.registry.head(), head, "nothing appended");
}

async fn enroll_into(app: &TestApp, learner: &str, class: &str, on: &str) -> String {
    let receipt = app
        .ok(
            "enroll",
            json!({ "learner_id": learner, "class_id": class, "enrolled_on": on,
            "programme": { "name": "ООП СОО" }, "order": order("1-у", on) }),
        )
        .await;
    receipt["events"][0]["data"]["enrollment_id"]
        .as_str()
        .expect("enrollment id")
        .to_owned()
}

#[tokio::test]
async fn a_school_cannot_link_a_guardian_to_its_learner() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let learner = born(&app, "901", "Орлов", "2009-02-01").await;
    enroll_into(&app, &learner, &w.class_11a, "2025-09-01").await;
    let school = app.organization(w.school.parse().expect("uuid"));
    let head = app.registry.head();
    let r = app
        .client
        .post(format!("{}/v1/commands/link_guardian", app.base))
        .bearer_auth(&school)
        .json(
            &json!({ "learner_id": learner, "guardian_snils": "123-456-789 64",
            "guardian": { "surname": "Орлова", "name": "Анна" }, "relation": "mother",
            "consent": { "given_on": "2025-09-01", "document": "Согласие № 1" } }),
        )
        .send()
        .await
        .expect("sent");
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.registry.head(), head, "nothing appended");
    // The parent's access therefore never comes from the school: a token with that SNILS
    // reads nothing.
    let parent = app.token(&contingent_access::Claims {
        snils: Some("123-456-789 64".into()),
        ..crate::helpers::claims("parent-x", contingent_access::Role::Parent)
    });
    let (status, _) = app
        .get_as(&parent, &format!("/v1/learners/{learner}/diary"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn post_as(app: &TestApp, token: &str, name: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/commands/{name}", app.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn a_teacher_writes_only_within_their_subjects_and_dates_and_as_themselves() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let learner = born(&app, "902", "Лебедев", "2009-02-01").await;
    enroll_into(&app, &learner, &w.class_11a, "2025-09-01").await;
    app.ok(
        "assign_teacher",
        json!({ "class_id": w.class_11a, "organization_id": w.school,
        "teacher": "teacher-7", "teacher_name": "Петрова Наталья Сергеевна",
        "subjects": ["Математика"], "from": "2025-10-01" }),
    )
    .await;
    app.ok(
        "assign_teacher",
        json!({ "class_id": w.class_11a, "organization_id": w.school,
        "teacher": "teacher-8", "teacher_name": "Иванов Иван Иванович",
        "subjects": ["Физика"], "from": "2025-09-01" }),
    )
    .await;
    let teacher = app.token(&contingent_access::Claims {
        org: w.school.parse().ok(),
        ..crate::helpers::claims("teacher-7", contingent_access::Role::Teacher)
    });
    let mark = |subject: &str, on: &str, author: &str| {
        json!({ "learner_id": learner, "class_id": w.class_11a, "subject": subject,
            "lesson_date": on, "kind": "current", "work": "тест", "value": "5", "weight": 1,
            "teacher": author })
    };
    let head = app.registry.head();
    // Another subject of the class, taught by a colleague.
    let r = post_as(
        &app,
        &teacher,
        "record_mark",
        mark("Физика", "2025-10-05", "teacher-7"),
    )
    .await;
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // Their subject, before their assignment began.
    let r = post_as(
        &app,
        &teacher,
        "record_mark",
        mark("Математика", "2025-09-15", "teacher-7"),
    )
    .await;
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // Attendance before the assignment began.
    let r = post_as(
        &app,
        &teacher,
        "record_attendance",
        json!({ "learner_id": learner,
        "class_id": w.class_11a, "date": "2025-09-15", "status": "ill" }),
    )
    .await;
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // A mark in their subject and time, attributed to a colleague.
    let r = post_as(
        &app,
        &teacher,
        "record_mark",
        mark("Математика", "2025-10-05", "teacher-8"),
    )
    .await;
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.registry.head(), head, "nothing appended");
    // Within the assignment, as themselves: recorded, with the caller as the author.
    let r = post_as(
        &app,
        &teacher,
        "record_mark",
        mark("Математика", "2025-10-05", "teacher-7"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let receipt: Value = r.json().await.expect("receipt");
    assert_eq!(receipt["events"][0]["data"]["teacher"], "teacher-7");
    let mark_id = receipt["events"][0]["data"]["mark_id"]
        .as_str()
        .expect("mark")
        .to_owned();
    // A correction names its author too: not a colleague.
    let r = post_as(
        &app,
        &teacher,
        "correct_mark",
        json!({ "mark_id": mark_id, "value": "4",
        "reason": "пересчёт", "teacher": "teacher-8" }),
    )
    .await;
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // Once unassigned, the teacher writes nothing more in the class.
    app.ok(
        "unassign_teacher",
        json!({ "class_id": w.class_11a, "teacher": "teacher-7",
        "until": "2025-10-20" }),
    )
    .await;
    let r = post_as(
        &app,
        &teacher,
        "record_mark",
        mark("Математика", "2025-10-10", "teacher-7"),
    )
    .await;
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
}
