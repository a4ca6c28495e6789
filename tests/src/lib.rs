//! Helpers for the end-to-end tests in `tests/`: a server on 127.0.0.1:0 and a raw HTTP/1.1
//! client, so tests can send exactly the bytes they mean (chunked bodies, slow bodies,
//! spoofed headers).

pub mod bench_apps;
pub mod jwt;
pub mod notes;
pub mod redis_server;
pub mod security_counts;
pub mod webdriver;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request body that does not say how large it is (as a chunked upload would not): its
/// bytes in one frame.
#[derive(Debug)]
pub struct UnknownSize(pub Option<bytes::Bytes>);

impl http_body::Body for UnknownSize {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|data| Ok(http_body::Frame::data(data))))
    }
}

/// A streamed body (of unknown size) that sends one chunk, then panics with a secret in its
/// message (`token=sk-live-4f9a2c`).
#[derive(Debug, Default)]
pub struct PanicsAfterOneChunk {
    sent: bool,
}

impl http_body::Body for PanicsAfterOneChunk {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if std::mem::replace(&mut self.sent, true) {
            panic!("lost the stream; token=sk-live-4f9a2c");
        }
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(
            b"first chunk",
        )))))
    }
}

/// A handler that switches to a protocol echoing what it reads (as a WebSocket route
/// switches to its own), through hyper's upgrade, as axum's `WebSocketUpgrade` does.
pub async fn echo_upgrade(mut req: axum::extract::Request) -> axum::response::Response {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = io.read(&mut buf).await {
            if io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    axum::response::Response::builder()
        .status(http::StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::CONNECTION, "upgrade")
        .header(http::header::UPGRADE, "echo")
        .body(axum::body::Body::empty())
        .unwrap_or_default()
}

/// A tracing `MakeWriter` that keeps everything written, for asserting on logs.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The JSON lines captured so far. Panics on a line that is not JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON log line"))
            .collect()
    }

    /// The warnings of target `hardening` among the JSON lines captured so far, whole.
    pub fn warnings(&self) -> Vec<serde_json::Value> {
        self.json_lines()
            .into_iter()
            .filter(|v| v["target"] == "hardening" && v["level"] == "WARN")
            .collect()
    }

    /// The warnings of target `hardening` whose field `layer` is `layer` (a rate-limit
    /// layer's, `Hardening`'s about its rate-limit fields) among the JSON lines captured so
    /// far, whole.
    pub fn layer_warnings(&self, layer: &str) -> Vec<serde_json::Value> {
        self.warnings()
            .into_iter()
            .filter(|w| w["fields"]["layer"] == layer)
            .collect()
    }

    /// The errors of target `hardening` among the JSON lines captured so far, whole.
    pub fn errors(&self) -> Vec<serde_json::Value> {
        self.json_lines()
            .into_iter()
            .filter(|v| v["target"] == "hardening" && v["level"] == "ERROR")
            .collect()
    }

    /// The `hardening loosened` warnings among the JSON lines captured so far: each one's
    /// `setting` and message.
    pub fn loosenings(&self) -> Vec<(String, String)> {
        self.json_lines()
            .into_iter()
            .filter_map(|w| {
                let message = w["fields"]["message"].as_str()?;
                let setting = w["fields"]["setting"].as_str().unwrap_or_default();
                message
                    .starts_with("hardening loosened")
                    .then(|| (setting.to_owned(), message.to_owned()))
            })
            .collect()
    }

    /// The messages of the warnings about `setting` (their field `setting`) among the JSON
    /// lines captured so far.
    pub fn setting_warnings(&self, setting: &str) -> Vec<String> {
        self.json_lines()
            .into_iter()
            .filter(|w| w["fields"]["setting"] == setting)
            .map(|w| {
                w["fields"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// The security events among the JSON lines captured so far: each one's
    /// `security.event` name and the whole event. Panics on a line that is not JSON.
    pub fn security_events(&self) -> Vec<(String, serde_json::Value)> {
        self.json_lines()
            .into_iter()
            .filter(|v| v["target"] == hardening_core::SECURITY_TARGET)
            .map(|v| {
                let name = v["fields"]["security.event"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                (name, v)
            })
            .collect()
    }
}

impl Captured {
    /// The access-log events among the JSON lines captured so far, as their `fields`, in
    /// order. Panics on a line that is not JSON.
    pub fn access_events(&self) -> Vec<serde_json::Value> {
        self.json_lines()
            .into_iter()
            .filter(|v| v["target"] == hardening_core::ACCESS_TARGET)
            .map(|v| v["fields"].clone())
            .collect()
    }

    /// Waits (up to [`EXCHANGE_LIMIT`]) until at least `count` access-log events are
    /// captured, and returns them all: for requests whose event is logged after the
    /// client has its answer or has gone.
    pub async fn wait_for_access_events(&self, count: usize) -> Vec<serde_json::Value> {
        let wait = async {
            loop {
                let events = self.access_events();
                if events.len() >= count {
                    return events;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        match tokio::time::timeout(EXCHANGE_LIMIT, wait).await {
            Ok(events) => events,
            Err(_) => panic!(
                "fewer than {count} access-log events: {:#?}",
                self.access_events()
            ),
        }
    }
}

impl Captured {
    /// The `security.event` names among the JSON lines captured so far, in order.
    pub fn security_event_names(&self) -> Vec<String> {
        self.security_events()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// Where this thread's log events go, and from which level.
    static CAPTURE: std::cell::RefCell<Option<(Captured, tracing::Level)>> =
        const { std::cell::RefCell::new(None) };
}

/// Routes each event to the capture of the thread that emits it (or nowhere).
struct ThreadCapture;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThreadCapture {
    type Writer = Box<dyn std::io::Write>;

    fn make_writer(&'a self) -> Self::Writer {
        Box::new(std::io::sink())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        CAPTURE.with(|c| match &*c.borrow() {
            Some((captured, level)) if meta.level() <= level => {
                Box::new(captured.clone()) as Box<dyn std::io::Write>
            }
            _ => Box::new(std::io::sink()),
        })
    }
}

/// Ends a capture when dropped.
#[derive(Debug)]
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.borrow_mut().take());
    }
}

impl Captured {
    /// Captures JSON log lines at `level` and above on this thread until the guard drops
    /// (tests run on a current-thread runtime, so the server tasks they spawn log here too).
    ///
    /// One global subscriber routes events by thread. (Per-test `set_default` subscribers
    /// race: a callsite first hit on another thread while this one registers can cache
    /// "no interest" and drop this thread's events — seen as a flaky test.)
    pub fn json_logs(level: tracing::Level) -> (Captured, CaptureGuard) {
        static INIT: std::sync::Once = std::sync::Once::new();
        INIT.call_once(|| {
            // Everything but axum's rejection events, as a subscriber set up as the README
            // says (`init_json_logs`, or `axum::rejection=off`): their text quotes the
            // client's input, and `Hardening` warns of a subscriber that records them.
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_writer(ThreadCapture)
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "trace,axum::rejection=off",
                ))
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in the test binaries");
        });
        let captured = Captured::default();
        CAPTURE.with(|c| *c.borrow_mut() = Some((captured.clone(), level)));
        (captured, CaptureGuard(()))
    }

    /// Installs the global subscriber: JSON lines under `filter` (`EnvFilter` directives),
    /// from every thread, into the returned capture. For a test binary of its own that needs
    /// one particular filter (not combinable with [`Captured::json_logs`]).
    pub fn global_json_logs(filter: &str) -> Captured {
        let (captured, subscriber) = Captured::json_subscriber(filter);
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
        captured
    }

    /// A subscriber of JSON lines under `filter` (`EnvFilter` directives), from whichever
    /// thread it serves, into the returned capture: to install globally, or for one thread
    /// with `tracing::subscriber::with_default`.
    pub fn json_subscriber(filter: &str) -> (Captured, impl tracing::Subscriber + Send + Sync) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(move || writer.clone())
            .finish();
        (captured, subscriber)
    }
}

/// Runs `command`, which runs one test of a test binary in a child process (the binary
/// itself, or a shell that execs it), and panics with the child's output unless that test
/// passed. For a test that needs a process of its own: an environment variable, a resource
/// limit, a global subscriber.
pub fn assert_child_test_passes(command: &mut std::process::Command) {
    let output = command.output().expect("the child test process starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{command:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// How long any one exchange may take before the test fails instead of hanging.
pub const EXCHANGE_LIMIT: Duration = Duration::from_secs(10);

/// Waits (up to [`EXCHANGE_LIMIT`], checking every 10 ms) until `condition` holds: for a
/// state another task reaches, such as a request waiting in a queue. Panics naming `what`
/// if it never does.
pub async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let wait = async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(EXCHANGE_LIMIT, wait).await.is_err() {
        panic!("never came to pass: {what}");
    }
}

/// Waits (bounded: 100 looks 50 ms apart, plus what each takes) until `f` holds; whether it
/// did.
pub async fn eventually(mut f: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A `POST` route that reads the body, answers its length, and counts its calls: whether a
/// refused request reached the handler.
pub fn counting_upload(calls: Arc<std::sync::atomic::AtomicUsize>) -> axum::routing::MethodRouter {
    axum::routing::post(move |body: axum::body::Bytes| async move {
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        body.len().to_string()
    })
}

/// Serves `app` on an ephemeral loopback port, with the peer address available to layers.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server");
    });
    addr
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-case, in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked if needed).
    pub body: String,
}

