//! The agreed history: which records of the topic are events of the log.
//!
//! Every reader applies this rule to the partition's records in offset order and so arrives at
//! the same log, with no transactions and no coordination between writers. It is pure: no I/O,
//! no clock, nothing but the records' headers and values. Outside consumers written in Rust can
//! use [`AgreedHistory`] directly; others implement the rule as stated in the crate's README.

use contingent_log::{Hash, Head};
use rdkafka::message::Headers;

/// The names of the headers every record carries. Values are UTF-8 text: decimal numbers,
/// 64 lowercase hex digits for hashes.
pub mod header {
    /// The event type name, e.g. `learner_registered`.
    pub const TYPE: &str = "type";
    /// The version of the event type's schema.
    pub const SCHEMA_VERSION: &str = "schema_version";
    /// The event's position in the log.
    pub const POSITION: &str = "position";
    /// The event id (UUID).
    pub const EVENT_ID: &str = "event_id";
    /// SHA-256 of the record's value (the event's stored bytes).
    pub const HASH: &str = "hash";
    /// The hash of the event before it.
    pub const PREV_HASH: &str = "prev_hash";
    /// The position of the last event of the append this record belongs to: an append of one
    /// event has `append_last == position`.
    pub const APPEND_LAST: &str = "append_last";
    /// On the last record of a signed append, and on the first of one of several records: the
    /// writer key that signed it (16 hex digits).
    pub const KEY_ID: &str = "key_id";
    /// On the last record of a signed append, and on the first of one of several records: the
    /// Ed25519 signature of the append (128 hex digits), over `contingent.batch.v1`, its first
    /// and last position, the hash before it, its last hash and the key id (see
    /// `contingent_log::BatchSignature`).
    pub const SIGNATURE: &str = "signature";
    /// On the first record of a signed append of several records: the hash of its last record,
    /// which the signature covers. With it, the first records of an append whose writer stopped
    /// before the rest arrived are known for its own (`verify`: an unfinished append, not an
    /// intruder's records).
    pub const APPEND_LAST_HASH: &str = "append_last_hash";
}

/// The `append_last_hash` header of a record, when it carries one.
pub fn append_last_hash<H: Headers>(headers: Option<&H>) -> Option<Hash> {
    headers?
        .iter()
        .find(|h| h.key == header::APPEND_LAST_HASH)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
        .and_then(Hash::parse)
}

/// The `key_id` and `signature` headers of a record, when it carries both.
pub fn signature_headers<H: Headers>(headers: Option<&H>) -> Option<(String, String)> {
    let (mut key_id, mut signature) = (None, None);
    for h in headers?.iter() {
        let text = || {
            h.value
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_owned)
        };
        match h.key {
            header::KEY_ID => key_id = text(),
            header::SIGNATURE => signature = text(),
            _ => {}
        }
    }
    Some((key_id?, signature?))
}

/// What the rule reads from one record: its chain headers, already checked against its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The `position` header.
    pub position: u64,
    /// The `prev_hash` header.
    pub prev_hash: Hash,
    /// The `hash` header, equal to SHA-256 of the record's value.
    pub hash: Hash,
    /// The `append_last` header.
    pub append_last: u64,
}

impl Candidate {
    /// Reads a record's headers. `None` when one of `position`, `prev_hash`, `hash` and
    /// `append_last` is missing or malformed, when `append_last < position`, or when the `hash`
    /// header is not SHA-256 of the value: such a record is never part of the log.
    pub fn from_record<H: Headers>(headers: Option<&H>, value: Option<&[u8]>) -> Option<Self> {
        let headers = headers?;
        let (mut position, mut prev_hash, mut hash, mut append_last) = (None, None, None, None);
        for h in headers.iter() {
            let text = || h.value.and_then(|v| std::str::from_utf8(v).ok());
            match h.key {
                header::POSITION => position = text().and_then(|t| t.parse::<u64>().ok()),
                header::PREV_HASH => prev_hash = text().and_then(Hash::parse),
                header::HASH => hash = text().and_then(Hash::parse),
                header::APPEND_LAST => append_last = text().and_then(|t| t.parse::<u64>().ok()),
                _ => {}
            }
        }
        let candidate = Self {
            position: position?,
            prev_hash: prev_hash?,
            hash: hash?,
            append_last: append_last?,
        };
        if candidate.position == 0 || candidate.append_last < candidate.position {
            return None;
        }
        if Hash::of(value.unwrap_or_default()) != candidate.hash {
            return None;
        }
        Some(candidate)
    }
}

