//! Bearer tokens as a government single sign-on issues them: signed JWTs (ES256 or RS256)
//! checked against a JSON Web Key Set, with issuer, audience and expiry checked; and a local
//! issuer that signs tokens for the embedded default and the demo.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::{Deserialize, Serialize};

use crate::principal::{Claims, IncompleteClaims, Principal};

/// Why a token is not accepted. Every case is answered with 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer …` header.
    #[error("no bearer token")]
    Missing,
    /// Not a JWT, or an algorithm other than ES256 and RS256.
    #[error("the token is malformed or uses an algorithm other than ES256 or RS256")]
    Malformed,
    /// No key of the key set matches.
    #[error("the token is signed with a key the registry does not know")]
    UnknownKey,
    /// The signature, issuer, audience or expiry does not check out.
    #[error("the token is not valid: {0}")]
    Invalid(String),
    /// The claims lack what the role needs.
    #[error(transparent)]
    Claims(#[from] IncompleteClaims),
    /// The key set cannot be read.
    #[error("the key set cannot be used: {0}")]
    KeySet(String),
}

fn parse_keys(jwks: &str) -> Result<Vec<Key>, TokenError> {
    let set: JwkSet = serde_json::from_str(jwks).map_err(|e| TokenError::KeySet(e.to_string()))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::EllipticCurve(_), None | Some(KeyAlgorithm::ES256)) => {
                Algorithm::ES256
            }
            (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| TokenError::KeySet(e.to_string()))?;
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
    }
    if keys.is_empty() {
        return Err(TokenError::KeySet(
            "no ES256 or RS256 key in the set".into(),
        ));
    }
    Ok(keys)
}

struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Checks bearer tokens against a key set, an issuer and an audience. The key set can be
/// replaced while tokens are being checked (key rotation at the sign-on).
///
/// A token that verified is remembered until it expires, so a caller that sends the same token
/// with every request pays for the signature check once (an ES256 check costs about half a
/// millisecond, more than a diary query). Replacing the key set forgets every remembered token.
pub struct TokenVerifier {
    keys: std::sync::RwLock<Vec<Key>>,
    issuer: String,
    audience: String,
    verified: std::sync::RwLock<HashMap<String, Remembered>>,
}

/// A verified token's principal and expiry (seconds since the epoch).
#[derive(Clone)]
struct Remembered {
    principal: Principal,
    exp: u64,
}

/// Most verified tokens remembered at once; the memory is forgotten whole when it is full.
const REMEMBERED_TOKENS: usize = 16_384;

/// The claims of a verified token, with its expiry.
#[derive(Deserialize)]
struct VerifiedClaims {
    exp: u64,
    #[serde(flatten)]
    claims: Claims,
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

impl TokenVerifier {
    /// A verifier over a JWKS document (`{"keys": [...]}`); EC P-256 keys verify ES256, RSA
    /// keys verify RS256.
    pub fn from_jwks(jwks: &str, issuer: &str, audience: &str) -> Result<Self, TokenError> {
        Ok(Self {
            keys: std::sync::RwLock::new(parse_keys(jwks)?),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            verified: std::sync::RwLock::new(HashMap::new()),
        })
    }

    /// Replaces the key set (rotation at the sign-on); the old set stays if the new one
    /// cannot be used.
    pub fn replace_keys(&self, jwks: &str) -> Result<(), TokenError> {
        let keys = parse_keys(jwks)?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        self.verified
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }

    /// Reads a JWKS file.
    pub fn from_jwks_file(path: &Path, issuer: &str, audience: &str) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TokenError::KeySet(format!("{}: {e}", path.display())))?;
        Self::from_jwks(&text, issuer, audience)
    }

    /// The principal of a token this verifier has verified and still remembers (it has not
    /// expired and the key set has not been replaced since): no signature is checked.
    pub fn remembered(&self, token: &str) -> Option<Principal> {
        let now = now_seconds();
        self.verified
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .filter(|r| now <= r.exp.saturating_add(LEEWAY_SECONDS))
            .map(|r| r.principal.clone())
    }

    /// Verifies a token and returns the principal it names.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        if let Some(principal) = self.remembered(token) {
            return Ok(principal);
        }
        let (principal, exp) = self.check(token)?;
        let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= REMEMBERED_TOKENS {
            verified.clear();
        }
        verified.insert(
            token.to_owned(),
            Remembered {
                principal: principal.clone(),
                exp,
            },
        );
        Ok(principal)
    }

    /// Checks a token's signature and claims: its principal and expiry.
    fn check(&self, token: &str) -> Result<(Principal, u64), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256) {
            return Err(TokenError::Malformed);
        }
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let candidates: Vec<&Key> = keys
            .iter()
            .filter(|k| k.algorithm == header.alg && (header.kid.is_none() || k.kid == header.kid))
            .collect();
        if candidates.is_empty() {
            return Err(TokenError::UnknownKey);
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let mut last = TokenError::UnknownKey;
        for key in candidates {
            match jsonwebtoken::decode::<VerifiedClaims>(token, &key.key, &validation) {
                Ok(data) => return Ok((Principal::try_from(data.claims.claims)?, data.claims.exp)),
                Err(e) => last = TokenError::Invalid(e.to_string()),
            }
        }
        Err(last)
    }
}

