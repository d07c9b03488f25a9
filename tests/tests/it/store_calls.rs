//! Store round trips per endpoint on the happy path (a transaction or a
//! batch read counts as one): every one is a DynamoDB call the user waits for.

use nambari_tests::server::{Reply, Server, Store};
use serde_json::{Value, json};

const PHONE: &str = "+255745051250";

/// Posts and returns the reply with the store calls it made.
async fn counted(s: &Server, path: &str, body: Value) -> (Reply, u64) {
    let before = s.app.db.calls();
    let r = s.post(path, body).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    (r, s.app.db.calls() - before)
}

#[tokio::test]
async fn each_end_user_endpoint_makes_at_most_four_store_round_trips() {
    let s = Server::start(Store::Memory).await;
    let dev = json!("dev-1");

    // check, new number: the phone item + the per-IP check counter.
    let (check, n) = counted(&s, "/auth/check", json!({"identifier": PHONE, "deviceId": dev})).await;
    assert_eq!(n, 2, "check (new number)");
    let ct = check.data_str("checkToken");

    // channels: one batch read (used-token marker + user).
    let (_, n) = counted(
        &s,
        "/auth/passwordless/channels",
        json!({"checkToken": ct, "deviceId": dev}),
    )
    .await;
    assert_eq!(n, 1, "channels");

    // start, first send to +255 in this process: the breaker's history read,
    // then one transaction (token, session, every counter).
    let (start, n) = counted(
        &s,
        "/auth/passwordless-start",
        json!({"checkToken": ct, "channel": "SMS", "deviceId": dev}),
    )
    .await;
    assert_eq!(n, 2, "passwordless-start (cold breaker cache)");

    // resend: the session read + one transaction (breaker threshold cached).
    s.clock.advance(60);
    let (resent, n) = counted(
        &s,
        "/auth/resend-otp",
        json!({"tempToken": start.data_str("tempToken")}),
    )
    .await;
    assert_eq!(n, 2, "resend-otp");

    // verify, new user: the attempt taken (a conditional update returning
    // the session, before the code is compared) + one transaction creating
    // the user.
    let (verified, n) = counted(
        &s,
        "/auth/verify-otp",
        json!({"tempToken": resent.data_str("tempToken"), "otp": resent.data_str("sandboxOtp")}),
    )
    .await;
    assert_eq!(n, 2, "verify-otp (new user)");

    // onboarding: one batch read, the number's pending invites (a query),
    // one transaction (token, user, session, refresh token, claimed invites).
    let (primary, n) = counted(
        &s,
        "/auth/onboarding/primary",
        json!({"onboardingToken": verified.data_str("onboardingToken"), "firstName": "Asha", "lastName": "Mwangi", "birthDate": "1995-06-15"}),
    )
    .await;
    assert_eq!(n, 3, "onboarding/primary");

    // check, existing user: phone item, user, check counter.
    let (check, n) = counted(&s, "/auth/check", json!({"identifier": PHONE, "deviceId": dev})).await;
    assert_eq!(n, 3, "check (existing user)");

    // start, warm breaker cache: one transaction.
    let (start, n) = counted(
        &s,
        "/auth/passwordless-start",
        json!({"checkToken": check.data_str("checkToken"), "channel": "SMS", "deviceId": dev}),
    )
    .await;
    assert_eq!(n, 1, "passwordless-start (warm)");

    // verify, returning user: the attempt taken and the user read at the
    // same time (two calls, one wait), then one transaction (code, session,
    // refresh token, device). One more call than before attempt slots.
    let (signed_in, n) = counted(
        &s,
        "/auth/verify-otp",
        json!({"tempToken": start.data_str("tempToken"), "otp": start.data_str("sandboxOtp")}),
    )
    .await;
    assert_eq!(n, 3, "verify-otp (sign-in)");

    // refresh: the token's record, a batch read (session + user), one transaction.
    let (refreshed, n) = counted(
        &s,
        "/auth/token/refresh",
        json!({"refreshToken": signed_in.data_str("refreshToken")}),
    )
    .await;
    assert_eq!(n, 3, "token/refresh");

    // revoke: the token's record, its session and user (one batch), one transaction.
    let (_, n) = counted(
        &s,
        "/auth/token/revoke",
        json!({"refreshToken": refreshed.data_str("refreshToken")}),
    )
    .await;
    assert_eq!(n, 3, "token/revoke");

    let before = s.app.db.calls();
    let jwks = s.request("GET", "/.well-known/jwks.json", None, &[]).await;
    assert_eq!((jwks.status, s.app.db.calls() - before), (200, 0), "jwks");
    drop(primary);
}

