//! The registry as a region deploys it: the log of record on a Kafka topic, the read models in
//! PostgreSQL, and `contingent serve` and `contingent project` as separate processes of the real
//! binary. Needs the servers `./scripts/test` starts (`CONTINGENT_TEST_KAFKA`,
//! `CONTINGENT_TEST_DATABASE_URL`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use contingent_log::EventLog;
use contingent_log_kafka::{KafkaConfig, KafkaLog};
use contingent_projections::{all_projections, dump_tables, ReadDatabase, ReadStore};
use contingent_registry::{LogBackend, Registry, Settings};
use contingent_testkit::PgDatabase;
use serde_json::{json, Value};
use sqlx::AnyPool;

mod support;

use support::read_side::{federal_records, pool, projected, tables};
use support::{run, Process};

/// The flags that put a process on the test's topic and database.
fn backend(topic: &str, database: &str, data: &Path) -> Vec<String> {
    vec![
        "--kafka".into(),
        contingent_testkit::kafka_broker(),
        "--kafka-topic".into(),
        topic.into(),
        "--database".into(),
        database.into(),
        "--data".into(),
        data.display().to_string(),
    ]
}

fn project(topic: &str, database: &str, data: &Path, batch: usize, extra: &[&str]) -> Process {
    let mut args = vec!["project".to_owned()];
    args.extend(backend(topic, database, data));
    args.extend(["--batch".to_owned(), batch.to_string()]);
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    Process::start(&args)
}

/// `contingent serve --no-projector` on a free port; returns it and its base URL.
fn serve(topic: &str, database: &str, data: &Path) -> (Process, String) {
    let mut args = vec!["--no-projector".to_owned()];
    args.extend(backend(topic, database, data));
    support::serve(&args)
}

