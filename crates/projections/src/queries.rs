//! The read side: typed answers from the read models. Every function takes the read-model pool
//! and returns rows shaped for one audience (parents, teachers, schools, the region, the federal
//! segment). `None` means the thing asked about is not in the read model.

use std::collections::BTreeMap;

use contingent_domain::AcademicYear;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use utoipa::ToSchema;

/// Why a query failed: the read-model database could not answer.
pub type QueryError = sqlx::Error;

type Result<T> = std::result::Result<T, QueryError>;

/// A column that must hold a text: a missing column, a NULL or another type is an error.
fn s(row: &AnyRow, col: &str) -> Result<String> {
    row.try_get::<String, _>(col)
}

/// A column that holds a text or NULL: a missing column or another type is an error.
fn os(row: &AnyRow, col: &str) -> Result<Option<String>> {
    row.try_get::<Option<String>, _>(col)
}

/// A column that must hold an integer: a missing column, a NULL or another type is an error.
fn n(row: &AnyRow, col: &str) -> Result<i64> {
    row.try_get::<i64, _>(col)
}

/// A column that holds an integer or NULL: a missing column or another type is an error.
fn on(row: &AnyRow, col: &str) -> Result<Option<i64>> {
    row.try_get::<Option<i64>, _>(col)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A learner's entry in the register.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct LearnerCard {
    /// Learner id.
    pub learner_id: String,
    /// Фамилия.
    pub surname: String,
    /// Имя.
    pub name: String,
    /// Отчество.
    pub patronymic: Option<String>,
    /// Sex.
    pub sex: String,
    /// Date of birth.
    pub birth_date: String,
    /// SNILS.
    pub snils: Option<String>,
    /// The civil registry birth record.
    pub birth_record: Option<String>,
    /// The identity document.
    pub document: Option<String>,
    /// registered, enrolled, left or deceased.
    pub status: String,
    /// Since when.
    pub status_since: Option<String>,
    /// Date of death.
    pub died_on: Option<String>,
    /// Enrollments, current first.
    pub enrollments: Vec<EnrollmentRow>,
    /// Movements in log order.
    pub movements: Vec<MovementRow>,
    /// Linked guardians.
    pub guardians: Vec<GuardianRow>,
}

/// One enrollment.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct EnrollmentRow {
    /// Enrollment id.
    pub enrollment_id: String,
    /// Organization id.
    pub organization_id: String,
    /// Organization name.
    pub organization: Option<String>,
    /// Class id.
    pub class_id: String,
    /// Class name.
    pub class_name: Option<String>,
    /// Level.
    pub level: String,
    /// Grade or age group.
    pub grade: i64,
    /// Academic year.
    pub academic_year: String,
    /// Programme.
    pub programme: String,
    /// Adapted programme.
    pub adapted: bool,
    /// Primary enrollment of its level.
    pub primary: bool,
    /// Form of education.
    pub form: String,
    /// Date of enrollment.
    pub enrolled_on: String,
    /// Enrollment order number.
    pub order_number: String,
    /// Last day, when ended.
    pub ended_on: Option<String>,
    /// Why it ended.
    pub end_reason: Option<String>,
}

/// One movement: enrollment, transfer, leaving, death.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct MovementRow {
    /// Log position of the event.
    pub position: i64,
    /// Date.
    pub date: String,
    /// enrolled, within_organization, next_grade, to_other_organization, left, died.
    pub kind: String,
    /// From organization.
    pub from_organization_id: Option<String>,
    /// From class.
    pub from_class_id: Option<String>,
    /// To organization.
    pub to_organization_id: Option<String>,
    /// To class.
    pub to_class_id: Option<String>,
    /// Reason (for leaving).
    pub reason: Option<String>,
    /// Order or record number.
    pub order_number: Option<String>,
}

/// A linked guardian.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct GuardianRow {
    /// Guardian's SNILS.
    pub snils: String,
    /// Фамилия.
    pub surname: String,
    /// Имя.
    pub name: String,
    /// Отчество.
    pub patronymic: Option<String>,
    /// Relation.
    pub relation: String,
    /// Consent given on.
    pub consent_given_on: String,
    /// Consent document.
    pub consent_document: String,
}

/// A line of a learner search.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct LearnerSummary {
    /// Learner id.
    pub learner_id: String,
    /// Фамилия.
    pub surname: String,
    /// Имя.
    pub name: String,
    /// Отчество.
    pub patronymic: Option<String>,
    /// Date of birth.
    pub birth_date: String,
    /// Status.
    pub status: String,
}

fn summary(row: &AnyRow) -> Result<LearnerSummary> {
    Ok(LearnerSummary {
        learner_id: s(row, "learner_id")?,
        surname: s(row, "surname")?,
        name: s(row, "name")?,
        patronymic: os(row, "patronymic")?,
        birth_date: s(row, "birth_date")?,
        status: s(row, "status")?,
    })
}

