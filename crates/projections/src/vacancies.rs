//! Vacancies and queues: capacity, enrolled and free places per class or group; applications
//! with the date a decision is due.

use foldhash::HashMap;

use chrono::{Days, NaiveDate};
use contingent_domain::{
    ApplicationId, ApplicationSubmitted, ClassId, EnrollmentId, Event, LearnerId, Level,
};
use contingent_log::RecordedEvent;

use crate::sql::date;
use crate::{row, ChangeSet, Projection, Table, Value};

/// Days an organization has to decide on an application, by level.
pub const DECISION_DAYS_GENERAL: u64 = 30;

/// When a decision on an application is due: for a kindergarten place, the desired start date
/// (or 1 September of the year asked for); for the other levels, 30 days after submission.
pub fn due_on(e: &ApplicationSubmitted) -> NaiveDate {
    match e.level {
        Level::Preschool => e
            .desired_start
            .unwrap_or_else(|| e.academic_year.first_day()),
        _ => e
            .submitted_on
            .checked_add_days(Days::new(DECISION_DAYS_GENERAL))
            .unwrap_or(e.submitted_on),
    }
}

static ORGANIZATIONS: Table = Table {
    name: "vacancy_organizations",
    columns: &["organization_id", "name", "municipality", "kind"],
    key: 1,
    appended: false,
};

static CLASSES: Table = Table {
    name: "vacancy_classes",
    columns: &[
        "class_id",
        "organization_id",
        "academic_year",
        "level",
        "grade",
        "name",
        "stay_mode",
        "capacity",
        "enrolled",
    ],
    key: 1,
    appended: false,
};

static PLACEMENTS: Table = Table {
    name: "vacancy_placements",
    columns: &["enrollment_id", "learner_id", "class_id"],
    key: 1,
    appended: false,
};

static APPLICATIONS: Table = Table {
    name: "vacancy_applications",
    columns: &[
        "application_id",
        "learner_id",
        "organization_id",
        "level",
        "academic_year",
        "grade",
        "class_id",
        "submitted_on",
        "desired_start",
        "priority",
        "due_on",
        "status",
        "decided_on",
        "reason",
    ],
    key: 1,
    appended: false,
};

/// Vacancies, with the places taken per class, who takes a place where, and the pending
/// applications.
#[derive(Default)]
pub(crate) struct Vacancies {
    /// `vacancy_classes.enrolled` of every class in the table.
    enrolled: HashMap<ClassId, i64>,
    /// The rows of `vacancy_placements`.
    placements: HashMap<EnrollmentId, (LearnerId, ClassId)>,
    /// Placements by learner.
    placed: HashMap<LearnerId, Vec<EnrollmentId>>,
    /// Pending applications and their learner.
    pending: HashMap<ApplicationId, LearnerId>,
    /// Pending applications by learner.
    pending_by_learner: HashMap<LearnerId, Vec<ApplicationId>>,
}

impl Vacancies {
    /// Moves a class's count of places taken by `delta`, writing the new count.
    fn shift(&mut self, changes: &mut ChangeSet, class: ClassId, delta: i64) {
        if let Some(n) = self.enrolled.get_mut(&class) {
            *n += delta;
            changes.update(
                &CLASSES,
                row![class.to_string()],
                vec![("enrolled", (*n).into())],
            );
        }
    }

    fn place(
        &mut self,
        changes: &mut ChangeSet,
        enrollment: EnrollmentId,
        learner: LearnerId,
        class: ClassId,
    ) {
        changes.insert(
            &PLACEMENTS,
            row![
                enrollment.to_string(),
                learner.to_string(),
                class.to_string()
            ],
        );
        if let Some((before, _)) = self.placements.insert(enrollment, (learner, class)) {
            if let Some(v) = self.placed.get_mut(&before) {
                v.retain(|e| *e != enrollment);
            }
        }
        self.placed.entry(learner).or_default().push(enrollment);
    }

    /// Deletes a placement; returns the class it took a place in, if there was one.
    fn unplace(&mut self, changes: &mut ChangeSet, enrollment: EnrollmentId) -> Option<ClassId> {
        changes.delete(&PLACEMENTS, row![enrollment.to_string()]);
        let (learner, class) = self.placements.remove(&enrollment)?;
        if let Some(v) = self.placed.get_mut(&learner) {
            v.retain(|e| *e != enrollment);
        }
        Some(class)
    }

    /// Sets an application's decision; it is no longer pending.
    fn decide(
        &mut self,
        changes: &mut ChangeSet,
        application: ApplicationId,
        set: Vec<(&str, Value)>,
    ) {
        changes.update(&APPLICATIONS, row![application.to_string()], set);
        if let Some(learner) = self.pending.remove(&application) {
            if let Some(v) = self.pending_by_learner.get_mut(&learner) {
                v.retain(|a| *a != application);
            }
        }
    }
}

