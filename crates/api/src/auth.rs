//! Authentication and the access journal at the HTTP edge: the [`Auth`] extractor verifies the
//! bearer token (401 otherwise), [`Auth::allow`] checks a read against the policy (403
//! otherwise), and both journal what the access journal must hold.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use chrono::Utc;
use contingent_access::{Principal, Read, TokenVerifier};
use contingent_domain::LearnerId;
use contingent_registry::{JournalEntry, Registry};

use crate::error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The registry.
    pub registry: Arc<Registry>,
    /// The token checker.
    pub verifier: Arc<TokenVerifier>,
    /// Diaries kept while nothing about their learner changes.
    pub(crate) cache: Arc<crate::cache::ReadCache>,
}

impl FromRef<AppState> for Arc<Registry> {
    fn from_ref(state: &AppState) -> Self {
        state.registry.clone()
    }
}

/// A caller with a verified token.
pub struct Auth {
    /// Who.
    pub principal: Principal,
    method: String,
    path: String,
}

/// The learner named in a path like `/v1/learners/{id}/…`.
fn learner_in_path(path: &str) -> Option<LearnerId> {
    path.strip_prefix("/v1/learners/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

async fn journal(registry: &Registry, entry: JournalEntry) -> Result<(), ApiError> {
    registry
        .journal()
        .record(entry)
        .await
        .map_err(ApiError::from)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let method = parts.method.to_string();
        let path = parts.uri.path().to_owned();
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let verified = match token {
            None => Err("send Authorization: Bearer <token> from the regional sign-on".to_owned()),
            Some(t) => state.verifier.verify(t).map_err(|e| e.to_string()),
        };
        match verified {
            Ok(principal) => Ok(Auth {
                principal,
                method,
                path,
            }),
            Err(detail) => {
                journal(
                    &state.registry,
                    JournalEntry {
                        at: Utc::now(),
                        subject: "anonymous".into(),
                        role: "none".into(),
                        learner_id: learner_in_path(&path).map(|l| l.to_string()),
                        method,
                        endpoint: path,
                        status: 401,
                        outcome: "unauthenticated".into(),
                    },
                )
                .await?;
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    detail,
                ))
            }
        }
    }
}

impl Auth {
    fn entry(&self, learner: Option<LearnerId>, status: u16, outcome: &str) -> JournalEntry {
        JournalEntry {
            at: Utc::now(),
            subject: self.principal.subject.clone(),
            role: self.principal.role.as_str().to_owned(),
            learner_id: learner.map(|l| l.to_string()),
            method: self.method.clone(),
            endpoint: self.path.clone(),
            status,
            outcome: outcome.to_owned(),
        }
    }

    /// Checks a read. Refusals are journaled and answered 403; an official's read of a
    /// learner's personal data is journaled before it is answered.
    pub async fn allow(&self, registry: &Registry, read: Read) -> Result<(), ApiError> {
        let learner = read.learner();
        match registry.authorize_read(&self.principal, &read) {
            Ok(()) => {
                if self.principal.role.is_official() && learner.is_some() {
                    journal(registry, self.entry(learner, 200, "read")).await?;
                }
                Ok(())
            }
            Err(denied) => {
                journal(registry, self.entry(learner, 403, "refused")).await?;
                Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", denied.0))
            }
        }
    }

    /// Journals reads of several learners' personal data at once (search results, rosters).
    pub async fn journal_reads(
        &self,
        registry: &Registry,
        learners: impl IntoIterator<Item = LearnerId>,
    ) -> Result<(), ApiError> {
        if !self.principal.role.is_official() {
            return Ok(());
        }
        let entries: Vec<JournalEntry> = learners
            .into_iter()
            .map(|l| self.entry(Some(l), 200, "read"))
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        registry
            .journal()
            .record_all(entries)
            .await
            .map_err(ApiError::from)
    }

    /// Journals a refused command.
    pub async fn refused(
        &self,
        registry: &Registry,
        learner: Option<LearnerId>,
    ) -> Result<(), ApiError> {
        journal(registry, self.entry(learner, 403, "refused")).await
    }
}
