//! The teacher's class register: learners × lesson dates for a subject, and the forms that record
//! a mark, correct one and record attendance through the registry's commands.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDate, Utc};
use contingent_access::{Read, Role};
use contingent_api::ApiError;
use contingent_domain::{Attendance, ClassId, LearnerId};
use contingent_projections::queries;
use maud::html;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::diary::attendance_name;
use crate::layout::{api_error, csrf_field, key_field, page};
use crate::session::Viewer;
use crate::PagesState;

/// How long a page waits for the read models to show what its form just recorded.
const READ_OWN_WRITE: Duration = Duration::from_secs(5);

fn class_id(text: &str) -> Result<ClassId, ApiError> {
    text.parse::<uuid::Uuid>()
        .map(ClassId::from)
        .map_err(|_| ApiError::bad_request("invalid_id", "not a UUID"))
}

/// The subjects the caller teaches in the class, or every subject taught in it for the school.
fn subjects(state: &PagesState, viewer: &Viewer, class: ClassId) -> Vec<String> {
    let p = viewer.principal();
    state.registry.read_state(|s| {
        let Some(c) = s.class(class) else {
            return Vec::new();
        };
        let mut all: BTreeSet<String> = BTreeSet::new();
        for a in &c.assignments {
            if p.role != Role::Teacher || a.teacher.as_str() == p.subject {
                all.extend(a.subjects.iter().map(|t| t.as_str().to_owned()));
            }
        }
        all.into_iter().collect()
    })
}

/// `GET /register`: the classes the teacher is assigned to, newest year first.
pub(crate) async fn classes(State(state): State<PagesState>, viewer: Viewer) -> Response {
    let p = viewer.principal().clone();
    let mut mine: Vec<(ClassId, String, u8)> = state.registry.read_state(|s| {
        s.classes()
            .filter(|(_, c)| {
                c.teachers.iter().any(|t| t.as_str() == p.subject)
                    || (p.role == Role::Organization && p.organization == Some(c.organization_id))
            })
            .map(|(id, c)| (*id, c.academic_year.to_string(), c.grade))
            .collect()
    });
    mine.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    let mut rows = Vec::new();
    for (id, year, grade) in mine.into_iter().take(60) {
        if let Err(e) = viewer
            .auth
            .allow(&state.registry, Read::ClassRegister(id))
            .await
        {
            return api_error(e, &viewer);
        }
        let name = match queries::class_register(
            state.registry.read(),
            id,
            None,
            NaiveDate::from_ymd_opt(9999, 12, 31),
            NaiveDate::from_ymd_opt(0, 1, 1),
        )
        .await
        {
            Ok(Some(v)) => v.class.name,
            Ok(None) => continue,
            Err(e) => return api_error(e.into(), &viewer),
        };
        rows.push((id, year, grade, name));
    }
    page(
        "Классный журнал",
        Some(&viewer),
        html! {
            h1 { "Классный журнал" }
            @if rows.is_empty() {
                p { "Вы не назначены ни в один класс." }
            } @else {
                table {
                    tr { th { "Класс" } th { "Учебный год" } th.num { "Параллель" } }
                    @for (id, year, grade, name) in &rows {
                        tr {
                            td { a href=(format!("/register/{id}")) { (name) } }
                            td { (year) } td.num { (grade) }
                        }
                    }
                }
            }
        },
    )
}

#[derive(Deserialize, Default)]
pub(crate) struct RegisterQuery {
    subject: Option<String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    done: Option<String>,
    mark: Option<String>,
}

/// `GET /register/{class}?subject=&from=&to=`: the grid of a subject over a span (the two
/// weeks up to today by default, within the class's year).
pub(crate) async fn register(
    State(state): State<PagesState>,
    viewer: Viewer,
    Path(class): Path<String>,
    Query(q): Query<RegisterQuery>,
) -> Response {
    match render(&state, &viewer, &class, q).await {
        Ok(r) => r,
        Err(e) => api_error(e, &viewer),
    }
}

