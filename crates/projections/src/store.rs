//! The read-model database, SQLite (embedded) or PostgreSQL: opening it, migrating the tables,
//! resetting a projection, and dumping tables for comparison. Everything but a projector's batches
//! and the diary goes through one `sqlx::AnyPool` with SQL both engines accept (`$1, $2, …`
//! placeholders, no dialect functions); the batches go through the store's [`Writer`], on
//! connections of its own, and on SQLite the diary is read on connections of its own
//! (`crate::sqlite_read`; the same statement, on the SQLite driver directly).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, Column, ConnectOptions, Connection, Executor, Row, ValueRef};

use crate::migrate::{self, POSITIONS};
use crate::pg_write::PgWriter;
use crate::sqlite_read::SqliteReaders;
use crate::sqlite_write::SqliteWriter;
use crate::write::Writer;
use crate::Projection;

/// The database engine of a read store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    /// SQLite: the embedded default (`read.db` in the data directory).
    Sqlite,
    /// PostgreSQL: a regional deployment.
    Postgres,
}

/// Where the read models live: a SQLite file, or a PostgreSQL database by URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadDatabase {
    /// A SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user@host:port/database`). The database must exist.
    Postgres(String),
}

impl ReadDatabase {
    /// The engine.
    pub fn engine(&self) -> Engine {
        match self {
            ReadDatabase::Sqlite(_) => Engine::Sqlite,
            ReadDatabase::Postgres(_) => Engine::Postgres,
        }
    }
}

impl From<&Path> for ReadDatabase {
    fn from(p: &Path) -> Self {
        ReadDatabase::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for ReadDatabase {
    fn from(p: &PathBuf) -> Self {
        ReadDatabase::Sqlite(p.clone())
    }
}

impl From<PathBuf> for ReadDatabase {
    fn from(p: PathBuf) -> Self {
        ReadDatabase::Sqlite(p)
    }
}

/// `postgres://…` or `postgresql://…` is PostgreSQL; `sqlite://path` or `sqlite:path` is a SQLite
/// file (any `?query` is ignored); anything else is a SQLite file path.
impl From<&str> for ReadDatabase {
    fn from(s: &str) -> Self {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return ReadDatabase::Postgres(s.to_owned());
        }
        let path = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
            .map(|rest| rest.split('?').next().unwrap_or(rest))
            .unwrap_or(s);
        ReadDatabase::Sqlite(PathBuf::from(path))
    }
}

impl From<&String> for ReadDatabase {
    fn from(s: &String) -> Self {
        ReadDatabase::from(s.as_str())
    }
}

impl From<String> for ReadDatabase {
    fn from(s: String) -> Self {
        ReadDatabase::from(s.as_str())
    }
}

/// SQLite settings of every connection: WAL, `synchronous = NORMAL` (the log, not the read
/// models, is the durable record; a crash may lose the last batches, never split one), a long
/// busy timeout, a 64 MiB page cache, and a checkpoint every 64 MiB of WAL rather than every
/// 4 MiB (a projector batch writes megabytes; each checkpoint syncs the database file; the
/// projector's writing connection, while it is behind the log, every 1 GiB: see
/// `sqlite_write`), and statement journals of multi-row upserts in memory rather than in
/// temporary files.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA busy_timeout = 30000; PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16384; \
     PRAGMA temp_store = MEMORY; PRAGMA secure_delete = FAST;";

/// SQLite settings of every connection to a fresh file being filled by a rebuild
/// ([`ReadStore::open_fresh`]): a rollback journal in memory instead of the WAL, and no syncs.
/// Each page is written once, into the file, rather than into the WAL first and copied back, so
/// the largest index built in one transaction needs no second copy of its size on disk. A batch
/// that fails still rolls back (the journal holds the pages it changed); a crash leaves a file
/// the next rebuild discards, and [`ReadStore::finish_fresh`] syncs it before it replaces
/// anything.
const SQLITE_FRESH_PRAGMAS: &str = "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; \
     PRAGMA busy_timeout = 30000; PRAGMA cache_size = -65536; \
     PRAGMA temp_store = MEMORY; PRAGMA secure_delete = FAST;";

/// The read-model database.
#[derive(Clone, Debug)]
pub struct ReadStore {
    pool: AnyPool,
    engine: Engine,
    /// The connection(s) projectors write batches on (`crate::write`).
    writer: Writer,
    /// On SQLite, the connections the most asked queries read on (`crate::sqlite_read`).
    readers: Option<Arc<SqliteReaders>>,
}

impl ReadStore {
    /// Opens the read-model database (a SQLite file is created if missing; a PostgreSQL database
    /// must exist) and applies the missing migrations of `projection_positions` and of every
    /// given projection.
    pub async fn open(
        database: impl Into<ReadDatabase>,
        projections: &[Box<dyn Projection>],
    ) -> Result<Self, sqlx::Error> {
        Self::open_with(database.into(), projections, SQLITE_PRAGMAS).await
    }

