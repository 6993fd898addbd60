//! One test per rule of the decider: the exact error code of a refusal, the exact events of an
//! acceptance, nothing for a fact already recorded.

mod support;

use chrono::NaiveDate;
use contingent_domain::{
    ApplicationRejected, ApplicationStatus, ApplicationWithdrawn, Attendance, ChangeClassCapacity,
    ClassCapacityChanged, Command, CorrectMark, Document, DomainError, Event, ExamForm,
    ExamResultRecorded, ExamScore, LearnerRegistered, LeaveReason, Level, Mark, MarkCorrected,
    PersonRef, RecordExamResult, RejectApplication, SecondaryReason, Snils, SnilsError, SnilsOwner,
    SnilsRecorded, TransferKind, WithdrawApplication, GRADE_ONE_MIN_MONTHS,
};
use support::*;

// ---------------------------------------------------------------------------------------------
// Fixtures of this file
// ---------------------------------------------------------------------------------------------

fn sep1() -> NaiveDate {
    date(2025, 9, 1)
}

/// A fifth-grader.
fn pupil() -> contingent_domain::LearnerId {
    learner_id(1)
}

fn pupil_born() -> NaiveDate {
    date(2014, 5, 10)
}

/// The world, the pupil born and enrolled into 5А on 1 September 2025 (enrollment 1).
fn pupil_in_5a() -> Vec<Event> {
    let mut events = world();
    events.push(born(pupil(), pupil_born()));
    events.push(enrolled_in(enrollment_id(1), pupil(), &class_5a(), sep1()));
    events
}

fn plus(mut events: Vec<Event>, more: impl IntoIterator<Item = Event>) -> Vec<Event> {
    events.extend(more);
    events
}

fn record_mark(
    id: u32,
    learner: contingent_domain::LearnerId,
    class: contingent_domain::ClassId,
    on: NaiveDate,
) -> Command {
    Command::RecordMark(mark(mark_id(id), learner, class, on, Mark::Five))
}

fn mark_event(
    id: u32,
    learner: contingent_domain::LearnerId,
    class: contingent_domain::ClassId,
    on: NaiveDate,
) -> Event {
    Event::MarkRecorded(mark(mark_id(id), learner, class, on, Mark::Five))
}

fn exam(
    learner: contingent_domain::LearnerId,
    form: ExamForm,
    score: Option<u8>,
    mark: Option<Mark>,
) -> RecordExamResult {
    RecordExamResult {
        learner_id: learner,
        form,
        subject: t("Математика"),
        exam_date: date(2026, 3, 10),
        primary_points: 21,
        test_score: score,
        mark,
    }
}

// ---------------------------------------------------------------------------------------------
// Unknown entities
// ---------------------------------------------------------------------------------------------

#[test]
fn a_fact_about_an_unknown_learner_is_refused() {
    given(world())
        .when(record_mark(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 10, 1),
        ))
        .then_error("learner_not_found");
    given(world())
        .when(Command::Enroll(enroll(
            enrollment_id(1),
            pupil(),
            class_5a().class_id,
            sep1(),
        )))
        .then_error("learner_not_found");
    given(world())
        .when(Command::RegisterDeath(death(
            pupil(),
            date(2025, 10, 1),
            "170",
        )))
        .then_error("learner_not_found");
    given(world())
        .when(Command::RecordSnils(SnilsRecorded {
            learner_id: pupil(),
            snils: snils(112_233_445),
        }))
        .then_error("learner_not_found");
}

#[test]
fn a_class_of_an_unknown_organization_is_refused() {
    given(world())
        .when(Command::OpenClass(class(
            class_id(99),
            organization_id(99),
            Level::General,
            5,
            2025,
            25,
        )))
        .then_error("organization_not_found");
    given(plus(world(), [born(pupil(), pupil_born())]))
        .when(Command::SubmitApplication(application(
            application_id(1),
            pupil(),
            organization_id(99),
            Level::General,
            2025,
            5,
            date(2025, 6, 1),
        )))
        .then_error("organization_not_found");
}

#[test]
fn an_enrollment_into_an_unknown_class_is_refused() {
    given(plus(world(), [born(pupil(), pupil_born())]))
        .when(Command::Enroll(enroll(
            enrollment_id(1),
            pupil(),
            class_id(99),
            sep1(),
        )))
        .then_error("class_not_found");
    given(pupil_in_5a())
        .when(record_mark(1, pupil(), class_id(99), date(2025, 10, 1)))
        .then_error("class_not_found");
    given(pupil_in_5a())
        .when(Command::ChangeClassCapacity(ChangeClassCapacity {
            class_id: class_id(99),
            capacity: 10,
            reason: None,
        }))
        .then_error("class_not_found");
}

#[test]
fn an_unknown_application_is_refused() {
    given(pupil_in_5a())
        .when(Command::WithdrawApplication(WithdrawApplication {
            application_id: application_id(99),
            withdrawn_on: date(2025, 10, 1),
            reason: None,
        }))
        .then_error("application_not_found");
    given(pupil_in_5a())
        .when(Command::RejectApplication(RejectApplication {
            application_id: application_id(99),
            rejected_on: date(2025, 10, 1),
            reason: t("нет мест"),
        }))
        .then_error("application_not_found");
    let mut command = enroll(
        enrollment_id(2),
        pupil(),
        club_group().class_id,
        date(2025, 10, 1),
    );
    command.application_id = Some(application_id(99));
    given(pupil_in_5a())
        .when(Command::Enroll(command))
        .then_error("application_not_found");
}

#[test]
fn an_unknown_enrollment_is_refused() {
    given(pupil_in_5a())
        .when(Command::Leave(leave(
            pupil(),
            enrollment_id(99),
            date(2025, 12, 1),
            LeaveReason::MovedAway,
        )))
        .then_error("enrollment_not_found");
    given(pupil_in_5a())
        .when(Command::Transfer(transfer(
            pupil(),
            enrollment_id(99),
            TransferKind::WithinOrganization,
            class_5b().class_id,
            None,
            date(2025, 12, 1),
        )))
        .then_error("enrollment_not_found");
}

#[test]
fn a_correction_of_an_unknown_mark_is_refused() {
    given(pupil_in_5a())
        .when(Command::CorrectMark(CorrectMark {
            mark_id: mark_id(99),
            value: Mark::Four,
            reason: t("ошибка ввода"),
            teacher: t("Петрова А. В."),
        }))
        .then_error("mark_not_found");
}

// ---------------------------------------------------------------------------------------------
// Death and leaving
// ---------------------------------------------------------------------------------------------

fn pupil_died_on_10_november() -> Vec<Event> {
    plus(pupil_in_5a(), [died(pupil(), date(2025, 11, 10), "170")])
}

#[test]
fn no_mark_or_attendance_after_death() {
    given(pupil_died_on_10_november())
        .when(record_mark(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 11, 11),
        ))
        .then_error("learner_deceased");
    given(pupil_died_on_10_november())
        .when(Command::RecordAttendance(attendance(
            pupil(),
            class_5a().class_id,
            date(2025, 11, 11),
            Attendance::Ill,
        )))
        .then_error("learner_deceased");
}

#[test]
fn a_mark_for_a_lesson_before_the_death_is_still_accepted() {
    given(pupil_died_on_10_november())
        .when(record_mark(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 11, 10),
        ))
        .then(vec![mark_event(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 11, 10),
        )]);
}

#[test]
fn no_enrollment_after_death() {
    given(pupil_died_on_10_november())
        .when(Command::Enroll(enroll(
            enrollment_id(2),
            pupil(),
            club_group().class_id,
            date(2025, 11, 20),
        )))
        .then_error("learner_deceased");
}

#[test]
fn no_guardian_link_after_death() {
    given(pupil_died_on_10_november())
        .when(Command::LinkGuardian(guardian(
            pupil(),
            snils(200_300_400),
            name("Иванова", "Мария", Some("Петровна")),
            date(2025, 11, 20),
        )))
        .then_error("learner_deceased");
}

#[test]
fn no_movement_or_second_death_after_death() {
    given(pupil_died_on_10_november())
        .when(Command::Transfer(transfer(
            pupil(),
            enrollment_id(1),
            TransferKind::WithinOrganization,
            class_5b().class_id,
            None,
            date(2025, 11, 20),
        )))
        .then_error("learner_deceased");
    given(pupil_died_on_10_november())
        .when(Command::Leave(leave(
            pupil(),
            enrollment_id(1),
            date(2025, 11, 20),
            LeaveReason::Death,
        )))
        .then_error("learner_deceased");
    given(pupil_died_on_10_november())
        .when(Command::RegisterDeath(death(
            pupil(),
            date(2025, 11, 10),
            "171",
        )))
        .then_error("learner_deceased");
}

#[test]
fn a_death_frees_the_place() {
    let events = plus(
        world_with_capacity(class_5a().class_id, 1),
        [
            born(pupil(), pupil_born()),
            born(learner_id(2), pupil_born()),
            enrolled_in(enrollment_id(1), pupil(), &class_5a(), sep1()),
        ],
    );
    let second = enroll(
        enrollment_id(2),
        learner_id(2),
        class_5a().class_id,
        date(2025, 11, 20),
    );
    given(events.clone())
        .when(Command::Enroll(second.clone()))
        .then_error("class_full");
    let full = class(
        class_5a().class_id,
        organization_id(1),
        Level::General,
        5,
        2025,
        1,
    );
    let after = given(events)
        .when(Command::RegisterDeath(death(
            pupil(),
            date(2025, 11, 10),
            "170",
        )))
        .then(vec![died(pupil(), date(2025, 11, 10), "170")]);
    let learner = after.state().learner(pupil()).expect("known");
    assert!(learner.active_enrollments().next().is_none());
    assert_eq!(
        after.state().class(class_5a().class_id).map(|c| c.enrolled),
        Some(0)
    );
    after
        .when(Command::Enroll(second.clone()))
        .then(vec![enrolled(&second, &full)]);
}

fn pupil_left_on_26_december() -> Vec<Event> {
    let command = leave(
        pupil(),
        enrollment_id(1),
        date(2025, 12, 26),
        LeaveReason::MovedAway,
    );
    plus(pupil_in_5a(), [left(&command, &class_5a())])
}

#[test]
fn leaving_is_recorded_and_frees_the_place() {
    let command = leave(
        pupil(),
        enrollment_id(1),
        date(2025, 12, 26),
        LeaveReason::MovedAway,
    );
    let after = given(pupil_in_5a())
        .when(Command::Leave(command.clone()))
        .then(vec![left(&command, &class_5a())]);
    assert_eq!(
        after.state().class(class_5a().class_id).map(|c| c.enrolled),
        Some(0)
    );
    assert_eq!(
        after.state().learner(pupil()).and_then(|l| l.left_on),
        Some(date(2025, 12, 26))
    );
}

