//! The generator of realistic regions: municipalities, schools, kindergartens, clubs and colleges
//! with Russian names, and learners followed from birth through kindergarten queues, school,
//! marks and attendance, transfers, state exams and graduation to college — over the previous
//! academic year and the current one up to today.
//!
//! This crate owns the *generation*: it plans a region from a seed (the same seed gives the same
//! region, event for event), turns the plan into commands, and submits them through the normal
//! command path ([`Registry::submit`]), where the domain rules decide them like any other caller's.
//! It never writes to the log or the read models directly. The CLI's `demo` uses it, and a
//! `simulate` command reuses it at larger [`Scale`]s.
//!
//! The plan follows the rules, so every command is accepted except a handful of deliberate bad
//! ones, which the registry must refuse; [`Report::refused`] counts refusals by their code.

mod emit;
mod marks;
mod names;
mod plan;
mod submit;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use contingent_domain::{ClassId, LearnerId, OrganizationId, Snils};
use contingent_registry::Registry;

pub use submit::IN_FLIGHT;

/// How big a region to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    /// Municipalities (at least one).
    pub municipalities: usize,
    /// General-education schools (at least one).
    pub schools: usize,
    /// Kindergartens (at least one).
    pub kindergartens: usize,
    /// Additional-education organizations (clubs, sports and art schools).
    pub additional: usize,
    /// Colleges (secondary vocational education).
    pub colleges: usize,
    /// Learners, born over the last 18 years.
    pub learners: usize,
}

impl Scale {
    /// The CLI demo: 3 municipalities, 12 schools, 8 kindergartens, 3 additional-education
    /// organizations, 2 colleges and 2,500 learners.
    pub fn demo() -> Self {
        Self {
            municipalities: 3,
            schools: 12,
            kindergartens: 8,
            additional: 3,
            colleges: 2,
            learners: 2500,
        }
    }

    /// A whole region (`DOMAIN.md`): ~2,000 organizations (40 municipalities, 900 schools, 800
    /// kindergartens, 200 additional-education organizations, 60 colleges) and 400,000
    /// learners born over 18 years, of whom ~250,000 are of school age.
    pub fn region() -> Self {
        Self {
            municipalities: 40,
            schools: 900,
            kindergartens: 800,
            additional: 200,
            colleges: 60,
            learners: 400_000,
        }
    }

    /// A region of `learners` learners, with organizations in the proportions of
    /// [`Scale::region`] (at least one of each).
    pub fn with_learners(learners: usize) -> Self {
        let full = Self::region();
        let part = |n: usize| (n * learners / full.learners).max(1);
        Self {
            municipalities: part(full.municipalities),
            schools: part(full.schools),
            kindergartens: part(full.kindergartens),
            additional: part(full.additional),
            colleges: part(full.colleges),
            learners: learners.max(1),
        }
    }

    /// For tests: 300 learners in 2 municipalities.
    pub fn tiny() -> Self {
        Self {
            municipalities: 2,
            schools: 3,
            kindergartens: 2,
            additional: 1,
            colleges: 1,
            learners: 300,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The seed: the same seed, scale and date give the same region, event for event.
    pub seed: u64,
    /// How big.
    pub scale: Scale,
    /// Today: the current academic year is the one containing it, and nothing is dated after it.
    pub today: NaiveDate,
}

/// The stages of generation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Organizations, the classes of both years and the teachers of school classes.
    Directory,
    /// Births from the civil registry and arrivals from other regions.
    Births,
    /// Parents linked by SNILS.
    Guardians,
    /// The kindergarten queue of the previous year.
    Applications,
    /// Enrollments of the previous year: kindergartens, schools, colleges, clubs.
    Enrollments,
    /// Marks and attendance of the previous year's first term.
    Marks,
    /// Transfers and leavers during the previous year, and teachers replaced at the new year.
    Transfers,
    /// State exams (ОГЭ, ЕГЭ) in June.
    Exams,
    /// Graduates and other leavers at the end of the previous year.
    Leavers,
    /// The new year: next-grade transfers, admissions, the new queue.
    NextYear,
    /// Marks and attendance of the current year up to today.
    CurrentYear,
    /// Commands the registry must refuse.
    Refusals,
}

impl Stage {
    /// Every stage, in the order they run.
    pub const ALL: &'static [Stage] = &[
        Stage::Directory,
        Stage::Births,
        Stage::Guardians,
        Stage::Applications,
        Stage::Enrollments,
        Stage::Marks,
        Stage::Transfers,
        Stage::Exams,
        Stage::Leavers,
        Stage::NextYear,
        Stage::CurrentYear,
        Stage::Refusals,
    ];

