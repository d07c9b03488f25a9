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

    // verify, new user: one batch read + one transaction creating the user.
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

    // verify, returning user: one batch read + one transaction (code, session, refresh token).
    let (signed_in, n) = counted(
        &s,
        "/auth/verify-otp",
        json!({"tempToken": start.data_str("tempToken"), "otp": start.data_str("sandboxOtp")}),
    )
    .await;
    assert_eq!(n, 2, "verify-otp (sign-in)");

    // refresh: the token's record, a batch read (session + user), one transaction.
    let (refreshed, n) = counted(
        &s,
        "/auth/token/refresh",
        json!({"refreshToken": signed_in.data_str("refreshToken")}),
    )
    .await;
    assert_eq!(n, 3, "token/refresh");

    // revoke: the token's record, its session, one transaction.
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
