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

/// `items` in two groups of about equal weight (the heaviest first, each to the lighter group):
/// what two connections work on at once.
pub(crate) fn halves<T>(mut items: Vec<T>, weight: impl Fn(&T) -> u64) -> (Vec<T>, Vec<T>) {
    items.sort_by_key(|item| std::cmp::Reverse(weight(item)));
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let (mut in_first, mut in_second) = (0u64, 0u64);
    for item in items {
        if in_first <= in_second {
            in_first += weight(&item);
            first.push(item);
        } else {
            in_second += weight(&item);
            second.push(item);
        }
    }
    (first, second)
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

#[cfg(test)]
mod tests {
    use super::halves;

    #[test]
    fn halves_keep_every_item_and_balance_the_weights() {
        let (a, b) = halves(vec![5u64, 1, 9, 3, 4, 4], |w| *w);
        let (sum_a, sum_b): (u64, u64) = (a.iter().sum(), b.iter().sum());
        assert_eq!(a.len() + b.len(), 6);
        assert_eq!(sum_a + sum_b, 26);
        assert!(sum_a.abs_diff(sum_b) <= 9, "{a:?} {b:?}");
        // The heaviest alone against the rest when it outweighs them.
        let (a, b) = halves(vec![1u64, 100, 2], |w| *w);
        assert_eq!((a, b), (vec![100], vec![2, 1]));
        assert_eq!(halves(Vec::<u64>::new(), |w| *w), (vec![], vec![]));
    }
}
