//! The lifecycle facts. Each variant of [`Event`] is one event type of the catalogue in
//! `events-schema/`; its payload struct is the `data` of the event envelope. Events are never
//! edited: a correction is a new event that references the corrected one.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::{ApplicationId, ClassId, EnrollmentId, LearnerId, MarkId, OrganizationId};
use crate::snils::Snils;
use crate::values::{
    AcademicYear, Attendance, EducationForm, ExamForm, LeaveReason, Level, Mark, MarkKind,
    OrganizationKind, Priority, Relation, SecondaryReason, Sex, StayMode, Text, TransferKind,
};

/// A civil registry record (актовая запись): number, date and the office that made it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CivilRecord {
    /// The record number.
    pub number: Text,
    /// The date of the record.
    pub date: NaiveDate,
    /// The civil registry office that made it.
    pub office: Text,
}

/// An identity document: series and number, and its kind when it is not a birth certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Kind of document ("birth_certificate", "passport", "foreign_birth_certificate"...).
    pub kind: Text,
    /// Series, where the document has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<Text>,
    /// Number.
    pub number: Text,
}

/// Requisites of an administrative act (реквизиты распорядительного акта): an order number and date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// The order number.
    pub number: Text,
    /// The order date.
    pub date: NaiveDate,
}

/// A person's full name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullName {
    /// Фамилия.
    pub surname: Text,
    /// Имя.
    pub name: Text,
    /// Отчество, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patronymic: Option<Text>,
}

/// The educational programme of an enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Programme {
    /// Name of the programme.
    pub name: Text,
    /// An adapted programme (for learners with disabilities).
    #[serde(default)]
    pub adapted: bool,
    /// Focus or profile (e.g. "physics and mathematics").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus: Option<Text>,
}

/// Consent of a legal representative to the processing of personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// The date consent was given.
    pub given_on: NaiveDate,
    /// The document recording it.
    pub document: Text,
}

/// Requisites of a certificate (аттестат or диплом).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// Series, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<Text>,
    /// Number.
    pub number: Text,
    /// Date of issue.
    pub issued_on: NaiveDate,
}

/// An organization joined the regional directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationRegistered {
    /// Its id.
    pub organization_id: OrganizationId,
    /// Full name.
    pub name: Text,
    /// The municipality it belongs to.
    pub municipality: Text,
    /// Kind of organization.
    pub kind: OrganizationKind,
    /// Levels of education it teaches.
    pub levels: Vec<Level>,
}

/// A class or group opened for an academic year.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassOpened {
    /// Its id.
    pub class_id: ClassId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// The academic year.
    pub academic_year: AcademicYear,
    /// The level of education taught in it.
    pub level: Level,
    /// Grade 1–11 (general), course 1–4 (vocational), age in years of the group 1–7 (preschool),
    /// 0 for additional-education groups.
    pub grade: u8,
    /// Name, such as "1А".
    pub name: Text,
    /// Places.
    pub capacity: u16,
    /// Stay mode of a kindergarten group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stay_mode: Option<StayMode>,
}

/// The capacity of a class or group changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassCapacityChanged {
    /// The class.
    pub class_id: ClassId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// The new capacity.
    pub capacity: u16,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
}

/// The civil registry registered a birth: the learner's first fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BirthRegistered {
    /// The learner id assigned to the child.
    pub learner_id: LearnerId,
    /// The birth record.
    pub record: CivilRecord,
    /// The child's name.
    pub child: FullName,
    /// Sex.
    pub sex: Sex,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// The birth certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Document>,
    /// SNILS, assigned at birth registration since 2020.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snils: Option<Snils>,
}

/// A learner whose birth is not in this region's civil registry (born elsewhere, arrived from
/// another region or country) was registered from their documents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnerRegistered {
    /// The learner id assigned.
    pub learner_id: LearnerId,
    /// Name.
    pub person: FullName,
    /// Sex.
    pub sex: Sex,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// The identity document.
    pub document: Document,
    /// SNILS, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snils: Option<Snils>,
}

/// A learner's SNILS was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnilsRecorded {
    /// The learner.
    pub learner_id: LearnerId,
    /// The SNILS.
    pub snils: Snils,
}

/// The civil registry registered a death; the learner's record closes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeathRegistered {
    /// The learner.
    pub learner_id: LearnerId,
    /// The death record.
    pub record: CivilRecord,
    /// Date of death.
    pub death_date: NaiveDate,
}