#[test]
fn no_mark_or_attendance_after_leaving() {
    given(pupil_left_on_26_december())
        .when(record_mark(
            1,
            pupil(),
            class_5a().class_id,
            date(2026, 1, 12),
        ))
        .then_error("learner_left");
    given(pupil_left_on_26_december())
        .when(Command::RecordAttendance(attendance(
            pupil(),
            class_5a().class_id,
            date(2026, 1, 12),
            Attendance::Present,
        )))
        .then_error("learner_left");
    // The last day is still a day in the class.
    given(pupil_left_on_26_december())
        .when(record_mark(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 12, 26),
        ))
        .then(vec![mark_event(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 12, 26),
        )]);
}

#[test]
fn no_movement_after_leaving() {
    given(pupil_left_on_26_december())
        .when(Command::Leave(leave(
            pupil(),
            enrollment_id(1),
            date(2026, 1, 10),
            LeaveReason::Other,
        )))
        .then_error("learner_left");
    given(pupil_left_on_26_december())
        .when(Command::Transfer(transfer(
            pupil(),
            enrollment_id(1),
            TransferKind::WithinOrganization,
            class_5b().class_id,
            None,
            date(2026, 1, 12),
        )))
        .then_error("learner_left");
}

#[test]
fn a_new_enrollment_after_leaving_is_accepted() {
    let again = enroll(
        enrollment_id(2),
        pupil(),
        class_5_school_b().class_id,
        date(2026, 1, 12),
    );
    let after = given(pupil_left_on_26_december())
        .when(Command::Enroll(again.clone()))
        .then(vec![enrolled(&again, &class_5_school_b())]);
    assert_eq!(after.state().learner(pupil()).and_then(|l| l.left_on), None);
    after
        .when(record_mark(
            1,
            pupil(),
            class_5_school_b().class_id,
            date(2026, 1, 13),
        ))
        .then(vec![mark_event(
            1,
            pupil(),
            class_5_school_b().class_id,
            date(2026, 1, 13),
        )]);
}

#[test]
fn a_leaving_date_before_the_first_day_is_refused() {
    given(pupil_in_5a())
        .when(Command::Leave(leave(
            pupil(),
            enrollment_id(1),
            date(2025, 8, 31),
            LeaveReason::MovedAway,
        )))
        .then_error("date_out_of_range");
}

#[test]
fn a_leaving_dated_before_recorded_marks_or_attendance_is_refused() {
    let with_a_mark = plus(
        pupil_in_5a(),
        [mark_event(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 12, 10),
        )],
    );
    given(with_a_mark.clone())
        .when(Command::Leave(leave(
            pupil(),
            enrollment_id(1),
            date(2025, 12, 9),
            LeaveReason::MovedAway,
        )))
        .then_error("date_out_of_range");
    // The day of the last mark is still a day in the class.
    let on_the_day = leave(
        pupil(),
        enrollment_id(1),
        date(2025, 12, 10),
        LeaveReason::MovedAway,
    );
    given(with_a_mark)
        .when(Command::Leave(on_the_day.clone()))
        .then(vec![left(&on_the_day, &class_5a())]);
    let with_attendance = plus(
        pupil_in_5a(),
        [Event::AttendanceRecorded(attendance(
            pupil(),
            class_5a().class_id,
            date(2025, 12, 10),
            Attendance::Present,
        ))],
    );
    given(with_attendance)
        .when(Command::Leave(leave(
            pupil(),
            enrollment_id(1),
            date(2025, 12, 9),
            LeaveReason::MovedAway,
        )))
        .then_error("date_out_of_range");
}

#[test]
fn a_transfer_dated_on_or_before_recorded_marks_in_the_old_class_is_refused() {
    let with_a_mark = plus(
        pupil_in_5a(),
        [mark_event(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 12, 10),
        )],
    );
    for on in [date(2025, 12, 1), date(2025, 12, 10)] {
        given(with_a_mark.clone())
            .when(Command::Transfer(transfer(
                pupil(),
                enrollment_id(1),
                TransferKind::WithinOrganization,
                class_5b().class_id,
                None,
                on,
            )))
            .then_error("date_out_of_range");
    }
    let next_day = transfer(
        pupil(),
        enrollment_id(1),
        TransferKind::WithinOrganization,
        class_5b().class_id,
        None,
        date(2025, 12, 11),
    );
    given(with_a_mark)
        .when(Command::Transfer(next_day.clone()))
        .then(vec![transferred(&next_day, &class_5a(), &class_5b())]);
}

#[test]
fn a_death_reported_late_is_recorded_even_after_later_marks() {
    // The civil registry's fact is not refused; the marks after it stay visible as such.
    let with_a_mark = plus(
        pupil_in_5a(),
        [mark_event(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 12, 10),
        )],
    );
    given(with_a_mark)
        .when(Command::RegisterDeath(death(
            pupil(),
            date(2025, 12, 1),
            "170",
        )))
        .then(vec![died(pupil(), date(2025, 12, 1), "170")]);
}

#[test]
fn a_certificate_is_issued_on_graduation_only() {
    let mut command = leave(
        pupil(),
        enrollment_id(1),
        date(2026, 5, 25),
        LeaveReason::Expulsion,
    );
    command.certificate = Some(contingent_domain::Certificate {
        series: None,
        number: t("12345"),
        issued_on: date(2026, 5, 25),
    });
    given(pupil_in_5a())
        .when(Command::Leave(command))
        .today(date(2026, 6, 1))
        .then_error("invalid_value");
}

// ---------------------------------------------------------------------------------------------
// One primary general-education enrollment
// ---------------------------------------------------------------------------------------------

#[test]
fn a_second_primary_general_enrollment_is_refused() {
    given(pupil_in_5a())
        .when(Command::Enroll(enroll(
            enrollment_id(2),
            pupil(),
            class_5_school_b().class_id,
            date(2025, 10, 1),
        )))
        .then_error("second_primary_enrollment");
    given(pupil_in_5a())
        .when(Command::Enroll(enroll(
            enrollment_id(2),
            pupil(),
            class_5b().class_id,
            date(2025, 10, 1),
        )))
        .then_error("second_primary_enrollment");
}

#[test]
fn a_secondary_general_enrollment_is_accepted() {
    let mut secondary = enroll(
        enrollment_id(2),
        pupil(),
        class_5_school_b().class_id,
        date(2025, 10, 1),
    );
    secondary.primary = false;
    secondary.secondary_reason = Some(SecondaryReason::ExternalAttestation);
    given(pupil_in_5a())
        .when(Command::Enroll(secondary.clone()))
        .then(vec![enrolled(&secondary, &class_5_school_b())]);
}

#[test]
fn a_secondary_enrollment_without_a_reason_is_refused() {
    let mut secondary = enroll(
        enrollment_id(2),
        pupil(),
        class_5_school_b().class_id,
        date(2025, 10, 1),
    );
    secondary.primary = false;
    given(pupil_in_5a())
        .when(Command::Enroll(secondary))
        .then_error("secondary_enrollment_reason");
}

#[test]
fn a_secondary_reason_must_fit_the_level() {
    // Additional education is a reason for a club, not for a school class...
    let mut into_class = enroll(
        enrollment_id(2),
        pupil(),
        class_5_school_b().class_id,
        date(2025, 10, 1),
    );
    into_class.primary = false;
    into_class.secondary_reason = Some(SecondaryReason::AdditionalEducation);
    given(pupil_in_5a())
        .when(Command::Enroll(into_class))
        .then_error("secondary_enrollment_reason");
    // ...and external attestation is for general education, not for a club.
    let mut into_club = enroll(
        enrollment_id(2),
        pupil(),
        club_group().class_id,
        date(2025, 10, 1),
    );
    into_club.primary = false;
    into_club.secondary_reason = Some(SecondaryReason::ExternalAttestation);
    given(pupil_in_5a())
        .when(Command::Enroll(into_club.clone()))
        .then_error("secondary_enrollment_reason");
    into_club.secondary_reason = Some(SecondaryReason::AdditionalEducation);
    given(pupil_in_5a())
        .when(Command::Enroll(into_club.clone()))
        .then(vec![enrolled(&into_club, &club_group())]);
}

#[test]
fn a_primary_enrollment_names_no_secondary_reason() {
    let mut primary = enroll(
        enrollment_id(2),
        pupil(),
        club_group().class_id,
        date(2025, 10, 1),
    );
    primary.secondary_reason = Some(SecondaryReason::AdditionalEducation);
    given(pupil_in_5a())
        .when(Command::Enroll(primary))
        .then_error("secondary_enrollment_reason");
}

#[test]
fn an_additional_education_enrollment_is_accepted_in_parallel() {
    let club_enrollment = enroll(
        enrollment_id(2),
        pupil(),
        club_group().class_id,
        date(2025, 10, 1),
    );
    let school_club_enrollment = enroll(
        enrollment_id(3),
        pupil(),
        school_club().class_id,
        date(2025, 10, 1),
    );
    given(pupil_in_5a())
        .when(Command::Enroll(club_enrollment.clone()))
        .then(vec![enrolled(&club_enrollment, &club_group())])
        .when(Command::Enroll(school_club_enrollment.clone()))
        .then(vec![enrolled(&school_club_enrollment, &school_club())]);
}

#[test]
fn an_enrollment_into_a_class_the_learner_is_in_is_refused() {
    let events = plus(
        pupil_in_5a(),
        [enrolled(
            &enroll(
                enrollment_id(2),
                pupil(),
                club_group().class_id,
                date(2025, 10, 1),
            ),
            &club_group(),
        )],
    );
    given(events)
        .when(Command::Enroll(enroll(
            enrollment_id(3),
            pupil(),
            club_group().class_id,
            date(2025, 10, 2),
        )))
        .then_error("already_in_class");
}

#[test]
fn an_enrollment_id_is_used_once() {
    // By the same learner...
    given(pupil_in_5a())
        .when(Command::Enroll(enroll(
            enrollment_id(1),
            pupil(),
            club_group().class_id,
            date(2025, 10, 1),
        )))
        .then_error("already_exists");
    // ...and by another learner: enrollment ids name one enrollment in the whole region.
    given(plus(pupil_in_5a(), [born(learner_id(2), pupil_born())]))
        .when(Command::Enroll(enroll(
            enrollment_id(1),
            learner_id(2),
            class_5a().class_id,
            date(2025, 10, 1),
        )))
        .then_error("already_exists");
}

#[test]
fn a_transfer_to_another_organization_cannot_take_another_learners_enrollment_id() {
    let events = plus(
        pupil_in_5a(),
        [
            born(learner_id(2), pupil_born()),
            enrolled_in(enrollment_id(2), learner_id(2), &class_5b(), sep1()),
        ],
    );
    given(events)
        .when(Command::Transfer(transfer(
            learner_id(2),
            enrollment_id(2),
            TransferKind::ToOtherOrganization,
            class_5_school_b().class_id,
            Some(enrollment_id(1)),
            date(2025, 11, 10),
        )))
        .then_error("invalid_transfer");
}

// ---------------------------------------------------------------------------------------------
// Vacancies
// ---------------------------------------------------------------------------------------------

/// 5А with two places, both taken by learners 1 and 2 (enrollments 1 and 2); learner 3 waits.
fn full_5a() -> Vec<Event> {
    plus(
        world_with_capacity(class_5a().class_id, 2),
        [
            born(learner_id(1), pupil_born()),
            born(learner_id(2), pupil_born()),
            born(learner_id(3), pupil_born()),
            enrolled_in(enrollment_id(1), learner_id(1), &class_5a(), sep1()),
            enrolled_in(enrollment_id(2), learner_id(2), &class_5a(), sep1()),
        ],
    )
}

