//! Bad input gets a clear problem document with a stable code: never a crash, never a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, birth, born, enrolled, world, TestApp};

#[tokio::test]
async fn malformed_requests_are_refused_with_codes() {
    let app = TestApp::spawn().await;
    let url = format!("{}/v1/commands/register_birth", app.base);
    let token = app.token(&crate::helpers::claims(
        "zags",
        contingent_access::Role::CivilRegistry,
    ));
    let send = |body: &'static str, content_type: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_problem(
        send("{\"record\": ", "application/json")
            .await
            .expect("sent"),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert_problem(
        send("[1, 2]", "application/json").await.expect("sent"),
        StatusCode::BAD_REQUEST,
        "malformed_request",
    )
    .await;
    assert_problem(
        send("{}", "text/plain").await.expect("sent"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    let mut unknown = birth("1", "Иванов", "Иван", "2015-01-01", None);
    unknown["favourite_colour"] = json!("blue");
    let p = app
        .refused(
            "register_birth",
            unknown,
            StatusCode::BAD_REQUEST,
            "unknown_field",
        )
        .await;
    assert!(p["detail"]
        .as_str()
        .expect("detail")
        .contains("favourite_colour"));

    let mut missing = birth("1", "Иванов", "Иван", "2015-01-01", None);
    missing.as_object_mut().expect("object").remove("sex");
    app.refused(
        "register_birth",
        missing,
        StatusCode::BAD_REQUEST,
        "missing_field",
    )
    .await;

    let p = app
        .refused(
            "register_birth",
            birth("1", "Иванов", "Иван", "2015-01-01", Some("112-233-445 96")),
            StatusCode::BAD_REQUEST,
            "invalid_snils",
        )
        .await;
    assert_eq!(p["field"], "snils");

    let p = app
        .refused(
            "register_birth",
            birth("1", "Иванов", "Иван", "2015-02-30", None),
            StatusCode::BAD_REQUEST,
            "invalid_date",
        )
        .await;
    assert!(
        p["field"] == "record.date" || p["field"] == "birth_date",
        "{p}"
    );

    let mut blank = birth("1", "Иванов", "Иван", "2015-01-01", None);
    blank["child"]["surname"] = json!("   ");
    app.refused(
        "register_birth",
        blank,
        StatusCode::BAD_REQUEST,
        "invalid_value",
    )
    .await;

    app.refused(
        "become_a_pilot",
        json!({}),
        StatusCode::NOT_FOUND,
        "unknown_command",
    )
    .await;

    let huge = format!("{{\"padding\": \"{}\"}}", "я".repeat(100_000));
    let r = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("sent");
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;

    let r = app
        .client
        .get(format!("{}/v1/learners/not-a-uuid", app.base))
        .bearer_auth(app.region())
        .send()
        .await
        .expect("sent");
    assert_problem(r, StatusCode::BAD_REQUEST, "invalid_id").await;
    let r = app
        .client
        .get(format!("{}/v1/learners/{}", app.base, uuid::Uuid::now_v7()))
        .bearer_auth(app.region())
        .send()
        .await
        .expect("sent");
    assert_problem(r, StatusCode::NOT_FOUND, "learner_not_found").await;
    let r = app
        .client
        .get(format!("{}/v1/feed?after=minus-one", app.base))
        .bearer_auth(app.region())
        .send()
        .await
        .expect("sent");
    assert_problem(r, StatusCode::BAD_REQUEST, "invalid_query").await;
    let r = app
        .client
        .get(format!("{}/v1/learners?snils=123", app.base))
        .bearer_auth(app.region())
        .send()
        .await
        .expect("sent");
    assert_problem(r, StatusCode::BAD_REQUEST, "invalid_snils").await;
    let r = app
        .client
        .get(format!("{}/nowhere", app.base))
        .bearer_auth(app.region())
        .send()
        .await
        .expect("sent");
    assert_problem(r, StatusCode::NOT_FOUND, "no_such_endpoint").await;
    let r = app
        .client
        .delete(format!("{}/v1/feed", app.base))
        .bearer_auth(app.region())
        .send()
        .await
        .expect("sent");
    assert_problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert_eq!(app.registry.head(), 0, "nothing was appended");
}

#[tokio::test]
async fn the_rules_refuse_with_specific_codes_and_append_nothing() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let a = born(&app, "100", "Орлов", "2008-04-01").await;
    let b = born(&app, "101", "Соколов", "2008-05-01").await;
    let c = born(&app, "102", "Волков", "2008-06-01").await;
    let head = app.registry.head();

    // Unknown learner and class.
    let ghost = uuid::Uuid::now_v7().to_string();
    let enroll = |learner: &str, class: &str, on: &str| {
        json!({
        "learner_id": learner, "class_id": class, "enrolled_on": on,
        "programme": { "name": "ООП СОО" }, "order": { "number": "1", "date": on } })
    };
    app.refused(
        "enroll",
        enroll(&ghost, &w.class_11a, "2025-09-01"),
        StatusCode::NOT_FOUND,
        "learner_not_found",
    )
    .await;
    app.refused(
        "enroll",
        enroll(&a, &ghost, "2025-09-01"),
        StatusCode::NOT_FOUND,
        "class_not_found",
    )
    .await;
    // Impossible and future dates.
    app.refused(
        "enroll",
        enroll(&a, &w.class_11a, "2031-09-01"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "date_in_future",
    )
    .await;
    app.refused(
        "register_birth",
        birth("103", "Зайцев", "Олег", "2035-01-01", None),
        StatusCode::UNPROCESSABLE_ENTITY,
        "date_in_future",
    )
    .await;
    assert_eq!(app.registry.head(), head);

    // A full class: 11А has two places.
    enrolled(&app, &a, &w.class_11a, "2025-09-01").await;
    enrolled(&app, &b, &w.class_11a, "2025-09-01").await;
    app.refused(
        "enroll",
        enroll(&c, &w.class_11a, "2025-09-01"),
        StatusCode::CONFLICT,
        "class_full",
    )
    .await;
    // A second primary general enrollment.
    app.refused(
        "enroll",
        enroll(&a, &w.class_11b, "2025-09-02"),
        StatusCode::CONFLICT,
        "second_primary_enrollment",
    )
    .await;
    // A mark for a learner not in that class.
    let mark = json!({ "learner_id": c, "class_id": w.class_11a, "subject": "Физика", "lesson_date": "2025-09-10",
        "kind": "current", "work": "ответ у доски", "value": "4", "weight": 1, "teacher": "Иванов П. П." });
    app.refused(
        "record_mark",
        mark,
        StatusCode::CONFLICT,
        "learner_not_in_class",
    )
    .await;
    let mark = json!({ "learner_id": a, "class_id": w.class_11a, "subject": "Физика", "lesson_date": "2025-08-10",
        "kind": "current", "work": "ответ у доски", "value": "6", "weight": 1, "teacher": "Иванов П. П." });
    app.refused("record_mark", mark, StatusCode::BAD_REQUEST, "invalid_mark")
        .await;
    // One SNILS on two people.
    app.ok(
        "record_snils",
        json!({ "learner_id": a, "snils": "112-233-445 95" }),
    )
    .await;
    app.refused(
        "record_snils",
        json!({ "learner_id": b, "snils": "112-233-445 95" }),
        StatusCode::CONFLICT,
        "snils_belongs_to_another_person",
    )
    .await;
    // Grade 1 age rule: a 17-year-old is not taken into grade 1.
    let grade1 = app.ok("open_class", json!({ "organization_id": w.school, "academic_year": "2025/2026", "level": "general", "grade": 1, "name": "1А", "capacity": 25 })).await;
    let grade1 = grade1["events"][0]["data"]["class_id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.refused(
        "enroll",
        enroll(&c, &grade1, "2025-09-01"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "grade_one_age_rule",
    )
    .await;
    // Facts after death.
    app.ok("register_death", json!({ "person": { "learner_id": b }, "record": { "number": "D-1", "date": "2025-10-02", "office": "Отдел ЗАГС г. Барнаула" }, "death_date": "2025-10-01" })).await;
    let mark = json!({ "learner_id": b, "class_id": w.class_11a, "subject": "Физика", "lesson_date": "2025-10-05",
        "kind": "current", "work": "ответ у доски", "value": "4", "weight": 1, "teacher": "Иванов П. П." });
    app.refused(
        "record_mark",
        mark,
        StatusCode::CONFLICT,
        "learner_deceased",
    )
    .await;
    // The place freed by death can be taken; the class never goes over capacity.
    enrolled(&app, &c, &w.class_11a, "2025-10-06").await;
    let vacancies = app
        .get_ok(&format!(
            "/v1/vacancies?organization_id={}&academic_year=2025/2026&level=general",
            w.school
        ))
        .await;
    for row in vacancies["classes"].as_array().expect("classes") {
        assert!(row["free"].as_i64().expect("free") >= 0);
    }
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
    assert!(
        metrics.contains("contingent_commands_refused_total{code=\"class_full\"} 1"),
        "{metrics}"
    );
}

#[test]
fn every_rule_code_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/errors.md"))
        .expect("docs/errors.md");
    for code in contingent_domain::DomainError::CODES {
        assert!(
            doc.contains(&format!("| `{code}` |")),
            "docs/errors.md lacks {code}"
        );
    }
}

#[tokio::test]
async fn a_bad_query_names_the_parameter_and_the_contract_holds_at_its_limits() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let get = |path: String| {
        let app = &app;
        async move {
            app.client
                .get(format!("{}{path}", app.base))
                .bearer_auth(app.region())
                .send()
                .await
                .expect("sent")
        }
    };
    for (path, status, code, field) in [
        ("/v1/feed?limit=1001", 400, "invalid_query", "limit"),
        (
            "/v1/learners?surname=A&limit=501",
            400,
            "invalid_query",
            "limit",
        ),
        (
            "/v1/vacancies?academic_year=2025/2027",
            400,
            "invalid_query",
            "academic_year",
        ),
        (
            "/v1/vacancies?level=secondary",
            400,
            "invalid_query",
            "level",
        ),
        (
            "/v1/vacancies?organization_id=x",
            400,
            "invalid_id",
            "organization_id",
        ),
        (
            "/v1/learners?surname=A&birth_date=2025-02-30",
            400,
            "invalid_date",
            "birth_date",
        ),
        (
            "/v1/organizations?min_position=999999",
            409,
            "position_ahead",
            "min_position",
        ),
    ] {
        let r = get(path.to_owned()).await;
        let problem = assert_problem(r, StatusCode::from_u16(status).expect("status"), code).await;
        assert_eq!(problem["field"], field, "{path}: {problem}");
    }
    // The limits themselves are accepted, as /openapi.json states them.
    for path in [
        "/v1/feed?limit=1000",
        "/v1/learners?surname=A&limit=500",
        "/v1/federal/register?limit=1000",
    ] {
        assert_eq!(
            get(path.to_owned()).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    // A number with a zero fraction is the integer it is, as JSON Schema counts it.
    let receipt = app
        .ok(
            "change_class_capacity",
            json!({ "class_id": w.class_11b, "capacity": 30.0 }),
        )
        .await;
    assert_eq!(receipt["events"][0]["data"]["capacity"], 30);
    app.refused(
        "change_class_capacity",
        json!({ "class_id": w.class_11b, "capacity": 30.5 }),
        StatusCode::BAD_REQUEST,
        "invalid_value",
    )
    .await;
}
