//! Who may see and do what: every role against every endpoint, as the table in docs/access.md
//! says. Commands are sent with a date in the future (or another flaw the rules refuse after
//! the reach check), so a caller within reach gets the rule's refusal and one outside it gets
//! 403: nothing is ever appended, and every pair can be checked against one world.

use std::collections::BTreeMap;

use contingent_access::{Claims, LocalIssuer, Role};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{born, claims, enrolled, world, TestApp};

const FUTURE: &str = "2099-01-01";

/// The expected table: endpoint → roles within reach. docs/access.md must say the same.
pub const TABLE: &[(&str, &[&str])] = &[
    ("POST register_organization", &["region"]),
    (
        "POST open_class",
        &["organization", "municipality", "region"],
    ),
    (
        "POST change_class_capacity",
        &["organization", "municipality", "region"],
    ),
    (
        "POST assign_teacher",
        &["organization", "municipality", "region"],
    ),
    (
        "POST unassign_teacher",
        &["organization", "municipality", "region"],
    ),
    ("POST register_birth", &["civil_registry"]),
    (
        "POST register_learner",
        &["organization", "municipality", "region"],
    ),
    (
        "POST record_snils",
        &["organization", "municipality", "region"],
    ),
    ("POST register_death", &["civil_registry"]),
    ("POST link_guardian", &["region", "civil_registry"]),
    (
        "POST submit_application",
        &["parent", "organization", "municipality", "region"],
    ),
    (
        "POST withdraw_application",
        &["parent", "organization", "municipality", "region"],
    ),
    (
        "POST reject_application",
        &["organization", "municipality", "region"],
    ),
    ("POST enroll", &["organization", "municipality", "region"]),
    ("POST transfer", &["organization", "municipality", "region"]),
    ("POST record_mark", &["teacher", "organization"]),
    ("POST correct_mark", &["teacher", "organization"]),
    ("POST record_attendance", &["teacher", "organization"]),
    ("POST record_exam_result", &["exam_centre"]),
    ("POST leave", &["organization", "municipality", "region"]),
    ("POST erase_personal_data", &["region"]),
    (
        "GET /v1/learners/{id}",
        &["organization", "municipality", "region"],
    ),
    (
        "GET /v1/learners/{id}/diary",
        &[
            "parent",
            "learner",
            "organization",
            "municipality",
            "region",
        ],
    ),
    (
        "GET /v1/learners/{id}/history",
        &[
            "parent",
            "organization",
            "municipality",
            "region",
            "auditor",
        ],
    ),
    (
        "GET /v1/learners/{id}/state",
        &["organization", "municipality", "region", "auditor"],
    ),
    ("GET /v1/learners/{id}/access", &["auditor"]),
    (
        "GET /v1/learners/{id}/export",
        &["parent", "learner", "region"],
    ),
    (
        "GET /v1/learners/{id}/export.txt",
        &["parent", "learner", "region"],
    ),
    (
        "GET /v1/learners?organization_id=",
        &["organization", "municipality", "region"],
    ),
    (
        "GET /v1/classes/{id}/register",
        &["teacher", "organization", "municipality", "region"],
    ),
    (
        "GET /v1/organizations",
        &[
            "parent",
            "learner",
            "teacher",
            "organization",
            "municipality",
            "region",
            "auditor",
            "civil_registry",
            "exam_centre",
            "federal",
        ],
    ),
    (
        "GET /v1/organizations/{id}/queue",
        &["organization", "municipality", "region"],
    ),
    (
        "GET /v1/vacancies?organization_id=",
        &["organization", "municipality", "region"],
    ),
    ("GET /v1/federal/register", &["region"]),
    ("GET /v1/federal/counts", &["region"]),
    ("GET /v1/feed", &["region", "auditor", "federal"]),
    ("GET /v1/audit/verify", &["region", "auditor"]),
    ("GET /v1/audit/checkpoints", &["region", "auditor"]),
];

const GUARDIAN: &str = "123-456-789 64";
const LEARNER_SNILS: &str = "112-233-445 95";

struct Setup {
    learner: String,
    enrollment: String,
    application: String,
    mark: String,
    w: crate::helpers::World,
}