/// Whether a transaction other than ours is open in the database: a projector's batch under way.
async fn batch_open(pool: &AnyPool) -> bool {
    let open: (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND xact_start IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .expect("pg_stat_activity");
    open.0 > 0
}

async fn wait_projected(pool: &AnyPool, head: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while projected(pool).await < head {
        assert!(
            Instant::now() < deadline,
            "projected {} of {head} after {within:?}",
            projected(pool).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Generates a small region into a fresh topic through an in-process registry; returns the head.
async fn generate_region(topic: &str, database: &str, dir: &Path) -> u64 {
    let mut settings = Settings::new(dir);
    settings.log = LogBackend::Kafka(KafkaConfig::new(contingent_testkit::kafka_broker(), topic));
    settings.database = Some(database.to_owned());
    settings.project = false;
    let registry = Registry::open(settings, |_| {})
        .await
        .expect("registry on Kafka");
    let config = contingent_simulate::Config {
        seed: 7,
        scale: contingent_simulate::Scale::tiny(),
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"),
    };
    contingent_simulate::generate(&registry, &config, |_, _, _| {})
        .await
        .expect("region generated");
    let head = registry.head();
    registry.shutdown().await;
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_in_the_middle_of_batches_ends_equal_to_a_rebuild_from_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topic = KafkaConfig::region_topic(&contingent_testkit::unique_region());
    let live = PgDatabase::create().await;
    let rebuilt = PgDatabase::create().await;
    let head = generate_region(&topic, live.url(), dir.path()).await;
    assert!(head > 5_000, "a region of {head} events");
    let live_pool = pool(live.url()).await;

    // Kill the projector three times while one of its batches is open in PostgreSQL.
    let mut killed_at = Vec::new();
    for _ in 0..3 {
        let projector = project(&topic, live.url(), dir.path(), 300, &[]);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(
                Instant::now() < deadline,
                "the projector never opened a batch"
            );
            if projected(&live_pool).await >= head {
                break;
            }
            if batch_open(&live_pool).await {
                projector.kill();
                killed_at.push(projected(&live_pool).await);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if projected(&live_pool).await >= head {
            break;
        }
    }
    assert!(
        killed_at.iter().any(|&p| p < head),
        "no kill landed before the end: {killed_at:?} of {head}"
    );
    // PostgreSQL sees the killed client's connection close and rolls its transaction back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while batch_open(&live_pool).await {
        assert!(
            Instant::now() < deadline,
            "the killed projector's transaction is still open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Restarted, it finishes from where the committed positions say.
    let projector = project(&topic, live.url(), dir.path(), 300, &[]);
    wait_projected(&live_pool, head, Duration::from_secs(300)).await;
    projector.kill();

    // A rebuild from the first event into another database gives the same rows.
    let mut args: Vec<String> = vec!["rebuild".into()];
    args.extend(backend(&topic, rebuilt.url(), dir.path()));
    // The learners' keys are in the region's database, not in the one rebuilt into.
    args.extend(["--key-store".into(), live.url().to_owned()]);
    let said = run(&args);
    assert!(said.contains(&format!("from {head} events")), "{said}");
    let rebuilt_store = ReadStore::open(ReadDatabase::from(rebuilt.url()), &all_projections())
        .await
        .expect("rebuilt store");
    let live_rows = dump_tables(&live_pool, &tables()).await.expect("live rows");
    let rebuilt_rows = dump_tables(rebuilt_store.pool(), &tables())
        .await
        .expect("rebuilt rows");
    for table in tables() {
        assert!(
            live_rows[table] == rebuilt_rows[table],
            "{table} differs after {} kills at {killed_at:?}",
            killed_at.len()
        );
    }
    assert!(live_rows["register_learners"].len() > 100);
    // The rebuild left every read model's table vacuumed and analyzed (and its keys and
    // indexes back).
    let unsettled: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_stat_user_tables \
         WHERE (last_vacuum IS NULL OR last_analyze IS NULL) \
         AND relname = ANY(string_to_array($1, ','))",
    )
    .bind(
        all_projections()
            .iter()
            .flat_map(|p| p.tables().iter().copied())
            .collect::<Vec<_>>()
            .join(","),
    )
    .fetch_all(rebuilt_store.pool())
    .await
    .expect("the tables' statistics");
    assert!(unsettled.is_empty(), "{unsettled:?}");
    let deferred: i64 = sqlx::query_scalar("SELECT count(*) FROM deferred_indexes")
        .fetch_one(rebuilt_store.pool())
        .await
        .expect("deferred indexes");
    assert_eq!(deferred, 0);
    rebuilt_store.close().await;
    live_pool.close().await;
}

async fn post(client: &reqwest::Client, base: &str, token: &str, name: &str, body: Value) -> Value {
    let response = client
        .post(format!("{base}/v1/commands/{name}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("command sent");
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert!(status.is_success(), "{name}: {status} {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_processes_and_a_projector_share_one_agreed_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topic = KafkaConfig::region_topic(&contingent_testkit::unique_region());
    let database = PgDatabase::create().await;
    let token = support::token(dir.path(), "civil_registry");
    let region = support::token(dir.path(), "region");
    let (_a, base_a) = serve(&topic, database.url(), dir.path());
    // The second process has a data directory of its own with the same keys.
    let second = dir.path().join("second");
    support::copy_keys(dir.path(), &second);
    let (_b, base_b) = serve(&topic, database.url(), &second);
    let federal_topic = format!("{topic}.federal");
    let _projector = project(
        &topic,
        database.url(),
        dir.path(),
        500,
        &["--federal-topic", &federal_topic],
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");

    // Births sent to both processes at once: two writers racing for the same positions.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..120u32 {
        let (client, token) = (client.clone(), token.clone());
        let base = if i % 2 == 0 { &base_a } else { &base_b }.clone();
        tasks.spawn(async move {
            let birth = json!({
                "record": { "number": format!("77{i:04}"), "date": "2019-04-02", "office": "Отдел ЗАГС г. Барнаула" },
                "child": { "surname": "Орлова", "name": "Вера", "patronymic": "Петровна" },
                "sex": "female",
                "birth_date": "2019-03-30",
                "certificate": { "kind": "birth_certificate", "series": "II-ТО", "number": format!("6{i:05}") },
            });
            let receipt = post(&client, &base, &token, "register_birth", birth).await;
            let event = &receipt["events"][0];
            (
                event["position"].as_u64().expect("position"),
                event["event_id"].as_str().expect("event id").to_owned(),
                receipt["learner_id"].as_str().expect("learner").to_owned(),
            )
        });
    }
    let mut acknowledged = Vec::new();
    while let Some(done) = tasks.join_next().await {
        acknowledged.push(done.expect("task"));
    }
    let mut conflicts = 0u64;
    for base in [&base_a, &base_b] {
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        conflicts += metrics
            .lines()
            .find_map(|l| l.strip_prefix("contingent_append_conflicts_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("conflict counter");
    }
    eprintln!("batches decided again after losing a race: {conflicts}");
    let positions: BTreeSet<u64> = acknowledged.iter().map(|a| a.0).collect();
    assert_eq!(
        positions.len(),
        acknowledged.len(),
        "one position per event"
    );

    // Every acknowledged event is in the log as any fresh reader sees it, at its position.
    let log = KafkaLog::open(KafkaConfig::new(contingent_testkit::kafka_broker(), &topic))
        .await
        .expect("a fresh reader");
    let events = log.read_after(0, 10_000).await.expect("the log");
    assert_eq!(
        events.len(),
        acknowledged.len(),
        "nothing more, nothing less"
    );
    let by_position: BTreeMap<u64, String> = events
        .iter()
        .map(|e| (e.position(), e.envelope.event_id.to_string()))
        .collect();
    for (position, event_id, _) in &acknowledged {
        assert_eq!(by_position.get(position), Some(event_id));
    }
    log.close().await;

    // Either process serves what the other wrote, once the projector has applied it.
    let head = acknowledged.len() as u64;
    let pg = pool(database.url()).await;
    wait_projected(&pg, head, Duration::from_secs(120)).await;
    for (base, learner) in [(&base_a, &acknowledged[1].2), (&base_b, &acknowledged[0].2)] {
        let response = client
            .get(format!("{base}/v1/learners/{learner}"))
            .bearer_auth(&region)
            .send()
            .await
            .expect("query");
        assert_eq!(response.status(), 200, "{base} serves {learner}");
    }
    // The federal segment, with a plain Kafka consumer, gets one record per event.
    let federal = read_federal_topic(&federal_topic, acknowledged.len()).await;
    let ids: BTreeSet<&str> = acknowledged.iter().map(|a| a.1.as_str()).collect();
    assert_eq!(
        federal.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        ids
    );

    // Both processes signed with the key in the data directory they share; a writer that lost
    // a race left its signed records in the topic, which verify notes but does not count as
    // damage.
    support::verify_kafka_topic(
        &contingent_testkit::kafka_broker(),
        &topic,
        dir.path(),
        head,
        "",
    );
    pg.close().await;
}

async fn read_federal_topic(topic: &str, expected: usize) -> Vec<String> {
    federal_records(&contingent_testkit::kafka_broker(), topic, expected).await
}
