//! Tokens (SPEC §3): ES256 JWTs with `kid`, `typ`, `jti`, `iss`, `aud`,
//! signed by the current key of a [`KeyRing`] and verified against the
//! current or previous key; opaque 256-bit refresh tokens stored as SHA-256.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::base::crypto::{b64url, random_bytes, sha256};
use crate::base::error::{Error, Result};
use crate::base::ids::random_base62;

/// The kinds of JWT; the `typ` claim makes one kind unusable as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Check,
    Temp,
    Onboarding,
    Access,
    Reset,
    DeviceVerification,
    StepUp,
    /// Carries the two code sessions of a PIN recovery (email and phone).
    PinRecovery,
}

impl TokenKind {
    /// Lifetime in seconds (SPEC §3).
    pub fn ttl(self) -> i64 {
        match self {
            TokenKind::Check => 600,
            TokenKind::Temp => 900,
            TokenKind::Onboarding => 3600,
            TokenKind::Access => 3600,
            TokenKind::Reset => 600,
            TokenKind::DeviceVerification => 900,
            TokenKind::StepUp => 300,
            TokenKind::PinRecovery => 900,
        }
    }

    /// Whether a bad token of this kind is a 401 (session tokens) or a 403 (flow tokens).
    fn invalid(self, message: &'static str) -> Error {
        match self {
            TokenKind::Access => Error::invalid_session_token(message),
            _ => Error::invalid_flow_token(message),
        }
    }
}

/// Refresh tokens live 30 days.
pub const REFRESH_TTL: i64 = 30 * 24 * 3600;

/// The registered claims every JWT carries, plus the kind's own claims.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims<T> {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub typ: TokenKind,
    #[serde(flatten)]
    pub body: T,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: serde_json::Value,
    pkcs8_pem: SecretString,
}

impl SigningKey {
    fn from_secret(kid: &str, secret: SecretKey) -> Result<Self> {
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| Error::internal(format!("encoding signing key: {e}")))?;
        let pem = secret
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .map_err(|e| Error::internal(format!("encoding signing key: {e}")))?;
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(Error::internal("signing key has no affine coordinates"));
        };
        let (x, y) = (b64url(x), b64url(y));
        let decoding = DecodingKey::from_ec_components(&x, &y)
            .map_err(|e| Error::internal(format!("building verification key: {e}")))?;
        Ok(Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            decoding,
            jwk: json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid, "x": x, "y": y}),
            pkcs8_pem: SecretString::from(pem.to_string()),
        })
    }

    fn generate(kid: &str) -> Result<Self> {
        loop {
            // Rejection of the (astronomically rare) out-of-range scalar.
            if let Ok(secret) = SecretKey::from_slice(&random_bytes::<32>()?) {
                return Self::from_secret(kid, secret);
            }
        }
    }

    fn from_pem(kid: &str, pem: &str) -> Result<Self> {
        let secret = SecretKey::from_pkcs8_pem(pem)
            .map_err(|_| Error::internal(format!("signing key {kid} is not a PKCS#8 P-256 PEM key")))?;
        Self::from_secret(kid, secret)
    }
}

/// One key as stored in the signing-keys secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyMaterial {
    pub kid: String,
    /// PKCS#8 PEM of a P-256 private key.
    pub pem: String,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial {{ kid: {:?}, pem: *** }}", self.kid)
    }
}

/// The signing-keys secret: the current key and, after a rotation, the previous one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeySet {
    pub current: KeyMaterial,
    #[serde(default)]
    pub previous: Option<KeyMaterial>,
}

/// The current and previous signing keys and the issuer/audience they sign for.
pub struct KeyRing {
    current: SigningKey,
    previous: Option<SigningKey>,
    issuer: String,
    audience: String,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current.kid)
            .field("previous", &self.previous.as_ref().map(|k| &k.kid))
            .finish()
    }
}