    /// Opens a new SQLite file at `path` for a rebuild to fill before it replaces the read
    /// models: as [`ReadStore::open`], but written without a WAL and without syncs
    /// (`SQLITE_FRESH_PRAGMAS`). Nothing else may use the file until [`ReadStore::finish_fresh`].
    pub async fn open_fresh(
        path: &Path,
        projections: &[Box<dyn Projection>],
    ) -> Result<Self, sqlx::Error> {
        Self::open_with(
            ReadDatabase::Sqlite(path.to_path_buf()),
            projections,
            SQLITE_FRESH_PRAGMAS,
        )
        .await
    }

    /// Makes a file filled through [`ReadStore::open_fresh`] (and closed) an ordinary read
    /// store: in WAL mode, and on disk (synced), so that it may replace the read models.
    pub fn finish_fresh(path: &Path) -> Result<(), sqlx::Error> {
        let setting = |e: rusqlite::Error| sqlx::Error::Configuration(Box::new(e));
        let conn = rusqlite::Connection::open(path).map_err(setting)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(setting)?;
        if mode != "wal" {
            return Err(sqlx::Error::Configuration(
                format!("{} stayed in journal mode {mode}", path.display()).into(),
            ));
        }
        conn.close().map_err(|(_, e)| setting(e))?;
        std::fs::File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(sqlx::Error::Io)
    }

