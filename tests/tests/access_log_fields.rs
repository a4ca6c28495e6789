//! Audit of the access log's fields over TCP, as an OpenTelemetry backend reads them: names,
//! value types, the route template, the principal, the client address, and one event for
//! every way a request can end.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::get;
use hardening_auth::AuthLayer;
use hardening_core::errors::PrincipalId;
use hardening_core::{Cors, Hardening};
use hardening_tests::jwt::{hs256_token, hs256_verifier};
use hardening_tests::{
    Captured, EXCHANGE_LIMIT, echo_upgrade, exchange, get as http_get, send, serve,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn notes() -> Router {
    Router::new().route(
        "/notes/{id}",
        get(|| async { "note" }).post(|body: Bytes| async move { body.len().to_string() }),
    )
}

/// Names and types as OpenTelemetry's HTTP semantic conventions have them: the status a
/// number, the duration a float (seconds, the unit of `http.server.request.duration`), the
/// method as sent (an extension method too), the route the matched template, and the path
/// only without one, redacted.
#[tokio::test]
async fn fields_have_opentelemetry_names_and_types() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let addr = serve(notes().layer(Hardening::strict())).await;

    let ok = http_get(addr, "/notes/7?page=2", &["user-agent: probe/1.0"]).await;
    assert_eq!(ok.status, 200);
    let purge = send(addr, "PURGE", "/notes/7", &[], None).await;
    assert_eq!(purge.status, 405);
    let missing = http_get(addr, "/nowhere/7;token=SECRET-path", &[]).await;
    assert_eq!(missing.status, 404);

    let access = captured.access_events();
    assert_eq!(access.len(), 3, "{access:#?}");
    let first = &access[0];
    assert_eq!(first["message"], "request");
    assert_eq!(first["http.request.method"], "GET");
    assert_eq!(first["http.route"], "/notes/{id}");
    assert!(first.get("url.path").is_none(), "{first}");
    assert_eq!(first["url.query"], "page=2");
    assert_eq!(
        first["http.response.status_code"].as_u64(),
        Some(200),
        "{first}"
    );
    assert!(
        first["http.server.request.duration"].is_f64(),
        "a number of seconds: {first}"
    );
    assert_eq!(first["request_id"], ok.header("x-request-id").unwrap());
    assert_eq!(first["client.address"], "127.0.0.1");
    assert_eq!(first["user_agent.original"], "probe/1.0");
    assert!(first.get("enduser.id").is_none(), "{first}");
    assert!(first.get("error.type").is_none(), "{first}");

    assert_eq!(access[1]["http.request.method"], "PURGE");
    assert_eq!(
        access[1]["http.route"], "/notes/{id}",
        "a 405 matched a route"
    );
    assert_eq!(access[1]["http.response.status_code"].as_u64(), Some(405));

    let missing = &access[2];
    assert!(
        missing.get("http.route").is_none(),
        "no template: {missing}"
    );
    assert_eq!(missing["url.path"], "/nowhere/7;token=[redacted]");
    assert_eq!(missing["http.response.status_code"].as_u64(), Some(404));
    assert!(!captured.text().contains("SECRET"), "{}", captured.text());
}

/// `enduser.id` is the `PrincipalId` an auth layer inside put on the response, on an error
/// that `Hardening` turns into a problem too, and absent when none was set.
#[tokio::test]
async fn the_principal_is_logged_when_an_auth_layer_inside_sets_it() {
    async fn auth(
        req: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        let user = req
            .headers()
            .get("x-test-user")
            .and_then(|v| v.to_str().ok())
            .map(PrincipalId::new);
        let mut res = next.run(req).await;
        if let Some(user) = user {
            res.extensions_mut().insert(user);
        }
        res
    }
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let app = notes()
        .route("/admin", get(|| async { http::StatusCode::FORBIDDEN }))
        .layer(axum::middleware::from_fn(auth))
        .layer(Hardening::strict());
    let addr = serve(app).await;
    assert_eq!(
        http_get(addr, "/notes/1", &["x-test-user: user-7"])
            .await
            .status,
        200
    );
    assert_eq!(
        http_get(addr, "/admin", &["x-test-user: user-8"])
            .await
            .status,
        403
    );
    assert_eq!(http_get(addr, "/notes/1", &[]).await.status, 200);
    let access = captured.access_events();
    assert_eq!(access.len(), 3, "{access:#?}");
    assert_eq!(access[0]["enduser.id"], "user-7");
    assert_eq!(access[1]["enduser.id"], "user-8", "kept on the 403 problem");
    assert!(access[2].get("enduser.id").is_none(), "{}", access[2]);
}

