//! The single writer: decides commands in arrival order against the in-memory state, seals the
//! accepted events into the hash chain, and appends a whole batch of commands in one durable
//! commit (group commit). Callers are answered only after the commit.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use contingent_domain::{decide, learner_of, Command, Event, MarkId, Savepoint, State};
use contingent_log::{Envelope, EventLog, Hash, Head, LogError, Metadata, RecordedEvent};
use tokio::sync::{mpsc, oneshot, watch};

use crate::idempotency::{entry_of, gather, KeyEntry, KeyOf, KeyRecord, KeyWriter};
use crate::markbook::MarkBook;
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

/// A keyed command decided but not yet in the idempotency record (its append is under way or
/// its entry not yet written).
pub(crate) struct Pending {
    pub fingerprint: Option<String>,
    pub receipt: Receipt,
}

/// A batch decided and applied to the state but not yet durable: what taking it back needs.
pub(crate) struct Speculative {
    /// The state before the batch.
    savepoint: Savepoint,
    /// The head before the batch.
    head: Head,
    /// The keyed commands it put in `pending`.
    keys: Vec<KeyOf>,
}

/// What the writer knows: the state, the head of the log, the idempotency record, and the
/// marks it settled in its mark book.
pub(crate) struct WriterState {
    /// Shared with readers that authorize queries; written only by the writer task.
    pub state: Arc<RwLock<State>>,
    pub head: Head,
    /// Keyed commands decided since their entries were last written to `keys`.
    pub pending: HashMap<KeyOf, Pending>,
    /// The idempotency record (off the heap, derived from the log).
    pub keys: KeyRecord,
    /// Writes the record's entries off the writer's path.
    pub key_writer: KeyWriter,
    pub book: MarkBook,
    /// Marks held in memory before they are settled in the book.
    pub settle_at: usize,
    /// The batches applied to the state whose append is under way, oldest first (at most two:
    /// one in flight, one decided on top of it). The state, head and pending keys are the
    /// log's once these are taken back.
    pub speculative: Vec<Speculative>,
    /// An append failed and the log could not be read since, so whether it left anything there
    /// is not known: no command is decided until the log has been read.
    pub faulted: bool,
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
        Event::PersonalDataErased(_) => "erase_personal_data",
        // Written by `contingent migrate-log`, never by a command: it carries no key.
        Event::LogMigrated(_) => "migrate_log",
    }
}

impl WriterState {
    /// Replays the whole log: the state, the head, and the idempotency record of the keys
    /// inside its window (emptied and filled again). Marks the book already has are not kept in
    /// memory; others are settled in the book as they accumulate.
    pub async fn load(
        log: &dyn EventLog,
        book: MarkBook,
        keys: KeyRecord,
        settle_at: usize,
        mut progress: impl FnMut(u64),
    ) -> Result<Self, LogError> {
        keys.clear().await?;
        let now = Utc::now();
        let (mut booked, booked_hash) = book.through().await?;
        if booked > 0 {
            let at = log.read_after(booked - 1, 1).await?;
            let same_log = at
                .first()
                .is_some_and(|e| e.position() == booked && e.hash.0.as_slice() == booked_hash);
            if !same_log {
                tracing::info!(
                    booked,
                    "the mark book was made from another log; filling it again"
                );
                book.clear().await?;
                booked = 0;
            }
        }
        let mut state = State::new();
        let mut head = Head::EMPTY;
        let mut entries: HashMap<KeyOf, KeyEntry> = HashMap::new();
        loop {
            let batch = log.read_after(head.position, 10_000).await?;
            if batch.is_empty() {
                break;
            }
            let first = head.position + 1;
            for event in &batch {
                absorb(&mut state, &mut head, &mut entries, event);
            }
            entries.retain(|_, e| {
                keys.remembers(
                    DateTime::from_timestamp(e.recorded_at, 0).unwrap_or_default(),
                    now,
                )
            });
            if !entries.is_empty() {
                keys.insert(&entries).await?;
                entries.clear();
            }
            if first <= booked {
                // The book has every mark changed up to its position.
                drop(state.settle_marks(booked.min(head.position)));
            }
            if head.position > booked && state.counts()[4] >= settle_at {
                let mut marks = state.settle_marks(head.position);
                book.settle(&mut marks, head.position, head.hash).await?;
            }
            progress(head.position);
        }
        Ok(WriterState {
            state: Arc::new(RwLock::new(state)),
            head,
            pending: HashMap::new(),
            key_writer: KeyWriter::spawn(keys.clone()),
            keys,
            book,
            settle_at,
            speculative: Vec::new(),
            faulted: false,
        })
    }

