//! `hardening_core::Server`: peer addresses, slow-header and idle timeouts, graceful drain.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hardening_core::{ClientIp, ConfigError, Hardening, Server};
use hardening_tests::{Captured, EXCHANGE_LIMIT, echo_upgrade, exchange, read_reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

fn app() -> Router {
    Router::new()
        .route(
            "/ip",
            get(|ClientIp(ip): ClientIp| async move { ip.to_string() }),
        )
        .route(
            "/echo-len",
            axum::routing::post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/work",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(4)).await;
                "done"
            }),
        )
        .route("/echo-upgrade", get(echo_upgrade))
        .layer(Hardening::strict())
}

/// A protocol upgrade (WebSocket) was answered 101 and then the connection closed: hyper
/// serves upgrades only when asked to, and `Server` did not ask. Swapping `axum::serve` for
/// `Server` broke every WebSocket route. The upgraded connection is now handed over.
#[tokio::test]
async fn a_protocol_upgrade_is_handed_over() {
    let (addr, _stop, _handle) = start(Server::new()).await;
    let _upgraded = upgraded(addr).await;
}

/// An upgraded connection is its route's: no request head is read on it, so neither the
/// header-read timeout (timed from a head's first byte) nor the idle timeout closes it.
#[tokio::test]
async fn an_upgraded_connection_outlives_the_header_read_and_idle_timeouts() {
    let (addr, _stop, _handle) = start_with_the_shortest_timeouts().await;
    let mut upgraded = upgraded(addr).await;
    tokio::time::sleep(2 * Server::MIN_HEADER_READ_TIMEOUT).await;
    upgraded.write_all(b"pong").await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(EXCHANGE_LIMIT, upgraded.read_exact(&mut echoed))
        .await
        .expect("no echo")
        .expect("the upgraded connection was closed");
    assert_eq!(&echoed, b"pong");
}

/// A connection to `/echo-upgrade`, upgraded, and shown to echo.
async fn upgraded(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /echo-upgrade HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(EXCHANGE_LIMIT, stream.read(&mut byte))
            .await
            .expect("no response head")
            .unwrap();
        assert_eq!(n, 1, "closed before the head's end: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(EXCHANGE_LIMIT, stream.read_exact(&mut echoed))
        .await
        .expect("no echo")
        .expect("the upgraded connection was closed");
    assert_eq!(&echoed, b"ping");
    stream
}

/// A running server: its address, the sender that stops it, its task.
type Started = (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

async fn start(server: Server) -> Started {
    start_app(server, app()).await
}

/// A running server of `app`.
async fn start_app(server: Server, app: Router) -> Started {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        server
            .serve_until(listener, app, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop, handle)
}

#[tokio::test]
async fn peer_address_reaches_client_ip() {
    let (addr, _stop, _handle) = start(Server::new()).await;
    let reply = exchange(
        addr,
        b"GET /ip HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "127.0.0.1"));
}

/// A server whose header-read timeout is the shortest allowed (1 s), its idle timeout the
/// default (75 s).
async fn start_with_the_shortest_header_timeout() -> Started {
    start(shortest_header_timeout()).await
}

/// A server whose header-read and idle timeouts are the shortest allowed (1 s each).
async fn start_with_the_shortest_timeouts() -> Started {
    start(
        shortest_header_timeout()
            .idle_timeout(Server::MIN_IDLE_TIMEOUT)
            .unwrap(),
    )
    .await
}

/// The shortest header-read timeout (1 s), the other settings the defaults.
fn shortest_header_timeout() -> Server {
    Server::new()
        .header_read_timeout(Server::MIN_HEADER_READ_TIMEOUT)
        .unwrap()
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let (addr, _stop, _handle) = start_with_the_shortest_header_timeout().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Headers that never end.
    stream
        .write_all(b"GET /ip HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(EXCHANGE_LIMIT, stream.read_to_end(&mut rest))
        .await
        .expect("the server kept a slow client's connection open")
        .unwrap();
    assert!(!String::from_utf8_lossy(&rest).contains("127.0.0.1"));
    // Slowloris is seen: one security event with the client's address.
    let mut events = Vec::new();
    for _ in 0..50 {
        events = captured.security_events();
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(events.len(), 1, "{}", captured.text());
    assert_eq!(events[0].0, "head_timed_out", "{events:?}");
    assert_eq!(
        events[0].1["fields"]["client.address"], "127.0.0.1",
        "{events:?}"
    );
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let (addr, stop, handle) = start(Server::new().drain_timeout(Duration::from_secs(5))).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /work HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(()).unwrap();
    let reply = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut stream))
        .await
        .unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "done"),
        "in-flight request finished"
    );
    tokio::time::timeout(EXCHANGE_LIMIT, handle)
        .await
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
    // The operator sees the drain end, and how long it took.
    let text = captured.text();
    let drained = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["fields"]["message"] == "drained: every open connection finished")
        .unwrap_or_else(|| panic!("no drained event in {text}"));
    let secs = drained["fields"]["drain_secs"].as_f64().unwrap();
    assert!(secs > 0.0 && secs < 5.0, "{drained}");
}

