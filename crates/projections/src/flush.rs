//! Writes a [`ChangeSet`] with multi-row statements, the same SQL on SQLite and PostgreSQL:
//!
//! - full rows: `INSERT INTO t (…) VALUES (…),(…) ON CONFLICT (key) DO UPDATE SET c = excluded.c, …`
//! - some columns: `WITH v (key…, c…) AS (VALUES (…),(…)) UPDATE t SET c = v.c, … FROM v WHERE t.key = v.key`
//!   (one statement per table and set of columns)
//! - deletes: `DELETE FROM t WHERE key IN (…)`
//!
//! Each statement carries as many rows as fit under the engine's limit of bind parameters.
//!
//! Placeholders: `$1, $2, …` on PostgreSQL; on SQLite these generated statements use anonymous
//! `?` (bound in order), because SQLite looks each numbered or named parameter up in a linear
//! list, which makes a statement of n parameters cost O(n²) to prepare and bind — about a second
//! for 30,000 parameters, against a few milliseconds with `?`. The hand-written queries, with a
//! handful of parameters, use `$N` on both engines.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection};

use crate::changes::{Change, ChangeSet, Table, Value};
use crate::store::Engine;

/// Most rows per statement, whatever the parameter limit.
const MAX_ROWS: usize = 5_000;

/// Rows and statements written by one flush.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    /// Rows upserted, updated or deleted.
    pub rows: usize,
    /// Statements executed.
    pub statements: usize,
}

fn bind<'q>(q: Query<'q, Any, AnyArguments<'q>>, v: Value) -> Query<'q, Any, AnyArguments<'q>> {
    match v {
        Value::Int(i) => q.bind(i),
        Value::Text(s) => q.bind(s),
    }
}

/// The placeholder of the `n`-th bound value (from 1), in bind order.
fn placeholder(sql: &mut String, engine: Engine, n: usize) {
    match engine {
        Engine::Sqlite => sql.push('?'),
        Engine::Postgres => {
            sql.push('$');
            sql.push_str(&n.to_string());
        }
    }
}

/// Placeholders of the values `first ..= first + n - 1`, in parentheses.
fn tuple(sql: &mut String, engine: Engine, first: usize, n: usize) {
    sql.push('(');
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        placeholder(sql, engine, first + i);
    }
    sql.push(')');
}

fn rows_per_statement(engine: Engine, params_per_row: usize) -> usize {
    (engine.max_parameters() / params_per_row.max(1)).clamp(1, MAX_ROWS)
}

async fn execute(
    conn: &mut AnyConnection,
    sql: &str,
    values: Vec<Value>,
    stats: &mut FlushStats,
) -> Result<(), sqlx::Error> {
    let mut q = sqlx::query(sql).persistent(false);
    for v in values {
        q = bind(q, v);
    }
    q.execute(&mut *conn).await?;
    stats.statements += 1;
    Ok(())
}

async fn upsert(
    conn: &mut AnyConnection,
    engine: Engine,
    table: &Table,
    rows: Vec<Vec<Value>>,
    stats: &mut FlushStats,
) -> Result<(), sqlx::Error> {
    let n = table.columns.len();
    let key = table.columns[..table.key].join(", ");
    let update: Vec<String> = table.columns[table.key..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let conflict = if update.is_empty() {
        format!("ON CONFLICT ({key}) DO NOTHING")
    } else {
        format!("ON CONFLICT ({key}) DO UPDATE SET {}", update.join(", "))
    };
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(rows_per_statement(engine, n)).collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            table.name,
            table.columns.join(", ")
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            tuple(&mut sql, engine, i * n + 1, n);
        }
        sql.push(' ');
        sql.push_str(&conflict);
        stats.rows += chunk.len();
        execute(conn, &sql, chunk.into_iter().flatten().collect(), stats).await?;
    }
    Ok(())
}