/// `enduser.id` for requests that end without a response from inside the auth layer: one
/// timed out (503), one whose handler panicked (500), one whose client hung up while it was
/// handled (`cancelled`). The auth layer leaves the principal in the request's
/// `PrincipalSlot`; an anonymous request still has none.
#[tokio::test]
async fn the_principal_is_logged_for_requests_ended_without_its_response() {
    const SECRET: &[u8] = b"Qm4vX8zL2nB7cR5tY1wK9pE3uH6jD0fA-principal";
    let verifier = hs256_verifier(SECRET);
    let token = hs256_token(SECRET, serde_json::json!({ "sub": "user-9" }));
    let bearer = format!("authorization: Bearer {token}");

    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    // Told when its handler runs, that is once the auth layer has admitted the request.
    let handled = std::sync::Arc::new(tokio::sync::Notify::new());
    let hang = {
        let handled = handled.clone();
        move || async move {
            handled.notify_one();
            std::future::pending::<&'static str>().await
        }
    };
    let app = Router::new()
        .route("/slow", get(std::future::pending::<&'static str>))
        .route("/hang", get(hang))
        .route("/panic", get(panicking))
        .layer(AuthLayer::new(verifier))
        .layer(
            Hardening::strict()
                .timeout(Duration::from_millis(200))
                .unwrap(),
        );
    let addr = serve(app).await;
    assert_eq!(http_get(addr, "/slow", &[&bearer]).await.status, 503);
    captured.wait_for_access_events(1).await;
    assert_eq!(http_get(addr, "/panic", &[&bearer]).await.status, 500);
    captured.wait_for_access_events(2).await;
    assert_eq!(http_get(addr, "/slow", &[]).await.status, 503);
    captured.wait_for_access_events(3).await;
    // Hung up while it is handled, before the timeout: the server drops the request.
    let request = format!("GET /hang HTTP/1.1\r\nhost: localhost\r\n{bearer}\r\n\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::timeout(EXCHANGE_LIMIT, handled.notified())
        .await
        .expect("the handler runs");
    drop(stream);
    let access = captured.wait_for_access_events(4).await;
    assert_eq!(access.len(), 4, "{access:#?}");
    assert_eq!(access[0]["http.response.status_code"].as_u64(), Some(503));
    assert_eq!(
        access[0]["enduser.id"], "user-9",
        "timed out: {}",
        access[0]
    );
    assert_eq!(access[1]["http.response.status_code"].as_u64(), Some(500));
    assert_eq!(access[1]["enduser.id"], "user-9", "panicked: {}", access[1]);
    assert!(
        access[2].get("enduser.id").is_none(),
        "anonymous: {}",
        access[2]
    );
    assert_eq!(access[3]["error.type"], "cancelled", "{}", access[3]);
    assert_eq!(
        access[3]["enduser.id"], "user-9",
        "cancelled: {}",
        access[3]
    );
    assert!(!captured.text().contains(&token), "{}", captured.text());
}

/// `client.address`: the right-most address not of a trusted proxy behind one, the peer
/// otherwise (a client's `X-Forwarded-For` ignored).
#[tokio::test]
async fn the_client_address_is_the_right_most_untrusted_hop() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let behind_proxies = Hardening::strict()
        .trusted_proxies(["127.0.0.1", "10.0.0.0/8"])
        .unwrap();
    let proxied = serve(notes().layer(behind_proxies)).await;
    let direct = serve(notes().layer(Hardening::strict())).await;
    let xff = "x-forwarded-for: 198.51.100.1, 203.0.113.9, 10.1.2.3";
    assert_eq!(http_get(proxied, "/notes/1", &[xff]).await.status, 200);
    assert_eq!(http_get(direct, "/notes/1", &[xff]).await.status, 200);
    let access = captured.access_events();
    assert_eq!(access.len(), 2, "{access:#?}");
    assert_eq!(access[0]["client.address"], "203.0.113.9");
    assert_eq!(access[1]["client.address"], "127.0.0.1");
}

/// Sends `request`, lets the server read it, and hangs up before reading any answer.
async fn send_and_hang_up(addr: SocketAddr, request: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    drop(stream);
}

async fn panicking() -> &'static str {
    panic!("the handler panicked")
}

/// One event for every way a request ends; none for a health probe (by default). Each step
/// waits for its event before the next, and the counts are checked as they grow, so a
/// second event for any request shows up at the step that logged it.
#[tokio::test]
async fn one_event_per_request_however_it_ends() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let app = notes()
        .route("/panic", get(panicking))
        .route("/slow", get(std::future::pending::<&'static str>))
        .route("/upgrade", get(echo_upgrade));
    let hardening = Hardening::strict()
        .body_limit(16)
        .unwrap()
        .timeout(Duration::from_millis(200))
        .unwrap()
        .cors(Cors::allow_origins(["https://app.example"]).unwrap());
    let addr = serve(app.layer(hardening)).await;
    let mut expected: Vec<(&str, Option<u64>)> = Vec::new();
    // The events of the requests just made, with their statuses: all there, and no more.
    let step = async |expected: &mut Vec<(&str, Option<u64>)>,
                      made: &[(&'static str, Option<u64>)]| {
        expected.extend_from_slice(made);
        let access = captured.wait_for_access_events(expected.len()).await;
        for (event, (what, status)) in access.iter().zip(expected.iter()) {
            assert_eq!(
                event["http.response.status_code"].as_u64(),
                *status,
                "{what}: {event}"
            );
        }
        assert_eq!(access.len(), expected.len(), "{made:?}: {access:#?}");
    };

    assert_eq!(http_get(addr, "/notes/1", &[]).await.status, 200);
    step(&mut expected, &[("200", Some(200))]).await;
    assert_eq!(http_get(addr, "/nowhere", &[]).await.status, 404);
    step(&mut expected, &[("404", Some(404))]).await;
    assert_eq!(
        send(addr, "DELETE", "/notes/1", &[], None).await.status,
        405
    );
    step(&mut expected, &[("405", Some(405))]).await;
    let chunked = exchange(
        addr,
        b"POST /notes/1 HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n20\r\n0123456789abcdef0123456789abcdef\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(chunked.status, 413);
    step(&mut expected, &[("413", Some(413))]).await;
    assert_eq!(http_get(addr, "/slow", &[]).await.status, 503);
    step(&mut expected, &[("503", Some(503))]).await;
    assert_eq!(http_get(addr, "/panic", &[]).await.status, 500);
    step(&mut expected, &[("panic", Some(500))]).await;
    let preflight = send(
        addr,
        "OPTIONS",
        "/notes/1",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ],
        None,
    )
    .await;
    assert_eq!(preflight.status, 204);
    step(&mut expected, &[("preflight", Some(204))]).await;

    // Health probes: none. The next request's event is the next one logged.
    assert_eq!(http_get(addr, "/healthz", &[]).await.status, 200);
    assert_eq!(http_get(addr, "/readyz", &[]).await.status, 200);
    assert_eq!(http_get(addr, "/notes/2", &[]).await.status, 200);
    step(&mut expected, &[("after the probes", Some(200))]).await;

    // A client that hangs up in the middle of its body: one event, whatever ends it first
    // (the handler's 400 for the unreadable body, or the dropped request's `cancelled`).
    send_and_hang_up(
        addr,
        b"POST /notes/1 HTTP/1.1\r\nhost: localhost\r\ncontent-length: 12\r\n\r\n0123",
    )
    .await;
    let access = captured.wait_for_access_events(expected.len() + 1).await;
    let hung_up = access.last().unwrap().clone();
    let status = hung_up["http.response.status_code"].as_u64();
    assert!(
        status.is_some() || hung_up["error.type"] == "cancelled",
        "{hung_up}"
    );
    step(&mut expected, &[("hang-up mid-body", status)]).await;

    // Two pipelined requests on one connection: two events, under the ids answered.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /notes/3 HTTP/1.1\r\nhost: localhost\r\n\r\n\
              GET /notes/4 HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(EXCHANGE_LIMIT, stream.read_to_end(&mut raw))
        .await
        .expect("both answers")
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let ids: Vec<&str> = raw
        .lines()
        .filter_map(|l| l.strip_prefix("x-request-id: "))
        .collect();
    assert_eq!(ids.len(), 2, "{raw}");
    step(
        &mut expected,
        &[("pipelined 1", Some(200)), ("pipelined 2", Some(200))],
    )
    .await;
    let access = captured.access_events();
    let n = access.len();
    assert_eq!(access[n - 2]["request_id"], ids[0]);
    assert_eq!(access[n - 1]["request_id"], ids[1]);

    // An upgraded connection: one event for the 101, none for what then goes over it, a
    // request's bytes included.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /upgrade HTTP/1.1\r\nhost: localhost\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(EXCHANGE_LIMIT, stream.read_u8())
            .await
            .expect("a response head")
            .unwrap();
        head.push(byte);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
    let tunnelled = b"GET /notes/5 HTTP/1.1\r\nhost: localhost\r\n\r\n";
    stream.write_all(tunnelled).await.unwrap();
    let mut echoed = vec![0u8; tunnelled.len()];
    tokio::time::timeout(EXCHANGE_LIMIT, stream.read_exact(&mut echoed))
        .await
        .expect("the echo")
        .unwrap();
    assert_eq!(echoed, tunnelled);
    drop(stream);
    step(&mut expected, &[("101", Some(101))]).await;

    // A last request: nothing more was logged for any of the above.
    assert_eq!(http_get(addr, "/notes/6", &[]).await.status, 200);
    step(&mut expected, &[("last", Some(200))]).await;
}

/// A 429 from the rate limit is logged once, as the request it refused.
#[tokio::test]
async fn a_rate_limited_request_is_logged_once() {
    use hardening_core::ratelimit::{Policy, Quota, RateLimiter};
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let one = NonZeroU32::new(1).unwrap();
    let limiter = RateLimiter::new([Policy::per_client_ip("one", Quota::per_hour(one))]);
    let addr = serve(notes().layer(Hardening::strict().rate_limit(limiter).unwrap())).await;
    assert_eq!(http_get(addr, "/notes/1", &[]).await.status, 200);
    assert_eq!(http_get(addr, "/notes/1", &[]).await.status, 429);
    let access = captured.access_events();
    assert_eq!(access.len(), 2, "{access:#?}");
    assert_eq!(access[1]["http.response.status_code"].as_u64(), Some(429));
    assert_eq!(access[1]["http.route"], "/notes/{id}");
}

/// What a [`Scripted`] body does next.
#[derive(Debug)]
enum Step {
    Chunk(&'static str),
    /// A chunk, after which the body says it has ended (hyper then stops polling it).
    Last(&'static str),
    /// Trailers, the last frame there can be (hyper polls no further).
    Trailers,
    Fail,
    Panic,
}

/// A streamed body (size unknown) that does what the test sends it; it ends when the
/// sender is dropped, or after [`Step::Last`].
struct Scripted(tokio::sync::mpsc::UnboundedReceiver<Step>, bool);

impl http_body::Body for Scripted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.1 {
            return std::task::Poll::Ready(None);
        }
        let data = |text: &'static str| {
            Some(Ok(http_body::Frame::data(Bytes::from_static(
                text.as_bytes(),
            ))))
        };
        self.0.poll_recv(cx).map(|step| match step? {
            Step::Chunk(text) => data(text),
            Step::Last(text) => {
                self.1 = true;
                data(text)
            }
            Step::Trailers => Some(Ok(http_body::Frame::trailers(
                [(
                    http::header::HeaderName::from_static("x-checksum"),
                    http::HeaderValue::from_static("abc"),
                )]
                .into_iter()
                .collect(),
            ))),
            Step::Fail => Some(Err(std::io::Error::other("the upstream went away"))),
            Step::Panic => panic!("the stream panicked"),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.1
    }
}

type BodySlot = std::sync::Arc<std::sync::Mutex<Option<Scripted>>>;

/// `GET /stream`, whose body is the [`Scripted`] body put in the slot, with the
/// `Content-Length` `?length=` names, if any (a proxied stream's, a file's).
fn stream_route(slot: &BodySlot) -> Router {
    let taken = slot.clone();
    Router::new().route(
        "/stream",
        get(move |uri: http::Uri| async move {
            let body = taken
                .lock()
                .unwrap()
                .take()
                .expect("a body for the request");
            let mut response = http::Response::new(axum::body::Body::new(body));
            if let Some(length) = uri.query().and_then(|q| q.strip_prefix("length=")) {
                let length = http::HeaderValue::from_str(length).unwrap();
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_LENGTH, length);
            }
            response
        }),
    )
}

/// Serves [`stream_route`] behind `Hardening::strict()`.
async fn serve_stream() -> (SocketAddr, BodySlot) {
    let slot = BodySlot::default();
    let app = stream_route(&slot).layer(Hardening::strict());
    (serve(app).await, slot)
}

/// Sends `GET target` for a body that has sent `first`, and reads until `first` arrives:
/// the head is out. Returns the connection, what was read, and the body's driver.
async fn stream_started(
    addr: SocketAddr,
    slot: &BodySlot,
    target: &str,
) -> (TcpStream, String, tokio::sync::mpsc::UnboundedSender<Step>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tx.send(Step::Chunk("first")).unwrap();
    *slot.lock().unwrap() = Some(Scripted(rx, false));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\nhost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut read = Vec::new();
    read_until(&mut stream, &mut read, "first").await;
    (stream, String::from_utf8_lossy(&read).into_owned(), tx)
}

/// Reads from `stream` onto `read` until it holds `text`.
async fn read_until(stream: &mut TcpStream, read: &mut Vec<u8>, text: &str) {
    while !String::from_utf8_lossy(read).contains(text) {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(EXCHANGE_LIMIT, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {text:?}: {:?}", String::from_utf8_lossy(read)))
            .unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(read));
        read.extend_from_slice(&buf[..n]);
    }
}

/// Reads until the server closes the connection or ends the chunked body.
async fn read_to_end_of_body(stream: &mut TcpStream) -> String {
    let mut read = Vec::new();
    loop {
        let mut buf = [0u8; 1024];
        let n = match tokio::time::timeout(EXCHANGE_LIMIT, stream.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0, // reset by the server: cut off
            Err(_) => panic!("no end: {:?}", String::from_utf8_lossy(&read)),
        };
        read.extend_from_slice(&buf[..n]);
        if n == 0 || read.ends_with(b"0\r\n\r\n") {
            return String::from_utf8_lossy(&read).into_owned();
        }
    }
}

/// A streamed response (server-sent events, a model's tokens) is logged when its body ends,
/// not when its head goes out: with the status sent and, when the body did not end as it
/// should, why (`error.type`). Before, the event was written with the head: a stream that
/// then panicked, failed or was abandoned by its client was logged as a plain 200, and its
/// duration was the time to its first byte.
#[tokio::test]
async fn a_streamed_response_is_logged_when_its_body_ends() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let (addr, slot) = serve_stream().await;

    // Ends as it should: nothing logged while it runs, one event once it has ended.
    let (mut stream, head, tx) = stream_started(addr, &slot, "/stream").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        captured.access_events().is_empty(),
        "logged while the body still runs: {:#?}",
        captured.access_events()
    );
    tx.send(Step::Chunk("second")).unwrap();
    drop(tx);
    let rest = read_to_end_of_body(&mut stream).await;
    assert!(rest.contains("second"), "{rest}");
    let access = captured.wait_for_access_events(1).await;
    assert_eq!(access.len(), 1, "{access:#?}");
    assert_eq!(access[0]["http.response.status_code"].as_u64(), Some(200));
    assert!(access[0].get("error.type").is_none(), "{}", access[0]);
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap();
    assert_eq!(access[0]["request_id"], id);

    // Says it has ended with its last chunk, so hyper does not poll it again: ended as it
    // should, not `cancelled`.
    let (mut stream, _, tx) = stream_started(addr, &slot, "/stream").await;
    let before = captured.access_events().len();
    tx.send(Step::Last("last")).unwrap();
    let rest = read_to_end_of_body(&mut stream).await;
    assert!(rest.contains("last"), "{rest}");
    let access = captured.wait_for_access_events(before + 1).await;
    assert!(
        access[before].get("error.type").is_none(),
        "{}",
        access[before]
    );
    drop(tx);

    // Panics, or fails, after its head: the status sent, and what happened.
    for (step, error_type) in [(Step::Panic, "panicked"), (Step::Fail, "body_error")] {
        let (mut stream, _, tx) = stream_started(addr, &slot, "/stream").await;
        let before = captured.access_events().len();
        tx.send(step).unwrap();
        read_to_end_of_body(&mut stream).await;
        let access = captured.wait_for_access_events(before + 1).await;
        let event = &access[before];
        assert_eq!(event["http.response.status_code"].as_u64(), Some(200));
        assert_eq!(event["error.type"], error_type, "{event}");
        assert_eq!(access.len(), before + 1, "{access:#?}");
    }

    // The client hangs up mid-stream: `cancelled`, beside the status sent. hyper notices
    // when a write fails, so chunks keep coming (a bounded number) until the event is in.
    let (stream, _, tx) = stream_started(addr, &slot, "/stream").await;
    let before = captured.access_events().len();
    drop(stream);
    for _ in 0..500 {
        if captured.access_events().len() > before || tx.send(Step::Chunk("more")).is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let access = captured.wait_for_access_events(before + 1).await;
    let event = &access[before];
    assert_eq!(event["http.response.status_code"].as_u64(), Some(200));
    assert_eq!(event["error.type"], "cancelled", "{event}");
    assert_eq!(access.len(), before + 1, "{access:#?}");

    // `HEAD`: no body is sent, so the event is written with the head, without an error.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    *slot.lock().unwrap() = Some(Scripted(rx, false));
    let before = captured.access_events().len();
    let head = send(addr, "HEAD", "/stream", &[], None).await;
    assert_eq!(head.status, 200);
    let access = captured.wait_for_access_events(before + 1).await;
    let event = &access[before];
    assert_eq!(event["http.response.status_code"].as_u64(), Some(200));
    assert!(event.get("error.type").is_none(), "{event}");
    drop(tx);
    assert_eq!(captured.access_events().len(), before + 1);
}

/// A stream hyper stops polling without a final `None` ended as it should all the same:
/// after trailers (always the last frame), and, over HTTP/1, once the `Content-Length` the
/// service declared is written (a proxied stream's, a file's), or at once for a declared 0.
/// Each was logged `cancelled`, as if the client had gone away.
#[tokio::test]
async fn a_stream_hyper_stops_polling_at_its_end_is_not_logged_cancelled() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let (addr, slot) = serve_stream().await;
    let ended = async |what: &str, before: usize| {
        let access = captured.wait_for_access_events(before + 1).await;
        let event = &access[before];
        assert_eq!(
            event["http.response.status_code"].as_u64(),
            Some(200),
            "{what}"
        );
        assert!(event.get("error.type").is_none(), "{what}: {event}");
        assert_eq!(access.len(), before + 1, "{what}: {access:#?}");
    };

    let before = captured.access_events().len();
    let (mut stream, _, tx) = stream_started(addr, &slot, "/stream").await;
    tx.send(Step::Trailers).unwrap();
    read_to_end_of_body(&mut stream).await;
    ended("after trailers", before).await;
    drop(tx);

    // `first` and `second`: the 11 bytes declared. The body has more, unsent.
    let before = captured.access_events().len();
    let (mut stream, head, tx) = stream_started(addr, &slot, "/stream?length=11").await;
    assert!(head.contains("content-length: 11"), "{head}");
    tx.send(Step::Chunk("second")).unwrap();
    read_until(&mut stream, &mut head.into_bytes(), "second").await;
    ended("at the declared length", before).await;
    drop(tx);

    let before = captured.access_events().len();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    *slot.lock().unwrap() = Some(Scripted(rx, false));
    let empty = http_get(addr, "/stream?length=0", &[]).await;
    assert_eq!(empty.status, 200);
    ended("a declared length of 0", before).await;
    drop(tx);
}

/// A streamed body that panics under a `Hardening` nested inside another is logged
/// `panicked`, as without the nesting: the inner layer caught the panic and ended the body
/// with an error, which the outer one, which writes the access log, logged as `body_error`.
#[tokio::test]
async fn a_stream_that_panics_under_nested_hardening_is_logged_panicked() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let slot = BodySlot::default();
    let app = Router::new()
        .nest("/api", stream_route(&slot).layer(Hardening::strict()))
        .layer(Hardening::strict());
    let addr = serve(app).await;
    let before = captured.access_events().len();
    let (mut stream, _, tx) = stream_started(addr, &slot, "/api/stream").await;
    tx.send(Step::Panic).unwrap();
    read_to_end_of_body(&mut stream).await;
    let access = captured.wait_for_access_events(before + 1).await;
    let event = &access[before];
    assert_eq!(event["http.response.status_code"].as_u64(), Some(200));
    assert_eq!(event["error.type"], "panicked", "{event}");
    assert_eq!(access.len(), before + 1, "{access:#?}");
}

