//! Writes a batch to a PostgreSQL read store. Each table's changes of one kind — full rows, rows
//! that set the same columns, deletes — are applied with one set-based statement:
//! `INSERT … ON CONFLICT (key) DO UPDATE`, `UPDATE … FROM`, `DELETE`. Many rows (a rebuild, a
//! projector catching up) are first copied (`COPY … FROM STDIN` in its binary format) into a
//! temporary staging table of the same columns, which the statement reads; a few (the live
//! projector's batches) are bound as parameters of a multi-row statement, which costs one round
//! trip instead of three. The projections' positions are moved by compare and set in the same
//! transaction as their rows, before them. A large batch is written as two transactions at once,
//! on the two connections, each holding whole read models. Rows new to a table whose rows are only
//! ever appended (keyed by their event's position, [`Table::appended`](crate::Table)) are
//! inserted into it without a conflict clause, copied directly when many.
//!
//! What `COPY` saves over multi-row statements: binding tens of thousands of parameters per
//! statement (each encoded and sent with its type) and the server parsing and planning a
//! statement of that size per batch.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::changes::{Change, ChangeSet, Table, Value};
use crate::write::{halves, merged, FlushStats, Part, PositionMove, WriteError};

/// The read store's writing connections (PostgreSQL).
#[derive(Clone, Debug)]
pub(crate) struct PgWriter {
    pool: PgPool,
}

