//! The access journal: every read of a learner's personal data by an official, and every
//! refused request of a caller with a valid token, with who, when, which learner and which
//! endpoint; requests without a valid token are summed up in one entry per period. Kept in its own SQLite
//! file (`journal.db`) or, when the read models are in PostgreSQL, in a table of that database
//! shared by every API process; append-only like the log (triggers refuse changes); a request
//! is answered only after its entry is committed, and concurrent entries share one commit
//! (on SQLite written on the SQLite driver directly, by a thread of the journal's own).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor, Row};
use tokio::sync::{mpsc, oneshot};

use crate::registry::RegistryError;

const SQLITE_SCHEMA: &str = r#"
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

/// The same table in PostgreSQL, shared by every API process of the region. The lock
/// serializes concurrent openers creating it.
const POSTGRES_SCHEMA: &str = r#"
SELECT pg_advisory_xact_lock(7165119440512434291);
CREATE TABLE IF NOT EXISTS access_journal (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         TEXT NOT NULL,
    subject    TEXT NOT NULL,
    role       TEXT NOT NULL,
    learner_id TEXT,
    method     TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    status     BIGINT NOT NULL,
    outcome    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS access_journal_by_learner ON access_journal (learner_id, id) WHERE learner_id IS NOT NULL;
CREATE OR REPLACE FUNCTION access_journal_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'the access journal is append-only'; END $$;
DROP TRIGGER IF EXISTS access_journal_is_never_changed ON access_journal;
CREATE TRIGGER access_journal_is_never_changed BEFORE UPDATE OR DELETE OR TRUNCATE ON access_journal
FOR EACH STATEMENT EXECUTE FUNCTION access_journal_is_append_only();
"#;

/// Where the journal lives.
#[derive(Debug, Clone)]
pub enum JournalLocation {
    /// A SQLite file of this process (`DATA/journal.db`).
    File(PathBuf),
    /// A PostgreSQL database shared by every API process.
    Postgres(String),
}

/// One entry of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    pool: AnyPool,
    tx: mpsc::Sender<Pending>,
}

impl Journal {
    /// Opens (creating if needed) the journal and starts its writer.
    pub async fn open(location: &JournalLocation) -> Result<Self, RegistryError> {
        sqlx::any::install_default_drivers();
        let (options, schema) = match location {
            JournalLocation::File(path) => {
                let path = std::path::absolute(path).map_err(sqlx::Error::Io)?;
                let url = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .to_url_lossy();
                (AnyConnectOptions::from_url(&url)?, SQLITE_SCHEMA)
            }
            JournalLocation::Postgres(url) => (url.parse::<AnyConnectOptions>()?, POSTGRES_SCHEMA),
        };
        let sqlite = matches!(location, JournalLocation::File(_));
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA busy_timeout = 30000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(schema).execute(&mut *tx).await?;
        tx.commit().await?;
        let (tx, rx) = mpsc::channel(4096);
        match location {
            JournalLocation::File(path) => {
                let opened = rusqlite::Connection::open(path).and_then(|conn| {
                    conn.execute_batch(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA busy_timeout = 30000;",
                    )?;
                    Ok(conn)
                });
                let conn = opened.map_err(|e| {
                    RegistryError::Unavailable(format!("opening the access journal: {e}"))
                })?;
                std::thread::Builder::new()
                    .name("access-journal".into())
                    .spawn(move || write_to_file(conn, rx))
                    .map_err(sqlx::Error::Io)?;
            }
            JournalLocation::Postgres(_) => {
                tokio::spawn(write_to_postgres(pool.clone(), rx));
            }
        }
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
        let rows = sqlx::query("SELECT at, subject, role, learner_id, method, endpoint, status, outcome FROM access_journal WHERE learner_id = $1 ORDER BY id")
            .bind(learner_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(entry_of).collect::<Result<_, _>>()?)
    }

    /// The newest `limit` entries about a learner, newest first, and how many there are in all.
    pub async fn latest_for_learner(
        &self,
        learner_id: &str,
        limit: u32,
    ) -> Result<(Vec<JournalEntry>, u64), RegistryError> {
        let rows = sqlx::query("SELECT at, subject, role, learner_id, method, endpoint, status, outcome FROM access_journal WHERE learner_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(learner_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let total = sqlx::query("SELECT count(*) AS n FROM access_journal WHERE learner_id = $1")
            .bind(learner_id)
            .fetch_one(&self.pool)
            .await?;
        Ok((
            rows.iter().map(entry_of).collect::<Result<_, _>>()?,
            total.get::<i64, _>("n").max(0) as u64,
        ))
    }

    /// How many entries the journal holds.
    pub async fn count(&self) -> Result<u64, RegistryError> {
        let row = sqlx::query("SELECT count(*) AS n FROM access_journal")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<i64, _>("n").max(0) as u64)
    }

