//! The page shell, the stylesheet, role names, and the registry's refusals in plain Russian.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use contingent_access::{Principal, Role};
use contingent_api::ApiError;
use maud::{html, Markup, DOCTYPE};

use crate::session::Viewer;

/// The one stylesheet, served by the binary at `/assets/site.css`.
pub(crate) const CSS: &str = include_str!("site.css");

/// The role's name in Russian.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Parent => "родитель",
        Role::Learner => "обучающийся",
        Role::Teacher => "учитель",
        Role::Organization => "образовательная организация",
        Role::Municipality => "муниципальный орган управления образованием",
        Role::Region => "региональное министерство",
        Role::Auditor => "аудитор",
        Role::Federal => "федеральный сегмент",
        Role::CivilRegistry => "ЗАГС",
        Role::ExamCentre => "РЦОИ",
    }
}

fn shell(title: &str, header_right: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="ru" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — реестр обучающихся" }
                link rel="stylesheet" href="/assets/site.css";
            }
            body {
                header.top {
                    a.brand href="/" { "Реестр обучающихся" }
                    (header_right)
                }
                main { (body) }
            }
        }
    }
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// A page for a signed-in caller (with their role and a sign-out button) or for anyone.
pub(crate) fn page(title: &str, viewer: Option<&Viewer>, body: Markup) -> Response {
    let right = match viewer {
        Some(v) => html! {
            span.who { (v.principal().subject) " · " (role_name(v.principal().role)) }
            form.inline method="post" action="/signout" {
                input type="hidden" name="csrf" value=(v.session.csrf);
                button type="submit" { "Выйти" }
            }
        },
        None => html! {},
    };
    html_response(StatusCode::OK, shell(title, right, body))
}

/// A refusal, as a page.
pub(crate) fn refusal_page(
    status: StatusCode,
    title: &str,
    detail: &str,
    principal: Option<&Principal>,
) -> Response {
    let right = match principal {
        Some(p) => html! { span.who { (p.subject) " · " (role_name(p.role)) } },
        None => html! {},
    };
    let body = html! {
        h1 { (title) }
        p.refusal { (detail) }
        p { a href="/" { "На главную" } " · " a href="/signin" { "Вход" } }
    };
    html_response(status, shell(title, right, body))
}

/// What a problem `code` means, in plain Russian.
pub(crate) fn explain(code: &str) -> &'static str {
    match code {
        "forbidden" => {
            "Нет доступа: эти сведения или это действие вне полномочий вашей учётной записи."
        }
        "learner_not_found"
        | "class_not_found"
        | "organization_not_found"
        | "application_not_found"
        | "enrollment_not_found"
        | "mark_not_found" => "Не найдено в реестре.",
        "invalid_id" => "Неверный идентификатор.",
        "invalid_date" => "Неверная дата.",
        "invalid_mark" => "Такой отметки нет: допустимы 1–5, «зачёт», «незачёт», «н/а», «осв.».",
        "missing_field" => "Заполнены не все поля формы.",
        "invalid_value" | "unknown_value" | "unknown_field" | "malformed_json" => {
            "Поле формы заполнено неверно."
        }
        "already_exists" => "Такая запись уже есть.",
        "learner_deceased" => "Обучающийся умер: запись о нём больше не ведётся.",
        "learner_left" => "Обучающийся выбыл.",
        "second_primary_enrollment" => {
            "Обучающийся уже зачислен в другую организацию на основное обучение."
        }
        "already_in_class" => "Обучающийся уже в этом классе.",
        "class_full" => "В классе нет свободных мест.",
        "capacity_below_enrolled" => "Вместимость меньше числа зачисленных.",
        "learner_not_in_class" => "В этот день обучающийся не числился в классе.",
        "snils_belongs_to_another_person" | "snils_already_recorded" | "invalid_snils" => {
            "СНИЛС неверен или принадлежит другому лицу."
        }
        "application_not_pending" => "Заявление уже рассмотрено.",
        "application_already_pending" => "Заявление в эту организацию уже подано.",
        "application_mismatch" => "Заявление не соответствует классу (уровень, год или класс).",
        "enrollment_not_active" => "Зачисление не действует.",
        "mark_unchanged" => "Исправленная отметка совпадает с прежней.",
        "idempotency_key_reused" => {
            "Эта форма уже была отправлена с другими данными; откройте страницу заново."
        }
        "invalid_capacity" => "Неверная вместимость.",
        "date_before_birth" => "Дата раньше даты рождения.",
        "date_in_future" => "Дата ещё не наступила.",
        "date_out_of_range" => "Дата вне учебного года класса или вне срока назначения учителя.",
        "grade_one_age_rule" => "Возраст не подходит для первого класса.",
        "preschool_age_rule" => "Возраст не подходит для дошкольной группы.",
        "level_not_taught" => "Организация не ведёт этот уровень образования.",
        "rate_limited" => "Слишком много запросов; повторите через минуту.",
        "overloaded" | "timeout" | "unavailable" | "read_model_behind" => {
            "Реестр сейчас перегружен или недоступен; повторите позже."
        }
        _ => "Реестр отказал в выполнении.",
    }
}

/// The registry's refusal of a page's read or command, as a page.
pub(crate) fn api_error(error: ApiError, viewer: &Viewer) -> Response {
    let title = match error.status {
        StatusCode::FORBIDDEN => "Нет доступа",
        StatusCode::NOT_FOUND => "Не найдено",
        s if s.is_server_error() => "Реестр недоступен",
        _ => "Отказ реестра",
    };
    let status = error.status;
    let body = html! {
        h1 { (title) }
        p.refusal data-code=(error.code) { (explain(error.code)) }
        p.muted { "Код: " code { (error.code) } }
        p { a href="/" { "На главную" } }
    };
    let mut response = page(title, Some(viewer), body);
    *response.status_mut() = status;
    response
}

/// A level of education in Russian.
pub(crate) fn level_name(level: &str) -> &str {
    match level {
        "preschool" => "дошкольное",
        "general" => "общее",
        "additional" => "дополнительное",
        "vocational" => "СПО",
        other => other,
    }
}

/// A table's cell for an optional value.
pub(crate) fn or_dash(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| v.to_string())
}

/// A hidden CSRF field.
pub(crate) fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.session.csrf); }
}

/// A hidden idempotency key: a form sent twice records once.
pub(crate) fn key_field() -> Markup {
    html! { input type="hidden" name="key" value=(uuid::Uuid::new_v4()); }
}

/// The name of a period.
pub(crate) fn period_name(period: &str) -> String {
    match period {
        "term-1" => "1 четверть".into(),
        "term-2" => "2 четверть".into(),
        "term-3" => "3 четверть".into(),
        "term-4" => "4 четверть".into(),
        "half-1" => "1 полугодие".into(),
        "half-2" => "2 полугодие".into(),
        "year" => "год".into(),
        other => other.to_owned(),
    }
}

/// Text as a CSV field.
pub(crate) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A CSV download.
pub(crate) fn csv_response(name: &str, rows: Vec<Vec<String>>) -> Response {
    let mut body = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
        body.push_str(&line.join(","));
        body.push_str("\r\n");
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        body,
    )
        .into_response()
}