/// A parent or legal representative was linked to the learner by SNILS, with consent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardianLinked {
    /// The learner.
    pub learner_id: LearnerId,
    /// The guardian's SNILS: what they sign in with to read the diary.
    pub guardian_snils: Snils,
    /// The guardian's name.
    pub guardian: FullName,
    /// Relation to the learner.
    pub relation: Relation,
    /// Consent to personal data processing.
    pub consent: Consent,
}

/// An application for a place was submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationSubmitted {
    /// Its id.
    pub application_id: ApplicationId,
    /// The learner.
    pub learner_id: LearnerId,
    /// The organization applied to.
    pub organization_id: OrganizationId,
    /// Level of education.
    pub level: Level,
    /// Academic year of the desired start.
    pub academic_year: AcademicYear,
    /// Desired grade or age group (see [`ClassOpened::grade`]).
    pub grade: u8,
    /// A particular class or group, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_id: Option<ClassId>,
    /// Date submitted.
    pub submitted_on: NaiveDate,
    /// Desired start date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_start: Option<NaiveDate>,
    /// Queue priority.
    pub priority: Priority,
}

/// An application was withdrawn by the applicant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationWithdrawn {
    /// The application.
    pub application_id: ApplicationId,
    /// The learner.
    pub learner_id: LearnerId,
    /// The organization applied to.
    pub organization_id: OrganizationId,
    /// Date withdrawn.
    pub withdrawn_on: NaiveDate,
    /// Reason given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
}

/// An application was rejected by the organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationRejected {
    /// The application.
    pub application_id: ApplicationId,
    /// The learner.
    pub learner_id: LearnerId,
    /// The organization applied to.
    pub organization_id: OrganizationId,
    /// Date rejected.
    pub rejected_on: NaiveDate,
    /// The reason.
    pub reason: Text,
}

/// The learner was enrolled (зачисление).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrolled {
    /// The enrollment.
    pub enrollment_id: EnrollmentId,
    /// The learner.
    pub learner_id: LearnerId,
    /// The organization.
    pub organization_id: OrganizationId,
    /// The class or group.
    pub class_id: ClassId,
    /// Level of education.
    pub level: Level,
    /// Grade or age group of the class.
    pub grade: u8,
    /// Academic year of the class.
    pub academic_year: AcademicYear,
    /// The programme.
    pub programme: Programme,
    /// The primary (основное) enrollment of its level, as opposed to a secondary one.
    pub primary: bool,
    /// Why a secondary enrollment was made; absent for a primary one (and in events of schema
    /// version 1, written before the reason was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_reason: Option<SecondaryReason>,
    /// Form of education.
    pub form: EducationForm,
    /// Date of enrollment.
    pub enrolled_on: NaiveDate,
    /// The enrollment order.
    pub order: Order,
    /// The application it satisfies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<ApplicationId>,
    /// Document granting an exemption from the grade-1 age rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_exemption: Option<Text>,
    /// Kindergarten stay mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stay_mode: Option<StayMode>,
}

/// The learner moved to another class, the next grade, or another organization (перевод).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transferred {
    /// The learner.
    pub learner_id: LearnerId,
    /// Kind of transfer.
    pub kind: TransferKind,
    /// The enrollment moved from.
    pub from_enrollment_id: EnrollmentId,
    /// The organization moved from.
    pub from_organization_id: OrganizationId,
    /// The class moved from.
    pub from_class_id: ClassId,
    /// The enrollment after the move: the same id within an organization, a new one into another.
    pub to_enrollment_id: EnrollmentId,
    /// The organization moved to.
    pub to_organization_id: OrganizationId,
    /// The class moved to.
    pub to_class_id: ClassId,
    /// Grade of the new class.
    pub grade: u8,
    /// Academic year of the new class.
    pub academic_year: AcademicYear,
    /// Date of the move: the first day in the new class.
    pub transferred_on: NaiveDate,
    /// The transfer order.
    pub order: Order,
}

