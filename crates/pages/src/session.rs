//! Sessions: a random id in an HTTP-only, `SameSite=Strict` cookie names a server-side record of
//! the principal (verified from a token exactly as the API verifies a bearer token) and the
//! session's CSRF token, which every form carries and every `POST` must send back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use contingent_access::Principal;
use contingent_api::Auth;
use maud::html;
use serde::Deserialize;

use crate::layout::{self, refusal_page};
use crate::PagesState;

/// The session cookie.
pub(crate) const COOKIE: &str = "contingent_session";
/// The cookie that ties the sign-in form to the browser that asked for it.
const SIGNIN_COOKIE: &str = "contingent_signin";
/// How long a session lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// A signed-in person.
#[derive(Clone)]
pub(crate) struct Session {
    pub principal: Principal,
    pub csrf: String,
    expires: Instant,
}

/// The sessions of this process (signing in again is needed after a restart).
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Sessions {
    fn open(&self, principal: Principal) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, s| s.expires > now);
        open.insert(
            id.clone(),
            Session {
                principal,
                csrf: random_token(),
                expires: now + LIFETIME,
            },
        );
        id
    }

    /// The session the request's cookie names, if it is open.
    pub(crate) fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            self.open
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id);
        }
    }
}

/// A signed-in caller of a page: their principal and an [`Auth`] for the request, through which
/// reads are checked and journaled as the API's are.
pub(crate) struct Viewer {
    pub session: Session,
    pub auth: Auth,
}

impl Viewer {
    pub fn principal(&self) -> &Principal {
        &self.session.principal
    }

    /// Checks a further read of the same page about the same learner: journaled only when it
    /// is refused, since the page's first read was journaled already (one entry per page).
    pub async fn allow_also(
        &self,
        registry: &contingent_registry::Registry,
        read: contingent_access::Read,
    ) -> Result<(), contingent_api::ApiError> {
        match registry.authorize_read(self.principal(), &read) {
            Ok(()) => Ok(()),
            Err(_) => self.auth.allow(registry, read).await,
        }
    }

    /// The refusal of a form whose CSRF token is not the session's, if it is not.
    pub fn refuse_csrf(&self, sent: &str) -> Option<Response> {
        if !sent.is_empty() && constant_time_eq(sent.as_bytes(), self.session.csrf.as_bytes()) {
            None
        } else {
            Some(refusal_page(
                StatusCode::FORBIDDEN,
                "Форма устарела",
                "Форма отправлена без действующего ключа защиты (CSRF). Откройте страницу заново и повторите.",
                Some(self.principal()),
            ))
        }
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<PagesState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PagesState,
    ) -> Result<Self, Self::Rejection> {
        match state.sessions.of(&parts.headers) {
            Some(session) => {
                if let Err(retry_after) = state.rate.admit(&session.principal.subject) {
                    let mut page = refusal_page(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Слишком много запросов",
                        "С этой учётной записи приходит больше запросов, чем реестр обслуживает для одного пользователя. Повторите через несколько секунд.",
                        Some(&session.principal),
                    );
                    let seconds = retry_after.as_secs().max(1).to_string();
                    if let Ok(value) = axum::http::HeaderValue::from_str(&seconds) {
                        page.headers_mut()
                            .insert(axum::http::header::RETRY_AFTER, value);
                    }
                    return Err(page);
                }
                let auth = Auth::new(
                    session.principal.clone(),
                    parts.method.as_str(),
                    parts.uri.path(),
                );
                Ok(Viewer { session, auth })
            }
            None if parts.method == axum::http::Method::GET => {
                Err(Redirect::to("/signin").into_response())
            }
            None => Err(refusal_page(
                StatusCode::UNAUTHORIZED,
                "Нужен вход",
                "Войдите, чтобы продолжить.",
                None,
            )),
        }
    }
}

