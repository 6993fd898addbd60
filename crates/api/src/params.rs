//! Query parameters: one typed struct per endpoint, described in `/openapi.json` by
//! `utoipa::IntoParams` with the limits, patterns and formats that parsing them enforces, and
//! parsed by the [`Params`] extractor. A query that does not parse is a 400
//! `application/problem+json` with a stable code and the parameter at fault in `field`.

use std::fmt;
use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use contingent_domain::{AcademicYear, Level, Snils};
use contingent_projections::queries::CountDimension;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::ApiError;

/// The largest page of learners a search returns.
pub const MAX_SEARCH: u64 = 500;
/// The largest page of the feed and of the federal register.
pub const MAX_PAGE: u64 = 1000;

/// A struct of query parameters, with the stable code of each parameter that does not parse
/// (`invalid_query` for any other).
pub trait QueryParams: DeserializeOwned {
    /// (parameter, code) for parameters whose code is not `invalid_query`.
    const CODES: &'static [(&'static str, &'static str)] = &[];
}

/// A query string parsed into `T`.
pub struct Params<T>(pub T);

impl<T: QueryParams, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(Params)
    }
}

/// Parses a query string into `T`, naming the parameter at fault.
pub fn parse_query<T: QueryParams>(query: &str) -> Result<T, ApiError> {
    let pairs = form_urlencoded::parse(query.as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|e| {
        let field = e.path().to_string();
        let message = e.into_inner().to_string();
        if field == "." || field.is_empty() {
            return ApiError::bad_request("invalid_query", message);
        }
        let code = T::CODES
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, code)| *code)
            .unwrap_or("invalid_query");
        ApiError::bad_request(code, format!("{field}: {message}")).at(field)
    })
}

/// A whole number from 0 to `MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpTo<const MAX: u64>(pub u64);

impl<'de, const MAX: u64> Deserialize<'de> for UpTo<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX)
            .map(UpTo)
            .ok_or_else(|| de::Error::custom(format!("must be a whole number up to {MAX}")))
    }
}

/// A whole number (a log position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position(pub u64);

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<u64>()
            .map(Position)
            .map_err(|_| de::Error::custom(format!("must be a whole number up to {}", u64::MAX)))
    }
}

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(Date)
            .map_err(|_| de::Error::custom("must be a date YYYY-MM-DD"))
    }
}

/// An instant: RFC 3339, or a date meaning its last second (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|d| d.with_timezone(&Utc))
            .or_else(|_| {
                NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                    .map(|d| d.and_hms_opt(23, 59, 59).expect("valid time").and_utc())
            })
            .map(Instant)
            .map_err(|_| de::Error::custom("must be RFC 3339 or YYYY-MM-DD"))
    }
}

/// An id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub Uuid);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Uuid::parse_str(&text)
            .map(Id)
            .map_err(|_| de::Error::custom(format!("{text:?} is not a UUID")))
    }
}

/// Deserializes a value that parses from its text.
struct Parsed<T>(PhantomData<T>);

impl<T> Visitor<'_> for Parsed<T>
where
    T: TryFrom<String>,
    T::Error: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::try_from(v.to_owned()).map_err(E::custom)
    }
}

/// An academic year, `YYYY/YYYY` with consecutive years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Year(pub AcademicYear);

impl TryFrom<String> for Year {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        AcademicYear::parse(&text)
            .map(Year)
            .map_err(|e| e.to_string())
    }
}

impl<'de> Deserialize<'de> for Year {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Parsed(PhantomData))
    }
}

/// A SNILS with a valid check number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnilsParam(pub Snils);

impl TryFrom<String> for SnilsParam {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Snils::parse(&text)
            .map(SnilsParam)
            .map_err(|e| e.to_string())
    }
}

impl<'de> Deserialize<'de> for SnilsParam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Parsed(PhantomData))
    }
}

/// A level of education.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelParam(pub Level);