/// A mark was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRecorded {
    /// The mark's id.
    pub mark_id: MarkId,
    /// The learner.
    pub learner_id: LearnerId,
    /// The class.
    pub class_id: ClassId,
    /// Subject.
    pub subject: Text,
    /// Date of the lesson (or the last day of the period for period and annual marks).
    pub lesson_date: NaiveDate,
    /// Kind of mark.
    pub kind: MarkKind,
    /// Kind of work ("test", "homework", "oral answer"...).
    pub work: Text,
    /// Period of a period mark ("term-1", "half-2").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Text>,
    /// The mark.
    pub value: Mark,
    /// Weight in the average, 1 to 10.
    pub weight: u8,
    /// The teacher who gave it.
    pub teacher: Text,
}

/// A mark was corrected; the original stays in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkCorrected {
    /// The corrected mark.
    pub mark_id: MarkId,
    /// The learner.
    pub learner_id: LearnerId,
    /// The class.
    pub class_id: ClassId,
    /// The mark before this correction.
    pub previous: Mark,
    /// The new mark.
    pub value: Mark,
    /// Why.
    pub reason: Text,
    /// The teacher who corrected it.
    pub teacher: Text,
}

/// Attendance of a lesson or a day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttendanceRecorded {
    /// The learner.
    pub learner_id: LearnerId,
    /// The class.
    pub class_id: ClassId,
    /// The date.
    pub date: NaiveDate,
    /// Lesson number 1–12, or none for the whole day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lesson: Option<u8>,
    /// Present, late, or the absence reason.
    pub status: Attendance,
}

/// A result of the state final attestation (ГИА).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExamResultRecorded {
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
    /// The result on the form's own scale.
    pub result: ExamScore,
    /// Grade the learner sat the exam in.
    pub grade: u8,
}

/// The result of an attestation on its form's scale: an ЕГЭ is scored 0–100 (тестовый балл),
/// an ОГЭ or ГВЭ marked on the 5-point scale. One value, so a result with both or neither
/// cannot be written (version 1 of `exam_result_recorded` had two optional fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ExamScore {
    /// The ЕГЭ test score, 0 to 100.
    TestScore(u8),
    /// The 5-point mark of an ОГЭ or ГВЭ.
    Mark(Mark),
}

impl ExamScore {
    /// The ЕГЭ test score, if that is the scale.
    pub fn test_score(self) -> Option<u8> {
        match self {
            Self::TestScore(score) => Some(score),
            Self::Mark(_) => None,
        }
    }

    /// The 5-point mark, if that is the scale.
    pub fn mark(self) -> Option<Mark> {
        match self {
            Self::Mark(mark) => Some(mark),
            Self::TestScore(_) => None,
        }
    }
}

/// The learner left an organization (окончание, отчисление, выбытие).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Left {
    /// The learner.
    pub learner_id: LearnerId,
    /// The enrollment that ends.
    pub enrollment_id: EnrollmentId,
    /// The organization left.
    pub organization_id: OrganizationId,
    /// The class left.
    pub class_id: ClassId,
    /// Date of leaving: the last day.
    pub left_on: NaiveDate,
    /// Reason.
    pub reason: LeaveReason,
    /// The order.
    pub order: Order,
    /// Certificate issued on graduation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
}

/// A teacher was assigned to teach a class or group (by its organization).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherAssigned {
    /// The class.
    pub class_id: ClassId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// The teacher's account: the subject of their sign-on tokens.
    pub teacher: Text,
    /// The teacher's name as shown in registers.
    pub teacher_name: Text,
    /// Subjects taught in the class.
    pub subjects: Vec<Text>,
    /// First day.
    pub from: NaiveDate,
}

/// A teacher no longer teaches a class or group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherUnassigned {
    /// The class.
    pub class_id: ClassId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// The teacher's account.
    pub teacher: Text,
    /// Last day.
    pub until: NaiveDate,
}

/// A learner's personal data was erased: the data keys their personal fields were sealed under
/// were destroyed, so those fields of every event about them can no longer be read. The facts
/// in clear (dates, classes, marks, statuses) stay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalDataErased {
    /// The learner.
    pub learner_id: LearnerId,
    /// The legal ground for the erasure (the article of 152-FZ, the expiry of the retention
    /// period, the decision that ordered it).
    pub reason: Text,
    /// The date of the erasure.
    pub erased_on: NaiveDate,
}