/// How to look learners up.
#[derive(Debug, Clone, Default)]
pub struct LearnerSearch {
    /// By SNILS (normalized `NNN-NNN-NNN CC`).
    pub snils: Option<String>,
    /// By surname (exact).
    pub surname: Option<String>,
    /// And name.
    pub name: Option<String>,
    /// And date of birth.
    pub birth_date: Option<String>,
    /// Learners with an active enrollment in this organization.
    pub organization_id: Option<String>,
    /// At most this many (1..=500).
    pub limit: i64,
}

/// Looks learners up.
pub async fn find_learners(pool: &AnyPool, q: &LearnerSearch) -> Result<Vec<LearnerSummary>> {
    let rows = sqlx::query(
        "SELECT l.learner_id, l.surname, l.name, l.patronymic, l.birth_date, l.status FROM register_learners l \
         WHERE ($1 IS NULL OR l.snils = $1) AND ($2 IS NULL OR l.surname = $2) AND ($3 IS NULL OR l.name = $3) \
         AND ($4 IS NULL OR l.birth_date = $4) \
         AND ($5 IS NULL OR EXISTS (SELECT 1 FROM register_enrollments e WHERE e.learner_id = l.learner_id \
              AND e.organization_id = $5 AND e.ended_on IS NULL)) \
         ORDER BY l.surname, l.name, l.birth_date, l.learner_id LIMIT $6",
    )
    .bind(&q.snils)
    .bind(&q.surname)
    .bind(&q.name)
    .bind(&q.birth_date)
    .bind(&q.organization_id)
    .bind(q.limit.clamp(1, 500))
    .fetch_all(pool)
    .await?;
    rows.iter().map(summary).collect()
}