    async fn open_with(
        database: ReadDatabase,
        projections: &[Box<dyn Projection>],
        pragmas: &'static str,
    ) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let engine = database.engine();
        let file = match &database {
            ReadDatabase::Sqlite(path) => Some(std::path::absolute(path).map_err(sqlx::Error::Io)?),
            ReadDatabase::Postgres(_) => None,
        };
        let options = match &database {
            ReadDatabase::Sqlite(_) => {
                let path = file.as_deref().unwrap_or(Path::new(""));
                let url = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .to_url_lossy();
                AnyConnectOptions::from_url(&url)?
            }
            ReadDatabase::Postgres(url) => url.parse::<AnyConnectOptions>()?,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        conn.execute(pragmas).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let writer = match &database {
            ReadDatabase::Sqlite(_) => Writer::Sqlite(
                SqliteWriter::open(file.as_deref().unwrap_or(Path::new("")), pragmas)
                    .map_err(|e| sqlx::Error::Configuration(Box::new(e)))?,
            ),
            ReadDatabase::Postgres(url) => Writer::Postgres(PgWriter::connect(url).await?),
        };
        let readers = file
            .as_deref()
            .map(|path| Arc::new(SqliteReaders::new(path)));
        let store = Self {
            pool,
            engine,
            writer,
            readers,
        };
        let mut owners = vec![POSITIONS];
        owners.extend(projections.iter().map(|p| p.name()));
        let mut conn = store.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        migrate::begin(&mut tx, engine).await?;
        migrate::apply(&mut tx, engine, &owners).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS deferred_indexes (name TEXT PRIMARY KEY, definition TEXT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        drop(conn);

        // Indexes a rebuild dropped and did not get to create again (it stopped midway).
        let restored = store.restore_indexes().await?;
        if restored > 0 {
            tracing::info!(
                restored,
                "created the indexes an unfinished rebuild had deferred"
            );
        }
        Ok(store)
    }

    /// Drops the secondary indexes of `tables` for a bulk load, after recording their
    /// definitions in `deferred_indexes` in the same transaction, so that they are created again
    /// by [`ReadStore::restore_indexes`] — or by the next [`ReadStore::open`] if the load stops
    /// midway. Keys (primary and unique constraints) stay: projections upsert by them. Returns
    /// how many indexes were dropped.
    pub async fn defer_indexes(&self, tables: &[&str]) -> Result<usize, sqlx::Error> {
        let listing = match self.engine {
            Engine::Sqlite => {
                "SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL"
            }
            Engine::Postgres => {
                "SELECT i.indexname::text, i.tablename::text, i.indexdef::text FROM pg_indexes i \
                 WHERE i.schemaname = current_schema() \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            }
        };
        let mut tx = self.pool.begin().await?;
        let indexes: Vec<(String, String, String)> =
            sqlx::query_as(listing).fetch_all(&mut *tx).await?;
        let mut dropped = 0;
        for (name, table, definition) in indexes {
            if tables.contains(&table.as_str()) {
                defer(&mut tx, &name, &definition, &format!("DROP INDEX {name}")).await?;
                dropped += 1;
            }
        }
        tx.commit().await?;
        Ok(dropped)
    }

    /// On PostgreSQL, drops the primary keys of `tables` for a bulk load, recorded in
    /// `deferred_indexes` like the indexes of [`ReadStore::defer_indexes`] and added again with
    /// them (sorted once, instead of an index entry per row). Only for tables whose rows are
    /// only ever inserted ([`Table::appended`](crate::Table)): the writer inserts their rows
    /// without looking for a conflict, and a duplicate key then fails the load when the key is
    /// added back. On SQLite such a key is the table's rowid: nothing to drop. Returns how many
    /// keys were dropped.
    pub async fn defer_keys(&self, tables: &[&str]) -> Result<usize, sqlx::Error> {
        if self.engine != Engine::Postgres {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let keys: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT c.conname::text, t.relname::text, pg_get_constraintdef(c.oid)::text \
             FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
             WHERE c.contype = 'p' AND t.relnamespace = current_schema()::regnamespace",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut dropped = 0;
        for (name, table, definition) in keys {
            if tables.contains(&table.as_str()) {
                let add = format!("ALTER TABLE {table} ADD CONSTRAINT {name} {definition}");
                let drop = format!("ALTER TABLE {table} DROP CONSTRAINT {name}");
                defer(&mut tx, &name, &add, &drop).await?;
                dropped += 1;
            }
        }
        tx.commit().await?;
        Ok(dropped)
    }

    /// Prepares an empty store for a bulk load of `projections` (`contingent rebuild`): their
    /// tables' secondary indexes ([`ReadStore::defer_indexes`]) and the append-only tables'
    /// keys ([`ReadStore::defer_keys`]) are dropped until [`ReadStore::restore_indexes`].
    /// Returns the tables, for [`ReadStore::vacuum_analyze`] at the end.
    pub async fn defer_for_bulk_load(
        &self,
        projections: &[Box<dyn crate::Projection>],
    ) -> Result<Vec<&'static str>, sqlx::Error> {
        let tables: Vec<&'static str> = projections
            .iter()
            .flat_map(|p| p.tables().iter().copied())
            .collect();
        self.defer_indexes(&tables).await?;
        let appended: Vec<&'static str> = projections
            .iter()
            .flat_map(|p| p.table_defs().iter())
            .filter(|t| t.appended)
            .map(|t| t.name)
            .collect();
        self.defer_keys(&appended).await?;
        Ok(tables)
    }

    /// After a bulk load on PostgreSQL: `VACUUM (ANALYZE)` of `tables`, so that the queries are
    /// planned on the loaded rows' statistics and the index-only scans of the read models'
    /// covering indexes (the diary's) find every page marked all-visible, instead of fetching
    /// table rows until autovacuum has passed over tables that large. On SQLite nothing: no
    /// statistics are kept (the planner takes the indexes the queries were written for), and an
    /// index read needs no visibility map.
    pub async fn vacuum_analyze(&self, tables: &[&str]) -> Result<(), sqlx::Error> {
        if self.engine != Engine::Postgres || tables.is_empty() {
            return Ok(());
        }
        // Two statements at once, on two connections, the tables split between them about
        // evenly by size (each table is vacuumed by one process).
        let sized: Vec<(String, i64)> = sqlx::query_as(
            "SELECT relname::text, pg_total_relation_size(oid)::bigint FROM pg_class \
             WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' \
             AND relname = ANY(string_to_array($1, ','))",
        )
        .bind(tables.join(","))
        .fetch_all(&self.pool)
        .await?;
        let (first, second) = crate::write::halves(sized, |(_, size)| (*size).max(0) as u64);
        let names = |tables: Vec<(String, i64)>| -> Vec<String> {
            tables.into_iter().map(|(name, _)| name).collect()
        };
        let (first, second) = (names(first), names(second));
        let vacuum = |tables: Vec<String>| async move {
            if tables.is_empty() {
                return Ok(());
            }
            sqlx::raw_sql(&format!("VACUUM (ANALYZE) {}", tables.join(", ")))
                .execute(&self.pool)
                .await
                .map(|_| ())
        };
        let (a, b) = tokio::join!(vacuum(first), vacuum(second));
        a.and(b)
    }

    /// Creates the indexes [`ReadStore::defer_indexes`] dropped, each in its own transaction
    /// with the removal of its record. Returns how many were created.
    pub async fn restore_indexes(&self) -> Result<usize, sqlx::Error> {
        let deferred: Vec<(String, String)> =
            sqlx::query_as("SELECT name, definition FROM deferred_indexes ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        for (name, definition) in &deferred {
            let mut tx = self.pool.begin().await?;
            sqlx::query(definition).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM deferred_indexes WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(deferred.len())
    }

    /// The connection pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The connection(s) batches are written on.
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// On SQLite, the connections the most asked queries read on.
    pub(crate) fn sqlite_readers(&self) -> Option<&Arc<SqliteReaders>> {
        self.readers.as_ref()
    }

    /// Closes the database. A SQLite file is checkpointed first (its WAL emptied into it), so it
    /// can be moved or copied once this returns.
    pub async fn close(&self) {
        self.writer.close().await;
        if let Some(readers) = &self.readers {
            readers.close();
        }
        if self.engine == Engine::Sqlite && !self.pool.is_closed() {
            // Closing the last connection checkpoints too, but a connection whose return to the
            // pool is in flight when the pool closes may stay open a while (or, in a race in
            // sqlx, for good): do not rely on it.
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
            {
                tracing::warn!(%error, "read-model checkpoint before closing failed");
            }
        }
        self.pool.close().await;
        // Give a connection returned just before a moment to be closed as well.
        let deadline = std::time::Instant::now() + Duration::from_millis(250);
        while self.pool.size() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Drops a projection's tables and position, then creates them empty, in one transaction:
    /// the next projector run rebuilds it from the first event.
    pub async fn reset(&self, projection: &dyn Projection) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        migrate::begin(&mut tx, self.engine).await?;
        for table in projection.tables() {
            sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM projection_positions WHERE projection = $1")
            .bind(projection.name())
            .execute(&mut *tx)
            .await?;
        migrate::forget(&mut tx, projection.name()).await?;
        migrate::apply(&mut tx, self.engine, &[projection.name()]).await?;
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

/// Every row of every given table, as text, sorted: two stores with equal dumps hold the same
/// rows, whatever their engines.
pub async fn dump_tables(
    pool: &AnyPool,
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

/// Records `definition` under `name` in `deferred_indexes` and runs `drop`, in `tx`: what
/// [`ReadStore::restore_indexes`] (or the next opening) creates again.
async fn defer(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    definition: &str,
    drop: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO deferred_indexes (name, definition) VALUES ($1, $2)")
        .bind(name)
        .bind(definition)
        .execute(&mut **tx)
        .await?;
    sqlx::query(drop).execute(&mut **tx).await?;
    Ok(())
}
