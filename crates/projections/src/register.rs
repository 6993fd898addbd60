//! Register of learners: identity, status, current enrollments, movement history, guardians.

use foldhash::HashMap;

use contingent_domain::personal::ERASED;
use contingent_domain::{EducationForm, EnrollmentId, Event, LearnerId, Level};
use contingent_log::RecordedEvent;

use crate::sql::{date, day_before};
use crate::{row, ChangeSet, Projection, Table, Value};

static LEARNERS: Table = Table {
    name: "register_learners",
    columns: &[
        "learner_id",
        "surname",
        "name",
        "patronymic",
        "sex",
        "birth_date",
        "snils",
        "birth_record",
        "document",
        "status",
        "status_since",
        "died_on",
        "first_position",
    ],
    key: 1,
    appended: false,
};

static ORGANIZATIONS: Table = Table {
    name: "register_organizations",
    columns: &["organization_id", "name", "municipality", "kind", "levels"],
    key: 1,
    appended: false,
};

static CLASSES: Table = Table {
    name: "register_classes",
    columns: &[
        "class_id",
        "organization_id",
        "academic_year",
        "level",
        "grade",
        "name",
    ],
    key: 1,
    appended: false,
};

static ENROLLMENTS: Table = Table {
    name: "register_enrollments",
    columns: &[
        "enrollment_id",
        "learner_id",
        "organization_id",
        "class_id",
        "level",
        "grade",
        "academic_year",
        "programme",
        "adapted",
        "focus",
        "is_primary",
        "form",
        "enrolled_on",
        "order_number",
        "order_date",
        "ended_on",
        "end_reason",
    ],
    key: 1,
    appended: false,
};

static MOVEMENTS: Table = Table {
    name: "register_movements",
    columns: &[
        "position",
        "learner_id",
        "date",
        "kind",
        "from_organization_id",
        "from_class_id",
        "to_organization_id",
        "to_class_id",
        "reason",
        "order_number",
    ],
    key: 1,
    appended: false,
};

static GUARDIANS: Table = Table {
    name: "register_guardians",
    columns: &[
        "learner_id",
        "guardian_snils",
        "surname",
        "name",
        "patronymic",
        "relation",
        "consent_given_on",
        "consent_document",
    ],
    key: 2,
    appended: false,
};

/// What a transfer into another organization copies from the enrollment it ends, and whether
/// the enrollment is still open (`ended_on IS NULL`).
struct EnrollmentFacts {
    learner: LearnerId,
    level: Level,
    programme: String,
    adapted: bool,
    focus: Option<String>,
    primary: bool,
    form: EducationForm,
    open: bool,
}

/// The register, and what it remembers of every enrollment row it wrote.
#[derive(Default)]
pub(crate) struct Register {
    enrollments: HashMap<EnrollmentId, EnrollmentFacts>,
    /// Open enrollments by the learner of their row.
    open: HashMap<LearnerId, Vec<EnrollmentId>>,
    /// The guardian rows of each learner (their SNILS), and the position of a learner's death
    /// movement (which names the death record): what an erasure changes.
    guardians: HashMap<LearnerId, Vec<String>>,
    deaths: HashMap<LearnerId, u64>,
}

impl Register {
    fn opened(&mut self, id: EnrollmentId, facts: EnrollmentFacts) {
        self.open.entry(facts.learner).or_default().push(id);
        self.enrollments.insert(id, facts);
    }

    /// Ends an enrollment row: sets its end whether or not it was open, as an SQL update would.
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

    fn has_open(&self, learner: LearnerId) -> bool {
        self.open.get(&learner).is_some_and(|v| !v.is_empty())
    }
}

#[allow(clippy::too_many_arguments)]
fn movement(
    changes: &mut ChangeSet,
    position: u64,
    learner: LearnerId,
    on: String,
    kind: &str,
    from: (Option<String>, Option<String>),
    to: (Option<String>, Option<String>),
    reason: Option<&str>,
    order: Option<&str>,
) {
    changes.insert(
        &MOVEMENTS,
        row![
            position as i64,
            learner.to_string(),
            on,
            kind,
            from.0,
            from.1,
            to.0,
            to.1,
            reason,
            order
        ],
    );
}

fn status(changes: &mut ChangeSet, learner: LearnerId, status: &str, since: String) {
    changes.update(
        &LEARNERS,
        row![learner.to_string()],
        vec![("status", status.into()), ("status_since", since.into())],
    );
}

static TABLES: &[&Table] = &[
    &LEARNERS,
    &ORGANIZATIONS,
    &CLASSES,
    &ENROLLMENTS,
    &MOVEMENTS,
    &GUARDIANS,
];