async fn render(
    state: &PagesState,
    viewer: &Viewer,
    class: &str,
    q: RegisterQuery,
) -> Result<Response, ApiError> {
    let registry = &state.registry;
    let id = class_id(class)?;
    viewer.auth.allow(registry, Read::ClassRegister(id)).await?;
    let year = registry
        .read_state(|s| s.class(id).map(|c| c.academic_year))
        .ok_or_else(|| ApiError::not_found("class_not_found", "not in the registry"))?;
    let today = Utc::now().date_naive();
    // Lessons end by 31 May: a year that is over is shown at its last two weeks of lessons.
    let lessons_end =
        NaiveDate::from_ymd_opt(i32::from(year.start_year()) + 1, 5, 31).unwrap_or(year.last_day());
    let on = if today > year.last_day() {
        lessons_end
    } else {
        today.max(year.first_day())
    };
    let to = q.to.unwrap_or(on);
    let from = q
        .from
        .unwrap_or_else(|| (to - chrono::Days::new(13)).max(year.first_day()));
    // The roster of the span's last day.
    let view = queries::class_register(registry.read(), id, Some(to), Some(from), Some(to))
        .await?
        .ok_or_else(|| ApiError::not_found("class_not_found", "not in the registry"))?;
    viewer
        .auth
        .journal_reads(registry, view.roster.iter().map(|r| r.learner_id))
        .await?;
    let mut taught = subjects(state, viewer, id);
    if taught.is_empty() {
        taught = view
            .marks
            .iter()
            .map(|m| m.subject.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
    }
    let subject = q
        .subject
        .clone()
        .or_else(|| taught.first().cloned())
        .unwrap_or_default();
    // learner → date → cell text.
    let mut cells: BTreeMap<(LearnerId, String), Vec<String>> = BTreeMap::new();
    let mut dates: BTreeSet<String> = BTreeSet::new();
    for row in view.marks.iter().filter(|m| m.subject == subject) {
        for m in &row.marks {
            let date = m.date.to_string();
            dates.insert(date.clone());
            cells
                .entry((row.learner_id, date))
                .or_default()
                .push(m.value.to_string());
        }
    }
    for row in &view.attendance {
        for a in row
            .records
            .iter()
            .filter(|a| a.status != Attendance::Present)
        {
            let date = a.date.to_string();
            dates.insert(date.clone());
            cells
                .entry((row.learner_id, date))
                .or_default()
                .push(attendance_short(a.status.as_str()).to_owned());
        }
    }
    let notice = match q.done.as_deref() {
        Some("mark") => Some(format!(
            "Отметка записана{}.",
            q.mark
                .as_deref()
                .map(|m| format!(" (номер {m})"))
                .unwrap_or_default()
        )),
        Some("correct") => Some("Отметка исправлена.".to_owned()),
        Some("attendance") => Some("Посещаемость записана.".to_owned()),
        _ => None,
    };
    let base = format!("/register/{id}");
    let body = html! {
        h1 { "Журнал " (view.class.name) " · " (view.class.academic_year) }
        @if let Some(n) = &notice { p.notice role="status" { (n) } }
        nav.tabs aria-label="Предмет" {
            "Предмет: "
            @for s in &taught {
                a class=@if *s == subject { "current" } href=(format!("{base}?subject={}&from={from}&to={to}", encode(s))) { (s) }
            }
        }
        form.box method="get" action=(base) {
            input type="hidden" name="subject" value=(subject);
            label { "С " input type="date" name="from" value=(from); }
            label { "По " input type="date" name="to" value=(to); }
            button type="submit" { "Показать" }
        }
        table.grid {
            tr {
                th { "Обучающийся" }
                @for d in &dates { th { (d.get(5..).unwrap_or(d)) } }
            }
            @for r in &view.roster {
                tr data-learner=(r.learner_id) {
                    td { (r.surname) " " (r.name) }
                    @for d in &dates {
                        td { (cells.get(&(r.learner_id, d.clone())).map(|v| v.join(" ")).unwrap_or_default()) }
                    }
                }
            }
        }
        p.muted { "Н — без уважительной причины, Б — болел, У — по уважительной причине, О — опоздал." }
        h2 { "Записать отметку" }
        form.box #record-mark method="post" action=(format!("{base}/mark")) {
            (csrf_field(viewer)) (key_field())
            label { "Обучающийся " (learner_select(&view.roster)) }
            label { "Предмет "
                select name="subject" { @for s in &taught { option value=(s) selected[*s == subject] { (s) } } }
            }
            label { "Дата урока " input type="date" name="lesson_date" value=(on) required; }
            label { "Отметка "
                select name="value" { @for v in ["5", "4", "3", "2", "1"] { option value=(v) { (v) } } }
            }
            label { "Вид работы " input type="text" name="work" value="работа на уроке" required; }
            label { "Вес " input type="number" name="weight" value="1" min="1" max="10" required; }
            button type="submit" { "Записать" }
        }
        h2 { "Исправить отметку" }
        form.box #correct-mark method="post" action=(format!("{base}/correct")) {
            (csrf_field(viewer)) (key_field())
            input type="hidden" name="subject" value=(subject);
            label { "Номер отметки " input type="text" name="mark_id" value=(q.mark.clone().unwrap_or_default()) size="38" required; }
            label { "Новая отметка "
                select name="value" { @for v in ["5", "4", "3", "2", "1"] { option value=(v) { (v) } } }
            }
            label { "Причина " input type="text" name="reason" value="перепроверка работы" required; }
            button type="submit" { "Исправить" }
        }
        h2 { "Отметить посещаемость" }
        form.box #record-attendance method="post" action=(format!("{base}/attendance")) {
            (csrf_field(viewer)) (key_field())
            input type="hidden" name="subject" value=(subject);
            label { "Обучающийся " (learner_select(&view.roster)) }
            label { "Дата " input type="date" name="date" value=(on) required; }
            label { "Отметка "
                select name="status" {
                    @for s in ["unexcused", "ill", "excused", "late", "present"] { option value=(s) { (attendance_name(s)) } }
                }
            }
            button type="submit" { "Записать" }
        }
    };
    Ok(page("Классный журнал", Some(viewer), body))
}