/// `GET /signin`: the sign-on page. With the embedded sign-on, one button per account; always,
/// a field for a token issued by the sign-on (`contingent token`, or the regional sign-on's).
pub(crate) async fn sign_in_page(State(state): State<PagesState>) -> Response {
    let nonce = random_token();
    let accounts = if state.sign_on.issuer.is_some() {
        state.sign_on.accounts.as_slice()
    } else {
        &[]
    };
    let body = html! {
        h1 { "Вход в региональный реестр обучающихся" }
        @if state.sign_on.oidc.is_some() {
            section {
                h2 { "Региональная система входа" }
                p { a #oidc-signin href="/signin/oidc" { "Войти через региональную систему входа" } }
            }
        }
        @if !accounts.is_empty() {
            section {
                h2 { "Учётные записи демонстрационного региона" }
                p.muted { "Встроенный вход: реестр сам подписывает токен выбранной роли." }
                ul.accounts {
                    @for (i, a) in accounts.iter().enumerate() {
                        li {
                            form method="post" action="/signin" {
                                input type="hidden" name="csrf" value=(nonce);
                                input type="hidden" name="account" value=(i);
                                button type="submit" data-role=(a.claims.role.as_str()) { (a.label) }
                                " "
                                span.muted { (layout::role_name(a.claims.role)) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Вход по токену" }
            p.muted { "Токен, выданный системой входа (например, командой «contingent token»)." }
            form method="post" action="/signin" {
                input type="hidden" name="csrf" value=(nonce);
                label { "Токен " textarea name="token" rows="3" cols="60" required {} }
                button type="submit" { "Войти" }
            }
        }
    };
    let mut response = layout::page("Вход", None, body).into_response();
    set_cookie(
        &mut response,
        &format!("{SIGNIN_COOKIE}={nonce}; Path=/signin; HttpOnly; SameSite=Strict; Max-Age=900"),
    );
    response
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    account: Option<usize>,
    token: Option<String>,
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// `POST /signin`: opens a session for the chosen account or the given token.
pub(crate) async fn sign_in(
    State(state): State<PagesState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refused =
        |detail: &str| refusal_page(StatusCode::UNAUTHORIZED, "Вход не выполнен", detail, None);
    let Ok(form) = serde_urlencoded::from_bytes::<SignInForm>(&body) else {
        return refused("Форма входа заполнена неверно.");
    };
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or("");
    if form.csrf.is_empty() || !constant_time_eq(form.csrf.as_bytes(), expected.as_bytes()) {
        return refusal_page(
            StatusCode::FORBIDDEN,
            "Форма устарела",
            "Откройте страницу входа заново и повторите.",
            None,
        );
    }
    let (token, start) = match (form.account, form.token.as_deref().map(str::trim)) {
        (Some(i), _) => {
            let (Some(issuer), Some(account)) =
                (state.sign_on.issuer.as_ref(), state.sign_on.accounts.get(i))
            else {
                return refused("Такой учётной записи нет.");
            };
            match issuer.issue(&account.claims, LIFETIME) {
                Ok(t) => (t, account.start.clone()),
                Err(e) => {
                    tracing::error!(error = %e, "signing a token for the sign-on page failed");
                    return refused("Не удалось выдать токен.");
                }
            }
        }
        (None, Some(t)) if !t.is_empty() => (t.to_owned(), None),
        _ => return refused("Выберите учётную запись или вставьте токен."),
    };
    // The same check as the API's bearer token: issuer, audience, expiry, claims.
    let principal = match state.verifier.verify(&token) {
        Ok(p) => p,
        Err(_) => {
            return refused(
                "Токен не принят: он неверен, просрочен или выдан не для этого реестра.",
            )
        }
    };
    let target = start.unwrap_or_else(|| crate::main_page(principal.role).to_owned());
    let id = state.sessions.open(principal);
    let mut response = Redirect::to(&target).into_response();
    set_cookie(
        &mut response,
        &format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict"),
    );
    set_cookie(
        &mut response,
        &format!("{SIGNIN_COOKIE}=; Path=/signin; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /signout`: closes the session.
pub(crate) async fn sign_out(
    State(state): State<PagesState>,
    viewer: Viewer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: CsrfOnly = serde_urlencoded::from_bytes(&body).unwrap_or(CsrfOnly {
        csrf: String::new(),
    });
    if let Some(refused) = viewer.refuse_csrf(&form.csrf) {
        return refused;
    }
    state.sessions.close(&headers);
    let mut response = Redirect::to("/signin").into_response();
    set_cookie(
        &mut response,
        &format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

/// The cookie that ties a sign-in begun at the regional sign-on to the browser that began it
/// (its `state`). `SameSite=Lax`: the issuer sends the browser back by a top-level navigation
/// from its own site, which a `Strict` cookie would not accompany.
const OIDC_COOKIE: &str = "contingent_oidc";

/// `GET /signin/oidc`: begins a sign-in at the regional sign-on (OpenID Connect).
pub(crate) async fn oidc_begin(State(state): State<PagesState>) -> Response {
    let Some(oidc) = state.sign_on.oidc.as_ref() else {
        return refusal_page(
            StatusCode::NOT_FOUND,
            "Не найдено",
            "Вход через региональную систему входа не настроен.",
            None,
        );
    };
    let (url, sign_in) = oidc.begin();
    let mut response = Redirect::to(&url).into_response();
    set_cookie(
        &mut response,
        &format!("{OIDC_COOKIE}={sign_in}; Path=/signin/oidc; HttpOnly; SameSite=Lax; Max-Age=600"),
    );
    response
}

#[derive(Deserialize)]
pub(crate) struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    error: Option<String>,
}

/// `GET /signin/oidc/callback?code=&state=`: completes the sign-in and opens a session. The
/// session cookie is `SameSite=Strict`, which a browser would not send on the redirects of a
/// navigation that began on the issuer's site: the page goes on to the main page from here.
pub(crate) async fn oidc_callback(
    State(state): State<PagesState>,
    headers: HeaderMap,
    axum::extract::Query(back): axum::extract::Query<Callback>,
) -> Response {
    let refused = |status: StatusCode, detail: &str| {
        let mut response = refusal_page(status, "Вход не выполнен", detail, None);
        set_cookie(
            &mut response,
            &format!("{OIDC_COOKIE}=; Path=/signin/oidc; HttpOnly; SameSite=Lax; Max-Age=0"),
        );
        response
    };
    let Some(oidc) = state.sign_on.oidc.as_ref() else {
        return refused(
            StatusCode::NOT_FOUND,
            "Вход через региональную систему входа не настроен.",
        );
    };
    if back.error.is_some() {
        return refused(
            StatusCode::UNAUTHORIZED,
            "Региональная система входа отказала во входе.",
        );
    }
    let kept = cookie(&headers, OIDC_COOKIE).unwrap_or("");
    let principal = match oidc.complete(&back.code, &back.state, kept).await {
        Ok(p) => p,
        Err(crate::oidc::Refused::State) => {
            return refused(
                StatusCode::FORBIDDEN,
                "Вход начат не в этом браузере или устарел. Откройте страницу входа заново.",
            )
        }
        Err(e) => {
            tracing::warn!(refused = %e, "an OpenID Connect sign-in was refused");
            return refused(
                StatusCode::UNAUTHORIZED,
                "Ответ региональной системы входа не принят: токен неверен, просрочен, выдан не для этого реестра или без роли.",
            );
        }
    };
    let target = crate::main_page(principal.role);
    let id = state.sessions.open(principal);
    let body = html! {
        h1 { "Вход выполнен" }
        p { a #continue href=(target) { "Продолжить" } }
    };
    let mut response = layout::page("Вход выполнен", None, body);
    if let Ok(refresh) = HeaderValue::from_str(&format!("0; url={target}")) {
        response.headers_mut().insert("refresh", refresh);
    }
    set_cookie(
        &mut response,
        &format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict"),
    );
    set_cookie(
        &mut response,
        &format!("{OIDC_COOKIE}=; Path=/signin/oidc; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}
