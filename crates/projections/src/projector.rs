//! The projector: reads the log after the lowest projection position and applies batches.

use std::collections::HashMap;

use contingent_log::{EventLog, LogError};

use crate::{Projection, ReadStore};

/// Errors of a projector run.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Writing the read models failed.
    #[error("read model: {0}")]
    Store(#[from] sqlx::Error),
}

/// Applies the log to a set of projections.
pub struct Projector {
    store: ReadStore,
    projections: Vec<Box<dyn Projection>>,
    positions: HashMap<&'static str, u64>,
    batch: usize,
}

impl Projector {
    /// A projector over `projections`, starting from the positions stored in `store`.
    pub async fn new(
        store: ReadStore,
        projections: Vec<Box<dyn Projection>>,
        batch: usize,
    ) -> Result<Self, ProjectorError> {
        let stored = store.positions().await?;
        let positions = projections
            .iter()
            .map(|p| (p.name(), stored.get(p.name()).copied().unwrap_or(0)))
            .collect();
        Ok(Self {
            store,
            projections,
            positions,
            batch: batch.max(1),
        })
    }

    /// The lowest position of all projections: everything up to it is in every read model.
    pub fn position(&self) -> u64 {
        self.positions.values().copied().min().unwrap_or(0)
    }

    /// Reads one batch after the lowest position and applies it in one transaction.
    /// Returns how many events were read (0 when caught up).
    pub async fn run_once(&mut self, log: &dyn EventLog) -> Result<usize, ProjectorError> {
        let from = self.position();
        let events = log.read_after(from, self.batch).await?;
        let Some(last) = events.last().map(|e| e.position()) else {
            return Ok(0);
        };
        let mut tx = self.store.pool().begin().await?;
        for event in &events {
            for projection in &self.projections {
                if self.positions[projection.name()] < event.position() {
                    projection.apply(&mut tx, event).await?;
                }
            }
        }
        for projection in &self.projections {
            if self.positions[projection.name()] < last {
                sqlx::query(
                    "INSERT INTO projection_positions (projection, position) VALUES (?, ?) \
                     ON CONFLICT (projection) DO UPDATE SET position = excluded.position",
                )
                .bind(projection.name())
                .bind(last as i64)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        for projection in &self.projections {
            let p = self
                .positions
                .get_mut(projection.name())
                .expect("known projection");
            *p = (*p).max(last);
        }
        Ok(events.len())
    }

    /// Applies batches until the log has nothing more; returns how many events were applied.
    pub async fn catch_up(
        &mut self,
        log: &dyn EventLog,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, ProjectorError> {
        let mut total = 0u64;
        loop {
            let n = self.run_once(log).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
            progress(self.position());
        }
    }
}
