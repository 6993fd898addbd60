//! Counts recomputed from the log itself, for the data-quality panel: the events that open and
//! end enrollments, that queue and decide applications, that register learners and record exam
//! results, folded in log order up to a position. The fold is kept between page views and
//! brought forward over the events appended since (the stored events read through the
//! registry's log; only the counted types are decoded, without their personal fields); it holds
//! no rule of the registry's, only counts.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use chrono::NaiveDate;
use contingent_domain::{ApplicationId, EnrollmentId, Event, LearnerId, OrganizationId};
use contingent_log::Envelope;
use contingent_registry::{Registry, RegistryError};
use serde::Deserialize;
use tokio::sync::{Mutex, MutexGuard};

/// How many events are read from the log at a time.
const PAGE: usize = 5_000;

/// How many events a page view folds itself; a fold further behind (the first view after a
/// start, on a long log) runs in the background, and views say how far it has come.
pub(crate) const INLINE_FOLD: u64 = 50_000;

/// The fold kept between page views, and the one that runs in the background when a view finds
/// it far behind.
pub(crate) struct Fold {
    tally: Mutex<LogTally>,
    /// Whether a background fold is running.
    running: AtomicBool,
    /// The position the fold has reached, readable while it runs.
    reached: AtomicU64,
    /// How many events a view folds itself ([`INLINE_FOLD`]).
    inline: u64,
}

/// The fold cannot be compared yet: it is being brought forward in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Folding {
    /// The position reached.
    pub at: u64,
    /// The position it is brought to.
    pub of: u64,
}

impl Fold {
    /// A fold from the start of the log; a view folds at most `inline` events itself.
    pub fn new(inline: u64) -> Self {
        Self {
            tally: Mutex::new(LogTally::default()),
            running: AtomicBool::new(false),
            reached: AtomicU64::new(0),
            inline,
        }
    }

    /// The fold at exactly `position`, brought forward by this view when that is at most
    /// `inline` events (from zero after a rebuild of the read models behind it); when it is
    /// further behind, the rest is folded in the background, a page of the log at a time,
    /// and this view is told how far it has come.
    pub async fn at(
        self: &Arc<Self>,
        registry: &Arc<Registry>,
        position: u64,
    ) -> Result<Result<MutexGuard<'_, LogTally>, Folding>, RegistryError> {
        let folding = |fold: &Self| Folding {
            at: fold.reached.load(Ordering::Relaxed),
            of: position,
        };
        if self.running.load(Ordering::Acquire) {
            return Ok(Err(folding(self)));
        }
        let mut tally = self.tally.lock().await;
        if tally.position > position {
            // The read models were rebuilt behind the fold: it starts again from zero, and the
            // distance is judged from there.
            *tally = LogTally::default();
            self.reached.store(0, Ordering::Relaxed);
        }
        if position > tally.position.saturating_add(self.inline) {
            if !self.running.swap(true, Ordering::AcqRel) {
                let (fold, registry) = (self.clone(), registry.clone());
                tokio::spawn(async move { fold.forward(&registry, position).await });
            }
            return Ok(Err(folding(self)));
        }
        tally.advance_to(registry, position).await?;
        self.reached.store(tally.position, Ordering::Relaxed);
        Ok(Ok(tally))
    }

    /// Folds up to `position` a page at a time, letting views in between.
    async fn forward(&self, registry: &Registry, position: u64) {
        loop {
            let mut tally = self.tally.lock().await;
            let before = tally.position;
            let next = before.saturating_add(PAGE as u64).min(position);
            if let Err(error) = tally.advance_to(registry, next).await {
                tracing::warn!(%error, "folding the log for the data-quality panel failed");
                break;
            }
            self.reached.store(tally.position, Ordering::Relaxed);
            if tally.position >= position || tally.position == before {
                break;
            }
            drop(tally);
            tokio::task::yield_now().await;
        }
        self.running.store(false, Ordering::Release);
    }
}

/// Counts folded from the log up to `position`.
#[derive(Default)]
pub(crate) struct LogTally {
    /// The last position folded.
    pub position: u64,
    /// Each organization's municipality and name.
    pub organizations: HashMap<OrganizationId, (String, String)>,
    /// Enrollments opened and not ended, with their organization.
    open: HashMap<EnrollmentId, OrganizationId>,
    /// The open enrollments of each learner (a death ends them all).
    open_by_learner: HashMap<LearnerId, Vec<EnrollmentId>>,
    /// Applications submitted and not decided, withdrawn or accepted: organization, learner,
    /// due date.
    pending: HashMap<ApplicationId, (OrganizationId, LearnerId, NaiveDate)>,
    /// Every learner registered (at birth or from documents).
    learners: HashSet<LearnerId>,
    /// Exam results recorded.
    pub exam_results: i64,
}

/// The event types the fold counts.
const COUNTED: &[&str] = &[
    "organization_registered",
    "birth_registered",
    "learner_registered",
    "application_submitted",
    "application_withdrawn",
    "application_rejected",
    "enrolled",
    "transferred",
    "left",
    "death_registered",
    "exam_result_recorded",
];

/// Whether a stored event is of a type the fold counts, read from its `type` alone (an event
/// that does not parse is decoded, and its error reported).
fn counted(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    serde_json::from_slice::<Kind>(body).map_or(true, |k| COUNTED.contains(&k.kind.as_ref()))
}

/// What the fold counts for one organization.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrganizationCounts {
    pub open_enrollments: i64,
    pub pending: i64,
    pub overdue: i64,
}

