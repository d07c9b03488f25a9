//! Local mode started in-process for a test, on a free port, on either
//! store; and a small keep-alive-free HTTP client for talking to it.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use nambari_core::ports::clock::FixedClock;
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::metrics::RecordingMetrics;
use nambari_core::ports::sender::{InviteMessage, NoticeMessage, OtpMessage, RecordingSender, SendError, Sender};
use nambari_core::ports::table::Table;
use nambari_core::testing::{self, TestApp};
use nambari_core::{App, base::config::Settings};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

/// Which store a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Memory,
    /// DynamoDB on the test binary's shared `moto_server`, a fresh table each time.
    Dynamo,
}

/// Local mode serving one test.
pub struct Server {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub clock: Arc<FixedClock>,
    pub sender: Arc<RecordingSender>,
    pub metrics: Arc<RecordingMetrics>,
    pub table: Arc<dyn Table>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response: status, headers and the JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// `data.<field>` as a string (panics with the body when missing).
    pub fn data_str(&self, field: &str) -> String {
        self.body["data"][field]
            .as_str()
            .unwrap_or_else(|| panic!("no data.{field} in {}", self.body))
            .to_owned()
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn action(&self) -> &str {
        self.body["action"].as_str().unwrap_or("")
    }

    /// The value of the `Set-Cookie` named `name`, if the reply sets it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                c.split(';')
                    .next()?
                    .trim()
                    .strip_prefix(&format!("{name}="))
                    .map(str::to_owned)
            })
            .filter(|v| !v.is_empty())
    }
}

impl Server {
    /// Starts local mode on `store` with the default test settings.
    pub async fn start(store: Store) -> Server {
        Self::start_with(store, testing::settings()).await
    }

    pub async fn start_with(store: Store, settings: Settings) -> Server {
        Self::start_inner(store, settings, None).await
    }

    /// Local mode whose codes go out through `sender` (real senders against
    /// moto or a mock). [`Server::sender`] still records every message
    /// `sender` delivered.
    pub async fn start_with_sender(store: Store, settings: Settings, sender: Arc<dyn Sender>) -> Server {
        Self::start_inner(store, settings, Some(sender)).await
    }

    /// Local mode serving an App built elsewhere (e.g. by the Lambda
    /// configuration) on `table`. Its clock, sender and metrics are its own:
    /// [`Server::clock`], [`Server::sender`] and [`Server::metrics`] are
    /// unused stand-ins.
    pub async fn start_app(app: Arc<App>, table: Arc<dyn Table>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(nambari_local::serve(app.clone(), listener, false));
        Server {
            addr,
            app,
            clock: Arc::new(FixedClock::at_secs(testing::T0)),
            sender: Arc::new(RecordingSender::default()),
            metrics: Arc::new(RecordingMetrics::default()),
            table,
            task,
        }
    }

    async fn start_inner(store: Store, settings: Settings, via: Option<Arc<dyn Sender>>) -> Server {
        let table: Arc<dyn Table> = match store {
            Store::Memory => Arc::new(MemoryTable::new()),
            Store::Dynamo => Arc::new(crate::moto::fresh_table(crate::moto::shared()).await),
        };
        let TestApp {
            mut app,
            clock,
            sender,
            metrics,
        } = testing::app_with(table.clone(), settings);
        if let Some(via) = via {
            let recorder: Arc<dyn Sender> = sender.clone();
            let tee: Arc<dyn Sender> = Arc::new(Tee { via, recorder });
            app = Arc::new((*app).clone().with_sender(tee));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(nambari_local::serve(app.clone(), listener, false));
        Server {
            addr,
            app,
            clock,
            sender,
            metrics,
            table,
            task,
        }
    }

    /// `POST /api/v1{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.request("POST", &format!("/api/v1{path}"), Some(body.to_string()), &[])
            .await
    }

    /// Any request; `path` is absolute.
    pub async fn request(&self, method: &str, path: &str, body: Option<String>, headers: &[(&str, &str)]) -> Reply {
        let stream = TcpStream::connect(self.addr).await.expect("connect to local mode");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("http handshake");
        tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("request");
        let res = sender.send_request(req).await.expect("send request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body }
    }
}

/// Sends through `via` and, when that delivered, records the message too.
struct Tee {
    via: Arc<dyn Sender>,
    recorder: Arc<dyn Sender>,
}

#[async_trait::async_trait]
impl Sender for Tee {
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError> {
        self.via.send(msg).await?;
        self.recorder.send(msg).await
    }

    async fn send_invite(&self, msg: &InviteMessage) -> Result<(), SendError> {
        self.via.send_invite(msg).await?;
        self.recorder.send_invite(msg).await
    }

    async fn send_notice(&self, msg: &NoticeMessage) -> Result<(), SendError> {
        self.via.send_notice(msg).await?;
        self.recorder.send_notice(msg).await
    }
}
