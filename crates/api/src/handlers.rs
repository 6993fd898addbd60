//! Request handlers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use contingent_domain::{AcademicYear, LearnerId, Snils};
use contingent_log::RecordedEvent;
use contingent_projections::queries::{self, CountDimension, LearnerSearch, VacancyFilter};
use contingent_registry::Registry;
use serde_json::{json, Value};

use contingent_access::{federal_view, Read, Role};

use crate::auth::Auth;
use crate::commands::{metadata, parse_command, status_of};
use crate::error::ApiError;

type AppState = State<Arc<Registry>>;

type Params = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

/// How long a query waits for `min_position` to reach the read models.
const CONSISTENCY_WAIT: Duration = Duration::from_secs(5);

fn params(p: Params) -> Result<HashMap<String, String>, ApiError> {
    p.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

fn learner_id(text: &str) -> Result<LearnerId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{text:?} is not a UUID")))
}

fn uuid_text(text: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(text)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{text:?} is not a UUID")))
}

fn date_param(q: &HashMap<String, String>, name: &str) -> Result<Option<NaiveDate>, ApiError> {
    q.get(name)
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                ApiError::bad_request("invalid_date", format!("{name} must be a date YYYY-MM-DD"))
                    .at(name)
            })
        })
        .transpose()
}

fn number_param(
    q: &HashMap<String, String>,
    name: &str,
    default: u64,
    max: u64,
) -> Result<u64, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<u64>().ok().filter(|n| *n <= max).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("{name} must be a whole number up to {max}"),
            )
            .at(name)
        }),
    }
}

fn year_param(q: &HashMap<String, String>) -> Result<Option<AcademicYear>, ApiError> {
    q.get("academic_year")
        .map(|v| {
            AcademicYear::parse(v).map_err(|e| {
                ApiError::bad_request("invalid_query", format!("academic_year: {e}"))
                    .at("academic_year")
            })
        })
        .transpose()
}

/// Read-your-writes: with `min_position=N`, wait until the read models have applied position N.
/// Returns N (0 when absent).
async fn consistent(registry: &Registry, q: &HashMap<String, String>) -> Result<u64, ApiError> {
    if q.contains_key("min_position") {
        let position = number_param(q, "min_position", 0, u64::MAX)?;
        if position > registry.head() {
            return Err(ApiError::bad_request(
                "invalid_query",
                "min_position is past the end of the log",
            )
            .at("min_position"));
        }
        if !registry.wait_projected(position, CONSISTENCY_WAIT).await {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "read_model_behind",
                format!("the read models have not reached position {position} yet; retry"),
            ));
        }
        return Ok(position);
    }
    Ok(0)
}

fn found<T: serde::Serialize>(
    registry: &Registry,
    value: Option<T>,
    what: &'static str,
) -> Result<Response, ApiError> {
    match value {
        Some(v) => Ok((
            [("x-projected-position", registry.projected().to_string())],
            Json(v),
        )
            .into_response()),
        None => Err(ApiError::not_found(what, "not in the registry")),
    }
}

/// The envelope of a stored event with its hash, as served to auditors and subscribers.
pub(crate) fn event_json(event: &RecordedEvent) -> Value {
    let mut v = serde_json::from_slice::<Value>(&event.body).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("hash".into(), Value::String(event.hash.to_hex()));
    }
    v
}

pub(crate) async fn command(
    State(registry): AppState,
    auth: Auth,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the body exceeds {} bytes",
                    registry.settings().max_body_bytes
                ),
            )
        } else {
            ApiError::bad_request("malformed_request", e.body_text())
        }
    })?;
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct.starts_with("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send application/json",
            ));
        }
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    let fingerprint = crate::commands::fingerprint(&name, &value);
    let command = parse_command(&name, value)?;
    let meta = metadata(&headers, &command, &auth.principal, fingerprint)?;
    let learner = registry.read_state(|s| contingent_access::command_learner(s, &command));
    let receipt = match registry.submit_as(&auth.principal, command, meta).await {
        Err(contingent_registry::RegistryError::Forbidden(detail)) => {
            auth.refused(&registry, learner).await?;
            return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail));
        }
        other => other?,
    };
    let status = status_of(receipt.replayed);
    let mut response = (status, Json(&receipt)).into_response();
    if receipt.replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            "true".parse().expect("static header"),
        );
    }
    Ok(response)
}

