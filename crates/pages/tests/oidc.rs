//! Signing in by OpenID Connect, end to end over HTTP: a small identity provider runs in the
//! test (discovery document, an authorize endpoint that sends the browser back with a code, a
//! token endpoint that checks the PKCE verifier, and the key set), signing its ID tokens with the
//! key the API tests' tokens are signed with (`LocalIssuer`); the pages' client is the real code,
//! driven by a cookie-keeping client as a browser would follow the redirects.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use contingent_access::{LocalIssuer, Role};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{location, Browser, Site};

const CLIENT: &str = "contingent-pages";

/// What the provider does wrong on purpose.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Forgery {
    None,
    /// The ID token carries another nonce than the one asked for.
    Nonce,
    /// The ID token is signed by a key not in the provider's key set.
    Key,
}

struct Grant {
    redirect_uri: String,
    nonce: String,
    challenge: String,
}

struct Provider {
    issuer: String,
    kid: String,
    /// The key the API tests sign with, and another one (for forgeries).
    key: jsonwebtoken::EncodingKey,
    other: jsonwebtoken::EncodingKey,
    jwks: String,
    /// The claims of the person who signs in next.
    person: Mutex<Value>,
    forgery: Mutex<Forgery>,
    codes: Mutex<HashMap<String, Grant>>,
    /// The `code_challenge_method` of each authorization request.
    methods: Mutex<Vec<String>>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn signing_key(dir: &tempfile::TempDir) -> (LocalIssuer, jsonwebtoken::EncodingKey) {
    let issuer = LocalIssuer::load_or_create(dir.path()).unwrap();
    let pem = std::fs::read(LocalIssuer::key_path(dir.path())).unwrap();
    (
        issuer,
        jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap(),
    )
}

async fn start_provider() -> Arc<Provider> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let (dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (local, key) = signing_key(&dir);
    let (_, other) = signing_key(&other_dir);
    let jwks = local.jwks();
    let kid = serde_json::from_str::<Value>(&jwks).unwrap()["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let provider = Arc::new(Provider {
        issuer,
        kid,
        key,
        other,
        jwks,
        person: Mutex::new(Value::Null),
        forgery: Mutex::new(Forgery::None),
        codes: Mutex::new(HashMap::new()),
        methods: Mutex::new(Vec::new()),
        _dirs: (dir, other_dir),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/jwks", get(key_set))
        .with_state(provider.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    provider
}

async fn discovery(State(p): State<Arc<Provider>>) -> Json<Value> {
    let i = &p.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
    }))
}

async fn key_set(State(p): State<Arc<Provider>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        p.jwks.clone(),
    )
        .into_response()
}

/// The person is signed in at once: back to the client with a code.
async fn authorize(
    State(p): State<Arc<Provider>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT);
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    p.methods
        .lock()
        .unwrap()
        .push(q.get("code_challenge_method").cloned().unwrap_or_default());
    let code = uuid::Uuid::new_v4().simple().to_string();
    p.codes.lock().unwrap().insert(
        code.clone(),
        Grant {
            redirect_uri: q["redirect_uri"].clone(),
            nonce: q["nonce"].clone(),
            challenge: q.get("code_challenge").cloned().unwrap_or_default(),
        },
    );
    Redirect::to(&format!(
        "{}?code={code}&state={}",
        q["redirect_uri"],
        urlencode(&q["state"])
    ))
    .into_response()
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)]).unwrap()[2..].to_owned()
}

async fn token(State(p): State<Arc<Provider>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let refuse = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant", "error_description": why })),
        )
            .into_response()
    };
    let Some(grant) = p.codes.lock().unwrap().remove(&f["code"]) else {
        return refuse("unknown or used code");
    };
    if f.get("redirect_uri") != Some(&grant.redirect_uri) {
        return refuse("redirect_uri");
    }
    // PKCE S256: the verifier hashes to the challenge of the authorization request.
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return refuse("code_verifier");
    }
    let forgery = *p.forgery.lock().unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut claims = p.person.lock().unwrap().clone();
    let fields = claims.as_object_mut().unwrap();
    fields.insert("iss".into(), json!(p.issuer));
    fields.insert("aud".into(), json!(CLIENT));
    fields.insert("iat".into(), json!(now));
    fields.insert("exp".into(), json!(now + 600));
    let nonce = if forgery == Forgery::Nonce {
        "another-nonce".to_owned()
    } else {
        grant.nonce
    };
    fields.insert("nonce".into(), json!(nonce));
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(p.kid.clone());
    let key = if forgery == Forgery::Key {
        &p.other
    } else {
        &p.key
    };
    let id_token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    Json(json!({
        "access_token": uuid::Uuid::new_v4().to_string(),
        "token_type": "Bearer",
        "expires_in": 600,
        "id_token": id_token,
    }))
    .into_response()
}

