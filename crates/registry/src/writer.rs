//! The single writer: decides commands in arrival order against the in-memory state, seals the
//! accepted events into the hash chain, and appends a whole batch of commands in one durable
//! commit (group commit). Callers are answered only after the commit.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::Utc;
use contingent_domain::{decide, learner_of, Command, Event, State};
use contingent_log::{Envelope, EventLog, Head, LogError, Metadata, RecordedEvent};
use tokio::sync::{mpsc, oneshot, watch};

use crate::metrics::Metrics;
use crate::registry::{Receipt, RegistryError};

/// Where the writer sends a command's answer.
pub(crate) type Reply = oneshot::Sender<Result<Receipt, RegistryError>>;

/// A command waiting for the writer.
pub(crate) struct Job {
    pub command: Command,
    /// The caller, whose reach is checked before the rules; none for in-process callers.
    pub principal: Option<contingent_access::Principal>,
    pub meta: Metadata,
    pub reply: Reply,
}

/// What the writer knows: the state, the head of the log, and the idempotency record.
pub(crate) struct WriterState {
    /// Shared with readers that authorize queries; written only by the writer task.
    pub state: Arc<RwLock<State>>,
    pub head: Head,
    pub receipts: HashMap<String, Receipt>,
}

/// The event type each command records, for matching a reused idempotency key.
pub(crate) fn command_of_event(event: &Event) -> &'static str {
    match event {
        Event::OrganizationRegistered(_) => "register_organization",
        Event::ClassOpened(_) => "open_class",
        Event::ClassCapacityChanged(_) => "change_class_capacity",
        Event::TeacherAssigned(_) => "assign_teacher",
        Event::TeacherUnassigned(_) => "unassign_teacher",
        Event::BirthRegistered(_) => "register_birth",
        Event::LearnerRegistered(_) => "register_learner",
        Event::SnilsRecorded(_) => "record_snils",
        Event::DeathRegistered(_) => "register_death",
        Event::GuardianLinked(_) => "link_guardian",
        Event::ApplicationSubmitted(_) => "submit_application",
        Event::ApplicationWithdrawn(_) => "withdraw_application",
        Event::ApplicationRejected(_) => "reject_application",
        Event::Enrolled(_) => "enroll",
        Event::Transferred(_) => "transfer",
        Event::MarkRecorded(_) => "record_mark",
        Event::MarkCorrected(_) => "correct_mark",
        Event::AttendanceRecorded(_) => "record_attendance",
        Event::ExamResultRecorded(_) => "record_exam_result",
        Event::Left(_) => "leave",
    }
}

impl WriterState {
    /// Replays the whole log: the state, the head, and a receipt for every idempotency key.
    pub async fn load(log: &dyn EventLog, mut progress: impl FnMut(u64)) -> Result<Self, LogError> {
        let mut state = State::new();
        let mut head = Head::EMPTY;
        let mut receipts: HashMap<String, Receipt> = HashMap::new();
        loop {
            let batch = log.read_after(head.position, 10_000).await?;
            if batch.is_empty() {
                break;
            }
            for event in &batch {
                absorb(&mut state, &mut head, &mut receipts, event);
            }
            progress(head.position);
        }
        Ok(WriterState {
            state: Arc::new(RwLock::new(state)),
            head,
            receipts,
        })
    }

    /// Applies what other writers appended to the log since this writer's head (a log shared
    /// by several processes). Returns how many events were read.
    async fn follow(&mut self, log: &dyn EventLog) -> Result<u64, LogError> {
        let mut read = 0u64;
        loop {
            let batch = log.read_after(self.head.position, 10_000).await?;
            if batch.is_empty() {
                return Ok(read);
            }
            read += batch.len() as u64;
            let shared = self.state.clone();
            let mut state = write(&shared);
            for event in &batch {
                absorb(&mut state, &mut self.head, &mut self.receipts, event);
            }
        }
    }

    /// Takes the log's word after a failed append: the state, head and receipts of what is
    /// durable, keeping the shared state's identity for its readers.
    async fn reload(&mut self, log: &dyn EventLog) -> Result<(), LogError> {
        let fresh = WriterState::load(log, |_| {}).await?;
        let state = std::mem::take(&mut *write(&fresh.state));
        *write(&self.state) = state;
        self.head = fresh.head;
        self.receipts = fresh.receipts;
        Ok(())
    }
}