pub(crate) async fn find_learners(
    State(registry): AppState,
    auth: Auth,
    p: Params,
) -> Result<Response, ApiError> {
    let q = params(p)?;
    consistent(&registry, &q).await?;
    let snils = q
        .get("snils")
        .map(|s| {
            Snils::parse(s)
                .map(|s| s.to_string())
                .map_err(|e| ApiError::bad_request("invalid_snils", e.to_string()).at("snils"))
        })
        .transpose()?;
    let organization_id = q.get("organization_id").map(|o| uuid_text(o)).transpose()?;
    let organization = organization_id.as_deref().and_then(|o| o.parse().ok());
    auth.allow(&registry, Read::SearchLearners { organization })
        .await?;
    let search = LearnerSearch {
        snils,
        surname: q.get("surname").cloned(),
        name: q.get("name").cloned(),
        birth_date: date_param(&q, "birth_date")?.map(|d| d.to_string()),
        organization_id,
        limit: number_param(&q, "limit", 100, 500)? as i64,
    };
    if search.snils.is_none() && search.surname.is_none() && search.organization_id.is_none() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "give snils, surname or organization_id",
        ));
    }
    let rows = queries::find_learners(registry.read().pool(), &search).await?;
    auth.journal_reads(
        &registry,
        rows.iter().filter_map(|r| r.learner_id.parse().ok()),
    )
    .await?;
    Ok(Json(json!({ "learners": rows })).into_response())
}

pub(crate) async fn learner(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = params(p)?;
    let id = learner_id(&id)?;
    auth.allow(&registry, Read::LearnerCard(id)).await?;
    consistent(&registry, &q).await?;
    let card = queries::learner(registry.read().pool(), &id.to_string()).await?;
    found(&registry, card, "learner_not_found")
}

pub(crate) async fn diary(
    State(app): State<crate::auth::AppState>,
    auth: Auth,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let registry = &app.registry;
    let q = params(p)?;
    let id = learner_id(&id)?;
    auth.allow(registry, Read::Diary(id)).await?;
    let year = year_param(&q)?;
    let min_position = consistent(registry, &q).await?;
    let key = (id, year);
    let needed = crate::cache::needed(registry, id, min_position);
    if let Some(body) = needed.and_then(|at| app.cache.diary(&key, at)) {
        registry
            .metrics()
            .read_cache_hits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Ok(json_bytes(registry, body));
    }
    registry
        .metrics()
        .read_cache_misses
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let read_at = registry.projected();
    let Some(diary) = queries::diary(registry.read().pool(), &id.to_string(), year).await? else {
        return Err(ApiError::not_found(
            "learner_not_found",
            "not in the registry",
        ));
    };
    let body = Bytes::from(serde_json::to_vec(&diary).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("encoding the diary: {e}"),
        )
    })?);
    if needed.is_some() && read_at <= registry.head() {
        app.cache.keep_diary(key, read_at, body.clone());
    }
    Ok(json_bytes(registry, body))
}

/// A JSON body already encoded, with the read models' position.
fn json_bytes(registry: &Registry, body: Bytes) -> Response {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            ),
            (
                axum::http::HeaderName::from_static("x-projected-position"),
                axum::http::HeaderValue::from(registry.projected()),
            ),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn history(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = learner_id(&id)?;
    auth.allow(&registry, Read::History(id)).await?;
    let mut events = registry.history(id).await?;
    let scope = registry.read_state(|s| contingent_access::learner_scope(s, &auth.principal, id));
    events.retain(|e| scope.admits(&e.envelope.event));
    if events.is_empty() {
        return Err(ApiError::not_found(
            "learner_not_found",
            "no events about this learner",
        ));
    }
    let mut verifier_note = Vec::new();
    for e in &events {
        if contingent_log::Hash::of(&e.body) != e.hash {
            verifier_note.push(e.position());
        }
    }
    Ok(Json(json!({
        "learner_id": id,
        "events": events.iter().map(event_json).collect::<Vec<_>>(),
        "altered_positions": verifier_note,
    }))
    .into_response())
}

