//! The HTTP API (axum): commands, queries of every read model, learner history and state as of
//! a date, the federal feed paging through the log by position, `/openapi.json`, `/healthz` and
//! `/metrics`. Every error is `application/problem+json` with a stable code; malformed or
//! oversized input never yields a 500.
//!
//! Only this crate knows HTTP. It turns requests into commands and queries and hands them to the
//! [`Registry`]; it decides nothing itself.
#![deny(missing_docs)]

mod answers;
mod audit;
mod auth;
mod cache;
mod commands;
mod error;
mod guard;
mod handlers;
mod openapi;
mod params;

use std::sync::Arc;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use contingent_access::TokenVerifier;
use contingent_registry::Registry;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;

pub use auth::{AppState, Auth};
pub use error::ApiError;
pub use handlers::commands::submit;

/// Builds the router over a running registry, accepting tokens that `verifier` accepts.
pub fn router(registry: Arc<Registry>, verifier: Arc<TokenVerifier>) -> Router {
    let cache_bytes = registry.settings().read_cache_bytes;
    router_with_cache(registry, verifier, cache_bytes)
}

/// [`router`] with `pages` (routes of another crate, such as the site's) served beside it under
/// the same bounds: one concurrency limit shared by both, shedding at once past it, the same
/// request timeout, and the same per-caller rate (`pages` is given the [`CallerRate`] to count
/// a signed-in person's requests with).
pub fn router_with_pages(
    registry: Arc<Registry>,
    verifier: Arc<TokenVerifier>,
    pages: impl FnOnce(CallerRate) -> Router,
) -> Router {
    let cache_bytes = registry.settings().read_cache_bytes;
    let (api, bounds) = api_router(registry, verifier, cache_bytes);
    let pages = pages(bounds.rate.clone());
    api.merge(bounds.apply(pages))
}

/// The API's per-caller rate, for routes of other crates: a person's page views count against
/// the same rate as their API calls (by the token's subject).
#[derive(Clone)]
pub struct CallerRate {
    guard: Arc<guard::Guard>,
    metrics: Arc<contingent_registry::Metrics>,
}

impl CallerRate {
    /// Counts a request of `subject`; past the caller's rate, how long until one is served again
    /// (counted in `contingent_requests_rate_limited_total` as the API's 429s are).
    pub fn admit(&self, subject: &str) -> Result<(), std::time::Duration> {
        self.guard.caller(subject).map_err(|over| {
            self.metrics
                .requests_rate_limited
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            over.retry_after
        })
    }
}

/// [`router`] keeping at most `cache_bytes` of diaries (none when 0) whatever the settings say.
pub fn router_with_cache(
    registry: Arc<Registry>,
    verifier: Arc<TokenVerifier>,
    cache_bytes: u64,
) -> Router {
    api_router(registry, verifier, cache_bytes).0
}

/// The bounds of the routes a caller reaches: one concurrency limit for all of them (shed at
/// once past it, not queued) and a request timeout, refused as `503` problems.
#[derive(Clone)]
struct Bounds {
    rate: CallerRate,
    permits: Arc<tokio::sync::Semaphore>,
    timeout: std::time::Duration,
    metrics: Arc<contingent_registry::Metrics>,
}

impl Bounds {
    fn apply<S: Clone + Send + Sync + 'static>(&self, routes: Router<S>) -> Router<S> {
        let metrics = self.metrics.clone();
        routes.layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |error: BoxError| {
                    let metrics = metrics.clone();
                    async move { limits::refusal(&metrics, &error) }
                }))
                .load_shed()
                // One limit for everything: `Router::layer` wraps each route on its own.
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(
                    self.permits.clone(),
                ))
                .timeout(self.timeout),
        )
    }
}

