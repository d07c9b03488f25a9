//! `nambari-bench`: the numbers of docs/BENCHMARKS.md.
//!
//! - `signup --target nambari|better-auth`: N complete sign-up flows, C at
//!   a time, over keep-alive connections; each flow a new phone number and
//!   every step's status and body checked. One JSON line:
//!   `{flows, concurrency, ok, failed, seconds, flows_per_s, p50_ms, p99_ms}`.
//! - `coldstart BIN…`: a Lambda Runtime API emulator. Each function's
//!   release binary is started as Lambda would (AWS_LAMBDA_RUNTIME_API), its
//!   init timed from exec to its first `GET /runtime/invocation/next`, then
//!   one event served and the invocation timed to its response; the process
//!   is stopped and started again. One JSON line per function with the
//!   medians over the runs.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[derive(Parser)]
#[command(name = "nambari-bench", about = "Sign-up throughput and Lambda cold starts.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    /// check → passwordless-start (sandboxOtp) → verify-otp → onboarding/primary against local mode.
    Nambari,
    /// send-otp → GET /__test/otp → verify against ../shared/peers/better-auth.
    BetterAuth,
}

#[derive(Subcommand)]
enum Command {
    /// Run complete sign-up flows and print one JSON line.
    Signup {
        #[arg(long, value_enum)]
        target: Target,
        /// The server, e.g. http://127.0.0.1:3000 (local mode) or http://127.0.0.1:4100 (better-auth).
        #[arg(long)]
        base: String,
        /// Flows in all.
        #[arg(long, default_value_t = 2000)]
        n: usize,
        /// Flows in flight at once.
        #[arg(long, default_value_t = 32)]
        c: usize,
        /// No new flow starts after this many seconds.
        #[arg(long, default_value_t = 120)]
        max_seconds: u64,
        /// A request not answered in this many seconds fails its flow (10:
        /// the Lambda timeout of most functions; API Gateway waits 30).
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Time each binary's cold start on a Runtime API emulator; one JSON line per binary.
    Coldstart {
        /// Release `bootstrap` binaries (target/release/<crate>).
        bins: Vec<PathBuf>,
        /// Starts per binary (the medians are printed).
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// moto (DynamoDB and Secrets Manager) endpoint, e.g. http://127.0.0.1:5000.
        #[arg(long)]
        moto: String,
        /// The events/ folder (each function's ok.json is its first invocation).
        #[arg(long, default_value = "events")]
        events: PathBuf,
    },
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[idx.clamp(1, sorted.len()) - 1])
}

fn round1(x: Option<f64>) -> Value {
    x.map(|v| json!((v * 10.0).round() / 10.0)).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------- sign-up flows

/// `n` distinct valid numbers: Tanzanian mobiles (+255 74x) for Nambari
/// (libphonenumber-valid), +1 NXX numbers for better-auth (as its flow.mjs).
fn phones(target: Target, n: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    while seen.len() < n {
        let r = getrandom::u64().expect("getrandom");
        seen.insert(match target {
            Target::Nambari => format!("+25574{:07}", r % 10_000_000),
            Target::BetterAuth => format!("+1{}{:07}", 200 + (r >> 32) % 800, r % 10_000_000),
        });
    }
    seen.into_iter().collect()
}

struct Flow<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
}

