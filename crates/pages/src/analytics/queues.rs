//! Places and queues by organization and level, and the overdue applications.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use contingent_api::ApiError;
use contingent_domain::{AcademicYear, OrganizationId};
use contingent_projections::queries::{self, VacancyFilter};
use maud::html;

use super::{header, today, Scope, Sheet, Table};
use crate::layout::level_name;
use crate::PagesState;

pub(super) async fn queue_sheet(
    state: &PagesState,
    scope: &Scope,
    year: Option<AcademicYear>,
) -> Result<Sheet, ApiError> {
    let pool = state.registry.read().pool();
    let year = year.unwrap_or_else(|| AcademicYear::containing(Utc::now().date_naive()));
    let classes = queries::vacancies(
        state.registry.read(),
        &VacancyFilter {
            municipality: scope.municipality.clone(),
            academic_year: Some(year),
            ..VacancyFilter::default()
        },
    )
    .await?;
    let today = today();
    let pending = queries::pending_applications(pool, scope.municipality.as_deref(), today).await?;
    // (municipality, organization, organization id, level) → classes, places, free, pending,
    // overdue.
    let mut by: BTreeMap<(String, String, OrganizationId, &str), [i64; 5]> = BTreeMap::new();
    for c in &classes {
        let e = by
            .entry((
                c.municipality.clone(),
                c.organization.clone(),
                c.organization_id,
                c.level.as_str(),
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
                a.organization_id,
                a.level.as_str(),
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
            a.application_id.to_string(),
            level_name(a.level.as_str()).to_owned(),
            a.academic_year.clone(),
            a.priority.to_string(),
            a.submitted_on.to_string(),
            a.due_on.to_string(),
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
