//! The projector: reads the log after the lowest projection position and applies batches.
//!
//! A batch: the projections turn its events into row changes, a [`ChangeSet`] per projection
//! coalesces them per row, they are written (on SQLite by prepared statements on the driver
//! directly, off the async threads, the whole batch in one transaction; on PostgreSQL by `COPY`
//! into staging tables and set-based statements, a large batch as two transactions at once, each
//! of whole read models), and each projection's position moves to the batch's last event in the
//! transaction of its rows — all or nothing for each read model.
//!
//! The projections keep in-memory state (counts, open enrollments, ...). On its first run a
//! projector rebuilds that state by replaying the log from position 1 up to each projection's
//! stored position, writing nothing; it then continues writing from there. When a batch fails
//! (or its future is dropped before the commit), the state is rebuilt the same way on the next
//! run, since it had already moved past the rolled-back rows; the positions are then read again,
//! as another read model's part of the failed batch may have been committed.

use std::sync::Arc;
use std::time::Instant;

use contingent_log::{EventLog, LogError, RecordedEvent};

use crate::write::{FlushStats, Part, PositionMove, WriteError};
use crate::{ChangeSet, Projection, ReadStore};

/// Events per batch of a rebuild from zero (`contingent rebuild`). Fewer, larger transactions: on
/// PostgreSQL fewer and longer `COPY`s (each sets up its insert buffer of up to a thousand rows
/// anew), on SQLite fewer commits.
pub const REBUILD_BATCH: usize = 16_000;

/// Events per batch at most of a live projector (`contingent serve`, `contingent project`): one at
/// the head applies the few events the log has each time, one behind it this many per
/// transaction. On SQLite a batch's marks land in the current month's part of the diary's index
/// of marks (`projections/sqlite/diary_by_month.sql`), so the more of them one commit holds, the
/// more of them share each page it writes: on a quarter region, whose month of that index is
/// tens of thousands of pages, 64,000 events a commit write ~30 % fewer bytes than 16,000 and reach the
/// head ~15 % sooner (docs/performance.md).
pub const LIVE_BATCH: usize = 64_000;

/// Events read per log read while replaying into the in-memory state.
const REPLAY_BATCH: usize = 10_000;