impl LogTally {
    /// Brings the fold forward to exactly `position` (from zero if it is past it: the read
    /// models were rebuilt behind it).
    pub async fn advance_to(
        &mut self,
        registry: &Registry,
        position: u64,
    ) -> Result<(), RegistryError> {
        if self.position > position {
            *self = Self::default();
        }
        while self.position < position {
            // The stored events as they are: only the types counted here are decoded, and
            // without their personal fields, which nothing here needs.
            let events = registry.log().read_raw_after(self.position, PAGE).await?;
            if events.is_empty() {
                break;
            }
            for raw in &events {
                if raw.position > position {
                    return Ok(());
                }
                if counted(&raw.body) {
                    let envelope = Envelope::decode(&raw.body)?;
                    self.apply(&envelope.event);
                }
                self.position = raw.position;
            }
        }
        Ok(())
    }

    fn close(&mut self, enrollment: EnrollmentId, learner: LearnerId) {
        self.open.remove(&enrollment);
        if let Some(open) = self.open_by_learner.get_mut(&learner) {
            open.retain(|e| *e != enrollment);
        }
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::OrganizationRegistered(e) => {
                self.organizations.insert(
                    e.organization_id,
                    (
                        e.municipality.as_str().to_owned(),
                        e.name.as_str().to_owned(),
                    ),
                );
            }
            Event::BirthRegistered(e) => {
                self.learners.insert(e.learner_id);
            }
            Event::LearnerRegistered(e) => {
                self.learners.insert(e.learner_id);
            }
            Event::ApplicationSubmitted(e) => {
                self.pending.insert(
                    e.application_id,
                    (
                        e.organization_id,
                        e.learner_id,
                        contingent_projections::due_on(e),
                    ),
                );
            }
            Event::ApplicationWithdrawn(e) => {
                self.pending.remove(&e.application_id);
            }
            Event::ApplicationRejected(e) => {
                self.pending.remove(&e.application_id);
            }
            Event::Enrolled(e) => {
                self.open.insert(e.enrollment_id, e.organization_id);
                self.open_by_learner
                    .entry(e.learner_id)
                    .or_default()
                    .push(e.enrollment_id);
                if let Some(application) = e.application_id {
                    self.pending.remove(&application);
                }
            }
            Event::Transferred(e) => {
                self.close(e.from_enrollment_id, e.learner_id);
                self.open.insert(e.to_enrollment_id, e.to_organization_id);
                self.open_by_learner
                    .entry(e.learner_id)
                    .or_default()
                    .push(e.to_enrollment_id);
            }
            Event::Left(e) => self.close(e.enrollment_id, e.learner_id),
            Event::DeathRegistered(e) => {
                for enrollment in self
                    .open_by_learner
                    .remove(&e.learner_id)
                    .unwrap_or_default()
                {
                    self.open.remove(&enrollment);
                }
                self.pending
                    .retain(|_, (_, learner, _)| *learner != e.learner_id);
            }
            Event::ExamResultRecorded(_) => self.exam_results += 1,
            _ => {}
        }
    }

    /// Learners registered.
    pub fn learners(&self) -> i64 {
        self.learners.len() as i64
    }

    /// The counts of each organization the fold has seen anything of; overdue judged on
    /// `as_of` by the queue's rule.
    pub fn by_organization(&self, as_of: NaiveDate) -> HashMap<OrganizationId, OrganizationCounts> {
        let mut counts: HashMap<OrganizationId, OrganizationCounts> = HashMap::new();
        for organization in self.open.values() {
            counts.entry(*organization).or_default().open_enrollments += 1;
        }
        for (organization, _, due) in self.pending.values() {
            let c = counts.entry(*organization).or_default();
            c.pending += 1;
            if contingent_projections::queries::overdue("pending", *due, as_of) {
                c.overdue += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view far behind the log starts a background fold and is told how far it has come;
    /// views meanwhile do not wait for it; once it is done a view gets the fold at its position.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fold_far_behind_runs_in_the_background_and_views_do_not_wait_for_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Arc::new(
            Registry::open(contingent_registry::Settings::new(dir.path()), |_| {})
                .await
                .expect("registry"),
        );
        let config = contingent_simulate::Config {
            seed: 3,
            scale: contingent_simulate::Scale::tiny(),
            today: NaiveDate::from_ymd_opt(2026, 11, 22).expect("date"),
        };
        contingent_simulate::generate(&registry, &config, |_, _, _| {})
            .await
            .expect("a region");
        let head = registry.head();
        assert!(head > 10_000, "{head}");

        let fold = Arc::new(Fold::new(1_000));
        let first = fold.at(&registry, head).await.expect("fold");
        assert_eq!(
            first.err().map(|f| f.of),
            Some(head),
            "not folded in the view"
        );
        let mut views = 0;
        let tally = loop {
            views += 1;
            match fold.at(&registry, head).await.expect("fold") {
                Ok(tally) => break tally,
                Err(folding) => {
                    assert!(folding.at <= head);
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        };
        assert_eq!(tally.position, head);
        drop(tally);

        // The same counts as a fold made in one go.
        let mut whole = LogTally::default();
        whole.advance_to(&registry, head).await.expect("whole");
        let tally = fold
            .at(&registry, head)
            .await
            .expect("fold")
            .expect("at the head");
        let day = NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date");
        assert_eq!(tally.by_organization(day), whole.by_organization(day));
        assert_eq!(tally.learners(), whole.learners());
        assert_eq!(tally.exam_results, whole.exam_results);
        assert!(views >= 1);
        drop(tally);

        // Read models rebuilt behind the fold, far from zero: the fold starts again from zero
        // in the background, not inside the view.
        let behind = fold.at(&registry, head - 1).await.expect("fold");
        assert_eq!(behind.err().map(|f| f.of), Some(head - 1));
    }
}
