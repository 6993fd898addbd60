//! A class register: the roster on a date and the marks and attendance grids.

use contingent_domain::AcademicYear;
use serde::Serialize;
use sqlx::AnyPool;
use utoipa::ToSchema;

use super::{n, on, os, s, AttendanceRow, Result};

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
        "SELECT m.learner_id, m.subject, m.lesson_date, COALESCE(c.value, m.value) AS value, m.kind \
         FROM class_register_marks m LEFT JOIN class_register_corrections c ON c.mark_id = m.mark_id \
         WHERE m.class_id = $1 AND m.lesson_date BETWEEN $2 AND $3 \
         ORDER BY m.learner_id, m.subject, m.lesson_date, m.mark_id",
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
