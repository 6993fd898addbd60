//! The log as subscribers and operators see it: the feed, restarts, rebuilds, the OpenAPI
//! document, and tamper detection by the `contingent verify` binary.

use std::process::Command;

use contingent_projections::{all_projections, dump_tables, ReadStore};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{born, enrolled, world, TestApp};

async fn populate(app: &TestApp) -> (String, String) {
    let w = world(app).await;
    let learner = born(app, "500", "Лебедев", "2008-02-02").await;
    let enrollment = enrolled(app, &learner, &w.class_11a, "2025-09-01").await;
    for (day, value) in [
        ("2025-09-08", "5"),
        ("2025-09-09", "4"),
        ("2025-09-10", "2"),
    ] {
        app.ok("record_mark", json!({ "learner_id": learner, "class_id": w.class_11a, "subject": "История", "lesson_date": day,
            "kind": "current", "work": "тест", "value": value, "weight": 1, "teacher": "Орлова Е. В." })).await;
    }
    let other = born(app, "501", "Кузнецов", "2008-07-07").await;
    enrolled(app, &other, &w.class_11b, "2025-09-01").await;
    app.ok("transfer", json!({ "learner_id": learner, "enrollment_id": enrollment, "kind": "within_organization",
        "to_class_id": w.class_11b, "transferred_on": "2025-10-01", "order": { "number": "П-5", "date": "2025-09-30" } })).await;
    app.ok("submit_application", json!({ "learner_id": other, "organization_id": w.college, "level": "vocational",
        "academic_year": "2026/2027", "grade": 1, "submitted_on": "2026-06-20", "priority": "general" })).await;
    (learner, w.kindergarten)
}

#[tokio::test]
async fn the_feed_pages_through_the_log_and_resumes_from_a_position() {
    let app = TestApp::spawn().await;
    populate(&app).await;
    let head = app.registry.head();
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = app.get_ok(&format!("/v1/feed?after={after}&limit=4")).await;
        let events = page["events"].as_array().expect("events").clone();
        if events.is_empty() {
            break;
        }
        assert!(events.len() <= 4);
        for e in &events {
            seen.push(e["position"].as_u64().expect("position"));
            assert_eq!(e["hash"].as_str().map(str::len), Some(64));
        }
        after = page["next_after"].as_u64().expect("next_after");
        assert_eq!(page["head"], head);
    }
    assert_eq!(seen, (1..=head).collect::<Vec<_>>());
    // Each event's prev_hash is the hash of the one before.
    let all = app.get_ok("/v1/feed?after=0&limit=1000").await;
    let events = all["events"].as_array().expect("events");
    for pair in events.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
}

