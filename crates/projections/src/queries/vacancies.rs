//! Free places by class, and an organization's queue of applications.

use chrono::NaiveDate;
use contingent_domain::{
    AcademicYear, ApplicationId, ClassId, LearnerId, Level, OrganizationId, Priority, StayMode,
};
use serde::Serialize;
use sqlx::AnyPool;
use utoipa::ToSchema;

use super::{each_on_pool, each_on_sqlite, from_str, n, on, ops, ps, s, Columns, Result};
use crate::ReadStore;

/// Places in one class or group.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct VacancyRow {
    /// Organization id.
    #[schema(value_type = uuid::Uuid)]
    pub organization_id: OrganizationId,
    /// Organization name.
    pub organization: String,
    /// Municipality.
    pub municipality: String,
    /// Class id.
    #[schema(value_type = uuid::Uuid)]
    pub class_id: ClassId,
    /// Class name.
    pub class_name: String,
    /// Academic year.
    pub academic_year: String,
    /// Level.
    #[schema(value_type = String, example = "preschool")]
    pub level: Level,
    /// Grade or age group.
    pub grade: i64,
    /// Kindergarten stay mode.
    #[schema(value_type = Option<String>, example = "full_day")]
    pub stay_mode: Option<StayMode>,
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
    pub organization_id: Option<OrganizationId>,
    /// One municipality.
    pub municipality: Option<String>,
    /// One academic year.
    pub academic_year: Option<AcademicYear>,
    /// One level.
    pub level: Option<Level>,
    /// Only classes with free places.
    pub only_free: bool,
}

/// Places per class or group, at most 5,000, in order of municipality, organization, year,
/// level, grade and class. The statement names only the filters given, so that one
/// organization's places are found by its index rather than by reading every class of the
/// region (a condition such as `$1 IS NULL OR organization_id = $1` is one no index serves).
pub async fn vacancies(store: &ReadStore, f: &VacancyFilter) -> Result<Vec<VacancyRow>> {
    let (sql, values) = select_vacancies(f);
    let mut rows = Vec::new();
    if let Some(readers) = store.sqlite_readers() {
        return readers
            .with(move |conn| {
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                each_on_sqlite(conn, &sql, &values, |r| {
                    rows.push(vacancy_row(r)?);
                    Ok(())
                })?;
                Ok(rows)
            })
            .await;
    }
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    each_on_pool(store.pool(), &sql, &values, |r| {
        rows.push(vacancy_row(r)?);
        Ok(())
    })
    .await?;
    Ok(rows)
}

/// A row of [`select_vacancies`], by column place: the class's columns, then the
/// organization's name and municipality.
fn vacancy_row(r: &impl Columns) -> Result<VacancyRow> {
    let (capacity, enrolled) = (r.int(7)?, r.int(8)?);
    Ok(VacancyRow {
        class_id: r.parsed(0, "a class id", from_str)?,
        organization_id: r.parsed(1, "an organization id", from_str)?,
        academic_year: r.text(2)?,
        level: r.parsed(3, "a level", Level::from_written)?,
        grade: r.int(4)?,
        class_name: r.text(5)?,
        stay_mode: r.opt_parsed(6, "a stay mode", StayMode::from_written)?,
        capacity,
        enrolled,
        free: capacity - enrolled,
        organization: r.text(9)?,
        municipality: r.text(10)?,
    })
}

/// The statement of [`vacancies`] for `f`, and the values of its parameters in order, as the
/// read model writes them.
fn select_vacancies(f: &VacancyFilter) -> (String, Vec<String>) {
    let given = [
        (
            "c.organization_id",
            f.organization_id.map(|o| o.to_string()),
        ),
        ("o.municipality", f.municipality.clone()),
        ("c.academic_year", f.academic_year.map(|y| y.to_string())),
        ("c.level", f.level.map(|l| l.as_str().to_owned())),
    ];
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    for (column, value) in given {
        if let Some(value) = value {
            values.push(value);
            conditions.push(format!("{column} = ${}", values.len()));
        }
    }
    if f.only_free {
        conditions.push("c.enrolled < c.capacity".to_owned());
    }
    let sql = format!(
        "SELECT c.class_id, c.organization_id, c.academic_year, c.level, c.grade, c.name, \
         c.stay_mode, c.capacity, c.enrolled, o.name, o.municipality FROM vacancy_classes c \
         JOIN vacancy_organizations o ON o.organization_id = c.organization_id{}{} \
         ORDER BY o.municipality, o.name, c.academic_year, c.level, c.grade, c.name, c.class_id LIMIT 5000",
        if conditions.is_empty() { "" } else { " WHERE " },
        conditions.join(" AND "),
    );
    (sql, values)
}

/// An organization's queue of applications.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct QueueView {
    /// Organization id.
    #[schema(value_type = uuid::Uuid)]
    pub organization_id: OrganizationId,
    /// The date overdue is judged on.
    pub as_of: NaiveDate,
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
    #[schema(value_type = uuid::Uuid)]
    pub application_id: ApplicationId,
    /// Learner id.
    #[schema(value_type = uuid::Uuid)]
    pub learner_id: LearnerId,
    /// Level.
    #[schema(value_type = String, example = "preschool")]
    pub level: Level,
    /// Academic year.
    pub academic_year: String,
    /// Grade or age group.
    pub grade: i64,
    /// Class asked for.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub class_id: Option<ClassId>,
    /// Submitted on.
    pub submitted_on: NaiveDate,
    /// Desired start.
    pub desired_start: Option<NaiveDate>,
    /// Priority.
    #[schema(value_type = String, example = "general")]
    pub priority: Priority,
    /// A decision is due by.
    pub due_on: NaiveDate,
    /// pending, withdrawn, rejected, accepted.
    pub status: String,
    /// Decided on.
    pub decided_on: Option<NaiveDate>,
    /// Pending past its due date.
    pub overdue: bool,
    /// Place in the queue among pending applications of the same level and year (1-based).
    pub place: Option<i64>,
}

