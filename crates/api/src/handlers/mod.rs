//! Request handlers, by area. A handler parses (path, typed query parameters, body), checks
//! reach, submits or queries, journals, and maps errors; it decides nothing.

pub(crate) mod audit;
pub(crate) mod commands;
pub(crate) mod federal;
pub(crate) mod learners;
pub(crate) mod ops;
pub(crate) mod organizations;

pub(crate) use audit::{access_log, export, export_text, history, state_as_of};
pub(crate) use commands::command;
pub(crate) use federal::{federal_counts, federal_register, feed};
pub(crate) use learners::{diary, find_learners, learner};
pub(crate) use ops::{healthz, method_not_allowed, metrics, not_found, panicked};
pub(crate) use organizations::{class_register, organizations, queue, vacancies};

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use contingent_domain::LearnerId;
use contingent_log::RecordedEvent;
use contingent_registry::Registry;
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::params::Position;

pub(crate) type AppState = State<Arc<Registry>>;

/// How long a query waits for `min_position` to reach the read models.
const CONSISTENCY_WAIT: Duration = Duration::from_secs(5);

pub(crate) fn learner_id(text: &str) -> Result<LearnerId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{text:?} is not a UUID")))
}

pub(crate) fn uuid(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{text:?} is not a UUID")))
}

/// Read-your-writes: with `min_position=N`, wait until the read models have applied position N.
/// Returns N (0 when absent).
pub(crate) async fn consistent(
    registry: &Registry,
    min_position: Option<Position>,
) -> Result<u64, ApiError> {
    let Some(Position(position)) = min_position else {
        return Ok(0);
    };
    if position > registry.head() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "position_ahead",
            format!(
                "min_position {position} is past the end of the log ({})",
                registry.head()
            ),
        )
        .at("min_position"));
    }
    if !registry.wait_projected(position, CONSISTENCY_WAIT).await {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "read_model_behind",
            format!("the read models have not reached position {position} yet; retry"),
        )
        .retry_after(Duration::from_secs(1)));
    }
    Ok(position)
}

/// A read model's answer with the position the read models had reached, or 404 `what`.
pub(crate) fn found<T: serde::Serialize>(
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

/// A JSON body already encoded, with the read models' position.
pub(crate) fn json_bytes(registry: &Registry, body: Bytes) -> Response {
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

/// The envelope of a stored event with its hash, as served to auditors and subscribers
/// ([`RecordedEvent::served_json`]): `data` whole, its sealed personal fields opened with the
/// learner's key or, once the key is destroyed, read as erased (`docs/personal-data.md`), and
/// in the current version of its type (`stored_schema_version` names an older stored one).
pub(crate) fn event_json(event: &RecordedEvent) -> Value {
    let mut v = event.served_json().unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("hash".into(), Value::String(event.hash.to_hex()));
    }
    v
}