/// Advances the state, the head and the idempotency record by one event of the log.
fn absorb(
    state: &mut State,
    head: &mut Head,
    receipts: &mut HashMap<String, Receipt>,
    event: &RecordedEvent,
) {
    state.apply(&event.envelope.event);
    *head = Head {
        position: event.position(),
        hash: event.hash,
    };
    if let Some(key) = &event.envelope.idempotency_key {
        let receipt = receipts.entry(key.clone()).or_insert_with(|| Receipt {
            command: command_of_event(&event.envelope.event),
            learner_id: event.envelope.learner_id,
            events: Vec::new(),
            replayed: true,
        });
        receipt.events.push(crate::registry::receipt_event(event));
    }
}

/// Locks the shared state for writing, recovering from a poisoned lock (the state itself is
/// only ever replaced whole or advanced by `State::apply`, which does not panic).
pub(crate) fn write(state: &RwLock<State>) -> std::sync::RwLockWriteGuard<'_, State> {
    state
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks the shared state for reading.
pub(crate) fn read(state: &RwLock<State>) -> std::sync::RwLockReadGuard<'_, State> {
    state
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many times a batch is decided again after other writers took its positions.
const CONFLICT_RETRIES: usize = 5;

/// How the writer runs.
pub(crate) struct WriterOptions {
    pub max_batch: usize,
    /// The log is shared with other writers: read what they appended before deciding (at most
    /// every `follow_interval` under load, and always after losing a race), and every
    /// `follow_interval` while idle.
    pub follow: bool,
    pub follow_interval: std::time::Duration,
}

