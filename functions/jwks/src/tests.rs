//! `handle` driven by the API Gateway v2 event in `events/jwks/`.

use nambari_core::base::tokens::KeyRing;
use nambari_core::testing;
use nambari_core::testing::calls::auth;
use nambari_http::testing::{Reply, call, event};
use serde_json::Value;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");

/// The JWKS keys of a 200 reply, after checking the response's shape and headers.
fn keys(r: &Reply) -> &Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["cache-control"], "public, max-age=300");
    assert!(
        r.body.get("success").is_none(),
        "a plain JWKS document, not the envelope"
    );
    r.body["keys"].as_array().expect("a keys array")
}

/// Decodes unpadded base64url (RFC 4648 §5).
fn b64url_decode(s: &str) -> Vec<u8> {
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => panic!("{:?} is not base64url", c as char),
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = (acc << 6) | u32::from(sextet(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// An EC P-256 public key for ES256 signatures, and nothing private.
fn assert_es256_public_jwk(key: &Value) {
    let mut names: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x", "y"], "{key}");
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    for coordinate in ["x", "y"] {
        let bytes = b64url_decode(key[coordinate].as_str().unwrap());
        assert_eq!(bytes.len(), 32, "{coordinate} is a 32-byte P-256 coordinate");
    }
}

#[tokio::test]
async fn jwks_lists_the_signing_key_as_an_ec_p256_es256_public_key() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "ok", &[])).await;
    let keys = keys(&r);
    assert_eq!(keys.len(), 1);
    assert_es256_public_jwk(&keys[0]);
}

#[tokio::test]
async fn jwks_kid_is_the_kid_in_the_header_of_issued_tokens() {
    let t = testing::app();
    let check = auth::check(&t.app, Some("+15555550100"), Some("android-uuid-abc123"), None)
        .await
        .unwrap();
    let header: Value = serde_json::from_slice(&b64url_decode(check.check_token.split('.').next().unwrap())).unwrap();
    assert_eq!(header["alg"], "ES256");
    let r = call(handle, &t, event(KRATE, "ok", &[])).await;
    assert_eq!(keys(&r)[0]["kid"], header["kid"]);
}

#[tokio::test]
async fn jwks_lists_the_current_and_the_previous_key_after_a_rotation() {
    let t = testing::app();
    let settings = &t.app.settings;
    let old = KeyRing::generate_set().unwrap();
    let rotated = KeyRing::rotate_set(&old).unwrap();
    t.app
        .keys()
        .unwrap()
        .set(KeyRing::from_set(&rotated, &settings.issuer, &settings.audience).unwrap());
    let r = call(handle, &t, event(KRATE, "ok", &[])).await;
    let keys = keys(&r);
    assert_eq!(keys.len(), 2);
    keys.iter().for_each(assert_es256_public_jwk);
    assert_eq!(
        keys[0]["kid"],
        rotated.current.kid.as_str(),
        "the current key comes first"
    );
    assert_eq!(keys[1]["kid"], old.current.kid.as_str());
}
