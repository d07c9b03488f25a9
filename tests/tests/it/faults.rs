//! Faults mid-flow (SPEC §1 "5xx bodies are opaque", §4 delivery): the store
//! unreachable, throttled or failing at a chosen call, a provider failing or
//! hanging. Every 5xx body is opaque, and once the fault clears the user
//! carries on from where they were: a failed write leaves nothing behind.
//! Faults are injected at the Table and Sender ports ([`FaultyTable`],
//! [`FaultySender`]), on the memory store and on DynamoDB (moto).

use std::sync::Arc;
use std::time::Duration;

use nambari_core::base::channel::Pipe;
use nambari_core::base::config::Settings;
use nambari_core::model::keys::{jti_key, otp_key};
use nambari_core::ports::table::Table;
use nambari_core::testing;
use nambari_tests::faults::{Call, Failure, Op};
use nambari_tests::rig::{Rig, jwt_claims};
use nambari_tests::server::{Reply, Store};
use serde_json::{Value, json};

const PHONE: &str = "+255745051250";
const TEST_PHONE: &str = "+15555550100";
const DEVICE: &str = "dev-1";
const UNAVAILABLE: &str = "The service is temporarily unavailable";

/// A 5xx with the fixed message of its code and nothing of the cause.
fn assert_opaque(r: &Reply, status: u16, code: &str) {
    assert_eq!((r.status, r.code()), (status, code), "{}", r.body);
    let message = match code {
        "SERVICE_UNAVAILABLE" => UNAVAILABLE,
        "INTERNAL" => "Internal error",
        "DELIVERY_FAILED" => "The message could not be delivered",
        other => panic!("no fixed message for {other}"),
    };
    assert_eq!(r.body["success"], false);
    assert_eq!(r.body["message"], message, "{}", r.body);
    assert_eq!(r.body["data"], message, "{}", r.body);
    let keys: Vec<&str> = r.body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["success", "httpStatus", "message", "action_time", "code", "data"]
    );
    let text = r.body.to_string().to_lowercase();
    for leak in [
        "injected",
        "secret",
        "dynamodb",
        "internal-host",
        "provisioned",
        "throughput",
        "refused",
        "transaction",
        "provider",
    ] {
        assert!(!text.contains(leak), "the body names its cause ({leak}): {text}");
    }
    for (name, value) in &r.headers {
        let v = value.to_str().unwrap_or("").to_lowercase();
        assert!(
            !v.contains("injected") && !v.contains("secret"),
            "header {name} leaks: {v}"
        );
    }
}