#[tokio::test]
async fn shutdown_closes_connections_still_open_at_the_drain_deadline() {
    let (addr, stop, handle) = start(Server::new().drain_timeout(Duration::from_millis(200))).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(2), handle)
        .await
        .expect("serve_until returns at the drain deadline")
        .unwrap();
    // Past the deadline: the connection is closed, not answered later.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the connection is still open after the drain deadline and serve_until returned"
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains("done"),
        "the request ran on after the drain deadline"
    );
}

/// An event stream that waits for the service's shutdown (README, "Streamed responses"):
/// one `open` event, then nothing until `shutting_down` turns true, then its end.
struct EndsAtShutdown {
    opened: bool,
    shutdown: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

impl http_body::Body for EndsAtShutdown {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if !std::mem::replace(&mut self.opened, true) {
            let open = bytes::Bytes::from_static(b"data: open\n\n");
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(open))));
        }
        self.shutdown.as_mut().poll(cx).map(|()| None)
    }
}

/// The README's recipe for streams at shutdown: a shutdown future of the app's own, given to
/// `serve_until`, tells the open streams to end, so the drain finds them done instead of
/// waiting out its deadline (30 s by default, which an open event stream otherwise fills).
#[tokio::test]
async fn streams_told_of_the_shutdown_end_before_the_drain_deadline() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let (shutting_down, _) = tokio::sync::watch::channel(false);
    let events = shutting_down.clone();
    let app = Router::new()
        .route(
            "/events",
            get(move || {
                let mut told = events.subscribe();
                let shutdown = Box::pin(async move {
                    let _ = told.wait_for(|down| *down).await;
                });
                let body = EndsAtShutdown {
                    opened: false,
                    shutdown,
                };
                async move {
                    (
                        [(http::header::CONTENT_TYPE, "text/event-stream")],
                        axum::body::Body::new(body),
                    )
                }
            }),
        )
        .layer(Hardening::strict());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(Server::new().serve_until(listener, app, async move {
        let _ = stopped.await;
        let _ = shutting_down.send(true);
    }));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("data: open") {
        let n = tokio::time::timeout(EXCHANGE_LIMIT, stream.read(&mut buf))
            .await
            .expect("the stream's first event")
            .unwrap();
        assert_ne!(n, 0, "closed before the first event");
        seen.extend_from_slice(&buf[..n]);
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve_until returns once the stream has ended, long before the drain deadline")
        .unwrap()
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut rest))
        .await
        .expect("the connection is closed")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&rest).ends_with("0\r\n\r\n"),
        "the stream ended with its last chunk, not cut off: {:?}",
        String::from_utf8_lossy(&rest)
    );
    let access: Vec<serde_json::Value> = captured
        .json_lines()
        .into_iter()
        .filter(|line| line["target"] == hardening_core::ACCESS_TARGET)
        .collect();
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(access[0]["fields"]["http.response.status_code"], 200);
    assert!(
        access[0]["fields"]["error.type"].is_null(),
        "logged as a stream that ended, not as cancelled: {access:?}"
    );
}

