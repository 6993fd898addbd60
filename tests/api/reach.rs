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
