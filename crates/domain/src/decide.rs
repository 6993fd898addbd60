//! The rules: [`decide`] turns a command into the events that record it, or refuses it with the
//! rule it breaks. Pure: the only outside fact it takes is today's date.

use chrono::{Days, NaiveDate};

use crate::command::{
    ChangeClassCapacity, Command, CorrectMark, Enroll, ErasePersonalData, Leave, PersonRef,
    RecordExamResult, RegisterDeath, RejectApplication, Transfer, UnassignTeacher,
    WithdrawApplication,
};
use crate::error::DomainError;
use crate::event::{
    ApplicationRejected, ApplicationSubmitted, ApplicationWithdrawn, AttendanceRecorded,
    BirthRegistered, ClassCapacityChanged, ClassOpened, DeathRegistered, Enrolled, Event,
    ExamResultRecorded, ExamScore, GuardianLinked, LearnerRegistered, Left, MarkCorrected,
    MarkRecorded, OrganizationRegistered, PersonalDataErased, SnilsRecorded, TeacherAssigned,
    TeacherUnassigned, Transferred,
};
use crate::ids::{ClassId, LearnerId};
use crate::snils::Snils;
use crate::state::{
    fingerprint, name_fingerprint, record_key, ApplicationStatus, Class, Learner, SnilsOwner, State,
};
use crate::values::{age_in_months, ExamForm, Level, MarkKind, OrganizationKind, TransferKind};

/// How far past today a business date may lie (clock skew between systems, time zones).
pub const FUTURE_TOLERANCE_DAYS: u64 = 1;
/// The largest class or group.
pub const MAX_CAPACITY: u16 = 1000;
/// Enrollment may be dated this many days before its academic year starts (summer enrollment).
pub const EARLY_ENROLLMENT_DAYS: u64 = 122;
/// Grade 1 takes children from this age (6 years 6 months) on 1 September...
pub const GRADE_ONE_MIN_MONTHS: i32 = 78;
/// ...up to, not including, this age (8 years).
pub const GRADE_ONE_MAX_MONTHS: i32 = 96;

/// Decides a command against the state: the events that record it, none when the same fact is
/// already recorded (a civil registry record reported twice), or the rule it breaks.
pub fn decide(
    state: &State,
    command: &Command,
    today: NaiveDate,
) -> Result<Vec<Event>, DomainError> {
    let rules = Rules { state, today };
    match command {
        Command::RegisterOrganization(c) => rules.register_organization(c),
        Command::OpenClass(c) => rules.open_class(c),
        Command::ChangeClassCapacity(c) => rules.change_capacity(c),
        Command::AssignTeacher(c) => rules.assign_teacher(c),
        Command::UnassignTeacher(c) => rules.unassign_teacher(c),
        Command::RegisterBirth(c) => rules.register_birth(c),
        Command::RegisterLearner(c) => rules.register_learner(c),
        Command::RecordSnils(c) => rules.record_snils(c),
        Command::RegisterDeath(c) => rules.register_death(c),
        Command::LinkGuardian(c) => rules.link_guardian(c),
        Command::SubmitApplication(c) => rules.submit_application(c),
        Command::WithdrawApplication(c) => rules.withdraw_application(c),
        Command::RejectApplication(c) => rules.reject_application(c),
        Command::Enroll(c) => rules.enroll(c),
        Command::Transfer(c) => rules.transfer(c),
        Command::RecordMark(c) => rules.record_mark(c),
        Command::CorrectMark(c) => rules.correct_mark(c),
        Command::RecordAttendance(c) => rules.record_attendance(c),
        Command::RecordExamResult(c) => rules.record_exam(c),
        Command::Leave(c) => rules.leave(c),
        Command::ErasePersonalData(c) => rules.erase_personal_data(c),
    }
}

/// The learner a command is about once it is recorded, for answering the caller: for a birth
/// reported twice this is the learner of the first report.
pub fn learner_of(state: &State, command: &Command) -> Option<LearnerId> {
    match command {
        Command::RegisterBirth(c) => state
            .learner_by_birth_record(&c.record)
            .or(Some(c.learner_id)),
        Command::RegisterDeath(c) => state
            .learner_by_death_record(&c.record)
            .or_else(|| resolve_person(state, &c.person).ok()),
        Command::RegisterLearner(c) => Some(c.learner_id),
        Command::RecordSnils(c) => Some(c.learner_id),
        Command::LinkGuardian(c) => Some(c.learner_id),
        Command::SubmitApplication(c) => Some(c.learner_id),
        Command::WithdrawApplication(c) => {
            state.application(c.application_id).map(|a| a.learner_id)
        }
        Command::RejectApplication(c) => state.application(c.application_id).map(|a| a.learner_id),
        Command::Enroll(c) => Some(c.learner_id),
        Command::Transfer(c) => Some(c.learner_id),
        Command::RecordMark(c) => Some(c.learner_id),
        Command::CorrectMark(c) => state.mark(c.mark_id).map(|m| m.learner_id),
        Command::RecordAttendance(c) => Some(c.learner_id),
        Command::RecordExamResult(c) => Some(c.learner_id),
        Command::Leave(c) => Some(c.learner_id),
        Command::ErasePersonalData(c) => Some(c.learner_id),
        Command::RegisterOrganization(_)
        | Command::OpenClass(_)
        | Command::ChangeClassCapacity(_)
        | Command::AssignTeacher(_)
        | Command::UnassignTeacher(_) => None,
    }
}

