//! Who may do and see what. Pure functions over the writer's [`State`]: the same facts that
//! decide commands decide access, so a school's reach follows its enrollments the moment they
//! are recorded.

use chrono::NaiveDate;
use contingent_domain::{
    Assignment, ClassId, Command, Event, LearnerId, Level, OrganizationId, PersonRef, SnilsOwner,
    State, Text,
};

use crate::principal::{Principal, Role};

/// A request outside the caller's reach: answered with 403, appending nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

fn deny(text: impl Into<String>) -> Result<(), Denied> {
    Err(Denied(text.into()))
}

/// What a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A learner's register entry.
    LearnerCard(LearnerId),
    /// A learner's diary.
    Diary(LearnerId),
    /// A learner's events.
    History(LearnerId),
    /// A learner's state as of a date.
    LearnerState(LearnerId),
    /// Who has looked at a learner.
    AccessLog(LearnerId),
    /// Everything held about a learner, for the learner or their parent (152-FZ art. 14).
    Export(LearnerId),
    /// A search of learners, optionally within one organization.
    SearchLearners {
        /// The organization searched within.
        organization: Option<OrganizationId>,
    },
    /// A class register.
    ClassRegister(ClassId),
    /// An organization's queue.
    Queue(OrganizationId),
    /// Vacancies, filtered.
    Vacancies {
        /// One organization.
        organization: Option<OrganizationId>,
        /// One municipality.
        municipality: Option<String>,
    },
    /// The directory of organizations.
    Organizations,
    /// The federal register export.
    FederalRegister,
    /// Counts for statistics.
    FederalCounts,
    /// The event feed.
    Feed,
    /// The chain walk.
    Verify,
}

impl Read {
    /// The learner whose personal data the read returns, if one.
    pub fn learner(&self) -> Option<LearnerId> {
        match self {
            Read::LearnerCard(l)
            | Read::Diary(l)
            | Read::History(l)
            | Read::LearnerState(l)
            | Read::AccessLog(l)
            | Read::Export(l) => Some(*l),
            _ => None,
        }
    }
}

struct Reach<'a> {
    state: &'a State,
    p: &'a Principal,
}

impl Reach<'_> {
    fn own_org(&self, org: OrganizationId) -> bool {
        self.p.organization == Some(org)
    }

    fn in_municipality(&self, org: OrganizationId) -> bool {
        match (&self.p.municipality, self.state.organization(org)) {
            (Some(m), Some(o)) => o.municipality.as_str() == m,
            _ => false,
        }
    }

    /// The organization account's, or the municipal department's, reach over an organization.
    fn governs(&self, org: OrganizationId) -> bool {
        match self.p.role {
            Role::Region => true,
            Role::Organization => self.own_org(org),
            Role::Municipality => self.in_municipality(org),
            _ => false,
        }
    }

    fn class_org(&self, class: ClassId) -> Option<OrganizationId> {
        self.state.class(class).map(|c| c.organization_id)
    }

    /// Governs the class's organization. An unknown class is left to the rules to refuse
    /// only for the region, who would see it if it existed; anyone else is refused as for a
    /// class of another organization, so the answer does not say whether it exists.
    fn governs_class(&self, class: ClassId) -> bool {
        match self.class_org(class) {
            Some(org) => self.governs(org),
            None => self.p.role == Role::Region,
        }
    }

    /// The caller's assignment to a class of their organization, when they are a teacher
    /// assigned to it now.
    fn assignment(&self, class: ClassId) -> Option<&Assignment> {
        if self.p.role != Role::Teacher {
            return None;
        }
        self.state
            .class(class)
            .filter(|c| Some(c.organization_id) == self.p.organization)
            .and_then(|c| c.assignment(&self.p.subject))
    }

    fn teaches(&self, class: ClassId) -> bool {
        self.assignment(class).is_some()
    }

    /// A teacher writes as themselves: the author a command names is the caller's account.
    fn is_author(&self, teacher: &Text) -> bool {
        teacher.as_str() == self.p.subject
    }

    /// A teacher assigned to the class for the subject, on a date from their first day.
    fn teaches_on(&self, class: ClassId, subject: &str, date: NaiveDate) -> bool {
        self.assignment(class)
            .is_some_and(|a| a.covers(subject, date))
    }

    /// A teacher assigned to the class, on a date from their first day (attendance is of the
    /// class, whatever the subject).
    fn teaches_class_on(&self, class: ClassId, date: NaiveDate) -> bool {
        self.assignment(class).is_some_and(|a| a.from <= date)
    }

    fn guardian_of(&self, learner: LearnerId) -> bool {
        match (self.p.snils, self.state.learner(learner)) {
            (Some(snils), Some(l)) => self.p.role == Role::Parent && l.guardians.contains(&snils),
            _ => false,
        }
    }

    fn is_learner(&self, learner: LearnerId) -> bool {
        self.p.role == Role::Learner
            && self.p.snils.is_some()
            && self
                .state
                .learner(learner)
                .is_some_and(|l| l.snils == self.p.snils)
    }

    /// The caller's reach over a learner's whole record: the region always; a municipality over
    /// the learners who are or were enrolled in its organizations (governance of its schools,
    /// whose records it keeps); an organization over the learners it holds now — an active
    /// enrollment, or an application to it waiting for its decision.
    fn governs_learner(&self, learner: LearnerId) -> bool {
        match self.p.role {
            Role::Region => true,
            Role::Municipality => self.state.learner(learner).is_some_and(|l| {
                l.enrollments
                    .iter()
                    .any(|e| self.in_municipality(e.organization_id))
            }),
            Role::Organization => self.holds(learner),
            _ => false,
        }
    }

    /// An organization account's learner now: enrolled there, or applying there.
    fn holds(&self, learner: LearnerId) -> bool {
        let Some(org) = self
            .p
            .organization
            .filter(|_| self.p.role == Role::Organization)
        else {
            return false;
        };
        self.state.learner(learner).is_some_and(|l| {
            l.active_enrollments().any(|e| e.organization_id == org)
                || self.state.has_pending_application(learner, org)
        })
    }

    /// An organization account's former learner: the facts of the time it held them stay
    /// readable to it (see [`learner_scope`]).
    fn held(&self, learner: LearnerId) -> bool {
        self.p.role == Role::Organization
            && self.state.learner(learner).is_some_and(|l| {
                l.enrollments
                    .iter()
                    .any(|e| self.own_org(e.organization_id))
            })
    }

    /// The caller governs an organization that keeps the learner's file: an active primary
    /// enrollment in a main programme (preschool, general, vocational; not a club).
    fn governs_primary_learner(&self, learner: LearnerId) -> bool {
        if self.p.role == Role::Region {
            return true;
        }
        self.state.learner(learner).is_some_and(|l| {
            l.active_enrollments().any(|e| {
                e.primary && e.level != Level::Additional && self.governs(e.organization_id)
            })
        })
    }
}

