//! Races (SPEC §3 "exactly one of any number of concurrent uses succeeds",
//! §8 "concurrent sign-ups of one phone make one user"): many requests with
//! one token at once, over HTTP, on DynamoDB (moto) and on the memory store
//! (on a multi-threaded runtime, so handlers really run in parallel). The
//! [`FaultyTable`](nambari_tests::faults::FaultyTable) under the app injects
//! nothing here; it logs the writes that committed. moto answers one request
//! at a time (tests/moto_serial.py), which makes each conditional write and
//! transaction atomic as DynamoDB's are; every request, and every step
//! between a handler's reads and its writes, still races.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use nambari_core::model::table::Key;
use nambari_tests::rig::{Rig, jwt_claims};
use nambari_tests::server::{Reply, Store};
use serde_json::{Value, json};

const PHONE: &str = "+255745051250";
const TEST_PHONE: &str = "+15555550100";
const DEVICE: &str = "dev-1";

async fn rig(store: Store) -> Rig {
    Rig::start_with(store, nambari_core::testing::settings()).await
}

/// `n` POSTs of `body` to `path`, all at once.
async fn race(rig: &Rig, n: usize, path: &str, body: Value) -> Vec<Reply> {
    join_all((0..n).map(|_| rig.post(path, body.clone()))).await
}

/// How many replies of each (status, code).
fn tally(replies: &[Reply]) -> BTreeMap<(u16, String), usize> {
    let mut m = BTreeMap::new();
    for r in replies {
        *m.entry((r.status, r.code().to_owned())).or_insert(0) += 1;
    }
    m
}

fn winners(replies: &[Reply]) -> Vec<&Reply> {
    replies.iter().filter(|r| r.status == 200).collect()
}

/// Every loser got one of `allowed` (status, code).
fn assert_losers(replies: &[Reply], allowed: &[(u16, &str)]) {
    for r in replies.iter().filter(|r| r.status != 200) {
        assert!(
            allowed.contains(&(r.status, r.code())),
            "unexpected refusal {} {}: {}\nall: {:?}",
            r.status,
            r.code(),
            r.body,
            tally(replies)
        );
    }
}

fn session_key(user_id: &str, sid: &str) -> Key {
    Key::new(format!("USER#{user_id}"), format!("SESSION#{sid}"))
}

// ---------------------------------------------------------------- checkToken

