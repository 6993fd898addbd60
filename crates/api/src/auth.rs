//! Authentication and the access journal at the HTTP edge: the [`Auth`] extractor verifies the
//! bearer token (401 otherwise; 429 for an address past its rate of refusals) and holds each
//! caller to its rate (429), [`Auth::allow`] checks a read against the policy (403 otherwise),
//! and both journal what the access journal must hold.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use chrono::Utc;
use contingent_access::{Principal, Read, TokenVerifier};
use contingent_domain::LearnerId;
use contingent_registry::{JournalEntry, Registry};

use crate::error::ApiError;
use crate::guard::{Guard, OverRate, UNKNOWN_ADDRESS};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The registry.
    pub registry: Arc<Registry>,
    /// The token checker.
    pub verifier: Arc<TokenVerifier>,
    /// Diaries kept while nothing about their learner changes.
    pub(crate) cache: Arc<crate::cache::ReadCache>,
    /// Rates per caller and per address, and the count of refused anonymous requests.
    pub(crate) guard: Arc<Guard>,
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
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(UNKNOWN_ADDRESS, |c| c.0.ip());
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let remembered = token.and_then(|t| state.verifier.remembered(t));
        let principal = match remembered {
            Some(principal) => principal,
            None => {
                if let Some(over) = state.guard.blocked(address) {
                    return Err(anonymous_refusal(state, Some(over)).await);
                }
                let verified = match token {
                    None => Err(
                        "send Authorization: Bearer <token> from the regional sign-on".to_owned(),
                    ),
                    Some(t) => state.verifier.verify(t).map_err(|e| e.to_string()),
                };
                match verified {
                    Ok(principal) => principal,
                    Err(detail) => {
                        let over = state.guard.refused(address).err();
                        let refusal = anonymous_refusal(state, over).await;
                        return Err(if over.is_some() {
                            refusal
                        } else {
                            ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
                        });
                    }
                }
            }
        };
        if let Err(over) = state.guard.caller(&principal.subject) {
            state
                .registry
                .metrics()
                .requests_rate_limited
                .fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::too_many_requests(
                "this account is sending requests faster than the registry serves one caller; retry after the time given",
                over.retry_after,
            ));
        }
        Ok(Auth {
            principal,
            method,
            path,
        })
    }
}

/// Counts a request refused without a valid token: not journaled one by one (its path and
/// token are the sender's choice), but counted in `/metrics` and summed up in the journal once
/// per period. The answer is 429 when the address is over its rate of refusals.
async fn anonymous_refusal(state: &AppState, over: Option<OverRate>) -> ApiError {
    let metrics = state.registry.metrics();
    metrics
        .requests_unauthenticated
        .fetch_add(1, Ordering::Relaxed);
    if over.is_some() {
        metrics
            .requests_rate_limited
            .fetch_add(1, Ordering::Relaxed);
    }
    if let Some(entry) = state.guard.anonymous(over.is_some()) {
        if let Err(error) = journal(&state.registry, entry).await {
            tracing::warn!(%error, "journaling the count of refused anonymous requests failed");
        }
    }
    match over {
        Some(over) => ApiError::too_many_requests(
            "too many requests without a valid token from this address; retry after the time given",
            over.retry_after,
        ),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send Authorization: Bearer <token> from the regional sign-on",
        ),
    }
}

impl Auth {
    /// A caller whose principal was established otherwise than by a bearer token (a page's
    /// session), for the request `method path`: its reads are checked and journaled as the
    /// API's are.
    pub fn new(principal: Principal, method: &str, path: &str) -> Self {
        Auth {
            principal,
            method: method.to_owned(),
            path: path.to_owned(),
        }
    }

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
                if matches!(read, Read::Export(_)) {
                    // Journaled whoever asks: the subject's own request is a fact too.
                    journal(registry, self.entry(learner, 200, "export")).await?;
                } else if self.principal.role.is_official() && learner.is_some() {
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
