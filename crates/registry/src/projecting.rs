//! The projector as a process of its own (`contingent project`): follows the log of record and
//! applies it to the chosen read models until asked to stop.
//!
//! Nothing is lost or applied twice across a crash: each batch's rows and the positions move in
//! one transaction, and a restarted projector starts from the stored positions. Two projectors
//! of the same read model may run at once (a standby): positions move by compare-and-set, so
//! only one applies a batch and the other starts again from what was stored.

use std::future::Future;
use std::time::Duration;

use contingent_projections::{all_projections, Projection, Projector, ProjectorError, ReadStore};

use crate::registry::{open_log, RegistryError};
use crate::settings::Settings;

/// How long a projector waits before reading again a log that had nothing new.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// How long it waits after a failed batch before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The read models named in `models` (every one when empty).
pub fn select_projections(models: &[String]) -> Result<Vec<Box<dyn Projection>>, RegistryError> {
    let all = all_projections();
    for name in models {
        if !all.iter().any(|p| p.name() == name) {
            return Err(RegistryError::Unavailable(format!(
                "no read model is called {name}"
            )));
        }
    }
    Ok(all
        .into_iter()
        .filter(|p| models.is_empty() || models.iter().any(|m| m == p.name()))
        .collect())
}

/// Applies the log to the read models named in `models` (every one when empty) until
/// `shutdown` completes; a batch under way when it does is finished first.
pub async fn run_projector(
    settings: &Settings,
    models: &[String],
    shutdown: impl Future<Output = ()>,
) -> Result<(), RegistryError> {
    let projections = select_projections(models)?;
    let names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
    let log = open_log(settings).await?;
    let read = ReadStore::open(settings.read_database(), &projections).await?;
    let mut projector = Projector::new(read.clone(), projections, settings.projector_batch)
        .await
        .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
    tracing::info!(models = ?names, position = projector.position(), "projecting");
    tokio::pin!(shutdown);
    loop {
        let pause = match projector.run_once(&*log).await {
            Ok(0) => IDLE_POLL,
            Ok(n) => {
                tracing::debug!(events = n, position = projector.position(), "batch applied");
                Duration::ZERO
            }
            Err(ProjectorError::Overtaken { projection }) => {
                tracing::info!(
                    projection,
                    "another projector applied this batch first; continuing from its position"
                );
                IDLE_POLL
            }
            Err(error) => {
                tracing::error!(%error, "projector batch failed; retrying");
                RETRY_AFTER
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
    read.close().await;
    log.close().await;
    Ok(())
}