impl Reply {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// The body as a problem, after checking the reply is one of `status`: its status,
    /// `Content-Type`, the body's `status`, and its `request_id` that of `x-request-id`.
    pub fn problem(&self, status: u16) -> serde_json::Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some(hardening_core::errors::PROBLEM_JSON),
            "{self:?}"
        );
        let body = self.json();
        assert_eq!(body["status"], status, "{self:?}");
        assert_eq!(
            body["request_id"].as_str(),
            self.header("x-request-id"),
            "{self:?}"
        );
        body
    }
}

/// Sends `request` (its bytes exactly; include `connection: close`) and reads the response.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Reply {
    tokio::time::timeout(EXCHANGE_LIMIT, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        read_reply(&mut stream).await
    })
    .await
    .expect("the exchange took too long")
}

/// A GET with extra header lines (`"name: value"`).
pub async fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Reply {
    request(addr, "GET", path, headers).await
}

/// `method path` without a body, with extra header lines (`"name: value"`).
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    exchange(addr, req.as_bytes()).await
}

/// Sends one request with these headers and an optional JSON body; `connection: close`.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json_body: Option<&str>,
) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = json_body.unwrap_or_default();
    if json_body.is_some() {
        req.push_str("content-type: application/json\r\n");
    }
    req.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    exchange(addr, req.as_bytes()).await
}

