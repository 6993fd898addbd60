//! Who is due for erasure under a retention policy.

mod support;

use contingent_domain::{due_for_erasure, Event, LeaveReason, PersonalDataErased, RetentionPolicy};
use support::*;

const POLICY: RetentionPolicy = RetentionPolicy {
    after_leaving_years: 3,
    after_death_years: 1,
};

/// Three pupils in 5А from 1 September 2025: one leaves on 26 December 2025, one dies on
/// 10 November 2025, one stays.
fn three_pupils() -> Vec<Event> {
    let mut events = world();
    for n in 1..=3 {
        events.push(born(learner_id(n), date(2014, 5, 10)));
        events.push(enrolled_in(
            enrollment_id(n),
            learner_id(n),
            &class_5a(),
            date(2025, 9, 1),
        ));
    }
    let leaving = leave(
        learner_id(1),
        enrollment_id(1),
        date(2025, 12, 26),
        LeaveReason::MovedAway,
    );
    events.push(left(&leaving, &class_5a()));
    events.push(died(learner_id(2), date(2025, 11, 10), "170"));
    events
}

#[test]
fn nobody_is_due_before_the_periods_end() {
    let state = given(three_pupils()).state().clone();
    assert!(due_for_erasure(&state, date(2026, 11, 9), &POLICY).is_empty());
}

#[test]
fn the_dead_are_due_after_their_period_and_the_departed_after_theirs() {
    let state = given(three_pupils()).state().clone();
    let due = due_for_erasure(&state, date(2026, 11, 10), &POLICY);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].learner_id, learner_id(2));
    assert_eq!(due[0].ground, "death");
    assert_eq!(due[0].due_on, date(2026, 11, 10));
    let due = due_for_erasure(&state, date(2028, 12, 26), &POLICY);
    let ids: Vec<_> = due.iter().map(|d| d.learner_id).collect();
    assert_eq!(ids, [learner_id(1), learner_id(2)]);
    assert!(due[0]
        .reason(&POLICY)
        .contains("3 years after leaving on 2025-12-26"));
}

#[test]
fn an_erased_learner_is_not_due_again_and_a_learner_enrolled_since_is_not_due() {
    let mut events = three_pupils();
    events.push(Event::PersonalDataErased(PersonalDataErased {
        learner_id: learner_id(2),
        reason: t("retention"),
        erased_on: date(2026, 11, 10),
    }));
    events.push(enrolled_in(
        enrollment_id(4),
        learner_id(1),
        &class_5b(),
        date(2026, 1, 12),
    ));
    let state = given(events).state().clone();
    assert!(due_for_erasure(&state, date(2040, 1, 1), &POLICY).is_empty());
}
