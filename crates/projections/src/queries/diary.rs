//! A learner's diary: marks by subject and period, attendance, exam results.

use std::collections::BTreeMap;

use contingent_domain::AcademicYear;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyPool;
use sqlx::Row;
use utoipa::ToSchema;

use super::{LearnerSummary, Result};

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
SELECT 1, m.mark_id, m.subject, m.period, m.lesson_date, m.kind, m.work, COALESCE(c.value, m.value), \
       m.teacher, m.value, CASE WHEN c.mark_id IS NULL THEN m.points ELSE c.points END, m.weight, \
       COALESCE(c.corrections, 0), NULL \
  FROM diary_marks m LEFT JOIN diary_mark_corrections c ON c.mark_id = m.mark_id \
 WHERE m.learner_id = $1 AND m.lesson_date BETWEEN $2 AND $3 \
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

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
