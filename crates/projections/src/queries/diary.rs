//! A learner's diary: marks by subject and period, attendance, exam results.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use contingent_domain::{
    AcademicYear, Attendance, ExamForm, LearnerId, Mark, MarkId, MarkKind, Text,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{undecodable, Columns, LearnerSummary, Result};
use crate::ReadStore;

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
    #[schema(value_type = String)]
    pub subject: Text,
    /// Weighted average of current 5-point marks over the whole span shown.
    pub average: Option<f64>,
    /// By period.
    pub periods: Vec<PeriodMarks>,
}

/// Marks of one subject in one period.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct PeriodMarks {
    /// term-1 .. term-4, half-1, half-2, year.
    #[schema(value_type = String)]
    pub period: Text,
    /// Weighted average of the current 5-point marks of the period.
    pub average: Option<f64>,
    /// The period mark given, if any.
    #[schema(value_type = Option<String>, example = "5")]
    pub period_mark: Option<Mark>,
    /// The marks, by date.
    pub marks: Vec<MarkRow>,
}

/// One mark.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct MarkRow {
    /// Mark id.
    #[schema(value_type = uuid::Uuid)]
    pub mark_id: MarkId,
    /// Lesson date.
    pub lesson_date: NaiveDate,
    /// current, period, annual, final.
    #[schema(value_type = String, example = "current")]
    pub kind: MarkKind,
    /// Kind of work.
    #[schema(value_type = String)]
    pub work: Text,
    /// The mark now: 2 to 5, pass or fail.
    #[schema(value_type = String, example = "5")]
    pub value: Mark,
    /// Weight.
    pub weight: i64,
    /// Teacher.
    #[schema(value_type = String)]
    pub teacher: Text,
    /// How many times it was corrected.
    pub corrections: i64,
    /// The mark as first given.
    #[schema(value_type = String, example = "4")]
    pub original_value: Mark,
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
    pub date: NaiveDate,
    /// Lesson number, or none for the day.
    pub lesson: Option<i64>,
    /// present, late, ill, excused, unexcused.
    #[schema(value_type = String, example = "ill")]
    pub status: Attendance,
}

