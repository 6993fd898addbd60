//! The registry's domain core: identifiers and value types that cannot hold an invalid value,
//! the catalogue of events, the commands, and the decider that checks every rule.
//!
//! `decide(&State, &Command, today) -> Result<Vec<Event>, DomainError>` and
//! `evolve(State, &Event) -> State` are pure. This crate does no I/O, has no async, and knows
//! nothing of HTTP, SQL or Kafka: the adapters around it do. Values are parsed once at the edge
//! (`Snils::parse`, `Mark::parse`, `Text::parse`...) and travel as types from then on.
#![deny(missing_docs)]

mod command;
mod decide;
mod error;
mod event;
mod ids;
pub mod personal;
mod retention;
mod snils;
mod state;
mod undo;
mod values;

pub use command::{
    ChangeClassCapacity, Command, CorrectMark, Enroll, ErasePersonalData, Leave, PersonRef,
    RecordExamResult, RegisterDeath, RejectApplication, Transfer, UnassignTeacher,
    WithdrawApplication,
};
pub use decide::{
    decide, learner_of, EARLY_ENROLLMENT_DAYS, FUTURE_TOLERANCE_DAYS, GRADE_ONE_MAX_MONTHS,
    GRADE_ONE_MIN_MONTHS, MAX_CAPACITY,
};
pub use error::{DomainError, Refusal};
pub use event::{
    ApplicationRejected, ApplicationSubmitted, ApplicationWithdrawn, AttendanceRecorded,
    BirthRegistered, Certificate, ChainHash, CivilRecord, ClassCapacityChanged, ClassOpened,
    Consent, DeathRegistered, Document, Enrolled, Event, ExamResultRecorded, ExamScore, FullName,
    GuardianLinked, LearnerRegistered, Left, LogMigrated, MarkCorrected, MarkRecorded, Order,
    OrganizationRegistered, PersonalDataErased, Programme, SnilsRecorded, TeacherAssigned,
    TeacherUnassigned, Transferred,
};
pub use ids::{ApplicationId, ClassId, EnrollmentId, LearnerId, MarkId, OrganizationId};
pub use retention::{due_for_erasure, Due, RetentionPolicy};
pub use snils::{Snils, SnilsError};
pub use state::{
    evolve, Application, ApplicationStatus, Assignment, Class, Enrollment, Learner, MarkOrigin,
    MarkRef, Membership, Organization, SnilsOwner, State,
};
pub use undo::Savepoint;
pub use values::{
    age_in_months, AcademicYear, Attendance, EducationForm, ExamForm, LeaveReason, Level, Mark,
    MarkKind, OrganizationKind, Priority, Relation, SecondaryReason, Sex, SourceKind, StayMode,
    Text, TransferKind, ValueError,
};
