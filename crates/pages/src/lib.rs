//! Server-rendered pages for people, in Russian, readable without JavaScript: the sign-on, the
//! parent's and learner's diary, the teacher's class register, the school's classes and queue,
//! the auditor's timeline and the analyst's tables.
//!
//! A page is a view of what the signed-in caller's token may see: every page checks its reads
//! with the same policy and journals them as the API does (`contingent_api::Auth`), reads the
//! same queries, and submits commands through the same path as `POST /v1/commands/{name}`
//! (`contingent_api::submit`). The session is a server-side record behind an HTTP-only,
//! `SameSite=Strict` cookie; every form carries the session's CSRF token.
#![deny(missing_docs)]

mod analytics;
mod audit;
mod charts;
mod diary;
mod layout;
mod oidc;
mod register;
mod school;
mod session;
mod tally;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use contingent_access::{Claims, LocalIssuer, Role, TokenVerifier};
use contingent_registry::Registry;
use serde::{Deserialize, Serialize};

pub use oidc::{Oidc, OidcSettings, SignOnError};
pub use session::Sessions;

/// An account the embedded sign-on offers (the demo's roles).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// Who it is, in Russian, as the sign-on page shows it.
    pub label: String,
    /// The claims its token carries.
    pub claims: Claims,
    /// The page to open after signing in, if not the role's main page.
    #[serde(default)]
    pub start: Option<String>,
}

/// How people sign in.
#[derive(Default)]
pub struct SignOn {
    /// The embedded sign-on: the registry's own key signs a token for a chosen account.
    pub issuer: Option<Arc<LocalIssuer>>,
    /// The accounts offered with it.
    pub accounts: Vec<Account>,
    /// The regional sign-on by OpenID Connect, when one is configured.
    pub oidc: Option<Arc<Oidc>>,
}

impl SignOn {
    /// The accounts kept in `path` (JSON, as `contingent demo` writes them), none when there is
    /// no such file.
    pub fn read_accounts(path: &std::path::Path) -> std::io::Result<Vec<Account>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// What every page shares.
#[derive(Clone)]
pub(crate) struct PagesState {
    pub registry: Arc<Registry>,
    pub verifier: Arc<TokenVerifier>,
    pub sign_on: Arc<SignOn>,
    pub sessions: Arc<Sessions>,
    /// The API's per-caller rate, which page views count against too.
    pub rate: contingent_api::CallerRate,
    /// The data-quality panel's counts folded from the log, kept between page views.
    pub fold: Arc<tally::Fold>,
}

/// The pages' router, to serve beside the API's through
/// [`contingent_api::router_with_pages`], which hands it the API's per-caller `rate`: `/`,
/// `/signin`, `/signout`, `/diary`, `/register`, `/school`, `/audit`, `/analytics` (with
/// `/analytics/movements`, `/analytics/queues`, `/analytics/exams`) and `/assets/site.css`.
pub fn router(
    registry: Arc<Registry>,
    verifier: Arc<TokenVerifier>,
    sign_on: SignOn,
    rate: contingent_api::CallerRate,
) -> Router {
    let state = PagesState {
        registry,
        verifier,
        sign_on: Arc::new(sign_on),
        sessions: Arc::new(Sessions::default()),
        rate,
        fold: Arc::new(tally::Fold::new(tally::INLINE_FOLD)),
    };
    Router::new()
        .route("/", get(home))
        .route("/assets/site.css", get(stylesheet))
        .route("/signin", get(session::sign_in_page).post(session::sign_in))
        .route("/signin/oidc", get(session::oidc_begin))
        .route("/signin/oidc/callback", get(session::oidc_callback))
        .route("/signout", post(session::sign_out))
        .route("/diary", get(diary::children))
        .route("/diary/{learner}", get(diary::diary))
        .route("/register", get(register::classes))
        .route("/register/{class}", get(register::register))
        .route("/register/{class}/mark", post(register::record_mark))
        .route("/register/{class}/correct", post(register::correct_mark))
        .route(
            "/register/{class}/attendance",
            post(register::record_attendance),
        )
        .route("/school", get(school::school))
        .route("/school/enroll", post(school::enroll))
        .route("/audit", get(audit::audit))
        .route("/audit/learner", get(audit::open_learner))
        .route("/audit/learners/{learner}", get(audit::timeline))
        .route("/analytics", get(analytics::analytics))
        .route("/analytics/movements", get(analytics::movements_page))
        .route("/analytics/queues", get(analytics::queues_page))
        .route("/analytics/exams", get(analytics::exams_page))
        .route("/analytics/{table}", get(analytics::csv))
        .with_state(state)
}

/// The main page of a role.
pub(crate) fn main_page(role: Role) -> &'static str {
    match role {
        Role::Parent | Role::Learner => "/diary",
        Role::Teacher => "/register",
        Role::Organization => "/school",
        Role::Auditor => "/audit",
        Role::Municipality | Role::Region => "/analytics",
        _ => "/signin",
    }
}

async fn home(State(state): State<PagesState>, headers: axum::http::HeaderMap) -> Response {
    match state.sessions.of(&headers) {
        Some(s) => Redirect::to(main_page(s.principal.role)).into_response(),
        None => Redirect::to("/signin").into_response(),
    }
}

async fn stylesheet() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        layout::CSS,
    )
        .into_response()
}