/// Whether `p` may issue `command`.
pub fn authorize_command(state: &State, p: &Principal, command: &Command) -> Result<(), Denied> {
    let r = Reach { state, p };
    let role = p.role;
    let allowed = match command {
        Command::RegisterOrganization(_) => role == Role::Region,
        Command::OpenClass(c) => r.governs(c.organization_id),
        Command::ChangeClassCapacity(c) => r.governs_class(c.class_id),
        Command::AssignTeacher(c) => r.governs(c.organization_id),
        Command::UnassignTeacher(c) => r.governs_class(c.class_id),
        Command::RegisterBirth(_) | Command::RegisterDeath(_) => role == Role::CivilRegistry,
        Command::RegisterLearner(_) => {
            matches!(role, Role::Organization | Role::Municipality | Role::Region)
        }
        // A learner's SNILS opens their own account (the learner role reads by it), so it is
        // recorded by the organization of a primary enrollment in a main programme (the one that
        // keeps the learner's file), its municipality or the region: not by a club or a second
        // programme, which could otherwise record a SNILS it controls and read as the learner.
        Command::RecordSnils(c) => {
            matches!(role, Role::Organization | Role::Municipality | Role::Region)
                && r.governs_primary_learner(c.learner_id)
        }
        // A guardian link gives a parent's reach, so it comes from whoever knows the family: the
        // civil registry (the parents on the birth record) or the region (after checking the
        // documents). Never from a school or its founder, who could otherwise link a SNILS of
        // their own to any learner they enroll.
        Command::LinkGuardian(_) => matches!(role, Role::CivilRegistry | Role::Region),
        Command::SubmitApplication(c) => {
            r.guardian_of(c.learner_id) || r.governs(c.organization_id)
        }
        Command::WithdrawApplication(c) => match state.application(c.application_id) {
            Some(a) => r.guardian_of(a.learner_id) || r.governs(a.organization_id),
            None => role == Role::Region,
        },
        Command::RejectApplication(c) => match state.application(c.application_id) {
            Some(a) => r.governs(a.organization_id),
            None => role == Role::Region,
        },
        Command::Enroll(c) => r.governs_class(c.class_id) && role != Role::Teacher,
        Command::Transfer(c) => {
            let from = state
                .learner(c.learner_id)
                .and_then(|l| l.enrollment(c.enrollment_id))
                .map(|e| e.organization_id);
            let to = r.class_org(c.to_class_id);
            // The sending side moves its own learner; a receiving school takes a learner of
            // another only on an application to it waiting for its decision, so that it cannot
            // pull any learner of the region into its classes (and its reach).
            let receives = |o: OrganizationId| {
                r.governs(o)
                    && (role != Role::Organization
                        || state.has_pending_application(c.learner_id, o))
            };
            matches!(role, Role::Organization | Role::Municipality | Role::Region)
                && (from.is_some_and(|o| r.governs(o))
                    || to.is_some_and(receives)
                    || (from.is_none() && to.is_none() && role == Role::Region))
        }
        // A teacher writes within the subjects and dates of their assignment, as themselves; an
        // organization account writes in its own classes (a register kept on paper, a
        // substitute without an account) and the log names the account that did.
        Command::RecordMark(c) => {
            (r.is_author(&c.teacher) && r.teaches_on(c.class_id, c.subject.as_str(), c.lesson_date))
                || (role == Role::Organization && r.governs_class(c.class_id))
        }
        Command::RecordAttendance(c) => {
            r.teaches_class_on(c.class_id, c.date)
                || (role == Role::Organization && r.governs_class(c.class_id))
        }
        Command::CorrectMark(c) => match state.mark(c.mark_id) {
            // A teacher corrects only a mark of a subject and lesson date their assignment
            // covers, as themselves.
            Some(m) => {
                (r.is_author(&c.teacher)
                    && m.origin.as_ref().is_some_and(|o| {
                        r.teaches_on(m.class_id, o.subject.as_str(), o.lesson_date)
                    }))
                    || (role == Role::Organization && r.governs_class(m.class_id))
            }
            // No role reaches every mark: an unknown one is refused like another's.
            None => false,
        },
        Command::RecordExamResult(_) => role == Role::ExamCentre,
        Command::Leave(c) => {
            let org = state
                .learner(c.learner_id)
                .and_then(|l| l.enrollment(c.enrollment_id))
                .map(|e| e.organization_id);
            matches!(role, Role::Organization | Role::Municipality | Role::Region)
                && org.map_or(role == Role::Region, |o| r.governs(o))
        }
        // Erasure destroys data for good, on a legal ground the region answers for.
        Command::ErasePersonalData(_) => role == Role::Region,
    };
    if allowed {
        Ok(())
    } else {
        deny(format!(
            "a {role} account may not {} here",
            command.name().replace('_', " ")
        ))
    }
}