/// A learner's register entry.
pub async fn learner(pool: &AnyPool, learner_id: &str) -> Result<Option<LearnerCard>> {
    let Some(row) = sqlx::query("SELECT * FROM register_learners WHERE learner_id = $1")
        .bind(learner_id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let enrollments = sqlx::query(
        "SELECT e.*, o.name AS organization, c.name AS class_name FROM register_enrollments e \
         LEFT JOIN register_organizations o ON o.organization_id = e.organization_id \
         LEFT JOIN register_classes c ON c.class_id = e.class_id \
         WHERE e.learner_id = $1 ORDER BY e.ended_on IS NULL DESC, e.enrolled_on DESC, e.enrollment_id",
    )
    .bind(learner_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| -> Result<_> { Ok(EnrollmentRow {
        enrollment_id: s(r, "enrollment_id")?,
        organization_id: s(r, "organization_id")?,
        organization: os(r, "organization")?,
        class_id: s(r, "class_id")?,
        class_name: os(r, "class_name")?,
        level: s(r, "level")?,
        grade: n(r, "grade")?,
        academic_year: s(r, "academic_year")?,
        programme: s(r, "programme")?,
        adapted: n(r, "adapted")? != 0,
        primary: n(r, "is_primary")? != 0,
        form: s(r, "form")?,
        enrolled_on: s(r, "enrolled_on")?,
        order_number: s(r, "order_number")?,
        ended_on: os(r, "ended_on")?,
        end_reason: os(r, "end_reason")?,
    }) })
    .collect::<Result<Vec<_>>>()?;
    let movements =
        sqlx::query("SELECT * FROM register_movements WHERE learner_id = $1 ORDER BY position")
            .bind(learner_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| -> Result<_> {
                Ok(MovementRow {
                    position: n(r, "position")?,
                    date: s(r, "date")?,
                    kind: s(r, "kind")?,
                    from_organization_id: os(r, "from_organization_id")?,
                    from_class_id: os(r, "from_class_id")?,
                    to_organization_id: os(r, "to_organization_id")?,
                    to_class_id: os(r, "to_class_id")?,
                    reason: os(r, "reason")?,
                    order_number: os(r, "order_number")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
    let guardians = sqlx::query(
        "SELECT * FROM register_guardians WHERE learner_id = $1 ORDER BY guardian_snils",
    )
    .bind(learner_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| -> Result<_> {
        Ok(GuardianRow {
            snils: s(r, "guardian_snils")?,
            surname: s(r, "surname")?,
            name: s(r, "name")?,
            patronymic: os(r, "patronymic")?,
            relation: s(r, "relation")?,
            consent_given_on: s(r, "consent_given_on")?,
            consent_document: s(r, "consent_document")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    Ok(Some(LearnerCard {
        learner_id: s(&row, "learner_id")?,
        surname: s(&row, "surname")?,
        name: s(&row, "name")?,
        patronymic: os(&row, "patronymic")?,
        sex: s(&row, "sex")?,
        birth_date: s(&row, "birth_date")?,
        snils: os(&row, "snils")?,
        birth_record: os(&row, "birth_record")?,
        document: os(&row, "document")?,
        status: s(&row, "status")?,
        status_since: os(&row, "status_since")?,
        died_on: os(&row, "died_on")?,
        enrollments,
        movements,
        guardians,
    }))
}

/// A learner's diary.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Diary {
    /// The learner.
    pub learner: LearnerSummary,
    /// The academic year shown, or none for all years.
    pub academic_year: Option<String>,
    /// Marks by subject, then by period.
    pub subjects: Vec<SubjectMarks>,
    /// Attendance.
    pub attendance: AttendanceSummary,
    /// State exam results.
    pub exams: Vec<ExamRow>,
}

/// Marks of one subject.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct SubjectMarks {
    /// Subject.
    pub subject: String,
    /// Weighted average of current 5-point marks over the whole span shown.
    pub average: Option<f64>,
    /// By period.
    pub periods: Vec<PeriodMarks>,
}

/// Marks of one subject in one period.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct PeriodMarks {
    /// term-1 .. term-4, half-1, half-2, year.
    pub period: String,
    /// Weighted average of the current 5-point marks of the period.
    pub average: Option<f64>,
    /// The period mark given, if any.
    pub period_mark: Option<String>,
    /// The marks, by date.
    pub marks: Vec<MarkRow>,
}

/// One mark.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct MarkRow {
    /// Mark id.
    pub mark_id: String,
    /// Lesson date.
    pub lesson_date: String,
    /// current, period, annual, final.
    pub kind: String,
    /// Kind of work.
    pub work: String,
    /// The mark now.
    pub value: String,
    /// Weight.
    pub weight: i64,
    /// Teacher.
    pub teacher: String,
    /// How many times it was corrected.
    pub corrections: i64,
    /// The mark as first given.
    pub original_value: String,
}

/// Attendance totals and the records other than "present".
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Default)]
pub struct AttendanceSummary {
    /// Counts by status.
    pub counts: BTreeMap<String, i64>,
    /// Lateness and absences, by date.
    pub absences: Vec<AttendanceRow>,
}

/// One attendance record.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct AttendanceRow {
    /// Date.
    pub date: String,
    /// Lesson number, or none for the day.
    pub lesson: Option<i64>,
    /// Status.
    pub status: String,
}

/// One state exam result.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ExamRow {
    /// oge, ege, gve.
    pub form: String,
    /// Subject.
    pub subject: String,
    /// Exam date.
    pub exam_date: String,
    /// Grade sat in.
    pub grade: i64,
    /// Primary points.
    pub primary_points: i64,
    /// ЕГЭ test score.
    pub test_score: Option<i64>,
    /// 5-point mark.
    pub mark: Option<String>,
}

fn weighted(marks: &[(i64, i64)]) -> Option<f64> {
    let weight: i64 = marks.iter().map(|(_, w)| w).sum();
    (weight > 0)
        .then(|| round2(marks.iter().map(|(p, w)| (p * w) as f64).sum::<f64>() / weight as f64))
}

/// The diary in one statement: the learner's row, their marks, attendance counts by status,
/// the attendance records other than "present", and their exam results, each part tagged by
/// the first column and its values in the same twelve columns. The parts are put in order in
/// Rust (byte order, as SQLite's `BINARY` and PostgreSQL's `"C"` collation order them).
const DIARY: &str = "\
SELECT 0 AS part, learner_id AS t1, surname AS t2, name AS t3, patronymic AS t4, birth_date AS t5, \
       status AS t6, CAST(NULL AS TEXT) AS t7, CAST(NULL AS TEXT) AS t8, CAST(NULL AS TEXT) AS t9, \
       CAST(NULL AS BIGINT) AS n1, CAST(NULL AS BIGINT) AS n2, CAST(NULL AS BIGINT) AS n3, \
       CAST(NULL AS BIGINT) AS n4 \
  FROM register_learners WHERE learner_id = $1 \
UNION ALL \
SELECT 1, mark_id, subject, period, lesson_date, kind, work, value, teacher, original_value, \
       points, weight, corrections, NULL \
  FROM diary_marks WHERE learner_id = $1 AND lesson_date BETWEEN $2 AND $3 \
UNION ALL \
SELECT 2, status, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, count(*), NULL, NULL, NULL \
  FROM diary_attendance WHERE learner_id = $1 AND date BETWEEN $2 AND $3 GROUP BY status \
UNION ALL \
SELECT 3, date, status, NULL, NULL, NULL, NULL, NULL, NULL, NULL, lesson, position, NULL, NULL \
  FROM diary_attendance WHERE learner_id = $1 AND date BETWEEN $2 AND $3 AND status <> 'present' \
UNION ALL \
SELECT 4, form, subject, exam_date, mark, NULL, NULL, NULL, NULL, NULL, grade, primary_points, \
       test_score, position \
  FROM diary_exams WHERE learner_id = $1 AND exam_date BETWEEN $2 AND $3";

/// A column that must hold a text.
fn text(row: &AnyRow, i: usize) -> Result<String> {
    row.try_get::<String, _>(i)
}

/// A column that holds a text or NULL.
fn opt_text(row: &AnyRow, i: usize) -> Result<Option<String>> {
    row.try_get::<Option<String>, _>(i)
}

/// A column that must hold an integer.
fn int(row: &AnyRow, i: usize) -> Result<i64> {
    row.try_get::<i64, _>(i)
}

/// A column that holds an integer or NULL.
fn opt_int(row: &AnyRow, i: usize) -> Result<Option<i64>> {
    row.try_get::<Option<i64>, _>(i)
}

/// One mark as the diary reads it, before it is grouped.
struct MarkLine {
    subject: String,
    period: String,
    points: Option<i64>,
    row: MarkRow,
}

/// A learner's diary, for one academic year or all of them: one statement ([`DIARY`]).
pub async fn diary(
    pool: &AnyPool,
    learner_id: &str,
    year: Option<AcademicYear>,
) -> Result<Option<Diary>> {
    let (from, to) = match year {
        Some(y) => (
            crate::sql::date(y.first_day()),
            crate::sql::date(y.last_day()),
        ),
        None => ("0000-01-01".to_owned(), "9999-12-31".to_owned()),
    };
    let rows = sqlx::query(DIARY)
        .bind(learner_id)
        .bind(&from)
        .bind(&to)
        .fetch_all(pool)
        .await?;
    let mut learner = None;
    let mut marks: Vec<MarkLine> = Vec::new();
    let mut attendance = AttendanceSummary::default();
    let mut absences: Vec<(AttendanceRow, i64)> = Vec::new();
    let mut exams: Vec<(ExamRow, i64)> = Vec::new();
    for r in &rows {
        match int(r, 0)? {
            0 => {
                learner = Some(LearnerSummary {
                    learner_id: text(r, 1)?,
                    surname: text(r, 2)?,
                    name: text(r, 3)?,
                    patronymic: opt_text(r, 4)?,
                    birth_date: text(r, 5)?,
                    status: text(r, 6)?,
                })
            }
            1 => marks.push(MarkLine {
                subject: text(r, 2)?,
                period: text(r, 3)?,
                points: opt_int(r, 10)?,
                row: MarkRow {
                    mark_id: text(r, 1)?,
                    lesson_date: text(r, 4)?,
                    kind: text(r, 5)?,
                    work: text(r, 6)?,
                    value: text(r, 7)?,
                    weight: int(r, 11)?,
                    teacher: text(r, 8)?,
                    corrections: int(r, 12)?,
                    original_value: text(r, 9)?,
                },
            }),
            2 => {
                attendance.counts.insert(text(r, 1)?, int(r, 10)?);
            }
            3 => absences.push((
                AttendanceRow {
                    date: text(r, 1)?,
                    lesson: opt_int(r, 10)?,
                    status: text(r, 2)?,
                },
                int(r, 11)?,
            )),
            4 => exams.push((
                ExamRow {
                    form: text(r, 1)?,
                    subject: text(r, 2)?,
                    exam_date: text(r, 3)?,
                    mark: opt_text(r, 4)?,
                    grade: int(r, 10)?,
                    primary_points: int(r, 11)?,
                    test_score: opt_int(r, 12)?,
                },
                int(r, 13)?,
            )),
            part => {
                return Err(sqlx::Error::ColumnDecode {
                    index: "part".into(),
                    source: format!("no part {part} in a diary").into(),
                })
            }
        }
    }
    let Some(learner) = learner else {
        return Ok(None);
    };
    marks.sort_unstable_by(|a, b| {
        (&a.subject, &a.period, &a.row.lesson_date, &a.row.mark_id).cmp(&(
            &b.subject,
            &b.period,
            &b.row.lesson_date,
            &b.row.mark_id,
        ))
    });
    absences
        .sort_unstable_by(|(a, ap), (b, bp)| (&a.date, a.lesson, ap).cmp(&(&b.date, b.lesson, bp)));
    attendance.absences = absences.into_iter().map(|(a, _)| a).collect();
    exams.sort_unstable_by(|(a, ap), (b, bp)| (&a.exam_date, ap).cmp(&(&b.exam_date, bp)));
    Ok(Some(Diary {
        learner,
        academic_year: year.map(|y| y.to_string()),
        subjects: group_marks(marks),
        attendance,
        exams: exams.into_iter().map(|(e, _)| e).collect(),
    }))
}

/// Marks in order of subject, period and date, grouped by subject and period, with the weighted
/// averages of their current 5-point marks.
fn group_marks(marks: Vec<MarkLine>) -> Vec<SubjectMarks> {
    let mut subjects: Vec<SubjectMarks> = Vec::new();
    let mut subject_points: Vec<Vec<(i64, i64)>> = Vec::new();
    let mut period_points: Vec<(i64, i64)> = Vec::new();
    for MarkLine {
        subject,
        period,
        points,
        row,
    } in marks
    {
        if subjects.last().is_none_or(|x| x.subject != subject) {
            subjects.push(SubjectMarks {
                subject,
                average: None,
                periods: Vec::new(),
            });
            subject_points.push(Vec::new());
        }
        let current = subjects.last_mut().expect("pushed");
        if current.periods.last().is_none_or(|p| p.period != period) {
            period_points.clear();
            current.periods.push(PeriodMarks {
                period,
                average: None,
                period_mark: None,
                marks: Vec::new(),
            });
        }
        if row.kind == "current" {
            if let Some(points) = points {
                period_points.push((points, row.weight));
                subject_points
                    .last_mut()
                    .expect("pushed")
                    .push((points, row.weight));
            }
        }
        let period_entry = current.periods.last_mut().expect("pushed");
        if row.kind == "period" {
            period_entry.period_mark = Some(row.value.clone());
        }
        period_entry.marks.push(row);
        period_entry.average = weighted(&period_points);
    }
    for (subject, points) in subjects.iter_mut().zip(&subject_points) {
        subject.average = weighted(points);
    }
    subjects
}

/// A class or group.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ClassInfo {
    /// Class id.
    pub class_id: String,
    /// Organization id.
    pub organization_id: String,
    /// Academic year.
    pub academic_year: String,
    /// Level.
    pub level: String,
    /// Grade or age group.
    pub grade: i64,
    /// Name.
    pub name: String,
    /// Capacity.
    pub capacity: i64,
}

