//! Diary per learner: marks by subject and period, attendance, exam results.

use foldhash::HashMap;

use contingent_domain::{Event, MarkId};
use contingent_log::RecordedEvent;

use crate::sql::{date, term};
use crate::{row, ChangeSet, Projection, Table};

static MARKS: Table = Table {
    name: "diary_marks",
    columns: &[
        "position",
        "mark_id",
        "learner_id",
        "class_id",
        "subject",
        "lesson_date",
        "period",
        "kind",
        "work",
        "value",
        "points",
        "weight",
        "teacher",
    ],
    key: 1,
    appended: true,
};

/// A corrected mark's value after its last correction.
static CORRECTIONS: Table = Table {
    name: "diary_mark_corrections",
    columns: &["mark_id", "value", "points", "corrections"],
    key: 1,
    appended: false,
};

static ATTENDANCE: Table = Table {
    name: "diary_attendance",
    columns: &[
        "position",
        "learner_id",
        "class_id",
        "date",
        "lesson",
        "status",
    ],
    key: 1,
    appended: true,
};

static EXAMS: Table = Table {
    name: "diary_exams",
    columns: &[
        "position",
        "learner_id",
        "form",
        "subject",
        "exam_date",
        "grade",
        "primary_points",
        "test_score",
        "mark",
    ],
    key: 1,
    appended: true,
};

/// The diary, and how many times each corrected mark was corrected (a mark not in the map was
/// corrected 0 times).
#[derive(Default)]
pub(crate) struct Diary {
    corrections: HashMap<MarkId, i64>,
}

static TABLES: &[&Table] = &[&MARKS, &CORRECTIONS, &ATTENDANCE, &EXAMS];

impl Projection for Diary {
    fn name(&self) -> &'static str {
        "diary"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "diary_marks",
            "diary_mark_corrections",
            "diary_attendance",
            "diary_exams",
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
            Event::MarkRecorded(e) => {
                let period = e
                    .period
                    .as_ref()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| term(e.lesson_date).to_owned());
                self.corrections.remove(&e.mark_id);
                changes.insert(
                    &MARKS,
                    row![
                        recorded.position() as i64,
                        e.mark_id.to_string(),
                        e.learner_id.to_string(),
                        e.class_id.to_string(),
                        e.subject.as_str(),
                        date(e.lesson_date),
                        period,
                        e.kind.as_str(),
                        e.work.as_str(),
                        e.value.as_str(),
                        e.value.points().map(i64::from),
                        i64::from(e.weight),
                        e.teacher.as_str()
                    ],
                );
            }
            Event::MarkCorrected(e) => {
                let n = self.corrections.entry(e.mark_id).or_insert(0);
                *n += 1;
                changes.insert(
                    &CORRECTIONS,
                    row![
                        e.mark_id.to_string(),
                        e.value.as_str(),
                        e.value.points().map(i64::from),
                        *n
                    ],
                );
            }
            Event::AttendanceRecorded(e) => {
                changes.insert(
                    &ATTENDANCE,
                    row![
                        recorded.position() as i64,
                        e.learner_id.to_string(),
                        e.class_id.to_string(),
                        date(e.date),
                        e.lesson.map(i64::from),
                        e.status.as_str()
                    ],
                );
            }
            Event::ExamResultRecorded(e) => {
                changes.insert(
                    &EXAMS,
                    row![
                        recorded.position() as i64,
                        e.learner_id.to_string(),
                        e.form.as_str(),
                        e.subject.as_str(),
                        date(e.exam_date),
                        i64::from(e.grade),
                        i64::from(e.primary_points),
                        e.result.test_score().map(i64::from),
                        e.result.mark().map(|m| m.as_str())
                    ],
                );
            }
            _ => {}
        }
    }
}