/// A plain tower service under `Hardening` whose future fails (an `Err`, not a response):
/// the error goes on to the server, which closes the connection without an answer. It was
/// logged `cancelled`, as if the client had gone away; it is `service_error`, and the error's
/// text is not logged (it may hold secrets, and `Hardening` cannot know it does not).
#[tokio::test]
async fn a_service_error_is_not_logged_as_the_client_going_away() {
    use tower::ServiceExt as _;
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let service = tower::ServiceBuilder::new()
        .layer(Hardening::strict())
        .service(tower::service_fn(
            |_: http::Request<axum::body::Body>| async {
                Err::<http::Response<axum::body::Body>, _>(std::io::Error::other(
                    "db password=hunter2 down",
                ))
            },
        ));
    let request = http::Request::get("/report").body(axum::body::Body::empty());
    let result = service.oneshot(request.unwrap()).await;
    assert!(result.is_err(), "the error goes on to the server");
    let access = captured.access_events();
    assert_eq!(access.len(), 1, "{access:#?}");
    assert_eq!(access[0]["error.type"], "service_error", "{}", access[0]);
    assert!(
        access[0].get("http.response.status_code").is_none(),
        "{}",
        access[0]
    );
    assert!(!captured.text().contains("hunter2"), "{}", captured.text());
}
