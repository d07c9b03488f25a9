//! Google and Apple idTokens, checked against the provider's JWKS.
//!
//! The JWKS is fetched over HTTPS (3 s timeout) and cached by `kid` for an
//! hour; a token whose `kid` is not in the cache triggers one refetch (at
//! most every 30 s per provider, so a stream of forged `kid`s cannot turn
//! into a stream of fetches). A token must be RS256 (what both providers
//! sign with), with the provider's issuer, one of the configured client ids
//! as `aud`, an `exp` in the future by the service clock, and the `nonce`
//! when the client sent one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use nambari_core::base::config::OAuthSettings;
use nambari_core::base::values::Provider;
use nambari_core::ports::id_tokens::{IdTokenClaims, IdTokenError, IdTokenVerifier};
use serde::Deserialize;
use tokio::sync::RwLock;
use tracing::{info, warn};

/// How long one JWKS fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// How long fetched keys are used before a refetch.
pub const KEYS_TTL: Duration = Duration::from_secs(3600);
/// The least time between two fetches for one provider.
pub const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY: i64 = 60;

/// One provider's issuer(s), accepted audiences and keys URL.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub jwks_url: String,
}

impl ProviderConfig {
    pub fn google(audiences: Vec<String>, jwks_url: String) -> Self {
        Self {
            issuers: vec!["https://accounts.google.com".into(), "accounts.google.com".into()],
            audiences,
            jwks_url,
        }
    }

    pub fn apple(audiences: Vec<String>, jwks_url: String) -> Self {
        Self {
            issuers: vec!["https://appleid.apple.com".into()],
            audiences,
            jwks_url,
        }
    }
}

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

/// The [`IdTokenVerifier`] over the providers' JWKS.
pub struct JwksVerifier {
    http: reqwest::Client,
    providers: HashMap<Provider, ProviderConfig>,
    keys: RwLock<HashMap<Provider, Keys>>,
}

#[derive(Deserialize)]
struct IdToken {
    sub: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

impl JwksVerifier {
    /// A verifier for the providers with client ids in `settings`; `None`
    /// when there are none.
    pub fn from_settings(settings: &OAuthSettings) -> Result<Option<Self>, String> {
        let mut providers = HashMap::new();
        if !settings.google_client_ids.is_empty() {
            providers.insert(
                Provider::Google,
                ProviderConfig::google(settings.google_client_ids.clone(), settings.google_jwks_url.clone()),
            );
        }
        if !settings.apple_client_ids.is_empty() {
            providers.insert(
                Provider::Apple,
                ProviderConfig::apple(settings.apple_client_ids.clone(), settings.apple_jwks_url.clone()),
            );
        }
        if providers.is_empty() {
            return Ok(None);
        }
        Self::new(providers).map(Some)
    }

    pub fn new(providers: HashMap<Provider, ProviderConfig>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("building the HTTPS client: {e}"))?;
        Ok(Self {
            http,
            providers,
            keys: RwLock::new(HashMap::new()),
        })
    }

    async fn fetch(&self, provider: Provider, url: &str) -> Result<HashMap<String, DecodingKey>, IdTokenError> {
        let res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| IdTokenError::Unavailable(format!("{} JWKS: {}", provider.as_str(), short(&e))))?;
        if !res.status().is_success() {
            return Err(IdTokenError::Unavailable(format!(
                "{} JWKS: HTTP {}",
                provider.as_str(),
                res.status().as_u16()
            )));
        }
        let set: JwkSet = res
            .json()
            .await
            .map_err(|_| IdTokenError::Unavailable(format!("{} JWKS: not a JWK set", provider.as_str())))?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            if let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) {
                by_kid.insert(kid, key);
            }
        }
        info!(
            provider = provider.as_str(),
            keys = by_kid.len(),
            "provider keys fetched"
        );
        Ok(by_kid)
    }

    /// The key `kid` of `provider`, fetching the JWKS when it is stale or
    /// does not have it (at most every [`MIN_REFETCH`]).
    async fn key(&self, provider: Provider, config: &ProviderConfig, kid: &str) -> Result<DecodingKey, IdTokenError> {
        {
            let keys = self.keys.read().await;
            if let Some(k) = keys.get(&provider)
                && k.fetched_at.is_some_and(|t| t.elapsed() < KEYS_TTL)
                && let Some(key) = k.by_kid.get(kid)
            {
                return Ok(key.clone());
            }
        }
        let mut keys = self.keys.write().await;
        let entry = keys.entry(provider).or_insert_with(|| Keys {
            by_kid: HashMap::new(),
            fetched_at: None,
        });
        // Another request may have refetched while this one waited.
        let fresh = entry.fetched_at.is_some_and(|t| t.elapsed() < KEYS_TTL);
        if let Some(key) = entry.by_kid.get(kid).filter(|_| fresh) {
            return Ok(key.clone());
        }
        let may_fetch = entry.fetched_at.is_none_or(|t| t.elapsed() >= MIN_REFETCH) || !fresh;
        if may_fetch {
            match self.fetch(provider, &config.jwks_url).await {
                Ok(by_kid) => {
                    entry.by_kid = by_kid;
                    entry.fetched_at = Some(Instant::now());
                }
                Err(e) if entry.by_kid.is_empty() => return Err(e),
                Err(e) => warn!(provider = provider.as_str(), error = %e, "keeping the cached provider keys"),
            }
        }
        entry
            .by_kid
            .get(kid)
            .cloned()
            .ok_or(IdTokenError::Invalid("unknown kid"))
    }
}

