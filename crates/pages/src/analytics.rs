//! The analyst's pages (municipality, region), within the caller's reach: learners in classes
//! by municipality, organization, level and grade with the data-quality panel (`/analytics`),
//! enrollments and leavings per month (`/analytics/movements`), places and queues by
//! organization and level with the overdue applications (`/analytics/queues`), and exam results
//! by organization and subject beside the region's mean (`/analytics/exams`). Every table
//! downloads as CSV (`/analytics/{table}.csv`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{Datelike, NaiveDate, Utc};
use contingent_access::{Read, Role};
use contingent_api::ApiError;
use contingent_domain::AcademicYear;
use contingent_projections::queries::{self, VacancyFilter, VacancyRow};
use maud::{html, Markup, PreEscaped};
use plotters::style::RGBColor;
use serde::Deserialize;

use crate::charts;
use crate::layout::{api_error, csv_response, level_name, page};
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

fn today() -> String {
    Utc::now().date_naive().to_string()
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
        Section::Counts => counts(state, &scope, year).await,
        Section::Movements => movements(state, &scope).await,
        Section::Queues => queue_sheet(state, &scope, year).await,
        Section::Exams => exams(state, &scope, year).await,
    }
}

/// Sums of classes, places, learners and free places grouped by `key`.
fn group(
    rows: &[VacancyRow],
    key: &dyn Fn(&VacancyRow) -> Vec<String>,
    head: &[&str],
) -> Vec<Vec<String>> {
    let mut sums: BTreeMap<Vec<String>, (i64, i64, i64, i64)> = BTreeMap::new();
    for r in rows {
        let e = sums.entry(key(r)).or_default();
        e.0 += 1;
        e.1 += r.capacity;
        e.2 += r.enrolled;
        e.3 += r.free.max(0);
    }
    let mut out = vec![head
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
}

async fn counts(
    state: &PagesState,
    scope: &Scope,
    year: Option<AcademicYear>,
) -> Result<Sheet, ApiError> {
    let registry = &state.registry;
    let year = year.unwrap_or_else(|| AcademicYear::containing(Utc::now().date_naive()));
    let rows = queries::vacancies(
        registry.read().pool(),
        &VacancyFilter {
            municipality: scope.municipality.clone(),
            academic_year: Some(year.to_string()),
            ..VacancyFilter::default()
        },
    )
    .await?;
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
    let mut quality = vec![header(&[
        "муниципалитет",
        "организация",
        "класс",
        "мест",
        "зачислено (витрина)",
        "зачислено (журнал событий)",
        "нарушение",
    ])];
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
    let problems = quality.len() - 1;
    let reconciled = reconcile(state, scope, &today()).await?;
    let mut summaries = HashMap::new();
    summaries.insert(
        "quality",
        html! {
            p #quality-summary {
                "Сверено классов: " (rows.len()) ". "
                @if problems == 0 { span.ok { "Витрина совпадает с журналом событий, переполненных классов нет." } }
                @else { span.bad { "Нарушений: " (problems) "." } }
            }
        },
    );
    let reconciliation = match reconciled {
        Some(r) => {
            summaries.insert(
                "reconciliation",
                html! {
                    p #reconciliation-summary data-position=(r.position) {
                        "Пересчитано по журналу событий до позиции " b { (r.position) }
                        " (на ней же стоят витрины). "
                        @if r.differences == 0 { span.ok { "Счёт витрин совпадает со счётом по журналу." } }
                        @else { span.bad { "Расхождений: " (r.differences) "." } }
                        " Просроченных заявлений: "
                        a href="/analytics/queues#overdue" { b.bad[r.overdue > 0] { (r.overdue) } } "."
                    }
                },
            );
            r.table
        }
        None => {
            summaries.insert(
                "reconciliation",
                html! {
                    p #reconciliation-summary {
                        span.bad { "Сверить с журналом не удалось: витрины стоят на разных позициях журнала (журнал меняется); откройте страницу ещё раз." }
                    }
                },
            );
            Table {
                name: "reconciliation",
                title: "",
                rows: vec![reconciliation_header()],
                numeric: 2,
            }
        }
    };
    let tables = vec![
        Table {
            name: "quality",
            title: "Качество данных: расхождения и переполненные классы",
            rows: quality,
            numeric: 4,
        },
        Table {
            title: "Качество данных: счёт витрин и счёт по журналу событий",
            ..reconciliation
        },
        Table {
            name: "municipality",
            title: "По муниципалитетам",
            rows: group(&rows, &|r| vec![r.municipality.clone()], &["муниципалитет"]),
            numeric: 4,
        },
        Table {
            name: "organization",
            title: "По организациям",
            rows: group(
                &rows,
                &|r| vec![r.municipality.clone(), r.organization.clone()],
                &["муниципалитет", "организация"],
            ),
            numeric: 4,
        },
        Table {
            name: "level",
            title: "По уровням образования",
            rows: group(
                &rows,
                &|r| vec![level_name(&r.level).to_owned()],
                &["уровень"],
            ),
            numeric: 4,
        },
        Table {
            name: "grade",
            title: "По параллелям",
            rows: group(
                &rows,
                &|r| vec![level_name(&r.level).to_owned(), format!("{:02}", r.grade)],
                &["уровень", "параллель"],
            ),
            numeric: 4,
        },
        Table {
            name: "vacancies",
            title: "Классы со свободными местами",
            rows: std::iter::once(header(&[
                "муниципалитет",
                "организация",
                "класс",
                "уровень",
                "параллель",
                "мест",
                "зачислено",
                "свободно",
            ]))
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
            numeric: 4,
        },
    ];
    Ok(Sheet {
        heading: format!("Контингент: {}, {year} учебный год", scope.label),
        year_query: format!("?year={year}"),
        intro: "Обучающиеся в классах и группах по данным о местах (витрина вакантных мест); численные столбцы справа.",
        tables,
        summaries,
        years: Vec::new(),
    })
}