impl PgWriter {
    /// Connects to the read store's database: two connections, one batch each.
    pub(crate) async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(60))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// Closes the connections.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Writes the batch's parts. A batch of fewer than [`SPLIT_FROM`] rows is one transaction;
    /// a larger one is split into two transactions of whole read models, about equal in rows,
    /// written at once on the two connections (so that the server works on both cores), each
    /// moving the positions of its read models. When one fails, the other may have committed.
    pub(crate) async fn write(&self, parts: Vec<Part>) -> Result<FlushStats, WriteError> {
        let rows: usize = parts.iter().map(|p| p.changes.len()).sum();
        if parts.len() < 2 || rows < SPLIT_FROM {
            let (changes, moves) = merged(parts);
            return self.write_one(changes, &moves).await;
        }
        let (first, second) = halves(parts, |p| p.changes.len() as u64);
        let other = {
            let writer = self.clone();
            let (changes, moves) = merged(second);
            tokio::spawn(async move { writer.write_one(changes, &moves).await })
        };
        let (changes, moves) = merged(first);
        let first = self.write_one(changes, &moves).await;
        let second = other
            .await
            .unwrap_or_else(|joined| std::panic::resume_unwind(joined.into_panic()));
        match (first, second) {
            (Ok(a), Ok(b)) => Ok(FlushStats {
                rows: a.rows + b.rows,
                statements: a.statements + b.statements,
            }),
            // A failure that is not being overtaken says more: it is the one reported.
            (Err(e @ WriteError::Overtaken(_)), Err(other)) => Err(match other {
                WriteError::Overtaken(_) => e,
                other => other,
            }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    /// Writes `changes` and moves the positions in one transaction.
    async fn write_one(
        &self,
        changes: Vec<ChangeSet>,
        moves: &[PositionMove],
    ) -> Result<FlushStats, WriteError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut stats = FlushStats::default();
        // The positions first, in the order of their names: a projector overtaken by another
        // waits for the other's commit here and stops before writing a row, and two
        // transactions take the positions' row locks in the same order.
        let mut moves: Vec<&PositionMove> = moves.iter().collect();
        moves.sort_by_key(|m| m.projection);
        for m in moves {
            // A read model without a stored position is at 0: its row may be inserted only by a
            // projector that starts from 0, and moved only from the value this one started from.
            let moved = if m.from == 0 {
                sqlx::query(
                    "INSERT INTO projection_positions (projection, position) VALUES ($1, $2) \
                     ON CONFLICT (projection) DO UPDATE SET position = excluded.position \
                     WHERE projection_positions.position = 0",
                )
                .bind(m.projection)
                .bind(m.to as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query(
                    "UPDATE projection_positions SET position = $2 \
                     WHERE projection = $1 AND position = $3",
                )
                .bind(m.projection)
                .bind(m.to as i64)
                .bind(m.from as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            };
            stats.statements += 1;
            if moved != 1 {
                // Dropping the transaction rolls it back.
                return Err(WriteError::Overtaken(m.projection));
            }
        }
        for (table, rows) in changes.into_iter().flat_map(ChangeSet::into_tables) {
            // Full rows, and whether this batch inserted them.
            let mut puts: Vec<(Vec<Value>, bool)> = Vec::new();
            let mut deletes: Vec<Vec<Value>> = Vec::new();
            // Patches by the set of columns they change, in first-seen order: the key, then the
            // values of those columns.
            let mut patches: Vec<(Vec<usize>, Vec<Vec<Value>>)> = Vec::new();
            for (key, change) in rows {
                match change {
                    Change::Put { row, fresh } => puts.push((row, fresh)),
                    Change::Delete => deletes.push(key),
                    Change::Patch { set } => {
                        let (columns, values): (Vec<usize>, Vec<Value>) = set.into_iter().unzip();
                        let row: Vec<Value> = key.into_iter().chain(values).collect();
                        match patches.iter_mut().find(|(c, _)| *c == columns) {
                            Some((_, group)) => group.push(row),
                            None => patches.push((columns, vec![row])),
                        }
                    }
                }
            }
            if puts.is_empty() && deletes.is_empty() && patches.is_empty() {
                continue;
            }
            let key: Vec<&str> = table.columns[..table.key].to_vec();
            if !deletes.is_empty() {
                stats.rows += deletes.len();
                let matches: Vec<String> = key
                    .iter()
                    .map(|k| format!("{t}.{k} = s.{k}", t = table.name))
                    .collect();
                let delete = format!(
                    "DELETE FROM {} USING {{rows}} WHERE {}",
                    table.name,
                    matches.join(" AND ")
                );
                apply(&mut tx, table, &key, deletes, &delete, &mut stats).await?;
            }
            // Rows new to an appended table: inserted without looking for a conflict (copied
            // into it directly when many), so they need no key (a bulk load defers it).
            if table.appended {
                let (new, known): (Vec<_>, Vec<_>) =
                    puts.into_iter().partition(|(_, fresh)| *fresh);
                stats.rows += new.len();
                let rows: Vec<Vec<Value>> = new.into_iter().map(|(row, _)| row).collect();
                if rows.len() >= COPY_FROM {
                    copy(&mut tx, table.name, table.columns, &rows).await?;
                    stats.statements += 1;
                } else if !rows.is_empty() {
                    let columns = table.columns.join(", ");
                    let insert = format!(
                        "INSERT INTO {t} ({columns}) SELECT {columns} FROM {{rows}}",
                        t = table.name,
                    );
                    apply(&mut tx, table, table.columns, rows, &insert, &mut stats).await?;
                }
                puts = known;
            }
            if !puts.is_empty() {
                let puts: Vec<Vec<Value>> = puts.into_iter().map(|(row, _)| row).collect();
                stats.rows += puts.len();
                let columns = table.columns.join(", ");
                let insert = format!(
                    "INSERT INTO {t} ({columns}) SELECT {columns} FROM {{rows}} {}",
                    table.on_conflict(),
                    t = table.name,
                );
                apply(&mut tx, table, table.columns, puts, &insert, &mut stats).await?;
            }
            for (set, rows) in patches {
                stats.rows += rows.len();
                let columns: Vec<&str> = key
                    .iter()
                    .copied()
                    .chain(set.iter().map(|i| table.columns[*i]))
                    .collect();
                let assignments: Vec<String> = set
                    .iter()
                    .map(|i| format!("{c} = s.{c}", c = table.columns[*i]))
                    .collect();
                let matches: Vec<String> = key
                    .iter()
                    .map(|k| format!("{t}.{k} = s.{k}", t = table.name))
                    .collect();
                let update = format!(
                    "UPDATE {} SET {} FROM {{rows}} WHERE {}",
                    table.name,
                    assignments.join(", "),
                    matches.join(" AND ")
                );
                apply(&mut tx, table, &columns, rows, &update, &mut stats).await?;
            }
        }
        tx.commit().await?;
        Ok(stats)
    }
}

/// From this many changed rows, a batch is written in two transactions at once.
const SPLIT_FROM: usize = 1_000;

/// From this many rows of one kind, a table's changes are copied into its staging table.
const COPY_FROM: usize = 128;

/// Most parameters one bound statement carries (PostgreSQL's limit is 65,535).
const MAX_PARAMETERS: usize = 65_535;

/// Applies `rows` (values of `columns`, in order) with `statement`, in which `{rows}` names them
/// as a relation aliased `s`: the staging table after a `COPY` for many rows, `(VALUES …)` with
/// bound parameters for a few.
async fn apply(
    conn: &mut PgConnection,
    table: &Table,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
    statement: &str,
    stats: &mut FlushStats,
) -> Result<(), sqlx::Error> {
    if rows.len() >= COPY_FROM {
        let stage = stage(conn, table).await?;
        copy(conn, &stage, columns, &rows).await?;
        sqlx::query(&statement.replace("{rows}", &format!("{stage} s")))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!("TRUNCATE {stage}"))
            .execute(&mut *conn)
            .await?;
        stats.statements += 4;
        return Ok(());
    }
    let names = columns.join(", ");
    let per_statement = (MAX_PARAMETERS / columns.len().max(1)).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(per_statement).collect();
        let mut values = String::new();
        let mut n = 0;
        for (i, row) in chunk.iter().enumerate() {
            values.push_str(if i == 0 { "(" } else { ", (" });
            for (j, v) in row.iter().enumerate() {
                n += 1;
                if j > 0 {
                    values.push_str(", ");
                }
                // The first row names each value's type: VALUES takes a column's type from it.
                if i == 0 {
                    let ty = match v {
                        Value::Int(_) => "BIGINT",
                        Value::Text(_) => "TEXT",
                    };
                    values.push_str(&format!("${n}::{ty}"));
                } else {
                    values.push_str(&format!("${n}"));
                }
            }
            values.push(')');
        }
        let relation = format!("(VALUES {values}) AS s ({names})");
        let sql = statement.replace("{rows}", &relation);
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    Value::Int(i) => q.bind(i),
                    Value::Text(t) => q.bind(t),
                };
            }
        }
        q.execute(&mut *conn).await?;
        stats.statements += 1;
    }
    Ok(())
}

