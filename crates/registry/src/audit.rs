//! Offline services for auditors and operators: walking the hash chain, and rebuilding the read
//! models from the first event.

use std::path::Path;
use std::sync::Arc;

use contingent_log::{ChainBreak, Checkpoint, EventLog, Finding, WriterKeys};
use contingent_projections::{all_projections, Projection, Projector, ReadDatabase, ReadStore};
use serde::Serialize;

use crate::registry::RegistryError;

/// What an audit of the log found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events whose bytes, position, link and signature were checked and found right.
    pub verified: u64,
    /// The last stored position.
    pub head: u64,
    /// Hash of the last stored event: compare it with a published head.
    pub head_hash: String,
    /// The first damage found, if any (the first of `findings` that is damage).
    pub first_break: Option<ChainBreak>,
    /// Everything found, by position: damage of every kind, and (on Kafka) records of writers
    /// that lost a race, which are not damage.
    pub findings: Vec<Finding>,
    /// Findings left out past the first [`contingent_log::MAX_FINDINGS`].
    pub omitted: u64,
}

impl VerifyReport {
    /// Whether nothing was found but lost races.
    pub fn is_ok(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Audits the whole log from the first event: every stored event's bytes, position and link,
/// that every event lies in a batch signed by one of `keys`, the log's own checkpoints and the
/// `against` checkpoints an auditor kept (a log that ends before one, or differs at one, is
/// truncated or rewritten), and the backend's indexes against the hashed bytes.
pub async fn verify(
    log: &dyn EventLog,
    keys: &WriterKeys,
    against: &[Checkpoint],
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, RegistryError> {
    let outcome = contingent_log::audit(log, keys, against, &mut progress).await?;
    let first_break = outcome
        .findings
        .iter()
        .find(|f| f.kind.is_damage())
        .map(|f| ChainBreak {
            position: f.position,
            problem: format!("{}: {}", kind_name(f), f.problem),
        });
    Ok(VerifyReport {
        verified: outcome.verified,
        head: outcome.head,
        head_hash: outcome.head_hash.to_hex(),
        first_break,
        findings: outcome.findings,
        omitted: outcome.omitted,
    })
}

/// The kind of a finding as its stable name (`changed`, `unsigned`, ...).
pub fn kind_name(f: &Finding) -> String {
    serde_json::to_value(f.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Rebuilds read models from the first event of the log. With `only`, those models are dropped
/// and rebuilt in place in `read`; without, every model is rebuilt: for SQLite a fresh database
/// is built beside the file (without a WAL: [`ReadStore::open_fresh`]) and then replaces it,
/// for PostgreSQL every model is dropped and rebuilt in place. Returns the number of events
/// applied.
pub async fn rebuild(
    log: &Arc<dyn EventLog>,
    read: impl Into<ReadDatabase>,
    only: Option<&[String]>,
    batch: usize,
    progress: impl FnMut(u64),
) -> Result<u64, RegistryError> {
    let read = read.into();
    let projections = all_projections();
    if let Some(names) = only {
        for name in names {
            if !projections.iter().any(|p| p.name() == name) {
                return Err(RegistryError::Unavailable(format!(
                    "no read model is called {name}"
                )));
            }
        }
    }
    match (only, &read) {
        (None, ReadDatabase::Sqlite(read_path)) => {
            let fresh = read_path.with_extension("rebuild.db");
            remove_database(&fresh)?;
            let store = ReadStore::open_fresh(&fresh, &projections).await?;
            let n = bulk_load(&store, projections, log, batch, progress).await?;
            store.close().await;
            ReadStore::finish_fresh(&fresh)?;
            remove_database(read_path)?;
            std::fs::rename(&fresh, read_path).map_err(|e| {
                RegistryError::Unavailable(format!("cannot replace {}: {e}", read_path.display()))
            })?;
            Ok(n)
        }
        (only, _) => {
            let store = ReadStore::open(read.clone(), &projections).await?;
            for p in projections
                .iter()
                .filter(|p| only.is_none_or(|names| names.iter().any(|n| n == p.name())))
            {
                store.reset(p.as_ref()).await?;
            }
            let n = if only.is_none() {
                bulk_load(&store, projections, log, batch, progress).await?
            } else {
                catch_up(&store, projections, log, batch, progress).await?
            };
            store.close().await;
            Ok(n)
        }
    }
}

/// Fills every read model of an empty store from the log, without the tables' secondary indexes
/// (and on PostgreSQL the append-only tables' keys) until the end: building an index once is
/// cheaper than keeping it current row by row. On PostgreSQL the tables are then vacuumed and
/// analyzed ([`ReadStore::vacuum_analyze`]), so that they answer at full speed at once.
async fn bulk_load(
    store: &ReadStore,
    projections: Vec<Box<dyn Projection>>,
    log: &Arc<dyn EventLog>,
    batch: usize,
    progress: impl FnMut(u64),
) -> Result<u64, RegistryError> {
    let tables = store.defer_for_bulk_load(&projections).await?;
    let n = catch_up(store, projections, log, batch, progress).await?;
    store.restore_indexes().await?;
    store.vacuum_analyze(&tables).await?;
    Ok(n)
}

async fn catch_up(
    store: &ReadStore,
    projections: Vec<Box<dyn Projection>>,
    log: &Arc<dyn EventLog>,
    batch: usize,
    progress: impl FnMut(u64),
) -> Result<u64, RegistryError> {
    let mut projector = Projector::new(store.clone(), projections, batch)
        .await
        .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
    projector
        .catch_up(log, progress)
        .await
        .map_err(|e| RegistryError::Unavailable(e.to_string()))
}

/// Removes a SQLite database with its WAL and shared-memory files.
fn remove_database(path: &Path) -> Result<(), RegistryError> {
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(RegistryError::Unavailable(format!(
                    "cannot remove {}: {e}",
                    file.display()
                )))
            }
        }
    }
    Ok(())
}

/// One run of the background audit.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyRun {
    /// When it started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When it ended; none while it runs.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// What it found, once it ended.
    pub report: Option<VerifyReport>,
    /// Why it could not finish (the log could not be read).
    pub error: Option<String>,
}

/// The background audit: at most one run at a time, and the last one's result.
#[derive(Debug, Default)]
pub struct VerifyJob {
    state: std::sync::Mutex<VerifyJobState>,
    finished: tokio::sync::Notify,
}

/// What the background audit is doing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyJobState {
    /// The run under way, if any.
    pub running: Option<VerifyRun>,
    /// The last run that ended.
    pub last: Option<VerifyRun>,
}

