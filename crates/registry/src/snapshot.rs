//! A learner as the registry knew them at a moment: the auditor's "as of" view, folded from the
//! learner's events in log order.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use contingent_domain::{Event, LearnerId};
use contingent_log::RecordedEvent;
use serde::Serialize;

/// An enrollment in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SnapshotEnrollment {
    /// Enrollment id.
    pub enrollment_id: String,
    /// Organization.
    pub organization_id: String,
    /// Class.
    pub class_id: String,
    /// Level.
    pub level: String,
    /// Grade.
    pub grade: u8,
    /// Academic year.
    pub academic_year: String,
    /// Since.
    pub since: NaiveDate,
    /// Last day, when ended.
    pub ended_on: Option<NaiveDate>,
    /// Why it ended.
    pub end_reason: Option<String>,
}

/// An exam result in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SnapshotExam {
    /// Form.
    pub form: String,
    /// Subject.
    pub subject: String,
    /// Date.
    pub exam_date: NaiveDate,
    /// ЕГЭ score.
    pub test_score: Option<u8>,
    /// 5-point mark.
    pub mark: Option<String>,
}

/// What the registry knew of a learner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LearnerSnapshot {
    /// Learner id.
    #[schema(value_type = uuid::Uuid)]
    pub learner_id: LearnerId,
    /// Only facts recorded at or before this instant.
    pub known_at: Option<DateTime<Utc>>,
    /// Only facts that happened on or before this date.
    pub as_of: Option<NaiveDate>,
    /// Events folded.
    pub events: usize,
    /// Position of the last event folded.
    pub last_position: u64,
    /// Full name.
    pub name: String,
    /// Sex.
    pub sex: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// SNILS.
    pub snils: Option<String>,
    /// registered, enrolled, left or deceased.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// Date of death.
    pub died_on: Option<NaiveDate>,
    /// Enrollments.
    pub enrollments: Vec<SnapshotEnrollment>,
    /// SNILS of linked guardians.
    pub guardians: Vec<String>,
    /// Applications and their status.
    #[schema(value_type = BTreeMap<String, String>)]
    pub applications: BTreeMap<String, &'static str>,
    /// Marks recorded, and the current value of each.
    pub marks: BTreeMap<String, String>,
    /// Attendance records.
    pub attendance_records: usize,
    /// Exam results.
    pub exams: Vec<SnapshotExam>,
}

fn full_name(n: &contingent_domain::FullName) -> String {
    match &n.patronymic {
        Some(p) => format!("{} {} {}", n.surname, n.name, p),
        None => format!("{} {}", n.surname, n.name),
    }
}