/// The warning at the drain deadline gives it in seconds as a float. It gave whole seconds:
/// a deadline under one second was logged as 0.
#[tokio::test]
async fn the_drain_deadline_warning_keeps_a_deadline_under_a_second() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let (addr, stop, handle) = start(Server::new().drain_timeout(Duration::from_millis(250))).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(2), handle)
        .await
        .expect("serve_until returns at the drain deadline")
        .unwrap();
    let text = captured.text();
    let warning = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| {
            v["fields"]["message"] == "drain deadline passed; closing the remaining connections"
        })
        .unwrap_or_else(|| panic!("no drain-deadline warning in {text}"));
    assert_eq!(warning["fields"]["deadline_secs"], 0.25, "{warning}");
}

/// `Duration::MAX` as the header-read timeout (none, in effect) used to overflow hyper's
/// clock arithmetic: every connection panicked and was reset.
#[tokio::test]
async fn a_header_read_timeout_of_duration_max_serves() {
    let (addr, _stop, _handle) =
        start(Server::new().header_read_timeout(Duration::MAX).unwrap()).await;
    let reply = exchange(
        addr,
        b"GET /ip HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
}

/// A header-read timeout too short for a client to send its request in is refused when
/// the server is configured. Zero was taken: a request sent 2 ms after connecting, or the
/// second on a kept-alive connection, had its connection closed without a response.
#[test]
fn header_read_timeouts_too_short_to_answer_are_refused() {
    for short in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_millis(1),
        Duration::from_millis(999),
    ] {
        let err = Server::new().header_read_timeout(short).unwrap_err();
        assert_eq!(
            err,
            ConfigError::HeaderReadTimeoutTooShort {
                given: short,
                minimum: Duration::from_secs(1),
            }
        );
        let message = err.to_string();
        assert!(message.contains("use at least 1s"), "{message}");
        assert!(message.contains("header_read_timeout"), "{message}");
    }
    for long_enough in [Server::MIN_HEADER_READ_TIMEOUT, Duration::from_secs(10)] {
        assert!(Server::new().header_read_timeout(long_enough).is_ok());
    }
}

/// A header-read, idle or send timeout longer than its default loosens it, and was taken without a
/// word: each is logged when set, with the setting, the value and the default. The defaults,
/// shorter ones and a long drain deadline (it only delays the shutdown) are not logged.
#[test]
fn server_timeouts_longer_than_their_defaults_are_logged_as_loosenings() {
    let loosened = |setup: &dyn Fn() -> Server| {
        let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
        let _server = setup();
        drop(guard);
        captured.loosenings()
    };
    let quiet = loosened(&|| {
        Server::new()
            .header_read_timeout(Duration::from_secs(10))
            .unwrap()
            .header_read_timeout(Duration::from_secs(2))
            .unwrap()
            .idle_timeout(Duration::from_secs(75))
            .unwrap()
            .idle_timeout(Duration::from_secs(5))
            .unwrap()
            .send_timeout(Duration::from_secs(60))
            .unwrap()
            .send_timeout(Duration::from_secs(5))
            .unwrap()
            .drain_timeout(Duration::from_secs(600))
    });
    assert_eq!(quiet, []);
    let loose = loosened(&|| {
        Server::new()
            .header_read_timeout(Duration::from_secs(600))
            .unwrap()
            .idle_timeout(Duration::from_secs(600))
            .unwrap()
            .send_timeout(Duration::from_secs(3600))
            .unwrap()
    });
    let warning = |setting: &str, value: &str, default: &str| {
        (
            setting.to_owned(),
            format!("hardening loosened: {setting} is {value}, longer than the default {default}"),
        )
    };
    assert_eq!(
        loose,
        [
            warning("Server::header_read_timeout", "600s", "10s"),
            warning("Server::idle_timeout", "600s", "75s"),
            warning("Server::send_timeout", "3600s", "60s"),
        ]
    );
}