/// A class register: who was in the class on a date, and the marks and attendance grids for a span.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ClassRegisterView {
    /// The class.
    pub class: ClassInfo,
    /// The roster date.
    pub on: String,
    /// Learners in the class on that date, by name.
    pub roster: Vec<RosterRow>,
    /// First day of the grids.
    pub from: String,
    /// Last day of the grids.
    pub to: String,
    /// Marks grid: one row per learner and subject.
    pub marks: Vec<MarksGridRow>,
    /// Attendance grid: one row per learner.
    pub attendance: Vec<AttendanceGridRow>,
}

/// One learner on the roster.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct RosterRow {
    /// Learner id.
    pub learner_id: String,
    /// Фамилия.
    pub surname: String,
    /// Имя.
    pub name: String,
    /// Отчество.
    pub patronymic: Option<String>,
    /// First day in the class.
    pub from: String,
    /// First day no longer in the class.
    pub until: Option<String>,
}

/// One learner's marks in one subject.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct MarksGridRow {
    /// Learner id.
    pub learner_id: String,
    /// Subject.
    pub subject: String,
    /// Marks by date.
    pub marks: Vec<GridMark>,
}

/// One cell of the marks grid.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct GridMark {
    /// Lesson date.
    pub date: String,
    /// The mark.
    pub value: String,
    /// current, period, annual, final.
    pub kind: String,
}

