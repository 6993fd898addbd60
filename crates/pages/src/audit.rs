//! The auditor's pages: the log's verification status with its last signed checkpoint, and a
//! learner's timeline (every event in log order, filtered by type), state as of a date and
//! access journal.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use contingent_access::Read;
use contingent_api::ApiError;
use contingent_domain::LearnerId;
use contingent_registry::VerifyRun;
use maud::{html, Markup};
use serde::Deserialize;

use crate::layout::{api_error, or_dash, page};
use crate::session::Viewer;
use crate::PagesState;

fn run_summary(run: &VerifyRun) -> Markup {
    html! {
        @match (&run.report, &run.error) {
            (Some(r), _) if r.is_ok() => {
                span.ok { "Цепочка цела" }
                " — проверено событий: " (r.verified) ", позиция " (r.head) ", хеш " code { (r.head_hash) }
            }
            (Some(r), _) => {
                span.bad { "Найдены повреждения: " (r.findings.len()) }
                " — проверено событий: " (r.verified)
                ul { @for f in r.findings.iter().take(20) { li { code { (format!("{f:?}")) } } } }
            }
            (None, Some(e)) => { span.bad { "Проверка не завершилась: " (e) } }
            (None, None) => { "идёт…" }
        }
        " " span.muted { "(начата " (run.started_at.format("%Y-%m-%d %H:%M:%S UTC")) ")" }
    }
}

/// `GET /audit`: the verification status, the last signed checkpoint, and a form to open a
/// learner's timeline.
pub(crate) async fn audit(State(state): State<PagesState>, viewer: Viewer) -> Response {
    let registry = &state.registry;
    if let Err(e) = viewer.auth.allow(registry, Read::Verify).await {
        return api_error(e, &viewer);
    }
    let mut job = registry.verify_job().state();
    if job.last.is_none() && job.running.is_none() {
        job = registry.start_verify();
    }
    let checkpoints = match registry.checkpoints().await {
        Ok(c) => c,
        Err(e) => return api_error(e.into(), &viewer),
    };
    let last = checkpoints.last();
    let body = html! {
        h1 { "Аудит журнала событий" }
        h2 { "Проверка цепочки" }
        p #verify-status {
            @if let Some(run) = &job.last { (run_summary(run)) } @else { "Первая проверка идёт; обновите страницу." }
        }
        @if job.running.is_some() && job.last.is_some() { p.muted { "Идёт новая проверка." } }
        p.muted { "Позиция журнала сейчас: " (registry.head()) }
        h2 { "Последняя подписанная контрольная точка" }
        @if let Some(c) = last {
            table #checkpoint {
                tr { th { "Позиция" } td.num { (c.position) } }
                tr { th { "Хеш головы" } td.hash { (c.head_hash.to_hex()) } }
                tr { th { "Время (мс)" } td.num { (c.time) } }
                tr { th { "Ключ" } td { (c.key_id) } }
            }
            p.muted { "Всего контрольных точек: " (checkpoints.len()) }
        } @else {
            p { "Контрольных точек ещё нет." }
        }
        h2 { "История обучающегося" }
        form.box method="get" action="/audit/learner" {
            label { "Идентификатор обучающегося " input type="text" name="id" size="38" required; }
            button type="submit" { "Открыть" }
        }
    };
    page("Аудит", Some(&viewer), body)
}

#[derive(Deserialize)]
pub(crate) struct OpenLearner {
    #[serde(default)]
    id: String,
}

/// `GET /audit/learner?id=`: the form's target.
pub(crate) async fn open_learner(Query(q): Query<OpenLearner>) -> Response {
    Redirect::to(&format!(
        "/audit/learners/{}",
        crate::register::encode(q.id.trim())
    ))
    .into_response()
}

#[derive(Deserialize, Default)]
pub(crate) struct TimelineQuery {
    #[serde(rename = "type")]
    event_type: Option<String>,
    as_of: Option<String>,
}

