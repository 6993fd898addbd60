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

use contingent_domain::{ClassId, LearnerId, Mark, MarkId, MarkOrigin, MarkRef, Text};
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
    at         INTEGER NOT NULL,
    subject    TEXT,
    lesson_on  TEXT
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS book (
    one     INTEGER PRIMARY KEY CHECK (one = 1),
    through INTEGER NOT NULL,
    hash    BLOB NOT NULL
) STRICT;
INSERT OR IGNORE INTO book (one, through, hash) VALUES (1, 0, x'');
"#;

/// The layout of the mark book's file (`PRAGMA user_version`).
const BOOK_FORMAT: i64 = 2;

/// Opens (creating if needed) a SQLite file of the writer's own that is derived from the log
/// (the mark book, the idempotency record), with `schema` applied. Such a file need not survive
/// a crash intact: what it loses is filled again from the log, so it is written without waiting
/// for the disk on every commit. A file of another layout than `format` is made again from
/// nothing (the writer fills it from the log).
pub(crate) async fn open_derived(
    path: &Path,
    schema: &str,
    format: i64,
) -> Result<SqlitePool, sqlx::Error> {
    let pool = connect_derived(path).await?;
    let found: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&pool)
        .await?;
    let empty: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_schema")
        .fetch_one(&pool)
        .await?;
    let pool = if found != format && empty > 0 {
        pool.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if let Err(error) = std::fs::remove_file(&file) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    return Err(sqlx::Error::Io(error));
                }
            }
        }
        tracing::info!(path = %path.display(), found, format, "a derived file of another layout is made again from the log");
        connect_derived(path).await?
    } else {
        pool
    };
    sqlx::raw_sql(schema).execute(&pool).await?;
    sqlx::raw_sql(&format!("PRAGMA user_version = {format}"))
        .execute(&pool)
        .await?;
    Ok(pool)
}

async fn connect_derived(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .pragma("cache_size", "-32768");
    SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
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
        let pool = open_derived(path, SCHEMA, BOOK_FORMAT)
            .await
            .map_err(storage)?;
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
                "INSERT INTO marks (mark_id, learner_id, class_id, value, at, subject, lesson_on) ",
            );
            insert.push_values(chunk, |mut row, (id, m)| {
                row.push_bind(id.as_uuid().as_bytes().to_vec())
                    .push_bind(m.learner_id.as_uuid().as_bytes().to_vec())
                    .push_bind(m.class_id.as_uuid().as_bytes().to_vec())
                    .push_bind(m.value.as_str())
                    .push_bind(m.at as i64)
                    .push_bind(m.origin.as_ref().map(|o| o.subject.as_str().to_owned()))
                    .push_bind(m.origin.as_ref().map(|o| o.lesson_date.to_string()));
            });
            // The newer change's value wins; what the mark was recorded for is kept.
            insert.push(
                " ON CONFLICT (mark_id) DO UPDATE SET \
                 value = CASE WHEN excluded.at > marks.at THEN excluded.value ELSE marks.value END, \
                 at = max(marks.at, excluded.at), \
                 subject = coalesce(marks.subject, excluded.subject), \
                 lesson_on = coalesce(marks.lesson_on, excluded.lesson_on)",
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
                "SELECT mark_id, learner_id, class_id, value, at, subject, lesson_on FROM marks \
                 WHERE mark_id IN (",
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
    let subject: Option<String> = row.get(5);
    let lesson_on: Option<String> = row.get(6);
    let bad = |e: String| LogError::Codec(format!("mark book: {e}"));
    let origin = match (subject, lesson_on) {
        (Some(subject), Some(date)) => Some(MarkOrigin {
            subject: Text::parse(&subject).map_err(|e| bad(e.to_string()))?,
            lesson_date: date
                .parse()
                .map_err(|e: chrono::ParseError| bad(e.to_string()))?,
        }),
        _ => None,
    };
    Ok((
        MarkId::from_uuid(uuid(row, 0)?),
        MarkRef {
            learner_id: LearnerId::from_uuid(uuid(row, 1)?),
            class_id: ClassId::from_uuid(uuid(row, 2)?),
            value: Mark::parse(&value).map_err(|e| LogError::Codec(format!("mark book: {e}")))?,
            origin,
            at: at as u64,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A book written in the layout before marks kept their subject and lesson date is made
    /// again from nothing (its position back at 0, so the writer fills it from the log).
    #[tokio::test]
    async fn a_book_of_an_older_layout_is_made_again() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("marks.db");
        {
            let pool = connect_derived(&path).await.expect("old book");
            sqlx::raw_sql(
                "CREATE TABLE marks (mark_id BLOB PRIMARY KEY, learner_id BLOB NOT NULL, \
                 class_id BLOB NOT NULL, value TEXT NOT NULL, at INTEGER NOT NULL) STRICT, WITHOUT ROWID; \
                 CREATE TABLE book (one INTEGER PRIMARY KEY CHECK (one = 1), through INTEGER NOT NULL, hash BLOB NOT NULL) STRICT; \
                 INSERT INTO book VALUES (1, 500, x'00');",
            )
            .execute(&pool)
            .await
            .expect("old layout");
            pool.close().await;
        }
        let book = MarkBook::open(&path).await.expect("opens");
        assert_eq!(book.through().await.expect("through").0, 0);
        let mut marks = vec![(
            MarkId::generate(),
            MarkRef {
                learner_id: LearnerId::generate(),
                class_id: ClassId::generate(),
                value: Mark::Five,
                origin: Some(MarkOrigin {
                    subject: Text::parse("Математика").expect("text"),
                    lesson_date: chrono::NaiveDate::from_ymd_opt(2025, 9, 10).expect("date"),
                }),
                at: 7,
            },
        )];
        book.settle(&mut marks, 7, Hash([1; 32]))
            .await
            .expect("settled");
        let found = book.lookup(&[marks[0].0]).await.expect("found");
        assert_eq!(found, marks);
        book.close().await;
    }
}
