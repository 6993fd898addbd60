//! Walking the hash chain.

use crate::envelope::{Envelope, Hash, RecordedEvent, GENESIS_HASH};

/// The first place where the stored log does not match its chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    /// Position of the offending event (as stored, or as expected where the position is wrong).
    pub position: u64,
    /// What does not match.
    pub problem: String,
}

/// Checks events in log order, continuing from a known position and hash.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_position: u64,
    prev_hash: Hash,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_position: 1,
            prev_hash: GENESIS_HASH,
        }
    }
}

impl ChainVerifier {
    /// A verifier for a log from its first event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events checked so far.
    pub fn checked(&self) -> u64 {
        self.expected_position - 1
    }

    /// The hash of the last event checked.
    pub fn head(&self) -> Hash {
        self.prev_hash
    }

    /// Checks the next stored event, given as its raw bytes and stored hash.
    pub fn check(
        &mut self,
        position: u64,
        body: &[u8],
        stored_hash: Hash,
    ) -> Result<(), ChainBreak> {
        let here = self.expected_position;
        if position != here {
            return Err(ChainBreak {
                position: here,
                problem: format!("expected position {here}, found {position}"),
            });
        }
        if Hash::of(body) != stored_hash {
            return Err(ChainBreak {
                position,
                problem: "the stored bytes do not match the stored hash: the event was altered"
                    .into(),
            });
        }
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| ChainBreak {
            position,
            problem: format!("the stored bytes are not a valid event: {e}"),
        })?;
        if envelope.position != position {
            return Err(ChainBreak {
                position,
                problem: format!(
                    "the event says position {}, stored at {position}",
                    envelope.position
                ),
            });
        }
        if envelope.prev_hash != self.prev_hash {
            return Err(ChainBreak {
                position,
                problem: format!(
                    "prev_hash {} does not match the previous event's hash {}",
                    envelope.prev_hash, self.prev_hash
                ),
            });
        }
        self.prev_hash = stored_hash;
        self.expected_position += 1;
        Ok(())
    }

    /// Checks a stored event as read back raw.
    pub fn check_raw(&mut self, raw: &crate::RawEvent) -> Result<(), ChainBreak> {
        let hash: [u8; 32] = raw.hash.as_slice().try_into().map_err(|_| ChainBreak {
            position: raw.position,
            problem: "the stored hash is not 32 bytes".into(),
        })?;
        self.check(raw.position, &raw.body, Hash(hash))
    }

    /// Checks a recorded event.
    pub fn check_recorded(&mut self, event: &RecordedEvent) -> Result<(), ChainBreak> {
        self.check(event.position(), &event.body, event.hash)
    }
}

/// Verifies a whole sequence from the first event; the first break, if any.
pub fn verify_chain<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<u64, ChainBreak> {
    let mut verifier = ChainVerifier::new();
    for event in events {
        verifier.check_recorded(event)?;
    }
    Ok(verifier.checked())
}
