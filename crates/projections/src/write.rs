//! Writing a batch: each read model's [`ChangeSet`] of its events and the move of its position,
//! by the store's writer — `crate::sqlite_write` (prepared statements on the SQLite driver
//! directly; the whole batch in one transaction) or `crate::pg_write` (`COPY` into staging
//! tables, then set-based statements; a large batch in two transactions on two connections at
//! once, each holding whole read models). A read model's rows and its position are always
//! committed together.

use crate::changes::ChangeSet;
use crate::pg_write::PgWriter;
use crate::sqlite_write::SqliteWriter;

/// Rows and statements written by one batch (or, summed, by a projector).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    /// Rows upserted, updated or deleted.
    pub rows: usize,
    /// Statements executed (each `COPY` and each per-row execution counted once).
    pub statements: usize,
}

/// A projection's position moved by a batch: from the value the projector started from (0 when
/// none is stored) to the batch's last event.
pub(crate) struct PositionMove {
    pub(crate) projection: &'static str,
    pub(crate) from: u64,
    pub(crate) to: u64,
}

/// One read model's part of a batch: its row changes and the move of its position.
pub(crate) struct Part {
    pub(crate) changes: ChangeSet,
    pub(crate) position: PositionMove,
}

/// The parts' change sets and the moves of their positions, to be written in one transaction.
pub(crate) fn merged(parts: Vec<Part>) -> (Vec<ChangeSet>, Vec<PositionMove>) {
    parts.into_iter().map(|p| (p.changes, p.position)).unzip()
}

/// Why a batch was not written.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// SQLite refused a statement or the commit.
    Sqlite(rusqlite::Error),
    /// PostgreSQL refused a statement or the commit, or did not answer.
    Postgres(sqlx::Error),
    /// Another projector moved this projection first; nothing was written.
    Overtaken(&'static str),
    /// The store was closed; nothing was written.
    Closed,
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Sqlite(e)
    }
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Postgres(e)
    }
}

/// The connection(s) a read store writes batches on.
#[derive(Clone, Debug)]
pub(crate) enum Writer {
    /// SQLite: one connection of its own, used off the async runtime's threads.
    Sqlite(SqliteWriter),
    /// PostgreSQL: a small pool of its own.
    Postgres(PgWriter),
}

impl Writer {
    /// Writes the batch's parts and moves their positions: each read model's part all or
    /// nothing (on SQLite the whole batch all or nothing). On an error some read models' parts
    /// may have been committed (on PostgreSQL): their stored positions say which.
    pub(crate) async fn write(&self, parts: Vec<Part>) -> Result<FlushStats, WriteError> {
        match self {
            Writer::Sqlite(writer) => {
                let writer = writer.clone();
                let (changes, moves) = merged(parts);
                tokio::task::spawn_blocking(move || writer.write(changes, &moves))
                    .await
                    .unwrap_or_else(|joined| std::panic::resume_unwind(joined.into_panic()))
            }
            Writer::Postgres(writer) => writer.write(parts).await,
        }
    }

    /// Closes its connections.
    pub(crate) async fn close(&self) {
        match self {
            Writer::Sqlite(writer) => writer.close(),
            Writer::Postgres(writer) => writer.close().await,
        }
    }
}
