//! The federal segment's register and counts.

use serde::Serialize;
use sqlx::AnyPool;
use utoipa::ToSchema;

use super::{n, os, s, Result};

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
