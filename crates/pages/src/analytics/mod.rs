//! The analyst's pages (municipality, region), within the caller's reach: learners in classes
//! by municipality, organization, level and grade with the data-quality panel (`/analytics`),
//! enrollments and leavings per month (`/analytics/movements`), places and queues by
//! organization and level with the overdue applications (`/analytics/queues`), and exam results
//! by organization and subject beside the region's mean (`/analytics/exams`). Every table
//! downloads as CSV (`/analytics/{table}.csv`).

mod counts;
mod exams;
mod movements;
mod queues;

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{NaiveDate, Utc};
use contingent_access::{Read, Role};
use contingent_api::ApiError;
use contingent_domain::AcademicYear;
use maud::{html, Markup, PreEscaped};
use plotters::style::RGBColor;
use serde::Deserialize;

use crate::charts;
use crate::layout::{api_error, csv_response, page};
use crate::session::Viewer;
use crate::PagesState;

#[derive(Deserialize, Default)]
pub(crate) struct AnalyticsQuery {
    year: Option<String>,
}

/// The analyst's pages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Counts,
    Movements,
    Queues,
    Exams,
}

/// Each page: its section, path and name in the navigation.
const SECTIONS: [(Section, &str, &str); 4] = [
    (
        Section::Counts,
        "/analytics",
        "Контингент и качество данных",
    ),
    (
        Section::Movements,
        "/analytics/movements",
        "Движение по месяцам",
    ),
    (Section::Queues, "/analytics/queues", "Места и очереди"),
    (Section::Exams, "/analytics/exams", "Результаты экзаменов"),
];

/// Each table's name (as in `/analytics/{name}.csv`) and the page it is on.
const TABLES: &[(&str, Section)] = &[
    ("quality", Section::Counts),
    ("reconciliation", Section::Counts),
    ("municipality", Section::Counts),
    ("organization", Section::Counts),
    ("level", Section::Counts),
    ("grade", Section::Counts),
    ("vacancies", Section::Counts),
    ("movements", Section::Movements),
    ("queues", Section::Queues),
    ("overdue", Section::Queues),
    ("exams", Section::Exams),
];

/// One table: its name, heading and rows (the first row is the header); its last `numeric`
/// columns hold numbers.
struct Table {
    name: &'static str,
    title: &'static str,
    rows: Vec<Vec<String>>,
    numeric: usize,
}

/// What a page shows.
struct Sheet {
    heading: String,
    /// The `year` the page was asked for, to keep in its links (`?year=…`, or empty).
    year_query: String,
    /// A line under the heading.
    intro: &'static str,
    tables: Vec<Table>,
    /// Shown under a table's heading, by table name.
    summaries: HashMap<&'static str, Markup>,
    /// Links to other years, if the page has them.
    years: Vec<String>,
}

/// Whose counts: one municipality's, or (`None`) the region's.
struct Scope {
    municipality: Option<String>,
    label: String,
}

/// The caller's scope, checked and journaled as the API checks a read of vacancies.
async fn scope(state: &PagesState, viewer: &Viewer) -> Result<Scope, ApiError> {
    let p = viewer.principal();
    let municipality = match p.role {
        Role::Region => None,
        _ => p.municipality.clone(),
    };
    viewer
        .auth
        .allow(
            &state.registry,
            Read::Vacancies {
                organization: None,
                municipality: municipality.clone(),
            },
        )
        .await?;
    let label = municipality.clone().unwrap_or_else(|| "регион".to_owned());
    Ok(Scope {
        municipality,
        label,
    })
}

fn year(q: &AnalyticsQuery) -> Result<Option<AcademicYear>, ApiError> {
    q.year
        .as_deref()
        .map(|t| {
            AcademicYear::parse(t)
                .map_err(|_| ApiError::bad_request("invalid_value", "academic year"))
        })
        .transpose()
}

