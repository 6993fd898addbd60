//! The writer's group commits when the log fails: an append that fails (a storage fault) or
//! loses a race (`Conflict`) while the next batch is already decided on top of it. Whatever
//! happens, every acknowledged command is in the log at the position it was told, nothing
//! unacknowledged is, the chain has no gap, and the writer's state is the log's.
//!
//! The log here wraps the real embedded log and injects the failures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use contingent_domain::{
    evolve, Command, LearnerId, Level, OrganizationId, OrganizationKind, OrganizationRegistered,
    State, Text,
};
use contingent_log::{EventLog, Head, LogError, Metadata, RawEvent, RecordedEvent, Source};
use contingent_log_sqlite::SqliteLog;
use contingent_projections::{all_projections, ReadStore};
use contingent_registry::{Registry, RegistryError, Settings};

/// The embedded log, failing every `every`-th append (and the first `fail_first`) before
/// writing anything, and every read while `reads_fail` is set.
struct FailingLog {
    inner: SqliteLog,
    appends: AtomicUsize,
    failed: AtomicUsize,
    every: usize,
    conflict: bool,
    fail_first: usize,
    reads_fail: AtomicBool,
    /// Fails the next append, once.
    fail_next: AtomicBool,
    /// The lowest position read after, and how many events were read.
    lowest_read: AtomicU64,
    events_read: AtomicUsize,
}

impl FailingLog {
    fn new(inner: SqliteLog, every: usize, conflict: bool, fail_first: usize) -> Self {
        Self {
            inner,
            appends: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            every,
            conflict,
            fail_first,
            reads_fail: AtomicBool::new(false),
            fail_next: AtomicBool::new(false),
            lowest_read: AtomicU64::new(u64::MAX),
            events_read: AtomicUsize::new(0),
        }
    }

    /// Starts counting reads afresh.
    fn watch_reads(&self) {
        self.lowest_read.store(u64::MAX, Ordering::SeqCst);
        self.events_read.store(0, Ordering::SeqCst);
    }

