//! The register: a learner's card, learner search, and the directory of organizations.

use chrono::NaiveDate;
use contingent_domain::{
    ClassId, EducationForm, EnrollmentId, LearnerId, LeaveReason, Level, OrganizationId,
    OrganizationKind, Relation, Sex, Snils,
};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyPool;
use utoipa::ToSchema;

use super::{from_str, n, ops, os, ps, s, undecodable, Result};

/// A learner's entry in the register.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct LearnerCard {
    /// Learner id.
    #[schema(value_type = uuid::Uuid)]
    pub learner_id: LearnerId,
    /// Фамилия.
    pub surname: String,
    /// Имя.
    pub name: String,
    /// Отчество.
    pub patronymic: Option<String>,
    /// Sex.
    #[schema(value_type = String, example = "female")]
    pub sex: Sex,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// SNILS.
    pub snils: Option<String>,
    /// The civil registry birth record.
    pub birth_record: Option<String>,
    /// The identity document.
    pub document: Option<String>,
    /// registered, enrolled, left or deceased.
    pub status: String,
    /// Since when.
    pub status_since: Option<NaiveDate>,
    /// Date of death.
    pub died_on: Option<NaiveDate>,
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
    #[schema(value_type = uuid::Uuid)]
    pub enrollment_id: EnrollmentId,
    /// Organization id.
    #[schema(value_type = uuid::Uuid)]
    pub organization_id: OrganizationId,
    /// Organization name.
    pub organization: Option<String>,
    /// Class id.
    #[schema(value_type = uuid::Uuid)]
    pub class_id: ClassId,
    /// Class name.
    pub class_name: Option<String>,
    /// Level.
    #[schema(value_type = String, example = "general")]
    pub level: Level,
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
    #[schema(value_type = String, example = "full_time")]
    pub form: EducationForm,
    /// Date of enrollment.
    pub enrolled_on: NaiveDate,
    /// Enrollment order number.
    pub order_number: String,
    /// Last day, when ended.
    pub ended_on: Option<NaiveDate>,
    /// Why it ended: a reason for leaving, `death` or `transferred`.
    pub end_reason: Option<String>,
}

/// One movement: enrollment, transfer, leaving, death.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct MovementRow {
    /// Log position of the event.
    pub position: i64,
    /// Date.
    pub date: NaiveDate,
    /// enrolled, within_organization, next_grade, to_other_organization, left, died.
    pub kind: String,
    /// From organization.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub from_organization_id: Option<OrganizationId>,
    /// From class.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub from_class_id: Option<ClassId>,
    /// To organization.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub to_organization_id: Option<OrganizationId>,
    /// To class.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub to_class_id: Option<ClassId>,
    /// Reason (for leaving).
    #[schema(value_type = Option<String>, example = "moved_away")]
    pub reason: Option<LeaveReason>,
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
    #[schema(value_type = String, example = "mother")]
    pub relation: Relation,
    /// Consent given on.
    pub consent_given_on: NaiveDate,
    /// Consent document.
    pub consent_document: String,
}

/// A line of a learner search.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct LearnerSummary {
    /// Learner id.
    #[schema(value_type = uuid::Uuid)]
    pub learner_id: LearnerId,
    /// Фамилия.
    pub surname: String,
    /// Имя.
    pub name: String,
    /// Отчество.
    pub patronymic: Option<String>,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// registered, enrolled, left or deceased.
    pub status: String,
}

fn summary(row: &AnyRow) -> Result<LearnerSummary> {
    Ok(LearnerSummary {
        learner_id: ps(row, "learner_id", "a learner id", from_str)?,
        surname: s(row, "surname")?,
        name: s(row, "name")?,
        patronymic: os(row, "patronymic")?,
        birth_date: ps(row, "birth_date", "a date", from_str)?,
        status: s(row, "status")?,
    })
}

/// How to look learners up.
#[derive(Debug, Clone, Default)]
pub struct LearnerSearch {
    /// By SNILS.
    pub snils: Option<Snils>,
    /// By surname (exact).
    pub surname: Option<String>,
    /// And name.
    pub name: Option<String>,
    /// And date of birth.
    pub birth_date: Option<NaiveDate>,
    /// Learners with an active enrollment in this organization.
    pub organization_id: Option<OrganizationId>,
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
    .bind(q.snils.map(|s| s.to_string()))
    .bind(&q.surname)
    .bind(&q.name)
    .bind(q.birth_date.map(crate::sql::date))
    .bind(q.organization_id.map(|o| o.to_string()))
    .bind(q.limit.clamp(1, 500))
    .fetch_all(pool)
    .await?;
    rows.iter().map(summary).collect()
}