/// The staging table of `table` on this connection: its columns, without constraints, emptied
/// at every commit; created on the connection's first use of it.
async fn stage(conn: &mut PgConnection, table: &Table) -> Result<String, sqlx::Error> {
    let stage = format!("stage_{}", table.name);
    // `CREATE … IF NOT EXISTS` of an existing staging table is a notice, not news.
    sqlx::query("SET LOCAL client_min_messages = warning")
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS \
         AS SELECT * FROM {} WITH NO DATA",
        table.name
    ))
    .execute(&mut *conn)
    .await?;
    Ok(stage)
}

/// Copies `rows` (values of `columns`, in order) into `table` (a staging table, or an appended
/// one), in `COPY`'s binary format.
async fn copy(
    conn: &mut PgConnection,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> Result<(), sqlx::Error> {
    let mut data = Vec::with_capacity(COPY_HEADER.len() + rows.len() * 24 * columns.len());
    data.extend_from_slice(&COPY_HEADER);
    for row in rows {
        binary_row(&mut data, row);
    }
    data.extend_from_slice(&(-1i16).to_be_bytes());
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {table} ({}) FROM STDIN (FORMAT binary)",
            columns.join(", ")
        ))
        .await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}

/// The binary `COPY` header: the signature, no flags (no OIDs), no header extension.
const COPY_HEADER: [u8; 19] = *b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// One row in `COPY`'s binary format: the number of fields, then each field's length (-1 for
/// NULL) and bytes: a BIGINT as 8 bytes, big-endian; a TEXT as its UTF-8 bytes.
fn binary_row(out: &mut Vec<u8>, row: &[Value]) {
    // A read-model table has a few dozen columns at most.
    out.extend_from_slice(&(row.len() as i16).to_be_bytes());
    for v in row {
        match v {
            Value::Int(Some(n)) => {
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&n.to_be_bytes());
            }
            Value::Text(Some(s)) => {
                // A read-model value is far below 2 GiB (PostgreSQL's limit is 1 GiB).
                out.extend_from_slice(&(s.len() as i32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Int(None) | Value::Text(None) => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_rows_carry_lengths_and_raw_bytes() {
        let mut out = Vec::new();
        binary_row(
            &mut out,
            &[
                Value::Int(Some(-7)),
                Value::Text(Some("a\tb\\c\nЖ".to_owned())),
                Value::Text(None),
                Value::Int(None),
                Value::Text(Some(String::new())),
            ],
        );
        let mut want = vec![0, 5];
        want.extend_from_slice(&[0, 0, 0, 8, 255, 255, 255, 255, 255, 255, 255, 249]);
        want.extend_from_slice(&[0, 0, 0, 8]);
        want.extend_from_slice("a\tb\\c\nЖ".as_bytes());
        want.extend_from_slice(&[255, 255, 255, 255, 255, 255, 255, 255]);
        want.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(out, want);
        assert_eq!(&COPY_HEADER[..11], b"PGCOPY\n\xff\r\n\0");
    }
}