    fn read_fault(&self) -> Result<(), LogError> {
        if self.reads_fail.load(Ordering::SeqCst) {
            Err(LogError::Storage("injected read fault".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl EventLog for FailingLog {
    async fn append(&self, events: &[RecordedEvent]) -> Result<(), LogError> {
        let n = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
        let once = self.fail_next.swap(false, Ordering::SeqCst);
        if n.is_multiple_of(self.every) || n <= self.fail_first || once {
            self.failed.fetch_add(1, Ordering::SeqCst);
            let first = events.first().map_or(0, RecordedEvent::position);
            return Err(if self.conflict {
                LogError::Conflict(first)
            } else {
                LogError::Storage("injected fault".into())
            });
        }
        self.inner.append(events).await
    }
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.read_fault()?;
        self.lowest_read.fetch_min(after, Ordering::SeqCst);
        let events = self.inner.read_after(after, limit).await?;
        self.events_read.fetch_add(events.len(), Ordering::SeqCst);
        Ok(events)
    }
    async fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<RawEvent>, LogError> {
        self.inner.read_raw_after(after, limit).await
    }
    async fn read_learner(&self, learner: LearnerId) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_learner(learner).await
    }
    async fn head(&self) -> Result<Head, LogError> {
        self.read_fault()?;
        self.inner.head().await
    }
}

fn organization(i: usize) -> Command {
    Command::RegisterOrganization(OrganizationRegistered {
        organization_id: OrganizationId::generate(),
        name: Text::parse(&format!("Школа № {i}")).expect("text"),
        municipality: Text::parse("Барнаул").expect("text"),
        kind: OrganizationKind::School,
        levels: vec![Level::General],
    })
}

fn meta() -> Metadata {
    Metadata {
        source: Source {
            kind: contingent_domain::SourceKind::Region,
            id: "tests".into(),
        },
        actor: "writer-test".into(),
        idempotency_key: None,
        request_fingerprint: None,
    }
}

async fn drive(conflict: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings::new(dir.path());
    // Small group commits: many appends, so many of them fail.
    settings.max_batch = 16;
    let inner = SqliteLog::open(&settings.log_path()).await.expect("log");
    let log = Arc::new(FailingLog::new(inner.clone(), 7, conflict, 0));
    let read = ReadStore::open(&settings.read_path(), &all_projections())
        .await
        .expect("read store");
    let registry = Arc::new(
        Registry::start(settings, log.clone(), read, |_| {})
            .await
            .expect("registry"),
    );

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..3_000 {
        let registry = registry.clone();
        tasks.spawn(async move { registry.submit(organization(i), meta()).await });
    }
    let mut acknowledged: BTreeMap<u64, uuid::Uuid> = BTreeMap::new();
    let mut unavailable = 0;
    while let Some(done) = tasks.join_next().await {
        match done.expect("task") {
            Ok(receipt) => {
                for event in receipt.events {
                    assert!(
                        acknowledged
                            .insert(event.position, event.event_id)
                            .is_none(),
                        "position {} acknowledged twice",
                        event.position
                    );
                }
            }
            Err(RegistryError::Unavailable(_)) => unavailable += 1,
            Err(other) => panic!("unexpected answer: {other}"),
        }
    }
    assert!(
        log.failed.load(Ordering::SeqCst) > 0,
        "no append failed: the test would prove nothing"
    );

    let stored = inner.read_after(0, 100_000).await.expect("log");
    let in_log: BTreeMap<u64, uuid::Uuid> = stored
        .iter()
        .map(|e| (e.position(), e.envelope.event_id))
        .collect();
    assert_eq!(
        in_log, acknowledged,
        "the log holds exactly what was acknowledged"
    );
    assert_eq!(
        in_log.keys().copied().collect::<Vec<_>>(),
        (1..=in_log.len() as u64).collect::<Vec<_>>(),
        "no gap"
    );
    assert_eq!(acknowledged.len() + unavailable, 3_000);
    let folded = stored
        .iter()
        .fold(State::new(), |s, e| evolve(s, &e.envelope.event));
    assert!(
        registry.read_state(|s| s == &folded),
        "the writer's state is the log's"
    );
    assert_eq!(registry.head(), in_log.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_append_under_load_loses_nothing_acknowledged_and_records_nothing_else() {
    drive(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_race_under_load_is_decided_again_and_loses_nothing_acknowledged() {
    drive(true).await;
}

/// A registry writing to `log`, without its projector: these tests count what the writer
/// alone reads from the log.
async fn started(log: Arc<FailingLog>, dir: &tempfile::TempDir) -> Registry {
    let mut settings = Settings::new(dir.path());
    settings.project = false;
    let read = ReadStore::open(&settings.read_path(), &all_projections())
        .await
        .expect("read store");
    Registry::start(settings, log, read, |_| {})
        .await
        .expect("registry")
}

/// An answer decided on top of a batch that never became durable is not given: not the
/// acceptance, and not a refusal or an "already recorded" that rests on it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_rests_on_a_batch_that_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = SqliteLog::open(&dir.path().join("log.db"))
        .await
        .expect("log");
    // Every append fails: nothing is ever durable.
    let log = Arc::new(FailingLog::new(
        inner.clone(),
        usize::MAX,
        false,
        usize::MAX,
    ));
    let registry = Arc::new(started(log.clone(), &dir).await);
    let register = organization(1);
    // The same organization many times at once: all but one answer rest on the first.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (registry, register) = (registry.clone(), register.clone());
        tasks.spawn(async move { registry.submit(register, meta()).await });
    }
    while let Some(done) = tasks.join_next().await {
        let answer = done.expect("task");
        assert!(
            matches!(answer, Err(RegistryError::Unavailable(_))),
            "nothing is durable, so no answer but unavailable is true: {answer:?}"
        );
    }
    assert!(log.failed.load(Ordering::SeqCst) >= 2, "appends failed");
    assert!(inner.read_after(0, 10).await.expect("log").is_empty());
    assert_eq!(
        registry.read_state(|s| s.counts()[0]),
        0,
        "the state is the log's"
    );
}

/// When the writer cannot read the log after a failed append, it cannot know whether the append
/// left anything there: it refuses commands (and says why) until it can read the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_cannot_read_the_log_back_refuses_commands_until_it_can() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = SqliteLog::open(&dir.path().join("log.db"))
        .await
        .expect("log");
    let log = Arc::new(FailingLog::new(inner.clone(), usize::MAX, false, 1));
    let registry = started(log.clone(), &dir).await;
    log.reads_fail.store(true, Ordering::SeqCst);
    let first = registry.submit(organization(1), meta()).await;
    assert!(
        matches!(first, Err(RegistryError::Unavailable(_))),
        "{first:?}"
    );
    let fault = registry
        .writer_fault()
        .expect("the writer says why it refuses");
    assert!(fault.contains("cannot read the log"), "{fault}");
    let second = registry.submit(organization(2), meta()).await;
    assert!(
        matches!(second, Err(RegistryError::Unavailable(_))),
        "nothing is decided before the log is read: {second:?}"
    );
    assert!(inner.read_after(0, 10).await.expect("log").is_empty());

    log.reads_fail.store(false, Ordering::SeqCst);
    let third = registry
        .submit(organization(3), meta())
        .await
        .expect("decided again once the log reads back");
    assert_eq!(
        third.events[0].position, 1,
        "on the log's state, not ahead of it"
    );
    assert!(registry.writer_fault().is_none());
    let stored = inner.read_after(0, 10).await.expect("log");
    assert_eq!(stored.len(), 1);
    assert_eq!(registry.read_state(|s| s.counts()[0]), 1);
}

/// After a failed append the writer takes its batches back without replaying the log: it reads
/// nothing before its durable head, however long the log, and its state is the log's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_append_is_taken_back_without_reading_the_log_from_its_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = SqliteLog::open(&dir.path().join("log.db"))
        .await
        .expect("log");
    let log = Arc::new(FailingLog::new(inner.clone(), usize::MAX, false, 0));
    let registry = Arc::new(started(log.clone(), &dir).await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..2_000 {
        let registry = registry.clone();
        tasks.spawn(async move { registry.submit(organization(i), meta()).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("recorded");
    }
    let durable = registry.head();
    assert_eq!(durable, 2_000);

    log.watch_reads();
    log.fail_next.store(true, Ordering::SeqCst);
    // The batch is taken back, then decided again and appended once more.
    let retried = registry
        .submit(organization(2_001), meta())
        .await
        .expect("decided again after the take-back");
    assert_eq!(retried.events[0].position, durable + 1);
    assert_eq!(log.failed.load(Ordering::SeqCst), 1, "one append failed");
    assert!(
        log.lowest_read.load(Ordering::SeqCst) >= durable,
        "the log was read from position {} on: a replay, not a take-back",
        log.lowest_read.load(Ordering::SeqCst) + 1
    );
    assert_eq!(
        log.events_read.load(Ordering::SeqCst),
        0,
        "nothing new to read"
    );
    let durable = registry.head();
    let stored = inner.read_after(0, 10_000).await.expect("log");
    let folded = stored
        .iter()
        .fold(State::new(), |s, e| evolve(s, &e.envelope.event));
    assert!(
        registry.read_state(|s| s == &folded),
        "the state is the log's again"
    );
    let next = registry
        .submit(organization(2_002), meta())
        .await
        .expect("decided on the durable state");
    assert_eq!(next.events[0].position, durable + 1);
    let metrics = registry.metrics().render();
    assert!(
        metrics.contains("contingent_writer_take_backs_total 1"),
        "{metrics}"
    );
}

/// A second writer of the same log on the same data directory is refused at start: it would
/// empty and refill the first one's idempotency record and mark book under its feet (a retried
/// key answered by neither, and recorded twice). Once the first stops, it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Registry::open(Settings::new(dir.path()), |_| {})
        .await
        .expect("the first writer");
    let second = Registry::open(Settings::new(dir.path()), |_| {}).await;
    match second {
        Err(RegistryError::Unavailable(why)) => {
            assert!(
                why.contains("give each serve process a data directory of its own"),
                "{why}"
            )
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("two writers on one data directory"),
    }
    first.shutdown().await;
    let again = Registry::open(Settings::new(dir.path()), |_| {})
        .await
        .expect("the directory is free again");
    again.shutdown().await;
}
