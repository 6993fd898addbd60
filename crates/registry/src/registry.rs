//! The registry service: opening, submitting commands, and reading the log.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use contingent_access::{authorize_read, Denied, Principal, Read};
use contingent_domain::{Command, DomainError, LearnerId, State};
use contingent_log::{
    Checkpoint, EventLog, KeyStatus, LogError, Metadata, RecordedEvent, WriterKey, WriterKeys,
};
use contingent_log_kafka::KafkaLog;
use contingent_log_sqlite::SqliteLog;
use contingent_projections::{all_projections, Projector, ReadStore};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::journal::{Journal, JournalLocation};
use crate::metrics::Metrics;
use crate::settings::{LogBackend, Settings};
use crate::writer::{self, Job, WriterOptions, WriterState};

/// Why the registry could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A rule of the registry refused the command.
    #[error(transparent)]
    Refused(#[from] DomainError),
    /// The idempotency key was used before for another command.
    #[error("idempotency key {key:?} was already used by this account for another request (a {command} command); send a new request with a new key")]
    IdempotencyKeyReused {
        /// The key.
        key: String,
        /// The command it was used for.
        command: &'static str,
    },
    /// The caller may not issue this command; nothing was recorded.
    #[error("{0}")]
    Forbidden(String),
    /// The log or the read models failed; nothing was recorded.
    #[error("the registry is unavailable: {0}")]
    Unavailable(String),
}

