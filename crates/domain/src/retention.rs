//! When a learner's personal data is due for erasure: the region's retention policy, applied
//! to the state. Pure: the date is an argument.

use chrono::{Months, NaiveDate};

use crate::ids::LearnerId;
use crate::state::State;

/// How long personal data is kept once its purpose is achieved (152-FZ art. 5 p. 7): whole
/// years after the learner left their last organization, and after their death. The region
/// sets both from its nomenclature of files; the registry has no default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Years after leaving the last organization (with no enrollment since).
    pub after_leaving_years: u32,
    /// Years after death.
    pub after_death_years: u32,
}

/// A learner whose personal data is due for erasure, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// The learner.
    pub learner_id: LearnerId,
    /// What the period runs from: `"death"` or `"leaving"`.
    pub ground: &'static str,
    /// The date it runs from.
    pub since: NaiveDate,
    /// The day the period ended: the first day the data is due.
    pub due_on: NaiveDate,
}

impl Due {
    /// The legal reason written in the erasure event.
    pub fn reason(&self, policy: &RetentionPolicy) -> String {
        let years = match self.ground {
            "death" => policy.after_death_years,
            _ => policy.after_leaving_years,
        };
        format!(
            "retention period ended (152-FZ art. 5 p. 7, art. 21 p. 7): {years} years after {} on {}",
            self.ground, self.since
        )
    }
}

fn plus_years(date: NaiveDate, years: u32) -> NaiveDate {
    date.checked_add_months(Months::new(years.saturating_mul(12)))
        .unwrap_or(NaiveDate::MAX)
}

/// Every learner whose personal data is due for erasure on `today` and is not erased yet, in
/// order of learner id: dead for `after_death_years`, or without an enrollment since leaving
/// for `after_leaving_years`. A learner who never left and is alive is never due.
pub fn due_for_erasure(state: &State, today: NaiveDate, policy: &RetentionPolicy) -> Vec<Due> {
    let mut due: Vec<Due> = state
        .learners
        .iter()
        .filter(|(id, _)| !state.is_erased(**id))
        .filter_map(|(id, l)| {
            let (ground, since, years) = match (l.died_on, l.left_on) {
                (Some(died), _) => ("death", died, policy.after_death_years),
                (None, Some(left)) if l.active_enrollments().next().is_none() => {
                    ("leaving", left, policy.after_leaving_years)
                }
                _ => return None,
            };
            let due_on = plus_years(since, years);
            (due_on <= today).then_some(Due {
                learner_id: *id,
                ground,
                since,
                due_on,
            })
        })
        .collect();
    due.sort_by_key(|d| d.learner_id);
    due
}
