//! The write side's knowledge of the region: what [`decide`](crate::decide) needs to check every
//! rule, folded from the events by [`evolve`]. Pure data, no I/O.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use chrono::{Days, NaiveDate};

use crate::event::{CivilRecord, Event, FullName};
use crate::ids::{ApplicationId, ClassId, EnrollmentId, LearnerId, MarkId, OrganizationId};
use crate::snils::Snils;
use crate::undo::{Savepoint, Tracked, Undo};
use crate::values::{AcademicYear, Level, Mark, OrganizationKind, StayMode, Text};

/// An organization of the regional directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    /// The municipality it belongs to.
    pub municipality: Text,
    /// Kind.
    pub kind: OrganizationKind,
    /// Levels taught.
    pub levels: Vec<Level>,
}

/// A class or group and how many places are taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Academic year.
    pub academic_year: AcademicYear,
    /// Level taught.
    pub level: Level,
    /// Grade or age group.
    pub grade: u8,
    /// Places.
    pub capacity: u16,
    /// Places taken by active memberships.
    pub enrolled: u16,
    /// Kindergarten stay mode.
    pub stay_mode: Option<StayMode>,
    /// Accounts of the teachers assigned to it now.
    pub teachers: Vec<Text>,
    /// What each teacher of [`Class::teachers`] is assigned to teach, in the same order.
    pub assignments: Vec<Assignment>,
}

/// A teacher's assignment to a class: the subjects they teach in it, from its first day until
/// they are unassigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The teacher's account.
    pub teacher: Text,
    /// Subjects taught.
    pub subjects: Vec<Text>,
    /// First day.
    pub from: NaiveDate,
}

impl Assignment {
    /// Whether the assignment covers `subject` (letter case aside) on `date`.
    pub fn covers(&self, subject: &str, date: NaiveDate) -> bool {
        self.from <= date && self.teaches(subject)
    }

    /// Whether `subject` (letter case aside) is one of the assignment's.
    pub fn teaches(&self, subject: &str) -> bool {
        let subject = subject.to_lowercase();
        self.subjects
            .iter()
            .any(|s| s.as_str().to_lowercase() == subject)
    }
}

impl Class {
    /// The assignment of the teacher with this account, while they are assigned.
    pub fn assignment(&self, teacher: &str) -> Option<&Assignment> {
        self.assignments
            .iter()
            .find(|a| a.teacher.as_str() == teacher)
    }
}

/// One enrollment of a learner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    /// Its id.
    pub id: EnrollmentId,
    /// The organization.
    pub organization_id: OrganizationId,
    /// Level.
    pub level: Level,
    /// The primary enrollment of its level.
    pub primary: bool,
    /// The current class.
    pub class_id: ClassId,
    /// The current grade.
    pub grade: u8,
    /// Not yet ended.
    pub active: bool,
    /// Enrolled with an exemption from the grade-1 age rule: it stays with the enrollment
    /// when the learner moves.
    pub age_exemption: bool,
}

/// A stay in a class: from the first day, until the first day no longer in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The class.
    pub class_id: ClassId,
    /// First day in the class.
    pub from: NaiveDate,
    /// First day no longer in the class; none while the learner is in it.
    pub until: Option<NaiveDate>,
    /// The latest date of a mark or attendance recorded in the class during this stay or an
    /// earlier stay in the same class: a leaving or a transfer out may not be dated before it.
    pub last_fact: Option<NaiveDate>,
}

impl Membership {
    /// Whether the learner was in the class on `date`.
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.from <= date && self.until.is_none_or(|until| date < until)
    }
}

/// What the write side knows of a learner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learner {
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// SNILS, where recorded.
    pub snils: Option<Snils>,
    /// Date of death.
    pub died_on: Option<NaiveDate>,
    /// Date the learner left their last organization; cleared by a new enrollment.
    pub left_on: Option<NaiveDate>,
    /// Enrollments, active and ended.
    pub enrollments: Box<[Enrollment]>,
    /// Stays in classes.
    pub memberships: Box<[Membership]>,
    /// SNILS of linked guardians.
    pub guardians: Box<[Snils]>,
    /// The position of the last event about the learner.
    pub changed_at: u64,
}