pub(crate) async fn state_as_of(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = params(p)?;
    let id = learner_id(&id)?;
    auth.allow(&registry, Read::LearnerState(id)).await?;
    let as_of = date_param(&q, "as_of")?;
    let known_at = q
        .get("known_at")
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|d| d.with_timezone(&Utc))
                .or_else(|_| {
                    NaiveDate::parse_from_str(v, "%Y-%m-%d")
                        .map(|d| d.and_hms_opt(23, 59, 59).expect("valid time").and_utc())
                })
                .map_err(|_| {
                    ApiError::bad_request("invalid_date", "known_at must be RFC 3339 or YYYY-MM-DD")
                        .at("known_at")
                })
        })
        .transpose()?;
    let mut events = registry.history(id).await?;
    let scope = registry.read_state(|s| contingent_access::learner_scope(s, &auth.principal, id));
    events.retain(|e| scope.admits(&e.envelope.event));
    let snapshot = contingent_registry::LearnerSnapshot::fold(id, &events, known_at, as_of);
    match snapshot {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(ApiError::not_found(
            "learner_not_found",
            "the registry knew nothing of this learner then",
        )),
    }
}

pub(crate) async fn organizations(
    State(registry): AppState,
    auth: Auth,
    p: Params,
) -> Result<Response, ApiError> {
    let q = params(p)?;
    auth.allow(&registry, Read::Organizations).await?;
    consistent(&registry, &q).await?;
    let rows = queries::organizations(
        registry.read().pool(),
        q.get("municipality").map(String::as_str),
    )
    .await?;
    Ok(Json(json!({ "organizations": rows })).into_response())
}

pub(crate) async fn queue(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = params(p)?;
    let id = uuid_text(&id)?;
    let organization = id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_id", "not a UUID"))?;
    auth.allow(&registry, Read::Queue(organization)).await?;
    let as_of = date_param(&q, "as_of")?
        .unwrap_or_else(|| Utc::now().date_naive())
        .to_string();
    consistent(&registry, &q).await?;
    let view = queries::queue(registry.read().pool(), &id, &as_of).await?;
    found(&registry, view, "organization_not_found")
}

pub(crate) async fn class_register(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = params(p)?;
    let id = uuid_text(&id)?;
    let class = id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_id", "not a UUID"))?;
    auth.allow(&registry, Read::ClassRegister(class)).await?;
    let on = date_param(&q, "on")?.map(|d| d.to_string());
    let from = date_param(&q, "from")?.map(|d| d.to_string());
    let to = date_param(&q, "to")?.map(|d| d.to_string());
    consistent(&registry, &q).await?;
    let view = queries::class_register(registry.read().pool(), &id, on, from, to).await?;
    if let Some(v) = &view {
        auth.journal_reads(
            &registry,
            v.roster.iter().filter_map(|r| r.learner_id.parse().ok()),
        )
        .await?;
    }
    found(&registry, view, "class_not_found")
}

pub(crate) async fn vacancies(
    State(registry): AppState,
    auth: Auth,
    p: Params,
) -> Result<Response, ApiError> {
    let q = params(p)?;
    let filter = VacancyFilter {
        organization_id: q.get("organization_id").map(|o| uuid_text(o)).transpose()?,
        municipality: q.get("municipality").cloned(),
        academic_year: year_param(&q)?.map(|y| y.to_string()),
        level: match q.get("level") {
            None => None,
            Some(l)
                if contingent_domain::Level::ALL
                    .iter()
                    .any(|x| x.as_str() == l) =>
            {
                Some(l.clone())
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "level is preschool, general, additional or vocational",
                )
                .at("level"))
            }
        },
        only_free: match q.get("only_free").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(
                    ApiError::bad_request("invalid_query", "only_free is true or false")
                        .at("only_free"),
                )
            }
        },
    };
    auth.allow(
        &registry,
        Read::Vacancies {
            organization: filter
                .organization_id
                .as_deref()
                .and_then(|o| o.parse().ok()),
            municipality: filter.municipality.clone(),
        },
    )
    .await?;
    consistent(&registry, &q).await?;
    let rows = queries::vacancies(registry.read().pool(), &filter).await?;
    let (capacity, enrolled) = rows
        .iter()
        .fold((0, 0), |(c, e), r| (c + r.capacity, e + r.enrolled));
    Ok(Json(json!({ "capacity": capacity, "enrolled": enrolled, "free": capacity - enrolled, "classes": rows })).into_response())
}