    /// The oldest batch in `speculative` is durable: its changes are kept for good.
    fn landed(&mut self) {
        if self.speculative.is_empty() {
            return;
        }
        self.speculative.remove(0);
        let mut state = write(&self.state);
        match self.speculative.first() {
            Some(next) => state.release(&next.savepoint),
            None => state.release_all(),
        }
    }

    /// Nothing in `speculative` is durable (the oldest batch's append failed, so the one on
    /// top of it cannot land either): takes every such batch back, newest change first, to
    /// the state, head and pending keys of the last durable batch. Costs as much as the batches
    /// taken back, whatever the length of the log.
    fn take_back(&mut self, metrics: &Metrics) {
        let Some(oldest) = self.speculative.first() else {
            return;
        };
        let started = Instant::now();
        {
            let mut state = write(&self.state);
            state.rollback(&oldest.savepoint);
            state.release_all();
        }
        self.head = oldest.head;
        for batch in std::mem::take(&mut self.speculative) {
            for key in batch.keys {
                self.pending.remove(&key);
            }
        }
        metrics.batches_taken_back.fetch_add(1, Ordering::Relaxed);
        let took = started.elapsed().as_micros() as u64;
        metrics.take_back_micros.fetch_add(took, Ordering::Relaxed);
        metrics
            .take_back_max_micros
            .fetch_max(took, Ordering::Relaxed);
    }

    /// After a failed append: takes the batches back, then reads what the log holds past the
    /// durable head (another writer's events after a lost race; after an error, this writer's
    /// own, should they have landed after all). If the log cannot be read, the writer is
    /// faulted: it decides nothing until it can.
    async fn recover(&mut self, log: &dyn EventLog, metrics: &Metrics) -> Result<(), String> {
        self.take_back(metrics);
        match self.follow(log).await {
            Ok(_) => {
                if self.faulted {
                    self.faulted = false;
                    metrics.set_writer_fault(None);
                    tracing::info!("the writer has read the log again; deciding commands");
                }
                Ok(())
            }
            Err(error) => {
                let fault = format!(
                    "the writer cannot read the log to learn what a failed append left: {error}"
                );
                tracing::error!(%fault, "refusing commands until the log can be read");
                self.faulted = true;
                metrics.set_writer_fault(Some(fault.clone()));
                Err(fault)
            }
        }
    }

    /// Settles the marks held in memory that are durable (changed at or before `through`, whose
    /// hash is `hash`) in the book, once there are many. On failure they stay in memory.
    async fn settle(&self, through: u64, hash: Hash) {
        if self.faulted || read(&self.state).counts()[4] < self.settle_at {
            return;
        }
        let mut marks = write(&self.state).settle_marks(through);
        if marks.is_empty() {
            return;
        }
        if let Err(error) = self.book.settle(&mut marks, through, hash).await {
            tracing::error!(%error, "settling marks in the mark book failed; keeping them in memory");
            let mut state = write(&self.state);
            for (id, mark) in marks {
                state.recall_mark(id, mark);
            }
        }
    }

    /// Brings back from the book the marks that `batch` names and the state does not hold.
    async fn recall_marks(&self, batch: &[Job]) -> Result<(), LogError> {
        let missing: Vec<MarkId> = {
            let state = read(&self.state);
            batch
                .iter()
                .filter_map(|job| match &job.command {
                    Command::RecordMark(c) => Some(c.mark_id),
                    Command::CorrectMark(c) => Some(c.mark_id),
                    _ => None,
                })
                // Unknown here, or held as a correction without what it was recorded for.
                .filter(|id| state.mark(*id).is_none_or(|m| m.origin.is_none()))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let found = self.book.lookup(&missing).await?;
        let mut state = write(&self.state);
        for (id, mark) in found {
            state.recall_mark(id, mark);
        }
        Ok(())
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
            let mut entries = HashMap::new();
            {
                let shared = self.state.clone();
                let mut state = write(&shared);
                for event in &batch {
                    absorb(&mut state, &mut self.head, &mut entries, event);
                }
            }
            if !entries.is_empty() {
                self.keys.insert(&entries).await?;
            }
        }
    }