/// A connection that sends nothing has the header-read timeout to begin its first request,
/// not the (longer) idle timeout; one idle after a response has the idle timeout.
#[tokio::test]
async fn silent_and_idle_connections_are_closed() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let (addr, _stop, _handle) = start_with_the_shortest_header_timeout().await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(EXCHANGE_LIMIT, silent.read_to_end(&mut rest))
        .await
        .expect("a connection that sent nothing was kept open past its header-read timeout")
        .unwrap();
    assert!(rest.is_empty());

    let (addr, _stop, _handle) = start_with_the_shortest_timeouts().await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /ip HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let reply = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut idle))
        .await
        .expect("an idle keep-alive connection was kept open");
    assert_eq!(reply.status, 200);
    // After the response, a blank line (RFC 9112 §2.2) begins no request either.
    idle.write_all(b"\r\n").await.unwrap();
    closed_quietly(&mut idle, &captured, "silent or idle connections").await;
}

/// A keep-alive connection idle between requests was closed by the header-read timeout: a
/// proxy in front that keeps upstream connections open longer (nginx, a cloud load balancer:
/// 60 s) sent its next request on a connection the server was closing and answered 502.
/// Idle now has a timeout of its own (`Server::idle_timeout`, 75 s by default).
#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_read_timeout() {
    let (addr, _stop, _handle) = start_with_the_shortest_header_timeout().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let idle = 2 * Server::MIN_HEADER_READ_TIMEOUT;
    for round in 0..2 {
        if round == 1 {
            tokio::time::sleep(idle).await;
        }
        let reply = tokio::time::timeout(
            EXCHANGE_LIMIT,
            reply_unless_closed(&mut stream, b"GET /ip HTTP/1.1\r\nhost: x\r\n\r\n"),
        )
        .await
        .expect("no answer");
        let reply = reply.unwrap_or_else(|| {
            panic!(
                "the server closed a keep-alive connection idle for {idle:?}, past its \
                 header-read timeout ({:?}) and within its idle timeout",
                Server::MIN_HEADER_READ_TIMEOUT
            )
        });
        assert_eq!(reply.status, 200, "round {round}: {reply:?}");
    }
}

/// The idle timeout closes a keep-alive connection that outlived the header-read timeout,
/// with no event.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let idle = 2 * Server::MIN_HEADER_READ_TIMEOUT;
    let (addr, _stop, _handle) = start(
        shortest_header_timeout()
            // Twice the wait below: room for a slow machine.
            .idle_timeout(2 * idle)
            .unwrap(),
    )
    .await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = b"GET /ip HTTP/1.1\r\nhost: x\r\n\r\n";
    let first = reply_unless_closed(&mut stream, request).await;
    assert_eq!(first.map(|r| r.status), Some(200));
    tokio::time::sleep(idle).await;
    let second = reply_unless_closed(&mut stream, request).await;
    assert_eq!(
        second.map(|r| r.status),
        Some(200),
        "closed within the idle timeout"
    );
    closed_quietly(&mut stream, &captured, "an idle keep-alive connection").await;
}

