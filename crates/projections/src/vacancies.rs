//! Vacancies and queues: capacity, enrolled and free places per class or group; applications
//! with the date a decision is due.

use async_trait::async_trait;
use chrono::{Days, NaiveDate};
use contingent_domain::{ApplicationSubmitted, Event, Level};
use contingent_log::RecordedEvent;
use sqlx::SqliteConnection;

use crate::sql::date;
use crate::Projection;

pub(crate) struct Vacancies;

/// Days an organization has to decide on an application, by level.
pub const DECISION_DAYS_GENERAL: u64 = 30;

/// When a decision on an application is due: for a kindergarten place, the desired start date
/// (or 1 September of the year asked for); for the other levels, 30 days after submission.
pub fn due_on(e: &ApplicationSubmitted) -> NaiveDate {
    match e.level {
        Level::Preschool => e
            .desired_start
            .unwrap_or_else(|| e.academic_year.first_day()),
        _ => e
            .submitted_on
            .checked_add_days(Days::new(DECISION_DAYS_GENERAL))
            .unwrap_or(e.submitted_on),
    }
}

async fn shift(tx: &mut SqliteConnection, class: String, delta: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE vacancy_classes SET enrolled = enrolled + ? WHERE class_id = ?")
        .bind(delta)
        .bind(class)
        .execute(tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Projection for Vacancies {
    fn name(&self) -> &'static str {
        "vacancies"
    }

    fn schema(&self) -> &'static str {
        include_str!("../../../projections/sqlite/vacancies.sql")
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "vacancy_organizations",
            "vacancy_classes",
            "vacancy_placements",
            "vacancy_applications",
        ]
    }

    async fn apply(
        &self,
        tx: &mut SqliteConnection,
        recorded: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        match &recorded.envelope.event {
            Event::OrganizationRegistered(e) => {
                sqlx::query("INSERT INTO vacancy_organizations VALUES (?, ?, ?, ?)")
                    .bind(e.organization_id.to_string())
                    .bind(e.name.as_str())
                    .bind(e.municipality.as_str())
                    .bind(e.kind.as_str())
                    .execute(tx)
                    .await?;
            }
            Event::ClassOpened(e) => {
                sqlx::query("INSERT INTO vacancy_classes VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)")
                    .bind(e.class_id.to_string())
                    .bind(e.organization_id.to_string())
                    .bind(e.academic_year.to_string())
                    .bind(e.level.as_str())
                    .bind(i64::from(e.grade))
                    .bind(e.name.as_str())
                    .bind(e.stay_mode.map(|s| s.as_str()))
                    .bind(i64::from(e.capacity))
                    .execute(tx)
                    .await?;
            }
            Event::ClassCapacityChanged(e) => {
                sqlx::query("UPDATE vacancy_classes SET capacity = ? WHERE class_id = ?")
                    .bind(i64::from(e.capacity))
                    .bind(e.class_id.to_string())
                    .execute(tx)
                    .await?;
            }
            Event::ApplicationSubmitted(e) => {
                sqlx::query("INSERT INTO vacancy_applications VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, NULL)")
                    .bind(e.application_id.to_string())
                    .bind(e.learner_id.to_string())
                    .bind(e.organization_id.to_string())
                    .bind(e.level.as_str())
                    .bind(e.academic_year.to_string())
                    .bind(i64::from(e.grade))
                    .bind(e.class_id.map(|c| c.to_string()))
                    .bind(date(e.submitted_on))
                    .bind(e.desired_start.map(date))
                    .bind(e.priority.as_str())
                    .bind(date(due_on(e)))
                    .execute(tx)
                    .await?;
            }
            Event::ApplicationWithdrawn(e) => {
                sqlx::query("UPDATE vacancy_applications SET status = 'withdrawn', decided_on = ?, reason = ? WHERE application_id = ?")
                    .bind(date(e.withdrawn_on))
                    .bind(e.reason.as_ref().map(|r| r.as_str()))
                    .bind(e.application_id.to_string())
                    .execute(tx)
                    .await?;
            }
            Event::ApplicationRejected(e) => {
                sqlx::query("UPDATE vacancy_applications SET status = 'rejected', decided_on = ?, reason = ? WHERE application_id = ?")
                    .bind(date(e.rejected_on))
                    .bind(e.reason.as_str())
                    .bind(e.application_id.to_string())
                    .execute(tx)
                    .await?;
            }
            Event::Enrolled(e) => {
                shift(tx, e.class_id.to_string(), 1).await?;
                sqlx::query("INSERT INTO vacancy_placements VALUES (?, ?, ?)")
                    .bind(e.enrollment_id.to_string())
                    .bind(e.learner_id.to_string())
                    .bind(e.class_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                if let Some(app) = e.application_id {
                    sqlx::query("UPDATE vacancy_applications SET status = 'accepted', decided_on = ? WHERE application_id = ?")
                        .bind(date(e.enrolled_on))
                        .bind(app.to_string())
                        .execute(tx)
                        .await?;
                }
            }
            Event::Transferred(e) => {
                shift(tx, e.from_class_id.to_string(), -1).await?;
                shift(tx, e.to_class_id.to_string(), 1).await?;
                sqlx::query("DELETE FROM vacancy_placements WHERE enrollment_id = ?")
                    .bind(e.from_enrollment_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO vacancy_placements VALUES (?, ?, ?)")
                    .bind(e.to_enrollment_id.to_string())
                    .bind(e.learner_id.to_string())
                    .bind(e.to_class_id.to_string())
                    .execute(tx)
                    .await?;
            }
            Event::Left(e) => {
                let freed: Option<(String,)> = sqlx::query_as(
                    "DELETE FROM vacancy_placements WHERE enrollment_id = ? RETURNING class_id",
                )
                .bind(e.enrollment_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((class,)) = freed {
                    shift(tx, class, -1).await?;
                }
            }
            Event::DeathRegistered(e) => {
                let freed: Vec<(String,)> = sqlx::query_as(
                    "DELETE FROM vacancy_placements WHERE learner_id = ? RETURNING class_id",
                )
                .bind(e.learner_id.to_string())
                .fetch_all(&mut *tx)
                .await?;
                for (class,) in freed {
                    shift(tx, class, -1).await?;
                }
                sqlx::query("UPDATE vacancy_applications SET status = 'withdrawn', decided_on = ?, reason = 'death' WHERE learner_id = ? AND status = 'pending'")
                    .bind(date(e.death_date))
                    .bind(e.learner_id.to_string())
                    .execute(tx)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
