//! Personal data sealed in the log and erased by destroying a learner's keys: on the embedded
//! registry and, unchanged, on Kafka and PostgreSQL.

use contingent_access::{Claims, Role};
use contingent_projections::{all_projections, dump_tables, ReadDatabase, ReadStore};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, birth, claims, enrolled, world, TestApp};

const SURNAME: &str = "Шереметьева";
const SNILS: &str = "112-233-445 95";
const GUARDIAN_SURNAME: &str = "Шереметьев";
const GUARDIAN_SNILS: &str = "123-456-789 64";

/// Every value of the learner's that must not be readable after the erasure.
const PERSONAL: &[&str] = &[
    SURNAME,
    "11223344595",
    "112-233-445 95",
    GUARDIAN_SURNAME,
    "123-456-789 64",
    "Согласие № 31",
];

fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every stored event's bytes, as the backend holds them (the file's rows, the topic's records).
async fn stored_bytes(app: &TestApp) -> Vec<u8> {
    let raw = app
        .registry
        .log()
        .read_raw_after(0, 100_000)
        .await
        .expect("raw events");
    raw.into_iter().flat_map(|e| e.body).collect()
}

async fn verified(app: &TestApp) {
    let report = app.registry.verify(|_| {}).await.expect("verify runs");
    assert!(report.is_ok(), "{:?}", report.first_break);
    assert_eq!(report.verified, app.registry.head());
}

async fn read_rows(app: &TestApp) -> std::collections::BTreeMap<String, Vec<String>> {
    let projections = all_projections();
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    dump_tables(app.registry.read().pool(), &tables)
        .await
        .expect("dump")
}

/// Rebuilds every read model from zero, from the registry's log, into a fresh database of the
/// same engine; its rows.
async fn rebuilt_rows(
    app: &TestApp,
    postgres: bool,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let projections = all_projections();
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    let pg = if postgres {
        Some(contingent_testkit::PgDatabase::create().await)
    } else {
        None
    };
    let target = match &pg {
        Some(db) => ReadDatabase::Postgres(db.url().to_owned()),
        None => ReadDatabase::Sqlite(app.dir.path().join("rebuilt.db")),
    };
    contingent_registry::rebuild(app.registry.log(), target.clone(), None, 7, |_| {})
        .await
        .expect("rebuild");
    let store = ReadStore::open(target, &projections).await.expect("store");
    let rows = dump_tables(store.pool(), &tables).await.expect("dump");
    store.close().await;
    rows
}