impl Projection for Register {
    fn name(&self) -> &'static str {
        "register"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "register_learners",
            "register_organizations",
            "register_classes",
            "register_enrollments",
            "register_movements",
            "register_guardians",
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
                let levels: Vec<&str> = e.levels.iter().map(|l| l.as_str()).collect();
                changes.insert(
                    &ORGANIZATIONS,
                    row![
                        e.organization_id.to_string(),
                        e.name.as_str(),
                        e.municipality.as_str(),
                        e.kind.as_str(),
                        levels.join(",")
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
                        e.name.as_str()
                    ],
                );
            }
            Event::BirthRegistered(e) => {
                let document = e.certificate.as_ref().map(|c| {
                    format!(
                        "{} {}",
                        c.series.as_ref().map(|s| s.as_str()).unwrap_or(""),
                        c.number
                    )
                    .trim()
                    .to_owned()
                });
                changes.insert(
                    &LEARNERS,
                    row![
                        e.learner_id.to_string(),
                        e.child.surname.as_str(),
                        e.child.name.as_str(),
                        e.child.patronymic.as_ref().map(|p| p.as_str()),
                        e.sex.as_str(),
                        date(e.birth_date),
                        e.snils.map(|s| s.to_string()),
                        Some(format!(
                            "{}, № {}, {}",
                            e.record.office,
                            e.record.number,
                            date(e.record.date)
                        )),
                        document,
                        "registered",
                        Some(date(e.record.date)),
                        Value::Text(None),
                        position as i64
                    ],
                );
            }
            Event::LearnerRegistered(e) => {
                changes.insert(
                    &LEARNERS,
                    row![
                        e.learner_id.to_string(),
                        e.person.surname.as_str(),
                        e.person.name.as_str(),
                        e.person.patronymic.as_ref().map(|p| p.as_str()),
                        e.sex.as_str(),
                        date(e.birth_date),
                        e.snils.map(|s| s.to_string()),
                        Value::Text(None),
                        Some(format!(
                            "{} {} {}",
                            e.document.kind,
                            e.document.series.as_ref().map(|s| s.as_str()).unwrap_or(""),
                            e.document.number
                        )),
                        "registered",
                        Some(date(recorded.envelope.recorded_at.date_naive())),
                        Value::Text(None),
                        position as i64
                    ],
                );
            }
            Event::SnilsRecorded(e) => {
                changes.update(
                    &LEARNERS,
                    row![e.learner_id.to_string()],
                    vec![("snils", e.snils.to_string().into())],
                );
            }
            Event::DeathRegistered(e) => {
                changes.update(
                    &LEARNERS,
                    row![e.learner_id.to_string()],
                    vec![
                        ("status", "deceased".into()),
                        ("status_since", date(e.death_date).into()),
                        ("died_on", date(e.death_date).into()),
                    ],
                );
                let open = self.open.get(&e.learner_id).cloned().unwrap_or_default();
                for id in open {
                    self.end(changes, id, date(e.death_date), "death");
                }
                self.deaths.insert(e.learner_id, position);
                movement(
                    changes,
                    position,
                    e.learner_id,
                    date(e.death_date),
                    "died",
                    (None, None),
                    (None, None),
                    None,
                    Some(e.record.number.as_str()),
                );
            }
            Event::GuardianLinked(e) => {
                self.guardians
                    .entry(e.learner_id)
                    .or_default()
                    .push(e.guardian_snils.to_string());
                changes.insert(
                    &GUARDIANS,
                    row![
                        e.learner_id.to_string(),
                        e.guardian_snils.to_string(),
                        e.guardian.surname.as_str(),
                        e.guardian.name.as_str(),
                        e.guardian.patronymic.as_ref().map(|p| p.as_str()),
                        e.relation.as_str(),
                        date(e.consent.given_on),
                        e.consent.document.as_str()
                    ],
                );
            }
            Event::Enrolled(e) => {
                changes.insert(
                    &ENROLLMENTS,
                    row![
                        e.enrollment_id.to_string(),
                        e.learner_id.to_string(),
                        e.organization_id.to_string(),
                        e.class_id.to_string(),
                        e.level.as_str(),
                        i64::from(e.grade),
                        e.academic_year.to_string(),
                        e.programme.name.as_str(),
                        e.programme.adapted,
                        e.programme.focus.as_ref().map(|f| f.as_str()),
                        e.primary,
                        e.form.as_str(),
                        date(e.enrolled_on),
                        e.order.number.as_str(),
                        date(e.order.date),
                        Value::Text(None),
                        Value::Text(None)
                    ],
                );
                self.opened(
                    e.enrollment_id,
                    EnrollmentFacts {
                        learner: e.learner_id,
                        level: e.level,
                        programme: e.programme.name.as_str().to_owned(),
                        adapted: e.programme.adapted,
                        focus: e.programme.focus.as_ref().map(|f| f.as_str().to_owned()),
                        primary: e.primary,
                        form: e.form,
                        open: true,
                    },
                );
                status(changes, e.learner_id, "enrolled", date(e.enrolled_on));
                movement(
                    changes,
                    position,
                    e.learner_id,
                    date(e.enrolled_on),
                    "enrolled",
                    (None, None),
                    (
                        Some(e.organization_id.to_string()),
                        Some(e.class_id.to_string()),
                    ),
                    None,
                    Some(e.order.number.as_str()),
                );
            }
            Event::Transferred(e) => {
                if e.to_enrollment_id == e.from_enrollment_id {
                    changes.update(
                        &ENROLLMENTS,
                        row![e.from_enrollment_id.to_string()],
                        vec![
                            ("class_id", e.to_class_id.to_string().into()),
                            ("grade", i64::from(e.grade).into()),
                            ("academic_year", e.academic_year.to_string().into()),
                        ],
                    );
                } else {
                    // The new enrollment copies the learner, level and programme of the one it
                    // ends, if that one is in the register.
                    if let Some(from) = self.enrollments.get(&e.from_enrollment_id) {
                        changes.insert(
                            &ENROLLMENTS,
                            row![
                                e.to_enrollment_id.to_string(),
                                from.learner.to_string(),
                                e.to_organization_id.to_string(),
                                e.to_class_id.to_string(),
                                from.level.as_str(),
                                i64::from(e.grade),
                                e.academic_year.to_string(),
                                from.programme.as_str(),
                                from.adapted,
                                from.focus.as_deref(),
                                from.primary,
                                from.form.as_str(),
                                date(e.transferred_on),
                                e.order.number.as_str(),
                                date(e.order.date),
                                Value::Text(None),
                                Value::Text(None)
                            ],
                        );
                        let facts = EnrollmentFacts {
                            learner: from.learner,
                            level: from.level,
                            programme: from.programme.clone(),
                            adapted: from.adapted,
                            focus: from.focus.clone(),
                            primary: from.primary,
                            form: from.form,
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
                movement(
                    changes,
                    position,
                    e.learner_id,
                    date(e.transferred_on),
                    e.kind.as_str(),
                    (
                        Some(e.from_organization_id.to_string()),
                        Some(e.from_class_id.to_string()),
                    ),
                    (
                        Some(e.to_organization_id.to_string()),
                        Some(e.to_class_id.to_string()),
                    ),
                    None,
                    Some(e.order.number.as_str()),
                );
            }
            Event::Left(e) => {
                self.end(changes, e.enrollment_id, date(e.left_on), e.reason.as_str());
                if !self.has_open(e.learner_id) {
                    status(changes, e.learner_id, "left", date(e.left_on));
                }
                movement(
                    changes,
                    position,
                    e.learner_id,
                    date(e.left_on),
                    "left",
                    (
                        Some(e.organization_id.to_string()),
                        Some(e.class_id.to_string()),
                    ),
                    (None, None),
                    Some(e.reason.as_str()),
                    Some(e.order.number.as_str()),
                );
            }
            // The learner stays, with their facts; what named them is gone. Their guardians'
            // rows go: a guardian's data is kept only with a link.
            Event::PersonalDataErased(e) => {
                changes.update(
                    &LEARNERS,
                    row![e.learner_id.to_string()],
                    vec![
                        ("surname", ERASED.into()),
                        ("name", ERASED.into()),
                        ("patronymic", Value::Text(None)),
                        ("snils", Value::Text(None)),
                        ("birth_record", Value::Text(None)),
                        ("document", Value::Text(None)),
                    ],
                );
                for snils in self.guardians.remove(&e.learner_id).unwrap_or_default() {
                    changes.delete(&GUARDIANS, row![e.learner_id.to_string(), snils]);
                }
                if let Some(at) = self.deaths.get(&e.learner_id) {
                    changes.update(
                        &MOVEMENTS,
                        row![*at as i64],
                        vec![("order_number", Value::Text(None))],
                    );
                }
            }
            Event::ClassCapacityChanged(_)
            | Event::ApplicationSubmitted(_)
            | Event::ApplicationWithdrawn(_)
            | Event::ApplicationRejected(_)
            | Event::MarkRecorded(_)
            | Event::MarkCorrected(_)
            | Event::AttendanceRecorded(_)
            | Event::ExamResultRecorded(_)
            | Event::TeacherAssigned(_)
            | Event::TeacherUnassigned(_)
            | Event::LogMigrated(_) => {}
        }
    }
}
