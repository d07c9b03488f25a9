//! Log hygiene (SPEC §10 "phone numbers masked; codes, tokens … never
//! logged"): every log line of complete sign-up, sign-in, resend, refresh,
//! revoke, password, device check, reset, PIN and step-up, secondary
//! onboarding, one-step and integrator flows and of failure paths is
//! captured and searched for full phone numbers (in any format), codes,
//! tokens (any JWT segment, refresh tokens), passwords, PINs, the email,
//! the API key, both peppers and the signing key. Metric lines too.
//!
//! Capture: a JSON `tracing` subscriber writing to a buffer, installed as
//! this thread's default for the test; the runtime is current-thread, so
//! the server's handler tasks run (and log) on this thread. Levels: TRACE
//! for everything on the memory store; on DynamoDB, TRACE for Nambari's
//! crates and INFO (the deployed default) for the AWS SDK and the rest.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use nambari_core::base::channel::Pipe;
use nambari_core::testing;
use nambari_tests::faults::{Call, Failure, INJECTED_CAUSE, Op};
use nambari_tests::rig::{PEPPER, Rig};
use nambari_tests::server::{Reply, Store};
use serde_json::{Value, json};

const PHONE: &str = "+255745051250";
const PHONE_B: &str = "+255745051277";
const TEST_PHONE: &str = "+15555550100";

/// An `io::Write` into a shared buffer.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Installs the capturing subscriber on this thread until the guard drops.
fn capture(filter: &str) -> (Buf, tracing::subscriber::DefaultGuard) {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

/// What must never be logged, collected while the flows run.
#[derive(Default)]
struct Secrets {
    /// (what, value): searched as plain substrings.
    strings: Vec<(String, String)>,
    /// Codes: searched as whole numbers (not inside longer digit runs).
    codes: Vec<String>,
}

impl Secrets {
    fn add(&mut self, what: &str, value: &str) {
        if !value.is_empty() {
            self.strings.push((what.to_owned(), value.to_owned()));
        }
    }

    fn phone(&mut self, e164: &str, national: &str) {
        self.add("phone (E.164)", e164);
        self.add("phone (no plus)", &e164[1..]);
        self.add("phone (national)", national);
    }

    /// Every JWT segment and string-valued token or code in a reply, and
    /// the values of the cookies it sets (web refresh and device tokens).
    fn reply(&mut self, r: &Reply) {
        for name in ["nambari_rt", "nambari_dt"] {
            if let Some(v) = r.cookie(name) {
                self.add(&format!("cookie {name}"), &v);
            }
        }
        let Some(data) = r.body["data"].as_object() else {
            return;
        };
        if let Some(codes) = data.get("sandbox_otps").and_then(Value::as_object) {
            self.codes
                .extend(codes.values().filter_map(Value::as_str).map(str::to_owned));
        }
        for (k, v) in data {
            let Some(s) = v.as_str() else { continue };
            match k.as_str() {
                "sandboxOtp" | "sandbox_otp" | "sandboxEmailOtp" | "sandboxPhoneOtp" => self.codes.push(s.to_owned()),
                "refreshToken" | "refresh_token" => self.add("refresh token", s),
                "deviceToken" | "device_token" => self.add("device token", s),
                "nonce" | "oauthNonce" => self.add("nonce", s),
                k if k.ends_with("Token") || k == "access_token" => {
                    for (i, seg) in s.split('.').enumerate() {
                        // Segment 0 (the header) is the same for every token
                        // and holds only alg/kid/typ: still never logged.
                        self.add(&format!("{k} segment {i}"), seg);
                    }
                }
                _ => {}
            }
        }
    }

    fn keys(&mut self, rig: &Rig) {
        let pem = &rig.keys.current.pem;
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            self.add("signing key PEM line", line);
        }
        use p256::pkcs8::DecodePrivateKey;
        let secret = p256::SecretKey::from_pkcs8_pem(pem).unwrap();
        let d = secret.to_bytes();
        self.add("signing key scalar (hex)", &hex_lower(&d));
        self.add(
            "signing key scalar (base64url)",
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d),
        );
        self.add("pepper", std::str::from_utf8(&PEPPER).unwrap());
        self.add("pepper (hex)", &hex_lower(&PEPPER));
        self.add("API-key pepper", std::str::from_utf8(&API_PEPPER).unwrap());
        self.add("API-key pepper (hex)", &hex_lower(&API_PEPPER));
        self.add(
            "pepper (base64)",
            &base64::engine::general_purpose::STANDARD.encode(PEPPER),
        );
    }

    /// What of this leaked into `text`.
    fn found_in(&self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .strings
            .iter()
            .filter(|(_, v)| text.contains(v.as_str()))
            .map(|(w, v)| format!("{w}: {v}"))
            .collect();
        for code in &self.codes {
            if contains_number(text, code) {
                out.push(format!("code {code}"));
            }
        }
        out
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `digits` occurs in `text` not as part of a longer digit run.
fn contains_number(text: &str, digits: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(digits).any(|(i, m)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + m.len()).copied();
        !before.is_some_and(|b| b.is_ascii_digit()) && !after.is_some_and(|b| b.is_ascii_digit())
    })
}