/// A tower `Service` that sends each request over a new TCP connection to `addr`: lets
/// helpers written against a `Router` (such as `hardening_auth::idor_probe`) run against a
/// real server.
#[derive(Debug, Clone, Copy)]
pub struct OverTcp(pub SocketAddr);

impl tower::Service<http::Request<axum::body::Body>> for OverTcp {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<axum::body::Body>) -> Self::Future {
        let addr = self.0;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
                .await
                .expect("a readable request body");
            let mut raw = format!(
                "{} {} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n",
                parts.method,
                parts.uri.path_and_query().map_or("/", |p| p.as_str())
            )
            .into_bytes();
            for (name, value) in &parts.headers {
                raw.extend_from_slice(name.as_str().as_bytes());
                raw.extend_from_slice(b": ");
                raw.extend_from_slice(value.as_bytes());
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
            raw.extend_from_slice(&body);
            let reply = exchange(addr, &raw).await;
            let mut response = http::Response::builder().status(reply.status);
            for (name, value) in &reply.headers {
                if name != "content-length" && name != "transfer-encoding" {
                    response = response.header(name, value);
                }
            }
            Ok(response
                .body(axum::body::Body::from(reply.body))
                .expect("a valid response"))
        })
    }
}

/// Reads one response: to its `content-length` if it has one, else until the server closes
/// the connection.
pub async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|len| raw.len() >= head_end + 4 + len) {
                break;
            }
        }
    }
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a complete response head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Serves a route whose handler logs one INFO event (target `app`, message "inside the
/// handler") behind `Hardening::strict()`, calls it once, checks the 200, and returns the
/// response's request id.
pub async fn call_a_logging_handler() -> String {
    let app = Router::new().route(
        "/",
        axum::routing::get(|| async {
            tracing::info!(target: "app", "inside the handler");
            "ok"
        }),
    );
    let addr = serve(app.layer(hardening_core::Hardening::strict())).await;
    let reply = get(addr, "/", &[]).await;
    assert_eq!(reply.status, 200);
    reply
        .header("x-request-id")
        .expect("a request id")
        .to_owned()
}

/// [`call_a_logging_handler`], then checks that `captured` holds the handler's event inside
/// the `request` span with the response's request id.
pub async fn assert_handler_event_in_request_span(captured: &Captured) {
    let id = call_a_logging_handler().await;

    let logs = captured.text();
    let inside: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON log line"))
        .filter(|v| v["target"] == "app")
        .collect();
    assert_eq!(
        inside.len(),
        1,
        "the handler's event is logged once:\n{logs}"
    );
    assert_eq!(inside[0]["span"]["name"], "request", "{logs}");
    assert_eq!(inside[0]["span"]["request_id"], id, "{logs}");
}

/// `GET path` through `app` in-process with `Authorization: Bearer {token}`: the status, the
/// `WWW-Authenticate` challenge if any, and the body.
pub async fn get_with_bearer(
    app: Router,
    path: &str,
    token: &str,
) -> (u16, Option<String>, bytes::Bytes) {
    use tower::ServiceExt;
    let req = http::Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .expect("a valid request");
    let res = app.oneshot(req).await.expect("the router is infallible");
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    (status, challenge, body)
}
