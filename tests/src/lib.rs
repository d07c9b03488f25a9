//! Helpers for Nambari's integration tests: a `moto_server` per test binary
//! ([`moto::shared`]), fresh DynamoDB tables on it ([`moto::fresh_table`]),
//! and moto's record of what was sent ([`moto::sent_messages`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod faults;
pub mod rig;
pub mod server;

pub mod moto {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use nambari_aws::DynamoTable;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// How long [`Moto::start`] waits for the server to answer.
    const START_TIMEOUT: Duration = Duration::from_secs(30);

    /// moto's server application behind a lock, one request at a time
    /// (tests/moto_serial.py says why: moto's transactions and conditional
    /// writes are not atomic under concurrent requests, DynamoDB's are).
    const MOTO_SERIAL: &str = include_str!("../moto_serial.py");

    /// Runs [`MOTO_SERIAL`] with the Python that has moto and, once `stdin`
    /// reaches end of file, stops it. `stdin` is a pipe whose only writer is
    /// the test process, so the end of file comes when [`Moto`] is dropped
    /// *or* when the test process exits in any way (statics are never
    /// dropped; a crash or SIGKILL also closes the pipe). moto itself reads
    /// /dev/null, not the pipe.
    const WRAPPER: &str = r#"
python3 -c "$3" -H 127.0.0.1 -p "$1" </dev/null >"$2" 2>&1 &
pid=$!
cat >/dev/null
kill "$pid" 2>/dev/null
wait "$pid"
rm -f "$2"
"#;

    /// A running `moto_server` on 127.0.0.1, stopped when dropped (or when
    /// the test process exits).
    pub struct Moto {
        /// `http://127.0.0.1:PORT`
        pub endpoint: String,
        pub port: u16,
        /// moto's stdout and stderr.
        pub log: PathBuf,
        child: Child,
        stdin: Option<ChildStdin>,
    }

    impl Moto {
        /// Starts `moto_server` on a free port and waits (up to 30 s) until it
        /// answers HTTP. Panics when `moto_server` is not on `PATH`.
        pub fn start() -> Moto {
            if find_on_path("moto_server").is_none() {
                panic!(
                    "\n\n*** moto_server not found: install it with pip install 'moto[server]' \
                     — the test command does this. ***\n\n"
                );
            }
            let port = free_port();
            let log = std::env::temp_dir().join(format!("nambari-moto-{}-{port}.log", std::process::id()));
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(WRAPPER)
                .arg("nambari-moto")
                .arg(port.to_string())
                .arg(&log)
                .arg(MOTO_SERIAL)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot run sh to start moto_server");
            let stdin = child.stdin.take();
            let mut moto = Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
                port,
                log,
                child,
                stdin,
            };
            moto.wait_ready();
            moto
        }

        fn wait_ready(&mut self) {
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!(
                        "moto_server exited during start-up ({status}); its log ({}):\n{}",
                        self.log.display(),
                        read_log(&self.log)
                    );
                }
                if http_answers(self.port) {
                    return;
                }
                if Instant::now() >= deadline {
                    panic!(
                        "moto_server did not answer on port {} within {START_TIMEOUT:?}; its log ({}):\n{}",
                        self.port,
                        self.log.display(),
                        read_log(&self.log)
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            // End of file on the wrapper's stdin: it stops moto and exits.
            drop(self.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    let _ = std::fs::remove_file(&self.log);
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // The wrapper is stuck: kill it (our own child, by handle).
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The moto of this test binary, started on first use.
    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(Moto::start)
    }

    /// A new, empty Nambari table (with its GSI and TTL) on `moto`, under a
    /// name no other test uses.
    pub async fn fresh_table(moto: &Moto) -> DynamoTable {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let random = getrandom::u32().expect("getrandom");
        let name = format!("nambari-test-{}-{n}-{random:08x}", std::process::id());
        let client = nambari_aws::client(Some(&moto.endpoint)).await;
        nambari_aws::create_table(&client, &name)
            .await
            .unwrap_or_else(|e| panic!("creating table {name} on moto: {e:?}"));
        DynamoTable::new(client, name)
    }

    /// moto's state as JSON (`GET /moto-api/data.json`): among others, the
    /// SMS and other messages the code under test "sent".
    pub async fn sent_messages(moto: &Moto) -> serde_json::Value {
        let (status, body) = get(moto.port, "/moto-api/data.json").await;
        assert_eq!(status, 200, "GET /moto-api/data.json: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("moto data.json is not JSON ({e}): {body}"))
    }

    /// A plain HTTP/1.0 GET on 127.0.0.1 (no chunking, closed after the
    /// body): the status code and the body.
    async fn get(port: u16, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap_or_else(|e| panic!("connecting to moto on port {port}: {e}"));
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        parse_response(&raw)
    }

    fn parse_response(raw: &[u8]) -> (u16, String) {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("malformed HTTP response: {text}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("malformed HTTP status line: {head}"));
        (status, body.to_owned())
    }

    /// Whether something on `port` answers an HTTP request.
    fn http_answers(port: u16) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).is_ok() && &head == b"HTTP/"
    }

    /// A port that was free a moment ago (bound to :0, read, released).
    fn free_port() -> u16 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0");
        listener.local_addr().expect("local address").port()
    }

    fn find_on_path(program: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
    }

    fn read_log(log: &Path) -> String {
        std::fs::read_to_string(log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_a_response() {
            let (status, body) = parse_response(b"HTTP/1.0 200 OK\r\nContent-Type: x\r\n\r\n{\"a\":1}");
            assert_eq!(status, 200);
            assert_eq!(body, "{\"a\":1}");
        }
    }
}
