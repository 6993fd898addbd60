//! Diary per learner: marks by subject and period, attendance, exam results.

use async_trait::async_trait;
use contingent_domain::Event;
use contingent_log::RecordedEvent;
use sqlx::SqliteConnection;

use crate::sql::{date, term};
use crate::Projection;

pub(crate) struct Diary;

#[async_trait]
impl Projection for Diary {
    fn name(&self) -> &'static str {
        "diary"
    }

    fn schema(&self) -> &'static str {
        include_str!("../../../projections/sqlite/diary.sql")
    }

    fn tables(&self) -> &'static [&'static str] {
        &["diary_marks", "diary_attendance", "diary_exams"]
    }

    async fn apply(
        &self,
        tx: &mut SqliteConnection,
        recorded: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        match &recorded.envelope.event {
            Event::MarkRecorded(e) => {
                let period = e
                    .period
                    .as_ref()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| term(e.lesson_date).to_owned());
                sqlx::query(
                    "INSERT INTO diary_marks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                )
                .bind(e.mark_id.to_string())
                .bind(e.learner_id.to_string())
                .bind(e.class_id.to_string())
                .bind(e.subject.as_str())
                .bind(date(e.lesson_date))
                .bind(period)
                .bind(e.kind.as_str())
                .bind(e.work.as_str())
                .bind(e.value.as_str())
                .bind(e.value.points().map(i64::from))
                .bind(i64::from(e.weight))
                .bind(e.teacher.as_str())
                .bind(e.value.as_str())
                .execute(tx)
                .await?;
            }
            Event::MarkCorrected(e) => {
                sqlx::query("UPDATE diary_marks SET value = ?, points = ?, corrections = corrections + 1 WHERE mark_id = ?")
                    .bind(e.value.as_str())
                    .bind(e.value.points().map(i64::from))
                    .bind(e.mark_id.to_string())
                    .execute(tx)
                    .await?;
            }
            Event::AttendanceRecorded(e) => {
                sqlx::query("INSERT INTO diary_attendance VALUES (?, ?, ?, ?, ?, ?)")
                    .bind(recorded.position() as i64)
                    .bind(e.learner_id.to_string())
                    .bind(e.class_id.to_string())
                    .bind(date(e.date))
                    .bind(e.lesson.map(i64::from))
                    .bind(e.status.as_str())
                    .execute(tx)
                    .await?;
            }
            Event::ExamResultRecorded(e) => {
                sqlx::query("INSERT INTO diary_exams VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
                    .bind(recorded.position() as i64)
                    .bind(e.learner_id.to_string())
                    .bind(e.form.as_str())
                    .bind(e.subject.as_str())
                    .bind(date(e.exam_date))
                    .bind(i64::from(e.grade))
                    .bind(i64::from(e.primary_points))
                    .bind(e.test_score.map(i64::from))
                    .bind(e.mark.map(|m| m.as_str()))
                    .execute(tx)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
