//! Local mode over a [`FaultyTable`] and a [`FaultySender`], with signing
//! keys and a pepper the test knows (to forge tokens, and to look for them
//! in logs), and a raw HTTP client that can send any bytes with any
//! content type.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use nambari_core::App;
use nambari_core::base::config::Settings;
use nambari_core::base::otp::Pepper;
use nambari_core::base::tokens::{KeyRing, KeySet};
use nambari_core::ports::clock::FixedClock;
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::metrics::RecordingMetrics;
use nambari_core::ports::sender::RecordingSender;
use nambari_core::ports::table::Table;
use nambari_core::testing::{self, T0};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

use crate::faults::{FaultySender, FaultyTable};
use crate::server::{Reply, Store};

/// The OTP pepper of every rig: distinctive bytes to look for in logs.
pub const PEPPER: [u8; 32] = *b"rig-pepper-0123456789-abcdefghij";

/// Local mode serving one test, with its doubles exposed.
pub struct Rig {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub clock: Arc<FixedClock>,
    /// What was delivered (behind [`Rig::sender`]).
    pub delivered: Arc<RecordingSender>,
    /// The sender the app uses: fails pipes on demand.
    pub sender: Arc<FaultySender>,
    pub metrics: Arc<RecordingMetrics>,
    /// The table the app uses: fails calls on demand, logs commits.
    pub table: Arc<FaultyTable>,
    /// The table under the faults.
    pub inner: Arc<dyn Table>,
    /// The signing keys in use (PKCS#8 PEM inside).
    pub keys: KeySet,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response with its raw body.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub bytes: Vec<u8>,
}

impl RawReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    pub fn reply(self) -> Reply {
        let body = self.json();
        Reply {
            status: self.status,
            headers: self.headers,
            body,
        }
    }
}

impl Rig {
    /// The default test settings (sandbox, limits on, test number
    /// `+15555550100:123456`).
    pub async fn start(store: Store) -> Rig {
        Self::start_with(store, testing::settings()).await
    }

    pub async fn start_with(store: Store, settings: Settings) -> Rig {
        let inner: Arc<dyn Table> = match store {
            Store::Memory => Arc::new(MemoryTable::new()),
            Store::Dynamo => Arc::new(crate::moto::fresh_table(crate::moto::shared()).await),
        };
        Self::start_on(inner, settings).await
    }

    /// Local mode on any table (wrapped in a [`FaultyTable`]).
    pub async fn start_on(inner: Arc<dyn Table>, settings: Settings) -> Rig {
        Self::start_on_app(inner, settings, |app| app).await
    }

    /// As [`Rig::start_with`], with `edit` applied to the App before it
    /// serves (to install an idToken verifier, an events recorder, …).
    pub async fn start_with_app(store: Store, settings: Settings, edit: impl FnOnce(App) -> App) -> Rig {
        let inner: Arc<dyn Table> = match store {
            Store::Memory => Arc::new(MemoryTable::new()),
            Store::Dynamo => Arc::new(crate::moto::fresh_table(crate::moto::shared()).await),
        };
        Self::start_on_app(inner, settings, edit).await
    }

    /// Local mode on any table with `edit` applied to the App.
    pub async fn start_on_app(inner: Arc<dyn Table>, settings: Settings, edit: impl FnOnce(App) -> App) -> Rig {
        let table = Arc::new(FaultyTable::new(inner.clone()));
        let clock = Arc::new(FixedClock::at_secs(T0));
        let delivered = Arc::new(RecordingSender::default());
        let sender = Arc::new(FaultySender::new(delivered.clone()));
        let metrics = Arc::new(RecordingMetrics::default());
        let keys = KeyRing::generate_set().expect("key generation");
        let ring = KeyRing::from_set(&keys, &settings.issuer, &settings.audience).expect("key ring");
        let mut app = App::new(
            settings,
            table.clone(),
            clock.clone(),
            Arc::new(ring),
            Pepper::new(PEPPER.to_vec()).expect("pepper"),
            sender.clone(),
        );
        app.metrics = metrics.clone();
        let app = Arc::new(edit(app));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(nambari_local::serve(app.clone(), listener, false));
        Rig {
            addr,
            app,
            clock,
            delivered,
            sender,
            metrics,
            table,
            inner,
            keys,
            task,
        }
    }

