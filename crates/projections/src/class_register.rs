//! Class register per class: roster on a date, marks grid, attendance grid.

use async_trait::async_trait;
use contingent_domain::{Event, FullName, LearnerId};
use contingent_log::RecordedEvent;
use sqlx::SqliteConnection;

use crate::sql::{date, day_after};
use crate::Projection;

pub(crate) struct ClassRegister;

async fn person(
    tx: &mut SqliteConnection,
    learner: LearnerId,
    name: &FullName,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO class_register_people VALUES (?, ?, ?, ?)")
        .bind(learner.to_string())
        .bind(name.surname.as_str())
        .bind(name.name.as_str())
        .bind(name.patronymic.as_ref().map(|p| p.as_str()))
        .execute(tx)
        .await?;
    Ok(())
}

async fn join(
    tx: &mut SqliteConnection,
    class: String,
    learner: String,
    from: String,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO class_register_roster VALUES (?, ?, ?, NULL)")
        .bind(class)
        .bind(learner)
        .bind(from)
        .execute(tx)
        .await?;
    Ok(())
}

async fn part(
    tx: &mut SqliteConnection,
    class: String,
    learner: String,
    until: String,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE class_register_roster SET until_date = max(?, from_date) WHERE class_id = ? AND learner_id = ? AND until_date IS NULL")
        .bind(until)
        .bind(class)
        .bind(learner)
        .execute(tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Projection for ClassRegister {
    fn name(&self) -> &'static str {
        "class_register"
    }

    fn schema(&self) -> &'static str {
        include_str!("../../../projections/sqlite/class_register.sql")
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "class_register_classes",
            "class_register_people",
            "class_register_roster",
            "class_register_marks",
            "class_register_attendance",
        ]
    }

    async fn apply(
        &self,
        tx: &mut SqliteConnection,
        recorded: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        match &recorded.envelope.event {
            Event::ClassOpened(e) => {
                sqlx::query("INSERT INTO class_register_classes VALUES (?, ?, ?, ?, ?, ?, ?)")
                    .bind(e.class_id.to_string())
                    .bind(e.organization_id.to_string())
                    .bind(e.academic_year.to_string())
                    .bind(e.level.as_str())
                    .bind(i64::from(e.grade))
                    .bind(e.name.as_str())
                    .bind(i64::from(e.capacity))
                    .execute(tx)
                    .await?;
            }
            Event::ClassCapacityChanged(e) => {
                sqlx::query("UPDATE class_register_classes SET capacity = ? WHERE class_id = ?")
                    .bind(i64::from(e.capacity))
                    .bind(e.class_id.to_string())
                    .execute(tx)
                    .await?;
            }
            Event::BirthRegistered(e) => person(tx, e.learner_id, &e.child).await?,
            Event::LearnerRegistered(e) => person(tx, e.learner_id, &e.person).await?,
            Event::Enrolled(e) => {
                join(
                    tx,
                    e.class_id.to_string(),
                    e.learner_id.to_string(),
                    date(e.enrolled_on),
                )
                .await?
            }
            Event::Transferred(e) => {
                part(
                    tx,
                    e.from_class_id.to_string(),
                    e.learner_id.to_string(),
                    date(e.transferred_on),
                )
                .await?;
                join(
                    tx,
                    e.to_class_id.to_string(),
                    e.learner_id.to_string(),
                    date(e.transferred_on),
                )
                .await?;
            }
            Event::Left(e) => {
                part(
                    tx,
                    e.class_id.to_string(),
                    e.learner_id.to_string(),
                    day_after(e.left_on),
                )
                .await?
            }
            Event::DeathRegistered(e) => {
                sqlx::query("UPDATE class_register_roster SET until_date = max(?, from_date) WHERE learner_id = ? AND until_date IS NULL")
                    .bind(day_after(e.death_date))
                    .bind(e.learner_id.to_string())
                    .execute(tx)
                    .await?;
            }
            Event::MarkRecorded(e) => {
                sqlx::query("INSERT INTO class_register_marks VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                    .bind(e.mark_id.to_string())
                    .bind(e.class_id.to_string())
                    .bind(e.learner_id.to_string())
                    .bind(e.subject.as_str())
                    .bind(date(e.lesson_date))
                    .bind(e.kind.as_str())
                    .bind(e.value.as_str())
                    .bind(i64::from(e.weight))
                    .execute(tx)
                    .await?;
            }
            Event::MarkCorrected(e) => {
                sqlx::query("UPDATE class_register_marks SET value = ? WHERE mark_id = ?")
                    .bind(e.value.as_str())
                    .bind(e.mark_id.to_string())
                    .execute(tx)
                    .await?;
            }
            Event::AttendanceRecorded(e) => {
                sqlx::query("INSERT INTO class_register_attendance VALUES (?, ?, ?, ?, ?, ?)")
                    .bind(recorded.position() as i64)
                    .bind(e.class_id.to_string())
                    .bind(e.learner_id.to_string())
                    .bind(date(e.date))
                    .bind(e.lesson.map(i64::from))
                    .bind(e.status.as_str())
                    .execute(tx)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