impl Learner {
    fn new(birth_date: NaiveDate, snils: Option<Snils>) -> Self {
        Self {
            birth_date,
            snils,
            died_on: None,
            left_on: None,
            enrollments: Box::default(),
            memberships: Box::default(),
            guardians: Box::default(),
            changed_at: 0,
        }
    }

    /// The enrollment with this id.
    pub fn enrollment(&self, id: EnrollmentId) -> Option<&Enrollment> {
        self.enrollments.iter().find(|e| e.id == id)
    }

    /// Active enrollments.
    pub fn active_enrollments(&self) -> impl Iterator<Item = &Enrollment> {
        self.enrollments.iter().filter(|e| e.active)
    }

    /// The stay in `class` that covers `date`.
    pub fn membership_on(&self, class: ClassId, date: NaiveDate) -> Option<&Membership> {
        self.memberships
            .iter()
            .find(|m| m.class_id == class && m.covers(date))
    }

    /// The latest date of a mark or attendance recorded for the learner in `class`.
    pub fn last_fact(&self, class: ClassId) -> Option<NaiveDate> {
        self.memberships
            .iter()
            .filter(|m| m.class_id == class)
            .filter_map(|m| m.last_fact)
            .max()
    }

    fn record_fact(&mut self, class: ClassId, date: NaiveDate) {
        if let Some(m) = self
            .memberships
            .iter_mut()
            .rev()
            .find(|m| m.class_id == class)
        {
            m.last_fact = Some(m.last_fact.map_or(date, |last| last.max(date)));
        }
    }

    fn add_enrollment(&mut self, enrollment: Enrollment) {
        push(&mut self.enrollments, enrollment);
    }

    fn add_membership(&mut self, class_id: ClassId, from: NaiveDate) {
        push(
            &mut self.memberships,
            Membership {
                class_id,
                from,
                until: None,
                last_fact: None,
            },
        );
    }

    fn end_membership(&mut self, class: ClassId, until: NaiveDate) {
        if let Some(m) = self
            .memberships
            .iter_mut()
            .rev()
            .find(|m| m.class_id == class && m.until.is_none())
        {
            m.until = Some(until.max(m.from));
        }
    }
}

/// Appends to a list the state holds as a boxed slice: a learner's lists are short and change
/// seldom, and a boxed slice spends neither a capacity word nor spare room on them.
fn push<T>(list: &mut Box<[T]>, item: T) {
    let mut grown = Vec::with_capacity(list.len() + 1);
    grown.extend(std::mem::take(list));
    grown.push(item);
    *list = grown.into_boxed_slice();
}

/// State of an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplicationStatus {
    /// Waiting for a decision.
    Pending,
    /// Withdrawn by the applicant.
    Withdrawn,
    /// Rejected by the organization.
    Rejected,
    /// Satisfied by an enrollment.
    Accepted,
}

/// An application for a place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    /// The learner.
    pub learner_id: LearnerId,
    /// The organization.
    pub organization_id: OrganizationId,
    /// Level.
    pub level: Level,
    /// Academic year.
    pub academic_year: AcademicYear,
    /// Date submitted.
    pub submitted_on: NaiveDate,
    /// Status.
    pub status: ApplicationStatus,
}

/// Who a SNILS belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnilsOwner {
    /// A learner.
    Learner(LearnerId),
    /// A guardian, known by a fingerprint of their name.
    Guardian(u64),
}

/// A mark, as far as corrections need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkRef {
    /// The learner.
    pub learner_id: LearnerId,
    /// The class.
    pub class_id: ClassId,
    /// The current value.
    pub value: Mark,
    /// The subject and lesson date it was recorded for; none while the state holds only a
    /// correction of a mark it did not hold (its owner recalls them before deciding).
    pub origin: Option<MarkOrigin>,
    /// The position of the event that recorded or last corrected it (the count of events
    /// applied to the state up to and including that one).
    pub at: u64,
}

