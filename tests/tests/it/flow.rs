//! The passwordless flow end to end through local mode's HTTP server, on
//! the in-memory store and on DynamoDB (moto).

use futures_util::future::join_all;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use nambari_core::model::keys::phone_key;
use nambari_core::model::records::User;
use nambari_core::model::table::Key;
use nambari_core::ports::table::Db;
use nambari_tests::server::{Reply, Server, Store};
use serde_json::{Value, json};

const PHONE: &str = "+255745051250";

/// check → passwordless-start (SMS) → the code the sender got.
async fn start_sign_in(s: &Server, phone: &str, device: &str) -> (Reply, String) {
    let check = s
        .post("/auth/check", json!({"identifier": phone, "deviceId": device}))
        .await;
    assert_eq!(check.status, 200, "{}", check.body);
    let ct = check.data_str("checkToken");
    let start = s
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": ct, "channel": "SMS", "deviceId": device}),
        )
        .await;
    assert_eq!(start.status, 200, "{}", start.body);
    let code = s.sender.last_code_to(phone).expect("a code was sent");
    assert_eq!(start.data_str("sandboxOtp"), code);
    (start, code)
}

/// Verifies an access token against the server's JWKS, as an app back end would.
async fn verify_with_jwks(s: &Server, token: &str) -> Value {
    let jwks = s.request("GET", "/.well-known/jwks.json", None, &[]).await;
    assert_eq!(jwks.status, 200);
    let set: JwkSet = serde_json::from_value(jwks.body).expect("a JWKS document");
    let kid = jsonwebtoken::decode_header(token).expect("header").kid.expect("kid");
    let jwk = set.find(&kid).expect("the token's kid is published");
    let key = DecodingKey::from_jwk(jwk).expect("usable key");
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&["nambari-apps"]);
    v.set_issuer(&["nambari"]);
    // The service runs on a fixed test clock in 2026-04; check exp by hand.
    v.validate_exp = false;
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).expect("token verifies against the JWKS");
    data.claims
}

