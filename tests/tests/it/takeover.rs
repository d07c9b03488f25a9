//! Account-takeover hardening (docs/SECURITY.md, "Takeover"): one test per
//! attack an outside review reproduced against local mode, each run the way
//! the attacker ran it — over HTTP, concurrently where the attack is a race
//! (40 requests at once) — on the memory store and on DynamoDB (moto).
//!
//! 1. integrator codes to one number over two channels were never counted;
//! 2. password and PIN lockouts were read before, and counted after, the
//!    Argon2 check, so concurrent guesses slipped past them;
//! 3. a fresh code replaced the PIN and the password;
//! 4. a stolen access token linked the thief's Google account, with a
//!    client-chosen nonce, and OAuth sign-in skipped the device check;
//! 5. strangers' wrong codes locked the owner out of sign-in;
//! 6. web clients got their refresh token in the body;
//! 7. invite keys enumerated users without spending any budget;
//! 8. a device was "known" on the strength of its (made-up) deviceId;
//! 9. integrator metadata DynamoDB cannot store, and switched-off features,
//!    answered 500.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::future::join_all;
use nambari_core::App;
use nambari_core::base::channel::Pipe;
use nambari_core::base::config::Settings;
use nambari_core::base::rates::{DAY, HOUR, Rate, Rule};
use nambari_core::ports::secrets::Live;
use nambari_core::services::apikeys;
use nambari_core::services::limits::{Counter, calling_code};
use nambari_core::testing::{self, T0};
use nambari_tests::rig::{Rig, SignedUp, jwt_claims};
use nambari_tests::server::{Reply, Store};
use serde_json::{Value, json};
use wiremock::MockServer;

const PHONE: &str = "+255745051250";
const PHONE_TZ2: &str = "+255745051277";
const PHONE_KE: &str = "+254712345678";
const EMAIL: &str = "asha@example.com";
const DEVICE: &str = "owner-phone";
const PIN: &str = "2468";
const PASSWORD: &str = "correct horse battery";
const PEPPER_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// Where the owner and the stranger connect from (local mode reads the
/// TCP peer as API Gateway's `sourceIp`).
const OWNER_IP: &str = "127.0.0.3";
const STRANGER_IP: &str = "127.0.0.2";