fn small_5a() -> contingent_domain::ClassOpened {
    class(
        class_5a().class_id,
        organization_id(1),
        Level::General,
        5,
        2025,
        2,
    )
}

#[test]
fn an_enrollment_into_a_full_class_is_refused() {
    let error = given(full_5a())
        .when(Command::Enroll(enroll(
            enrollment_id(3),
            learner_id(3),
            class_5a().class_id,
            date(2025, 10, 1),
        )))
        .then_error("class_full");
    assert_eq!(
        error,
        DomainError::ClassFull {
            class: class_5a().class_id,
            capacity: 2
        }
    );
}

#[test]
fn a_place_freed_by_leaving_can_be_taken() {
    let leaving = leave(
        learner_id(1),
        enrollment_id(1),
        date(2025, 10, 3),
        LeaveReason::MovedAway,
    );
    let third = enroll(
        enrollment_id(3),
        learner_id(3),
        class_5a().class_id,
        date(2025, 10, 6),
    );
    given(full_5a())
        .when(Command::Leave(leaving.clone()))
        .then(vec![left(&leaving, &small_5a())])
        .when(Command::Enroll(third.clone()))
        .then(vec![enrolled(&third, &small_5a())])
        .when(Command::Enroll(enroll(
            enrollment_id(4),
            learner_id(1),
            class_5a().class_id,
            date(2025, 10, 7),
        )))
        .then_error("class_full");
}

#[test]
fn a_place_freed_by_a_transfer_out_can_be_taken() {
    let out = transfer(
        learner_id(1),
        enrollment_id(1),
        TransferKind::WithinOrganization,
        class_5b().class_id,
        None,
        date(2025, 10, 3),
    );
    let third = enroll(
        enrollment_id(3),
        learner_id(3),
        class_5a().class_id,
        date(2025, 10, 6),
    );
    let after = given(full_5a())
        .when(Command::Transfer(out.clone()))
        .then(vec![transferred(&out, &small_5a(), &class_5b())])
        .when(Command::Enroll(third.clone()))
        .then(vec![enrolled(&third, &small_5a())]);
    assert_eq!(
        after
            .state()
            .class(class_5a().class_id)
            .map(|c| (c.enrolled, c.capacity)),
        Some((2, 2))
    );
    assert_eq!(
        after.state().class(class_5b().class_id).map(|c| c.enrolled),
        Some(1)
    );
}

#[test]
fn a_transfer_into_a_full_class_is_refused() {
    let events = plus(
        full_5a(),
        [enrolled_in(
            enrollment_id(3),
            learner_id(3),
            &class_5b(),
            sep1(),
        )],
    );
    given(events)
        .when(Command::Transfer(transfer(
            learner_id(3),
            enrollment_id(3),
            TransferKind::WithinOrganization,
            class_5a().class_id,
            None,
            date(2025, 10, 3),
        )))
        .then_error("class_full");
}

#[test]
fn a_capacity_below_the_enrolled_is_refused() {
    let error = given(full_5a())
        .when(Command::ChangeClassCapacity(ChangeClassCapacity {
            class_id: class_5a().class_id,
            capacity: 1,
            reason: None,
        }))
        .then_error("capacity_below_enrolled");
    assert_eq!(
        error,
        DomainError::CapacityBelowEnrolled {
            capacity: 1,
            enrolled: 2
        }
    );
}

#[test]
fn a_capacity_at_or_above_the_enrolled_is_accepted() {
    let command = ChangeClassCapacity {
        class_id: class_5a().class_id,
        capacity: 3,
        reason: Some(t("новый кабинет")),
    };
    given(full_5a())
        .when(Command::ChangeClassCapacity(ChangeClassCapacity {
            capacity: 2,
            ..command.clone()
        }))
        .then(vec![Event::ClassCapacityChanged(ClassCapacityChanged {
            class_id: class_5a().class_id,
            organization_id: organization_id(1),
            capacity: 2,
            reason: Some(t("новый кабинет")),
        })])
        .when(Command::ChangeClassCapacity(command))
        .then(vec![Event::ClassCapacityChanged(ClassCapacityChanged {
            class_id: class_5a().class_id,
            organization_id: organization_id(1),
            capacity: 3,
            reason: Some(t("новый кабинет")),
        })])
        .when(Command::Enroll(enroll(
            enrollment_id(3),
            learner_id(3),
            class_5a().class_id,
            date(2025, 10, 6),
        )))
        .then_accepted();
}

#[test]
fn a_capacity_out_of_range_is_refused() {
    for capacity in [0, 1001] {
        given(full_5a())
            .when(Command::ChangeClassCapacity(ChangeClassCapacity {
                class_id: class_5a().class_id,
                capacity,
                reason: None,
            }))
            .then_error("invalid_capacity");
        given(vec![Event::OrganizationRegistered(school_a())])
            .when(Command::OpenClass(class(
                class_id(1),
                organization_id(1),
                Level::General,
                5,
                2025,
                capacity,
            )))
            .then_error("invalid_capacity");
    }
}

// ---------------------------------------------------------------------------------------------
// Marks and attendance only for a learner in the class on the date
// ---------------------------------------------------------------------------------------------

/// The pupil enrolled into 5А on 15 September, moved to 5Б on 1 December.
fn pupil_moved_to_5b() -> Vec<Event> {
    let mut events = world();
    events.push(born(pupil(), pupil_born()));
    events.push(enrolled_in(
        enrollment_id(1),
        pupil(),
        &class_5a(),
        date(2025, 9, 15),
    ));
    events.push(transferred(
        &transfer(
            pupil(),
            enrollment_id(1),
            TransferKind::WithinOrganization,
            class_5b().class_id,
            None,
            date(2025, 12, 1),
        ),
        &class_5a(),
        &class_5b(),
    ));
    events
}

#[test]
fn a_mark_before_the_enrollment_is_refused() {
    given(pupil_moved_to_5b())
        .when(record_mark(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 9, 10),
        ))
        .then_error("learner_not_in_class");
}

#[test]
fn a_mark_after_the_transfer_out_is_refused() {
    let error = given(pupil_moved_to_5b())
        .when(record_mark(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 12, 5),
        ))
        .then_error("learner_not_in_class");
    assert_eq!(
        error,
        DomainError::NotInClass {
            learner: pupil(),
            class: class_5a().class_id,
            date: date(2025, 12, 5)
        }
    );
}

#[test]
fn a_mark_in_another_class_is_refused() {
    given(pupil_moved_to_5b())
        .when(record_mark(
            1,
            pupil(),
            class_5_school_b().class_id,
            date(2025, 10, 1),
        ))
        .then_error("learner_not_in_class");
    given(pupil_moved_to_5b())
        .when(record_mark(
            1,
            pupil(),
            class_5b().class_id,
            date(2025, 10, 1),
        ))
        .then_error("learner_not_in_class");
}

#[test]
fn attendance_follows_the_same_rule() {
    given(pupil_moved_to_5b())
        .when(Command::RecordAttendance(attendance(
            pupil(),
            class_5a().class_id,
            date(2025, 12, 5),
            Attendance::Late,
        )))
        .then_error("learner_not_in_class");
    given(pupil_moved_to_5b())
        .when(Command::RecordAttendance(attendance(
            pupil(),
            class_5a().class_id,
            date(2025, 9, 14),
            Attendance::Late,
        )))
        .then_error("learner_not_in_class");
    let present = attendance(
        pupil(),
        class_5b().class_id,
        date(2025, 12, 5),
        Attendance::Present,
    );
    given(pupil_moved_to_5b())
        .when(Command::RecordAttendance(present.clone()))
        .then(vec![Event::AttendanceRecorded(present)]);
    let mut bad_lesson = attendance(
        pupil(),
        class_5b().class_id,
        date(2025, 12, 5),
        Attendance::Present,
    );
    bad_lesson.lesson = Some(13);
    given(pupil_moved_to_5b())
        .when(Command::RecordAttendance(bad_lesson))
        .then_error("invalid_value");
}

#[test]
fn marks_on_the_transfer_date_land_in_the_new_class_only() {
    let transfer_day = date(2025, 12, 1);
    let day_before = date(2025, 11, 30);
    given(pupil_moved_to_5b())
        .when(record_mark(1, pupil(), class_5a().class_id, transfer_day))
        .then_error("learner_not_in_class");
    given(pupil_moved_to_5b())
        .when(record_mark(1, pupil(), class_5b().class_id, transfer_day))
        .then(vec![mark_event(
            1,
            pupil(),
            class_5b().class_id,
            transfer_day,
        )]);
    given(pupil_moved_to_5b())
        .when(record_mark(1, pupil(), class_5a().class_id, day_before))
        .then(vec![mark_event(
            1,
            pupil(),
            class_5a().class_id,
            day_before,
        )]);
    given(pupil_moved_to_5b())
        .when(record_mark(1, pupil(), class_5b().class_id, day_before))
        .then_error("learner_not_in_class");
}

#[test]
fn a_mark_needs_a_weight_of_1_to_10_and_a_period_for_period_marks() {
    let mut heavy = mark(
        mark_id(1),
        pupil(),
        class_5a().class_id,
        date(2025, 10, 1),
        Mark::Five,
    );
    heavy.weight = 11;
    given(pupil_in_5a())
        .when(Command::RecordMark(heavy))
        .then_error("invalid_value");
    let mut period = mark(
        mark_id(1),
        pupil(),
        class_5a().class_id,
        date(2025, 10, 1),
        Mark::Five,
    );
    period.kind = contingent_domain::MarkKind::Period;
    given(pupil_in_5a())
        .when(Command::RecordMark(period.clone()))
        .then_error("invalid_value");
    period.period = Some(t("term-1"));
    given(pupil_in_5a())
        .when(Command::RecordMark(period.clone()))
        .then(vec![Event::MarkRecorded(period)]);
}

#[test]
fn a_mark_id_is_used_once() {
    given(plus(
        pupil_in_5a(),
        [mark_event(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 10, 1),
        )],
    ))
    .when(record_mark(
        1,
        pupil(),
        class_5a().class_id,
        date(2025, 10, 2),
    ))
    .then_error("already_exists");
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

#[test]
fn an_enrollment_before_birth_is_refused() {
    let baby = learner_id(7);
    let events = plus(world(), [born(baby, date(2025, 10, 1))]);
    given(events.clone())
        .when(Command::Enroll(enroll(
            enrollment_id(1),
            baby,
            kindergarten_group().class_id,
            date(2025, 9, 20),
        )))
        .then_error("date_before_birth");
    given(events)
        .when(Command::SubmitApplication(application(
            application_id(1),
            baby,
            organization_id(3),
            Level::Preschool,
            2025,
            1,
            date(2025, 9, 20),
        )))
        .then_error("date_before_birth");
}

#[test]
fn a_death_before_birth_is_refused() {
    given(plus(world(), [born(pupil(), pupil_born())]))
        .when(Command::RegisterDeath(death(
            pupil(),
            date(2014, 5, 9),
            "170",
        )))
        .then_error("date_before_birth");
}

