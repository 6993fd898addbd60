//! Signing in with the regional sign-on by OpenID Connect: the authorization code flow with
//! PKCE (S256), a `state` tied to the browser by a cookie and a `nonce` checked in the ID token,
//! through the `openidconnect` crate. The issuer is discovered at start
//! (`/.well-known/openid-configuration` and its key set); the ID token is verified against the
//! issuer's keys (signature, `iss`, `aud` = the client id, expiry, nonce), and the person's role
//! and reach are read from the same claims the API's token verifier reads (`role`, `snils`,
//! `org`, `municipality`, with `sub`), so a page session carries what the API token would.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use contingent_access::{Claims, Principal, Role};
use contingent_domain::OrganizationId;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};

/// How long a sign-in begun at the issuer may take to come back.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// How many sign-ins may be under way at once.
const MAX_PENDING: usize = 10_000;

/// Why OpenID Connect sign-in could not be set up or completed.
#[derive(Debug, thiserror::Error)]
pub enum SignOnError {
    /// The issuer URL, client id or redirect URL is not usable.
    #[error("OpenID Connect setting: {0}")]
    Setting(String),
    /// The issuer's discovery document or key set could not be read.
    #[error("discovering the OpenID Connect issuer {issuer}")]
    Discovery {
        /// The issuer.
        issuer: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The registry's claims in an ID token, beside the standard ones: the same as the API reads
/// from a bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RegistryClaims {
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snils: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org: Option<OrganizationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    municipality: Option<String>,
}

impl AdditionalClaims for RegistryClaims {}

type TokenFields = IdTokenFields<
    RegistryClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type RegistryTokenResponse = StandardTokenResponse<TokenFields, CoreTokenType>;

type RegistryClient = Client<
    RegistryClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    RegistryTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Where the regional sign-on is and who this registry is to it.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The issuer URL (its discovery document is at `/.well-known/openid-configuration`).
    pub issuer: String,
    /// This registry's client id at the issuer.
    pub client_id: String,
    /// The client secret, for a confidential client; none for a public one.
    pub client_secret: Option<String>,
    /// Where the issuer sends the browser back: this site's `/signin/oidc/callback`.
    pub redirect_url: String,
}

/// A sign-in begun at the issuer and not yet come back.
struct Pending {
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    started: Instant,
}

/// The OpenID Connect client of the pages.
pub struct Oidc {
    client: RegistryClient,
    http: openidconnect::reqwest::Client,
    pending: Mutex<HashMap<String, Pending>>,
}

/// Why a sign-in that came back from the issuer is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// No sign-in of this browser was begun with this `state` (or it expired).
    #[error("no sign-in of this browser with this state")]
    State,
    /// The issuer did not give a token for the code.
    #[error("exchanging the code: {0}")]
    Exchange(String),
    /// The ID token is missing or does not verify (signature, issuer, audience, expiry, nonce).
    #[error("the ID token: {0}")]
    IdToken(String),
    /// The claims do not make a principal.
    #[error("the claims: {0}")]
    Claims(String),
}

impl Oidc {
    /// Discovers the issuer (its metadata and key set) and makes the client.
    pub async fn discover(settings: &OidcSettings) -> Result<Self, SignOnError> {
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| SignOnError::Setting(format!("issuer: {e}")))?;
        let redirect = RedirectUrl::new(settings.redirect_url.clone())
            .map_err(|e| SignOnError::Setting(format!("redirect URL: {e}")))?;
        // Following redirects would open the client to request forgery.
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| SignOnError::Setting(format!("HTTP client: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| SignOnError::Discovery {
                issuer: settings.issuer.clone(),
                source: Box::new(e),
            })?;
        let client = RegistryClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        Ok(Self {
            client,
            http,
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Begins a sign-in: the issuer's authorization URL (code flow, PKCE S256, `state`, `nonce`)
    /// and the `state`, which the browser keeps in a cookie to come back with.
    pub(crate) fn begin(&self) -> (String, String) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let now = Instant::now();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, p| now.duration_since(p.started) < PENDING_FOR);
        if pending.len() >= MAX_PENDING {
            // Sign-ins begun and never finished do not grow without bound: the oldest goes.
            if let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone())
            {
                pending.remove(&oldest);
            }
        }
        pending.insert(
            state.secret().clone(),
            Pending {
                verifier,
                nonce,
                started: now,
            },
        );
        (url.to_string(), state.secret().clone())
    }

    /// Completes a sign-in that came back with `code` and `state`: the sign-in this browser
    /// began (`kept` is the state in its cookie) is taken (once), the code exchanged with the
    /// PKCE verifier, the ID token verified with the nonce, and its claims made a principal.
    pub(crate) async fn complete(
        &self,
        code: &str,
        state: &str,
        kept: &str,
    ) -> Result<Principal, Refused> {
        if state.is_empty() || !crate::session::constant_time_eq(state.as_bytes(), kept.as_bytes())
        {
            return Err(Refused::State);
        }
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(state)
            .filter(|p| p.started.elapsed() < PENDING_FOR)
            .ok_or(Refused::State)?;
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| Refused::Exchange(e.to_string()))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| Refused::Exchange(error_chain(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| Refused::IdToken("no ID token".to_owned()))?;
        let claims = id_token
            .claims(&self.client.id_token_verifier(), &pending.nonce)
            .map_err(|e| Refused::IdToken(error_chain(&e)))?;
        let extra = claims.additional_claims();
        Principal::try_from(Claims {
            sub: claims.subject().as_str().to_owned(),
            role: extra.role,
            snils: extra.snils.clone(),
            org: extra.org,
            municipality: extra.municipality.clone(),
            name: None,
        })
        .map_err(|e| Refused::Claims(e.to_string()))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
