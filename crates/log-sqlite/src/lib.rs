//! The embedded event log: a SQLite database file in WAL mode with `synchronous = FULL`, so an
//! append that returns is on disk. The `events` table is append-only: triggers refuse every
//! `UPDATE` and `DELETE`, and no code path issues one.
//!
//! This crate implements [`contingent_log::EventLog`] and nothing else: it does not decide,
//! project or serve.
#![deny(missing_docs)]

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use contingent_domain::LearnerId;
use contingent_log::{EventLog, Hash, Head, LogError, RawEvent, RecordedEvent};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    position   INTEGER PRIMARY KEY,
    event_id   TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    learner_id TEXT,
    body       BLOB NOT NULL,
    hash       BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS events_by_learner ON events (learner_id, position) WHERE learner_id IS NOT NULL;
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
}

fn storage(e: sqlx::Error) -> LogError {
    LogError::Storage(e.to_string())
}

impl SqliteLog {
    /// Opens (creating if needed) the log database at `path`.
    pub async fn open(path: &Path) -> Result<Self, LogError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(storage)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            // Each event of a group commit changes a random page of the learner index: keep
            // the index's pages in memory (64 MiB), and checkpoint the WAL every 64 MiB
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
        Ok(Self { pool })
    }
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
        let mut tx = self.pool.begin().await.map_err(storage)?;
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
                    .push_bind(event.envelope.event_id.to_string())
                    .push_bind(event.envelope.event.type_name())
                    .push_bind(event.envelope.learner_id.map(|l| l.to_string()))
                    .push_bind(event.body.as_slice())
                    .push_bind(event.hash.0.as_slice());
            });
            insert.build().execute(&mut *tx).await.map_err(storage)?;
        }
        tx.commit().await.map_err(storage)?;
        Ok(())
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let rows = sqlx::query(
            "SELECT body, hash FROM events WHERE position > ? ORDER BY position LIMIT ?",
        )
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        rows.into_iter().map(decode).collect()
    }

    async fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<RawEvent>, LogError> {
        let rows = sqlx::query(
            "SELECT position, body, hash FROM events WHERE position > ? ORDER BY position LIMIT ?",
        )
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        Ok(rows
            .into_iter()
            .map(|row| RawEvent {
                position: row.get::<i64, _>(0) as u64,
                body: row.get(1),
                hash: row.get(2),
            })
            .collect())
    }

    async fn read_learner(&self, learner: LearnerId) -> Result<Vec<RecordedEvent>, LogError> {
        let rows =
            sqlx::query("SELECT body, hash FROM events WHERE learner_id = ? ORDER BY position")
                .bind(learner.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(storage)?;
        rows.into_iter().map(decode).collect()
    }

    /// Closes the database, checkpointing the WAL into the main file.
    async fn close(&self) {
        self.pool.close().await;
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
        Event, Level, OrganizationId, OrganizationKind, OrganizationRegistered, SourceKind, Text,
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
}