#[test]
fn dates_in_the_future_beyond_the_tolerance_are_refused() {
    let tomorrow = shift(today(), 1);
    let after_tomorrow = shift(today(), 2);
    given(pupil_in_5a())
        .when(record_mark(1, pupil(), class_5a().class_id, after_tomorrow))
        .then_error("date_in_future");
    given(pupil_in_5a())
        .when(record_mark(1, pupil(), class_5a().class_id, tomorrow))
        .then(vec![mark_event(1, pupil(), class_5a().class_id, tomorrow)]);
    given(plus(world(), [born(pupil(), pupil_born())]))
        .when(Command::Enroll(enroll(
            enrollment_id(1),
            pupil(),
            class_5a().class_id,
            after_tomorrow,
        )))
        .then_error("date_in_future");
    given(world())
        .when(Command::RegisterBirth(birth(pupil(), after_tomorrow)))
        .then_error("date_in_future");
    given(pupil_in_5a())
        .when(Command::Leave(leave(
            pupil(),
            enrollment_id(1),
            after_tomorrow,
            LeaveReason::MovedAway,
        )))
        .then_error("date_in_future");
    given(pupil_in_5a())
        .when(Command::RegisterDeath(death(
            pupil(),
            after_tomorrow,
            "170",
        )))
        .then_error("date_in_future");
}

#[test]
fn a_class_too_far_ahead_is_refused() {
    given(vec![Event::OrganizationRegistered(school_a())])
        .when(Command::OpenClass(class(
            class_id(1),
            organization_id(1),
            Level::General,
            5,
            2027,
            25,
        )))
        .then_error("date_in_future");
    let next_year = class(class_id(1), organization_id(1), Level::General, 5, 2026, 25);
    given(vec![Event::OrganizationRegistered(school_a())])
        .when(Command::OpenClass(next_year.clone()))
        .then(vec![Event::ClassOpened(next_year)]);
}

#[test]
fn a_birth_record_before_the_birth_is_refused() {
    let mut command = birth(pupil(), date(2025, 6, 1));
    command.record.date = date(2025, 5, 30);
    given(world())
        .when(Command::RegisterBirth(command))
        .then_error("date_out_of_range");
}

#[test]
fn dates_outside_the_academic_year_are_refused() {
    let events = plus(world(), [born(pupil(), pupil_born())]);
    // Summer enrollment: up to 122 days before 1 September.
    let early = enroll(
        enrollment_id(1),
        pupil(),
        class_5a().class_id,
        date(2025, 5, 2),
    );
    given(events.clone())
        .when(Command::Enroll(early.clone()))
        .then(vec![enrolled(&early, &class_5a())]);
    given(events.clone())
        .when(Command::Enroll(enroll(
            enrollment_id(1),
            pupil(),
            class_5a().class_id,
            date(2025, 5, 1),
        )))
        .then_error("date_out_of_range");
    given(events)
        .when(Command::Enroll(enroll(
            enrollment_id(1),
            pupil(),
            class_5a().class_id,
            date(2026, 9, 1),
        )))
        .today(date(2026, 10, 1))
        .then_error("date_out_of_range");
    // A lesson before 1 September of the class's year, even for a learner enrolled in the summer.
    let summer = plus(
        plus(world(), [born(pupil(), pupil_born())]),
        [enrolled(&early, &class_5a())],
    );
    given(summer.clone())
        .when(record_mark(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 8, 31),
        ))
        .then_error("date_out_of_range");
    given(summer)
        .when(record_mark(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 9, 1),
        ))
        .then_accepted();
}

// ---------------------------------------------------------------------------------------------
// The grade-1 age rule (on 1 September 2025)
// ---------------------------------------------------------------------------------------------

fn grade_one(born_on: NaiveDate, exemption: Option<&str>) -> support::Expectation {
    let child = learner_id(6);
    let mut command = enroll(
        enrollment_id(6),
        child,
        class_1a().class_id,
        date(2025, 9, 1),
    );
    command.age_exemption = exemption.map(t);
    given(plus(world(), [born(child, born_on)])).when(Command::Enroll(command))
}

#[test]
fn grade_one_at_exactly_6_years_6_months_is_accepted() {
    let child = learner_id(6);
    let command = enroll(
        enrollment_id(6),
        child,
        class_1a().class_id,
        date(2025, 9, 1),
    );
    assert_eq!(
        contingent_domain::age_in_months(date(2019, 3, 1), date(2025, 9, 1)),
        GRADE_ONE_MIN_MONTHS
    );
    grade_one(date(2019, 3, 1), None).then(vec![enrolled(&command, &class_1a())]);
}

#[test]
fn grade_one_at_6_years_5_months_is_refused() {
    let error = grade_one(date(2019, 3, 2), None).then_error("grade_one_age_rule");
    assert_eq!(
        error,
        DomainError::GradeOneAge {
            years: 6,
            months: 5
        }
    );
}

#[test]
fn grade_one_at_7_years_11_months_is_accepted() {
    grade_one(date(2017, 9, 2), None).then_accepted();
}

#[test]
fn grade_one_at_8_years_is_refused() {
    let error = grade_one(date(2017, 9, 1), None).then_error("grade_one_age_rule");
    assert_eq!(
        error,
        DomainError::GradeOneAge {
            years: 8,
            months: 0
        }
    );
}

#[test]
fn grade_one_out_of_age_with_an_exemption_is_accepted() {
    let child = learner_id(6);
    let mut command = enroll(
        enrollment_id(6),
        child,
        class_1a().class_id,
        date(2025, 9, 1),
    );
    command.age_exemption = Some(t("Разрешение управления образования № 44 от 20.08.2025"));
    grade_one(
        date(2019, 8, 1),
        Some("Разрешение управления образования № 44 от 20.08.2025"),
    )
    .then(vec![enrolled(&command, &class_1a())]);
    grade_one(date(2017, 9, 1), Some("Разрешение № 45")).then_accepted();
    grade_one(date(2019, 8, 1), None).then_error("grade_one_age_rule");
}

#[test]
fn the_age_rule_is_for_grade_one_only() {
    // A 5-year-old in a school club is fine; an 11-year-old in a kindergarten group is not.
    let child = learner_id(6);
    given(plus(world(), [born(child, date(2020, 6, 1))]))
        .when(Command::Enroll(enroll(
            enrollment_id(6),
            child,
            school_club().class_id,
            date(2025, 9, 1),
        )))
        .then_accepted();
    given(pupil_in_5a())
        .when(Command::Enroll(enroll(
            enrollment_id(2),
            pupil(),
            kindergarten_group().class_id,
            date(2025, 9, 1),
        )))
        .then_error("preschool_age_rule");
}

/// 2А of school A, 2025/2026: the way into grade 1 through another class.
fn class_2a() -> contingent_domain::ClassOpened {
    class(
        class_id(20),
        organization_id(1),
        Level::General,
        2,
        2025,
        25,
    )
}

/// The fifth-grader (11 years old) enrolled into 2А, with or without an age exemption.
fn pupil_in_2a(exemption: Option<&str>) -> Vec<Event> {
    let mut command = enroll(enrollment_id(1), pupil(), class_2a().class_id, sep1());
    command.age_exemption = exemption.map(t);
    plus(
        world(),
        [
            Event::ClassOpened(class_2a()),
            born(pupil(), pupil_born()),
            enrolled(&command, &class_2a()),
        ],
    )
}

fn into_1a() -> Command {
    Command::Transfer(transfer(
        pupil(),
        enrollment_id(1),
        TransferKind::WithinOrganization,
        class_1a().class_id,
        None,
        date(2025, 11, 10),
    ))
}

#[test]
fn the_grade_one_age_rule_applies_to_a_transfer_into_grade_one() {
    // Enrolled into grade 2, where no age rule applies, then moved into grade 1: refused.
    given(pupil_in_2a(None))
        .when(into_1a())
        .then_error("grade_one_age_rule");
}

#[test]
fn an_age_exemption_recorded_on_the_enrollment_goes_with_it_into_grade_one() {
    given(pupil_in_2a(Some("Разрешение учредителя № 12")))
        .when(into_1a())
        .then_accepted();
}

#[test]
fn the_preschool_age_rule_applies_to_a_transfer_between_groups() {
    // 7 years 11 months on joining the group, 8 years 2 months when moved to another.
    let child = learner_id(6);
    let other_group = class(
        class_id(21),
        organization_id(3),
        Level::Preschool,
        7,
        2025,
        20,
    );
    given(plus(
        world(),
        [
            Event::ClassOpened(other_group.clone()),
            born(child, date(2017, 9, 2)),
            enrolled_in(enrollment_id(6), child, &kindergarten_group(), sep1()),
        ],
    ))
    .when(Command::Transfer(transfer(
        child,
        enrollment_id(6),
        TransferKind::WithinOrganization,
        other_group.class_id,
        None,
        date(2025, 11, 10),
    )))
    .then_error("preschool_age_rule");
}

// ---------------------------------------------------------------------------------------------
// SNILS
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_snils_check_digits_are_refused_at_parse() {
    assert_eq!(
        Snils::parse("112-233-445 96"),
        Err(SnilsError::CheckDigits {
            found: 96,
            expected: 95
        })
    );
    assert_eq!(
        Snils::parse("112-233-445 59"),
        Err(SnilsError::CheckDigits {
            found: 59,
            expected: 95
        })
    );
    assert_eq!(Snils::parse("112-233-445"), Err(SnilsError::Format));
    assert!(Snils::parse("112-233-445 95").is_ok());
    // S = 9·1+8·2+…; S mod 101 = 101 gives check 00: numbers whose sum is 100 or 101 end in 00.
    let n = snils(123_456_789);
    assert_eq!(Snils::parse(&n.to_string()), Ok(n));
}

#[test]
fn one_snils_cannot_belong_to_two_learners() {
    let s1 = snils(112_233_445);
    let events = plus(
        world(),
        [
            Event::BirthRegistered(birth_with_snils(learner_id(1), pupil_born(), s1)),
            born(learner_id(2), pupil_born()),
        ],
    );
    given(events.clone())
        .when(Command::RegisterBirth(birth_with_snils(
            learner_id(3),
            pupil_born(),
            s1,
        )))
        .then_error("snils_belongs_to_another_person");
    given(events.clone())
        .when(Command::RecordSnils(SnilsRecorded {
            learner_id: learner_id(2),
            snils: s1,
        }))
        .then_error("snils_belongs_to_another_person");
    given(events.clone())
        .when(Command::RegisterLearner(LearnerRegistered {
            learner_id: learner_id(3),
            person: name("Сидоров", "Олег", None),
            sex: contingent_domain::Sex::Male,
            birth_date: pupil_born(),
            document: Document {
                kind: t("passport"),
                series: Some(t("0114")),
                number: t("123456"),
            },
            snils: Some(s1),
        }))
        .then_error("snils_belongs_to_another_person");
    // The learner's own SNILS again records nothing; another one is refused.
    given(events.clone())
        .when(Command::RecordSnils(SnilsRecorded {
            learner_id: learner_id(1),
            snils: s1,
        }))
        .then_nothing();
    given(events.clone())
        .when(Command::RecordSnils(SnilsRecorded {
            learner_id: learner_id(1),
            snils: snils(200_300_400),
        }))
        .then_error("snils_already_recorded");
    let recorded = SnilsRecorded {
        learner_id: learner_id(2),
        snils: snils(200_300_400),
    };
    let after = given(events)
        .when(Command::RecordSnils(recorded.clone()))
        .then(vec![Event::SnilsRecorded(recorded)]);
    assert_eq!(
        after.state().snils_owner(snils(200_300_400)),
        Some(SnilsOwner::Learner(learner_id(2)))
    );
}