/// The next request's head on a kept-alive connection has the header-read timeout from its
/// first byte, not the idle timeout: a client that begins one and trickles or stalls is cut
/// off, and reported, long before the idle timeout (75 s here).
#[tokio::test]
async fn a_slow_head_on_a_kept_alive_connection_is_cut_at_the_header_read_timeout() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let (addr, _stop, _handle) = start_with_the_shortest_header_timeout().await;
    for trickle in [false, true] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let first = reply_unless_closed(&mut stream, b"GET /ip HTTP/1.1\r\nhost: x\r\n\r\n").await;
        assert_eq!(first.map(|r| r.status), Some(200));
        // Idle for a moment first: the head's time starts at its first byte.
        tokio::time::sleep(Server::MIN_HEADER_READ_TIMEOUT / 2).await;
        stream.write_all(b"GET /ip HTTP/1.1\r\n").await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let trickling = tokio::spawn(async move {
            // At most 8 s of a byte every 100 ms (never a whole head).
            for _ in 0..80 {
                if !trickle {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                if writer.write_all(b"x").await.is_err() {
                    break;
                }
            }
            writer
        });
        let mut rest = Vec::new();
        let read = tokio::time::timeout(EXCHANGE_LIMIT, reader.read_to_end(&mut rest))
            .await
            .unwrap_or_else(|_| {
                panic!("a slow second head kept its connection (trickle: {trickle})")
            });
        // Closed (a reset, if trickled bytes were still coming).
        assert!(read.is_ok() || trickle, "trickle: {trickle}: {read:?}");
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
        trickling.abort();
        let mut events = Vec::new();
        for _ in 0..50 {
            events = captured.security_event_names();
            if events.len() == usize::from(trickle) + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            events,
            vec!["head_timed_out".to_owned(); usize::from(trickle) + 1],
            "trickle: {trickle}: {}",
            captured.text()
        );
    }
}

/// Sends `request` on `stream` and reads the reply; `None` if the server had closed the
/// connection (the request then goes unanswered).
async fn reply_unless_closed(
    stream: &mut TcpStream,
    request: &[u8],
) -> Option<hardening_tests::Reply> {
    // A write to a connection the server closed may still succeed (the kernel takes it).
    let _ = stream.write_all(request).await;
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(read_reply(stream).await),
    }
}

/// Waits for the server to close `stream` (its idle timeout), then checks that no
/// security event was logged: closing an idle connection is no attack.
async fn closed_quietly(stream: &mut TcpStream, captured: &Captured, what: &str) {
    let mut rest = Vec::new();
    tokio::time::timeout(EXCHANGE_LIMIT, stream.read_to_end(&mut rest))
        .await
        .expect("an idle keep-alive connection was kept open")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        captured.security_event_names(),
        Vec::<String>::new(),
        "{what}: {}",
        captured.text()
    );
}

/// A body the service does not read (a 405 here) is drained by hyper after the response,
/// and a body read in full comes in after its head: neither begins a head, so the idle
/// timeout that closes the connection afterwards is no event.
#[tokio::test]
async fn bodies_then_idle_keep_alive_are_no_event() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let (addr, _stop, _handle) = start_with_the_shortest_timeouts().await;
    let body = "x".repeat(12 * 1024);
    for (path, status) in [("/ip", 405), ("/echo-len", 200)] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let reply = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut stream))
            .await
            .unwrap();
        assert_eq!(reply.status, status, "{path}: {reply:?}");
        closed_quietly(&mut stream, &captured, path).await;
    }
}

/// With a connection cap held by connections that are all busy (a request head begun on
/// each), a connection past it waits until one closes, then is served; reaching the cap is
/// logged. (It waited so behind idle connections too: see the next test.)
#[tokio::test]
async fn connections_past_a_cap_of_busy_connections_wait_for_a_place() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let (addr, _stop, _handle) = start(Server::new().max_connections(2).unwrap()).await;
    let request = b"GET /ip HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let first = reply_unless_closed(&mut stream, request).await;
        assert_eq!(first.map(|r| r.status), Some(200));
        // The next request's head, begun.
        stream.write_all(b"GET /ip HTTP/1.1\r\n").await.unwrap();
        busy.push(stream);
    }
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(300), read_reply(&mut third)).await;
    assert!(waited.is_err(), "served past the cap: {waited:?}");
    // Neither busy connection was closed to make room: each finishes its request.
    for stream in &mut busy {
        let second = reply_unless_closed(stream, b"host: x\r\n\r\n").await;
        assert_eq!(second.map(|r| r.status), Some(200));
    }
    drop(busy.remove(0));
    let reply = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut third))
        .await
        .expect("not served once a place was free");
    assert_eq!(reply.status, 200);
    assert_eq!(
        captured
            .text()
            .matches("connection cap reached: new clients wait")
            .count(),
        1,
        "{}",
        captured.text()
    );
}

