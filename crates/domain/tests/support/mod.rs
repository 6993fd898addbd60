//! A given/when/then harness for the decider, in the style of fmodel:
//!
//! ```ignore
//! given(events).when(command).today(date).then(expected_events);
//! given(events).when(command).then_error("class_full");
//! given(events).when(command).then_nothing();
//! ```
//!
//! `then` returns the scenario with the new events applied, so that steps can be chained:
//! `given(..).when(a).then(..).when(b).then_error(..)`.
//!
//! Plus builders for realistic fixtures: organizations of each kind, classes, learners born on a
//! given date, enrollments, marks, transfers... Everything goes through the crate's public API.
#![allow(dead_code)]

use chrono::{Days, NaiveDate};
use contingent_domain::{
    decide, evolve, AcademicYear, ApplicationId, ApplicationSubmitted, Attendance,
    AttendanceRecorded, BirthRegistered, CivilRecord, ClassId, ClassOpened, Command, Consent,
    DeathRegistered, Document, DomainError, EducationForm, Enroll, Enrolled, EnrollmentId, Event,
    FullName, GuardianLinked, LearnerId, Leave, LeaveReason, Left, Level, Mark, MarkId, MarkKind,
    MarkRecorded, Order, OrganizationId, OrganizationKind, OrganizationRegistered, PersonRef,
    Priority, Programme, RegisterDeath, Relation, Sex, Snils, State, StayMode, TeacherAssigned,
    TeacherUnassigned, Text, Transfer, TransferKind, Transferred, UnassignTeacher,
};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------

/// The default "today" of every scenario: a Monday in the middle of academic year 2025/2026.
pub fn today() -> NaiveDate {
    date(2026, 3, 16)
}

/// Events already recorded, and the state they fold into.
pub struct Scenario {
    state: State,
    history: Vec<Event>,
}

/// Starts a scenario from events already in the log.
pub fn given(events: Vec<Event>) -> Scenario {
    let state = events.iter().fold(State::new(), evolve);
    Scenario {
        state,
        history: events,
    }
}

impl Scenario {
    /// The command under test.
    pub fn when(self, command: Command) -> Expectation {
        Expectation {
            scenario: self,
            command,
            today: today(),
        }
    }

    /// The state folded from every event so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Every event so far.
    pub fn history(&self) -> &[Event] {
        &self.history
    }
}

/// A command about to be decided.
pub struct Expectation {
    scenario: Scenario,
    command: Command,
    today: NaiveDate,
}

impl Expectation {
    /// Decides as of another day than [`today()`].
    pub fn today(mut self, today: NaiveDate) -> Self {
        self.today = today;
        self
    }

    /// The raw decision.
    pub fn decision(&self) -> Result<Vec<Event>, DomainError> {
        decide(&self.scenario.state, &self.command, self.today)
    }

    /// The command is accepted with exactly these events; the scenario continues after them.
    #[track_caller]
    pub fn then(self, expected: Vec<Event>) -> Scenario {
        match self.decision() {
            Ok(events) => {
                assert_eq!(
                    events,
                    expected,
                    "command {} recorded other events",
                    self.command.name()
                );
                self.apply(events)
            }
            Err(e) => panic!(
                "command {} was refused with {} ({e}); expected {} event(s)",
                self.command.name(),
                e.code(),
                expected.len()
            ),
        }
    }

    /// The command is accepted with some events (not checked); the scenario continues after them.
    #[track_caller]
    pub fn then_accepted(self) -> Scenario {
        match self.decision() {
            Ok(events) => {
                assert!(
                    !events.is_empty(),
                    "command {} recorded nothing",
                    self.command.name()
                );
                self.apply(events)
            }
            Err(e) => panic!(
                "command {} was refused with {} ({e})",
                self.command.name(),
                e.code()
            ),
        }
    }

    /// The command is refused with this error code.
    #[track_caller]
    pub fn then_error(self, code: &str) -> DomainError {
        match self.decision() {
            Ok(events) => panic!(
                "command {} was accepted with {events:?}; expected refusal {code}",
                self.command.name()
            ),
            Err(e) => {
                assert_eq!(
                    e.code(),
                    code,
                    "command {} refused with another rule: {e}",
                    self.command.name()
                );
                assert!(
                    DomainError::CODES.contains(&code),
                    "{code} is missing from DomainError::CODES"
                );
                e
            }
        }
    }

