//! What the federal segment reads, and the feed of the log.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use contingent_access::{federal_view, Read, Role};
use contingent_log::RecordedEvent;
use contingent_projections::queries;
use serde_json::Value;

use super::{consistent, event_json, AppState};
use crate::answers::{Counts, FederalRegisterPage, FeedPage};
use crate::auth::Auth;
use crate::error::ApiError;
use crate::params::{CountsQuery, FederalRegisterQuery, FeedQuery, Params, Position, UpTo};

pub(crate) async fn federal_register(
    State(registry): AppState,
    auth: Auth,
    Params(q): Params<FederalRegisterQuery>,
) -> Result<Response, ApiError> {
    auth.allow(&registry, Read::FederalRegister).await?;
    let after = q.after.map(|a| a.0.into());
    let limit = q.limit.map_or(100, |UpTo(n)| n).max(1) as i64;
    consistent(&registry, q.min_position).await?;
    let rows = queries::federal_register(registry.read().pool(), after, limit).await?;
    let next_after = if rows.len() as i64 == limit {
        rows.last().map(|r| r.learner_id.to_string())
    } else {
        None
    };
    Ok(Json(FederalRegisterPage {
        learners: rows,
        next_after,
        projected_position: registry.projected(),
    })
    .into_response())
}

pub(crate) async fn federal_counts(
    State(registry): AppState,
    auth: Auth,
    Params(q): Params<CountsQuery>,
) -> Result<Response, ApiError> {
    auth.allow(&registry, Read::FederalCounts).await?;
    let by = q.by.map(|b| b.0).unwrap_or_default();
    let year = q.academic_year.map(|y| y.0);
    consistent(&registry, q.min_position).await?;
    let rows = queries::federal_counts(registry.read().pool(), &by, year).await?;
    Ok(Json(Counts {
        counts: rows,
        projected_position: registry.projected(),
    })
    .into_response())
}

/// The feed. The federal segment receives the documented fields only (its federal view, the
/// data that leaves the region, like `/v1/federal/register`); the region and auditors receive
/// the events as stored, with their hashes, and each page they read is journaled: one entry per
/// learner the page names, before it is answered.
pub(crate) async fn feed(
    State(registry): AppState,
    auth: Auth,
    Params(q): Params<FeedQuery>,
) -> Result<Response, ApiError> {
    auth.allow(&registry, Read::Feed).await?;
    let federal = auth.principal.role == Role::Federal;
    let after = q.after.map_or(0, |Position(p)| p);
    let limit = q.limit.map_or(100, |UpTo(n)| n).max(1) as usize;
    let events = registry.feed(after, limit).await?;
    if !federal {
        let mut learners: Vec<_> = events
            .iter()
            .filter_map(|e| e.envelope.learner_id)
            .collect();
        learners.sort_unstable();
        learners.dedup();
        auth.journal_reads(&registry, learners).await?;
    }
    let shape: fn(&RecordedEvent) -> Value = if federal {
        |e| federal_view(&event_json(e))
    } else {
        event_json
    };
    let next_after = events.last().map(|e| e.position()).unwrap_or(after);
    Ok(Json(FeedPage {
        events: events.iter().map(shape).collect(),
        next_after,
        head: registry.head(),
    })
    .into_response())
}
