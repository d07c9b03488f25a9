//! The integrator API (issue 9) over local mode's HTTP server: API keys,
//! multi-channel OTP sessions (DynamoDB, SMS over SNS and email over SES on
//! moto), user lookup, invites and their `invite.claimed` event on a moto
//! SNS topic, step-up consume, and the admin command.

use std::sync::Arc;

use nambari_aws::{SesEmailSender, SnsEvents, SnsSmsSender};
use nambari_core::App;
use nambari_core::base::config::Settings;
use nambari_core::ports::secrets::Live;
use nambari_core::ports::sender::MultiSender;
use nambari_core::services::apikeys;
use nambari_tests::moto;
use nambari_tests::rig::{Rig, jwt_claims};
use nambari_tests::server::{Reply, Store};
use serde_json::{Value, json};

const DOMAIN: &str = "nambari.example";
const PEPPER_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A Tanzanian mobile number no other test uses (moto's record is shared).
fn fresh_phone() -> String {
    let n = getrandom::u32().unwrap() % 10_000_000;
    format!("+25575{n:07}")
}

fn fresh_email() -> String {
    format!("user{}@{DOMAIN}", getrandom::u32().unwrap())
}

fn settings() -> Settings {
    let mut s = nambari_core::testing::settings();
    s.limits.enabled = false;
    // End-user sign-ups in these tests read their code from the response;
    // integrator sessions are sandboxed only by `sandbox_mode` (or a test key).
    s.sandbox = true;
    s.delivery.webotp_domain = Some(DOMAIN.into());
    s.delivery.ses_from_address = Some(format!("Nambari <no-reply@{DOMAIN}>"));
    s.invite_url_template = Some("https://app.nambari.example/claim/{invite_id}".into());
    s
}

fn api_key_pepper() -> nambari_core::base::otp::Pepper {
    nambari_core::ports::secrets::parse_pepper(PEPPER_HEX, "test").unwrap()
}

/// The rig with its API-key pepper; on `real` delivery, SMS and email go
/// through moto and events to a fresh moto topic (its ARN is returned).
async fn rig(store: Store, real: bool) -> (Rig, Option<String>) {
    let mut topic = None;
    let mut sender = None;
    let mut events = None;
    if real {
        let m = moto::shared();
        let cfg = nambari_aws::sdk_config(Some(&m.endpoint)).await;
        aws_sdk_sesv2::Client::new(&cfg)
            .create_email_identity()
            .email_identity(DOMAIN)
            .send()
            .await
            .expect("verifying the sending domain on moto");
        let name = format!("nambari-events-{}", getrandom::u32().unwrap());
        let arn = aws_sdk_sns::Client::new(&cfg)
            .create_topic()
            .name(name)
            .send()
            .await
            .expect("an SNS topic on moto")
            .topic_arn()
            .unwrap()
            .to_owned();
        let s = settings();
        sender = Some(Arc::new(MultiSender {
            sms: Some(Arc::new(SnsSmsSender::from_settings(&s, Some(&m.endpoint)).await)),
            whatsapp: None,
            email: Some(Arc::new(
                SesEmailSender::from_settings(&s, Some(&m.endpoint)).await.unwrap(),
            )),
        }));
        events = Some(Arc::new(SnsEvents::connect(&arn, Some(&m.endpoint)).await));
        topic = Some(arn);
    }
    let mut s = settings();
    if !real {
        s.channels = vec![nambari_core::base::channel::Pipe::Sms];
    }
    let rig = Rig::start_with_app(store, s, |app: App| {
        let mut app = app.with_api_key_pepper(Arc::new(Live::new(api_key_pepper())));
        if let Some(sender) = sender {
            app = app.with_sender(sender);
        }
        if let Some(events) = events {
            app = app.with_events(events);
        }
        app
    })
    .await;
    (rig, topic)
}

async fn new_key(rig: &Rig, name: &str) -> String {
    let k = apikeys::create(&rig.app, name, &[], false).await.unwrap();
    apikeys::reveal(&k).to_owned()
}

async fn send(rig: &Rig, key: &str, body: Value) -> Reply {
    rig.call("POST", "/otp/send", Some(body), Some(key)).await
}

async fn verify(rig: &Rig, key: &str, token: &str, otps: Value) -> Reply {
    rig.call(
        "POST",
        "/otp/verify",
        Some(json!({"token": token, "otps": otps})),
        Some(key),
    )
    .await
}

/// The code moto's SNS recorded last for `phone` (the digits before ". ").
async fn sms_code(phone: &str) -> String {
    let data = moto::sent_messages(moto::shared()).await;
    let text = data["sns"]["SMS"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["phone_number"] == phone)
        .and_then(|m| m["message"].as_str())
        .unwrap_or_else(|| panic!("no SMS to {phone}"))
        .to_owned();
    code_in(&text)
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| (4..=8).contains(&w.len()))
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_owned()
}

