//! Writes a batch to a SQLite read store on the SQLite driver directly (`rusqlite`), on a
//! connection of its own: one prepared statement per table and kind of change, kept across
//! batches, executed once per row with its values bound in place.
//!
//! An upsert per full row, an `UPDATE` per patched row (of the columns it sets), a `DELETE` per
//! deleted row, and the projections' positions moved by compare and set, all in one
//! transaction. What it saves over multi-row statements through `sqlx::Any`: building and
//! parsing a statement of thousands of parameters per batch, copying every value into an
//! `AnyValue`, and sending each statement to SQLite's worker thread and back.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params_from_iter, Connection, OpenFlags, ToSql};

use crate::changes::{Change, ChangeSet, Table, Value};
use crate::write::{FlushStats, PositionMove, WriteError};

/// Prepared statements kept per connection: five kinds of change over the read models' tables.
const STATEMENT_CACHE: usize = 128;

/// A batch of this many rows or more is written by a projector behind the log (catching up, or
/// a read model being built); a projector at the head writes what arrived since its last batch.
const BEHIND_FROM_ROWS: usize = 1_000;

/// WAL pages after which a commit checkpoints the WAL into the database file: 64 MiB for a
/// projector at the head (as every other connection of the store), 1 GiB for one behind. Behind,
/// nearly every mark and attendance record changes an index page at a random place (a learner's,
/// a class's), and a checkpoint copies each page the WAL holds once however often it was
/// changed since the last one, so a longer WAL copies fewer pages per event; the checkpoint
/// runs in the committing connection, which waits for it. Back at the head, the next small
/// batch checkpoints the long WAL at once and later ones keep it short.
const CHECKPOINT_AT_HEAD: i64 = 16_384;
const CHECKPOINT_BEHIND: i64 = 262_144;

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Int(Some(i)) => ValueRef::Integer(*i),
            Value::Text(Some(s)) => ValueRef::Text(s.as_bytes()),
            Value::Int(None) | Value::Text(None) => ValueRef::Null,
        }))
    }
}

/// The read store's writing connection. Shared by the clones of a [`crate::ReadStore`]; one
/// batch at a time.
#[derive(Clone, Debug)]
pub(crate) struct SqliteWriter {
    conn: Arc<Mutex<Option<Connection>>>,
}

impl SqliteWriter {
    /// Opens the file (which must exist, migrated) with the read store's settings.
    pub(crate) fn open(path: &Path, pragmas: &str) -> rusqlite::Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.execute_batch(pragmas)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            conn: Arc::new(Mutex::new(Some(conn))),
        })
    }

    /// Closes the connection (the store is closing); a later write fails.
    pub(crate) fn close(&self) {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(conn) = conn {
            if let Err((_, error)) = conn.close() {
                tracing::warn!(%error, "closing the read store's writing connection failed");
            }
        }
    }

    /// Writes `changes` and moves the positions in one transaction, blocking: call it off the
    /// async runtime's threads.
    pub(crate) fn write(
        &self,
        changes: Vec<ChangeSet>,
        moves: &[PositionMove],
    ) -> Result<FlushStats, WriteError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let conn = guard.as_mut().ok_or(WriteError::Closed)?;
        // The write lock first: the store's pool writes too (a reset, deferred indexes), and a
        // transaction that read before its first write would fail at once with SQLITE_BUSY if
        // one of those committed in between, instead of waiting.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut stats = FlushStats::default();
        for (table, rows) in changes.into_iter().flat_map(ChangeSet::into_tables) {
            // Each kind of change prepared once per table (and set of columns) per batch, from
            // the connection's cache of prepared statements.
            let mut put = None;
            let mut delete = None;
            let mut patches: Vec<(Vec<usize>, rusqlite::CachedStatement<'_>)> = Vec::new();
            for (key, change) in rows {
                match change {
                    Change::Put { row, .. } => {
                        let stmt = match &mut put {
                            Some(stmt) => stmt,
                            None => put.insert(tx.prepare_cached(&upsert_sql(table))?),
                        };
                        stmt.execute(params_from_iter(row.iter()))?;
                    }
                    Change::Patch { set } => {
                        let columns: Vec<usize> = set.iter().map(|(i, _)| *i).collect();
                        let at = match patches.iter().position(|(c, _)| *c == columns) {
                            Some(at) => at,
                            None => {
                                let stmt = tx.prepare_cached(&patch_sql(table, &columns))?;
                                patches.push((columns, stmt));
                                patches.len() - 1
                            }
                        };
                        let values = set.iter().map(|(_, v)| v).chain(key.iter());
                        patches[at].1.execute(params_from_iter(values))?;
                    }
                    Change::Delete => {
                        let stmt = match &mut delete {
                            Some(stmt) => stmt,
                            None => delete.insert(tx.prepare_cached(&delete_sql(table))?),
                        };
                        stmt.execute(params_from_iter(key.iter()))?;
                    }
                }
                stats.rows += 1;
                stats.statements += 1;
            }
        }
        for m in moves {
            // A read model without a stored position is at 0: its row may be inserted only by a
            // projector that starts from 0, and moved only from the value this one started from.
            let moved = if m.from == 0 {
                tx.prepare_cached(
                    "INSERT INTO projection_positions (projection, position) VALUES (?1, ?2) \
                     ON CONFLICT (projection) DO UPDATE SET position = excluded.position \
                     WHERE projection_positions.position = 0",
                )?
                .execute((m.projection, m.to as i64))?
            } else {
                tx.prepare_cached(
                    "UPDATE projection_positions SET position = ?2 \
                     WHERE projection = ?1 AND position = ?3",
                )?
                .execute((m.projection, m.to as i64, m.from as i64))?
            };
            stats.statements += 1;
            if moved != 1 {
                // Dropping the transaction rolls it back.
                return Err(WriteError::Overtaken(m.projection));
            }
        }
        // Read when this commit ends: whether it checkpoints the WAL.
        tx.pragma_update(
            None,
            "wal_autocheckpoint",
            if stats.rows >= BEHIND_FROM_ROWS {
                CHECKPOINT_BEHIND
            } else {
                CHECKPOINT_AT_HEAD
            },
        )?;
        tx.commit()?;
        Ok(stats)
    }
}