#[tokio::test]
async fn a_restart_keeps_every_acknowledged_fact_and_a_rebuild_equals_the_live_read_models() {
    let app = TestApp::spawn().await;
    let (learner, _) = populate(&app).await;
    let head = app.registry.head();
    let live_card = app.get_ok(&format!("/v1/learners/{learner}")).await;
    let dir = app.stop().await;

    // Restarted: the writer's state and the read models come back as they were.
    let app = TestApp::spawn_in(dir).await;
    assert_eq!(app.registry.head(), head);
    assert_eq!(
        app.get_ok(&format!("/v1/learners/{learner}")).await,
        live_card
    );
    // The rules still know the class is taken: the learner cannot be enrolled twice.
    let receipt = app
        .command(
            "record_snils",
            json!({ "learner_id": learner, "snils": "112-233-445 95" }),
        )
        .await;
    assert_eq!(receipt.status(), StatusCode::CREATED);
    let dir = app.stop().await;

    // Rebuild into a fresh database and compare every table with the live one.
    let settings = contingent_registry::Settings::new(dir.path());
    let projections = all_projections();
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    let live = ReadStore::open(&settings.read_path(), &projections)
        .await
        .expect("live store");
    let live_rows = dump_tables(live.pool(), &tables).await.expect("dump");
    live.close().await;
    let copy = dir.path().join("rebuilt.db");
    let log = contingent_registry::open_log(&settings).await.expect("log");
    let applied = contingent_registry::rebuild(&log, &copy, None, 3, |_| {})
        .await
        .expect("rebuild");
    assert_eq!(applied, head + 1);
    // Filled without a WAL, the fresh file replaced the old one as an ordinary WAL database.
    let header = std::fs::read(&copy).expect("the rebuilt file");
    assert_eq!(header[18..20], [2, 2], "the rebuilt file is in WAL mode");
    assert!(!dir.path().join("rebuilt.rebuild.db").exists());
    let rebuilt = ReadStore::open(&copy, &projections)
        .await
        .expect("rebuilt store");
    let rebuilt_rows = dump_tables(rebuilt.pool(), &tables).await.expect("dump");
    assert!(live_rows.values().map(Vec::len).sum::<usize>() > 20);
    assert_eq!(live_rows, rebuilt_rows);

    // Rebuilding one model in place gives the same rows too.
    rebuilt.close().await;
    contingent_registry::rebuild(&log, &copy, Some(&["diary".to_owned()]), 2, |_| {})
        .await
        .expect("rebuild diary");
    let again = ReadStore::open(&copy, &projections).await.expect("store");
    assert_eq!(
        dump_tables(again.pool(), &tables).await.expect("dump"),
        live_rows
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint_and_command() {
    let app = TestApp::spawn().await;
    let doc = app.get_ok("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    let mut served = contingent_api::PATHS.to_vec();
    served.sort_unstable();
    let mut documented_sorted = documented.clone();
    documented_sorted.sort_unstable();
    assert_eq!(documented_sorted, served);
    let names: Vec<Value> = doc["paths"]["/v1/commands/{name}"]["post"]["parameters"][0]["schema"]
        ["enum"]
        .as_array()
        .expect("enum")
        .clone();
    assert_eq!(names.len(), contingent_domain::Command::NAMES.len());
    for name in contingent_domain::Command::NAMES {
        assert!(
            doc["components"]["schemas"][format!("Command_{name}")].is_object(),
            "{name}"
        );
    }
    for schema in [
        "LearnerCard",
        "Diary",
        "ClassRegisterView",
        "VacancyRow",
        "QueueView",
        "FederalLearner",
        "Envelope",
        "Problem",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    // Every documented GET answers (with a problem where an id is needed, never a 404 for the route).
    for path in contingent_api::PATHS
        .iter()
        .filter(|p| !p.starts_with("/v1/commands"))
    {
        let url = format!(
            "{}{}",
            app.base,
            path.replace("{id}", "00000000-0000-7000-8000-000000000000")
        );
        let r = app
            .client
            .get(&url)
            .bearer_auth(app.region())
            .send()
            .await
            .expect("sent");
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert!(
            status != StatusCode::INTERNAL_SERVER_ERROR,
            "{path}: {body}"
        );
        assert!(
            !body.contains("no_such_endpoint"),
            "{path} is documented but not served"
        );
    }
}

#[tokio::test]
async fn verify_passes_then_reports_the_first_altered_event() {
    let app = TestApp::spawn().await;
    let (learner, _) = populate(&app).await;
    let head = app.registry.head();
    let dir = app.stop().await;
    let bin = env!("CARGO_BIN_EXE_contingent");
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .arg("--data")
            .arg(dir.path())
            .env("CI", "1")
            .output()
            .expect("binary runs")
    };

    let ok = run(&["verify"]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}");
    assert!(
        out.contains(&format!("OK: {head} events verified")),
        "{out}"
    );

    let history = run(&["history", &learner]);
    assert!(history.status.success());
    assert_eq!(String::from_utf8_lossy(&history.stdout).lines().count(), 6);

    // Names are stored sealed: the surname is nowhere in the file.
    let path = dir.path().join("log.db");
    let mut bytes = std::fs::read(&path).expect("log file");
    let surname = "Кузнецов".as_bytes();
    assert!(!bytes.windows(surname.len()).any(|w| w == surname));
    // Change one byte of one stored event: a learner's date of birth in the file itself.
    let needle = br#""birth_date":"2008-07-07""#;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the event is in the main database file");
    bytes[at + needle.len() - 2] ^= 0x01;
    std::fs::write(&path, bytes).expect("write");

    let broken = run(&["verify"]);
    let out = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(2), "{out}");
    assert!(out.contains("BROKEN at position"), "{out}");
    assert!(out.contains("[changed]"), "{out}");
}

#[tokio::test]
async fn a_truncated_tail_passes_alone_and_is_found_against_checkpoints_an_auditor_kept() {
    let app = TestApp::spawn().await;
    populate(&app).await;
    app.registry
        .log()
        .publish_checkpoint()
        .await
        .expect("checkpoint")
        .expect("signed");
    let kept = app.get_ok("/v1/audit/checkpoints").await;
    let head = app.registry.head();
    assert_eq!(
        kept["checkpoints"][0]["position"].as_u64(),
        Some(head),
        "{kept}"
    );
    let dir = app.stop().await;
    let kept_file = dir.path().join("kept-checkpoints.json");
    std::fs::write(&kept_file, kept.to_string()).expect("kept");

    // Someone with write access to log.db cuts the last append, with its signature and every
    // checkpoint the file holds: what is left is a consistent, signed, shorter log.
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("log.db").display()))
            .await
            .expect("log.db");
    let (last_first,): (i64,) =
        sqlx::query_as("SELECT first_position FROM signatures ORDER BY last_position DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .expect("last append");
    sqlx::raw_sql(&format!(
        "DROP TRIGGER events_are_never_deleted; DELETE FROM events WHERE position >= {last_first}; \
         DELETE FROM signatures WHERE last_position >= {last_first}; DELETE FROM checkpoints;"
    ))
    .execute(&pool)
    .await
    .expect("truncate");
    pool.close().await;

    let bin = env!("CARGO_BIN_EXE_contingent");
    let run = |extra: &[&str]| {
        Command::new(bin)
            .arg("verify")
            .args(extra)
            .arg("--data")
            .arg(dir.path())
            .env("CI", "1")
            .output()
            .expect("binary runs")
    };
    let alone = run(&[]);
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stdout)
    );
    let against = run(&["--against", kept_file.to_str().expect("utf-8")]);
    let out = String::from_utf8_lossy(&against.stdout);
    assert_eq!(against.status.code(), Some(2), "{out}");
    assert!(
        out.contains(&format!("BROKEN at position {last_first} [truncated]")),
        "{out}"
    );
    assert!(out.contains(&format!("reached position {head}")), "{out}");
}

