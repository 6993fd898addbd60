//! The policy's reach over a small region folded from events: a teacher's assignment bounds what
//! they write, and a school that no longer holds a learner sees only its own time with them.

use contingent_access::{
    authorize_command, authorize_read, learner_scope, LearnerScope, Principal, Read, Role,
};
use contingent_domain::{Command, Event, LearnerId, MarkRecorded, OrganizationId, State};
use serde_json::{json, Value};

const SCHOOL_A: &str = "00000000-0000-7000-8000-00000000000a";
const SCHOOL_B: &str = "00000000-0000-7000-8000-00000000000b";
const CLASS_A: &str = "00000000-0000-7000-8000-0000000000a1";
const CLUB_B: &str = "00000000-0000-7000-8000-0000000000b1";
const PUPIL: &str = "00000000-0000-7000-8000-000000000001";

fn event(ty: &str, data: Value) -> Event {
    serde_json::from_value(json!({ "type": ty, "data": data })).expect("an event")
}

fn order(date: &str) -> Value {
    json!({ "number": "1", "date": date })
}

fn enrolled(enrollment: &str, org: &str, class: &str, level: &str, on: &str) -> Event {
    event(
        "enrolled",
        json!({ "enrollment_id": enrollment, "learner_id": PUPIL, "organization_id": org,
            "class_id": class, "level": level, "grade": if level == "general" { 11 } else { 0 },
            "academic_year": "2025/2026", "programme": { "name": "ООП", "adapted": false },
            "primary": true, "form": "full_time", "enrolled_on": on, "order": order(on) }),
    )
}

fn mark(id: &str, class: &str, subject: &str, on: &str, teacher: &str) -> Value {
    json!({ "mark_id": id, "learner_id": PUPIL, "class_id": class, "subject": subject,
        "lesson_date": on, "kind": "current", "work": "тест", "value": "5", "weight": 1,
        "teacher": teacher })
}

/// School A holds the pupil in 11А, where teacher-7 teaches mathematics from 1 October; school B
/// held them in its chess club from 10 to 11 September; school A recorded marks on 10 September
/// and 20 September.
fn region() -> (State, Vec<Event>) {
    let mut events = Vec::new();
    for (org, levels) in [
        (SCHOOL_A, json!(["general"])),
        (SCHOOL_B, json!(["additional"])),
    ] {
        events.push(event(
            "organization_registered",
            json!({ "organization_id": org, "name": format!("Школа {org}"),
                "municipality": "Барнаул", "kind": "school", "levels": levels }),
        ));
    }
    events.push(event(
        "class_opened",
        json!({ "class_id": CLASS_A, "organization_id": SCHOOL_A, "academic_year": "2025/2026",
            "level": "general", "grade": 11, "name": "11А", "capacity": 25 }),
    ));
    events.push(event(
        "class_opened",
        json!({ "class_id": CLUB_B, "organization_id": SCHOOL_B, "academic_year": "2025/2026",
            "level": "additional", "grade": 0, "name": "Шахматы", "capacity": 15 }),
    ));
    events.push(event(
        "teacher_assigned",
        json!({ "class_id": CLASS_A, "organization_id": SCHOOL_A, "teacher": "teacher-7",
            "teacher_name": "Петрова Н. С.", "subjects": ["Математика"], "from": "2025-10-01" }),
    ));
    events.push(event(
        "birth_registered",
        json!({ "learner_id": PUPIL, "record": { "number": "1", "date": "2009-02-08",
            "office": "ЗАГС" }, "child": { "surname": "Ершов", "name": "Иван" }, "sex": "male",
            "birth_date": "2009-02-01" }),
    ));
    events.push(enrolled(
        "00000000-0000-7000-8000-0000000000e1",
        SCHOOL_A,
        CLASS_A,
        "general",
        "2025-09-01",
    ));
    events.push(enrolled(
        "00000000-0000-7000-8000-0000000000e2",
        SCHOOL_B,
        CLUB_B,
        "additional",
        "2025-09-10",
    ));
    events.push(event(
        "left",
        json!({ "learner_id": PUPIL, "enrollment_id": "00000000-0000-7000-8000-0000000000e2",
            "organization_id": SCHOOL_B, "class_id": CLUB_B, "left_on": "2025-09-11",
            "reason": "other", "order": order("2025-09-11") }),
    ));
    for (id, on) in [
        ("0000000000f1", "2025-09-10"),
        ("0000000000f2", "2025-09-20"),
    ] {
        events.push(event(
            "mark_recorded",
            mark(
                &format!("00000000-0000-7000-8000-{id}"),
                CLASS_A,
                "Математика",
                on,
                "Петрова Н. С.",
            ),
        ));
    }
    let state = events.iter().fold(State::new(), contingent_domain::evolve);
    (state, events)
}