/// A learner's register entry.
pub async fn learner(pool: &AnyPool, learner_id: LearnerId) -> Result<Option<LearnerCard>> {
    let learner_id = learner_id.to_string();
    let Some(row) = sqlx::query("SELECT * FROM register_learners WHERE learner_id = $1")
        .bind(&learner_id)
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
    .bind(&learner_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| -> Result<_> { Ok(EnrollmentRow {
        enrollment_id: ps(r, "enrollment_id", "an enrollment id", from_str)?,
        organization_id: ps(r, "organization_id", "an organization id", from_str)?,
        organization: os(r, "organization")?,
        class_id: ps(r, "class_id", "a class id", from_str)?,
        class_name: os(r, "class_name")?,
        level: ps(r, "level", "a level", Level::from_written)?,
        grade: n(r, "grade")?,
        academic_year: s(r, "academic_year")?,
        programme: s(r, "programme")?,
        adapted: n(r, "adapted")? != 0,
        primary: n(r, "is_primary")? != 0,
        form: ps(r, "form", "a form of education", EducationForm::from_written)?,
        enrolled_on: ps(r, "enrolled_on", "a date", from_str)?,
        order_number: s(r, "order_number")?,
        ended_on: ops(r, "ended_on", "a date", from_str)?,
        end_reason: os(r, "end_reason")?,
    }) })
    .collect::<Result<Vec<_>>>()?;
    let movements =
        sqlx::query("SELECT * FROM register_movements WHERE learner_id = $1 ORDER BY position")
            .bind(&learner_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| -> Result<_> {
                Ok(MovementRow {
                    position: n(r, "position")?,
                    date: ps(r, "date", "a date", from_str)?,
                    kind: s(r, "kind")?,
                    from_organization_id: ops(
                        r,
                        "from_organization_id",
                        "an organization id",
                        from_str,
                    )?,
                    from_class_id: ops(r, "from_class_id", "a class id", from_str)?,
                    to_organization_id: ops(
                        r,
                        "to_organization_id",
                        "an organization id",
                        from_str,
                    )?,
                    to_class_id: ops(r, "to_class_id", "a class id", from_str)?,
                    reason: ops(
                        r,
                        "reason",
                        "a reason for leaving",
                        LeaveReason::from_written,
                    )?,
                    order_number: os(r, "order_number")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
    let guardians = sqlx::query(
        "SELECT * FROM register_guardians WHERE learner_id = $1 ORDER BY guardian_snils",
    )
    .bind(&learner_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| -> Result<_> {
        Ok(GuardianRow {
            snils: s(r, "guardian_snils")?,
            surname: s(r, "surname")?,
            name: s(r, "name")?,
            patronymic: os(r, "patronymic")?,
            relation: ps(r, "relation", "a relation", Relation::from_written)?,
            consent_given_on: ps(r, "consent_given_on", "a date", from_str)?,
            consent_document: s(r, "consent_document")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    Ok(Some(LearnerCard {
        learner_id: ps(&row, "learner_id", "a learner id", from_str)?,
        surname: s(&row, "surname")?,
        name: s(&row, "name")?,
        patronymic: os(&row, "patronymic")?,
        sex: ps(&row, "sex", "a sex", Sex::from_written)?,
        birth_date: ps(&row, "birth_date", "a date", from_str)?,
        snils: os(&row, "snils")?,
        birth_record: os(&row, "birth_record")?,
        document: os(&row, "document")?,
        status: s(&row, "status")?,
        status_since: ops(&row, "status_since", "a date", from_str)?,
        died_on: ops(&row, "died_on", "a date", from_str)?,
        enrollments,
        movements,
        guardians,
    }))
}

/// An organization of the directory.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct OrganizationRow {
    /// Organization id.
    #[schema(value_type = uuid::Uuid)]
    pub organization_id: OrganizationId,
    /// Name.
    pub name: String,
    /// Municipality.
    pub municipality: String,
    /// Kind.
    #[schema(value_type = String, example = "school")]
    pub kind: OrganizationKind,
    /// Levels taught.
    #[schema(value_type = Vec<String>)]
    pub levels: Vec<Level>,
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
                organization_id: ps(r, "organization_id", "an organization id", from_str)?,
                name: s(r, "name")?,
                municipality: s(r, "municipality")?,
                kind: ps(
                    r,
                    "kind",
                    "a kind of organization",
                    OrganizationKind::from_written,
                )?,
                levels: levels(&s(r, "levels")?)?,
                learners: n(r, "learners")?,
            })
        })
        .collect()
}

/// The levels of an organization, written comma-separated (none is an empty text); a part that
/// is not a level is an error.
fn levels(written: &str) -> Result<Vec<Level>> {
    written
        .split(',')
        .filter(|x| !x.is_empty())
        .map(|x| {
            Level::from_written(x)
                .ok_or_else(|| undecodable("levels", format!("{x:?} is not a level")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn row(learner_id: &str, birth_date: &str) -> AnyRow {
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect("sqlite::memory:").await.expect("a pool");
        sqlx::query(
            "SELECT $1 AS learner_id, 'Иванова' AS surname, 'Анна' AS name, NULL AS patronymic, \
             $2 AS birth_date, 'registered' AS status",
        )
        .bind(learner_id)
        .bind(birth_date)
        .fetch_one(&pool)
        .await
        .expect("a row")
    }

    #[tokio::test]
    async fn a_learner_whose_id_or_birth_date_does_not_read_as_one_is_an_error() {
        let id = "0192f1a0-7c2e-7d3a-9b1e-3f4a5b6c7d8e";
        let read = summary(&row(id, "2019-03-07").await).expect("a learner");
        assert_eq!(read.learner_id.to_string(), id);
        assert_eq!(
            read.birth_date,
            NaiveDate::from_ymd_opt(2019, 3, 7).expect("a date")
        );
        assert_eq!(
            serde_json::to_value(&read).expect("written")["birth_date"],
            "2019-03-07"
        );
        assert!(
            summary(&row("not a uuid", "2019-03-07").await).is_err(),
            "a learner id that is not a UUID"
        );
        assert!(
            summary(&row(id, "2019-02-30").await).is_err(),
            "a birth date that is no day"
        );
        assert!(
            summary(&row(id, "07.03.2019").await).is_err(),
            "a birth date not written YYYY-MM-DD"
        );
    }

    #[test]
    fn an_organizations_levels_are_each_a_level() {
        assert_eq!(
            levels("general,additional").expect("levels"),
            [Level::General, Level::Additional]
        );
        assert_eq!(levels("").expect("none"), []);
        assert!(levels("general,university").is_err());
    }
}
