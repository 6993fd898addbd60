//! The embedded event log: a SQLite database file in WAL mode with `synchronous = FULL`, so an
//! append that returns is on disk. The `events` table is append-only: triggers refuse every
//! `UPDATE` and `DELETE`, and no code path issues one.
//!
//! A learner's events are found through `learner_index`, which is built from the `events` table
//! in sorted batches of [`INDEX_EVERY`] events inside the append that crosses the threshold,
//! not event by event: an index entry per event would dirty a random page per event in every
//! group commit. The entries are grouped in segments of 2^18 positions, so a batch touches the
//! pages of one small subtree. Events past the indexed position are found by scanning the
//! (short) tail of the table.
//!
//! Every append made with a writer key ([`SqliteLog::with_writer_key`]) stores, in the same
//! transaction, one row of `signatures`: the batch's first and last position, the hash before it,
//! its last hash, the key id and the Ed25519 signature over them. Every [`CHECKPOINT_EVERY`]
//! events, and whenever [`EventLog::publish_checkpoint`] is called, a signed checkpoint of the
//! head goes to `checkpoints`. The learner column and `learner_index` are not hashed:
//! [`EventLog::check_indexes`] checks them against the events' own bytes, and reads keep only
//! the events whose decoded envelope names the learner.
//!
//! Pages of the log (`read_after`, `read_raw_after`, what projectors and auditors read) are read
//! on the SQLite driver directly (`rusqlite`) on a blocking thread, with their decoding: one copy
//! of each row and no hand-over row by row between threads; everything else goes through the
//! `sqlx` pool.
//!
//! This crate implements [`contingent_log::EventLog`] and nothing else: it does not decide,
//! project or serve.
#![deny(missing_docs)]

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use contingent_domain::LearnerId;
use std::sync::Arc;

use contingent_log::{
    BatchSignature, Checkpoint, EventLog, Finding, FindingKind, Hash, Head, LogError, RawEvent,
    RecordedEvent, WriterKey,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// The storage format this build writes and reads (`PRAGMA user_version` of `log.db`).
pub const FORMAT_VERSION: i64 = 3;

/// A signed checkpoint is stored whenever an append crosses a multiple of this many events.
pub const CHECKPOINT_EVERY: u64 = 10_000;

/// The learner index is brought up to date once this many events are past it.
pub const INDEX_EVERY: u64 = 16_384;

/// Index entries are grouped by `position >> SEGMENT_BITS`.
const SEGMENT_BITS: u32 = 18;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    position   INTEGER PRIMARY KEY,
    event_id   BLOB NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    learner_id BLOB,
    body       BLOB NOT NULL,
    hash       BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS learner_index (
    segment    INTEGER NOT NULL,
    learner_id BLOB NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (segment, learner_id, position)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS signatures (
    last_position  INTEGER PRIMARY KEY,
    first_position INTEGER NOT NULL,
    prev_hash      BLOB NOT NULL,
    last_hash      BLOB NOT NULL,
    key_id         TEXT NOT NULL,
    signature      TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS checkpoints (
    position  INTEGER PRIMARY KEY,
    head_hash BLOB NOT NULL,
    time      TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
) STRICT;
INSERT OR IGNORE INTO log_meta (name, value) VALUES ('indexed_through', 0);
CREATE TRIGGER IF NOT EXISTS events_are_never_updated BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_are_never_deleted BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
"#;

/// Events per INSERT statement (6 parameters each, well under SQLite's limit of 32766).
const ROWS_PER_INSERT: usize = 500;

/// The embedded log.
#[derive(Clone, Debug)]
pub struct SqliteLog {
    pool: SqlitePool,
    key: Option<Arc<WriterKey>>,
    readers: Arc<Readers>,
}

/// Idle connections kept for reading pages of the log.
const IDLE_READERS: usize = 4;

/// Each reading connection's page cache, in KiB (`PRAGMA cache_size`). Readers walk the log in
/// position order (the writer's load, the projectors, the feed) or look up one learner's events;
/// a walk never reads a page twice, and the file's pages are in the system's page cache anyway,
/// so a large cache per connection only holds the last pages walked: with 64 MiB each, the
/// writer kept ~88 MiB of them resident after loading a quarter region's log.
const READER_CACHE_KIB: u32 = 8 * 1024;

/// Connections that read pages of the log on the SQLite driver directly.
#[derive(Debug)]
struct Readers {
    path: std::path::PathBuf,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
    closed: std::sync::atomic::AtomicBool,
}

impl Readers {
    /// Runs `read` on an idle connection (or a new one), blocking: call it off the async
    /// runtime's threads.
    fn with<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(LogError::Storage("the log is closed".into()));
        }
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = rusqlite::Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(read_failed)?;
                conn.busy_timeout(Duration::from_secs(30))
                    .map_err(read_failed)?;
                conn.execute_batch(&format!("PRAGMA cache_size = -{READER_CACHE_KIB}"))
                    .map_err(read_failed)?;
                conn
            }
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS && !self.closed.load(std::sync::atomic::Ordering::Acquire) {
            idle.push(conn);
        }
        result
    }

    /// Closes the idle connections; later reads fail.
    fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Up to `limit` stored events after `after`: `(position, body, hash)`.
    fn page(
        conn: &rusqlite::Connection,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredRow>, LogError> {
        let mut stmt = conn
            .prepare_cached(
                "SELECT position, body, hash FROM events WHERE position > ?1 \
                 ORDER BY position LIMIT ?2",
            )
            .map_err(read_failed)?;
        let rows = stmt
            .query_map((after as i64, limit as i64), |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get(1)?, row.get(2)?))
            })
            .map_err(read_failed)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(read_failed)
    }
}