fn learner_select(roster: &[queries::RosterRow]) -> maud::Markup {
    html! {
        select name="learner_id" required {
            @for r in roster { option value=(r.learner_id) { (r.surname) " " (r.name) } }
        }
    }
}

fn attendance_short(status: &str) -> &'static str {
    match status {
        "unexcused" => "Н",
        "ill" => "Б",
        "excused" => "У",
        "late" => "О",
        _ => "",
    }
}

/// Submits a form's command as the caller, through the API's one command path, and waits until
/// the read models show it.
pub(crate) async fn submit_form(
    state: &PagesState,
    viewer: &Viewer,
    name: &str,
    body: Value,
    key: &str,
) -> Result<contingent_registry::Receipt, ApiError> {
    let mut headers = HeaderMap::new();
    if let Ok(k) = HeaderValue::from_str(key) {
        if !key.is_empty() {
            headers.insert("idempotency-key", k);
        }
    }
    headers.insert("x-source", HeaderValue::from_static("web"));
    let receipt =
        contingent_api::submit(&state.registry, &viewer.auth, name, body, &headers).await?;
    if let Some(position) = receipt.last_position() {
        state
            .registry
            .wait_projected(position, READ_OWN_WRITE)
            .await;
    }
    Ok(receipt)
}

#[derive(Deserialize)]
struct MarkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    learner_id: String,
    subject: String,
    lesson_date: String,
    value: String,
    work: String,
    weight: String,
}

fn form<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::bad_request("missing_field", format!("the form: {e}")))
}

/// A form's answer: its CSRF token checked before anything else, then the redirect `handle`
/// gives, or the registry's refusal as a page.
async fn posted<F, Fut>(viewer: &Viewer, body: &Bytes, handle: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<String, ApiError>>,
{
    let csrf = form::<crate::session::CsrfOnly>(body)
        .map(|f| f.csrf)
        .unwrap_or_default();
    if let Some(refused) = viewer.refuse_csrf(&csrf) {
        return refused;
    }
    match handle().await {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => api_error(e, viewer),
    }
}

/// `POST /register/{class}/mark`.
pub(crate) async fn record_mark(
    State(state): State<PagesState>,
    viewer: Viewer,
    Path(class): Path<String>,
    body: Bytes,
) -> Response {
    posted(&viewer, &body, || async {
        let id = class_id(&class)?;
        let f: MarkForm = form(&body)?;
        let _ = &f.csrf;
        let weight: u8 = f
            .weight
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request("invalid_value", "weight"))?;
        let command = json!({
            "learner_id": f.learner_id, "class_id": id.to_string(), "subject": f.subject,
            "lesson_date": f.lesson_date, "kind": "current", "work": f.work, "value": f.value,
            "weight": weight, "teacher": viewer.principal().subject,
        });
        let receipt = submit_form(&state, &viewer, "record_mark", command, &f.key).await?;
        let mark = receipt
            .events
            .first()
            .and_then(|e| e.data.get("mark_id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok::<_, ApiError>(format!(
            "/register/{id}?subject={}&done=mark&mark={mark}",
            encode(&f.subject)
        ))
    })
    .await
}

#[derive(Deserialize)]
struct CorrectForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    subject: String,
    mark_id: String,
    value: String,
    reason: String,
}

/// `POST /register/{class}/correct`.
pub(crate) async fn correct_mark(
    State(state): State<PagesState>,
    viewer: Viewer,
    Path(class): Path<String>,
    body: Bytes,
) -> Response {
    posted(&viewer, &body, || async {
        let id = class_id(&class)?;
        let f: CorrectForm = form(&body)?;
        let command = json!({
            "mark_id": f.mark_id.trim(), "value": f.value, "reason": f.reason,
            "teacher": viewer.principal().subject,
        });
        submit_form(&state, &viewer, "correct_mark", command, &f.key).await?;
        Ok::<_, ApiError>(format!(
            "/register/{id}?subject={}&done=correct",
            encode(&f.subject)
        ))
    })
    .await
}

#[derive(Deserialize)]
struct AttendanceForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    subject: String,
    learner_id: String,
    date: String,
    status: String,
}

/// `POST /register/{class}/attendance`.
pub(crate) async fn record_attendance(
    State(state): State<PagesState>,
    viewer: Viewer,
    Path(class): Path<String>,
    body: Bytes,
) -> Response {
    posted(&viewer, &body, || async {
        let id = class_id(&class)?;
        let f: AttendanceForm = form(&body)?;
        let command = json!({
            "learner_id": f.learner_id, "class_id": id.to_string(), "date": f.date,
            "status": f.status,
        });
        submit_form(&state, &viewer, "record_attendance", command, &f.key).await?;
        Ok::<_, ApiError>(format!(
            "/register/{id}?subject={}&done=attendance",
            encode(&f.subject)
        ))
    })
    .await
}

/// Text for a query string.
pub(crate) fn encode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}