/// `GET /audit/learners/{learner}?type=&as_of=`.
pub(crate) async fn timeline(
    State(state): State<PagesState>,
    viewer: Viewer,
    Path(learner): Path<String>,
    Query(q): Query<TimelineQuery>,
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
    q: TimelineQuery,
) -> Result<Response, ApiError> {
    let registry = &state.registry;
    let id: LearnerId = learner
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_id", "not a UUID"))?;
    let as_of = match q.as_of.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(
            t.parse::<NaiveDate>()
                .map_err(|_| ApiError::bad_request("invalid_date", "as_of"))?,
        ),
        None => None,
    };
    viewer.auth.allow(registry, Read::History(id)).await?;
    let mut events = registry.history(id).await?;
    let scope =
        registry.read_state(|s| contingent_access::learner_scope(s, viewer.principal(), id));
    events.retain(|e| scope.admits(&e.envelope.event));
    if events.is_empty() {
        return Err(ApiError::not_found(
            "learner_not_found",
            "no events about this learner",
        ));
    }
    let mut types: Vec<&'static str> = events
        .iter()
        .map(|e| e.envelope.event.type_name())
        .collect();
    types.sort_unstable();
    types.dedup();
    let wanted = q.event_type.as_deref().filter(|t| !t.is_empty());
    let shown: Vec<_> = events
        .iter()
        .filter(|e| wanted.is_none_or(|t| e.envelope.event.type_name() == t))
        .collect();
    let snapshot = match as_of {
        Some(date) => {
            viewer.allow_also(registry, Read::LearnerState(id)).await?;
            contingent_registry::LearnerSnapshot::fold(id, &events, None, Some(date))
                .and_then(|s| serde_json::to_string_pretty(&s).ok())
        }
        None => None,
    };
    viewer.allow_also(registry, Read::AccessLog(id)).await?;
    let (journal, journal_total) = registry
        .journal()
        .latest_for_learner(&id.to_string(), JOURNAL_SHOWN)
        .await?;
    let base = format!("/audit/learners/{id}");
    let body = html! {
        h1 { "Хронология обучающегося " code { (id) } }
        form.box method="get" action=(base) {
            label { "Тип события "
                select name="type" {
                    option value="" { "все" }
                    @for t in &types { option value=(t) selected[wanted == Some(*t)] { (t) } }
                }
            }
            label { "Состояние на дату " input type="date" name="as_of" value=(or_empty(as_of)); }
            button type="submit" { "Показать" }
        }
        @if let Some(date) = as_of {
            h2 { "Состояние на " (date) }
            @if let Some(s) = &snapshot { pre.state #state { (s) } } @else { p { "Реестр тогда ничего не знал об обучающемся." } }
        }
        h2 { "События (" (shown.len()) " из " (events.len()) ")" }
        table #timeline {
            tr { th.num { "Позиция" } th { "Тип" } th { "Дата факта" } th { "Записано" } th { "Кто" } th { "Источник" } th { "Хеш" } }
            @for e in &shown {
                @let env = &e.envelope;
                tr data-type=(env.event.type_name()) {
                    td.num { (env.position) }
                    td { (env.event.type_name()) }
                    td { (env.business_date) }
                    td { (env.recorded_at.format("%Y-%m-%d %H:%M:%S")) }
                    td { (env.actor) }
                    td { (env.source.kind.as_str()) " " (env.source.id) }
                    td.hash title=(e.hash.to_hex()) { (e.hash.to_hex().get(..16).unwrap_or_default()) "…" }
                }
            }
        }
        h2 { "Журнал доступа" }
        table #access {
            tr { th { "Когда" } th { "Кто" } th { "Роль" } th { "Запрос" } th.num { "Ответ" } th { "Итог" } }
            @for j in &journal {
                tr {
                    td { (j.at.format("%Y-%m-%d %H:%M:%S")) } td { (j.subject) } td { (j.role) }
                    td { (j.method) " " (j.endpoint) } td.num { (j.status) } td { (j.outcome) }
                }
            }
        }
        p.muted { "Показаны последние " (journal.len()) " из " (journal_total) " записей; последняя — " (or_dash(journal.first().map(|j| j.at.format("%Y-%m-%d %H:%M:%S").to_string()))) "." }
    };
    Ok(page("Хронология", Some(viewer), body))
}

/// How many of a learner's access journal entries the timeline shows, newest first.
const JOURNAL_SHOWN: u32 = 200;

fn or_empty(date: Option<NaiveDate>) -> String {
    date.map(|d| d.to_string()).unwrap_or_default()
}