async fn sign_up_then_sign_in(store: Store) {
    let s = Server::start(store).await;

    // check → REGISTER
    let check = s
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": "dev-1"}))
        .await;
    assert_eq!((check.status, check.action()), (200, "REGISTER"), "{}", check.body);
    assert_eq!(check.body["data"]["exists"], false);
    assert_eq!(check.body["data"]["maskedPhone"], Value::Null);
    let ct = check.data_str("checkToken");

    // channels: SMS (primary) and WHATSAPP, checkToken not consumed
    let ch = s
        .post(
            "/auth/passwordless/channels",
            json!({"checkToken": ct, "deviceId": "dev-1"}),
        )
        .await;
    assert_eq!((ch.status, ch.action()), (200, "SELECT_CHANNEL"), "{}", ch.body);
    assert_eq!(
        ch.body["data"]["channels"],
        json!([
            {"channel": "SMS", "masked": "••• ••• ••50", "isPrimary": true},
            {"channel": "WHATSAPP", "masked": "••• ••• ••50", "isPrimary": false}
        ])
    );

    // passwordless-start → tempToken, code delivered once
    let start = s
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": ct, "channel": "SMS", "deviceId": "dev-1"}),
        )
        .await;
    assert_eq!(start.status, 200, "{}", start.body);
    assert_eq!(start.body["data"]["expiresInSeconds"], 120);
    assert_eq!(start.body["data"]["resendAvailableAfterSeconds"], 60);
    assert_eq!(start.body["data"]["maskedDestination"], "••• ••• ••50");
    let messages = s.sender.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].to, PHONE);
    let code = messages[0].code.expose().to_owned();

    // verify-otp → COLLECT_PRIMARY + onboardingToken
    let verify = s
        .post(
            "/auth/verify-otp",
            json!({"tempToken": start.data_str("tempToken"), "otp": code, "deviceName": "Pixel", "platform": "ANDROID"}),
        )
        .await;
    assert_eq!(
        (verify.status, verify.action()),
        (200, "COLLECT_PRIMARY"),
        "{}",
        verify.body
    );
    assert_eq!(verify.body["data"]["accessToken"], Value::Null);

    // check now → CONTINUE_ONBOARDING
    let again = s
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": "dev-1"}))
        .await;
    assert_eq!(again.action(), "CONTINUE_ONBOARDING");

    // onboarding/primary → tokens, FULL tier
    let primary = s
        .post(
            "/auth/onboarding/primary",
            json!({"onboardingToken": verify.data_str("onboardingToken"), "firstName": "Asha", "lastName": "Mwangi", "birthDate": "1995-06-15"}),
        )
        .await;
    assert_eq!(primary.status, 200, "{}", primary.body);
    assert_eq!(primary.body["data"]["accountTier"], "FULL");
    assert_eq!(primary.body["data"]["onboarding"]["primaryComplete"], true);
    let claims = verify_with_jwks(&s, &primary.data_str("accessToken")).await;
    assert_eq!(claims["typ"], "access");
    assert_eq!(claims["phone"], PHONE);
    assert_eq!(claims["ctry"], "TZ");
    assert_eq!(claims["amr"], json!(["otp_sms"]));
    assert!(claims["sub"].as_str().unwrap().starts_with("usr_"));
    assert!(claims["sid"].as_str().unwrap().starts_with("ses_"));
    let user_id = claims["sub"].as_str().unwrap().to_owned();

    // check → LOGIN with the masked phone
    let login = s
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": "dev-2"}))
        .await;
    assert_eq!((login.status, login.action()), (200, "LOGIN"));
    assert_eq!(login.body["data"]["maskedPhone"], "••• ••• ••50");
    assert_eq!(login.body["data"]["authMethods"]["passwordless"], true);

    // sign-in returns tokens directly
    let (start, code) = start_sign_in(&s, PHONE, "dev-2").await;
    let signed_in = s
        .post(
            "/auth/verify-otp",
            json!({"tempToken": start.data_str("tempToken"), "otp": code}),
        )
        .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert_eq!(signed_in.body["action"], Value::Null);
    assert_eq!(signed_in.body["data"]["onboardingToken"], Value::Null);
    assert_eq!(signed_in.body["data"]["primaryComplete"], true);
    let claims = verify_with_jwks(&s, &signed_in.data_str("accessToken")).await;
    assert_eq!(claims["sub"], user_id.as_str());

    // refresh rotates; the old token is then reuse and kills the family
    let rt = signed_in.data_str("refreshToken");
    let refreshed = s.post("/auth/token/refresh", json!({"refreshToken": rt})).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let reused = s.post("/auth/token/refresh", json!({"refreshToken": rt})).await;
    assert_eq!((reused.status, reused.code()), (401, "TOKEN_REUSED"));
    let newer = s
        .post(
            "/auth/token/refresh",
            json!({"refreshToken": refreshed.data_str("refreshToken")}),
        )
        .await;
    assert_eq!((newer.status, newer.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn sign_up_then_sign_in_on_the_memory_store() {
    sign_up_then_sign_in(Store::Memory).await;
}

#[tokio::test]
async fn sign_up_then_sign_in_on_dynamodb() {
    sign_up_then_sign_in(Store::Dynamo).await;
}

async fn one_check_token_many_starts(store: Store) {
    let s = Server::start(store).await;
    let check = s
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": "dev-1"}))
        .await;
    let ct = check.data_str("checkToken");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let body = json!({"checkToken": ct, "channel": "SMS", "deviceId": "dev-1"});
        let s = &s;
        tasks.push(async move { s.post("/auth/passwordless-start", body).await });
    }
    let replies = join_all(tasks).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let used = replies
        .iter()
        .filter(|r| (r.status, r.code()) == (403, "TOKEN_ALREADY_USED"))
        .count();
    assert_eq!(
        ok,
        1,
        "exactly one start succeeds: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(used, 19);
    assert_eq!(s.sender.messages().len(), 1, "one code sent");
}

#[tokio::test]
async fn twenty_concurrent_starts_with_one_check_token_succeed_once_in_memory() {
    one_check_token_many_starts(Store::Memory).await;
}

#[tokio::test]
async fn twenty_concurrent_starts_with_one_check_token_succeed_once_on_dynamodb() {
    one_check_token_many_starts(Store::Dynamo).await;
}

async fn concurrent_sign_ups_of_one_phone(store: Store) {
    // Ten sends to one phone exceed its 5-per-5-minutes limit (tested in
    // limits.rs); this test is about one user per phone, so limits are off.
    let mut settings = nambari_core::testing::settings();
    settings.limits.enabled = false;
    let s = Server::start_with(store, settings).await;
    let mut flows = Vec::new();
    for i in 0..10 {
        let s = &s;
        flows.push(async move {
            let device = format!("dev-{i}");
            let check = s
                .post("/auth/check", json!({"identifier": PHONE, "deviceId": device}))
                .await;
            let start = s
                .post(
                    "/auth/passwordless-start",
                    json!({"checkToken": check.data_str("checkToken"), "channel": "SMS", "deviceId": device}),
                )
                .await;
            let code = start.data_str("sandboxOtp");
            s.post(
                "/auth/verify-otp",
                json!({"tempToken": start.data_str("tempToken"), "otp": code}),
            )
            .await
        });
    }
    let replies = join_all(flows).await;
    let onboarding: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert!(!onboarding.is_empty(), "at least the latest session verifies");
    // Every refusal is the superseded session (only the latest is valid).
    for r in replies.iter().filter(|r| r.status != 200) {
        assert_eq!((r.status, r.code()), (403, "INVALID_TOKEN"), "{}", r.body);
    }
    // Exactly one user and one phone item.
    let db = Db::new(s.table.clone());
    let now = nambari_core::testing::T0;
    let user = db.user_by_phone(PHONE, now).await.unwrap().expect("one user");
    assert_eq!(user.phone, PHONE);
    let phone_item = s.table.get(&phone_key(PHONE)).await.unwrap().unwrap();
    assert_eq!(phone_item["user_id"], user.id.as_str());
}

#[tokio::test]
async fn ten_concurrent_sign_ups_of_one_phone_make_one_user_in_memory() {
    concurrent_sign_ups_of_one_phone(Store::Memory).await;
}

#[tokio::test]
async fn ten_concurrent_sign_ups_of_one_phone_make_one_user_on_dynamodb() {
    concurrent_sign_ups_of_one_phone(Store::Dynamo).await;
}

/// Ten transactions creating a user for one phone at once: one wins.
async fn racing_user_creations(store: Store) {
    let s = Server::start(store).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let table = s.table.clone();
        tasks.push(tokio::spawn(async move {
            let user = User::new(
                nambari_core::base::ids::UserId::generate().unwrap(),
                PHONE,
                "TZ",
                nambari_core::testing::T0,
            );
            let writes = Db::create_user_writes(&user, nambari_core::testing::T0).unwrap();
            table.transact(writes.into()).await.is_ok()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn only_one_of_ten_racing_user_creations_for_a_phone_commits_in_memory() {
    racing_user_creations(Store::Memory).await;
}

#[tokio::test]
async fn only_one_of_ten_racing_user_creations_for_a_phone_commits_on_dynamodb() {
    racing_user_creations(Store::Dynamo).await;
}

#[tokio::test]
async fn a_temp_token_is_refused_as_an_onboarding_token_and_a_check_token_as_a_temp_token() {
    let s = Server::start(Store::Memory).await;
    let (start, _) = start_sign_in(&s, PHONE, "dev-1").await;
    let r = s
        .post(
            "/auth/onboarding/primary",
            json!({"onboardingToken": start.data_str("tempToken"), "firstName": "A", "lastName": "B", "birthDate": "1990-01-01"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "INVALID_TOKEN"), "{}", r.body);
    let check = s
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": "dev-1"}))
        .await;
    let r = s
        .post(
            "/auth/verify-otp",
            json!({"tempToken": check.data_str("checkToken"), "otp": "123456"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "INVALID_TOKEN"), "{}", r.body);
}

#[tokio::test]
async fn expired_items_are_ignored_on_dynamodb_where_ttl_never_deletes() {
    // moto never deletes TTL-expired items, so this proves the code checks
    // expires_at itself: a code past its session's life is refused.
    let s = Server::start(Store::Dynamo).await;
    let (start, code) = start_sign_in(&s, PHONE, "dev-1").await;
    s.clock.advance(15 * 60 + 1);
    let r = s
        .post(
            "/auth/verify-otp",
            json!({"tempToken": start.data_str("tempToken"), "otp": code}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "INVALID_TOKEN"), "{}", r.body);
    // The item is still physically there.
    let key = Key::new(format!("OTP#auth#{PHONE}"), "OTP");
    assert!(s.table.get(&key).await.unwrap().is_some());
}

#[tokio::test]
async fn the_error_rows_of_the_reference_hold_on_dynamodb() {
    let s = Server::start(Store::Dynamo).await;
    // bad phone → 422 with a field map
    let r = s
        .post("/auth/check", json!({"identifier": "0745051250", "deviceId": "d"}))
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"));
    assert!(r.body["data"]["identifier"].is_string());
    // deviceId mismatch
    let check = s
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": "dev-1"}))
        .await;
    let ct = check.data_str("checkToken");
    let r = s
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": ct, "channel": "SMS", "deviceId": "dev-2"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "DEVICE_MISMATCH"));
    // internal channel, EMAIL for a new user
    let r = s
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": ct, "channel": "ALL_CHANNELS", "deviceId": "dev-1"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "CHANNEL_NOT_ALLOWED"));
    let r = s
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": ct, "channel": "EMAIL", "deviceId": "dev-1"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "CHANNEL_NOT_ALLOWED"));
    // wrong, wrong, wrong → INVALID_OTP, INVALID_OTP, TOO_MANY_OTP_ATTEMPTS
    let start = s
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": ct, "channel": "SMS", "deviceId": "dev-1"}),
        )
        .await;
    let tt = start.data_str("tempToken");
    let code = start.data_str("sandboxOtp");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for expected in ["INVALID_OTP", "INVALID_OTP", "TOO_MANY_OTP_ATTEMPTS"] {
        let r = s.post("/auth/verify-otp", json!({"tempToken": tt, "otp": wrong})).await;
        assert_eq!((r.status, r.code()), (403, expected), "{}", r.body);
    }
    // even the right code is refused now
    let r = s.post("/auth/verify-otp", json!({"tempToken": tt, "otp": code})).await;
    assert_eq!((r.status, r.code()), (403, "TOO_MANY_OTP_ATTEMPTS"));
    // used checkToken
    let r = s
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": ct, "channel": "SMS", "deviceId": "dev-1"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "TOKEN_ALREADY_USED"));
    // resend inside the cooldown, and the expired code (fixed clock)
    let (start, code) = start_sign_in(&s, PHONE, "dev-1").await;
    let tt = start.data_str("tempToken");
    let r = s.post("/auth/resend-otp", json!({"tempToken": tt})).await;
    assert_eq!((r.status, r.code()), (400, "RESEND_COOLDOWN"));
    assert_eq!(r.body["retryAfter"], 60);
    s.clock.advance(121);
    let r = s.post("/auth/verify-otp", json!({"tempToken": tt, "otp": code})).await;
    assert_eq!((r.status, r.code()), (403, "OTP_EXPIRED"));
    // bad refresh token
    let r = s
        .post("/auth/token/refresh", json!({"refreshToken": "not-a-token"}))
        .await;
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn revoking_with_a_rotated_refresh_token_ends_the_family_as_reuse() {
    let s = Server::start(Store::Memory).await;
    let (start, code) = start_sign_in(&s, PHONE, "dev-1").await;
    let v = s
        .post(
            "/auth/verify-otp",
            json!({"tempToken": start.data_str("tempToken"), "otp": code}),
        )
        .await;
    let p = s
        .post(
            "/auth/onboarding/primary",
            json!({"onboardingToken": v.data_str("onboardingToken"), "firstName": "A", "lastName": "B", "birthDate": "1990-01-01"}),
        )
        .await;
    let old = p.data_str("refreshToken");
    let new = s.post("/auth/token/refresh", json!({"refreshToken": old})).await;
    assert_eq!(new.status, 200);
    let r = s.post("/auth/token/revoke", json!({"refreshToken": old})).await;
    assert_eq!((r.status, r.code()), (401, "TOKEN_REUSED"), "{}", r.body);
    let r = s
        .post(
            "/auth/token/refresh",
            json!({"refreshToken": new.data_str("refreshToken")}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (401, "INVALID_TOKEN"),
        "the family is gone: {}",
        r.body
    );
}
