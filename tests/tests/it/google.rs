//! A Google sign-in provider for the tests: RS256 idTokens signed with the
//! fixture key, and a rig whose verifier fetches the fixture JWKS from a
//! local wiremock server.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use nambari_core::base::config::Settings;
use nambari_core::base::values::Provider;
use nambari_oauth::{JwksVerifier, ProviderConfig};
use nambari_tests::rig::Rig;
use nambari_tests::server::Store;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const TEST_PEM: &str = include_str!("../../fixtures/oauth-test-rsa.pem");
pub const TEST_JWKS: &str = include_str!("../../fixtures/oauth-test-jwks.json");
/// The Google client id the rig accepts as `aud`.
pub const CLIENT: &str = "nambari-android.apps.googleusercontent.com";
/// The Apple client id the rig accepts as `aud`.
pub const APPLE_CLIENT: &str = "com.example.nambari";

/// `claims` as an idToken signed by the fixture key (`kid` test-rsa-1).
pub fn sign(claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("test-rsa-1".into());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_pem(TEST_PEM.as_bytes()).unwrap()).unwrap()
}

/// A rig on `store` with `settings`, whose Google provider trusts the
/// fixture JWKS (served by the returned mock server, which must live as
/// long as the rig) and accepts [`CLIENT`] and [`APPLE_CLIENT`].
pub async fn rig(store: Store, mut settings: Settings) -> (Rig, MockServer) {
    let jwks = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/oauth2/v3/certs"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(TEST_JWKS, "application/json"))
        .mount(&jwks)
        .await;
    let mut providers = HashMap::new();
    providers.insert(
        Provider::Google,
        ProviderConfig::google(vec![CLIENT.into()], format!("{}/oauth2/v3/certs", jwks.uri())),
    );
    let verifier = Arc::new(JwksVerifier::new(providers).unwrap());
    settings.oauth.google_client_ids = vec![CLIENT.into()];
    settings.oauth.apple_client_ids = vec![APPLE_CLIENT.into()];
    let rig = Rig::start_with_app(store, settings, |app| app.with_oauth(Some(verifier))).await;
    (rig, jwks)
}
