//! The school's page: its classes with free places, its application queue with overdue ones
//! flagged, and enrolling an applicant from the queue.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use contingent_access::Read;
use contingent_api::ApiError;
use contingent_projections::queries::{self, VacancyFilter};
use maud::html;
use serde::Deserialize;
use serde_json::json;

use crate::layout::{api_error, csrf_field, key_field, level_name, or_dash, page};
use crate::register::submit_form;
use crate::session::Viewer;
use crate::PagesState;

#[derive(Deserialize, Default)]
pub(crate) struct SchoolQuery {
    done: Option<String>,
}

/// `GET /school`.
pub(crate) async fn school(
    State(state): State<PagesState>,
    viewer: Viewer,
    Query(q): Query<SchoolQuery>,
) -> Response {
    match render(&state, &viewer, q).await {
        Ok(r) => r,
        Err(e) => api_error(e, &viewer),
    }
}

async fn render(state: &PagesState, viewer: &Viewer, q: SchoolQuery) -> Result<Response, ApiError> {
    let registry = &state.registry;
    let Some(org) = viewer.principal().organization else {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "not an organization's account",
        ));
    };
    viewer
        .auth
        .allow(
            registry,
            Read::Vacancies {
                organization: Some(org),
                municipality: None,
            },
        )
        .await?;
    viewer.auth.allow(registry, Read::Queue(org)).await?;
    let classes = queries::vacancies(
        registry.read(),
        &VacancyFilter {
            organization_id: Some(org),
            ..VacancyFilter::default()
        },
    )
    .await?;
    let today = Utc::now().date_naive();
    let queue = queries::queue(registry.read().pool(), org, today)
        .await?
        .ok_or_else(|| ApiError::not_found("organization_not_found", "not in the registry"))?;
    let pending: Vec<&queries::ApplicationRow> = queue
        .applications
        .iter()
        .filter(|a| a.status == "pending")
        .collect();
    viewer
        .auth
        .journal_reads(registry, pending.iter().map(|a| a.learner_id))
        .await?;
    let name = classes
        .first()
        .map(|c| c.organization.clone())
        .unwrap_or_default();
    let body = html! {
        h1 { "Организация: " (name) }
        @if q.done.as_deref() == Some("enroll") { p.notice role="status" { "Зачисление записано." } }
        h2 { "Классы и свободные места" }
        table #classes {
            tr { th { "Класс" } th { "Учебный год" } th { "Уровень" } th.num { "Параллель" } th.num { "Мест" } th.num { "Зачислено" } th.num { "Свободно" } }
            @for c in &classes {
                tr {
                    td { (c.class_name) } td { (c.academic_year) } td { (level_name(c.level.as_str())) } td.num { (c.grade) }
                    td.num { (c.capacity) } td.num { (c.enrolled) } td.num { (c.free) }
                }
            }
        }
        h2 { "Очередь заявлений" }
        p { "Ожидают решения: " b { (queue.pending) } ", из них просрочено: " b.bad { (queue.overdue) } }
        table #queue {
            tr { th.num { "Место" } th { "Заявление" } th { "Уровень, год, параллель" } th { "Подано" } th { "Льгота" } th { "Решить до" } th { "Зачислить" } }
            @for a in &pending {
                tr class=@if a.overdue { "overdue" } {
                    td.num { (or_dash(a.place)) }
                    td { code { (a.application_id.to_string()[..8]) } }
                    td { (level_name(a.level.as_str())) ", " (a.academic_year) ", " (a.grade) }
                    td { (a.submitted_on) }
                    td { (a.priority) }
                    td { (a.due_on) @if a.overdue { " " span.bad { "просрочено" } } }
                    td {
                        @let fitting: Vec<&queries::VacancyRow> = classes.iter().filter(|c| c.level == a.level && c.academic_year == a.academic_year && c.grade == a.grade && c.free > 0 && a.class_id.as_ref().is_none_or(|k| *k == c.class_id)).collect();
                        @if fitting.is_empty() {
                            span.muted { "нет свободных мест" }
                        } @else {
                            form.inline method="post" action="/school/enroll" {
                                (csrf_field(viewer)) (key_field())
                                input type="hidden" name="application_id" value=(a.application_id);
                                input type="hidden" name="learner_id" value=(a.learner_id);
                                select name="class_id" { @for c in &fitting { option value=(c.class_id) { (c.class_name) } } }
                                input type="date" name="enrolled_on" value=(a.desired_start.unwrap_or(today)) required;
                                input type="text" name="order" placeholder="№ приказа" size="10" required;
                                button type="submit" { "Зачислить" }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Организация", Some(viewer), body))
}

#[derive(Deserialize)]
struct EnrollForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    application_id: String,
    learner_id: String,
    class_id: String,
    enrolled_on: String,
    order: String,
}

/// `POST /school/enroll`: enrols an applicant from the queue.
pub(crate) async fn enroll(
    State(state): State<PagesState>,
    viewer: Viewer,
    body: Bytes,
) -> Response {
    let f: EnrollForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => {
            let csrf = serde_urlencoded::from_bytes::<crate::session::CsrfOnly>(&body)
                .map(|c| c.csrf)
                .unwrap_or_default();
            if let Some(refused) = viewer.refuse_csrf(&csrf) {
                return refused;
            }
            return api_error(ApiError::bad_request("missing_field", "the form"), &viewer);
        }
    };
    if let Some(refused) = viewer.refuse_csrf(&f.csrf) {
        return refused;
    }
    let command = json!({
        "learner_id": f.learner_id, "class_id": f.class_id, "enrolled_on": f.enrolled_on,
        "application_id": f.application_id,
        "programme": { "name": "Основная образовательная программа" },
        "order": { "number": f.order, "date": f.enrolled_on },
    });
    match submit_form(&state, &viewer, "enroll", command, &f.key).await {
        Ok(_) => Redirect::to("/school?done=enroll").into_response(),
        Err(e) => api_error(e, &viewer),
    }
}