    /// A short label for progress bars.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Directory => "directory",
            Stage::Births => "births",
            Stage::Guardians => "guardians",
            Stage::Applications => "applications",
            Stage::Enrollments => "enrollments",
            Stage::Marks => "marks",
            Stage::Transfers => "transfers",
            Stage::Exams => "exams",
            Stage::Leavers => "leavers",
            Stage::NextYear => "next year",
            Stage::CurrentYear => "current year",
            Stage::Refusals => "refusals",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One learner worth showing: born in the region, with a guardian, through grade 11 of the
/// previous year with marks, attendance and ЕГЭ results, graduated with a certificate, and
/// enrolled into a college this year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Featured {
    /// The learner.
    pub learner_id: LearnerId,
    /// Surname, name and patronymic.
    pub learner_name: String,
    /// A parent's SNILS: what they sign in to the diary with.
    pub guardian_snils: Snils,
    /// The school of the previous year.
    pub school_id: OrganizationId,
    /// The grade-11 class of the previous year.
    pub class_id: ClassId,
    /// The account (sign-on token subject) of a teacher assigned to that class and never
    /// unassigned: the one who gave the learner their first mark in it.
    pub teacher: String,
    /// That teacher's surname, name and patronymic.
    pub teacher_name: String,
    /// The college of the current year (none in a region without colleges).
    pub college_id: Option<OrganizationId>,
    /// A kindergarten of the learner's municipality.
    pub kindergarten_id: OrganizationId,
    /// The learner's municipality.
    pub municipality: String,
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct Report {
    /// Commands submitted.
    pub commands: u64,
    /// Commands accepted (including those that recorded nothing new).
    pub accepted: u64,
    /// Accepted commands that recorded nothing new: births the civil registry reported twice.
    pub replayed: u64,
    /// Refused commands by the refusal code.
    pub refused: BTreeMap<String, u64>,
    /// Events appended.
    pub events: u64,
    /// The learner worth showing.
    pub featured: Featured,
    /// Outcomes the generator did not plan: refusals of commands meant to be accepted, and
    /// deliberate bad commands that were accepted (the first 50). Empty when all went as planned.
    pub unexpected: Vec<String>,
    /// Time taken.
    pub elapsed: Duration,
}

/// Why generation stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration cannot make a region.
    #[error("cannot generate this region: {0}")]
    Config(String),
    /// The registry could not record a command.
    #[error("the registry is unavailable: {0}")]
    Unavailable(String),
}

/// Marks a pupil gets on a school day, on average, in the previous year's first term.
const MARKS_PER_DAY_PREV: f64 = 1.5;
/// The same in the current year, thinned to keep the demo quick.
const MARKS_PER_DAY_CUR: f64 = 1.0;

/// Generates a region into the registry: plans it from the seed, then submits it stage by stage,
/// calling `progress(stage, done, total)` as commands are answered. Refused commands are counted,
/// not errors; only an unavailable registry stops generation. The read models may still be
/// catching up when this returns (see [`Registry::wait_caught_up`]).
///
/// Generate into an empty registry: the region's ids come from the seed, so a second run into the
/// same registry is refused command by command (`already_exists` and the like).
pub async fn generate(
    registry: &Registry,
    config: &Config,
    progress: impl FnMut(Stage, u64, u64),
) -> Result<Report, SimError> {
    let started = Instant::now();
    let plan = plan::Plan::build(config)?;
    let mut run = submit::Runner::new(registry, progress);
    for &stage in Stage::ALL {
        match step(&plan, stage) {
            Step::Waves(waves) => run.stage(stage, waves).await?,
            Step::Marks(marks) => {
                let survey = marks.survey();
                run.begin(
                    stage,
                    survey.daily + survey.term_marks.len() as u64 + survey.corrections.len() as u64,
                );
                run.wave(marks.stream()).await?;
                let mut after = survey.term_marks;
                after.extend(survey.corrections);
                run.wave(after.into_iter()).await?;
                run.end();
            }
        }
    }
    let featured = featured(&plan);
    let tally = run.tally;
    Ok(Report {
        commands: tally.commands,
        accepted: tally.accepted,
        replayed: tally.replayed,
        refused: tally.refused,
        events: tally.events,
        featured,
        unexpected: tally.unexpected,
        elapsed: started.elapsed(),
    })
}