#[tokio::test]
async fn the_audit_runs_in_the_background_one_at_a_time_and_serves_its_last_result() {
    let app = TestApp::spawn().await;
    populate(&app).await;
    let head = app.registry.head();
    let (status, bad) = app.get("/v1/audit/verify?wait=forever").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["code"], "invalid_query");

    // A start while one runs joins it: at most one run at a time.
    let start = |_: u8| {
        app.client
            .post(format!("{}/v1/audit/verify", app.base))
            .bearer_auth(app.region())
            .send()
    };
    let (first, second) = tokio::join!(start(1), start(2));
    let (first, second) = (first.expect("first"), second.expect("second"));
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.expect("state");
    let second: Value = second.json().await.expect("state");
    if !first["running"].is_null()
        && !second["running"].is_null()
        && first["running"]["started_at"] != second["running"]["started_at"]
    {
        // Two runs: only if one had finished before the other started (a small log verifies
        // in a moment), so the later one names it as the last.
        assert!(
            second["last"]["started_at"] == first["running"]["started_at"]
                || first["last"]["started_at"] == second["running"]["started_at"],
            "two runs at once: {first} {second}"
        );
    }

    let done = app.get_ok("/v1/audit/verify?wait=30").await;
    assert_eq!(done["running"], Value::Null, "{done}");
    let last = &done["last"];
    assert!(last["finished_at"].is_string(), "{done}");
    assert_eq!(last["report"]["head"].as_u64(), Some(head), "{done}");
    assert_eq!(last["report"]["verified"].as_u64(), Some(head), "{done}");
    // Without `wait`, the last result is served as it is; no new run starts.
    let again = app.get_ok("/v1/audit/verify").await;
    assert_eq!(again["last"]["started_at"], last["started_at"]);
    assert_eq!(again["running"], Value::Null);
}