fn siblings_with_a_mother() -> Vec<Event> {
    plus(
        world(),
        [
            Event::BirthRegistered(birth_with_snils(
                learner_id(1),
                pupil_born(),
                snils(112_233_445),
            )),
            born(learner_id(2), date(2016, 2, 3)),
            Event::GuardianLinked(guardian(
                learner_id(1),
                snils(300_400_500),
                name("Иванова", "Мария", Some("Петровна")),
                date(2025, 9, 1),
            )),
        ],
    )
}

#[test]
fn a_guardian_snils_reused_for_a_sibling_with_the_same_name_is_accepted() {
    let link = guardian(
        learner_id(2),
        snils(300_400_500),
        name("иванова", "мария", Some("петровна")),
        date(2025, 9, 2),
    );
    given(siblings_with_a_mother())
        .when(Command::LinkGuardian(link.clone()))
        .then(vec![Event::GuardianLinked(link)]);
}

#[test]
fn a_guardian_snils_reused_with_another_name_is_refused() {
    given(siblings_with_a_mother())
        .when(Command::LinkGuardian(guardian(
            learner_id(2),
            snils(300_400_500),
            name("Петрова", "Анна", None),
            date(2025, 9, 2),
        )))
        .then_error("snils_belongs_to_another_person");
}

#[test]
fn a_learner_snils_cannot_be_a_guardian_snils_and_back() {
    given(siblings_with_a_mother())
        .when(Command::LinkGuardian(guardian(
            learner_id(2),
            snils(112_233_445),
            name("Иванов", "Пётр", None),
            date(2025, 9, 2),
        )))
        .then_error("snils_belongs_to_another_person");
    given(siblings_with_a_mother())
        .when(Command::RecordSnils(SnilsRecorded {
            learner_id: learner_id(2),
            snils: snils(300_400_500),
        }))
        .then_error("snils_belongs_to_another_person");
}

#[test]
fn the_same_guardian_twice_is_refused() {
    given(siblings_with_a_mother())
        .when(Command::LinkGuardian(guardian(
            learner_id(1),
            snils(300_400_500),
            name("Иванова", "Мария", Some("Петровна")),
            date(2025, 9, 3),
        )))
        .then_error("guardian_already_linked");
}

#[test]
fn a_consent_dated_in_the_future_is_refused() {
    given(siblings_with_a_mother())
        .when(Command::LinkGuardian(guardian(
            learner_id(2),
            snils(300_400_500),
            name("Иванова", "Мария", Some("Петровна")),
            shift(today(), 2),
        )))
        .then_error("date_in_future");
}

// ---------------------------------------------------------------------------------------------
// Civil registry records reported twice
// ---------------------------------------------------------------------------------------------

#[test]
fn a_birth_is_recorded() {
    let command = birth_with_snils(pupil(), pupil_born(), snils(112_233_445));
    let after = given(world())
        .when(Command::RegisterBirth(command.clone()))
        .then(vec![Event::BirthRegistered(command.clone())]);
    assert_eq!(
        after.state().learner_by_birth_record(&command.record),
        Some(pupil())
    );
    assert_eq!(
        after.state().learner(pupil()).map(|l| l.birth_date),
        Some(pupil_born())
    );
}

#[test]
fn the_same_birth_record_twice_records_nothing() {
    let events = plus(world(), [born(pupil(), pupil_born())]);
    given(events.clone())
        .when(Command::RegisterBirth(birth(pupil(), pupil_born())))
        .then_nothing();
    // A retry with a freshly generated learner id is the same birth.
    let retry = contingent_domain::BirthRegistered {
        learner_id: learner_id(77),
        ..birth(pupil(), pupil_born())
    };
    let after = given(events.clone())
        .when(Command::RegisterBirth(retry.clone()))
        .then_nothing();
    assert_eq!(
        contingent_domain::learner_of(after.state(), &Command::RegisterBirth(retry)),
        Some(pupil())
    );
    // The record number and office are compared without regard to case.
    let mut shouting = birth(pupil(), pupil_born());
    shouting.record.office = t("ОТДЕЛ ЗАГС ЦЕНТРАЛЬНОГО РАЙОНА Г. БАРНАУЛА");
    given(events)
        .when(Command::RegisterBirth(shouting))
        .then_nothing();
}

#[test]
fn the_same_birth_record_with_other_contents_is_a_conflict() {
    let events = plus(world(), [born(pupil(), pupil_born())]);
    let mut other_date = birth(pupil(), pupil_born());
    other_date.birth_date = date(2014, 5, 11);
    given(events.clone())
        .when(Command::RegisterBirth(other_date))
        .then_error("civil_record_conflict");
    let mut other_name = birth(pupil(), pupil_born());
    other_name.child.name = t("Павел");
    given(events.clone())
        .when(Command::RegisterBirth(other_name))
        .then_error("civil_record_conflict");
    // Another record for an id already taken.
    let mut other_record = birth(pupil(), pupil_born());
    other_record.record.number = t("999");
    given(events)
        .when(Command::RegisterBirth(other_record))
        .then_error("already_exists");
}

#[test]
fn a_death_is_recorded_by_learner_id_snils_or_birth_record() {
    let s1 = snils(112_233_445);
    let events = plus(
        world(),
        [Event::BirthRegistered(birth_with_snils(
            pupil(),
            pupil_born(),
            s1,
        ))],
    );
    let expected = vec![died(pupil(), date(2025, 11, 10), "170")];
    given(events.clone())
        .when(Command::RegisterDeath(death(
            pupil(),
            date(2025, 11, 10),
            "170",
        )))
        .then(expected.clone());
    let mut by_snils = death(pupil(), date(2025, 11, 10), "170");
    by_snils.person = PersonRef::Snils(s1);
    given(events.clone())
        .when(Command::RegisterDeath(by_snils))
        .then(expected.clone());
    let record = birth_record(pupil(), pupil_born());
    let mut by_record = death(pupil(), date(2025, 11, 10), "170");
    by_record.person = PersonRef::BirthRecord {
        office: record.office,
        number: record.number,
    };
    given(events.clone())
        .when(Command::RegisterDeath(by_record))
        .then(expected);
    let mut by_unknown_snils = death(pupil(), date(2025, 11, 10), "170");
    by_unknown_snils.person = PersonRef::Snils(snils(200_300_400));
    given(events)
        .when(Command::RegisterDeath(by_unknown_snils))
        .then_error("learner_not_found");
}

#[test]
fn the_same_death_record_twice_records_nothing() {
    let events = plus(
        world(),
        [
            born(pupil(), pupil_born()),
            died(pupil(), date(2025, 11, 10), "170"),
        ],
    );
    given(events.clone())
        .when(Command::RegisterDeath(death(
            pupil(),
            date(2025, 11, 10),
            "170",
        )))
        .then_nothing();
    let record = birth_record(pupil(), pupil_born());
    let mut by_record = death(pupil(), date(2025, 11, 10), "170");
    by_record.person = PersonRef::BirthRecord {
        office: record.office,
        number: record.number,
    };
    given(events)
        .when(Command::RegisterDeath(by_record))
        .then_nothing();
}

#[test]
fn the_same_death_record_with_other_contents_is_a_conflict() {
    let events = plus(
        world(),
        [
            born(pupil(), pupil_born()),
            born(learner_id(2), pupil_born()),
            died(pupil(), date(2025, 11, 10), "170"),
        ],
    );
    given(events.clone())
        .when(Command::RegisterDeath(death(
            pupil(),
            date(2025, 11, 11),
            "170",
        )))
        .then_error("civil_record_conflict");
    given(events)
        .when(Command::RegisterDeath(death(
            learner_id(2),
            date(2025, 11, 10),
            "170",
        )))
        .then_error("civil_record_conflict");
}

// ---------------------------------------------------------------------------------------------
// Transfers
// ---------------------------------------------------------------------------------------------

#[test]
fn a_transfer_within_the_organization_is_recorded() {
    let command = transfer(
        pupil(),
        enrollment_id(1),
        TransferKind::WithinOrganization,
        class_5b().class_id,
        None,
        date(2025, 11, 10),
    );
    let after = given(pupil_in_5a())
        .when(Command::Transfer(command.clone()))
        .then(vec![transferred(&command, &class_5a(), &class_5b())]);
    let learner = after.state().learner(pupil()).expect("known");
    let enrollment = learner.enrollment(enrollment_id(1)).expect("kept");
    assert!(enrollment.active);
    assert_eq!(enrollment.class_id, class_5b().class_id);
    assert_eq!(
        after.state().class(class_5a().class_id).map(|c| c.enrolled),
        Some(0)
    );
    assert_eq!(
        after.state().class(class_5b().class_id).map(|c| c.enrolled),
        Some(1)
    );
}

#[test]
fn a_transfer_within_the_organization_stays_in_it_and_in_the_year() {
    for to in [class_5_school_b().class_id, class_6a().class_id] {
        given(pupil_in_5a())
            .when(Command::Transfer(transfer(
                pupil(),
                enrollment_id(1),
                TransferKind::WithinOrganization,
                to,
                None,
                date(2025, 11, 10),
            )))
            .then_error("invalid_transfer");
    }
    given(pupil_in_5a())
        .when(Command::Transfer(transfer(
            pupil(),
            enrollment_id(1),
            TransferKind::WithinOrganization,
            school_club().class_id,
            None,
            date(2025, 11, 10),
        )))
        .then_error("invalid_transfer");
    given(pupil_in_5a())
        .when(Command::Transfer(transfer(
            pupil(),
            enrollment_id(1),
            TransferKind::WithinOrganization,
            class_5a().class_id,
            None,
            date(2025, 11, 10),
        )))
        .then_error("invalid_transfer");
}

#[test]
fn a_transfer_to_the_next_grade_is_recorded() {
    let command = transfer(
        pupil(),
        enrollment_id(1),
        TransferKind::NextGrade,
        class_6a().class_id,
        None,
        date(2026, 9, 1),
    );
    let after = given(pupil_in_5a())
        .when(Command::Transfer(command.clone()))
        .today(date(2026, 9, 1))
        .then(vec![transferred(&command, &class_5a(), &class_6a())]);
    let learner = after.state().learner(pupil()).expect("known");
    assert_eq!(
        learner.enrollment(enrollment_id(1)).map(|e| e.grade),
        Some(6)
    );
}