/// What a stage submits: waves of commands, or a year of marks streamed day by day followed by
/// the term marks and corrections worked out from them.
enum Step<'a> {
    Waves(Vec<Vec<submit::Item>>),
    Marks(marks::Marks<'a>),
}

fn step(plan: &plan::Plan, stage: Stage) -> Step<'_> {
    match stage {
        Stage::Directory => Step::Waves(plan.directory_waves()),
        Stage::Births => Step::Waves(plan.birth_waves()),
        Stage::Guardians => Step::Waves(plan.guardian_waves()),
        Stage::Applications => Step::Waves(plan.application_waves()),
        Stage::Enrollments => Step::Waves(plan.enrollment_waves()),
        // The first term of the previous year: 1 September to the end of October.
        Stage::Marks => Step::Marks(marks::Marks::new(
            plan,
            plan.prev,
            plan::ymd(i32::from(plan.prev.start_year()), 10, 31),
            plan.seed_marks_prev,
            MARKS_PER_DAY_PREV,
            true,
        )),
        Stage::Transfers => Step::Waves(plan.transfer_waves()),
        Stage::Exams => Step::Waves(plan.exam_waves()),
        Stage::Leavers => Step::Waves(plan.leaver_waves()),
        Stage::NextYear => Step::Waves(plan.year_end_waves()),
        Stage::CurrentYear => Step::Marks(marks::Marks::new(
            plan,
            plan.cur,
            plan.today,
            plan.seed_marks_cur,
            MARKS_PER_DAY_CUR,
            false,
        )),
        Stage::Refusals => Step::Waves(plan.refusal_waves()),
    }
}

fn featured(plan: &plan::Plan) -> Featured {
    let i = plan.featured;
    let learner = &plan.learners[i];
    let family = &plan.families[learner.family];
    let guardian = if learner.link_mother {
        family.mother.as_ref()
    } else {
        family.father.as_ref()
    };
    let name = &learner.name;
    let learner_name = match &name.patronymic {
        Some(p) => format!("{} {} {}", name.surname, name.name, p),
        None => format!("{} {}", name.surname, name.name),
    };
    let class = &plan.classes[plan.featured_class];
    let teacher = featured_teacher(plan);
    let kindergarten = plan
        .orgs
        .iter()
        .find(|o| {
            o.kind == contingent_domain::OrganizationKind::Kindergarten && o.muni == family.muni
        })
        .or_else(|| {
            plan.orgs
                .iter()
                .find(|o| o.kind == contingent_domain::OrganizationKind::Kindergarten)
        })
        .map(|o| o.id)
        .unwrap_or_else(|| plan.orgs[0].id);
    Featured {
        learner_id: learner.id,
        learner_name,
        guardian_snils: guardian
            .map(|g| g.snils)
            .unwrap_or_else(|| Snils::from_number(1).expect("small numbers are valid")),
        school_id: plan.orgs[class.key.org].id,
        class_id: class.id,
        teacher: teacher.map_or_else(String::new, |t| t.account.clone()),
        teacher_name: teacher.map_or_else(String::new, |t| t.name.clone()),
        college_id: plan.featured_college.map(|c| plan.orgs[c].id),
        kindergarten_id: kindergarten,
        municipality: plan.munis[family.muni].name.clone(),
    }
}