fn reconciliation_header() -> Vec<String> {
    header(&[
        "показатель",
        "муниципалитет",
        "организация",
        "итог",
        "витрина",
        "журнал событий",
    ])
}

/// The read models' counts beside the same counts folded from the log up to the position the
/// read models stand at.
struct Reconciled {
    position: u64,
    table: Table,
    differences: usize,
    overdue: i64,
}

/// How often the read models are asked again when they stand at different positions.
const ATTEMPTS: usize = 5;

async fn reconcile(
    state: &PagesState,
    scope: &Scope,
    as_of: &str,
) -> Result<Option<Reconciled>, ApiError> {
    let registry = &state.registry;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let counts = queries::reconciliation_counts(registry.read().pool()).await?;
        let at = |model: &str| counts.positions.get(model).copied().unwrap_or(0);
        let position = at("register");
        if at("vacancies") != position || at("diary") != position {
            continue;
        }
        let mut tally = state.tally.lock().await;
        tally.advance_to(registry, position).await?;
        if tally.position != position {
            return Ok(None);
        }
        // Measures: open enrollments, places taken, pending applications, overdue ones.
        const MEASURES: [&str; 4] = [
            "Открытые зачисления (реестр)",
            "Занятые места (витрина мест)",
            "Заявления в очереди (витрина мест)",
            "Из них просрочены",
        ];
        let mut read: BTreeMap<String, [i64; 4]> = BTreeMap::new();
        for (org, n) in &counts.open_enrollments {
            read.entry(org.clone()).or_default()[0] += n;
        }
        for (org, n) in &counts.places_taken {
            read.entry(org.clone()).or_default()[1] += n;
        }
        for ((org, due), n) in &counts.pending {
            let e = read.entry(org.clone()).or_default();
            e[2] += n;
            if queries::overdue("pending", due, as_of) {
                e[3] += n;
            }
        }
        let mut logged: BTreeMap<String, [i64; 4]> = BTreeMap::new();
        for (org, c) in tally.by_organization(as_of) {
            logged.insert(
                org.to_string(),
                [c.open_enrollments, c.open_enrollments, c.pending, c.overdue],
            );
        }
        let names: HashMap<String, &(String, String)> = tally
            .organizations
            .iter()
            .map(|(id, n)| (id.to_string(), n))
            .collect();
        let in_scope = |org: &str| match (&scope.municipality, names.get(org)) {
            (None, _) => true,
            (Some(m), Some((municipality, _))) => municipality == m,
            (Some(_), None) => false,
        };
        let orgs: BTreeSet<&String> = read
            .keys()
            .chain(logged.keys())
            .filter(|o| in_scope(o))
            .collect();
        let verdict = |a: i64, b: i64| {
            if a == b {
                "сходится"
            } else {
                "расходится"
            }
        };
        let mut rows = vec![reconciliation_header()];
        let mut differences = 0;
        let mut totals = [[0i64; 4]; 2];
        for org in &orgs {
            for i in 0..4 {
                totals[0][i] += read.get(*org).map_or(0, |c| c[i]);
                totals[1][i] += logged.get(*org).map_or(0, |c| c[i]);
            }
        }
        let all = if scope.municipality.is_some() {
            scope.label.clone()
        } else {
            "все".to_owned()
        };
        let mut total_rows: Vec<(&str, i64, i64)> = MEASURES
            .iter()
            .enumerate()
            .map(|(i, m)| (*m, totals[0][i], totals[1][i]))
            .collect();
        if scope.municipality.is_none() {
            total_rows.push(("Обучающиеся в реестре", counts.learners, tally.learners()));
            total_rows.push((
                "Результаты экзаменов (дневники)",
                counts.exam_results,
                tally.exam_results,
            ));
        }
        for (measure, a, b) in total_rows {
            differences += usize::from(a != b);
            rows.push(vec![
                measure.to_owned(),
                all.clone(),
                "все".to_owned(),
                verdict(a, b).to_owned(),
                a.to_string(),
                b.to_string(),
            ]);
        }
        // Each organization whose counts differ.
        for org in &orgs {
            let a = read.get(*org).copied().unwrap_or_default();
            let b = logged.get(*org).copied().unwrap_or_default();
            for i in 0..4 {
                if a[i] != b[i] {
                    let (municipality, name) = names
                        .get(*org)
                        .map_or(("—", org.as_str()), |(m, n)| (m.as_str(), n.as_str()));
                    rows.push(vec![
                        MEASURES[i].to_owned(),
                        municipality.to_owned(),
                        name.to_owned(),
                        verdict(a[i], b[i]).to_owned(),
                        a[i].to_string(),
                        b[i].to_string(),
                    ]);
                }
            }
        }
        return Ok(Some(Reconciled {
            position,
            table: Table {
                name: "reconciliation",
                title: "",
                rows,
                numeric: 2,
            },
            differences,
            overdue: totals[0][3],
        }));
    }
    Ok(None)
}