#[test]
fn a_transfer_to_the_next_grade_goes_to_grade_plus_one_of_the_next_year() {
    for to in [class_7a_next_year().class_id, class_5b().class_id] {
        given(pupil_in_5a())
            .when(Command::Transfer(transfer(
                pupil(),
                enrollment_id(1),
                TransferKind::NextGrade,
                to,
                None,
                date(2026, 9, 1),
            )))
            .today(date(2026, 9, 1))
            .then_error("invalid_transfer");
    }
    // Grade 6 of the next year, but of another school: that is a transfer to another organization.
    let elsewhere = class(
        class_id(40),
        organization_id(2),
        Level::General,
        6,
        2026,
        25,
    );
    given(plus(pupil_in_5a(), [Event::ClassOpened(elsewhere.clone())]))
        .when(Command::Transfer(transfer(
            pupil(),
            enrollment_id(1),
            TransferKind::NextGrade,
            elsewhere.class_id,
            None,
            date(2026, 9, 1),
        )))
        .today(date(2026, 9, 1))
        .then_error("invalid_transfer");
}

#[test]
fn a_transfer_to_another_organization_opens_a_new_enrollment_and_frees_the_old_place() {
    let command = transfer(
        pupil(),
        enrollment_id(1),
        TransferKind::ToOtherOrganization,
        class_5_school_b().class_id,
        Some(enrollment_id(2)),
        date(2025, 11, 10),
    );
    let after = given(pupil_in_5a())
        .when(Command::Transfer(command.clone()))
        .then(vec![transferred(
            &command,
            &class_5a(),
            &class_5_school_b(),
        )]);
    let learner = after.state().learner(pupil()).expect("known");
    assert_eq!(
        learner.enrollment(enrollment_id(1)).map(|e| e.active),
        Some(false)
    );
    let new = learner.enrollment(enrollment_id(2)).expect("opened");
    assert!(new.active && new.primary);
    assert_eq!(
        (new.organization_id, new.class_id, new.level),
        (
            organization_id(2),
            class_5_school_b().class_id,
            Level::General
        )
    );
    assert_eq!(
        after.state().class(class_5a().class_id).map(|c| c.enrolled),
        Some(0)
    );
    assert_eq!(
        after
            .state()
            .class(class_5_school_b().class_id)
            .map(|c| c.enrolled),
        Some(1)
    );
    // The old enrollment has ended.
    after
        .when(Command::Leave(leave(
            pupil(),
            enrollment_id(1),
            date(2025, 11, 20),
            LeaveReason::Other,
        )))
        .then_error("enrollment_not_active");
}

#[test]
fn a_transfer_to_another_organization_needs_a_new_enrollment_id() {
    for to_enrollment in [None, Some(enrollment_id(1))] {
        given(pupil_in_5a())
            .when(Command::Transfer(transfer(
                pupil(),
                enrollment_id(1),
                TransferKind::ToOtherOrganization,
                class_5_school_b().class_id,
                to_enrollment,
                date(2025, 11, 10),
            )))
            .then_error("invalid_transfer");
    }
    // ...and goes to another organization.
    given(pupil_in_5a())
        .when(Command::Transfer(transfer(
            pupil(),
            enrollment_id(1),
            TransferKind::ToOtherOrganization,
            class_5b().class_id,
            Some(enrollment_id(2)),
            date(2025, 11, 10),
        )))
        .then_error("invalid_transfer");
    // ...at the same level.
    given(pupil_in_5a())
        .when(Command::Transfer(transfer(
            pupil(),
            enrollment_id(1),
            TransferKind::ToOtherOrganization,
            club_group().class_id,
            Some(enrollment_id(2)),
            date(2025, 11, 10),
        )))
        .then_error("invalid_transfer");
}

#[test]
fn a_transfer_must_follow_the_first_day_in_the_class() {
    for on in [sep1(), date(2025, 8, 20)] {
        given(pupil_in_5a())
            .when(Command::Transfer(transfer(
                pupil(),
                enrollment_id(1),
                TransferKind::WithinOrganization,
                class_5b().class_id,
                None,
                on,
            )))
            .then_error("date_out_of_range");
    }
}

// ---------------------------------------------------------------------------------------------
// Exams
// ---------------------------------------------------------------------------------------------

fn ninth_grader() -> contingent_domain::LearnerId {
    learner_id(9)
}

fn eleventh_grader() -> contingent_domain::LearnerId {
    learner_id(11)
}

fn exam_world() -> Vec<Event> {
    plus(
        pupil_in_5a(),
        [
            born(ninth_grader(), date(2010, 3, 1)),
            born(eleventh_grader(), date(2008, 3, 1)),
            born(learner_id(12), date(2010, 3, 1)),
            enrolled_in(enrollment_id(9), ninth_grader(), &class_9a(), sep1()),
            enrolled_in(enrollment_id(11), eleventh_grader(), &class_11a(), sep1()),
            enrolled_in(enrollment_id(12), learner_id(12), &club_group(), sep1()),
        ],
    )
}

fn exam_recorded(c: &RecordExamResult, grade: u8) -> Event {
    Event::ExamResultRecorded(ExamResultRecorded {
        learner_id: c.learner_id,
        form: c.form,
        subject: c.subject.clone(),
        exam_date: c.exam_date,
        primary_points: c.primary_points,
        result: match (c.test_score, c.mark) {
            (Some(score), None) => ExamScore::TestScore(score),
            (None, Some(mark)) => ExamScore::Mark(mark),
            other => panic!("an accepted result is on one scale, not {other:?}"),
        },
        grade,
    })
}

#[test]
fn an_oge_in_grade_9_with_a_5_point_mark_is_recorded() {
    let command = exam(ninth_grader(), ExamForm::Oge, None, Some(Mark::Five));
    given(exam_world())
        .when(Command::RecordExamResult(command.clone()))
        .then(vec![exam_recorded(&command, 9)]);
}

#[test]
fn an_oge_outside_grade_9_is_refused() {
    for learner in [eleventh_grader(), pupil()] {
        given(exam_world())
            .when(Command::RecordExamResult(exam(
                learner,
                ExamForm::Oge,
                None,
                Some(Mark::Four),
            )))
            .then_error("exam_not_allowed");
    }
    // Not in general education at all.
    given(exam_world())
        .when(Command::RecordExamResult(exam(
            learner_id(12),
            ExamForm::Oge,
            None,
            Some(Mark::Four),
        )))
        .then_error("exam_not_allowed");
}

#[test]
fn an_oge_needs_a_5_point_mark_and_no_test_score() {
    for (score, mark) in [
        (None, None),
        (None, Some(Mark::Pass)),
        (None, Some(Mark::Fail)),
        (Some(70), Some(Mark::Four)),
    ] {
        given(exam_world())
            .when(Command::RecordExamResult(exam(
                ninth_grader(),
                ExamForm::Oge,
                score,
                mark,
            )))
            .then_error("invalid_exam_result");
    }
    let mut too_many_points = exam(ninth_grader(), ExamForm::Oge, None, Some(Mark::Five));
    too_many_points.primary_points = 101;
    given(exam_world())
        .when(Command::RecordExamResult(too_many_points))
        .then_error("invalid_exam_result");
}

#[test]
fn an_ege_in_grade_11_with_a_score_0_to_100_is_recorded() {
    for score in [0, 100] {
        let command = exam(eleventh_grader(), ExamForm::Ege, Some(score), None);
        given(exam_world())
            .when(Command::RecordExamResult(command.clone()))
            .then(vec![exam_recorded(&command, 11)]);
    }
}

#[test]
fn an_ege_outside_grade_11_is_refused() {
    given(exam_world())
        .when(Command::RecordExamResult(exam(
            ninth_grader(),
            ExamForm::Ege,
            Some(80),
            None,
        )))
        .then_error("exam_not_allowed");
}

#[test]
fn an_ege_needs_a_test_score_of_at_most_100_and_no_mark() {
    for (score, mark) in [
        (Some(101), None),
        (Some(255), None),
        (None, None),
        (Some(80), Some(Mark::Five)),
    ] {
        given(exam_world())
            .when(Command::RecordExamResult(exam(
                eleventh_grader(),
                ExamForm::Ege,
                score,
                mark,
            )))
            .then_error("invalid_exam_result");
    }
}

#[test]
fn a_gve_is_sat_in_grade_9_or_11() {
    for (learner, grade) in [(ninth_grader(), 9), (eleventh_grader(), 11)] {
        let command = exam(learner, ExamForm::Gve, None, Some(Mark::Three));
        given(exam_world())
            .when(Command::RecordExamResult(command.clone()))
            .then(vec![exam_recorded(&command, grade)]);
    }
    given(exam_world())
        .when(Command::RecordExamResult(exam(
            pupil(),
            ExamForm::Gve,
            None,
            Some(Mark::Three),
        )))
        .then_error("exam_not_allowed");
}

// ---------------------------------------------------------------------------------------------
// Mark corrections
// ---------------------------------------------------------------------------------------------

fn correct(id: u32, value: Mark) -> Command {
    Command::CorrectMark(CorrectMark {
        mark_id: mark_id(id),
        value,
        reason: t("ошибка при вводе"),
        teacher: t("Петрова А. В."),
    })
}

fn corrected(id: u32, previous: Mark, value: Mark) -> Event {
    Event::MarkCorrected(MarkCorrected {
        mark_id: mark_id(id),
        learner_id: pupil(),
        class_id: class_5a().class_id,
        previous,
        value,
        reason: t("ошибка при вводе"),
        teacher: t("Петрова А. В."),
    })
}

fn pupil_with_a_three() -> Vec<Event> {
    plus(
        pupil_in_5a(),
        [Event::MarkRecorded(mark(
            mark_id(1),
            pupil(),
            class_5a().class_id,
            date(2025, 10, 1),
            Mark::Three,
        ))],
    )
}

#[test]
fn a_correction_that_changes_nothing_is_refused() {
    given(pupil_with_a_three())
        .when(correct(1, Mark::Three))
        .then_error("mark_unchanged");
}

#[test]
fn a_correction_carries_the_previous_value() {
    let after = given(pupil_with_a_three())
        .when(correct(1, Mark::Four))
        .then(vec![corrected(1, Mark::Three, Mark::Four)])
        .when(correct(1, Mark::Five))
        .then(vec![corrected(1, Mark::Four, Mark::Five)]);
    assert_eq!(
        after.state().mark(mark_id(1)).map(|m| m.value),
        Some(Mark::Five)
    );
    after
        .when(correct(1, Mark::Five))
        .then_error("mark_unchanged");
}

// ---------------------------------------------------------------------------------------------
// Applications
// ---------------------------------------------------------------------------------------------

fn first_grader() -> contingent_domain::LearnerId {
    learner_id(20)
}

fn for_grade_one(id: u32, org: u32) -> contingent_domain::ApplicationSubmitted {
    application(
        application_id(id),
        first_grader(),
        organization_id(org),
        Level::General,
        2025,
        1,
        date(2025, 4, 1),
    )
}

fn applicant() -> Vec<Event> {
    plus(
        world(),
        [
            born(first_grader(), date(2018, 12, 1)),
            born(learner_id(21), date(2018, 12, 1)),
        ],
    )
}

fn applied() -> Vec<Event> {
    plus(
        applicant(),
        [Event::ApplicationSubmitted(for_grade_one(1, 1))],
    )
}