pub(crate) async fn federal_register(
    State(registry): AppState,
    auth: Auth,
    p: Params,
) -> Result<Response, ApiError> {
    let q = params(p)?;
    auth.allow(&registry, Read::FederalRegister).await?;
    let after = q.get("after").map(|a| uuid_text(a)).transpose()?;
    let limit = number_param(&q, "limit", 100, 1000)?.max(1) as i64;
    consistent(&registry, &q).await?;
    let rows = queries::federal_register(registry.read().pool(), after.as_deref(), limit).await?;
    let next = if rows.len() as i64 == limit {
        rows.last().map(|r| r.learner_id.clone())
    } else {
        None
    };
    Ok(Json(
        json!({ "learners": rows, "next_after": next, "projected_position": registry.projected() }),
    )
    .into_response())
}

pub(crate) async fn federal_counts(
    State(registry): AppState,
    auth: Auth,
    p: Params,
) -> Result<Response, ApiError> {
    let q = params(p)?;
    auth.allow(&registry, Read::FederalCounts).await?;
    let mut by = Vec::new();
    if let Some(list) = q.get("by") {
        for part in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            by.push(CountDimension::parse(part).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "cannot group by {part:?}: use municipality, organization, level, grade"
                    ),
                )
                .at("by")
            })?);
        }
    }
    let year = year_param(&q)?.map(|y| y.to_string());
    consistent(&registry, &q).await?;
    let rows = queries::federal_counts(registry.read().pool(), &by, year.as_deref()).await?;
    Ok(Json(json!({ "counts": rows, "projected_position": registry.projected() })).into_response())
}

pub(crate) async fn feed(
    State(registry): AppState,
    auth: Auth,
    p: Params,
) -> Result<Response, ApiError> {
    let q = params(p)?;
    auth.allow(&registry, Read::Feed).await?;
    // The federal segment receives the documented fields only; auditors and the region the
    // events as stored, with their hashes.
    let shape: fn(&RecordedEvent) -> Value = if auth.principal.role == Role::Federal {
        |e| federal_view(&event_json(e))
    } else {
        event_json
    };
    let after = number_param(&q, "after", 0, u64::MAX)?;
    let limit = number_param(&q, "limit", 100, 1000)?.max(1) as usize;
    let events = registry.feed(after, limit).await?;
    let next = events.last().map(|e| e.position()).unwrap_or(after);
    Ok(Json(json!({
        "events": events.iter().map(shape).collect::<Vec<_>>(),
        "next_after": next,
        "head": registry.head(),
    }))
    .into_response())
}

pub(crate) async fn access_log(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = learner_id(&id)?;
    auth.allow(&registry, Read::AccessLog(id)).await?;
    let entries = registry.journal().for_learner(&id.to_string()).await?;
    Ok(Json(json!({ "learner_id": id, "entries": entries })).into_response())
}

pub(crate) async fn healthz(State(registry): AppState) -> Response {
    match registry.writer_fault() {
        None => Json(
            json!({ "status": "ok", "log_head": registry.head(), "projected": registry.projected() }),
        )
        .into_response(),
        // Commands are refused until the writer's state is the log's again; reads still work.
        Some(fault) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "refusing_commands", "reason": fault,
                         "log_head": registry.head(), "projected": registry.projected() })),
        )
            .into_response(),
    }
}

pub(crate) async fn metrics(State(registry): AppState) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        registry.metrics().render(),
    )
        .into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no_such_endpoint", "no such endpoint; see /openapi.json")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /openapi.json",
    )
}

pub(crate) fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "internal error",
    )
    .into_response()
}