/// A request with an access token; the reply and the store calls it made.
async fn authed(s: &Server, method: &str, path: &str, body: Option<Value>, token: &str) -> (Reply, u64) {
    let before = s.app.db.calls();
    let auth = format!("Bearer {token}");
    let r = s
        .request(
            method,
            &format!("/api/v1{path}"),
            body.map(|b| b.to_string()),
            &[("authorization", auth.as_str())],
        )
        .await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    (r, s.app.db.calls() - before)
}

/// Signs `phone` up on `device`: the access, refresh and device tokens.
async fn sign_up(s: &Server, phone: &str, device: &str) -> (String, String, String) {
    let c = s
        .post("/auth/check", json!({"identifier": phone, "deviceId": device}))
        .await;
    let st = s
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": c.data_str("checkToken"), "channel": "SMS", "deviceId": device}),
        )
        .await;
    let v = s
        .post(
            "/auth/verify-otp",
            json!({"tempToken": st.data_str("tempToken"), "otp": st.data_str("sandboxOtp")}),
        )
        .await;
    let p = s
        .post(
            "/auth/onboarding/primary",
            json!({"onboardingToken": v.data_str("onboardingToken"), "firstName": "Asha", "lastName": "Mwangi", "birthDate": "1995-06-15"}),
        )
        .await;
    (
        p.data_str("accessToken"),
        p.data_str("refreshToken"),
        p.data_str("deviceToken"),
    )
}