/// The cap held by idle keep-alive connections: N connections each send one request (as a
/// `GET /healthz` that is neither rate-limited nor logged) and then sit idle. A new client
/// waited for the idle timeout (75 s), for ever if each sent another request within it; the
/// only trace was the cap warning. Now the oldest idle connection is closed for it, as nginx
/// does when out of connections, and it is served at once; a connection with a request in
/// flight, one with a head begun and one idle since later are left alone, and the closing
/// is logged with how many were closed.
#[tokio::test]
async fn idle_connections_holding_the_cap_make_room_for_a_new_client() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let release = Arc::new(tokio::sync::Notify::new());
    let entered = Arc::new(tokio::sync::Notify::new());
    let (r, e) = (release.clone(), entered.clone());
    let held = app().route(
        "/held",
        get(move || async move {
            e.notify_one();
            r.notified().await;
            "released"
        }),
    );
    let (addr, _stop, _handle) = start_app(Server::new().max_connections(4).unwrap(), held).await;
    let request = b"GET /ip HTTP/1.1\r\nhost: x\r\n\r\n";
    // Opened first: a request head begun after one request.
    let mut head_begun = TcpStream::connect(addr).await.unwrap();
    let first = reply_unless_closed(&mut head_begun, request).await;
    assert_eq!(first.map(|r| r.status), Some(200));
    head_begun.write_all(b"GET /ip HTTP/1.1\r\n").await.unwrap();
    // Then a request in flight after one request.
    let mut in_flight = TcpStream::connect(addr).await.unwrap();
    let first = reply_unless_closed(&mut in_flight, request).await;
    assert_eq!(first.map(|r| r.status), Some(200));
    in_flight
        .write_all(b"GET /held HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(EXCHANGE_LIMIT, entered.notified())
        .await
        .expect("the held request reached its handler");
    // Then the oldest idle connection, after one request; and one idle since later.
    let mut oldest_idle = TcpStream::connect(addr).await.unwrap();
    let first = reply_unless_closed(&mut oldest_idle, request).await;
    assert_eq!(first.map(|r| r.status), Some(200));
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let first = reply_unless_closed(&mut idle, request).await;
    assert_eq!(first.map(|r| r.status), Some(200));
    // Let the server read the head begun before the next client comes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The cap is full: a new client.
    let started = std::time::Instant::now();
    let mut newcomer = TcpStream::connect(addr).await.unwrap();
    newcomer.write_all(request).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(2), read_reply(&mut newcomer))
        .await
        .expect("a new client waited past 2 s behind idle connections holding the cap");
    assert_eq!(reply.status, 200);
    eprintln!("the new client was answered in {:?}", started.elapsed());
    // The oldest idle connection made the room: closed, with nothing sent.
    let mut rest = Vec::new();
    tokio::time::timeout(EXCHANGE_LIMIT, oldest_idle.read_to_end(&mut rest))
        .await
        .expect("the oldest idle connection is still open")
        .unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    // The others are still served: the head begun is finished and answered, the request in
    // flight answered once released, the later idle connection takes another request.
    let second = reply_unless_closed(&mut head_begun, b"host: x\r\n\r\n").await;
    assert_eq!(
        second.map(|r| r.status),
        Some(200),
        "the head begun was cut"
    );
    release.notify_one();
    let released = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut in_flight))
        .await
        .expect("the request in flight was not answered");
    assert_eq!((released.status, released.body.as_str()), (200, "released"));
    let again = reply_unless_closed(&mut idle, request).await;
    assert_eq!(
        again.map(|r| r.status),
        Some(200),
        "the later idle one was closed too"
    );
    let closings: Vec<_> = captured
        .json_lines()
        .into_iter()
        .filter(|w| w["level"] == "WARN" && w["fields"]["closed_idle_connections"].is_u64())
        .collect();
    assert_eq!(closings.len(), 1, "{}", captured.text());
    assert_eq!(closings[0]["fields"]["closed_idle_connections"], 1);
    assert_eq!(closings[0]["fields"]["max_connections"], 4);
    assert_eq!(closings[0]["target"], "hardening::core");
    // Closing idle connections is no attack on its own: no security event.
    assert_eq!(captured.security_event_names(), Vec::<String>::new());
}