fn principal(role: Role, subject: &str, org: Option<&str>) -> Principal {
    Principal {
        subject: subject.into(),
        role,
        snils: None,
        organization: org.map(|o| o.parse::<OrganizationId>().expect("an id")),
        municipality: None,
    }
}

fn record_mark(subject: &str, on: &str, teacher: &str) -> Command {
    let body = mark(
        "00000000-0000-7000-8000-0000000000f9",
        CLASS_A,
        subject,
        on,
        teacher,
    );
    Command::RecordMark(serde_json::from_value::<MarkRecorded>(body).expect("a mark"))
}

#[test]
fn a_teacher_writes_within_the_subjects_and_dates_of_their_assignment_as_themselves() {
    let (state, _) = region();
    let teacher = principal(Role::Teacher, "teacher-7", Some(SCHOOL_A));
    let allowed = |c: &Command| authorize_command(&state, &teacher, c).is_ok();
    assert!(allowed(&record_mark(
        "Математика",
        "2025-10-05",
        "teacher-7"
    )));
    assert!(allowed(&record_mark(
        "математика",
        "2025-10-01",
        "teacher-7"
    )));
    assert!(!allowed(&record_mark("Физика", "2025-10-05", "teacher-7")));
    assert!(!allowed(&record_mark(
        "Математика",
        "2025-09-30",
        "teacher-7"
    )));
    assert!(!allowed(&record_mark(
        "Математика",
        "2025-10-05",
        "teacher-8"
    )));
    // Another school's teacher with the same account name reaches nothing here.
    let stranger = principal(Role::Teacher, "teacher-7", Some(SCHOOL_B));
    assert!(authorize_command(
        &state,
        &stranger,
        &record_mark("Математика", "2025-10-05", "teacher-7")
    )
    .is_err());
    // The school's own account records marks in its classes under the name it reports.
    let school = principal(Role::Organization, "school-admin", Some(SCHOOL_A));
    assert!(authorize_command(
        &state,
        &school,
        &record_mark("Физика", "2025-09-15", "Иванов И. И.")
    )
    .is_ok());
}

#[test]
fn a_school_that_held_a_learner_sees_its_own_time_only() {
    let (state, events) = region();
    let learner: LearnerId = PUPIL.parse().expect("an id");
    let school_b = principal(Role::Organization, "school-b", Some(SCHOOL_B));
    let read = |r: Read| authorize_read(&state, &school_b, &r).is_ok();
    assert!(!read(Read::LearnerCard(learner)));
    assert!(!read(Read::Diary(learner)));
    assert!(read(Read::History(learner)));
    assert!(read(Read::LearnerState(learner)));
    let scope = learner_scope(&state, &school_b, learner);
    let shown: Vec<&str> = events
        .iter()
        .filter(|e| e.learner_id().is_some() && scope.admits(e))
        .map(Event::type_name)
        .collect();
    // School A's mark of 10 September falls within school B's days, but is not school B's.
    assert_eq!(shown, ["birth_registered", "enrolled", "left"]);

    let school_a = principal(Role::Organization, "school-a", Some(SCHOOL_A));
    assert_eq!(
        learner_scope(&state, &school_a, learner),
        LearnerScope::Whole
    );
    assert!(authorize_read(&state, &school_a, &Read::LearnerCard(learner)).is_ok());

    // A school that never held the learner reads nothing.
    let school_c = principal(
        Role::Organization,
        "school-c",
        Some("00000000-0000-7000-8000-00000000000c"),
    );
    assert!(authorize_read(&state, &school_c, &Read::History(learner)).is_err());
}