#[tokio::test]
async fn each_credential_and_account_endpoint_makes_at_most_four_store_round_trips() {
    let s = Server::start(Store::Memory).await;
    let (at, _, device_token) = sign_up(&s, PHONE, "dev-1").await;
    let check = |device: &'static str| {
        let s = &s;
        async move {
            s.post("/auth/check", json!({"identifier": PHONE, "deviceId": device}))
                .await
                .data_str("checkToken")
        }
    };

    // Profile reads and writes: the session and user in one batch, then one
    // transaction (the user, and the username's or email's owner item).
    let (_, n) = authed(&s, "GET", "/account/me", None, &at).await;
    assert_eq!(n, 1, "account/me");
    let (_, n) = authed(&s, "PUT", "/account/username", Some(json!({"username": "asha"})), &at).await;
    assert_eq!(n, 2, "account/username");
    for (path, body) in [
        ("/account/interests", json!({"interests": ["music"]})),
        ("/account/bio", json!({"bio": "Hi"})),
        (
            "/account/profile-pic",
            json!({"profilePic": "https://cdn.example.com/a.jpg"}),
        ),
    ] {
        let (_, n) = authed(&s, "PUT", path, Some(body), &at).await;
        assert_eq!(n, 2, "{path}");
    }
    // email start: the principal and the email's owner (one batch), one
    // transaction (session + send counters); verify: the principal, the
    // attempt taken on the code's session, one transaction.
    let (start, n) = authed(
        &s,
        "POST",
        "/account/email/start",
        Some(json!({"email": "asha@example.com"})),
        &at,
    )
    .await;
    assert_eq!(n, 2, "account/email/start");
    let code = s.sender.last_code_to("asha@example.com").unwrap();
    let (_, n) = authed(
        &s,
        "POST",
        "/account/email/verify",
        Some(json!({"tempToken": start.data_str("tempToken"), "otp": code})),
        &at,
    )
    .await;
    assert_eq!(n, 3, "account/email/verify");

    // Password and PIN: the principal with the credentials and the lock in
    // one batch, one transaction (hash, flag, lock cleared).
    let (_, n) = authed(
        &s,
        "PUT",
        "/account/password",
        Some(json!({"newPassword": "correct horse battery"})),
        &at,
    )
    .await;
    assert_eq!(n, 2, "account/password");
    let (_, n) = authed(&s, "PUT", "/account/pin", Some(json!({"pin": "2468"})), &at).await;
    assert_eq!(n, 2, "account/pin");
    // step-up: one batch (principal, credentials, lock), then the PIN's
    // attempt slot (a conditional update) before the PIN is compared; the
    // token is stateless and the slot's lease lapses by itself.
    let (_, n) = authed(
        &s,
        "POST",
        "/auth/step-up",
        Some(json!({"pin": "2468", "scope": "pay"})),
        &at,
    )
    .await;
    assert_eq!(n, 2, "auth/step-up");

    // Password sign-in, known device (its deviceToken): one batch (token
    // marker, user, credentials, lock, device), the password's attempt
    // slot, one transaction (token, session, refresh record, device, lock
    // cleared).
    let ct = check("dev-1").await;
    let (r, n) = counted(
        &s,
        "/auth/login/password",
        json!({"checkToken": ct, "password": "correct horse battery", "deviceId": "dev-1", "deviceToken": device_token}),
    )
    .await;
    assert_eq!(n, 3, "auth/login/password (known device)");
    let second_at = r.data_str("accessToken");
    // Unknown device: the same batch and slot, then one transaction (token,
    // device OTP session, send counters); verify: the attempt taken with
    // the user read alongside, one transaction.
    let ct = check("dev-2").await;
    let (r, n) = counted(
        &s,
        "/auth/login/password",
        json!({"checkToken": ct, "password": "correct horse battery", "deviceId": "dev-2"}),
    )
    .await;
    assert_eq!(n, 3, "auth/login/password (new device)");
    let (_, n) = counted(
        &s,
        "/account/device/verify",
        json!({"deviceVerificationToken": r.data_str("deviceVerificationToken"), "otp": r.data_str("sandboxOtp")}),
    )
    .await;
    assert_eq!(n, 3, "account/device/verify");

    // Forgot password: initiate (one batch, one transaction), verify-otp
    // (the attempt taken, one transaction), reset (one batch, one
    // transaction that moves the session epoch and opens the new session).
    let ct = check("dev-1").await;
    let (i, n) = counted(
        &s,
        "/auth/password/forgot/initiate",
        json!({"checkToken": ct, "deviceId": "dev-1"}),
    )
    .await;
    assert_eq!(n, 2, "password/forgot/initiate");
    let (v, n) = counted(
        &s,
        "/auth/password/forgot/verify-otp",
        json!({"tempToken": i.data_str("tempToken"), "otp": i.data_str("sandboxOtp")}),
    )
    .await;
    assert_eq!(n, 2, "password/forgot/verify-otp");
    let (reset, n) = counted(
        &s,
        "/auth/password/forgot/reset",
        json!({"resetToken": v.data_str("resetToken"), "newPassword": "another password", "confirmPassword": "another password"}),
    )
    .await;
    assert_eq!(n, 2, "password/forgot/reset");
    let at = reset.data_str("accessToken");
    drop(second_at);

    // Sessions: the principal, then one query of the user's sessions;
    // revoking another: the principal, the target session, one transaction;
    // logout: the principal, one transaction.
    let (tt, code) = {
        let ct = check("dev-3").await;
        let st = s
            .post(
                "/auth/passwordless-start",
                json!({"checkToken": ct, "channel": "SMS", "deviceId": "dev-3"}),
            )
            .await;
        (st.data_str("tempToken"), st.data_str("sandboxOtp"))
    };
    let other = s.post("/auth/verify-otp", json!({"tempToken": tt, "otp": code})).await;
    let other_at = other.data_str("accessToken");
    let (_, n) = authed(&s, "GET", "/account/sessions", None, &at).await;
    assert_eq!(n, 2, "account/sessions");
    let sid = nambari_tests::rig::jwt_claims(&other_at)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, n) = authed(&s, "DELETE", &format!("/account/sessions/{sid}"), None, &at).await;
    assert_eq!(n, 3, "account/sessions/{{id}}");
    let (_, n) = authed(&s, "POST", "/auth/logout", None, &at).await;
    assert_eq!(n, 2, "auth/logout");

    // One-step flow (a number the sends above did not use): trigger is one
    // transaction (the breaker threshold is cached); verify for a new user:
    // the attempt taken with the phone item read alongside, one transaction
    // creating the user and the session; for an existing user the user item
    // is read too.
    const ONE_STEP: &str = "+255745051299";
    let (t, n) = counted(&s, "/auth/otp/trigger", json!({"phone": ONE_STEP})).await;
    assert_eq!(n, 1, "auth/otp/trigger");
    let (v, n) = counted(
        &s,
        "/auth/otp/verify",
        json!({"phone": ONE_STEP, "otp": t.data_str("sandbox_otp")}),
    )
    .await;
    assert_eq!(
        (n, v.body["data"]["is_new_user"].as_bool()),
        (3, Some(true)),
        "auth/otp/verify (new user)"
    );
    let (t, _) = counted(&s, "/auth/otp/trigger", json!({"phone": ONE_STEP})).await;
    let (v, n) = counted(
        &s,
        "/auth/otp/verify",
        json!({"phone": ONE_STEP, "otp": t.data_str("sandbox_otp")}),
    )
    .await;
    assert_eq!(
        (n, v.body["data"]["is_new_user"].as_bool()),
        (4, Some(false)),
        "auth/otp/verify (existing user)"
    );
}

