//! Marks and attendance, generated one school day at a time from a generator seeded per day, so
//! that a day's commands are the same however often they are generated: once to count them
//! (and to work out term marks and a few corrections), once to submit them.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Weekday};
use contingent_domain::{
    AcademicYear, Attendance, Command, CorrectMark, Level, Mark, MarkId, MarkKind, MarkRecorded,
};
use rand::seq::{IteratorRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::emit::item;
use crate::names;
use crate::plan::{plus, text, uuid, ymd, Plan};
use crate::submit::Item;

/// Absences and lateness: the share of pupil-days with an attendance record.
const ATTENDANCE_RATE: f64 = 0.05;
/// School days whose first mark gets corrected later.
const CORRECTED_DAYS: &[usize] = &[2, 7, 12, 17, 22];

/// School days, Monday to Friday, without public holidays.
pub(crate) fn school_days(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut days = Vec::new();
    let mut day = from;
    while day <= to {
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        let holiday = (day.month() == 11 && day.day() == 4) || (day.month() == 1 && day.day() <= 8);
        if !weekend && !holiday {
            days.push(day);
        }
        day = plus(day, 1);
    }
    days
}

/// What counting a year's marks found.
pub(crate) struct Survey {
    /// Commands of the daily stream.
    pub daily: u64,
    /// Term marks, after the daily stream.
    pub term_marks: Vec<Item>,
    /// Corrections of a few marks.
    pub corrections: Vec<Item>,
}

/// The marks and attendance of one academic year, from 1 September to a last day.
pub(crate) struct Marks<'a> {
    plan: &'a Plan,
    pub days: Vec<NaiveDate>,
    term_end: Option<NaiveDate>,
    classes: Vec<usize>,
    seed: u64,
    rate: f64,
    corrections: bool,
}

impl<'a> Marks<'a> {
    /// Marks of `year` from 1 September to `last`, about `rate` a pupil per school day.
    pub(crate) fn new(
        plan: &'a Plan,
        year: AcademicYear,
        last: NaiveDate,
        seed: u64,
        rate: f64,
        corrections: bool,
    ) -> Self {
        let days = school_days(year.first_day(), last.min(year.last_day()));
        let term_over = last >= ymd(i32::from(year.start_year()), 10, 31);
        let term_end = if term_over {
            days.iter()
                .copied()
                .rfind(|d| d.month() == 9 || d.month() == 10)
        } else {
            None
        };
        let classes = (0..plan.classes.len())
            .filter(|&c| {
                let class = &plan.classes[c];
                class.key.year == year
                    && matches!(class.key.level, Level::General | Level::Vocational)
                    && !class.members.is_empty()
            })
            .collect();
        Self {
            plan,
            days,
            term_end,
            classes,
            seed,
            rate,
            corrections,
        }
    }

    /// The commands of one school day, in a fixed order.
    pub(crate) fn day(&self, n: usize) -> Vec<Item> {
        let plan = self.plan;
        let date = self.days[n];
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(n as u64);
        let mut out = Vec::new();
        for &c in &self.classes {
            let class = &plan.classes[c];
            for member in class.members.iter().filter(|m| m.covers(date)) {
                let learner = member.learner;
                let featured = learner == plan.featured;
                let roll: f64 = rng.gen();
                let mut status = None;
                if roll < ATTENDANCE_RATE {
                    let kind: f64 = rng.gen();
                    status = Some(if kind < 0.45 {
                        Attendance::Ill
                    } else if kind < 0.6 {
                        Attendance::Excused
                    } else if kind < 0.7 {
                        Attendance::Unexcused
                    } else {
                        Attendance::Late
                    });
                }
                if featured && n == 0 {
                    status = None;
                }
                if featured && n == 2 {
                    status = Some(Attendance::Ill);
                }
                if let Some(status) = status {
                    let lesson = (status == Attendance::Late).then(|| rng.gen_range(1..=3));
                    out.push(plan.attendance(learner, c, date, lesson, status));
                    if status != Attendance::Late {
                        continue;
                    }
                }
                if class.subjects.is_empty() {
                    continue;
                }
                let mut count = (rng.gen::<f64>() * 2.0 * self.rate).round() as usize;
                if featured && n == 0 {
                    count = count.max(2);
                }
                let ability = plan.learners[learner].ability;
                let subjects: Vec<&'static str> = class
                    .subjects
                    .iter()
                    .copied()
                    .choose_multiple(&mut rng, count.min(class.subjects.len()));
                for subject in subjects {
                    let (work, weight) = *names::works(subject)
                        .choose(&mut rng)
                        .unwrap_or(&("ответ на уроке", 1));
                    let noise: f64 = rng.gen::<f64>() + rng.gen::<f64>() + rng.gen::<f64>() - 1.5;
                    let points = (ability + noise).round().clamp(2.0, 5.0) as u8;
                    let (teacher, account) = plan.marker(c, subject, date);
                    out.push(item(
                        Command::RecordMark(MarkRecorded {
                            mark_id: MarkId::from_uuid(uuid(&mut rng)),
                            learner_id: plan.learners[learner].id,
                            class_id: class.id,
                            subject: text(subject),
                            lesson_date: date,
                            kind: MarkKind::Current,
                            work: text(work),
                            period: None,
                            value: Mark::from_points(points).unwrap_or(Mark::Three),
                            weight,
                            teacher: text(teacher),
                        }),
                        plan.org_meta(class.key.org, account),
                    ));
                }
            }
        }
        out
    }

