//! Small value types that cannot hold an invalid value: names and free text, marks, academic
//! years, grades, and the registry's closed vocabularies.

use std::fmt;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Why a value was refused at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Empty or blank text where text is required.
    #[error("must not be empty")]
    Empty,
    /// Text longer than the field allows.
    #[error("longer than {max} characters")]
    TooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// Control characters are not allowed in names and documents.
    #[error("contains control characters")]
    ControlCharacters,
    /// Not a mark of the 5-point or pass/fail scale.
    #[error("a mark is one of 2, 3, 4, 5, pass, fail")]
    Mark,
    /// An academic year is written `2025/2026` with consecutive years.
    #[error("an academic year is written as YYYY/YYYY with consecutive years")]
    AcademicYear,
}

/// Trimmed text of 1 to 200 characters without control characters: names, document numbers,
/// subjects, reasons.
///
/// Shared, not copied, when cloned: the write side holds each subject and teacher's account once
/// however many classes name them (see [`State`](crate::State)).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Text(Arc<str>);

impl Text {
    /// The longest text accepted.
    pub const MAX: usize = 200;

    /// Parses and trims.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(ValueError::Empty);
        }
        if trimmed.chars().count() > Self::MAX {
            return Err(ValueError::TooLong { max: Self::MAX });
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ValueError::ControlCharacters);
        }
        Ok(Self(Arc::from(trimmed)))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl TryFrom<String> for Text {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

/// Written as its characters, without a copy.
impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl From<Text> for String {
    fn from(value: Text) -> Self {
        value.0.as_ref().to_owned()
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A mark on the 5-point scale or the pass/fail scale.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum Mark {
    /// "2", unsatisfactory.
    Two,
    /// "3", satisfactory.
    Three,
    /// "4", good.
    Four,
    /// "5", excellent.
    Five,
    /// Passed (зачёт).
    Pass,
    /// Failed (незачёт).
    Fail,
}

impl Mark {
    /// Parses "2"–"5", "pass" or "fail".
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        match input.trim() {
            "2" => Ok(Self::Two),
            "3" => Ok(Self::Three),
            "4" => Ok(Self::Four),
            "5" => Ok(Self::Five),
            "pass" => Ok(Self::Pass),
            "fail" => Ok(Self::Fail),
            _ => Err(ValueError::Mark),
        }
    }

    /// The numeric value on the 5-point scale; pass/fail marks have none and do not enter averages.
    pub fn points(self) -> Option<u8> {
        match self {
            Self::Two => Some(2),
            Self::Three => Some(3),
            Self::Four => Some(4),
            Self::Five => Some(5),
            Self::Pass | Self::Fail => None,
        }
    }

    /// The mark as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Two => "2",
            Self::Three => "3",
            Self::Four => "4",
            Self::Five => "5",
            Self::Pass => "pass",
            Self::Fail => "fail",
        }
    }

    /// The 5-point mark for points on a 2..=5 scale.
    pub fn from_points(points: u8) -> Option<Self> {
        match points {
            2 => Some(Self::Two),
            3 => Some(Self::Three),
            4 => Some(Self::Four),
            5 => Some(Self::Five),
            _ => None,
        }
    }
}

impl fmt::Debug for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mark({})", self.as_str())
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Written as [`Mark::as_str`].
impl Serialize for Mark {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl TryFrom<String> for Mark {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Mark> for String {
    fn from(value: Mark) -> Self {
        value.as_str().to_owned()
    }
}

/// An academic year, 1 September to 31 August, written `2025/2026`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AcademicYear(u16);

impl AcademicYear {
    /// Parses `YYYY/YYYY`.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let (a, b) = input
            .trim()
            .split_once('/')
            .ok_or(ValueError::AcademicYear)?;
        let a: u16 = a.parse().map_err(|_| ValueError::AcademicYear)?;
        let b: u16 = b.parse().map_err(|_| ValueError::AcademicYear)?;
        if !(1900..=2200).contains(&a) || b != a + 1 {
            return Err(ValueError::AcademicYear);
        }
        Ok(Self(a))
    }

    /// The academic year that starts in September of `year`.
    pub fn starting(year: u16) -> Self {
        Self(year)
    }

    /// The academic year a date falls in.
    pub fn containing(date: NaiveDate) -> Self {
        let year = date.year() as u16;
        if date.month() >= 9 {
            Self(year)
        } else {
            Self(year - 1)
        }
    }

    /// 1 September of the first calendar year.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(i32::from(self.0), 9, 1).expect("1 September exists")
    }

