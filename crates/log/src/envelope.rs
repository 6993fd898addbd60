//! The envelope every event travels in, and the codec that turns it into the exact bytes stored
//! in the log and hashed into the chain.

use chrono::{DateTime, NaiveDate, Utc};
use contingent_domain::{Event, LearnerId, SourceKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::LogError;

/// The hash that precedes the first event of a log: 32 zero bytes.
pub const GENESIS_HASH: Hash = Hash([0; 32]);

/// A SHA-256 hash, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Parses 64 hex digits.
    pub fn parse(hex_text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut out).ok()?;
        Some(Self(out))
    }

    /// As hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Who reported a fact: the kind of source and its identifier (civil registry office,
/// organization id, portal, exam centre).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Kind of source.
    pub kind: SourceKind,
    /// Its identifier.
    pub id: String,
}

/// An event with everything the log records about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Position in the log: 1 for the first event, then one more for each.
    pub position: u64,
    /// Globally unique event id (UUID v7).
    pub event_id: Uuid,
    /// Version of the event type's schema.
    pub schema_version: u16,
    /// The learner the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learner_id: Option<LearnerId>,
    /// When the fact happened.
    pub business_date: NaiveDate,
    /// When the registry recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Who reported it.
    pub source: Source,
    /// The user or system account that issued the command.
    pub actor: String,
    /// The caller's idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// SHA-256 (hex) of the command's canonical body, with an idempotency key: the same key
    /// with another body is refused, not answered with this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_fingerprint: Option<String>,
    /// Hash of the previous event's stored bytes.
    pub prev_hash: Hash,
    /// The event: `type` and `data`.
    #[serde(flatten)]
    pub event: Event,
    /// Whether the personal fields of `data` were stored sealed under a data key, and whether
    /// they could be opened; absent for an event stored in clear. Not part of the stored bytes
    /// (which carry the sealed part itself): set when they are decoded.
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub personal: Option<crate::PersonalSeal>,
    /// The schema version the stored bytes were written with, when it is older than
    /// `schema_version`: the event was upcast to the current version of its type as it was
    /// decoded (`crate::upcast`). Not part of the stored bytes.
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub stored_schema_version: Option<u16>,
}

/// An event as stored: the envelope, the exact bytes that were written and hashed, and the hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The decoded envelope.
    pub envelope: Envelope,
    /// The stored bytes (UTF-8 JSON of the envelope).
    pub body: Vec<u8>,
    /// SHA-256 of `body`.
    pub hash: Hash,
}

impl RecordedEvent {
    /// Encodes an envelope into the bytes to store, and hashes them.
    pub fn seal(mut envelope: Envelope) -> Result<Self, LogError> {
        envelope.personal = None;
        envelope.stored_schema_version = None;
        let body = serde_json::to_vec(&envelope).map_err(|e| LogError::Codec(e.to_string()))?;
        let hash = Hash::of(&body);
        Ok(Self {
            envelope,
            body,
            hash,
        })
    }

    /// Decodes stored bytes; the stored hash is taken as given (see [`crate::verify_chain`]).
    pub fn open(body: Vec<u8>, hash: Hash) -> Result<Self, LogError> {
        let envelope = Envelope::decode(&body)?;
        Ok(Self {
            envelope,
            body,
            hash,
        })
    }

    /// The position.
    pub fn position(&self) -> u64 {
        self.envelope.position
    }

    /// The event as readers are served it (history, the feed, the federal topic): the stored
    /// JSON, with `data` as decoded when that differs from the stored `data` (sealed personal
    /// fields opened or read as erased; an event upcast to the current version of its type,
    /// whose `schema_version` is then the current one and `stored_schema_version` the stored
    /// one). The hash still covers the stored bytes, [`RecordedEvent::body`].
    pub fn served_json(&self) -> Result<serde_json::Value, LogError> {
        let codec = |e: serde_json::Error| LogError::Codec(e.to_string());
        let mut served: serde_json::Value = serde_json::from_slice(&self.body).map_err(codec)?;
        let object = served
            .as_object_mut()
            .ok_or_else(|| LogError::Codec("not an object".into()))?;
        if self.envelope.personal.is_some() || self.envelope.stored_schema_version.is_some() {
            let mut event = serde_json::to_value(&self.envelope.event).map_err(codec)?;
            if let Some(data) = event.get_mut("data") {
                object.insert("data".into(), data.take());
            }
        }
        if let Some(stored) = self.envelope.stored_schema_version {
            object.insert("schema_version".into(), self.envelope.schema_version.into());
            object.insert("stored_schema_version".into(), stored.into());
        }
        Ok(served)
    }
}

/// What a caller says about a command besides its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Who reported it.
    pub source: Source,
    /// The user or system account.
    pub actor: String,
    /// The caller's idempotency key.
    pub idempotency_key: Option<String>,
    /// SHA-256 (hex) of the command's canonical body, sent with an idempotency key.
    pub request_fingerprint: Option<String>,
}

impl Envelope {
    /// Wraps freshly decided events: positions from `next_position`, each chained to the one
    /// before, starting from `prev_hash`.
    pub fn seal_all(
        events: Vec<Event>,
        meta: &Metadata,
        next_position: u64,
        prev_hash: Hash,
        recorded_at: DateTime<Utc>,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        Self::seal_all_with(
            events,
            meta,
            next_position,
            prev_hash,
            recorded_at,
            RecordedEvent::seal,
        )
    }

    /// [`Envelope::seal_all`], each envelope encoded by `seal` (a log's [`crate::EventLog::seal`],
    /// which may seal personal fields).
    pub fn seal_all_with(
        events: Vec<Event>,
        meta: &Metadata,
        next_position: u64,
        mut prev_hash: Hash,
        recorded_at: DateTime<Utc>,
        seal: impl Fn(Envelope) -> Result<RecordedEvent, LogError>,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let mut out = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            let envelope = Envelope {
                position: next_position + i as u64,
                event_id: Uuid::now_v7(),
                schema_version: event.schema_version(),
                learner_id: event.learner_id(),
                business_date: event
                    .business_date()
                    .unwrap_or_else(|| recorded_at.date_naive()),
                recorded_at,
                source: meta.source.clone(),
                actor: meta.actor.clone(),
                idempotency_key: meta.idempotency_key.clone(),
                request_fingerprint: meta.request_fingerprint.clone(),
                prev_hash,
                event,
                personal: None,
                stored_schema_version: None,
            };
            let sealed = seal(envelope)?;
            prev_hash = sealed.hash;
            out.push(sealed);
        }
        Ok(out)
    }
}
