//! The writer's group commits when the log fails: an append that fails (a storage fault) or
//! loses a race (`Conflict`) while the next batch is already decided on top of it. Whatever
//! happens, every acknowledged command is in the log at the position it was told, nothing
//! unacknowledged is, the chain has no gap, and the writer's state is the log's.
//!
//! The log here wraps the real embedded log and injects the failures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use contingent_domain::{
    Command, LearnerId, Level, OrganizationId, OrganizationKind, OrganizationRegistered, Text,
};
use contingent_log::{EventLog, Head, LogError, Metadata, RawEvent, RecordedEvent, Source};
use contingent_log_sqlite::SqliteLog;
use contingent_projections::{all_projections, ReadStore};
use contingent_registry::{Registry, RegistryError, Settings};

/// The embedded log, failing every `every`-th append before writing anything.
struct FailingLog {
    inner: SqliteLog,
    appends: AtomicUsize,
    failed: AtomicUsize,
    every: usize,
    conflict: bool,
}

#[async_trait]
impl EventLog for FailingLog {
    async fn append(&self, events: &[RecordedEvent]) -> Result<(), LogError> {
        let n = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
        if n.is_multiple_of(self.every) {
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
        self.inner.read_after(after, limit).await
    }
    async fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<RawEvent>, LogError> {
        self.inner.read_raw_after(after, limit).await
    }
    async fn read_learner(&self, learner: LearnerId) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_learner(learner).await
    }
    async fn head(&self) -> Result<Head, LogError> {
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
    }
}

async fn drive(conflict: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings::new(dir.path());
    // Small group commits: many appends, so many of them fail.
    settings.max_batch = 16;
    let inner = SqliteLog::open(&settings.log_path()).await.expect("log");
    let log = Arc::new(FailingLog {
        inner: inner.clone(),
        appends: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        every: 7,
        conflict,
    });
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
    assert_eq!(
        registry.read_state(|s| s.counts()[0]),
        in_log.len(),
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
