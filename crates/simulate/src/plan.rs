//! The plan: the whole region decided in memory before anything is submitted — organizations,
//! classes, families, learners, and every movement of every learner over the previous and the
//! current academic year. Planning follows the registry's rules (ages, dates, capacities), so the
//! commands built from the plan are accepted; only the deliberate bad commands are refused.
//!
//! Everything is drawn from one seeded generator in a fixed order, so a seed gives the same plan.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{Datelike, NaiveDate, TimeDelta};
use contingent_domain::{
    age_in_months, AcademicYear, ApplicationId, Certificate, CivilRecord, ClassId, Document,
    EnrollmentId, ExamForm, FullName, LearnerId, LeaveReason, Level, Mark, Order, OrganizationId,
    OrganizationKind, Priority, Relation, Sex, Snils, StayMode, Text, TransferKind,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use crate::names::{self, Specialty};
use crate::{Config, SimError};

/// A UUID drawn from the generator, with valid version (4) and variant bits.
pub(crate) fn uuid(rng: &mut ChaCha8Rng) -> Uuid {
    let bytes: [u8; 16] = rng.gen();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Text the generator wrote itself; always valid.
pub(crate) fn text(s: &str) -> Text {
    Text::parse(s).expect("generated text is 1 to 200 printable characters")
}

pub(crate) fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid calendar date")
}

pub(crate) fn plus(date: NaiveDate, days: i64) -> NaiveDate {
    date + TimeDelta::days(days)
}

/// A date `years` before `date` (28 February for 29 February).
fn years_before(date: NaiveDate, years: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(date.year() - years, date.month(), date.day())
        .unwrap_or_else(|| ymd(date.year() - years, date.month(), 28))
}

/// A uniformly drawn date in `from..=to` (`from` when the range is empty).
fn between(rng: &mut ChaCha8Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days();
    if span <= 0 {
        from
    } else {
        plus(from, rng.gen_range(0..=span))
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

fn initial(s: &str) -> char {
    s.chars().next().unwrap_or('А')
}

/// A municipality.
pub(crate) struct Muni {
    pub name: String,
    /// The adjective colleges are named with, where the municipality has one.
    pub adjective: Option<String>,
    /// The civil registry office.
    pub office: String,
}

/// An organization of the directory.
pub(crate) struct Org {
    pub id: OrganizationId,
    pub name: String,
    pub muni: usize,
    pub kind: OrganizationKind,
    pub levels: Vec<Level>,
    pub weight: u32,
    /// A teacher per subject taught, named by initials: who marks where no teacher is assigned
    /// to the class (college groups).
    pub teachers: BTreeMap<&'static str, String>,
    /// Clubs of an additional-education organization.
    pub clubs: Vec<&'static str>,
    /// Specialties of a college.
    pub specialties: Vec<Specialty>,
}

/// Which class: organization, year, level, grade, club or specialty, and parallel index.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ClassKey {
    pub org: usize,
    pub year: AcademicYear,
    pub level: Level,
    pub grade: u8,
    pub spec: u8,
    pub idx: u8,
}

/// A stay of a learner in a class: from the first day until the first day no longer in it.
#[derive(Clone, Copy)]
pub(crate) struct Member {
    pub learner: usize,
    pub from: NaiveDate,
    pub until: Option<NaiveDate>,
}

impl Member {
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.from <= date && self.until.is_none_or(|until| date < until)
    }
}

/// A teacher of a school, with an account (the subject of their sign-on tokens).
pub(crate) struct TeacherP {
    /// Account, such as `teacher-0042`: stable for a seed, numbered across the region.
    pub account: String,
    /// Surname, name and patronymic.
    pub name: String,
}

/// A teacher's assignment to a class: the subjects they teach in it, from a first day until a
/// last day (`None`: still teaching it).
pub(crate) struct AssignP {
    pub teacher: usize,
    pub subjects: Vec<&'static str>,
    pub from: NaiveDate,
    pub until: Option<NaiveDate>,
}

impl AssignP {
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.from <= date && self.until.is_none_or(|until| date <= until)
    }
}

/// A teacher replaced during the year: the assignment that ends and the one that follows it.
pub(crate) struct Replacement {
    pub class: usize,
    /// Indices into the class's assignments.
    pub ended: usize,
    pub started: usize,
}

/// A class or group.
pub(crate) struct ClassP {
    pub id: ClassId,
    pub key: ClassKey,
    pub name: String,
    /// Places; raised after planning to at least everyone who ever joins.
    pub capacity: u16,
    /// How many joins were planned (enrollments and transfers in).
    pub joined: u16,
    pub stay_mode: Option<StayMode>,
    pub programme: String,
    /// Subjects marked in it.
    pub subjects: Vec<&'static str>,
    pub members: Vec<Member>,
    /// Teachers assigned to it (school classes), in the order they were assigned.
    pub teachers: Vec<AssignP>,
}

/// A parent.
#[derive(Clone)]
pub(crate) struct Guardian {
    pub snils: Snils,
    pub name: FullName,
    pub relation: Relation,
}

/// A family: parents and children.
pub(crate) struct Family {
    pub muni: usize,
    pub mother: Option<Guardian>,
    pub father: Option<Guardian>,
    pub children: Vec<usize>,
}

/// How a learner came into the registry.
pub(crate) enum Origin {
    /// Birth registered by the region's civil registry.
    Birth {
        record: CivilRecord,
        certificate: Document,
    },
    /// Arrived from another region, registered from a document.
    Arrival { document: Document },
}

/// A current enrollment while planning.
#[derive(Clone, Copy)]
pub(crate) struct Placement {
    pub enrollment: EnrollmentId,
    pub class: usize,
}

/// A learner.
pub(crate) struct LearnerP {
    pub id: LearnerId,
    pub family: usize,
    pub name: FullName,
    pub sex: Sex,
    pub birth: NaiveDate,
    pub snils: Option<Snils>,
    pub origin: Origin,
    /// Typical mark, 2.7 to 4.9.
    pub ability: f64,
    /// Age in months on 1 September of the previous year.
    pub m_prev: i32,
    pub link_mother: bool,
    pub link_father: bool,
    /// Date consent to personal data processing was given.
    pub consent: NaiveDate,
    /// The first planned fact after birth, and the organization (if any) that recorded it.
    pub first_action: Option<(NaiveDate, Option<usize>)>,
    pub general: Option<Placement>,
    pub preschool: Option<Placement>,
    pub vocational: Option<Placement>,
    pub club: Option<Placement>,
    /// Left the region or was expelled: nothing more is planned.
    pub gone: bool,
}

/// An application.
pub(crate) struct AppP {
    pub id: ApplicationId,
    pub learner: usize,
    pub org: usize,
    pub level: Level,
    pub year: AcademicYear,
    pub grade: u8,
    pub submitted_on: NaiveDate,
    pub desired_start: Option<NaiveDate>,
    pub priority: Priority,
}

/// A decision on an application other than enrollment.
pub(crate) enum Decision {
    Withdraw {
        app: ApplicationId,
        date: NaiveDate,
        reason: &'static str,
    },
    Reject {
        app: ApplicationId,
        org: usize,
        date: NaiveDate,
        reason: &'static str,
    },
}

/// An enrollment.
pub(crate) struct EnrollP {
    pub id: EnrollmentId,
    pub learner: usize,
    pub class: usize,
    pub date: NaiveDate,
    pub order: Order,
    pub application: Option<ApplicationId>,
    pub primary: bool,
    pub exemption: Option<String>,
    pub adapted: bool,
    pub focus: Option<&'static str>,
}

/// A transfer.
pub(crate) struct TransferP {
    pub learner: usize,
    pub enrollment: EnrollmentId,
    pub kind: TransferKind,
    pub to_class: usize,
    pub to_enrollment: Option<EnrollmentId>,
    pub date: NaiveDate,
    pub order: Order,
}

/// A leaving.
pub(crate) struct LeaveP {
    pub learner: usize,
    pub enrollment: EnrollmentId,
    pub org: usize,
    pub date: NaiveDate,
    pub reason: LeaveReason,
    pub order: Order,
    pub certificate: Option<Certificate>,
}

/// A state exam result.
pub(crate) struct ExamP {
    pub learner: usize,
    pub form: ExamForm,
    pub subject: &'static str,
    pub date: NaiveDate,
    pub primary: u16,
    pub test_score: Option<u8>,
    pub mark: Option<Mark>,
}