/// Runs the writer until every sender is dropped.
pub(crate) async fn run(
    log: Arc<dyn EventLog>,
    mut me: WriterState,
    mut jobs: mpsc::Receiver<Job>,
    head_tx: watch::Sender<u64>,
    metrics: Arc<Metrics>,
    options: WriterOptions,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(options.max_batch);
    let mut tick = tokio::time::interval(options.follow_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_follow = std::time::Instant::now();
    loop {
        let first = if options.follow {
            tokio::select! {
                job = jobs.recv() => job,
                _ = tick.tick() => {
                    follow(&*log, &mut me, &head_tx, &metrics).await;
                    last_follow = std::time::Instant::now();
                    continue;
                }
            }
        } else {
            jobs.recv().await
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < options.max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut attempt = 0;
        let answers = loop {
            // Under load, read what other writers appended at most every `follow_interval` (and
            // always after losing a race): a region sends its commands to one process, so this
            // is mostly a round trip to the broker that finds nothing, and an append that
            // another writer got ahead of fails with a conflict and is decided again anyway.
            if options.follow && (attempt > 0 || last_follow.elapsed() >= options.follow_interval) {
                follow(&*log, &mut me, &head_tx, &metrics).await;
                last_follow = std::time::Instant::now();
            }
            match commit(&*log, &mut me, &batch, &metrics).await {
                Committed::Done(answers) => break answers,
                Committed::Failed { answers, conflict } => {
                    // Nothing of the batch is durable: take the log's word (what this writer
                    // decided is in its state, so the state is replayed from the log).
                    if let Err(reload) = me.reload(&*log).await {
                        tracing::error!(%reload, "reloading the writer's state failed");
                    }
                    attempt += 1;
                    if conflict && attempt <= CONFLICT_RETRIES {
                        metrics.append_conflicts.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            attempt,
                            "another writer took the batch's positions; deciding it again"
                        );
                        continue;
                    }
                    break answers;
                }
            }
        };
        metrics.log_head.store(me.head.position, Ordering::Relaxed);
        let _ = head_tx.send(me.head.position);
        for (job, answer) in batch.drain(..).zip(answers) {
            let _ = job.reply.send(answer);
        }
    }
}

/// Reads what other writers appended; failures are logged and retried on the next tick (the
/// append that follows would fail with a conflict and read again).
async fn follow(
    log: &dyn EventLog,
    me: &mut WriterState,
    head_tx: &watch::Sender<u64>,
    metrics: &Metrics,
) {
    match me.follow(log).await {
        Ok(0) => {}
        Ok(_) => {
            metrics.log_head.store(me.head.position, Ordering::Relaxed);
            let _ = head_tx.send(me.head.position);
        }
        Err(error) => tracing::warn!(%error, "reading the shared log failed"),
    }
}

enum Committed {
    /// The batch's events are durable (or it had none); one answer per job.
    Done(Vec<Result<Receipt, RegistryError>>),
    /// The append failed: nothing is durable, and the writer's state is ahead of the log.
    Failed {
        answers: Vec<Result<Receipt, RegistryError>>,
        /// Another writer's events took the positions first (deciding again may succeed).
        conflict: bool,
    },
}

/// Decides every job of the batch in order against the state, then appends all their events in
/// one durable commit.
async fn commit(
    log: &dyn EventLog,
    me: &mut WriterState,
    batch: &[Job],
    metrics: &Metrics,
) -> Committed {
    let now = Utc::now();
    let today = now.date_naive();
    let mut sealed: Vec<RecordedEvent> = Vec::new();
    let mut answers: Vec<Result<Receipt, RegistryError>> = Vec::with_capacity(batch.len());
    {
        let shared = me.state.clone();
        let mut state = write(&shared);
        for job in batch {
            let answer = decide_one(&mut state, me, job, today, now, &mut sealed, metrics);
            if let (Ok(receipt), Some(key)) = (&answer, &job.meta.idempotency_key) {
                if !receipt.replayed {
                    me.receipts.insert(
                        key.clone(),
                        Receipt {
                            replayed: true,
                            ..receipt.clone()
                        },
                    );
                }
            }
            answers.push(answer);
        }
    }
    if sealed.is_empty() {
        return Committed::Done(answers);
    }
    let started = Instant::now();
    let appended = log.append(&sealed).await;
    metrics
        .append_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    match appended {
        Ok(()) => {
            metrics.group_commits.fetch_add(1, Ordering::Relaxed);
            metrics
                .events_appended
                .fetch_add(sealed.len() as u64, Ordering::Relaxed);
            Committed::Done(answers)
        }
        Err(error) => {
            let conflict = matches!(error, LogError::Conflict(_));
            let message = match error {
                LogError::Conflict(position) => {
                    format!("another writer appended at position {position} first; try again")
                }
                other => {
                    tracing::error!(error = %other, "append failed");
                    other.to_string()
                }
            };
            for answer in answers.iter_mut() {
                if matches!(answer, Ok(r) if !r.events.is_empty()) {
                    *answer = Err(RegistryError::Unavailable(message.clone()));
                }
            }
            Committed::Failed { answers, conflict }
        }
    }
}

fn decide_one(
    state: &mut State,
    me: &mut WriterState,
    job: &Job,
    today: chrono::NaiveDate,
    now: chrono::DateTime<Utc>,
    sealed: &mut Vec<RecordedEvent>,
    metrics: &Metrics,
) -> Result<Receipt, RegistryError> {
    if let Some(principal) = &job.principal {
        if let Err(denied) = contingent_access::authorize_command(state, principal, &job.command) {
            metrics.refused("forbidden");
            return Err(RegistryError::Forbidden(denied.0));
        }
    }
    if let Some(key) = &job.meta.idempotency_key {
        if let Some(previous) = me.receipts.get(key) {
            if previous.command != job.command.name() {
                return Err(RegistryError::IdempotencyKeyReused {
                    key: key.clone(),
                    command: previous.command,
                });
            }
            metrics.commands_replayed.fetch_add(1, Ordering::Relaxed);
            return Ok(previous.clone());
        }
    }
    let events = match decide(state, &job.command, today) {
        Ok(events) => events,
        Err(e) => {
            metrics.refused(e.code());
            return Err(RegistryError::Refused(e));
        }
    };
    metrics.commands_accepted.fetch_add(1, Ordering::Relaxed);
    if events.is_empty() {
        // The same fact is already recorded: answer with what it is about, record nothing.
        return Ok(Receipt {
            command: job.command.name(),
            learner_id: learner_of(state, &job.command),
            events: Vec::new(),
            replayed: true,
        });
    }
    let new = Envelope::seal_all(events, &job.meta, me.head.position + 1, me.head.hash, now)
        .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
    let mut receipt = Receipt {
        command: job.command.name(),
        learner_id: None,
        events: Vec::with_capacity(new.len()),
        replayed: false,
    };
    for event in &new {
        state.apply(&event.envelope.event);
        me.head = Head {
            position: event.position(),
            hash: event.hash,
        };
        receipt.events.push(crate::registry::receipt_event(event));
    }
    receipt.learner_id = new.first().and_then(|e| e.envelope.learner_id);
    sealed.extend(new);
    Ok(receipt)
}
