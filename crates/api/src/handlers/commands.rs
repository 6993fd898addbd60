//! `POST /v1/commands/{name}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use contingent_registry::{Receipt, Registry};
use serde_json::Value;

use super::AppState;
use crate::auth::Auth;
use crate::commands::{metadata, parse_command, status_of};
use crate::error::ApiError;

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
    let receipt = submit(&registry, &auth, &name, value, &headers).await?;
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

/// Parses a command body (`name` and its JSON), submits it as the caller and journals a refusal
/// outside the caller's reach: the one path of every command, whether it came as JSON or from a
/// page's form. `headers` give the `Idempotency-Key`, `X-Actor` and `X-Source`.
pub async fn submit(
    registry: &Registry,
    auth: &Auth,
    name: &str,
    value: Value,
    headers: &HeaderMap,
) -> Result<Receipt, ApiError> {
    let fingerprint = crate::commands::fingerprint(name, &value);
    let command = parse_command(name, value)?;
    let meta = metadata(headers, &command, &auth.principal, fingerprint)?;
    let learner = registry.read_state(|s| contingent_access::command_learner(s, &command));
    match registry.submit_as(&auth.principal, command, meta).await {
        Err(contingent_registry::RegistryError::Forbidden(detail)) => {
            auth.refused(registry, learner).await?;
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail))
        }
        other => Ok(other?),
    }
}