/// One learner's attendance.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct AttendanceGridRow {
    /// Learner id.
    pub learner_id: String,
    /// Records by date.
    pub records: Vec<AttendanceRow>,
}

/// A class's register.
pub async fn class_register(
    pool: &AnyPool,
    class_id: &str,
    on_date: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<Option<ClassRegisterView>> {
    let Some(c) = sqlx::query("SELECT * FROM class_register_classes WHERE class_id = $1")
        .bind(class_id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let year = AcademicYear::parse(&s(&c, "academic_year")?).ok();
    let first = year
        .map(|y| crate::sql::date(y.first_day()))
        .unwrap_or_default();
    let last = year
        .map(|y| crate::sql::date(y.last_day()))
        .unwrap_or_default();
    let on_date = on_date.unwrap_or_else(|| {
        let today = crate::sql::date(chrono::Utc::now().date_naive());
        today.clamp(first.clone(), last.clone())
    });
    let from = from.unwrap_or(first);
    let to = to.unwrap_or(last);
    let roster = sqlx::query(
        "SELECT r.learner_id, p.surname, p.name, p.patronymic, r.from_date, r.until_date FROM class_register_roster r \
         LEFT JOIN class_register_people p ON p.learner_id = r.learner_id \
         WHERE r.class_id = $1 AND r.from_date <= $2 AND (r.until_date IS NULL OR r.until_date > $2) \
         ORDER BY p.surname NULLS FIRST, p.name NULLS FIRST, r.learner_id",
    )
    .bind(class_id)
    .bind(&on_date)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| -> Result<_> { Ok(RosterRow {
        learner_id: s(r, "learner_id")?,
        // A learner the class register has no name for yet (the join finds no person) is
        // listed with empty names, first.
        surname: os(r, "surname")?.unwrap_or_default(),
        name: os(r, "name")?.unwrap_or_default(),
        patronymic: os(r, "patronymic")?,
        from: s(r, "from_date")?,
        until: os(r, "until_date")?,
    }) })
    .collect::<Result<Vec<_>>>()?;
    let mut marks: Vec<MarksGridRow> = Vec::new();
    for r in sqlx::query(
        "SELECT learner_id, subject, lesson_date, value, kind FROM class_register_marks \
         WHERE class_id = $1 AND lesson_date BETWEEN $2 AND $3 ORDER BY learner_id, subject, lesson_date, mark_id",
    )
    .bind(class_id)
    .bind(&from)
    .bind(&to)
    .fetch_all(pool)
    .await?
    {
        let learner = s(&r, "learner_id")?;
        let subject = s(&r, "subject")?;
        if marks.last().is_none_or(|m| m.learner_id != learner || m.subject != subject) {
            marks.push(MarksGridRow { learner_id: learner, subject, marks: Vec::new() });
        }
        marks.last_mut().expect("pushed").marks.push(GridMark {
            date: s(&r, "lesson_date")?,
            value: s(&r, "value")?,
            kind: s(&r, "kind")?,
        });
    }
    let mut attendance: Vec<AttendanceGridRow> = Vec::new();
    for r in sqlx::query(
        "SELECT learner_id, date, lesson, status FROM class_register_attendance \
         WHERE class_id = $1 AND date BETWEEN $2 AND $3 ORDER BY learner_id, date, lesson NULLS FIRST, position",
    )
    .bind(class_id)
    .bind(&from)
    .bind(&to)
    .fetch_all(pool)
    .await?
    {
        let learner = s(&r, "learner_id")?;
        if attendance.last().is_none_or(|a| a.learner_id != learner) {
            attendance.push(AttendanceGridRow {
                learner_id: learner,
                records: Vec::new(),
            });
        }
        attendance
            .last_mut()
            .expect("pushed")
            .records
            .push(AttendanceRow {
                date: s(&r, "date")?,
                lesson: on(&r, "lesson")?,
                status: s(&r, "status")?,
            });
    }
    Ok(Some(ClassRegisterView {
        class: ClassInfo {
            class_id: s(&c, "class_id")?,
            organization_id: s(&c, "organization_id")?,
            academic_year: s(&c, "academic_year")?,
            level: s(&c, "level")?,
            grade: n(&c, "grade")?,
            name: s(&c, "name")?,
            capacity: n(&c, "capacity")?,
        },
        on: on_date,
        roster,
        from,
        to,
        marks,
        attendance,
    }))
}

/// Places in one class or group.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct VacancyRow {
    /// Organization id.
    pub organization_id: String,
    /// Organization name.
    pub organization: String,
    /// Municipality.
    pub municipality: String,
    /// Class id.
    pub class_id: String,
    /// Class name.
    pub class_name: String,
    /// Academic year.
    pub academic_year: String,
    /// Level.
    pub level: String,
    /// Grade or age group.
    pub grade: i64,
    /// Kindergarten stay mode.
    pub stay_mode: Option<String>,
    /// Places.
    pub capacity: i64,
    /// Taken.
    pub enrolled: i64,
    /// Free: capacity − enrolled, never negative.
    pub free: i64,
}