    /// Queues the idempotency entries of keyed commands now durable for the record; they stay
    /// in `pending` (and are answered from there) until the record says they are written. If
    /// writing fails they stay pending; the next load fills the record from the log anyway.
    fn remember(&mut self, entries: HashMap<KeyOf, KeyEntry>) {
        self.key_writer.write(entries);
    }

    /// Forgets from `pending` the keys the record now holds.
    fn forget_written(&mut self) {
        for key in self.key_writer.written() {
            self.pending.remove(&key);
        }
    }

    /// The entries already in the record for the keyed commands of `batch` (not pending), with
    /// the receipts that answer a retry, read back from the log.
    async fn recall_keys(
        &self,
        log: &dyn EventLog,
        batch: &[Job],
        now: DateTime<Utc>,
    ) -> Result<HashMap<KeyOf, Recalled>, LogError> {
        let wanted: Vec<KeyOf> = batch
            .iter()
            .filter_map(|job| {
                let key = job.meta.idempotency_key.as_ref()?;
                let k = (job.meta.actor.clone(), key.clone());
                (!self.pending.contains_key(&k)).then_some(k)
            })
            .collect();
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let found = self.keys.lookup(&wanted, now).await?;
        let mut recalled = HashMap::with_capacity(found.len());
        for (k, entry) in found {
            let count = (entry.last_position + 1).saturating_sub(entry.first_position);
            let events = log
                .read_after(entry.first_position.saturating_sub(1), count as usize)
                .await?;
            let Some(command) = Command::NAMES.iter().copied().find(|n| *n == entry.command) else {
                continue;
            };
            let receipt = Receipt {
                command,
                learner_id: events.first().and_then(|e| e.envelope.learner_id),
                events: events.iter().map(crate::registry::receipt_event).collect(),
                replayed: true,
            };
            recalled.insert(
                k,
                Recalled {
                    fingerprint: entry.fingerprint,
                    receipt,
                },
            );
        }
        Ok(recalled)
    }
}

/// A keyed command found in the idempotency record: its fingerprint and the answer a retry
/// gets.
struct Recalled {
    fingerprint: Option<String>,
    receipt: Receipt,
}

/// Advances the state and the head by one event of the log, gathering its idempotency entry.
fn absorb(
    state: &mut State,
    head: &mut Head,
    entries: &mut HashMap<KeyOf, KeyEntry>,
    event: &RecordedEvent,
) {
    state.apply(&event.envelope.event);
    *head = Head {
        position: event.position(),
        hash: event.hash,
    };
    if let Some((key, entry)) = entry_of(event, command_of_event(&event.envelope.event)) {
        gather(entries, key, entry);
    }
}