impl VerifyJob {
    /// Its state now.
    pub fn state(&self) -> VerifyJobState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Starts a run over `log` unless one is under way; returns the state.
    pub fn start(
        self: &std::sync::Arc<Self>,
        log: std::sync::Arc<dyn EventLog>,
        keys_path: std::path::PathBuf,
    ) -> VerifyJobState {
        let started_at = chrono::Utc::now();
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.running.is_some() {
                return state.clone();
            }
            state.running = Some(VerifyRun {
                started_at,
                finished_at: None,
                report: None,
                error: None,
            });
        }
        let job = self.clone();
        tokio::spawn(async move {
            let outcome = match WriterKeys::load_or_empty(&keys_path) {
                Ok(keys) => verify(&*log, &keys, &[], |_| {})
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let (report, error) = match outcome {
                Ok(report) => (Some(report), None),
                Err(error) => (None, Some(error)),
            };
            let mut state = job.state.lock().unwrap_or_else(|p| p.into_inner());
            state.running = None;
            state.last = Some(VerifyRun {
                started_at,
                finished_at: Some(chrono::Utc::now()),
                report,
                error,
            });
            drop(state);
            job.finished.notify_waiters();
        });
        self.state()
    }

    /// Waits up to `timeout` for the run under way (if any) to end; returns the state.
    pub async fn wait(&self, timeout: std::time::Duration) -> VerifyJobState {
        let finished = self.finished.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        if self.state().running.is_some() {
            let _ = tokio::time::timeout(timeout, finished).await;
        }
        self.state()
    }
}