/// The months from the first to the last, `YYYY-MM`, none missing.
fn months_between(first: &str, last: &str) -> Vec<String> {
    let parse = |m: &str| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok();
    let (Some(mut at), Some(end)) = (parse(first), parse(last)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while at <= end {
        out.push(format!("{:04}-{:02}", at.year(), at.month()));
        at = at
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(NaiveDate::MAX);
    }
    out
}

async fn movements(state: &PagesState, scope: &Scope) -> Result<Sheet, ApiError> {
    let found =
        queries::movements_by_month(state.registry.read().pool(), scope.municipality.as_deref())
            .await?;
    let by_month: HashMap<&str, &queries::MonthMovements> =
        found.iter().map(|m| (m.month.as_str(), m)).collect();
    let months = match (found.first(), found.last()) {
        (Some(a), Some(b)) => months_between(&a.month, &b.month),
        _ => Vec::new(),
    };
    let mut rows = vec![header(&[
        "месяц",
        "зачислено",
        "прибыло переводом",
        "выбыло",
        "выбыло переводом",
    ])];
    for month in &months {
        let m = by_month.get(month.as_str());
        rows.push(vec![
            month.clone(),
            m.map_or(0, |m| m.enrolled).to_string(),
            m.map_or(0, |m| m.transferred_in).to_string(),
            m.map_or(0, |m| m.left).to_string(),
            m.map_or(0, |m| m.transferred_out).to_string(),
        ]);
    }
    Ok(Sheet {
        heading: format!("Движение контингента по месяцам: {}", scope.label),
        year_query: String::new(),
        intro: "Зачисления и выбытия по месяцам из движения обучающихся в реестре: зачисление считается в организации, куда зачислен, выбытие — в организации, откуда выбыл, перевод в другую организацию — в обеих. Смерть организацию не называет и здесь не считается.",
        tables: vec![Table {
            name: "movements",
            title: "Зачисления и выбытия по месяцам",
            rows,
            numeric: 4,
        }],
        summaries: HashMap::new(),
        years: Vec::new(),
    })
}

async fn queue_sheet(
    state: &PagesState,
    scope: &Scope,
    year: Option<AcademicYear>,
) -> Result<Sheet, ApiError> {
    let pool = state.registry.read().pool();
    let year = year.unwrap_or_else(|| AcademicYear::containing(Utc::now().date_naive()));
    let classes = queries::vacancies(
        pool,
        &VacancyFilter {
            municipality: scope.municipality.clone(),
            academic_year: Some(year.to_string()),
            ..VacancyFilter::default()
        },
    )
    .await?;
    let today = today();
    let pending =
        queries::pending_applications(pool, scope.municipality.as_deref(), &today).await?;
    // (municipality, organization, organization id, level) → classes, places, free, pending,
    // overdue.
    let mut by: BTreeMap<(String, String, String, String), [i64; 5]> = BTreeMap::new();
    for c in &classes {
        let e = by
            .entry((
                c.municipality.clone(),
                c.organization.clone(),
                c.organization_id.clone(),
                c.level.clone(),
            ))
            .or_default();
        e[0] += 1;
        e[1] += c.capacity;
        e[2] += c.free.max(0);
    }
    for a in &pending {
        let e = by
            .entry((
                a.municipality.clone(),
                a.organization.clone(),
                a.organization_id.clone(),
                a.level.clone(),
            ))
            .or_default();
        e[3] += 1;
        e[4] += i64::from(a.overdue);
    }
    let mut queues = vec![header(&[
        "муниципалитет",
        "организация",
        "уровень",
        "классов",
        "мест",
        "свободно",
        "в очереди",
        "просрочено",
    ])];
    let mut by_level: BTreeMap<String, i64> = BTreeMap::new();
    for ((municipality, organization, _, level), n) in &by {
        *by_level.entry(level_name(level).to_owned()).or_default() += n[3];
        let mut row = vec![
            municipality.clone(),
            organization.clone(),
            level_name(level).to_owned(),
        ];
        row.extend(n.iter().map(i64::to_string));
        queues.push(row);
    }
    let mut overdue = vec![header(&[
        "муниципалитет",
        "организация",
        "заявление",
        "уровень",
        "учебный год",
        "льгота",
        "подано",
        "решить до",
        "параллель",
    ])];
    for a in pending.iter().filter(|a| a.overdue) {
        overdue.push(vec![
            a.municipality.clone(),
            a.organization.clone(),
            a.application_id.clone(),
            level_name(&a.level).to_owned(),
            a.academic_year.clone(),
            a.priority.clone(),
            a.submitted_on.clone(),
            a.due_on.clone(),
            a.grade.to_string(),
        ]);
    }
    let waiting = pending.len();
    let late = overdue.len() - 1;
    let mut summaries = HashMap::new();
    summaries.insert(
        "queues",
        html! {
            p #queues-summary {
                "Ожидают решения: " b { (waiting) } ", из них просрочено: " b.bad { (late) } "."
            }
        },
    );
    Ok(Sheet {
        heading: format!("Места и очереди: {}, {year} учебный год", scope.label),
        year_query: format!("?year={year}"),
        intro: "Места и свободные места в классах и группах учебного года; заявления, ожидающие решения (всех лет), и просроченные из них — по тому же правилу, что в очереди организации (срок решения прошёл).",
        tables: vec![
            Table {
                name: "queues",
                title: "Места и очереди по организациям и уровням",
                rows: queues,
                numeric: 5,
            },
            Table {
                name: "overdue",
                title: "Просроченные заявления",
                rows: overdue,
                numeric: 1,
            },
        ],
        summaries,
        years: Vec::new(),
    })
}