impl Flow<'_> {
    async fn post(&self, path: &str, body: Value) -> Result<(u16, reqwest::header::HeaderMap, Value), String> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let v = res
            .json::<Value>()
            .await
            .map_err(|_| format!("{path}: non-JSON body"))?;
        Ok((status, headers, v))
    }

    async fn nambari(&self, phone: &str, i: usize) -> Result<(), String> {
        let device = format!("bench-{i}");
        let (s, _, check) = self
            .post("/api/v1/auth/check", json!({"identifier": phone, "deviceId": device}))
            .await?;
        if s != 200 || check["action"] != "REGISTER" {
            return Err(format!("check: {s} {}", check["code"]));
        }
        let ct = check["data"]["checkToken"].as_str().ok_or("check: no checkToken")?;
        let (s, _, start) = self
            .post(
                "/api/v1/auth/passwordless-start",
                json!({"checkToken": ct, "channel": "SMS", "deviceId": device}),
            )
            .await?;
        if s != 200 {
            return Err(format!("start: {s} {}", start["code"]));
        }
        let tt = start["data"]["tempToken"].as_str().ok_or("start: no tempToken")?;
        let code = start["data"]["sandboxOtp"]
            .as_str()
            .ok_or("start: no sandboxOtp (run local mode with SANDBOX on)")?;
        let (s, _, verified) = self
            .post(
                "/api/v1/auth/verify-otp",
                json!({"tempToken": tt, "otp": code, "platform": "ANDROID"}),
            )
            .await?;
        if s != 200 || verified["action"] != "COLLECT_PRIMARY" {
            return Err(format!("verify: {s} {}", verified["code"]));
        }
        let ot = verified["data"]["onboardingToken"]
            .as_str()
            .ok_or("verify: no onboardingToken")?;
        let (s, _, done) = self
            .post(
                "/api/v1/auth/onboarding/primary",
                json!({"onboardingToken": ot, "firstName": "Asha", "lastName": "Mwangi", "birthDate": "1995-06-15"}),
            )
            .await?;
        if s != 200 || done["data"]["accountTier"] != "FULL" {
            return Err(format!("onboarding: {s} {}", done["code"]));
        }
        let at = done["data"]["accessToken"].as_str().unwrap_or("");
        if at.split('.').count() != 3 || done["data"]["refreshToken"].as_str().map(str::len) != Some(43) {
            return Err("onboarding: no tokens".into());
        }
        Ok(())
    }

    async fn better_auth(&self, phone: &str) -> Result<(), String> {
        let (s, _, sent) = self
            .post("/api/auth/phone-number/send-otp", json!({"phoneNumber": phone}))
            .await?;
        if s != 200 || sent["message"] != "code sent" {
            return Err(format!("send-otp: {s}"));
        }
        let res = self
            .http
            .get(format!("{}/__test/otp?phone={}", self.base, phone.replace('+', "%2B")))
            .send()
            .await
            .map_err(|e| format!("get-otp: {e}"))?;
        let got: Value = res.json().await.map_err(|_| "get-otp: non-JSON")?;
        let code = got["code"]
            .as_str()
            .filter(|c| c.len() >= 4)
            .ok_or("get-otp: no code")?;
        let (s, headers, v) = self
            .post(
                "/api/auth/phone-number/verify",
                json!({"phoneNumber": phone, "code": code}),
            )
            .await?;
        if s != 200 || v["status"] != true || v["user"]["phoneNumber"] != phone {
            return Err(format!("verify: {s}"));
        }
        let token = v["token"]
            .as_str()
            .filter(|t| t.len() >= 16)
            .ok_or("verify: no token")?;
        let cookie_ok = headers.get_all(reqwest::header::SET_COOKIE).iter().any(|c| {
            c.to_str()
                .ok()
                .and_then(|c| c.strip_prefix("better-auth.session_token="))
                .is_some_and(|rest| rest.starts_with(&format!("{token}.")) || rest.starts_with(&format!("{token}%2E")))
        });
        if !cookie_ok {
            return Err("verify: no session cookie carrying the token".into());
        }
        Ok(())
    }
}

