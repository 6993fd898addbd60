//! Faults injected into a whole deployment, in the spirit of Jepsen: two `serve --no-projector`
//! processes and one `project --federal-topic` on a broker of the test's own, driven by clients
//! that send commands with `Idempotency-Key`s and retry what was not answered, while faults are
//! injected at random moments: a writer or the projector killed (SIGKILL) and restarted, the
//! broker paused (SIGSTOP) past the producers' timeouts and resumed, and appends failed on
//! purpose inside the writers (`--inject-append-faults`: half before anything is written, half
//! written and then reported failed).
//!
//! Then a checker proves from the log alone: every acknowledged command's events are in the log
//! exactly once, at the positions it was told; no refused command has an effect; no key recorded
//! anything twice; nothing is in the log that no client sent; the read models equal a rebuild
//! from zero; `verify` passes; the federal topic holds every event once, in log order.
//!
//! The seed (`CONTINGENT_FAULTS_SEED`, else drawn and printed) decides the workload and the fault
//! schedule (which fault, when, for how long); the interleaving with the processes is the
//! machine's. `CONTINGENT_FAULTS_SECONDS` sets how long faults are injected (default 40).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contingent_log::EventLog;
use contingent_log_kafka::{KafkaConfig, KafkaLog};
use contingent_projections::{all_projections, dump_tables, ReadDatabase, ReadStore};
use contingent_testkit::PgDatabase;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

mod support;

use support::read_side::{federal_records, pool, projected, tables};

#[path = "../crates/log-kafka/tests/private_broker/mod.rs"]
mod private_broker;

use private_broker::PrivateBroker;

/// Injected append faults per thousand appends, in each writer.
const APPEND_FAULTS_PER_MILLE: u32 = 40;
/// Concurrent clients.
const CLIENTS: usize = 6;

/// A process of the binary that the test kills and starts again with the same arguments (and,
/// for `serve`, on the same port); its standard error goes to a file.
struct Node {
    args: Vec<String>,
    stderr: PathBuf,
    child: Option<Child>,
    base: Option<String>,
}

impl Node {
    fn new(args: Vec<String>, stderr: PathBuf, base: Option<String>) -> Self {
        let mut node = Self {
            args,
            stderr,
            child: None,
            base,
        };
        node.start();
        node
    }