/// The attack over and over: the client that took the place of an idle connection goes idle
/// in its turn, and each new client past the cap closes one idle connection (the oldest)
/// and is served at once, however many come.
#[tokio::test]
async fn each_client_past_a_cap_of_idle_connections_is_served_at_once() {
    let (addr, _stop, _handle) = start(Server::new().max_connections(3).unwrap()).await;
    let request = b"GET /ip HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut open = Vec::new();
    for i in 0..10 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(2), read_reply(&mut stream))
            .await
            .unwrap_or_else(|_| panic!("client {i} waited past 2 s"));
        assert_eq!(reply.status, 200, "client {i}");
        open.push(stream);
    }
    // The three last are open; the seven before were closed, oldest first.
    for (i, stream) in open.iter_mut().enumerate() {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await;
        let closed = matches!(read, Ok(Ok(0) | Err(_)));
        assert_eq!(closed, i < 7, "client {i}: {read:?}");
    }
}

/// An upgraded connection (a WebSocket) is an open connection too: its place under the cap
/// was given back when hyper handed it to the route, so any number of upgraded connections
/// could be open past `max_connections`, each holding a descriptor. It now keeps its place
/// until its socket closes.
#[tokio::test]
async fn an_upgraded_connection_keeps_its_place_under_the_cap() {
    let (addr, _stop, _handle) = start(Server::new().max_connections(1).unwrap()).await;
    let upgraded = upgraded(addr).await;
    let mut next = TcpStream::connect(addr).await.unwrap();
    next.write_all(b"GET /ip HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(300), read_reply(&mut next)).await;
    assert!(
        waited.is_err(),
        "served past the cap of 1 while an upgraded connection was open: {waited:?}"
    );
    drop(upgraded);
    let reply = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut next))
        .await
        .expect("not served once the upgraded connection closed");
    assert_eq!(reply.status, 200);
}

/// Shutdown does not wait for connections that have no request in flight.
#[tokio::test]
async fn shutdown_does_not_wait_for_idle_connections() {
    let (addr, stop, handle) = start(Server::new()).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /ip HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    assert!(idle.read(&mut buf).await.unwrap() > 0);
    let _silent = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(2), handle)
        .await
        .expect("shutdown waited for idle connections (drain deadline 30 s)")
        .unwrap();
}

/// The client connects and sends its whole request before the server starts; the server's
/// shutdown future completes on its second poll, right after the accept loop took that
/// connection. The server accepted it, so the drain answers it. It was closed unread in
/// about half the runs: hyper closes a connection that has read nothing yet at a graceful
/// shutdown, and a socket's readiness comes with the runtime's next turn. (By the serve
/// audit helper.)
#[tokio::test]
async fn a_request_on_a_connection_accepted_just_before_shutdown_is_answered() {
    let mut unanswered = 0;
    for _ in 0..20 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let app = Router::new()
            .route("/", get(|| async { "hi" }))
            .layer(Hardening::strict());
        let server = tokio::spawn(Server::new().serve_until(listener, app, async {
            tokio::task::yield_now().await;
        }));
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut reply)).await;
        if !String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200") {
            unanswered += 1;
        }
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        unanswered, 0,
        "{unanswered} of 20 requests closed unanswered"
    );
}

