//! What the two PostgreSQL peers share (`baseline`, the conventional store, and `grouped`, the
//! store shaped like the PostgreSQL event stores with a global position and group commit): the
//! stream of a learner seeded from the region, loading a stream and checking a command against
//! it, the event a command appends, and the driver that feeds the append benchmark's commands to
//! a peer from concurrent workers, retrying a command whose append lost a stream-version race.
//!
//! Both peers keep their events in a table named `events` with the columns `stream_id` (the
//! learner), `version` (the event's version in its stream, from 1), `type`, `data jsonb` and
//! `metadata jsonb`; a stream's `(stream_id, version)` is unique, which is what refuses a
//! concurrent append at a version already taken.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use contingent_domain::{Command, MarkRecorded};
use contingent_log::{EventLog, Metadata};
use contingent_log_sqlite::SqliteLog;
use serde_json::{json, Value};
use sqlx::{Executor, PgPool};

use crate::report::Percentiles;

/// COPY text escaping for a JSON value (which holds no raw tab or newline).
fn copy_text(s: &str) -> String {
    s.replace('\\', "\\\\")
}

/// Loads every learner's events of the region into their streams (`events`, created by the
/// peer); returns how many.
pub async fn seed(pool: &PgPool, log_path: &Path) -> Result<u64> {
    let log = SqliteLog::open(log_path).await?;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY events (stream_id, version, type, data, metadata) FROM STDIN")
        .await?;
    let (mut at, mut n) = (0u64, 0u64);
    loop {
        let page = log.read_after(at, 10_000).await?;
        let Some(last) = page.last() else { break };
        at = last.position();
        let mut buf = String::new();
        for e in &page {
            let Some(learner) = e.envelope.learner_id else {
                continue;
            };
            let stream = learner.to_string();
            let version = versions.entry(stream.clone()).or_default();
            *version += 1;
            let full = serde_json::to_value(&e.envelope.event)?;
            let data = full.get("data").cloned().unwrap_or(Value::Null);
            let metadata = json!({"recorded_at": e.envelope.recorded_at, "actor": e.envelope.actor,
                                  "source": e.envelope.source, "event_id": e.envelope.event_id});
            buf.push_str(&format!(
                "{stream}\t{version}\t{}\t{}\t{}\n",
                e.envelope.event.type_name(),
                copy_text(&data.to_string()),
                copy_text(&metadata.to_string())
            ));
            n += 1;
        }
        copy.send(buf.as_bytes()).await?;
    }
    copy.finish().await?;
    log.close().await;
    conn.execute("ANALYZE events").await?;
    Ok(n)
}

/// An event a command appends to its stream at `version` (the version the stream had when it
/// was loaded, plus one).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub stream: String,
    pub version: i64,
    pub kind: &'static str,
    pub data: String,
    pub metadata: String,
}

/// What checking a command against its stream decided.
#[derive(Debug)]
pub enum Decision {
    Append(NewEvent),
    Refused,
}

/// What one attempt at a command gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Appended,
    Refused,
    /// Another append took the stream's next version first: load again and retry.
    Conflict,
}

/// A stream's state as far as the benchmark's checks need it: the classes its learner was placed
/// in (`class_id` or `to_class_id` of any of its events), the marks it holds, and the version of
/// its last event folded.
#[derive(Debug, Default)]
pub struct Folded {
    version: i64,
    classes: HashSet<String>,
    marks: HashSet<String>,
}

impl Folded {
    /// Folds the stream's event at `version` (its JSON `data`), unless already folded.
    fn apply(&mut self, version: i64, data: &str) -> Result<()> {
        if version <= self.version {
            return Ok(());
        }
        let v: Value = serde_json::from_str(data)?;
        if let Some(mark) = v.get("mark_id").and_then(Value::as_str) {
            self.marks.insert(mark.to_owned());
        }
        for field in ["class_id", "to_class_id"] {
            if let Some(class) = v.get(field).and_then(Value::as_str) {
                self.classes.insert(class.to_owned());
            }
        }
        self.version = version;
        Ok(())
    }

    /// Checks `mark` against the state: the learner was placed in the mark's class and the mark
    /// is new; the event goes at the next version.
    fn decide(&self, stream: String, mark: &MarkRecorded, meta: &Metadata) -> Result<Decision> {
        if self.marks.contains(&mark.mark_id.to_string())
            || !self.classes.contains(&mark.class_id.to_string())
        {
            return Ok(Decision::Refused);
        }
        let metadata = json!({"recorded_at": chrono::Utc::now(), "actor": meta.actor, "source": meta.source,
                   "event_id": uuid::Uuid::now_v7()});
        Ok(Decision::Append(NewEvent {
            stream,
            version: self.version + 1,
            kind: "mark_recorded",
            data: serde_json::to_string(mark)?,
            metadata: metadata.to_string(),
        }))
    }
}

