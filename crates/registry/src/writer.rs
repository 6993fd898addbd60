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
                state.apply(&event.envelope.event);
                head = Head {
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
            progress(head.position);
        }
        Ok(WriterState {
            state: Arc::new(RwLock::new(state)),
            head,
            receipts,
        })
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

/// Runs the writer until every sender is dropped.
pub(crate) async fn run(
    log: Arc<dyn EventLog>,
    mut me: WriterState,
    mut jobs: mpsc::Receiver<Job>,
    head_tx: watch::Sender<u64>,
    metrics: Arc<Metrics>,
    max_batch: usize,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while let Some(first) = jobs.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let now = Utc::now();
        let today = now.date_naive();
        let mut sealed: Vec<RecordedEvent> = Vec::new();
        let mut answers: Vec<(Reply, Result<Receipt, RegistryError>)> =
            Vec::with_capacity(batch.len());
        let mut new_keys: Vec<String> = Vec::new();
        {
            let shared = me.state.clone();
            let mut state = write(&shared);
            for job in batch.drain(..) {
                let answer =
                    decide_one(&mut state, &mut me, &job, today, now, &mut sealed, &metrics);
                if let (Ok(receipt), Some(key)) = (&answer, &job.meta.idempotency_key) {
                    if !receipt.replayed {
                        me.receipts.insert(
                            key.clone(),
                            Receipt {
                                replayed: true,
                                ..receipt.clone()
                            },
                        );
                        new_keys.push(key.clone());
                    }
                }
                answers.push((job.reply, answer));
            }
        }
        if !sealed.is_empty() {
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
                    metrics.log_head.store(me.head.position, Ordering::Relaxed);
                    let _ = head_tx.send(me.head.position);
                }
                Err(error) => {
                    tracing::error!(%error, "append failed; reloading the writer's state from the log");
                    // Nothing of this batch is durable: forget it and take the log's word.
                    if let Err(reload) = me.reload(&*log).await {
                        tracing::error!(%reload, "reloading the writer's state failed");
                    }
                    let message = error.to_string();
                    for (_, answer) in answers.iter_mut() {
                        if matches!(answer, Ok(r) if !r.events.is_empty()) {
                            *answer = Err(RegistryError::Unavailable(message.clone()));
                        }
                    }
                    for key in new_keys.drain(..) {
                        me.receipts.remove(&key);
                    }
                }
            }
        }
        for (reply, answer) in answers {
            let _ = reply.send(answer);
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