/// A teacher of the featured learner's class of the previous year: the one who gave them their
/// first mark there, or else the first one assigned.
fn featured_teacher(plan: &plan::Plan) -> Option<&plan::TeacherP> {
    let c = plan.featured_class;
    let class = &plan.classes[c];
    let learner = plan.learners[plan.featured].id;
    if let Step::Marks(marks) = step(plan, Stage::Marks) {
        for n in 0..marks.days.len().min(5) {
            let first = marks
                .day(n)
                .into_iter()
                .find_map(|item| match item.command {
                    contingent_domain::Command::RecordMark(m)
                        if m.learner_id == learner && m.class_id == class.id =>
                    {
                        Some((m.subject, m.lesson_date))
                    }
                    _ => None,
                });
            if let Some((subject, date)) = first {
                if let Some(t) = plan.teacher_of(c, subject.as_str(), date) {
                    return Some(t);
                }
            }
        }
    }
    class
        .teachers
        .iter()
        .find(|a| a.until.is_none())
        .map(|a| &plan.teachers[a.teacher])
}

#[cfg(test)]
mod tests {
    //! The plan checked against the domain's pure decider, without a registry: every command
    //! of every stage, in submission order, for several seeds, sizes and dates.

    use std::collections::BTreeMap;

    use contingent_domain::{decide, Command, State};

    use super::*;

    fn replay(config: &Config) -> (BTreeMap<&'static str, u64>, Vec<String>, u64) {
        let plan = plan::Plan::build(config).expect("a plan");
        let mut state = State::new();
        let mut refused = BTreeMap::new();
        let mut unexpected = Vec::new();
        let mut events = 0u64;
        let mut decide_all = |items: &mut dyn Iterator<Item = submit::Item>| {
            for item in items {
                match decide(&state, &item.command, config.today) {
                    Ok(new) => {
                        events += new.len() as u64;
                        for e in &new {
                            state.apply(e);
                        }
                        if let Some(code) = item.expect {
                            unexpected
                                .push(format!("{} accepted, expected {code}", item.command.name()));
                        }
                    }
                    Err(e) => {
                        *refused.entry(e.code()).or_default() += 1;
                        if item.expect != Some(e.code()) && unexpected.len() < 20 {
                            unexpected.push(format!(
                                "{}: {e} ({}) {:?}",
                                item.command.name(),
                                e.code(),
                                brief(&item.command)
                            ));
                        }
                    }
                }
            }
        };
        for &stage in Stage::ALL {
            match step(&plan, stage) {
                Step::Waves(waves) => {
                    for wave in waves {
                        decide_all(&mut wave.into_iter());
                    }
                }
                Step::Marks(marks) => {
                    let survey = marks.survey();
                    let mut count = 0u64;
                    decide_all(&mut marks.stream().inspect(|_| count += 1));
                    assert_eq!(count, survey.daily, "the survey counts the stream");
                    decide_all(&mut survey.term_marks.into_iter());
                    decide_all(&mut survey.corrections.into_iter());
                }
            }
        }
        (refused, unexpected, events)
    }

    fn brief(command: &Command) -> String {
        let text = format!("{command:?}");
        text.chars().take(300).collect()
    }