/// Runs `$run(Store)` as two tests, on the memory store and on moto, on a
/// multi-threaded runtime (so concurrent requests really run in parallel).
macro_rules! on_both_stores {
    ($run:ident => $memory:ident, $dynamo:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $memory() {
            $run(Store::Memory).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $dynamo() {
            $run(Store::Dynamo).await;
        }
    };
}

fn no_limits() -> Settings {
    let mut s = testing::settings();
    s.limits.enabled = false;
    s
}

fn tally(replies: &[Reply]) -> BTreeMap<(u16, String), usize> {
    let mut m = BTreeMap::new();
    for r in replies {
        *m.entry((r.status, r.code().to_owned())).or_insert(0) += 1;
    }
    m
}

fn count(replies: &[Reply], status: u16, code: &str) -> usize {
    replies
        .iter()
        .filter(|r| r.status == status && r.code() == code)
        .count()
}

/// A code of `len` digits that is not `code`.
fn wrong(code: &str, len: usize) -> String {
    let n: u64 = code.parse().unwrap();
    format!("{:0len$}", (n + 1) % 10u64.pow(len as u32))
}

async fn put(rig: &Rig, path: &str, body: Value, at: &str) -> Reply {
    rig.call("PUT", path, Some(body), Some(at)).await
}

async fn set_pin(rig: &Rig, at: &str, pin: &str) {
    let r = put(rig, "/account/pin", json!({"pin": pin}), at).await;
    assert_eq!(r.status, 200, "set PIN: {}", r.body);
}

async fn set_password(rig: &Rig, at: &str) {
    let r = put(
        rig,
        "/account/password",
        json!({"newPassword": PASSWORD, "confirmPassword": PASSWORD}),
        at,
    )
    .await;
    assert_eq!(r.status, 200, "set password: {}", r.body);
}

async fn step_up(rig: &Rig, at: &str, pin: &str) -> Reply {
    rig.call(
        "POST",
        "/auth/step-up",
        Some(json!({"pin": pin, "scope": "payments:send"})),
        Some(at),
    )
    .await
}

/// A passwordless sign-in of an existing user on `device` (check → start →
/// verify): the reply of verify-otp.
async fn sign_in(rig: &Rig, phone: &str, device: &str) -> Reply {
    let (tt, code) = rig.send_code(phone, device).await;
    let r = rig
        .post("/auth/verify-otp", json!({"tempToken": tt, "otp": code}))
        .await;
    assert_eq!(r.status, 200, "sign-in: {}", r.body);
    r
}

/// The live count of a rate counter, read from the table under the app.
async fn counter(rig: &Rig, rule: Rule, subject: &str, rate: Rate) -> u64 {
    let c = Counter::new(rule, subject, rate, rig.app.now());
    rig.inner
        .get(&c.key)
        .await
        .unwrap()
        .and_then(|i| i.get("count").and_then(Value::as_u64))
        .unwrap_or(0)
}

async fn phone_failures(rig: &Rig, phone: &str) -> u64 {
    counter(
        rig,
        Rule::VerifyFailures,
        phone,
        rig.app.settings.limits.verify_failures,
    )
    .await
}

// ---------------------------------------------------------------- integrator rig

async fn integrator_rig(store: Store, settings: Settings) -> Rig {
    Rig::start_with_app(store, settings, |app: App| {
        app.with_api_key_pepper(Arc::new(Live::new(
            nambari_core::ports::secrets::parse_pepper(PEPPER_HEX, "test").unwrap(),
        )))
    })
    .await
}

async fn new_key(rig: &Rig, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    let k = apikeys::create(&rig.app, "remit", &scopes, false).await.unwrap();
    apikeys::reveal(&k).to_owned()
}

async fn otp_send(rig: &Rig, key: &str, body: Value) -> Reply {
    rig.call("POST", "/otp/send", Some(body), Some(key)).await
}

async fn otp_verify(rig: &Rig, key: &str, token: &str, otps: Value) -> Reply {
    rig.call(
        "POST",
        "/otp/verify",
        Some(json!({"token": token, "otps": otps})),
        Some(key),
    )
    .await
}

/// The code the last message over `pipe` to `to` carried.
fn code_sent(rig: &Rig, pipe: Pipe, to: &str) -> String {
    rig.delivered
        .messages()
        .iter()
        .rev()
        .find(|m| m.pipe == pipe && m.to == to)
        .map(|m| m.code.expose().to_owned())
        .unwrap_or_else(|| panic!("no {pipe:?} message to {to}"))
}

// ---------------------------------------------------------------- 1. integrator codes

/// Two channels to one number, verification ANY, 4-digit codes: every
/// wrong code is counted on the session and on the phone, and once the
/// attempts are spent the right code verifies nothing.
async fn one_number_over_two_channels(store: Store) {
    let rig = integrator_rig(store, testing::settings()).await;
    let key = new_key(&rig, &[]).await;
    let r = otp_send(
        &rig,
        &key,
        json!({
            "channels": ["sms", "whatsapp"],
            "recipients": {"sms": PHONE, "whatsapp": PHONE},
            "verification": "ANY",
            "config": {"otp_length": 4, "max_attempts": 3},
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.data_str("token");
    let sms = code_sent(&rig, Pipe::Sms, PHONE);
    let wa = code_sent(&rig, Pipe::Whatsapp, PHONE);

    let v = otp_verify(
        &rig,
        &key,
        &token,
        json!({"sms": wrong(&sms, 4), "whatsapp": wrong(&wa, 4)}),
    )
    .await;
    assert_eq!(v.status, 200, "two wrong codes to one number: {}", v.body);
    assert_eq!(
        v.body["data"]["results"],
        json!({"sms": "INVALID", "whatsapp": "INVALID"})
    );
    assert_eq!(v.body["data"]["remaining_attempts"], 1);
    let v = otp_verify(&rig, &key, &token, json!({"whatsapp": wrong(&wa, 4)})).await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.body["data"]["status"], "FAILED");
    let v = otp_verify(&rig, &key, &token, json!({"sms": sms})).await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(
        (
            v.body["data"]["status"].as_str(),
            v.body["data"]["results"]["sms"].as_str()
        ),
        (Some("FAILED"), Some("SKIPPED")),
        "the right code after the last attempt verifies nothing: {}",
        v.body
    );
    assert_eq!(
        phone_failures(&rig, PHONE).await,
        3,
        "each wrong code counted once on the phone"
    );
}

on_both_stores!(one_number_over_two_channels =>
    integrator_codes_to_one_number_over_two_channels_count_every_wrong_guess_in_memory,
    integrator_codes_to_one_number_over_two_channels_count_every_wrong_guess_on_dynamodb);

/// One channel to one recipient each.
struct Mix {
    name: &'static str,
    recipients: &'static [(&'static str, &'static str)],
}

const MIXES: [Mix; 6] = [
    Mix {
        name: "one number over sms and whatsapp",
        recipients: &[("sms", PHONE), ("whatsapp", PHONE)],
    },
    Mix {
        name: "two numbers of one country",
        recipients: &[("sms", PHONE), ("whatsapp", PHONE_TZ2)],
    },
    Mix {
        name: "numbers of two countries",
        recipients: &[("sms", PHONE), ("whatsapp", PHONE_KE)],
    },
    Mix {
        name: "a number and an email",
        recipients: &[("sms", PHONE), ("email", EMAIL)],
    },
    Mix {
        name: "one number over both phone channels and an email",
        recipients: &[("sms", PHONE), ("whatsapp", PHONE), ("email", EMAIL)],
    },
    Mix {
        name: "two countries and an email",
        recipients: &[("sms", PHONE_KE), ("whatsapp", PHONE), ("email", EMAIL)],
    },
];

/// Every mix sends, counts one send per number and per country, and
/// counts every wrong code once on its number.
async fn every_mix(store: Store) {
    for mix in &MIXES {
        let rig = integrator_rig(store, testing::settings()).await;
        let key = new_key(&rig, &[]).await;
        let channels: Vec<&str> = mix.recipients.iter().map(|(c, _)| *c).collect();
        let recipients: serde_json::Map<String, Value> = mix
            .recipients
            .iter()
            .map(|(c, to)| ((*c).to_owned(), json!(to)))
            .collect();
        let r = otp_send(
            &rig,
            &key,
            json!({"channels": channels, "recipients": recipients, "config": {"max_attempts": 10}}),
        )
        .await;
        assert_eq!(r.status, 200, "{}: send: {}", mix.name, r.body);
        let token = r.data_str("token");

        let phones: Vec<&str> = mix
            .recipients
            .iter()
            .filter(|(c, _)| *c != "email")
            .map(|(_, to)| *to)
            .collect();
        let mut distinct: Vec<&str> = phones.clone();
        distinct.sort();
        distinct.dedup();
        let l = rig.app.settings.limits.clone();
        for p in &distinct {
            assert_eq!(
                counter(&rig, Rule::Phone, p, l.phone).await,
                1,
                "{}: one send counted for {p}",
                mix.name
            );
        }
        let mut per_country: HashMap<u16, u64> = HashMap::new();
        for p in &distinct {
            *per_country.entry(calling_code(p)).or_default() += 1;
        }
        for (cc, n) in &per_country {
            let daily = Rate {
                limit: l.country_daily,
                window: DAY,
            };
            assert_eq!(
                counter(&rig, Rule::CountryDaily, &cc.to_string(), daily).await,
                *n,
                "{}: the daily budget of +{cc}",
                mix.name
            );
            let hourly = Rate {
                limit: l.breaker_min_per_hour,
                window: HOUR,
            };
            assert_eq!(
                counter(&rig, Rule::CountryBreaker, &cc.to_string(), hourly).await,
                *n,
                "{}: the breaker count of +{cc}",
                mix.name
            );
        }

        // Every channel wrong at once.
        let codes: serde_json::Map<String, Value> = mix
            .recipients
            .iter()
            .map(|(c, to)| {
                let pipe = match *c {
                    "sms" => Pipe::Sms,
                    "whatsapp" => Pipe::Whatsapp,
                    _ => Pipe::Email,
                };
                let right = code_sent(&rig, pipe, to);
                ((*c).to_owned(), json!(wrong(&right, 6)))
            })
            .collect();
        let v = otp_verify(&rig, &key, &token, Value::Object(codes)).await;
        assert_eq!(v.status, 200, "{}: verify: {}", mix.name, v.body);
        for c in &channels {
            assert_eq!(v.body["data"]["results"][c], "INVALID", "{}: {}", mix.name, v.body);
        }
        assert_eq!(
            v.body["data"]["remaining_attempts"],
            10 - channels.len(),
            "{}: {}",
            mix.name,
            v.body
        );
        for p in &distinct {
            let expected = phones.iter().filter(|q| *q == p).count() as u64;
            assert_eq!(
                phone_failures(&rig, p).await,
                expected,
                "{}: the failures of {p}",
                mix.name
            );
        }
    }
}

on_both_stores!(every_mix =>
    every_multi_channel_mix_sends_and_counts_each_item_once_in_memory,
    every_multi_channel_mix_sends_and_counts_each_item_once_on_dynamodb);

/// 40 verifications at once, each with another wrong code and one with the
/// right one, on a session of 3 attempts: at most 3 are ever answered.
async fn forty_integrator_guesses(store: Store) {
    let rig = integrator_rig(store, no_limits()).await;
    let key = new_key(&rig, &[]).await;
    let r = otp_send(
        &rig,
        &key,
        json!({"channels": ["sms"], "recipients": {"sms": PHONE}, "config": {"otp_length": 4, "max_attempts": 3}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.data_str("token");
    let right = code_sent(&rig, Pipe::Sms, PHONE);
    let right_n: u32 = right.parse().unwrap();
    let mut guesses: Vec<String> = (1..40).map(|i| format!("{:04}", (right_n + i) % 10_000)).collect();
    guesses.insert(23, right.clone());
    let replies = join_all(
        guesses
            .iter()
            .map(|g| otp_verify(&rig, &key, &token, json!({"sms": g}))),
    )
    .await;
    let answered: Vec<&str> = replies
        .iter()
        .filter(|r| r.status == 200)
        .filter_map(|r| r.body["data"]["results"]["sms"].as_str())
        .filter(|s| matches!(*s, "INVALID" | "VERIFIED"))
        .collect();
    assert!(
        answered.len() <= 3,
        "{} guesses were answered: {answered:?}; {:?}",
        answered.len(),
        tally(&replies)
    );
    for r in &replies {
        assert!(
            r.status == 200 || (r.status, r.code()) == (409, "CONFLICT"),
            "unexpected {}: {}",
            r.status,
            r.body
        );
    }
}

on_both_stores!(forty_integrator_guesses =>
    forty_concurrent_integrator_guesses_answer_at_most_the_sessions_attempts_in_memory,
    forty_concurrent_integrator_guesses_answer_at_most_the_sessions_attempts_on_dynamodb);

// ---------------------------------------------------------------- 2. lockouts under concurrency

/// 39 wrong PINs and the right one, all at once: at most 5 are checked.
async fn forty_step_ups(store: Store) {
    let rig = Rig::start_with(store, no_limits()).await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    set_pin(&rig, &user.access_token, PIN).await;
    let mut pins: Vec<String> = (0..39).map(|i| format!("{:04}", 5000 + i)).collect();
    pins.insert(17, PIN.to_owned());
    let replies = join_all(pins.iter().map(|p| step_up(&rig, &user.access_token, p))).await;
    let granted = replies.iter().filter(|r| r.status == 200).count();
    let wrong = count(&replies, 403, "INVALID_CREDENTIALS");
    assert!(
        granted + wrong <= 5,
        "{granted} granted and {wrong} refused as wrong: more than 5 PINs were checked: {:?}",
        tally(&replies)
    );
    assert_eq!(
        granted + wrong + count(&replies, 403, "ACCOUNT_LOCKED"),
        40,
        "{:?}",
        tally(&replies)
    );
    if granted == 0 {
        let r = step_up(&rig, &user.access_token, PIN).await;
        assert_eq!((r.status, r.code()), (403, "ACCOUNT_LOCKED"), "{}", r.body);
    }
}

on_both_stores!(forty_step_ups =>
    forty_concurrent_step_ups_check_at_most_five_pins_in_memory,
    forty_concurrent_step_ups_check_at_most_five_pins_on_dynamodb);

/// The same with passwords at sign-in (each request its own checkToken).
async fn forty_password_logins(store: Store) {
    let rig = Rig::start_with(store, no_limits()).await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    set_password(&rig, &user.access_token).await;
    let mut passwords: Vec<String> = (0..39).map(|i| format!("wrong password {i}")).collect();
    passwords.insert(11, PASSWORD.to_owned());
    let mut checks = Vec::new();
    for _ in 0..passwords.len() {
        checks.push(rig.check(PHONE, DEVICE).await);
    }
    let replies = join_all(passwords.iter().zip(&checks).map(|(pw, ct)| {
        rig.post(
            "/auth/login/password",
            json!({"checkToken": ct, "password": pw, "deviceId": DEVICE, "deviceToken": user.device_token}),
        )
    }))
    .await;
    let granted = replies.iter().filter(|r| r.status == 200).count();
    let wrong = count(&replies, 403, "INVALID_CREDENTIALS");
    assert!(
        granted + wrong <= 5,
        "more than 5 passwords were checked: {:?}",
        tally(&replies)
    );
    assert_eq!(
        granted + wrong + count(&replies, 403, "ACCOUNT_LOCKED"),
        40,
        "{:?}",
        tally(&replies)
    );
}

on_both_stores!(forty_password_logins =>
    forty_concurrent_password_sign_ins_check_at_most_five_passwords_in_memory,
    forty_concurrent_password_sign_ins_check_at_most_five_passwords_on_dynamodb);

// ---------------------------------------------------------------- 3. a fresh code is not a credential

/// A SIM-swapper signs in with a code on their own device: they cannot
/// replace the PIN or the password, so they cannot step up as the owner.
async fn fresh_code_replaces_nothing(store: Store) {
    let rig = Rig::start_with(store, no_limits()).await;
    let owner = rig.sign_up(PHONE, DEVICE).await;
    set_pin(&rig, &owner.access_token, PIN).await;
    set_password(&rig, &owner.access_token).await;

    let thief = sign_in(&rig, PHONE, "thief-phone").await.data_str("accessToken");
    let r = put(&rig, "/account/pin", json!({"pin": "8642"}), &thief).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{}", r.body);
    assert!(r.body["data"]["currentPin"].is_string(), "{}", r.body);
    let r = put(
        &rig,
        "/account/pin",
        json!({"pin": "8642", "currentPin": "1357"}),
        &thief,
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "INVALID_CREDENTIALS"), "{}", r.body);
    let r = put(
        &rig,
        "/account/password",
        json!({"newPassword": "the thief's password", "confirmPassword": "the thief's password"}),
        &thief,
    )
    .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{}", r.body);
    assert!(r.body["data"]["currentPassword"].is_string(), "{}", r.body);

    let r = step_up(&rig, &thief, "8642").await;
    assert_eq!((r.status, r.code()), (403, "INVALID_CREDENTIALS"), "{}", r.body);
    let r = step_up(&rig, &owner.access_token, PIN).await;
    assert_eq!(r.status, 200, "the owner's PIN still stands: {}", r.body);
    // With the current PIN, the owner changes it.
    let r = put(
        &rig,
        "/account/pin",
        json!({"pin": "8642", "currentPin": PIN}),
        &owner.access_token,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

on_both_stores!(fresh_code_replaces_nothing =>
    a_fresh_code_replaces_neither_the_pin_nor_the_password_in_memory,
    a_fresh_code_replaces_neither_the_pin_nor_the_password_on_dynamodb);

#[tokio::test]
async fn a_first_pin_or_password_needs_a_code_proved_in_the_last_ten_minutes() {
    let rig = Rig::start_with(Store::Memory, no_limits()).await;
    let user = rig.sign_up(PHONE, DEVICE).await;
    rig.clock.advance(601);
    let stale = rig
        .post("/auth/token/refresh", json!({"refreshToken": user.refresh_token}))
        .await
        .data_str("accessToken");
    let r = put(&rig, "/account/pin", json!({"pin": PIN}), &stale).await;
    assert_eq!((r.status, r.code()), (403, "FACTOR_REQUIRED"), "{}", r.body);
    let r = put(
        &rig,
        "/account/password",
        json!({"newPassword": PASSWORD, "confirmPassword": PASSWORD}),
        &stale,
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "FACTOR_REQUIRED"), "{}", r.body);
    let fresh = sign_in(&rig, PHONE, DEVICE).await.data_str("accessToken");
    set_pin(&rig, &fresh, PIN).await;
    set_password(&rig, &fresh).await;
}

/// A forgotten PIN comes back only with the verified email's code and a
/// code to the phone; every other session ends and both channels hear of it.
async fn pin_recovery(store: Store) {
    let rig = Rig::start_with(store, no_limits()).await;
    let owner = rig.sign_up(PHONE, DEVICE).await;
    set_pin(&rig, &owner.access_token, PIN).await;
    let at = owner.access_token.clone();
    let s = rig
        .call("POST", "/account/email/start", Some(json!({"email": EMAIL})), Some(&at))
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    let code = rig.delivered.last_code_to(EMAIL).unwrap();
    let v = rig
        .call(
            "POST",
            "/account/email/verify",
            Some(json!({"tempToken": s.data_str("tempToken"), "otp": code})),
            Some(&at),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    let at = v.data_str("accessToken");
    let tablet = sign_in(&rig, PHONE, "tablet").await;

    let start = rig.call("POST", "/account/pin/recovery/start", None, Some(&at)).await;
    assert_eq!(start.status, 200, "{}", start.body);
    assert_eq!(start.body["data"]["maskedEmail"], "a•••@e••••••.com");
    assert_eq!(start.body["data"]["maskedPhone"], "••• ••• ••50");
    let token = start.data_str("recoveryToken");
    let email_code = rig.delivered.last_code_to(EMAIL).unwrap();
    let phone_code = rig.delivered.last_code_to(PHONE).unwrap();

    // The phone's code alone — what a SIM-swapper has — is not enough.
    let r = rig
        .call(
            "POST",
            "/account/pin/recovery/verify",
            Some(json!({"recoveryToken": token, "emailOtp": wrong(&email_code, 6), "phoneOtp": phone_code, "pin": "8642"})),
            Some(&at),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "INVALID_OTP"), "{}", r.body);
    let r = rig
        .call(
            "POST",
            "/account/pin/recovery/verify",
            Some(json!({"recoveryToken": token, "emailOtp": email_code, "phoneOtp": phone_code, "pin": "8642"})),
            Some(&at),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["authMethods"]["pin"], true);
    let new_at = r.data_str("accessToken");
    assert_eq!(step_up(&rig, &new_at, "8642").await.status, 200);
    let old = step_up(&rig, &new_at, PIN).await;
    assert_eq!((old.status, old.code()), (403, "INVALID_CREDENTIALS"), "{}", old.body);
    // Every other session is over, including the one that asked.
    let r = rig
        .post(
            "/auth/token/refresh",
            json!({"refreshToken": tablet.data_str("refreshToken")}),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"), "{}", r.body);
    let r = rig.call("GET", "/account/me", None, Some(&at)).await;
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"), "{}", r.body);
    // Both channels are told.
    let notices = rig.delivered.notices();
    assert!(
        notices.iter().any(|n| n.to == EMAIL) && notices.iter().any(|n| n.to == PHONE),
        "{notices:?}"
    );
    // The token is spent.
    let r = rig
        .call(
            "POST",
            "/account/pin/recovery/verify",
            Some(json!({"recoveryToken": token, "emailOtp": email_code, "phoneOtp": phone_code, "pin": "9753"})),
            Some(&new_at),
        )
        .await;
    assert_ne!(r.status, 200, "{}", r.body);

    // Without a verified email there is no recovery by code.
    let other = rig.sign_up(PHONE_KE, "other").await;
    set_pin(&rig, &other.access_token, PIN).await;
    let r = rig
        .call("POST", "/account/pin/recovery/start", None, Some(&other.access_token))
        .await;
    assert_eq!((r.status, r.code()), (400, "NO_VERIFIED_EMAIL"), "{}", r.body);
}

on_both_stores!(pin_recovery =>
    a_forgotten_pin_needs_the_email_code_and_the_phone_code_and_ends_every_other_session_in_memory,
    a_forgotten_pin_needs_the_email_code_and_the_phone_code_and_ends_every_other_session_on_dynamodb);

// ---------------------------------------------------------------- 4. OAuth

use crate::google::{self, CLIENT};

fn google_token(sub: &str, nonce: Option<&str>) -> String {
    let mut claims =
        json!({"iss": "https://accounts.google.com", "aud": CLIENT, "sub": sub, "iat": T0, "exp": T0 + 3600});
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    google::sign(&claims)
}

async fn google_rig(store: Store) -> (Rig, MockServer) {
    google::rig(store, no_limits()).await
}

async fn link_nonce(rig: &Rig, at: &str) -> String {
    let r = rig.call("POST", "/account/oauth/nonce", None, Some(at)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.data_str("nonce")
}

async fn link(rig: &Rig, at: &str, id_token: &str, nonce: &str) -> Reply {
    rig.call(
        "POST",
        "/account/oauth/link",
        Some(json!({"provider": "GOOGLE", "idToken": id_token, "nonce": nonce})),
        Some(at),
    )
    .await
}

/// `/auth/check` on `device`: the checkToken and the nonce it carries.
async fn check_with_nonce(rig: &Rig, device: &str) -> (String, String) {
    let r = rig
        .post("/auth/check", json!({"identifier": PHONE, "deviceId": device}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (r.data_str("checkToken"), r.data_str("oauthNonce"))
}

async fn oauth_login(rig: &Rig, ct: &str, id_token: &str, device: &str, device_token: Option<&str>) -> Reply {
    rig.post(
        "/auth/login/oauth",
        json!({"checkToken": ct, "provider": "GOOGLE", "idToken": id_token, "deviceId": device, "deviceToken": device_token}),
    )
    .await
}

async fn oauth_takeover(store: Store) {
    let (rig, _jwks) = google_rig(store).await;
    let owner = rig.sign_up(PHONE, DEVICE).await;

    // A stolen access token, past FRESH_AUTH_SECONDS, cannot link the
    // thief's Google account.
    rig.clock.advance(601);
    let stale = rig
        .post("/auth/token/refresh", json!({"refreshToken": owner.refresh_token}))
        .await
        .data_str("accessToken");
    let n = link_nonce(&rig, &stale).await;
    let r = link(&rig, &stale, &google_token("thief", Some(&n)), &n).await;
    assert_eq!((r.status, r.code()), (403, "FACTOR_REQUIRED"), "{}", r.body);

    // Freshly proved: only a nonce the service issued, inside the idToken.
    let fresh = sign_in(&rig, PHONE, DEVICE).await;
    let at = fresh.data_str("accessToken");
    let device_token = fresh.data_str("deviceToken");
    let r = link(
        &rig,
        &at,
        &google_token("g-1", Some("chosen-by-the-client")),
        "chosen-by-the-client",
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "INVALID_TOKEN"), "{}", r.body);
    let n = link_nonce(&rig, &at).await;
    let r = link(&rig, &at, &google_token("g-1", None), &n).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "INVALID_TOKEN"),
        "no nonce in the idToken: {}",
        r.body
    );
    let id_token = google_token("g-1", Some(&n));
    let r = link(&rig, &at, &id_token, &n).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = link(&rig, &at, &id_token, &n).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "INVALID_TOKEN"),
        "the nonce is spent: {}",
        r.body
    );

    // Sign-in: the idToken must carry the nonce of this checkToken.
    let (ct, nonce) = check_with_nonce(&rig, DEVICE).await;
    let signed_in = google_token("g-1", Some(&nonce));
    let r = oauth_login(&rig, &ct, &signed_in, DEVICE, Some(&device_token)).await;
    assert_eq!((r.status, r.action()), (200, ""), "{}", r.body);
    assert_eq!(jwt_claims(&r.data_str("accessToken"))["amr"], json!(["oauth_google"]));
    let (ct, _) = check_with_nonce(&rig, DEVICE).await;
    let r = oauth_login(&rig, &ct, &signed_in, DEVICE, Some(&device_token)).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "INVALID_TOKEN"),
        "a replayed idToken: {}",
        r.body
    );

    // On a device the account does not know, a code to the phone as well.
    let (ct, nonce) = check_with_nonce(&rig, "thief-laptop").await;
    let r = oauth_login(&rig, &ct, &google_token("g-1", Some(&nonce)), "thief-laptop", None).await;
    assert_eq!((r.status, r.action()), (200, "VERIFY_DEVICE"), "{}", r.body);
    assert_eq!(r.body["data"]["accessToken"], Value::Null);
    let dvt = r.data_str("deviceVerificationToken");
    let code = rig.delivered.last_code_to(PHONE).unwrap();
    let v = rig
        .post(
            "/account/device/verify",
            json!({"deviceVerificationToken": dvt, "otp": code}),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(
        jwt_claims(&v.data_str("accessToken"))["amr"],
        json!(["oauth_google", "otp_sms"])
    );
    // Another device's deviceToken does not vouch for this one.
    let (ct, nonce) = check_with_nonce(&rig, "thief-laptop-2").await;
    let r = oauth_login(
        &rig,
        &ct,
        &google_token("g-1", Some(&nonce)),
        "thief-laptop-2",
        Some(&device_token),
    )
    .await;
    assert_eq!((r.status, r.action()), (200, "VERIFY_DEVICE"), "{}", r.body);
}

on_both_stores!(oauth_takeover =>
    a_stolen_access_token_cannot_become_a_google_sign_in_in_memory,
    a_stolen_access_token_cannot_become_a_google_sign_in_on_dynamodb);

// ---------------------------------------------------------------- 5. strangers and the owner

/// A stranger triggers two one-step codes and guesses five times each,
/// from their own network: the owner still signs in from theirs, and the
/// stranger's next code allows a single guess.
async fn strangers_cannot_lock_the_owner_out(store: Store) {
    let rig = Rig::start_with(store, testing::settings()).await;
    let owner = rig.sign_up(PHONE, DEVICE).await;
    for _ in 0..2 {
        let t = rig
            .post_from(STRANGER_IP, "/auth/otp/trigger", json!({"phone": PHONE}))
            .await;
        assert_eq!(t.status, 200, "{}", t.body);
        let guess = wrong(&t.data_str("sandbox_otp"), 6);
        for _ in 0..5 {
            let r = rig
                .post_from(STRANGER_IP, "/auth/otp/verify", json!({"phone": PHONE, "otp": guess}))
                .await;
            assert!(
                matches!(r.code(), "INVALID_OTP" | "TOO_MANY_OTP_ATTEMPTS"),
                "{}",
                r.body
            );
        }
    }
    assert_eq!(
        phone_failures(&rig, PHONE).await,
        10,
        "the phone's hourly budget is spent"
    );

    // The owner, on their own device and network.
    let check = rig
        .post_from(
            OWNER_IP,
            "/auth/check",
            json!({"identifier": PHONE, "deviceId": DEVICE}),
        )
        .await;
    let start = rig
        .post_from(
            OWNER_IP,
            "/auth/passwordless-start",
            json!({"checkToken": check.data_str("checkToken"), "channel": "SMS", "deviceId": DEVICE}),
        )
        .await;
    assert_eq!(start.status, 200, "the owner gets a code: {}", start.body);
    let v = rig
        .post_from(
            OWNER_IP,
            "/auth/verify-otp",
            json!({"tempToken": start.data_str("tempToken"), "otp": start.data_str("sandboxOtp")}),
        )
        .await;
    assert_eq!(v.status, 200, "and signs in with it: {}", v.body);
    assert_eq!(jwt_claims(&v.data_str("accessToken"))["sub"], owner.user_id);

    // The stranger's next code: one guess, then it is over.
    let t = rig
        .post_from(STRANGER_IP, "/auth/otp/trigger", json!({"phone": PHONE}))
        .await;
    assert_eq!(t.status, 200, "{}", t.body);
    let r = rig
        .post_from(
            STRANGER_IP,
            "/auth/otp/verify",
            json!({"phone": PHONE, "otp": wrong(&t.data_str("sandbox_otp"), 6)}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "TOO_MANY_OTP_ATTEMPTS"), "{}", r.body);
}

on_both_stores!(strangers_cannot_lock_the_owner_out =>
    strangers_wrong_codes_do_not_lock_the_owner_out_in_memory,
    strangers_wrong_codes_do_not_lock_the_owner_out_on_dynamodb);

/// The failing network and device run out of codes; others do not.
#[tokio::test]
async fn a_network_or_device_that_spent_its_failure_budget_gets_no_more_codes() {
    let mut settings = testing::settings();
    settings.limits.verify_failures_ip = Rate { limit: 4, window: HOUR };
    settings.limits.verify_failures_device = Rate { limit: 2, window: HOUR };
    let rig = Rig::start_with(Store::Memory, settings).await;
    let send_from = |ip: &'static str, phone: &'static str, device: &'static str| {
        let rig = &rig;
        async move {
            let c = rig
                .post_from(ip, "/auth/check", json!({"identifier": phone, "deviceId": device}))
                .await;
            rig.post_from(
                ip,
                "/auth/passwordless-start",
                json!({"checkToken": c.data_str("checkToken"), "channel": "SMS", "deviceId": device}),
            )
            .await
        }
    };
    // Two wrong codes from device d-1: that device is done.
    let s = send_from(STRANGER_IP, PHONE, "d-1").await;
    for _ in 0..2 {
        rig.post_from(
            STRANGER_IP,
            "/auth/verify-otp",
            json!({"tempToken": s.data_str("tempToken"), "otp": wrong(&s.data_str("sandboxOtp"), 6)}),
        )
        .await;
    }
    let r = send_from(STRANGER_IP, PHONE_TZ2, "d-1").await;
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"), "{}", r.body);
    // Two more from d-2 on the same network: the network is done.
    let s = send_from(STRANGER_IP, PHONE_TZ2, "d-2").await;
    assert_eq!(s.status, 200, "{}", s.body);
    for _ in 0..2 {
        rig.post_from(
            STRANGER_IP,
            "/auth/verify-otp",
            json!({"tempToken": s.data_str("tempToken"), "otp": wrong(&s.data_str("sandboxOtp"), 6)}),
        )
        .await;
    }
    let r = send_from(STRANGER_IP, PHONE_KE, "d-3").await;
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"), "{}", r.body);
    // Elsewhere, nothing changed.
    let r = send_from(OWNER_IP, PHONE, DEVICE).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---------------------------------------------------------------- 6. web refresh tokens

/// The refresh token of a web session is in the HttpOnly cookie and never
/// in a body: at sign-up, sign-in, refresh, password and one-step sign-in.
async fn web_refresh_tokens(store: Store) {
    let rig = Rig::start_with(store, no_limits()).await;
    let (tt, code) = rig.send_code(PHONE, "browser").await;
    let v = rig
        .post(
            "/auth/verify-otp",
            json!({"tempToken": tt, "otp": code, "platform": "WEB"}),
        )
        .await;
    let p = rig
        .post(
            "/auth/onboarding/primary",
            json!({"onboardingToken": v.data_str("onboardingToken"), "firstName": "Asha", "lastName": "Mwangi", "birthDate": "1995-06-15"}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["data"]["refreshToken"], Value::Null, "sign-up: {}", p.body);
    assert_eq!(p.body["data"]["deviceToken"], Value::Null, "sign-up: {}", p.body);
    let rt = p.cookie("nambari_rt").expect("the refresh cookie");
    let dt = p.cookie("nambari_dt").expect("the device cookie");
    assert_eq!(rt.len(), 43);

    let cookie = format!("nambari_rt={rt}");
    let r = rig
        .raw(
            "POST",
            "/api/v1/auth/token/refresh",
            b"{}".to_vec(),
            Some("application/json"),
            &[("cookie", cookie.as_str())],
        )
        .await
        .reply();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["refreshToken"], Value::Null, "refresh: {}", r.body);
    assert!(r.cookie("nambari_rt").is_some());

    let (tt, code) = rig.send_code(PHONE, "browser").await;
    let v = rig
        .post(
            "/auth/verify-otp",
            json!({"tempToken": tt, "otp": code, "platform": "WEB"}),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.body["data"]["refreshToken"], Value::Null, "sign-in: {}", v.body);
    assert!(v.cookie("nambari_rt").is_some());
    let dt = v.cookie("nambari_dt").unwrap_or(dt);

    set_password(&rig, &v.data_str("accessToken")).await;
    let ct = rig.check(PHONE, "browser").await;
    let cookie = format!("nambari_dt={dt}");
    let r = rig
        .raw(
            "POST",
            "/api/v1/auth/login/password",
            json!({"checkToken": ct, "password": PASSWORD, "deviceId": "browser", "platform": "WEB"})
                .to_string()
                .into_bytes(),
            Some("application/json"),
            &[("cookie", cookie.as_str())],
        )
        .await
        .reply();
    assert_eq!(
        (r.status, r.action()),
        (200, ""),
        "the device cookie proves the browser: {}",
        r.body
    );
    assert_eq!(r.body["data"]["refreshToken"], Value::Null, "password: {}", r.body);
    assert!(r.cookie("nambari_rt").is_some());

    let t = rig.post("/auth/otp/trigger", json!({"phone": PHONE})).await;
    let r = rig
        .post(
            "/auth/otp/verify",
            json!({"phone": PHONE, "otp": t.data_str("sandbox_otp"), "platform": "WEB"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["refresh_token"], Value::Null, "one-step: {}", r.body);
    assert!(r.cookie("nambari_rt").is_some());
}

on_both_stores!(web_refresh_tokens =>
    a_web_client_never_sees_its_refresh_token_in_a_body_in_memory,
    a_web_client_never_sees_its_refresh_token_in_a_body_on_dynamodb);

// ---------------------------------------------------------------- 7. invites

/// Every invite, sandbox or not, to a user or not, spends the key's send
/// budget before it answers.
async fn invites_spend_the_budget(store: Store) {
    let mut settings = testing::settings();
    settings.limits.key_sends = Rate { limit: 3, window: HOUR };
    settings.invite_url_template = Some("https://app.example.com/claim/{invite_id}".into());
    let rig = integrator_rig(store, settings).await;
    let key = new_key(&rig, &["invites"]).await;
    rig.sign_up(PHONE, DEVICE).await;
    for sandbox in [false, true, false] {
        let r = rig
            .call(
                "POST",
                "/invites",
                Some(json!({"phone_number": PHONE, "sandbox_mode": sandbox})),
                Some(&key),
            )
            .await;
        assert_eq!((r.status, r.code()), (409, "CONFLICT"), "{}", r.body);
    }
    for phone in [PHONE, PHONE_KE] {
        let r = rig
            .call(
                "POST",
                "/invites",
                Some(json!({"phone_number": phone, "sandbox_mode": true})),
                Some(&key),
            )
            .await;
        assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"), "{phone}: {}", r.body);
    }
}

on_both_stores!(invites_spend_the_budget =>
    invites_spend_the_keys_send_budget_before_they_answer_in_memory,
    invites_spend_the_keys_send_budget_before_they_answer_on_dynamodb);

// ---------------------------------------------------------------- 8. known devices

/// Knowing the password and the victim's deviceId is not enough: the
/// device must present the deviceToken it was given.
async fn device_ids_are_claims(store: Store) {
    let rig = Rig::start_with(store, no_limits()).await;
    let owner: SignedUp = rig.sign_up(PHONE, DEVICE).await;
    set_password(&rig, &owner.access_token).await;
    let login = |device_token: Option<String>| {
        let rig = &rig;
        async move {
            let ct = rig.check(PHONE, DEVICE).await;
            rig.post(
                "/auth/login/password",
                json!({"checkToken": ct, "password": PASSWORD, "deviceId": DEVICE, "deviceToken": device_token}),
            )
            .await
        }
    };
    for (why, token) in [
        ("no deviceToken", None),
        ("a made-up one", Some("x".repeat(43))),
        ("a malformed one", Some("not a token".to_owned())),
    ] {
        let r = login(token).await;
        assert_eq!((r.status, r.action()), (200, "VERIFY_DEVICE"), "{why}: {}", r.body);
        assert_eq!(r.body["data"]["accessToken"], Value::Null);
    }
    // Another user's deviceToken for the same deviceId does not count either.
    let other = rig.sign_up(PHONE_KE, DEVICE).await;
    let r = login(Some(other.device_token.clone())).await;
    assert_eq!((r.status, r.action()), (200, "VERIFY_DEVICE"), "{}", r.body);
    // The owner's own device signs in, and gets the next deviceToken.
    let r = login(Some(owner.device_token.clone())).await;
    assert_eq!((r.status, r.action()), (200, ""), "{}", r.body);
    let next = r.data_str("deviceToken");
    assert_ne!(next, owner.device_token);
    let r = login(Some(next)).await;
    assert_eq!((r.status, r.action()), (200, ""), "{}", r.body);
}

on_both_stores!(device_ids_are_claims =>
    a_device_id_alone_does_not_make_a_device_known_in_memory,
    a_device_id_alone_does_not_make_a_device_known_on_dynamodb);

// ---------------------------------------------------------------- 9. bad input, features off

fn nested(depth: usize) -> Value {
    let mut v = json!("leaf");
    for _ in 0..depth {
        v = json!({ "a": v });
    }
    v
}

/// Metadata DynamoDB cannot store is a 422 naming it, before anything is
/// sent or kept; what it can store goes through.
async fn unstorable_metadata(store: Store) {
    let mut settings = no_limits();
    settings.invite_url_template = Some("https://app.example.com/claim/{invite_id}".into());
    let rig = integrator_rig(store, settings).await;
    let key = new_key(&rig, &[]).await;
    for (why, metadata) in [
        ("a number beyond 9.9e125", json!({"a": 1e300})),
        ("a number below 1e-130", json!({"a": -1e-200})),
        ("nesting deeper than 32", nested(33)),
        ("an empty attribute name", json!({"": 1})),
        ("an empty attribute name further in", json!({"a": {"": 1}})),
    ] {
        let r = otp_send(
            &rig,
            &key,
            json!({"channels": ["sms"], "recipients": {"sms": PHONE}, "metadata": metadata}),
        )
        .await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{why}: {}", r.body);
        assert!(r.body["data"]["metadata"].is_string(), "{why}: {}", r.body);
        let r = rig
            .call(
                "POST",
                "/invites",
                Some(json!({"phone_number": PHONE, "metadata": metadata})),
                Some(&key),
            )
            .await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_ERROR"), "{why}: {}", r.body);
        assert!(r.body["data"]["metadata"].is_string(), "{why}: {}", r.body);
    }
    assert!(rig.delivered.messages().is_empty(), "nothing was sent");
    assert!(rig.delivered.invites.lock().unwrap().is_empty(), "no invite was sent");
    assert!(
        nambari_core::services::invites::pending(&rig.app, PHONE)
            .await
            .unwrap()
            .is_empty(),
        "no invite was kept"
    );
    // What DynamoDB stores is kept as sent.
    let fine = json!({"deep": nested(30), "big": 9e125, "small": -2e-130, "text": "", "list": [1, "two", null, true]});
    let r = otp_send(
        &rig,
        &key,
        json!({"channels": ["sms"], "recipients": {"sms": PHONE}, "metadata": fine}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = rig
        .call(
            "POST",
            "/invites",
            Some(json!({"phone_number": PHONE, "metadata": fine})),
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

on_both_stores!(unstorable_metadata =>
    metadata_dynamodb_cannot_store_is_a_422_before_anything_is_sent_in_memory,
    metadata_dynamodb_cannot_store_is_a_422_before_anything_is_sent_on_dynamodb);

/// An invite whose message went out is kept first: a retry finds it and
/// sends nothing again.
async fn invite_retries(store: Store) {
    let mut settings = no_limits();
    settings.invite_url_template = Some("https://app.example.com/claim/{invite_id}".into());
    let rig = integrator_rig(store, settings).await;
    let key = new_key(&rig, &["invites"]).await;
    let body = json!({"phone_number": PHONE, "metadata": {"ref": "t-1"}});
    let first = rig.call("POST", "/invites", Some(body.clone()), Some(&key)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = rig.call("POST", "/invites", Some(body), Some(&key)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.data_str("invite_id"), first.data_str("invite_id"));
    assert_eq!(rig.delivered.invites.lock().unwrap().len(), 1, "one message");
}

on_both_stores!(invite_retries =>
    a_repeated_invite_finds_the_first_and_sends_nothing_again_in_memory,
    a_repeated_invite_finds_the_first_and_sends_nothing_again_on_dynamodb);

#[tokio::test]
async fn a_feature_that_is_off_answers_503_naming_its_setting() {
    let mut settings = no_limits();
    settings.invite_url_template = None;
    let rig = integrator_rig(Store::Memory, settings).await;
    let key = new_key(&rig, &[]).await;
    let r = rig
        .call("POST", "/invites", Some(json!({"phone_number": PHONE})), Some(&key))
        .await;
    assert_eq!((r.status, r.code()), (503, "FEATURE_DISABLED"), "{}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("INVITE_URL_TEMPLATE"),
        "{}",
        r.body
    );

    let user = rig.sign_up(PHONE, DEVICE).await;
    let ct = rig.check(PHONE, DEVICE).await;
    let r = rig
        .post(
            "/auth/login/oauth",
            json!({"checkToken": ct, "provider": "GOOGLE", "idToken": "x.y.z", "deviceId": DEVICE}),
        )
        .await;
    assert_eq!((r.status, r.code()), (503, "FEATURE_DISABLED"), "{}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("GOOGLE_CLIENT_IDS"),
        "{}",
        r.body
    );
    let r = rig
        .call("POST", "/account/oauth/nonce", None, Some(&user.access_token))
        .await;
    assert_eq!((r.status, r.code()), (503, "FEATURE_DISABLED"), "{}", r.body);
    let r = link(&rig, &user.access_token, "x.y.z", "n").await;
    assert_eq!((r.status, r.code()), (503, "FEATURE_DISABLED"), "{}", r.body);
}

#[test]
fn local_mode_turns_invites_on_with_a_development_link() {
    let settings = Settings::from_lookup(|k| nambari_local::local_default(k, 3000)).unwrap();
    let template = settings.invite_url_template.expect("invites are on in local mode");
    assert_eq!(template, "http://127.0.0.1:3000/claim/{invite_id}");
}