/// Whether an application of `status`, due to be decided by `due_on`, is overdue on `as_of`:
/// it is still pending and its due date has passed. The one rule for overdue that the school's
/// queue and the region's queues apply.
pub fn overdue(status: &str, due_on: NaiveDate, as_of: NaiveDate) -> bool {
    status == "pending" && due_on < as_of
}

/// An organization's queue.
pub async fn queue(
    pool: &AnyPool,
    organization_id: OrganizationId,
    as_of: NaiveDate,
) -> Result<Option<QueueView>> {
    let id = organization_id.to_string();
    let exists: Option<(String,)> = sqlx::query_as(
        "SELECT organization_id FROM vacancy_organizations WHERE organization_id = $1",
    )
    .bind(&id)
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
    .bind(&id)
    .fetch_all(pool)
    .await?;
    let applications: Vec<ApplicationRow> = rows
        .iter()
        .map(|r| -> Result<_> {
            Ok({
                let status = s(r, "status")?;
                let due_on = ps(r, "due_on", "a date", from_str)?;
                ApplicationRow {
                    application_id: ps(r, "application_id", "an application id", from_str)?,
                    learner_id: ps(r, "learner_id", "a learner id", from_str)?,
                    level: ps(r, "level", "a level", Level::from_written)?,
                    academic_year: s(r, "academic_year")?,
                    grade: n(r, "grade")?,
                    class_id: ops(r, "class_id", "a class id", from_str)?,
                    submitted_on: ps(r, "submitted_on", "a date", from_str)?,
                    desired_start: ops(r, "desired_start", "a date", from_str)?,
                    priority: ps(r, "priority", "a priority", Priority::from_written)?,
                    overdue: overdue(&status, due_on, as_of),
                    due_on,
                    status,
                    decided_on: ops(r, "decided_on", "a date", from_str)?,
                    place: on(r, "place")?,
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(QueueView {
        organization_id,
        as_of,
        pending: applications
            .iter()
            .filter(|a| a.status == "pending")
            .count() as i64,
        overdue: applications.iter().filter(|a| a.overdue).count() as i64,
        applications,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A class row as [`select_vacancies`] reads it, with its class id, level and stay mode.
    fn read(class_id: &str, level: &str, stay_mode: Option<&str>) -> Result<VacancyRow> {
        let conn = rusqlite::Connection::open_in_memory().expect("a database");
        let mut row = None;
        each_on_sqlite(
            &conn,
            "SELECT $1, '0192f1a0-7c2e-7d3a-9b1e-000000000001', '2026/2027', $2, 0, 'Ромашка', \
             NULLIF($3, ''), 20, 18, 'Детский сад № 1', 'Город'",
            &[class_id, level, stay_mode.unwrap_or("")],
            |r| {
                row = Some(vacancy_row(r));
                Ok(())
            },
        )?;
        row.expect("one row")
    }

    #[test]
    fn a_class_whose_id_or_vocabulary_does_not_read_as_one_is_an_error() {
        let id = "0192f1a0-7c2e-7d3a-9b1e-000000000002";
        let row = read(id, "preschool", Some("full_day")).expect("a class");
        assert_eq!(row.class_id.to_string(), id);
        assert_eq!(row.level, Level::Preschool);
        assert_eq!(row.stay_mode, Some(StayMode::FullDay));
        assert_eq!(row.free, 2);
        let written = serde_json::to_value(&row).expect("written");
        assert_eq!(written["class_id"], id);
        assert_eq!(written["level"], "preschool");
        assert_eq!(written["stay_mode"], "full_day");
        assert!(read("class-1", "preschool", None).is_err(), "not a UUID");
        assert!(
            read(id, "Preschool", None).is_err(),
            "not a level as written"
        );
        assert!(
            read(id, "preschool", Some("all_day")).is_err(),
            "not a stay mode"
        );
        assert_eq!(read(id, "general", None).expect("a class").stay_mode, None);
    }

    /// One organization's places are found by its index, not by reading every class of the
    /// region: checked on SQLite's plan for the statement over the migrated schema.
    #[test]
    fn one_organizations_places_are_read_by_its_index_on_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().expect("a database");
        for m in crate::migrate::MIGRATIONS {
            conn.execute_batch(m.sqlite).expect(m.name);
        }
        let filter = VacancyFilter {
            organization_id: Some(OrganizationId::from(uuid::Uuid::nil())),
            academic_year: Some(AcademicYear::starting(2026)),
            only_free: true,
            ..VacancyFilter::default()
        };
        let (sql, values) = select_vacancies(&filter);
        let mut plan = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("the statement");
        let steps: Vec<String> = plan
            .query_map(rusqlite::params_from_iter(values), |row| row.get(3))
            .expect("a plan")
            .collect::<rusqlite::Result<_>>()
            .expect("its steps");
        assert!(
            steps
                .iter()
                .any(|s| s.starts_with("SEARCH c USING INDEX vacancy_classes_by_organization")),
            "{steps:#?}"
        );
        assert!(!steps.iter().any(|s| s.starts_with("SCAN c")), "{steps:#?}");
    }
}
