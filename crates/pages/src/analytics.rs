//! The analyst's page (municipality, region): learners in classes by municipality,
//! organization, level and grade, and free places, from the vacancies read model within the
//! caller's reach; every table downloads as CSV.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::Utc;
use contingent_access::{Read, Role};
use contingent_api::ApiError;
use contingent_domain::AcademicYear;
use contingent_projections::queries::{self, VacancyFilter, VacancyRow};
use maud::html;
use serde::Deserialize;

use crate::layout::{api_error, csv_response, page};
use crate::session::Viewer;
use crate::PagesState;

#[derive(Deserialize, Default)]
pub(crate) struct AnalyticsQuery {
    year: Option<String>,
}

/// One table: its name, heading and rows (the first row is the header).
struct Table {
    name: &'static str,
    title: &'static str,
    rows: Vec<Vec<String>>,
}

async fn tables(
    state: &PagesState,
    viewer: &Viewer,
    q: &AnalyticsQuery,
) -> Result<(AcademicYear, Vec<Table>), ApiError> {
    let registry = &state.registry;
    let p = viewer.principal();
    let municipality = match p.role {
        Role::Region => None,
        _ => p.municipality.clone(),
    };
    viewer
        .auth
        .allow(
            registry,
            Read::Vacancies {
                organization: None,
                municipality: municipality.clone(),
            },
        )
        .await?;
    let year = match q.year.as_deref() {
        Some(t) => AcademicYear::parse(t)
            .map_err(|_| ApiError::bad_request("invalid_value", "academic year"))?,
        None => AcademicYear::containing(Utc::now().date_naive()),
    };
    let rows = queries::vacancies(
        registry.read().pool(),
        &VacancyFilter {
            municipality,
            academic_year: Some(year.to_string()),
            ..VacancyFilter::default()
        },
    )
    .await?;
    let group = |key: &dyn Fn(&VacancyRow) -> Vec<String>, header: &[&str]| {
        let mut sums: BTreeMap<Vec<String>, (i64, i64, i64, i64)> = BTreeMap::new();
        for r in &rows {
            let e = sums.entry(key(r)).or_default();
            e.0 += 1;
            e.1 += r.capacity;
            e.2 += r.enrolled;
            e.3 += r.free.max(0);
        }
        let mut out = vec![header
            .iter()
            .map(|h| (*h).to_owned())
            .chain(["классов", "мест", "обучающихся", "свободно"].map(str::to_owned))
            .collect::<Vec<_>>()];
        for (k, (classes, capacity, enrolled, free)) in sums {
            let mut row = k;
            row.extend([classes, capacity, enrolled, free].map(|n| n.to_string()));
            out.push(row);
        }
        out
    };
    let tables = vec![
        Table {
            name: "municipality",
            title: "По муниципалитетам",
            rows: group(&|r| vec![r.municipality.clone()], &["муниципалитет"]),
        },
        Table {
            name: "organization",
            title: "По организациям",
            rows: group(
                &|r| vec![r.municipality.clone(), r.organization.clone()],
                &["муниципалитет", "организация"],
            ),
        },
        Table {
            name: "level",
            title: "По уровням образования",
            rows: group(&|r| vec![r.level.clone()], &["уровень"]),
        },
        Table {
            name: "grade",
            title: "По параллелям",
            rows: group(
                &|r| vec![r.level.clone(), format!("{:02}", r.grade)],
                &["уровень", "параллель"],
            ),
        },
        Table {
            name: "vacancies",
            title: "Классы со свободными местами",
            rows: std::iter::once(
                [
                    "муниципалитет",
                    "организация",
                    "класс",
                    "уровень",
                    "параллель",
                    "мест",
                    "зачислено",
                    "свободно",
                ]
                .map(str::to_owned)
                .to_vec(),
            )
            .chain(rows.iter().filter(|r| r.free > 0).map(|r| {
                vec![
                    r.municipality.clone(),
                    r.organization.clone(),
                    r.class_name.clone(),
                    r.level.clone(),
                    r.grade.to_string(),
                    r.capacity.to_string(),
                    r.enrolled.to_string(),
                    r.free.to_string(),
                ]
            }))
            .collect(),
        },
    ];
    Ok((year, tables))
}

/// `GET /analytics?year=`.
pub(crate) async fn analytics(
    State(state): State<PagesState>,
    viewer: Viewer,
    Query(q): Query<AnalyticsQuery>,
) -> Response {
    let (year, tables) = match tables(&state, &viewer, &q).await {
        Ok(t) => t,
        Err(e) => return api_error(e, &viewer),
    };
    let scope = match &viewer.principal().municipality {
        Some(m) if viewer.principal().role != Role::Region => m.clone(),
        _ => "регион".to_owned(),
    };
    let body = html! {
        h1 { "Контингент: " (scope) ", " (year) " учебный год" }
        p.muted { "Обучающиеся в классах и группах по данным о местах (витрина вакантных мест); численные столбцы справа." }
        @for t in &tables {
            section id=(t.name) {
                h2 { (t.title) " " a href=(format!("/analytics/{}.csv?year={year}", t.name)) { "CSV" } }
                table {
                    @for (i, row) in t.rows.iter().enumerate() {
                        tr {
                            @for (j, cell) in row.iter().enumerate() {
                                @let numeric = j + 4 >= row.len();
                                @if i == 0 { th class=@if numeric { "num" } { (cell) } }
                                @else { td class=@if numeric { "num" } { (cell) } }
                            }
                        }
                    }
                }
            }
        }
    };
    page("Аналитика", Some(&viewer), body)
}

/// `GET /analytics/{table}.csv?year=`.
pub(crate) async fn csv(
    State(state): State<PagesState>,
    viewer: Viewer,
    Path(file): Path<String>,
    Query(q): Query<AnalyticsQuery>,
) -> Response {
    let (_, tables) = match tables(&state, &viewer, &q).await {
        Ok(t) => t,
        Err(e) => return api_error(e, &viewer),
    };
    let name = file.strip_suffix(".csv").unwrap_or(&file);
    match tables.into_iter().find(|t| t.name == name) {
        Some(t) => csv_response(t.name, t.rows),
        None => api_error(
            ApiError::not_found("no_such_endpoint", "no such table"),
            &viewer,
        ),
    }
}
