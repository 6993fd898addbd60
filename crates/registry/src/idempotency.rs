//! The idempotency record: which commands a caller sent with an `Idempotency-Key`, so that a
//! retry is answered with what the first one recorded instead of recording it again.
//!
//! A key belongs to its actor (the token's subject): the record is keyed by (actor, key), and
//! another account's identical key is another key. Each entry keeps the command's name, the
//! fingerprint of the body it was sent with (the same key with another body or another command
//! is refused) and the positions of the events it recorded; a replayed answer is read back from
//! the log at those positions. Entries expire after a window (`Settings::idempotency_window`,
//! 24 hours by default): a key is remembered from the time its events were recorded until the
//! window has passed, and then forgotten.
//!
//! The record lives off the heap, in a SQLite file of the writer's own
//! (`DATA/idempotency.db`, or `idempotency-<topic>.db` on Kafka), and is derived from the log:
//! every envelope carries its actor, key and fingerprint, so the writer empties the file and
//! fills it again from the events of the window whenever it loads its state from the log, and
//! adds what it appends or reads from other writers. Its size follows the window, not the log.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use contingent_log::{LogError, RecordedEvent};
use sqlx::{Row, SqlitePool};

/// The layout of the record's file (`PRAGMA user_version`).
const RECORD_FORMAT: i64 = 1;

/// Keys per lookup statement.
const KEYS_PER_QUERY: usize = 400;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS idempotency (
    actor          TEXT NOT NULL,
    key            TEXT NOT NULL,
    command        TEXT NOT NULL,
    fingerprint    TEXT,
    first_position INTEGER NOT NULL,
    last_position  INTEGER NOT NULL,
    recorded_at    INTEGER NOT NULL,
    PRIMARY KEY (actor, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_by_time ON idempotency (recorded_at);
"#;

fn storage(e: sqlx::Error) -> LogError {
    LogError::Storage(format!("idempotency record: {e}"))
}

/// Whose key: the actor (token subject) and the key they sent.
pub(crate) type KeyOf = (String, String);

/// What the record holds about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyEntry {
    /// The command sent with it.
    pub command: String,
    /// The fingerprint of the body it was sent with (none for events recorded before the log
    /// kept fingerprints).
    pub fingerprint: Option<String>,
    /// The positions of the events it recorded.
    pub first_position: u64,
    pub last_position: u64,
    /// When its events were recorded (seconds since the epoch).
    pub recorded_at: i64,
}

/// The (actor, key) of an event recorded with an idempotency key, and its entry.
pub(crate) fn entry_of(event: &RecordedEvent, command: &'static str) -> Option<(KeyOf, KeyEntry)> {
    let envelope = &event.envelope;
    let key = envelope.idempotency_key.as_ref()?;
    Some((
        (envelope.actor.clone(), key.clone()),
        KeyEntry {
            command: command.to_owned(),
            fingerprint: envelope.request_fingerprint.clone(),
            first_position: event.position(),
            last_position: event.position(),
            recorded_at: envelope.recorded_at.timestamp(),
        },
    ))
}

/// Adds an event's entry to `entries`: a command's later events extend its first one's; a
/// later command under the same key (used again after it expired) replaces it.
pub(crate) fn gather(entries: &mut HashMap<KeyOf, KeyEntry>, key: KeyOf, entry: KeyEntry) {
    match entries.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut held) => {
            let e = held.get_mut();
            if entry.first_position == e.last_position + 1
                && entry.command == e.command
                && entry.fingerprint == e.fingerprint
                && entry.recorded_at == e.recorded_at
            {
                e.last_position = entry.last_position;
            } else {
                *e = entry;
            }
        }
        std::collections::hash_map::Entry::Vacant(free) => {
            free.insert(entry);
        }
    }
}

/// The writer's idempotency record.
#[derive(Clone, Debug)]
pub(crate) struct KeyRecord {
    pool: SqlitePool,
    window: Duration,
}

impl KeyRecord {
    /// Opens (creating if needed) the record at `path`, remembering keys for `window`.
    pub async fn open(path: &Path, window: Duration) -> Result<Self, LogError> {
        let pool = crate::markbook::open_derived(path, SCHEMA, RECORD_FORMAT)
            .await
            .map_err(storage)?;
        Ok(Self { pool, window })
    }

    /// The oldest time (seconds since the epoch) a remembered key's events may have.
    fn horizon(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp()
            .saturating_sub(i64::try_from(self.window.as_secs()).unwrap_or(i64::MAX))
    }

    /// Whether an event recorded at `recorded_at` is inside the window.
    pub fn remembers(&self, recorded_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        recorded_at.timestamp() >= self.horizon(now)
    }

