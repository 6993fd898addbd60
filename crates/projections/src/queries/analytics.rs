//! The analyst's read side over the whole region (or one municipality): movements per month,
//! the pending applications of every queue, exam results by organization, and the counts the
//! data-quality panel reconciles with the log.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use contingent_domain::{ApplicationId, ExamForm, Level, Mark, OrganizationId, Priority};
use sqlx::AnyPool;

use super::vacancies::overdue;
use super::{from_str, n, on, ops, ps, s, undecodable, Result};

/// Movements of one month (`YYYY-MM`) into and out of the organizations in scope, from the
/// register's movements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthMovements {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Enrollments (`enrolled`).
    pub enrolled: i64,
    /// Arrivals by transfer from another organization.
    pub transferred_in: i64,
    /// Leavings (`left`).
    pub left: i64,
    /// Departures by transfer to another organization.
    pub transferred_out: i64,
}

/// Enrollments and leavings per month, oldest first: an enrollment counts in the month and the
/// municipality of the organization enrolled into, a leaving in those of the organization left,
/// a transfer to another organization in both (out of one, into the other). Deaths name no
/// organization in the register's movements and are not counted here.
pub async fn movements_by_month(
    pool: &AnyPool,
    municipality: Option<&str>,
) -> Result<Vec<MonthMovements>> {
    let rows = sqlx::query(
        "SELECT month, CAST(sum(enrolled) AS BIGINT) AS enrolled, \
         CAST(sum(transferred_in) AS BIGINT) AS transferred_in, \
         CAST(sum(leavings) AS BIGINT) AS leavings, \
         CAST(sum(transferred_out) AS BIGINT) AS transferred_out FROM ( \
           SELECT substr(m.date, 1, 7) AS month, \
             CASE WHEN m.kind = 'enrolled' THEN 1 ELSE 0 END AS enrolled, \
             CASE WHEN m.kind = 'enrolled' THEN 0 ELSE 1 END AS transferred_in, \
             0 AS leavings, 0 AS transferred_out \
           FROM register_movements m \
           JOIN register_organizations o ON o.organization_id = m.to_organization_id \
           WHERE m.kind IN ('enrolled', 'to_other_organization') \
             AND ($1 IS NULL OR o.municipality = $1) \
           UNION ALL \
           SELECT substr(m.date, 1, 7) AS month, 0, 0, \
             CASE WHEN m.kind = 'left' THEN 1 ELSE 0 END, \
             CASE WHEN m.kind = 'left' THEN 0 ELSE 1 END \
           FROM register_movements m \
           JOIN register_organizations o ON o.organization_id = m.from_organization_id \
           WHERE m.kind IN ('left', 'to_other_organization') \
             AND ($1 IS NULL OR o.municipality = $1) \
         ) t GROUP BY month ORDER BY month",
    )
    .bind(municipality)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MonthMovements {
                month: s(r, "month")?,
                enrolled: n(r, "enrolled")?,
                transferred_in: n(r, "transferred_in")?,
                left: n(r, "leavings")?,
                transferred_out: n(r, "transferred_out")?,
            })
        })
        .collect()
}

/// A pending application in a region's queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingApplication {
    /// Application id.
    pub application_id: ApplicationId,
    /// Organization id.
    pub organization_id: OrganizationId,
    /// Organization name.
    pub organization: String,
    /// Municipality.
    pub municipality: String,
    /// Level.
    pub level: Level,
    /// Academic year.
    pub academic_year: String,
    /// Grade or age group.
    pub grade: i64,
    /// Submitted on.
    pub submitted_on: NaiveDate,
    /// Priority.
    pub priority: Priority,
    /// A decision is due by.
    pub due_on: NaiveDate,
    /// Past its due date on the day asked about ([`overdue`], as the school's queue judges it).
    pub overdue: bool,
}

/// Every pending application of the organizations in scope, by municipality, organization and
/// level, the longest due first; `overdue` judged on `as_of`.
pub async fn pending_applications(
    pool: &AnyPool,
    municipality: Option<&str>,
    as_of: NaiveDate,
) -> Result<Vec<PendingApplication>> {
    let rows = sqlx::query(
        "SELECT a.application_id, a.organization_id, o.name AS organization, o.municipality, \
         a.level, a.academic_year, a.grade, a.submitted_on, a.priority, a.due_on, a.status \
         FROM vacancy_applications a \
         JOIN vacancy_organizations o ON o.organization_id = a.organization_id \
         WHERE a.status = 'pending' AND ($1 IS NULL OR o.municipality = $1) \
         ORDER BY o.municipality, o.name, a.organization_id, a.level, a.due_on, a.application_id",
    )
    .bind(municipality)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let status = s(r, "status")?;
            let due_on = ps(r, "due_on", "a date", from_str)?;
            Ok(PendingApplication {
                application_id: ps(r, "application_id", "an application id", from_str)?,
                organization_id: ps(r, "organization_id", "an organization id", from_str)?,
                organization: s(r, "organization")?,
                municipality: s(r, "municipality")?,
                level: ps(r, "level", "a level", Level::from_written)?,
                academic_year: s(r, "academic_year")?,
                grade: n(r, "grade")?,
                submitted_on: ps(r, "submitted_on", "a date", from_str)?,
                priority: ps(r, "priority", "a priority", Priority::from_written)?,
                overdue: overdue(&status, due_on, as_of),
                due_on,
            })
        })
        .collect()
}

