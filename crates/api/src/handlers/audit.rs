//! What the log itself says: a learner's history, their state as of a date, the access
//! journal, and `verify`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use contingent_access::Read;
use contingent_registry::verify as verify_chain;

use super::{event_json, learner_id, AppState};
use crate::answers::{AccessLog, History, Verification};
use crate::auth::Auth;
use crate::error::ApiError;
use crate::params::{Params, StateQuery};

pub(crate) async fn history(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = learner_id(&id)?;
    auth.allow(&registry, Read::History(id)).await?;
    let events = registry.history(id).await?;
    if events.is_empty() {
        return Err(ApiError::not_found(
            "learner_not_found",
            "no events about this learner",
        ));
    }
    let altered_positions = events
        .iter()
        .filter(|e| contingent_log::Hash::of(&e.body) != e.hash)
        .map(|e| e.position())
        .collect();
    Ok(Json(History {
        learner_id: *id.as_uuid(),
        events: events.iter().map(event_json).collect(),
        altered_positions,
    })
    .into_response())
}

pub(crate) async fn state_as_of(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
    Params(q): Params<StateQuery>,
) -> Result<Response, ApiError> {
    let id = learner_id(&id)?;
    auth.allow(&registry, Read::LearnerState(id)).await?;
    let snapshot = registry
        .learner_as_of(id, q.known_at.map(|k| k.0), q.as_of.map(|d| d.0))
        .await?;
    match snapshot {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(ApiError::not_found(
            "learner_not_found",
            "the registry knew nothing of this learner then",
        )),
    }
}

pub(crate) async fn access_log(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = learner_id(&id)?;
    auth.allow(&registry, Read::AccessLog(id)).await?;
    let entries = registry.journal().for_learner(&id.to_string()).await?;
    Ok(Json(AccessLog {
        learner_id: *id.as_uuid(),
        entries,
    })
    .into_response())
}

pub(crate) async fn verify(State(registry): AppState, auth: Auth) -> Result<Response, ApiError> {
    auth.allow(&registry, Read::Verify).await?;
    let report = verify_chain(&**registry.log(), |_| {}).await?;
    let status = if report.first_break.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Verification::from(report))).into_response())
}
