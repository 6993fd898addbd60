//! Register of learners: identity, status, current enrollments, movement history, guardians.

use async_trait::async_trait;
use contingent_domain::Event;
use contingent_log::RecordedEvent;
use sqlx::SqliteConnection;

use crate::sql::{date, day_before};
use crate::Projection;

pub(crate) struct Register;

#[allow(clippy::too_many_arguments)]
async fn movement(
    tx: &mut SqliteConnection,
    position: u64,
    learner: String,
    on: String,
    kind: &str,
    from: (Option<String>, Option<String>),
    to: (Option<String>, Option<String>),
    reason: Option<&str>,
    order: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO register_movements (position, learner_id, date, kind, from_organization_id, from_class_id, \
         to_organization_id, to_class_id, reason, order_number) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(position as i64)
    .bind(learner)
    .bind(on)
    .bind(kind)
    .bind(from.0)
    .bind(from.1)
    .bind(to.0)
    .bind(to.1)
    .bind(reason)
    .bind(order)
    .execute(tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Projection for Register {
    fn name(&self) -> &'static str {
        "register"
    }

    fn schema(&self) -> &'static str {
        include_str!("../../../projections/sqlite/register.sql")
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "register_learners",
            "register_organizations",
            "register_classes",
            "register_enrollments",
            "register_movements",
            "register_guardians",
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
                let levels: Vec<&str> = e.levels.iter().map(|l| l.as_str()).collect();
                sqlx::query("INSERT INTO register_organizations VALUES (?, ?, ?, ?, ?)")
                    .bind(e.organization_id.to_string())
                    .bind(e.name.as_str())
                    .bind(e.municipality.as_str())
                    .bind(e.kind.as_str())
                    .bind(levels.join(","))
                    .execute(tx)
                    .await?;
            }
            Event::ClassOpened(e) => {
                sqlx::query("INSERT INTO register_classes VALUES (?, ?, ?, ?, ?, ?)")
                    .bind(e.class_id.to_string())
                    .bind(e.organization_id.to_string())
                    .bind(e.academic_year.to_string())
                    .bind(e.level.as_str())
                    .bind(i64::from(e.grade))
                    .bind(e.name.as_str())
                    .execute(tx)
                    .await?;
            }
            Event::BirthRegistered(e) => {
                sqlx::query(
                    "INSERT INTO register_learners (learner_id, surname, name, patronymic, sex, birth_date, snils, \
                     birth_record, document, status, status_since, died_on, first_position) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'registered', ?, NULL, ?)",
                )
                .bind(e.learner_id.to_string())
                .bind(e.child.surname.as_str())
                .bind(e.child.name.as_str())
                .bind(e.child.patronymic.as_ref().map(|p| p.as_str()))
                .bind(e.sex.as_str())
                .bind(date(e.birth_date))
                .bind(e.snils.map(|s| s.to_string()))
                .bind(format!("{}, № {}, {}", e.record.office, e.record.number, date(e.record.date)))
                .bind(e.certificate.as_ref().map(|c| {
                    format!("{} {}", c.series.as_ref().map(|s| s.as_str()).unwrap_or(""), c.number).trim().to_owned()
                }))
                .bind(date(e.record.date))
                .bind(position as i64)
                .execute(tx)
                .await?;
            }
            Event::LearnerRegistered(e) => {
                sqlx::query(
                    "INSERT INTO register_learners (learner_id, surname, name, patronymic, sex, birth_date, snils, \
                     birth_record, document, status, status_since, died_on, first_position) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, 'registered', ?, NULL, ?)",
                )
                .bind(e.learner_id.to_string())
                .bind(e.person.surname.as_str())
                .bind(e.person.name.as_str())
                .bind(e.person.patronymic.as_ref().map(|p| p.as_str()))
                .bind(e.sex.as_str())
                .bind(date(e.birth_date))
                .bind(e.snils.map(|s| s.to_string()))
                .bind(format!(
                    "{} {} {}",
                    e.document.kind,
                    e.document.series.as_ref().map(|s| s.as_str()).unwrap_or(""),
                    e.document.number
                ))
                .bind(date(recorded.envelope.recorded_at.date_naive()))
                .bind(position as i64)
                .execute(tx)
                .await?;
            }
            Event::SnilsRecorded(e) => {
                sqlx::query("UPDATE register_learners SET snils = ? WHERE learner_id = ?")
                    .bind(e.snils.to_string())
                    .bind(e.learner_id.to_string())
                    .execute(tx)
                    .await?;
            }
            Event::DeathRegistered(e) => {
                let learner = e.learner_id.to_string();
                sqlx::query("UPDATE register_learners SET status = 'deceased', status_since = ?, died_on = ? WHERE learner_id = ?")
                    .bind(date(e.death_date))
                    .bind(date(e.death_date))
                    .bind(&learner)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE register_enrollments SET ended_on = ?, end_reason = 'death' WHERE learner_id = ? AND ended_on IS NULL")
                    .bind(date(e.death_date))
                    .bind(&learner)
                    .execute(&mut *tx)
                    .await?;
                movement(
                    tx,
                    position,
                    learner,
                    date(e.death_date),
                    "died",
                    (None, None),
                    (None, None),
                    None,
                    Some(e.record.number.as_str()),
                )
                .await?;
            }
            Event::GuardianLinked(e) => {
                sqlx::query("INSERT INTO register_guardians VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                    .bind(e.learner_id.to_string())
                    .bind(e.guardian_snils.to_string())
                    .bind(e.guardian.surname.as_str())
                    .bind(e.guardian.name.as_str())
                    .bind(e.guardian.patronymic.as_ref().map(|p| p.as_str()))
                    .bind(e.relation.as_str())
                    .bind(date(e.consent.given_on))
                    .bind(e.consent.document.as_str())
                    .execute(tx)
                    .await?;
            }
            Event::Enrolled(e) => {
                let learner = e.learner_id.to_string();
                sqlx::query("INSERT INTO register_enrollments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)")
                    .bind(e.enrollment_id.to_string())
                    .bind(&learner)
                    .bind(e.organization_id.to_string())
                    .bind(e.class_id.to_string())
                    .bind(e.level.as_str())
                    .bind(i64::from(e.grade))
                    .bind(e.academic_year.to_string())
                    .bind(e.programme.name.as_str())
                    .bind(e.programme.adapted)
                    .bind(e.programme.focus.as_ref().map(|f| f.as_str()))
                    .bind(e.primary)
                    .bind(e.form.as_str())
                    .bind(date(e.enrolled_on))
                    .bind(e.order.number.as_str())
                    .bind(date(e.order.date))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE register_learners SET status = 'enrolled', status_since = ? WHERE learner_id = ?")
                    .bind(date(e.enrolled_on))
                    .bind(&learner)
                    .execute(&mut *tx)
                    .await?;
                movement(
                    tx,
                    position,
                    learner,
                    date(e.enrolled_on),
                    "enrolled",
                    (None, None),
                    (
                        Some(e.organization_id.to_string()),
                        Some(e.class_id.to_string()),
                    ),
                    None,
                    Some(e.order.number.as_str()),
                )
                .await?;
            }
            Event::Transferred(e) => {
                if e.to_enrollment_id == e.from_enrollment_id {
                    sqlx::query("UPDATE register_enrollments SET class_id = ?, grade = ?, academic_year = ? WHERE enrollment_id = ?")
                        .bind(e.to_class_id.to_string())
                        .bind(i64::from(e.grade))
                        .bind(e.academic_year.to_string())
                        .bind(e.from_enrollment_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                } else {
                    sqlx::query(
                        "INSERT INTO register_enrollments SELECT ?, learner_id, ?, ?, level, ?, ?, programme, adapted, focus, \
                         is_primary, form, ?, ?, ?, NULL, NULL FROM register_enrollments WHERE enrollment_id = ?",
                    )
                    .bind(e.to_enrollment_id.to_string())
                    .bind(e.to_organization_id.to_string())
                    .bind(e.to_class_id.to_string())
                    .bind(i64::from(e.grade))
                    .bind(e.academic_year.to_string())
                    .bind(date(e.transferred_on))
                    .bind(e.order.number.as_str())
                    .bind(date(e.order.date))
                    .bind(e.from_enrollment_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE register_enrollments SET ended_on = ?, end_reason = 'transferred' WHERE enrollment_id = ?")
                        .bind(day_before(e.transferred_on))
                        .bind(e.from_enrollment_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                movement(
                    tx,
                    position,
                    e.learner_id.to_string(),
                    date(e.transferred_on),
                    e.kind.as_str(),
                    (
                        Some(e.from_organization_id.to_string()),
                        Some(e.from_class_id.to_string()),
                    ),
                    (
                        Some(e.to_organization_id.to_string()),
                        Some(e.to_class_id.to_string()),
                    ),
                    None,
                    Some(e.order.number.as_str()),
                )
                .await?;
            }
            Event::Left(e) => {
                let learner = e.learner_id.to_string();
                sqlx::query("UPDATE register_enrollments SET ended_on = ?, end_reason = ? WHERE enrollment_id = ?")
                    .bind(date(e.left_on))
                    .bind(e.reason.as_str())
                    .bind(e.enrollment_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE register_learners SET status = 'left', status_since = ? WHERE learner_id = ? AND NOT EXISTS \
                     (SELECT 1 FROM register_enrollments WHERE learner_id = ? AND ended_on IS NULL)",
                )
                .bind(date(e.left_on))
                .bind(&learner)
                .bind(&learner)
                .execute(&mut *tx)
                .await?;
                movement(
                    tx,
                    position,
                    learner,
                    date(e.left_on),
                    "left",
                    (
                        Some(e.organization_id.to_string()),
                        Some(e.class_id.to_string()),
                    ),
                    (None, None),
                    Some(e.reason.as_str()),
                    Some(e.order.number.as_str()),
                )
                .await?;
            }
            Event::ClassCapacityChanged(_)
            | Event::ApplicationSubmitted(_)
            | Event::ApplicationWithdrawn(_)
            | Event::ApplicationRejected(_)
            | Event::MarkRecorded(_)
            | Event::MarkCorrected(_)
            | Event::AttendanceRecorded(_)
            | Event::ExamResultRecorded(_) => {}
        }
        Ok(())
    }
}
