//! Offline services for auditors and operators: walking the hash chain, and rebuilding the read
//! models from the first event.

use std::path::Path;

use contingent_log::{ChainBreak, ChainVerifier, EventLog};
use contingent_projections::{all_projections, Projection, Projector, ReadDatabase, ReadStore};
use serde::Serialize;

use crate::registry::RegistryError;

/// What a chain walk found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events whose hash and link were checked and found right.
    pub verified: u64,
    /// Hash of the last verified event: compare it with a published head.
    pub head_hash: String,
    /// The first event that does not match, if any.
    pub first_break: Option<ChainBreak>,
}

/// Walks the whole chain from the first event, reporting the first event that does not match.
pub async fn verify(
    log: &dyn EventLog,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, RegistryError> {
    let mut verifier = ChainVerifier::new();
    loop {
        let batch = log.read_raw_after(verifier.checked(), 10_000).await?;
        if batch.is_empty() {
            break;
        }
        for raw in &batch {
            if let Err(first_break) = verifier.check_raw(raw) {
                return Ok(VerifyReport {
                    verified: verifier.checked(),
                    head_hash: verifier.head().to_hex(),
                    first_break: Some(first_break),
                });
            }
        }
        progress(verifier.checked());
    }
    Ok(VerifyReport {
        verified: verifier.checked(),
        head_hash: verifier.head().to_hex(),
        first_break: None,
    })
}

/// Rebuilds read models from the first event of the log. With `only`, those models are dropped
/// and rebuilt in place in `read`; without, every model is rebuilt: for SQLite a fresh database
/// is built beside the file and then replaces it, for PostgreSQL every model is dropped and
/// rebuilt in place. Returns the number of events applied.
pub async fn rebuild(
    log: &dyn EventLog,
    read: impl Into<ReadDatabase>,
    only: Option<&[String]>,
    batch: usize,
    progress: impl FnMut(u64),
) -> Result<u64, RegistryError> {
    let read = read.into();
    let projections = all_projections();
    if let Some(names) = only {
        for name in names {
            if !projections.iter().any(|p| p.name() == name) {
                return Err(RegistryError::Unavailable(format!(
                    "no read model is called {name}"
                )));
            }
        }
    }
    match (only, &read) {
        (None, ReadDatabase::Sqlite(read_path)) => {
            let fresh = read_path.with_extension("rebuild.db");
            remove_database(&fresh)?;
            let store = ReadStore::open(&fresh, &projections).await?;
            let n = bulk_load(&store, projections, log, batch, progress).await?;
            store.close().await;
            remove_database(read_path)?;
            std::fs::rename(&fresh, read_path).map_err(|e| {
                RegistryError::Unavailable(format!("cannot replace {}: {e}", read_path.display()))
            })?;
            Ok(n)
        }
        (only, _) => {
            let store = ReadStore::open(read.clone(), &projections).await?;
            for p in projections
                .iter()
                .filter(|p| only.is_none_or(|names| names.iter().any(|n| n == p.name())))
            {
                store.reset(p.as_ref()).await?;
            }
            let n = if only.is_none() {
                bulk_load(&store, projections, log, batch, progress).await?
            } else {
                catch_up(&store, projections, log, batch, progress).await?
            };
            store.close().await;
            Ok(n)
        }
    }
}

/// Fills every read model of an empty store from the log, without the tables' secondary indexes
/// until the end (building an index once is cheaper than keeping it current row by row).
async fn bulk_load(
    store: &ReadStore,
    projections: Vec<Box<dyn Projection>>,
    log: &dyn EventLog,
    batch: usize,
    progress: impl FnMut(u64),
) -> Result<u64, RegistryError> {
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    store.defer_indexes(&tables).await?;
    let n = catch_up(store, projections, log, batch, progress).await?;
    store.restore_indexes().await?;
    Ok(n)
}

async fn catch_up(
    store: &ReadStore,
    projections: Vec<Box<dyn Projection>>,
    log: &dyn EventLog,
    batch: usize,
    progress: impl FnMut(u64),
) -> Result<u64, RegistryError> {
    let mut projector = Projector::new(store.clone(), projections, batch)
        .await
        .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
    projector
        .catch_up(log, progress)
        .await
        .map_err(|e| RegistryError::Unavailable(e.to_string()))
}

/// Removes a SQLite database with its WAL and shared-memory files.
fn remove_database(path: &Path) -> Result<(), RegistryError> {
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(RegistryError::Unavailable(format!(
                    "cannot remove {}: {e}",
                    file.display()
                )))
            }
        }
    }
    Ok(())
}
