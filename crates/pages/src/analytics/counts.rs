//! The counts page: learners in classes by municipality, organization, level and grade, and the
//! data-quality panel, which reconciles the read models' counts with counts folded from the log.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use contingent_api::ApiError;
use contingent_domain::AcademicYear;
use contingent_projections::queries::{self, VacancyFilter, VacancyRow};
use maud::html;

use super::{header, today, Scope, Sheet, Table};
use crate::layout::level_name;
use crate::PagesState;

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

pub(super) async fn counts(
    state: &PagesState,
    scope: &Scope,
    year: Option<AcademicYear>,
) -> Result<Sheet, ApiError> {
    let registry = &state.registry;
    let year = year.unwrap_or_else(|| AcademicYear::containing(Utc::now().date_naive()));
    let rows = queries::vacancies(
        registry.read(),
        &VacancyFilter {
            municipality: scope.municipality.clone(),
            academic_year: Some(year),
            ..VacancyFilter::default()
        },
    )
    .await?;
    // Data quality: each class's enrolled count in the read model against the writer's state,
    // folded from the log, and classes over capacity (there must be none).
    let from_log: Vec<Option<i64>> = registry.read_state(|s| {
        rows.iter()
            .map(|r| s.class(r.class_id).map(|c| i64::from(c.enrolled)))
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
    let reconciled = reconcile(state, scope, today()).await?;
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
        Ok(r) => {
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
        Err(not_yet) => {
            summaries.insert(
                "reconciliation",
                html! {
                    p #reconciliation-summary {
                        @match not_yet {
                            NotYet::Moving => span.bad { "Сверить с журналом не удалось: витрины стоят на разных позициях журнала (журнал меняется); откройте страницу ещё раз." },
                            NotYet::Folding(f) => span #reconciliation-folding data-at=(f.at) data-of=(f.of) {
                                "Счёт по журналу событий ещё идёт: пройдено " b { (f.at) } " из " b { (f.of) }
                                " событий. Сверка появится, когда он дойдёт до позиции витрин; откройте страницу позже."
                            },
                        }
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
                &|r| vec![level_name(r.level.as_str()).to_owned()],
                &["уровень"],
            ),
            numeric: 4,
        },
        Table {
            name: "grade",
            title: "По параллелям",
            rows: group(
                &rows,
                &|r| {
                    vec![
                        level_name(r.level.as_str()).to_owned(),
                        format!("{:02}", r.grade),
                    ]
                },
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
                    level_name(r.level.as_str()).to_owned(),
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

/// Why the panel compares nothing this time.
enum NotYet {
    /// The read models stood at different positions on every attempt (the log moves).
    Moving,
    /// The log is being folded in the background (the first view after a start on a long log).
    Folding(crate::tally::Folding),
}

async fn reconcile(
    state: &PagesState,
    scope: &Scope,
    as_of: NaiveDate,
) -> Result<Result<Reconciled, NotYet>, ApiError> {
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
        let tally = match state.fold.at(registry, position).await? {
            Ok(tally) => tally,
            Err(folding) => return Ok(Err(NotYet::Folding(folding))),
        };
        if tally.position != position {
            // The read models stand past the end of the log: nothing else can be compared.
            let mut rows = vec![reconciliation_header()];
            rows.push(vec![
                "Позиция в журнале событий".to_owned(),
                "все".to_owned(),
                "все".to_owned(),
                "расходится".to_owned(),
                position.to_string(),
                tally.position.to_string(),
            ]);
            return Ok(Ok(Reconciled {
                position: tally.position,
                table: Table {
                    name: "reconciliation",
                    title: "",
                    rows,
                    numeric: 2,
                },
                differences: 1,
                overdue: 0,
            }));
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
            read.entry(org.to_string()).or_default()[0] += n;
        }
        for (org, n) in &counts.places_taken {
            read.entry(org.to_string()).or_default()[1] += n;
        }
        for ((org, due), n) in &counts.pending {
            let e = read.entry(org.to_string()).or_default();
            e[2] += n;
            if queries::overdue("pending", *due, as_of) {
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
        return Ok(Ok(Reconciled {
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
    Ok(Err(NotYet::Moving))
}
