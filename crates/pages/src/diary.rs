//! The parent's and learner's diary: marks by subject and term with averages, attendance and
//! exam results, and switching between the children linked to the parent's SNILS.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use contingent_access::{Read, Role};
use contingent_api::ApiError;
use contingent_domain::{AcademicYear, LearnerId, Mark, SnilsOwner};
use contingent_projections::queries;
use maud::html;
use serde::Deserialize;

use crate::layout::{api_error, or_dash, page, period_name};
use crate::session::Viewer;
use crate::PagesState;

/// The learners whose diary the caller may open as theirs: a parent's children (the guardian
/// links naming their SNILS), or a learner themselves.
fn own_learners(state: &PagesState, viewer: &Viewer) -> Vec<LearnerId> {
    let p = viewer.principal();
    let Some(snils) = p.snils else {
        return Vec::new();
    };
    state.registry.read_state(|s| match p.role {
        Role::Parent => {
            let mut ids: Vec<LearnerId> = s
                .learners()
                .filter(|(_, l)| l.guardians.contains(&snils))
                .map(|(id, _)| *id)
                .collect();
            ids.sort_by_key(|id| id.to_string());
            ids
        }
        Role::Learner => match s.snils_owner(snils) {
            Some(SnilsOwner::Learner(id)) => vec![id],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    })
}

/// `GET /diary`: the first of the caller's children (or themselves), or a page saying there is
/// none.
pub(crate) async fn children(State(state): State<PagesState>, viewer: Viewer) -> Response {
    match own_learners(&state, &viewer).first() {
        Some(id) => Redirect::to(&format!("/diary/{id}")).into_response(),
        None => page(
            "Дневник",
            Some(&viewer),
            html! {
                h1 { "Дневник" }
                p { "С вашей учётной записью не связан ни один обучающийся." }
            },
        ),
    }
}

#[derive(Deserialize)]
pub(crate) struct DiaryQuery {
    year: Option<String>,
}

/// `GET /diary/{learner}?year=YYYY/YYYY|all`.
pub(crate) async fn diary(
    State(state): State<PagesState>,
    viewer: Viewer,
    Path(learner): Path<String>,
    Query(q): Query<DiaryQuery>,
) -> Response {
    match render(&state, &viewer, &learner, q).await {
        Ok(r) => r,
        Err(e) => api_error(e, &viewer),
    }
}

async fn render(
    state: &PagesState,
    viewer: &Viewer,
    learner: &str,
    q: DiaryQuery,
) -> Result<Response, ApiError> {
    let registry = &state.registry;
    let id: LearnerId = learner
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_id", "not a UUID"))?;
    viewer.auth.allow(registry, Read::Diary(id)).await?;
    let current = AcademicYear::containing(Utc::now().date_naive());
    let year = match q.year.as_deref() {
        Some("all") => None,
        Some(text) => Some(
            AcademicYear::parse(text)
                .map_err(|_| ApiError::bad_request("invalid_value", "academic year"))?,
        ),
        None => Some(current),
    };
    let diary = queries::diary(registry.read(), id, year)
        .await?
        .ok_or_else(|| ApiError::not_found("learner_not_found", "not in the registry"))?;
    // The switcher: the caller's other children, by name.
    let mut siblings = Vec::new();
    for other in own_learners(state, viewer) {
        if registry
            .authorize_read(viewer.principal(), &Read::Diary(other))
            .is_err()
        {
            continue;
        }
        if let Some(card) = queries::learner(registry.read().pool(), other).await? {
            siblings.push((other, format!("{} {}", card.surname, card.name)));
        }
    }
    let years: Vec<AcademicYear> = (0..4u16)
        .filter_map(|back| {
            AcademicYear::parse(&format!(
                "{}/{}",
                current.start_year() - back,
                current.start_year() - back + 1
            ))
            .ok()
        })
        .collect();
    let l = &diary.learner;
    let full_name = format!(
        "{} {} {}",
        l.surname,
        l.name,
        l.patronymic.as_deref().unwrap_or("")
    );
    let body = html! {
        h1 { "Дневник: " (full_name.trim()) }
        @if siblings.len() > 1 {
            nav.tabs aria-label="Дети" {
                @for (other, name) in &siblings {
                    a class=@if *other == id { "current" } href=(format!("/diary/{other}")) { (name) }
                }
            }
        }
        nav.tabs aria-label="Учебный год" {
            "Учебный год: "
            @for y in &years {
                a class=@if year == Some(*y) { "current" } href=(format!("/diary/{id}?year={y}")) { (y) }
            }
            a class=@if year.is_none() { "current" } href=(format!("/diary/{id}?year=all")) { "все годы" }
        }
        p.muted { "Дата рождения: " (l.birth_date) " · статус: " (l.status) }
        h2 { "Отметки" }
        @if diary.subjects.is_empty() {
            p { "Отметок за этот период нет." }
        }
        @for subject in &diary.subjects {
            table.subject {
                caption { b { (subject.subject) } " — средний балл " (or_dash(subject.average)) }
                tr { th { "Период" } th { "Отметки" } th.num { "Средний" } th { "Итоговая" } }
                @for p in &subject.periods {
                    tr {
                        td { (period_name(p.period.as_str())) }
                        td.marks {
                            @for m in &p.marks {
                                span title=(format!("{} · {} · вес {} · {}", m.lesson_date, m.work, m.weight, m.teacher)) {
                                    (m.value)
                                    @if m.corrections > 0 { sup { "испр." } }
                                }
                                " "
                            }
                        }
                        td.num { (or_dash(p.average)) }
                        td { (or_dash(p.period_mark.map(Mark::as_str))) }
                    }
                }
            }
        }
        h2 { "Посещаемость" }
        table {
            tr { @for (status, _) in &diary.attendance.counts { th { (attendance_name(status)) } } }
            tr { @for (_, n) in &diary.attendance.counts { td.num { (n) } } }
        }
        @if !diary.attendance.absences.is_empty() {
            table {
                tr { th { "Дата" } th { "Урок" } th { "Отметка" } }
                @for a in &diary.attendance.absences {
                    tr { td { (a.date) } td { (or_dash(a.lesson)) } td { (attendance_name(a.status.as_str())) } }
                }
            }
        }
        h2 { "Экзамены" }
        @if diary.exams.is_empty() {
            p { "Результатов экзаменов нет." }
        } @else {
            table {
                tr { th { "Форма" } th { "Предмет" } th { "Дата" } th.num { "Класс" } th.num { "Первичный балл" } th.num { "Тестовый балл" } th { "Отметка" } }
                @for e in &diary.exams {
                    tr {
                        td { (e.form.as_str().to_uppercase()) } td { (e.subject) } td { (e.exam_date) }
                        td.num { (e.grade) } td.num { (e.primary_points) }
                        td.num { (or_dash(e.test_score)) } td { (or_dash(e.mark)) }
                    }
                }
            }
        }
    };
    let mut response = page("Дневник", Some(viewer), body);
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// An attendance status in Russian.
pub(crate) fn attendance_name(status: &str) -> &str {
    match status {
        "present" => "присутствовал",
        "unexcused" => "без уважительной причины",
        "ill" => "болел",
        "excused" => "по уважительной причине",
        "late" => "опоздал",
        other => other,
    }
}