impl TryFrom<String> for LevelParam {
    type Error = &'static str;
    fn try_from(text: String) -> Result<Self, &'static str> {
        Level::ALL
            .iter()
            .copied()
            .find(|l| l.as_str() == text)
            .map(LevelParam)
            .ok_or("level is preschool, general, additional or vocational")
    }
}

impl<'de> Deserialize<'de> for LevelParam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Parsed(PhantomData))
    }
}

/// `true` or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "true" => Ok(Flag(true)),
            "false" => Ok(Flag(false)),
            _ => Err(de::Error::custom("must be true or false")),
        }
    }
}

/// The dimensions to group counts by, comma-separated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dimensions(pub Vec<CountDimension>);

impl<'de> Deserialize<'de> for Dimensions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let dimension = CountDimension::parse(part).ok_or_else(|| {
                de::Error::custom(format!(
                    "cannot group by {part:?}: use municipality, organization, level, grade"
                ))
            })?;
            if !out.contains(&dimension) {
                out.push(dimension);
            }
        }
        Ok(Dimensions(out))
    }
}

/// The `by` values, as documented.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum CountBy {
    /// By municipality.
    Municipality,
    /// By organization.
    Organization,
    /// By level.
    Level,
    /// By grade.
    Grade,
}

/// `min_position` alone: read your own writes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Consistency {
    /// Wait (up to 5 s) until the read models have applied this log position: read your own
    /// writes. A position past the end of the log is answered 409 `position_ahead`.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub min_position: Option<Position>,
}

impl QueryParams for Consistency {}

/// `GET /v1/learners`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LearnerSearchQuery {
    /// SNILS, `NNN-NNN-NNN CC` with a valid check number.
    #[param(value_type = Option<String>, format = "snils", pattern = r"^[0-9]{3}-[0-9]{3}-[0-9]{3} [0-9]{2}$")]
    pub snils: Option<SnilsParam>,
    /// Surname (exact).
    pub surname: Option<String>,
    /// Name (with the surname).
    pub name: Option<String>,
    /// Date of birth (with the surname).
    #[param(value_type = Option<String>, format = Date)]
    pub birth_date: Option<Date>,
    /// Learners enrolled in this organization now.
    #[param(value_type = Option<String>, format = Uuid)]
    pub organization_id: Option<Id>,
    /// At most this many (default 100).
    #[param(value_type = Option<u64>, minimum = 0, maximum = 500)]
    pub limit: Option<UpTo<MAX_SEARCH>>,
    /// Wait (up to 5 s) until the read models have applied this log position: read your own
    /// writes. A position past the end of the log is answered 409 `position_ahead`.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub min_position: Option<Position>,
}

impl QueryParams for LearnerSearchQuery {
    const CODES: &'static [(&'static str, &'static str)] = &[
        ("snils", "invalid_snils"),
        ("birth_date", "invalid_date"),
        ("organization_id", "invalid_id"),
    ];
}

/// `GET /v1/learners/{id}/diary`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiaryQuery {
    /// Only this academic year, `YYYY/YYYY` with consecutive years, e.g. `2025/2026`.
    #[param(schema_with = academic_year_schema)]
    pub academic_year: Option<Year>,
    /// Wait (up to 5 s) until the read models have applied this log position: read your own
    /// writes. A position past the end of the log is answered 409 `position_ahead`.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub min_position: Option<Position>,
}

impl QueryParams for DiaryQuery {}

/// `GET /v1/learners/{id}/state`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    /// Only facts recorded by this instant: RFC 3339, or a date meaning its last second (UTC).
    #[param(schema_with = instant_schema)]
    pub known_at: Option<Instant>,
    /// Only facts that happened by this date.
    #[param(value_type = Option<String>, format = Date)]
    pub as_of: Option<Date>,
}

impl QueryParams for StateQuery {
    const CODES: &'static [(&'static str, &'static str)] =
        &[("known_at", "invalid_date"), ("as_of", "invalid_date")];
}

