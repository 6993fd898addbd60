//! The register: a learner's card, learner search, and the directory of organizations.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyPool;
use utoipa::ToSchema;

use super::{n, os, s, Result};

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