/// One exam result with the organization the learner was enrolled in on the exam's date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExamResult {
    /// Municipality of the organization.
    pub municipality: String,
    /// Organization id.
    pub organization_id: OrganizationId,
    /// Organization name.
    pub organization: String,
    /// ОГЭ, ЕГЭ or ГВЭ (`oge`, `ege`, `gve`).
    pub form: ExamForm,
    /// Subject.
    pub subject: String,
    /// Date of the exam.
    pub exam_date: NaiveDate,
    /// ЕГЭ test score 0–100.
    pub test_score: Option<i64>,
    /// The 5-point mark (ОГЭ, ГВЭ).
    pub mark: Option<Mark>,
}

/// Every exam result of the region (the diary's exam results), each with the organization of
/// the learner's primary general-education enrollment that covers the exam's date (the
/// register's enrollments); a result without one is not listed.
pub async fn exam_results(pool: &AnyPool) -> Result<Vec<ExamResult>> {
    let rows = sqlx::query(
        "SELECT o.municipality, o.organization_id, o.name AS organization, x.form, x.subject, \
         x.exam_date, x.test_score, x.mark FROM diary_exams x \
         JOIN register_enrollments e ON e.learner_id = x.learner_id AND e.is_primary = 1 \
           AND e.level = 'general' AND e.enrolled_on <= x.exam_date \
           AND (e.ended_on IS NULL OR e.ended_on >= x.exam_date) \
         JOIN register_organizations o ON o.organization_id = e.organization_id \
         ORDER BY x.position",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ExamResult {
                municipality: s(r, "municipality")?,
                organization_id: ps(r, "organization_id", "an organization id", from_str)?,
                organization: s(r, "organization")?,
                form: ps(r, "form", "a form of exam", ExamForm::from_written)?,
                subject: s(r, "subject")?,
                exam_date: ps(r, "exam_date", "a date", from_str)?,
                test_score: on(r, "test_score")?,
                mark: ops(r, "mark", "a mark", |m| Mark::parse(m).ok())?,
            })
        })
        .collect()
}

/// The counts the data-quality panel reconciles with the log, read in one statement (one
/// snapshot of the read models) with the positions they stand at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadModelCounts {
    /// Each read model's position.
    pub positions: BTreeMap<String, u64>,
    /// Open enrollments by organization (the register's enrollments without an end).
    pub open_enrollments: BTreeMap<OrganizationId, i64>,
    /// Places taken by organization (the sum of its classes' enrolled, vacancies).
    pub places_taken: BTreeMap<OrganizationId, i64>,
    /// Pending applications by organization and due date (vacancies).
    pub pending: BTreeMap<(OrganizationId, NaiveDate), i64>,
    /// Learners in the register.
    pub learners: i64,
    /// Exam results in the diaries.
    pub exam_results: i64,
}

/// The read models' counts for reconciliation, and their positions, from one snapshot.
pub async fn reconciliation_counts(pool: &AnyPool) -> Result<ReadModelCounts> {
    let rows = sqlx::query(
        "SELECT 'position' AS measure, projection AS k, NULL AS due, CAST(position AS BIGINT) AS n \
         FROM projection_positions \
         UNION ALL SELECT 'open', organization_id, NULL, CAST(count(*) AS BIGINT) \
         FROM register_enrollments WHERE ended_on IS NULL GROUP BY organization_id \
         UNION ALL SELECT 'taken', organization_id, NULL, CAST(sum(enrolled) AS BIGINT) \
         FROM vacancy_classes GROUP BY organization_id \
         UNION ALL SELECT 'pending', organization_id, due_on, CAST(count(*) AS BIGINT) \
         FROM vacancy_applications WHERE status = 'pending' GROUP BY organization_id, due_on \
         UNION ALL SELECT 'learners', '', NULL, CAST(count(*) AS BIGINT) FROM register_learners \
         UNION ALL SELECT 'exams', '', NULL, CAST(count(*) AS BIGINT) FROM diary_exams",
    )
    .fetch_all(pool)
    .await?;
    let mut counts = ReadModelCounts::default();
    let organization = |r: &sqlx::any::AnyRow| ps(r, "k", "an organization id", from_str);
    for r in &rows {
        let count = n(r, "n")?;
        match s(r, "measure")?.as_str() {
            "position" => {
                let position = u64::try_from(count)
                    .map_err(|_| undecodable("n", format!("{count} is not a position")))?;
                counts.positions.insert(s(r, "k")?, position);
            }
            "open" => {
                counts.open_enrollments.insert(organization(r)?, count);
            }
            "taken" => {
                counts.places_taken.insert(organization(r)?, count);
            }
            "pending" => {
                let due = ps(r, "due", "a date", from_str)?;
                counts.pending.insert((organization(r)?, due), count);
            }
            "learners" => counts.learners = count,
            _ => counts.exam_results = count,
        }
    }
    Ok(counts)
}