static TABLES: &[&Table] = &[&ORGANIZATIONS, &CLASSES, &PLACEMENTS, &APPLICATIONS];

impl Projection for Vacancies {
    fn name(&self) -> &'static str {
        "vacancies"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "vacancy_organizations",
            "vacancy_classes",
            "vacancy_placements",
            "vacancy_applications",
        ]
    }

    fn table_defs(&self) -> &'static [&'static Table] {
        TABLES
    }

    fn clear(&mut self) {
        *self = Self::default();
    }

    fn apply(&mut self, recorded: &RecordedEvent, changes: &mut ChangeSet) {
        match &recorded.envelope.event {
            Event::OrganizationRegistered(e) => {
                changes.insert(
                    &ORGANIZATIONS,
                    row![
                        e.organization_id.to_string(),
                        e.name.as_str(),
                        e.municipality.as_str(),
                        e.kind.as_str()
                    ],
                );
            }
            Event::ClassOpened(e) => {
                changes.insert(
                    &CLASSES,
                    row![
                        e.class_id.to_string(),
                        e.organization_id.to_string(),
                        e.academic_year.to_string(),
                        e.level.as_str(),
                        i64::from(e.grade),
                        e.name.as_str(),
                        e.stay_mode.map(|s| s.as_str()),
                        i64::from(e.capacity),
                        0i64
                    ],
                );
                self.enrolled.insert(e.class_id, 0);
            }
            Event::ClassCapacityChanged(e) => {
                changes.update(
                    &CLASSES,
                    row![e.class_id.to_string()],
                    vec![("capacity", i64::from(e.capacity).into())],
                );
            }
            Event::ApplicationSubmitted(e) => {
                changes.insert(
                    &APPLICATIONS,
                    row![
                        e.application_id.to_string(),
                        e.learner_id.to_string(),
                        e.organization_id.to_string(),
                        e.level.as_str(),
                        e.academic_year.to_string(),
                        i64::from(e.grade),
                        e.class_id.map(|c| c.to_string()),
                        date(e.submitted_on),
                        e.desired_start.map(date),
                        e.priority.as_str(),
                        date(due_on(e)),
                        "pending",
                        Value::Text(None),
                        Value::Text(None)
                    ],
                );
                if let Some(before) = self.pending.insert(e.application_id, e.learner_id) {
                    if let Some(v) = self.pending_by_learner.get_mut(&before) {
                        v.retain(|a| *a != e.application_id);
                    }
                }
                self.pending_by_learner
                    .entry(e.learner_id)
                    .or_default()
                    .push(e.application_id);
            }
            Event::ApplicationWithdrawn(e) => self.decide(
                changes,
                e.application_id,
                vec![
                    ("status", "withdrawn".into()),
                    ("decided_on", date(e.withdrawn_on).into()),
                    ("reason", e.reason.as_ref().map(|r| r.as_str()).into()),
                ],
            ),
            Event::ApplicationRejected(e) => self.decide(
                changes,
                e.application_id,
                vec![
                    ("status", "rejected".into()),
                    ("decided_on", date(e.rejected_on).into()),
                    ("reason", e.reason.as_str().into()),
                ],
            ),
            Event::Enrolled(e) => {
                self.shift(changes, e.class_id, 1);
                self.place(changes, e.enrollment_id, e.learner_id, e.class_id);
                if let Some(app) = e.application_id {
                    self.decide(
                        changes,
                        app,
                        vec![
                            ("status", "accepted".into()),
                            ("decided_on", date(e.enrolled_on).into()),
                        ],
                    );
                }
            }
            Event::Transferred(e) => {
                self.shift(changes, e.from_class_id, -1);
                self.shift(changes, e.to_class_id, 1);
                self.unplace(changes, e.from_enrollment_id);
                self.place(changes, e.to_enrollment_id, e.learner_id, e.to_class_id);
            }
            Event::Left(e) => {
                if let Some(class) = self.unplace(changes, e.enrollment_id) {
                    self.shift(changes, class, -1);
                }
            }
            Event::DeathRegistered(e) => {
                let placed = self.placed.get(&e.learner_id).cloned().unwrap_or_default();
                for enrollment in placed {
                    if let Some(class) = self.unplace(changes, enrollment) {
                        self.shift(changes, class, -1);
                    }
                }
                let pending = self
                    .pending_by_learner
                    .get(&e.learner_id)
                    .cloned()
                    .unwrap_or_default();
                for app in pending {
                    self.decide(
                        changes,
                        app,
                        vec![
                            ("status", "withdrawn".into()),
                            ("decided_on", date(e.death_date).into()),
                            ("reason", "death".into()),
                        ],
                    );
                }
            }
            _ => {}
        }
    }
}