    /// Forgets everything (before it is filled again from the log).
    pub async fn clear(&self) -> Result<(), LogError> {
        sqlx::query("DELETE FROM idempotency")
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// Writes entries (a later one for the same key extends or replaces it) and forgets the
    /// keys that have left the window.
    pub async fn insert(&self, entries: &HashMap<KeyOf, KeyEntry>) -> Result<(), LogError> {
        let mut tx = self.pool.begin().await.map_err(storage)?;
        let list: Vec<(&KeyOf, &KeyEntry)> = entries.iter().collect();
        for chunk in list.chunks(KEYS_PER_QUERY) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO idempotency (actor, key, command, fingerprint, first_position, \
                 last_position, recorded_at) ",
            );
            insert.push_values(chunk, |mut row, ((actor, key), e)| {
                row.push_bind(actor.as_str())
                    .push_bind(key.as_str())
                    .push_bind(e.command.as_str())
                    .push_bind(e.fingerprint.as_deref())
                    .push_bind(e.first_position as i64)
                    .push_bind(e.last_position as i64)
                    .push_bind(e.recorded_at);
            });
            // The same command's later events (read in a later batch of the log) extend it;
            // anything else under the key (used again after it expired) replaces it.
            insert.push(
                " ON CONFLICT (actor, key) DO UPDATE SET \
                 command = excluded.command, fingerprint = excluded.fingerprint, \
                 recorded_at = excluded.recorded_at, last_position = excluded.last_position, \
                 first_position = CASE WHEN excluded.first_position = idempotency.last_position + 1 \
                   AND excluded.command = idempotency.command \
                   AND excluded.fingerprint IS idempotency.fingerprint \
                   AND excluded.recorded_at = idempotency.recorded_at \
                   THEN idempotency.first_position ELSE excluded.first_position END",
            );
            insert.build().execute(&mut *tx).await.map_err(storage)?;
        }
        sqlx::query("DELETE FROM idempotency WHERE recorded_at < ?1")
            .bind(self.horizon(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(())
    }

    /// The entries of `keys` that are still inside the window at `now`.
    pub async fn lookup(
        &self,
        keys: &[KeyOf],
        now: DateTime<Utc>,
    ) -> Result<HashMap<KeyOf, KeyEntry>, LogError> {
        let mut found = HashMap::new();
        let horizon = self.horizon(now);
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            // A join from the keys asked for: each is one search of the primary key (a row-value
            // `IN` would scan every key of the window).
            let mut query = sqlx::QueryBuilder::new(
                "SELECT i.actor AS actor, i.key AS key, \
                 i.command AS command, i.fingerprint AS fingerprint, \
                 i.first_position AS first_position, i.last_position AS last_position, \
                 i.recorded_at AS recorded_at FROM (VALUES ",
            );
            let mut list = query.separated(", ");
            for (actor, key) in chunk {
                list.push("(");
                list.push_bind_unseparated(actor.as_str());
                list.push_unseparated(", ");
                list.push_bind_unseparated(key.as_str());
                list.push_unseparated(")");
            }
            query.push(
                ") AS wanted JOIN idempotency AS i \
                 ON i.actor = wanted.column1 AND i.key = wanted.column2 WHERE i.recorded_at >= ",
            );
            query.push_bind(horizon);
            let rows = query.build().fetch_all(&self.pool).await.map_err(storage)?;
            for row in rows {
                found.insert(
                    (row.get("actor"), row.get("key")),
                    KeyEntry {
                        command: row.get("command"),
                        fingerprint: row.get("fingerprint"),
                        first_position: row.get::<i64, _>("first_position") as u64,
                        last_position: row.get::<i64, _>("last_position") as u64,
                        recorded_at: row.get("recorded_at"),
                    },
                );
            }
        }
        Ok(found)
    }

    /// Closes the file.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Writes entries to the record in a task of its own, off the writer's path, and says which
/// keys are written. Until a key is reported written the writer keeps it in memory.
pub(crate) struct KeyWriter {
    to_write: tokio::sync::mpsc::UnboundedSender<HashMap<KeyOf, KeyEntry>>,
    written: tokio::sync::mpsc::UnboundedReceiver<Vec<KeyOf>>,
    task: tokio::task::JoinHandle<()>,
}

impl KeyWriter {
    /// Starts writing to `record`; the task ends when the writer is dropped.
    pub fn spawn(record: KeyRecord) -> Self {
        let (to_write, mut queue) =
            tokio::sync::mpsc::unbounded_channel::<HashMap<KeyOf, KeyEntry>>();
        let (done, written) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(mut entries) = queue.recv().await {
                // What queued meanwhile goes in the same transaction, later entries last.
                while let Ok(more) = queue.try_recv() {
                    entries.extend(more);
                }
                match record.insert(&entries).await {
                    Ok(()) => {
                        let _ = done.send(entries.into_keys().collect());
                    }
                    Err(error) => tracing::warn!(
                        %error,
                        "writing the idempotency record failed; the writer keeps the keys in memory"
                    ),
                }
            }
        });
        Self {
            to_write,
            written,
            task,
        }
    }

    /// Writes what is queued, then stops.
    pub async fn finish(self) {
        drop(self.to_write);
        let _ = self.task.await;
    }

    /// Queues entries of commands whose events are durable.
    pub fn write(&self, entries: HashMap<KeyOf, KeyEntry>) {
        if !entries.is_empty() {
            let _ = self.to_write.send(entries);
        }
    }

    /// The keys written since the last call.
    pub fn written(&mut self) -> Vec<KeyOf> {
        let mut keys = Vec::new();
        while let Ok(more) = self.written.try_recv() {
            keys.extend(more);
        }
        keys
    }
}