/// The idempotency entries of the keyed commands of a batch whose events are now durable.
fn key_entries(
    jobs: &[Job],
    answers: &[Result<Receipt, RegistryError>],
) -> HashMap<KeyOf, KeyEntry> {
    let now = Utc::now().timestamp();
    jobs.iter()
        .zip(answers)
        .filter_map(|(job, answer)| {
            let key = job.meta.idempotency_key.as_ref()?;
            let receipt = answer.as_ref().ok().filter(|r| !r.replayed)?;
            let (first, last) = (receipt.events.first()?, receipt.events.last()?);
            Some((
                (job.meta.actor.clone(), key.clone()),
                KeyEntry {
                    command: receipt.command.to_owned(),
                    fingerprint: job.meta.request_fingerprint.clone(),
                    first_position: first.position,
                    last_position: last.position,
                    recorded_at: now,
                },
            ))
        })
        .collect()
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
///
/// Group commits are pipelined: while one batch's append is in flight, the next batch is
/// decided and sealed on top of it (the state is ahead of the log either way), so the CPU work
/// of deciding overlaps the disk's or the broker's round trip. Callers are still answered only
/// after their own batch is durable. If the append in flight fails, nothing of it or of the
/// batch decided on top of it is durable: both are taken back (in time proportional to them,
/// not to the log), the log is read past the durable head, and both are decided again
/// together.
pub(crate) async fn run(
    log: Arc<dyn EventLog>,
    mut me: WriterState,
    mut jobs: mpsc::Receiver<Job>,
    head_tx: watch::Sender<u64>,
    metrics: Arc<Metrics>,
    options: WriterOptions,
) {
    let mut tick = tokio::time::interval(options.follow_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_follow = Instant::now();
    let mut in_flight: Option<InFlight> = None;
    let mut closed = false;
    loop {
        // The next batch: wait for a first command only when nothing is in flight.
        let mut batch: Vec<Job> = Vec::new();
        if in_flight.is_none() {
            if closed {
                break;
            }
            let first = if options.follow {
                tokio::select! {
                    job = jobs.recv() => job,
                    _ = tick.tick() => {
                        follow(&*log, &mut me, &head_tx, &metrics).await;
                        last_follow = Instant::now();
                        continue;
                    }
                }
            } else {
                jobs.recv().await
            };
            match first {
                Some(job) => batch.push(job),
                None => break,
            }
        }
        while !closed && batch.len() < options.max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => closed = true,
            }
        }
        // Under load, read what other writers appended at most every `follow_interval` (never
        // with an append in flight, whose positions it would read past): a region sends its
        // commands to one process, so this is mostly a round trip that finds nothing, and an
        // append another writer got ahead of fails with a conflict and is decided again.
        if in_flight.is_none()
            && options.follow
            && !batch.is_empty()
            && last_follow.elapsed() >= options.follow_interval
        {
            follow(&*log, &mut me, &head_tx, &metrics).await;
            last_follow = Instant::now();
        }
        let decided = if batch.is_empty() {
            None
        } else {
            Some(decide_batch(&*log, &mut me, &batch, &metrics).await)
        };

        if let Some(flight) = in_flight.take() {
            let landed = land(flight, &me, &head_tx, &metrics).await;
            let landed = match landed {
                Ok((position, hash, entries)) => {
                    me.landed();
                    me.remember(entries);
                    me.settle(position, hash).await;
                    Ok(())
                }
                Err(failed) => Err(failed),
            };
            if let Err((failed_jobs, error)) = landed {
                // Neither the failed batch nor the one decided on top of it is durable.
                let mut merged = failed_jobs;
                merged.append(&mut batch);
                if error_is_conflict(&error) {
                    metrics.append_conflicts.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("another writer took the batch's positions; deciding it again");
                } else {
                    tracing::error!(%error, "append failed");
                }
                let answers = commit_again(&*log, &mut me, &merged, &metrics).await;
                publish_head(&me, &head_tx, &metrics);
                answer(merged, answers);
                me.settle(me.head.position, me.head.hash).await;
                last_follow = Instant::now();
                continue;
            }
        }
        if let Some((answers, sealed)) = decided {
            if sealed.is_empty() {
                answer(batch, answers);
            } else {
                in_flight = Some(take_off(
                    log.clone(),
                    batch,
                    answers,
                    sealed,
                    me.head.position,
                ));
            }
        }
    }
    if let Some(flight) = in_flight.take() {
        match land(flight, &me, &head_tx, &metrics).await {
            Ok((_, _, entries)) => {
                me.landed();
                me.remember(entries);
            }
            Err((failed_jobs, _)) => {
                let answers = commit_again(&*log, &mut me, &failed_jobs, &metrics).await;
                publish_head(&me, &head_tx, &metrics);
                answer(failed_jobs, answers);
            }
        }
    }
    me.key_writer.finish().await;
    me.keys.close().await;
    me.book.close().await;
}

/// A batch whose append is under way.
struct InFlight {
    jobs: Vec<Job>,
    answers: Vec<Result<Receipt, RegistryError>>,
    /// The position of its last event: the durable head once it lands.
    last_position: u64,
    last_hash: Hash,
    events: u64,
    append: tokio::task::JoinHandle<(Result<(), LogError>, std::time::Duration)>,
}