fn header(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

async fn sheet(
    state: &PagesState,
    viewer: &Viewer,
    q: &AnalyticsQuery,
    section: Section,
) -> Result<Sheet, ApiError> {
    let scope = scope(state, viewer).await?;
    let year = year(q)?;
    match section {
        Section::Counts => counts::counts(state, &scope, year).await,
        Section::Movements => movements::movements(state, &scope).await,
        Section::Queues => queues::queue_sheet(state, &scope, year).await,
        Section::Exams => exams::exams(state, &scope, year).await,
    }
}

/// The charts of a page, each `(id, SVG)`, from its tables.
fn charts_of(section: Section, tables: &[Table]) -> Vec<(&'static str, String)> {
    let table = |name: &str| tables.iter().find(|t| t.name == name);
    let number = |r: &[String], i: usize| r.get(i).and_then(|n| n.parse::<i64>().ok());
    match section {
        Section::Counts => {
            // Learners by municipality and by grade (the column before the last).
            let chart = |t: &Table, label: &dyn Fn(&[String]) -> String| {
                let bars: Vec<(String, i64)> = t
                    .rows
                    .iter()
                    .skip(1)
                    .map(|r| {
                        let learners = number(r, r.len().saturating_sub(2)).unwrap_or(0);
                        (label(&r[..r.len().saturating_sub(4)]), learners)
                    })
                    .collect();
                charts::bars(t.title, &bars, 640, 300)
            };
            let mut out = Vec::new();
            if let Some(t) = table("municipality") {
                out.push(("chart-municipality", chart(t, &|k| k.join(" "))));
            }
            if let Some(t) = table("grade") {
                out.push((
                    "chart-grade",
                    chart(t, &|k| {
                        let grade = k.get(1).map_or("", |g| g.trim_start_matches('0'));
                        match k.first().map(String::as_str) {
                            Some("общее") => grade.to_owned(),
                            Some("дошкольное") => format!("ДО{grade}"),
                            Some("СПО") => format!("СПО{grade}"),
                            _ => format!("доп{grade}"),
                        }
                    }),
                ));
            }
            out
        }
        Section::Movements => table("movements")
            .map(|t| {
                let rows = &t.rows[1..];
                let labels: Vec<String> = rows.iter().map(|r| r[0].clone()).collect();
                let column = |i: usize| -> Vec<i64> {
                    rows.iter().map(|r| number(r, i).unwrap_or(0)).collect()
                };
                let arrivals: Vec<i64> = column(1)
                    .iter()
                    .zip(column(2))
                    .map(|(a, b)| a + b)
                    .collect();
                let departures: Vec<i64> = column(3)
                    .iter()
                    .zip(column(4))
                    .map(|(a, b)| a + b)
                    .collect();
                vec![(
                    "chart-movements",
                    charts::lines(
                        "Зачисления и выбытия по месяцам",
                        &labels,
                        &[
                            ("зачислено и прибыло", arrivals, RGBColor(31, 95, 168)),
                            ("выбыло", departures, RGBColor(192, 57, 43)),
                        ],
                        720,
                        320,
                    ),
                )]
            })
            .unwrap_or_default(),
        Section::Queues => table("queues")
            .map(|t| {
                let mut by_level: BTreeMap<String, i64> = BTreeMap::new();
                for r in &t.rows[1..] {
                    *by_level.entry(r[2].clone()).or_default() += number(r, 6).unwrap_or(0);
                }
                let bars: Vec<(String, i64)> = by_level.into_iter().collect();
                vec![(
                    "chart-queues",
                    charts::bars("Заявления в очереди по уровням", &bars, 640, 300),
                )]
            })
            .unwrap_or_default(),
        Section::Exams => Vec::new(),
    }
}

async fn render(
    state: PagesState,
    viewer: Viewer,
    q: AnalyticsQuery,
    section: Section,
) -> Response {
    let sheet = match sheet(&state, &viewer, &q, section).await {
        Ok(s) => s,
        Err(e) => return api_error(e, &viewer),
    };
    let figures = charts_of(section, &sheet.tables);
    let (_, path, title) = SECTIONS
        .iter()
        .find(|(s, _, _)| *s == section)
        .copied()
        .unwrap_or(SECTIONS[0]);
    let body = html! {
        h1 { (sheet.heading) }
        nav.tabs {
            @for (s, p, name) in SECTIONS {
                a.current[s == section] href=(p) { (name) }
                " "
            }
        }
        @if !sheet.years.is_empty() {
            p.years { "Учебный год: "
                @for y in &sheet.years { a href=(format!("{path}?year={y}")) { (y) } " " }
            }
        }
        @if !figures.is_empty() {
            div.charts {
                @for (id, svg) in &figures { figure id=(id) { (PreEscaped(svg)) } }
            }
        }
        p.muted { (sheet.intro) }
        @for t in &sheet.tables {
            section id=(t.name) {
                h2 { (t.title) " " a href=(format!("/analytics/{}.csv{}", t.name, sheet.year_query)) { "CSV" } }
                @if let Some(summary) = sheet.summaries.get(t.name) { (summary) }
                table {
                    @for (i, row) in t.rows.iter().enumerate() {
                        tr {
                            @for (j, cell) in row.iter().enumerate() {
                                @let numeric = j + t.numeric >= row.len();
                                @if i == 0 { th class=@if numeric { "num" } { (cell) } }
                                @else { td class=@if numeric { "num" } { (cell) } }
                            }
                        }
                    }
                }
            }
        }
    };
    page(title, Some(&viewer), body)
}

/// `GET /analytics?year=`: counts and the data-quality panel.
pub(crate) async fn analytics(
    State(state): State<PagesState>,
    viewer: Viewer,
    Query(q): Query<AnalyticsQuery>,
) -> Response {
    render(state, viewer, q, Section::Counts).await
}

/// `GET /analytics/movements`: enrollments and leavings per month.
pub(crate) async fn movements_page(
    State(state): State<PagesState>,
    viewer: Viewer,
    Query(q): Query<AnalyticsQuery>,
) -> Response {
    render(state, viewer, q, Section::Movements).await
}

/// `GET /analytics/queues?year=`: places and queues, overdue applications.
pub(crate) async fn queues_page(
    State(state): State<PagesState>,
    viewer: Viewer,
    Query(q): Query<AnalyticsQuery>,
) -> Response {
    render(state, viewer, q, Section::Queues).await
}

/// `GET /analytics/exams?year=`: exam results by organization and subject against the region.
pub(crate) async fn exams_page(
    State(state): State<PagesState>,
    viewer: Viewer,
    Query(q): Query<AnalyticsQuery>,
) -> Response {
    render(state, viewer, q, Section::Exams).await
}

/// `GET /analytics/{table}.csv?year=`.
pub(crate) async fn csv(
    State(state): State<PagesState>,
    viewer: Viewer,
    Path(file): Path<String>,
    Query(q): Query<AnalyticsQuery>,
) -> Response {
    let name = file.strip_suffix(".csv").unwrap_or(&file);
    let Some((_, section)) = TABLES.iter().find(|(t, _)| *t == name) else {
        // The caller's reach is checked first, so that a refusal looks the same for any table.
        return match scope(&state, &viewer).await {
            Ok(_) => api_error(
                ApiError::not_found("no_such_endpoint", "no such table"),
                &viewer,
            ),
            Err(e) => api_error(e, &viewer),
        };
    };
    let sheet = match sheet(&state, &viewer, &q, *section).await {
        Ok(s) => s,
        Err(e) => return api_error(e, &viewer),
    };
    match sheet.tables.into_iter().find(|t| t.name == name) {
        Some(t) => csv_response(t.name, t.rows),
        None => api_error(
            ApiError::not_found("no_such_endpoint", "no such table"),
            &viewer,
        ),
    }
}
