//! Identifiers of the registry's entities: UUIDs wrapped in one type per entity so that a class
//! id can never be passed where a learner id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUID v7) identifier.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

id_type!(
    /// The internal learner id: the learner's identifier inside the region and with the federal segment.
    LearnerId
);
id_type!(
    /// An educational organization (school, kindergarten, additional-education centre, college).
    OrganizationId
);
id_type!(
    /// A class (school) or group (kindergarten, club, college) opened for one academic year.
    ClassId
);
id_type!(
    /// An application for a place (kindergarten queue, school, club, college).
    ApplicationId
);
id_type!(
    /// One enrollment of a learner into an organization.
    EnrollmentId
);
id_type!(
    /// One mark, the business reference that corrections point at.
    MarkId
);