    /// 31 August of the second calendar year.
    pub fn last_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(i32::from(self.0) + 1, 8, 31).expect("31 August exists")
    }

    /// The calendar year it starts in.
    pub fn start_year(self) -> u16 {
        self.0
    }

    /// The following academic year.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for AcademicYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0, self.0 + 1)
    }
}

impl fmt::Debug for AcademicYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AcademicYear({self})")
    }
}

impl TryFrom<String> for AcademicYear {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AcademicYear> for String {
    fn from(value: AcademicYear) -> Self {
        value.to_string()
    }
}

/// Whole years and months between a birth date and a later date.
pub fn age_in_months(birth: NaiveDate, on: NaiveDate) -> i32 {
    let mut months = (on.year() - birth.year()) * 12 + on.month() as i32 - birth.month() as i32;
    if on.day() < birth.day() {
        months -= 1;
    }
    months
}

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value as written in events and in the API.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// The value written `text` (exactly, as [`Self::as_str`] writes it), if one is.
            pub fn from_written(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// Kind of an educational organization.
    OrganizationKind {
        /// Дошкольная образовательная организация.
        Kindergarten = "kindergarten",
        /// Общеобразовательная организация.
        School = "school",
        /// Организация дополнительного образования.
        Additional = "additional",
        /// Профессиональная образовательная организация (СПО).
        College = "college",
    }
);

vocabulary!(
    /// Level of education an enrollment or application is for.
    Level {
        /// Preschool education (kindergarten groups).
        Preschool = "preschool",
        /// General education, grades 1 to 11.
        General = "general",
        /// Additional education: clubs, sports, music and art schools.
        Additional = "additional",
        /// Secondary vocational education (colleges).
        Vocational = "vocational",
    }
);

vocabulary!(
    /// Why a learner has a secondary (not primary) enrollment: the grounds the law on education
    /// (273-ФЗ) gives for learning in a second organization or programme at once.
    SecondaryReason {
        /// Additional education next to the main programme: a club, a sports section, a music
        /// or art school (дополнительное образование, ст. 75). For additional-education groups.
        AdditionalEducation = "additional_education",
        /// Part of a programme taught by a partner organization in the network form
        /// (сетевая форма реализации образовательных программ, ст. 15). Any level.
        NetworkProgramme = "network_programme",
        /// A second programme studied at the same time, such as a college programme next to
        /// school or a second vocational programme (одновременное освоение нескольких программ,
        /// ст. 34 ч. 1 п. 5). General and vocational levels.
        SecondProgramme = "second_programme",
        /// Attestation of a learner in family education or self-education, attached to a
        /// school for it as an external learner (экстерн, ст. 17, ст. 34 ч. 3). General level.
        ExternalAttestation = "external_attestation",
    }
);

impl SecondaryReason {
    /// Whether the reason applies to an enrollment at this level.
    pub fn fits(self, level: Level) -> bool {
        match self {
            Self::AdditionalEducation => level == Level::Additional,
            Self::NetworkProgramme => true,
            Self::SecondProgramme => matches!(level, Level::General | Level::Vocational),
            Self::ExternalAttestation => level == Level::General,
        }
    }
}

vocabulary!(
    /// Sex as recorded in the birth record.
    Sex {
        /// Female.
        Female = "female",
        /// Male.
        Male = "male",
    }
);

vocabulary!(
    /// Kindergarten stay mode.
    StayMode {
        /// 10.5 to 12 hours.
        FullDay = "full_day",
        /// Up to 5 hours.
        ShortStay = "short_stay",
        /// 24 hours.
        RoundTheClock = "round_the_clock",
    }
);

vocabulary!(
    /// Form of education.
    EducationForm {
        /// Очная.
        FullTime = "full_time",
        /// Очно-заочная.
        PartTime = "part_time",
        /// Заочная.
        Extramural = "extramural",
        /// Семейное образование.
        Family = "family",
        /// Самообразование.
        SelfEducation = "self_education",
    }
);

vocabulary!(
    /// Relation of a guardian to the learner.
    Relation {
        /// Mother.
        Mother = "mother",
        /// Father.
        Father = "father",
        /// Guardian appointed by the guardianship authority.
        Guardian = "guardian",
        /// Trustee (попечитель).
        Trustee = "trustee",
        /// Another legal representative.
        Other = "other",
    }
);

vocabulary!(
    /// Kindergarten queue priority.
    Priority {
        /// No privilege.
        General = "general",
        /// Preferential right (преимущественное право).
        Preferential = "preferential",
        /// Priority right (первоочередное право).
        Priority = "priority",
        /// Right to a place out of turn (внеочередное право).
        OutOfTurn = "out_of_turn",
    }
);

vocabulary!(
    /// How a learner moves between classes or organizations.
    TransferKind {
        /// From one class to another within the same organization.
        WithinOrganization = "within_organization",
        /// To the next grade at the end of the academic year.
        NextGrade = "next_grade",
        /// Out of one organization into another.
        ToOtherOrganization = "to_other_organization",
    }
);

vocabulary!(
    /// Kind of a mark.
    MarkKind {
        /// A mark for a lesson or a piece of work.
        Current = "current",
        /// A term or half-year mark.
        Period = "period",
        /// The annual mark.
        Annual = "annual",
        /// The final mark for the certificate.
        Final = "final",
    }
);

vocabulary!(
    /// Attendance of a lesson or day.
    Attendance {
        /// Attended.
        Present = "present",
        /// Late.
        Late = "late",
        /// Absent through illness.
        Ill = "ill",
        /// Absent for an excused reason.
        Excused = "excused",
        /// Absent without an excuse.
        Unexcused = "unexcused",
    }
);

vocabulary!(
    /// Form of the state final attestation (ГИА).
    ExamForm {
        /// ОГЭ, grade 9: primary points converted to a 5-point mark.
        Oge = "oge",
        /// ЕГЭ, grade 11: a test score 0–100.
        Ege = "ege",
        /// ГВЭ, grade 9 or 11: a 5-point mark.
        Gve = "gve",
    }
);

vocabulary!(
    /// Why a learner left an organization.
    LeaveReason {
        /// Completed the programme (окончание).
        Graduation = "graduation",
        /// Moved out of the region.
        MovedAway = "moved_away",
        /// Expelled (отчисление).
        Expulsion = "expulsion",
        /// Died.
        Death = "death",
        /// Any other reason given in the document.
        Other = "other",
    }
);

vocabulary!(
    /// Who reported a fact to the registry.
    SourceKind {
        /// The civil registry (ЗАГС).
        CivilRegistry = "civil_registry",
        /// The regional e-services portal.
        Portal = "portal",
        /// An educational organization.
        Organization = "organization",
        /// The regional exam centre (РЦОИ).
        ExamCentre = "exam_centre",
        /// The regional education authority.
        Region = "region",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vocabulary_value_is_read_back_from_what_it_writes_and_from_nothing_else() {
        for kind in MarkKind::ALL {
            assert_eq!(MarkKind::from_written(kind.as_str()), Some(*kind));
            assert_eq!(
                serde_json::to_value(kind).expect("written"),
                serde_json::Value::from(kind.as_str())
            );
        }
        for level in Level::ALL {
            assert_eq!(Level::from_written(level.as_str()), Some(*level));
        }
        for text in ["Current", " current", "current ", "", "termly"] {
            assert_eq!(MarkKind::from_written(text), None, "{text:?}");
        }
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(
            Text::parse("  Иванов ").map(String::from),
            Ok("Иванов".to_owned())
        );
        assert_eq!(Text::parse("   "), Err(ValueError::Empty));
        assert_eq!(
            Text::parse(&"я".repeat(201)),
            Err(ValueError::TooLong { max: 200 })
        );
        assert_eq!(Text::parse("a\u{0}b"), Err(ValueError::ControlCharacters));
    }

    #[test]
    fn marks_parse_and_refuse() {
        assert_eq!(Mark::parse("5"), Ok(Mark::Five));
        assert_eq!(Mark::parse("pass").map(Mark::points), Ok(None));
        assert_eq!(Mark::parse("6"), Err(ValueError::Mark));
        assert_eq!(Mark::parse("1"), Err(ValueError::Mark));
    }

    #[test]
    fn academic_years() {
        let year = AcademicYear::parse("2025/2026").expect("valid");
        assert_eq!(
            year.first_day(),
            NaiveDate::from_ymd_opt(2025, 9, 1).expect("a date")
        );
        assert_eq!(
            AcademicYear::containing(NaiveDate::from_ymd_opt(2026, 5, 20).expect("a date")),
            year
        );
        assert!(AcademicYear::parse("2025/2027").is_err());
        assert!(AcademicYear::parse("2025").is_err());
    }

    #[test]
    fn ages_count_whole_months() {
        let birth = NaiveDate::from_ymd_opt(2019, 3, 15).expect("a date");
        assert_eq!(
            age_in_months(birth, NaiveDate::from_ymd_opt(2025, 9, 1).expect("a date")),
            77
        );
        assert_eq!(
            age_in_months(birth, NaiveDate::from_ymd_opt(2025, 9, 15).expect("a date")),
            78
        );
    }
}
