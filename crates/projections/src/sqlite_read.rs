//! Reads of a SQLite read store on the SQLite driver directly (`rusqlite`), for the queries
//! asked most (a learner's diary, a class's register, free places): read-only connections of
//! the store's own, each statement prepared once per connection, values read from SQLite's row
//! in place — instead of every value copied into an `AnyValue` and every row sent from `sqlx`'s
//! worker thread.
//!
//! At most [`READERS`] reads run at once (each on a blocking thread); the others wait for a
//! connection, as they would for one of the pool's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::queries::QueryError;

/// Reads at once, and idle connections kept: as many as the store's pool has.
pub(crate) const READERS: usize = 8;

/// Prepared statements kept per reading connection.
const STATEMENTS_KEPT: usize = 64;

/// Settings of a reading connection: the store's busy timeout and page cache, and no writes.
const READER_PRAGMAS: &str =
    "PRAGMA busy_timeout = 30000; PRAGMA cache_size = -65536; PRAGMA query_only = ON;";

/// The store's reading connections.
#[derive(Debug)]
pub(crate) struct SqliteReaders {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    closed: AtomicBool,
}

impl SqliteReaders {
    /// Readers of the file at `path` (which must exist, migrated); connections are opened when
    /// first needed.
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(READERS),
            closed: AtomicBool::new(false),
        }
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.execute_batch(READER_PRAGMAS)?;
        // Room for every statement read here: the diary's, the class register's four and one
        // per combination of the free places' filters (32).
        conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
        Ok(conn)
    }

    /// Runs `read` on a reading connection, on a blocking thread, once one is free.
    pub(crate) async fn with<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        read: impl FnOnce(&Connection) -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, QueryError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| QueryError::Closed)?;
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            if readers.closed.load(Ordering::Acquire) {
                return Err(QueryError::Closed);
            }
            let idle = readers.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => readers.connect()?,
            };
            let result = read(&conn);
            let mut idle = readers.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < READERS && !readers.closed.load(Ordering::Acquire) {
                idle.push(conn);
            }
            result
        })
        .await
        .unwrap_or_else(|joined| std::panic::resume_unwind(joined.into_panic()))
    }

    /// Closes the idle connections and refuses later reads.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
