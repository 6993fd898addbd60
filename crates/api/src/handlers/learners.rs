//! The register and the diary: `/v1/learners`, `/v1/learners/{id}`, `/v1/learners/{id}/diary`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use contingent_access::Read;
use contingent_projections::queries::{self, LearnerSearch};

use super::{consistent, found, json_bytes, learner_id, AppState};
use crate::answers::LearnerSearchResult;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::params::{Consistency, DiaryQuery, LearnerSearchQuery, Params, UpTo};

pub(crate) async fn find_learners(
    State(registry): AppState,
    auth: Auth,
    Params(q): Params<LearnerSearchQuery>,
) -> Result<Response, ApiError> {
    consistent(&registry, q.min_position).await?;
    let organization = q.organization_id.map(|o| o.0.into());
    auth.allow(&registry, Read::SearchLearners { organization })
        .await?;
    let search = LearnerSearch {
        snils: q.snils.map(|s| s.0),
        surname: q.surname,
        name: q.name,
        birth_date: q.birth_date.map(|d| d.0),
        organization_id: q.organization_id.map(|o| o.0.into()),
        limit: q.limit.map_or(100, |UpTo(n)| n) as i64,
    };
    if search.snils.is_none() && search.surname.is_none() && search.organization_id.is_none() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "give snils, surname or organization_id",
        ));
    }
    let rows = queries::find_learners(registry.read().pool(), &search).await?;
    auth.journal_reads(&registry, rows.iter().map(|r| r.learner_id))
        .await?;
    Ok(Json(LearnerSearchResult { learners: rows }).into_response())
}

pub(crate) async fn learner(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
    Params(q): Params<Consistency>,
) -> Result<Response, ApiError> {
    let id = learner_id(&id)?;
    auth.allow(&registry, Read::LearnerCard(id)).await?;
    consistent(&registry, q.min_position).await?;
    let card = queries::learner(registry.read().pool(), id).await?;
    found(&registry, card, "learner_not_found")
}

pub(crate) async fn diary(
    State(app): State<crate::auth::AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Params(q): Params<DiaryQuery>,
) -> Result<Response, ApiError> {
    let registry = &app.registry;
    let id = learner_id(&id)?;
    auth.allow(registry, Read::Diary(id)).await?;
    let year = q.academic_year.map(|y| y.0);
    let min_position = consistent(registry, q.min_position).await?;
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
    let Some(diary) = queries::diary(registry.read(), id, year).await? else {
        return Err(ApiError::not_found(
            "learner_not_found",
            "not in the registry",
        ));
    };
    let body = encode_diary(&diary)?;
    if needed.is_some() && read_at <= registry.head() {
        app.cache.keep_diary(key, read_at, body.clone());
    }
    Ok(json_bytes(registry, body))
}

thread_local! {
    /// Where this thread encodes diaries: kept between answers, so a year's diary (~18 KB) is
    /// not written into a buffer doubled and copied on the way.
    static ENCODING: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The diary as JSON, in an allocation of exactly its length (what the read cache counts).
fn encode_diary(diary: &queries::Diary) -> Result<Bytes, ApiError> {
    ENCODING.with_borrow_mut(|buffer| {
        buffer.clear();
        let encoded = serde_json::to_writer(&mut *buffer, diary).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                format!("encoding the diary: {e}"),
            )
        });
        let body = encoded.map(|()| Bytes::copy_from_slice(buffer));
        // One unusually long diary does not stay held by the thread.
        buffer.shrink_to(256 * 1024);
        body
    })
}