impl From<LogError> for RegistryError {
    fn from(e: LogError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<sqlx::Error> for RegistryError {
    fn from(e: sqlx::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// One appended event, as the caller is told of it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReceiptEvent {
    /// Position in the log.
    pub position: u64,
    /// Event id.
    pub event_id: uuid::Uuid,
    /// Event type.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub event_type: &'static str,
    /// Hash of the stored event.
    pub hash: String,
    /// The event's data, with every id it assigned.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

pub(crate) fn receipt_event(event: &RecordedEvent) -> ReceiptEvent {
    let data = serde_json::to_value(&event.envelope.event)
        .ok()
        .and_then(|mut v| v.get_mut("data").map(serde_json::Value::take))
        .unwrap_or(serde_json::Value::Null);
    ReceiptEvent {
        position: event.position(),
        event_id: event.envelope.event_id,
        event_type: event.envelope.event.type_name(),
        hash: event.hash.to_hex(),
        data,
    }
}

/// The answer to an accepted command.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    /// The command.
    #[schema(value_type = String)]
    pub command: &'static str,
    /// The learner it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub learner_id: Option<LearnerId>,
    /// The events that record it; empty when the same fact was already recorded.
    pub events: Vec<ReceiptEvent>,
    /// True when this answer repeats an earlier one (same idempotency key, or the same civil
    /// registry record reported again): nothing new was recorded.
    pub replayed: bool,
}

impl Receipt {
    /// The position of the last event it recorded.
    pub fn last_position(&self) -> Option<u64> {
        self.events.last().map(|e| e.position)
    }
}

/// The running registry: log, writer, projector and read models.
pub struct Registry {
    settings: Settings,
    log: Arc<dyn EventLog>,
    jobs: mpsc::Sender<Job>,
    head: watch::Receiver<u64>,
    projected: watch::Receiver<u64>,
    read: ReadStore,
    state: Arc<std::sync::RwLock<State>>,
    journal: Journal,
    metrics: Arc<Metrics>,
    verify_job: Arc<crate::audit::VerifyJob>,
    tasks: Vec<JoinHandle<()>>,
    /// Held while the writer runs: its derived files (mark book, idempotency record) are this
    /// process's alone.
    _writer_lock: std::fs::File,
}

impl Registry {
    /// Opens the registry its settings describe (the embedded files in `settings.data_dir` by
    /// default; Kafka and PostgreSQL when set): replays the log into the writer's state, then
    /// starts the writer and, unless another process projects, the projector.
    pub async fn open(
        settings: Settings,
        progress: impl FnMut(u64),
    ) -> Result<Self, RegistryError> {
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
            RegistryError::Unavailable(format!(
                "cannot create {}: {e}",
                settings.data_dir.display()
            ))
        })?;
        let log = open_writer_log(&settings).await?;
        let read = ReadStore::open(settings.read_database(), &all_projections()).await?;
        Self::start(settings, log, read, progress).await
    }

    /// Starts the writer and the projector over an opened log and read store.
    pub async fn start(
        settings: Settings,
        log: Arc<dyn EventLog>,
        read: ReadStore,
        progress: impl FnMut(u64),
    ) -> Result<Self, RegistryError> {
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
            RegistryError::Unavailable(format!("{}: {e}", settings.data_dir.display()))
        })?;
        let writer_lock = lock_writer_files(&settings)?;
        let book = crate::markbook::MarkBook::open(&settings.mark_book_path()).await?;
        let keys = crate::idempotency::KeyRecord::open(
            &settings.idempotency_path(),
            settings.idempotency_window,
        )
        .await?;
        let state =
            WriterState::load(&*log, book, keys, settings.settle_marks_at, progress).await?;
        let metrics = Arc::new(Metrics::default());
        metrics
            .log_head
            .store(state.head.position, Ordering::Relaxed);
        let (head_tx, head) = watch::channel(state.head.position);
        let shared_state = state.state.clone();
        let journal = Journal::open(&journal_location(&settings)).await?;
        let (jobs_tx, jobs_rx) = mpsc::channel(settings.max_batch * 4);
        let writer = tokio::spawn(writer::run(
            log.clone(),
            state,
            jobs_rx,
            head_tx,
            metrics.clone(),
            WriterOptions {
                max_batch: settings.max_batch,
                follow: settings.shared_log(),
                follow_interval: settings.follow_interval,
            },
        ));
        let (projected_tx, projected) = if settings.project {
            let projector =
                Projector::new(read.clone(), all_projections(), settings.projector_batch)
                    .await
                    .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
            let (tx, rx) = watch::channel(projector.position());
            metrics
                .projected_position
                .store(projector.position(), Ordering::Relaxed);
            (
                tokio::spawn(project(
                    log.clone(),
                    projector,
                    head.clone(),
                    tx,
                    metrics.clone(),
                )),
                rx,
            )
        } else {
            let position = projected_position(&read).await?;
            let (tx, rx) = watch::channel(position);
            metrics
                .projected_position
                .store(position, Ordering::Relaxed);
            (
                tokio::spawn(watch_projectors(
                    read.clone(),
                    tx,
                    metrics.clone(),
                    settings.follow_interval,
                )),
                rx,
            )
        };
        let checkpoints = tokio::spawn(publish_checkpoints(
            log.clone(),
            head.clone(),
            settings.checkpoint_interval,
        ));
        Ok(Self {
            settings,
            log,
            jobs: jobs_tx,
            head,
            projected,
            read,
            state: shared_state,
            journal,
            metrics,
            verify_job: Arc::default(),
            tasks: vec![writer, projected_tx, checkpoints],
            _writer_lock: writer_lock,
        })
    }

    /// Decides a command from an in-process caller (the region generator, tests) and, if
    /// accepted, appends its events durably before answering. Callers from outside use
    /// [`Registry::submit_as`].
    pub async fn submit(&self, command: Command, meta: Metadata) -> Result<Receipt, RegistryError> {
        self.send(command, meta, None).await
    }

    /// Checks that `principal` may issue the command, then decides and appends it like
    /// [`Registry::submit`]. A command outside the caller's reach appends nothing.
    pub async fn submit_as(
        &self,
        principal: &Principal,
        command: Command,
        meta: Metadata,
    ) -> Result<Receipt, RegistryError> {
        self.send(command, meta, Some(principal.clone())).await
    }

    async fn send(
        &self,
        command: Command,
        meta: Metadata,
        principal: Option<Principal>,
    ) -> Result<Receipt, RegistryError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                command,
                principal,
                meta,
                reply,
            })
            .await
            .map_err(|_| RegistryError::Unavailable("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| RegistryError::Unavailable("the writer has stopped".into()))?
    }

    /// Whether `principal` may read what `read` names, judged on the writer's current state.
    pub fn authorize_read(&self, principal: &Principal, read: &Read) -> Result<(), Denied> {
        authorize_read(&writer::read(&self.state), principal, read)
    }

    /// Runs `f` over the writer's current state (for in-process callers and tests).
    pub fn read_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&writer::read(&self.state))
    }

    /// The access journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Waits until every read model has applied the log up to `position` (or `timeout` passes);
    /// returns whether it has.
    pub async fn wait_projected(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.projected.clone();
        tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the read models have caught up with everything appended so far.
    pub async fn wait_caught_up(&self, timeout: Duration) -> bool {
        let head = *self.head.borrow();
        self.wait_projected(head, timeout).await
    }

    /// The position of the last event about `learner` (its `learner_id`); none for a learner
    /// the writer does not know. Events about no learner (organizations, classes, capacities,
    /// teachers) do not move it.
    pub fn learner_last_event_at(&self, learner: LearnerId) -> Option<u64> {
        self.read_state(|s| s.learner(learner).map(|l| l.changed_at))
    }

    /// The position of the last event appended (by this writer or, on a shared log, read).
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// Position applied to every read model.
    pub fn projected(&self) -> u64 {
        *self.projected.borrow()
    }

    /// The log.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// The read models.
    pub fn read(&self) -> &ReadStore {
        &self.read
    }

    /// Why the writer refuses commands, if it does: after a failed append it could not read the
    /// log to learn what the append left there (it tries again with every command).
    pub fn writer_fault(&self) -> Option<String> {
        self.metrics.writer_fault()
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A learner's events in log order.
    pub async fn history(&self, learner: LearnerId) -> Result<Vec<RecordedEvent>, RegistryError> {
        Ok(self.log.read_learner(learner).await?)
    }

    /// A page of the log after `after`, for feed subscribers.
    pub async fn feed(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, RegistryError> {
        Ok(self.log.read_after(after, limit).await?)
    }

    /// Audits the whole log (see [`crate::verify`]) against the region's trusted writer keys.
    pub async fn verify(
        &self,
        progress: impl FnMut(u64),
    ) -> Result<crate::VerifyReport, RegistryError> {
        let keys = WriterKeys::load_or_empty(&self.settings.writer_keys_path())
            .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
        crate::audit::verify(&*self.log, &keys, &[], progress).await
    }

    /// Starts the background audit of the whole log unless one runs; at most one runs at a time.
    pub fn start_verify(&self) -> crate::audit::VerifyJobState {
        self.verify_job
            .start(self.log.clone(), self.settings.writer_keys_path())
    }

    /// The background audit: the run under way and the last result.
    pub fn verify_job(&self) -> &crate::audit::VerifyJob {
        &self.verify_job
    }

    /// The signed checkpoints the log holds, in order of position.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, RegistryError> {
        Ok(self.log.checkpoints().await?)
    }

    /// Stops the writer and the projector and closes the databases.
    pub async fn shutdown(self) {
        let Registry {
            jobs,
            tasks,
            read,
            log,
            journal,
            _writer_lock: lock,
            ..
        } = self;
        drop(jobs);
        let mut tasks = tasks.into_iter();
        if let Some(writer) = tasks.next() {
            let _ = writer.await;
        }
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        // The last head this writer reached, signed, for auditors to keep.
        if let Err(error) = log.publish_checkpoint().await {
            tracing::warn!(%error, "signing a checkpoint at shutdown failed");
        }
        read.close().await;
        journal.close().await;
        log.close().await;
        // The writer's files are closed: another writer may have them.
        drop(lock);
    }
}

/// Loads this writer's signing key (creating it on first start) and checks that the region's
/// trusted keys list it as active; with the default key file in the data directory, registers it
/// there first.
pub fn writer_key(settings: &Settings) -> Result<Arc<WriterKey>, RegistryError> {
    let key = WriterKey::load_or_create(&settings.writer_key_path())
        .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
    let path = settings.writer_keys_path();
    let mut keys =
        WriterKeys::load_or_empty(&path).map_err(|e| RegistryError::Unavailable(e.to_string()))?;
    if settings.writer_keys.is_none() && keys.get(key.id()).is_none() {
        keys.register(&key.public());
        keys.save(&path)
            .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
    }
    match keys.get(key.id()) {
        Some(k) if k.status == KeyStatus::Active => Ok(Arc::new(key)),
        _ => Err(RegistryError::Unavailable(format!(
            "the writer key {} (public key {}) is not registered as active in {}: register it \
             there before this process writes",
            key.id(),
            hex_public(&key),
            path.display()
        ))),
    }
}

fn hex_public(key: &WriterKey) -> String {
    key.public()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Rotates this writer's key: the old key is marked retired in the trusted keys (what it signed
/// still verifies), and a new key is made and registered as active. With the writer stopped.
pub fn rotate_writer_key(settings: &Settings) -> Result<String, RegistryError> {
    let unavailable = |e: contingent_log::KeyError| RegistryError::Unavailable(e.to_string());
    let path = settings.writer_key_path();
    let keys_path = settings.writer_keys_path();
    let mut keys = WriterKeys::load_or_empty(&keys_path).map_err(unavailable)?;
    if path.exists() {
        let old = WriterKey::load(&path).map_err(unavailable)?;
        keys.retire(old.id());
        std::fs::remove_file(&path).map_err(|e| {
            RegistryError::Unavailable(format!("cannot remove {}: {e}", path.display()))
        })?;
    }
    let new = WriterKey::load_or_create(&path).map_err(unavailable)?;
    keys.register(&new.public());
    keys.save(&keys_path).map_err(unavailable)?;
    Ok(new.id().to_owned())
}

/// Takes the lock on the writer's derived files in the data directory (`writer.lock`, or
/// `writer-<topic>.lock`): a second writer of the same log on the same directory would empty
/// and refill the idempotency record and the mark book under the first one's feet, so it is
/// refused instead. Released when the process ends, however it ends.
pub(crate) fn lock_writer_files(settings: &Settings) -> Result<std::fs::File, RegistryError> {
    let book = settings.mark_book_path();
    let name = book
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("marks.db")
        .replacen("marks", "writer", 1);
    let path = book.with_file_name(name).with_extension("lock");
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| RegistryError::Unavailable(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(RegistryError::Unavailable(format!(
            "another process runs a writer of this log on the data directory {} ({} is locked): \
             give each serve process a data directory of its own",
            settings.data_dir.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(RegistryError::Unavailable(format!(
            "{}: {e}",
            path.display()
        ))),
    }
}

/// Opens the log of record for this process's writer: appends and checkpoints are signed with
/// its key.
pub async fn open_writer_log(settings: &Settings) -> Result<Arc<dyn EventLog>, RegistryError> {
    let key = writer_key(settings)?;
    let log: Arc<dyn EventLog> = match &settings.log {
        LogBackend::Embedded => Arc::new(
            SqliteLog::open(&settings.log_path())
                .await?
                .with_writer_key(key),
        ),
        LogBackend::Kafka(config) => {
            Arc::new(KafkaLog::open(config.clone()).await?.with_writer_key(key))
        }
    };
    // Faults are injected below the sealing, where a storage fails.
    let log: Arc<dyn EventLog> = match settings.append_faults {
        Some(faults) => Arc::new(crate::faults::FaultyLog::new(log, faults)),
        None => log,
    };
    private(settings, log).await
}

/// The log with its personal fields sealed under the key store the settings name.
async fn private(
    settings: &Settings,
    log: Arc<dyn EventLog>,
) -> Result<Arc<dyn EventLog>, RegistryError> {
    let store = crate::keystore::open_key_store(settings).await?;
    Ok(Arc::new(crate::private_log::PrivateLog::new(
        log,
        Arc::new(store),
    )))
}

/// Opens the log of record the settings name, for reading (appends are not signed), with
/// personal fields opened with the learners' keys.
pub async fn open_log(settings: &Settings) -> Result<Arc<dyn EventLog>, RegistryError> {
    let log = open_stored_log(settings).await?;
    private(settings, log).await
}

/// Opens the log of record as stored, without the key store: sealed personal fields read as
/// erased. For the auditor's walk, which needs no key.
pub async fn open_stored_log(settings: &Settings) -> Result<Arc<dyn EventLog>, RegistryError> {
    Ok(match &settings.log {
        LogBackend::Embedded => Arc::new(SqliteLog::open(&settings.log_path()).await?),
        LogBackend::Kafka(config) => Arc::new(KafkaLog::open(config.clone()).await?),
    })
}

fn journal_location(settings: &Settings) -> JournalLocation {
    match &settings.database {
        Some(url) => JournalLocation::Postgres(url.clone()),
        None => JournalLocation::File(settings.journal_path()),
    }
}

/// The position every read model has reached, as the projectors stored it.
async fn projected_position(read: &ReadStore) -> Result<u64, RegistryError> {
    let stored = read.positions().await?;
    Ok(all_projections()
        .iter()
        .map(|p| stored.get(p.name()).copied().unwrap_or(0))
        .min()
        .unwrap_or(0))
}

/// Follows the positions separate projector processes store, for a process that does not
/// project itself.
async fn watch_projectors(
    read: ReadStore,
    projected: watch::Sender<u64>,
    metrics: Arc<Metrics>,
    interval: Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        match projected_position(&read).await {
            Ok(position) => {
                metrics
                    .projected_position
                    .store(position, Ordering::Relaxed);
                projected.send_if_modified(|p| {
                    let moved = *p != position;
                    *p = position;
                    moved
                });
            }
            Err(error) => tracing::warn!(%error, "reading the projectors' positions failed"),
        }
    }
}

/// Signs and stores a checkpoint every `interval` in which the head moved.
async fn publish_checkpoints(
    log: Arc<dyn EventLog>,
    head: watch::Receiver<u64>,
    interval: Duration,
) {
    let mut published = *head.borrow();
    loop {
        tokio::time::sleep(interval).await;
        let now = *head.borrow();
        if now == published {
            continue;
        }
        match log.publish_checkpoint().await {
            Ok(_) => published = now,
            Err(error) => tracing::warn!(%error, "signing a checkpoint failed"),
        }
    }
}

async fn project(
    log: Arc<dyn EventLog>,
    mut projector: Projector,
    mut head: watch::Receiver<u64>,
    projected: watch::Sender<u64>,
    metrics: Arc<Metrics>,
) {
    // A full batch says the read models are behind (on start, or after a burst): then they catch
    // up pipelined (the log read ahead, a batch committed while the next is applied), each
    // commit made visible as it lands; near the head, one batch at a time.
    let mut behind = false;
    loop {
        let step = if behind {
            behind = false;
            projector
                .catch_up(&log, |position| {
                    metrics
                        .projected_position
                        .store(position, Ordering::Relaxed);
                    let _ = projected.send(position);
                })
                .await
                .map(|n| n as usize)
        } else {
            projector.run_once(&*log).await.inspect(|&n| {
                behind = n >= projector.batch();
            })
        };
        match step {
            Ok(0) => {
                if head.wait_for(|h| *h > projector.position()).await.is_err() {
                    return;
                }
            }
            Ok(n) => {
                metrics
                    .events_projected
                    .fetch_add(n as u64, Ordering::Relaxed);
                metrics
                    .projected_position
                    .store(projector.position(), Ordering::Relaxed);
                let _ = projected.send(projector.position());
            }
            Err(error) => {
                // The batch's transaction rolled back and the positions did not move: retry it.
                tracing::error!(%error, "projector batch failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