/// Errors of a projector run.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Writing the read models failed.
    #[error("read model: {0}")]
    Store(#[from] sqlx::Error),
    /// Writing a batch to a SQLite read store failed (written on the driver directly).
    #[error("read model: {0}")]
    Write(#[source] rusqlite::Error),
    /// Another projector moved `projection` past this one's position first; this batch was
    /// rolled back, and the next run starts from the stored positions.
    #[error("another projector applied {projection} first")]
    Overtaken {
        /// The read model.
        projection: &'static str,
    },
}

/// Reads pages of the log after `from` into `pages` until the end (an empty page) or an error,
/// or until the receiver is gone.
async fn read_ahead(
    log: Arc<dyn EventLog>,
    mut from: u64,
    batch: usize,
    pages: tokio::sync::mpsc::Sender<Result<Vec<RecordedEvent>, LogError>>,
) {
    loop {
        let page = log.read_after(from, batch).await;
        let done = match &page {
            Ok(events) => match events.last() {
                Some(last) => {
                    from = last.position();
                    false
                }
                None => true,
            },
            Err(_) => true,
        };
        if pages.send(page).await.is_err() || done {
            return;
        }
    }
}

/// The read-ahead task, stopped when the catch-up that started it ends.
struct ReadAhead(tokio::task::JoinHandle<()>);

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A batch being written while the next is read and applied.
struct Pending {
    write: tokio::task::JoinHandle<Result<FlushStats, ProjectorError>>,
    last: u64,
    events: usize,
}

/// Applies the log to a set of projections.
pub struct Projector {
    store: ReadStore,
    projections: Vec<Box<dyn Projection>>,
    /// Position of each projection, in the order of `projections`.
    positions: Vec<u64>,
    /// The position each projection's in-memory state has applied (past its stored position
    /// while a batch is being written, or after another projector wrote it first).
    applied: Vec<u64>,
    batch: usize,
    /// Whether the projections' in-memory state matches their positions.
    warm: bool,
    /// Whether the stored positions must be read again (another projector moved them).
    stale: bool,
    last_flush: FlushStats,
    /// Rows and statements written since the projector was made.
    flushed: FlushStats,
    /// The batch being written, on a task of its own (by a run, or a pipelined catch-up);
    /// still there if the run was dropped, and then waited for before the next run reads the
    /// stored positions (it may commit after the drop).
    pending: Option<Pending>,
}

impl Projector {
    /// A projector over `projections`, starting from the positions stored in `store`.
    pub async fn new(
        store: ReadStore,
        projections: Vec<Box<dyn Projection>>,
        batch: usize,
    ) -> Result<Self, ProjectorError> {
        let stored = store.positions().await?;
        let positions: Vec<u64> = projections
            .iter()
            .map(|p| stored.get(p.name()).copied().unwrap_or(0))
            .collect();
        Ok(Self {
            store,
            projections,
            applied: positions.clone(),
            positions,
            batch: batch.max(1),
            warm: false,
            stale: false,
            last_flush: FlushStats::default(),
            flushed: FlushStats::default(),
            pending: None,
        })
    }

    /// The lowest position of all projections: everything up to it is in every read model.
    pub fn position(&self) -> u64 {
        self.positions.iter().copied().min().unwrap_or(0)
    }

    /// Events applied per batch at most: a batch of this many says the log may hold more.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Rows and statements the last batch wrote.
    pub fn last_flush(&self) -> FlushStats {
        self.last_flush
    }

    /// Rows and statements written since the projector was made.
    pub fn flushed(&self) -> FlushStats {
        self.flushed
    }

    /// Rebuilds the projections' in-memory state from the log, up to each one's stored
    /// position (read again: a write this projector started may have committed after the run
    /// that started it was dropped).
    async fn warm_up(&mut self, log: &dyn EventLog) -> Result<(), ProjectorError> {
        let stored = self.store.positions().await?;
        for (p, position) in self.projections.iter().zip(self.positions.iter_mut()) {
            *position = stored.get(p.name()).copied().unwrap_or(0);
        }
        self.stale = false;
        for p in &mut self.projections {
            p.clear();
        }
        self.applied = vec![0; self.positions.len()];
        let target = self.positions.iter().copied().max().unwrap_or(0);
        let started = Instant::now();
        let at = self.bring_forward(log).await?;
        if at < target {
            tracing::warn!(
                log_head = at,
                stored_position = target,
                "the read models are ahead of the log: is this the right log for them?"
            );
        }
        if target > 0 {
            tracing::info!(
                replayed = at,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "projector state rebuilt from the log"
            );
        }
        self.warm = true;
        Ok(())
    }

    /// Applies to the in-memory state, writing nothing, every event after what each projection
    /// has applied up to its position. Returns the position the log was read to.
    async fn bring_forward(&mut self, log: &dyn EventLog) -> Result<u64, ProjectorError> {
        let mut at = self.applied.iter().copied().min().unwrap_or(0);
        let target = self.positions.iter().copied().max().unwrap_or(0);
        let mut sink = ChangeSet::discarding();
        while at < target {
            let limit = usize::try_from(target - at)
                .unwrap_or(REPLAY_BATCH)
                .min(REPLAY_BATCH);
            let events = log.read_after(at, limit).await?;
            let Some(last) = events.last().map(|e| e.position()) else {
                break;
            };
            for event in &events {
                for ((p, applied), stored) in self
                    .projections
                    .iter_mut()
                    .zip(&self.applied)
                    .zip(&self.positions)
                {
                    if *applied < event.position() && event.position() <= *stored {
                        p.apply(event, &mut sink);
                    }
                }
            }
            at = last;
        }
        self.applied = self.positions.clone();
        Ok(at)
    }

    /// After being overtaken: brings the in-memory state forward from what it has applied to
    /// the stored positions. False when a stored position is behind what the state has applied
    /// (the read model was rebuilt meanwhile): then the state must be rebuilt from the log.
    async fn skip_forward(&mut self, log: &dyn EventLog) -> Result<bool, ProjectorError> {
        if self.applied.len() != self.positions.len()
            || self.applied.iter().zip(&self.positions).any(|(a, p)| p < a)
        {
            return Ok(false);
        }
        let target = self.positions.iter().copied().max().unwrap_or(0);
        Ok(self.bring_forward(log).await? >= target)
    }

    /// Reads one batch after the lowest position and applies it in one transaction.
    /// Returns how many events were read (0 when caught up).
    pub async fn run_once(&mut self, log: &dyn EventLog) -> Result<usize, ProjectorError> {
        if let Some(left) = self.pending.as_mut() {
            // Left by a dropped run or catch-up: committed or not, the stored positions now
            // say. The state had applied past it, so it is rebuilt from them. (Taken only once
            // it has ended, so that a drop while waiting leaves it for the next run.)
            let _ = (&mut left.write).await;
            self.pending = None;
            self.warm = false;
        }
        if self.stale {
            let stored = self.store.positions().await?;
            for (p, position) in self.projections.iter().zip(self.positions.iter_mut()) {
                *position = stored.get(p.name()).copied().unwrap_or(0);
            }
            self.stale = false;
            // Overtaken: the state has applied up to `applied`, and another projector stored
            // at least as much. Bringing the state forward to the stored positions costs the
            // gap, not the log; only a read model moved back (rebuilt) needs the whole log.
            self.warm = self.warm && self.skip_forward(log).await?;
        }
        if !self.warm {
            self.warm_up(log).await?;
        }
        let from = self.position();
        let events = log.read_after(from, self.batch).await?;
        let Some(last) = events.last().map(|e| e.position()) else {
            return Ok(0);
        };
        // Warm: each projection's state has applied exactly up to its stored position.
        let changes = self.apply(&events);
        // The state has moved past rows not yet committed: until they are, it must be rebuilt
        // before the next batch (if the write fails, or this future is dropped midway).
        self.warm = false;
        for a in &mut self.applied {
            *a = (*a).max(last);
        }
        // Written on a task of its own and awaited through `pending`, as a pipelined batch is:
        // a write may run on more than one connection, and a run dropped midway must not leave
        // part of it committing unseen while the next run reads the stored positions. The next
        // run waits for it first.
        self.pending = Some(Pending {
            write: tokio::spawn(write(self.store.clone(), self.parts(changes, last))),
            last,
            events: events.len(),
        });
        // On being overtaken, `finish` marks the positions stale and the state usable from
        // `applied`: what this batch applied is what the other projector committed (the same
        // events, the same projection).
        self.finish().await?;
        self.warm = true;
        self.applied = self.positions.clone();
        Ok(events.len())
    }

    /// Applies a page of events to each projection whose state has not applied them yet, and
    /// returns each projection's row changes, in the order of the projections.
    fn apply(&mut self, events: &[RecordedEvent]) -> Vec<ChangeSet> {
        let mut changes: Vec<ChangeSet> =
            self.projections.iter().map(|_| ChangeSet::new()).collect();
        for event in events {
            for ((p, applied), changes) in self
                .projections
                .iter_mut()
                .zip(&self.applied)
                .zip(&mut changes)
            {
                if *applied < event.position() {
                    p.apply(event, changes);
                }
            }
        }
        changes
    }

    /// The parts of a batch ending at `last`: the changes of each projection whose position is
    /// behind it, with the move of that position from its stored value.
    fn parts(&self, changes: Vec<ChangeSet>, last: u64) -> Vec<Part> {
        self.projections
            .iter()
            .zip(&self.positions)
            .zip(changes)
            .filter(|((_, &position), _)| position < last)
            .map(|((p, &position), changes)| Part {
                changes,
                position: PositionMove {
                    projection: p.name(),
                    from: position,
                    to: last,
                },
            })
            .collect()
    }

    /// Applies batches until the log has nothing more; returns how many events were applied.
    ///
    /// Pipelined: while one batch is written and committed (on its own task), the next is
    /// applied to the in-memory state, and the log is read (and decoded) ahead on a task of its
    /// own, at most two pages ahead. Batches are committed one at a time, in order, each
    /// moving the positions from those the one before committed, so the result is what
    /// [`run_once`](Projector::run_once) in a loop writes; a failed write stops the run with the
    /// state marked for rebuilding, as there.
    pub async fn catch_up(
        &mut self,
        log: &Arc<dyn EventLog>,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, ProjectorError> {
        let mut total = 0u64;
        // The first batch as a lone run, which also brings the state up to the stored positions.
        let n = self.run_once(&**log).await?;
        if n == 0 {
            return Ok(0);
        }
        total += n as u64;
        progress(self.position());
        // Pages read (and decoded) on a task of their own, at most two ahead of this one.
        let from = self.applied.iter().copied().min().unwrap_or(0);
        let (pages, mut read) = tokio::sync::mpsc::channel(2);
        let reader = ReadAhead(tokio::spawn(read_ahead(
            log.clone(),
            from,
            self.batch,
            pages,
        )));
        loop {
            let page = read.recv().await.unwrap_or_else(|| Ok(Vec::new()));
            let events = match page {
                Ok(events) => events,
                Err(error) => {
                    if self.pending.is_some() {
                        self.finish().await?;
                        progress(self.position());
                        // Nothing was applied past what is now committed.
                        self.warm = self.applied == self.positions;
                    }
                    return Err(error.into());
                }
            };
            let Some(last) = events.last().map(|e| e.position()) else {
                if self.pending.is_some() {
                    total += self.finish().await? as u64;
                    progress(self.position());
                }
                self.warm = true;
                drop(reader);
                return Ok(total);
            };
            let changes = self.apply(&events);
            // Ahead of what is committed until the writes below are.
            self.warm = false;
            for a in &mut self.applied {
                *a = (*a).max(last);
            }
            if self.pending.is_some() {
                total += self.finish().await? as u64;
                progress(self.position());
            }
            self.pending = Some(Pending {
                write: tokio::spawn(write(self.store.clone(), self.parts(changes, last))),
                last,
                events: events.len(),
            });
        }
    }

    /// Waits for the batch a dropped run or catch-up left being written, if any, to commit or
    /// fail: before the store is closed, so that a stop asked for during a catch-up ends the
    /// batch under way instead of cutting it off.
    pub async fn finish_pending(&mut self) -> Result<(), ProjectorError> {
        self.finish().await.map(|_| ())
    }

    /// Waits for the pipelined batch's commit and moves the positions; returns its events. The
    /// batch stays in `pending` until its write has ended: a run dropped while waiting here
    /// leaves it to the next one.
    async fn finish(&mut self) -> Result<usize, ProjectorError> {
        let Some(pending) = self.pending.as_mut() else {
            return Ok(0);
        };
        let written = (&mut pending.write)
            .await
            .unwrap_or_else(|joined| std::panic::resume_unwind(joined.into_panic()));
        let (last, events) = (pending.last, pending.events);
        self.pending = None;
        match written {
            Ok(stats) => {
                self.last_flush = stats;
                self.flushed.rows += stats.rows;
                self.flushed.statements += stats.statements;
                for p in &mut self.positions {
                    *p = (*p).max(last);
                }
                Ok(events)
            }
            Err(error) => {
                // As in `run_once`: the positions are read again (another read model's part of
                // the batch may have been committed) and the state rebuilt from them; after being
                // overtaken the state, which has applied up to `applied`, is brought forward or
                // rebuilt from there.
                if matches!(error, ProjectorError::Overtaken { .. }) {
                    self.stale = true;
                    self.warm = true;
                }
                Err(error)
            }
        }
    }
}

/// Writes the batch's rows and moves the positions on the store's writer, each read model's rows
/// in the transaction of its position. Each position moves only from the value this projector
/// started from (compare and set), so two projectors of the same read model never both apply a
/// batch: the later one rolls back.
async fn write(store: ReadStore, parts: Vec<Part>) -> Result<FlushStats, ProjectorError> {
    store.writer().write(parts).await.map_err(|e| match e {
        WriteError::Sqlite(e) => ProjectorError::Write(e),
        WriteError::Postgres(e) => ProjectorError::Store(e),
        WriteError::Overtaken(projection) => ProjectorError::Overtaken { projection },
        WriteError::Closed => ProjectorError::Store(sqlx::Error::PoolClosed),
    })
}