fn take_off(
    log: Arc<dyn EventLog>,
    jobs: Vec<Job>,
    answers: Vec<Result<Receipt, RegistryError>>,
    sealed: Vec<RecordedEvent>,
    last_position: u64,
) -> InFlight {
    let events = sealed.len() as u64;
    let last_hash = sealed.last().map_or(Hash([0; 32]), |e| e.hash);
    let append = tokio::spawn(async move {
        let started = Instant::now();
        let result = log.append(&sealed).await;
        (result, started.elapsed())
    });
    InFlight {
        jobs,
        answers,
        last_position,
        last_hash,
        events,
        append,
    }
}

/// Waits for the append in flight; on success answers its callers, announces the new head and
/// returns it (position and hash) with the idempotency entries of its keyed commands. On
/// failure hands its jobs back, unanswered.
async fn land(
    flight: InFlight,
    me: &WriterState,
    head_tx: &watch::Sender<u64>,
    metrics: &Metrics,
) -> Result<(u64, Hash, HashMap<KeyOf, KeyEntry>), (Vec<Job>, LogError)> {
    let InFlight {
        jobs,
        answers,
        last_position,
        last_hash,
        events,
        append,
    } = flight;
    let (result, took) = match append.await {
        Ok(done) => done,
        Err(join) => (
            Err(LogError::Storage(format!("the append task failed: {join}"))),
            std::time::Duration::ZERO,
        ),
    };
    metrics
        .append_micros
        .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    match result {
        Ok(()) => {
            metrics.group_commits.fetch_add(1, Ordering::Relaxed);
            metrics.events_appended.fetch_add(events, Ordering::Relaxed);
            // The state may already hold the next batch: announce only what is durable.
            let durable = last_position.min(me.head.position);
            metrics.log_head.store(durable, Ordering::Relaxed);
            let _ = head_tx.send(durable);
            let entries = key_entries(&jobs, &answers);
            answer(jobs, answers);
            Ok((last_position, last_hash, entries))
        }
        Err(error) => Err((jobs, error)),
    }
}

fn error_is_conflict(error: &LogError) -> bool {
    matches!(error, LogError::Conflict(_))
}

fn answer(jobs: Vec<Job>, answers: Vec<Result<Receipt, RegistryError>>) {
    for (job, answer) in jobs.into_iter().zip(answers) {
        let _ = job.reply.send(answer);
    }
}

fn publish_head(me: &WriterState, head_tx: &watch::Sender<u64>, metrics: &Metrics) {
    if me.faulted {
        // Its head may be ahead of the log.
        return;
    }
    metrics.log_head.store(me.head.position, Ordering::Relaxed);
    let _ = head_tx.send(me.head.position);
}