#[derive(Serialize)]
struct SignedClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    #[serde(flatten)]
    claims: &'a Claims,
}

/// A signing key kept in the data directory: the embedded default's own identity provider, for
/// the demo and for installations without a sign-on of their own.
pub struct LocalIssuer {
    key: SigningKey,
    kid: String,
    issuer: String,
    audience: String,
}

/// The issuer name of locally signed tokens.
pub const LOCAL_ISSUER: &str = "contingent-local";
/// The audience tokens for the registry carry by default.
pub const DEFAULT_AUDIENCE: &str = "contingent";

impl LocalIssuer {
    /// A fresh P-256 key.
    pub fn generate(issuer: &str, audience: &str) -> Self {
        let key = SigningKey::random(&mut rand_core::OsRng);
        Self::from_key(key, issuer, audience)
    }

    fn from_key(key: SigningKey, issuer: &str, audience: &str) -> Self {
        let point = key.verifying_key().to_encoded_point(false);
        let x = point.x().map(|x| x.to_vec()).unwrap_or_default();
        let kid = URL_SAFE_NO_PAD.encode(&x[..8.min(x.len())]);
        Self {
            key,
            kid,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// The key file in a data directory.
    pub fn key_path(data_dir: &Path) -> PathBuf {
        data_dir.join("keys").join("signing-key.pem")
    }

    /// The key set file written beside it, for anyone who verifies these tokens.
    pub fn jwks_path(data_dir: &Path) -> PathBuf {
        data_dir.join("keys").join("jwks.json")
    }

    /// Loads the key from the data directory, creating it (and `jwks.json`) on first use.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Self> {
        let path = Self::key_path(data_dir);
        let issuer = if path.exists() {
            let pem = std::fs::read_to_string(&path)?;
            let key = SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            Self::from_key(key, LOCAL_ISSUER, DEFAULT_AUDIENCE)
        } else {
            std::fs::create_dir_all(path.parent().unwrap_or(data_dir))?;
            let issuer = Self::generate(LOCAL_ISSUER, DEFAULT_AUDIENCE);
            let pem = issuer
                .key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            write_private(&path, pem.as_bytes())?;
            issuer
        };
        std::fs::write(Self::jwks_path(data_dir), issuer.jwks())?;
        Ok(issuer)
    }

    /// The public key set (JWKS) that verifies this issuer's tokens.
    pub fn jwks(&self) -> String {
        let point = self.key.verifying_key().to_encoded_point(false);
        let coordinate =
            |c: Option<&p256::FieldBytes>| c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default();
        serde_json::json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": coordinate(point.x()), "y": coordinate(point.y()),
        }] })
        .to_string()
    }

    /// A verifier for this issuer's tokens.
    pub fn verifier(&self) -> Result<TokenVerifier, TokenError> {
        TokenVerifier::from_jwks(&self.jwks(), &self.issuer, &self.audience)
    }

    /// Signs a token for `claims`, valid for `ttl`.
    pub fn issue(&self, claims: &Claims, ttl: Duration) -> Result<String, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.issue_at(claims, now, now + ttl.as_secs())
    }

    /// Signs a token with explicit issue and expiry times (seconds since the epoch); it is not
    /// valid before it is issued.
    pub fn issue_at(&self, claims: &Claims, iat: u64, exp: u64) -> Result<String, TokenError> {
        self.issue_between(claims, iat, iat, exp)
    }

    /// Signs a token issued at `iat`, valid from `nbf` until `exp` (seconds since the epoch).
    pub fn issue_between(
        &self,
        claims: &Claims,
        iat: u64,
        nbf: u64,
        exp: u64,
    ) -> Result<String, TokenError> {
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|e| TokenError::KeySet(e.to_string()))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let body = SignedClaims {
            iss: &self.issuer,
            aud: &self.audience,
            iat,
            nbf,
            exp,
            claims,
        };
        jsonwebtoken::encode(&header, &body, &EncodingKey::from_ec_der(der.as_bytes()))
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }
}

