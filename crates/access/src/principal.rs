//! Who is asking: the principal a verified token names, and the roles of the registry.

use std::fmt;

use contingent_domain::{OrganizationId, Snils};
use serde::{Deserialize, Serialize};

/// A role, as carried in the token's `role` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A parent or legal guardian, identified by SNILS.
    Parent,
    /// A learner, identified by SNILS.
    Learner,
    /// A teacher of an organization.
    Teacher,
    /// A school, kindergarten, additional-education centre or college.
    Organization,
    /// A municipal education department.
    Municipality,
    /// The regional ministry of education.
    Region,
    /// An auditor: read-only.
    Auditor,
    /// The civil registry (ЗАГС).
    CivilRegistry,
    /// The regional exam centre.
    ExamCentre,
    /// The federal segment.
    Federal,
}

impl Role {
    /// Every role, in the order of the access table.
    pub const ALL: &'static [Role] = &[
        Role::Parent,
        Role::Learner,
        Role::Teacher,
        Role::Organization,
        Role::Municipality,
        Role::Region,
        Role::Auditor,
        Role::CivilRegistry,
        Role::ExamCentre,
        Role::Federal,
    ];

    /// The role as written in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Parent => "parent",
            Role::Learner => "learner",
            Role::Teacher => "teacher",
            Role::Organization => "organization",
            Role::Municipality => "municipality",
            Role::Region => "region",
            Role::Auditor => "auditor",
            Role::CivilRegistry => "civil_registry",
            Role::ExamCentre => "exam_centre",
            Role::Federal => "federal",
        }
    }

    /// Parses a role name.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.as_str() == text)
    }

    /// Officials: every role but the parent and the learner. Their reads of a learner's
    /// personal data go into the access journal.
    pub fn is_official(self) -> bool {
        !matches!(self, Role::Parent | Role::Learner)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims the registry reads from a token, besides `iss`, `aud` and `exp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The account: a person's sign-on id, or a system's client id.
    pub sub: String,
    /// The role.
    pub role: Role,
    /// SNILS of a parent or learner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snils: Option<String>,
    /// The organization of a teacher or an organization account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<OrganizationId>,
    /// The municipality of a municipal department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A verified caller, with the attributes its role needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The account.
    pub subject: String,
    /// The role.
    pub role: Role,
    /// SNILS (parent, learner).
    pub snils: Option<Snils>,
    /// Organization (teacher, organization).
    pub organization: Option<OrganizationId>,
    /// Municipality (municipal department).
    pub municipality: Option<String>,
}

/// Why claims do not make a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token's claims are incomplete for the role {role}: {missing}")]
pub struct IncompleteClaims {
    /// The role.
    pub role: Role,
    /// What is missing or wrong.
    pub missing: &'static str,
}

impl TryFrom<Claims> for Principal {
    type Error = IncompleteClaims;

    fn try_from(c: Claims) -> Result<Self, Self::Error> {
        let role = c.role;
        let snils = match (&c.snils, role) {
            (Some(text), _) => Some(Snils::parse(text).map_err(|_| IncompleteClaims {
                role,
                missing: "a valid snils",
            })?),
            (None, Role::Parent | Role::Learner) => {
                return Err(IncompleteClaims {
                    role,
                    missing: "snils",
                })
            }
            (None, _) => None,
        };
        if matches!(role, Role::Teacher | Role::Organization) && c.org.is_none() {
            return Err(IncompleteClaims {
                role,
                missing: "org",
            });
        }
        if role == Role::Municipality && c.municipality.as_deref().is_none_or(str::is_empty) {
            return Err(IncompleteClaims {
                role,
                missing: "municipality",
            });
        }
        if c.sub.is_empty() {
            return Err(IncompleteClaims {
                role,
                missing: "sub",
            });
        }
        Ok(Principal {
            subject: c.sub,
            role,
            snils,
            organization: c.org,
            municipality: c.municipality,
        })
    }
}