/// This log continues another one (`contingent migrate-log`): the events of the log that ended
/// at `from_head_position` with the hash `from_head_hash` follow this event, in their order,
/// written anew (personal fields sealed, each chained to the one before). Always the first
/// event of the log it is in; an auditor verifies the old log up to that head and this one from
/// here, and sees where one ends and the other begins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogMigrated {
    /// The position of the last event of the log continued (its length).
    pub from_head_position: u64,
    /// The hash of that event: the old log's head.
    pub from_head_hash: ChainHash,
    /// Where the old log was (its backend and location), for the auditor.
    pub from_log: Text,
    /// Why the log was migrated.
    pub reason: Text,
    /// The date of the migration.
    pub migrated_on: NaiveDate,
}

/// A SHA-256 hash of the log's chain, as 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChainHash(String);

impl ChainHash {
    /// Parses 64 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!("not a SHA-256 hash in lowercase hex: {text:?}"))
        }
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ChainHash {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<ChainHash> for String {
    fn from(hash: ChainHash) -> String {
        hash.0
    }
}

/// Every event type of the registry. Serialized as `{"type": "...", "data": {...}}` inside the
/// envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Event {
    OrganizationRegistered(OrganizationRegistered),
    ClassOpened(ClassOpened),
    ClassCapacityChanged(ClassCapacityChanged),
    TeacherAssigned(TeacherAssigned),
    TeacherUnassigned(TeacherUnassigned),
    BirthRegistered(BirthRegistered),
    LearnerRegistered(LearnerRegistered),
    SnilsRecorded(SnilsRecorded),
    DeathRegistered(DeathRegistered),
    GuardianLinked(GuardianLinked),
    ApplicationSubmitted(ApplicationSubmitted),
    ApplicationWithdrawn(ApplicationWithdrawn),
    ApplicationRejected(ApplicationRejected),
    Enrolled(Enrolled),
    Transferred(Transferred),
    MarkRecorded(MarkRecorded),
    MarkCorrected(MarkCorrected),
    AttendanceRecorded(AttendanceRecorded),
    ExamResultRecorded(ExamResultRecorded),
    Left(Left),
    PersonalDataErased(PersonalDataErased),
    /// This log continues another one.
    LogMigrated(LogMigrated),
}

