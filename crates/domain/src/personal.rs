//! The personal fields of every event type: the one list of what is sealed under a learner's
//! data key when an event is stored, and what becomes unreadable when the learner's personal
//! data is erased. `docs/personal-data.md` shows the same list; a test holds both to the event
//! schemas.
//!
//! Everything else an event carries (ids, dates, sex, classes, marks, statuses, orders) stays
//! in clear, so read models, counts and the federal feed need no key.

/// What an erased personal text field reads as.
pub const ERASED: &str = "[erased]";

/// What an erased SNILS reads as: `000-000-000 00`, a number the Pension Fund never issues
/// (numbers up to 001-001-998 were never assigned to people).
pub const ERASED_SNILS: &str = "000-000-000 00";

/// What a field holds, and so what it reads as once erased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersonalKind {
    /// A text (a name, a document number, a civil registry office).
    Text,
    /// A SNILS.
    Snils,
}

impl PersonalKind {
    /// The value an erased field of this kind reads as.
    pub fn erased(self) -> &'static str {
        match self {
            Self::Text => ERASED,
            Self::Snils => ERASED_SNILS,
        }
    }
}

/// A personal field of an event's `data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersonalField {
    /// Its path in `data`: object keys joined by `.` (at most two).
    pub path: &'static str,
    /// What it holds.
    pub kind: PersonalKind,
    /// Whether the event always has it when the object holding it is there; an erased
    /// required field reads as [`PersonalKind::erased`], an erased optional one is absent.
    pub required: bool,
}

const fn text(path: &'static str) -> PersonalField {
    PersonalField {
        path,
        kind: PersonalKind::Text,
        required: true,
    }
}

const fn optional_text(path: &'static str) -> PersonalField {
    PersonalField {
        path,
        kind: PersonalKind::Text,
        required: false,
    }
}

const fn snils(path: &'static str, required: bool) -> PersonalField {
    PersonalField {
        path,
        kind: PersonalKind::Snils,
        required,
    }
}

/// The personal fields of each event type that has any, in catalogue order. A guardian's data
/// is part of the link event, sealed under the linked learner's key.
pub const PERSONAL_FIELDS: &[(&str, &[PersonalField])] = &[
    (
        "birth_registered",
        &[
            text("record.number"),
            text("record.office"),
            text("child.surname"),
            text("child.name"),
            optional_text("child.patronymic"),
            optional_text("certificate.series"),
            text("certificate.number"),
            snils("snils", false),
        ],
    ),
    (
        "learner_registered",
        &[
            text("person.surname"),
            text("person.name"),
            optional_text("person.patronymic"),
            optional_text("document.series"),
            text("document.number"),
            snils("snils", false),
        ],
    ),
    ("snils_recorded", &[snils("snils", true)]),
    (
        "death_registered",
        &[text("record.number"), text("record.office")],
    ),
    (
        "guardian_linked",
        &[
            snils("guardian_snils", true),
            text("guardian.surname"),
            text("guardian.name"),
            optional_text("guardian.patronymic"),
            text("consent.document"),
        ],
    ),
    ("enrolled", &[optional_text("age_exemption")]),
    (
        "left",
        &[
            optional_text("certificate.series"),
            text("certificate.number"),
        ],
    ),
];

/// The personal fields of an event type; none for a type without any.
pub fn personal_fields(type_name: &str) -> &'static [PersonalField] {
    PERSONAL_FIELDS
        .iter()
        .find(|(t, _)| *t == type_name)
        .map_or(&[], |(_, fields)| fields)
}
