//! What the log itself says about a learner: their history and their state as of a date (to a
//! school that no longer holds them, only its own time with them), and the access journal.
//! The audit of the whole log is in `crate::audit`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use contingent_access::Read;

use super::{event_json, learner_id, AppState};
use crate::answers::{AccessLog, History, SubjectAccessExport};
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

/// Everything held about a learner (152-FZ art. 14): their history read with their keys, their
/// register entry and diary, and the access journal's entries about them.
async fn gather(
    registry: &contingent_registry::Registry,
    auth: &Auth,
    id: &str,
) -> Result<SubjectAccessExport, ApiError> {
    let id = learner_id(id)?;
    auth.allow(registry, Read::Export(id)).await?;
    let position = registry.head();
    super::consistent(registry, Some(crate::params::Position(position))).await?;
    let events = registry.history(id).await?;
    if events.is_empty() {
        return Err(ApiError::not_found(
            "learner_not_found",
            "no events about this learner",
        ));
    }
    let pool = registry.read().pool();
    let register = contingent_projections::queries::learner(pool, id).await?;
    let diary = contingent_projections::queries::diary(registry.read(), id, None).await?;
    let access_journal = registry.journal().for_learner(&id.to_string()).await?;
    Ok(SubjectAccessExport {
        learner_id: *id.as_uuid(),
        generated_at: chrono::Utc::now(),
        position,
        history: events.iter().map(event_json).collect(),
        register,
        diary,
        access_journal,
    })
}

pub(crate) async fn export(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(gather(&registry, &auth, &id).await?).into_response())
}

pub(crate) async fn export_text(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let export = gather(&registry, &auth, &id).await?;
    let text = render_text(&export);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The export as text: each part under a heading, each value on a line of its own as
/// `path: value`.
fn render_text(export: &SubjectAccessExport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Everything the regional learner registry holds about learner {}\nMade {} at log position {}.\n",
        export.learner_id,
        export.generated_at.to_rfc3339(),
        export.position
    );
    let value = serde_json::to_value(export).unwrap_or_default();
    for (part, title) in [
        ("register", "Register entry"),
        ("diary", "Diary"),
        ("history", "Events recorded"),
        ("access_journal", "Who has read these data"),
    ] {
        let _ = writeln!(out, "== {title} ==");
        flatten(&mut out, "", &value[part]);
        out.push('\n');
    }
    out
}

fn flatten(out: &mut String, path: &str, value: &serde_json::Value) {
    use serde_json::Value;
    use std::fmt::Write as _;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| flatten(out, &join(k), v)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| flatten(out, &join(&(i + 1).to_string()), v)),
        Value::Null => {}
        Value::String(s) => {
            let _ = writeln!(out, "{path}: {s}");
        }
        other => {
            let _ = writeln!(out, "{path}: {other}");
        }
    }
}