async fn setup(app: &TestApp) -> Setup {
    let w = world(app).await;
    let learner = born(app, "700", "Морозов", "2008-01-15").await;
    let enrollment = enrolled(app, &learner, &w.class_11a, "2025-09-01").await;
    app.ok(
        "record_snils",
        json!({ "learner_id": learner, "snils": LEARNER_SNILS }),
    )
    .await;
    app.ok(
        "link_guardian",
        json!({ "learner_id": learner, "guardian_snils": GUARDIAN,
        "guardian": { "surname": "Морозова", "name": "Ольга" }, "relation": "mother",
        "consent": { "given_on": "2025-08-20", "document": "Согласие № 3" } }),
    )
    .await;
    app.ok("assign_teacher", json!({ "class_id": w.class_11a, "organization_id": w.school, "teacher": "teacher-7",
        "teacher_name": "Петрова Наталья Сергеевна", "subjects": ["Математика"], "from": "2025-09-01" })).await;
    let mark = app.ok("record_mark", json!({ "learner_id": learner, "class_id": w.class_11a, "subject": "Математика",
        "lesson_date": "2025-09-10", "kind": "current", "work": "тест", "value": "5", "weight": 1, "teacher": "Петрова Н. С." })).await;
    let mark = mark["events"][0]["data"]["mark_id"]
        .as_str()
        .expect("mark")
        .to_owned();
    let application = app.ok("submit_application", json!({ "learner_id": learner, "organization_id": w.school, "level": "general",
        "academic_year": "2026/2027", "grade": 11, "submitted_on": "2026-05-10", "priority": "general" })).await;
    let application = application["events"][0]["data"]["application_id"]
        .as_str()
        .expect("app")
        .to_owned();
    Setup {
        learner,
        enrollment,
        application,
        mark,
        w,
    }
}

fn principal(role: Role, s: &Setup) -> Claims {
    let school = s.w.school.parse().ok();
    match role {
        Role::Parent => Claims {
            snils: Some(GUARDIAN.into()),
            ..claims("parent-1", role)
        },
        Role::Learner => Claims {
            snils: Some(LEARNER_SNILS.into()),
            ..claims("learner-1", role)
        },
        Role::Teacher => Claims {
            org: school,
            ..claims("teacher-7", role)
        },
        Role::Organization => Claims {
            org: school,
            ..claims("school-admin", role)
        },
        Role::Municipality => Claims {
            municipality: Some("Барнаул".into()),
            ..claims("mouo", role)
        },
        other => claims(other.as_str(), other),
    }
}

/// A command body that the rules refuse after the reach check.
fn command_body(name: &str, s: &Setup) -> Value {
    let w = &s.w;
    let order = json!({ "number": "1", "date": "2025-09-01" });
    match name {
        "register_organization" => {
            json!({ "organization_id": w.school, "name": "Школа", "municipality": "Барнаул", "kind": "school", "levels": ["general"] })
        }
        "open_class" => {
            json!({ "organization_id": w.school, "academic_year": "2098/2099", "level": "general", "grade": 5, "name": "5А", "capacity": 25 })
        }
        "change_class_capacity" => json!({ "class_id": w.class_11a, "capacity": 0 }),
        "assign_teacher" => {
            json!({ "class_id": w.class_11a, "organization_id": w.school, "teacher": "teacher-8", "teacher_name": "Иванов И. И.", "subjects": ["Физика"], "from": FUTURE })
        }
        "unassign_teacher" => {
            json!({ "class_id": w.class_11a, "teacher": "teacher-7", "until": FUTURE })
        }
        "register_birth" => {
            json!({ "record": { "number": "9", "date": FUTURE, "office": "ЗАГС" }, "child": { "surname": "А", "name": "Б" }, "sex": "male", "birth_date": FUTURE })
        }
        "register_learner" => {
            json!({ "person": { "surname": "А", "name": "Б" }, "sex": "male", "birth_date": FUTURE, "document": { "kind": "passport", "number": "1" } })
        }
        "record_snils" => json!({ "learner_id": s.learner, "snils": GUARDIAN }),
        "register_death" => {
            json!({ "person": { "learner_id": s.learner }, "record": { "number": "D", "date": FUTURE, "office": "ЗАГС" }, "death_date": FUTURE })
        }
        "link_guardian" => {
            json!({ "learner_id": s.learner, "guardian_snils": "111-222-333 72", "guardian": { "surname": "А", "name": "Б" }, "relation": "father", "consent": { "given_on": FUTURE, "document": "С" } })
        }
        "submit_application" => {
            json!({ "learner_id": s.learner, "organization_id": w.school, "level": "general", "academic_year": "2026/2027", "grade": 11, "submitted_on": FUTURE, "priority": "general" })
        }
        "withdraw_application" => {
            json!({ "application_id": s.application, "withdrawn_on": FUTURE })
        }
        "reject_application" => {
            json!({ "application_id": s.application, "rejected_on": FUTURE, "reason": "нет мест" })
        }
        "enroll" => {
            json!({ "learner_id": s.learner, "class_id": w.class_11b, "enrolled_on": FUTURE, "programme": { "name": "ООП" }, "order": order })
        }
        "transfer" => {
            json!({ "learner_id": s.learner, "enrollment_id": s.enrollment, "kind": "within_organization", "to_class_id": w.class_11b, "transferred_on": FUTURE, "order": order })
        }
        "record_mark" => {
            json!({ "learner_id": s.learner, "class_id": w.class_11a, "subject": "Математика", "lesson_date": FUTURE, "kind": "current", "work": "тест", "value": "4", "weight": 1, "teacher": "teacher-7" })
        }
        "correct_mark" => {
            json!({ "mark_id": s.mark, "value": "5", "reason": "проверка", "teacher": "teacher-7" })
        }
        "record_attendance" => {
            json!({ "learner_id": s.learner, "class_id": w.class_11a, "date": FUTURE, "status": "ill" })
        }
        "record_exam_result" => {
            json!({ "learner_id": s.learner, "form": "ege", "subject": "Математика", "exam_date": FUTURE, "primary_points": 10, "test_score": 50 })
        }
        "leave" => {
            json!({ "learner_id": s.learner, "enrollment_id": s.enrollment, "left_on": FUTURE, "reason": "other", "order": order })
        }
        // A learner the registry does not know: the region is told 404, everyone else 403.
        "erase_personal_data" => {
            json!({ "learner_id": uuid::Uuid::now_v7(), "reason": "152-FZ art. 21" })
        }
        other => panic!("no body for {other}"),
    }
}