impl Event {
    /// Every event type name, in catalogue order.
    pub const TYPES: &'static [&'static str] = &[
        "organization_registered",
        "class_opened",
        "class_capacity_changed",
        "teacher_assigned",
        "teacher_unassigned",
        "birth_registered",
        "learner_registered",
        "snils_recorded",
        "death_registered",
        "guardian_linked",
        "application_submitted",
        "application_withdrawn",
        "application_rejected",
        "enrolled",
        "transferred",
        "mark_recorded",
        "mark_corrected",
        "attendance_recorded",
        "exam_result_recorded",
        "left",
        "personal_data_erased",
        "log_migrated",
    ];

    /// The event type name, as in the envelope's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::OrganizationRegistered(_) => "organization_registered",
            Self::ClassOpened(_) => "class_opened",
            Self::ClassCapacityChanged(_) => "class_capacity_changed",
            Self::TeacherAssigned(_) => "teacher_assigned",
            Self::TeacherUnassigned(_) => "teacher_unassigned",
            Self::BirthRegistered(_) => "birth_registered",
            Self::LearnerRegistered(_) => "learner_registered",
            Self::SnilsRecorded(_) => "snils_recorded",
            Self::DeathRegistered(_) => "death_registered",
            Self::GuardianLinked(_) => "guardian_linked",
            Self::ApplicationSubmitted(_) => "application_submitted",
            Self::ApplicationWithdrawn(_) => "application_withdrawn",
            Self::ApplicationRejected(_) => "application_rejected",
            Self::Enrolled(_) => "enrolled",
            Self::Transferred(_) => "transferred",
            Self::MarkRecorded(_) => "mark_recorded",
            Self::MarkCorrected(_) => "mark_corrected",
            Self::AttendanceRecorded(_) => "attendance_recorded",
            Self::ExamResultRecorded(_) => "exam_result_recorded",
            Self::Left(_) => "left",
            Self::PersonalDataErased(_) => "personal_data_erased",
            Self::LogMigrated(_) => "log_migrated",
        }
    }

    /// The version of the event type's schema in `events-schema/` that events of this type
    /// are written with now.
    pub fn schema_version(&self) -> u16 {
        Self::current_schema_version(self.type_name())
    }

    /// The version of a type's schema that events of it are written with now. Events written
    /// with an earlier version stay readable: a field added since is optional.
    ///
    /// - `enrolled` v2 added `secondary_reason`.
    /// - `exam_result_recorded` v2 holds the result in one field, `result` (a test score or a
    ///   mark), instead of the optional `test_score` and `mark`.
    ///
    /// Events stored with an earlier version are upcast to the current one as they are read
    /// (`contingent_log`'s upcaster chain), so nothing past the log sees an older shape.
    pub fn current_schema_version(type_name: &str) -> u16 {
        match type_name {
            "enrolled" | "exam_result_recorded" => 2,
            _ => 1,
        }
    }

    /// The learner the event is about; none for reference facts (organizations, classes).
    pub fn learner_id(&self) -> Option<LearnerId> {
        match self {
            Self::OrganizationRegistered(_)
            | Self::ClassOpened(_)
            | Self::ClassCapacityChanged(_)
            | Self::TeacherAssigned(_)
            | Self::TeacherUnassigned(_) => None,
            Self::BirthRegistered(e) => Some(e.learner_id),
            Self::LearnerRegistered(e) => Some(e.learner_id),
            Self::SnilsRecorded(e) => Some(e.learner_id),
            Self::DeathRegistered(e) => Some(e.learner_id),
            Self::GuardianLinked(e) => Some(e.learner_id),
            Self::ApplicationSubmitted(e) => Some(e.learner_id),
            Self::ApplicationWithdrawn(e) => Some(e.learner_id),
            Self::ApplicationRejected(e) => Some(e.learner_id),
            Self::Enrolled(e) => Some(e.learner_id),
            Self::Transferred(e) => Some(e.learner_id),
            Self::MarkRecorded(e) => Some(e.learner_id),
            Self::MarkCorrected(e) => Some(e.learner_id),
            Self::AttendanceRecorded(e) => Some(e.learner_id),
            Self::ExamResultRecorded(e) => Some(e.learner_id),
            Self::Left(e) => Some(e.learner_id),
            Self::PersonalDataErased(e) => Some(e.learner_id),
            Self::LogMigrated(_) => None,
        }
    }

    /// The date the fact happened (business date), as opposed to when it was recorded.
    pub fn business_date(&self) -> Option<NaiveDate> {
        match self {
            Self::OrganizationRegistered(_) | Self::ClassCapacityChanged(_) => None,
            Self::ClassOpened(e) => Some(e.academic_year.first_day()),
            Self::TeacherAssigned(e) => Some(e.from),
            Self::TeacherUnassigned(e) => Some(e.until),
            Self::BirthRegistered(e) => Some(e.birth_date),
            Self::LearnerRegistered(e) => Some(e.birth_date),
            Self::SnilsRecorded(_) => None,
            Self::DeathRegistered(e) => Some(e.death_date),
            Self::GuardianLinked(e) => Some(e.consent.given_on),
            Self::ApplicationSubmitted(e) => Some(e.submitted_on),
            Self::ApplicationWithdrawn(e) => Some(e.withdrawn_on),
            Self::ApplicationRejected(e) => Some(e.rejected_on),
            Self::Enrolled(e) => Some(e.enrolled_on),
            Self::Transferred(e) => Some(e.transferred_on),
            Self::MarkRecorded(e) => Some(e.lesson_date),
            Self::MarkCorrected(_) => None,
            Self::AttendanceRecorded(e) => Some(e.date),
            Self::ExamResultRecorded(e) => Some(e.exam_date),
            Self::Left(e) => Some(e.left_on),
            Self::PersonalDataErased(e) => Some(e.erased_on),
            Self::LogMigrated(e) => Some(e.migrated_on),
        }
    }

    /// The organization the fact concerns, when there is one.
    pub fn organization_id(&self) -> Option<OrganizationId> {
        match self {
            Self::OrganizationRegistered(e) => Some(e.organization_id),
            Self::ClassOpened(e) => Some(e.organization_id),
            Self::ClassCapacityChanged(e) => Some(e.organization_id),
            Self::TeacherAssigned(e) => Some(e.organization_id),
            Self::TeacherUnassigned(e) => Some(e.organization_id),
            Self::ApplicationSubmitted(e) => Some(e.organization_id),
            Self::ApplicationWithdrawn(e) => Some(e.organization_id),
            Self::ApplicationRejected(e) => Some(e.organization_id),
            Self::Enrolled(e) => Some(e.organization_id),
            Self::Transferred(e) => Some(e.to_organization_id),
            Self::Left(e) => Some(e.organization_id),
            _ => None,
        }
    }
}
