//! The event log: the envelope and its codec, the hash chain that makes any change to a stored
//! event detectable, and the [`EventLog`] trait that every log backend (the embedded SQLite log,
//! Kafka) implements.
//!
//! This crate owns the stored form of an event: `body` is the UTF-8 JSON of the [`Envelope`],
//! `hash = SHA-256(body)`, and each body carries the previous event's hash in `prev_hash`
//! (32 zero bytes before the first). It knows no storage engine: backends live in their own
//! crates, so projections and the API depend on the trait, never on SQLite or Kafka.
#![deny(missing_docs)]

mod envelope;
mod one_pass;
mod personal;
mod sign;
pub mod upcast;
mod verify;

use async_trait::async_trait;
use contingent_domain::LearnerId;

pub use envelope::{Envelope, Hash, Metadata, RecordedEvent, Source, GENESIS_HASH};
pub use one_pass::decode_one_pass;
pub use personal::{seal_personal, unseal, DataKey, PersonalSeal};
pub use sign::{
    key_id, BatchSignature, Checkpoint, KeyError, KeyStatus, RegisteredKey, WriterKey, WriterKeys,
};
pub use verify::{
    audit, verify_chain, AuditOutcome, Auditor, ChainBreak, ChainVerifier, Finding, FindingKind,
    StrayAppend, MAX_FINDINGS,
};

/// Errors of a log backend.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The storage engine failed.
    #[error("log storage: {0}")]
    Storage(String),
    /// Another writer appended first: the position is taken.
    #[error("position {0} is already taken: another writer appended first")]
    Conflict(u64),
    /// Stored bytes could not be encoded or decoded.
    #[error("event codec: {0}")]
    Codec(String),
}

/// A stored event as bytes: what the chain is computed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// Position.
    pub position: u64,
    /// Stored bytes.
    pub body: Vec<u8>,
    /// Stored hash bytes (32 unless damaged).
    pub hash: Vec<u8>,
}

/// The last event of a log: its position and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Position of the last event; 0 for an empty log.
    pub position: u64,
    /// Its hash; [`GENESIS_HASH`] for an empty log.
    pub hash: Hash,
}

impl Head {
    /// The head of an empty log.
    pub const EMPTY: Head = Head {
        position: 0,
        hash: GENESIS_HASH,
    };
}

/// An append-only, totally ordered log of sealed events.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Encodes a freshly decided envelope into the bytes to store and hashes them; the writer
    /// seals every event through its log. In clear by default; a log that keeps personal data
    /// sealed ([`seal_personal`]) overrides it.
    fn seal(&self, envelope: Envelope) -> Result<RecordedEvent, LogError> {
        RecordedEvent::seal(envelope)
    }

    /// Appends events that continue the log: the first must be at `head + 1` and chain to the
    /// head's hash. Returns only when the events are durable.
    async fn append(&self, events: &[RecordedEvent]) -> Result<(), LogError>;

    /// Up to `limit` events with positions after `after`, in order.
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError>;

    /// Up to `limit` stored events after `after`, undecoded: position, stored bytes and stored
    /// hash. The auditor's chain walk reads these, so that a damaged body is reported, not
    /// mistaken for a storage failure.
    async fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<RawEvent>, LogError>;

    /// Every event about one learner, in log order.
    async fn read_learner(&self, learner: LearnerId) -> Result<Vec<RecordedEvent>, LogError>;

    /// The last event's position and hash.
    async fn head(&self) -> Result<Head, LogError>;

    /// Closes the log, flushing whatever the backend buffers. Appends after closing fail.
    async fn close(&self) {}

    /// Up to `limit` stored batch signatures whose last position is after `after`, in order.
    /// A backend that signs nothing has none.
    async fn read_signatures_after(
        &self,
        _after: u64,
        _limit: usize,
    ) -> Result<Vec<BatchSignature>, LogError> {
        Ok(Vec::new())
    }

    /// Every stored checkpoint, in order of position.
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, LogError> {
        Ok(Vec::new())
    }

    /// Signs the current head and stores the checkpoint; none when the log is empty or this
    /// process holds no writer key.
    async fn publish_checkpoint(&self) -> Result<Option<Checkpoint>, LogError> {
        Ok(None)
    }

    /// Every record the store holds that is not part of the log (on Kafka: records the
    /// agreed-history rule did not accept), grouped by the append they claim; none for a store
    /// that keeps only the log.
    async fn stray_appends(&self) -> Result<Vec<StrayAppend>, LogError> {
        Ok(Vec::new())
    }

    /// Checks whatever the backend keeps beside the hashed bytes (an index of learners)
    /// against those bytes; what does not match.
    async fn check_indexes(&self) -> Result<Vec<Finding>, LogError> {
        Ok(Vec::new())
    }
}
