//! Why a command was refused. Every variant has a stable machine-readable code (its `code()`),
//! which the API puts in its problem documents and which never changes meaning.

use chrono::NaiveDate;

use crate::ids::{ApplicationId, ClassId, EnrollmentId, LearnerId, MarkId, OrganizationId};
use crate::snils::Snils;

/// What kind of refusal: the API maps it to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Something named by the command does not exist.
    NotFound,
    /// The command conflicts with the registry's current state (full class, second enrollment...).
    Conflict,
    /// The command itself is impossible (dates, ages, scores).
    Invalid,
}

/// A command broke a rule of the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// No learner with this id (or SNILS, or birth record).
    #[error("learner {0} is not in the registry")]
    LearnerNotFound(String),
    /// No such organization.
    #[error("organization {0} is not in the registry")]
    OrganizationNotFound(OrganizationId),
    /// No such class or group.
    #[error("class {0} is not in the registry")]
    ClassNotFound(ClassId),
    /// No such application.
    #[error("application {0} is not in the registry")]
    ApplicationNotFound(ApplicationId),
    /// No such enrollment of this learner.
    #[error("enrollment {0} is not an enrollment of this learner")]
    EnrollmentNotFound(EnrollmentId),
    /// No such mark.
    #[error("mark {0} is not in the registry")]
    MarkNotFound(MarkId),
    /// The id is taken.
    #[error("{what} {id} already exists")]
    AlreadyExists {
        /// What kind of entity.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A fact about a learner who has died.
    #[error("learner {learner} died on {on}; no later facts can be recorded")]
    LearnerDeceased {
        /// The learner.
        learner: LearnerId,
        /// Date of death.
        on: NaiveDate,
    },
    /// A fact about a learner after they left.
    #[error("learner {learner} left on {on}; only a new enrollment can follow")]
    LearnerLeft {
        /// The learner.
        learner: LearnerId,
        /// Date of leaving.
        on: NaiveDate,
    },
    /// A second active primary general-education enrollment.
    #[error("learner already has an active primary general-education enrollment ({0})")]
    SecondPrimaryEnrollment(EnrollmentId),
    /// Already in this class.
    #[error("learner is already enrolled in class {0}")]
    AlreadyInClass(ClassId),
    /// No free place.
    #[error("class {class} is full: {capacity} places, all taken")]
    ClassFull {
        /// The class.
        class: ClassId,
        /// Its capacity.
        capacity: u16,
    },
    /// A capacity below the number already enrolled would make vacancies negative.
    #[error("capacity {capacity} is below the {enrolled} learners enrolled")]
    CapacityBelowEnrolled {
        /// Asked capacity.
        capacity: u16,
        /// Enrolled now.
        enrolled: u16,
    },
    /// Capacity out of range.
    #[error("capacity must be between 1 and {max}")]
    InvalidCapacity {
        /// The largest capacity.
        max: u16,
    },
    /// A mark or attendance for a learner not in the class on that date.
    #[error("learner {learner} is not in class {class} on {date}")]
    NotInClass {
        /// The learner.
        learner: LearnerId,
        /// The class.
        class: ClassId,
        /// The date.
        date: NaiveDate,
    },
    /// A date before the learner's birth.
    #[error("{what} {date} is before the learner's birth on {birth}")]
    BeforeBirth {
        /// Which date.
        what: &'static str,
        /// The date.
        date: NaiveDate,
        /// Date of birth.
        birth: NaiveDate,
    },
    /// A date too far in the future.
    #[error("{what} {date} is in the future")]
    InFuture {
        /// Which date.
        what: &'static str,
        /// The date.
        date: NaiveDate,
    },
    /// A date that does not fit the other dates of the fact.
    #[error("{0}")]
    DateOutOfRange(String),
    /// The grade-1 age rule: 6 years 6 months to 8 years on 1 September.
    #[error("on 1 September the child is {years} years {months} months old; grade 1 takes 6 years 6 months to 8 years unless an exemption is recorded")]
    GradeOneAge {
        /// Whole years.
        years: i32,
        /// And months.
        months: i32,
    },
    /// A secondary enrollment without a reason the rules recognize for its level, or a primary
    /// one with a reason.
    #[error("{0}")]
    SecondaryReason(String),
    /// Preschool groups take children from 2 months to 8 years.
    #[error("preschool groups take children from 2 months to 8 years")]
    PreschoolAge,
    /// The organization does not teach this level.
    #[error("the organization does not teach {0}")]
    LevelNotTaught(&'static str),
    /// Levels do not fit the kind of organization, or a grade does not fit the level.
    #[error("{0}")]
    Invalid(String),
    /// A SNILS already belongs to another person.
    #[error("SNILS {0} belongs to another person")]
    SnilsTaken(Snils),
    /// The learner already has another SNILS.
    #[error("the learner already has SNILS {0}")]
    SnilsAlreadyRecorded(Snils),
    /// The same civil registry record was reported with different contents.
    #[error("civil registry record {0} was already reported with different contents")]
    CivilRecordConflict(String),
    /// The guardian is already linked to this learner.
    #[error("this guardian is already linked to the learner")]
    GuardianAlreadyLinked,
    /// The application is no longer pending.
    #[error("application {0} is no longer pending")]
    ApplicationNotPending(ApplicationId),
    /// A pending application for the same place exists.
    #[error("application {0} for the same organization, level and year is already pending")]
    ApplicationAlreadyPending(ApplicationId),
    /// The application does not match the enrollment.
    #[error("application {0} is for another learner, organization or level")]
    ApplicationMismatch(ApplicationId),
    /// The enrollment has ended.
    #[error("enrollment {0} has ended")]
    EnrollmentNotActive(EnrollmentId),
    /// A transfer that does not fit its kind.
    #[error("{0}")]
    InvalidTransfer(String),
    /// The exam does not fit the learner's grade.
    #[error("{0}")]
    ExamNotAllowed(String),
    /// Points or scores out of range or missing for the exam form.
    #[error("{0}")]
    InvalidExamResult(String),
    /// A correction that changes nothing.
    #[error("the mark is already {0}")]
    MarkUnchanged(&'static str),
    /// New personal data about a learner whose personal data was erased.
    #[error("the personal data of learner {0} was erased; no new personal data can be recorded")]
    PersonalDataErased(LearnerId),
}

impl DomainError {
    /// Every code a rule can refuse with.
    pub const CODES: &'static [&'static str] = &[
        "learner_not_found",
        "organization_not_found",
        "class_not_found",
        "application_not_found",
        "enrollment_not_found",
        "mark_not_found",
        "already_exists",
        "learner_deceased",
        "learner_left",
        "second_primary_enrollment",
        "already_in_class",
        "class_full",
        "capacity_below_enrolled",
        "invalid_capacity",
        "learner_not_in_class",
        "date_before_birth",
        "date_in_future",
        "date_out_of_range",
        "grade_one_age_rule",
        "preschool_age_rule",
        "secondary_enrollment_reason",
        "level_not_taught",
        "invalid_value",
        "snils_belongs_to_another_person",
        "snils_already_recorded",
        "civil_record_conflict",
        "guardian_already_linked",
        "application_not_pending",
        "application_already_pending",
        "application_mismatch",
        "enrollment_not_active",
        "invalid_transfer",
        "exam_not_allowed",
        "invalid_exam_result",
        "mark_unchanged",
        "personal_data_erased",
    ];

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::LearnerNotFound(_) => "learner_not_found",
            Self::OrganizationNotFound(_) => "organization_not_found",
            Self::ClassNotFound(_) => "class_not_found",
            Self::ApplicationNotFound(_) => "application_not_found",
            Self::EnrollmentNotFound(_) => "enrollment_not_found",
            Self::MarkNotFound(_) => "mark_not_found",
            Self::AlreadyExists { .. } => "already_exists",
            Self::LearnerDeceased { .. } => "learner_deceased",
            Self::LearnerLeft { .. } => "learner_left",
            Self::SecondPrimaryEnrollment(_) => "second_primary_enrollment",
            Self::AlreadyInClass(_) => "already_in_class",
            Self::ClassFull { .. } => "class_full",
            Self::CapacityBelowEnrolled { .. } => "capacity_below_enrolled",
            Self::InvalidCapacity { .. } => "invalid_capacity",
            Self::NotInClass { .. } => "learner_not_in_class",
            Self::BeforeBirth { .. } => "date_before_birth",
            Self::InFuture { .. } => "date_in_future",
            Self::DateOutOfRange(_) => "date_out_of_range",
            Self::GradeOneAge { .. } => "grade_one_age_rule",
            Self::PreschoolAge => "preschool_age_rule",
            Self::SecondaryReason(_) => "secondary_enrollment_reason",
            Self::LevelNotTaught(_) => "level_not_taught",
            Self::Invalid(_) => "invalid_value",
            Self::SnilsTaken(_) => "snils_belongs_to_another_person",
            Self::SnilsAlreadyRecorded(_) => "snils_already_recorded",
            Self::CivilRecordConflict(_) => "civil_record_conflict",
            Self::GuardianAlreadyLinked => "guardian_already_linked",
            Self::ApplicationNotPending(_) => "application_not_pending",
            Self::ApplicationAlreadyPending(_) => "application_already_pending",
            Self::ApplicationMismatch(_) => "application_mismatch",
            Self::EnrollmentNotActive(_) => "enrollment_not_active",
            Self::InvalidTransfer(_) => "invalid_transfer",
            Self::ExamNotAllowed(_) => "exam_not_allowed",
            Self::InvalidExamResult(_) => "invalid_exam_result",
            Self::MarkUnchanged(_) => "mark_unchanged",
            Self::PersonalDataErased(_) => "personal_data_erased",
        }
    }

    /// What kind of refusal it is.
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::LearnerNotFound(_)
            | Self::OrganizationNotFound(_)
            | Self::ClassNotFound(_)
            | Self::ApplicationNotFound(_)
            | Self::EnrollmentNotFound(_)
            | Self::MarkNotFound(_) => Refusal::NotFound,
            Self::BeforeBirth { .. }
            | Self::InFuture { .. }
            | Self::DateOutOfRange(_)
            | Self::GradeOneAge { .. }
            | Self::PreschoolAge
            | Self::SecondaryReason(_)
            | Self::Invalid(_)
            | Self::InvalidCapacity { .. }
            | Self::InvalidExamResult(_)
            | Self::InvalidTransfer(_) => Refusal::Invalid,
            _ => Refusal::Conflict,
        }
    }
}
