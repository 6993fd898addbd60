//! The auditor's endpoints: the background audit of the log (`/v1/audit/verify`) and the signed
//! checkpoints of its head (`/v1/audit/checkpoints`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use contingent_access::Read;
use contingent_registry::{Registry, VerifyJobState};
use serde_json::json;

use crate::auth::Auth;
use crate::error::ApiError;

type AppState = State<Arc<Registry>>;

/// The longest `wait` a caller may ask for, in seconds.
const MAX_WAIT_SECONDS: u64 = 30;

/// `GET /v1/audit/verify[?wait=SECONDS]`: the last audit's result with its time and head, and
/// whether one runs now; the first request ever starts one. With `wait`, first waits up to that
/// many seconds (at most 30) for a running audit to end. 409 when the last audit found damage.
pub(crate) async fn verify(
    State(registry): AppState,
    auth: Auth,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    auth.allow(&registry, Read::Verify).await?;
    let query = query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let wait = match query.get("wait") {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= MAX_WAIT_SECONDS)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS}"),
                )
            })?,
    };
    let mut state = registry.verify_job().state();
    if state.last.is_none() && state.running.is_none() {
        state = registry.start_verify();
    }
    if wait > 0 {
        state = registry.verify_job().wait(Duration::from_secs(wait)).await;
    }
    Ok(answer(state, StatusCode::OK))
}

/// `POST /v1/audit/verify`: starts an audit unless one runs (202 either way, with the state).
pub(crate) async fn start_verify(
    State(registry): AppState,
    auth: Auth,
) -> Result<Response, ApiError> {
    auth.allow(&registry, Read::Verify).await?;
    Ok(answer(registry.start_verify(), StatusCode::ACCEPTED))
}

fn answer(state: VerifyJobState, status: StatusCode) -> Response {
    let damaged = state
        .last
        .as_ref()
        .and_then(|run| run.report.as_ref())
        .is_some_and(|report| !report.is_ok());
    let status = if damaged && status == StatusCode::OK {
        StatusCode::CONFLICT
    } else {
        status
    };
    (status, Json(state)).into_response()
}

/// `GET /v1/audit/checkpoints`: the signed checkpoints of the log's head, in order of position,
/// for auditors to keep (`contingent verify --against FILE`).
pub(crate) async fn checkpoints(
    State(registry): AppState,
    auth: Auth,
) -> Result<Response, ApiError> {
    auth.allow(&registry, Read::Verify).await?;
    let checkpoints = registry.checkpoints().await?;
    Ok(Json(json!({ "checkpoints": checkpoints })).into_response())
}
