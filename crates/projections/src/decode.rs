//! Readers of the log's stored bytes for rebuilds and measurements: [`decode_envelope`] is the
//! log's one-pass envelope decoder (`contingent_log::decode_one_pass`, which
//! [`RecordedEvent::open`] uses for every body it can read so), and [`open_recorded`] /
//! [`read_decoded_after`] decode stored events with it, giving the bodies it does not read in
//! one pass (a sealed part, an older schema version, anything malformed) to
//! `RecordedEvent::open`, so results and errors are always the standard decoder's. Used by the
//! benchmark's rebuild suite.

use contingent_log::{Envelope, EventLog, Hash, LogError, RawEvent, RecordedEvent};

/// Decodes a stored event (see the module documentation).
pub fn open_recorded(raw: RawEvent) -> Result<RecordedEvent, LogError> {
    let hash: [u8; 32] = raw
        .hash
        .try_into()
        .map_err(|_| LogError::Codec("a stored hash is not 32 bytes".into()))?;
    match decode_envelope(&raw.body) {
        Some(envelope) => Ok(RecordedEvent {
            envelope,
            body: raw.body,
            hash: Hash(hash),
        }),
        None => RecordedEvent::open(raw.body, Hash(hash)),
    }
}

/// Reads up to `limit` events after `after` as stored bytes and decodes them with
/// [`open_recorded`]: what [`EventLog::read_after`] returns for a log that decodes its stored
/// bytes without keys (`SqliteLog` opened on its own, as the benchmark's rebuild reads it). Not
/// for the registry's log, whose `read_after` opens sealed personal fields with the learners'
/// keys: here they read as erased, as `Envelope::decode` reads them.
pub async fn read_decoded_after(
    log: &dyn EventLog,
    after: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, LogError> {
    log.read_raw_after(after, limit)
        .await?
        .into_iter()
        .map(open_recorded)
        .collect()
}

/// The envelope in one pass, or `None` when the body needs the derived decoder.
pub fn decode_envelope(body: &[u8]) -> Option<Envelope> {
    contingent_log::decode_one_pass(body)
}
