//! The register in the federal segment's shape, and the rows that counts by municipality,
//! organization, level and grade are taken from.

use async_trait::async_trait;
use chrono::Datelike;
use contingent_domain::Event;
use contingent_log::RecordedEvent;
use sqlx::SqliteConnection;

use crate::sql::{date, day_before};
use crate::Projection;

pub(crate) struct Federal;

async fn status(
    tx: &mut SqliteConnection,
    learner: &str,
    status: &str,
    position: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE federal_learners SET status = ?, last_position = ? WHERE learner_id = ?")
        .bind(status)
        .bind(position as i64)
        .bind(learner)
        .execute(tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Projection for Federal {
    fn name(&self) -> &'static str {
        "federal"
    }

    fn schema(&self) -> &'static str {
        include_str!("../../../projections/sqlite/federal.sql")
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "federal_organizations",
            "federal_learners",
            "federal_enrollments",
        ]
    }

    async fn apply(
        &self,
        tx: &mut SqliteConnection,
        recorded: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        let position = recorded.position();
        match &recorded.envelope.event {
            Event::OrganizationRegistered(e) => {
                sqlx::query("INSERT INTO federal_organizations VALUES (?, ?, ?)")
                    .bind(e.organization_id.to_string())
                    .bind(e.municipality.as_str())
                    .bind(e.kind.as_str())
                    .execute(tx)
                    .await?;
            }
            Event::BirthRegistered(e) => {
                sqlx::query("INSERT INTO federal_learners VALUES (?, ?, ?, 'registered', ?)")
                    .bind(e.learner_id.to_string())
                    .bind(e.sex.as_str())
                    .bind(i64::from(e.birth_date.year()))
                    .bind(position as i64)
                    .execute(tx)
                    .await?;
            }
            Event::LearnerRegistered(e) => {
                sqlx::query("INSERT INTO federal_learners VALUES (?, ?, ?, 'registered', ?)")
                    .bind(e.learner_id.to_string())
                    .bind(e.sex.as_str())
                    .bind(i64::from(e.birth_date.year()))
                    .bind(position as i64)
                    .execute(tx)
                    .await?;
            }
            Event::DeathRegistered(e) => {
                let learner = e.learner_id.to_string();
                status(tx, &learner, "deceased", position).await?;
                sqlx::query("UPDATE federal_enrollments SET ended_on = ?, end_reason = 'death' WHERE learner_id = ? AND ended_on IS NULL")
                    .bind(date(e.death_date))
                    .bind(&learner)
                    .execute(tx)
                    .await?;
            }
            Event::Enrolled(e) => {
                let learner = e.learner_id.to_string();
                sqlx::query(
                    "INSERT INTO federal_enrollments SELECT ?, ?, ?, municipality, ?, ?, ?, ?, ?, ?, NULL, NULL \
                     FROM federal_organizations WHERE organization_id = ?",
                )
                .bind(e.enrollment_id.to_string())
                .bind(&learner)
                .bind(e.organization_id.to_string())
                .bind(e.level.as_str())
                .bind(i64::from(e.grade))
                .bind(e.academic_year.to_string())
                .bind(e.form.as_str())
                .bind(e.programme.adapted)
                .bind(date(e.enrolled_on))
                .bind(e.organization_id.to_string())
                .execute(&mut *tx)
                .await?;
                status(tx, &learner, "enrolled", position).await?;
            }
            Event::Transferred(e) => {
                if e.to_enrollment_id == e.from_enrollment_id {
                    sqlx::query("UPDATE federal_enrollments SET grade = ?, academic_year = ? WHERE enrollment_id = ?")
                        .bind(i64::from(e.grade))
                        .bind(e.academic_year.to_string())
                        .bind(e.from_enrollment_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                } else {
                    sqlx::query(
                        "INSERT INTO federal_enrollments SELECT ?, f.learner_id, ?, o.municipality, f.level, ?, ?, f.form, f.adapted, ?, NULL, NULL \
                         FROM federal_enrollments f JOIN federal_organizations o ON o.organization_id = ? WHERE f.enrollment_id = ?",
                    )
                    .bind(e.to_enrollment_id.to_string())
                    .bind(e.to_organization_id.to_string())
                    .bind(i64::from(e.grade))
                    .bind(e.academic_year.to_string())
                    .bind(date(e.transferred_on))
                    .bind(e.to_organization_id.to_string())
                    .bind(e.from_enrollment_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE federal_enrollments SET ended_on = ?, end_reason = 'transferred' WHERE enrollment_id = ?")
                        .bind(day_before(e.transferred_on))
                        .bind(e.from_enrollment_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("UPDATE federal_learners SET last_position = ? WHERE learner_id = ?")
                    .bind(position as i64)
                    .bind(e.learner_id.to_string())
                    .execute(tx)
                    .await?;
            }
            Event::Left(e) => {
                let learner = e.learner_id.to_string();
                sqlx::query("UPDATE federal_enrollments SET ended_on = ?, end_reason = ? WHERE enrollment_id = ?")
                    .bind(date(e.left_on))
                    .bind(e.reason.as_str())
                    .bind(e.enrollment_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                let active: (i64,) = sqlx::query_as("SELECT count(*) FROM federal_enrollments WHERE learner_id = ? AND ended_on IS NULL")
                    .bind(&learner)
                    .fetch_one(&mut *tx)
                    .await?;
                let next = if active.0 == 0 { "left" } else { "enrolled" };
                status(tx, &learner, next, position).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