    fn start(&mut self) {
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .expect("stderr file");
        let child = Command::new(support::BIN)
            .args(&self.args)
            .env("CI", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("contingent starts");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until `serve` answers `/healthz` (any status: it listens).
    async fn ready(&self, client: &reqwest::Client) {
        let Some(base) = &self.base else { return };
        let deadline = Instant::now() + Duration::from_secs(120);
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "{base} did not come up: {}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// What a client was finally told about one command.
#[derive(Debug, Clone)]
enum Outcome {
    /// 2xx: the events it was told of, `(position, event_id)`.
    Acknowledged(Vec<(u64, String)>),
    /// 4xx: the problem's code.
    Refused(String),
    /// Never answered by the end.
    Unresolved,
}

#[derive(Debug, Clone)]
struct Sent {
    key: String,
    command: &'static str,
    outcome: Outcome,
    attempts: u32,
}

fn birth(number: u64, surname: &str, born: &str) -> Value {
    json!({
        "record": { "number": format!("9{number:07}"), "date": "2019-04-02", "office": "Отдел ЗАГС г. Бийска" },
        "child": { "surname": surname, "name": "Анна", "patronymic": "Игоревна" },
        "sex": "female",
        "birth_date": born,
        "certificate": { "kind": "birth_certificate", "series": "II-ТО", "number": format!("7{number:05}") },
    })
}

/// One command of the workload, decided by the client's random stream: births, organizations,
/// capacity changes, and births that contradict an earlier record (refused).
fn workload_command(
    rng: &mut ChaCha8Rng,
    n: u64,
    classes: &[String],
    births: &mut Vec<u64>,
) -> (&'static str, Value) {
    match rng.gen_range(0..100) {
        0..=5 if !births.is_empty() => {
            let earlier = births[rng.gen_range(0..births.len())];
            ("register_birth", birth(earlier, "Петрова", "2019-03-29"))
        }
        0..=39 => {
            births.push(n);
            ("register_birth", birth(n, "Соколова", "2019-03-30"))
        }
        40..=59 => (
            "register_organization",
            json!({ "name": format!("МБОУ СОШ № {n}"), "municipality": "Бийск", "kind": "school", "levels": ["general"] }),
        ),
        _ => (
            "change_class_capacity",
            json!({
                "class_id": classes[rng.gen_range(0..classes.len())],
                "capacity": rng.gen_range(20..36),
            }),
        ),
    }
}

/// Sends one command with its key until it is answered (acknowledged or refused), retrying on
/// 503, 429 and when no answer comes, to either server, until `give_up`.
#[allow(clippy::too_many_arguments)]
async fn settle(
    client: &reqwest::Client,
    bases: &[String],
    token: &str,
    name: &'static str,
    body: &Value,
    key: &str,
    rng: &mut ChaCha8Rng,
    give_up: Instant,
) -> (Outcome, u32) {
    let mut attempts = 0;
    while Instant::now() < give_up {
        attempts += 1;
        let base = &bases[rng.gen_range(0..bases.len())];
        let sent = client
            .post(format!("{base}/v1/commands/{name}"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                let events = answer["events"]
                    .as_array()
                    .expect("a receipt's events")
                    .iter()
                    .map(|e| {
                        (
                            e["position"].as_u64().expect("position"),
                            e["event_id"].as_str().expect("event id").to_owned(),
                        )
                    })
                    .collect();
                return (Outcome::Acknowledged(events), attempts);
            }
            if status.is_client_error() && status.as_u16() != 429 {
                let code = answer["code"].as_str().unwrap_or("?").to_owned();
                return (Outcome::Refused(code), attempts);
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..400))).await;
    }
    (Outcome::Unresolved, attempts)
}

fn count_in(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.matches(needle).count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_at_random_moments_lose_nothing_acknowledged_and_record_nothing_twice() {
    let seed: u64 = std::env::var("CONTINGENT_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    let seconds: u64 = std::env::var("CONTINGENT_FAULTS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    eprintln!("fault injection: seed {seed} (CONTINGENT_FAULTS_SEED={seed} repeats the schedule)");
    let ctx = format!("[seed {seed}]");

    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Arc::new(PrivateBroker::start());
    let topic = KafkaConfig::region_topic(&contingent_testkit::unique_region());
    let federal_topic = format!("{topic}.federal");
    let database = PgDatabase::create().await;
    let data = dir.path().display().to_string();
    // The subcommand and its own flags, then the flags that put it on the test's backend.
    let backend = |extra: &[String]| -> Vec<String> {
        let mut args = extra.to_vec();
        args.extend([
            "--kafka".into(),
            broker.address.clone(),
            "--kafka-topic".into(),
            topic.clone(),
            "--database".into(),
            database.url().to_owned(),
            "--data".into(),
            data.clone(),
            // Past this the producer gives a record up: a pause longer than it is a failure.
            "--kafka-option".into(),
            "message.timeout.ms=2000".into(),
        ]);
        args
    };
    let region = support::token(dir.path(), "region");
    let civil = support::token(dir.path(), "civil_registry");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");

    // Each writer has a data directory of its own (its derived files are its alone), with the
    // same keys: the first writer's directory is the one the projector and the tools use, and
    // the second gets a copy of its keys once the first has made them.
    let writer = |i: u64, data_dir: &Path| {
        let port = free_port();
        let args = vec![
            "serve".to_owned(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--no-projector".into(),
            "--caller-rate".into(),
            "0".into(),
            "--inject-append-faults".into(),
            format!("{}:{APPEND_FAULTS_PER_MILLE}", seed.wrapping_add(i)),
        ];
        let args = backend(&args)
            .into_iter()
            .map(|a| {
                if a == data {
                    data_dir.display().to_string()
                } else {
                    a
                }
            })
            .collect();
        Node::new(
            args,
            dir.path().join(format!("writer-{i}.log")),
            Some(format!("http://127.0.0.1:{port}")),
        )
    };
    let first = writer(0, dir.path());
    first.ready(&client).await;
    let second_dir = dir.path().join("second-writer");
    support::copy_keys(dir.path(), &second_dir);
    let second = writer(1, &second_dir);
    let mut writers = vec![first, second];
    let mut projector = Node::new(
        backend(&[
            "project".into(),
            "--batch".into(),
            "200".into(),
            "--federal-topic".into(),
            federal_topic.clone(),
        ]),
        dir.path().join("projector.log"),
        None,
    );
    for w in &writers {
        w.ready(&client).await;
    }
    let bases: Vec<String> = writers
        .iter()
        .map(|w| w.base.clone().expect("a base"))
        .collect();

    // The world the workload works in, itself sent with keys and retries.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let setup_until = Instant::now() + Duration::from_secs(120);
    let mut sent: Vec<Sent> = Vec::new();
    let (outcome, attempts) = settle(
        &client,
        &bases,
        &region,
        "register_organization",
        &json!({ "name": "МБОУ Гимназия № 1", "municipality": "Бийск", "kind": "school", "levels": ["general"] }),
        "setup-org",
        &mut rng,
        setup_until,
    )
    .await;
    let school = match &outcome {
        Outcome::Acknowledged(_) => {
            let log = KafkaLog::open(KafkaConfig::new(broker.address.clone(), &topic))
                .await
                .expect("log");
            let first = log.read_after(0, 1).await.expect("the log");
            log.close().await;
            match &first[0].envelope.event {
                contingent_domain::Event::OrganizationRegistered(e) => {
                    e.organization_id.to_string()
                }
                other => panic!("{ctx} the first event is {other:?}"),
            }
        }
        other => panic!("{ctx} the school was not registered: {other:?}"),
    };
    sent.push(Sent {
        key: "setup-org".into(),
        command: "register_organization",
        outcome,
        attempts,
    });
    let mut classes = Vec::new();
    for (i, grade) in [1u8, 2, 3, 4].into_iter().enumerate() {
        let key = format!("setup-class-{i}");
        let body = json!({ "organization_id": school, "academic_year": "2026/2027", "level": "general", "grade": grade, "name": format!("{grade}А"), "capacity": 25 });
        let (outcome, attempts) = settle(
            &client,
            &bases,
            &region,
            "open_class",
            &body,
            &key,
            &mut rng,
            setup_until,
        )
        .await;
        let Outcome::Acknowledged(events) = &outcome else {
            panic!("{ctx} a class was not opened: {outcome:?}");
        };
        let log = KafkaLog::open(KafkaConfig::new(broker.address.clone(), &topic))
            .await
            .expect("log");
        let event = log
            .read_after(events[0].0 - 1, 1)
            .await
            .expect("the log")
            .remove(0);
        log.close().await;
        match &event.envelope.event {
            contingent_domain::Event::ClassOpened(e) => classes.push(e.class_id.to_string()),
            other => panic!("{ctx} expected a class, found {other:?}"),
        }
        sent.push(Sent {
            key,
            command: "open_class",
            outcome,
            attempts,
        });
    }

    // The clients.
    let started = Instant::now();
    let faults_until = started + Duration::from_secs(seconds);
    let give_up = faults_until + Duration::from_secs(150);
    let results: Arc<Mutex<Vec<Sent>>> = Arc::new(Mutex::new(Vec::new()));
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (client, bases, classes) = (client.clone(), bases.clone(), classes.clone());
        let (region, civil, results) = (region.clone(), civil.clone(), results.clone());
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (c as u64 + 1).wrapping_mul(0x9E37));
        clients.spawn(async move {
            let mut n = 0u64;
            let mut births = Vec::new();
            while Instant::now() < faults_until {
                n += 1;
                let (name, body) =
                    workload_command(&mut rng, (c as u64) * 1_000_000 + n, &classes, &mut births);
                let token = if name == "register_birth" {
                    &civil
                } else {
                    &region
                };
                let key = format!("c{c}-{n}");
                let (outcome, attempts) =
                    settle(&client, &bases, token, name, &body, &key, &mut rng, give_up).await;
                results.lock().expect("results").push(Sent {
                    key,
                    command: name,
                    outcome,
                    attempts,
                });
            }
        });
    }

    // The faults.
    let mut injected: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut schedule = ChaCha8Rng::seed_from_u64(seed.rotate_left(17));
    // Every kind of fault in turn, from a random one.
    let mut kind = schedule.gen_range(0..3);
    loop {
        let wait = Duration::from_millis(schedule.gen_range(1_500..4_000));
        if Instant::now() + wait >= faults_until {
            break;
        }
        tokio::time::sleep(wait).await;
        kind = (kind + 1) % 3;
        match kind {
            0 => {
                let i = schedule.gen_range(0..writers.len());
                writers[i].kill();
                *injected.entry("writer killed").or_default() += 1;
                tokio::time::sleep(Duration::from_millis(schedule.gen_range(200..1_500))).await;
                writers[i].start();
            }
            1 => {
                projector.kill();
                *injected.entry("projector killed").or_default() += 1;
                tokio::time::sleep(Duration::from_millis(schedule.gen_range(200..1_500))).await;
                projector.start();
            }
            _ => {
                broker.pause();
                *injected.entry("broker paused").or_default() += 1;
                tokio::time::sleep(Duration::from_millis(schedule.gen_range(2_500..5_000))).await;
                broker.resume();
            }
        }
    }
    for w in &writers {
        w.ready(&client).await;
    }
    while let Some(done) = clients.join_next().await {
        done.expect("a client");
    }
    sent.extend(results.lock().expect("results").drain(..));
    let workload_seconds = started.elapsed().as_secs_f64();

    // The checker: from the log alone.
    let log = KafkaLog::open(KafkaConfig::new(broker.address.clone(), &topic))
        .await
        .expect("a fresh reader");
    let mut events = Vec::new();
    loop {
        let page = log
            .read_after(events.len() as u64, 10_000)
            .await
            .expect("the log");
        if page.is_empty() {
            break;
        }
        events.extend(page);
    }
    log.close().await;
    let head = events.len() as u64;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.position(), i as u64 + 1, "{ctx} a gap in the log");
    }
    let mut by_key: HashMap<&str, Vec<(u64, String)>> = HashMap::new();
    for e in &events {
        let key = e
            .envelope
            .idempotency_key
            .as_deref()
            .unwrap_or_else(|| panic!("{ctx} an event no client sent: {e:?}"));
        by_key
            .entry(key)
            .or_default()
            .push((e.position(), e.envelope.event_id.to_string()));
    }
    let sent_keys: BTreeSet<&str> = sent.iter().map(|s| s.key.as_str()).collect();
    for key in by_key.keys() {
        assert!(
            sent_keys.contains(key),
            "{ctx} key {key} in the log, never sent"
        );
    }
    let (mut acknowledged, mut refused, mut unresolved, mut retried) = (0, 0, 0, 0);
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for s in &sent {
        let in_log = by_key.get(s.key.as_str()).cloned().unwrap_or_default();
        if s.attempts > 1 {
            retried += 1;
        }
        match &s.outcome {
            Outcome::Acknowledged(told) => {
                acknowledged += 1;
                assert_eq!(
                    &in_log, told,
                    "{ctx} {} {}: acknowledged with {told:?}, the log holds {in_log:?}",
                    s.command, s.key
                );
                if let Some(first) = in_log.first() {
                    let last = in_log.last().expect("last").0;
                    assert_eq!(
                        last - first.0 + 1,
                        in_log.len() as u64,
                        "{ctx} {}: one command's events are one append",
                        s.key
                    );
                }
            }
            Outcome::Refused(code) => {
                refused += 1;
                *refusals.entry(code.clone()).or_default() += 1;
                assert_ne!(
                    code, "idempotency_key_reused",
                    "{ctx} {}: the same key with the same body",
                    s.key
                );
                assert!(
                    in_log.is_empty(),
                    "{ctx} {} {}: refused ({code}) yet in the log: {in_log:?}",
                    s.command,
                    s.key
                );
            }
            Outcome::Unresolved => unresolved += 1,
        }
    }
    assert_eq!(unresolved, 0, "{ctx} commands never answered");
    let organizations = events
        .iter()
        .filter(|e| e.envelope.event.type_name() == "organization_registered")
        .count();
    let organizations_sent = sent
        .iter()
        .filter(|s| {
            s.command == "register_organization" && matches!(s.outcome, Outcome::Acknowledged(_))
        })
        .count();
    assert_eq!(
        organizations, organizations_sent,
        "{ctx} each organization registered once"
    );

    // The read models equal a rebuild from zero.
    let live = pool(database.url()).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    while projected(&live).await < head {
        assert!(
            Instant::now() < deadline,
            "{ctx} projected {} of {head}",
            projected(&live).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The federal topic: every event once, in the log's order. Its publisher runs in the
    // projector's process, beside the read models and at its own pace: it is read before that
    // process is stopped.
    let federal = federal_records(&broker.address, &federal_topic, events.len()).await;
    let in_order: Vec<String> = events
        .iter()
        .map(|e| e.envelope.event_id.to_string())
        .collect();
    assert_eq!(
        federal, in_order,
        "{ctx} the federal topic is the log, in order"
    );
    projector.kill();
    for w in &mut writers {
        w.kill();
    }
    let rebuilt = PgDatabase::create().await;
    let mut args: Vec<String> = vec!["rebuild".into()];
    args.extend(backend(&[]).into_iter().map(|a| {
        if a == database.url() {
            rebuilt.url().to_owned()
        } else {
            a
        }
    }));
    // The learners' keys stay in the region's key store.
    args.extend(["--key-store".into(), database.url().to_owned()]);
    let said = support::run(&args);
    assert!(
        said.contains(&format!("from {head} events")),
        "{ctx} {said}"
    );
    let rebuilt_store = ReadStore::open(ReadDatabase::from(rebuilt.url()), &all_projections())
        .await
        .expect("rebuilt store");
    let live_rows = dump_tables(&live, &tables()).await.expect("live rows");
    let rebuilt_rows = dump_tables(rebuilt_store.pool(), &tables())
        .await
        .expect("rebuilt rows");
    for table in tables() {
        assert!(
            live_rows[table] == rebuilt_rows[table],
            "{ctx} {table} differs from a rebuild from zero"
        );
    }
    rebuilt_store.close().await;
    live.close().await;

    // The chain verifies: every event of the log, nothing broken. A writer killed while its
    // records were on their way leaves the first records of an append outside the log; their
    // first record carries the append's signature, so they are an unfinished append (a note),
    // not damage.
    let keys = dir.path().join("keys").join("writers.json");
    let out = Command::new(support::BIN)
        .args([
            "verify",
            "--kafka",
            &broker.address,
            "--kafka-topic",
            &topic,
        ])
        .arg("--writer-keys")
        .arg(&keys)
        .env("CI", "1")
        .output()
        .expect("verify runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success()
            && said
                .lines()
                .any(|l| l.starts_with(&format!("OK: {head} events")))
            && !said.lines().any(|l| l.starts_with("BROKEN")),
        "{ctx} verify: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unfinished = said.matches("[unfinished_append]").count();
    assert!(
        unfinished == 0 || injected.contains_key("writer killed"),
        "{ctx} unfinished appends, and no writer was killed: {said}"
    );
    if unfinished > 0 {
        eprintln!("{ctx} verify: {unfinished} unfinished appends left by a killed writer");
    }

    let append_faults: usize = (0..2)
        .map(|i| {
            count_in(
                &dir.path().join(format!("writer-{i}.log")),
                "injected fault",
            )
        })
        .sum();
    eprintln!(
        "fault injection {ctx}: {workload_seconds:.0}s, {} commands by {CLIENTS} clients \
         ({retried} retried), {acknowledged} acknowledged, {refused} refused {refusals:?}, \
         0 unresolved; {head} events in the log, 0 lost, 0 duplicated, 0 unacknowledged; \
         faults: {injected:?}, {append_faults} appends failed by injection; read models equal \
         a rebuild; verify OK; federal topic = the log, in order",
        sent.len()
    );
    assert!(
        injected.len() == 3 && append_faults > 0 && refused > 0,
        "{ctx} too few faults to prove anything: {injected:?}, {append_faults} append faults"
    );
}
