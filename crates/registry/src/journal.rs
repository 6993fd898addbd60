//! The access journal: every read of a learner's personal data by an official, and every
//! refused request, with who, when, which learner and which endpoint. Kept in its own SQLite
//! file (`journal.db`), append-only like the log; a request is answered only after its entry
//! is committed, and concurrent entries share one commit.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::registry::RegistryError;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS access_journal (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    subject    TEXT NOT NULL,
    role       TEXT NOT NULL,
    learner_id TEXT,
    method     TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    status     INTEGER NOT NULL,
    outcome    TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS access_journal_by_learner ON access_journal (learner_id, id) WHERE learner_id IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS access_journal_is_never_updated BEFORE UPDATE ON access_journal
BEGIN SELECT RAISE(ABORT, 'the access journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS access_journal_is_never_deleted BEFORE DELETE ON access_journal
BEGIN SELECT RAISE(ABORT, 'the access journal is append-only'); END;
"#;

/// One entry of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who: the token's subject, or "anonymous" when no valid token was given.
    pub subject: String,
    /// Their role ("none" without a valid token).
    pub role: String,
    /// The learner whose data was read or asked for.
    pub learner_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// The path asked for.
    pub endpoint: String,
    /// The status answered.
    pub status: u16,
    /// read, refused or unauthenticated.
    pub outcome: String,
}

struct Pending {
    entry: JournalEntry,
    done: oneshot::Sender<Result<(), String>>,
}

/// The journal: a writer task behind a channel.
pub struct Journal {
    pool: SqlitePool,
    tx: mpsc::Sender<Pending>,
}

impl Journal {
    /// Opens (creating if needed) the journal file and starts its writer.
    pub async fn open(path: &Path) -> Result<Self, RegistryError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(write_entries(pool.clone(), rx));
        Ok(Self { pool, tx })
    }

    /// Records an entry; returns once it is committed.
    pub async fn record(&self, entry: JournalEntry) -> Result<(), RegistryError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending { entry, done })
            .await
            .map_err(|_| RegistryError::Unavailable("the access journal has stopped".into()))?;
        wait.await
            .map_err(|_| RegistryError::Unavailable("the access journal has stopped".into()))?
            .map_err(RegistryError::Unavailable)
    }

    /// Records several entries; returns once all are committed.
    pub async fn record_all(&self, entries: Vec<JournalEntry>) -> Result<(), RegistryError> {
        let mut waits = Vec::with_capacity(entries.len());
        for entry in entries {
            let (done, wait) = oneshot::channel();
            self.tx
                .send(Pending { entry, done })
                .await
                .map_err(|_| RegistryError::Unavailable("the access journal has stopped".into()))?;
            waits.push(wait);
        }
        for wait in waits {
            wait.await
                .map_err(|_| RegistryError::Unavailable("the access journal has stopped".into()))?
                .map_err(RegistryError::Unavailable)?;
        }
        Ok(())
    }

    /// Entries about a learner, oldest first.
    pub async fn for_learner(&self, learner_id: &str) -> Result<Vec<JournalEntry>, RegistryError> {
        let rows = sqlx::query("SELECT * FROM access_journal WHERE learner_id = ? ORDER BY id")
            .bind(learner_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| JournalEntry {
                at: r.get::<String, _>("at").parse().unwrap_or_default(),
                subject: r.get("subject"),
                role: r.get("role"),
                learner_id: r.get("learner_id"),
                method: r.get("method"),
                endpoint: r.get("endpoint"),
                status: r.get::<i64, _>("status") as u16,
                outcome: r.get("outcome"),
            })
            .collect())
    }

    /// Closes the journal file.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn write_entries(pool: SqlitePool, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO access_journal (at, subject, role, learner_id, method, endpoint, status, outcome) ",
        );
        insert.push_values(&batch, |mut row, p| {
            let e = &p.entry;
            row.push_bind(e.at.to_rfc3339())
                .push_bind(e.subject.clone())
                .push_bind(e.role.clone())
                .push_bind(e.learner_id.clone())
                .push_bind(e.method.clone())
                .push_bind(e.endpoint.clone())
                .push_bind(i64::from(e.status))
                .push_bind(e.outcome.clone());
        });
        let result = insert
            .build()
            .execute(&pool)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Err(error) = &result {
            tracing::error!(%error, "writing the access journal failed");
        }
        for p in batch.drain(..) {
            let _ = p.done.send(result.clone());
        }
    }
}
