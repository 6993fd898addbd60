//! `Idempotency-Key` as callers expect it: a key belongs to the account that sent it, the same
//! key with another body is refused, and keys are forgotten after the window.

use std::time::Duration;

use contingent_access::{Claims, Role};
use contingent_domain::OrganizationId;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, claims, TestApp};

fn school_account(app: &TestApp, sub: &str, school: &str) -> String {
    let org: OrganizationId = school.parse().expect("organization id");
    app.token(&Claims {
        org: Some(org),
        ..claims(sub, Role::Organization)
    })
}

async fn send(
    app: &TestApp,
    token: &str,
    name: &str,
    key: &str,
    body: &str,
) -> (StatusCode, Value) {
    let r = app
        .client
        .post(format!("{}/v1/commands/{name}", app.base))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("sent");
    let status = r.status();
    (status, r.json().await.expect("json"))
}

async fn school(app: &TestApp, name: &str) -> String {
    let r = app
        .ok(
            "register_organization",
            json!({ "name": name, "municipality": "Барнаул", "kind": "school", "levels": ["general"] }),
        )
        .await;
    r["events"][0]["data"]["organization_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn class_body(school: &str, name: &str, capacity: u32) -> String {
    json!({ "organization_id": school, "academic_year": "2025/2026", "level": "general",
            "grade": 5, "name": name, "capacity": capacity })
    .to_string()
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_the_same_body_is_replayed() {
    let app = TestApp::spawn().await;
    let s = school(&app, "МБОУ СОШ № 1").await;
    let admin = school_account(&app, "admin-1", &s);
    let (status, first) = send(
        &app,
        &admin,
        "open_class",
        "class-5a",
        &class_body(&s, "5А", 25),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let head = app.registry.head();

    // Another body under the same key: refused, nothing recorded, the first answer unchanged.
    let (status, refused) = send(
        &app,
        &admin,
        "open_class",
        "class-5a",
        &class_body(&s, "5Б", 30),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], "idempotency_key_reused");
    assert_eq!(app.registry.head(), head);

    // The same body, with its keys in another order and other spacing: the first answer.
    let reordered = format!(
        r#"{{ "capacity": 25, "name": "5А", "grade": 5, "level": "general", "academic_year": "2025/2026", "organization_id": "{s}" }}"#
    );
    let (status, replayed) = send(&app, &admin, "open_class", "class-5a", &reordered).await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["events"], first["events"]);
    assert_eq!(app.registry.head(), head);

    // Another command under the same key: refused.
    let capacity =
        json!({ "class_id": first["events"][0]["data"]["class_id"], "capacity": 20 }).to_string();
    let (status, refused) =
        send(&app, &admin, "change_class_capacity", "class-5a", &capacity).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], "idempotency_key_reused");

    // After a restart the record is filled again from the log, fingerprints included.
    let dir = app.stop().await;
    let app = TestApp::spawn_in(dir).await;
    let admin = school_account(&app, "admin-1", &s);
    let (status, refused) = send(
        &app,
        &admin,
        "open_class",
        "class-5a",
        &class_body(&s, "5Б", 30),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (status, replayed) = send(
        &app,
        &admin,
        "open_class",
        "class-5a",
        &class_body(&s, "5А", 25),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["events"], first["events"]);
}

#[tokio::test]
async fn two_accounts_sending_the_same_key_each_record_their_own_command() {
    let app = TestApp::spawn().await;
    let (s1, s2) = (
        school(&app, "МБОУ СОШ № 1").await,
        school(&app, "МБОУ СОШ № 2").await,
    );
    let (one, two) = (
        school_account(&app, "admin-of-school-1", &s1),
        school_account(&app, "admin-of-school-2", &s2),
    );
    let key = "att-2026-11-20-1";
    let (status, first) = send(&app, &one, "open_class", key, &class_body(&s1, "5А", 25)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = send(&app, &two, "open_class", key, &class_body(&s2, "5А", 25)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the second school's class is opened: {second}"
    );
    assert_ne!(
        first["events"][0]["data"]["class_id"],
        second["events"][0]["data"]["class_id"]
    );
    assert_eq!(second["events"][0]["data"]["organization_id"], json!(s2));
    // Each retry gets its own account's answer, and only that.
    let (status, again) = send(&app, &two, "open_class", key, &class_body(&s2, "5А", 25)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["events"], second["events"]);
    let (status, again) = send(&app, &one, "open_class", key, &class_body(&s1, "5А", 25)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["events"], first["events"]);
}

#[tokio::test]
async fn a_key_is_forgotten_after_the_window() {
    let app = TestApp::spawn_configured(|s| s.idempotency_window = Duration::from_secs(1)).await;
    let s = school(&app, "МБОУ СОШ № 1").await;
    let admin = school_account(&app, "admin-1", &s);
    let body = class_body(&s, "5А", 25);
    let (status, first) = send(&app, &admin, "open_class", "k-1", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = send(&app, &admin, "open_class", "k-1", &body).await;
    assert_eq!(status, StatusCode::OK, "remembered within the window");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, later) = send(&app, &admin, "open_class", "k-1", &body).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "after the window the key names a new command: {later}"
    );
    assert_ne!(
        later["events"][0]["data"]["class_id"],
        first["events"][0]["data"]["class_id"]
    );
    // A key used once more within the new window is remembered again, for the new command.
    let (status, replayed) = send(&app, &admin, "open_class", "k-1", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replayed["events"], later["events"]);
    let _ = assert_problem;
}
