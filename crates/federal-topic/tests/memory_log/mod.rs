//! A log held in memory: answers at once, so a test can stop a publisher's batch at a chosen
//! await point.
#![allow(dead_code)]

use std::sync::Mutex;

use async_trait::async_trait;
use contingent_domain::LearnerId;
use contingent_log::{EventLog, Head, LogError, RawEvent, RecordedEvent};

/// Sealed events in a vector.
#[derive(Default)]
pub struct MemoryLog {
    events: Mutex<Vec<RecordedEvent>>,
}

impl MemoryLog {
    fn events(&self) -> std::sync::MutexGuard<'_, Vec<RecordedEvent>> {
        self.events.lock().expect("memory log")
    }
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn append(&self, events: &[RecordedEvent]) -> Result<(), LogError> {
        let mut stored = self.events();
        let head = stored.last().map_or(Head::EMPTY, |e| Head {
            position: e.position(),
            hash: e.hash,
        });
        match events.first() {
            Some(first)
                if first.position() != head.position + 1
                    || first.envelope.prev_hash != head.hash =>
            {
                Err(LogError::Conflict(first.position()))
            }
            _ => {
                stored.extend_from_slice(events);
                Ok(())
            }
        }
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        Ok(self
            .events()
            .iter()
            .filter(|e| e.position() > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<RawEvent>, LogError> {
        Ok(self
            .read_after(after, limit)
            .await?
            .into_iter()
            .map(|e| RawEvent {
                position: e.position(),
                body: e.body,
                hash: e.hash.0.to_vec(),
            })
            .collect())
    }

    async fn read_learner(&self, learner: LearnerId) -> Result<Vec<RecordedEvent>, LogError> {
        Ok(self
            .events()
            .iter()
            .filter(|e| e.envelope.learner_id == Some(learner))
            .cloned()
            .collect())
    }

    async fn head(&self) -> Result<Head, LogError> {
        Ok(self.events().last().map_or(Head::EMPTY, |e| Head {
            position: e.position(),
            hash: e.hash,
        }))
    }
}