/// The streams' states a peer keeps between commands, as Equinox's cache or a Marten aggregate
/// kept in memory do: a command then loads only the events its stream gained since.
#[derive(Debug, Default)]
pub struct StreamCache(Mutex<HashMap<String, Folded>>);

impl StreamCache {
    fn version_of(&self, stream: &str) -> i64 {
        let streams = self.0.lock().unwrap_or_else(|e| e.into_inner());
        streams.get(stream).map_or(0, |f| f.version)
    }
}

/// Loads the command's stream and checks the command against it the way the registry's rules
/// would for the benchmark's commands (`Folded::decide`). Without a cache every event of the
/// learner is loaded and parsed; with one, only those after the version the cache holds. Returns
/// the decision and how many events were loaded.
pub async fn load_and_check(
    pool: &PgPool,
    cache: Option<&StreamCache>,
    command: &Command,
    meta: &Metadata,
) -> Result<(Decision, usize)> {
    let Command::RecordMark(mark) = command else {
        return Ok((Decision::Refused, 0));
    };
    let stream = mark.learner_id.to_string();
    let after = cache.map_or(0, |c| c.version_of(&stream));
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT version, data::text FROM events WHERE stream_id = $1 AND version > $2 \
         ORDER BY version",
    )
    .bind(&stream)
    .bind(after)
    .fetch_all(pool)
    .await?;
    let loaded = rows.len();
    let decision = match cache {
        None => {
            let mut folded = Folded::default();
            for (version, data) in &rows {
                folded.apply(*version, data)?;
            }
            folded.decide(stream, mark, meta)?
        }
        Some(cache) => {
            let mut streams = cache.0.lock().unwrap_or_else(|e| e.into_inner());
            // Another command may have folded further meanwhile: what it folded is a prefix of
            // the stream too, and `apply` skips what is already in.
            let folded = streams.entry(stream.clone()).or_default();
            for (version, data) in &rows {
                folded.apply(*version, data)?;
            }
            folded.decide(stream, mark, meta)?
        }
    };
    Ok((decision, loaded))
}

/// A peer: one attempt at a command (load, check, append), returning what it gave and how many
/// events it loaded.
#[async_trait::async_trait]
pub trait Peer: Send + Sync + 'static {
    async fn attempt(&self, command: &Command, meta: &Metadata) -> Result<(Outcome, usize)>;
}

/// What driving the commands through a peer gave.
pub struct Tally {
    pub appended: u64,
    pub refused: u64,
    pub conflicts: u64,
    pub loaded: u64,
    pub elapsed: Duration,
    pub latency: Percentiles,
}

impl Tally {
    /// Events loaded per command done (its retries' loads included).
    pub fn loaded_per_command(&self) -> f64 {
        self.loaded as f64 / (self.appended + self.refused).max(1) as f64
    }
}

/// Feeds `commands` in order to `workers` concurrent tasks, each taking the next command, until
/// the commands run out or `limit` has passed (a command begun is finished); a command whose
/// attempt ended in a conflict is attempted again from the load.
pub async fn drive(
    peer: Arc<dyn Peer>,
    commands: Arc<Vec<(Command, Metadata)>>,
    workers: usize,
    limit: Duration,
) -> Result<Tally> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|_| {
            let (peer, commands, next) = (peer.clone(), commands.clone(), next.clone());
            tokio::spawn(async move {
                let (mut appended, mut refused, mut conflicts, mut loaded) = (0u64, 0u64, 0, 0);
                let mut samples = Vec::new();
                while started.elapsed() < limit {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((command, meta)) = commands.get(i) else {
                        break;
                    };
                    let t = Instant::now();
                    loop {
                        let (outcome, rows) = peer.attempt(command, meta).await?;
                        loaded += rows as u64;
                        match outcome {
                            Outcome::Appended => appended += 1,
                            Outcome::Refused => refused += 1,
                            Outcome::Conflict => {
                                conflicts += 1;
                                continue;
                            }
                        }
                        break;
                    }
                    samples.push(t.elapsed().as_micros() as u64);
                }
                anyhow::Ok((appended, refused, conflicts, loaded, samples))
            })
        })
        .collect();
    let (mut appended, mut refused, mut conflicts, mut loaded) = (0u64, 0u64, 0u64, 0u64);
    let mut samples = Vec::new();
    for task in tasks {
        let (a, r, c, l, s) = task.await??;
        appended += a;
        refused += r;
        conflicts += c;
        loaded += l;
        samples.extend(s);
    }
    Ok(Tally {
        appended,
        refused,
        conflicts,
        loaded,
        elapsed: started.elapsed(),
        latency: Percentiles::of(samples),
    })
}