    /// The command is accepted and records nothing: the same fact is already recorded.
    #[track_caller]
    pub fn then_nothing(self) -> Scenario {
        match self.decision() {
            Ok(events) => {
                assert!(
                    events.is_empty(),
                    "command {} recorded {events:?}; expected nothing",
                    self.command.name()
                );
                self.scenario
            }
            Err(e) => panic!(
                "command {} was refused with {} ({e}); expected nothing recorded",
                self.command.name(),
                e.code()
            ),
        }
    }

    fn apply(self, events: Vec<Event>) -> Scenario {
        let Scenario {
            mut state,
            mut history,
        } = self.scenario;
        for event in events {
            state = evolve(state, &event);
            history.push(event);
        }
        Scenario { state, history }
    }
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// A date that exists.
pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
}

/// `date` plus `days` (may be negative).
pub fn shift(date: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        date.checked_add_days(Days::new(days.unsigned_abs()))
            .expect("in range")
    } else {
        date.checked_sub_days(Days::new(days.unsigned_abs()))
            .expect("in range")
    }
}

/// Valid text.
pub fn t(s: &str) -> Text {
    Text::parse(s).expect("valid text")
}

/// The academic year starting in September of `year`.
pub fn year(start: u16) -> AcademicYear {
    AcademicYear::starting(start)
}

/// A valid SNILS built from a nine-digit number.
pub fn snils(number: u32) -> Snils {
    Snils::from_number(number).expect("a nine-digit number")
}

fn uuid(kind: u8, n: u32) -> Uuid {
    Uuid::from_u128((u128::from(kind) << 96) | u128::from(n))
}

fn short(id: &Uuid) -> u32 {
    (id.as_u128() & 0xffff_ffff) as u32
}

/// Deterministic ids.
pub fn learner_id(n: u32) -> LearnerId {
    LearnerId::from_uuid(uuid(1, n))
}
/// Deterministic ids.
pub fn organization_id(n: u32) -> OrganizationId {
    OrganizationId::from_uuid(uuid(2, n))
}
/// Deterministic ids.
pub fn class_id(n: u32) -> ClassId {
    ClassId::from_uuid(uuid(3, n))
}
/// Deterministic ids.
pub fn enrollment_id(n: u32) -> EnrollmentId {
    EnrollmentId::from_uuid(uuid(4, n))
}
/// Deterministic ids.
pub fn application_id(n: u32) -> ApplicationId {
    ApplicationId::from_uuid(uuid(5, n))
}
/// Deterministic ids.
pub fn mark_id(n: u32) -> MarkId {
    MarkId::from_uuid(uuid(6, n))
}

/// An order dated `on`.
pub fn order(on: NaiveDate) -> Order {
    Order {
        number: t(&format!("{}-уч", on.format("%m%d"))),
        date: on,
    }
}

/// A full name.
pub fn name(surname: &str, given: &str, patronymic: Option<&str>) -> FullName {
    FullName {
        surname: t(surname),
        name: t(given),
        patronymic: patronymic.map(t),
    }
}