#[tokio::test]
async fn the_oauth_endpoints_make_two_store_round_trips_each() {
    use nambari_tests::rig::Rig;
    let mut settings = nambari_core::testing::settings();
    settings.oauth.google_client_ids = vec!["google-client".into()];
    let rig = Rig::start_with_app(Store::Memory, settings, |app| {
        app.with_oauth(Some(
            std::sync::Arc::new(nambari_core::testing::FakeIdTokens::default()),
        ))
    })
    .await;
    let user = rig.sign_up(PHONE, "dev-1").await;
    let calls = || rig.app.db.calls();
    // nonce: the principal (one batch), one put.
    let before = calls();
    let r = rig
        .call("POST", "/account/oauth/nonce", None, Some(&user.access_token))
        .await;
    assert_eq!(
        (r.status, calls() - before),
        (200, 2),
        "account/oauth/nonce: {}",
        r.body
    );
    let nonce = r.data_str("nonce");
    // link: the principal with the credentials, PIN lock and nonce (one
    // batch), one transaction (nonce spent, subject item, user).
    let before = calls();
    let r = rig
        .call(
            "POST",
            "/account/oauth/link",
            Some(json!({"provider": "GOOGLE", "idToken": "good:g-1", "nonce": nonce})),
            Some(&user.access_token),
        )
        .await;
    assert_eq!((r.status, calls() - before), (200, 2), "account/oauth/link: {}", r.body);
    // login on the known device: the token marker, the user and the device
    // (one batch), one transaction.
    let ct = rig.check(PHONE, "dev-1").await;
    let before = calls();
    let r = rig
        .post(
            "/auth/login/oauth",
            json!({"checkToken": ct, "provider": "GOOGLE", "idToken": "good:g-1", "deviceId": "dev-1", "deviceToken": user.device_token}),
        )
        .await;
    assert_eq!(
        (r.status, r.action(), calls() - before),
        (200, "", 2),
        "auth/login/oauth: {}",
        r.body
    );
    // unlink: the principal, one transaction.
    let before = calls();
    let r = rig
        .call("DELETE", "/account/oauth/GOOGLE", None, Some(&user.access_token))
        .await;
    assert_eq!(
        (r.status, calls() - before),
        (200, 2),
        "account/oauth/{{provider}}: {}",
        r.body
    );
}
