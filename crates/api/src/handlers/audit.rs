//! What the log itself says about a learner: their history and their state as of a date (to a
//! school that no longer holds them, only its own time with them), and the access journal.
//! The audit of the whole log is in `crate::audit`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use contingent_access::Read;

use super::{event_json, learner_id, AppState};
use crate::answers::{AccessLog, History};
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
    let mut events = registry.history(id).await?;
    let scope = registry.read_state(|s| contingent_access::learner_scope(s, &auth.principal, id));
    events.retain(|e| scope.admits(&e.envelope.event));
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
    let mut events = registry.history(id).await?;
    let scope = registry.read_state(|s| contingent_access::learner_scope(s, &auth.principal, id));
    events.retain(|e| scope.admits(&e.envelope.event));
    let snapshot = contingent_registry::LearnerSnapshot::fold(
        id,
        &events,
        q.known_at.map(|k| k.0),
        q.as_of.map(|d| d.0),
    );
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