    /// Every day's commands, in order, generated as they are consumed.
    pub(crate) fn stream(&self) -> impl Iterator<Item = Item> + '_ {
        (0..self.days.len()).flat_map(move |n| self.day(n))
    }

    /// Counts the daily commands and works out the term marks and corrections that follow them.
    pub(crate) fn survey(&self) -> Survey {
        let plan = self.plan;
        let mut daily = 0u64;
        // (class, learner, subject) -> (weighted points, weights)
        let mut sums: BTreeMap<(usize, usize, &'static str), (u32, u32)> = BTreeMap::new();
        let mut corrections = Vec::new();
        let class_of: BTreeMap<contingent_domain::ClassId, usize> = self
            .classes
            .iter()
            .map(|&c| (plan.classes[c].id, c))
            .collect();
        let learner_of: BTreeMap<contingent_domain::LearnerId, usize> = plan
            .learners
            .iter()
            .enumerate()
            .map(|(i, l)| (l.id, i))
            .collect();
        for n in 0..self.days.len() {
            let items = self.day(n);
            daily += items.len() as u64;
            let mut first_of_day = true;
            for it in &items {
                let Command::RecordMark(m) = &it.command else {
                    continue;
                };
                if self.corrections && first_of_day && CORRECTED_DAYS.contains(&n) {
                    first_of_day = false;
                    let value = match m.value {
                        Mark::Two => Mark::Three,
                        Mark::Five => Mark::Four,
                        Mark::Three => Mark::Four,
                        _ => Mark::Five,
                    };
                    corrections.push(item(
                        Command::CorrectMark(CorrectMark {
                            mark_id: m.mark_id,
                            value,
                            reason: text("Ошибка при выставлении отметки"),
                            teacher: m.teacher.clone(),
                        }),
                        it.meta.clone(),
                    ));
                }
                if self.term_end.is_some_and(|end| m.lesson_date <= end) {
                    let (Some(&c), Some(&l)) =
                        (class_of.get(&m.class_id), learner_of.get(&m.learner_id))
                    else {
                        continue;
                    };
                    if plan.classes[c].key.level != Level::General {
                        continue;
                    }
                    let subject = plan.classes[c]
                        .subjects
                        .iter()
                        .copied()
                        .find(|s| *s == m.subject.as_str());
                    let Some(subject) = subject else { continue };
                    let entry = sums.entry((c, l, subject)).or_default();
                    let points = u32::from(m.value.points().unwrap_or(3));
                    entry.0 += points * u32::from(m.weight);
                    entry.1 += u32::from(m.weight);
                }
            }
        }
        let mut term_marks = Vec::new();
        if let Some(end) = self.term_end {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x7465_726d);
            for ((c, l, subject), (points, weights)) in sums {
                let class = &plan.classes[c];
                if weights < 2
                    || !class
                        .members
                        .iter()
                        .any(|m| m.learner == l && m.covers(end))
                {
                    continue;
                }
                let average = (points * 2 + weights) / (weights * 2);
                let (teacher, account) = plan.marker(c, subject, end);
                term_marks.push(item(
                    Command::RecordMark(MarkRecorded {
                        mark_id: MarkId::from_uuid(uuid(&mut rng)),
                        learner_id: plan.learners[l].id,
                        class_id: class.id,
                        subject: text(subject),
                        lesson_date: end,
                        kind: MarkKind::Period,
                        work: text("отметка за четверть"),
                        period: Some(text("term-1")),
                        value: Mark::from_points(average.clamp(2, 5) as u8).unwrap_or(Mark::Three),
                        weight: 1,
                        teacher: text(teacher),
                    }),
                    plan.org_meta(class.key.org, account),
                ));
            }
        }
        Survey {
            daily,
            term_marks,
            corrections,
        }
    }
}