async fn fifty_starts(store: Store) {
    let rig = rig(store).await;
    let ct = rig.check(PHONE, DEVICE).await;
    let replies = race(
        &rig,
        50,
        "/auth/passwordless-start",
        json!({"checkToken": ct, "channel": "SMS", "deviceId": DEVICE}),
    )
    .await;
    assert_eq!(winners(&replies).len(), 1, "{:?}", tally(&replies));
    assert_losers(&replies, &[(403, "TOKEN_ALREADY_USED")]);
    assert_eq!(rig.delivered.messages().len(), 1, "one code sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_starts_with_one_check_token_succeed_once_in_memory() {
    fifty_starts(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_starts_with_one_check_token_succeed_once_on_dynamodb() {
    fifty_starts(Store::Dynamo).await;
}

// ---------------------------------------------------------------- tempToken

/// What the losers of a race on one code see: the code spent, or — while
/// the winner has not committed yet — the session's attempts taken by the
/// requests that hold them (a code is compared only in an attempt slot:
/// at most three of the fifty are compared).
const CODE_LOSERS: &[(u16, &str)] = &[(403, "TOKEN_ALREADY_USED"), (403, "TOO_MANY_OTP_ATTEMPTS")];

async fn fifty_verifies_of_a_new_user(store: Store) {
    let rig = rig(store).await;
    let (tt, code) = rig.send_code(PHONE, DEVICE).await;
    let replies = race(&rig, 50, "/auth/verify-otp", json!({"tempToken": tt, "otp": code})).await;
    let won = winners(&replies);
    assert_eq!(won.len(), 1, "{:?}", tally(&replies));
    assert_eq!(won[0].action(), "COLLECT_PRIMARY");
    assert_losers(&replies, CODE_LOSERS);
    assert_eq!(rig.table.puts_of("USER#", "PROFILE").len(), 1, "one user created");
    assert_eq!(rig.table.puts_of("PHONE#", "PHONE").len(), 1, "one phone item");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_verifies_with_one_temp_token_create_one_user_in_memory() {
    fifty_verifies_of_a_new_user(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_verifies_with_one_temp_token_create_one_user_on_dynamodb() {
    fifty_verifies_of_a_new_user(Store::Dynamo).await;
}

async fn fifty_sign_ins(store: Store) {
    let rig = rig(store).await;
    rig.sign_up(TEST_PHONE, DEVICE).await;
    let (tt, code) = rig.send_code(TEST_PHONE, "dev-2").await;
    let replies = race(&rig, 50, "/auth/verify-otp", json!({"tempToken": tt, "otp": code})).await;
    let won = winners(&replies);
    assert_eq!(won.len(), 1, "{:?}", tally(&replies));
    assert!(won[0].body["data"]["accessToken"].is_string());
    assert_losers(&replies, CODE_LOSERS);
    let sessions: Vec<Key> = rig
        .table
        .committed()
        .into_iter()
        .map(|(_, k)| k)
        .filter(|k| k.sk.starts_with("SESSION#"))
        .collect();
    assert_eq!(sessions.len(), 2, "the sign-up's session and one more: {sessions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_sign_ins_with_one_temp_token_open_one_session_in_memory() {
    fifty_sign_ins(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_sign_ins_with_one_temp_token_open_one_session_on_dynamodb() {
    fifty_sign_ins(Store::Dynamo).await;
}

// ---------------------------------------------------------------- onboardingToken

async fn fifty_onboardings(store: Store) {
    let rig = rig(store).await;
    let ot = rig.onboarding_token(PHONE, DEVICE).await;
    let replies = race(
        &rig,
        50,
        "/auth/onboarding/primary",
        json!({"onboardingToken": ot, "firstName": "Asha", "lastName": "Mwangi", "birthDate": "1995-06-15"}),
    )
    .await;
    let won = winners(&replies);
    assert_eq!(won.len(), 1, "{:?}", tally(&replies));
    assert!(won[0].body["data"]["refreshToken"].is_string());
    assert_losers(
        &replies,
        &[(403, "TOKEN_ALREADY_USED"), (403, "ONBOARDING_ALREADY_COMPLETE")],
    );
    let sessions = rig
        .table
        .committed()
        .into_iter()
        .filter(|(_, k)| k.sk.starts_with("SESSION#"))
        .count();
    assert_eq!(sessions, 1, "one session opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_onboardings_with_one_onboarding_token_succeed_once_in_memory() {
    fifty_onboardings(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_onboardings_with_one_onboarding_token_succeed_once_on_dynamodb() {
    fifty_onboardings(Store::Dynamo).await;
}

// ---------------------------------------------------------------- sign-ups of one phone

async fn twenty_sign_ups(store: Store) {
    // Limits off: this is about uniqueness, and 20 sends to one phone in a
    // minute would (rightly) be rate limited.
    let mut settings = nambari_core::testing::settings();
    settings.limits.enabled = false;
    let rig = Rig::start_with(store, settings).await;
    let flows = (0..20).map(|i| {
        let rig = &rig;
        async move {
            let device = format!("dev-{i}");
            let ct = rig.check(PHONE, &device).await;
            let start = rig.start_sms(&ct, &device).await;
            assert_eq!(start.status, 200, "{}", start.body);
            rig.post(
                "/auth/verify-otp",
                json!({"tempToken": start.data_str("tempToken"), "otp": start.data_str("sandboxOtp")}),
            )
            .await
        }
    });
    let replies = join_all(flows).await;
    let won = winners(&replies);
    assert!(
        !won.is_empty(),
        "at least the latest session verifies: {:?}",
        tally(&replies)
    );
    // A superseded code session is refused; nothing else.
    assert_losers(&replies, &[(403, "INVALID_TOKEN"), (403, "TOKEN_ALREADY_USED")]);
    // One user, one phone item, and every winner is that user.
    let users = rig.table.puts_of("USER#", "PROFILE");
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(rig.table.puts_of("PHONE#", "PHONE").len(), 1);
    let phone = rig
        .inner
        .get(&Key::new(format!("PHONE#{PHONE}"), "PHONE"))
        .await
        .unwrap()
        .unwrap();
    let user_id = phone["user_id"].as_str().unwrap();
    assert_eq!(users[0].pk, format!("USER#{user_id}"));
    for r in won {
        assert_eq!(jwt_claims(&r.data_str("onboardingToken"))["sub"], user_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_sign_ups_of_one_phone_make_one_user_in_memory() {
    twenty_sign_ups(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_sign_ups_of_one_phone_make_one_user_on_dynamodb() {
    twenty_sign_ups(Store::Dynamo).await;
}

#[tokio::test]
async fn a_sign_up_that_finds_its_phone_registered_meanwhile_joins_that_user() {
    // Two devices check the new number; the first finishes verify (creating
    // the user); the second's verify then loses the phone uniqueness write
    // and continues as the existing user instead of creating another.
    let rig = rig(Store::Dynamo).await;
    let ct_a = rig.check(PHONE, "dev-a").await;
    let ct_b = rig.check(PHONE, "dev-b").await;
    let a = rig.start_sms(&ct_a, "dev-a").await;
    let ra = rig
        .post(
            "/auth/verify-otp",
            json!({"tempToken": a.data_str("tempToken"), "otp": a.data_str("sandboxOtp")}),
        )
        .await;
    assert_eq!(ra.action(), "COLLECT_PRIMARY", "{}", ra.body);
    let b = rig.start_sms(&ct_b, "dev-b").await;
    let rb = rig
        .post(
            "/auth/verify-otp",
            json!({"tempToken": b.data_str("tempToken"), "otp": b.data_str("sandboxOtp")}),
        )
        .await;
    assert_eq!(rb.action(), "COLLECT_PRIMARY", "{}", rb.body);
    let sub_a = jwt_claims(&ra.data_str("onboardingToken"))["sub"].clone();
    let sub_b = jwt_claims(&rb.data_str("onboardingToken"))["sub"].clone();
    assert_eq!(sub_a, sub_b);
    assert_eq!(rig.table.puts_of("USER#", "PROFILE").len(), 1);
}

// ---------------------------------------------------------------- refresh

async fn twenty_refreshes(store: Store) {
    let rig = rig(store).await;
    let user = rig.sign_up(TEST_PHONE, DEVICE).await;
    let sid = jwt_claims(&user.access_token)["sid"].as_str().unwrap().to_owned();
    let replies = race(
        &rig,
        20,
        "/auth/token/refresh",
        json!({"refreshToken": user.refresh_token}),
    )
    .await;
    let won = winners(&replies);
    assert_eq!(won.len(), 1, "exactly one new pair: {:?}", tally(&replies));
    assert_losers(&replies, &[(401, "TOKEN_REUSED"), (401, "INVALID_TOKEN")]);
    assert!(
        replies.iter().any(|r| r.code() == "TOKEN_REUSED"),
        "the reuse is reported: {:?}",
        tally(&replies)
    );
    // SPEC §3: presenting an already-rotated token revokes the family.
    let session = rig
        .inner
        .get(&session_key(&user.user_id, &sid))
        .await
        .unwrap()
        .expect("the session item");
    assert_eq!(session["revoked"], true, "{session:?}");
    let new_rt = won[0].data_str("refreshToken");
    let r = rig.post("/auth/token/refresh", json!({"refreshToken": new_rt})).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "INVALID_TOKEN"),
        "the winner's token dies too: {}",
        r.body
    );
    let r = rig
        .post("/auth/token/refresh", json!({"refreshToken": user.refresh_token}))
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_refreshes_with_one_token_make_one_pair_and_revoke_the_family_in_memory() {
    twenty_refreshes(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_refreshes_with_one_token_make_one_pair_and_revoke_the_family_on_dynamodb() {
    twenty_refreshes(Store::Dynamo).await;
}

#[tokio::test]
async fn a_refresh_token_presented_twice_at_once_yields_one_pair_even_when_one_request_reads_stale_state() {
    // Deterministic form of the race above: request B reads the refresh
    // record (still active), is held before reading the session, request A
    // rotates the token meanwhile; then B carries on.
    use nambari_tests::faults::{Call, Failure, Op};
    let rig = rig(Store::Memory).await;
    let user = rig.sign_up(TEST_PHONE, DEVICE).await;
    let sid = jwt_claims(&user.access_token)["sid"].as_str().unwrap().to_owned();
    rig.table.fail_next(
        |c: &Call| c.op == Op::BatchGet && c.keys.iter().any(|k| k.sk.starts_with("SESSION#")),
        Failure::Slow(std::time::Duration::from_millis(400)),
        1,
    );
    let body = json!({"refreshToken": user.refresh_token});
    let (b, a) = tokio::join!(rig.post("/auth/token/refresh", body.clone()), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        rig.post("/auth/token/refresh", body.clone()).await
    });
    assert_eq!(a.status, 200, "A rotated first: {}", a.body);
    assert_eq!(
        (b.status, b.code()),
        (401, "TOKEN_REUSED"),
        "B presented an already-rotated token: {}",
        b.body
    );
    let session = rig.inner.get(&session_key(&user.user_id, &sid)).await.unwrap().unwrap();
    assert_eq!(session["revoked"], true);
}

// ---------------------------------------------------------------- resetToken, stepUpToken, usernames

/// `n` requests of `method path` with `body` and a bearer token, all at once.
async fn race_authed(rig: &Rig, n: usize, method: &str, path: &str, body: Value, token: &str) -> Vec<Reply> {
    join_all((0..n).map(|_| rig.call(method, path, Some(body.clone()), Some(token)))).await
}

async fn fifty_resets(store: Store) {
    let mut settings = nambari_core::testing::settings();
    settings.limits.enabled = false;
    let rig = Rig::start_with(store, settings).await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    let r = rig
        .call(
            "PUT",
            "/account/password",
            Some(json!({"newPassword": "first password"})),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ct = rig.check(PHONE, DEVICE).await;
    let i = rig
        .post(
            "/auth/password/forgot/initiate",
            json!({"checkToken": ct, "deviceId": DEVICE}),
        )
        .await;
    let v = rig
        .post(
            "/auth/password/forgot/verify-otp",
            json!({"tempToken": i.data_str("tempToken"), "otp": i.data_str("sandboxOtp")}),
        )
        .await;
    let reset = v.data_str("resetToken");
    let replies = race(
        &rig,
        50,
        "/auth/password/forgot/reset",
        json!({"resetToken": reset, "newPassword": "second password", "confirmPassword": "second password"}),
    )
    .await;
    let won = winners(&replies);
    assert_eq!(won.len(), 1, "{:?}", tally(&replies));
    assert_losers(&replies, &[(403, "TOKEN_ALREADY_USED"), (403, "INVALID_TOKEN")]);
    // One new session: the winner's refresh token works, and it is the only one.
    let rt = won[0].data_str("refreshToken");
    let r = rig.post("/auth/token/refresh", json!({"refreshToken": rt})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sessions = rig
        .call("GET", "/account/sessions", None, Some(&r.data_str("accessToken")))
        .await;
    assert_eq!(
        sessions.body["data"]["sessions"].as_array().map(Vec::len),
        Some(1),
        "{}",
        sessions.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_resets_with_one_reset_token_succeed_once_in_memory() {
    fifty_resets(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_resets_with_one_reset_token_succeed_once_on_dynamodb() {
    fifty_resets(Store::Dynamo).await;
}

async fn fifty_step_up_consumes(store: Store) {
    let rig = Rig::start_with_app(store, nambari_core::testing::settings(), |app| {
        app.with_api_key_pepper(std::sync::Arc::new(nambari_core::ports::secrets::Live::new(
            nambari_core::base::otp::Pepper::new(vec![7; 32]).unwrap(),
        )))
    })
    .await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    let r = rig
        .call(
            "PUT",
            "/account/pin",
            Some(json!({"pin": "2468"})),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = rig
        .call(
            "POST",
            "/auth/step-up",
            Some(json!({"pin": "2468", "scope": "payments:send"})),
            Some(&user.access_token),
        )
        .await;
    let token = s.data_str("stepUpToken");
    let key = nambari_core::services::apikeys::create(&rig.app, "wallet", &[], false)
        .await
        .unwrap();
    let key = nambari_core::services::apikeys::reveal(&key).to_owned();
    let replies = race_authed(&rig, 50, "POST", "/step-up/consume", json!({"token": token}), &key).await;
    let won = winners(&replies);
    assert_eq!(won.len(), 1, "{:?}", tally(&replies));
    assert_eq!(won[0].body["data"]["scope"], "payments:send");
    assert_losers(&replies, &[(403, "TOKEN_ALREADY_USED")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_consumes_of_one_step_up_token_succeed_once_in_memory() {
    fifty_step_up_consumes(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_consumes_of_one_step_up_token_succeed_once_on_dynamodb() {
    fifty_step_up_consumes(Store::Dynamo).await;
}

async fn username_claims(store: Store) {
    let mut settings = nambari_core::testing::settings();
    settings.limits.enabled = false;
    let rig = Rig::start_with(store, settings).await;
    let mut tokens = Vec::new();
    for i in 0..10 {
        let phone = format!("+2557450512{i:02}");
        tokens.push(rig.sign_up(&phone, &format!("dev-{i}")).await.access_token);
    }
    let replies = join_all(tokens.iter().enumerate().map(|(i, t)| {
        let name = if i % 2 == 0 { "Kilimanjaro" } else { "kilimanjaro" };
        rig.call("PUT", "/account/username", Some(json!({"username": name})), Some(t))
    }))
    .await;
    let won = winners(&replies);
    assert_eq!(
        won.len(),
        1,
        "one owner of the name, whatever its case: {:?}",
        tally(&replies)
    );
    assert_losers(&replies, &[(409, "CONFLICT")]);
    let owner = rig
        .inner
        .get(&Key::new("USERNAME#kilimanjaro", "USERNAME"))
        .await
        .unwrap()
        .unwrap();
    let winner_sub = jwt_claims(&won[0].data_str("accessToken"))["sub"].clone();
    assert_eq!(owner["user_id"], winner_sub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_of_one_username_have_one_winner_in_memory() {
    username_claims(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_of_one_username_have_one_winner_on_dynamodb() {
    username_claims(Store::Dynamo).await;
}
