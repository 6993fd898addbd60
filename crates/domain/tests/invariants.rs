//! Property tests of the decider: random sequences of a few hundred commands over a small fixed
//! world (three organizations, ten small classes, a dozen learners, a small pool of SNILS, of
//! ids and of teachers, dates over two academic years, commands repeated at random). Every command goes through
//! `decide`; accepted events go through `evolve`; after every step the invariants the write side
//! must never break are checked.
//!
//! `PROPTEST_CASES` raises the number of cases (default here: 32).

mod support;

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use contingent_domain::{
    decide, evolve, Attendance, ChangeClassCapacity, ClassId, ClassOpened, Command, CorrectMark,
    ErasePersonalData, Event, ExamForm, LearnerId, LeaveReason, Level, Mark, OrganizationKind,
    PersonRef, RecordExamResult, RejectApplication, Snils, SnilsOwner, SnilsRecorded, State,
    TransferKind, WithdrawApplication,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::*;

const LEARNERS: usize = 12;
const SNILS_POOL: usize = 8;
const ENROLLMENT_POOL: u32 = 24;
const MARK_POOL: u32 = 60;
const APPLICATION_POOL: u32 = 8;
const TEACHERS: [&str; 4] = [
    "teacher-0001",
    "teacher-0002",
    "teacher-0003",
    "teacher-0004",
];
const TEACHER_SUBJECTS: [&[&str]; 3] = [&["Математика"], &["Русский язык", "Литература"], &[]];
const GUARDIAN_NAMES: [(&str, &str); 3] = [
    ("Иванова", "Мария"),
    ("Петров", "Сергей"),
    ("Сидорова", "Анна"),
];

/// The day every command is decided on: after both academic years of the world.
fn now() -> NaiveDate {
    date(2027, 7, 1)
}

fn sep1_2025() -> NaiveDate {
    date(2025, 9, 1)
}

/// Organizations: school A (1), school B (2), the additional-education centre (4).
fn organizations() -> Vec<contingent_domain::OrganizationRegistered> {
    vec![
        organization(organization_id(1), OrganizationKind::School),
        organization(organization_id(2), OrganizationKind::School),
        organization(organization_id(4), OrganizationKind::Additional),
    ]
}

const ORGS: [u32; 3] = [1, 2, 4];

/// (organization, level, grade, academic year) of the ten classes.
const CLASSES: [(u32, Level, u8, u16); 10] = [
    (1, Level::General, 5, 2025),
    (1, Level::General, 5, 2025),
    (1, Level::General, 6, 2026),
    (2, Level::General, 5, 2025),
    (2, Level::General, 6, 2026),
    (1, Level::General, 1, 2025),
    (1, Level::General, 9, 2025),
    (2, Level::General, 11, 2025),
    (4, Level::Additional, 0, 2025),
    (1, Level::Additional, 0, 2026),
];

fn classes(capacities: &[u16]) -> Vec<ClassOpened> {
    CLASSES
        .iter()
        .zip(capacities)
        .enumerate()
        .map(|(i, (&(org, level, grade, start), &capacity))| {
            class(
                class_id(i as u32 + 1),
                organization_id(org),
                level,
                grade,
                start,
                capacity,
            )
        })
        .collect()
}

fn snils_pool() -> Vec<Snils> {
    (0..SNILS_POOL as u32)
        .map(|i| snils(112_233_445 + 7_919 * i))
        .collect()
}

fn learner(i: usize) -> LearnerId {
    learner_id(i as u32 + 1)
}

/// Learners are born every 200 days from September 2013: from fifth-graders to preschoolers.
fn birth_date(i: usize) -> NaiveDate {
    shift(date(2013, 9, 2), 200 * i as i64)
}

const MARKS: [Mark; 6] = [
    Mark::Two,
    Mark::Three,
    Mark::Four,
    Mark::Five,
    Mark::Pass,
    Mark::Fail,
];

/// One step of a random history, in terms of indices into the small world.
#[derive(Clone, Debug)]
enum Op {
    /// 0–1: the same birth record again; 2: with another birth date; 3: with another SNILS;
    /// 4: the same record retried under a fresh learner id.
    Birth {
        learner: usize,
        variant: u8,
        snils: usize,
    },
    RecordSnils {
        learner: usize,
        snils: usize,
    },
    Death {
        learner: usize,
        by: usize,
        day: i64,
        record: u8,
    },
    Guardian {
        learner: usize,
        snils: usize,
        name: usize,
    },
    Submit {
        app: u32,
        learner: usize,
        org: usize,
        level: usize,
        year: u16,
        day: i64,
    },
    Withdraw {
        app: u32,
        day: i64,
    },
    Reject {
        app: u32,
        day: i64,
    },
    Enroll {
        enrollment: u32,
        learner: usize,
        class: usize,
        primary: bool,
        day: i64,
        app: Option<u32>,
        exemption: bool,
    },
    /// `follow`: to a class that fits the kind, after the first day in the current class.
    Transfer {
        learner: usize,
        pick: usize,
        kind: usize,
        to: usize,
        follow: bool,
        new: Option<u32>,
        day: i64,
    },
    Leave {
        learner: usize,
        pick: usize,
        day: i64,
    },
    /// `follow`: in a class the learner has been in, around the dates of that stay.
    Mark {
        mark: u32,
        learner: usize,
        class: usize,
        follow: bool,
        day: i64,
        value: usize,
    },
    Correct {
        mark: u32,
        value: usize,
    },
    Attend {
        learner: usize,
        class: usize,
        follow: bool,
        day: i64,
        status: usize,
    },
    Exam {
        learner: usize,
        form: usize,
        score: u8,
        mark: usize,
        points: u16,
    },
    Capacity {
        class: usize,
        capacity: u16,
    },
    /// `other_org`: named with another organization than the class's.
    Assign {
        class: usize,
        teacher: usize,
        subjects: usize,
        other_org: bool,
        day: i64,
    },
    /// `follow`: a teacher assigned now, to this class or the next one that has teachers.
    Unassign {
        class: usize,
        teacher: usize,
        follow: bool,
        day: i64,
    },
    Repeat {
        back: usize,
    },
    Erase {
        learner: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let l = 0..LEARNERS;
    let c = 0..CLASSES.len();
    prop_oneof![
        3 => (l.clone(), 0u8..5, 0..SNILS_POOL).prop_map(|(learner, variant, snils)| Op::Birth { learner, variant, snils }),
        1 => (l.clone(), 0..SNILS_POOL).prop_map(|(learner, snils)| Op::RecordSnils { learner, snils }),
        1 => (l.clone(), 0..3usize, -30i64..700, 0u8..4)
            .prop_map(|(learner, by, day, record)| Op::Death { learner, by, day, record }),
        2 => (l.clone(), 0..SNILS_POOL, 0..GUARDIAN_NAMES.len())
            .prop_map(|(learner, snils, name)| Op::Guardian { learner, snils, name }),
        3 => (1..=APPLICATION_POOL, l.clone(), 0..ORGS.len(), 0..4usize, 2025u16..=2026, -200i64..400)
            .prop_map(|(app, learner, org, level, year, day)| Op::Submit { app, learner, org, level, year, day }),
        1 => (1..=APPLICATION_POOL, -100i64..500).prop_map(|(app, day)| Op::Withdraw { app, day }),
        1 => (1..=APPLICATION_POOL, -100i64..500).prop_map(|(app, day)| Op::Reject { app, day }),
        10 => (
            1..=ENROLLMENT_POOL,
            l.clone(),
            c.clone(),
            proptest::bool::weighted(0.85),
            -130i64..330,
            proptest::option::weighted(0.2, 1..=APPLICATION_POOL),
            proptest::bool::weighted(0.2),
        )
            .prop_map(|(enrollment, learner, class, primary, day, app, exemption)| Op::Enroll {
                enrollment, learner, class, primary, day, app, exemption,
            }),
        8 => (
            l.clone(),
            0..8usize,
            0..3usize,
            c.clone(),
            proptest::bool::weighted(0.85),
            proptest::option::weighted(0.85, 1..=ENROLLMENT_POOL),
            -130i64..330,
        )
            .prop_map(|(learner, pick, kind, to, follow, new, day)| Op::Transfer { learner, pick, kind, to, follow, new, day }),
        3 => (l.clone(), 0..8usize, -30i64..700).prop_map(|(learner, pick, day)| Op::Leave { learner, pick, day }),
        10 => (1..=MARK_POOL, l.clone(), c.clone(), proptest::bool::weighted(0.75), -10i64..370, 0..MARKS.len())
            .prop_map(|(mark, learner, class, follow, day, value)| Op::Mark { mark, learner, class, follow, day, value }),
        2 => (1..=MARK_POOL, 0..MARKS.len()).prop_map(|(mark, value)| Op::Correct { mark, value }),
        4 => (l.clone(), c.clone(), proptest::bool::weighted(0.75), -10i64..370, 0..Attendance::ALL.len())
            .prop_map(|(learner, class, follow, day, status)| Op::Attend { learner, class, follow, day, status }),
        2 => (l.clone(), 0..3usize, 0u8..=110, 0..=MARKS.len(), 0u16..=105)
            .prop_map(|(learner, form, score, mark, points)| Op::Exam { learner, form, score, mark, points }),
        2 => (c.clone(), 0u16..=4).prop_map(|(class, capacity)| Op::Capacity { class, capacity }),
        2 => (c.clone(), 0..TEACHERS.len(), 0..TEACHER_SUBJECTS.len(), proptest::bool::weighted(0.1), -10i64..400)
            .prop_map(|(class, teacher, subjects, other_org, day)| Op::Assign { class, teacher, subjects, other_org, day }),
        1 => (c, 0..TEACHERS.len(), proptest::bool::weighted(0.8), -10i64..400)
            .prop_map(|(class, teacher, follow, day)| Op::Unassign { class, teacher, follow, day }),
        4 => (0..40usize).prop_map(|back| Op::Repeat { back }),
        1 => (0..LEARNERS).prop_map(|learner| Op::Erase { learner }),
    ]
}

/// A random world and history.
#[derive(Clone, Debug)]
struct History {
    capacities: Vec<u16>,
    snils_at_birth: Vec<Option<usize>>,
    ops: Vec<Op>,
}

fn history(steps: std::ops::Range<usize>) -> impl Strategy<Value = History> {
    (
        proptest::collection::vec(1u16..=3, CLASSES.len()),
        proptest::collection::vec(proptest::option::weighted(0.3, 0..SNILS_POOL), LEARNERS),
        proptest::collection::vec(op(), steps),
    )
        .prop_map(|(capacities, snils_at_birth, ops)| History {
            capacities,
            snils_at_birth,
            ops,
        })
}

/// A learner's enrollment picked by index: an active one for even picks, any one for odd picks,
/// an id from the pool when the learner has none.
fn pick_enrollment(
    state: &State,
    learner: LearnerId,
    pick: usize,
) -> contingent_domain::EnrollmentId {
    let Some(l) = state.learner(learner) else {
        return enrollment_id(pick as u32 % ENROLLMENT_POOL + 1);
    };
    let active: Vec<_> = l.active_enrollments().map(|e| e.id).collect();
    if pick.is_multiple_of(2) && !active.is_empty() {
        return active[pick / 2 % active.len()];
    }
    if l.enrollments.is_empty() {
        return enrollment_id(pick as u32 % ENROLLMENT_POOL + 1);
    }
    l.enrollments[pick % l.enrollments.len()].id
}

fn birth_command(i: usize, snils: Option<usize>, variant: bool, pool: &[Snils]) -> Command {
    let mut b = birth(learner(i), birth_date(i));
    b.snils = snils.map(|s| pool[s]);
    if variant {
        b.birth_date = shift(b.birth_date, 1);
    }
    Command::RegisterBirth(b)
}

/// Turns a step into a command, given the world and what is recorded so far.
/// A class the learner has been in, and a date around that stay (its first day up to the day
/// after it ends, both edges included); or the class and day as generated.
fn around_a_stay(
    state: &State,
    world: &[ClassOpened],
    i: usize,
    class: usize,
    follow: bool,
    day: i64,
) -> (ClassId, NaiveDate) {
    if follow {
        if let Some(l) = state
            .learner(learner(i))
            .filter(|l| !l.memberships.is_empty())
        {
            let m = l.memberships[class % l.memberships.len()];
            let end = m.until.unwrap_or_else(|| shift(m.from, 300));
            let span = (end - m.from).num_days() + 1;
            return (m.class_id, shift(m.from, day.rem_euclid(span.max(1))));
        }
    }
    (
        world[class].class_id,
        shift(world[class].academic_year.first_day(), day),
    )
}

/// A target class that fits the kind of transfer from the enrollment's current class, and a date
/// after the first day in it; or the class and day as generated.
#[allow(clippy::too_many_arguments)]
fn transfer_target(
    state: &State,
    world: &[ClassOpened],
    i: usize,
    enrollment: contingent_domain::EnrollmentId,
    kind: TransferKind,
    to: usize,
    follow: bool,
    day: i64,
) -> (ClassId, NaiveDate) {
    let generated = (
        world[to].class_id,
        shift(world[to].academic_year.first_day(), day),
    );
    if !follow {
        return generated;
    }
    let Some(l) = state.learner(learner(i)) else {
        return generated;
    };
    let Some(e) = l.enrollment(enrollment) else {
        return generated;
    };
    let Some(from) = world.iter().find(|c| c.class_id == e.class_id) else {
        return generated;
    };
    let candidates: Vec<&ClassOpened> = world
        .iter()
        .filter(|c| c.class_id != from.class_id && c.level == from.level)
        .filter(|c| match kind {
            TransferKind::WithinOrganization => {
                c.organization_id == from.organization_id && c.academic_year == from.academic_year
            }
            TransferKind::NextGrade => {
                c.organization_id == from.organization_id
                    && c.academic_year == from.academic_year.next()
                    && c.grade == from.grade + 1
            }
            TransferKind::ToOtherOrganization => c.organization_id != from.organization_id,
        })
        .collect();
    if candidates.is_empty() {
        return generated;
    }
    let target = candidates[to % candidates.len()];
    let on = match kind {
        TransferKind::NextGrade => shift(target.academic_year.first_day(), day.rem_euclid(40) - 20),
        _ => {
            let first = l
                .memberships
                .iter()
                .rev()
                .find(|m| m.class_id == e.class_id && m.until.is_none())
                .map_or(from.academic_year.first_day(), |m| m.from);
            shift(first, day.rem_euclid(150))
        }
    };
    (target.class_id, on)
}

fn command(
    op: &Op,
    world: &[ClassOpened],
    pool: &[Snils],
    births: &[Option<usize>],
    state: &State,
    issued: &[Command],
) -> Option<Command> {
    let first_day = |class: usize| world[class].academic_year.first_day();
    Some(match *op {
        Op::Birth {
            learner: i,
            variant,
            snils,
        } => match variant {
            0 | 1 => birth_command(i, births[i], false, pool),
            2 => birth_command(i, births[i], true, pool),
            3 => birth_command(i, Some(snils), false, pool),
            _ => {
                let Command::RegisterBirth(mut b) = birth_command(i, births[i], false, pool) else {
                    unreachable!("a birth")
                };
                // A retry under a fresh id, once the record is known (before that it would register
                // a learner the other steps never name).
                if state.learner_by_birth_record(&b.record).is_some() {
                    b.learner_id = learner_id(100 + i as u32);
                }
                Command::RegisterBirth(b)
            }
        },
        Op::RecordSnils { learner: i, snils } => Command::RecordSnils(SnilsRecorded {
            learner_id: learner(i),
            snils: pool[snils],
        }),
        Op::Death {
            learner: i,
            by,
            day,
            record,
        } => {
            let mut d = death(learner(i), shift(sep1_2025(), day), &format!("D-{record}"));
            d.person = match by {
                0 => PersonRef::LearnerId(learner(i)),
                1 => PersonRef::Snils(pool[i % SNILS_POOL]),
                _ => {
                    let r = birth_record(learner(i), birth_date(i));
                    PersonRef::BirthRecord {
                        office: r.office,
                        number: r.number,
                    }
                }
            };
            Command::RegisterDeath(d)
        }
        Op::Guardian {
            learner: i,
            snils,
            name: n,
        } => {
            let (surname, given) = GUARDIAN_NAMES[n];
            Command::LinkGuardian(guardian(
                learner(i),
                pool[snils],
                name(surname, given, None),
                date(2025, 9, 1),
            ))
        }
        Op::Submit {
            app,
            learner: i,
            org,
            level,
            year: start,
            day,
        } => {
            let level = [
                Level::General,
                Level::Additional,
                Level::Preschool,
                Level::Vocational,
            ][level];
            Command::SubmitApplication(application(
                application_id(app),
                learner(i),
                organization_id(ORGS[org]),
                level,
                start,
                1,
                shift(sep1_2025(), day),
            ))
        }
        Op::Withdraw { app, day } => Command::WithdrawApplication(WithdrawApplication {
            application_id: application_id(app),
            withdrawn_on: shift(sep1_2025(), day),
            reason: None,
        }),
        Op::Reject { app, day } => Command::RejectApplication(RejectApplication {
            application_id: application_id(app),
            rejected_on: shift(sep1_2025(), day),
            reason: t("нет мест"),
        }),
        Op::Enroll {
            enrollment,
            learner: i,
            class,
            primary,
            day,
            app,
            exemption,
        } => {
            let mut e = enroll(
                enrollment_id(enrollment),
                learner(i),
                world[class].class_id,
                shift(first_day(class), day),
            );
            e.primary = primary;
            e.secondary_reason =
                (!primary).then_some(contingent_domain::SecondaryReason::NetworkProgramme);
            e.application_id = app.map(application_id);
            e.age_exemption = exemption.then(|| t("Разрешение учредителя"));
            Command::Enroll(e)
        }
        Op::Transfer {
            learner: i,
            pick,
            kind,
            to,
            follow,
            new,
            day,
        } => {
            let kind = [
                TransferKind::WithinOrganization,
                TransferKind::NextGrade,
                TransferKind::ToOtherOrganization,
            ][kind];
            let enrollment = pick_enrollment(state, learner(i), pick);
            let (to, on) = transfer_target(state, world, i, enrollment, kind, to, follow, day);
            Command::Transfer(transfer(
                learner(i),
                enrollment,
                kind,
                to,
                new.map(enrollment_id),
                on,
            ))
        }
        Op::Leave {
            learner: i,
            pick,
            day,
        } => Command::Leave(leave(
            learner(i),
            pick_enrollment(state, learner(i), pick),
            shift(sep1_2025(), day),
            LeaveReason::MovedAway,
        )),
        Op::Mark {
            mark: m,
            learner: i,
            class,
            follow,
            day,
            value,
        } => {
            let (class, on) = around_a_stay(state, world, i, class, follow, day);
            Command::RecordMark(mark(mark_id(m), learner(i), class, on, MARKS[value]))
        }
        Op::Correct { mark, value } => Command::CorrectMark(CorrectMark {
            mark_id: mark_id(mark),
            value: MARKS[value],
            reason: t("исправление"),
            teacher: t("Петрова А. В."),
        }),
        Op::Attend {
            learner: i,
            class,
            follow,
            day,
            status,
        } => {
            let (class, on) = around_a_stay(state, world, i, class, follow, day);
            Command::RecordAttendance(attendance(learner(i), class, on, Attendance::ALL[status]))
        }
        Op::Exam {
            learner: i,
            form,
            score,
            mark,
            points,
        } => Command::RecordExamResult(RecordExamResult {
            learner_id: learner(i),
            form: [ExamForm::Oge, ExamForm::Ege, ExamForm::Gve][form],
            subject: t("Математика"),
            exam_date: date(2026, 6, 1),
            primary_points: points,
            test_score: (form == 1).then_some(score),
            mark: MARKS.get(mark).copied(),
        }),
        Op::Erase { learner: l } => Command::ErasePersonalData(ErasePersonalData {
            learner_id: learner(l),
            reason: contingent_domain::Text::parse("срок хранения истёк").expect("text"),
        }),
        Op::Capacity { class, capacity } => Command::ChangeClassCapacity(ChangeClassCapacity {
            class_id: world[class].class_id,
            capacity,
            reason: None,
        }),
        Op::Assign {
            class,
            teacher,
            subjects,
            other_org,
            day,
        } => {
            let mut a = assignment(
                &world[class],
                TEACHERS[teacher],
                TEACHER_SUBJECTS[subjects],
                shift(first_day(class), day),
            );
            if other_org {
                a.organization_id = organization_id(if a.organization_id == organization_id(1) {
                    2
                } else {
                    1
                });
            }
            Command::AssignTeacher(a)
        }
        Op::Unassign {
            class,
            teacher,
            follow,
            day,
        } => {
            let assigned = (0..world.len())
                .map(|k| (class + k) % world.len())
                .find_map(|k| {
                    let teachers = &state.class(world[k].class_id)?.teachers;
                    let t = teachers.get(teacher % teachers.len().max(1))?;
                    Some((k, t.as_str().to_owned()))
                })
                .filter(|_| follow);
            let (class, teacher) =
                assigned.unwrap_or_else(|| (class, TEACHERS[teacher].to_owned()));
            Command::UnassignTeacher(unassignment(
                world[class].class_id,
                &teacher,
                shift(first_day(class), day),
            ))
        }
        Op::Repeat { back } => {
            if issued.is_empty() {
                return None;
            }
            issued[issued.len() - 1 - back % issued.len()].clone()
        }
    })
}

/// What a run saw: for the statistics test and for the checks.
#[derive(Default, Debug)]
struct Tally {
    accepted: HashMap<&'static str, usize>,
    refused: HashMap<&'static str, usize>,
    nothing: usize,
}

/// A mark or attendance as recorded: learner, class, date.
type ClassFact = (LearnerId, ClassId, NaiveDate);

struct Run {
    world: Vec<ClassOpened>,
    pool: Vec<Snils>,
    state: State,
    accepted: Vec<Event>,
    issued: Vec<Command>,
    /// Whether each issued command was accepted with events.
    recorded: Vec<bool>,
    /// The learner each issued command was about when it was decided.
    about: Vec<Option<contingent_domain::LearnerId>>,
    marks: HashMap<contingent_domain::MarkId, ClassFact>,
    /// Every mark and attendance recorded.
    class_facts: Vec<ClassFact>,
    /// The teachers of each class as the accepted events say: assigned and not since unassigned.
    teachers: HashMap<ClassId, Vec<String>>,
    tally: Tally,
}

impl Run {
    fn new(capacities: &[u16]) -> Self {
        Self {
            world: classes(capacities),
            pool: snils_pool(),
            state: State::new(),
            accepted: Vec::new(),
            issued: Vec::new(),
            recorded: Vec::new(),
            about: Vec::new(),
            marks: HashMap::new(),
            class_facts: Vec::new(),
            teachers: HashMap::new(),
            tally: Tally::default(),
        }
    }

    /// Decides a command, applies what is accepted, checks every invariant.
    fn step(&mut self, command: Command, repeat_of: Option<usize>) -> Result<(), TestCaseError> {
        let about = contingent_domain::learner_of(&self.state, &command);
        let decision = decide(&self.state, &command, now());
        let mut was_recorded = false;
        match &decision {
            Ok(events) if events.is_empty() => self.tally.nothing += 1,
            Ok(events) => {
                was_recorded = true;
                *self.tally.accepted.entry(command.name()).or_default() += 1;
                for event in events {
                    self.check_before(event)?;
                    self.state = evolve(std::mem::take(&mut self.state), event);
                    self.accepted.push(event.clone());
                }
            }
            Err(e) => *self.tally.refused.entry(e.code()).or_default() += 1,
        }
        if let Some(original) = repeat_of {
            // An erasure forgets the learner's civil records: a record reported again after it
            // is not recognized as the same fact (and its number may since have been recorded
            // for another learner, whom the repeat then names: a conflict, rightly).
            let erased = [self.about[original], about]
                .into_iter()
                .flatten()
                .any(|l| self.state.is_erased(l));
            if self.recorded[original] && !erased {
                check_repeat(&command, &decision)?;
            }
        }
        self.issued.push(command);
        self.recorded.push(was_recorded);
        self.about.push(about);
        self.check_invariants()
    }

    /// Before an event is applied: a mark or attendance is for a learner in the class on its date.
    fn check_before(&mut self, event: &Event) -> Result<(), TestCaseError> {
        let fact = match event {
            Event::MarkRecorded(m) => {
                self.marks
                    .insert(m.mark_id, (m.learner_id, m.class_id, m.lesson_date));
                Some((m.learner_id, m.class_id, m.lesson_date))
            }
            Event::AttendanceRecorded(a) => Some((a.learner_id, a.class_id, a.date)),
            Event::TeacherAssigned(a) => {
                let class = self.state.class(a.class_id);
                prop_assert!(
                    class.is_some_and(|c| c.organization_id == a.organization_id),
                    "a teacher assigned to a class of another organization: {event:?}"
                );
                prop_assert!(!a.subjects.is_empty(), "an assignment without subjects");
                let teachers = self.teachers.entry(a.class_id).or_default();
                prop_assert!(
                    !teachers.contains(&a.teacher.as_str().to_owned()),
                    "{} assigned twice to class {}",
                    a.teacher,
                    a.class_id
                );
                teachers.push(a.teacher.as_str().to_owned());
                None
            }
            Event::TeacherUnassigned(u) => {
                let teachers = self.teachers.entry(u.class_id).or_default();
                let before = teachers.len();
                teachers.retain(|t| t != u.teacher.as_str());
                prop_assert_eq!(
                    teachers.len() + 1,
                    before,
                    "a teacher unassigned from a class they did not teach: {:?}",
                    event
                );
                None
            }
            _ => None,
        };
        if let Some((learner, class, on)) = fact {
            self.class_facts.push((learner, class, on));
            let l = self.state.learner(learner);
            prop_assert!(
                l.is_some_and(|l| l.membership_on(class, on).is_some()),
                "{} recorded for a learner not in class {class} on {on}: {event:?}",
                event.type_name()
            );
            prop_assert!(
                l.is_some_and(|l| l.died_on.is_none_or(|d| on <= d)),
                "a fact after death: {event:?}"
            );
        }
        Ok(())
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        let state = &self.state;
        // Vacancies: 0 <= enrolled <= capacity, and enrolled counts the open stays in the class.
        let mut open: HashMap<ClassId, u16> = HashMap::new();
        for (_, l) in state.learners() {
            for m in l.memberships.iter().filter(|m| m.until.is_none()) {
                *open.entry(m.class_id).or_default() += 1;
            }
        }
        for (id, c) in state.classes() {
            // The teachers of a class are those assigned and not since unassigned, once each.
            let teachers: Vec<&str> = c.teachers.iter().map(|t| t.as_str()).collect();
            let expected: Vec<&str> = self
                .teachers
                .get(id)
                .map(|t| t.iter().map(String::as_str).collect())
                .unwrap_or_default();
            prop_assert_eq!(teachers, expected, "the teachers of class {}", id);
            prop_assert!(
                c.enrolled <= c.capacity,
                "class {id}: {} enrolled in {} places",
                c.enrolled,
                c.capacity
            );
            let stays = open.get(id).copied().unwrap_or(0);
            prop_assert_eq!(
                c.enrolled,
                stays,
                "class {}: enrolled is not the number of open stays",
                id
            );
        }
        let mut snils_seen: HashMap<Snils, LearnerId> = HashMap::new();
        let mut enrollment_ids: HashSet<contingent_domain::EnrollmentId> = HashSet::new();
        for (id, l) in state.learners() {
            // One active primary general-education enrollment at most.
            let primaries = l
                .active_enrollments()
                .filter(|e| e.primary && e.level == Level::General)
                .count();
            prop_assert!(
                primaries <= 1,
                "learner {id} has {primaries} active primary general enrollments"
            );
            // Active enrollments and open stays are the same classes.
            let mut active: Vec<ClassId> = l.active_enrollments().map(|e| e.class_id).collect();
            let mut stays: Vec<ClassId> = l
                .memberships
                .iter()
                .filter(|m| m.until.is_none())
                .map(|m| m.class_id)
                .collect();
            active.sort();
            stays.sort();
            prop_assert_eq!(
                &active,
                &stays,
                "learner {}: active enrollments and open stays differ",
                id
            );
            for m in &l.memberships {
                prop_assert!(
                    m.until.is_none_or(|u| m.from <= u),
                    "learner {id}: a stay ends before it starts"
                );
            }
            // Nothing active after death.
            if l.died_on.is_some() {
                prop_assert!(
                    active.is_empty(),
                    "deceased learner {id} has active enrollments"
                );
            }
            // One SNILS, one learner.
            if let Some(s) = l.snils {
                if let Some(other) = snils_seen.insert(s, *id) {
                    return Err(TestCaseError::fail(format!(
                        "SNILS {s} belongs to learners {other} and {id}"
                    )));
                }
                prop_assert_eq!(state.snils_owner(s), Some(SnilsOwner::Learner(*id)));
            }
            // Enrollment ids name one enrollment in the region.
            for e in &l.enrollments {
                prop_assert!(
                    enrollment_ids.insert(e.id),
                    "enrollment id {} used twice",
                    e.id
                );
            }
        }
        // Marks stay attached to their learner and class.
        for (id, (learner, class, _)) in &self.marks {
            let m = state.mark(*id);
            prop_assert!(
                m.is_some_and(|m| m.learner_id == *learner && m.class_id == *class),
                "mark {id} moved"
            );
        }
        // Every mark and attendance is still for a learner in the class on its date: no leaving or
        // transfer is dated before them. A death reported late is the one exception (the civil
        // registry's facts are not refused): what was recorded after the date of death stays
        // visible as such.
        for (learner, class, on) in &self.class_facts {
            let l = state.learner(*learner);
            prop_assert!(
                l.is_some_and(|l| l.membership_on(*class, *on).is_some() || l.died_on.is_some_and(|d| *on > d)),
                "a mark or attendance of {learner} in class {class} on {on} is no longer inside a stay in the class"
            );
        }
        self.check_replay()
    }

    /// Replaying every accepted event from nothing gives the same state.
    fn check_replay(&self) -> Result<(), TestCaseError> {
        let replay = self.accepted.iter().fold(State::new(), evolve);
        let state = &self.state;
        prop_assert_eq!(replay.counts(), state.counts());
        for (id, c) in state.classes() {
            prop_assert_eq!(replay.class(*id), Some(c));
        }
        for (id, l) in state.learners() {
            prop_assert_eq!(replay.learner(*id), Some(l));
        }
        for s in &self.pool {
            prop_assert_eq!(replay.snils_owner(*s), state.snils_owner(*s));
        }
        for n in 1..=MARK_POOL {
            prop_assert_eq!(replay.mark(mark_id(n)), state.mark(mark_id(n)));
        }
        for n in 1..=APPLICATION_POOL {
            prop_assert_eq!(
                replay.application(application_id(n)),
                state.application(application_id(n))
            );
        }
        for i in 0..LEARNERS {
            let record = birth_record(learner(i), birth_date(i));
            prop_assert_eq!(
                replay.learner_by_birth_record(&record),
                state.learner_by_birth_record(&record)
            );
        }
        Ok(())
    }
}

/// A command repeated after it was recorded: facts with an id or a civil record are recorded once.
fn check_repeat(
    command: &Command,
    decision: &Result<Vec<Event>, contingent_domain::DomainError>,
) -> Result<(), TestCaseError> {
    match command {
        Command::RegisterBirth(_) | Command::RegisterDeath(_) => {
            prop_assert!(
                matches!(decision, Ok(events) if events.is_empty()),
                "a civil record reported again was not a no-op: {decision:?}"
            );
        }
        Command::RecordSnils(_) => {
            prop_assert!(
                matches!(decision, Ok(events) if events.is_empty())
                    || matches!(decision, Err(e) if e.code() == "learner_deceased"),
                "a SNILS recorded again: {decision:?}"
            );
        }
        Command::RegisterOrganization(_)
        | Command::OpenClass(_)
        | Command::RegisterLearner(_)
        | Command::SubmitApplication(_)
        | Command::WithdrawApplication(_)
        | Command::RejectApplication(_)
        | Command::Enroll(_)
        | Command::Leave(_)
        | Command::RecordMark(_)
        | Command::LinkGuardian(_) => {
            prop_assert!(
                decision.is_err(),
                "{} repeated was recorded twice: {decision:?}",
                command.name()
            );
        }
        // Transfers back and forth, corrections back and forth, attendance, exams, capacity
        // changes and teachers assigned, unassigned and assigned again are new facts when
        // repeated (the API's idempotency keys deduplicate retries).
        _ => {}
    }
    Ok(())
}

/// Runs a whole history: the world, the births, then the random steps.
fn run(h: &History) -> Result<Run, TestCaseError> {
    let mut run = Run::new(&h.capacities);
    for org in organizations() {
        run.step(Command::RegisterOrganization(org), None)?;
    }
    for class in run.world.clone() {
        run.step(Command::OpenClass(class), None)?;
    }
    prop_assert_eq!(
        run.state.counts()[..2].to_vec(),
        vec![3, CLASSES.len()],
        "the world opens"
    );
    for (i, snils) in h.snils_at_birth.iter().enumerate() {
        let pool = run.pool.clone();
        run.step(birth_command(i, *snils, false, &pool), None)?;
    }
    for op in &h.ops {
        let repeat_of = match op {
            Op::Repeat { back } if !run.issued.is_empty() => {
                Some(run.issued.len() - 1 - back % run.issued.len())
            }
            _ => None,
        };
        if let Some(command) = command(
            op,
            &run.world,
            &run.pool,
            &h.snils_at_birth,
            &run.state,
            &run.issued,
        ) {
            run.step(command, repeat_of)?;
        }
    }
    Ok(run)
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(32);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// The invariants hold after every step of every random history.
    #[test]
    fn invariants_hold_after_every_step(h in history(150..300)) {
        run(&h)?;
    }

    /// A writer applies a batch's events before they are durable, and the next batch's on top
    /// of them. Taking back from a savepoint gives exactly the state folded up to it, whichever
    /// batch fails, and releasing what landed keeps it: for every split of a random history into
    /// what is durable, a batch in flight and a batch decided on top of it.
    #[test]
    fn a_rollback_returns_to_the_savepoint_exactly(
        h in history(80..200),
        cut in (0.0f64..1.0, 0.0f64..1.0),
    ) {
        let events = run(&h)?.accepted;
        let a = (events.len() as f64 * cut.0) as usize;
        let b = a + ((events.len() - a) as f64 * cut.1) as usize;
        let fold = |n: usize| events[..n].iter().fold(State::new(), evolve);
        let apply = |state: &mut State, range: std::ops::Range<usize>| {
            for event in &events[range] {
                state.apply(event);
            }
        };
        let (durable, in_flight, everything) = (fold(a), fold(b), fold(events.len()));

        // The batch in flight fails: both batches are taken back.
        let mut state = fold(a);
        let first = state.savepoint();
        apply(&mut state, a..b);
        let second = state.savepoint();
        apply(&mut state, b..events.len());
        prop_assert_eq!(&state, &everything);
        state.rollback(&first);
        prop_assert_eq!(&state, &durable, "taken back to the durable state");

        // Decided again on the same savepoint: it lands, the batch on top of it fails.
        apply(&mut state, a..b);
        let second_again = state.savepoint();
        prop_assert_eq!(&second_again, &second, "the same batch records the same changes");
        apply(&mut state, b..events.len());
        state.release(&second_again);
        state.rollback(&second_again);
        prop_assert_eq!(&state, &in_flight, "the landed batch is kept, the failed one taken back");

        // Everything lands: nothing more is recorded, and applying goes on as a fold.
        state.release_all();
        apply(&mut state, b..events.len());
        prop_assert_eq!(&state, &everything);
    }
}

/// The generator is not vacuous: over a fixed set of histories, the rules the invariants are
/// about are exercised both ways (accepted and refused).
#[test]
fn random_histories_exercise_the_rules() {
    let mut runner = TestRunner::deterministic();
    let strategy = history(250..300);
    let mut accepted: HashMap<&'static str, usize> = HashMap::new();
    let mut refused: HashMap<&'static str, usize> = HashMap::new();
    let mut nothing = 0;
    for _ in 0..16 {
        let h = strategy.new_tree(&mut runner).expect("a history").current();
        let run = run(&h).unwrap_or_else(|e| panic!("{e}"));
        for (k, v) in run.tally.accepted {
            *accepted.entry(k).or_default() += v;
        }
        for (k, v) in run.tally.refused {
            *refused.entry(k).or_default() += v;
        }
        nothing += run.tally.nothing;
    }
    eprintln!("accepted: {accepted:?}\nrefused: {refused:?}\nnothing: {nothing}");
    for name in [
        "register_birth",
        "record_snils",
        "register_death",
        "link_guardian",
        "submit_application",
        "withdraw_application",
        "reject_application",
        "enroll",
        "transfer",
        "leave",
        "record_mark",
        "correct_mark",
        "record_attendance",
        "record_exam_result",
        "change_class_capacity",
        "assign_teacher",
        "unassign_teacher",
    ] {
        assert!(
            accepted.get(name).copied().unwrap_or(0) > 0,
            "no {name} accepted: {accepted:?}"
        );
    }
    for code in [
        "class_full",
        "second_primary_enrollment",
        "learner_not_in_class",
        "learner_deceased",
        "learner_left",
        "snils_belongs_to_another_person",
        "civil_record_conflict",
        "capacity_below_enrolled",
        "invalid_transfer",
        "already_exists",
        "grade_one_age_rule",
        "application_not_pending",
    ] {
        assert!(
            refused.get(code).copied().unwrap_or(0) > 0,
            "never refused with {code}: {refused:?}"
        );
    }
    assert!(nothing > 0, "no fact was ever reported twice");
}