/// What a mark was recorded for: a correction keeps them, and a teacher corrects only a mark of
/// a subject and date their assignment covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkOrigin {
    /// The subject.
    pub subject: Text,
    /// The lesson date.
    pub lesson_date: NaiveDate,
}

/// The write side's state of the whole region.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub(crate) organizations: Tracked<OrganizationId, Organization>,
    pub(crate) classes: Tracked<ClassId, Class>,
    pub(crate) learners: Tracked<LearnerId, Learner>,
    pub(crate) applications: Tracked<ApplicationId, Application>,
    /// Whose SNILS each is ([`State::snils_owner`]): a learner's, or else a guardian's, known by
    /// a fingerprint of their name. Two maps rather than one of [`SnilsOwner`], whose entries
    /// would take the room of the larger kind.
    pub(crate) learner_snils: Tracked<Snils, LearnerId>,
    pub(crate) guardian_snils: Tracked<Snils, u64>,
    /// Civil registry records by [`record_key`]: the learner and a fingerprint of the facts.
    pub(crate) birth_records: Tracked<RecordKey, (LearnerId, u64)>,
    pub(crate) death_records: Tracked<RecordKey, (LearnerId, u64)>,
    /// The marks the state holds: every mark, unless the owner of the state settles them
    /// elsewhere ([`State::settle_marks`]) and brings back the ones a command names
    /// ([`State::recall_mark`]) before deciding it.
    pub(crate) marks: Tracked<MarkId, MarkRef>,
    /// How many events were applied: the position of the last one, for a state folded from a
    /// log from its start.
    pub(crate) applied: u64,
    /// Every enrollment id ever opened: enrollment ids are unique in the region.
    pub(crate) enrollment_ids: Tracked<EnrollmentId, ()>,
    /// The learners whose personal data was erased.
    pub(crate) erased: Tracked<LearnerId, ()>,
    /// One copy of each subject, teacher's account and municipality the state holds.
    texts: Texts,
}

/// The texts the state holds, each once: thousands of classes name the same few dozen subjects
/// and each teacher's account in more than one place, and the marks held name their subjects.
/// Only ever grows, by the distinct texts seen; not part of what the state says (equal states
/// may have seen different texts), so it is neither compared nor taken back.
#[derive(Clone, Debug, Default)]
struct Texts(std::collections::HashSet<Text>);

impl Texts {
    /// The held copy of `text`, held from now on if it was not.
    fn share(&mut self, text: &Text) -> Text {
        if let Some(held) = self.0.get(text.as_str()) {
            return held.clone();
        }
        self.0.insert(text.clone());
        text.clone()
    }
}

impl PartialEq for Texts {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A civil registry record (office and number, case aside) as a 128-bit fingerprint: the state
/// keeps one per birth and death, so a fixed 16 bytes rather than the text (two halves rather
/// than a `u128`, whose 16-byte alignment would pad every entry of the maps).
pub(crate) type RecordKey = [u64; 2];

/// The [`RecordKey`] of a civil registry record.
pub(crate) fn record_key(office: &str, number: &str) -> RecordKey {
    let (office, number) = (office.to_lowercase(), number.to_lowercase());
    [
        fingerprint(&(0u8, &office, &number)),
        fingerprint(&(1u8, &office, &number)),
    ]
}

pub(crate) fn fingerprint<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

pub(crate) fn name_fingerprint(name: &FullName) -> u64 {
    let lower = |t: &str| t.to_lowercase();
    fingerprint(&(
        lower(name.surname.as_str()),
        lower(name.name.as_str()),
        name.patronymic.as_ref().map(|p| lower(p.as_str())),
    ))
}

fn civil_key(record: &CivilRecord) -> RecordKey {
    record_key(record.office.as_str(), record.number.as_str())
}

fn day_after(date: NaiveDate) -> NaiveDate {
    date.checked_add_days(Days::new(1)).unwrap_or(date)
}

impl State {
    /// An empty region.
    pub fn new() -> Self {
        Self::default()
    }

