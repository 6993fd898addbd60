//! The auditor's endpoints: the background audit of the log (`/v1/audit/verify`) and the signed
//! checkpoints of its head (`/v1/audit/checkpoints`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use contingent_access::Read;
use contingent_registry::{Registry, VerifyJobState};

use crate::answers::{AuditState, CheckpointView, Checkpoints};
use crate::auth::Auth;
use crate::error::ApiError;
use crate::params::{Params, VerifyQuery};

type AppState = State<Arc<Registry>>;

/// `GET /v1/audit/verify[?wait=SECONDS]`: the last audit's result with its time and head, and
/// whether one runs now; the first request ever starts one. With `wait`, first waits up to that
/// many seconds (at most 30) for a running audit to end. 409 when the last audit found damage.
pub(crate) async fn verify(
    State(registry): AppState,
    auth: Auth,
    Params(q): Params<VerifyQuery>,
) -> Result<Response, ApiError> {
    auth.allow(&registry, Read::Verify).await?;
    let wait = q.wait.map_or(0, |w| w.0);
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
    (status, Json(AuditState::from(state))).into_response()
}

/// `GET /v1/audit/checkpoints`: the signed checkpoints of the log's head, in order of position,
/// for auditors to keep (`contingent verify --against FILE`).
pub(crate) async fn checkpoints(
    State(registry): AppState,
    auth: Auth,
) -> Result<Response, ApiError> {
    auth.allow(&registry, Read::Verify).await?;
    let checkpoints = registry
        .checkpoints()
        .await?
        .into_iter()
        .map(|c| CheckpointView {
            position: c.position,
            head_hash: c.head_hash.to_hex(),
            time: c.time,
            key_id: c.key_id,
            signature: c.signature,
        })
        .collect();
    Ok(Json(Checkpoints { checkpoints }).into_response())
}