/// A record the rule accepted, with whatever the caller attached to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted<T> {
    /// Its position in the log.
    pub position: u64,
    /// Its hash.
    pub hash: Hash,
    /// What the caller passed along with it (offset, key, value...).
    pub item: T,
}

/// The rule's state: the accepted head, and the records of an append seen so far whose last
/// record has not arrived yet.
///
/// ```text
/// head := (0, 32 zero bytes); pending := []
/// for each record in offset order:
///     skip it unless its headers are well formed and SHA-256(value) == hash
///     if position == head.position + 1 and prev_hash == head.hash:
///         pending := [record]                      (an unfinished earlier append is dropped)
///     else if pending is not empty and position == last(pending).position + 1
///             and prev_hash == last(pending).hash and append_last == last(pending).append_last:
///         pending += record
///     else:
///         skip it
///     if pending is not empty and last(pending).position == last(pending).append_last:
///         accept every record of pending; head := last(pending); pending := []
/// ```
///
/// An append of one event is accepted iff it continues the accepted head, so two writers
/// racing for a position converge: the first record at a lower offset wins. An append of
/// several events is accepted whole or not at all, even when its records are interleaved with
/// another writer's.
#[derive(Debug, Clone)]
pub struct AgreedHistory<T> {
    head: Head,
    pending: Vec<Accepted<T>>,
    pending_last: u64,
}

impl<T> Default for AgreedHistory<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> AgreedHistory<T> {
    /// The rule at the beginning of the partition (offset 0), before any event.
    pub fn new() -> Self {
        Self::resume(Head::EMPTY)
    }

    /// The rule resumed right after the record of an accepted event: feed it the records from
    /// that record's offset + 1 on, and it decides exactly as a reader that started at offset 0.
    pub fn resume(head: Head) -> Self {
        Self {
            head,
            pending: Vec::new(),
            pending_last: 0,
        }
    }