/// One state exam result.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ExamRow {
    /// oge, ege, gve.
    #[schema(value_type = String, example = "oge")]
    pub form: ExamForm,
    /// Subject.
    pub subject: String,
    /// Exam date.
    pub exam_date: NaiveDate,
    /// Grade sat in.
    pub grade: i64,
    /// Primary points.
    pub primary_points: i64,
    /// ЕГЭ test score.
    pub test_score: Option<i64>,
    /// 5-point mark.
    #[schema(value_type = Option<String>, example = "4")]
    pub mark: Option<Mark>,
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
/// `$marks` narrows the marks further ([`DIARY_SQLITE`]).
macro_rules! diary_statement {
    ($marks:literal) => {
        concat!("\
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
 WHERE m.learner_id = $1 AND m.lesson_date BETWEEN $2 AND $3", $marks, " \
UNION ALL \
SELECT 2, status, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, count(*), NULL, NULL, NULL \
  FROM diary_attendance WHERE learner_id = $1 AND date BETWEEN $2 AND $3 GROUP BY status \
UNION ALL \
SELECT 3, date, status, NULL, NULL, NULL, NULL, NULL, NULL, NULL, lesson, position, NULL, NULL \
  FROM diary_attendance WHERE learner_id = $1 AND date BETWEEN $2 AND $3 AND status <> 'present' \
UNION ALL \
SELECT 4, form, subject, exam_date, mark, NULL, NULL, NULL, NULL, NULL, grade, primary_points, \
       test_score, position \
  FROM diary_exams WHERE learner_id = $1 AND exam_date BETWEEN $2 AND $3")
    };
}

/// [`diary_statement`] as PostgreSQL reads it, by learner and dates.
const DIARY: &str = diary_statement!("");

/// [`diary_statement`] as SQLite reads it: its index of marks leads with the month of the lesson
/// date (`projections/sqlite/diary_by_month.sql`), so the statement also names the months, as a
/// JSON array of `YYYY-MM` texts in `$4` ([`months`]), each one seek into the index.
const DIARY_SQLITE: &str =
    diary_statement!(" AND substr(m.lesson_date, 1, 7) IN (SELECT value FROM json_each($4))");

/// The texts of one kind a diary holds, each once: a year's marks name a handful of subjects,
/// periods, kinds of work and teachers, each many times, so each is read into a [`Text`] the
/// first time and shared after.
#[derive(Default)]
struct Held(Vec<Text>);

impl Held {
    /// The text in column `i`, shared if held.
    fn text(&mut self, r: &impl Columns, i: usize) -> Result<Text> {
        let s = r.str(i)?;
        if let Some(held) = self.0.iter().find(|t| t.as_str() == s) {
            return Ok(held.clone());
        }
        let text = Text::parse(s).map_err(|e| undecodable(i, format!("{s:?}: {e}")))?;
        self.0.push(text.clone());
        Ok(text)
    }
}

/// A mark as written in the read model ("2" to "5", "pass", "fail").
fn mark(text: &str) -> Option<Mark> {
    Mark::parse(text).ok()
}

/// One mark as the diary reads it, before it is grouped.
struct MarkLine {
    subject: Text,
    period: Text,
    points: Option<i64>,
    row: MarkRow,
}

/// The rows of [`DIARY`], sorted into their parts.
#[derive(Default)]
struct Parts {
    learner: Option<LearnerSummary>,
    marks: Vec<MarkLine>,
    attendance: AttendanceSummary,
    absences: Vec<(AttendanceRow, i64)>,
    exams: Vec<(ExamRow, i64)>,
    subjects: Held,
    periods: Held,
    works: Held,
    teachers: Held,
}

impl Parts {
    /// Reads one row into its part.
    fn add(&mut self, r: &impl Columns) -> Result<()> {
        match r.int(0)? {
            0 => {
                self.learner = Some(LearnerSummary {
                    learner_id: r.parsed(1, "a learner id", |s| s.parse().ok())?,
                    surname: r.text(2)?,
                    name: r.text(3)?,
                    patronymic: r.opt_text(4)?,
                    birth_date: r.parsed(5, "a date", |s| s.parse().ok())?,
                    status: r.text(6)?,
                })
            }
            1 => self.marks.push(MarkLine {
                subject: self.subjects.text(r, 2)?,
                period: self.periods.text(r, 3)?,
                points: r.opt_int(10)?,
                row: MarkRow {
                    mark_id: r.parsed(1, "a mark id", |s| s.parse().ok())?,
                    lesson_date: r.parsed(4, "a date", |s| s.parse().ok())?,
                    kind: r.parsed(5, "a kind of mark", MarkKind::from_written)?,
                    work: self.works.text(r, 6)?,
                    value: r.parsed(7, "a mark", mark)?,
                    weight: r.int(11)?,
                    teacher: self.teachers.text(r, 8)?,
                    corrections: r.int(12)?,
                    original_value: r.parsed(9, "a mark", mark)?,
                },
            }),
            2 => {
                self.attendance.counts.insert(r.text(1)?, r.int(10)?);
            }
            3 => self.absences.push((
                AttendanceRow {
                    date: r.parsed(1, "a date", |s| s.parse().ok())?,
                    lesson: r.opt_int(10)?,
                    status: r.parsed(2, "an attendance status", Attendance::from_written)?,
                },
                r.int(11)?,
            )),
            4 => self.exams.push((
                ExamRow {
                    form: r.parsed(1, "a form of exam", ExamForm::from_written)?,
                    subject: r.text(2)?,
                    exam_date: r.parsed(3, "a date", |s| s.parse().ok())?,
                    mark: r.opt_parsed(4, "a mark", mark)?,
                    grade: r.int(10)?,
                    primary_points: r.int(11)?,
                    test_score: r.opt_int(12)?,
                },
                r.int(13)?,
            )),
            part => {
                return Err(sqlx::Error::ColumnDecode {
                    index: "part".into(),
                    source: format!("no part {part} in a diary").into(),
                }
                .into())
            }
        }
        Ok(())
    }

    /// The diary, each part in its order; none without the learner's row.
    fn into_diary(self, year: Option<AcademicYear>) -> Option<Diary> {
        let Parts {
            learner,
            mut marks,
            mut attendance,
            mut absences,
            mut exams,
            ..
        } = self;
        let learner = learner?;
        marks.sort_unstable_by(|a, b| {
            (&a.subject, &a.period, &a.row.lesson_date, &a.row.mark_id).cmp(&(
                &b.subject,
                &b.period,
                &b.row.lesson_date,
                &b.row.mark_id,
            ))
        });
        absences.sort_unstable_by(|(a, ap), (b, bp)| {
            (&a.date, a.lesson, ap).cmp(&(&b.date, b.lesson, bp))
        });
        attendance.absences = absences.into_iter().map(|(a, _)| a).collect();
        exams.sort_unstable_by(|(a, ap), (b, bp)| (&a.exam_date, ap).cmp(&(&b.exam_date, bp)));
        Some(Diary {
            learner,
            academic_year: year.map(|y| y.to_string()),
            subjects: group_marks(marks),
            attendance,
            exams: exams.into_iter().map(|(e, _)| e).collect(),
        })
    }
}

/// A learner's diary, for one academic year or all of them: one statement ([`DIARY`]), on a
/// SQLite store read on the SQLite driver directly.
pub async fn diary(
    store: &ReadStore,
    learner_id: LearnerId,
    year: Option<AcademicYear>,
) -> Result<Option<Diary>> {
    let learner_id = learner_id.to_string();
    let (from, to) = match year {
        Some(y) => (
            crate::sql::date(y.first_day()),
            crate::sql::date(y.last_day()),
        ),
        None => ("0000-01-01".to_owned(), "9999-12-31".to_owned()),
    };
    let parts = match store.sqlite_readers() {
        Some(readers) => {
            readers
                .with(move |conn| {
                    let months = match year {
                        Some(y) => months(Some((y.first_day(), y.last_day()))),
                        None => months(held_months(conn)?),
                    };
                    let mut statement = conn.prepare_cached(DIARY_SQLITE)?;
                    let mut rows = statement.query((&learner_id, &from, &to, &months))?;
                    let mut parts = Parts::default();
                    while let Some(row) = rows.next()? {
                        parts.add(row)?;
                    }
                    Ok(parts)
                })
                .await?
        }
        None => {
            let rows = sqlx::query(DIARY)
                .bind(learner_id)
                .bind(&from)
                .bind(&to)
                .fetch_all(store.pool())
                .await?;
            let mut parts = Parts::default();
            for row in &rows {
                parts.add(row)?;
            }
            parts
        }
    };
    Ok(parts.into_diary(year))
}

/// The first and the last month of the diary's marks: the two ends of its index by month
/// ([`held_months`]).
const HELD_MONTHS: &str = "\
SELECT (SELECT substr(lesson_date, 1, 7) FROM diary_marks ORDER BY substr(lesson_date, 1, 7) LIMIT 1), \
       (SELECT substr(lesson_date, 1, 7) FROM diary_marks ORDER BY substr(lesson_date, 1, 7) DESC LIMIT 1)";

/// The first and the last month of a mark the diary holds, read from the ends of its index;
/// none while it holds none. A month that does not read as one (a date outside the years 0 to
/// 9999) widens the span to those years.
fn held_months(conn: &rusqlite::Connection) -> Result<Option<(NaiveDate, NaiveDate)>> {
    let ends: [Option<String>; 2] = conn
        .prepare_cached(HELD_MONTHS)?
        .query_row([], |r| Ok([r.get(0)?, r.get(1)?]))?;
    let first_day = |month: &str| NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d");
    let (earliest, latest) = (
        NaiveDate::from_ymd_opt(0, 1, 1).expect("a date"),
        NaiveDate::from_ymd_opt(9999, 12, 1).expect("a date"),
    );
    let [first, last] = ends;
    let first = first.map(|m| first_day(&m).unwrap_or(earliest));
    let last = last.map(|m| first_day(&m).unwrap_or(latest));
    Ok(first.zip(last))
}

/// The months from the first day's to the last day's, as [`DIARY_SQLITE`] takes them: a JSON
/// array of `YYYY-MM` texts, empty for no span.
fn months(span: Option<(NaiveDate, NaiveDate)>) -> String {
    use std::fmt::Write;
    let mut json = String::from("[");
    if let Some((from, to)) = span.filter(|(from, to)| from <= to) {
        let mut month = from.with_day(1).unwrap_or(from);
        while month <= to {
            if json.len() > 1 {
                json.push(',');
            }
            // Writing into a `String` cannot fail.
            let _ = write!(json, "\"{}\"", month.format("%Y-%m"));
            match month.checked_add_months(chrono::Months::new(1)) {
                Some(next) => month = next,
                None => break,
            }
        }
    }
    json.push(']');
    json
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
        if row.kind == MarkKind::Current {
            if let Some(points) = points {
                period_points.push((points, row.weight));
                subject_points
                    .last_mut()
                    .expect("pushed")
                    .push((points, row.weight));
            }
        }
        let period_entry = current.periods.last_mut().expect("pushed");
        if row.kind == MarkKind::Period {
            period_entry.period_mark = Some(row.value);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_read_on_the_sqlite_driver_fails_on_a_missing_or_mistyped_column() {
        let conn = rusqlite::Connection::open_in_memory().expect("a database");
        conn.query_row("SELECT 'text', 7, NULL", [], |row| {
            assert_eq!(row.text(0).expect("a text"), "text");
            assert_eq!(row.int(1).expect("an integer"), 7);
            assert_eq!(row.opt_text(2).expect("a NULL"), None);
            assert_eq!(row.opt_int(2).expect("a NULL"), None);
            assert!(row.int(0).is_err(), "a text is not an integer");
            assert!(row.text(1).is_err(), "an integer is not a text");
            assert!(row.text(2).is_err(), "a NULL where a text must be");
            assert!(row.int(2).is_err(), "a NULL where an integer must be");
            assert!(row.opt_text(3).is_err(), "a missing column");
            assert!(row.str(1).is_err(), "an integer is not a text");
            assert!(
                row.parsed(0, "a mark", mark).is_err(),
                "a text that is not a mark"
            );
            assert!(
                row.parsed(0, "a mark id", |s| s.parse::<MarkId>().ok())
                    .is_err(),
                "a text that is not a mark id"
            );
            Ok(())
        })
        .expect("a row");
    }

    /// The diary's marks and attendance are read from their indexes alone, the marks a seek per
    /// month and learner: a column added to the statement but not to an index would send every
    /// mark of the year back to the table, at a random place, and a learner left out of a seek
    /// would scan the month's marks of every learner. Checked on SQLite's plan for the statement
    /// over the migrated schema.
    #[test]
    fn the_diary_reads_marks_and_attendance_from_their_indexes_alone_on_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().expect("a database");
        for m in crate::migrate::MIGRATIONS {
            conn.execute_batch(m.sqlite).expect(m.name);
        }
        let mut plan = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {DIARY_SQLITE}"))
            .expect("the statement");
        let steps: Vec<String> = plan
            .query_map(
                ("learner", "2026-09-01", "2027-08-31", r#"["2026-09"]"#),
                |row| row.get(3),
            )
            .expect("a plan")
            .collect::<rusqlite::Result<_>>()
            .expect("its steps");
        let using = |table: &str| -> Vec<&String> {
            steps
                .iter()
                .filter(|s| s.starts_with(&format!("SEARCH {table} ")))
                .collect()
        };
        let marks = using("m");
        assert_eq!(marks.len(), 1, "{steps:#?}");
        assert!(
            marks[0].contains("USING COVERING INDEX diary_marks_by_month")
                && marks[0]
                    .contains("<expr>=? AND learner_id=? AND lesson_date>? AND lesson_date<?"),
            "{steps:#?}"
        );
        let attendance = using("diary_attendance");
        assert_eq!(attendance.len(), 2, "{steps:#?}");
        for step in attendance {
            assert!(
                step.contains("USING COVERING INDEX diary_attendance_by_learner_date")
                    && step.contains("learner_id=? AND date>? AND date<?"),
                "{steps:#?}"
            );
        }
        let mut ends = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {HELD_MONTHS}"))
            .expect("the statement");
        let steps: Vec<String> = ends
            .query_map([], |row| row.get(3))
            .expect("a plan")
            .collect::<rusqlite::Result<_>>()
            .expect("its steps");
        assert!(
            steps.iter().all(|s| !s.contains("TEMP B-TREE")),
            "the ends of the indexes are read in their order: {steps:#?}"
        );
        assert_eq!(
            steps
                .iter()
                .filter(|s| s.contains("USING COVERING INDEX diary_marks_by_month"))
                .count(),
            2,
            "{steps:#?}"
        );
    }

    #[test]
    fn a_span_of_dates_names_each_of_its_months_once() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        assert_eq!(months(None), "[]");
        assert_eq!(
            months(Some((day(2026, 11, 30), day(2027, 2, 1)))),
            r#"["2026-11","2026-12","2027-01","2027-02"]"#
        );
        assert_eq!(
            months(Some((day(2026, 9, 1), day(2026, 9, 30)))),
            r#"["2026-09"]"#
        );
        assert_eq!(months(Some((day(2026, 9, 2), day(2026, 9, 1)))), "[]");
        let year = AcademicYear::parse("2026/2027").expect("a year");
        let list = months(Some((year.first_day(), year.last_day())));
        assert_eq!(list.matches('"').count(), 24, "{list}");
        assert!(list.starts_with(r#"["2026-09""#) && list.ends_with(r#""2027-08"]"#));
    }

    /// The diary of a learner on a SQLite store names the months of the marks it holds, from the
    /// first to the last, however far apart.
    #[test]
    fn the_months_held_span_every_mark() {
        let conn = rusqlite::Connection::open_in_memory().expect("a database");
        for m in crate::migrate::MIGRATIONS {
            conn.execute_batch(m.sqlite).expect(m.name);
        }
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        assert_eq!(held_months(&conn).expect("the ends"), None);
        conn.execute_batch(
            "INSERT INTO diary_marks (position, mark_id, learner_id, class_id, subject, lesson_date, \
                 period, kind, work, value, points, weight, teacher) \
             VALUES (7, 'm', 'l', 'c', 's', '2019-03-04', 'term-3', 'current', 'w', '5', 5, 1, 't'), \
                    (8, 'n', 'k', 'c', 's', '2031-12-31', 'term-2', 'current', 'w', '4', 4, 1, 't'), \
                    (9, 'o', 'l', 'c', 's', '2020-01-01', 'term-2', 'current', 'w', '3', 3, 1, 't');",
        )
        .expect("rows");
        assert_eq!(
            held_months(&conn).expect("the ends"),
            Some((day(2019, 3, 1), day(2031, 12, 1)))
        );
    }
}