/// The general-education programme.
pub fn programme() -> Programme {
    Programme {
        name: t("Основная общеобразовательная программа"),
        adapted: false,
        focus: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Organizations and classes
// ---------------------------------------------------------------------------------------------

/// An organization of a kind, teaching the usual levels of that kind.
pub fn organization(id: OrganizationId, kind: OrganizationKind) -> OrganizationRegistered {
    let (name, levels) = match kind {
        OrganizationKind::Kindergarten => ("МБДОУ «Детский сад № 12»", vec![Level::Preschool]),
        OrganizationKind::School => ("МБОУ «СОШ № 7»", vec![Level::General, Level::Additional]),
        OrganizationKind::Additional => {
            ("МБУ ДО «Дом детского творчества»", vec![Level::Additional])
        }
        OrganizationKind::College => (
            "КГБПОУ «Барнаульский политехнический колледж»",
            vec![Level::Vocational],
        ),
    };
    OrganizationRegistered {
        organization_id: id,
        name: t(&format!("{name} ({})", short(id.as_uuid()))),
        municipality: t("г. Барнаул"),
        kind,
        levels,
    }
}

/// A class or group of a level, grade, academic year (its first calendar year) and capacity.
pub fn class(
    id: ClassId,
    org: OrganizationId,
    level: Level,
    grade: u8,
    start: u16,
    capacity: u16,
) -> ClassOpened {
    let letter = ["А", "Б", "В", "Г", "Д"][(short(id.as_uuid()) % 5) as usize];
    ClassOpened {
        class_id: id,
        organization_id: org,
        academic_year: year(start),
        level,
        grade,
        name: t(&format!("{grade}{letter}")),
        capacity,
        stay_mode: (level == Level::Preschool).then_some(StayMode::FullDay),
    }
}

/// School A: a school teaching general and additional education.
pub fn school_a() -> OrganizationRegistered {
    organization(organization_id(1), OrganizationKind::School)
}
/// School B, another school.
pub fn school_b() -> OrganizationRegistered {
    organization(organization_id(2), OrganizationKind::School)
}
/// A kindergarten.
pub fn kindergarten() -> OrganizationRegistered {
    organization(organization_id(3), OrganizationKind::Kindergarten)
}
/// An additional-education centre.
pub fn club() -> OrganizationRegistered {
    organization(organization_id(4), OrganizationKind::Additional)
}
/// A college.
pub fn college() -> OrganizationRegistered {
    organization(organization_id(5), OrganizationKind::College)
}

/// 5А of school A, 2025/2026, 25 places.
pub fn class_5a() -> ClassOpened {
    class(class_id(1), organization_id(1), Level::General, 5, 2025, 25)
}
/// 5Б of school A, 2025/2026, 25 places.
pub fn class_5b() -> ClassOpened {
    class(class_id(2), organization_id(1), Level::General, 5, 2025, 25)
}
/// 6А of school A, 2026/2027, 25 places.
pub fn class_6a() -> ClassOpened {
    class(class_id(3), organization_id(1), Level::General, 6, 2026, 25)
}
/// 5 of school B, 2025/2026, 25 places.
pub fn class_5_school_b() -> ClassOpened {
    class(class_id(4), organization_id(2), Level::General, 5, 2025, 25)
}
/// A robotics group of the additional-education centre, 2025/2026, 15 places.
pub fn club_group() -> ClassOpened {
    class(
        class_id(5),
        organization_id(4),
        Level::Additional,
        0,
        2025,
        15,
    )
}
/// 1А of school A, 2025/2026.
pub fn class_1a() -> ClassOpened {
    class(class_id(6), organization_id(1), Level::General, 1, 2025, 25)
}
/// 9А of school A, 2025/2026.
pub fn class_9a() -> ClassOpened {
    class(class_id(7), organization_id(1), Level::General, 9, 2025, 25)
}
/// 11А of school A, 2025/2026.
pub fn class_11a() -> ClassOpened {
    class(
        class_id(8),
        organization_id(1),
        Level::General,
        11,
        2025,
        25,
    )
}
/// 7А of school A, 2026/2027 (not the next grade after 5А).
pub fn class_7a_next_year() -> ClassOpened {
    class(class_id(9), organization_id(1), Level::General, 7, 2026, 25)
}
/// A kindergarten group for 3-year-olds, 2025/2026.
pub fn kindergarten_group() -> ClassOpened {
    class(
        class_id(10),
        organization_id(3),
        Level::Preschool,
        3,
        2025,
        20,
    )
}
/// An additional-education group of school A, 2025/2026.
pub fn school_club() -> ClassOpened {
    class(
        class_id(11),
        organization_id(1),
        Level::Additional,
        0,
        2025,
        15,
    )
}

/// The standard world: every organization above and every class above.
pub fn world() -> Vec<Event> {
    let mut events: Vec<Event> = [school_a(), school_b(), kindergarten(), club(), college()]
        .into_iter()
        .map(Event::OrganizationRegistered)
        .collect();
    events.extend(
        [
            class_5a(),
            class_5b(),
            class_6a(),
            class_5_school_b(),
            club_group(),
            class_1a(),
            class_9a(),
            class_11a(),
            class_7a_next_year(),
            kindergarten_group(),
            school_club(),
        ]
        .into_iter()
        .map(Event::ClassOpened),
    );
    events
}

/// The standard world with one class's capacity replaced.
pub fn world_with_capacity(class: ClassId, capacity: u16) -> Vec<Event> {
    world()
        .into_iter()
        .map(|e| match e {
            Event::ClassOpened(mut c) if c.class_id == class => {
                c.capacity = capacity;
                Event::ClassOpened(c)
            }
            other => other,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Teachers
// ---------------------------------------------------------------------------------------------

/// An assignment of the teacher with account `teacher` to `class` (of the class's organization),
/// for `subjects`, from `from`. The name is derived from the account.
pub fn assignment(
    class: &ClassOpened,
    teacher: &str,
    subjects: &[&str],
    from: NaiveDate,
) -> TeacherAssigned {
    TeacherAssigned {
        class_id: class.class_id,
        organization_id: class.organization_id,
        teacher: t(teacher),
        teacher_name: t(&format!("Петрова Наталья Сергеевна ({teacher})")),
        subjects: subjects.iter().map(|s| t(s)).collect(),
        from,
    }
}

/// The command ending a teacher's assignment to a class on `until`.
pub fn unassignment(class: ClassId, teacher: &str, until: NaiveDate) -> UnassignTeacher {
    UnassignTeacher {
        class_id: class,
        teacher: t(teacher),
        until,
    }
}

/// The event an accepted unassignment from `class` records.
pub fn unassigned(class: &ClassOpened, teacher: &str, until: NaiveDate) -> Event {
    Event::TeacherUnassigned(TeacherUnassigned {
        class_id: class.class_id,
        organization_id: class.organization_id,
        teacher: t(teacher),
        until,
    })
}

// ---------------------------------------------------------------------------------------------
// Learners
// ---------------------------------------------------------------------------------------------

/// The civil registry's birth record for a learner (one per learner id).
pub fn birth_record(learner: LearnerId, born: NaiveDate) -> CivilRecord {
    CivilRecord {
        number: t(&format!("1102201{:08}", short(learner.as_uuid()))),
        date: shift(born, 7),
        office: t("Отдел ЗАГС Центрального района г. Барнаула"),
    }
}

/// A birth as the civil registry reports it.
pub fn birth(learner: LearnerId, born: NaiveDate) -> BirthRegistered {
    let n = short(learner.as_uuid());
    BirthRegistered {
        learner_id: learner,
        record: birth_record(learner, born),
        child: name("Иванов", &format!("Пётр-{n}"), Some("Сергеевич")),
        sex: Sex::Male,
        birth_date: born,
        certificate: Some(Document {
            kind: t("birth_certificate"),
            series: Some(t("II-ТО")),
            number: t(&format!("{:06}", 500_000 + n)),
        }),
        snils: None,
    }
}

/// A birth with a SNILS.
pub fn birth_with_snils(learner: LearnerId, born: NaiveDate, number: Snils) -> BirthRegistered {
    BirthRegistered {
        snils: Some(number),
        ..birth(learner, born)
    }
}

/// The event of a learner born on a date.
pub fn born(learner: LearnerId, on: NaiveDate) -> Event {
    Event::BirthRegistered(birth(learner, on))
}

/// A death as the civil registry reports it.
pub fn death(learner: LearnerId, on: NaiveDate, record: &str) -> RegisterDeath {
    RegisterDeath {
        person: PersonRef::LearnerId(learner),
        record: death_record(on, record),
        death_date: on,
    }
}

/// A death record.
pub fn death_record(on: NaiveDate, number: &str) -> CivilRecord {
    CivilRecord {
        number: t(number),
        date: on,
        office: t("Отдел ЗАГС Центрального района г. Барнаула"),
    }
}

/// The event of a learner's death.
pub fn died(learner: LearnerId, on: NaiveDate, record: &str) -> Event {
    Event::DeathRegistered(DeathRegistered {
        learner_id: learner,
        record: death_record(on, record),
        death_date: on,
    })
}

/// A guardian linked with consent given on `on`.
pub fn guardian(learner: LearnerId, number: Snils, who: FullName, on: NaiveDate) -> GuardianLinked {
    GuardianLinked {
        learner_id: learner,
        guardian_snils: number,
        guardian: who,
        relation: Relation::Mother,
        consent: Consent {
            given_on: on,
            document: t("Согласие на обработку ПДн № 17"),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Movement
// ---------------------------------------------------------------------------------------------

/// A primary full-time enrollment command.
pub fn enroll(
    enrollment: EnrollmentId,
    learner: LearnerId,
    class: ClassId,
    on: NaiveDate,
) -> Enroll {
    Enroll {
        enrollment_id: enrollment,
        learner_id: learner,
        class_id: class,
        programme: programme(),
        primary: true,
        secondary_reason: None,
        form: EducationForm::FullTime,
        enrolled_on: on,
        order: order(on),
        application_id: None,
        age_exemption: None,
    }
}

/// The event an accepted enrollment command records into `class`.
pub fn enrolled(c: &Enroll, class: &ClassOpened) -> Event {
    Event::Enrolled(Enrolled {
        enrollment_id: c.enrollment_id,
        learner_id: c.learner_id,
        organization_id: class.organization_id,
        class_id: class.class_id,
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
    })
}

/// The event of a primary enrollment of `learner` into `class` on `on`.
pub fn enrolled_in(
    enrollment: EnrollmentId,
    learner: LearnerId,
    class: &ClassOpened,
    on: NaiveDate,
) -> Event {
    enrolled(&enroll(enrollment, learner, class.class_id, on), class)
}

/// A transfer command.
pub fn transfer(
    learner: LearnerId,
    enrollment: EnrollmentId,
    kind: TransferKind,
    to: ClassId,
    to_enrollment: Option<EnrollmentId>,
    on: NaiveDate,
) -> Transfer {
    Transfer {
        learner_id: learner,
        enrollment_id: enrollment,
        kind,
        to_class_id: to,
        to_enrollment_id: to_enrollment,
        transferred_on: on,
        order: order(on),
    }
}

/// The event an accepted transfer records.
pub fn transferred(c: &Transfer, from: &ClassOpened, to: &ClassOpened) -> Event {
    Event::Transferred(Transferred {
        learner_id: c.learner_id,
        kind: c.kind,
        from_enrollment_id: c.enrollment_id,
        from_organization_id: from.organization_id,
        from_class_id: from.class_id,
        to_enrollment_id: c.to_enrollment_id.unwrap_or(c.enrollment_id),
        to_organization_id: to.organization_id,
        to_class_id: to.class_id,
        grade: to.grade,
        academic_year: to.academic_year,
        transferred_on: c.transferred_on,
        order: c.order.clone(),
    })
}

/// A leaving command.
pub fn leave(
    learner: LearnerId,
    enrollment: EnrollmentId,
    on: NaiveDate,
    reason: LeaveReason,
) -> Leave {
    Leave {
        learner_id: learner,
        enrollment_id: enrollment,
        left_on: on,
        reason,
        order: order(on),
        certificate: None,
    }
}

/// The event an accepted leaving records from `class`.
pub fn left(c: &Leave, class: &ClassOpened) -> Event {
    Event::Left(Left {
        learner_id: c.learner_id,
        enrollment_id: c.enrollment_id,
        organization_id: class.organization_id,
        class_id: class.class_id,
        left_on: c.left_on,
        reason: c.reason,
        order: c.order.clone(),
        certificate: c.certificate.clone(),
    })
}

/// An application for a place.
pub fn application(
    id: ApplicationId,
    learner: LearnerId,
    org: OrganizationId,
    level: Level,
    start: u16,
    grade: u8,
    on: NaiveDate,
) -> ApplicationSubmitted {
    ApplicationSubmitted {
        application_id: id,
        learner_id: learner,
        organization_id: org,
        level,
        academic_year: year(start),
        grade,
        class_id: None,
        submitted_on: on,
        desired_start: None,
        priority: Priority::General,
    }
}

// ---------------------------------------------------------------------------------------------
// The class register
// ---------------------------------------------------------------------------------------------

/// A current mark for a lesson.
pub fn mark(
    id: MarkId,
    learner: LearnerId,
    class: ClassId,
    on: NaiveDate,
    value: Mark,
) -> MarkRecorded {
    MarkRecorded {
        mark_id: id,
        learner_id: learner,
        class_id: class,
        subject: t("Математика"),
        lesson_date: on,
        kind: MarkKind::Current,
        work: t("контрольная работа"),
        period: None,
        value,
        weight: 2,
        teacher: t("Петрова А. В."),
    }
}

/// Attendance of a whole day.
pub fn attendance(
    learner: LearnerId,
    class: ClassId,
    on: NaiveDate,
    status: Attendance,
) -> AttendanceRecorded {
    AttendanceRecorded {
        learner_id: learner,
        class_id: class,
        date: on,
        lesson: None,
        status,
    }
}