/// Whether `p` may read what `read` names. The answer never depends on whether a learner
/// exists for callers who could not see them anyway.
pub fn authorize_read(state: &State, p: &Principal, read: &Read) -> Result<(), Denied> {
    let r = Reach { state, p };
    let role = p.role;
    let allowed = match read {
        Read::LearnerCard(l) => {
            matches!(role, Role::Organization | Role::Municipality | Role::Region)
                && r.governs_learner(*l)
        }
        Read::Diary(l) => {
            r.guardian_of(*l)
                || r.is_learner(*l)
                || (matches!(role, Role::Organization | Role::Municipality | Role::Region)
                    && r.governs_learner(*l))
        }
        // A former school reads these two, limited to its own time ([`learner_scope`]).
        Read::History(l) => {
            role == Role::Auditor
                || r.guardian_of(*l)
                || (matches!(role, Role::Organization | Role::Municipality | Role::Region)
                    && r.governs_learner(*l))
                || r.held(*l)
        }
        Read::LearnerState(l) => {
            role == Role::Auditor
                || (matches!(role, Role::Organization | Role::Municipality | Role::Region)
                    && r.governs_learner(*l))
                || r.held(*l)
        }
        Read::AccessLog(_) => role == Role::Auditor,
        // The data subject (the learner, or a parent by their guardian link) asks; the region
        // answers a request made to it in writing.
        Read::Export(l) => r.guardian_of(*l) || r.is_learner(*l) || role == Role::Region,
        Read::SearchLearners { organization } => match role {
            Role::Region => true,
            Role::Organization | Role::Municipality => organization.is_some_and(|o| r.governs(o)),
            _ => false,
        },
        Read::ClassRegister(c) => {
            // The region may also ask about a class that does not exist (and is told 404).
            r.teaches(*c) || r.class_org(*c).is_some_and(|o| r.governs(o)) || role == Role::Region
        }
        Read::Queue(o) => r.governs(*o),
        Read::Vacancies {
            organization,
            municipality,
        } => match role {
            Role::Region => true,
            Role::Organization => organization.is_some_and(|o| r.own_org(o)),
            Role::Municipality => {
                organization.is_some_and(|o| r.in_municipality(o))
                    || (organization.is_none()
                        && municipality
                            .as_deref()
                            .is_some_and(|m| p.municipality.as_deref() == Some(m)))
            }
            _ => false,
        },
        Read::Organizations => true,
        Read::FederalRegister | Read::FederalCounts => role == Role::Region,
        Read::Feed => matches!(role, Role::Federal | Role::Region | Role::Auditor),
        Read::Verify => matches!(role, Role::Auditor | Role::Region),
    };
    if allowed {
        Ok(())
    } else {
        deny(format!("a {role} account may not read this"))
    }
}