/// Runs every flow and failure path the endpoints have today; returns
/// what must not appear in the logs.
async fn every_flow(rig: &Rig) -> Secrets {
    let mut sec = Secrets::default();
    sec.phone(PHONE, "745051250");
    sec.phone(PHONE_B, "745051277");
    sec.phone(TEST_PHONE, "5555550100");
    sec.keys(rig);
    sec.codes.push("123456".into());
    let post = |path: &'static str, body: Value| rig.post(path, body);

    // ---- sign-up (web client: the refresh token also goes in a cookie)
    let check = post("/auth/check", json!({"identifier": PHONE, "deviceId": "dev-1"})).await;
    sec.reply(&check);
    let ct = check.data_str("checkToken");
    sec.reply(
        &post(
            "/auth/passwordless/channels",
            json!({"checkToken": ct, "deviceId": "dev-1"}),
        )
        .await,
    );
    let start = post(
        "/auth/passwordless-start",
        json!({"checkToken": ct, "channel": "SMS_AND_WHATSAPP", "deviceId": "dev-1"}),
    )
    .await;
    assert_eq!(start.status, 200, "{}", start.body);
    sec.reply(&start);
    let verify = post(
        "/auth/verify-otp",
        json!({"tempToken": start.data_str("tempToken"), "otp": start.data_str("sandboxOtp"), "deviceName": "Asha's Pixel", "platform": "WEB"}),
    )
    .await;
    assert_eq!(verify.action(), "COLLECT_PRIMARY", "{}", verify.body);
    sec.reply(&verify);
    let primary = post(
        "/auth/onboarding/primary",
        json!({"onboardingToken": verify.data_str("onboardingToken"), "firstName": "Asha", "lastName": "Mwangi", "birthDate": "1995-06-15"}),
    )
    .await;
    assert_eq!(primary.status, 200, "{}", primary.body);
    sec.reply(&primary);
    sec.add("last name", "Mwangi");
    sec.add("birth date", "1995-06-15");

    // ---- refresh by cookie, then by body; revoke
    let rt = primary.cookie("nambari_rt").expect("the web session's refresh cookie");
    let cookie = format!("nambari_rt={rt}");
    let r = rig
        .post_with("/auth/token/refresh", json!({}), &[("cookie", cookie.as_str())])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    sec.reply(&r);
    let rt2 = r.cookie("nambari_rt").expect("a new refresh cookie");
    // reuse of the rotated token: the family is revoked (a warn line)
    let reused = post("/auth/token/refresh", json!({"refreshToken": rt})).await;
    assert_eq!(reused.code(), "TOKEN_REUSED");
    let r = post("/auth/token/refresh", json!({"refreshToken": rt2})).await;
    assert_eq!(r.status, 401);

    // ---- sign-in with a resend and an Idempotency-Key replay
    let check = post("/auth/check", json!({"identifier": PHONE, "deviceId": "dev-2"})).await;
    assert_eq!(check.action(), "LOGIN");
    sec.reply(&check);
    let start_body = json!({"checkToken": check.data_str("checkToken"), "channel": "SMS", "deviceId": "dev-2"});
    let idem = [("idempotency-key", "k-0123456789")];
    let start = rig
        .post_with("/auth/passwordless-start", start_body.clone(), &idem)
        .await;
    assert_eq!(start.status, 200, "{}", start.body);
    sec.reply(&start);
    let replay = rig.post_with("/auth/passwordless-start", start_body, &idem).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    rig.clock.advance(60);
    let resend = post("/auth/resend-otp", json!({"tempToken": start.data_str("tempToken")})).await;
    assert_eq!(resend.status, 200, "{}", resend.body);
    sec.reply(&resend);
    // the old code is dead now: a wrong-code path
    let old = post(
        "/auth/verify-otp",
        json!({"tempToken": start.data_str("tempToken"), "otp": start.data_str("sandboxOtp")}),
    )
    .await;
    assert_eq!(old.status, 403);
    let signed_in = post(
        "/auth/verify-otp",
        json!({"tempToken": resend.data_str("tempToken"), "otp": resend.data_str("sandboxOtp"), "platform": "IOS"}),
    )
    .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    sec.reply(&signed_in);
    let r = post(
        "/auth/token/revoke",
        json!({"refreshToken": signed_in.data_str("refreshToken")}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // ---- failures: wrong codes to lock-out, an expired code
    let (tt, code) = rig.send_code(PHONE_B, "dev-3").await;
    sec.codes.push(code.clone());
    sec.add("tempToken", &tt);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        post("/auth/verify-otp", json!({"tempToken": tt, "otp": wrong})).await;
    }
    let (tt, code) = rig.send_code(PHONE_B, "dev-4").await;
    sec.codes.push(code.clone());
    sec.add("tempToken", &tt);
    rig.clock.advance(121);
    let r = post("/auth/verify-otp", json!({"tempToken": tt, "otp": code})).await;
    assert_eq!(r.code(), "OTP_EXPIRED");

    // ---- failures: validation (the bad input holds the phone), bad tokens
    for identifier in [format!("{PHONE}x"), format!("0{}", &PHONE[4..]), PHONE[1..].to_owned()] {
        let r = post("/auth/check", json!({"identifier": identifier, "deviceId": "dev-5"})).await;
        assert_eq!(r.status, 422);
    }
    let r = post(
        "/auth/passwordless/channels",
        json!({"checkToken": format!("{ct}x"), "deviceId": "dev-1"}),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = post(
        "/auth/passwordless-start",
        json!({"checkToken": ct, "channel": "SMS", "deviceId": "dev-9"}),
    )
    .await;
    assert_eq!(r.status, 403);

    // ---- failures: delivery (every pipe down), then the store
    let ct = rig.check(PHONE_B, "dev-6").await;
    sec.add("checkToken", &ct);
    rig.sender.fail(Pipe::Sms);
    let r = rig.start_sms(&ct, "dev-6").await;
    assert_eq!(r.code(), "DELIVERY_FAILED");
    rig.sender.heal();
    rig.table
        .fail_next(|c: &Call| c.op == Op::Transact, Failure::Unavailable, 1);
    let r = rig.start_sms(&ct, "dev-6").await;
    assert_eq!(r.code(), "SERVICE_UNAVAILABLE");
    rig.table.fail_next(|c: &Call| c.op == Op::Get, Failure::Internal, 1);
    let r = post("/auth/token/refresh", json!({"refreshToken": rt2})).await;
    assert_eq!(r.code(), "INTERNAL");
    let r = rig.start_sms(&ct, "dev-6").await;
    assert_eq!(r.status, 200, "{}", r.body);
    sec.reply(&r);

    // ---- failures: rate limits (a metric line and an info line)
    let mut limited = false;
    for i in 0..8 {
        let r = rig
            .start_sms(&rig.check(PHONE_B, &format!("dev-l{i}")).await, &format!("dev-l{i}"))
            .await;
        sec.reply(&r);
        limited |= r.status == 429;
    }
    assert!(limited, "the per-phone limit was reached");

    // ---- a test number (fixed code, nothing sent)
    let user = rig.sign_up(TEST_PHONE, "dev-7").await;
    sec.add("access token", &user.access_token);
    sec.add("refresh token", &user.refresh_token);

    credentials_and_integrators(rig, &mut sec).await;
    pin_recovery_and_oauth_nonces(rig, &mut sec).await;

    // Everything the sender was given.
    for m in rig.delivered.messages() {
        sec.codes.push(m.code.expose().to_owned());
    }
    sec
}

const PASSWORD: &str = "Tr0ub4dor&3-horse";
const NEW_PASSWORD: &str = "c0rrect-h0rse-battery";
const PIN: &str = "7391";
const PHONE_C: &str = "+255745051288";
const EMAIL: &str = "asha.mwangi@example.com";

/// Password, device check, reset, PIN and step-up, secondary onboarding,
/// the one-step flow and the integrator API.
async fn credentials_and_integrators(rig: &Rig, sec: &mut Secrets) {
    sec.phone(PHONE_C, "745051288");
    sec.add("password", PASSWORD);
    sec.add("new password", NEW_PASSWORD);
    sec.codes.push(PIN.into());
    sec.add("email", EMAIL);
    sec.add("email local part", "asha.mwangi");
    let user = rig.sign_up(PHONE_C, "dev-c1").await;
    sec.add("access token", &user.access_token);
    sec.add("refresh token", &user.refresh_token);
    sec.add("device token", &user.device_token);
    let at = user.access_token.as_str();
    let call = |m: &'static str, p: &'static str, b: Value, t: &str| {
        let t = t.to_owned();
        async move { rig.call(m, p, Some(b), Some(&t)).await }
    };
    let r = call("PUT", "/account/password", json!({"newPassword": PASSWORD}), at).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call("PUT", "/account/pin", json!({"pin": PIN}), at).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        "POST",
        "/auth/step-up",
        json!({"pin": PIN, "scope": "payments:send"}),
        at,
    )
    .await;
    sec.reply(&r);
    let step_up = r.data_str("stepUpToken");
    let r = call(
        "POST",
        "/auth/step-up",
        json!({"pin": "8642", "scope": "payments:send"}),
        at,
    )
    .await;
    assert_eq!(r.code(), "INVALID_CREDENTIALS");
    for (path, body) in [
        ("/account/username", json!({"username": "asha_m"})),
        ("/account/bio", json!({"bio": "Nairobi"})),
    ] {
        let r = rig.call("PUT", path, Some(body), Some(at)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        sec.reply(&r);
    }
    let r = call("POST", "/account/email/start", json!({"email": EMAIL}), at).await;
    sec.reply(&r);
    let v = call(
        "POST",
        "/account/email/verify",
        json!({"tempToken": r.data_str("tempToken"), "otp": r.data_str("sandboxOtp")}),
        at,
    )
    .await;
    assert_eq!(v.status, 200, "{}", v.body);
    sec.reply(&v);

    // Password sign-in: a wrong one, the known device, a new device.
    let login = |device: &'static str, device_token: Option<String>, password: &'static str| async move {
        let ct = rig.check(PHONE_C, device).await;
        rig.post(
            "/auth/login/password",
            json!({"checkToken": ct, "password": password, "deviceId": device, "deviceToken": device_token}),
        )
        .await
    };
    assert_eq!(
        login("dev-c1", None, "wrong password!!").await.code(),
        "INVALID_CREDENTIALS"
    );
    let r = login("dev-c1", Some(user.device_token.clone()), PASSWORD).await;
    assert_eq!((r.status, r.action()), (200, ""), "{}", r.body);
    sec.reply(&r);
    let r = login("dev-c2", None, PASSWORD).await;
    assert_eq!(r.action(), "VERIFY_DEVICE", "{}", r.body);
    sec.reply(&r);
    let d = rig
        .post(
            "/account/device/verify",
            json!({"deviceVerificationToken": r.data_str("deviceVerificationToken"), "otp": r.data_str("sandboxOtp")}),
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.body);
    sec.reply(&d);

    // Forgot password end to end.
    let ct = rig.check(PHONE_C, "dev-c1").await;
    let i = rig
        .post(
            "/auth/password/forgot/initiate",
            json!({"checkToken": ct, "deviceId": "dev-c1"}),
        )
        .await;
    sec.reply(&i);
    let v = rig
        .post(
            "/auth/password/forgot/verify-otp",
            json!({"tempToken": i.data_str("tempToken"), "otp": i.data_str("sandboxOtp")}),
        )
        .await;
    sec.reply(&v);
    let r = rig
        .post(
            "/auth/password/forgot/reset",
            json!({"resetToken": v.data_str("resetToken"), "newPassword": NEW_PASSWORD, "confirmPassword": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    sec.reply(&r);
    let fresh = r.data_str("accessToken");
    let r = rig.call("POST", "/auth/logout", None, Some(&fresh)).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // The one-step flow.
    let t = rig.post("/auth/otp/trigger", json!({"phone": PHONE_C})).await;
    sec.reply(&t);
    let v = rig
        .post(
            "/auth/otp/verify",
            json!({"phone": PHONE_C, "otp": t.data_str("sandbox_otp")}),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    sec.reply(&v);
    let one_step_at = v.data_str("access_token");

    // The integrator API with a key (and a wrong one).
    let key = nambari_core::services::apikeys::create(&rig.app, "shop", &[], false)
        .await
        .unwrap();
    let key = nambari_core::services::apikeys::reveal(&key).to_owned();
    sec.add("API key", &key);
    sec.add("API key secret part", &key["nmb_live_".len()..]);
    let k = key.as_str();
    let r = call(
        "POST",
        "/otp/send",
        json!({"channels": ["sms", "email"], "recipients": {"sms": PHONE_C, "email": EMAIL}, "sandbox_mode": true}),
        k,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    sec.reply(&r);
    let codes = r.body["data"]["sandbox_otps"].clone();
    let v = call(
        "POST",
        "/otp/verify",
        json!({"token": r.data_str("token"), "otps": codes}),
        k,
    )
    .await;
    assert_eq!(v.body["data"]["status"], "VERIFIED", "{}", v.body);
    // Another number: PHONE_C has had its 5 sends in 5 minutes.
    sec.phone("+255745051266", "745051266");
    let live = call(
        "POST",
        "/otp/send",
        json!({"channels": ["sms"], "recipients": {"sms": "+255745051266"}}),
        k,
    )
    .await;
    assert_eq!(live.status, 200, "{}", live.body);
    let wrong = call(
        "POST",
        "/otp/verify",
        json!({"token": live.data_str("token"), "otps": {"sms": "000000"}}),
        k,
    )
    .await;
    assert_eq!(wrong.status, 200, "{}", wrong.body);
    let r = rig.call("GET", "/otp/sessions", None, Some(k)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A step-up token minted before the reset: its session has ended.
    let r = call("POST", "/step-up/consume", json!({"token": step_up}), k).await;
    assert_eq!(r.code(), "INVALID_TOKEN", "{}", r.body);
    let r = call(
        "POST",
        "/auth/step-up",
        json!({"pin": PIN, "scope": "payments:send"}),
        &one_step_at,
    )
    .await;
    sec.reply(&r);
    let r = call(
        "POST",
        "/step-up/consume",
        json!({"token": r.data_str("stepUpToken")}),
        k,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        "POST",
        "/invites",
        json!({"phone_number": "+255745051299", "metadata": {"ref": "x"}}),
        k,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    sec.phone("+255745051299", "745051299");
    let r = rig
        .call(
            "GET",
            &format!("/users?phone_number={}", PHONE_C.replace('+', "%2B")),
            None,
            Some(k),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        "POST",
        "/otp/send",
        json!({"channels": ["sms"], "recipients": {"sms": PHONE_C}}),
        "nmb_live_wrongwrongwrongwrongwrongwrong1",
    )
    .await;
    assert_eq!(r.code(), "UNAUTHORIZED");
}

const PHONE_D: &str = "+255745051233";
const EMAIL_D: &str = "baraka.otieno@example.com";

/// PIN recovery (codes to the email and the phone), a link nonce, and
/// wrong codes for the recovery.
async fn pin_recovery_and_oauth_nonces(rig: &Rig, sec: &mut Secrets) {
    sec.phone(PHONE_D, "745051233");
    sec.add("email", EMAIL_D);
    sec.add("email local part", "baraka.otieno");
    let user = rig.sign_up(PHONE_D, "dev-d1").await;
    sec.add("access token", &user.access_token);
    sec.add("refresh token", &user.refresh_token);
    sec.add("device token", &user.device_token);
    let at = user.access_token.as_str();
    let r = rig
        .call("PUT", "/account/pin", Some(json!({"pin": PIN})), Some(at))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = rig
        .call(
            "POST",
            "/account/email/start",
            Some(json!({"email": EMAIL_D})),
            Some(at),
        )
        .await;
    sec.reply(&r);
    let v = rig
        .call(
            "POST",
            "/account/email/verify",
            Some(json!({"tempToken": r.data_str("tempToken"), "otp": r.data_str("sandboxOtp")})),
            Some(at),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    let r = rig.call("POST", "/account/pin/recovery/start", None, Some(at)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    sec.reply(&r);
    let token = r.data_str("recoveryToken");
    let email_code = r.data_str("sandboxEmailOtp");
    let phone_code = r.data_str("sandboxPhoneOtp");
    let wrong = if email_code == "000000" { "111111" } else { "000000" };
    let body = |email: &str| json!({"recoveryToken": token, "emailOtp": email, "phoneOtp": phone_code, "pin": "5082"});
    let r = rig
        .call("POST", "/account/pin/recovery/verify", Some(body(wrong)), Some(at))
        .await;
    assert_eq!(r.code(), "INVALID_OTP", "{}", r.body);
    let r = rig
        .call(
            "POST",
            "/account/pin/recovery/verify",
            Some(body(&email_code)),
            Some(at),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    sec.reply(&r);
    sec.codes.push("5082".into());
    // A link nonce (no provider on this deployment: 503).
    let fresh = r.data_str("accessToken");
    let r = rig.call("POST", "/account/oauth/nonce", None, Some(&fresh)).await;
    assert_eq!(r.code(), "FEATURE_DISABLED", "{}", r.body);
}

fn assert_clean(log: &str, metrics: &[String], sec: &Secrets) {
    // The capture works: the flows' own lines are there, masked.
    for expected in [
        "phone checked",
        "code sent",
        "user registered",
        "refresh token reuse",
        "rate limited",
    ] {
        assert!(log.contains(expected), "no {expected:?} line captured:\n{log}");
    }
    assert!(log.contains("••• ••• ••50"), "masked phones are logged");
    assert!(
        log.lines()
            .any(|l| l.contains("user lookup") && l.contains(r#""by":"invite""#)),
        "an invite is logged like a user lookup"
    );
    assert!(log.contains(INJECTED_CAUSE), "a 5xx logs its cause");
    let lines = log.lines().count();
    assert!(lines > 30, "only {lines} lines captured");
    let leaked = sec.found_in(log);
    let mut report = String::new();
    if !leaked.is_empty() {
        for l in log.lines() {
            if !sec.found_in(l).is_empty() {
                report.push_str(l);
                report.push('\n');
            }
        }
    }
    assert!(leaked.is_empty(), "secrets in the logs: {leaked:#?}\nlines:\n{report}");
    assert!(!metrics.is_empty(), "the rate limit emitted a metric line");
    let metrics = metrics.join("\n");
    let leaked = sec.found_in(&metrics);
    assert!(leaked.is_empty(), "secrets in metric lines: {leaked:#?}\n{metrics}");
}

/// The API-key pepper of the rigs (looked for in the logs too).
const API_PEPPER: [u8; 32] = *b"api-key-pepper-rig-0123456789abc";

async fn rig_on(store: Store) -> Rig {
    let mut s = testing::settings();
    s.invite_url_template = Some("https://app.example.com/claim/{invite_id}".into());
    // Every flow comes from one IP: the per-phone limit is the one the test reaches.
    s.limits.ip.limit = 1000;
    Rig::start_with_app(store, s, |app| {
        app.with_api_key_pepper(Arc::new(nambari_core::ports::secrets::Live::new(
            nambari_core::base::otp::Pepper::new(API_PEPPER.to_vec()).unwrap(),
        )))
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn no_phone_code_token_pepper_or_key_is_logged_on_the_memory_store() {
    let (buf, _guard) = capture("trace");
    let rig = rig_on(Store::Memory).await;
    let sec = every_flow(&rig).await;
    assert_clean(&buf.text(), &rig.metrics.lines(), &sec);
}

#[tokio::test(flavor = "current_thread")]
async fn no_phone_code_token_pepper_or_key_is_logged_on_dynamodb() {
    // Nambari's crates (every function crate too) at TRACE, the AWS SDK at INFO.
    let mut filter =
        "info,nambari_core=trace,nambari_http=trace,nambari_aws=trace,nambari_local=trace,nambari_oauth=trace"
            .to_owned();
    for f in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions")).unwrap() {
        let name = f.unwrap().file_name().into_string().unwrap().replace('-', "_");
        filter.push_str(&format!(",{name}=trace"));
    }
    let (buf, _guard) = capture(&filter);
    let rig = rig_on(Store::Dynamo).await;
    let sec = every_flow(&rig).await;
    assert_clean(&buf.text(), &rig.metrics.lines(), &sec);
}