/// The code of the last email moto's SES recorded for `address`.
async fn email_code(address: &str) -> String {
    let data = moto::sent_messages(moto::shared()).await;
    let m = data["ses"]["Message"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t == address))
        })
        .unwrap_or_else(|| panic!("no email to {address}"))
        .clone();
    let body = m["body"].as_str().map(str::to_owned).unwrap_or_else(|| m.to_string());
    code_in(&body)
}

/// The events moto's SNS recorded on `topic`, as JSON.
async fn events_on(topic: &str) -> Vec<Value> {
    let data = moto::sent_messages(moto::shared()).await;
    data["sns"]["Topic"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["arn"] == topic)
        .and_then(|t| t["sent_notifications"].as_array())
        .map(|n| {
            n.iter()
                .filter_map(|n| n[1].as_str())
                .filter_map(|m| serde_json::from_str(m).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn status(r: &Reply) -> &str {
    r.body["data"]["status"].as_str().unwrap_or("")
}

// ---------------------------------------------------------------- keys

#[tokio::test]
async fn a_wrong_revoked_missing_or_unscoped_key_is_refused() {
    let (rig, _) = rig(Store::Memory, false).await;
    let body = json!({"channels": ["sms"], "recipients": {"sms": fresh_phone()}, "sandbox_mode": true});
    let r = rig.call("POST", "/otp/send", Some(body.clone()), None).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{}", r.body);
    let r = send(&rig, "nmb_live_0000000000000000000000000000000", body.clone()).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{}", r.body);
    let r = send(&rig, "not-even-a-key", body.clone()).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{}", r.body);
    let key = new_key(&rig, "shop").await;
    assert!(key.starts_with("nmb_live_") && key.len() > 40, "{key}");
    let r = send(&rig, &key, body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = apikeys::list(&rig.app).await.unwrap()[0].key_id.clone();
    apikeys::revoke(&rig.app, &id).await.unwrap();
    let r = send(&rig, &key, body.clone()).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "revoked: {}", r.body);
    let lookup_only = apikeys::create(&rig.app, "lookups", &["users:read".into()], false)
        .await
        .unwrap();
    let r = send(&rig, apikeys::reveal(&lookup_only), body).await;
    assert_eq!((r.status, r.code()), (403, "INSUFFICIENT_SCOPE"), "{}", r.body);
    // Only the key's hash is stored.
    let stored = apikeys::list(&rig.app).await.unwrap();
    assert!(stored.iter().all(|k| !k.hash.contains(&key) && k.hash.len() == 64));
}

// ---------------------------------------------------------------- OTP sessions

async fn progressive(store: Store) {
    let (rig, _) = rig(store, true).await;
    let key = new_key(&rig, "bank").await;
    let (phone, email) = (fresh_phone(), fresh_email());
    let r = send(
        &rig,
        &key,
        json!({
            "channels": ["email", "sms"],
            "recipients": {"email": email, "sms": phone},
            "config": {"otp_length": 6, "expiry_minutes": 10, "max_attempts": 3},
            "metadata": {"purpose": "kyc", "customer": "c-17"},
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status(&r), "PENDING");
    assert_eq!(r.body["data"]["channels"]["sms"]["status"], "SENT");
    assert_eq!(r.body["data"]["channels"]["email"]["status"], "SENT");
    assert!(
        r.body["data"].get("sandbox_otps").is_none(),
        "live mode returns no code: {}",
        r.body
    );
    let token = r.data_str("token");
    let sms = sms_code(&phone).await;
    let mail = email_code(&email).await;
    assert_ne!(sms, mail, "each channel has its own code");

    rig.clock.advance(180);
    let v = verify(&rig, &key, &token, json!({"sms": sms})).await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(status(&v), "PARTIAL");
    assert_eq!(v.body["data"]["results"]["sms"], "VERIFIED");
    assert_eq!(v.body["data"]["channels"]["sms"]["verified"], true);
    assert_eq!(v.body["data"]["channels"]["email"]["verified"], false);

    rig.clock.advance(240);
    let v = verify(&rig, &key, &token, json!({"email": mail})).await;
    assert_eq!(status(&v), "VERIFIED", "{}", v.body);
    assert_eq!(
        v.body["data"]["metadata"],
        json!({"purpose": "kyc", "customer": "c-17"})
    );
}

#[tokio::test]
async fn sms_then_email_goes_pending_partial_verified_in_memory() {
    progressive(Store::Memory).await;
}

#[tokio::test]
async fn sms_then_email_goes_pending_partial_verified_on_dynamodb() {
    progressive(Store::Dynamo).await;
}

#[tokio::test]
async fn with_any_the_first_verified_channel_completes_the_session() {
    let (rig, _) = rig(Store::Dynamo, true).await;
    let key = new_key(&rig, "shop").await;
    let (phone, email) = (fresh_phone(), fresh_email());
    let r = send(
        &rig,
        &key,
        json!({"channels": ["sms", "email"], "recipients": {"sms": phone, "email": email}, "verification": "ANY"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = verify(
        &rig,
        &key,
        &r.data_str("token"),
        json!({"email": email_code(&email).await}),
    )
    .await;
    assert_eq!(status(&v), "VERIFIED", "{}", v.body);
}

#[tokio::test]
async fn the_fourth_wrong_code_fails_the_session_and_expiry_expires_it() {
    let (rig, _) = rig(Store::Dynamo, false).await;
    let key = new_key(&rig, "shop").await;
    let phone = fresh_phone();
    let body =
        json!({"channels": ["sms"], "recipients": {"sms": phone}, "sandbox_mode": true, "config": {"max_attempts": 4}});
    let r = send(&rig, &key, body.clone()).await;
    let token = r.data_str("token");
    let code = r.body["data"]["sandbox_otps"]["sms"].as_str().unwrap().to_owned();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for i in 1..=3 {
        let v = verify(&rig, &key, &token, json!({"sms": wrong})).await;
        assert_eq!(
            (status(&v), v.body["data"]["results"]["sms"].as_str()),
            ("PENDING", Some("INVALID")),
            "attempt {i}: {}",
            v.body
        );
        assert_eq!(v.body["data"]["remaining_attempts"], 4 - i);
    }
    let v = verify(&rig, &key, &token, json!({"sms": wrong})).await;
    assert_eq!(status(&v), "FAILED", "{}", v.body);
    let v = verify(&rig, &key, &token, json!({"sms": code})).await;
    assert_eq!(status(&v), "FAILED", "the right code comes too late: {}", v.body);
    assert_eq!(v.body["data"]["results"]["sms"], "SKIPPED");

    // A new session, left past its 10 minutes.
    let r = send(
        &rig,
        &key,
        json!({"channels": ["sms"], "recipients": {"sms": phone}, "sandbox_mode": true}),
    )
    .await;
    let code = r.body["data"]["sandbox_otps"]["sms"].as_str().unwrap().to_owned();
    rig.clock.advance(601);
    let v = verify(&rig, &key, &r.data_str("token"), json!({"sms": code})).await;
    assert_eq!(status(&v), "EXPIRED", "{}", v.body);
}

#[tokio::test]
async fn sandbox_sends_nothing_and_returns_the_codes() {
    let (rig, _) = rig(Store::Dynamo, true).await;
    let key = new_key(&rig, "dev").await;
    let (phone, email) = (fresh_phone(), fresh_email());
    let r = send(
        &rig,
        &key,
        json!({"channels": ["sms", "email"], "recipients": {"sms": phone, "email": email}, "sandbox_mode": true, "config": {"otp_length": 8}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let codes = &r.body["data"]["sandbox_otps"];
    assert_eq!(codes["sms"].as_str().map(str::len), Some(8), "{}", r.body);
    assert_eq!(r.body["data"]["channels"]["sms"]["status"], "SANDBOX");
    // moto is shared by the whole test binary: look for this test's recipients.
    let after = moto::sent_messages(moto::shared()).await;
    let sms = after["sns"]["SMS"].as_array().cloned().unwrap_or_default();
    assert!(!sms.iter().any(|m| m["phone_number"] == phone), "no SMS to {phone}");
    let mails = after["ses"]["Message"].as_array().cloned().unwrap_or_default();
    assert!(
        !mails.iter().any(|m| m.to_string().contains(&email)),
        "no email to {email}"
    );
    let v = verify(
        &rig,
        &key,
        &r.data_str("token"),
        json!({"sms": codes["sms"], "email": codes["email"]}),
    )
    .await;
    assert_eq!(status(&v), "VERIFIED", "{}", v.body);
    assert_eq!(v.body["data"]["sandbox"], true);
}

#[tokio::test]
async fn one_key_cannot_see_or_verify_another_keys_sessions() {
    let (rig, _) = rig(Store::Memory, false).await;
    let (a, b) = (new_key(&rig, "a").await, new_key(&rig, "b").await);
    let r = send(
        &rig,
        &a,
        json!({"channels": ["sms"], "recipients": {"sms": fresh_phone()}, "sandbox_mode": true}),
    )
    .await;
    let token = r.data_str("token");
    let code = r.body["data"]["sandbox_otps"]["sms"].as_str().unwrap().to_owned();
    let v = verify(&rig, &b, &token, json!({"sms": code})).await;
    assert_eq!((v.status, v.code()), (404, "NOT_FOUND"), "{}", v.body);
    let l = rig.call("GET", "/otp/sessions", None, Some(&b)).await;
    assert_eq!(l.status, 200, "{}", l.body);
    assert_eq!(l.body["data"]["sessions"], json!([]));
    let r = rig
        .call("POST", "/otp/resend", Some(json!({"token": token})), Some(&b))
        .await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{}", r.body);
    // The owner sees it, without any code.
    let l = rig.call("GET", "/otp/sessions", None, Some(&a)).await;
    let sessions = l.body["data"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["token"], token);
    assert!(!l.body.to_string().contains(&code), "no code in a listing");
    let v = verify(&rig, &a, &token, json!({"sms": code})).await;
    assert_eq!(status(&v), "VERIFIED", "{}", v.body);
}

#[tokio::test]
async fn sessions_are_listed_newest_first_filtered_and_paginated() {
    let (rig, _) = rig(Store::Dynamo, false).await;
    let key = new_key(&rig, "shop").await;
    let mut tokens = Vec::new();
    for i in 0..5 {
        let r = send(&rig, &key, json!({"channels": ["sms"], "recipients": {"sms": fresh_phone()}, "sandbox_mode": true, "metadata": {"n": i}})).await;
        tokens.push((
            r.data_str("token"),
            r.body["data"]["sandbox_otps"]["sms"].as_str().unwrap().to_owned(),
        ));
        rig.clock.advance(10);
    }
    let v = verify(&rig, &key, &tokens[1].0, json!({"sms": tokens[1].1})).await;
    assert_eq!(status(&v), "VERIFIED");
    let page1 = rig.call("GET", "/otp/sessions?limit=2", None, Some(&key)).await;
    assert_eq!(page1.status, 200, "{}", page1.body);
    let list1: Vec<&str> = page1.body["data"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["token"].as_str().unwrap())
        .collect();
    assert_eq!(list1, [tokens[4].0.as_str(), tokens[3].0.as_str()], "newest first");
    let cursor = page1.data_str("next_cursor");
    let page2 = rig
        .call(
            "GET",
            &format!("/otp/sessions?limit=2&cursor={cursor}"),
            None,
            Some(&key),
        )
        .await;
    let list2: Vec<&str> = page2.body["data"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["token"].as_str().unwrap())
        .collect();
    assert_eq!(list2, [tokens[2].0.as_str(), tokens[1].0.as_str()]);
    let verified = rig.call("GET", "/otp/sessions?status=VERIFIED", None, Some(&key)).await;
    let only: Vec<&str> = verified.body["data"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["token"].as_str().unwrap())
        .collect();
    assert_eq!(only, [tokens[1].0.as_str()]);
    let from = nambari_core::testing::T0 + 25;
    let recent = rig
        .call("GET", &format!("/otp/sessions?from={from}"), None, Some(&key))
        .await;
    assert_eq!(
        recent.body["data"]["sessions"].as_array().unwrap().len(),
        2,
        "{}",
        recent.body
    );
    let bad = rig
        .call("GET", "/otp/sessions?status=NOPE&channel=fax", None, Some(&key))
        .await;
    assert_eq!((bad.status, bad.code()), (422, "VALIDATION_ERROR"), "{}", bad.body);
    assert!(bad.body["data"]["status"].is_string() && bad.body["data"]["channel"].is_string());
}

#[tokio::test]
async fn a_resend_waits_for_the_cooldown_and_kills_the_old_code() {
    let (rig, _) = rig(Store::Memory, false).await;
    let key = new_key(&rig, "shop").await;
    let r = send(
        &rig,
        &key,
        json!({"channels": ["sms"], "recipients": {"sms": fresh_phone()}, "sandbox_mode": true}),
    )
    .await;
    let token = r.data_str("token");
    let old = r.body["data"]["sandbox_otps"]["sms"].as_str().unwrap().to_owned();
    let early = rig
        .call("POST", "/otp/resend", Some(json!({"token": token})), Some(&key))
        .await;
    assert_eq!((early.status, early.code()), (400, "RESEND_COOLDOWN"), "{}", early.body);
    rig.clock.advance(60);
    let again = rig
        .call(
            "POST",
            "/otp/resend",
            Some(json!({"token": token, "channels": ["sms"]})),
            Some(&key),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    let new = again.body["data"]["sandbox_otps"]["sms"].as_str().unwrap().to_owned();
    if new != old {
        let v = verify(&rig, &key, &token, json!({"sms": old})).await;
        assert_eq!(v.body["data"]["results"]["sms"], "INVALID", "{}", v.body);
    }
    let v = verify(&rig, &key, &token, json!({"sms": new})).await;
    assert_eq!(status(&v), "VERIFIED", "{}", v.body);
}

#[tokio::test]
async fn bad_send_bodies_name_every_bad_field() {
    let (rig, _) = rig(Store::Memory, false).await;
    let key = new_key(&rig, "shop").await;
    let r = send(
        &rig,
        &key,
        json!({"channels": ["sms", "fax"], "recipients": {"sms": "0712345678"}, "config": {"otp_length": 12, "expiry_minutes": 0}, "metadata": "x", "verification": ["email"]}),
    )
    .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{}", r.body);
    let fields: Vec<&str> = r.body["data"].as_object().unwrap().keys().map(String::as_str).collect();
    for f in [
        "channels",
        "recipients.sms",
        "config.otp_length",
        "config.expiry_minutes",
        "metadata",
        "verification",
    ] {
        assert!(fields.contains(&f), "{f} not in {fields:?}");
    }
    let big =
        json!({"channels": ["sms"], "recipients": {"sms": fresh_phone()}, "metadata": {"blob": "x".repeat(5000)}});
    let r = send(&rig, &key, big).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{}", r.body);
    assert!(r.body["data"]["metadata"].is_string());
}

// ---------------------------------------------------------------- users, invites, step-up

#[tokio::test]
async fn users_are_found_by_id_and_by_e164_phone_only() {
    let (rig, _) = rig(Store::Dynamo, false).await;
    let key = new_key(&rig, "payments").await;
    let phone = fresh_phone();
    let user = rig.sign_up(&phone, "dev-1").await;
    let r = rig
        .call("GET", &format!("/users/{}", user.user_id), None, Some(&key))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["data"],
        json!({"id": user.user_id, "phone_number": phone, "country_code": "TZ"})
    );
    let encoded = phone.replace('+', "%2B");
    let r = rig
        .call("GET", &format!("/users?phone_number={encoded}"), None, Some(&key))
        .await;
    assert_eq!(r.body["data"]["id"], user.user_id, "{}", r.body);
    let r = rig
        .call("GET", "/users?phone_number=0745051250", None, Some(&key))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "VALIDATION_ERROR"),
        "no guessing: {}",
        r.body
    );
    let r = rig
        .call("GET", "/users?phone_number=%2B255745000001", None, Some(&key))
        .await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{}", r.body);
    let r = rig
        .call("GET", "/users/usr_0000000000000000000000", None, Some(&key))
        .await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{}", r.body);
}

#[tokio::test]
async fn an_invite_is_claimed_when_the_number_signs_up_and_the_event_reaches_sns() {
    let (rig, topic) = rig(Store::Dynamo, true).await;
    let topic = topic.unwrap();
    let key = new_key(&rig, "remit").await;
    let phone = fresh_phone();
    let r = rig
        .call(
            "POST",
            "/invites",
            Some(json!({"phone_number": phone, "metadata": {"transfer": "t-991", "amount": 25}})),
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["delivered_via"], "SMS");
    let invite_id = r.data_str("invite_id");
    let claim_url = r.data_str("claim_url");
    assert_eq!(claim_url, format!("https://app.nambari.example/claim/{invite_id}"));
    let data = moto::sent_messages(moto::shared()).await;
    assert!(
        data["sns"]["SMS"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["phone_number"] == phone && m["message"].as_str().unwrap().contains(&claim_url)),
        "the claim link went by SMS"
    );
    // The number signs up; onboarding claims the invite.
    let user = rig.sign_up(&phone, "dev-1").await;
    let events = events_on(&topic).await;
    let claimed: Vec<&Value> = events.iter().filter(|e| e["type"] == "invite.claimed").collect();
    assert_eq!(claimed.len(), 1, "{events:?}");
    let e = claimed[0];
    assert_eq!(e["data"]["invite_id"], invite_id);
    assert_eq!(e["data"]["metadata"], json!({"transfer": "t-991", "amount": 25}));
    assert_eq!(
        e["user"],
        json!({"id": user.user_id, "phone_number": phone, "country_code": "TZ"})
    );
    assert!(events.iter().any(|e| e["type"] == "user.registered"));
    assert!(events.iter().any(|e| e["type"] == "user.onboarded"));
    for e in &events {
        let text = e.to_string();
        assert!(
            !text.contains(&user.access_token) && !text.contains(&user.refresh_token),
            "no token in {text}"
        );
    }
    // Now a user: inviting again is a conflict.
    let r = rig
        .call("POST", "/invites", Some(json!({"phone_number": phone})), Some(&key))
        .await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT"), "{}", r.body);
}

#[tokio::test]
async fn a_step_up_token_is_consumed_once() {
    let (rig, _) = rig(Store::Memory, false).await;
    let key = new_key(&rig, "wallet").await;
    let phone = fresh_phone();
    let user = rig.sign_up(&phone, "dev-1").await;
    let set = rig
        .call(
            "PUT",
            "/account/pin",
            Some(json!({"pin": "2468"})),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let s = rig
        .call(
            "POST",
            "/auth/step-up",
            Some(json!({"pin": "2468", "scope": "payments:send"})),
            Some(&user.access_token),
        )
        .await;
    let token = s.data_str("stepUpToken");
    let r = rig
        .call("POST", "/step-up/consume", Some(json!({"token": token})), Some(&key))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["scope"], "payments:send");
    assert_eq!(r.body["data"]["user"]["id"], user.user_id);
    let r = rig
        .call("POST", "/step-up/consume", Some(json!({"token": token})), Some(&key))
        .await;
    assert_eq!((r.status, r.code()), (403, "TOKEN_ALREADY_USED"), "{}", r.body);
    // An access token is not a step-up token.
    let r = rig
        .call(
            "POST",
            "/step-up/consume",
            Some(json!({"token": user.access_token})),
            Some(&key),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "INVALID_TOKEN"), "{}", r.body);
    assert_eq!(jwt_claims(&token)["typ"], "step_up");
}

// ---------------------------------------------------------------- admin command

/// `nambari-admin --json --table <table> --endpoint <moto> <args>`, with
/// `API_KEY_PEPPER` in its environment.
async fn admin(table: &str, args: &[&str]) -> Result<String, String> {
    use clap::Parser;
    let mut argv = vec![
        "nambari-admin",
        "--json",
        "--table",
        table,
        "--endpoint",
        &moto::shared().endpoint,
    ];
    argv.extend_from_slice(args);
    let cli = nambari_admin::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    nambari_admin::run_with(cli, |k| (k == "API_KEY_PEPPER").then(|| PEPPER_HEX.to_owned())).await
}

#[tokio::test]
async fn the_admin_command_creates_a_key_that_works_and_revokes_it() {
    let table = moto::fresh_table(moto::shared()).await;
    let name = table.table_name().to_owned();
    let rig = Rig::start_on_app(Arc::new(table), settings(), |app| {
        app.with_api_key_pepper(Arc::new(Live::new(api_key_pepper())))
    })
    .await;
    let created: Value = serde_json::from_str(
        &admin(&name, &["keys", "create", "--name", "acme", "--scopes", "otp"])
            .await
            .unwrap(),
    )
    .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(created["scopes"], json!(["otp"]));
    let body = json!({"channels": ["sms"], "recipients": {"sms": fresh_phone()}, "sandbox_mode": true});
    let r = send(&rig, &key, body.clone()).await;
    assert_eq!(r.status, 200, "the new key works: {}", r.body);
    let listed: Value = serde_json::from_str(&admin(&name, &["keys", "list"]).await.unwrap()).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&key), "the list never shows a key");
    let id = listed[0]["key_id"].as_str().unwrap().to_owned();
    admin(&name, &["keys", "revoke", &id]).await.unwrap();
    let r = send(&rig, &key, body).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "revoked: {}", r.body);

    // Users: block ends the sessions and refuses sign-in; unblock lets it back.
    let phone = fresh_phone();
    let user = rig.sign_up(&phone, "dev-1").await;
    let got: Value = serde_json::from_str(&admin(&name, &["users", "get", &phone]).await.unwrap()).unwrap();
    assert_eq!(got["id"], user.user_id);
    admin(&name, &["users", "block", &user.user_id]).await.unwrap();
    let r = rig
        .post("/auth/token/refresh", json!({"refreshToken": user.refresh_token}))
        .await;
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"), "{}", r.body);
    let (tt, code) = rig.send_code(&phone, "dev-1").await;
    let v = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_eq!((v.status, v.code()), (403, "ACCOUNT_BLOCKED"), "{}", v.body);
    admin(&name, &["users", "unblock", &phone]).await.unwrap();
    let (tt, code) = rig.send_code(&phone, "dev-1").await;
    let v = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    let e = admin(&name, &["users", "get", "+255745000002"]).await.unwrap_err();
    assert!(e.contains("No such user"), "{e}");
}

#[tokio::test]
async fn wrong_integrator_codes_spend_the_phones_failure_budget_shared_with_sign_in() {
    // 10 wrong codes an hour per phone, across sessions and flows: once an
    // integrator session spent them, every new code for the phone — the
    // integrator's or an end-user sign-in's — allows a single guess.
    let (rig, _) = {
        let mut s = settings();
        s.limits.enabled = true;
        s.limits.phone.limit = 100;
        let rig = Rig::start_with_app(Store::Memory, s, |app| {
            app.with_api_key_pepper(Arc::new(Live::new(api_key_pepper())))
        })
        .await;
        (rig, ())
    };
    let key = new_key(&rig, "shop").await;
    let phone = fresh_phone();
    let live = json!({"channels": ["sms"], "recipients": {"sms": phone}, "config": {"max_attempts": 10}});
    let r = send(&rig, &key, live.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.data_str("token");
    let code = rig.delivered.last_code_to(&phone).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for i in 1..=10 {
        let v = verify(&rig, &key, &token, json!({"sms": wrong})).await;
        assert_eq!(v.status, 200, "attempt {i}: {}", v.body);
    }
    let v = verify(&rig, &key, &token, json!({"sms": wrong})).await;
    assert_eq!(v.body["data"]["status"], "FAILED", "{}", v.body);
    // A new integrator session asks for 10 attempts and gets one.
    let r = send(&rig, &key, live.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = verify(&rig, &key, &r.data_str("token"), json!({"sms": wrong})).await;
    assert_eq!(
        (
            v.body["data"]["status"].as_str(),
            v.body["data"]["remaining_attempts"].as_u64()
        ),
        (Some("FAILED"), Some(0)),
        "{}",
        v.body
    );
    // The same phone's end-user sign-in still gets a code, for one guess.
    let (tt, code) = rig.send_code(&phone, "dev-1").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": wrong}))
        .await;
    assert_eq!((r.status, r.code()), (403, "TOO_MANY_OTP_ATTEMPTS"), "{}", r.body);
}
