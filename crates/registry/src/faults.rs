//! Injected append faults, for fault-injection tests of a whole deployment (`serve
//! --inject-append-faults SEED:PER_MILLE`): a wrapper over the log of record that makes some
//! appends fail, chosen by a seeded sequence so that a run can be repeated. Half of them fail
//! before anything is written (a storage that refused the write); the other half are written
//! and then reported failed (an acknowledgement lost on its way back), so the writer meets both
//! a failed append and one whose outcome it must learn from the log.

use async_trait::async_trait;
use contingent_domain::LearnerId;
use contingent_log::{
    BatchSignature, Checkpoint, Envelope, EventLog, Finding, Head, LogError, RawEvent,
    RecordedEvent, StrayAppend,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Which appends fail: the `n`-th append fails when a hash of (`seed`, `n`) falls under
/// `per_mille` of a thousand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendFaults {
    /// Seed of the sequence of faults.
    pub seed: u64,
    /// Appends in a thousand that fail.
    pub per_mille: u32,
}

impl std::str::FromStr for AppendFaults {
    type Err = String;

    /// `SEED:PER_MILLE`, e.g. `7:50` (one append in twenty fails).
    fn from_str(s: &str) -> Result<Self, String> {
        let (seed, per_mille) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not SEED:PER_MILLE"))?;
        let seed = seed.parse().map_err(|e| format!("seed {seed:?}: {e}"))?;
        let per_mille: u32 = per_mille
            .parse()
            .map_err(|e| format!("per mille {per_mille:?}: {e}"))?;
        if per_mille > 1000 {
            return Err(format!("{per_mille} is more than a thousand per mille"));
        }
        Ok(Self { seed, per_mille })
    }
}

/// SplitMix64: a well-mixed 64-bit hash of a counter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The log of record with injected append faults.
pub(crate) struct FaultyLog {
    inner: Arc<dyn EventLog>,
    faults: AppendFaults,
    appends: AtomicU64,
}

impl FaultyLog {
    pub(crate) fn new(inner: Arc<dyn EventLog>, faults: AppendFaults) -> Self {
        Self {
            inner,
            faults,
            appends: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl EventLog for FaultyLog {
    async fn append(&self, events: &[RecordedEvent]) -> Result<(), LogError> {
        let n = self.appends.fetch_add(1, Ordering::Relaxed);
        let draw = mix(self.faults.seed ^ mix(n));
        if draw % 1000 >= u64::from(self.faults.per_mille) {
            return self.inner.append(events).await;
        }
        let first = events.first().map_or(0, RecordedEvent::position);
        if (draw >> 32) & 1 == 0 {
            tracing::warn!(first, "injected fault: the append fails before writing");
            return Err(LogError::Storage("injected fault: nothing written".into()));
        }
        tracing::warn!(
            first,
            "injected fault: the append is written, then reported failed"
        );
        self.inner.append(events).await?;
        Err(LogError::Storage(
            "injected fault: written, acknowledgement lost".into(),
        ))
    }
    fn seal(&self, envelope: Envelope) -> Result<RecordedEvent, LogError> {
        self.inner.seal(envelope)
    }
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_after(after, limit).await
    }
    async fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<RawEvent>, LogError> {
        self.inner.read_raw_after(after, limit).await
    }
    async fn read_learner(&self, learner: LearnerId) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_learner(learner).await
    }
    async fn head(&self) -> Result<Head, LogError> {
        self.inner.head().await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
    async fn read_signatures_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<BatchSignature>, LogError> {
        self.inner.read_signatures_after(after, limit).await
    }
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, LogError> {
        self.inner.checkpoints().await
    }
    async fn publish_checkpoint(&self) -> Result<Option<Checkpoint>, LogError> {
        self.inner.publish_checkpoint().await
    }
    async fn stray_appends(&self) -> Result<Vec<StrayAppend>, LogError> {
        self.inner.stray_appends().await
    }
    async fn check_indexes(&self) -> Result<Vec<Finding>, LogError> {
        self.inner.check_indexes().await
    }
}