    fn expected() -> BTreeMap<&'static str, u64> {
        [
            ("class_full", 1),
            ("learner_not_in_class", 1),
            ("second_primary_enrollment", 1),
            ("date_in_future", 1),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn plans_follow_the_rules_for_any_seed_size_and_date() {
        let dates = [
            (2026, 11, 22),
            (2026, 9, 3),
            (2027, 3, 15),
            (2026, 7, 10),
            (2026, 10, 31),
        ];
        let sizes = [
            Scale::tiny(),
            Scale {
                municipalities: 1,
                schools: 1,
                kindergartens: 1,
                additional: 0,
                colleges: 0,
                learners: 120,
            },
            Scale {
                municipalities: 4,
                schools: 5,
                kindergartens: 3,
                additional: 5,
                colleges: 6,
                learners: 400,
            },
        ];
        for (k, (y, m, d)) in dates.into_iter().enumerate() {
            for (s, scale) in sizes.iter().enumerate() {
                let config = Config {
                    seed: (k * 10 + s) as u64,
                    scale: scale.clone(),
                    today: chrono::NaiveDate::from_ymd_opt(y, m, d).expect("a date"),
                };
                let (refused, unexpected, events) = replay(&config);
                assert!(unexpected.is_empty(), "{config:?}: {unexpected:#?}");
                assert_eq!(refused, expected(), "{config:?}");
                assert!(events > 0);
            }
        }
    }

    /// The demo scale for a few seeds (slow in a debug build: `cargo test --release -- --ignored`).
    #[test]
    #[ignore]
    fn demo_plans_follow_the_rules() {
        for seed in [1, 2026, 9999] {
            let config = Config {
                seed,
                scale: Scale::demo(),
                today: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date"),
            };
            let (refused, unexpected, _) = replay(&config);
            assert!(unexpected.is_empty(), "{config:?}: {unexpected:#?}");
            assert_eq!(refused, expected(), "{config:?}");
        }
    }

    #[test]
    fn the_featured_learner_is_in_grade_eleven() {
        let config = Config {
            seed: 3,
            scale: Scale::tiny(),
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date"),
        };
        let plan = plan::Plan::build(&config).expect("a plan");
        let class = &plan.classes[plan.featured_class];
        assert_eq!(class.key.grade, 11);
        assert_eq!(class.key.year, plan.prev);
        assert!(plan.featured_college.is_some());
        let f = featured(&plan);
        assert_eq!(f.college_id, plan.featured_college.map(|c| plan.orgs[c].id));
        // The featured teacher teaches the class, all year.
        let assigned = class
            .teachers
            .iter()
            .find(|a| plan.teachers[a.teacher].account == f.teacher)
            .expect("the featured teacher is assigned to the featured class");
        assert_eq!(plan.teachers[assigned.teacher].name, f.teacher_name);
        assert!(assigned.until.is_none());
        assert!(f.teacher.starts_with("teacher-"));
        assert_eq!(f.teacher_name.split(' ').count(), 3, "{}", f.teacher_name);
    }

    #[test]
    fn every_school_class_has_one_to_three_teachers_for_its_subjects() {
        let config = Config {
            seed: 5,
            scale: Scale::tiny(),
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date"),
        };
        let plan = plan::Plan::build(&config).expect("a plan");
        let mut shared = false;
        let mut teaching: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (c, class) in plan.classes.iter().enumerate() {
            if class.key.level != contingent_domain::Level::General {
                assert!(class.teachers.is_empty(), "{}", class.name);
                continue;
            }
            let now: Vec<_> = class
                .teachers
                .iter()
                .filter(|a| a.until.is_none())
                .collect();
            assert!(
                (1..=3).contains(&now.len()),
                "{}: {} teachers",
                class.name,
                now.len()
            );
            for subject in &class.subjects {
                let day = class.key.year.first_day();
                assert!(
                    plan.teacher_of(c, subject, day).is_some(),
                    "{}: nobody teaches {subject}",
                    class.name
                );
            }
            for a in &class.teachers {
                assert!(!a.subjects.is_empty());
                let classes = teaching.entry(a.teacher).or_default();
                if let Some(&other) = classes.last() {
                    assert_eq!(
                        plan.classes[other].key.org, class.key.org,
                        "a teacher of two schools"
                    );
                    shared |= plan.classes[other].key.year == class.key.year;
                }
                classes.push(c);
            }
        }
        assert!(shared, "no teacher teaches two classes of a year");
        assert!(!plan.replacements.is_empty(), "no teacher is replaced");
        let accounts: std::collections::BTreeSet<_> =
            plan.teachers.iter().map(|t| &t.account).collect();
        assert_eq!(accounts.len(), plan.teachers.len(), "accounts are unique");
    }

    #[test]
    fn an_empty_region_is_a_configuration_error() {
        let config = Config {
            seed: 1,
            scale: Scale {
                schools: 0,
                ..Scale::tiny()
            },
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date"),
        };
        assert!(matches!(
            plan::Plan::build(&config),
            Err(SimError::Config(_))
        ));
    }
}
