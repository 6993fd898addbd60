//! A class register: the roster on a date and the marks and attendance grids.

use chrono::NaiveDate;
use contingent_domain::{
    AcademicYear, Attendance, ClassId, LearnerId, Level, Mark, MarkKind, OrganizationId,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{each_on_pool, each_on_sqlite, undecodable, AttendanceRow, Columns, Result};
use crate::ReadStore;

/// A class or group.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ClassInfo {
    /// Class id.
    #[schema(value_type = uuid::Uuid)]
    pub class_id: ClassId,
    /// Organization id.
    #[schema(value_type = uuid::Uuid)]
    pub organization_id: OrganizationId,
    /// Academic year.
    pub academic_year: String,
    /// Level.
    #[schema(value_type = String, example = "general")]
    pub level: Level,
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
    pub on: NaiveDate,
    /// Learners in the class on that date, by name.
    pub roster: Vec<RosterRow>,
    /// First day of the grids.
    pub from: NaiveDate,
    /// Last day of the grids.
    pub to: NaiveDate,
    /// Marks grid: one row per learner and subject.
    pub marks: Vec<MarksGridRow>,
    /// Attendance grid: one row per learner.
    pub attendance: Vec<AttendanceGridRow>,
}

/// One learner on the roster.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct RosterRow {
    /// Learner id.
    #[schema(value_type = uuid::Uuid)]
    pub learner_id: LearnerId,
    /// Фамилия.
    pub surname: String,
    /// Имя.
    pub name: String,
    /// Отчество.
    pub patronymic: Option<String>,
    /// First day in the class.
    pub from: NaiveDate,
    /// First day no longer in the class.
    pub until: Option<NaiveDate>,
}

/// One learner's marks in one subject.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct MarksGridRow {
    /// Learner id.
    #[schema(value_type = uuid::Uuid)]
    pub learner_id: LearnerId,
    /// Subject.
    pub subject: String,
    /// Marks by date.
    pub marks: Vec<GridMark>,
}

/// One cell of the marks grid.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct GridMark {
    /// Lesson date.
    pub date: NaiveDate,
    /// The mark now: 2 to 5, pass or fail.
    #[schema(value_type = String, example = "5")]
    pub value: Mark,
    /// current, period, annual, final.
    #[schema(value_type = String, example = "current")]
    pub kind: MarkKind,
}

/// One learner's attendance.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct AttendanceGridRow {
    /// Learner id.
    #[schema(value_type = uuid::Uuid)]
    pub learner_id: LearnerId,
    /// Records by date.
    pub records: Vec<AttendanceRow>,
}

const CLASS: &str =
    "SELECT class_id, organization_id, academic_year, level, grade, name, capacity \
     FROM class_register_classes WHERE class_id = $1";

const ROSTER: &str =
    "SELECT r.learner_id, p.surname, p.name, p.patronymic, r.from_date, r.until_date \
     FROM class_register_roster r LEFT JOIN class_register_people p ON p.learner_id = r.learner_id \
     WHERE r.class_id = $1 AND r.from_date <= $2 AND (r.until_date IS NULL OR r.until_date > $2) \
     ORDER BY p.surname NULLS FIRST, p.name NULLS FIRST, r.learner_id";

const MARKS: &str =
    "SELECT m.learner_id, m.subject, m.lesson_date, COALESCE(c.value, m.value), m.kind \
     FROM class_register_marks m LEFT JOIN class_register_corrections c ON c.mark_id = m.mark_id \
     WHERE m.class_id = $1 AND m.lesson_date BETWEEN $2 AND $3 \
     ORDER BY m.learner_id, m.subject, m.lesson_date, m.mark_id";

const ATTENDANCE: &str = "SELECT learner_id, date, lesson, status FROM class_register_attendance \
     WHERE class_id = $1 AND date BETWEEN $2 AND $3 ORDER BY learner_id, date, lesson NULLS FIRST, position";

/// The dates asked for, defaults filled from the class's academic year: the roster's day
/// (today, within the year) and the grids' first and last days (the year's).
struct Span {
    on: NaiveDate,
    from: NaiveDate,
    to: NaiveDate,
}