#[test]
fn an_application_is_recorded() {
    let after = given(applicant())
        .when(Command::SubmitApplication(for_grade_one(1, 1)))
        .then(vec![Event::ApplicationSubmitted(for_grade_one(1, 1))]);
    assert_eq!(
        after
            .state()
            .application(application_id(1))
            .map(|a| a.status),
        Some(ApplicationStatus::Pending)
    );
}

#[test]
fn a_second_pending_application_for_the_same_place_is_refused() {
    let error = given(applied())
        .when(Command::SubmitApplication(for_grade_one(2, 1)))
        .then_error("application_already_pending");
    assert_eq!(
        error,
        DomainError::ApplicationAlreadyPending(application_id(1))
    );
    // Another school is another place; the same id is taken.
    given(applied())
        .when(Command::SubmitApplication(for_grade_one(2, 2)))
        .then_accepted();
    given(applied())
        .when(Command::SubmitApplication(for_grade_one(1, 2)))
        .then_error("already_exists");
}

#[test]
fn an_application_for_a_level_not_taught_is_refused() {
    let mut wrong = for_grade_one(1, 3);
    wrong.level = Level::General;
    given(applicant())
        .when(Command::SubmitApplication(wrong))
        .then_error("level_not_taught");
}

fn withdraw(id: u32, on: NaiveDate) -> Command {
    Command::WithdrawApplication(WithdrawApplication {
        application_id: application_id(id),
        withdrawn_on: on,
        reason: None,
    })
}

fn reject(id: u32, on: NaiveDate) -> Command {
    Command::RejectApplication(RejectApplication {
        application_id: application_id(id),
        rejected_on: on,
        reason: t("нет мест"),
    })
}

#[test]
fn an_application_is_withdrawn_only_while_pending() {
    given(applied())
        .when(withdraw(1, date(2025, 4, 10)))
        .then(vec![Event::ApplicationWithdrawn(ApplicationWithdrawn {
            application_id: application_id(1),
            learner_id: first_grader(),
            organization_id: organization_id(1),
            withdrawn_on: date(2025, 4, 10),
            reason: None,
        })])
        .when(withdraw(1, date(2025, 4, 11)))
        .then_error("application_not_pending");
    let withdrawn = given(applied())
        .when(withdraw(1, date(2025, 4, 10)))
        .then_accepted();
    withdrawn
        .when(reject(1, date(2025, 4, 11)))
        .then_error("application_not_pending");
    // Once withdrawn, a new application for the same place can be submitted.
    let withdrawn = given(applied())
        .when(withdraw(1, date(2025, 4, 10)))
        .then_accepted();
    withdrawn
        .when(Command::SubmitApplication(for_grade_one(2, 1)))
        .then_accepted();
}

#[test]
fn an_application_is_rejected_only_while_pending() {
    let after = given(applied())
        .when(reject(1, date(2025, 4, 10)))
        .then(vec![Event::ApplicationRejected(ApplicationRejected {
            application_id: application_id(1),
            learner_id: first_grader(),
            organization_id: organization_id(1),
            rejected_on: date(2025, 4, 10),
            reason: t("нет мест"),
        })]);
    assert_eq!(
        after
            .state()
            .application(application_id(1))
            .map(|a| a.status),
        Some(ApplicationStatus::Rejected)
    );
    after
        .when(withdraw(1, date(2025, 4, 11)))
        .then_error("application_not_pending");
}

#[test]
fn a_decision_before_the_submission_is_refused() {
    given(applied())
        .when(withdraw(1, date(2025, 3, 31)))
        .then_error("date_out_of_range");
    given(applied())
        .when(reject(1, shift(today(), 2)))
        .then_error("date_in_future");
}

#[test]
fn an_enrollment_with_the_application_accepts_it_once() {
    let mut command = enroll(
        enrollment_id(1),
        first_grader(),
        class_1a().class_id,
        date(2025, 9, 1),
    );
    command.application_id = Some(application_id(1));
    let after = given(applied())
        .when(Command::Enroll(command.clone()))
        .then(vec![enrolled(&command, &class_1a())]);
    assert_eq!(
        after
            .state()
            .application(application_id(1))
            .map(|a| a.status),
        Some(ApplicationStatus::Accepted)
    );
    let mut reuse = enroll(
        enrollment_id(2),
        learner_id(21),
        class_1a().class_id,
        date(2025, 9, 1),
    );
    reuse.application_id = Some(application_id(1));
    let error = after
        .when(Command::Enroll(reuse))
        .then_error("application_not_pending");
    assert_eq!(error, DomainError::ApplicationNotPending(application_id(1)));
}

#[test]
fn an_enrollment_with_someone_elses_application_is_refused() {
    let mut other_learner = enroll(
        enrollment_id(2),
        learner_id(21),
        class_1a().class_id,
        date(2025, 9, 1),
    );
    other_learner.application_id = Some(application_id(1));
    given(applied())
        .when(Command::Enroll(other_learner))
        .then_error("application_mismatch");
    let mut other_school = enroll(
        enrollment_id(2),
        first_grader(),
        class_1a().class_id,
        date(2025, 9, 1),
    );
    other_school.application_id = Some(application_id(2));
    given(plus(
        applicant(),
        [Event::ApplicationSubmitted(for_grade_one(2, 2))],
    ))
    .when(Command::Enroll(other_school))
    .then_error("application_mismatch");
}

// ---------------------------------------------------------------------------------------------
// Teachers of a class
// ---------------------------------------------------------------------------------------------

fn teachers_of(scenario: &support::Scenario, class: contingent_domain::ClassId) -> Vec<String> {
    scenario
        .state()
        .class(class)
        .expect("the class is open")
        .teachers
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect()
}

fn assign(
    class: &contingent_domain::ClassOpened,
    teacher: &str,
    subjects: &[&str],
    from: NaiveDate,
) -> Command {
    Command::AssignTeacher(assignment(class, teacher, subjects, from))
}

#[test]
fn a_teacher_is_assigned_then_unassigned() {
    let petrova = assignment(&class_5a(), "teacher-0001", &["Математика"], sep1());
    let sidorov = assignment(
        &class_5a(),
        "teacher-0002",
        &["Русский язык", "Литература"],
        sep1(),
    );
    let s = given(world())
        .when(Command::AssignTeacher(petrova.clone()))
        .then(vec![Event::TeacherAssigned(petrova.clone())]);
    assert_eq!(teachers_of(&s, class_5a().class_id), ["teacher-0001"]);
    assert!(teachers_of(&s, class_5b().class_id).is_empty());
    let s = s
        .when(Command::AssignTeacher(sidorov.clone()))
        .then(vec![Event::TeacherAssigned(sidorov)]);
    assert_eq!(
        teachers_of(&s, class_5a().class_id),
        ["teacher-0001", "teacher-0002"]
    );
    // The same teacher in another class of the school.
    let s = s
        .when(assign(&class_5b(), "teacher-0001", &["Математика"], sep1()))
        .then_accepted();
    assert_eq!(teachers_of(&s, class_5b().class_id), ["teacher-0001"]);
    // Unassigned from one class, still a teacher of the other.
    let s = s
        .when(Command::UnassignTeacher(unassignment(
            class_5a().class_id,
            "teacher-0001",
            date(2025, 12, 26),
        )))
        .then(vec![unassigned(
            &class_5a(),
            "teacher-0001",
            date(2025, 12, 26),
        )]);
    assert_eq!(teachers_of(&s, class_5a().class_id), ["teacher-0002"]);
    assert_eq!(teachers_of(&s, class_5b().class_id), ["teacher-0001"]);
    // And assigned again later.
    let mut again = petrova;
    again.from = date(2026, 1, 12);
    let s = s
        .when(Command::AssignTeacher(again.clone()))
        .then(vec![Event::TeacherAssigned(again)]);
    assert_eq!(
        teachers_of(&s, class_5a().class_id),
        ["teacher-0002", "teacher-0001"]
    );
}

#[test]
fn the_state_holds_a_teachers_account_and_a_subject_once_however_many_classes_name_them() {
    let s = given(world())
        .when(assign(&class_5a(), "teacher-0001", &["Математика"], sep1()))
        .then_accepted()
        .when(assign(&class_5b(), "teacher-0001", &["Математика"], sep1()))
        .then_accepted();
    let held = |class: contingent_domain::ClassId| {
        let c = s.state().class(class).expect("the class is open");
        let a = c.assignment("teacher-0001").expect("assigned");
        (
            c.teachers[0].as_str().as_ptr(),
            a.teacher.as_str().as_ptr(),
            a.subjects[0].as_str().as_ptr(),
        )
    };
    let (a, b) = (held(class_5a().class_id), held(class_5b().class_id));
    assert_eq!(
        a.0, a.1,
        "the class's list and its assignment share the account"
    );
    assert_eq!(a, b, "two classes share the account and the subject");
}

#[test]
fn a_teacher_of_an_unknown_class_is_refused() {
    let unknown = class(
        class_id(99),
        organization_id(1),
        Level::General,
        5,
        2025,
        25,
    );
    given(world())
        .when(assign(&unknown, "teacher-0001", &["Математика"], sep1()))
        .then_error("class_not_found");
    given(world())
        .when(Command::UnassignTeacher(unassignment(
            class_id(99),
            "teacher-0001",
            date(2025, 12, 26),
        )))
        .then_error("class_not_found");
}

#[test]
fn a_teacher_of_another_organizations_class_is_refused() {
    let mut command = assignment(&class_5a(), "teacher-0001", &["Математика"], sep1());
    command.organization_id = class_5_school_b().organization_id;
    given(world())
        .when(Command::AssignTeacher(command))
        .then_error("invalid_value");
}

#[test]
fn a_teacher_assigned_twice_is_refused() {
    given(world())
        .when(assign(&class_5a(), "teacher-0001", &["Математика"], sep1()))
        .then_accepted()
        .when(assign(
            &class_5a(),
            "teacher-0001",
            &["Информатика"],
            date(2025, 10, 1),
        ))
        .then_error("already_exists");
}

#[test]
fn a_teacher_is_assigned_for_at_least_one_subject() {
    given(world())
        .when(assign(&class_5a(), "teacher-0001", &[], sep1()))
        .then_error("invalid_value");
}

#[test]
fn assignment_dates_in_the_future_or_after_the_year_are_refused() {
    let tomorrow = shift(today(), 1);
    let after_tomorrow = shift(today(), 2);
    given(world())
        .when(assign(
            &class_5a(),
            "teacher-0001",
            &["Математика"],
            after_tomorrow,
        ))
        .then_error("date_in_future");
    given(world())
        .when(assign(
            &class_5a(),
            "teacher-0001",
            &["Математика"],
            tomorrow,
        ))
        .then_accepted()
        .when(Command::UnassignTeacher(unassignment(
            class_5a().class_id,
            "teacher-0001",
            after_tomorrow,
        )))
        .then_error("date_in_future");
    // 5А is a class of 2025/2026: nobody starts teaching it on 1 September 2026.
    given(world())
        .when(assign(
            &class_5a(),
            "teacher-0001",
            &["Математика"],
            date(2026, 9, 1),
        ))
        .today(date(2026, 9, 10))
        .then_error("date_out_of_range");
    given(world())
        .when(assign(
            &class_5a(),
            "teacher-0001",
            &["Математика"],
            date(2026, 8, 31),
        ))
        .today(date(2026, 9, 10))
        .then_accepted();
}

