//! Enrollments and leavings per month.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use contingent_api::ApiError;
use contingent_projections::queries;

use super::{header, Scope, Sheet, Table};
use crate::PagesState;

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

pub(super) async fn movements(state: &PagesState, scope: &Scope) -> Result<Sheet, ApiError> {
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