fn is_transact_on(prefix: &'static str) -> impl Fn(&Call) -> bool + Send + Sync + 'static {
    move |c: &Call| c.op == Op::Transact && c.touches(prefix)
}

/// A single write or a transaction that touches an item under `prefix`.
fn is_write_on(prefix: &'static str) -> impl Fn(&Call) -> bool + Send + Sync + 'static {
    move |c: &Call| matches!(c.op, Op::Transact | Op::Update | Op::Put | Op::Delete) && c.touches(prefix)
}

fn no_limits() -> Settings {
    let mut s = testing::settings();
    s.limits.enabled = false;
    s
}

// ---------------------------------------------------------------- opaque 5xx

#[tokio::test]
async fn a_store_that_is_down_gives_503_with_an_opaque_body_on_every_stateful_endpoint() {
    let rig = Rig::start(Store::Memory).await;
    let user = rig.sign_up(TEST_PHONE, DEVICE).await;
    let ct = rig.check(PHONE, DEVICE).await;
    let (tt, code) = rig.send_code(PHONE, "dev-2").await;
    rig.clock.advance(60);
    for failure in [Failure::Unavailable, Failure::Throttled] {
        rig.table.fail_all(failure);
        let calls: Vec<(&str, Value)> = vec![
            ("/auth/check", json!({"identifier": PHONE, "deviceId": DEVICE})),
            (
                "/auth/passwordless/channels",
                json!({"checkToken": ct, "deviceId": DEVICE}),
            ),
            (
                "/auth/passwordless-start",
                json!({"checkToken": ct, "channel": "SMS", "deviceId": DEVICE}),
            ),
            ("/auth/verify-otp", json!({"tempToken": tt, "otp": code})),
            ("/auth/resend-otp", json!({"tempToken": tt})),
            ("/auth/token/refresh", json!({"refreshToken": user.refresh_token})),
            ("/auth/token/revoke", json!({"refreshToken": user.refresh_token})),
        ];
        for (path, body) in calls {
            let r = rig.post(path, body).await;
            assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
        }
        rig.table.heal();
    }
    // The JWKS needs no store.
    rig.table.fail_all(Failure::Unavailable);
    let jwks = rig.raw("GET", "/.well-known/jwks.json", Vec::new(), None, &[]).await;
    assert_eq!(jwks.status, 200);
    rig.table.heal();
    // Nothing was consumed by the failed calls: everything still works.
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_eq!((r.status, r.action()), (200, "COLLECT_PRIMARY"), "{}", r.body);
    let r = rig.start_sms(&ct, DEVICE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = rig
        .post("/auth/token/refresh", json!({"refreshToken": user.refresh_token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn an_unexpected_store_error_gives_500_with_an_opaque_body() {
    let rig = Rig::start(Store::Memory).await;
    rig.table.fail_all(Failure::Internal);
    let r = rig
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": DEVICE}))
        .await;
    assert_opaque(&r, 500, "INTERNAL");
}

#[tokio::test]
async fn an_unreachable_dynamodb_endpoint_gives_503_not_a_hang_or_a_panic() {
    // The real adapter, pointed at a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = nambari_aws::client(Some(&format!("http://127.0.0.1:{port}"))).await;
    let table: Arc<dyn Table> = Arc::new(nambari_aws::DynamoTable::new(client, "nambari-nowhere"));
    let rig = Rig::start_on(table, testing::settings()).await;
    let started = std::time::Instant::now();
    let r = rig
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": DEVICE}))
        .await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_dynamodb_answering_a_5xx_it_cannot_name_gives_503_not_500() {
    // What moto answered under concurrent transactions, and what a proxy in
    // front of DynamoDB might: a 500 whose body is an HTML page, no error
    // code. Server-side and retryable, so 503 like throttling.
    let dynamo = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(500)
                .insert_header("content-type", "text/html")
                .set_body_string("<!doctype html><title>500 Internal Server Error</title>"),
        )
        .mount(&dynamo)
        .await;
    let client = nambari_aws::client(Some(&dynamo.uri())).await;
    let table: Arc<dyn Table> = Arc::new(nambari_aws::DynamoTable::new(client, "nambari-html-500"));
    let rig = Rig::start_on(table, testing::settings()).await;
    let r = rig
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": DEVICE}))
        .await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    let asked = dynamo.received_requests().await.unwrap_or_default().len();
    assert!(asked >= 1, "DynamoDB was never asked");
}

// ---------------------------------------------------------------- retry from where the user was

async fn failed_start_leaves_the_check_token_usable(store: Store) {
    let rig = Rig::start(store).await;
    let ct = rig.check(PHONE, DEVICE).await;
    let claims = jwt_claims(&ct);
    rig.table.fail_next(is_transact_on("JTI#"), Failure::Unavailable, 1);
    let r = rig.start_sms(&ct, DEVICE).await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    assert_eq!(rig.table.injected(), 1);
    assert!(rig.delivered.messages().is_empty(), "no code was sent");
    // Nothing half-written: no used-jti item, no OTP session, no counters.
    assert!(
        rig.inner
            .get(&jti_key(claims["jti"].as_str().unwrap()))
            .await
            .unwrap()
            .is_none()
    );
    assert!(rig.inner.get(&otp_key("auth", PHONE)).await.unwrap().is_none());
    // The store is back: the same checkToken starts the flow.
    let r = rig.start_sms(&ct, DEVICE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(rig.delivered.messages().len(), 1);
}

#[tokio::test]
async fn a_failed_start_transaction_leaves_the_check_token_usable_in_memory() {
    failed_start_leaves_the_check_token_usable(Store::Memory).await;
}

#[tokio::test]
async fn a_failed_start_transaction_leaves_the_check_token_usable_on_dynamodb() {
    failed_start_leaves_the_check_token_usable(Store::Dynamo).await;
}

async fn failed_verify_leaves_the_temp_token_and_code_usable(store: Store) {
    let rig = Rig::start(store).await;
    // A new user: the verify transaction creates the user.
    let (tt, code) = rig.send_code(PHONE, DEVICE).await;
    rig.table.fail_next(is_transact_on("PHONE#"), Failure::Throttled, 1);
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    assert!(rig.table.puts_of("USER#", "PROFILE").is_empty(), "no user was written");
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_eq!((r.status, r.action()), (200, "COLLECT_PRIMARY"), "{}", r.body);
    let ot = r.data_str("onboardingToken");

    // The onboarding transaction fails: the onboardingToken stays usable.
    rig.table.fail_next(is_transact_on("RT#"), Failure::Unavailable, 1);
    let primary = json!({"onboardingToken": ot, "firstName": "Asha", "lastName": "Mwangi", "birthDate": "1995-06-15"});
    let r = rig.post("/auth/onboarding/primary", primary.clone()).await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    let r = rig.post("/auth/onboarding/primary", primary).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A returning user: the sign-in transaction fails, the code still works.
    let (tt, code) = rig.send_code(PHONE, "dev-2").await;
    rig.table.fail_next(is_transact_on("RT#"), Failure::Unavailable, 1);
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["data"]["accessToken"].is_string());
    assert_eq!(rig.table.puts_of("USER#", "PROFILE").len(), 1, "one user in all");
}

#[tokio::test]
async fn failed_verify_and_onboarding_transactions_leave_their_tokens_usable_in_memory() {
    failed_verify_leaves_the_temp_token_and_code_usable(Store::Memory).await;
}

#[tokio::test]
async fn failed_verify_and_onboarding_transactions_leave_their_tokens_usable_on_dynamodb() {
    failed_verify_leaves_the_temp_token_and_code_usable(Store::Dynamo).await;
}

#[tokio::test]
async fn a_wrong_code_that_cannot_be_recorded_costs_no_attempt() {
    let rig = Rig::start(Store::Memory).await;
    let (tt, code) = rig.send_code(PHONE, DEVICE).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // The write that takes the attempt, before the code is compared.
    rig.table.fail_next(is_write_on("OTP#"), Failure::Unavailable, 1);
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": wrong}))
        .await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    // Three wrong codes are still allowed after it: 2 left, 1 left, then locked.
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": wrong}))
        .await;
    assert_eq!(r.body["message"], "Invalid code. 2 attempt(s) left", "{}", r.body);
}

async fn failed_refresh_leaves_the_refresh_token_usable(store: Store) {
    let rig = Rig::start(store).await;
    let user = rig.sign_up(TEST_PHONE, DEVICE).await;
    rig.table.fail_next(is_transact_on("RT#"), Failure::Unavailable, 1);
    let r = rig
        .post("/auth/token/refresh", json!({"refreshToken": user.refresh_token}))
        .await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    // Not reuse: the rotation never happened.
    let r = rig
        .post("/auth/token/refresh", json!({"refreshToken": user.refresh_token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn a_failed_refresh_transaction_leaves_the_refresh_token_usable_in_memory() {
    failed_refresh_leaves_the_refresh_token_usable(Store::Memory).await;
}

#[tokio::test]
async fn a_failed_refresh_transaction_leaves_the_refresh_token_usable_on_dynamodb() {
    failed_refresh_leaves_the_refresh_token_usable(Store::Dynamo).await;
}

#[tokio::test]
async fn a_failed_resend_transaction_leaves_the_previous_code_usable() {
    let rig = Rig::start(Store::Memory).await;
    let (tt, _) = rig.send_code(PHONE, DEVICE).await;
    rig.clock.advance(60);
    rig.table.fail_next(is_transact_on("OTP#"), Failure::Unavailable, 1);
    let r = rig.post("/auth/resend-otp", json!({"tempToken": tt})).await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    assert_eq!(rig.delivered.messages().len(), 1, "no second code");
    // The resend can be retried …
    let r = rig.post("/auth/resend-otp", json!({"tempToken": tt})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["remainingAttempts"], 4, "the failed resend cost nothing");
    // … and then the new code is the valid one.
    let r2 = rig
        .post(
            "/auth/verify-otp",
            json!({"tempToken": r.data_str("tempToken"), "otp": r.data_str("sandboxOtp")}),
        )
        .await;
    assert_eq!(r2.status, 200, "{}", r2.body);
}

#[tokio::test]
async fn a_failed_revoke_leaves_the_session_to_be_revoked_again() {
    let rig = Rig::start(Store::Memory).await;
    let user = rig.sign_up(TEST_PHONE, DEVICE).await;
    rig.table.fail_next(is_transact_on("RT#"), Failure::Unavailable, 1);
    let r = rig
        .post("/auth/token/revoke", json!({"refreshToken": user.refresh_token}))
        .await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    let r = rig
        .post("/auth/token/revoke", json!({"refreshToken": user.refresh_token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---------------------------------------------------------------- delivery

async fn sms_failing(store: Store) {
    let rig = Rig::start(store).await;
    let ct = rig.check(PHONE, DEVICE).await;
    rig.sender.fail(Pipe::Sms);
    let r = rig.start_sms(&ct, DEVICE).await;
    assert_opaque(&r, 502, "DELIVERY_FAILED");
    // Rolled back: no OTP session to verify against, the checkToken unused.
    assert!(rig.inner.get(&otp_key("auth", PHONE)).await.unwrap().is_none());
    let r = rig.start_sms(&ct, DEVICE).await;
    assert_opaque(&r, 502, "DELIVERY_FAILED");
    // The user picks another channel with the same checkToken.
    let r = rig
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": ct, "channel": "WHATSAPP", "deviceId": DEVICE}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["deliveredVia"], json!(["WHATSAPP"]));
    let r = rig
        .post(
            "/auth/verify-otp",
            json!({"tempToken": r.data_str("tempToken"), "otp": r.data_str("sandboxOtp")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn sms_failing_is_502_delivery_failed_and_the_check_token_stays_usable_in_memory() {
    sms_failing(Store::Memory).await;
}

#[tokio::test]
async fn sms_failing_is_502_delivery_failed_and_the_check_token_stays_usable_on_dynamodb() {
    sms_failing(Store::Dynamo).await;
}

#[tokio::test]
async fn sms_and_whatsapp_succeeds_over_sms_when_whatsapp_times_out() {
    let rig = Rig::start(Store::Memory).await;
    let ct = rig.check(PHONE, DEVICE).await;
    rig.sender.fail_slowly(Pipe::Whatsapp, Duration::from_millis(1500));
    let r = rig
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": ct, "channel": "SMS_AND_WHATSAPP", "deviceId": DEVICE}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["deliveredVia"], json!(["SMS"]));
    let sent = rig.delivered.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].pipe, Pipe::Sms);
}

#[tokio::test]
async fn sms_and_whatsapp_succeeds_over_whatsapp_when_sms_fails() {
    let rig = Rig::start(Store::Memory).await;
    let ct = rig.check(PHONE, DEVICE).await;
    rig.sender.fail(Pipe::Sms);
    let r = rig
        .post(
            "/auth/passwordless-start",
            json!({"checkToken": ct, "channel": "SMS_AND_WHATSAPP", "deviceId": DEVICE}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["deliveredVia"], json!(["WHATSAPP"]));
}

#[tokio::test]
async fn a_resend_that_cannot_be_delivered_keeps_the_previous_code() {
    let rig = Rig::start(Store::Memory).await;
    let (tt, code) = rig.send_code(PHONE, DEVICE).await;
    rig.clock.advance(60);
    rig.sender.fail(Pipe::Sms);
    let r = rig.post("/auth/resend-otp", json!({"tempToken": tt})).await;
    assert_opaque(&r, 502, "DELIVERY_FAILED");
    rig.sender.heal();
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_eq!((r.status, r.action()), (200, "COLLECT_PRIMARY"), "{}", r.body);
}

// ---------------------------------------------------------------- double faults

#[tokio::test]
async fn when_delivery_and_its_rollback_both_fail_the_user_restarts_at_check() {
    // Degraded, documented behaviour: SMS fails and the store fails the
    // rollback of the send, so the checkToken stays consumed. The user gets
    // DELIVERY_FAILED, the retry TOKEN_ALREADY_USED, and a new /auth/check
    // starts over.
    let rig = Rig::start(Store::Memory).await;
    let ct = rig.check(PHONE, DEVICE).await;
    rig.sender.fail(Pipe::Sms);
    // The 2nd transaction from now is the rollback (the 1st is the send's).
    rig.table.fail_when(
        {
            let seen = std::sync::atomic::AtomicU32::new(0);
            move |c: &Call| c.op == Op::Transact && seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 1
        },
        Failure::Unavailable,
    );
    let r = rig.start_sms(&ct, DEVICE).await;
    assert_opaque(&r, 502, "DELIVERY_FAILED");
    rig.table.heal();
    rig.sender.heal();
    let r = rig.start_sms(&ct, DEVICE).await;
    assert_eq!((r.status, r.code()), (403, "TOKEN_ALREADY_USED"), "{}", r.body);
    let (tt, code) = rig.send_code(PHONE, DEVICE).await;
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn late_acknowledged_refresh(grace: i64) -> Reply {
    let mut settings = no_limits();
    settings.refresh_grace = grace;
    let rig = Rig::start_with(Store::Memory, settings).await;
    let user = rig.sign_up(TEST_PHONE, DEVICE).await;
    // The rotation commits but the answer is lost (a timeout after the write).
    rig.table.fail_next(is_transact_on("RT#"), Failure::AfterCommit, 1);
    let r = rig
        .post("/auth/token/refresh", json!({"refreshToken": user.refresh_token}))
        .await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    rig.clock.advance(2);
    rig.post("/auth/token/refresh", json!({"refreshToken": user.refresh_token}))
        .await
}

#[tokio::test]
async fn a_refresh_committed_but_unacknowledged_is_reuse_with_no_grace() {
    // With the default REFRESH_REUSE_GRACE_SECONDS=0 the client's retry of a
    // rotation whose answer was lost ends the session (the SPEC's trade-off).
    let r = late_acknowledged_refresh(0).await;
    assert_eq!((r.status, r.code()), (401, "TOKEN_REUSED"), "{}", r.body);
}

#[tokio::test]
async fn a_refresh_committed_but_unacknowledged_can_be_retried_within_the_grace() {
    let r = late_acknowledged_refresh(30).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["data"]["refreshToken"].is_string());
}

#[tokio::test]
async fn a_start_committed_but_unacknowledged_sends_nothing_and_the_user_restarts_at_check() {
    let rig = Rig::start(Store::Memory).await;
    let ct = rig.check(PHONE, DEVICE).await;
    rig.table.fail_next(is_transact_on("JTI#"), Failure::AfterCommit, 1);
    let r = rig.start_sms(&ct, DEVICE).await;
    assert_opaque(&r, 503, "SERVICE_UNAVAILABLE");
    assert!(
        rig.delivered.messages().is_empty(),
        "no code for an unconfirmed session"
    );
    let r = rig.start_sms(&ct, DEVICE).await;
    assert_eq!((r.status, r.code()), (403, "TOKEN_ALREADY_USED"), "{}", r.body);
    let (tt, code) = rig.send_code(PHONE, DEVICE).await;
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---------------------------------------------------------------- transaction conflicts

#[tokio::test]
async fn a_start_that_loses_a_transaction_conflict_is_not_a_500() {
    // DynamoDB cancels a transaction that overlaps another one on any of its
    // items (TransactionConflict) — e.g. two sends from one IP, or any two
    // sends to one country, share a rate counter item. nambari-aws maps it
    // to TransactionCanceled with every flag false ("retryable").
    let rig = Rig::start(Store::Memory).await;
    let ct = rig.check(PHONE, DEVICE).await;
    rig.table.fail_next(is_transact_on("JTI#"), Failure::Conflict, 1);
    let r = rig.start_sms(&ct, DEVICE).await;
    assert!(
        r.status == 200 || (r.status, r.code()) == (503, "SERVICE_UNAVAILABLE"),
        "a conflict is retried or answered 503: {}",
        r.body
    );
    if r.status == 503 {
        let r = rig.start_sms(&ct, DEVICE).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[tokio::test]
async fn a_refresh_that_loses_a_transaction_conflict_is_not_a_500() {
    // The rotation's items (the session and its refresh-token records) are
    // only written by a refresh or revoke of the same family, so a conflict
    // there means the same token was used twice at once: SPEC §3 reuse.
    let rig = Rig::start(Store::Memory).await;
    let user = rig.sign_up(TEST_PHONE, DEVICE).await;
    rig.table.fail_next(is_transact_on("RT#"), Failure::Conflict, 1);
    let r = rig
        .post("/auth/token/refresh", json!({"refreshToken": user.refresh_token}))
        .await;
    assert!(
        r.status == 200
            || (r.status, r.code()) == (401, "TOKEN_REUSED")
            || (r.status, r.code()) == (503, "SERVICE_UNAVAILABLE"),
        "a conflict is retried, treated as reuse, or answered 503: {}",
        r.body
    );
}