    /// A learner.
    pub fn learner(&self, id: LearnerId) -> Option<&Learner> {
        self.learners.get(&id)
    }

    /// A class.
    pub fn class(&self, id: ClassId) -> Option<&Class> {
        self.classes.get(&id)
    }

    /// An organization.
    pub fn organization(&self, id: OrganizationId) -> Option<&Organization> {
        self.organizations.get(&id)
    }

    /// An application.
    pub fn application(&self, id: ApplicationId) -> Option<&Application> {
        self.applications.get(&id)
    }

    /// Whether an application of the learner to the organization waits for its decision. A scan
    /// of the applications: for the uncommon reads of a learner by an organization that does not
    /// hold them.
    pub fn has_pending_application(&self, learner: LearnerId, org: OrganizationId) -> bool {
        self.applications.values().any(|a| {
            a.learner_id == learner
                && a.organization_id == org
                && a.status == ApplicationStatus::Pending
        })
    }

    /// A mark.
    pub fn mark(&self, id: MarkId) -> Option<&MarkRef> {
        self.marks.get(&id)
    }

    /// The learner a civil registry birth record was recorded for.
    pub fn learner_by_birth_record(&self, record: &CivilRecord) -> Option<LearnerId> {
        self.birth_records
            .get(&civil_key(record))
            .map(|(id, _)| *id)
    }

    /// The learner a civil registry death record was recorded for.
    pub fn learner_by_death_record(&self, record: &CivilRecord) -> Option<LearnerId> {
        self.death_records
            .get(&civil_key(record))
            .map(|(id, _)| *id)
    }

    /// Who a SNILS belongs to.
    pub fn snils_owner(&self, snils: Snils) -> Option<SnilsOwner> {
        match self.learner_snils.get(&snils) {
            Some(learner) => Some(SnilsOwner::Learner(*learner)),
            None => self
                .guardian_snils
                .get(&snils)
                .map(|p| SnilsOwner::Guardian(*p)),
        }
    }

    /// How many events were applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Takes out the marks last changed at or before `through`, to be kept outside the state.
    pub fn settle_marks(&mut self, through: u64) -> Vec<(MarkId, MarkRef)> {
        let settled: Vec<MarkId> = self
            .marks
            .iter()
            .filter(|(_, m)| m.at <= through)
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::with_capacity(settled.len());
        for id in settled {
            if let Some(m) = self.marks.untracked().remove(&id) {
                out.push((id, m));
            }
        }
        if self.marks.capacity() > 4 * self.marks.len().max(1024) {
            self.marks.untracked().shrink_to_fit();
        }
        out
    }

    /// Brings back a mark kept outside the state; a mark the state holds is newer and stays.
    pub fn recall_mark(&mut self, id: MarkId, mark: MarkRef) {
        match self.marks.untracked().entry(id) {
            std::collections::hash_map::Entry::Occupied(mut held) => {
                // A correction held without its origin: the book's record supplies it.
                let held = held.get_mut();
                if held.origin.is_none() {
                    held.origin = mark.origin;
                }
            }
            std::collections::hash_map::Entry::Vacant(free) => {
                free.insert(mark);
            }
        }
    }

    /// Every map, for savepoints.
    fn maps(&mut self) -> [&mut dyn Undo; 11] {
        [
            &mut self.organizations,
            &mut self.classes,
            &mut self.learners,
            &mut self.applications,
            &mut self.learner_snils,
            &mut self.guardian_snils,
            &mut self.birth_records,
            &mut self.death_records,
            &mut self.marks,
            &mut self.enrollment_ids,
            &mut self.erased,
        ]
    }