/// Which vacancies to list.
#[derive(Debug, Clone, Default)]
pub struct VacancyFilter {
    /// One organization.
    pub organization_id: Option<String>,
    /// One municipality.
    pub municipality: Option<String>,
    /// One academic year.
    pub academic_year: Option<String>,
    /// One level.
    pub level: Option<String>,
    /// Only classes with free places.
    pub only_free: bool,
}

/// Places per class or group.
pub async fn vacancies(pool: &AnyPool, f: &VacancyFilter) -> Result<Vec<VacancyRow>> {
    let rows = sqlx::query(
        "SELECT c.*, o.name AS organization, o.municipality FROM vacancy_classes c \
         JOIN vacancy_organizations o ON o.organization_id = c.organization_id \
         WHERE ($1 IS NULL OR c.organization_id = $1) AND ($2 IS NULL OR o.municipality = $2) \
         AND ($3 IS NULL OR c.academic_year = $3) AND ($4 IS NULL OR c.level = $4) \
         AND ($5 = 0 OR c.enrolled < c.capacity) \
         ORDER BY o.municipality, o.name, c.academic_year, c.level, c.grade, c.name, c.class_id LIMIT 5000",
    )
    .bind(&f.organization_id)
    .bind(&f.municipality)
    .bind(&f.academic_year)
    .bind(&f.level)
    .bind(i64::from(f.only_free))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| -> Result<_> {
            Ok(VacancyRow {
                organization_id: s(r, "organization_id")?,
                organization: s(r, "organization")?,
                municipality: s(r, "municipality")?,
                class_id: s(r, "class_id")?,
                class_name: s(r, "name")?,
                academic_year: s(r, "academic_year")?,
                level: s(r, "level")?,
                grade: n(r, "grade")?,
                stay_mode: os(r, "stay_mode")?,
                capacity: n(r, "capacity")?,
                enrolled: n(r, "enrolled")?,
                free: n(r, "capacity")? - n(r, "enrolled")?,
            })
        })
        .collect()
}

/// An organization's queue of applications.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct QueueView {
    /// Organization id.
    pub organization_id: String,
    /// The date overdue is judged on.
    pub as_of: String,
    /// Pending applications.
    pub pending: i64,
    /// Pending applications whose decision is overdue.
    pub overdue: i64,
    /// Applications, pending first in queue order (priority, then date submitted).
    pub applications: Vec<ApplicationRow>,
}

/// One application.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ApplicationRow {
    /// Application id.
    pub application_id: String,
    /// Learner id.
    pub learner_id: String,
    /// Level.
    pub level: String,
    /// Academic year.
    pub academic_year: String,
    /// Grade or age group.
    pub grade: i64,
    /// Class asked for.
    pub class_id: Option<String>,
    /// Submitted on.
    pub submitted_on: String,
    /// Desired start.
    pub desired_start: Option<String>,
    /// Priority.
    pub priority: String,
    /// A decision is due by.
    pub due_on: String,
    /// pending, withdrawn, rejected, accepted.
    pub status: String,
    /// Decided on.
    pub decided_on: Option<String>,
    /// Pending past its due date.
    pub overdue: bool,
    /// Place in the queue among pending applications of the same level and year (1-based).
    pub place: Option<i64>,
}