/// The first year of an academic year `AcademicYear::parse` accepts, and the last.
pub const ACADEMIC_YEARS: std::ops::RangeInclusive<u16> = 1900..=2200;

/// The pattern of an academic year: each `YYYY/YYYY` of consecutive years
/// [`AcademicYear::parse`] accepts, spelled out (a regular expression cannot add one).
pub fn academic_year_pattern() -> String {
    let years: Vec<String> = ACADEMIC_YEARS
        .map(|y| format!("{y}/{}", u32::from(y) + 1))
        .collect();
    format!("^(?:{})$", years.join("|"))
}

/// An academic year as a parameter: its pattern, and the `academic-year` format naming the
/// rule the pattern spells out.
fn academic_year_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("academic-year".into())))
        .pattern(Some(academic_year_pattern()))
        .build()
}

fn instant_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{
        KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
    };
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))),
        )
        .build();
    Schema::OneOf(one_of)
}

/// `GET /v1/organizations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrganizationsQuery {
    /// Only this municipality.
    pub municipality: Option<String>,
    /// Wait (up to 5 s) until the read models have applied this log position: read your own
    /// writes. A position past the end of the log is answered 409 `position_ahead`.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub min_position: Option<Position>,
}

impl QueryParams for OrganizationsQuery {}

/// `GET /v1/organizations/{id}/queue`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Judge overdue on this date (default today).
    #[param(value_type = Option<String>, format = Date)]
    pub as_of: Option<Date>,
    /// Wait (up to 5 s) until the read models have applied this log position: read your own
    /// writes. A position past the end of the log is answered 409 `position_ahead`.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub min_position: Option<Position>,
}

impl QueryParams for QueueQuery {
    const CODES: &'static [(&'static str, &'static str)] = &[("as_of", "invalid_date")];
}

/// `GET /v1/classes/{id}/register`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegisterQuery {
    /// Roster date (default today within the class's year).
    #[param(value_type = Option<String>, format = Date)]
    pub on: Option<Date>,
    /// First day of the grids.
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<Date>,
    /// Last day of the grids.
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<Date>,
    /// Wait (up to 5 s) until the read models have applied this log position: read your own
    /// writes. A position past the end of the log is answered 409 `position_ahead`.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub min_position: Option<Position>,
}

impl QueryParams for RegisterQuery {
    const CODES: &'static [(&'static str, &'static str)] = &[
        ("on", "invalid_date"),
        ("from", "invalid_date"),
        ("to", "invalid_date"),
    ];
}

/// `GET /v1/vacancies`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VacanciesQuery {
    /// One organization.
    #[param(value_type = Option<String>, format = Uuid)]
    pub organization_id: Option<Id>,
    /// One municipality.
    pub municipality: Option<String>,
    /// One academic year, `YYYY/YYYY` with consecutive years.
    #[param(schema_with = academic_year_schema)]
    pub academic_year: Option<Year>,
    /// One level of education.
    #[param(value_type = Option<String>, pattern = "^(preschool|general|additional|vocational)$")]
    pub level: Option<LevelParam>,
    /// Only classes with free places.
    #[param(value_type = Option<bool>)]
    pub only_free: Option<Flag>,
    /// Wait (up to 5 s) until the read models have applied this log position: read your own
    /// writes. A position past the end of the log is answered 409 `position_ahead`.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub min_position: Option<Position>,
}

impl QueryParams for VacanciesQuery {
    const CODES: &'static [(&'static str, &'static str)] = &[("organization_id", "invalid_id")];
}

/// `GET /v1/federal/register`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FederalRegisterQuery {
    /// The learner id to continue after (the previous page's `next_after`).
    #[param(value_type = Option<String>, format = Uuid)]
    pub after: Option<Id>,
    /// Page size (default 100; 0 means 1).
    #[param(value_type = Option<u64>, minimum = 0, maximum = 1000)]
    pub limit: Option<UpTo<MAX_PAGE>>,
    /// Wait (up to 5 s) until the read models have applied this log position: read your own
    /// writes. A position past the end of the log is answered 409 `position_ahead`.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub min_position: Option<Position>,
}