pub(crate) fn birth_fingerprint(e: &BirthRegistered) -> u64 {
    fingerprint(&(
        name_fingerprint(&e.child),
        e.birth_date,
        e.sex,
        e.record.date,
        e.snils,
    ))
}

fn resolve_person(state: &State, person: &PersonRef) -> Result<LearnerId, DomainError> {
    match person {
        PersonRef::LearnerId(id) => state
            .learner(*id)
            .map(|_| *id)
            .ok_or_else(|| DomainError::LearnerNotFound(id.to_string())),
        PersonRef::Snils(snils) => match state.snils_owner(*snils) {
            Some(SnilsOwner::Learner(id)) => Ok(id),
            _ => Err(DomainError::LearnerNotFound(format!("with SNILS {snils}"))),
        },
        PersonRef::BirthRecord { office, number } => state
            .birth_records
            .get(&record_key(office.as_str(), number.as_str()))
            .map(|(id, _)| *id)
            .ok_or_else(|| DomainError::LearnerNotFound(format!("with birth record {number}"))),
    }
}

/// Grades of each level: 1–11 general, 1–4 vocational, age groups 0–7 preschool, 0–11 additional.
fn check_grade(level: Level, grade: u8) -> Result<(), DomainError> {
    let grades = match level {
        Level::General => 1..=11,
        Level::Vocational => 1..=4,
        Level::Preschool => 0..=7,
        Level::Additional => 0..=11,
    };
    if !grades.contains(&grade) {
        return Err(DomainError::Invalid(format!(
            "grade {grade} does not exist at level {level} ({}..={})",
            grades.start(),
            grades.end()
        )));
    }
    Ok(())
}

/// The age rules of a class, for every way into it (enrollment or transfer): grade 1 takes
/// children of 6 years 6 months to 8 years on 1 September unless the enrollment carries an
/// exemption; a preschool group takes children of 2 months to 8 years on the day they join.
fn check_age(
    learner: &Learner,
    class: &Class,
    joined_on: NaiveDate,
    exempt: bool,
) -> Result<(), DomainError> {
    if class.level == Level::General && class.grade == 1 && !exempt {
        let months = age_in_months(learner.birth_date, class.academic_year.first_day());
        if !(GRADE_ONE_MIN_MONTHS..GRADE_ONE_MAX_MONTHS).contains(&months) {
            return Err(DomainError::GradeOneAge {
                years: months.div_euclid(12),
                months: months.rem_euclid(12),
            });
        }
    }
    if class.level == Level::Preschool {
        let months = age_in_months(learner.birth_date, joined_on);
        if !(2..96).contains(&months) {
            return Err(DomainError::PreschoolAge);
        }
    }
    Ok(())
}

/// A secondary enrollment names a reason the rules recognize for its level; a primary one names
/// none.
fn check_secondary_reason(c: &Enroll, class: &Class) -> Result<(), DomainError> {
    match (c.primary, c.secondary_reason) {
        (true, None) => Ok(()),
        (true, Some(reason)) => Err(DomainError::SecondaryReason(format!(
            "a primary enrollment has no secondary reason (given {reason})"
        ))),
        (false, None) => Err(DomainError::SecondaryReason(
            "a secondary enrollment names its reason (secondary_reason)".into(),
        )),
        (false, Some(reason)) if !reason.fits(class.level) => {
            Err(DomainError::SecondaryReason(format!(
                "{reason} is not a reason for a secondary enrollment at level {}",
                class.level
            )))
        }
        (false, Some(_)) => Ok(()),
    }
}

struct Rules<'a> {
    state: &'a State,
    today: NaiveDate,
}

impl<'a> Rules<'a> {
    fn not_future(&self, what: &'static str, date: NaiveDate) -> Result<(), DomainError> {
        let limit = self
            .today
            .checked_add_days(Days::new(FUTURE_TOLERANCE_DAYS))
            .unwrap_or(self.today);
        if date > limit {
            return Err(DomainError::InFuture { what, date });
        }
        Ok(())
    }

