//! The log as the registry uses it: personal fields sealed under each learner's data key on
//! the way in, opened on the way out, and the keys destroyed when a learner's personal data
//! is erased.
//!
//! [`PrivateLog`] wraps any [`EventLog`]. The writer seals every event through
//! [`EventLog::seal`]: a learner's first event with personal fields gets a fresh data key
//! (made in memory, so deciding stays synchronous), which `append` stores in the key store
//! before the events that need it are appended. An append holding `personal_data_erased`
//! destroys the learner's keys first, then appends. Reads open each sealed event with its key
//! (cached in memory); an event whose key is gone reads with its personal fields erased, which
//! is not an error. Reading a `personal_data_erased` event drops the learner's keys from this
//! process's memory, so another process that erased them is followed, and destroys any key of
//! the learner made before it that the store holds again (a restored backup).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use contingent_domain::{Event, LearnerId};
use contingent_log::{
    seal_personal, unseal, BatchSignature, Checkpoint, DataKey, Envelope, EventLog, Finding, Head,
    LogError, RawEvent, RecordedEvent, StrayAppend,
};
use uuid::Uuid;

use crate::keystore::KeyStore;

#[derive(Default)]
struct Cache {
    /// Keys by id: `None` for an id the store does not have (destroyed).
    by_id: HashMap<Uuid, Option<Arc<DataKey>>>,
    /// The key new events of a learner are sealed under.
    current: HashMap<LearnerId, Arc<DataKey>>,
    /// Keys made for events sealed but not yet stored.
    unstored: Vec<Arc<DataKey>>,
}

/// A log that keeps personal fields sealed (see the module documentation).
pub struct PrivateLog {
    inner: Arc<dyn EventLog>,
    store: Arc<dyn KeyStore>,
    cache: Mutex<Cache>,
}

fn storage(e: impl std::fmt::Display) -> LogError {
    LogError::Storage(format!("key store: {e}"))
}

impl PrivateLog {
    /// Wraps a log.
    pub fn new(inner: Arc<dyn EventLog>, store: Arc<dyn KeyStore>) -> Self {
        Self {
            inner,
            store,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets a learner's keys in memory.
    fn forget(&self, learner: LearnerId) {
        let mut cache = self.cache();
        cache.current.remove(&learner);
        // Asked of the store again when needed: a key destroyed is not there any more, one made
        // after the erasure is.
        cache
            .by_id
            .retain(|_, key| key.as_ref().is_none_or(|k| k.learner != learner));
        cache.unstored.retain(|k| k.learner != learner);
    }

    /// Opens the sealed events of a batch read from the log. The erasures in the batch come
    /// first: their learners' keys are forgotten and any key made before the erasure that the
    /// store still holds (restored from a backup, or left by a process stopped between
    /// destroying and appending) is destroyed, so none of their earlier events opens.
    async fn open(&self, events: &mut [RecordedEvent]) -> Result<(), LogError> {
        for event in events.iter() {
            if let Event::PersonalDataErased(e) = &event.envelope.event {
                self.forget(e.learner_id);
                self.store
                    .destroy(e.learner_id, Some(event.envelope.recorded_at))
                    .await
                    .map_err(storage)?;
            }
        }
        for event in events.iter_mut() {
            let Some(seal) = event.envelope.personal.as_ref().filter(|p| !p.readable) else {
                continue;
            };
            let key_id = seal.key_id;
            let cached = self.cache().by_id.get(&key_id).cloned();
            let key = match cached {
                Some(key) => key,
                None => {
                    let key = self.store.get(key_id).await.map_err(storage)?.map(Arc::new);
                    let mut cache = self.cache();
                    if let Some(k) = &key {
                        cache.current.entry(k.learner).or_insert_with(|| k.clone());
                    }
                    cache.by_id.insert(key_id, key.clone());
                    key
                }
            };
            if let Some(key) = key {
                if let Err(error) = unseal(event, &key) {
                    tracing::warn!(position = event.position(), %error, "personal fields left unread");
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventLog for PrivateLog {
    fn seal(&self, envelope: Envelope) -> Result<RecordedEvent, LogError> {
        seal_personal(envelope, |learner| {
            let mut cache = self.cache();
            if let Some(key) = cache.current.get(&learner) {
                return Ok(key.clone());
            }
            let key = Arc::new(DataKey::generate(learner));
            cache.current.insert(learner, key.clone());
            cache.by_id.insert(key.id, Some(key.clone()));
            cache.unstored.push(key.clone());
            Ok(key)
        })
    }

    async fn append(&self, events: &[RecordedEvent]) -> Result<(), LogError> {
        for event in events {
            if let Event::PersonalDataErased(e) = &event.envelope.event {
                self.forget(e.learner_id);
                self.store
                    .destroy(e.learner_id, None)
                    .await
                    .map_err(storage)?;
            }
        }
        let unstored = std::mem::take(&mut self.cache().unstored);
        let keys: Vec<&DataKey> = unstored.iter().map(|k| &**k).collect();
        if let Err(error) = self.store.create(&keys).await {
            self.cache().unstored.extend(unstored.iter().cloned());
            return Err(storage(error));
        }
        self.inner.append(events).await
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let mut events = self.inner.read_after(after, limit).await?;
        self.open(&mut events).await?;
        Ok(events)
    }

    async fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<RawEvent>, LogError> {
        self.inner.read_raw_after(after, limit).await
    }

    async fn read_learner(&self, learner: LearnerId) -> Result<Vec<RecordedEvent>, LogError> {
        let mut events = self.inner.read_learner(learner).await?;
        self.open(&mut events).await?;
        Ok(events)
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
