//! Answers to a learner's diary, kept while nothing about the learner changes.
//!
//! Each answer is kept with the position the read models had reached before it was read. It is
//! served again only while that position is at or past the learner's last event
//! ([`Registry::learner_last_event_at`]) and the caller's `min_position`: then the read models
//! would give the same answer. Parents open a diary many times between two marks.
//!
//! Only an event about the learner can change their diary: it is read from
//! `register_learners` (name, birth date, status) and `diary_marks`, `diary_attendance` and
//! `diary_exams`, and every row of those tables for a learner is written only by events whose
//! `learner_id` is that learner. Subjects, periods and teachers are the mark's own text; the
//! diary shows no class, organization or capacity. So an event about no learner (a class
//! opened or its capacity changed, a teacher assigned, an organization registered) evicts no
//! diary.

use bytes::Bytes;
use contingent_domain::{AcademicYear, LearnerId};
use contingent_registry::Registry;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

type Key = (LearnerId, Option<AcademicYear>);

#[derive(Clone)]
struct Kept {
    /// The read models had reached this position before the answer was read.
    read_at: u64,
    body: Bytes,
}

#[derive(Clone)]
struct BodyBytes;

impl Weighter<Key, Kept> for BodyBytes {
    fn weight(&self, _key: &Key, kept: &Kept) -> u64 {
        kept.body.len() as u64 + 64
    }
}

/// The kept diaries, bounded in bytes.
pub(crate) struct ReadCache {
    diaries: Option<Cache<Key, Kept, BodyBytes>>,
}

impl ReadCache {
    /// A cache of at most `bytes` (none when 0).
    pub fn new(bytes: u64) -> Self {
        let diaries = (bytes > 0).then(|| {
            let items = (bytes / 4096).max(16) as usize;
            Cache::with_weighter(items, bytes, BodyBytes)
        });
        Self { diaries }
    }

    /// The kept diary, if it is still what the read models say: read at or after `current`.
    pub fn diary(&self, key: &Key, current: u64) -> Option<Bytes> {
        let kept = self.diaries.as_ref()?.get(key)?;
        (kept.read_at >= current).then_some(kept.body)
    }

    /// Keeps a diary read when the read models had reached `read_at`.
    pub fn keep_diary(&self, key: Key, read_at: u64, body: Bytes) {
        if let Some(diaries) = &self.diaries {
            diaries.insert(key, Kept { read_at, body });
        }
    }
}

/// The position a kept answer about `learner` must have been read at to be served: none when
/// the writer does not know the learner, or when the read models hold events this process has
/// not read yet (another process appended them on a shared log), so that what it knows of the
/// learner may be behind what the read models say.
pub(crate) fn needed(registry: &Registry, learner: LearnerId, min_position: u64) -> Option<u64> {
    if registry.projected() > registry.head() {
        return None;
    }
    registry
        .learner_last_event_at(learner)
        .map(|changed| changed.max(min_position))
}