    fn learner(&self, id: LearnerId) -> Result<&'a Learner, DomainError> {
        self.state
            .learner(id)
            .ok_or_else(|| DomainError::LearnerNotFound(id.to_string()))
    }

    /// A learner alive on `date` (or at all, when no date matters).
    fn living(&self, id: LearnerId, date: Option<NaiveDate>) -> Result<&'a Learner, DomainError> {
        let learner = self.learner(id)?;
        if let Some(died) = learner.died_on {
            if date.is_none_or(|d| d > died) {
                return Err(DomainError::LearnerDeceased {
                    learner: id,
                    on: died,
                });
            }
        }
        Ok(learner)
    }

    fn not_erased(&self, id: LearnerId) -> Result<(), DomainError> {
        if self.state.is_erased(id) {
            return Err(DomainError::PersonalDataErased(id));
        }
        Ok(())
    }

    /// Erasure is refused for no one the registry knows, dead or alive; erasing again records
    /// nothing.
    fn erase_personal_data(&self, c: &ErasePersonalData) -> Result<Vec<Event>, DomainError> {
        self.learner(c.learner_id)?;
        if self.state.is_erased(c.learner_id) {
            return Ok(Vec::new());
        }
        Ok(vec![Event::PersonalDataErased(PersonalDataErased {
            learner_id: c.learner_id,
            reason: c.reason.clone(),
            erased_on: self.today,
        })])
    }

    fn after_birth(
        &self,
        learner: &Learner,
        what: &'static str,
        date: NaiveDate,
    ) -> Result<(), DomainError> {
        if date < learner.birth_date {
            return Err(DomainError::BeforeBirth {
                what,
                date,
                birth: learner.birth_date,
            });
        }
        Ok(())
    }

    fn class(&self, id: ClassId) -> Result<&'a Class, DomainError> {
        self.state.class(id).ok_or(DomainError::ClassNotFound(id))
    }

    fn snils_free_for(&self, snils: Snils, learner: LearnerId) -> Result<(), DomainError> {
        match self.state.snils_owner(snils) {
            None => Ok(()),
            Some(SnilsOwner::Learner(owner)) if owner == learner => Ok(()),
            Some(_) => Err(DomainError::SnilsTaken(snils)),
        }
    }

    fn new_learner_id(&self, id: LearnerId) -> Result<(), DomainError> {
        if self.state.learner(id).is_some() {
            return Err(DomainError::AlreadyExists {
                what: "learner",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    fn register_organization(&self, c: &OrganizationRegistered) -> Result<Vec<Event>, DomainError> {
        if self.state.organization(c.organization_id).is_some() {
            return Err(DomainError::AlreadyExists {
                what: "organization",
                id: c.organization_id.to_string(),
            });
        }
        if c.levels.is_empty() {
            return Err(DomainError::Invalid(
                "an organization teaches at least one level".into(),
            ));
        }
        let allowed: &[Level] = match c.kind {
            OrganizationKind::Kindergarten => &[Level::Preschool, Level::Additional],
            OrganizationKind::School => &[Level::Preschool, Level::General, Level::Additional],
            OrganizationKind::Additional => &[Level::Additional],
            OrganizationKind::College => &[Level::Vocational, Level::General, Level::Additional],
        };
        for (i, level) in c.levels.iter().enumerate() {
            if !allowed.contains(level) {
                return Err(DomainError::Invalid(format!(
                    "a {} does not teach {}",
                    c.kind, level
                )));
            }
            if c.levels[..i].contains(level) {
                return Err(DomainError::Invalid(format!(
                    "level {level} is listed twice"
                )));
            }
        }
        Ok(vec![Event::OrganizationRegistered(c.clone())])
    }

    fn open_class(&self, c: &ClassOpened) -> Result<Vec<Event>, DomainError> {
        if self.state.class(c.class_id).is_some() {
            return Err(DomainError::AlreadyExists {
                what: "class",
                id: c.class_id.to_string(),
            });
        }
        let org = self
            .state
            .organization(c.organization_id)
            .ok_or(DomainError::OrganizationNotFound(c.organization_id))?;
        if !org.levels.contains(&c.level) {
            return Err(DomainError::LevelNotTaught(c.level.as_str()));
        }
        check_grade(c.level, c.grade)?;
        if c.capacity == 0 || c.capacity > MAX_CAPACITY {
            return Err(DomainError::InvalidCapacity { max: MAX_CAPACITY });
        }
        if c.stay_mode.is_some() && c.level != Level::Preschool {
            return Err(DomainError::Invalid(
                "only preschool groups have a stay mode".into(),
            ));
        }
        let latest = self
            .today
            .checked_add_days(Days::new(366))
            .unwrap_or(self.today);
        if c.academic_year.first_day() > latest {
            return Err(DomainError::InFuture {
                what: "academic year",
                date: c.academic_year.first_day(),
            });
        }
        Ok(vec![Event::ClassOpened(c.clone())])
    }

    fn change_capacity(&self, c: &ChangeClassCapacity) -> Result<Vec<Event>, DomainError> {
        let class = self.class(c.class_id)?;
        if c.capacity == 0 || c.capacity > MAX_CAPACITY {
            return Err(DomainError::InvalidCapacity { max: MAX_CAPACITY });
        }
        if c.capacity < class.enrolled {
            return Err(DomainError::CapacityBelowEnrolled {
                capacity: c.capacity,
                enrolled: class.enrolled,
            });
        }
        Ok(vec![Event::ClassCapacityChanged(ClassCapacityChanged {
            class_id: c.class_id,
            organization_id: class.organization_id,
            capacity: c.capacity,
            reason: c.reason.clone(),
        })])
    }

    fn assign_teacher(&self, c: &TeacherAssigned) -> Result<Vec<Event>, DomainError> {
        let class = self.class(c.class_id)?;
        if class.organization_id != c.organization_id {
            return Err(DomainError::Invalid(
                "the class belongs to another organization".into(),
            ));
        }
        if class.teachers.contains(&c.teacher) {
            return Err(DomainError::AlreadyExists {
                what: "teacher assignment",
                id: c.teacher.to_string(),
            });
        }
        if c.subjects.is_empty() {
            return Err(DomainError::Invalid(
                "a teacher is assigned for at least one subject".into(),
            ));
        }
        self.not_future("assignment date", c.from)?;
        if c.from > class.academic_year.last_day() {
            return Err(DomainError::DateOutOfRange(format!(
                "{} is after academic year {} of the class",
                c.from, class.academic_year
            )));
        }
        Ok(vec![Event::TeacherAssigned(c.clone())])
    }

    fn unassign_teacher(&self, c: &UnassignTeacher) -> Result<Vec<Event>, DomainError> {
        let class = self.class(c.class_id)?;
        if !class.teachers.contains(&c.teacher) {
            return Err(DomainError::Invalid(format!(
                "{} does not teach this class",
                c.teacher
            )));
        }
        self.not_future("last day", c.until)?;
        Ok(vec![Event::TeacherUnassigned(TeacherUnassigned {
            class_id: c.class_id,
            organization_id: class.organization_id,
            teacher: c.teacher.clone(),
            until: c.until,
        })])
    }

    fn register_birth(&self, c: &BirthRegistered) -> Result<Vec<Event>, DomainError> {
        if let Some(existing) = self.state.birth_records.get(&record_key(
            c.record.office.as_str(),
            c.record.number.as_str(),
        )) {
            if existing.1 == birth_fingerprint(c) {
                return Ok(Vec::new());
            }
            return Err(DomainError::CivilRecordConflict(
                c.record.number.to_string(),
            ));
        }
        self.new_learner_id(c.learner_id)?;
        self.not_future("birth date", c.birth_date)?;
        self.not_future("record date", c.record.date)?;
        if c.record.date < c.birth_date {
            return Err(DomainError::DateOutOfRange(format!(
                "the birth record date {} is before the birth on {}",
                c.record.date, c.birth_date
            )));
        }
        if let Some(snils) = c.snils {
            self.snils_free_for(snils, c.learner_id)?;
        }
        Ok(vec![Event::BirthRegistered(c.clone())])
    }

    fn register_learner(&self, c: &LearnerRegistered) -> Result<Vec<Event>, DomainError> {
        self.new_learner_id(c.learner_id)?;
        self.not_future("birth date", c.birth_date)?;
        if let Some(snils) = c.snils {
            self.snils_free_for(snils, c.learner_id)?;
        }
        Ok(vec![Event::LearnerRegistered(c.clone())])
    }

    fn record_snils(&self, c: &SnilsRecorded) -> Result<Vec<Event>, DomainError> {
        let learner = self.living(c.learner_id, None)?;
        self.not_erased(c.learner_id)?;
        match learner.snils {
            Some(existing) if existing == c.snils => return Ok(Vec::new()),
            Some(existing) => return Err(DomainError::SnilsAlreadyRecorded(existing)),
            None => {}
        }
        self.snils_free_for(c.snils, c.learner_id)?;
        Ok(vec![Event::SnilsRecorded(c.clone())])
    }

    fn register_death(&self, c: &RegisterDeath) -> Result<Vec<Event>, DomainError> {
        let key = record_key(c.record.office.as_str(), c.record.number.as_str());
        let learner_id = resolve_person(self.state, &c.person);
        if let Some((recorded_for, print)) = self.state.death_records.get(&key) {
            return match learner_id {
                Ok(id) if id == *recorded_for && *print == fingerprint(&(id, c.death_date)) => {
                    Ok(Vec::new())
                }
                _ => Err(DomainError::CivilRecordConflict(
                    c.record.number.to_string(),
                )),
            };
        }
        let learner_id = learner_id?;
        let learner = self.living(learner_id, None)?;
        self.after_birth(learner, "death date", c.death_date)?;
        self.not_future("death date", c.death_date)?;
        Ok(vec![Event::DeathRegistered(DeathRegistered {
            learner_id,
            record: c.record.clone(),
            death_date: c.death_date,
        })])
    }

    fn link_guardian(&self, c: &GuardianLinked) -> Result<Vec<Event>, DomainError> {
        let learner = self.living(c.learner_id, None)?;
        self.not_erased(c.learner_id)?;
        self.not_future("consent date", c.consent.given_on)?;
        if learner.guardians.contains(&c.guardian_snils) {
            return Err(DomainError::GuardianAlreadyLinked);
        }
        match self.state.snils_owner(c.guardian_snils) {
            None => {}
            Some(SnilsOwner::Guardian(print)) if print == name_fingerprint(&c.guardian) => {}
            Some(_) => return Err(DomainError::SnilsTaken(c.guardian_snils)),
        }
        Ok(vec![Event::GuardianLinked(c.clone())])
    }

    fn submit_application(&self, c: &ApplicationSubmitted) -> Result<Vec<Event>, DomainError> {
        if self.state.application(c.application_id).is_some() {
            return Err(DomainError::AlreadyExists {
                what: "application",
                id: c.application_id.to_string(),
            });
        }
        let learner = self.living(c.learner_id, None)?;
        self.after_birth(learner, "submission date", c.submitted_on)?;
        self.not_future("submission date", c.submitted_on)?;
        let org = self
            .state
            .organization(c.organization_id)
            .ok_or(DomainError::OrganizationNotFound(c.organization_id))?;
        if !org.levels.contains(&c.level) {
            return Err(DomainError::LevelNotTaught(c.level.as_str()));
        }
        check_grade(c.level, c.grade)?;
        if let Some(class_id) = c.class_id {
            let class = self.class(class_id)?;
            if class.organization_id != c.organization_id
                || class.level != c.level
                || class.academic_year != c.academic_year
                || class.grade != c.grade
            {
                return Err(DomainError::Invalid(
                    "the class asked for belongs to another organization, level, year or grade"
                        .into(),
                ));
            }
        }
        if let Some((id, _)) = self.state.applications.iter().find(|(_, a)| {
            a.learner_id == c.learner_id
                && a.organization_id == c.organization_id
                && a.level == c.level
                && a.academic_year == c.academic_year
                && a.status == ApplicationStatus::Pending
        }) {
            return Err(DomainError::ApplicationAlreadyPending(*id));
        }
        Ok(vec![Event::ApplicationSubmitted(c.clone())])
    }

    fn pending_application(
        &self,
        id: crate::ids::ApplicationId,
        date: NaiveDate,
    ) -> Result<&'a crate::state::Application, DomainError> {
        let app = self
            .state
            .application(id)
            .ok_or(DomainError::ApplicationNotFound(id))?;
        if app.status != ApplicationStatus::Pending {
            return Err(DomainError::ApplicationNotPending(id));
        }
        self.not_future("decision date", date)?;
        if date < app.submitted_on {
            return Err(DomainError::DateOutOfRange(format!(
                "{date} is before the application was submitted on {}",
                app.submitted_on
            )));
        }
        Ok(app)
    }

    fn withdraw_application(&self, c: &WithdrawApplication) -> Result<Vec<Event>, DomainError> {
        let app = self.pending_application(c.application_id, c.withdrawn_on)?;
        Ok(vec![Event::ApplicationWithdrawn(ApplicationWithdrawn {
            application_id: c.application_id,
            learner_id: app.learner_id,
            organization_id: app.organization_id,
            withdrawn_on: c.withdrawn_on,
            reason: c.reason.clone(),
        })])
    }

    fn reject_application(&self, c: &RejectApplication) -> Result<Vec<Event>, DomainError> {
        let app = self.pending_application(c.application_id, c.rejected_on)?;
        Ok(vec![Event::ApplicationRejected(ApplicationRejected {
            application_id: c.application_id,
            learner_id: app.learner_id,
            organization_id: app.organization_id,
            rejected_on: c.rejected_on,
            reason: c.reason.clone(),
        })])
    }

    fn check_join(
        &self,
        learner: &Learner,
        class_id: ClassId,
        class: &Class,
        date: NaiveDate,
    ) -> Result<(), DomainError> {
        self.after_birth(learner, "enrollment date", date)?;
        self.not_future("enrollment date", date)?;
        let earliest = class
            .academic_year
            .first_day()
            .checked_sub_days(Days::new(EARLY_ENROLLMENT_DAYS))
            .unwrap_or(class.academic_year.first_day());
        if date < earliest || date > class.academic_year.last_day() {
            return Err(DomainError::DateOutOfRange(format!(
                "{date} is outside academic year {} of the class",
                class.academic_year
            )));
        }
        if learner
            .memberships
            .iter()
            .any(|m| m.class_id == class_id && m.until.is_none())
        {
            return Err(DomainError::AlreadyInClass(class_id));
        }
        if class.enrolled >= class.capacity {
            return Err(DomainError::ClassFull {
                class: class_id,
                capacity: class.capacity,
            });
        }
        Ok(())
    }

    fn enroll(&self, c: &Enroll) -> Result<Vec<Event>, DomainError> {
        let learner = self.living(c.learner_id, None)?;
        if self.state.enrollment_ids.contains_key(&c.enrollment_id)
            || learner.enrollments.iter().any(|e| e.id == c.enrollment_id)
        {
            return Err(DomainError::AlreadyExists {
                what: "enrollment",
                id: c.enrollment_id.to_string(),
            });
        }
        let class = self.class(c.class_id)?;
        self.check_join(learner, c.class_id, class, c.enrolled_on)?;
        if class.level == Level::General && c.primary {
            if let Some(existing) = learner
                .active_enrollments()
                .find(|e| e.level == Level::General && e.primary)
            {
                return Err(DomainError::SecondPrimaryEnrollment(existing.id));
            }
        }
        check_secondary_reason(c, class)?;
        check_age(learner, class, c.enrolled_on, c.age_exemption.is_some())?;
        if let Some(app_id) = c.application_id {
            let app = self.pending_application(app_id, c.enrolled_on)?;
            if app.learner_id != c.learner_id
                || app.organization_id != class.organization_id
                || app.level != class.level
            {
                return Err(DomainError::ApplicationMismatch(app_id));
            }
        }
        Ok(vec![Event::Enrolled(Enrolled {
            enrollment_id: c.enrollment_id,
            learner_id: c.learner_id,
            organization_id: class.organization_id,
            class_id: c.class_id,
            level: class.level,
            grade: class.grade,
            academic_year: class.academic_year,
            programme: c.programme.clone(),
            primary: c.primary,
            secondary_reason: c.secondary_reason,
            form: c.form,
            enrolled_on: c.enrolled_on,
            order: c.order.clone(),
            application_id: c.application_id,
            age_exemption: c.age_exemption.clone(),
            stay_mode: class.stay_mode,
        })])
    }

    fn active_enrollment(
        &self,
        learner_id: LearnerId,
        learner: &'a Learner,
        enrollment_id: crate::ids::EnrollmentId,
    ) -> Result<&'a crate::state::Enrollment, DomainError> {
        let enrollment = learner
            .enrollment(enrollment_id)
            .ok_or(DomainError::EnrollmentNotFound(enrollment_id))?;
        if !enrollment.active {
            if let Some(on) = learner.left_on {
                return Err(DomainError::LearnerLeft {
                    learner: learner_id,
                    on,
                });
            }
            return Err(DomainError::EnrollmentNotActive(enrollment_id));
        }
        Ok(enrollment)
    }

    fn transfer(&self, c: &Transfer) -> Result<Vec<Event>, DomainError> {
        let learner = self.living(c.learner_id, None)?;
        let from = self.active_enrollment(c.learner_id, learner, c.enrollment_id)?;
        let from_class = self.class(from.class_id)?;
        let to_class = self.class(c.to_class_id)?;
        if c.to_class_id == from.class_id {
            return Err(DomainError::InvalidTransfer(
                "the learner is already in that class".into(),
            ));
        }
        if let Some(current) = learner.membership_on(from.class_id, c.transferred_on) {
            if c.transferred_on <= current.from {
                return Err(DomainError::DateOutOfRange(format!(
                    "the transfer date {} must follow the first day {} in the current class",
                    c.transferred_on, current.from
                )));
            }
        } else if learner
            .memberships
            .iter()
            .any(|m| m.class_id == from.class_id && m.until.is_none() && m.from >= c.transferred_on)
        {
            return Err(DomainError::DateOutOfRange(format!(
                "the transfer date {} must follow the first day in the current class",
                c.transferred_on
            )));
        }
        if let Some(last) = learner.last_fact(from.class_id) {
            if last >= c.transferred_on {
                return Err(DomainError::DateOutOfRange(format!(
                    "the transfer date {} must follow the marks and attendance recorded in the current class up to {last}",
                    c.transferred_on
                )));
            }
        }
        let same_org = to_class.organization_id == from.organization_id;
        let to_enrollment_id = match c.kind {
            TransferKind::WithinOrganization => {
                if !same_org
                    || to_class.academic_year != from_class.academic_year
                    || to_class.level != from_class.level
                {
                    return Err(DomainError::InvalidTransfer(
                        "a transfer within an organization goes to a class of the same organization, level and year".into(),
                    ));
                }
                c.enrollment_id
            }
            TransferKind::NextGrade => {
                if !same_org
                    || to_class.level != from_class.level
                    || to_class.academic_year != from_class.academic_year.next()
                    || to_class.grade != from_class.grade + 1
                {
                    return Err(DomainError::InvalidTransfer(format!(
                        "a transfer to the next grade goes to grade {} of {} in the same organization",
                        from_class.grade + 1,
                        from_class.academic_year.next()
                    )));
                }
                c.enrollment_id
            }
            TransferKind::ToOtherOrganization => {
                if same_org || to_class.level != from_class.level {
                    return Err(DomainError::InvalidTransfer(
                        "a transfer to another organization goes to a class of the same level elsewhere".into(),
                    ));
                }
                match c.to_enrollment_id {
                    Some(id)
                        if id != c.enrollment_id
                            && learner.enrollment(id).is_none()
                            && !self.state.enrollment_ids.contains_key(&id) =>
                    {
                        id
                    }
                    _ => {
                        return Err(DomainError::InvalidTransfer(
                            "a transfer to another organization needs a new enrollment id".into(),
                        ))
                    }
                }
            }
        };
        self.check_join(learner, c.to_class_id, to_class, c.transferred_on)?;
        check_age(learner, to_class, c.transferred_on, from.age_exemption)?;
        Ok(vec![Event::Transferred(Transferred {
            learner_id: c.learner_id,
            kind: c.kind,
            from_enrollment_id: c.enrollment_id,
            from_organization_id: from.organization_id,
            from_class_id: from.class_id,
            to_enrollment_id,
            to_organization_id: to_class.organization_id,
            to_class_id: c.to_class_id,
            grade: to_class.grade,
            academic_year: to_class.academic_year,
            transferred_on: c.transferred_on,
            order: c.order.clone(),
        })])
    }

    /// A learner in a class on a date: the rule for marks and attendance.
    fn in_class(
        &self,
        learner_id: LearnerId,
        class_id: ClassId,
        date: NaiveDate,
    ) -> Result<(), DomainError> {
        let learner = self.living(learner_id, Some(date))?;
        let class = self.class(class_id)?;
        self.not_future("lesson date", date)?;
        if date < class.academic_year.first_day() || date > class.academic_year.last_day() {
            return Err(DomainError::DateOutOfRange(format!(
                "{date} is outside academic year {} of the class",
                class.academic_year
            )));
        }
        if learner.membership_on(class_id, date).is_none() {
            if let Some(on) = learner.left_on.filter(|on| date > *on) {
                return Err(DomainError::LearnerLeft {
                    learner: learner_id,
                    on,
                });
            }
            return Err(DomainError::NotInClass {
                learner: learner_id,
                class: class_id,
                date,
            });
        }
        Ok(())
    }

    fn record_mark(&self, c: &MarkRecorded) -> Result<Vec<Event>, DomainError> {
        if self.state.mark(c.mark_id).is_some() {
            return Err(DomainError::AlreadyExists {
                what: "mark",
                id: c.mark_id.to_string(),
            });
        }
        if !(1..=10).contains(&c.weight) {
            return Err(DomainError::Invalid("a mark's weight is 1 to 10".into()));
        }
        if c.kind == MarkKind::Period && c.period.is_none() {
            return Err(DomainError::Invalid(
                "a period mark names its period".into(),
            ));
        }
        self.in_class(c.learner_id, c.class_id, c.lesson_date)?;
        Ok(vec![Event::MarkRecorded(c.clone())])
    }

    fn correct_mark(&self, c: &CorrectMark) -> Result<Vec<Event>, DomainError> {
        let mark = self
            .state
            .mark(c.mark_id)
            .ok_or(DomainError::MarkNotFound(c.mark_id))?;
        if mark.value == c.value {
            return Err(DomainError::MarkUnchanged(c.value.as_str()));
        }
        Ok(vec![Event::MarkCorrected(MarkCorrected {
            mark_id: c.mark_id,
            learner_id: mark.learner_id,
            class_id: mark.class_id,
            previous: mark.value,
            value: c.value,
            reason: c.reason.clone(),
            teacher: c.teacher.clone(),
        })])
    }

    fn record_attendance(&self, c: &AttendanceRecorded) -> Result<Vec<Event>, DomainError> {
        if let Some(lesson) = c.lesson {
            if !(1..=12).contains(&lesson) {
                return Err(DomainError::Invalid("a lesson number is 1 to 12".into()));
            }
        }
        self.in_class(c.learner_id, c.class_id, c.date)?;
        Ok(vec![Event::AttendanceRecorded(c.clone())])
    }

    fn record_exam(&self, c: &RecordExamResult) -> Result<Vec<Event>, DomainError> {
        let learner = self.living(c.learner_id, Some(c.exam_date))?;
        self.not_future("exam date", c.exam_date)?;
        // The grade the learner was in on the exam date: results often arrive after the learner
        // has graduated or moved up, and are still theirs.
        let grade = learner
            .memberships
            .iter()
            .filter(|m| m.covers(c.exam_date))
            .filter_map(|m| self.state.class(m.class_id))
            .find(|class| class.level == Level::General)
            .map(|class| class.grade)
            .ok_or_else(|| {
                DomainError::ExamNotAllowed(format!(
                    "on {} the learner was in no general-education class; the state final attestation is for them",
                    c.exam_date
                ))
            })?;
        let grades: &[u8] = match c.form {
            ExamForm::Oge => &[9],
            ExamForm::Ege => &[11],
            ExamForm::Gve => &[9, 11],
        };
        if !grades.contains(&grade) {
            return Err(DomainError::ExamNotAllowed(format!(
                "{} is sat in grade {:?}, the learner is in grade {grade}",
                c.form, grades
            )));
        }
        if c.primary_points > 100 {
            return Err(DomainError::InvalidExamResult(
                "primary points are 0 to 100".into(),
            ));
        }
        let result = match c.form {
            ExamForm::Ege => {
                let score = c.test_score.filter(|s| *s <= 100).ok_or_else(|| {
                    DomainError::InvalidExamResult("an ЕГЭ result has a test score 0 to 100".into())
                })?;
                if c.mark.is_some() {
                    return Err(DomainError::InvalidExamResult(
                        "an ЕГЭ result has no 5-point mark".into(),
                    ));
                }
                ExamScore::TestScore(score)
            }
            ExamForm::Oge | ExamForm::Gve => {
                let mark = c.mark.filter(|m| m.points().is_some()).ok_or_else(|| {
                    DomainError::InvalidExamResult(format!(
                        "a {} result has a 5-point mark",
                        c.form
                    ))
                })?;
                if c.test_score.is_some() {
                    return Err(DomainError::InvalidExamResult(format!(
                        "a {} result has no test score",
                        c.form
                    )));
                }
                ExamScore::Mark(mark)
            }
        };
        Ok(vec![Event::ExamResultRecorded(ExamResultRecorded {
            learner_id: c.learner_id,
            form: c.form,
            subject: c.subject.clone(),
            exam_date: c.exam_date,
            primary_points: c.primary_points,
            result,
            grade,
        })])
    }

    fn leave(&self, c: &Leave) -> Result<Vec<Event>, DomainError> {
        let learner = self.living(c.learner_id, None)?;
        let enrollment = self.active_enrollment(c.learner_id, learner, c.enrollment_id)?;
        self.not_future("leaving date", c.left_on)?;
        if let Some(m) = learner
            .memberships
            .iter()
            .rev()
            .find(|m| m.class_id == enrollment.class_id && m.until.is_none())
        {
            if c.left_on < m.from {
                return Err(DomainError::DateOutOfRange(format!(
                    "the leaving date {} is before the first day {} in the class",
                    c.left_on, m.from
                )));
            }
        }
        if let Some(last) = learner.last_fact(enrollment.class_id) {
            if last > c.left_on {
                return Err(DomainError::DateOutOfRange(format!(
                    "the leaving date {} is before marks or attendance recorded in the class on {last}",
                    c.left_on
                )));
            }
        }
        if c.certificate.is_some() && c.reason != crate::values::LeaveReason::Graduation {
            return Err(DomainError::Invalid(
                "a certificate is issued on graduation only".into(),
            ));
        }
        Ok(vec![Event::Left(Left {
            learner_id: c.learner_id,
            enrollment_id: c.enrollment_id,
            organization_id: enrollment.organization_id,
            class_id: enrollment.class_id,
            left_on: c.left_on,
            reason: c.reason,
            order: c.order.clone(),
            certificate: c.certificate.clone(),
        })])
    }
}