/// The whole region and its two years.
pub(crate) struct Plan {
    pub today: NaiveDate,
    pub prev: AcademicYear,
    pub cur: AcademicYear,
    pub munis: Vec<Muni>,
    pub orgs: Vec<Org>,
    pub classes: Vec<ClassP>,
    class_index: BTreeMap<ClassKey, usize>,
    pub families: Vec<Family>,
    pub learners: Vec<LearnerP>,
    /// Births reported twice by the civil registry.
    pub duplicates: Vec<usize>,
    /// SNILS recorded after registration.
    pub late_snils: Vec<(usize, Snils)>,
    pub apps_prev: Vec<AppP>,
    pub decisions_prev: Vec<Decision>,
    pub enroll_prev: Vec<EnrollP>,
    pub transfers_mid: Vec<TransferP>,
    pub leaves_mid: Vec<LeaveP>,
    pub exams: Vec<ExamP>,
    pub leaves_year_end: Vec<LeaveP>,
    pub transfers_next: Vec<TransferP>,
    pub apps_cur: Vec<AppP>,
    pub decisions_cur: Vec<Decision>,
    /// Enrollments of the new year without an application (colleges, clubs).
    pub enroll_cur: Vec<EnrollP>,
    /// Enrollments of the new year that satisfy an application (grade 1, kindergarten).
    pub enroll_cur_app: Vec<EnrollP>,
    /// The featured learner.
    pub featured: usize,
    pub featured_class: usize,
    pub featured_college: Option<usize>,
    /// The teachers of schools.
    pub teachers: Vec<TeacherP>,
    /// Teachers replaced during the previous year.
    pub replacements: Vec<Replacement>,
    /// Seeds of the mark generators of the two years and of the deliberate commands.
    pub seed_marks_prev: u64,
    pub seed_marks_cur: u64,
    pub seed_extra: u64,
    /// Learners who arrived from other regions, with the date they joined their school.
    pub arrivals: BTreeMap<usize, NaiveDate>,
    /// Each family's surname (masculine) and the father's name index.
    family_meta: Vec<(&'static str, usize)>,
    rng: ChaCha8Rng,
    snils_taken: HashSet<u32>,
    record_seq: u32,
    certificate_seq: u32,
    order_numbers: BTreeMap<(usize, NaiveDate, &'static str), u32>,
    order_seq: Vec<u32>,
}

/// Number of parallel classes for a cohort of `count` with at most `max` in a class.
fn parallels(count: usize, max: usize) -> usize {
    if count >= 2 * max {
        count.div_ceil(max)
    } else if count >= 16 && max >= 25 {
        2
    } else {
        count.div_ceil(max).max(1)
    }
}

impl Plan {
    /// Plans the region for a configuration.
    pub(crate) fn build(config: &Config) -> Result<Self, SimError> {
        let scale = &config.scale;
        if scale.municipalities == 0 || scale.schools == 0 || scale.kindergartens == 0 {
            return Err(SimError::Config(
                "a region needs at least one municipality, school and kindergarten".into(),
            ));
        }
        let cur = AcademicYear::containing(config.today);
        if cur.start_year() < 1902 {
            return Err(SimError::Config("today is too early".into()));
        }
        let prev = AcademicYear::starting(cur.start_year() - 1);
        let mut plan = Plan {
            today: config.today,
            prev,
            cur,
            munis: Vec::new(),
            orgs: Vec::new(),
            classes: Vec::new(),
            class_index: BTreeMap::new(),
            families: Vec::new(),
            learners: Vec::new(),
            duplicates: Vec::new(),
            late_snils: Vec::new(),
            apps_prev: Vec::new(),
            decisions_prev: Vec::new(),
            enroll_prev: Vec::new(),
            transfers_mid: Vec::new(),
            leaves_mid: Vec::new(),
            exams: Vec::new(),
            leaves_year_end: Vec::new(),
            transfers_next: Vec::new(),
            apps_cur: Vec::new(),
            decisions_cur: Vec::new(),
            enroll_cur: Vec::new(),
            enroll_cur_app: Vec::new(),
            featured: 0,
            featured_class: 0,
            featured_college: None,
            teachers: Vec::new(),
            replacements: Vec::new(),
            seed_marks_prev: 0,
            seed_marks_cur: 0,
            seed_extra: 0,
            arrivals: BTreeMap::new(),
            family_meta: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            snils_taken: HashSet::new(),
            record_seq: 0,
            certificate_seq: 0,
            order_numbers: BTreeMap::new(),
            order_seq: Vec::new(),
        };
        plan.seed_marks_prev = plan.rng.gen();
        plan.seed_marks_cur = plan.rng.gen();
        plan.seed_extra = plan.rng.gen();
        plan.directory(scale);
        plan.people(scale.learners.max(1));
        plan.previous_year();
        plan.mid_year();
        plan.exams();
        plan.year_end();
        plan.current_year();
        plan.finish();
        plan.staff();
        Ok(plan)
    }

    // ---------------------------------------------------------------- helpers

    fn new_snils(&mut self) -> Snils {
        loop {
            let number: u32 = self.rng.gen_range(100_000_000..=999_999_999);
            if self.snils_taken.insert(number) {
                return Snils::from_number(number).expect("nine digits");
            }
        }
    }

    fn teacher(&mut self) -> String {
        let female = self.rng.gen_bool(0.8);
        let surname = names::SURNAMES[self.rng.gen_range(0..names::SURNAMES.len())];
        let name = if female {
            names::MOTHERS[self.rng.gen_range(0..names::MOTHERS.len())]
        } else {
            names::FATHERS[self.rng.gen_range(0..names::FATHERS.len())].0
        };
        let father = names::FATHERS[self.rng.gen_range(0..names::FATHERS.len())].0;
        format!(
            "{} {}. {}.",
            names::surname_for(surname, female),
            initial(name),
            initial(father)
        )
    }

    /// The order of an organization for a date and purpose, numbered in the order first asked.
    fn order(&mut self, org: usize, date: NaiveDate, tag: &'static str) -> Order {
        let next = &mut self.order_seq[org];
        let number = *self
            .order_numbers
            .entry((org, date, tag))
            .or_insert_with(|| {
                *next += 1;
                *next
            });
        Order {
            number: text(&format!("{number}-{tag}")),
            date,
        }
    }

    /// Organizations of a kind in a municipality, or of the whole region when it has none.
    fn orgs_of(&self, kind: OrganizationKind, muni: usize) -> Vec<usize> {
        let local: Vec<usize> = (0..self.orgs.len())
            .filter(|&o| self.orgs[o].kind == kind && self.orgs[o].muni == muni)
            .collect();
        if !local.is_empty() {
            return local;
        }
        (0..self.orgs.len())
            .filter(|&o| self.orgs[o].kind == kind)
            .collect()
    }

    /// An organization of a kind near a municipality, drawn by size.
    fn pick_org(&mut self, kind: OrganizationKind, muni: usize) -> Option<usize> {
        let candidates = self.orgs_of(kind, muni);
        let total: u32 = candidates.iter().map(|&o| self.orgs[o].weight).sum();
        if total == 0 {
            return None;
        }
        let mut roll = self.rng.gen_range(0..total);
        for &o in &candidates {
            let w = self.orgs[o].weight;
            if roll < w {
                return Some(o);
            }
            roll -= w;
        }
        candidates.last().copied()
    }

    fn priority(&mut self) -> Priority {
        let r: f64 = self.rng.gen();
        if r < 0.80 {
            Priority::General
        } else if r < 0.88 {
            Priority::Preferential
        } else if r < 0.96 {
            Priority::Priority
        } else {
            Priority::OutOfTurn
        }
    }

    /// The class for a key, opened on first use.
    pub(crate) fn class_for(&mut self, key: ClassKey) -> usize {
        if let Some(&index) = self.class_index.get(&key) {
            return index;
        }
        let id = ClassId::from_uuid(uuid(&mut self.rng));
        let org = &self.orgs[key.org];
        let (name, capacity, programme, subjects): (String, u16, String, Vec<&'static str>) =
            match key.level {
                Level::General => {
                    let letter = names::LETTERS
                        .get(usize::from(key.idx))
                        .map_or_else(|| format!("-{}", key.idx + 1), |l| (*l).to_owned());
                    let stage = match key.grade {
                        1..=4 => "начального",
                        5..=9 => "основного",
                        _ => "среднего",
                    };
                    (
                        format!("{}{}", key.grade, letter),
                        self.rng.gen_range(25..=30),
                        format!("Основная образовательная программа {stage} общего образования"),
                        names::school_subjects(key.grade).to_vec(),
                    )
                }
                Level::Preschool => {
                    let label = names::GROUPS[(key.org * 3
                        + usize::from(key.grade) * 5
                        + usize::from(key.idx))
                        % names::GROUPS.len()];
                    (
                        format!("{} «{label}»", names::age_group(key.grade)),
                        self.rng.gen_range(20..=25),
                        "Образовательная программа дошкольного образования".to_owned(),
                        Vec::new(),
                    )
                }
                Level::Additional => {
                    let club = org
                        .clubs
                        .get(usize::from(key.spec))
                        .copied()
                        .unwrap_or("Кружок");
                    let name = if key.idx == 0 {
                        club.to_owned()
                    } else {
                        format!("{club} (группа {})", key.idx + 1)
                    };
                    (
                        name,
                        self.rng.gen_range(15..=20),
                        format!("Дополнительная общеразвивающая программа: {club}"),
                        Vec::new(),
                    )
                }
                Level::Vocational => {
                    let (code, specialty, abbr, professional) =
                        org.specialties[usize::from(key.spec)];
                    let admitted = (i32::from(key.year.start_year()) - i32::from(key.grade) + 1)
                        .rem_euclid(100);
                    let name = if key.idx == 0 {
                        format!("{abbr}-{admitted:02}")
                    } else {
                        format!("{abbr}-{admitted:02}-{}", key.idx + 1)
                    };
                    let mut subjects: Vec<&'static str> = if key.grade == 1 {
                        names::COLLEGE_FIRST_COURSE.to_vec()
                    } else {
                        names::COLLEGE_LATER_COURSES.to_vec()
                    };
                    subjects.push(professional[0]);
                    if key.grade > 1 {
                        subjects.push(professional[1]);
                    }
                    (
                    name,
                    self.rng.gen_range(25..=30),
                    format!("Программа подготовки специалистов среднего звена по специальности {code} {specialty}"),
                    subjects,
                )
                }
            };
        let stay_mode = (key.level == Level::Preschool).then(|| {
            let r: f64 = self.rng.gen();
            if key.grade <= 1 && r < 0.3 {
                StayMode::ShortStay
            } else if r < 0.95 {
                StayMode::FullDay
            } else {
                StayMode::RoundTheClock
            }
        });
        let index = self.classes.len();
        self.classes.push(ClassP {
            id,
            key,
            name,
            capacity,
            joined: 0,
            stay_mode,
            programme,
            subjects,
            members: Vec::new(),
            teachers: Vec::new(),
        });
        self.class_index.insert(key, index);
        index
    }

    fn key(org: usize, year: AcademicYear, level: Level, grade: u8, spec: u8, idx: u8) -> ClassKey {
        ClassKey {
            org,
            year,
            level,
            grade,
            spec,
            idx,
        }
    }

    /// Records that a learner did something on a date for an organization (for consent dates).
    fn touch(&mut self, learner: usize, date: NaiveDate, org: Option<usize>) {
        let l = &mut self.learners[learner];
        if l.first_action.is_none_or(|(d, _)| date < d) {
            l.first_action = Some((date, org));
        }
    }

    fn join(&mut self, class: usize, learner: usize, from: NaiveDate) {
        let c = &mut self.classes[class];
        c.joined += 1;
        c.members.push(Member {
            learner,
            from,
            until: None,
        });
    }

    fn part(&mut self, class: usize, learner: usize, until: NaiveDate) {
        if let Some(m) = self.classes[class]
            .members
            .iter_mut()
            .rev()
            .find(|m| m.learner == learner && m.until.is_none())
        {
            m.until = Some(until);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn enroll(
        &mut self,
        learner: usize,
        class: usize,
        date: NaiveDate,
        order_date: NaiveDate,
        application: Option<ApplicationId>,
        primary: bool,
        exemption: Option<String>,
    ) -> EnrollP {
        let id = EnrollmentId::from_uuid(uuid(&mut self.rng));
        let key = self.classes[class].key;
        let tag = match key.level {
            Level::Preschool => "в",
            Level::General => "у",
            Level::Additional => "д",
            Level::Vocational => "к",
        };
        let order = self.order(key.org, order_date, tag);
        let adapted = key.level != Level::Additional && self.rng.gen_bool(0.01);
        let focus = (key.level == Level::General && key.grade >= 10).then(|| {
            [
                "технологический профиль",
                "естественно-научный профиль",
                "гуманитарный профиль",
                "социально-экономический профиль",
                "универсальный профиль",
            ][self.rng.gen_range(0..5)]
        });
        self.join(class, learner, date);
        self.touch(learner, date, Some(key.org));
        let placement = Placement {
            enrollment: id,
            class,
        };
        let l = &mut self.learners[learner];
        match key.level {
            Level::General => l.general = Some(placement),
            Level::Preschool => l.preschool = Some(placement),
            Level::Vocational => l.vocational = Some(placement),
            Level::Additional => l.club = Some(placement),
        }
        EnrollP {
            id,
            learner,
            class,
            date,
            order,
            application,
            primary,
            exemption,
            adapted,
            focus,
        }
    }

    fn certificate(&mut self, issued_on: NaiveDate) -> Certificate {
        self.certificate_seq += 1;
        Certificate {
            series: None,
            number: text(&format!(
                "022{:02}{:09}",
                issued_on.year().rem_euclid(100),
                self.certificate_seq
            )),
            issued_on,
        }
    }

    fn leave(
        &mut self,
        learner: usize,
        placement: Placement,
        date: NaiveDate,
        reason: LeaveReason,
        certificate: Option<Certificate>,
    ) -> LeaveP {
        let org = self.classes[placement.class].key.org;
        let tag = if self.classes[placement.class].key.level == Level::Preschool {
            "в"
        } else {
            "о"
        };
        let order = self.order(org, date, tag);
        self.part(placement.class, learner, plus(date, 1));
        LeaveP {
            learner,
            enrollment: placement.enrollment,
            org,
            date,
            reason,
            order,
            certificate,
        }
    }

    fn transfer(
        &mut self,
        learner: usize,
        from: Placement,
        kind: TransferKind,
        to_class: usize,
        date: NaiveDate,
        order_date: NaiveDate,
    ) -> (TransferP, Placement) {
        let to_org = self.classes[to_class].key.org;
        let to_enrollment = (kind == TransferKind::ToOtherOrganization)
            .then(|| EnrollmentId::from_uuid(uuid(&mut self.rng)));
        let tag = match self.classes[to_class].key.level {
            Level::Preschool => "в",
            Level::Vocational => "к",
            _ => "у",
        };
        let order = self.order(to_org, order_date, tag);
        self.part(from.class, learner, date);
        self.join(to_class, learner, date);
        let placement = Placement {
            enrollment: to_enrollment.unwrap_or(from.enrollment),
            class: to_class,
        };
        (
            TransferP {
                learner,
                enrollment: from.enrollment,
                kind,
                to_class,
                to_enrollment,
                date,
                order,
            },
            placement,
        )
    }

    fn grade_of(&self, placement: Option<Placement>) -> Option<u8> {
        placement.map(|p| self.classes[p.class].key.grade)
    }

    // ---------------------------------------------------------------- directory

    fn directory(&mut self, scale: &crate::Scale) {
        for i in 0..scale.municipalities {
            let (name, adjective) = match names::MUNICIPALITIES.get(i) {
                Some((name, adjective)) => ((*name).to_owned(), Some((*adjective).to_owned())),
                None => (format!("Муниципальный округ № {}", i + 1), None),
            };
            let office = if adjective.is_some() {
                format!("Отдел ЗАГС г. {name}")
            } else {
                format!("Отдел ЗАГС ({name})")
            };
            self.munis.push(Muni {
                name,
                adjective,
                office,
            });
        }
        let m = self.munis.len();
        let mut school_no = vec![0u32; m];
        let mut kindergarten_no = vec![0u32; m];
        let mut additional_no = vec![0u32; m];
        let mut college_names: BTreeSet<String> = BTreeSet::new();

        let add = |plan: &mut Plan,
                   name: String,
                   muni: usize,
                   kind: OrganizationKind,
                   levels: Vec<Level>| {
            let id = OrganizationId::from_uuid(uuid(&mut plan.rng));
            let weight = plan.rng.gen_range(1..=3);
            plan.orgs.push(Org {
                id,
                name,
                muni,
                kind,
                levels,
                weight,
                teachers: BTreeMap::new(),
                clubs: Vec::new(),
                specialties: Vec::new(),
            });
            plan.order_seq.push(0);
            plan.orgs.len() - 1
        };

        for i in 0..scale.schools {
            let muni = i % m;
            school_no[muni] += self.rng.gen_range(1..=9);
            let n = school_no[muni];
            let r: f64 = self.rng.gen();
            let name = if r < 0.7 {
                format!("МБОУ СОШ № {n}")
            } else if r < 0.85 {
                format!("МБОУ «Гимназия № {n}»")
            } else {
                format!("МБОУ «Лицей № {n}»")
            };
            let o = add(
                self,
                name,
                muni,
                OrganizationKind::School,
                vec![Level::General],
            );
            for subject in names::SUBJECTS {
                let teacher = self.teacher();
                self.orgs[o].teachers.insert(subject, teacher);
            }
        }
        for i in 0..scale.kindergartens {
            let muni = i % m;
            kindergarten_no[muni] += self.rng.gen_range(1..=12);
            let n = kindergarten_no[muni];
            let title = names::KINDERGARTENS[self.rng.gen_range(0..names::KINDERGARTENS.len())];
            add(
                self,
                format!("МБДОУ Детский сад № {n} «{title}»"),
                muni,
                OrganizationKind::Kindergarten,
                vec![Level::Preschool],
            );
        }
        for i in 0..scale.additional {
            let muni = i % m;
            additional_no[muni] += self.rng.gen_range(1..=4);
            let (template, clubs) = names::ADDITIONAL[i % names::ADDITIONAL.len()];
            let name = template.replace("{n}", &additional_no[muni].to_string());
            let o = add(
                self,
                name,
                muni,
                OrganizationKind::Additional,
                vec![Level::Additional],
            );
            let mut clubs = clubs.to_vec();
            clubs.shuffle(&mut self.rng);
            clubs.truncate(4);
            self.orgs[o].clubs = clubs;
        }
        for i in 0..scale.colleges {
            let muni = i % m;
            let (kind, specialties) = names::COLLEGES[(i / m + i) % names::COLLEGES.len()];
            let base = match &self.munis[muni].adjective {
                Some(adjective) => format!("{adjective} {kind}"),
                None => format!("{} ({})", capitalized(kind), self.munis[muni].name),
            };
            let mut name = base.clone();
            let mut k = 2;
            while college_names.contains(&name) {
                name = format!("{base} № {k}");
                k += 1;
            }
            college_names.insert(name.clone());
            let o = add(
                self,
                name,
                muni,
                OrganizationKind::College,
                vec![Level::Vocational],
            );
            let mut specialties = specialties.to_vec();
            specialties.truncate(2);
            let mut subjects: Vec<&'static str> = names::COLLEGE_FIRST_COURSE.to_vec();
            for s in &specialties {
                subjects.extend(s.3);
            }
            for subject in subjects {
                if !self.orgs[o].teachers.contains_key(subject) {
                    let teacher = self.teacher();
                    self.orgs[o].teachers.insert(subject, teacher);
                }
            }
            self.orgs[o].specialties = specialties;
        }

        // The regular classes of both years; more parallels open as cohorts need them.
        for year in [self.prev, self.cur] {
            for o in 0..self.orgs.len() {
                match self.orgs[o].kind {
                    OrganizationKind::School => {
                        for grade in 1..=11 {
                            self.class_for(Self::key(o, year, Level::General, grade, 0, 0));
                        }
                    }
                    OrganizationKind::Kindergarten => {
                        for grade in 1..=6 {
                            self.class_for(Self::key(o, year, Level::Preschool, grade, 0, 0));
                        }
                    }
                    OrganizationKind::Additional => {
                        for club in 0..self.orgs[o].clubs.len() {
                            self.class_for(Self::key(o, year, Level::Additional, 0, club as u8, 0));
                        }
                    }
                    OrganizationKind::College => {
                        let courses = if year == self.prev { 2 } else { 3 };
                        for spec in 0..self.orgs[o].specialties.len() {
                            for course in 1..=courses {
                                self.class_for(Self::key(
                                    o,
                                    year,
                                    Level::Vocational,
                                    course,
                                    spec as u8,
                                    0,
                                ));
                            }
                        }
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- people

    fn people(&mut self, target: usize) {
        let muni_weights: Vec<u32> = (0..self.munis.len())
            .map(|m| {
                1 + self
                    .orgs
                    .iter()
                    .filter(|o| o.muni == m && o.kind != OrganizationKind::Additional)
                    .count() as u32
            })
            .collect();
        let earliest = plus(years_before(self.today, 19), 1);
        let latest = years_before(self.today, 1);
        let p1 = self.prev.first_day();
        while self.learners.len() < target {
            let first = self.learners.is_empty();
            let family = self.family(first, &muni_weights);
            let kids = if first {
                1
            } else {
                let r: f64 = self.rng.gen();
                if r < 0.45 {
                    1
                } else if r < 0.85 {
                    2
                } else {
                    3
                }
            };
            let mut births: Vec<NaiveDate> = Vec::new();
            for _ in 0..kids {
                if self.learners.len() >= target {
                    break;
                }
                let birth = if first {
                    // The featured learner: in grade 11 of the previous year.
                    plus(years_before(p1, 17), -self.rng.gen_range(0..=150))
                } else {
                    let mut birth = between(&mut self.rng, earliest, latest);
                    for _ in 0..10 {
                        if births.iter().all(|b| (birth - *b).num_days().abs() >= 300) {
                            break;
                        }
                        birth = between(&mut self.rng, earliest, latest);
                    }
                    birth
                };
                births.push(birth);
                self.learner(family, birth, first);
            }
        }
    }

    fn family(&mut self, featured: bool, muni_weights: &[u32]) -> usize {
        let total: u32 = muni_weights.iter().sum();
        let mut roll = self.rng.gen_range(0..total);
        let mut muni = 0;
        for (m, w) in muni_weights.iter().enumerate() {
            if roll < *w {
                muni = m;
                break;
            }
            roll -= w;
        }
        let surname = names::SURNAMES[self.rng.gen_range(0..names::SURNAMES.len())];
        let father_name = self.rng.gen_range(0..names::FATHERS.len());
        let has_father = featured || self.rng.gen_bool(0.85);
        let has_mother = featured || !has_father || self.rng.gen_bool(0.97);
        let mother = if has_mother {
            let snils = self.new_snils();
            let name = names::MOTHERS[self.rng.gen_range(0..names::MOTHERS.len())];
            let patronymic = names::FATHERS[self.rng.gen_range(0..names::FATHERS.len())].2;
            Some(Guardian {
                snils,
                name: FullName {
                    surname: text(&names::surname_for(surname, true)),
                    name: text(name),
                    patronymic: Some(text(patronymic)),
                },
                relation: Relation::Mother,
            })
        } else {
            None
        };
        let father = if has_father {
            let snils = self.new_snils();
            let patronymic = names::FATHERS[self.rng.gen_range(0..names::FATHERS.len())].1;
            Some(Guardian {
                snils,
                name: FullName {
                    surname: text(surname),
                    name: text(names::FATHERS[father_name].0),
                    patronymic: Some(text(patronymic)),
                },
                relation: Relation::Father,
            })
        } else {
            None
        };
        self.families.push(Family {
            muni,
            mother,
            father,
            children: Vec::new(),
        });
        // The children's surname and patronymic come from the father's side.
        self.family_meta.push((surname, father_name));
        self.families.len() - 1
    }

    fn learner(&mut self, family: usize, birth: NaiveDate, featured: bool) {
        let (surname, father_name) = self.family_meta[family];
        let female = self.rng.gen_bool(0.49);
        let sex = if female { Sex::Female } else { Sex::Male };
        let first = if female {
            names::GIRLS[self.rng.gen_range(0..names::GIRLS.len())]
        } else {
            names::BOYS[self.rng.gen_range(0..names::BOYS.len())]
        };
        let patronymic = if female {
            names::FATHERS[father_name].2
        } else {
            names::FATHERS[father_name].1
        };
        let name = FullName {
            surname: text(&names::surname_for(surname, female)),
            name: text(first),
            patronymic: Some(text(patronymic)),
        };
        let snils = if self.rng.gen_bool(0.9) {
            Some(self.new_snils())
        } else {
            None
        };
        let ability = 2.7 + (self.rng.gen::<f64>() + self.rng.gen::<f64>()) * 1.1;
        let muni = self.families[family].muni;
        self.record_seq += 1;
        let record = CivilRecord {
            number: text(&format!(
                "1102{:02}{}{:06}",
                muni + 1,
                birth.year(),
                self.record_seq
            )),
            date: plus(birth, self.rng.gen_range(3..=30)).min(self.today),
            office: text(&self.munis[muni].office),
        };
        let certificate = Document {
            kind: text("birth_certificate"),
            series: Some(text("II-ТО")),
            number: text(&format!("{:06}", self.rng.gen_range(100_000..=999_999))),
        };
        let has_mother = self.families[family].mother.is_some();
        let has_father = self.families[family].father.is_some();
        let link_mother = has_mother;
        let link_father = has_father && (!has_mother || self.rng.gen_bool(0.7));
        let index = self.learners.len();
        self.learners.push(LearnerP {
            id: LearnerId::from_uuid(uuid(&mut self.rng)),
            family,
            name,
            sex,
            birth,
            snils,
            origin: Origin::Birth {
                record,
                certificate,
            },
            ability,
            m_prev: age_in_months(birth, self.prev.first_day()),
            link_mother,
            link_father,
            consent: birth,
            first_action: None,
            general: None,
            preschool: None,
            vocational: None,
            club: None,
            gone: false,
        });
        self.families[family].children.push(index);
        if featured {
            self.featured = index;
        }
    }

    // ---------------------------------------------------------------- the previous year

    fn previous_year(&mut self) {
        let p1 = self.prev.first_day();
        let y = i32::from(self.prev.start_year());
        let prev = self.prev;
        let has_colleges = self
            .orgs
            .iter()
            .any(|o| o.kind == OrganizationKind::College);
        let mut kindergarten: BTreeMap<(usize, u8), Vec<(usize, ApplicationId)>> = BTreeMap::new();
        let mut school: BTreeMap<(usize, u8), Vec<usize>> = BTreeMap::new();
        let mut college: BTreeMap<(usize, u8, u8), Vec<usize>> = BTreeMap::new();
        let mut exempt: BTreeSet<usize> = BTreeSet::new();
        let mut arrivals: BTreeMap<usize, NaiveDate> = BTreeMap::new();

        for i in 0..self.learners.len() {
            let m = self.learners[i].m_prev;
            let muni = self.families[self.learners[i].family].muni;
            let featured = i == self.featured;
            if m < 12 {
                continue;
            }
            if m < 78 {
                if m >= 72 && self.rng.gen_bool(0.04) {
                    if let Some(s) = self.pick_org(OrganizationKind::School, muni) {
                        school.entry((s, 1)).or_default().push(i);
                        exempt.insert(i);
                        continue;
                    }
                }
                if !self.rng.gen_bool(0.88) {
                    continue;
                }
                let Some(kg) = self.pick_org(OrganizationKind::Kindergarten, muni) else {
                    continue;
                };
                let group = (m / 12).clamp(1, 6) as u8;
                let birth = self.learners[i].birth;
                let submitted_on = between(
                    &mut self.rng,
                    plus(birth, 60).max(plus(p1, -400)),
                    plus(p1, -10),
                );
                let priority = self.priority();
                let id = ApplicationId::from_uuid(uuid(&mut self.rng));
                self.apps_prev.push(AppP {
                    id,
                    learner: i,
                    org: kg,
                    level: Level::Preschool,
                    year: prev,
                    grade: group,
                    submitted_on,
                    desired_start: Some(p1),
                    priority,
                });
                self.touch(i, submitted_on, None);
                let r: f64 = self.rng.gen();
                if r < 0.90 {
                    kindergarten.entry((kg, group)).or_default().push((i, id));
                } else if r < 0.94 {
                    // Left pending: overdue since 1 September.
                } else if r < 0.97 {
                    let date = between(&mut self.rng, plus(submitted_on, 1), plus(p1, -1));
                    self.decisions_prev.push(Decision::Withdraw {
                        app: id,
                        date,
                        reason: "Семья переехала в другой район города",
                    });
                } else {
                    let date = between(&mut self.rng, plus(submitted_on, 1), plus(p1, -1));
                    self.decisions_prev.push(Decision::Reject {
                        app: id,
                        org: kg,
                        date,
                        reason: "Не представлены документы в установленный срок",
                    });
                }
                continue;
            }
            let grade = ((m - 78) / 12 + 1) as u8;
            let to_school = if grade <= 9 {
                true
            } else if grade <= 11 {
                featured || !has_colleges || !self.rng.gen_bool(0.4)
            } else {
                false
            };
            if to_school {
                let Some(s) = self.pick_org(OrganizationKind::School, muni) else {
                    continue;
                };
                school.entry((s, grade)).or_default().push(i);
                if !featured && grade <= 10 && self.rng.gen_bool(0.025) {
                    let d = between(&mut self.rng, plus(p1, 7), ymd(y, 10, 31));
                    arrivals.insert(i, d);
                }
                continue;
            }
            if !has_colleges || (grade > 11 && !self.rng.gen_bool(0.5)) {
                continue;
            }
            let course = if grade == 10 { 1 } else { 2 };
            let Some(c) = self.pick_org(OrganizationKind::College, muni) else {
                continue;
            };
            let spec = self.rng.gen_range(0..self.orgs[c].specialties.len()) as u8;
            college.entry((c, spec, course)).or_default().push(i);
        }

        // Arrivals from other regions: registered from their documents.
        for &i in arrivals.keys() {
            let foreign = self.rng.gen_bool(0.3);
            let document = if foreign {
                Document {
                    kind: text("foreign_birth_certificate"),
                    series: None,
                    number: text(&format!(
                        "{}{:07}",
                        ["KZ", "KG", "UZ", "TJ"][self.rng.gen_range(0..4)],
                        self.rng.gen_range(0..10_000_000)
                    )),
                }
            } else {
                Document {
                    kind: text("birth_certificate"),
                    series: Some(text(
                        ["I-МЮ", "II-ПВ", "III-ЕТ", "IV-ОМ"][self.rng.gen_range(0..4)],
                    )),
                    number: text(&format!("{:06}", self.rng.gen_range(100_000..=999_999))),
                }
            };
            let snils = if self.rng.gen_bool(0.5) {
                Some(self.new_snils())
            } else {
                None
            };
            let l = &mut self.learners[i];
            l.origin = Origin::Arrival { document };
            l.snils = snils;
        }

        // Kindergarten groups by age.
        for ((kg, group), kids) in std::mem::take(&mut kindergarten) {
            let n = kids.len().div_ceil(20).max(1);
            for (k, (i, app)) in kids.into_iter().enumerate() {
                let class = self.class_for(Self::key(
                    kg,
                    prev,
                    Level::Preschool,
                    group,
                    0,
                    (k % n) as u8,
                ));
                let date = if self.rng.gen_bool(0.85) {
                    p1
                } else {
                    between(&mut self.rng, plus(p1, 1), plus(p1, 14))
                };
                let e = self.enroll(i, class, date, plus(date, -3), Some(app), true, None);
                self.enroll_prev.push(e);
            }
        }

        // School classes by grade, split into parallels.
        for ((s, grade), pupils) in std::mem::take(&mut school) {
            let n = parallels(pupils.len(), 25);
            for (k, i) in pupils.into_iter().enumerate() {
                let class =
                    self.class_for(Self::key(s, prev, Level::General, grade, 0, (k % n) as u8));
                let (date, order_date) = match arrivals.get(&i) {
                    Some(&d) => (d, d),
                    None => (p1, ymd(y, 8, 28)),
                };
                let exemption = exempt.contains(&i).then(|| {
                    format!(
                        "Разрешение комитета по образованию № {}-р от {}",
                        self.rng.gen_range(10..=99),
                        plus(p1, -self.rng.gen_range(10..=40)).format("%d.%m.%Y")
                    )
                });
                let e = self.enroll(i, class, date, order_date, None, true, exemption);
                if i == self.featured {
                    self.featured_class = class;
                }
                self.enroll_prev.push(e);
            }
        }

        // College groups.
        for ((c, spec, course), students) in std::mem::take(&mut college) {
            let n = students.len().div_ceil(25).max(1);
            for (k, i) in students.into_iter().enumerate() {
                let class = self.class_for(Self::key(
                    c,
                    prev,
                    Level::Vocational,
                    course,
                    spec,
                    (k % n) as u8,
                ));
                let e = self.enroll(i, class, p1, ymd(y, 8, 25), None, true, None);
                self.enroll_prev.push(e);
            }
        }

        // Clubs: additional education alongside school.
        self.clubs(prev, 1..=9, &arrivals.keys().copied().collect());
        self.arrivals = arrivals;
    }

    fn clubs(
        &mut self,
        year: AcademicYear,
        grades: std::ops::RangeInclusive<u8>,
        skip: &BTreeSet<usize>,
    ) {
        let first = plus(year.first_day(), 1);
        let last = plus(year.first_day(), 29).min(self.today);
        if last < first {
            return;
        }
        for i in 0..self.learners.len() {
            let Some(placement) = self.learners[i].general else {
                continue;
            };
            let key = self.classes[placement.class].key;
            if key.year != year
                || !grades.contains(&key.grade)
                || skip.contains(&i)
                || self.learners[i].gone
            {
                continue;
            }
            if !self.rng.gen_bool(0.18) {
                continue;
            }
            let muni = self.families[self.learners[i].family].muni;
            let Some(org) = self.pick_org(OrganizationKind::Additional, muni) else {
                return;
            };
            let clubs = self.orgs[org].clubs.len();
            if clubs == 0 {
                continue;
            }
            let club = self.rng.gen_range(0..clubs) as u8;
            let class = self.class_for(Self::key(org, year, Level::Additional, 0, club, 0));
            if self.classes[class].joined >= self.classes[class].capacity {
                continue;
            }
            let date = between(&mut self.rng, first, last);
            let e = self.enroll(i, class, date, date, None, false, None);
            if year == self.prev {
                self.enroll_prev.push(e);
            } else {
                self.enroll_cur.push(e);
            }
        }
    }

    // ---------------------------------------------------------------- movements in the previous year

    fn mid_year(&mut self) {
        let y = i32::from(self.prev.start_year());
        let (from, to) = (ymd(y, 11, 10), ymd(y + 1, 3, 20));
        let prev = self.prev;
        let mut pupils: Vec<usize> = (0..self.learners.len())
            .filter(|&i| {
                i != self.featured
                    && !self.arrivals.contains_key(&i)
                    && self
                        .grade_of(self.learners[i].general)
                        .is_some_and(|g| g <= 8 || g == 10)
            })
            .collect();
        pupils.shuffle(&mut self.rng);
        let count = |rate: f64, n: usize| ((n as f64 * rate).round() as usize).max(1);
        let total = pupils.len();
        let mut moved: BTreeSet<usize> = BTreeSet::new();

        // Within an organization: to the parallel class.
        let mut left = count(0.01, total);
        for &i in &pupils {
            if left == 0 {
                break;
            }
            let Some(from_p) = self.learners[i].general else {
                continue;
            };
            let key = self.classes[from_p.class].key;
            let other = ClassKey {
                idx: if key.idx == 0 { 1 } else { 0 },
                ..key
            };
            let Some(&to_class) = self.class_index.get(&other) else {
                continue;
            };
            let date = between(&mut self.rng, from, to);
            let (t, placement) = self.transfer(
                i,
                from_p,
                TransferKind::WithinOrganization,
                to_class,
                date,
                date,
            );
            self.learners[i].general = Some(placement);
            self.transfers_mid.push(t);
            moved.insert(i);
            left -= 1;
        }

        // To another school.
        if self
            .orgs
            .iter()
            .filter(|o| o.kind == OrganizationKind::School)
            .count()
            > 1
        {
            let mut left = count(0.01, total);
            for &i in &pupils {
                if left == 0 {
                    break;
                }
                if moved.contains(&i) {
                    continue;
                }
                let Some(from_p) = self.learners[i].general else {
                    continue;
                };
                let key = self.classes[from_p.class].key;
                let muni = self.orgs[key.org].muni;
                let mut targets: Vec<usize> = self
                    .orgs_of(OrganizationKind::School, muni)
                    .into_iter()
                    .filter(|&s| s != key.org)
                    .collect();
                if targets.is_empty() {
                    targets = (0..self.orgs.len())
                        .filter(|&s| s != key.org && self.orgs[s].kind == OrganizationKind::School)
                        .collect();
                }
                let target = targets[self.rng.gen_range(0..targets.len())];
                let to_class =
                    self.class_for(Self::key(target, prev, Level::General, key.grade, 0, 0));
                let date = between(&mut self.rng, from, to);
                let (t, placement) = self.transfer(
                    i,
                    from_p,
                    TransferKind::ToOtherOrganization,
                    to_class,
                    date,
                    plus(date, -1),
                );
                self.learners[i].general = Some(placement);
                self.transfers_mid.push(t);
                moved.insert(i);
                left -= 1;
            }
        }

        // Moved out of the region.
        let mut left = count(0.006, total);
        for &i in &pupils {
            if left == 0 {
                break;
            }
            if moved.contains(&i) || self.learners[i].club.is_some() {
                continue;
            }
            let Some(p) = self.learners[i].general else {
                continue;
            };
            let date = between(&mut self.rng, from, to);
            let leave = self.leave(i, p, date, LeaveReason::MovedAway, None);
            self.leaves_mid.push(leave);
            let l = &mut self.learners[i];
            l.general = None;
            l.gone = true;
            moved.insert(i);
            left -= 1;
        }

        // Expelled: grade-10 pupils and college students, who are over 15.
        let mut older: Vec<usize> = (0..self.learners.len())
            .filter(|&i| {
                i != self.featured
                    && !moved.contains(&i)
                    && self.learners[i].club.is_none()
                    && (self.learners[i].vocational.is_some()
                        || self.grade_of(self.learners[i].general) == Some(10))
            })
            .collect();
        older.shuffle(&mut self.rng);
        let expel = if older.is_empty() {
            0
        } else {
            count(0.01, older.len())
        };
        for &i in older.iter().take(expel) {
            let l = &self.learners[i];
            let Some(p) = l.vocational.or(l.general) else {
                continue;
            };
            let date = between(&mut self.rng, from, to);
            let leave = self.leave(i, p, date, LeaveReason::Expulsion, None);
            self.leaves_mid.push(leave);
            let l = &mut self.learners[i];
            l.general = None;
            l.vocational = None;
            l.gone = true;
        }
    }

    // ---------------------------------------------------------------- state exams

    fn exams(&mut self) {
        let june = i32::from(self.prev.start_year()) + 1;
        for i in 0..self.learners.len() {
            let Some(grade) = self.grade_of(self.learners[i].general) else {
                continue;
            };
            let ability = self.learners[i].ability;
            if grade == 9 {
                for &(subject, max, [three, four, five], day) in names::OGE {
                    let primary = self.points(ability, max);
                    let mark = if primary >= five {
                        Mark::Five
                    } else if primary >= four {
                        Mark::Four
                    } else if primary >= three {
                        Mark::Three
                    } else {
                        Mark::Two
                    };
                    self.exams.push(ExamP {
                        learner: i,
                        form: ExamForm::Oge,
                        subject,
                        date: ymd(june, 6, day),
                        primary,
                        test_score: None,
                        mark: Some(mark),
                    });
                }
            } else if grade == 11 {
                let mut chosen: Vec<usize> = vec![0, 1];
                let electives = 1 + usize::from(self.rng.gen_bool(0.5));
                let mut tries = 0;
                while chosen.len() < 2 + electives && tries < 20 {
                    tries += 1;
                    let e = self.rng.gen_range(2..names::EGE.len());
                    if chosen.iter().all(|&c| names::EGE[c].2 != names::EGE[e].2) {
                        chosen.push(e);
                    }
                }
                for e in chosen {
                    let (subject, max, day) = names::EGE[e];
                    let primary = self.points(ability, max);
                    let score = ((u32::from(primary) * 100 + u32::from(max) / 2) / u32::from(max))
                        .min(100) as u8;
                    self.exams.push(ExamP {
                        learner: i,
                        form: ExamForm::Ege,
                        subject,
                        date: ymd(june, 6, day),
                        primary,
                        test_score: Some(score),
                        mark: None,
                    });
                }
            }
        }
    }

    fn points(&mut self, ability: f64, max: u16) -> u16 {
        let noise = (self.rng.gen::<f64>() - 0.5) * 0.3;
        let share = ((ability - 2.2) / 2.8 + noise).clamp(0.05, 1.0);
        (share * f64::from(max)).round() as u16
    }

    // ---------------------------------------------------------------- the end of the previous year

    fn year_end(&mut self) {
        let y1 = i32::from(self.prev.start_year()) + 1;
        let may29 = ymd(y1, 5, 29);
        let jun30 = ymd(y1, 6, 30);
        let c1 = self.cur.first_day();
        let cur = self.cur;
        let has_colleges = self
            .orgs
            .iter()
            .any(|o| o.kind == OrganizationKind::College);
        let mut college_newcomers: Vec<usize> = Vec::new();

        for i in 0..self.learners.len() {
            if self.learners[i].gone {
                continue;
            }
            // Clubs end with the year.
            if let Some(p) = self.learners[i].club.take() {
                let leave = self.leave(i, p, may29, LeaveReason::Graduation, None);
                self.leaves_year_end.push(leave);
            }
            // Kindergarten: to school, or to the next age group.
            if let Some(p) = self.learners[i].preschool {
                if self.learners[i].m_prev + 12 >= 78 {
                    let leave = self.leave(i, p, may29, LeaveReason::Graduation, None);
                    self.leaves_year_end.push(leave);
                    self.learners[i].preschool = None;
                } else {
                    let key = self.classes[p.class].key;
                    let to = self.class_for(ClassKey {
                        year: cur,
                        grade: key.grade + 1,
                        ..key
                    });
                    let (t, placement) =
                        self.transfer(i, p, TransferKind::NextGrade, to, c1, may29);
                    self.transfers_next.push(t);
                    self.learners[i].preschool = Some(placement);
                }
            }
            // School.
            if let Some(p) = self.learners[i].general {
                let key = self.classes[p.class].key;
                let featured = i == self.featured;
                let graduates =
                    key.grade == 11 || (key.grade == 9 && !featured && self.rng.gen_bool(0.4));
                if graduates {
                    let certificate = self.certificate(ymd(y1, 6, 26));
                    let leave = self.leave(i, p, jun30, LeaveReason::Graduation, Some(certificate));
                    self.leaves_year_end.push(leave);
                    self.learners[i].general = None;
                    let to_college = if key.grade == 11 { 0.35 } else { 0.8 };
                    if has_colleges && (featured || self.rng.gen_bool(to_college)) {
                        college_newcomers.push(i);
                    }
                } else {
                    let to = self.class_for(ClassKey {
                        year: cur,
                        grade: key.grade + 1,
                        ..key
                    });
                    let order_date = if key.grade == 9 { jun30 } else { may29 };
                    let (t, placement) =
                        self.transfer(i, p, TransferKind::NextGrade, to, c1, order_date);
                    self.transfers_next.push(t);
                    self.learners[i].general = Some(placement);
                }
            }
            // College: the next course.
            if let Some(p) = self.learners[i].vocational {
                let key = self.classes[p.class].key;
                let to = self.class_for(ClassKey {
                    year: cur,
                    grade: key.grade + 1,
                    ..key
                });
                let (t, placement) = self.transfer(i, p, TransferKind::NextGrade, to, c1, jun30);
                self.transfers_next.push(t);
                self.learners[i].vocational = Some(placement);
            }
        }

        // Colleges admit graduates of grades 9 and 11.
        let mut groups: BTreeMap<(usize, u8), Vec<usize>> = BTreeMap::new();
        for i in college_newcomers {
            let muni = self.families[self.learners[i].family].muni;
            let Some(c) = self.pick_org(OrganizationKind::College, muni) else {
                continue;
            };
            let spec = self.rng.gen_range(0..self.orgs[c].specialties.len()) as u8;
            groups.entry((c, spec)).or_default().push(i);
        }
        for ((c, spec), students) in groups {
            let n = students.len().div_ceil(25).max(1);
            for (k, i) in students.into_iter().enumerate() {
                let class =
                    self.class_for(Self::key(c, cur, Level::Vocational, 1, spec, (k % n) as u8));
                let e = self.enroll(i, class, c1, ymd(y1, 8, 20), None, true, None);
                if i == self.featured {
                    self.featured_college = Some(c);
                }
                self.enroll_cur.push(e);
            }
        }
    }

    // ---------------------------------------------------------------- the current year

    fn current_year(&mut self) {
        let y1 = i32::from(self.cur.start_year());
        let c1 = self.cur.first_day();
        let cur = self.cur;
        let today = self.today;

        // Grade 1: children 6.5 to 7.5 years old on 1 September, by application.
        let mut grade_one: BTreeMap<usize, Vec<(usize, ApplicationId)>> = BTreeMap::new();
        for i in 0..self.learners.len() {
            let l = &self.learners[i];
            let m = l.m_prev + 12;
            if !(78..90).contains(&m) || l.general.is_some() || l.gone || !self.rng.gen_bool(0.95) {
                continue;
            }
            let family = l.family;
            let muni = self.families[family].muni;
            let sibling_school = self.families[family]
                .children
                .iter()
                .filter_map(|&c| self.learners[c].general)
                .map(|p| self.classes[p.class].key.org)
                .next();
            let (school, priority) = match sibling_school {
                Some(s) if self.rng.gen_bool(0.8) => (s, Priority::Preferential),
                _ => match self.pick_org(OrganizationKind::School, muni) {
                    Some(s) => (s, Priority::General),
                    None => continue,
                },
            };
            let submitted_on = between(&mut self.rng, ymd(y1, 4, 1), ymd(y1, 6, 30)).min(today);
            let id = ApplicationId::from_uuid(uuid(&mut self.rng));
            self.apps_cur.push(AppP {
                id,
                learner: i,
                org: school,
                level: Level::General,
                year: cur,
                grade: 1,
                submitted_on,
                desired_start: Some(c1),
                priority,
            });
            self.touch(i, submitted_on, None);
            grade_one.entry(school).or_default().push((i, id));
        }
        for (s, kids) in grade_one {
            let n = parallels(kids.len(), 25);
            for (k, (i, app)) in kids.into_iter().enumerate() {
                let class = self.class_for(Self::key(s, cur, Level::General, 1, 0, (k % n) as u8));
                let e = self.enroll(i, class, c1, ymd(y1, 8, 28), Some(app), true, None);
                self.enroll_cur_app.push(e);
            }
        }

        // The kindergarten queue of the new year: children turning 1 to 2.
        let mut queue: BTreeMap<usize, Vec<(usize, ApplicationId, NaiveDate)>> = BTreeMap::new();
        for i in 0..self.learners.len() {
            let l = &self.learners[i];
            if !(0..12).contains(&l.m_prev) || !self.rng.gen_bool(0.85) {
                continue;
            }
            let birth = l.birth;
            let muni = self.families[l.family].muni;
            let latest = plus(c1, -10).min(today);
            if plus(birth, 60) > latest {
                continue;
            }
            let Some(kg) = self.pick_org(OrganizationKind::Kindergarten, muni) else {
                continue;
            };
            let submitted_on = between(&mut self.rng, plus(birth, 60), latest);
            let desired = if self.rng.gen_bool(0.6) {
                c1
            } else {
                between(&mut self.rng, plus(c1, 1), plus(c1, 120))
            };
            let priority = self.priority();
            let id = ApplicationId::from_uuid(uuid(&mut self.rng));
            self.apps_cur.push(AppP {
                id,
                learner: i,
                org: kg,
                level: Level::Preschool,
                year: cur,
                grade: 1,
                submitted_on,
                desired_start: Some(desired),
                priority,
            });
            self.touch(i, submitted_on, None);
            if desired > today {
                continue;
            }
            let r: f64 = self.rng.gen();
            if r < 0.65 {
                queue.entry(kg).or_default().push((i, id, desired));
            } else if r < 0.90 {
                // Pending past the desired start: overdue.
            } else if r < 0.95 {
                let date = between(&mut self.rng, plus(submitted_on, 1), desired.min(today));
                self.decisions_cur.push(Decision::Withdraw {
                    app: id,
                    date,
                    reason: "Выбрана другая организация",
                });
            } else {
                let date = between(&mut self.rng, plus(submitted_on, 1), desired.min(today));
                self.decisions_cur.push(Decision::Reject {
                    app: id,
                    org: kg,
                    date,
                    reason: "Не подтверждено право на внеочередное зачисление",
                });
            }
        }
        for (kg, kids) in queue {
            let n = kids.len().div_ceil(20).max(1);
            for (k, (i, app, date)) in kids.into_iter().enumerate() {
                let class =
                    self.class_for(Self::key(kg, cur, Level::Preschool, 1, 0, (k % n) as u8));
                let e = self.enroll(i, class, date, plus(date, -2), Some(app), true, None);
                self.enroll_cur_app.push(e);
            }
        }

        // Clubs of the new year.
        self.clubs(cur, 1..=9, &BTreeSet::new());
    }

    // ---------------------------------------------------------------- teachers

    /// Assigns 1 to 3 teachers to every school class of both years, for the class's subjects, and
    /// replaces a teacher in a few classes in the middle of the previous year. Drawn from a
    /// generator of its own, so that the rest of the plan is the same with or without teachers.
    fn staff(&mut self) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed_extra);
        rng.set_stream(1);
        // The teachers of a school by what they teach (primary or secondary, a set of areas),
        // and how many classes each teaches in a year.
        let mut roster: BTreeMap<(usize, bool, Vec<usize>), Vec<usize>> = BTreeMap::new();
        let mut load: BTreeMap<(usize, AcademicYear), u32> = BTreeMap::new();
        for c in 0..self.classes.len() {
            let key = self.classes[c].key;
            if key.level != Level::General {
                continue;
            }
            let primary = key.grade <= 4;
            let areas = names::teaching_areas(key.grade);
            let k = if primary {
                rng.gen_range(1..=3)
            } else {
                let r: f64 = rng.gen();
                if r < 0.1 {
                    1
                } else if r < 0.4 {
                    2
                } else {
                    3
                }
            };
            // Consecutive areas merged into at most k teachers' shares.
            let mut shares: Vec<(Vec<usize>, Vec<&'static str>)> = areas
                .iter()
                .enumerate()
                .filter(|(_, subjects)| !subjects.is_empty())
                .map(|(a, subjects)| (vec![a], subjects.clone()))
                .collect();
            while shares.len() > k {
                let (a, subjects) = shares.pop().expect("more shares than k >= 1");
                let last = shares.last_mut().expect("k >= 1 share left");
                last.0.extend(a);
                last.1.extend(subjects);
            }
            // A primary class teacher has one class; a subject teacher up to three a year.
            for (a, subjects) in shares {
                let most = if primary && a.contains(&0) { 1 } else { 3 };
                let pool = roster.entry((key.org, primary, a)).or_default();
                let free = pool.iter().copied().find(|&t| {
                    load.get(&(t, key.year)).copied().unwrap_or(0) < most
                        && self.classes[c].teachers.iter().all(|x| x.teacher != t)
                });
                let teacher = match free {
                    Some(t) => t,
                    None => {
                        let t = self.hire(&mut rng);
                        pool.push(t);
                        t
                    }
                };
                *load.entry((teacher, key.year)).or_default() += 1;
                self.classes[c].teachers.push(AssignP {
                    teacher,
                    subjects,
                    from: key.year.first_day(),
                    until: None,
                });
            }
        }
        // A few teachers of the previous year leave at the new year and are replaced by a new
        // one, never in the featured learner's class.
        let y = i32::from(self.prev.start_year());
        let until = crate::marks::school_days(ymd(y, 12, 20), ymd(y, 12, 31))
            .last()
            .copied()
            .unwrap_or(ymd(y, 12, 27));
        let from = crate::marks::school_days(ymd(y + 1, 1, 9), ymd(y + 1, 1, 20))
            .first()
            .copied()
            .unwrap_or(ymd(y + 1, 1, 12));
        let eligible: Vec<usize> = (0..self.classes.len())
            .filter(|&c| {
                c != self.featured_class
                    && self.classes[c].key.year == self.prev
                    && !self.classes[c].teachers.is_empty()
            })
            .collect();
        let mut replaced: Vec<usize> = eligible
            .iter()
            .copied()
            .filter(|_| rng.gen_bool(0.05))
            .collect();
        if replaced.is_empty() {
            replaced.extend(eligible.first());
        }
        for c in replaced {
            let ended = rng.gen_range(0..self.classes[c].teachers.len());
            let teacher = self.hire(&mut rng);
            let class = &mut self.classes[c];
            class.teachers[ended].until = Some(until);
            let subjects = class.teachers[ended].subjects.clone();
            class.teachers.push(AssignP {
                teacher,
                subjects,
                from,
                until: None,
            });
            let started = class.teachers.len() - 1;
            self.replacements.push(Replacement {
                class: c,
                ended,
                started,
            });
        }
    }

    /// A new teacher: the next account of the region and a full name.
    fn hire(&mut self, rng: &mut ChaCha8Rng) -> usize {
        let female = rng.gen_bool(0.8);
        let surname = names::SURNAMES[rng.gen_range(0..names::SURNAMES.len())];
        let father = names::FATHERS[rng.gen_range(0..names::FATHERS.len())];
        let (name, patronymic) = if female {
            (
                names::MOTHERS[rng.gen_range(0..names::MOTHERS.len())],
                father.2,
            )
        } else {
            (
                names::FATHERS[rng.gen_range(0..names::FATHERS.len())].0,
                father.1,
            )
        };
        self.teachers.push(TeacherP {
            account: format!("teacher-{:04}", self.teachers.len() + 1),
            name: format!(
                "{} {name} {patronymic}",
                names::surname_for(surname, female)
            ),
        });
        self.teachers.len() - 1
    }

    /// The teacher assigned to a class for a subject on a date, if any.
    pub(crate) fn teacher_of(
        &self,
        class: usize,
        subject: &str,
        date: NaiveDate,
    ) -> Option<&TeacherP> {
        self.classes[class]
            .teachers
            .iter()
            .find(|a| a.covers(date) && a.subjects.contains(&subject))
            .map(|a| &self.teachers[a.teacher])
    }

    /// Who gives a mark in a class for a subject on a date: the name on the mark, and the account
    /// that records it. The assigned teacher where there is one (school classes); otherwise the
    /// organization's teacher of the subject, who records under their name.
    pub(crate) fn marker(&self, class: usize, subject: &str, date: NaiveDate) -> (&str, &str) {
        match self.teacher_of(class, subject, date) {
            Some(t) => (t.name.as_str(), t.account.as_str()),
            None => {
                let name = self.orgs[self.classes[class].key.org]
                    .teachers
                    .get(subject)
                    .map_or("Учитель", String::as_str);
                (name, name)
            }
        }
    }

    // ---------------------------------------------------------------- finishing touches

    fn finish(&mut self) {
        for class in &mut self.classes {
            class.capacity = class.capacity.max(class.joined);
        }
        // Consent to personal data processing, given before the first fact the family reports.
        for i in 0..self.learners.len() {
            let registered = match &self.learners[i].origin {
                Origin::Birth { record, .. } => record.date,
                Origin::Arrival { .. } => self.learners[i].birth,
            };
            let consent = match self.learners[i].first_action {
                Some((date, _)) => plus(date, -self.rng.gen_range(1..=30)).max(registered),
                None => between(&mut self.rng, plus(registered, 10), plus(registered, 400)),
            };
            self.learners[i].consent = consent.min(self.today);
        }
        // Arrivals' consent comes with their enrollment, which may be after 1 September.
        for (&i, &date) in &self.arrivals {
            self.learners[i].consent = plus(date, -1).max(self.learners[i].birth);
        }
        // The civil registry reports a few births twice; SNILS comes later for some.
        let mut duplicates = Vec::new();
        let mut late = Vec::new();
        for i in 0..self.learners.len() {
            let born_here = matches!(self.learners[i].origin, Origin::Birth { .. });
            if born_here && i != self.featured && self.rng.gen_bool(0.005) {
                duplicates.push(i);
            }
            if self.learners[i].snils.is_none() && self.rng.gen_bool(0.5) {
                let snils = self.new_snils();
                late.push((i, snils));
            }
        }
        if duplicates.is_empty() {
            if let Some(i) = (0..self.learners.len()).find(|&i| {
                i != self.featured && matches!(self.learners[i].origin, Origin::Birth { .. })
            }) {
                duplicates.push(i);
            }
        }
        self.duplicates = duplicates;
        self.late_snils = late;
    }

    /// Draws from the plan's generator after planning (for the deliberate commands).
    pub(crate) fn extra_rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed_extra)
    }

    /// The organization that records facts about a learner first, if any.
    pub(crate) fn home_org(&self, learner: usize) -> Option<usize> {
        self.learners[learner].first_action.and_then(|(_, org)| org)
    }
}