impl Span {
    /// The span; a class whose academic year does not read as one is an error.
    fn of(
        class: &ClassInfo,
        on: Option<NaiveDate>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Self> {
        let year = AcademicYear::parse(&class.academic_year)
            .map_err(|e| undecodable(2, format!("{:?}: {e}", class.academic_year)))?;
        let (first, last) = (year.first_day(), year.last_day());
        let on = on.unwrap_or_else(|| chrono::Utc::now().date_naive().clamp(first, last));
        Ok(Self {
            on,
            from: from.unwrap_or(first),
            to: to.unwrap_or(last),
        })
    }

    /// The roster's day and the grids' first and last days, as the statements take them.
    fn written(&self) -> [String; 3] {
        [self.on, self.from, self.to].map(crate::sql::date)
    }
}

fn class_info(r: &impl Columns) -> Result<ClassInfo> {
    Ok(ClassInfo {
        class_id: r.parsed(0, "a class id", |s| s.parse().ok())?,
        organization_id: r.parsed(1, "an organization id", |s| s.parse().ok())?,
        academic_year: r.text(2)?,
        level: r.parsed(3, "a level", Level::from_written)?,
        grade: r.int(4)?,
        name: r.text(5)?,
        capacity: r.int(6)?,
    })
}

fn roster_row(r: &impl Columns) -> Result<RosterRow> {
    Ok(RosterRow {
        learner_id: learner(r, 0)?,
        // A learner the class register has no name for yet (the join finds no person) is
        // listed with empty names, first.
        surname: r.opt_text(1)?.unwrap_or_default(),
        name: r.opt_text(2)?.unwrap_or_default(),
        patronymic: r.opt_text(3)?,
        from: r.parsed(4, "a date", |s| s.parse().ok())?,
        until: r
            .opt_text(5)?
            .map(|t| t.parse().map_err(|e| undecodable(5, format!("{t:?}: {e}"))))
            .transpose()?,
    })
}

/// A column that must hold a learner id.
fn learner(r: &impl Columns, i: usize) -> Result<LearnerId> {
    r.parsed(i, "a learner id", |s| s.parse().ok())
}

/// Adds a row of [`MARKS`] to the grid, a learner's subject after another.
fn add_mark(marks: &mut Vec<MarksGridRow>, r: &impl Columns) -> Result<()> {
    let (learner, subject) = (learner(r, 0)?, r.str(1)?);
    if marks
        .last()
        .is_none_or(|m| m.learner_id != learner || m.subject != subject)
    {
        marks.push(MarksGridRow {
            learner_id: learner,
            subject: subject.to_owned(),
            marks: Vec::new(),
        });
    }
    marks.last_mut().expect("pushed").marks.push(GridMark {
        date: r.parsed(2, "a date", |s| s.parse().ok())?,
        value: r.parsed(3, "a mark", |s| Mark::parse(s).ok())?,
        kind: r.parsed(4, "a kind of mark", MarkKind::from_written)?,
    });
    Ok(())
}

/// Adds a row of [`ATTENDANCE`] to the grid, a learner after another.
fn add_attendance(attendance: &mut Vec<AttendanceGridRow>, r: &impl Columns) -> Result<()> {
    let learner = learner(r, 0)?;
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
            date: r.parsed(1, "a date", |s| s.parse().ok())?,
            lesson: r.opt_int(2)?,
            status: r.parsed(3, "an attendance status", Attendance::from_written)?,
        });
    Ok(())
}

/// A class's register: its roster on `on_date` (default today, within the class's academic
/// year) and its marks and attendance from `from` to `to` (default the academic year). Four
/// statements; on a SQLite store read on the SQLite driver directly, in one visit to a reading
/// connection.
pub async fn class_register(
    store: &ReadStore,
    class_id: ClassId,
    on_date: Option<NaiveDate>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Option<ClassRegisterView>> {
    let class_id = class_id.to_string();
    if let Some(readers) = store.sqlite_readers() {
        return readers
            .with(move |conn| {
                let mut class = None;
                each_on_sqlite(conn, CLASS, &[&class_id], |r| {
                    class = Some(class_info(r)?);
                    Ok(())
                })?;
                let Some(class) = class else {
                    return Ok(None);
                };
                let span = Span::of(&class, on_date, from, to)?;
                let [on, first, last] = span.written();
                let (mut roster, mut marks, mut attendance) = (Vec::new(), Vec::new(), Vec::new());
                each_on_sqlite(conn, ROSTER, &[&class_id, &on], |r| {
                    roster.push(roster_row(r)?);
                    Ok(())
                })?;
                let grid = [class_id.as_str(), &first, &last];
                each_on_sqlite(conn, MARKS, &grid, |r| add_mark(&mut marks, r))?;
                each_on_sqlite(conn, ATTENDANCE, &grid, |r| {
                    add_attendance(&mut attendance, r)
                })?;
                Ok(Some(view(class, span, roster, marks, attendance)))
            })
            .await;
    }
    let pool = store.pool();
    let mut class = None;
    each_on_pool(pool, CLASS, &[class_id.as_str()], |r| {
        class = Some(class_info(r)?);
        Ok(())
    })
    .await?;
    let Some(class) = class else {
        return Ok(None);
    };
    let span = Span::of(&class, on_date, from, to)?;
    let [on, first, last] = span.written();
    let (mut roster, mut marks, mut attendance) = (Vec::new(), Vec::new(), Vec::new());
    each_on_pool(pool, ROSTER, &[class_id.as_str(), &on], |r| {
        roster.push(roster_row(r)?);
        Ok(())
    })
    .await?;
    let grid = [class_id.as_str(), &first, &last];
    each_on_pool(pool, MARKS, &grid, |r| add_mark(&mut marks, r)).await?;
    each_on_pool(pool, ATTENDANCE, &grid, |r| {
        add_attendance(&mut attendance, r)
    })
    .await?;
    Ok(Some(view(class, span, roster, marks, attendance)))
}

fn view(
    class: ClassInfo,
    span: Span,
    roster: Vec<RosterRow>,
    marks: Vec<MarksGridRow>,
    attendance: Vec<AttendanceGridRow>,
) -> ClassRegisterView {
    ClassRegisterView {
        class,
        on: span.on,
        roster,
        from: span.from,
        to: span.to,
        marks,
        attendance,
    }
}