fn path_of(endpoint: &str, s: &Setup) -> String {
    let path = endpoint.trim_start_matches("GET ");
    path.replace("/v1/learners/{id}", &format!("/v1/learners/{}", s.learner))
        .replace(
            "/v1/classes/{id}",
            &format!("/v1/classes/{}", s.w.class_11a),
        )
        .replace(
            "/v1/organizations/{id}",
            &format!("/v1/organizations/{}", s.w.school),
        )
        .replace(
            "organization_id=",
            &format!("organization_id={}", s.w.school),
        )
}

#[tokio::test]
async fn every_role_against_every_endpoint() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    assert!(
        app.registry
            .wait_caught_up(std::time::Duration::from_secs(30))
            .await
    );
    let mut failures = Vec::new();
    for (endpoint, allowed) in TABLE {
        for role in Role::ALL {
            let token = app.token(&principal(*role, &s));
            let head = app.registry.head();
            let status = if let Some(name) = endpoint.strip_prefix("POST ") {
                app.client
                    .post(format!("{}/v1/commands/{name}", app.base))
                    .bearer_auth(&token)
                    .json(&command_body(name, &s))
                    .send()
                    .await
                    .expect("sent")
                    .status()
            } else {
                app.get_as(&token, &path_of(endpoint, &s)).await.0
            };
            let within = allowed.contains(&role.as_str());
            let ok = if within {
                status != StatusCode::FORBIDDEN
                    && status != StatusCode::UNAUTHORIZED
                    && !status.is_server_error()
            } else {
                status == StatusCode::FORBIDDEN
            };
            if !ok {
                failures.push(format!(
                    "{endpoint} as {role}: {status} (expected {})",
                    if within { "within reach" } else { "403" }
                ));
            }
            assert_eq!(
                app.registry.head(),
                head,
                "{endpoint} as {role} appended something"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn parents_schools_and_bad_tokens_are_kept_out() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let other = born(&app, "701", "Зуев", "2008-02-15").await;
    enrolled(&app, &other, &s.w.class_11b, "2025-09-01").await;
    let other_school = app.ok("register_organization", json!({ "name": "МБОУ СОШ № 3", "municipality": "Бийск", "kind": "school", "levels": ["general"] })).await;
    let other_school: contingent_domain::OrganizationId = other_school["events"][0]["data"]
        ["organization_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");

    // A parent asking for another child's diary.
    let parent = app.token(&principal(Role::Parent, &s));
    assert_eq!(
        app.get_as(&parent, &format!("/v1/learners/{other}/diary"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get_as(&parent, &format!("/v1/learners/{}/diary", s.learner))
            .await
            .0,
        StatusCode::OK
    );
    // ...and for a learner that does not exist: the same 403, revealing nothing.
    let ghost = uuid::Uuid::now_v7();
    assert_eq!(
        app.get_as(&parent, &format!("/v1/learners/{ghost}/diary"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // A school asking for another school's learner.
    let school_b = app.token(&Claims {
        org: Some(other_school),
        ..claims("school-b", Role::Organization)
    });
    assert_eq!(
        app.get_as(&school_b, &format!("/v1/learners/{}", s.learner))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get_as(&school_b, &format!("/v1/learners/{ghost}"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // A school enrolling into another school's class: refused, nothing appended.
    let head = app.registry.head();
    let r = app.client.post(format!("{}/v1/commands/enroll", app.base)).bearer_auth(&school_b)
        .json(&json!({ "learner_id": other, "class_id": s.w.class_11a, "enrolled_on": "2025-09-02", "programme": { "name": "ООП" }, "order": { "number": "1", "date": "2025-09-02" } }))
        .send().await.expect("sent");
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.registry.head(), head);
    // A teacher marking a class they do not teach.
    let teacher = app.token(&principal(Role::Teacher, &s));
    let r = app.client.post(format!("{}/v1/commands/record_mark", app.base)).bearer_auth(&teacher)
        .json(&json!({ "learner_id": other, "class_id": s.w.class_11b, "subject": "Математика", "lesson_date": "2025-09-10", "kind": "current", "work": "тест", "value": "4", "weight": 1, "teacher": "Т" }))
        .send().await.expect("sent");
    crate::helpers::assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    // Tokens: none, expired, signed by another key, for another audience.
    let url = format!("{}/v1/learners/{}/diary", app.base, s.learner);
    let r = app.client.get(&url).send().await.expect("sent");
    crate::helpers::assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let expired = app
        .issuer
        .issue_at(&principal(Role::Parent, &s), 1_000, 2_000)
        .expect("token");
    let r = app
        .client
        .get(&url)
        .bearer_auth(expired)
        .send()
        .await
        .expect("sent");
    crate::helpers::assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let forger = LocalIssuer::generate(
        contingent_access::LOCAL_ISSUER,
        contingent_access::DEFAULT_AUDIENCE,
    );
    let forged = forger
        .issue(
            &principal(Role::Region, &s),
            std::time::Duration::from_secs(60),
        )
        .expect("token");
    let r = app
        .client
        .get(&url)
        .bearer_auth(forged)
        .send()
        .await
        .expect("sent");
    crate::helpers::assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // The access journal: officials' reads and every refusal, listed for the auditor.
    let auditor = app.token(&claims("auditor-1", Role::Auditor));
    let (status, journal) = app
        .get_as(&auditor, &format!("/v1/learners/{}/access", s.learner))
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries = journal["entries"].as_array().expect("entries");
    let outcomes: BTreeMap<(String, String), usize> =
        entries.iter().fold(BTreeMap::new(), |mut m, e| {
            *m.entry((
                e["role"].as_str().unwrap_or("").to_owned(),
                e["outcome"].as_str().unwrap_or("").to_owned(),
            ))
            .or_default() += 1;
            m
        });
    assert!(
        outcomes.contains_key(&("organization".into(), "refused".into())),
        "{outcomes:?}"
    );
    // Requests without a valid token name whatever learner their sender chooses: they are
    // counted (and summed up in the journal once a minute), not listed under the learner.
    assert!(
        !outcomes.keys().any(|(role, _)| role == "none"),
        "{outcomes:?}"
    );
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("contingent_requests_unauthenticated_total 3\n"),
        "{metrics}"
    );
    // The parent's own read is not an official's: not journaled as a read.
    assert!(
        !outcomes.contains_key(&("parent".into(), "read".into())),
        "{outcomes:?}"
    );
    // The auditor's read of the journal does not list itself as a read of personal data... but
    // the region's read of the diary does.
    app.get_as(&app.region(), &format!("/v1/learners/{}/diary", s.learner))
        .await;
    let (_, journal) = app
        .get_as(&auditor, &format!("/v1/learners/{}/access", s.learner))
        .await;
    assert!(journal["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .any(|e| e["role"] == "region" && e["outcome"] == "read"));
}

#[test]
fn the_access_table_in_the_docs_matches_this_test() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/access.md"))
        .expect("docs/access.md");
    let header = doc
        .lines()
        .find(|l| l.starts_with("| endpoint |"))
        .expect("table header");
    let roles: Vec<&str> = header
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .skip(1)
        .collect();
    assert_eq!(
        roles,
        Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>()
    );
    let mut documented = Vec::new();
    for line in doc
        .lines()
        .skip_while(|l| !l.starts_with("| endpoint |"))
        .filter(|l| l.starts_with("| `"))
    {
        let cells: Vec<&str> = line
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let endpoint = cells[0].trim_matches('`').to_owned();
        let allowed: Vec<&str> = roles
            .iter()
            .zip(&cells[1..])
            .filter(|(_, c)| **c == "✓")
            .map(|(r, _)| *r)
            .collect();
        documented.push((endpoint, allowed.join(",")));
    }
    let expected: Vec<(String, String)> = TABLE
        .iter()
        .map(|(e, r)| ((*e).to_owned(), r.join(",")))
        .collect();
    assert_eq!(documented, expected);
}

/// An id no object has: asking for it must tell a caller nothing they could not see anyway.
const GHOST: &str = "0199a1f0-0000-7000-8000-00000000dead";

/// Routes naming an object by id, and the roles that may read every object of the route (who
/// alone may learn that an id names nothing: 404, or the auditor's empty journal).
const ID_ROUTES: &[(&str, &[&str])] = &[
    ("/v1/learners/{id}", &["region"]),
    ("/v1/learners/{id}/diary", &["region"]),
    ("/v1/learners/{id}/history", &["region", "auditor"]),
    ("/v1/learners/{id}/state", &["region", "auditor"]),
    ("/v1/learners/{id}/access", &["auditor"]),
    ("/v1/organizations/{id}/queue", &["region"]),
    ("/v1/classes/{id}/register", &["region"]),
];

#[tokio::test]
async fn an_unknown_id_is_refused_like_a_foreign_one() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let mut failures = Vec::new();
    for (route, all_seeing) in ID_ROUTES {
        for role in Role::ALL {
            let token = app.token(&principal(*role, &s));
            let (status, body) = app.get_as(&token, &route.replace("{id}", GHOST)).await;
            let expected = if all_seeing.contains(&role.as_str()) {
                if route.ends_with("/access") {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                }
            } else {
                StatusCode::FORBIDDEN
            };
            if status != expected {
                failures.push(format!("{route} as {role}: {status} {body}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_full_feed_is_journaled_page_by_page_and_the_federal_view_is_not() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let other = born(&app, "702", "Зайцев", "2009-03-01").await;
    let auditor = app.token(&claims("auditor-1", Role::Auditor));
    let entries = |learner: String| {
        let (app, auditor) = (&app, &auditor);
        async move {
            let (status, journal) = app
                .get_as(auditor, &format!("/v1/learners/{learner}/access"))
                .await;
            assert_eq!(status, StatusCode::OK);
            journal["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .filter(|e| e["endpoint"] == "/v1/feed")
                .map(|e| {
                    (
                        e["role"].as_str().unwrap_or("").to_owned(),
                        e["outcome"].clone(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let head = app.registry.head();
    // A page naming both learners, read by the region and by the federal segment.
    let (status, page) = app.get_as(&app.region(), "/v1/feed?limit=1000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"].as_array().map(Vec::len), Some(head as usize));
    let federal = app.token(&claims("fis-frdo", Role::Federal));
    assert_eq!(
        app.get_as(&federal, "/v1/feed?limit=1000").await.0,
        StatusCode::OK
    );
    for learner in [s.learner.clone(), other.clone()] {
        assert_eq!(
            entries(learner.clone()).await,
            vec![("region".to_owned(), json!("read"))],
            "{learner}: one read by the region, none by the federal segment"
        );
    }
    // A page that names only the second learner journals only their read.
    let last = head - 1;
    app.get_as(&auditor, &format!("/v1/feed?after={last}"))
        .await;
    assert_eq!(entries(s.learner.clone()).await.len(), 1);
    assert_eq!(entries(other).await.len(), 2);
}

#[tokio::test]
async fn a_command_naming_an_unknown_object_is_refused_like_a_foreign_one() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    // Another municipality's school, its class, a learner enrolled there and an application.
    let school = app.ok("register_organization", json!({ "name": "МБОУ СОШ № 3", "municipality": "Бийск", "kind": "school", "levels": ["general"] })).await;
    let school = school["events"][0]["data"]["organization_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let class = app.ok("open_class", json!({ "organization_id": school, "academic_year": "2025/2026", "level": "general", "grade": 11, "name": "11В", "capacity": 25 })).await;
    let class = class["events"][0]["data"]["class_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let pupil = born(&app, "703", "Лебедев", "2008-04-04").await;
    let enrollment = enrolled(&app, &pupil, &class, "2025-09-01").await;
    let application = app.ok("submit_application", json!({ "learner_id": pupil, "organization_id": school, "level": "general",
        "academic_year": "2026/2027", "grade": 11, "submitted_on": "2026-05-10", "priority": "general" })).await;
    let application = application["events"][0]["data"]["application_id"]
        .as_str()
        .expect("id")
        .to_owned();
    // (command, field, the foreign object's id): the same body names the foreign object, then
    // an id that names nothing.
    let cases: &[(&str, &str, &str)] = &[
        ("change_class_capacity", "class_id", &class),
        ("unassign_teacher", "class_id", &class),
        ("enroll", "class_id", &class),
        ("record_mark", "class_id", &class),
        ("record_attendance", "class_id", &class),
        ("withdraw_application", "application_id", &application),
        ("reject_application", "application_id", &application),
        ("leave", "enrollment_id", &enrollment),
    ];
    let mut failures = Vec::new();
    for (name, field, foreign) in cases {
        for role in Role::ALL {
            if *role == Role::Region {
                continue; // the region reaches every object: it may learn that one does not exist.
            }
            let token = app.token(&principal(*role, &s));
            let mut statuses = Vec::new();
            for id in [*foreign, GHOST] {
                let mut body = command_body(name, &s);
                body[*field] = json!(id);
                if *field == "enrollment_id" {
                    body["learner_id"] = json!(pupil);
                }
                let r = app
                    .client
                    .post(format!("{}/v1/commands/{name}", app.base))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("sent");
                statuses.push(r.status());
            }
            if statuses != [StatusCode::FORBIDDEN, StatusCode::FORBIDDEN] {
                failures.push(format!(
                    "{name} as {role}: foreign {}, unknown {}",
                    statuses[0], statuses[1]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A read is answered only once its journal entry is committed. While the journal cannot commit
/// (a trigger stands in for a full disk), the region's reads of a learner's diary and of a class
/// register are refused 503 and show nothing of the learners; once it commits again they are
/// answered and journaled: one entry for the diary, one per learner of the roster.
#[tokio::test]
async fn a_read_the_journal_cannot_commit_is_not_answered() {
    use sqlx::Connection;

    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let first = born(&app, "801", "Орлов", "2008-05-05").await;
    let second = born(&app, "802", "Соколов", "2008-06-06").await;
    enrolled(&app, &first, &w.class_11a, "2025-09-01").await;
    enrolled(&app, &second, &w.class_11a, "2025-09-01").await;
    let diary = format!("/v1/learners/{first}/diary");
    let register = format!("/v1/classes/{}/register", w.class_11a);
    let region = app.region();
    assert!(
        app.registry
            .wait_caught_up(std::time::Duration::from_secs(30))
            .await
    );
    let before = app.registry.journal().count().await.expect("count");

    let path = app.dir.path().join("journal.db");
    let mut journal = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("the journal's file");
    sqlx::query(
        "CREATE TRIGGER a_full_disk BEFORE INSERT ON access_journal \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    )
    .execute(&mut journal)
    .await
    .expect("the fault");
    for path in [&diary, &register] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(&region)
            .send()
            .await
            .expect("sent");
        let problem = crate::helpers::assert_problem(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        )
        .await;
        for name in ["Орлов", "Соколов", first.as_str(), second.as_str()] {
            assert!(!problem.to_string().contains(name), "{path}: {problem}");
        }
    }
    assert_eq!(
        app.registry.journal().count().await.expect("count"),
        before,
        "nothing journaled while the journal cannot commit"
    );

    sqlx::query("DROP TRIGGER a_full_disk")
        .execute(&mut journal)
        .await
        .expect("the fault repaired");
    let (status, body) = app.get_as(&region, &diary).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get_as(&region, &register).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["roster"].as_array().expect("roster").len(),
        2,
        "{body}"
    );
    assert_eq!(
        app.registry.journal().count().await.expect("count"),
        before + 3,
        "the diary's read and one per learner of the roster"
    );
}