/// The learner a command is about, for the access journal of refused commands.
pub fn command_learner(state: &State, command: &Command) -> Option<LearnerId> {
    match command {
        Command::RegisterDeath(c) => match &c.person {
            PersonRef::LearnerId(id) => Some(*id),
            PersonRef::Snils(s) => match state.snils_owner(*s) {
                Some(SnilsOwner::Learner(id)) => Some(id),
                _ => None,
            },
            PersonRef::BirthRecord { .. } => None,
        },
        other => contingent_domain::learner_of(state, other),
    }
}

/// How much of a learner's record a permitted read of their history or state shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerScope {
    /// Everything the caller's role may see.
    Whole,
    /// An organization that no longer holds the learner: who they are, and the facts of the
    /// time they were in its classes.
    Held(HeldTime),
}

/// The stays of a learner in the classes of an organization that no longer holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTime {
    organization: OrganizationId,
    /// Class, first day, first day no longer in it.
    stays: Vec<(ClassId, NaiveDate, Option<NaiveDate>)>,
}

impl HeldTime {
    fn within(&self, date: NaiveDate) -> bool {
        self.stays
            .iter()
            .any(|(_, from, until)| *from <= date && until.is_none_or(|u| date <= u))
    }

    fn in_class(&self, class: ClassId, date: Option<NaiveDate>) -> bool {
        self.stays.iter().any(|(c, from, until)| {
            *c == class && date.is_none_or(|d| *from <= d && until.is_none_or(|u| d <= u))
        })
    }

    /// Whether an event about the learner is a fact of the organization's time with them:
    /// the learner's identity (birth or registration), its own enrollments, transfers and
    /// leavings dated within its time, marks and attendance in its classes then (and the
    /// corrections of those marks), exam results sat then, and applications made to it. Nothing
    /// of other organizations, of guardians, or of the time after.
    pub fn admits(&self, event: &Event) -> bool {
        let org = self.organization;
        match event {
            Event::BirthRegistered(_) | Event::LearnerRegistered(_) => true,
            Event::Enrolled(e) => e.organization_id == org && self.within(e.enrolled_on),
            Event::Left(e) => e.organization_id == org && self.within(e.left_on),
            Event::Transferred(e) => {
                (e.from_organization_id == org || e.to_organization_id == org)
                    && self.within(e.transferred_on)
            }
            Event::MarkRecorded(e) => self.in_class(e.class_id, Some(e.lesson_date)),
            Event::AttendanceRecorded(e) => self.in_class(e.class_id, Some(e.date)),
            Event::MarkCorrected(e) => self.in_class(e.class_id, None),
            Event::ExamResultRecorded(e) => self.within(e.exam_date),
            Event::ApplicationSubmitted(e) => e.organization_id == org,
            Event::ApplicationWithdrawn(e) => e.organization_id == org,
            Event::ApplicationRejected(e) => e.organization_id == org,
            _ => false,
        }
    }
}

impl LearnerScope {
    /// Whether a read in this scope shows the event.
    pub fn admits(&self, event: &Event) -> bool {
        match self {
            LearnerScope::Whole => true,
            LearnerScope::Held(time) => time.admits(event),
        }
    }
}

/// The scope of a read of `learner`'s history or state by `p`, once [`authorize_read`] has let
/// it through: an organization that holds the learner now (an active enrollment, an application
/// waiting for its decision) sees the whole record, one that held them before sees only its own
/// time with them; every other role sees what its reach allows.
pub fn learner_scope(state: &State, p: &Principal, learner: LearnerId) -> LearnerScope {
    let r = Reach { state, p };
    let (Role::Organization, Some(org)) = (p.role, p.organization) else {
        return LearnerScope::Whole;
    };
    if r.holds(learner) {
        return LearnerScope::Whole;
    }
    let stays = state
        .learner(learner)
        .map(|l| {
            l.memberships
                .iter()
                .filter(|m| {
                    state
                        .class(m.class_id)
                        .is_some_and(|c| c.organization_id == org)
                })
                .map(|m| (m.class_id, m.from, m.until))
                .collect()
        })
        .unwrap_or_default();
    LearnerScope::Held(HeldTime {
        organization: org,
        stays,
    })
}