/// An exam result's score: the ЕГЭ test score, or the 5-point mark of the ОГЭ and ГВЭ (a
/// pass or fail has none).
fn score(r: &queries::ExamResult) -> Option<i64> {
    match r.test_score {
        Some(s) => Some(s),
        None => r.mark.as_deref().and_then(|m| m.parse().ok()),
    }
}

/// Form, subject, municipality, organization and its id.
type ExamKey<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

fn form_name(form: &str) -> &str {
    match form {
        "oge" => "ОГЭ",
        "ege" => "ЕГЭ",
        "gve" => "ГВЭ",
        other => other,
    }
}

async fn exams(
    state: &PagesState,
    scope: &Scope,
    year: Option<AcademicYear>,
) -> Result<Sheet, ApiError> {
    let results = queries::exam_results(state.registry.read().pool()).await?;
    let year_of = |r: &queries::ExamResult| {
        NaiveDate::parse_from_str(&r.exam_date, "%Y-%m-%d")
            .ok()
            .map(AcademicYear::containing)
    };
    let years: BTreeSet<AcademicYear> = results.iter().filter_map(year_of).collect();
    let year = year.or_else(|| years.last().copied());
    let chosen: Vec<&queries::ExamResult> = results
        .iter()
        .filter(|r| year.is_some() && year_of(r) == year)
        .collect();
    // (form, subject) → sum and count of scores over the region.
    let mut region: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
    // (form, subject, municipality, organization, id) → results, sum and count of scores.
    let mut by_org: BTreeMap<ExamKey, (i64, i64, i64)> = BTreeMap::new();
    for r in &chosen {
        let s = score(r);
        let e = region
            .entry((r.form.as_str(), r.subject.as_str()))
            .or_default();
        if let Some(s) = s {
            e.0 += s;
            e.1 += 1;
        }
        if scope
            .municipality
            .as_ref()
            .is_some_and(|m| *m != r.municipality)
        {
            continue;
        }
        let e = by_org
            .entry((
                r.form.as_str(),
                r.subject.as_str(),
                r.municipality.as_str(),
                r.organization.as_str(),
                r.organization_id.as_str(),
            ))
            .or_default();
        e.0 += 1;
        if let Some(s) = s {
            e.1 += s;
            e.2 += 1;
        }
    }
    let mean = |sum: i64, n: i64| (n > 0).then(|| sum as f64 / n as f64);
    let shown = |form: &str, v: f64| {
        if form == "ege" {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        }
    };
    let mut rows = vec![header(&[
        "форма",
        "предмет",
        "муниципалитет",
        "организация",
        "результатов",
        "средний балл",
        "средний по региону",
        "разница",
    ])];
    for ((form, subject, municipality, organization, _), (results, sum, scored)) in &by_org {
        let own = mean(*sum, *scored);
        let all = region
            .get(&(*form, *subject))
            .and_then(|(sum, n)| mean(*sum, *n));
        let difference = match (own, all) {
            (Some(a), Some(b)) if *form == "ege" => format!("{:+.1}", a - b),
            (Some(a), Some(b)) => format!("{:+.2}", a - b),
            _ => "—".to_owned(),
        };
        rows.push(vec![
            form_name(form).to_owned(),
            (*subject).to_owned(),
            (*municipality).to_owned(),
            (*organization).to_owned(),
            results.to_string(),
            own.map_or_else(|| "—".to_owned(), |v| shown(form, v)),
            all.map_or_else(|| "—".to_owned(), |v| shown(form, v)),
            difference,
        ]);
    }
    let year_label = year.map_or_else(|| "нет результатов".to_owned(), |y| y.to_string());
    Ok(Sheet {
        heading: format!("Результаты экзаменов: {}, {year_label}", scope.label),
        year_query: year.map_or_else(String::new, |y| format!("?year={y}")),
        intro: "Результаты ГИА по организациям и предметам рядом со средним по региону (мониторинг качества): средний тестовый балл ЕГЭ, средняя отметка ОГЭ и ГВЭ; организация — та, где обучающийся числился на основном общем образовании в день экзамена.",
        tables: vec![Table {
            name: "exams",
            title: "Результаты по организациям и предметам",
            rows,
            numeric: 4,
        }],
        summaries: HashMap::new(),
        years: years.iter().map(ToString::to_string).collect(),
    })
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
