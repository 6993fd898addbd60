//! Exam results by organization and subject beside the region's mean.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use contingent_api::ApiError;
use contingent_domain::{AcademicYear, Mark, OrganizationId};
use contingent_projections::queries;

use super::{header, Scope, Sheet, Table};
use crate::PagesState;

/// An exam result's score: the ЕГЭ test score, or the 5-point mark of the ОГЭ and ГВЭ (a
/// pass or fail has none).
fn score(r: &queries::ExamResult) -> Option<i64> {
    match r.test_score {
        Some(s) => Some(s),
        None => r.mark.and_then(Mark::points).map(i64::from),
    }
}

/// Form, subject, municipality, organization and its id.
type ExamKey<'a> = (&'a str, &'a str, &'a str, &'a str, OrganizationId);

fn form_name(form: &str) -> &str {
    match form {
        "oge" => "ОГЭ",
        "ege" => "ЕГЭ",
        "gve" => "ГВЭ",
        other => other,
    }
}

pub(super) async fn exams(
    state: &PagesState,
    scope: &Scope,
    year: Option<AcademicYear>,
) -> Result<Sheet, ApiError> {
    let results = queries::exam_results(state.registry.read().pool()).await?;
    let year_of = |r: &queries::ExamResult| AcademicYear::containing(r.exam_date);
    let years: BTreeSet<AcademicYear> = results.iter().map(year_of).collect();
    let year = year.or_else(|| years.last().copied());
    let chosen: Vec<&queries::ExamResult> = results
        .iter()
        .filter(|r| year == Some(year_of(r)))
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
                r.organization_id,
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
