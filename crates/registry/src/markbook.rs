//! The mark book: where the writer keeps the marks it no longer holds in memory.
//!
//! A region records ~65 million marks a school year, and a correction may name any of them, so
//! the writer cannot hold them all. Its [`State`] holds the marks changed recently; once they
//! are durable in the log and there are many, the writer settles them here, a SQLite file of
//! its own (`DATA/marks.db`), and before deciding a batch it recalls the marks the batch names.
//! The book is derived from the log and never consulted for anything else: it records through
//! which position (and that position's hash) it is complete, and a book that does not match the
//! log it is opened with is emptied and filled again from the log.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use contingent_domain::{ClassId, LearnerId, Mark, MarkId, MarkRef};
use contingent_log::{Hash, LogError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

/// Ids per lookup statement.
const IDS_PER_QUERY: usize = 500;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS marks (
    mark_id    BLOB PRIMARY KEY,
    learner_id BLOB NOT NULL,
    class_id   BLOB NOT NULL,
    value      TEXT NOT NULL,
    at         INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS book (
    one     INTEGER PRIMARY KEY CHECK (one = 1),
    through INTEGER NOT NULL,
    hash    BLOB NOT NULL
) STRICT;
INSERT OR IGNORE INTO book (one, through, hash) VALUES (1, 0, x'');
"#;

/// Opens (creating if needed) a SQLite file of the writer's own that is derived from the log
/// (the mark book, the idempotency record), with `schema` applied. Such a file need not survive
/// a crash intact: what it loses is filled again from the log, so it is written without waiting
/// for the disk on every commit.
pub(crate) async fn open_derived(path: &Path, schema: &str) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .pragma("cache_size", "-32768");
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await?;
    sqlx::raw_sql(schema).execute(&pool).await?;
    Ok(pool)
}

fn storage(e: sqlx::Error) -> LogError {
    LogError::Storage(format!("mark book: {e}"))
}

/// The writer's mark book.
#[derive(Clone, Debug)]
pub(crate) struct MarkBook {
    pool: SqlitePool,
}

impl MarkBook {
    /// Opens (creating if needed) the book at `path`.
    pub async fn open(path: &Path) -> Result<Self, LogError> {
        let pool = open_derived(path, SCHEMA).await.map_err(storage)?;
        Ok(Self { pool })
    }

    /// The position through which the book holds every mark, and that position's hash.
    pub async fn through(&self) -> Result<(u64, Vec<u8>), LogError> {
        let (through, hash): (i64, Vec<u8>) =
            sqlx::query_as("SELECT through, hash FROM book WHERE one = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(storage)?;
        Ok((through as u64, hash))
    }

    /// Forgets everything (the book was made from another log).
    pub async fn clear(&self) -> Result<(), LogError> {
        sqlx::raw_sql("DELETE FROM marks; UPDATE book SET through = 0, hash = x'' WHERE one = 1;")
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// Writes `marks` (each newer than what the book has of it wins) and moves the book's
    /// position forward to `through`.
    pub async fn settle(
        &self,
        marks: &mut [(MarkId, MarkRef)],
        through: u64,
        hash: Hash,
    ) -> Result<(), LogError> {
        // Key order: the B-tree takes them page by page.
        marks.sort_unstable_by_key(|(id, _)| *id);
        let mut tx = self.pool.begin().await.map_err(storage)?;
        for chunk in marks.chunks(IDS_PER_QUERY) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO marks (mark_id, learner_id, class_id, value, at) ",
            );
            insert.push_values(chunk, |mut row, (id, m)| {
                row.push_bind(id.as_uuid().as_bytes().to_vec())
                    .push_bind(m.learner_id.as_uuid().as_bytes().to_vec())
                    .push_bind(m.class_id.as_uuid().as_bytes().to_vec())
                    .push_bind(m.value.as_str())
                    .push_bind(m.at as i64);
            });
            insert.push(
                " ON CONFLICT (mark_id) DO UPDATE SET value = excluded.value, at = excluded.at \
                 WHERE excluded.at > marks.at",
            );
            insert.build().execute(&mut *tx).await.map_err(storage)?;
        }
        sqlx::query("UPDATE book SET through = ?1, hash = ?2 WHERE one = 1 AND through < ?1")
            .bind(through as i64)
            .bind(hash.0.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(())
    }

    /// The marks of `ids` that the book has.
    pub async fn lookup(&self, ids: &[MarkId]) -> Result<Vec<(MarkId, MarkRef)>, LogError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT mark_id, learner_id, class_id, value, at FROM marks WHERE mark_id IN (",
            );
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id.as_uuid().as_bytes().to_vec());
            }
            query.push(")");
            for row in query.build().fetch_all(&self.pool).await.map_err(storage)? {
                found.push(decode(&row)?);
            }
        }
        Ok(found)
    }

    /// Closes the book.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn uuid(row: &sqlx::sqlite::SqliteRow, column: usize) -> Result<Uuid, LogError> {
    let bytes: Vec<u8> = row.get(column);
    Uuid::from_slice(&bytes).map_err(|e| LogError::Codec(format!("mark book: {e}")))
}

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<(MarkId, MarkRef), LogError> {
    let value: String = row.get(3);
    let at: i64 = row.get(4);
    Ok((
        MarkId::from_uuid(uuid(row, 0)?),
        MarkRef {
            learner_id: LearnerId::from_uuid(uuid(row, 1)?),
            class_id: ClassId::from_uuid(uuid(row, 2)?),
            value: Mark::parse(&value).map_err(|e| LogError::Codec(format!("mark book: {e}")))?,
            at: at as u64,
        },
    ))
}