/// A client that sends its request and then closes its sending side (`shutdown(SHUT_WR)`,
/// as `nc -N` and some HTTP/1.0 clients do) got no answer: hyper drops a request in flight
/// when it reads the end of the stream, unless told that clients may half-close. (Found by
/// the bad-input fuzz helper.)
#[tokio::test]
async fn a_client_that_half_closes_after_its_request_is_answered() {
    let (addr, _stop, _handle) = start(Server::new()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /work HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    // While the handler works (300 ms).
    stream.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(EXCHANGE_LIMIT, stream.read_to_end(&mut reply))
        .await
        .expect("no answer in time")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
    assert!(reply.ends_with("done"), "{reply:?}");
}

/// A client that half-closes in the middle of its head is closed at once (an incomplete
/// message), not kept open until the header-read timeout.
#[tokio::test]
async fn a_client_that_half_closes_mid_head_is_closed() {
    let (addr, _stop, _handle) = start(Server::new()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /ip HTTP/1.1\r\nhos").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply))
        .await
        .expect("kept open past 5 s (the header-read timeout is 10 s)")
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&reply).contains(" 200 "),
        "{reply:?}"
    );
}

/// A GET of `/ip` whose head (request line, fields and the blank line) is exactly `size`
/// bytes: filler fields of at most 8 000 bytes each (so that even a long head has fewer than
/// hyper's 100 fields).
fn head_of(size: usize) -> Vec<u8> {
    let mut head = "GET /ip HTTP/1.1\r\nhost: x\r\nconnection: close\r\n".to_owned();
    let mut i = 0;
    while head.len() + 2 < size {
        let line = format!("x-filler-{i}: ");
        let room = size - 2 - head.len() - line.len() - 2;
        head.push_str(&line);
        head.push_str(&"a".repeat(room.min(8_000)));
        head.push_str("\r\n");
        i += 1;
    }
    head.push_str("\r\n");
    assert_eq!(head.len(), size, "the test's head");
    head.into_bytes()
}

/// hyper's only limit on a request head was its read buffer, about 400 KiB (and up to about
/// 500 KiB when the head arrived at once), a lot for each connection to hold. `Server` now
/// refuses a head over 64 KiB with hyper's 431; one of 64 KiB is served, whether it comes
/// at once or in pieces.
#[tokio::test]
async fn a_head_over_64_kib_is_refused() {
    let (addr, _stop, _handle) = start(Server::new()).await;
    for (size, status) in [(65_536, 200), (65_537, 431), (450_000, 431)] {
        let reply = exchange(addr, &head_of(size)).await;
        assert_eq!(reply.status, status, "a head of {size} bytes sent at once");
    }
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for piece in head_of(65_536).chunks(4_096) {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let reply = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut stream))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "a head of 64 KiB sent in pieces");
}

/// `max_head_size` raises the limit (logged as a loosening, with the value and the default)
/// or lowers it (quietly); below 8 KiB it is refused, naming the least it takes.
#[tokio::test]
async fn the_head_size_limit_is_set_with_max_head_size() {
    let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
    let larger = Server::new().max_head_size(128 * 1024).unwrap();
    let smaller = Server::new().max_head_size(16 * 1024).unwrap();
    drop(guard);
    assert_eq!(
        captured.loosenings(),
        [(
            "Server::max_head_size".to_owned(),
            "hardening loosened: Server::max_head_size is 131072, larger than the default 65536"
                .to_owned()
        )]
    );
    let (addr, _stop, _handle) = start(larger).await;
    assert_eq!(exchange(addr, &head_of(100_000)).await.status, 200);
    let (addr, _stop, _handle) = start(smaller).await;
    assert_eq!(exchange(addr, &head_of(16_385)).await.status, 431);
    assert_eq!(exchange(addr, &head_of(16_384)).await.status, 200);

    let err = Server::new().max_head_size(8_191).unwrap_err();
    assert_eq!(
        err,
        ConfigError::HeadSizeTooSmall {
            given: 8_191,
            minimum: Server::MIN_HEAD_SIZE,
        }
    );
    assert!(err.to_string().contains("use at least 8192"), "{err}");
}
