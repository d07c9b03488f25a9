//! `handle` driven by the API Gateway v2 events in `events/auth-otp-trigger/`.

use nambari_core::testing;
use nambari_core::testing::calls::one_step::{self, OneStepVerifyInput};
use nambari_http::testing::{call, event, failure, success};
use serde_json::json;

use super::handle;

const KRATE: &str = env!("CARGO_PKG_NAME");
const PHONE: &str = "+255745051250";

#[tokio::test]
async fn a_code_is_sent_to_the_phone_returned_in_sandbox_and_signs_in() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "ok", &[])).await;
    let data = success(&r, None);
    assert_eq!(r.body["message"], "OTP sent");
    let code = t.sender.last_code_to(PHONE).expect("a code went to the phone");
    assert_eq!(
        *data,
        json!({"masked_phone": "••• ••• ••50", "expires_in_seconds": 120, "sandbox_otp": code})
    );

    let signed = one_step::verify(
        &t.app,
        OneStepVerifyInput {
            phone: Some(PHONE),
            otp: Some(&code),
            device_id: None,
            device_name: None,
            platform: None,
            ip: None,
        },
    )
    .await
    .unwrap();
    assert!(signed.is_new_user);
}

#[tokio::test]
async fn a_repeated_idempotency_key_replays_the_first_answer_without_a_second_code() {
    let t = testing::app();
    let first = call(handle, &t, event(KRATE, "idempotent", &[])).await;
    success(&first, None);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let second = call(handle, &t, event(KRATE, "idempotent", &[])).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    // The same answer, but a plaintext code is never stored for a replay.
    let mut expected = first.body.clone();
    expected["data"].as_object_mut().unwrap().remove("sandbox_otp");
    assert!(first.body["data"]["sandbox_otp"].is_string());
    assert_eq!(second.body, expected);
    assert_eq!(t.sender.messages().len(), 1, "one code sent");
}

#[tokio::test]
async fn the_sixth_code_for_a_phone_within_five_minutes_is_rate_limited() {
    let t = testing::app();
    for _ in 0..5 {
        let r = call(handle, &t, event(KRATE, "ok", &[])).await;
        success(&r, None);
    }
    let r = call(handle, &t, event(KRATE, "ok", &[])).await;
    failure(&r, 429, "RATE_LIMITED");
    let retry = r.body["retryAfter"].as_u64().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    assert_eq!(r.headers["retry-after"], retry.to_string());
    assert_eq!(t.sender.messages().len(), 5);
}

#[tokio::test]
async fn a_national_number_or_no_number_is_a_422_naming_the_phone_and_a_broken_body_is_invalid_json() {
    let t = testing::app();
    let r = call(handle, &t, event(KRATE, "bad-phone", &[])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["phone"]);
    let r = call(handle, &t, event(KRATE, "missing-fields", &[])).await;
    assert_eq!(failure(&r, 422, "VALIDATION_ERROR"), ["phone"]);
    let r = call(handle, &t, event(KRATE, "invalid-json", &[])).await;
    failure(&r, 400, "INVALID_JSON");
    assert!(t.sender.messages().is_empty());
}