fn api_router(
    registry: Arc<Registry>,
    verifier: Arc<TokenVerifier>,
    cache_bytes: u64,
) -> (Router, Bounds) {
    let limit = registry.settings().max_body_bytes;
    let limits = registry.settings().limits.clone();
    let cache = Arc::new(cache::ReadCache::new(cache_bytes));
    let guard = Arc::new(guard::Guard::new(&limits));
    guard.spawn_summaries(&registry);
    let bounds = Bounds {
        rate: CallerRate {
            guard: guard.clone(),
            metrics: registry.metrics().clone(),
        },
        permits: Arc::new(tokio::sync::Semaphore::new(
            limits.max_concurrent_requests.max(1),
        )),
        timeout: limits.request_timeout,
        metrics: registry.metrics().clone(),
    };
    let state = AppState {
        registry,
        verifier,
        cache,
        guard,
    };
    // Probes and the contract are served whatever the load, outside the limits.
    let outside_limits = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/healthz", get(handlers::healthz))
        .route("/metrics", get(handlers::metrics));
    let api = Router::new()
        .route("/v1/commands/{name}", post(handlers::command))
        .route("/v1/learners", get(handlers::find_learners))
        .route("/v1/learners/{id}", get(handlers::learner))
        .route("/v1/learners/{id}/diary", get(handlers::diary))
        .route("/v1/learners/{id}/history", get(handlers::history))
        .route("/v1/learners/{id}/state", get(handlers::state_as_of))
        .route("/v1/learners/{id}/access", get(handlers::access_log))
        .route("/v1/learners/{id}/export", get(handlers::export))
        .route("/v1/learners/{id}/export.txt", get(handlers::export_text))
        .route("/v1/organizations", get(handlers::organizations))
        .route("/v1/organizations/{id}/queue", get(handlers::queue))
        .route("/v1/classes/{id}/register", get(handlers::class_register))
        .route("/v1/vacancies", get(handlers::vacancies))
        .route("/v1/federal/register", get(handlers::federal_register))
        .route("/v1/federal/counts", get(handlers::federal_counts))
        .route("/v1/feed", get(handlers::feed))
        .route(
            "/v1/audit/verify",
            get(audit::verify).post(audit::start_verify),
        )
        .route("/v1/audit/checkpoints", get(audit::checkpoints))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed);
    let router = bounds
        .apply(api)
        .merge(outside_limits)
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(handlers::panicked))
        .with_state(state);
    (router, bounds)
}

/// Serves the router on a listener with each connection's address known to it (the rate of
/// refused requests is kept per address), until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

mod limits {
    use std::sync::atomic::Ordering;

    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use contingent_registry::Metrics;
    use tower::BoxError;

    use crate::error::ApiError;

    /// The answer to a request the API would not serve: over the concurrency limit (shed at
    /// once rather than queued) or past the request timeout.
    pub(crate) fn refusal(metrics: &Metrics, error: &BoxError) -> Response {
        let one_second = std::time::Duration::from_secs(1);
        if error.is::<tower::load_shed::error::Overloaded>() {
            metrics.requests_shed.fetch_add(1, Ordering::Relaxed);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the registry is serving as many requests as it can; retry after the time given",
            )
            .retry_after(one_second)
            .into_response()
        } else if error.is::<tower::timeout::error::Elapsed>() {
            metrics.requests_timed_out.fetch_add(1, Ordering::Relaxed);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the request took longer than the registry allows; a command may still be recorded, so retry it with the same Idempotency-Key",
            )
            .retry_after(one_second)
            .into_response()
        } else {
            tracing::error!(%error, "request failed in a middleware");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the registry could not serve the request; retry",
            )
            .retry_after(one_second)
            .into_response()
        }
    }
}

/// The paths the API serves, as documented in `/openapi.json`: each command is documented at
/// `/v1/commands/{name}` and at its own path, with its body alone.
pub const PATHS: &[&str] = &[
    "/v1/commands/{name}",
    "/v1/commands/register_organization",
    "/v1/commands/open_class",
    "/v1/commands/change_class_capacity",
    "/v1/commands/assign_teacher",
    "/v1/commands/unassign_teacher",
    "/v1/commands/register_birth",
    "/v1/commands/register_learner",
    "/v1/commands/record_snils",
    "/v1/commands/register_death",
    "/v1/commands/link_guardian",
    "/v1/commands/submit_application",
    "/v1/commands/withdraw_application",
    "/v1/commands/reject_application",
    "/v1/commands/enroll",
    "/v1/commands/transfer",
    "/v1/commands/record_mark",
    "/v1/commands/correct_mark",
    "/v1/commands/record_attendance",
    "/v1/commands/record_exam_result",
    "/v1/commands/leave",
    "/v1/commands/erase_personal_data",
    "/v1/learners",
    "/v1/learners/{id}",
    "/v1/learners/{id}/diary",
    "/v1/learners/{id}/history",
    "/v1/learners/{id}/state",
    "/v1/learners/{id}/access",
    "/v1/learners/{id}/export",
    "/v1/learners/{id}/export.txt",
    "/v1/organizations",
    "/v1/organizations/{id}/queue",
    "/v1/classes/{id}/register",
    "/v1/vacancies",
    "/v1/federal/register",
    "/v1/federal/counts",
    "/v1/feed",
    "/v1/audit/verify",
    "/v1/audit/checkpoints",
    "/openapi.json",
    "/healthz",
    "/metrics",
];
