//! Rebuilds every read model from an embedded log into SQLite or PostgreSQL and reports the
//! speed: `cargo run --release -p contingent-projections --example rebuild -- <log.db> <target>
//! [batch]`, where the target is a SQLite file (replaced) or a `postgres://` URL (its read-model
//! tables are dropped and rebuilt).

use std::time::Instant;

use contingent_log::EventLog;
use contingent_log_sqlite::SqliteLog;
use contingent_projections::{all_projections, Projector, ReadDatabase, ReadStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: rebuild <log.db> <read.db | postgres://…> [batch]";
    let log_path = args.next().ok_or(usage)?;
    let target = ReadDatabase::from(args.next().ok_or(usage)?);
    let batch: usize = args.next().map(|b| b.parse()).transpose()?.unwrap_or(2000);
    let log: std::sync::Arc<dyn EventLog> =
        std::sync::Arc::new(SqliteLog::open(log_path.as_ref()).await?);
    if let ReadDatabase::Sqlite(path) = &target {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    let store = ReadStore::open(target.clone(), &all_projections()).await?;
    for p in all_projections() {
        store.reset(p.as_ref()).await?;
    }
    let mut projector = Projector::new(store.clone(), all_projections(), batch).await?;
    let started = Instant::now();
    let n = projector.catch_up(&log, |_| {}).await?;
    let elapsed = started.elapsed();
    println!(
        "{:?}: {n} events in {:.2?} with batches of {batch}: {:.0} events/s",
        store.engine(),
        elapsed,
        n as f64 / elapsed.as_secs_f64()
    );
    store.close().await;
    log.close().await;
    Ok(())
}