async fn patch(
    conn: &mut AnyConnection,
    engine: Engine,
    table: &Table,
    columns: &[usize],
    rows: Vec<(Vec<Value>, Vec<Value>)>,
    stats: &mut FlushStats,
) -> Result<(), sqlx::Error> {
    let keys = &table.columns[..table.key];
    let set: Vec<&str> = columns.iter().map(|i| table.columns[*i]).collect();
    let n = keys.len() + set.len();
    let names: Vec<&str> = keys.iter().chain(set.iter()).copied().collect();
    let assignments: Vec<String> = set.iter().map(|c| format!("{c} = v.{c}")).collect();
    let matches: Vec<String> = keys
        .iter()
        .map(|k| format!("{t}.{k} = v.{k}", t = table.name))
        .collect();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<(Vec<Value>, Vec<Value>)> =
            rows.by_ref().take(rows_per_statement(engine, n)).collect();
        let mut sql = format!("WITH v ({}) AS (VALUES ", names.join(", "));
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            tuple(&mut sql, engine, i * n + 1, n);
        }
        sql.push_str(&format!(
            ") UPDATE {} SET {} FROM v WHERE {}",
            table.name,
            assignments.join(", "),
            matches.join(" AND ")
        ));
        stats.rows += chunk.len();
        let values = chunk
            .into_iter()
            .flat_map(|(k, v)| k.into_iter().chain(v))
            .collect();
        execute(conn, &sql, values, stats).await?;
    }
    Ok(())
}

async fn delete(
    conn: &mut AnyConnection,
    engine: Engine,
    table: &Table,
    keys: Vec<Vec<Value>>,
    stats: &mut FlushStats,
) -> Result<(), sqlx::Error> {
    let k = table.key;
    let mut keys = keys.into_iter().peekable();
    while keys.peek().is_some() {
        let chunk: Vec<Vec<Value>> = keys.by_ref().take(rows_per_statement(engine, k)).collect();
        let mut sql = format!("DELETE FROM {} WHERE ", table.name);
        if k == 1 {
            sql.push_str(table.columns[0]);
            sql.push_str(" IN ");
            tuple(&mut sql, engine, 1, chunk.len());
        } else {
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(" OR ");
                }
                sql.push('(');
                for (j, col) in table.columns[..k].iter().enumerate() {
                    if j > 0 {
                        sql.push_str(" AND ");
                    }
                    sql.push_str(col);
                    sql.push_str(" = ");
                    placeholder(&mut sql, engine, i * k + j + 1);
                }
                sql.push(')');
            }
        }
        stats.rows += chunk.len();
        execute(conn, &sql, chunk.into_iter().flatten().collect(), stats).await?;
    }
    Ok(())
}

/// Patches that set the same columns (by index): `(columns, [(key, values)])`.
type PatchGroup = (Vec<usize>, Vec<(Vec<Value>, Vec<Value>)>);

/// Writes every change of the set on `conn` (inside the caller's transaction).
pub(crate) async fn flush(
    conn: &mut AnyConnection,
    engine: Engine,
    changes: ChangeSet,
) -> Result<FlushStats, sqlx::Error> {
    let mut stats = FlushStats::default();
    for (table, rows) in changes.into_tables() {
        let mut deletes = Vec::new();
        let mut puts = Vec::new();
        // Patches grouped by the set of columns they change, groups in first-seen order.
        let mut patches: Vec<PatchGroup> = Vec::new();
        for (key, change) in rows {
            match change {
                Change::Delete => deletes.push(key),
                Change::Put { row, .. } => puts.push(row),
                Change::Patch { set } => {
                    let (columns, values): (Vec<usize>, Vec<Value>) = set.into_iter().unzip();
                    match patches.iter_mut().find(|(c, _)| *c == columns) {
                        Some((_, group)) => group.push((key, values)),
                        None => patches.push((columns, vec![(key, values)])),
                    }
                }
            }
        }
        if !deletes.is_empty() {
            delete(conn, engine, table, deletes, &mut stats).await?;
        }
        if !puts.is_empty() {
            upsert(conn, engine, table, puts, &mut stats).await?;
        }
        for (columns, group) in patches {
            patch(conn, engine, table, &columns, group, &mut stats).await?;
        }
    }
    Ok(stats)
}