    /// The last accepted event.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Offers the next record in offset order; returns the records this one completes (the
    /// whole append, in order), usually none or one.
    pub fn offer(&mut self, candidate: Candidate, item: T) -> Vec<Accepted<T>> {
        let accepted = Accepted {
            position: candidate.position,
            hash: candidate.hash,
            item,
        };
        if candidate.position == self.head.position + 1 && candidate.prev_hash == self.head.hash {
            self.pending.clear();
            self.pending_last = candidate.append_last;
            self.pending.push(accepted);
        } else if self.pending.last().is_some_and(|last| {
            candidate.position == last.position + 1
                && candidate.prev_hash == last.hash
                && candidate.append_last == self.pending_last
        }) {
            self.pending.push(accepted);
        } else {
            return Vec::new();
        }
        if candidate.position == self.pending_last {
            self.head = Head {
                position: candidate.position,
                hash: candidate.hash,
            };
            return std::mem::take(&mut self.pending);
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake chain link: the hash is derived from the name so that tests read well.
    fn link(name: &str, position: u64, prev: Hash, append_last: u64) -> Candidate {
        Candidate {
            position,
            prev_hash: prev,
            hash: Hash::of(name.as_bytes()),
            append_last,
        }
    }

    fn names(accepted: Vec<Accepted<&'static str>>) -> Vec<&'static str> {
        accepted.into_iter().map(|a| a.item).collect()
    }

    #[test]
    fn single_event_appends_are_first_come_first_served() {
        let g = Hash::default();
        let mut h = AgreedHistory::new();
        let a1 = link("a1", 1, g, 1);
        let b1 = link("b1", 1, g, 1);
        assert_eq!(names(h.offer(a1, "a1")), ["a1"]);
        assert_eq!(names(h.offer(b1, "b1")), Vec::<&str>::new());
        assert_eq!(names(h.offer(a1, "a1 again")), Vec::<&str>::new());
        let b2 = link("b2", 2, a1.hash, 2);
        assert_eq!(names(h.offer(b2, "b2")), ["b2"]);
        assert_eq!(h.head().position, 2);
        assert_eq!(h.head().hash, b2.hash);
    }

    #[test]
    fn a_multi_event_append_is_accepted_whole_or_not_at_all() {
        let g = Hash::default();
        // A appends 1..=3, B appends 1..=2; their records interleave: A1 A2 B1 A3 B2.
        let a1 = link("a1", 1, g, 3);
        let a2 = link("a2", 2, a1.hash, 3);
        let a3 = link("a3", 3, a2.hash, 3);
        let b1 = link("b1", 1, g, 2);
        let b2 = link("b2", 2, b1.hash, 2);
        let mut h = AgreedHistory::new();
        assert!(h.offer(a1, "a1").is_empty());
        assert!(h.offer(a2, "a2").is_empty());
        assert!(h.offer(b1, "b1").is_empty());
        assert!(h.offer(a3, "a3").is_empty());
        assert_eq!(names(h.offer(b2, "b2")), ["b1", "b2"]);
        // A's append is not part of the log, and nothing can chain onto its records.
        let a4 = link("a4", 3, a3.hash, 3);
        assert!(h.offer(a4, "a4").is_empty());
        assert_eq!(h.head().position, 2);
    }

    #[test]
    fn an_unfinished_append_does_not_block_the_log() {
        let g = Hash::default();
        let a1 = link("a1", 1, g, 2);
        let b1 = link("b1", 1, g, 1);
        let mut h = AgreedHistory::new();
        assert!(h.offer(a1, "a1").is_empty());
        assert_eq!(names(h.offer(b1, "b1")), ["b1"]);
    }

    #[test]
    fn a_retried_duplicate_restarts_the_append_and_the_append_still_lands() {
        let g = Hash::default();
        let a1 = link("a1", 1, g, 2);
        let a2 = link("a2", 2, a1.hash, 2);
        let mut h = AgreedHistory::new();
        assert!(h.offer(a1, "a1").is_empty());
        assert!(h.offer(a1, "a1 dup").is_empty());
        assert_eq!(names(h.offer(a2, "a2")), ["a1 dup", "a2"]);
        assert!(h.offer(a2, "a2 dup").is_empty());
    }

    #[test]
    fn a_record_that_claims_another_appends_end_is_skipped() {
        let g = Hash::default();
        let a1 = link("a1", 1, g, 2);
        let x2 = link("x2", 2, a1.hash, 3);
        let mut h = AgreedHistory::new();
        assert!(h.offer(a1, "a1").is_empty());
        assert!(h.offer(x2, "x2").is_empty());
        assert_eq!(h.head(), Head::EMPTY);
    }

    #[test]
    fn resuming_after_an_accepted_record_decides_as_from_the_start() {
        let g = Hash::default();
        let a1 = link("a1", 1, g, 1);
        let b1 = link("b1", 1, g, 1);
        let a2 = link("a2", 2, a1.hash, 2);
        let mut from_start = AgreedHistory::new();
        assert_eq!(from_start.offer(a1, ()).len(), 1);
        let mut resumed = AgreedHistory::resume(from_start.head());
        for c in [b1, a2] {
            assert_eq!(from_start.offer(c, ()).len(), resumed.offer(c, ()).len());
        }
        assert_eq!(from_start.head(), resumed.head());
    }
}