    /// `POST /api/v1{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.raw(
            "POST",
            &format!("/api/v1{path}"),
            body.to_string().into_bytes(),
            Some("application/json"),
            &[],
        )
        .await
        .reply()
    }

    /// `POST /api/v1{path}` with a JSON body and extra headers.
    pub async fn post_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        self.raw(
            "POST",
            &format!("/api/v1{path}"),
            body.to_string().into_bytes(),
            Some("application/json"),
            headers,
        )
        .await
        .reply()
    }

    /// `METHOD /api/v1{path}` with an optional JSON body and bearer token.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>, bearer: Option<&str>) -> Reply {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        self.raw(
            method,
            &format!("/api/v1{path}"),
            body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            Some("application/json"),
            &headers,
        )
        .await
        .reply()
    }

    /// `POST /api/v1{path}` with a JSON body, from the client address `ip`
    /// (a 127.0.0.0/8 address: local mode sees it as the caller's
    /// `sourceIp`, as API Gateway would pass a real client's).
    pub async fn post_from(&self, ip: &str, path: &str, body: Value) -> Reply {
        raw_request_from(
            self.addr,
            Some(ip),
            "POST",
            &format!("/api/v1{path}"),
            body.to_string().into_bytes(),
            Some("application/json"),
            &[],
        )
        .await
        .reply()
    }

    /// Any request: raw body bytes, an optional `Content-Type`, extra headers.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> RawReply {
        raw_request(self.addr, method, path, body, content_type, headers).await
    }
}

/// What a completed sign-up returns.
#[derive(Clone, Debug)]
pub struct SignedUp {
    pub user_id: String,
    pub access_token: String,
    pub refresh_token: String,
    /// The proof that the sign-up's device is known (`deviceToken`).
    pub device_token: String,
}

impl Rig {
    /// `/auth/check` → the checkToken (panics unless 200).
    pub async fn check(&self, phone: &str, device: &str) -> String {
        let r = self
            .post(
                "/auth/check",
                serde_json::json!({"identifier": phone, "deviceId": device}),
            )
            .await;
        assert_eq!(r.status, 200, "check: {}", r.body);
        r.data_str("checkToken")
    }

    /// `/auth/passwordless-start` over SMS with `check_token`.
    pub async fn start_sms(&self, check_token: &str, device: &str) -> Reply {
        self.post(
            "/auth/passwordless-start",
            serde_json::json!({"checkToken": check_token, "channel": "SMS", "deviceId": device}),
        )
        .await
    }

    /// check → start: the tempToken and the code (panics unless both 200).
    pub async fn send_code(&self, phone: &str, device: &str) -> (String, String) {
        let ct = self.check(phone, device).await;
        let r = self.start_sms(&ct, device).await;
        assert_eq!(r.status, 200, "start: {}", r.body);
        (r.data_str("tempToken"), r.data_str("sandboxOtp"))
    }

    /// check → start → verify: the onboardingToken of a new user.
    pub async fn onboarding_token(&self, phone: &str, device: &str) -> String {
        let (tt, code) = self.send_code(phone, device).await;
        let r = self
            .post("/auth/verify-otp", serde_json::json!({"tempToken": tt, "otp": code}))
            .await;
        assert_eq!((r.status, r.action()), (200, "COLLECT_PRIMARY"), "verify: {}", r.body);
        r.data_str("onboardingToken")
    }

    /// A complete sign-up (check → start → verify → primary) of a new phone.
    pub async fn sign_up(&self, phone: &str, device: &str) -> SignedUp {
        let ot = self.onboarding_token(phone, device).await;
        let r = self
            .post(
                "/auth/onboarding/primary",
                serde_json::json!({"onboardingToken": ot, "firstName": "Asha", "lastName": "Mwangi", "birthDate": "1995-06-15"}),
            )
            .await;
        assert_eq!(r.status, 200, "primary: {}", r.body);
        let access_token = r.data_str("accessToken");
        SignedUp {
            user_id: jwt_claims(&access_token)["sub"].as_str().unwrap_or_default().to_owned(),
            access_token,
            refresh_token: r.data_str("refreshToken"),
            device_token: r.data_str("deviceToken"),
        }
    }
}

/// The claims of a JWT, decoded without any check (to read `sub`, `jti`, …).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// One request on a fresh connection to `addr`.
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Vec<u8>,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
) -> RawReply {
    raw_request_from(addr, None, method, path, body, content_type, headers).await
}

/// [`raw_request`] from the local address `from` (any 127.0.0.0/8 address
/// on Linux), so that the server sees another client IP.
pub async fn raw_request_from(
    addr: SocketAddr,
    from: Option<&str>,
    method: &str,
    path: &str,
    body: Vec<u8>,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
) -> RawReply {
    let stream = match from {
        None => TcpStream::connect(addr).await.expect("connect to local mode"),
        Some(ip) => {
            let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
            let local: std::net::IpAddr = ip.parse().expect("a client IP");
            socket.bind(SocketAddr::new(local, 0)).expect("bind the client address");
            socket.connect(addr).await.expect("connect to local mode")
        }
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .expect("http handshake");
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    let res = sender.send_request(req).await.expect("send request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes().to_vec();
    RawReply { status, headers, bytes }
}
