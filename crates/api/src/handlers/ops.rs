//! Health, metrics, and the answers for routes and methods that do not exist.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::AppState;
use crate::answers::Health;
use crate::error::ApiError;

pub(crate) async fn healthz(State(registry): AppState) -> Response {
    let health = |status: &str, reason: Option<String>| Health {
        status: status.into(),
        reason,
        log_head: registry.head(),
        projected: registry.projected(),
    };
    match registry.writer_fault() {
        None => Json(health("ok", None)).into_response(),
        // Commands are refused until the writer has read the log after a failed append; reads
        // still work.
        Some(fault) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(health("refusing_commands", Some(fault.to_string()))),
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
