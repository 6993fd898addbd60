//! The register in the federal segment's shape, and the rows that counts by municipality,
//! organization, level and grade are taken from.

use foldhash::HashMap;

use chrono::Datelike;
use contingent_domain::{EducationForm, EnrollmentId, Event, LearnerId, Level, OrganizationId};
use contingent_log::RecordedEvent;

use crate::sql::{date, day_before};
use crate::{row, ChangeSet, Projection, Table, Value};

static ORGANIZATIONS: Table = Table {
    name: "federal_organizations",
    columns: &["organization_id", "municipality", "kind"],
    key: 1,
    appended: false,
};

static LEARNERS: Table = Table {
    name: "federal_learners",
    columns: &["learner_id", "sex", "birth_year", "status", "last_position"],
    key: 1,
    appended: false,
};

static ENROLLMENTS: Table = Table {
    name: "federal_enrollments",
    columns: &[
        "enrollment_id",
        "learner_id",
        "organization_id",
        "municipality",
        "level",
        "grade",
        "academic_year",
        "form",
        "adapted",
        "enrolled_on",
        "ended_on",
        "end_reason",
    ],
    key: 1,
    appended: false,
};

/// What a transfer copies from the enrollment it ends, and whether that one is still open.
struct EnrollmentFacts {
    learner: LearnerId,
    level: Level,
    form: EducationForm,
    adapted: bool,
    open: bool,
}

/// The federal register, with each organization's municipality and the enrollment rows written.
#[derive(Default)]
pub(crate) struct Federal {
    municipalities: HashMap<OrganizationId, String>,
    enrollments: HashMap<EnrollmentId, EnrollmentFacts>,
    /// Open enrollments by the learner of their row.
    open: HashMap<LearnerId, Vec<EnrollmentId>>,
}

fn status(changes: &mut ChangeSet, learner: LearnerId, status: &str, position: u64) {
    changes.update(
        &LEARNERS,
        row![learner.to_string()],
        vec![
            ("status", status.into()),
            ("last_position", (position as i64).into()),
        ],
    );
}

impl Federal {
    fn opened(&mut self, id: EnrollmentId, facts: EnrollmentFacts) {
        self.open.entry(facts.learner).or_default().push(id);
        self.enrollments.insert(id, facts);
    }

    fn end(&mut self, changes: &mut ChangeSet, id: EnrollmentId, on: String, reason: &str) {
        changes.update(
            &ENROLLMENTS,
            row![id.to_string()],
            vec![("ended_on", on.into()), ("end_reason", reason.into())],
        );
        if let Some(facts) = self.enrollments.get_mut(&id) {
            if facts.open {
                facts.open = false;
                if let Some(open) = self.open.get_mut(&facts.learner) {
                    open.retain(|e| *e != id);
                }
            }
        }
    }

    fn open_count(&self, learner: LearnerId) -> usize {
        self.open.get(&learner).map_or(0, Vec::len)
    }
}

static TABLES: &[&Table] = &[&ORGANIZATIONS, &LEARNERS, &ENROLLMENTS];

impl Projection for Federal {
    fn name(&self) -> &'static str {
        "federal"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "federal_organizations",
            "federal_learners",
            "federal_enrollments",
        ]
    }

    fn table_defs(&self) -> &'static [&'static Table] {
        TABLES
    }

    fn clear(&mut self) {
        *self = Self::default();
    }

    fn apply(&mut self, recorded: &RecordedEvent, changes: &mut ChangeSet) {
        let position = recorded.position();
        match &recorded.envelope.event {
            Event::OrganizationRegistered(e) => {
                changes.insert(
                    &ORGANIZATIONS,
                    row![
                        e.organization_id.to_string(),
                        e.municipality.as_str(),
                        e.kind.as_str()
                    ],
                );
                self.municipalities
                    .insert(e.organization_id, e.municipality.as_str().to_owned());
            }
            Event::BirthRegistered(e) => {
                changes.insert(
                    &LEARNERS,
                    row![
                        e.learner_id.to_string(),
                        e.sex.as_str(),
                        i64::from(e.birth_date.year()),
                        "registered",
                        position as i64
                    ],
                );
            }
            Event::LearnerRegistered(e) => {
                changes.insert(
                    &LEARNERS,
                    row![
                        e.learner_id.to_string(),
                        e.sex.as_str(),
                        i64::from(e.birth_date.year()),
                        "registered",
                        position as i64
                    ],
                );
            }
            Event::DeathRegistered(e) => {
                status(changes, e.learner_id, "deceased", position);
                let open = self.open.get(&e.learner_id).cloned().unwrap_or_default();
                for id in open {
                    self.end(changes, id, date(e.death_date), "death");
                }
            }
            Event::Enrolled(e) => {
                // An enrollment row needs its organization's municipality.
                if let Some(municipality) = self.municipalities.get(&e.organization_id) {
                    changes.insert(
                        &ENROLLMENTS,
                        row![
                            e.enrollment_id.to_string(),
                            e.learner_id.to_string(),
                            e.organization_id.to_string(),
                            municipality,
                            e.level.as_str(),
                            i64::from(e.grade),
                            e.academic_year.to_string(),
                            e.form.as_str(),
                            e.programme.adapted,
                            date(e.enrolled_on),
                            Value::Text(None),
                            Value::Text(None)
                        ],
                    );
                    self.opened(
                        e.enrollment_id,
                        EnrollmentFacts {
                            learner: e.learner_id,
                            level: e.level,
                            form: e.form,
                            adapted: e.programme.adapted,
                            open: true,
                        },
                    );
                }
                status(changes, e.learner_id, "enrolled", position);
            }
            Event::Transferred(e) => {
                if e.to_enrollment_id == e.from_enrollment_id {
                    changes.update(
                        &ENROLLMENTS,
                        row![e.from_enrollment_id.to_string()],
                        vec![
                            ("grade", i64::from(e.grade).into()),
                            ("academic_year", e.academic_year.to_string().into()),
                        ],
                    );
                } else {
                    let from = self.enrollments.get(&e.from_enrollment_id);
                    let municipality = self.municipalities.get(&e.to_organization_id);
                    if let (Some(from), Some(municipality)) = (from, municipality) {
                        changes.insert(
                            &ENROLLMENTS,
                            row![
                                e.to_enrollment_id.to_string(),
                                from.learner.to_string(),
                                e.to_organization_id.to_string(),
                                municipality,
                                from.level.as_str(),
                                i64::from(e.grade),
                                e.academic_year.to_string(),
                                from.form.as_str(),
                                from.adapted,
                                date(e.transferred_on),
                                Value::Text(None),
                                Value::Text(None)
                            ],
                        );
                        let facts = EnrollmentFacts {
                            learner: from.learner,
                            level: from.level,
                            form: from.form,
                            adapted: from.adapted,
                            open: true,
                        };
                        self.opened(e.to_enrollment_id, facts);
                    }
                    self.end(
                        changes,
                        e.from_enrollment_id,
                        day_before(e.transferred_on),
                        "transferred",
                    );
                }
                changes.update(
                    &LEARNERS,
                    row![e.learner_id.to_string()],
                    vec![("last_position", (position as i64).into())],
                );
            }
            Event::Left(e) => {
                self.end(changes, e.enrollment_id, date(e.left_on), e.reason.as_str());
                let next = if self.open_count(e.learner_id) == 0 {
                    "left"
                } else {
                    "enrolled"
                };
                status(changes, e.learner_id, next, position);
            }
            _ => {}
        }
    }
}