/// A stored event as a page reads it: position, body, hash.
type StoredRow = (u64, Vec<u8>, Vec<u8>);

fn read_failed(e: rusqlite::Error) -> LogError {
    LogError::Storage(e.to_string())
}

fn storage(e: sqlx::Error) -> LogError {
    LogError::Storage(e.to_string())
}

impl SqliteLog {
    /// Opens (creating if needed) the log database at `path`. A file written in another storage
    /// format is refused, not changed.
    pub async fn open(path: &Path) -> Result<Self, LogError> {
        if path.exists() {
            check_format(path).await?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(storage)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            // Keep the indexes' pages in memory (64 MiB), and checkpoint the WAL every 64 MiB
            // rather than every 4 MiB (each checkpoint syncs the database file).
            .pragma("cache_size", "-65536")
            .pragma("wal_autocheckpoint", "16384");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(storage)?;
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(storage)?;
        sqlx::raw_sql(&format!("PRAGMA user_version = {FORMAT_VERSION}"))
            .execute(&pool)
            .await
            .map_err(storage)?;
        let readers = Arc::new(Readers {
            path: path.to_path_buf(),
            idle: std::sync::Mutex::new(Vec::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        Ok(Self {
            pool,
            key: None,
            readers,
        })
    }

    /// The same log, signing every append and checkpoint with `key`.
    pub fn with_writer_key(mut self, key: Arc<WriterKey>) -> Self {
        self.key = Some(key);
        self
    }

    /// The position up to which `learner_index` is built.
    pub async fn indexed_through(&self) -> Result<u64, LogError> {
        let (at,): (i64,) =
            sqlx::query_as("SELECT value FROM log_meta WHERE name = 'indexed_through'")
                .fetch_one(&self.pool)
                .await
                .map_err(storage)?;
        Ok(at as u64)
    }
}

/// Refuses a file in another storage format, reading it without changing a byte.
async fn check_format(path: &Path) -> Result<(), LogError> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(storage)?
        .read_only(true);
    let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect_with(&options)
        .await
        .map_err(storage)?;
    let (version,): (i64,) = sqlx::query_as("PRAGMA user_version")
        .fetch_one(&mut conn)
        .await
        .map_err(storage)?;
    let (tables,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM sqlite_schema WHERE type = 'table'")
            .fetch_one(&mut conn)
            .await
            .map_err(storage)?;
    sqlx::Connection::close(conn).await.map_err(storage)?;
    if version == FORMAT_VERSION || (version == 0 && tables == 0) {
        return Ok(());
    }
    Err(LogError::Storage(format!(
        "{} is in storage format {version}, and this build reads format {FORMAT_VERSION}: \
         it was left unchanged; export it with the build that wrote it, or start from an empty file",
        path.display()
    )))
}

/// Adds the index entries of the events after `from` up to `to`, sorted, so that the B-tree
/// takes them in key order, and records how far the index reaches.
async fn index_learners(
    tx: &mut sqlx::SqliteConnection,
    from: u64,
    to: u64,
) -> Result<(), LogError> {
    sqlx::query(&format!(
        "INSERT INTO learner_index (segment, learner_id, position) \
         SELECT position >> {SEGMENT_BITS}, learner_id, position FROM events \
         WHERE position > ?1 AND position <= ?2 AND learner_id IS NOT NULL ORDER BY 1, 2, 3"
    ))
    .bind(from as i64)
    .bind(to as i64)
    .execute(&mut *tx)
    .await
    .map_err(storage)?;
    sqlx::query("UPDATE log_meta SET value = ? WHERE name = 'indexed_through'")
        .bind(to as i64)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
    Ok(())
}

async fn store_signature(
    tx: &mut sqlx::SqliteConnection,
    s: &BatchSignature,
) -> Result<(), LogError> {
    sqlx::query(
        "INSERT INTO signatures (last_position, first_position, prev_hash, last_hash, key_id, signature) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(s.last_position as i64)
    .bind(s.first_position as i64)
    .bind(s.prev_hash.0.as_slice())
    .bind(s.last_hash.0.as_slice())
    .bind(&s.key_id)
    .bind(&s.signature)
    .execute(&mut *tx)
    .await
    .map_err(storage)?;
    Ok(())
}

async fn store_checkpoint(tx: &mut sqlx::SqliteConnection, c: &Checkpoint) -> Result<(), LogError> {
    sqlx::query(
        "INSERT OR REPLACE INTO checkpoints (position, head_hash, time, key_id, signature) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(c.position as i64)
    .bind(c.head_hash.0.as_slice())
    .bind(c.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    .bind(&c.key_id)
    .bind(&c.signature)
    .execute(&mut *tx)
    .await
    .map_err(storage)?;
    Ok(())
}

fn hash_of(bytes: Vec<u8>) -> Result<Hash, LogError> {
    let hash: [u8; 32] = bytes
        .try_into()
        .map_err(|_| LogError::Codec("a stored hash is not 32 bytes".into()))?;
    Ok(Hash(hash))
}

fn decode(row: sqlx::sqlite::SqliteRow) -> Result<RecordedEvent, LogError> {
    let body: Vec<u8> = row.get(0);
    let hash: Vec<u8> = row.get(1);
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| LogError::Codec("a stored hash is not 32 bytes".into()))?;
    RecordedEvent::open(body, Hash(hash))
}

#[async_trait]
impl EventLog for SqliteLog {
    async fn append(&self, events: &[RecordedEvent]) -> Result<(), LogError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        // The write lock first (waiting for it, as the busy timeout allows): a transaction that
        // read the head and then tried to write after another write (a checkpoint being
        // published) would fail at once with SQLITE_BUSY rather than wait.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(storage)?;
        let head: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(storage)?;
        let (head_position, head_hash) = match head {
            Some((p, h)) => (p as u64, h),
            None => (0, contingent_log::GENESIS_HASH.0.to_vec()),
        };
        if first.position() != head_position + 1
            || first.envelope.prev_hash.0.as_slice() != head_hash.as_slice()
        {
            return Err(LogError::Conflict(first.position()));
        }
        // Multi-row inserts: one statement per chunk, not one round trip per event.
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO events (position, event_id, type, learner_id, body, hash) ",
            );
            insert.push_values(chunk, |mut row, event| {
                row.push_bind(event.position() as i64)
                    .push_bind(event.envelope.event_id.as_bytes().as_slice())
                    .push_bind(event.envelope.event.type_name())
                    .push_bind(
                        event
                            .envelope
                            .learner_id
                            .as_ref()
                            .map(|l| l.as_uuid().as_bytes().as_slice()),
                    )
                    .push_bind(event.body.as_slice())
                    .push_bind(event.hash.0.as_slice());
            });
            insert.build().execute(&mut *tx).await.map_err(storage)?;
        }
        let last = first.position() + events.len() as u64 - 1;
        if let Some(key) = &self.key {
            let last_hash = events.last().map_or(first.hash, |e| e.hash);
            let signed =
                key.sign_batch(first.position(), last, first.envelope.prev_hash, last_hash);
            store_signature(&mut tx, &signed).await?;
            if last / CHECKPOINT_EVERY > (first.position() - 1) / CHECKPOINT_EVERY {
                let checkpoint = key.sign_checkpoint(last, last_hash, chrono::Utc::now());
                store_checkpoint(&mut tx, &checkpoint).await?;
            }
        }
        let (indexed,): (i64,) =
            sqlx::query_as("SELECT value FROM log_meta WHERE name = 'indexed_through'")
                .fetch_one(&mut *tx)
                .await
                .map_err(storage)?;
        if last.saturating_sub(indexed as u64) >= INDEX_EVERY {
            index_learners(&mut tx, indexed as u64, last).await?;
        }
        tx.commit().await.map_err(storage)?;
        Ok(())
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            readers.with(|conn| {
                Readers::page(conn, after, limit)?
                    .into_iter()
                    .map(|(_, body, hash)| {
                        let hash: [u8; 32] = hash
                            .try_into()
                            .map_err(|_| LogError::Codec("a stored hash is not 32 bytes".into()))?;
                        RecordedEvent::open(body, Hash(hash))
                    })
                    .collect()
            })
        })
        .await
        .unwrap_or_else(|joined| std::panic::resume_unwind(joined.into_panic()))
    }

    async fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<RawEvent>, LogError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            readers.with(|conn| {
                Ok(Readers::page(conn, after, limit)?
                    .into_iter()
                    .map(|(position, body, hash)| RawEvent {
                        position,
                        body,
                        hash,
                    })
                    .collect())
            })
        })
        .await
        .unwrap_or_else(|joined| std::panic::resume_unwind(joined.into_panic()))
    }

    async fn read_learner(&self, learner: LearnerId) -> Result<Vec<RecordedEvent>, LogError> {
        let key = learner.as_uuid().as_bytes().as_slice();
        // One snapshot for both parts, so the index and the tail meet exactly.
        let mut tx = self.pool.begin().await.map_err(storage)?;
        let (indexed,): (i64,) =
            sqlx::query_as("SELECT value FROM log_meta WHERE name = 'indexed_through'")
                .fetch_one(&mut *tx)
                .await
                .map_err(storage)?;
        let mut rows = sqlx::query(&format!(
            "WITH RECURSIVE seg(s) AS (SELECT 0 UNION ALL SELECT s + 1 FROM seg WHERE s < ?1 >> {SEGMENT_BITS}) \
             SELECT e.body, e.hash FROM seg JOIN learner_index i ON i.segment = seg.s AND i.learner_id = ?2 \
             JOIN events e ON e.position = i.position ORDER BY i.position"
        ))
        .bind(indexed)
        .bind(key)
        .fetch_all(&mut *tx)
        .await
        .map_err(storage)?;
        rows.extend(
            sqlx::query(
                "SELECT body, hash FROM events WHERE position > ? AND learner_id = ? ORDER BY position",
            )
            .bind(indexed)
            .bind(key)
            .fetch_all(&mut *tx)
            .await
            .map_err(storage)?,
        );
        tx.commit().await.map_err(storage)?;
        // The learner column and the index are not hashed: keep only what the bytes say.
        let mut events = rows
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        events.retain(|e| e.envelope.learner_id == Some(learner));
        Ok(events)
    }

    /// Closes the database, checkpointing the WAL into the main file.
    async fn close(&self) {
        self.readers.close();
        self.pool.close().await;
    }

    async fn read_signatures_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<BatchSignature>, LogError> {
        let rows: Vec<(i64, i64, Vec<u8>, Vec<u8>, String, String)> = sqlx::query_as(
            "SELECT first_position, last_position, prev_hash, last_hash, key_id, signature \
             FROM signatures WHERE last_position > ? ORDER BY last_position LIMIT ?",
        )
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        rows.into_iter()
            .map(|(first, last, prev, last_hash, key_id, signature)| {
                Ok(BatchSignature {
                    first_position: first as u64,
                    last_position: last as u64,
                    prev_hash: hash_of(prev)?,
                    last_hash: hash_of(last_hash)?,
                    key_id,
                    signature,
                })
            })
            .collect()
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, LogError> {
        let rows: Vec<(i64, Vec<u8>, String, String, String)> = sqlx::query_as(
            "SELECT position, head_hash, time, key_id, signature FROM checkpoints ORDER BY position",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        rows.into_iter()
            .map(|(position, head_hash, time, key_id, signature)| {
                Ok(Checkpoint {
                    position: position as u64,
                    head_hash: hash_of(head_hash)?,
                    time: chrono::DateTime::parse_from_rfc3339(&time)
                        .map_err(|e| LogError::Codec(format!("checkpoint time {time:?}: {e}")))?
                        .with_timezone(&chrono::Utc),
                    key_id,
                    signature,
                })
            })
            .collect()
    }

    async fn publish_checkpoint(&self) -> Result<Option<Checkpoint>, LogError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let head = self.head().await?;
        if head.position == 0 {
            return Ok(None);
        }
        let checkpoint = key.sign_checkpoint(head.position, head.hash, chrono::Utc::now());
        let mut conn = self.pool.acquire().await.map_err(storage)?;
        store_checkpoint(&mut conn, &checkpoint).await?;
        Ok(Some(checkpoint))
    }

    async fn check_indexes(&self) -> Result<Vec<Finding>, LogError> {
        let mut findings = Vec::new();
        let mut after = 0i64;
        // The learner column of every event against the learner id in its bytes.
        loop {
            let rows: Vec<(i64, Option<Vec<u8>>, Vec<u8>)> = sqlx::query_as(
                "SELECT position, learner_id, body FROM events WHERE position > ? ORDER BY position LIMIT 10000",
            )
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            for (position, column, body) in rows {
                // Bytes that are not an event are the chain walk's finding, not this one's.
                let Ok(envelope) = serde_json::from_slice::<contingent_log::Envelope>(&body) else {
                    continue;
                };
                let said = envelope.learner_id.map(|l| l.as_uuid().as_bytes().to_vec());
                if column != said {
                    findings.push(Finding::new(
                        position as u64,
                        FindingKind::LearnerIndex,
                        "the learner column of the event does not match the learner id in its bytes",
                    ));
                }
            }
        }
        let indexed = self.indexed_through().await? as i64;
        // Every index entry names a stored event of that learner, in the right segment.
        let wrong: Vec<(i64,)> = sqlx::query_as(&format!(
            "SELECT i.position FROM learner_index i LEFT JOIN events e ON e.position = i.position \
             WHERE e.position IS NULL OR e.learner_id IS NOT i.learner_id \
             OR i.segment != i.position >> {SEGMENT_BITS} OR i.position > ?1 ORDER BY i.position"
        ))
        .bind(indexed)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        findings.extend(wrong.into_iter().map(|(p,)| {
            Finding::new(
                p as u64,
                FindingKind::LearnerIndex,
                "the learner index names another learner (or no event) at this position",
            )
        }));
        // And every indexed event of a learner has its entry.
        let missing: Vec<(i64,)> = sqlx::query_as(&format!(
            "SELECT e.position FROM events e WHERE e.position <= ?1 AND e.learner_id IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM learner_index i WHERE i.segment = e.position >> {SEGMENT_BITS} \
             AND i.learner_id = e.learner_id AND i.position = e.position) ORDER BY e.position"
        ))
        .bind(indexed)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        findings.extend(missing.into_iter().map(|(p,)| {
            Finding::new(
                p as u64,
                FindingKind::LearnerIndex,
                "the learner index has no entry for this event of a learner",
            )
        }));
        findings.sort_by_key(|f| f.position);
        Ok(findings)
    }

    async fn head(&self) -> Result<Head, LogError> {
        let head: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(storage)?;
        match head {
            None => Ok(Head::EMPTY),
            Some((position, hash)) => {
                let hash: [u8; 32] = hash
                    .try_into()
                    .map_err(|_| LogError::Codec("a stored hash is not 32 bytes".into()))?;
                Ok(Head {
                    position: position as u64,
                    hash: Hash(hash),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use contingent_domain::{
        Event, Level, OrganizationId, OrganizationKind, OrganizationRegistered, Snils,
        SnilsRecorded, SourceKind, Text,
    };
    use contingent_log::{Envelope, Metadata, Source, GENESIS_HASH};

    fn org_event(name: &str) -> Event {
        Event::OrganizationRegistered(OrganizationRegistered {
            organization_id: OrganizationId::generate(),
            name: Text::parse(name).expect("text"),
            municipality: Text::parse("Барнаул").expect("text"),
            kind: OrganizationKind::School,
            levels: vec![Level::General],
        })
    }

    fn meta() -> Metadata {
        Metadata {
            source: Source {
                kind: SourceKind::Region,
                id: "test".into(),
            },
            actor: "tester".into(),
            idempotency_key: None,
            request_fingerprint: None,
        }
    }

    #[tokio::test]
    async fn appends_read_back_and_refuse_a_stale_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SqliteLog::open(&dir.path().join("log.db"))
            .await
            .expect("open");
        assert_eq!(log.head().await.expect("head"), Head::EMPTY);
        let now = Utc::now();
        let first = Envelope::seal_all(
            vec![org_event("Школа 1"), org_event("Школа 2")],
            &meta(),
            1,
            GENESIS_HASH,
            now,
        )
        .expect("seal");
        log.append(&first).await.expect("append");
        let head = log.head().await.expect("head");
        assert_eq!(head.position, 2);
        assert_eq!(head.hash, first[1].hash);

        let stale = Envelope::seal_all(vec![org_event("Школа 3")], &meta(), 2, first[0].hash, now)
            .expect("seal");
        assert!(matches!(
            log.append(&stale).await,
            Err(LogError::Conflict(2))
        ));

        let back = log.read_after(0, 10).await.expect("read");
        assert_eq!(back, first);
        assert_eq!(contingent_log::verify_chain(&back), Ok(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_wait_for_a_checkpoint_being_published_instead_of_failing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SqliteLog::open(&dir.path().join("log.db"))
            .await
            .expect("open")
            .with_writer_key(Arc::new(contingent_log::WriterKey::generate()));
        let first = Envelope::seal_all(
            vec![org_event("Школа 0")],
            &meta(),
            1,
            GENESIS_HASH,
            Utc::now(),
        )
        .expect("seal");
        log.append(&first).await.expect("append");
        // Appends go on until the publisher has written checkpoints beside a good many of
        // them, however the two tasks are scheduled.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let published = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let publisher = tokio::spawn({
            let (log, stop, published) = (log.clone(), stop.clone(), published.clone());
            async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    log.publish_checkpoint().await.expect("a checkpoint");
                    published.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        let (mut position, mut hash) = (1, first[0].hash);
        let mut appended = 0;
        while appended < 300 || published.load(std::sync::atomic::Ordering::Relaxed) < 20 {
            assert!(appended < 100_000, "the publisher never got to publish");
            let events = Envelope::seal_all(
                vec![org_event(&format!("Школа {appended}"))],
                &meta(),
                position + 1,
                hash,
                Utc::now(),
            )
            .expect("seal");
            log.append(&events)
                .await
                .unwrap_or_else(|e| panic!("append {appended} beside checkpoints: {e}"));
            (position, hash) = (events[0].position(), events[0].hash);
            appended += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        publisher.await.expect("the publisher");
        assert_eq!(log.head().await.expect("head").position, 1 + appended);
    }

    #[tokio::test]
    async fn the_table_refuses_updates_and_deletes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SqliteLog::open(&dir.path().join("log.db"))
            .await
            .expect("open");
        let events = Envelope::seal_all(
            vec![org_event("Школа 1")],
            &meta(),
            1,
            GENESIS_HASH,
            Utc::now(),
        )
        .expect("seal");
        log.append(&events).await.expect("append");
        let update = sqlx::query("UPDATE events SET type = 'x'")
            .execute(&log.pool)
            .await;
        assert!(update.is_err());
        let delete = sqlx::query("DELETE FROM events").execute(&log.pool).await;
        assert!(delete.is_err());
        assert_eq!(log.head().await.expect("head").position, 1);
    }

    #[tokio::test]
    async fn a_learners_events_are_found_through_the_index_and_in_the_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SqliteLog::open(&dir.path().join("log.db"))
            .await
            .expect("open");
        let learners: Vec<LearnerId> = (0..3).map(|_| LearnerId::generate()).collect();
        let snils = Snils::parse("112-233-445 95").expect("snils");
        let (mut head, mut hash) = (0u64, GENESIS_HASH);
        let mut expected: Vec<Vec<u64>> = vec![Vec::new(); learners.len()];
        // 2.5 index batches in appends of 1,000, with events of no learner in between.
        let total = INDEX_EVERY * 5 / 2;
        while head < total {
            let events: Vec<Event> = (0..1_000)
                .map(|i| {
                    let n = head + i + 1;
                    if n % 7 == 0 {
                        org_event("Школа")
                    } else {
                        Event::SnilsRecorded(SnilsRecorded {
                            learner_id: learners[(n % 3) as usize],
                            snils,
                        })
                    }
                })
                .collect();
            let sealed =
                Envelope::seal_all(events, &meta(), head + 1, hash, Utc::now()).expect("seal");
            for e in &sealed {
                if let Some(l) = e.envelope.learner_id {
                    let i = learners.iter().position(|x| *x == l).expect("known");
                    expected[i].push(e.position());
                }
            }
            log.append(&sealed).await.expect("append");
            head += sealed.len() as u64;
            hash = sealed.last().expect("events").hash;
        }
        let indexed = log.indexed_through().await.expect("indexed");
        assert!(
            indexed >= INDEX_EVERY * 2 && indexed < head,
            "indexed through {indexed} of {head}"
        );
        for (learner, positions) in learners.iter().zip(&expected) {
            let found: Vec<u64> = log
                .read_learner(*learner)
                .await
                .expect("learner")
                .iter()
                .map(RecordedEvent::position)
                .collect();
            assert_eq!(&found, positions);
        }
        assert!(log
            .read_learner(LearnerId::generate())
            .await
            .expect("stranger")
            .is_empty());
    }

    #[tokio::test]
    async fn a_file_in_another_storage_format_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.db");
        {
            let old = SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                .await
                .expect("create");
            sqlx::raw_sql(
                "CREATE TABLE events (position INTEGER PRIMARY KEY, event_id TEXT, body BLOB);
                 INSERT INTO events VALUES (1, 'e', x'00'); PRAGMA user_version = 1;",
            )
            .execute(&old)
            .await
            .expect("old format");
            old.close().await;
        }
        let before = std::fs::read(&path).expect("read");
        let refused = SqliteLog::open(&path).await.expect_err("refused");
        assert!(
            refused.to_string().contains("storage format 1"),
            "{refused}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }
}
