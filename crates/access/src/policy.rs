//! Who may do and see what. Pure functions over the writer's [`State`]: the same facts that
//! decide commands decide access, so a school's reach follows its enrollments the moment they
//! are recorded.

use contingent_domain::{
    ClassId, Command, LearnerId, OrganizationId, PersonRef, SnilsOwner, State,
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
            | Read::AccessLog(l) => Some(*l),
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

    fn teaches(&self, class: ClassId) -> bool {
        self.p.role == Role::Teacher
            && self.state.class(class).is_some_and(|c| {
                Some(c.organization_id) == self.p.organization
                    && c.teachers.iter().any(|t| t.as_str() == self.p.subject)
            })
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

    /// An organization where the learner is or was enrolled, governed by the caller.
    fn governs_learner(&self, learner: LearnerId) -> bool {
        if self.p.role == Role::Region {
            return true;
        }
        self.state.learner(learner).is_some_and(|l| {
            l.enrollments
                .iter()
                .any(|e| self.governs(e.organization_id))
        })
    }

    fn governs_active_learner(&self, learner: LearnerId) -> bool {
        if self.p.role == Role::Region {
            return true;
        }
        self.state.learner(learner).is_some_and(|l| {
            l.active_enrollments()
                .any(|e| self.governs(e.organization_id))
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
        Command::RecordSnils(c) => {
            matches!(role, Role::Organization | Role::Municipality | Role::Region)
                && r.governs_active_learner(c.learner_id)
        }
        Command::LinkGuardian(c) => {
            matches!(role, Role::Organization | Role::Municipality | Role::Region)
                && r.governs_active_learner(c.learner_id)
        }
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
            matches!(role, Role::Organization | Role::Municipality | Role::Region)
                && (from.is_some_and(|o| r.governs(o))
                    || to.is_some_and(|o| r.governs(o))
                    || (from.is_none() && to.is_none() && role == Role::Region))
        }
        Command::RecordMark(c) => {
            r.teaches(c.class_id) || (role == Role::Organization && r.governs_class(c.class_id))
        }
        Command::RecordAttendance(c) => {
            r.teaches(c.class_id) || (role == Role::Organization && r.governs_class(c.class_id))
        }
        Command::CorrectMark(c) => match state.mark(c.mark_id) {
            Some(m) => {
                r.teaches(m.class_id) || (role == Role::Organization && r.governs_class(m.class_id))
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
        Read::History(l) => {
            role == Role::Auditor
                || r.guardian_of(*l)
                || (matches!(role, Role::Organization | Role::Municipality | Role::Region)
                    && r.governs_learner(*l))
        }
        Read::LearnerState(l) => {
            role == Role::Auditor
                || (matches!(role, Role::Organization | Role::Municipality | Role::Region)
                    && r.governs_learner(*l))
        }
        Read::AccessLog(_) => role == Role::Auditor,
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