async fn signup(target: Target, base: String, n: usize, c: usize, max_seconds: u64, timeout: u64) -> Value {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(c)
        .timeout(Duration::from_secs(timeout))
        .build()
        .expect("HTTP client");
    let phones = Arc::new(phones(target, n));
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let failures = Arc::new(Mutex::new(std::collections::BTreeMap::<String, usize>::new()));
    let base = base.trim_end_matches('/').to_owned();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(max_seconds);
    let mut workers = Vec::new();
    for _ in 0..c {
        let (http, phones, next, latencies, failures, base) = (
            http.clone(),
            phones.clone(),
            next.clone(),
            latencies.clone(),
            failures.clone(),
            base.clone(),
        );
        workers.push(tokio::spawn(async move {
            let flow = Flow {
                http: &http,
                base: &base,
            };
            loop {
                if Instant::now() > deadline {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= phones.len() {
                    return;
                }
                let start = Instant::now();
                let r = match target {
                    Target::Nambari => flow.nambari(&phones[i], i).await,
                    Target::BetterAuth => flow.better_auth(&phones[i]).await,
                };
                match r {
                    Ok(()) => latencies.lock().await.push(start.elapsed().as_secs_f64() * 1000.0),
                    Err(e) => *failures.lock().await.entry(e).or_insert(0) += 1,
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let mut l = latencies.lock().await.clone();
    l.sort_by(f64::total_cmp);
    let failed: usize = failures.lock().await.values().sum();
    for (reason, count) in failures.lock().await.iter() {
        eprintln!("{count} × {reason}");
    }
    json!({
        "flows": l.len() + failed,
        "concurrency": c,
        "request_timeout_s": timeout,
        "ok": l.len(),
        "failed": failed,
        "seconds": (seconds * 100.0).round() / 100.0,
        "flows_per_s": ((l.len() as f64 / seconds) * 10.0).round() / 10.0,
        "p50_ms": round1(percentile(&l, 50.0)),
        "p99_ms": round1(percentile(&l, 99.0)),
    })
}

// ---------------------------------------------------------------- cold starts

/// What the emulator saw of one start.
#[derive(Default)]
struct Start {
    /// When the process asked for its first event.
    first_next: Option<Instant>,
    /// When the event was handed out, and when its response came.
    served: Option<Instant>,
    responded: Option<Instant>,
    status: Option<u16>,
    init_error: Option<String>,
}

type Shared = Arc<std::sync::Mutex<Start>>;

async fn runtime_api(
    req: hyper::Request<hyper::body::Incoming>,
    state: Shared,
    event: Arc<String>,
) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
    use http_body_util::BodyExt;
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let reply = |status: u16, body: String| {
        let mut r = hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(body)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        r
    };
    if method == hyper::Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        let first = {
            let mut s = state.lock().unwrap();
            if s.first_next.is_none() {
                s.first_next = Some(Instant::now());
                true
            } else {
                false
            }
        };
        if !first {
            // The function is waiting for a second event: there is none.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        state.lock().unwrap().served = Some(Instant::now());
        let mut r = reply(200, event.to_string());
        let h = r.headers_mut();
        h.insert("lambda-runtime-aws-request-id", "bench-request-1".parse().unwrap());
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 30_000;
        h.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().unwrap());
        h.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".parse().unwrap(),
        );
        h.insert(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".parse().unwrap(),
        );
        h.insert("content-type", "application/json".parse().unwrap());
        return r;
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if method == hyper::Method::POST && path.ends_with("/response") {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut s = state.lock().unwrap();
        s.responded = Some(Instant::now());
        s.status = v["statusCode"].as_u64().map(|n| n as u16);
        return reply(202, "{}".into());
    }
    if method == hyper::Method::POST && (path.ends_with("/error") || path.contains("/init/error")) {
        let mut s = state.lock().unwrap();
        s.init_error = Some(String::from_utf8_lossy(&body).chars().take(300).collect());
        s.responded = Some(Instant::now());
        return reply(202, "{}".into());
    }
    reply(404, "{}".into())
}

/// The moto set-up every start shares: the table and the secrets.
async fn prepare_moto(moto: &str) -> Vec<(String, String)> {
    let table = "nambari-bench";
    let client = nambari_aws::client(Some(moto)).await;
    nambari_aws::create_table(&client, table)
        .await
        .expect("creating the bench table on moto");
    let sm = aws_sdk_secretsmanager::Client::new(&nambari_aws::sdk_config(Some(moto)).await);
    let keys = serde_json::to_string(&nambari_core::base::tokens::KeyRing::generate_set().unwrap()).unwrap();
    let hex = |n: u8| (0..32).map(|i| format!("{:02x}", i as u8 ^ n)).collect::<String>();
    let mut env = Vec::new();
    for (var, name, value) in [
        ("SIGNING_KEYS_SECRET_ARN", "bench/signing-keys", keys),
        ("OTP_PEPPER_SECRET_ARN", "bench/otp-pepper", hex(1)),
        ("API_KEY_PEPPER_SECRET_ARN", "bench/api-key-pepper", hex(2)),
        (
            "WHATSAPP_TOKEN_SECRET_ARN",
            "bench/whatsapp-token",
            "bench-token".into(),
        ),
    ] {
        let arn = match sm.create_secret().name(name).secret_string(value.clone()).send().await {
            Ok(out) => out.arn().unwrap_or(name).to_owned(),
            Err(_) => {
                sm.put_secret_value()
                    .secret_id(name)
                    .secret_string(value)
                    .send()
                    .await
                    .expect("secret on moto");
                name.to_owned()
            }
        };
        env.push((var.to_owned(), arn));
    }
    env.extend(
        [
            ("TABLE_NAME", table),
            ("DYNAMODB_ENDPOINT", moto),
            ("SECRETS_ENDPOINT", moto),
            ("SNS_ENDPOINT", moto),
            ("SES_ENDPOINT", moto),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("STAGE", "bench"),
            ("SANDBOX", "true"),
            ("WEBOTP_DOMAIN", "bench.example"),
            ("SES_FROM_ADDRESS", "no-reply@bench.example"),
            ("WHATSAPP_PHONE_NUMBER_ID", "1065"),
            ("WHATSAPP_BASE_URL", "http://127.0.0.1:9"),
            ("RUST_LOG", "warn"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env
}

/// The function's happy-path event (placeholders filled with dummies: such
/// invocations answer 4xx, which is still a full request).
fn event_for(events: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(events.join(name).join("ok.json")).unwrap_or_else(|_| "{}".into());
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        match rest[i..].find("}}") {
            Some(j) => {
                out.push_str("placeholder");
                rest = &rest[i + j + 2..];
            }
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

async fn one_start(
    bin: &Path,
    env: &[(String, String)],
    event: Arc<String>,
) -> Result<(f64, f64, Option<u16>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    let state: Shared = Arc::default();
    let server = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (state, event) = (state.clone(), event.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let (state, event) = (state.clone(), event.clone());
                        async move { Ok::<_, std::convert::Infallible>(runtime_api(req, state, event).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        })
    };
    let name = bin.file_name().and_then(|n| n.to_str()).unwrap_or("bench");
    let t0 = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let result = loop {
        {
            let s = state.lock().unwrap();
            if let Some(e) = &s.init_error {
                break Err(format!("init error: {e}"));
            }
            if let (Some(first), Some(served), Some(done)) = (s.first_next, s.served, s.responded) {
                break Ok((
                    (first - t0).as_secs_f64() * 1000.0,
                    (done - served).as_secs_f64() * 1000.0,
                    s.status,
                ));
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut err).await;
            }
            break Err(format!(
                "exited {status}: {}",
                err.chars().take(400).collect::<String>()
            ));
        }
        if Instant::now() > deadline {
            break Err("no response within 20 s".into());
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    // Our own child, by handle.
    let _ = child.kill().await;
    server.abort();
    result
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

async fn coldstart(bins: Vec<PathBuf>, runs: usize, moto: String, events: PathBuf) {
    let env = prepare_moto(&moto).await;
    for bin in bins {
        let name = bin.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
        let event = Arc::new(event_for(&events, &name));
        let (mut inits, mut invokes, mut statuses, mut errors) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            match one_start(&bin, &env, event.clone()).await {
                Ok((init, invoke, status)) => {
                    inits.push(init);
                    invokes.push(invoke);
                    statuses.extend(status);
                }
                Err(e) => errors.push(e),
            }
        }
        let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
        let line = json!({
            "function": name,
            "runs": runs,
            "ok": inits.len(),
            "init_ms_median": round1(median(&mut inits)),
            "init_ms_max": round1(inits.iter().copied().reduce(f64::max)),
            "first_invoke_ms_median": round1(median(&mut invokes)),
            "first_status": statuses.first(),
            "bootstrap_bytes": size,
            "errors": errors.first(),
        });
        println!("{line}");
    }
}

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Command::Signup {
            target,
            base,
            n,
            c,
            max_seconds,
            timeout,
        } => {
            let line = signup(target, base, n, c, max_seconds, timeout).await;
            println!("{line}");
            if line["failed"].as_u64() != Some(0) {
                std::process::exit(1);
            }
        }
        Command::Coldstart {
            bins,
            runs,
            moto,
            events,
        } => coldstart(bins, runs, moto, events).await,
    }
}
