//! The read-model database: opening it, creating the tables, and dumping them for comparison.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Column, Row, SqlitePool, ValueRef};

use crate::Projection;

const POSITIONS: &str = include_str!("../../../projections/sqlite/000_positions.sql");

/// The read-model database.
#[derive(Clone, Debug)]
pub struct ReadStore {
    pool: SqlitePool,
}

impl ReadStore {
    /// Opens (creating if needed) the read-model database and every projection's tables.
    pub async fn open(
        path: &Path,
        projections: &[Box<dyn Projection>],
    ) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", "-65536");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(POSITIONS).execute(&pool).await?;
        for p in projections {
            sqlx::raw_sql(p.schema()).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    /// The connection pool, for queries.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the database.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Drops a projection's tables and position, then creates them empty: the next projector
    /// run rebuilds it from the first event.
    pub async fn reset(&self, projection: &dyn Projection) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for table in projection.tables() {
            sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM projection_positions WHERE projection = ?")
            .bind(projection.name())
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(projection.schema()).execute(&mut *tx).await?;
        tx.commit().await
    }

    /// Positions of the projections.
    pub async fn positions(&self) -> Result<BTreeMap<String, u64>, sqlx::Error> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT projection, position FROM projection_positions")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(k, v)| (k, v as u64)).collect())
    }
}

/// Every row of every given table, as text, sorted: two stores with equal dumps hold the same rows.
pub async fn dump_tables(
    pool: &SqlitePool,
    tables: &[&str],
) -> Result<BTreeMap<String, Vec<String>>, sqlx::Error> {
    let mut out = BTreeMap::new();
    for table in tables {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(pool)
            .await?;
        let mut lines: Vec<String> = rows
            .iter()
            .map(|row| {
                (0..row.columns().len())
                    .map(|i| {
                        let raw = row.try_get_raw(i).ok();
                        match raw {
                            Some(v) if v.is_null() => "NULL".to_owned(),
                            _ => row
                                .try_get::<String, _>(i)
                                .or_else(|_| row.try_get::<i64, _>(i).map(|n| n.to_string()))
                                .or_else(|_| row.try_get::<f64, _>(i).map(|n| n.to_string()))
                                .unwrap_or_else(|_| format!("<{}>", row.column(i).name())),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        lines.sort();
        out.insert((*table).to_owned(), lines);
    }
    Ok(out)
}
