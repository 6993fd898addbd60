//! The federal segment's register and counts.

use chrono::NaiveDate;
use contingent_domain::{
    AcademicYear, EducationForm, EnrollmentId, LearnerId, Level, OrganizationId, Sex,
};
use serde::Serialize;
use sqlx::AnyPool;
use utoipa::ToSchema;

use super::{from_str, n, ops, os, ps, s, Result};

/// A learner in the federal segment's shape.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FederalLearner {
    /// Learner id.
    #[schema(value_type = uuid::Uuid)]
    pub learner_id: LearnerId,
    /// Sex.
    #[schema(value_type = String, example = "male")]
    pub sex: Sex,
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
    #[schema(value_type = uuid::Uuid)]
    pub enrollment_id: EnrollmentId,
    /// Organization id.
    #[schema(value_type = uuid::Uuid)]
    pub organization_id: OrganizationId,
    /// Municipality.
    pub municipality: String,
    /// Level.
    #[schema(value_type = String, example = "general")]
    pub level: Level,
    /// Grade or age group.
    pub grade: i64,
    /// Academic year.
    pub academic_year: String,
    /// Form of education.
    #[schema(value_type = String, example = "full_time")]
    pub form: EducationForm,
    /// Adapted programme.
    pub adapted: bool,
    /// Enrolled on.
    pub enrolled_on: NaiveDate,
    /// Ended on.
    pub ended_on: Option<NaiveDate>,
    /// Why it ended: a reason for leaving, `death` or `transferred`.
    pub end_reason: Option<String>,
}

/// A page of the federal register, by learner id after `after`.
pub async fn federal_register(
    pool: &AnyPool,
    after: Option<LearnerId>,
    limit: i64,
) -> Result<Vec<FederalLearner>> {
    // Every learner id is after the empty text.
    let after = after.map_or_else(String::new, |a| a.to_string());
    let learners = sqlx::query(
        "SELECT * FROM federal_learners WHERE learner_id > $1 ORDER BY learner_id LIMIT $2",
    )
    .bind(&after)
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?;
    // The page's enrollments in one query, not one per learner.
    let mut enrollments: std::collections::HashMap<LearnerId, Vec<FederalEnrollment>> =
        std::collections::HashMap::new();
    for r in sqlx::query(
        "SELECT * FROM federal_enrollments WHERE learner_id IN \
         (SELECT learner_id FROM federal_learners WHERE learner_id > $1 ORDER BY learner_id LIMIT $2) \
         ORDER BY learner_id, enrolled_on, enrollment_id",
    )
    .bind(&after)
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?
    {
        enrollments
            .entry(ps(&r, "learner_id", "a learner id", from_str)?)
            .or_default()
            .push(FederalEnrollment {
            enrollment_id: ps(&r, "enrollment_id", "an enrollment id", from_str)?,
            organization_id: ps(&r, "organization_id", "an organization id", from_str)?,
            municipality: s(&r, "municipality")?,
            level: ps(&r, "level", "a level", Level::from_written)?,
            grade: n(&r, "grade")?,
            academic_year: s(&r, "academic_year")?,
            form: ps(&r, "form", "a form of education", EducationForm::from_written)?,
            adapted: n(&r, "adapted")? != 0,
            enrolled_on: ps(&r, "enrolled_on", "a date", from_str)?,
            ended_on: ops(&r, "ended_on", "a date", from_str)?,
            end_reason: os(&r, "end_reason")?,
        });
    }
    learners
        .iter()
        .map(|l| -> Result<_> {
            Ok({
                let id = ps(l, "learner_id", "a learner id", from_str)?;
                FederalLearner {
                    enrollments: enrollments.remove(&id).unwrap_or_default(),
                    learner_id: id,
                    sex: ps(l, "sex", "a sex", Sex::from_written)?,
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
    #[schema(value_type = Option<uuid::Uuid>)]
    pub organization_id: Option<OrganizationId>,
    /// Level, when grouped by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "general")]
    pub level: Option<Level>,
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
    academic_year: Option<AcademicYear>,
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
        .bind(academic_year.map(|y| y.to_string()))
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
                    .then(|| ps(r, "organization_id", "an organization id", from_str))
                    .transpose()?,
                level: dims
                    .contains(&CountDimension::Level)
                    .then(|| ps(r, "level", "a level", Level::from_written))
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
