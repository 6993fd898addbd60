//! The projector as a process of its own (`contingent project`): follows the log of record and
//! applies it to the chosen read models until asked to stop.
//!
//! Nothing is lost or applied twice across a crash: each batch's rows and the positions move in
//! one transaction, and a restarted projector starts from the stored positions. Two projectors
//! of the same read model may run at once (a standby): positions move by compare-and-set, so
//! only one applies a batch and the other starts again from what was stored.
//!
//! With a federal topic, the same process publishes the federal view of every event to it
//! (`contingent_federal_topic`); the topic itself records where the publisher left off.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use contingent_federal_topic::FederalPublisher;
use contingent_log_kafka::KafkaConfig;
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

/// Applies the log to the read models named in `models` (every one when empty, none when
/// `models` is `["none"]`) and, with `federal`, publishes the federal topic it names, until
/// `shutdown` completes; a batch under way when it does is finished first.
pub async fn run_projector(
    settings: &Settings,
    models: &[String],
    federal: Option<KafkaConfig>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RegistryError> {
    let projections = if models == ["none"] {
        Vec::new()
    } else {
        select_projections(models)?
    };
    let names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
    let log = open_log(settings).await?;
    let read = ReadStore::open(settings.read_database(), &projections).await?;
    let mut projector = Projector::new(read.clone(), projections, settings.projector_batch)
        .await
        .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
    let mut publisher = match federal {
        Some(config) => Some(
            FederalPublisher::open(config)
                .await
                .map_err(|e| RegistryError::Unavailable(e.to_string()))?,
        ),
        None => None,
    };
    tracing::info!(
        models = ?names,
        position = projector.position(),
        federal_topic = publisher.as_ref().map(FederalPublisher::topic),
        federal_position = publisher.as_ref().map(FederalPublisher::position),
        "projecting"
    );
    tokio::pin!(shutdown);
    loop {
        let mut pause = if names.is_empty() {
            IDLE_POLL
        } else if publisher.is_none() {
            match project_some(&mut projector, &log, &mut shutdown).await {
                Some(pause) => pause,
                // Asked to stop during a catch-up (which has ended: polled again, the finished
                // shutdown future would panic).
                None => break,
            }
        } else {
            // One batch, then the federal topic's turn: the two keep pace with each other.
            project_once(&mut projector, &*log).await
        };
        if let Some(publisher) = &mut publisher {
            pause = pause.min(
                match publisher.run_once(&*log, settings.projector_batch).await {
                    Ok(0) => IDLE_POLL,
                    Ok(_) => Duration::ZERO,
                    Err(error) => {
                        tracing::error!(%error, "publishing the federal topic failed; retrying");
                        RETRY_AFTER
                    }
                },
            );
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
    if let Err(error) = projector.finish_pending().await {
        tracing::error!(%error, "the batch under way when asked to stop failed");
    }
    read.close().await;
    log.close().await;
    Ok(())
}

/// One batch; when it was a full one (the read models are behind), the rest of the log
/// pipelined (`Projector::catch_up`) until its end or `shutdown`. Returns the pause before the
/// next call, or `None` when `shutdown` completed (it must not be polled again).
async fn project_some(
    projector: &mut Projector,
    log: &Arc<dyn contingent_log::EventLog>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<Duration> {
    let before = projector.position();
    let pause = project_once(projector, &**log).await;
    if pause != Duration::ZERO
        || projector.position().saturating_sub(before) < projector.batch() as u64
    {
        return Some(pause);
    }
    tokio::select! {
        // Dropped midway, a catch-up leaves the committed batches and nothing else.
        () = shutdown.as_mut() => None,
        caught_up = projector.catch_up(log, |_| {}) => {
            Some(pause_after(caught_up.map(|n| n as usize), projector.position(), "catch-up"))
        }
    }
}

/// One projector batch; returns how long to wait before the next.
async fn project_once(projector: &mut Projector, log: &dyn contingent_log::EventLog) -> Duration {
    let applied = projector.run_once(log).await;
    pause_after(applied, projector.position(), "batch")
}

/// How long to wait after a batch or a catch-up (`what`) applied events, none, or failed.
fn pause_after(applied: Result<usize, ProjectorError>, position: u64, what: &str) -> Duration {
    match applied {
        Ok(0) => IDLE_POLL,
        Ok(n) => {
            tracing::debug!(events = n, position, "{what} applied");
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
            tracing::error!(%error, "projector {what} failed; retrying");
            RETRY_AFTER
        }
    }
}