async fn erasure(app: TestApp, postgres: bool) {
    let w = world(&app).await;
    let receipt = app
        .ok(
            "register_birth",
            birth("3100", SURNAME, "Анна", "2008-04-02", Some(SNILS)),
        )
        .await;
    let learner = receipt["learner_id"].as_str().expect("learner").to_owned();
    app.ok("link_guardian", json!({
        "learner_id": learner, "guardian_snils": GUARDIAN_SNILS,
        "guardian": { "surname": GUARDIAN_SURNAME, "name": "Пётр" },
        "relation": "father", "consent": { "given_on": "2025-08-25", "document": "Согласие № 31" },
    }))
    .await;
    enrolled(&app, &learner, &w.class_11a, "2025-09-01").await;
    app.ok("record_mark", json!({
        "learner_id": learner, "class_id": w.class_11a, "subject": "Математика", "lesson_date": "2025-09-15",
        "kind": "current", "work": "тест", "value": "5", "weight": 1, "teacher": "Петрова Н. С.",
    }))
    .await;

    // Sealed in the log, readable through the registry.
    let stored = stored_bytes(&app).await;
    for value in PERSONAL {
        assert!(!contains(&stored, value), "{value} is stored in clear");
    }
    let card = app.get_ok(&format!("/v1/learners/{learner}")).await;
    assert_eq!(card["surname"], SURNAME, "{card}");
    assert_eq!(card["snils"], SNILS, "{card}");
    let history = app.get_ok(&format!("/v1/learners/{learner}/history")).await;
    assert_eq!(history["events"][0]["data"]["child"]["surname"], SURNAME);
    verified(&app).await;
    let counts_before =
        app.get_ok("/v1/federal/counts?by=municipality,level").await["counts"].take();
    let vacancies_path = format!("/v1/vacancies?organization_id={}", w.school);
    let vacancies_before = app.get_ok(&vacancies_path).await["classes"].take();
    let head = app.registry.head();

    // A backup of the key store, taken before the erasure (embedded: the files themselves).
    let backup: Vec<(String, Vec<u8>)> = ["keys.db", "keys.db-wal"]
        .iter()
        .filter_map(|f| Some(((*f).to_owned(), std::fs::read(app.dir.path().join(f)).ok()?)))
        .collect();

    // Only the region may erase; every other role is refused alike, for a learner that exists
    // and for one that does not, and nothing is appended.
    let body = json!({ "learner_id": learner, "reason": "152-FZ art. 21 p. 7" });
    let ghost = json!({ "learner_id": uuid::Uuid::now_v7(), "reason": "152-FZ art. 21 p. 7" });
    let school: contingent_domain::OrganizationId = w.school.parse().expect("org id");
    let callers = [
        app.organization(school),
        app.token(&Claims {
            municipality: Some("Барнаул".into()),
            ..claims("mouo", Role::Municipality)
        }),
        app.token(&Claims {
            snils: Some(GUARDIAN_SNILS.into()),
            ..claims("father", Role::Parent)
        }),
        app.token(&claims("zags", Role::CivilRegistry)),
        app.token(&claims("audit", Role::Auditor)),
    ];
    for token in &callers {
        for b in [&body, &ghost] {
            let response = app
                .client
                .post(format!("{}/v1/commands/erase_personal_data", app.base))
                .bearer_auth(token)
                .json(b)
                .send()
                .await
                .expect("sent");
            let problem = assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
            assert!(!problem.to_string().contains(SURNAME));
        }
    }
    assert_eq!(app.registry.head(), head);
    app.refused(
        "erase_personal_data",
        ghost,
        StatusCode::NOT_FOUND,
        "learner_not_found",
    )
    .await;

    // The region erases.
    let receipt = app.ok("erase_personal_data", body.clone()).await;
    assert_eq!(
        receipt["events"][0]["type"], "personal_data_erased",
        "{receipt}"
    );
    let again = app.ok("erase_personal_data", body).await;
    assert_eq!(again["replayed"], true, "{again}");

    // The register and the class register show the learner as erased; the facts stay.
    let card = app.get_ok(&format!("/v1/learners/{learner}")).await;
    assert_eq!(card["surname"], "[erased]", "{card}");
    assert_eq!(card["name"], "[erased]", "{card}");
    assert!(card["snils"].is_null(), "{card}");
    assert_eq!(card["status"], "enrolled", "{card}");
    let register = app
        .get_ok(&format!(
            "/v1/classes/{}/register?date=2025-09-15",
            w.class_11a
        ))
        .await;
    let text = register.to_string();
    assert!(
        text.contains("[erased]") && !text.contains(SURNAME),
        "{register}"
    );
    let diary = app
        .get_ok(&format!(
            "/v1/learners/{learner}/diary?academic_year=2025/2026"
        ))
        .await;
    assert!(diary.to_string().contains("Математика"), "{diary}");
    assert_eq!(
        app.get_ok("/v1/federal/counts?by=municipality,level").await["counts"],
        counts_before
    );
    assert_eq!(
        app.get_ok(&vacancies_path).await["classes"],
        vacancies_before
    );

    // The history still has every event, its personal fields unreadable.
    let history = app.get_ok(&format!("/v1/learners/{learner}/history")).await;
    let types: Vec<&str> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "birth_registered",
            "guardian_linked",
            "enrolled",
            "mark_recorded",
            "personal_data_erased"
        ]
    );
    assert_eq!(history["events"][0]["data"]["child"]["surname"], "[erased]");
    assert!(history["events"][0]["data"]["snils"].is_null(), "{history}");
    assert_eq!(
        history["events"][1]["data"]["guardian_snils"],
        "000-000-000 00"
    );
    let everything: Value = json!([
        history,
        app.get_ok("/v1/feed?limit=1000").await,
        card,
        app.get_ok(&format!("/v1/learners/{learner}/export")).await,
    ]);
    for value in PERSONAL {
        assert!(
            !everything.to_string().contains(value),
            "{value} is still readable"
        );
    }

    // The chain verifies; no key is needed for it.
    verified(&app).await;
    // A rebuild from zero gives the rows built live.
    assert_eq!(rebuilt_rows(&app, postgres).await, read_rows(&app).await);
    // The log's bytes never held the values.
    let stored = stored_bytes(&app).await;
    for value in PERSONAL {
        assert!(!contains(&stored, value), "{value} is stored in clear");
    }
    // New personal data for the learner is refused.
    app.refused(
        "record_snils",
        json!({ "learner_id": learner, "snils": "111-222-333 72" }),
        StatusCode::CONFLICT,
        "personal_data_erased",
    )
    .await;
    if !postgres {
        let dir = app.stop().await;
        let mut bytes = std::fs::read(dir.path().join("log.db")).expect("log file");
        bytes.extend(std::fs::read(dir.path().join("log.db-wal")).unwrap_or_default());
        for value in PERSONAL {
            assert!(!contains(&bytes, value), "{value} is in log.db");
        }
        let mut bytes = std::fs::read(dir.path().join("read.db")).expect("read models");
        bytes.extend(std::fs::read(dir.path().join("read.db-wal")).unwrap_or_default());
        for value in PERSONAL {
            assert!(!contains(&bytes, value), "{value} is in read.db");
        }

        // The key store restored from the backup holds the learner's key again; the registry
        // destroys it when it reads the erasure, so the history stays erased.
        for f in ["keys.db", "keys.db-wal", "keys.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
        for (f, bytes) in &backup {
            std::fs::write(dir.path().join(f), bytes).expect("restore");
        }
        let app = TestApp::spawn_in(dir).await;
        let history = app.get_ok(&format!("/v1/learners/{learner}/history")).await;
        assert_eq!(history["events"][0]["data"]["child"]["surname"], "[erased]");
        assert!(!history.to_string().contains(SURNAME), "{history}");
    }
}

