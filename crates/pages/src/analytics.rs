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
use maud::{html, PreEscaped};
use serde::Deserialize;

use crate::charts;
use crate::layout::{api_error, csv_response, level_name, page};
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
    // Data quality: each class's enrolled count in the read model against the writer's state,
    // folded from the log, and classes over capacity (there must be none).
    let from_log: Vec<Option<i64>> = registry.read_state(|s| {
        rows.iter()
            .map(|r| {
                r.class_id
                    .parse::<uuid::Uuid>()
                    .ok()
                    .and_then(|id| s.class(id.into()))
                    .map(|c| i64::from(c.enrolled))
            })
            .collect()
    });
    let mut quality = vec![[
        "муниципалитет",
        "организация",
        "класс",
        "мест",
        "зачислено (витрина)",
        "зачислено (журнал событий)",
        "нарушение",
    ]
    .map(str::to_owned)
    .to_vec()];
    for (r, logged) in rows.iter().zip(&from_log) {
        let problem = if *logged != Some(r.enrolled) {
            "витрина расходится с журналом"
        } else if r.enrolled > r.capacity {
            "сверх вместимости"
        } else {
            continue;
        };
        quality.push(vec![
            r.municipality.clone(),
            r.organization.clone(),
            r.class_name.clone(),
            r.capacity.to_string(),
            r.enrolled.to_string(),
            logged.map_or_else(|| "нет класса".to_owned(), |n| n.to_string()),
            problem.to_owned(),
        ]);
    }
    let tables = vec![
        Table {
            name: "quality",
            title: "Качество данных: расхождения и переполненные классы",
            rows: quality,
        },
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
            rows: group(&|r| vec![level_name(&r.level).to_owned()], &["уровень"]),
        },
        Table {
            name: "grade",
            title: "По параллелям",
            rows: group(
                &|r| vec![level_name(&r.level).to_owned(), format!("{:02}", r.grade)],
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
                    level_name(&r.level).to_owned(),
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
    // Every class is in exactly one row of the table by municipality, with its count of classes.
    let checked: usize = tables
        .iter()
        .find(|t| t.name == "municipality")
        .map_or(0, |t| {
            t.rows
                .iter()
                .skip(1)
                .filter_map(|r| r.get(1).and_then(|n| n.parse::<usize>().ok()))
                .sum()
        });
    let scope = match &viewer.principal().municipality {
        Some(m) if viewer.principal().role != Role::Region => m.clone(),
        _ => "регион".to_owned(),
    };
    // Charts of the first and the fourth table (learners by municipality, by grade).
    let chart = |t: &Table, label: &dyn Fn(&[String]) -> String| {
        let bars: Vec<(String, i64)> = t
            .rows
            .iter()
            .skip(1)
            .map(|r| {
                let learners = r
                    .get(r.len().saturating_sub(2))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                (label(&r[..r.len().saturating_sub(4)]), learners)
            })
            .collect();
        charts::bars(t.title, &bars, 640, 300)
    };
    let by_municipality = tables
        .iter()
        .find(|t| t.name == "municipality")
        .map(|t| chart(t, &|k| k.join(" ")))
        .unwrap_or_default();
    let by_grade = tables
        .iter()
        .find(|t| t.name == "grade")
        .map(|t| {
            chart(t, &|k| {
                let grade = k.get(1).map_or("", |g| g.trim_start_matches('0'));
                match k.first().map(String::as_str) {
                    Some("общее") => grade.to_owned(),
                    Some("дошкольное") => format!("ДО{grade}"),
                    Some("СПО") => format!("СПО{grade}"),
                    _ => format!("доп{grade}"),
                }
            })
        })
        .unwrap_or_default();
    let body = html! {
        h1 { "Контингент: " (scope) ", " (year) " учебный год" }
        div.charts {
            figure #chart-municipality { (PreEscaped(by_municipality)) }
            figure #chart-grade { (PreEscaped(by_grade)) }
        }
        p.muted { "Обучающиеся в классах и группах по данным о местах (витрина вакантных мест); численные столбцы справа." }
        @for t in &tables {
            section id=(t.name) {
                h2 { (t.title) " " a href=(format!("/analytics/{}.csv?year={year}", t.name)) { "CSV" } }
                @if t.name == "quality" {
                    p #quality-summary {
                        "Сверено классов: " (checked) ". "
                        @if t.rows.len() == 1 { span.ok { "Витрина совпадает с журналом событий, переполненных классов нет." } }
                        @else { span.bad { "Нарушений: " (t.rows.len() - 1) "." } }
                    }
                }
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
