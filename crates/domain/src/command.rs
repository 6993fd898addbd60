//! Commands: what a caller asks the registry to record. A command that creates an entity carries
//! the new entity's id (generated at the edge), so that deciding stays pure and a retried command
//! names the same entity. Commands whose payload is the fact itself reuse the event's struct.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::event::{
    ApplicationSubmitted, AttendanceRecorded, BirthRegistered, Certificate, CivilRecord,
    ClassOpened, GuardianLinked, LearnerRegistered, MarkRecorded, Order, OrganizationRegistered,
    Programme, SnilsRecorded, TeacherAssigned,
};
use crate::ids::{ApplicationId, ClassId, EnrollmentId, LearnerId, MarkId};
use crate::snils::Snils;
use crate::values::{
    EducationForm, ExamForm, LeaveReason, Mark, SecondaryReason, Text, TransferKind,
};

/// How the civil registry names a person it reports a death of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PersonRef {
    /// By the registry's learner id.
    LearnerId(LearnerId),
    /// By SNILS.
    Snils(Snils),
    /// By the birth record the civil registry made.
    BirthRecord {
        /// Office that made the birth record.
        office: Text,
        /// Record number.
        number: Text,
    },
}

/// End a teacher's assignment to a class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnassignTeacher {
    /// The class.
    pub class_id: ClassId,
    /// The teacher's account.
    pub teacher: Text,
    /// Last day.
    pub until: NaiveDate,
}

/// Change the capacity of a class or group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeClassCapacity {
    /// The class.
    pub class_id: ClassId,
    /// The new capacity.
    pub capacity: u16,
    /// Why.
    #[serde(default)]
    pub reason: Option<Text>,
}

/// Register a death reported by the civil registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterDeath {
    /// Who died.
    pub person: PersonRef,
    /// The death record.
    pub record: CivilRecord,
    /// Date of death.
    pub death_date: NaiveDate,
}

/// Withdraw an application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawApplication {
    /// The application.
    pub application_id: ApplicationId,
    /// Date withdrawn.
    pub withdrawn_on: NaiveDate,
    /// Reason given.
    #[serde(default)]
    pub reason: Option<Text>,
}

/// Reject an application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectApplication {
    /// The application.
    pub application_id: ApplicationId,
    /// Date rejected.
    pub rejected_on: NaiveDate,
    /// The reason.
    pub reason: Text,
}

/// Enroll a learner into a class or group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enroll {
    /// The new enrollment's id.
    pub enrollment_id: EnrollmentId,
    /// The learner.
    pub learner_id: LearnerId,
    /// The class or group; it names the organization, level, grade and year.
    pub class_id: ClassId,
    /// The programme.
    pub programme: Programme,
    /// The primary enrollment of its level.
    #[serde(default = "yes")]
    pub primary: bool,
    /// Why a secondary enrollment (`primary: false`) is made: required for one, absent for a
    /// primary enrollment.
    #[serde(default)]
    pub secondary_reason: Option<SecondaryReason>,
    /// Form of education.
    #[serde(default = "full_time")]
    pub form: EducationForm,
    /// Date of enrollment.
    pub enrolled_on: NaiveDate,
    /// The enrollment order.
    pub order: Order,
    /// The application it satisfies.
    #[serde(default)]
    pub application_id: Option<ApplicationId>,
    /// Document granting an exemption from the grade-1 age rule.
    #[serde(default)]
    pub age_exemption: Option<Text>,
}

fn yes() -> bool {
    true
}

fn full_time() -> EducationForm {
    EducationForm::FullTime
}

/// Move a learner to another class, the next grade, or another organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The learner.
    pub learner_id: LearnerId,
    /// The enrollment moved.
    pub enrollment_id: EnrollmentId,
    /// Kind of transfer.
    pub kind: TransferKind,
    /// The class moved to.
    pub to_class_id: ClassId,
    /// The id of the enrollment in the receiving organization (transfers to another organization).
    #[serde(default)]
    pub to_enrollment_id: Option<EnrollmentId>,
    /// First day in the new class.
    pub transferred_on: NaiveDate,
    /// The order.
    pub order: Order,
}