    /// Opens a savepoint: from here on, what each applied event replaces is recorded, so that
    /// [`State::rollback`] can take the events back. The record grows with the events applied
    /// until [`State::release`] or [`State::release_all`] forgets it.
    pub fn savepoint(&mut self) -> Savepoint {
        let marks = self
            .maps()
            .into_iter()
            .map(|map| {
                map.track(true);
                map.mark()
            })
            .collect();
        Savepoint {
            marks,
            applied: self.applied,
        }
    }

    /// Takes back every event applied since `to` was opened (and since any savepoint opened
    /// after it), newest first: the state is again what it was at `to`. Costs as much as the
    /// events taken back. Recording goes on; `to` may be used again.
    pub fn rollback(&mut self, to: &Savepoint) {
        for (map, mark) in self.maps().into_iter().zip(&to.marks) {
            map.rollback_to(*mark);
        }
        self.applied = to.applied;
    }

    /// Keeps for good what was applied before `upto` was opened: it can no longer be taken
    /// back, and its record is freed. Savepoints opened at or after `upto` stay usable.
    pub fn release(&mut self, upto: &Savepoint) {
        for (map, mark) in self.maps().into_iter().zip(&upto.marks) {
            map.release_to(*mark);
        }
    }

    /// Keeps everything applied for good and stops recording; every savepoint is spent.
    pub fn release_all(&mut self) {
        for map in self.maps() {
            map.track(false);
        }
    }

    /// Counts: organizations, classes, learners, applications, marks held.
    pub fn counts(&self) -> [usize; 5] {
        [
            self.organizations.len(),
            self.classes.len(),
            self.learners.len(),
            self.applications.len(),
            self.marks.len(),
        ]
    }

    /// Iterates over every class.
    pub fn classes(&self) -> impl Iterator<Item = (&ClassId, &Class)> {
        self.classes.iter()
    }

    /// Iterates over every learner.
    pub fn learners(&self) -> impl Iterator<Item = (&LearnerId, &Learner)> {
        self.learners.iter()
    }

    /// Records a SNILS as the learner's: a learner's SNILS is no longer known as a guardian's.
    fn own_snils(&mut self, snils: Snils, learner: LearnerId) {
        self.learner_snils.insert(snils, learner);
        self.guardian_snils.remove(&snils);
    }

    fn take_place(&mut self, class: ClassId) {
        if let Some(c) = self.classes.get_mut(&class) {
            c.enrolled = c.enrolled.saturating_add(1);
        }
    }

    fn record_fact(&mut self, learner: LearnerId, class: ClassId, date: NaiveDate) {
        if let Some(l) = self.learners.get_mut(&learner) {
            l.record_fact(class, date);
        }
    }

    /// Holds a mark as changed by the event being applied.
    fn hold_mark(
        &mut self,
        id: MarkId,
        learner_id: LearnerId,
        class_id: ClassId,
        value: Mark,
        origin: Option<MarkOrigin>,
    ) {
        let at = self.applied;
        let origin = origin.or_else(|| self.marks.get(&id).and_then(|m| m.origin.clone()));
        self.marks.insert(
            id,
            MarkRef {
                learner_id,
                class_id,
                value,
                origin,
                at,
            },
        );
    }

    fn free_place(&mut self, class: ClassId) {
        if let Some(c) = self.classes.get_mut(&class) {
            c.enrolled = c.enrolled.saturating_sub(1);
        }
    }

    /// Applies one event. Total: an event that names something unknown changes nothing.
    pub fn apply(&mut self, event: &Event) {
        self.applied += 1;
        self.apply_fact(event);
        if let Some(id) = event.learner_id() {
            if let Some(l) = self.learners.get_mut(&id) {
                l.changed_at = self.applied;
            }
        }
    }