impl KeyRing {
    pub fn from_set(set: &KeySet, issuer: &str, audience: &str) -> Result<Self> {
        let current = SigningKey::from_pem(&set.current.kid, &set.current.pem)?;
        let previous = match &set.previous {
            Some(p) if p.kid == set.current.kid => {
                return Err(Error::internal("current and previous signing keys share a kid"));
            }
            Some(p) => Some(SigningKey::from_pem(&p.kid, &p.pem)?),
            None => None,
        };
        Ok(Self {
            current,
            previous,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// A fresh key set with one random key (development and tests).
    pub fn generate_set() -> Result<KeySet> {
        let kid = format!("dev-{}", &random_base62()?[..8]);
        let key = SigningKey::generate(&kid)?;
        Ok(KeySet {
            current: KeyMaterial {
                kid,
                pem: key.pkcs8_pem.expose_secret().to_owned(),
            },
            previous: None,
        })
    }

    /// The key set after a rotation: a new current key, the old current as previous.
    pub fn rotate_set(set: &KeySet) -> Result<KeySet> {
        let mut next = Self::generate_set()?;
        next.previous = Some(set.current.clone());
        Ok(next)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The JWKS document: the public halves of the current and previous keys.
    pub fn jwks(&self) -> serde_json::Value {
        let mut keys = vec![self.current.jwk.clone()];
        if let Some(p) = &self.previous {
            keys.push(p.jwk.clone());
        }
        json!({ "keys": keys })
    }

    /// Signs a token of `kind` for `sub` with a random `jti`, issued at `now`.
    pub fn issue<T: Serialize>(&self, kind: TokenKind, sub: &str, body: T, now: i64) -> Result<(String, Claims<T>)> {
        self.issue_with_jti(kind, sub, &random_base62()?, body, now)
    }

    /// As [`Self::issue`], with a given `jti` (a tempToken's is its OTP session id).
    pub fn issue_with_jti<T: Serialize>(
        &self,
        kind: TokenKind,
        sub: &str,
        jti: &str,
        body: T,
        now: i64,
    ) -> Result<(String, Claims<T>)> {
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: sub.to_owned(),
            iat: now,
            nbf: now,
            exp: now + kind.ttl(),
            jti: jti.to_owned(),
            typ: kind,
            body,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.current.kid.clone());
        header.typ = Some("JWT".into());
        let token = jsonwebtoken::encode(&header, &claims, &self.current.encoding)
            .map_err(|e| Error::internal(format!("signing a token: {e}")))?;
        Ok((token, claims))
    }

    /// Verifies signature (ES256 only, by `kid`), `iss`, `aud`, `typ`, and
    /// `nbf`/`exp` against `now` (the service clock, not the system's).
    pub fn verify<T: DeserializeOwned>(&self, kind: TokenKind, token: &str, now: i64) -> Result<Claims<T>> {
        let invalid = || kind.invalid("Invalid or expired token");
        if token.is_empty() || token.len() > 4096 {
            return Err(invalid());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::ES256 {
            return Err(invalid());
        }
        let key = match header.kid.as_deref() {
            Some(kid) if kid == self.current.kid => &self.current.decoding,
            Some(kid) => match &self.previous {
                Some(p) if p.kid == kid => &p.decoding,
                _ => return Err(invalid()),
            },
            None => return Err(invalid()),
        };
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        // Time is checked below against the service clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &v).map_err(|_| invalid())?;
        let claims: Claims<T> = serde_json::from_value(data.claims).map_err(|_| invalid())?;
        if claims.typ != kind {
            return Err(kind.invalid("This token cannot be used here"));
        }
        if now >= claims.exp || now + 60 < claims.nbf {
            return Err(kind.invalid("Invalid or expired token"));
        }
        Ok(claims)
    }
}

/// An opaque refresh token: 256 random bits, base64url. Redacted in `Debug`.
#[derive(Clone)]
pub struct RefreshToken(SecretString);

impl RefreshToken {
    pub fn generate() -> Result<Self> {
        Ok(Self(SecretString::from(b64url(&random_bytes::<32>()?))))
    }

    /// A token presented by a client (only its shape is checked here).
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            Ok(Self(SecretString::from(s.to_owned())))
        } else {
            Err(Error::invalid_session_token("Invalid refresh token"))
        }
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The SHA-256 (hex) that is stored instead of the token.
    pub fn hash(&self) -> String {
        hex::encode(sha256(self.expose().as_bytes()))
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(***)")
    }
}

/// The proof that a device is known to an account: 256 random bits
/// (base64url, 43 characters) handed to the device when it proves a code,
/// stored only as its SHA-256 on the known-device item, bound to the user
/// and the deviceId, and rotated at every sign-in on the device.
pub struct DeviceToken(SecretString);

impl DeviceToken {
    pub fn generate() -> Result<Self> {
        Ok(Self(SecretString::from(b64url(&random_bytes::<32>()?))))
    }

    /// A token a client presented; `None` when it is not one's shape (a
    /// malformed token makes the device unknown, it is not an error).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| Self(SecretString::from(s.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The SHA-256 (hex) that is stored instead of the token.
    pub fn hash(&self) -> String {
        hex::encode(sha256(self.expose().as_bytes()))
    }

    /// Whether this token's hash is `stored` (compared in constant time).
    pub fn matches(&self, stored: &str) -> bool {
        crate::base::crypto::ct_eq(self.hash().as_bytes(), stored.as_bytes())
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Body {
        phone: String,
    }

    fn ring() -> KeyRing {
        let set = KeyRing::generate_set().unwrap_or_else(|e| unreachable!("{e}"));
        KeyRing::from_set(&set, "iss", "aud").unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn body() -> Body {
        Body {
            phone: "+255745051250".into(),
        }
    }

    #[test]
    fn a_token_verifies_with_its_kind_until_it_expires() {
        let r = ring();
        let (t, _) = r
            .issue(TokenKind::Check, "s", body(), 1_000)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let c = r.verify::<Body>(TokenKind::Check, &t, 1_599);
        assert_eq!(c.map(|c| c.body).ok(), Some(body()));
        assert!(r.verify::<Body>(TokenKind::Check, &t, 1_600).is_err());
    }

    #[test]
    fn a_token_of_one_kind_is_refused_as_another() {
        let r = ring();
        let (t, _) = r
            .issue(TokenKind::Check, "s", body(), 1_000)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let e = r.verify::<Body>(TokenKind::Access, &t, 1_001).err();
        assert!(matches!(
            e,
            Some(Error::InvalidToken {
                of: crate::base::error::TokenClass::Session,
                ..
            })
        ));
    }

    #[test]
    fn a_token_from_another_key_ring_is_refused() {
        let (t, _) = ring()
            .issue(TokenKind::Temp, "s", body(), 1_000)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(ring().verify::<Body>(TokenKind::Temp, &t, 1_001).is_err());
    }

    #[test]
    fn tokens_of_the_previous_key_verify_after_rotation() {
        let set = KeyRing::generate_set().unwrap_or_else(|e| unreachable!("{e}"));
        let old = KeyRing::from_set(&set, "iss", "aud").unwrap_or_else(|e| unreachable!("{e}"));
        let (t, _) = old
            .issue(TokenKind::Access, "s", body(), 1_000)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let rotated = KeyRing::rotate_set(&set).unwrap_or_else(|e| unreachable!("{e}"));
        let new = KeyRing::from_set(&rotated, "iss", "aud").unwrap_or_else(|e| unreachable!("{e}"));
        assert!(new.verify::<Body>(TokenKind::Access, &t, 1_001).is_ok());
        assert_eq!(new.jwks()["keys"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn refresh_tokens_are_256_bit_and_stored_as_sha256() {
        let t = RefreshToken::generate().unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(t.expose().len(), 43);
        assert_eq!(t.hash().len(), 64);
        assert!(RefreshToken::parse(t.expose()).is_ok());
        assert!(RefreshToken::parse("short").is_err());
        assert_eq!(format!("{t:?}"), "RefreshToken(***)");
    }

    #[test]
    fn device_tokens_are_opaque_and_match_only_their_hash() {
        let t = DeviceToken::generate().unwrap_or_else(|e| unreachable!("{e}"));
        let again = DeviceToken::parse(t.expose()).unwrap_or_else(|| unreachable!());
        assert!(again.matches(&t.hash()));
        let other = DeviceToken::generate().unwrap_or_else(|e| unreachable!("{e}"));
        assert!(!other.matches(&t.hash()));
        assert!(DeviceToken::parse("not a token").is_none());
        assert_eq!(format!("{t:?}"), "DeviceToken(***)");
    }
}