/// Correct a mark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectMark {
    /// The mark corrected.
    pub mark_id: MarkId,
    /// The new value.
    pub value: Mark,
    /// Why.
    pub reason: Text,
    /// The teacher correcting it.
    pub teacher: Text,
}

/// Record a result of the state final attestation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordExamResult {
    /// The learner.
    pub learner_id: LearnerId,
    /// ОГЭ, ЕГЭ or ГВЭ.
    pub form: ExamForm,
    /// Subject.
    pub subject: Text,
    /// Date of the exam.
    pub exam_date: NaiveDate,
    /// Primary points.
    pub primary_points: u16,
    /// ЕГЭ test score 0–100.
    #[serde(default)]
    pub test_score: Option<u8>,
    /// The 5-point mark (ОГЭ, ГВЭ).
    #[serde(default)]
    pub mark: Option<Mark>,
}

/// Record that a learner left an organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leave {
    /// The learner.
    pub learner_id: LearnerId,
    /// The enrollment that ends.
    pub enrollment_id: EnrollmentId,
    /// The last day.
    pub left_on: NaiveDate,
    /// Reason.
    pub reason: LeaveReason,
    /// The order.
    pub order: Order,
    /// Certificate issued on graduation.
    #[serde(default)]
    pub certificate: Option<Certificate>,
}

/// Erase a learner's personal data (crypto-shredding): their data keys are destroyed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasePersonalData {
    /// The learner.
    pub learner_id: LearnerId,
    /// The legal ground for the erasure.
    pub reason: Text,
}

/// Every command the registry accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Command {
    RegisterOrganization(OrganizationRegistered),
    OpenClass(ClassOpened),
    ChangeClassCapacity(ChangeClassCapacity),
    AssignTeacher(TeacherAssigned),
    UnassignTeacher(UnassignTeacher),
    RegisterBirth(BirthRegistered),
    RegisterLearner(LearnerRegistered),
    RecordSnils(SnilsRecorded),
    RegisterDeath(RegisterDeath),
    LinkGuardian(GuardianLinked),
    SubmitApplication(ApplicationSubmitted),
    WithdrawApplication(WithdrawApplication),
    RejectApplication(RejectApplication),
    Enroll(Enroll),
    Transfer(Transfer),
    RecordMark(MarkRecorded),
    CorrectMark(CorrectMark),
    RecordAttendance(AttendanceRecorded),
    RecordExamResult(RecordExamResult),
    Leave(Leave),
    ErasePersonalData(ErasePersonalData),
}

impl Command {
    /// Every command name, as used in the API path `/v1/commands/{name}`.
    pub const NAMES: &'static [&'static str] = &[
        "register_organization",
        "open_class",
        "change_class_capacity",
        "assign_teacher",
        "unassign_teacher",
        "register_birth",
        "register_learner",
        "record_snils",
        "register_death",
        "link_guardian",
        "submit_application",
        "withdraw_application",
        "reject_application",
        "enroll",
        "transfer",
        "record_mark",
        "correct_mark",
        "record_attendance",
        "record_exam_result",
        "leave",
        "erase_personal_data",
    ];

    /// The command's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RegisterOrganization(_) => "register_organization",
            Self::OpenClass(_) => "open_class",
            Self::ChangeClassCapacity(_) => "change_class_capacity",
            Self::AssignTeacher(_) => "assign_teacher",
            Self::UnassignTeacher(_) => "unassign_teacher",
            Self::RegisterBirth(_) => "register_birth",
            Self::RegisterLearner(_) => "register_learner",
            Self::RecordSnils(_) => "record_snils",
            Self::RegisterDeath(_) => "register_death",
            Self::LinkGuardian(_) => "link_guardian",
            Self::SubmitApplication(_) => "submit_application",
            Self::WithdrawApplication(_) => "withdraw_application",
            Self::RejectApplication(_) => "reject_application",
            Self::Enroll(_) => "enroll",
            Self::Transfer(_) => "transfer",
            Self::RecordMark(_) => "record_mark",
            Self::CorrectMark(_) => "correct_mark",
            Self::RecordAttendance(_) => "record_attendance",
            Self::RecordExamResult(_) => "record_exam_result",
            Self::Leave(_) => "leave",
            Self::ErasePersonalData(_) => "erase_personal_data",
        }
    }
}