    fn apply_fact(&mut self, event: &Event) {
        match event {
            Event::OrganizationRegistered(e) => {
                self.organizations.insert(
                    e.organization_id,
                    Organization {
                        municipality: self.texts.share(&e.municipality),
                        kind: e.kind,
                        levels: e.levels.clone(),
                    },
                );
            }
            Event::ClassOpened(e) => {
                self.classes.insert(
                    e.class_id,
                    Class {
                        organization_id: e.organization_id,
                        academic_year: e.academic_year,
                        level: e.level,
                        grade: e.grade,
                        capacity: e.capacity,
                        enrolled: 0,
                        stay_mode: e.stay_mode,
                        teachers: Vec::new(),
                        assignments: Vec::new(),
                    },
                );
            }
            Event::TeacherAssigned(e) => {
                let teacher = self.texts.share(&e.teacher);
                let subjects: Vec<Text> = e.subjects.iter().map(|s| self.texts.share(s)).collect();
                if let Some(c) = self.classes.get_mut(&e.class_id) {
                    if !c.teachers.contains(&teacher) {
                        c.teachers.push(teacher.clone());
                        c.assignments.push(Assignment {
                            teacher,
                            subjects,
                            from: e.from,
                        });
                    }
                }
            }
            Event::TeacherUnassigned(e) => {
                if let Some(c) = self.classes.get_mut(&e.class_id) {
                    c.teachers.retain(|t| t != &e.teacher);
                    c.assignments.retain(|a| a.teacher != e.teacher);
                }
            }
            Event::ClassCapacityChanged(e) => {
                if let Some(c) = self.classes.get_mut(&e.class_id) {
                    c.capacity = e.capacity;
                }
            }
            Event::BirthRegistered(e) => {
                self.learners
                    .insert(e.learner_id, Learner::new(e.birth_date, e.snils));
                self.birth_records.insert(
                    civil_key(&e.record),
                    (e.learner_id, crate::decide::birth_fingerprint(e)),
                );
                if let Some(snils) = e.snils {
                    self.own_snils(snils, e.learner_id);
                }
            }
            Event::LearnerRegistered(e) => {
                self.learners
                    .insert(e.learner_id, Learner::new(e.birth_date, e.snils));
                if let Some(snils) = e.snils {
                    self.own_snils(snils, e.learner_id);
                }
            }
            Event::SnilsRecorded(e) => {
                if let Some(l) = self.learners.get_mut(&e.learner_id) {
                    l.snils = Some(e.snils);
                }
                self.own_snils(e.snils, e.learner_id);
            }
            Event::DeathRegistered(e) => {
                self.death_records.insert(
                    civil_key(&e.record),
                    (e.learner_id, fingerprint(&(e.learner_id, e.death_date))),
                );
                let mut freed = Vec::new();
                if let Some(l) = self.learners.get_mut(&e.learner_id) {
                    l.died_on = Some(e.death_date);
                    let until = day_after(e.death_date);
                    for enrollment in l.enrollments.iter_mut().filter(|en| en.active) {
                        enrollment.active = false;
                        freed.push(enrollment.class_id);
                    }
                    for class in &freed {
                        l.end_membership(*class, until);
                    }
                }
                for class in freed {
                    self.free_place(class);
                }
            }
            Event::GuardianLinked(e) => {
                if let Some(l) = self.learners.get_mut(&e.learner_id) {
                    push(&mut l.guardians, e.guardian_snils);
                }
                if !self.learner_snils.contains_key(&e.guardian_snils) {
                    self.guardian_snils
                        .insert_if_absent(e.guardian_snils, name_fingerprint(&e.guardian));
                }
            }
            Event::ApplicationSubmitted(e) => {
                self.applications.insert(
                    e.application_id,
                    Application {
                        learner_id: e.learner_id,
                        organization_id: e.organization_id,
                        level: e.level,
                        academic_year: e.academic_year,
                        submitted_on: e.submitted_on,
                        status: ApplicationStatus::Pending,
                    },
                );
            }
            Event::ApplicationWithdrawn(e) => {
                if let Some(a) = self.applications.get_mut(&e.application_id) {
                    a.status = ApplicationStatus::Withdrawn;
                }
            }
            Event::ApplicationRejected(e) => {
                if let Some(a) = self.applications.get_mut(&e.application_id) {
                    a.status = ApplicationStatus::Rejected;
                }
            }
            Event::Enrolled(e) => {
                if let Some(l) = self.learners.get_mut(&e.learner_id) {
                    l.left_on = None;
                    l.add_enrollment(Enrollment {
                        id: e.enrollment_id,
                        organization_id: e.organization_id,
                        level: e.level,
                        primary: e.primary,
                        class_id: e.class_id,
                        grade: e.grade,
                        active: true,
                        age_exemption: e.age_exemption.is_some(),
                    });
                    l.add_membership(e.class_id, e.enrolled_on);
                }
                self.enrollment_ids.insert(e.enrollment_id, ());
                self.take_place(e.class_id);
                if let Some(app) = e
                    .application_id
                    .and_then(|id| self.applications.get_mut(&id))
                {
                    app.status = ApplicationStatus::Accepted;
                }
            }
            Event::Transferred(e) => {
                if let Some(l) = self.learners.get_mut(&e.learner_id) {
                    l.end_membership(e.from_class_id, e.transferred_on);
                    l.add_membership(e.to_class_id, e.transferred_on);
                    let previous = l
                        .enrollments
                        .iter_mut()
                        .find(|en| en.id == e.from_enrollment_id);
                    if e.to_enrollment_id == e.from_enrollment_id {
                        if let Some(en) = previous {
                            en.class_id = e.to_class_id;
                            en.grade = e.grade;
                        }
                    } else {
                        let (level, primary, age_exemption) = match previous {
                            Some(en) => {
                                en.active = false;
                                (en.level, en.primary, en.age_exemption)
                            }
                            None => (Level::General, true, false),
                        };
                        l.add_enrollment(Enrollment {
                            id: e.to_enrollment_id,
                            organization_id: e.to_organization_id,
                            level,
                            primary,
                            class_id: e.to_class_id,
                            grade: e.grade,
                            active: true,
                            age_exemption,
                        });
                    }
                }
                self.enrollment_ids.insert(e.to_enrollment_id, ());
                self.free_place(e.from_class_id);
                self.take_place(e.to_class_id);
            }
            Event::MarkRecorded(e) => {
                self.record_fact(e.learner_id, e.class_id, e.lesson_date);
                let origin = MarkOrigin {
                    subject: self.texts.share(&e.subject),
                    lesson_date: e.lesson_date,
                };
                self.hold_mark(e.mark_id, e.learner_id, e.class_id, e.value, Some(origin));
            }
            Event::MarkCorrected(e) => {
                // The correction names the mark's learner and class: the state knows the mark
                // afterwards whether or not it held it before (its origin only if it did).
                self.hold_mark(e.mark_id, e.learner_id, e.class_id, e.value, None);
            }
            Event::AttendanceRecorded(e) => self.record_fact(e.learner_id, e.class_id, e.date),
            Event::ExamResultRecorded(_) => {}
            Event::Left(e) => {
                let mut freed = None;
                if let Some(l) = self.learners.get_mut(&e.learner_id) {
                    if let Some(en) = l
                        .enrollments
                        .iter_mut()
                        .find(|en| en.id == e.enrollment_id && en.active)
                    {
                        en.active = false;
                        freed = Some(en.class_id);
                    }
                    if let Some(class) = freed {
                        l.end_membership(class, day_after(e.left_on));
                    }
                    if l.active_enrollments().next().is_none() {
                        l.left_on = Some(e.left_on);
                    }
                }
                if let Some(class) = freed {
                    self.free_place(class);
                }
            }
            Event::PersonalDataErased(e) => self.erase(e.learner_id),
            // Where the log came from: no fact of the region.
            Event::LogMigrated(_) => {}
        }
    }