/// After a failed append: takes the failed batches back (the state is again the log's), reads
/// what the log holds past the durable head, then decides and appends the batch without
/// pipelining, deciding it again after a lost race (up to [`CONFLICT_RETRIES`] times).
async fn commit_again(
    log: &dyn EventLog,
    me: &mut WriterState,
    batch: &[Job],
    metrics: &Metrics,
) -> Vec<Result<Receipt, RegistryError>> {
    if let Err(fault) = me.recover(log, metrics).await {
        return unavailable(batch, &fault);
    }
    let mut attempt = 0;
    loop {
        match commit(log, me, batch, metrics).await {
            Committed::Done(answers) => return answers,
            Committed::Failed { answers, conflict } => {
                // Nothing of the batch is durable: take it back and read the log's word.
                if let Err(fault) = me.recover(log, metrics).await {
                    return unavailable(batch, &fault);
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
                return answers;
            }
        }
    }
}

/// Every job of `batch` answered unavailable, for `why`.
fn unavailable(batch: &[Job], why: &str) -> Vec<Result<Receipt, RegistryError>> {
    batch
        .iter()
        .map(|_| Err(RegistryError::Unavailable(why.to_owned())))
        .collect()
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
            publish_head(me, head_tx, metrics);
            me.settle(me.head.position, me.head.hash).await;
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

/// Decides every job of the batch in order against the state; returns one answer per job and
/// the sealed events to append. The marks the batch names are recalled from the book first; if
/// the book cannot be read, nothing is decided and every job is answered unavailable.
async fn decide_batch(
    log: &dyn EventLog,
    me: &mut WriterState,
    batch: &[Job],
    metrics: &Metrics,
) -> (Vec<Result<Receipt, RegistryError>>, Vec<RecordedEvent>) {
    if me.faulted {
        // Decide nothing before knowing what the failed append left in the log.
        if let Err(fault) = me.recover(log, metrics).await {
            return (unavailable(batch, &fault), Vec::new());
        }
    }
    me.forget_written();
    let now = Utc::now();
    let recalled = match me.recall_marks(batch).await {
        Ok(()) => me.recall_keys(log, batch, now).await,
        Err(error) => Err(error),
    };
    let recalled = match recalled {
        Ok(recalled) => recalled,
        Err(error) => {
            tracing::error!(%error, "reading the mark book or the idempotency record failed");
            let answers = batch
                .iter()
                .map(|_| Err(RegistryError::Unavailable(error.to_string())))
                .collect();
            return (answers, Vec::new());
        }
    };
    let today = now.date_naive();
    let mut sealed: Vec<RecordedEvent> = Vec::new();
    let mut answers: Vec<Result<Receipt, RegistryError>> = Vec::with_capacity(batch.len());
    let shared = me.state.clone();
    let mut state = write(&shared);
    let savepoint = state.savepoint();
    let head = me.head;
    let mut keys = Vec::new();
    for job in batch {
        let answer = decide_one(
            log,
            &mut state,
            me,
            &recalled,
            job,
            today,
            now,
            &mut sealed,
            metrics,
        );
        if let (Ok(receipt), Some(key)) = (&answer, &job.meta.idempotency_key) {
            if !receipt.replayed {
                keys.push((job.meta.actor.clone(), key.clone()));
                me.pending.insert(
                    (job.meta.actor.clone(), key.clone()),
                    Pending {
                        fingerprint: job.meta.request_fingerprint.clone(),
                        receipt: Receipt {
                            replayed: true,
                            ..receipt.clone()
                        },
                    },
                );
            }
        }
        answers.push(answer);
    }
    if !sealed.is_empty() {
        me.speculative.push(Speculative {
            savepoint,
            head,
            keys,
        });
    } else if me.speculative.is_empty() {
        // Nothing was applied and nothing is pending: stop recording.
        state.release_all();
    }
    (answers, sealed)
}

/// Decides every job of the batch in order against the state, then appends all their events in
/// one durable commit.
async fn commit(
    log: &dyn EventLog,
    me: &mut WriterState,
    batch: &[Job],
    metrics: &Metrics,
) -> Committed {
    let (mut answers, sealed) = decide_batch(log, me, batch, metrics).await;
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
            me.landed();
            me.remember(key_entries(batch, &answers));
            Committed::Done(answers)
        }
        Err(error) => {
            let conflict = error_is_conflict(&error);
            let message = match error {
                LogError::Conflict(position) => {
                    format!("another writer appended at position {position} first; try again")
                }
                other => {
                    tracing::error!(error = %other, "append failed");
                    other.to_string()
                }
            };
            // Every answer of the batch was decided on top of events that are not durable (a
            // refusal or an "already recorded" may rest on them as much as an acceptance does):
            // none of them is true, so none is given.
            for answer in answers.iter_mut() {
                *answer = Err(RegistryError::Unavailable(message.clone()));
            }
            Committed::Failed { answers, conflict }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn decide_one(
    log: &dyn EventLog,
    state: &mut State,
    me: &mut WriterState,
    recalled: &HashMap<KeyOf, Recalled>,
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
        let whose = (job.meta.actor.clone(), key.clone());
        let previous = match me.pending.get(&whose) {
            Some(p) => Some((p.fingerprint.as_deref(), &p.receipt)),
            None => recalled
                .get(&whose)
                .map(|r| (r.fingerprint.as_deref(), &r.receipt)),
        };
        if let Some((fingerprint, receipt)) = previous {
            let other_body = matches!(
                (fingerprint, job.meta.request_fingerprint.as_deref()),
                (Some(then), Some(now)) if then != now
            );
            if receipt.command != job.command.name() || other_body {
                return Err(RegistryError::IdempotencyKeyReused {
                    key: key.clone(),
                    command: receipt.command,
                });
            }
            metrics.commands_replayed.fetch_add(1, Ordering::Relaxed);
            return Ok(receipt.clone());
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
    let new = Envelope::seal_all_with(
        events,
        &job.meta,
        me.head.position + 1,
        me.head.hash,
        now,
        |envelope| log.seal(envelope),
    )
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