    /// Entries of requests refused without a valid token: one per period, with the count.
    pub async fn anonymous_summaries(&self) -> Result<Vec<JournalEntry>, RegistryError> {
        let rows = sqlx::query("SELECT at, subject, role, learner_id, method, endpoint, status, outcome FROM access_journal WHERE subject = 'anonymous' ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(entry_of).collect::<Result<_, _>>()?)
    }

    /// Closes the journal file.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The entries waiting after `batch`'s first, up to a batch's size: one commit for them all.
fn gather(batch: &mut Vec<Pending>, rx: &mut mpsc::Receiver<Pending>) {
    while batch.len() < 512 {
        match rx.try_recv() {
            Ok(p) => batch.push(p),
            Err(_) => break,
        }
    }
}

/// Answers every entry of `batch` with the outcome of its commit.
fn answer(batch: &mut Vec<Pending>, result: Result<(), String>) {
    if let Err(error) = &result {
        tracing::error!(%error, "writing the access journal failed");
    }
    for p in batch.drain(..) {
        let _ = p.done.send(result.clone());
    }
}

const INSERT_ONE: &str = "INSERT INTO access_journal \
    (at, subject, role, learner_id, method, endpoint, status, outcome) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// The journal's writer on its SQLite file, on a thread of its own: each batch one
/// transaction of one prepared insert per entry, synced before its entries are answered.
/// (Through the pool, a batch was one statement of up to 4,096 parameters, prepared anew for
/// each length and bound by name one by one.)
fn write_to_file(mut conn: rusqlite::Connection, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        gather(&mut batch, &mut rx);
        let result = insert_into_file(&mut conn, &batch).map_err(|e| e.to_string());
        answer(&mut batch, result);
    }
}

fn insert_into_file(conn: &mut rusqlite::Connection, batch: &[Pending]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(INSERT_ONE)?;
        for Pending { entry: e, .. } in batch {
            insert.execute((
                e.at.to_rfc3339(),
                &e.subject,
                &e.role,
                &e.learner_id,
                &e.method,
                &e.endpoint,
                i64::from(e.status),
                &e.outcome,
            ))?;
        }
    }
    tx.commit()
}

/// The journal's writer on PostgreSQL: each batch one multi-row insert.
async fn write_to_postgres(pool: AnyPool, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        gather(&mut batch, &mut rx);
        // Numbered placeholders, which both engines accept (the Any driver's query builder
        // writes `?`, which PostgreSQL does not).
        let mut sql = String::from(
            "INSERT INTO access_journal (at, subject, role, learner_id, method, endpoint, status, outcome) VALUES ",
        );
        for i in 0..batch.len() {
            let n = i * 8;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 7,
                n + 8
            ));
        }
        let mut insert = sqlx::query(&sql);
        for p in &batch {
            let e = &p.entry;
            insert = insert
                .bind(e.at.to_rfc3339())
                .bind(e.subject.clone())
                .bind(e.role.clone())
                .bind(e.learner_id.clone())
                .bind(e.method.clone())
                .bind(e.endpoint.clone())
                .bind(i64::from(e.status))
                .bind(e.outcome.clone());
        }
        let result = insert
            .execute(&pool)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        answer(&mut batch, result);
    }
}

/// An entry as stored, read strictly: a missing column, a NULL or another type, a time that is
/// not one or a status out of range is an error, not a default.
fn entry_of(r: &sqlx::any::AnyRow) -> Result<JournalEntry, sqlx::Error> {
    let undecodable = |column: &str, why: String| sqlx::Error::ColumnDecode {
        index: column.into(),
        source: why.into(),
    };
    let at: String = r.try_get("at")?;
    let status: i64 = r.try_get("status")?;
    Ok(JournalEntry {
        at: at
            .parse()
            .map_err(|e| undecodable("at", format!("{at:?}: {e}")))?,
        subject: r.try_get("subject")?,
        role: r.try_get("role")?,
        learner_id: r.try_get("learner_id")?,
        method: r.try_get("method")?,
        endpoint: r.try_get("endpoint")?,
        status: u16::try_from(status)
            .map_err(|e| undecodable("status", format!("{status}: {e}")))?,
        outcome: r.try_get("outcome")?,
    })
}