    /// Forgets a learner's personal data: their SNILS, their guardians (a guardian's SNILS is
    /// kept while another learner is linked to them) and their civil registry records. Their
    /// education facts stay.
    fn erase(&mut self, learner: LearnerId) {
        self.erased.insert(learner, ());
        let Some(l) = self.learners.get_mut(&learner) else {
            return;
        };
        l.snils = None;
        let guardians = std::mem::take(&mut l.guardians);
        self.learner_snils.retain(|_, owner| *owner != learner);
        for snils in guardians {
            let still_linked = self.learners.values().any(|l| l.guardians.contains(&snils));
            if !still_linked {
                self.guardian_snils.remove(&snils);
            }
        }
        self.birth_records.retain(|_, (owner, _)| *owner != learner);
        self.death_records.retain(|_, (owner, _)| *owner != learner);
    }

    /// Whether the learner's personal data was erased.
    pub fn is_erased(&self, learner: LearnerId) -> bool {
        self.erased.contains_key(&learner)
    }
}

/// Bytes a hash table of `capacity` entries of `entry` bytes takes: its buckets (capacity /
/// 0.875, a power of two) of one entry and one control byte each.
fn buckets_bytes(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    (capacity * 8 / 7).next_power_of_two() * (entry + 1)
}

fn table_bytes<K, V>(map: &HashMap<K, V>) -> usize {
    buckets_bytes(map.capacity(), std::mem::size_of::<(K, V)>())
}

/// One map's part of [`State::heap_breakdown`]: its entries, its table and `held`, what its
/// entries hold on the heap.
fn part<K, V>(
    name: &'static str,
    map: &HashMap<K, V>,
    held: usize,
) -> (&'static str, usize, usize) {
    (name, map.len(), table_bytes(map) + held)
}

fn vec_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

fn slice_bytes<T>(v: &[T]) -> usize {
    std::mem::size_of_val(v)
}

fn set_bytes<K>(set: &std::collections::HashSet<K>) -> usize {
    buckets_bytes(set.capacity(), std::mem::size_of::<K>())
}

impl State {
    /// The heap bytes the state holds, counted from its containers' capacities (the allocator's
    /// own overhead per allocation aside): what the writer keeps in memory for it.
    pub fn heap_bytes(&self) -> usize {
        self.heap_breakdown()
            .iter()
            .map(|(_, _, bytes)| bytes)
            .sum()
    }

