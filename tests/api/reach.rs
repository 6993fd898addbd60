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
    // A colleague's mark in another subject is not theirs to correct, even as themselves.
    let physics = app.token(&contingent_access::Claims {
        org: w.school.parse().ok(),
        ..crate::helpers::claims("teacher-8", contingent_access::Role::Teacher)
    });
    let r = post_as(
        &app,
        &physics,
        "record_mark",
        mark("Физика", "2025-10-06", "teacher-8"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let receipt: Value = r.json().await.expect("receipt");
    let physics_mark = receipt["events"][0]["data"]["mark_id"].clone();
    let head = app.registry.head();
    let r = post_as(
        &app,
        &teacher,
        "correct_mark",
        json!({ "mark_id": physics_mark, "value": "2",
        "reason": "пересчёт", "teacher": "teacher-7" }),
    )
    .await;
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.registry.head(), head, "nothing appended");
    // Their own subject's mark, as themselves: corrected.
    let r = post_as(
        &app,
        &teacher,
        "correct_mark",
        json!({ "mark_id": mark_id, "value": "4",
        "reason": "пересчёт", "teacher": "teacher-7" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
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

async fn second_school(app: &TestApp, levels: Value) -> String {
    let receipt = app
        .ok(
            "register_organization",
            json!({ "name": "МБОУ Лицей № 2", "municipality": "Барнаул",
            "kind": "school", "levels": levels }),
        )
        .await;
    receipt["events"][0]["data"]["organization_id"]
        .as_str()
        .expect("organization id")
        .to_owned()
}

/// School B's additional-education group, into which it enrolls the learner of school A for a
/// day and lets them go: what a school could once do to read a learner for ever after.
#[tokio::test]
async fn a_school_reads_a_learner_it_no_longer_holds_only_within_the_period_it_held() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let school_b = second_school(&app, json!(["general", "additional"])).await;
    let token_b = app.organization(school_b.parse().expect("uuid"));
    let club = class_id(
        &app.ok(
            "open_class",
            json!({ "organization_id": school_b, "academic_year": "2025/2026",
            "level": "additional", "grade": 0, "name": "Шахматы", "capacity": 15 }),
        )
        .await,
    );
    let learner = born(&app, "903", "Ершов", "2009-02-01").await;
    enroll_into(&app, &learner, &w.class_11a, "2025-09-01").await;
    let r = post_as(
        &app,
        &token_b,
        "enroll",
        json!({ "learner_id": learner, "class_id": club,
        "enrolled_on": "2025-09-10", "programme": { "name": "Шахматы" },
        "order": order("5-д", "2025-09-10") }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let receipt: Value = r.json().await.expect("receipt");
    let enrollment = receipt["events"][0]["data"]["enrollment_id"]
        .as_str()
        .expect("id")
        .to_owned();
    // While it holds the learner, school B reads the card.
    let card = format!("/v1/learners/{learner}");
    assert_eq!(app.get_as(&token_b, &card).await.0, StatusCode::OK);
    let r = post_as(
        &app,
        &token_b,
        "leave",
        json!({ "learner_id": learner, "enrollment_id": enrollment,
        "left_on": "2025-09-11", "reason": "other", "order": order("6-д", "2025-09-11") }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // A mark in school A after school B's period.
    app.ok(
        "record_mark",
        json!({ "learner_id": learner, "class_id": w.class_11a, "subject": "Математика",
        "lesson_date": "2025-09-20", "kind": "current", "work": "тест", "value": "5", "weight": 1,
        "teacher": "Петрова Н. С." }),
    )
    .await;

    // The card and the diary say what the learner is now: no longer school B's to read.
    assert_eq!(app.get_as(&token_b, &card).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get_as(&token_b, &format!("{card}/diary")).await.0,
        StatusCode::FORBIDDEN
    );
    // The history: who the learner is, and the facts of school B's own period, nothing of
    // school A and nothing after the period.
    let (status, history) = app.get_as(&token_b, &format!("{card}/history")).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let types: Vec<&str> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["birth_registered", "enrolled", "left"], "{history}");
    assert!(history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "enrolled")
        .all(|e| e["data"]["organization_id"] == school_b.as_str()));
    // The state as of a date: built from the same facts.
    let (status, state) = app.get_as(&token_b, &format!("{card}/state")).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    let state_text = state.to_string();
    assert!(!state_text.contains(&w.school), "{state}");
    // The region sees everything, as before.
    let (_, full) = app.get(&format!("{card}/history")).await;
    assert_eq!(full["events"].as_array().map(Vec::len), Some(5), "{full}");
}

#[tokio::test]
async fn a_school_reads_an_applicant_while_it_processes_the_application() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let school_b = second_school(&app, json!(["general"])).await;
    let token_b = app.organization(school_b.parse().expect("uuid"));
    let learner = born(&app, "904", "Фомин", "2009-02-01").await;
    enroll_into(&app, &learner, &w.class_11a, "2025-09-01").await;
    let card = format!("/v1/learners/{learner}");
    assert_eq!(app.get_as(&token_b, &card).await.0, StatusCode::FORBIDDEN);
    let receipt = app
        .ok(
            "submit_application",
            json!({ "learner_id": learner, "organization_id": school_b,
            "level": "general", "academic_year": "2026/2027", "grade": 11,
            "submitted_on": "2025-10-01", "priority": "general" }),
        )
        .await;
    let application = receipt["events"][0]["data"]["application_id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Submitted to school B, not yet decided: school B reads the applicant.
    assert_eq!(app.get_as(&token_b, &card).await.0, StatusCode::OK);
    let r = post_as(
        &app,
        &token_b,
        "reject_application",
        json!({ "application_id": application,
        "rejected_on": "2025-10-02", "reason": "нет мест" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Decided: no longer.
    assert_eq!(app.get_as(&token_b, &card).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_secondary_enrollment_needs_a_reason_the_rules_recognize() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let school_b = second_school(&app, json!(["general"])).await;
    let class_b = open(&app, &school_b, 11, "11Л").await;
    let learner = born(&app, "905", "Гусев", "2009-02-01").await;
    enroll_into(&app, &learner, &w.class_11a, "2025-09-01").await;
    let body = |reason: Option<&str>| {
        let mut b = json!({ "learner_id": learner, "class_id": class_b, "enrolled_on": "2025-09-10",
            "primary": false, "programme": { "name": "ООП СОО" }, "order": order("7-у", "2025-09-10") });
        if let Some(r) = reason {
            b["secondary_reason"] = json!(r);
        }
        b
    };
    let head = app.registry.head();
    app.refused(
        "enroll",
        body(None),
        StatusCode::UNPROCESSABLE_ENTITY,
        "secondary_enrollment_reason",
    )
    .await;
    app.refused(
        "enroll",
        body(Some("because")),
        StatusCode::BAD_REQUEST,
        "unknown_value",
    )
    .await;
    // Additional education is a reason for an additional-education group, not a school class.
    app.refused(
        "enroll",
        body(Some("additional_education")),
        StatusCode::UNPROCESSABLE_ENTITY,
        "secondary_enrollment_reason",
    )
    .await;
    assert_eq!(app.registry.head(), head, "nothing appended");
    let receipt = app.ok("enroll", body(Some("network_programme"))).await;
    assert_eq!(
        receipt["events"][0]["data"]["secondary_reason"],
        "network_programme"
    );
    assert_eq!(receipt["events"][0]["data"]["primary"], false);
}

/// A school could once pull any learner of the region out of another school into one of its
/// classes (and so into its reach): a receiving school transfers a learner in only on an
/// application to it that waits for its decision.
#[tokio::test]
async fn a_school_takes_a_learner_from_another_only_on_an_application_to_it() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let school_b = second_school(&app, json!(["general"])).await;
    let token_b = app.organization(school_b.parse().expect("uuid"));
    let class_b = open(&app, &school_b, 11, "11Б").await;
    let learner = born(&app, "905", "Гусев", "2009-02-01").await;
    let enrollment = enroll_into(&app, &learner, &w.class_11a, "2025-09-01").await;
    let transfer = json!({ "learner_id": learner, "enrollment_id": enrollment,
        "kind": "to_other_organization", "to_class_id": class_b,
        "transferred_on": "2025-10-15", "order": order("7-п", "2025-10-15") });
    let head = app.registry.head();
    let r = post_as(&app, &token_b, "transfer", transfer.clone()).await;
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.registry.head(), head, "nothing appended");
    // On the family's application to school B, waiting for its decision: taken in.
    app.ok(
        "submit_application",
        json!({ "learner_id": learner, "organization_id": school_b,
        "level": "general", "academic_year": "2025/2026", "grade": 11,
        "submitted_on": "2025-10-01", "priority": "general" }),
    )
    .await;
    let r = post_as(&app, &token_b, "transfer", transfer).await;
    let status = r.status();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

/// A learner's SNILS opens their own account: a club the learner attends could once record a
/// SNILS it controls (while none is recorded) and read the learner's diary as the learner. Only
/// the organization keeping the learner's file (a primary enrollment in a main programme) records
/// it.
#[tokio::test]
async fn only_the_school_keeping_the_file_records_a_learners_snils() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let club_org = second_school(&app, json!(["additional"])).await;
    let token_club = app.organization(club_org.parse().expect("uuid"));
    let club = class_id(
        &app.ok(
            "open_class",
            json!({ "organization_id": club_org, "academic_year": "2025/2026",
            "level": "additional", "grade": 0, "name": "Шахматы", "capacity": 15 }),
        )
        .await,
    );
    let learner = born(&app, "906", "Зайцев", "2009-02-01").await;
    enroll_into(&app, &learner, &w.class_11a, "2025-09-01").await;
    let r = post_as(
        &app,
        &token_club,
        "enroll",
        json!({ "learner_id": learner, "class_id": club,
        "enrolled_on": "2025-09-10", "programme": { "name": "Шахматы" },
        "order": order("5-д", "2025-09-10") }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let snils = json!({ "learner_id": learner, "snils": "112-233-445 95" });
    let head = app.registry.head();
    let r = post_as(&app, &token_club, "record_snils", snils.clone()).await;
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.registry.head(), head, "nothing appended");
    let token_school = app.organization(w.school.parse().expect("uuid"));
    let r = post_as(&app, &token_school, "record_snils", snils).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}