/// Whether the idToken's `nonce` claim is the one the service issued.
/// Apple's SDKs send the nonce's SHA-256 (hex) to Apple, which then puts
/// that in the token; Google's carry the nonce as given. Compared in
/// constant time.
fn nonce_matches(provider: Provider, claim: Option<&str>, issued: &str) -> bool {
    let Some(claim) = claim else {
        return false;
    };
    let ct = |a: &str, b: &str| nambari_core::base::crypto::ct_eq(a.as_bytes(), b.as_bytes());
    ct(claim, issued)
        || (provider == Provider::Apple && ct(claim, &nambari_core::base::crypto::sha256_hex(issued.as_bytes())))
}

fn short(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

#[async_trait]
impl IdTokenVerifier for JwksVerifier {
    async fn verify(
        &self,
        provider: Provider,
        id_token: &str,
        nonce: &str,
        now: i64,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let config = self.providers.get(&provider).ok_or(IdTokenError::NotConfigured)?;
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| IdTokenError::Invalid("malformed"))?;
        if header.alg != Algorithm::RS256 {
            return Err(IdTokenError::Invalid("algorithm is not RS256"));
        }
        let kid = header.kid.ok_or(IdTokenError::Invalid("no kid"))?;
        let key = self.key(provider, config, &kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&config.issuers);
        v.set_audience(&config.audiences);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Time is checked below against the service clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        let data = jsonwebtoken::decode::<IdToken>(id_token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            IdTokenError::Invalid(match e.kind() {
                ErrorKind::InvalidIssuer => "wrong issuer",
                ErrorKind::InvalidAudience => "wrong audience",
                ErrorKind::InvalidSignature => "bad signature",
                _ => "undecodable",
            })
        })?;
        let c = data.claims;
        if now >= c.exp + LEEWAY {
            return Err(IdTokenError::Invalid("expired"));
        }
        if c.nbf.is_some_and(|nbf| nbf > now + LEEWAY) || c.iat.is_some_and(|iat| iat > now + LEEWAY) {
            return Err(IdTokenError::Invalid("not yet valid"));
        }
        if !nonce_matches(provider, c.nonce.as_deref(), nonce) {
            return Err(IdTokenError::Invalid("nonce mismatch"));
        }
        if c.sub.is_empty() || c.sub.len() > 255 {
            return Err(IdTokenError::Invalid("bad subject"));
        }
        Ok(IdTokenClaims {
            sub: c.sub,
            email: c.email,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{Value, json};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    const PEM: &str = include_str!("../../../tests/fixtures/oauth-test-rsa.pem");
    const JWKS: &str = include_str!("../../../tests/fixtures/oauth-test-jwks.json");
    const NOW: i64 = 1_775_212_245;

    fn sign(claims: Value, kid: &str) -> String {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &claims, &EncodingKey::from_rsa_pem(PEM.as_bytes()).unwrap()).unwrap()
    }

    fn claims() -> Value {
        json!({"iss": "https://accounts.google.com", "aud": "client-1", "sub": "g-123", "exp": NOW + 600, "iat": NOW, "nonce": "n-1"})
    }

    async fn verifier() -> (MockServer, JwksVerifier) {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/certs"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(JWKS, "application/json"))
            .mount(&server)
            .await;
        let mut providers = HashMap::new();
        providers.insert(
            Provider::Google,
            ProviderConfig::google(vec!["client-1".into()], format!("{}/certs", server.uri())),
        );
        (server, JwksVerifier::new(providers).unwrap())
    }

    #[tokio::test]
    async fn a_google_token_signed_by_a_published_key_verifies_and_keys_are_cached() {
        let (server, v) = verifier().await;
        let t = sign(claims(), "test-rsa-1");
        let c = v.verify(Provider::Google, &t, "n-1", NOW).await.unwrap();
        assert_eq!(c.sub, "g-123");
        v.verify(Provider::Google, &t, "n-1", NOW).await.unwrap();
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "the JWKS is fetched once"
        );
    }

    #[tokio::test]
    async fn expired_wrong_audience_wrong_issuer_and_wrong_nonce_are_refused() {
        let (_server, v) = verifier().await;
        let cases = [
            ("expired", json!({"exp": NOW - 61})),
            ("wrong audience", json!({"aud": "someone-else"})),
            ("wrong issuer", json!({"iss": "https://evil.example"})),
        ];
        for (why, patch) in cases {
            let mut c = claims();
            for (k, val) in patch.as_object().unwrap() {
                c[k] = val.clone();
            }
            let e = v
                .verify(Provider::Google, &sign(c, "test-rsa-1"), "n-1", NOW)
                .await
                .err();
            assert!(matches!(e, Some(IdTokenError::Invalid(w)) if w == why), "{why}: {e:?}");
        }
        let e = v
            .verify(Provider::Google, &sign(claims(), "test-rsa-1"), "other", NOW)
            .await
            .err();
        assert!(matches!(e, Some(IdTokenError::Invalid("nonce mismatch"))), "{e:?}");
        let mut no_nonce = claims();
        no_nonce.as_object_mut().unwrap().remove("nonce");
        let e = v
            .verify(Provider::Google, &sign(no_nonce, "test-rsa-1"), "n-1", NOW)
            .await
            .err();
        assert!(matches!(e, Some(IdTokenError::Invalid("nonce mismatch"))), "{e:?}");
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_once_then_is_refused_and_an_unconfigured_provider_is_refused() {
        let (server, v) = verifier().await;
        let e = v
            .verify(Provider::Google, &sign(claims(), "rotated-away"), "n-1", NOW)
            .await
            .err();
        assert!(matches!(e, Some(IdTokenError::Invalid("unknown kid"))), "{e:?}");
        let e = v
            .verify(Provider::Google, &sign(claims(), "rotated-again"), "n-1", NOW)
            .await
            .err();
        assert!(matches!(e, Some(IdTokenError::Invalid("unknown kid"))), "{e:?}");
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "no refetch within 30 s"
        );
        let e = v
            .verify(Provider::Apple, &sign(claims(), "test-rsa-1"), "n-1", NOW)
            .await
            .err();
        assert!(matches!(e, Some(IdTokenError::NotConfigured)), "{e:?}");
    }

    #[test]
    fn apple_may_carry_the_nonces_sha256_and_google_only_the_nonce() {
        let hashed = nambari_core::base::crypto::sha256_hex(b"n-1");
        assert!(nonce_matches(Provider::Google, Some("n-1"), "n-1"));
        assert!(nonce_matches(Provider::Apple, Some("n-1"), "n-1"));
        assert!(nonce_matches(Provider::Apple, Some(&hashed), "n-1"));
        assert!(!nonce_matches(Provider::Google, Some(&hashed), "n-1"));
        assert!(!nonce_matches(Provider::Apple, None, "n-1"));
        assert!(!nonce_matches(Provider::Google, Some("n-2"), "n-1"));
    }

    #[tokio::test]
    async fn an_hs256_token_keyed_with_the_public_modulus_is_refused() {
        let (_server, v) = verifier().await;
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("test-rsa-1".into());
        let t = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(JWKS.as_bytes())).unwrap();
        let e = v.verify(Provider::Google, &t, "n-1", NOW).await.err();
        assert!(
            matches!(e, Some(IdTokenError::Invalid("algorithm is not RS256"))),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn keys_that_cannot_be_fetched_are_unavailable_not_invalid() {
        let mut providers = HashMap::new();
        providers.insert(
            Provider::Google,
            ProviderConfig::google(vec!["client-1".into()], "http://127.0.0.1:9/certs".into()),
        );
        let v = JwksVerifier::new(providers).unwrap();
        let e = v
            .verify(Provider::Google, &sign(claims(), "test-rsa-1"), "n-1", NOW)
            .await
            .err();
        assert!(matches!(e, Some(IdTokenError::Unavailable(_))), "{e:?}");
    }
}