/// An organization's queue.
pub async fn queue(
    pool: &AnyPool,
    organization_id: &str,
    as_of: &str,
) -> Result<Option<QueueView>> {
    let exists: Option<(String,)> = sqlx::query_as(
        "SELECT organization_id FROM vacancy_organizations WHERE organization_id = $1",
    )
    .bind(organization_id)
    .fetch_optional(pool)
    .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT a.*, CASE WHEN a.status = 'pending' THEN row_number() OVER (PARTITION BY a.status = 'pending', a.level, a.academic_year \
         ORDER BY CASE a.priority WHEN 'out_of_turn' THEN 0 WHEN 'priority' THEN 1 WHEN 'preferential' THEN 2 ELSE 3 END, a.submitted_on, a.application_id) END AS place \
         FROM vacancy_applications a WHERE a.organization_id = $1 \
         ORDER BY a.status <> 'pending', a.level, a.academic_year, place, a.submitted_on DESC, a.application_id LIMIT 5000",
    )
    .bind(organization_id)
    .fetch_all(pool)
    .await?;
    let applications: Vec<ApplicationRow> = rows
        .iter()
        .map(|r| -> Result<_> {
            Ok({
                let status = s(r, "status")?;
                let due_on = s(r, "due_on")?;
                ApplicationRow {
                    application_id: s(r, "application_id")?,
                    learner_id: s(r, "learner_id")?,
                    level: s(r, "level")?,
                    academic_year: s(r, "academic_year")?,
                    grade: n(r, "grade")?,
                    class_id: os(r, "class_id")?,
                    submitted_on: s(r, "submitted_on")?,
                    desired_start: os(r, "desired_start")?,
                    priority: s(r, "priority")?,
                    overdue: status == "pending" && due_on.as_str() < as_of,
                    due_on,
                    status,
                    decided_on: os(r, "decided_on")?,
                    place: on(r, "place")?,
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(QueueView {
        organization_id: organization_id.to_owned(),
        as_of: as_of.to_owned(),
        pending: applications
            .iter()
            .filter(|a| a.status == "pending")
            .count() as i64,
        overdue: applications.iter().filter(|a| a.overdue).count() as i64,
        applications,
    }))
}

/// An organization of the directory.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct OrganizationRow {
    /// Organization id.
    pub organization_id: String,
    /// Name.
    pub name: String,
    /// Municipality.
    pub municipality: String,
    /// Kind.
    pub kind: String,
    /// Levels taught.
    pub levels: Vec<String>,
    /// Learners with an active enrollment.
    pub learners: i64,
}

/// Organizations, optionally of one municipality.
pub async fn organizations(
    pool: &AnyPool,
    municipality: Option<&str>,
) -> Result<Vec<OrganizationRow>> {
    let rows = sqlx::query(
        "SELECT o.*, (SELECT count(*) FROM register_enrollments e WHERE e.organization_id = o.organization_id AND e.ended_on IS NULL) AS learners \
         FROM register_organizations o WHERE ($1 IS NULL OR o.municipality = $1) ORDER BY o.municipality, o.name, o.organization_id",
    )
    .bind(municipality)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| -> Result<_> {
            Ok(OrganizationRow {
                organization_id: s(r, "organization_id")?,
                name: s(r, "name")?,
                municipality: s(r, "municipality")?,
                kind: s(r, "kind")?,
                levels: s(r, "levels")?
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect(),
                learners: n(r, "learners")?,
            })
        })
        .collect()
}

/// A learner in the federal segment's shape.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FederalLearner {
    /// Learner id.
    pub learner_id: String,
    /// Sex.
    pub sex: String,
    /// Year of birth.
    pub birth_year: i64,
    /// registered, enrolled, left, deceased.
    pub status: String,
    /// Log position of the last change.
    pub last_position: i64,
    /// Enrollments.
    pub enrollments: Vec<FederalEnrollment>,
}

/// An enrollment in the federal segment's shape.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FederalEnrollment {
    /// Enrollment id.
    pub enrollment_id: String,
    /// Organization id.
    pub organization_id: String,
    /// Municipality.
    pub municipality: String,
    /// Level.
    pub level: String,
    /// Grade or age group.
    pub grade: i64,
    /// Academic year.
    pub academic_year: String,
    /// Form of education.
    pub form: String,
    /// Adapted programme.
    pub adapted: bool,
    /// Enrolled on.
    pub enrolled_on: String,
    /// Ended on.
    pub ended_on: Option<String>,
    /// Why it ended.
    pub end_reason: Option<String>,
}

