//! Class register per class: roster on a date, marks grid, attendance grid.

use foldhash::HashMap;

use chrono::{Days, NaiveDate};
use contingent_domain::personal::ERASED;
use contingent_domain::{ClassId, Event, FullName, LearnerId};
use contingent_log::RecordedEvent;

use crate::sql::date;
use crate::{row, ChangeSet, Projection, Table, Value};

static CLASSES: Table = Table {
    name: "class_register_classes",
    columns: &[
        "class_id",
        "organization_id",
        "academic_year",
        "level",
        "grade",
        "name",
        "capacity",
    ],
    key: 1,
    appended: false,
};

static PEOPLE: Table = Table {
    name: "class_register_people",
    columns: &["learner_id", "surname", "name", "patronymic"],
    key: 1,
    appended: false,
};

static ROSTER: Table = Table {
    name: "class_register_roster",
    columns: &["class_id", "learner_id", "from_date", "until_date"],
    key: 3,
    appended: false,
};

static MARKS: Table = Table {
    name: "class_register_marks",
    columns: &[
        "position",
        "mark_id",
        "class_id",
        "learner_id",
        "subject",
        "lesson_date",
        "kind",
        "value",
        "weight",
    ],
    key: 1,
    appended: true,
};

/// A corrected mark's value after its last correction.
static CORRECTIONS: Table = Table {
    name: "class_register_corrections",
    columns: &["mark_id", "value"],
    key: 1,
    appended: false,
};

static ATTENDANCE: Table = Table {
    name: "class_register_attendance",
    columns: &[
        "position",
        "class_id",
        "learner_id",
        "date",
        "lesson",
        "status",
    ],
    key: 1,
    appended: true,
};

/// The class register, and the open roster rows (`until_date IS NULL`) of each learner:
/// `(class, from_date)`.
#[derive(Default)]
pub(crate) struct ClassRegister {
    open: HashMap<LearnerId, Vec<(ClassId, NaiveDate)>>,
}

fn day_after(d: NaiveDate) -> NaiveDate {
    d.checked_add_days(Days::new(1)).unwrap_or(d)
}

fn person(changes: &mut ChangeSet, learner: LearnerId, name: &FullName) {
    changes.insert(
        &PEOPLE,
        row![
            learner.to_string(),
            name.surname.as_str(),
            name.name.as_str(),
            name.patronymic.as_ref().map(|p| p.as_str())
        ],
    );
}

impl ClassRegister {
    /// The learner joins the class from a date.
    fn join(
        &mut self,
        changes: &mut ChangeSet,
        class: ClassId,
        learner: LearnerId,
        from: NaiveDate,
    ) {
        changes.insert(
            &ROSTER,
            row![
                class.to_string(),
                learner.to_string(),
                date(from),
                Value::Text(None)
            ],
        );
        self.open.entry(learner).or_default().push((class, from));
    }

    /// Closes the learner's open rows in `class` (every class when `None`): the first day no
    /// longer in it is `until`, or the row's first day if that is later.
    fn part(
        &mut self,
        changes: &mut ChangeSet,
        class: Option<ClassId>,
        learner: LearnerId,
        until: NaiveDate,
    ) {
        let Some(open) = self.open.get_mut(&learner) else {
            return;
        };
        open.retain(|(c, from)| {
            if class.is_some_and(|class| class != *c) {
                return true;
            }
            changes.update(
                &ROSTER,
                row![c.to_string(), learner.to_string(), date(*from)],
                vec![("until_date", date(until.max(*from)).into())],
            );
            false
        });
    }
}

static TABLES: &[&Table] = &[
    &CLASSES,
    &PEOPLE,
    &ROSTER,
    &MARKS,
    &CORRECTIONS,
    &ATTENDANCE,
];

impl Projection for ClassRegister {
    fn name(&self) -> &'static str {
        "class_register"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "class_register_classes",
            "class_register_people",
            "class_register_roster",
            "class_register_marks",
            "class_register_corrections",
            "class_register_attendance",
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
                        i64::from(e.capacity)
                    ],
                );
            }
            Event::ClassCapacityChanged(e) => {
                changes.update(
                    &CLASSES,
                    row![e.class_id.to_string()],
                    vec![("capacity", i64::from(e.capacity).into())],
                );
            }
            Event::BirthRegistered(e) => person(changes, e.learner_id, &e.child),
            Event::LearnerRegistered(e) => person(changes, e.learner_id, &e.person),
            Event::Enrolled(e) => self.join(changes, e.class_id, e.learner_id, e.enrolled_on),
            Event::Transferred(e) => {
                self.part(
                    changes,
                    Some(e.from_class_id),
                    e.learner_id,
                    e.transferred_on,
                );
                self.join(changes, e.to_class_id, e.learner_id, e.transferred_on);
            }
            Event::Left(e) => self.part(
                changes,
                Some(e.class_id),
                e.learner_id,
                day_after(e.left_on),
            ),
            Event::DeathRegistered(e) => {
                self.part(changes, None, e.learner_id, day_after(e.death_date))
            }
            Event::PersonalDataErased(e) => {
                changes.update(
                    &PEOPLE,
                    row![e.learner_id.to_string()],
                    vec![
                        ("surname", ERASED.into()),
                        ("name", ERASED.into()),
                        ("patronymic", Value::Text(None)),
                    ],
                );
            }
            Event::MarkRecorded(e) => {
                changes.insert(
                    &MARKS,
                    row![
                        recorded.position() as i64,
                        e.mark_id.to_string(),
                        e.class_id.to_string(),
                        e.learner_id.to_string(),
                        e.subject.as_str(),
                        date(e.lesson_date),
                        e.kind.as_str(),
                        e.value.as_str(),
                        i64::from(e.weight)
                    ],
                );
            }
            Event::MarkCorrected(e) => {
                changes.insert(&CORRECTIONS, row![e.mark_id.to_string(), e.value.as_str()]);
            }
            Event::AttendanceRecorded(e) => {
                changes.insert(
                    &ATTENDANCE,
                    row![
                        recorded.position() as i64,
                        e.class_id.to_string(),
                        e.learner_id.to_string(),
                        date(e.date),
                        e.lesson.map(i64::from),
                        e.status.as_str()
                    ],
                );
            }
            _ => {}
        }
    }
}