#[test]
fn unassigning_a_teacher_not_assigned_is_refused() {
    let unassign = Command::UnassignTeacher(unassignment(
        class_5a().class_id,
        "teacher-0001",
        date(2025, 12, 26),
    ));
    given(world())
        .when(unassign.clone())
        .then_error("invalid_value");
    // A teacher of another class.
    given(world())
        .when(assign(&class_5b(), "teacher-0001", &["Математика"], sep1()))
        .then_accepted()
        .when(unassign.clone())
        .then_error("invalid_value");
    // Already unassigned.
    given(world())
        .when(assign(&class_5a(), "teacher-0001", &["Математика"], sep1()))
        .then_accepted()
        .when(unassign.clone())
        .then_accepted()
        .when(unassign)
        .then_error("invalid_value");
}

// ---------------------------------------------------------------------------------------------
// The directory
// ---------------------------------------------------------------------------------------------

#[test]
fn organizations_teach_the_levels_of_their_kind() {
    let mut kindergarten_school = kindergarten();
    kindergarten_school.levels = vec![Level::Preschool, Level::General];
    given(vec![])
        .when(Command::RegisterOrganization(kindergarten_school))
        .then_error("invalid_value");
    let mut twice = school_a();
    twice.levels = vec![Level::General, Level::General];
    given(vec![])
        .when(Command::RegisterOrganization(twice))
        .then_error("invalid_value");
    let mut none = club();
    none.levels = vec![];
    given(vec![])
        .when(Command::RegisterOrganization(none))
        .then_error("invalid_value");
    given(vec![])
        .when(Command::RegisterOrganization(college()))
        .then(vec![Event::OrganizationRegistered(college())])
        .when(Command::RegisterOrganization(college()))
        .then_error("already_exists");
}

#[test]
fn classes_fit_the_levels_and_grades_of_their_organization() {
    let base = vec![
        Event::OrganizationRegistered(school_a()),
        Event::OrganizationRegistered(club()),
    ];
    given(base.clone())
        .when(Command::OpenClass(class(
            class_id(1),
            organization_id(4),
            Level::General,
            5,
            2025,
            20,
        )))
        .then_error("level_not_taught");
    given(base.clone())
        .when(Command::OpenClass(class(
            class_id(1),
            organization_id(1),
            Level::General,
            12,
            2025,
            20,
        )))
        .then_error("invalid_value");
    given(base.clone())
        .when(Command::OpenClass(class(
            class_id(1),
            organization_id(1),
            Level::General,
            0,
            2025,
            20,
        )))
        .then_error("invalid_value");
    let mut stay = class(class_id(1), organization_id(1), Level::General, 5, 2025, 20);
    stay.stay_mode = Some(contingent_domain::StayMode::FullDay);
    given(base.clone())
        .when(Command::OpenClass(stay))
        .then_error("invalid_value");
    given(plus(base, [Event::ClassOpened(class_5a())]))
        .when(Command::OpenClass(class_5a()))
        .then_error("already_exists");
}

#[test]
fn an_exam_result_arriving_after_graduation_is_the_graduates() {
    let graduation = leave(
        eleventh_grader(),
        enrollment_id(11),
        date(2026, 6, 30),
        LeaveReason::Graduation,
    );
    let command = exam(eleventh_grader(), ExamForm::Ege, Some(81), None);
    given(plus(exam_world(), [left(&graduation, &class_11a())]))
        .when(Command::RecordExamResult(command.clone()))
        .then(vec![exam_recorded(&command, 11)]);
    // An exam dated after the learner left is not theirs to sit in that class.
    let mut late = command;
    late.exam_date = date(2026, 7, 10);
    given(plus(exam_world(), [left(&graduation, &class_11a())]))
        .when(Command::RecordExamResult(late))
        .today(date(2026, 11, 22))
        .then_error("exam_not_allowed");
}

// ---------------------------------------------------------------------------------------------
// What the writer does with the state: settling marks, and knowing what changed a learner
// ---------------------------------------------------------------------------------------------

fn fold(events: &[Event]) -> contingent_domain::State {
    let mut state = contingent_domain::State::new();
    for e in events {
        state.apply(e);
    }
    state
}

fn correction(value: Mark) -> Command {
    Command::CorrectMark(CorrectMark {
        mark_id: mark_id(1),
        value,
        reason: t("ошибка ввода"),
        teacher: t("Петрова А. В."),
    })
}

#[test]
fn a_settled_mark_is_decided_on_only_once_recalled() {
    let events = plus(
        pupil_in_5a(),
        [mark_event(
            1,
            pupil(),
            class_5a().class_id,
            date(2025, 9, 10),
        )],
    );
    let mut state = fold(&events);
    assert_eq!(state.settle_marks(state.applied() - 1), vec![]);
    let settled = state.settle_marks(state.applied());
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].1.at, events.len() as u64);
    assert_eq!(state.counts()[4], 0, "no mark held");
    let unknown = contingent_domain::decide(&state, &correction(Mark::Four), today());
    assert_eq!(unknown.map_err(|e| e.code()), Err("mark_not_found"));

    state.recall_mark(settled[0].0, settled[0].1.clone());
    let decided = contingent_domain::decide(&state, &correction(Mark::Four), today())
        .expect("the recalled mark is corrected");
    assert!(matches!(
        decided.as_slice(),
        [Event::MarkCorrected(MarkCorrected {
            previous: Mark::Five,
            value: Mark::Four,
            ..
        })]
    ));
    // A correction applied to a state that had settled the mark brings it back with its value.
    let mut state = fold(&events);
    state.settle_marks(state.applied());
    state.apply(&decided[0]);
    let same = contingent_domain::decide(&state, &correction(Mark::Four), today());
    assert_eq!(same.map_err(|e| e.code()), Err("mark_unchanged"));
    // What it was recorded for (subject, lesson date) is not in the correction: the state holds
    // the corrected mark without it until the book's record supplies it, keeping the new value.
    let held = state.mark(mark_id(1)).expect("held").clone();
    assert_eq!(held.origin, None);
    state.recall_mark(settled[0].0, settled[0].1.clone());
    let recalled = state.mark(mark_id(1)).expect("held");
    assert_eq!(recalled.value, Mark::Four, "the newer value stays");
    assert_eq!(recalled.origin, settled[0].1.origin);
    assert_eq!(
        recalled.origin.as_ref().map(|o| o.lesson_date),
        Some(date(2025, 9, 10))
    );
}

#[test]
fn a_learners_last_event_is_the_last_event_about_them() {
    let events = pupil_in_5a();
    let mut state = fold(&events);
    let last = events.len() as u64;
    let last_event = |state: &contingent_domain::State, id| state.learner(id).map(|l| l.changed_at);
    assert_eq!(last_event(&state, pupil()), Some(last));
    state.apply(&born(learner_id(2), date(2014, 1, 1)));
    assert_eq!(
        last_event(&state, pupil()),
        Some(last),
        "another learner's birth"
    );
    assert_eq!(last_event(&state, learner_id(2)), Some(last + 1));
    state.apply(&Event::ClassCapacityChanged(ClassCapacityChanged {
        class_id: class_5a().class_id,
        organization_id: organization_id(1),
        capacity: 30,
        reason: None,
    }));
    assert_eq!(
        last_event(&state, pupil()),
        Some(last),
        "an event about no learner is not about them"
    );
    assert_eq!(last_event(&state, learner_id(99)), None);
}

// ---------------------------------------------------------------------------------------------
// Erasure of personal data
// ---------------------------------------------------------------------------------------------

fn erase(learner: contingent_domain::LearnerId) -> Command {
    Command::ErasePersonalData(contingent_domain::ErasePersonalData {
        learner_id: learner,
        reason: t("152-FZ art. 21 p. 7: the retention period ended"),
    })
}

fn erased(learner: contingent_domain::LearnerId, on: NaiveDate) -> Event {
    Event::PersonalDataErased(contingent_domain::PersonalDataErased {
        learner_id: learner,
        reason: t("152-FZ art. 21 p. 7: the retention period ended"),
        erased_on: on,
    })
}

fn mother_of_pupil() -> Event {
    Event::GuardianLinked(guardian(
        pupil(),
        snils(200_300_400),
        name("Иванова", "Мария", Some("Петровна")),
        date(2025, 8, 20),
    ))
}

#[test]
fn erasure_is_recorded_with_today_as_its_date() {
    given(pupil_in_5a())
        .when(erase(pupil()))
        .then(vec![erased(pupil(), today())]);
}

#[test]
fn erasure_of_an_unknown_learner_is_refused() {
    given(world())
        .when(erase(learner_id(99)))
        .then_error("learner_not_found");
}

#[test]
fn a_learner_who_died_can_be_erased() {
    given(pupil_died_on_10_november())
        .when(erase(pupil()))
        .then(vec![erased(pupil(), today())]);
}

#[test]
fn erasing_again_records_nothing() {
    given(plus(pupil_in_5a(), [erased(pupil(), date(2026, 3, 1))]))
        .when(erase(pupil()))
        .then_nothing();
}

#[test]
fn after_erasure_the_snils_and_the_guardians_are_forgotten_and_the_enrollment_stays() {
    let events = plus(
        pupil_in_5a(),
        [
            Event::SnilsRecorded(SnilsRecorded {
                learner_id: pupil(),
                snils: snils(100_200_300),
            }),
            mother_of_pupil(),
            erased(pupil(), date(2026, 3, 1)),
        ],
    );
    let scenario = given(events);
    let state = scenario.state();
    assert!(state.is_erased(pupil()));
    let learner = state.learner(pupil()).expect("the learner stays");
    assert_eq!(learner.snils, None);
    assert!(learner.guardians.is_empty());
    assert_eq!(learner.active_enrollments().count(), 1);
    assert_eq!(state.snils_owner(snils(100_200_300)), None);
    assert_eq!(state.snils_owner(snils(200_300_400)), None);
}

#[test]
fn no_new_snils_or_guardian_after_erasure() {
    let events = plus(pupil_in_5a(), [erased(pupil(), date(2026, 3, 1))]);
    given(events.clone())
        .when(Command::RecordSnils(SnilsRecorded {
            learner_id: pupil(),
            snils: snils(100_200_300),
        }))
        .then_error("personal_data_erased");
    given(events)
        .when(Command::LinkGuardian(guardian(
            pupil(),
            snils(200_300_400),
            name("Иванова", "Мария", Some("Петровна")),
            date(2026, 3, 2),
        )))
        .then_error("personal_data_erased");
}

#[test]
fn marks_are_still_recorded_after_erasure() {
    given(plus(pupil_in_5a(), [erased(pupil(), date(2026, 3, 1))]))
        .when(record_mark(
            1,
            pupil(),
            class_5a().class_id,
            date(2026, 3, 10),
        ))
        .then_accepted();
}