/// Writes a file only its owner may read or write (mode 0600 on Unix), replacing one that
/// exists (and taking its permissions away from anyone else first): for bearer tokens and keys.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, bytes)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Role;

    fn claims(role: Role) -> Claims {
        Claims {
            sub: "u-1".into(),
            role,
            snils: None,
            org: None,
            municipality: None,
            name: None,
        }
    }

    #[test]
    fn a_token_round_trips_and_a_foreign_or_expired_one_is_refused() {
        let issuer = LocalIssuer::generate("idp", "contingent");
        let verifier = issuer.verifier().expect("verifier");
        let token = issuer
            .issue(&claims(Role::Auditor), Duration::from_secs(60))
            .expect("token");
        let principal = verifier.verify(&token).expect("valid");
        assert_eq!(principal.role, Role::Auditor);
        assert_eq!(principal.subject, "u-1");

        let other = LocalIssuer::generate("idp", "contingent");
        let forged = other
            .issue(&claims(Role::Region), Duration::from_secs(60))
            .expect("token");
        assert!(matches!(
            verifier.verify(&forged),
            Err(TokenError::UnknownKey | TokenError::Invalid(_))
        ));

        let expired = issuer
            .issue_at(&claims(Role::Region), 1_000, 2_000)
            .expect("token");
        assert!(matches!(
            verifier.verify(&expired),
            Err(TokenError::Invalid(_))
        ));

        let wrong_audience = LocalIssuer::from_key(issuer.key.clone(), "idp", "elsewhere");
        let token = wrong_audience
            .issue(&claims(Role::Region), Duration::from_secs(60))
            .expect("token");
        assert!(matches!(
            verifier.verify(&token),
            Err(TokenError::Invalid(_))
        ));

        assert!(matches!(
            verifier.verify("not.a.token"),
            Err(TokenError::Malformed)
        ));
    }

    #[test]
    fn a_token_is_refused_before_its_not_before_time() {
        let issuer = LocalIssuer::generate("idp", "contingent");
        let verifier = issuer.verifier().expect("verifier");
        let now = now_seconds();
        let early = issuer
            .issue_between(&claims(Role::Region), now, now + 3600, now + 7200)
            .expect("token");
        assert!(
            matches!(verifier.verify(&early), Err(TokenError::Invalid(ref e)) if e.contains("ImmatureSignature")),
            "{:?}",
            verifier.verify(&early).err()
        );
        assert!(verifier.remembered(&early).is_none());
        let within_leeway = issuer
            .issue_between(&claims(Role::Region), now, now + 10, now + 7200)
            .expect("token");
        assert!(
            verifier.verify(&within_leeway).is_ok(),
            "clock skew is tolerated"
        );
    }

    #[test]
    fn secret_files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tokens.env");
        std::fs::write(&path, "old").expect("world-readable file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_secret_file(&path, b"export TOKEN=x").expect("written");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "export TOKEN=x"
        );
        let fresh = dir.path().join("fresh");
        write_secret_file(&fresh, b"k").expect("written");
        let mode = std::fs::metadata(&fresh)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_rotated_key_set_takes_effect() {
        let old = LocalIssuer::generate("idp", "contingent");
        let new = LocalIssuer::generate("idp", "contingent");
        let verifier = old.verifier().expect("verifier");
        let token = new
            .issue(&claims(Role::Auditor), Duration::from_secs(60))
            .expect("token");
        assert!(verifier.verify(&token).is_err());
        verifier.replace_keys(&new.jwks()).expect("rotated");
        assert!(verifier.verify(&token).is_ok());
        assert!(verifier.replace_keys("{\"keys\": []}").is_err());
        assert!(
            verifier.verify(&token).is_ok(),
            "a bad key set leaves the old one in place"
        );
    }

    #[test]
    fn a_remembered_token_is_forgotten_when_it_expires_or_the_keys_rotate() {
        let old = LocalIssuer::generate("idp", "contingent");
        let verifier = old.verifier().expect("verifier");
        let token = old
            .issue(&claims(Role::Auditor), Duration::from_secs(60))
            .expect("token");
        let first = verifier.verify(&token).expect("valid");
        assert_eq!(verifier.verify(&token).expect("remembered"), first);

        // Past its expiry (and the leeway) a remembered token is checked again.
        verifier.verified.write().expect("lock").insert(
            "not.a.token".into(),
            Remembered {
                principal: first.clone(),
                exp: now_seconds() - LEEWAY_SECONDS - 1,
            },
        );
        assert!(matches!(
            verifier.verify("not.a.token"),
            Err(TokenError::Malformed)
        ));

        // A rotation away from the key that signed it forgets it.
        let new = LocalIssuer::generate("idp", "contingent");
        verifier.replace_keys(&new.jwks()).expect("rotated");
        assert!(verifier.verify(&token).is_err());
    }

    #[test]
    fn a_parent_token_without_snils_is_refused() {
        let issuer = LocalIssuer::generate("idp", "contingent");
        let token = issuer
            .issue(&claims(Role::Parent), Duration::from_secs(60))
            .expect("token");
        assert!(matches!(
            issuer.verifier().expect("verifier").verify(&token),
            Err(TokenError::Claims(_))
        ));
    }
}