    /// [`State::heap_bytes`] by part: each map's name, its entries and the bytes of its table
    /// and of what its entries hold on the heap.
    pub fn heap_breakdown(&self) -> Vec<(&'static str, usize, usize)> {
        let learners: usize = self
            .learners
            .values()
            .map(|l| {
                slice_bytes(&l.enrollments)
                    + slice_bytes(&l.memberships)
                    + slice_bytes(&l.guardians)
            })
            .sum();
        let organizations: usize = self
            .organizations
            .values()
            .map(|o| vec_bytes(&o.levels))
            .sum();
        let classes: usize = self
            .classes
            .values()
            .map(|c| {
                vec_bytes(&c.teachers)
                    + vec_bytes(&c.assignments)
                    + c.assignments
                        .iter()
                        .map(|a| vec_bytes(&a.subjects))
                        .sum::<usize>()
            })
            .sum();
        // The texts are held once, in `texts`: a reference counter and the characters each.
        let texts: usize = self
            .texts
            .0
            .iter()
            .map(|t| 2 * std::mem::size_of::<usize>() + t.as_str().len())
            .sum();
        vec![
            part("organizations", &self.organizations, organizations),
            part("classes", &self.classes, classes),
            part("learners", &self.learners, learners),
            part("applications", &self.applications, 0),
            part("learner_snils", &self.learner_snils, 0),
            part("guardian_snils", &self.guardian_snils, 0),
            part("birth_records", &self.birth_records, 0),
            part("death_records", &self.death_records, 0),
            part("marks", &self.marks, 0),
            part("enrollment_ids", &self.enrollment_ids, 0),
            part("erased", &self.erased, 0),
            (
                "texts",
                self.texts.0.len(),
                set_bytes(&self.texts.0) + texts,
            ),
        ]
    }
}

/// The decider's evolve: the state after one more event.
pub fn evolve(mut state: State, event: &Event) -> State {
    state.apply(event);
    state
}