/// A page of the federal register, by learner id after `after`.
pub async fn federal_register(
    pool: &AnyPool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<FederalLearner>> {
    let learners = sqlx::query(
        "SELECT * FROM federal_learners WHERE learner_id > $1 ORDER BY learner_id LIMIT $2",
    )
    .bind(after.unwrap_or(""))
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?;
    // The page's enrollments in one query, not one per learner.
    let mut enrollments: std::collections::HashMap<String, Vec<FederalEnrollment>> =
        std::collections::HashMap::new();
    for r in sqlx::query(
        "SELECT * FROM federal_enrollments WHERE learner_id IN \
         (SELECT learner_id FROM federal_learners WHERE learner_id > $1 ORDER BY learner_id LIMIT $2) \
         ORDER BY learner_id, enrolled_on, enrollment_id",
    )
    .bind(after.unwrap_or(""))
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?
    {
        enrollments.entry(s(&r, "learner_id")?).or_default().push(FederalEnrollment {
            enrollment_id: s(&r, "enrollment_id")?,
            organization_id: s(&r, "organization_id")?,
            municipality: s(&r, "municipality")?,
            level: s(&r, "level")?,
            grade: n(&r, "grade")?,
            academic_year: s(&r, "academic_year")?,
            form: s(&r, "form")?,
            adapted: n(&r, "adapted")? != 0,
            enrolled_on: s(&r, "enrolled_on")?,
            ended_on: os(&r, "ended_on")?,
            end_reason: os(&r, "end_reason")?,
        });
    }
    learners
        .iter()
        .map(|l| -> Result<_> {
            Ok({
                let id = s(l, "learner_id")?;
                FederalLearner {
                    enrollments: enrollments.remove(&id).unwrap_or_default(),
                    learner_id: id,
                    sex: s(l, "sex")?,
                    birth_year: n(l, "birth_year")?,
                    status: s(l, "status")?,
                    last_position: n(l, "last_position")?,
                }
            })
        })
        .collect()
}

/// Dimensions that counts can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountDimension {
    /// Municipality.
    Municipality,
    /// Organization.
    Organization,
    /// Level of education.
    Level,
    /// Grade or age group.
    Grade,
}

impl CountDimension {
    /// Parses `municipality`, `organization`, `level`, `grade`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "municipality" => Some(Self::Municipality),
            "organization" => Some(Self::Organization),
            "level" => Some(Self::Level),
            "grade" => Some(Self::Grade),
            _ => None,
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::Municipality => "municipality",
            Self::Organization => "organization_id",
            Self::Level => "level",
            Self::Grade => "grade",
        }
    }
}

/// One group of the counts.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct CountRow {
    /// Municipality, when grouped by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
    /// Organization, when grouped by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Level, when grouped by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Grade, when grouped by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<i64>,
    /// Learners with an active enrollment in the group.
    pub learners: i64,
}

/// Learners with an active enrollment, grouped by the given dimensions (in a fixed order).
pub async fn federal_counts(
    pool: &AnyPool,
    by: &[CountDimension],
    academic_year: Option<&str>,
) -> Result<Vec<CountRow>> {
    let dims: Vec<CountDimension> = [
        CountDimension::Municipality,
        CountDimension::Organization,
        CountDimension::Level,
        CountDimension::Grade,
    ]
    .into_iter()
    .filter(|d| by.contains(d))
    .collect();
    let cols: Vec<&str> = dims.iter().map(|d| d.column()).collect();
    let select = if cols.is_empty() {
        String::new()
    } else {
        format!("{}, ", cols.join(", "))
    };
    let group = if cols.is_empty() {
        String::new()
    } else {
        format!("GROUP BY {0} ORDER BY {0}", cols.join(", "))
    };
    let sql = format!(
        "SELECT {select} count(DISTINCT learner_id) AS learners FROM federal_enrollments \
         WHERE ended_on IS NULL AND ($1 IS NULL OR academic_year = $1) {group}"
    );
    let rows = sqlx::query(&sql)
        .bind(academic_year)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| -> Result<_> {
            Ok(CountRow {
                municipality: dims
                    .contains(&CountDimension::Municipality)
                    .then(|| s(r, "municipality"))
                    .transpose()?,
                organization_id: dims
                    .contains(&CountDimension::Organization)
                    .then(|| s(r, "organization_id"))
                    .transpose()?,
                level: dims
                    .contains(&CountDimension::Level)
                    .then(|| s(r, "level"))
                    .transpose()?,
                grade: dims
                    .contains(&CountDimension::Grade)
                    .then(|| n(r, "grade"))
                    .transpose()?,
                learners: n(r, "learners")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_or_mistyped_column_is_an_error_not_a_default() {
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect("sqlite::memory:").await.expect("a pool");
        let row = sqlx::query("SELECT 'text' AS word, 7 AS number, NULL AS absent")
            .fetch_one(&pool)
            .await
            .expect("a row");
        assert_eq!(s(&row, "word").expect("a text"), "text");
        assert_eq!(n(&row, "number").expect("an integer"), 7);
        assert_eq!(os(&row, "absent").expect("a NULL"), None);
        assert_eq!(on(&row, "absent").expect("a NULL"), None);
        assert!(s(&row, "missing").is_err(), "a missing column");
        assert!(on(&row, "missing").is_err(), "a missing column");
        assert!(n(&row, "word").is_err(), "a text read as an integer");
        assert!(s(&row, "number").is_err(), "an integer read as a text");
        assert!(s(&row, "absent").is_err(), "a NULL where a text must be");
        assert!(
            n(&row, "absent").is_err(),
            "a NULL where an integer must be"
        );
    }
}