impl LearnerSnapshot {
    /// Folds a learner's events (in log order), keeping those recorded by `known_at` and
    /// happened by `as_of`. None if no identity fact passes the filter.
    pub fn fold(
        learner_id: LearnerId,
        events: &[RecordedEvent],
        known_at: Option<DateTime<Utc>>,
        as_of: Option<NaiveDate>,
    ) -> Option<Self> {
        let mut snap: Option<Self> = None;
        for recorded in events {
            let env = &recorded.envelope;
            if known_at.is_some_and(|k| env.recorded_at > k)
                || as_of.is_some_and(|d| env.business_date > d)
            {
                continue;
            }
            let blank = |name: String, sex: &str, birth: NaiveDate, snils: Option<String>| Self {
                learner_id,
                known_at,
                as_of,
                events: 0,
                last_position: 0,
                name,
                sex: sex.to_owned(),
                birth_date: birth,
                snils,
                status: "registered",
                died_on: None,
                enrollments: Vec::new(),
                guardians: Vec::new(),
                applications: BTreeMap::new(),
                marks: BTreeMap::new(),
                attendance_records: 0,
                exams: Vec::new(),
            };
            match &env.event {
                Event::BirthRegistered(e) => {
                    snap = Some(blank(
                        full_name(&e.child),
                        e.sex.as_str(),
                        e.birth_date,
                        e.snils.map(|s| s.to_string()),
                    ));
                }
                Event::LearnerRegistered(e) => {
                    snap = Some(blank(
                        full_name(&e.person),
                        e.sex.as_str(),
                        e.birth_date,
                        e.snils.map(|s| s.to_string()),
                    ));
                }
                _ => {}
            }
            let Some(s) = snap.as_mut() else { continue };
            s.events += 1;
            s.last_position = recorded.position();
            match &env.event {
                Event::SnilsRecorded(e) => s.snils = Some(e.snils.to_string()),
                Event::DeathRegistered(e) => {
                    s.status = "deceased";
                    s.died_on = Some(e.death_date);
                    for en in s.enrollments.iter_mut().filter(|en| en.ended_on.is_none()) {
                        en.ended_on = Some(e.death_date);
                        en.end_reason = Some("death".into());
                    }
                }
                Event::GuardianLinked(e) => s.guardians.push(e.guardian_snils.to_string()),
                Event::ApplicationSubmitted(e) => {
                    s.applications
                        .insert(e.application_id.to_string(), "pending");
                }
                Event::ApplicationWithdrawn(e) => {
                    s.applications
                        .insert(e.application_id.to_string(), "withdrawn");
                }
                Event::ApplicationRejected(e) => {
                    s.applications
                        .insert(e.application_id.to_string(), "rejected");
                }
                Event::Enrolled(e) => {
                    s.status = "enrolled";
                    if let Some(app) = e.application_id {
                        s.applications.insert(app.to_string(), "accepted");
                    }
                    s.enrollments.push(SnapshotEnrollment {
                        enrollment_id: e.enrollment_id.to_string(),
                        organization_id: e.organization_id.to_string(),
                        class_id: e.class_id.to_string(),
                        level: e.level.as_str().to_owned(),
                        grade: e.grade,
                        academic_year: e.academic_year.to_string(),
                        since: e.enrolled_on,
                        ended_on: None,
                        end_reason: None,
                    });
                }
                Event::Transferred(e) => {
                    let from = s
                        .enrollments
                        .iter_mut()
                        .find(|en| en.enrollment_id == e.from_enrollment_id.to_string());
                    if e.to_enrollment_id == e.from_enrollment_id {
                        if let Some(en) = from {
                            en.class_id = e.to_class_id.to_string();
                            en.grade = e.grade;
                            en.academic_year = e.academic_year.to_string();
                        }
                    } else {
                        let level = from.as_ref().map(|en| en.level.clone()).unwrap_or_default();
                        if let Some(en) = from {
                            en.ended_on = e.transferred_on.pred_opt();
                            en.end_reason = Some("transferred".into());
                        }
                        s.enrollments.push(SnapshotEnrollment {
                            enrollment_id: e.to_enrollment_id.to_string(),
                            organization_id: e.to_organization_id.to_string(),
                            class_id: e.to_class_id.to_string(),
                            level,
                            grade: e.grade,
                            academic_year: e.academic_year.to_string(),
                            since: e.transferred_on,
                            ended_on: None,
                            end_reason: None,
                        });
                    }
                }
                Event::Left(e) => {
                    if let Some(en) = s
                        .enrollments
                        .iter_mut()
                        .find(|en| en.enrollment_id == e.enrollment_id.to_string())
                    {
                        en.ended_on = Some(e.left_on);
                        en.end_reason = Some(e.reason.as_str().to_owned());
                    }
                    if s.enrollments.iter().all(|en| en.ended_on.is_some()) {
                        s.status = "left";
                    }
                }
                Event::MarkRecorded(e) => {
                    s.marks
                        .insert(e.mark_id.to_string(), e.value.as_str().to_owned());
                }
                Event::MarkCorrected(e) => {
                    s.marks
                        .insert(e.mark_id.to_string(), e.value.as_str().to_owned());
                }
                Event::AttendanceRecorded(_) => s.attendance_records += 1,
                Event::ExamResultRecorded(e) => s.exams.push(SnapshotExam {
                    form: e.form.as_str().to_owned(),
                    subject: e.subject.to_string(),
                    exam_date: e.exam_date,
                    test_score: e.result.test_score(),
                    mark: e.result.mark().map(|m| m.as_str().to_owned()),
                }),
                _ => {}
            }
        }
        snap
    }
}