/// Follows a sign-in from the sign-on page through the issuer back to the site: the
/// callback's answer, and the callback URL (to replay it).
async fn sign_in(b: &mut Browser, provider: &Provider) -> (reqwest::Response, String) {
    let (status, page) = b.get("/signin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("href=\"/signin/oidc\""), "{page}");
    let begun = b.get_raw("/signin/oidc").await;
    assert_eq!(begun.status(), StatusCode::SEE_OTHER);
    let authorize = location(&begun).unwrap();
    assert!(authorize.starts_with(&format!("{}/authorize?", provider.issuer)));
    for part in [
        "code_challenge=",
        "nonce=",
        "state=",
        "code_challenge_method=S256",
    ] {
        assert!(authorize.contains(part), "{authorize}");
    }
    let back = b.get_url(&authorize).await;
    let callback = location(&back).expect("sent back to the site");
    assert!(
        callback.contains("/signin/oidc/callback?code="),
        "{callback}"
    );
    (b.get_url(&callback).await, callback)
}

#[tokio::test]
async fn a_person_signs_in_at_the_regional_sign_on_with_the_claims_an_api_token_carries() {
    let provider = start_provider().await;
    let site = Site::start_oidc(&provider.issuer, CLIENT).await;
    let municipality = site.accounts[site.account(Role::Municipality)]
        .claims
        .municipality
        .clone()
        .unwrap();
    *provider.person.lock().unwrap() = json!({
        "sub": "mouo-analyst", "role": "municipality", "municipality": municipality,
    });
    let mut b = Browser::new(&site.base);
    let (answer, callback) = sign_in(&mut b, &provider).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let refresh = answer.headers().get("refresh").unwrap().to_str().unwrap();
    assert_eq!(refresh, "0; url=/analytics");
    assert!(b.has_cookie("contingent_session"));
    assert_eq!(
        *provider.methods.lock().unwrap(),
        ["S256"],
        "PKCE with S256"
    );
    // The session carries the municipality's reach: its own page, not the region's.
    let (status, page) = b.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!("Контингент: {municipality}")),
        "{page}"
    );
    assert!(page.contains("mouo-analyst"));
    let (status, _) = b.get("/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The same answer from the issuer sent again (a replayed callback) opens nothing.
    let mut other = Browser::new(&site.base);
    let replayed = other.get_url(&callback).await;
    assert_eq!(replayed.status(), StatusCode::FORBIDDEN);
    assert!(!other.has_cookie("contingent_session"));
    // Nor in the browser that signed in: the sign-in it began is spent.
    let replayed = b.get_url(&callback).await;
    assert_eq!(replayed.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_sign_in_is_refused_without_its_state_with_a_forged_nonce_or_key_or_without_a_role() {
    let provider = start_provider().await;
    let site = Site::start_oidc(&provider.issuer, CLIENT).await;
    *provider.person.lock().unwrap() = json!({ "sub": "minobr", "role": "region" });

    // The callback in another browser than the one that began the sign-in (login CSRF).
    let mut victim = Browser::new(&site.base);
    let _ = victim.get("/signin").await;
    let begun = victim.get_raw("/signin/oidc").await;
    let back = victim.get_url(&location(&begun).unwrap()).await;
    let callback = location(&back).unwrap();
    let mut stranger = Browser::new(&site.base);
    let answer = stranger.get_url(&callback).await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(!stranger.has_cookie("contingent_session"));

    for (forgery, claims) in [
        (Forgery::Nonce, json!({ "sub": "minobr", "role": "region" })),
        (Forgery::Key, json!({ "sub": "minobr", "role": "region" })),
        // A municipality without its municipality is refused, as the API refuses its token.
        (
            Forgery::None,
            json!({ "sub": "mouo", "role": "municipality" }),
        ),
        (Forgery::None, json!({ "sub": "nobody" })),
    ] {
        *provider.forgery.lock().unwrap() = forgery;
        *provider.person.lock().unwrap() = claims.clone();
        let mut b = Browser::new(&site.base);
        let (answer, _) = sign_in(&mut b, &provider).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{claims}");
        assert!(!b.has_cookie("contingent_session"), "{claims}");
    }

    // And the same provider, honest, signs the region in.
    *provider.forgery.lock().unwrap() = Forgery::None;
    *provider.person.lock().unwrap() = json!({ "sub": "minobr", "role": "region" });
    let mut b = Browser::new(&site.base);
    let (answer, _) = sign_in(&mut b, &provider).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let (_, page) = b.get("/").await;
    assert!(page.contains("Контингент: регион"));
}