/// `INSERT INTO t (…) VALUES (?1, …) ON CONFLICT (key) DO UPDATE SET c = excluded.c, …`
fn upsert_sql(table: &Table) -> String {
    let values: Vec<String> = (1..=table.columns.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) {}",
        table.name,
        table.columns.join(", "),
        values.join(", "),
        table.on_conflict()
    )
}

/// `UPDATE t SET c = ?1, … WHERE k = ?n, …`: the set columns' values first, then the key's.
fn patch_sql(table: &Table, columns: &[usize]) -> String {
    let set: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(n, i)| format!("{} = ?{}", table.columns[*i], n + 1))
        .collect();
    let matches: Vec<String> = table.columns[..table.key]
        .iter()
        .enumerate()
        .map(|(n, k)| format!("{k} = ?{}", columns.len() + n + 1))
        .collect();
    format!(
        "UPDATE {} SET {} WHERE {}",
        table.name,
        set.join(", "),
        matches.join(" AND ")
    )
}

/// `DELETE FROM t WHERE k = ?1 AND …`
fn delete_sql(table: &Table) -> String {
    let matches: Vec<String> = table.columns[..table.key]
        .iter()
        .enumerate()
        .map(|(n, k)| format!("{k} = ?{}", n + 1))
        .collect();
    format!("DELETE FROM {} WHERE {}", table.name, matches.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    static T: Table = Table {
        name: "t",
        columns: &["a", "b", "c", "d"],
        key: 2,
        appended: false,
    };

    static ROWS: Table = Table {
        name: "rows",
        columns: &["id", "v"],
        key: 1,
        appended: false,
    };

    #[test]
    fn a_projector_behind_checkpoints_the_wal_less_often_than_one_at_the_head() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("read.db");
        Connection::open(&path)
            .and_then(|c| {
                c.execute_batch(
                    "PRAGMA journal_mode = WAL; CREATE TABLE rows (id INTEGER PRIMARY KEY, v TEXT)",
                )
            })
            .expect("a store");
        let writer = SqliteWriter::open(
            &path,
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 16384;",
        )
        .expect("the writer");
        let batch = |from: i64, rows: i64| {
            let mut changes = ChangeSet::new();
            for id in from..from + rows {
                changes.insert(&ROWS, vec![Value::from(id), Value::from("x")]);
            }
            writer.write(vec![changes], &[]).expect("written")
        };
        let checkpoint_pages = || -> i64 {
            let guard = writer.conn.lock().expect("the connection");
            guard
                .as_ref()
                .expect("open")
                .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
                .expect("the setting")
        };
        assert_eq!(batch(0, BEHIND_FROM_ROWS as i64).rows, BEHIND_FROM_ROWS);
        assert_eq!(checkpoint_pages(), CHECKPOINT_BEHIND);
        assert_eq!(batch(BEHIND_FROM_ROWS as i64, 10).rows, 10);
        assert_eq!(checkpoint_pages(), CHECKPOINT_AT_HEAD);
        writer.close();
    }

    #[test]
    fn statements_bind_values_then_keys_in_order() {
        assert_eq!(
            upsert_sql(&T),
            "INSERT INTO t (a, b, c, d) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (a, b) \
             DO UPDATE SET c = excluded.c, d = excluded.d"
        );
        assert_eq!(
            patch_sql(&T, &[3]),
            "UPDATE t SET d = ?1 WHERE a = ?2 AND b = ?3"
        );
        assert_eq!(delete_sql(&T), "DELETE FROM t WHERE a = ?1 AND b = ?2");
    }
}