impl QueryParams for FederalRegisterQuery {
    const CODES: &'static [(&'static str, &'static str)] = &[("after", "invalid_id")];
}

/// `GET /v1/federal/counts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CountsQuery {
    /// Group by these, comma-separated: municipality, organization, level, grade.
    #[param(value_type = Option<Vec<CountBy>>, style = Form, explode = false)]
    pub by: Option<Dimensions>,
    /// One academic year, `YYYY/YYYY` with consecutive years.
    #[param(schema_with = academic_year_schema)]
    pub academic_year: Option<Year>,
    /// Wait (up to 5 s) until the read models have applied this log position: read your own
    /// writes. A position past the end of the log is answered 409 `position_ahead`.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub min_position: Option<Position>,
}

impl QueryParams for CountsQuery {}

/// `GET /v1/feed`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Return events after this position (0, the default, for the start).
    #[param(value_type = Option<u64>, minimum = 0)]
    pub after: Option<Position>,
    /// Page size (default 100; 0 means 1).
    #[param(value_type = Option<u64>, minimum = 0, maximum = 1000)]
    pub limit: Option<UpTo<MAX_PAGE>>,
}

impl QueryParams for FeedQuery {}

/// The longest a caller may wait for a running audit, in seconds.
pub const MAX_AUDIT_WAIT: u64 = 30;

/// `GET /v1/audit/verify`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// Seconds to wait for a running audit to end before answering (0, the default, to 30).
    #[param(value_type = Option<u64>, minimum = 0, maximum = 30)]
    pub wait: Option<UpTo<MAX_AUDIT_WAIT>>,
}

impl QueryParams for VerifyQuery {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_parameter_is_named_with_its_code() {
        let e = parse_query::<LearnerSearchQuery>("snils=123&limit=5").expect_err("refused");
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_snils", Some("snils"))
        );
        let e = parse_query::<LearnerSearchQuery>("surname=a&limit=501").expect_err("refused");
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_query", Some("limit"))
        );
        let e = parse_query::<FeedQuery>("after=minus-one").expect_err("refused");
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_query", Some("after"))
        );
        let e = parse_query::<DiaryQuery>("academic_year=2025/2027").expect_err("refused");
        assert_eq!(e.field.as_deref(), Some("academic_year"));
        let e = parse_query::<StateQuery>("known_at=yesterday").expect_err("refused");
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_date", Some("known_at"))
        );
    }

    #[test]
    fn the_academic_year_pattern_is_what_the_parser_accepts() {
        let pattern = academic_year_pattern();
        let matches = |text: &str| {
            pattern
                .trim_start_matches("^(?:")
                .trim_end_matches(")$")
                .split('|')
                .any(|y| y == text)
        };
        for first in 1800..2300u32 {
            for second in [first, first + 1, first + 2] {
                let text = format!("{first}/{second}");
                assert_eq!(matches(&text), AcademicYear::parse(&text).is_ok(), "{text}");
            }
        }
    }

    #[test]
    fn good_parameters_parse() {
        let q = parse_query::<FeedQuery>("after=7&limit=1000").expect("parses");
        assert_eq!((q.after, q.limit), (Some(Position(7)), Some(UpTo(1000))));
        let q = parse_query::<CountsQuery>("by=municipality,level,level").expect("parses");
        assert_eq!(q.by.map(|d| d.0.len()), Some(2));
        let q = parse_query::<StateQuery>("known_at=2025-01-01T10:00:00%2B03:00").expect("parses");
        assert!(q.known_at.is_some());
        let q = parse_query::<VacanciesQuery>("only_free=true&level=general").expect("parses");
        assert_eq!(q.only_free, Some(Flag(true)));
    }
}