#[tokio::test]
async fn an_erased_learner_reads_as_erased_everywhere_while_the_chain_verifies() {
    erasure(TestApp::spawn().await, false).await;
}

#[tokio::test]
async fn an_erased_learner_reads_as_erased_on_kafka_and_postgres() {
    erasure(TestApp::spawn_on_kafka_and_postgres().await, true).await;
}

/// A parent downloads everything held about their child: every event of the history, the
/// register entry, the diary and the journal's entries, as JSON and as text; journaled.
async fn subject_access(app: TestApp) {
    let w = world(&app).await;
    let receipt = app
        .ok(
            "register_birth",
            birth("3200", SURNAME, "Анна", "2008-04-02", Some(SNILS)),
        )
        .await;
    let learner = receipt["learner_id"].as_str().expect("learner").to_owned();
    app.ok("link_guardian", json!({
        "learner_id": learner, "guardian_snils": GUARDIAN_SNILS,
        "guardian": { "surname": GUARDIAN_SURNAME, "name": "Пётр" },
        "relation": "father", "consent": { "given_on": "2025-08-25", "document": "Согласие № 31" },
    }))
    .await;
    enrolled(&app, &learner, &w.class_11a, "2025-09-01").await;
    app.ok("record_mark", json!({
        "learner_id": learner, "class_id": w.class_11a, "subject": "Математика", "lesson_date": "2025-09-15",
        "kind": "current", "work": "тест", "value": "5", "weight": 1, "teacher": "Петрова Н. С.",
    }))
    .await;
    // An official's read, which the export must show.
    app.get_ok(&format!("/v1/learners/{learner}")).await;

    let parent = app.token(&Claims {
        snils: Some(GUARDIAN_SNILS.into()),
        ..claims("father", Role::Parent)
    });
    let history = app.get_ok(&format!("/v1/learners/{learner}/history")).await;
    let (status, export) = app
        .get_as(&parent, &format!("/v1/learners/{learner}/export"))
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(
        export["history"], history["events"],
        "every event of the history"
    );
    assert_eq!(export["history"][0]["data"]["child"]["surname"], SURNAME);
    assert_eq!(export["register"]["surname"], SURNAME, "{export}");
    assert_eq!(export["register"]["snils"], SNILS, "{export}");
    assert!(
        export["diary"].to_string().contains("Математика"),
        "{export}"
    );
    let journal = export["access_journal"].as_array().expect("journal");
    assert!(
        journal
            .iter()
            .any(|e| e["role"] == "region" && e["outcome"] == "read"),
        "{export}"
    );
    assert!(
        journal
            .iter()
            .any(|e| e["role"] == "parent" && e["outcome"] == "export"),
        "{export}"
    );

    let text = app
        .client
        .get(format!("{}/v1/learners/{learner}/export.txt", app.base))
        .bearer_auth(&parent)
        .send()
        .await
        .expect("sent");
    assert_eq!(text.status(), StatusCode::OK);
    assert!(text.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/plain"));
    let text = text.text().await.expect("text");
    assert!(text.contains(&format!("\nsurname: {SURNAME}\n")), "{text}");
    assert!(text.contains("\n1.type: birth_registered\n"), "{text}");

    // Another parent, and a parent asking about a learner that does not exist: the same 403.
    let stranger = app.token(&Claims {
        snils: Some("111-222-333 72".into()),
        ..claims("stranger", Role::Parent)
    });
    for id in [learner.clone(), uuid::Uuid::now_v7().to_string()] {
        let (status, body) = app
            .get_as(&stranger, &format!("/v1/learners/{id}/export"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(!body.to_string().contains(SURNAME));
    }
}

#[tokio::test]
async fn a_parent_downloads_everything_held_about_their_child() {
    subject_access(TestApp::spawn().await).await;
}

#[tokio::test]
async fn a_parent_downloads_everything_held_on_kafka_and_postgres() {
    subject_access(TestApp::spawn_on_kafka_and_postgres().await).await;
}
