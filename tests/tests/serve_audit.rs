//! Audit of `hardening_core::Server`: slow clients (headers, bodies, idle keep-alive, slow
//! readers), the graceful drain, and what the server does with what it does not serve.
//! Loopback only; every wait is bounded, and bounds are generous (behaviour, not timing).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use hardening_core::{Hardening, Server};
use hardening_tests::{Captured, EXCHANGE_LIMIT, exchange, read_reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

/// Set when the response body it belongs to is dropped (the server let go of the response).
#[derive(Debug)]
struct Endless(Arc<AtomicBool>);

impl Drop for Endless {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

fn app(endless_dropped: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/", get(|| async { "hi" }))
        .route(
            "/work",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "done"
            }),
        )
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/endless",
            get(move || {
                let dropped = endless_dropped.clone();
                async move { Body::new(Endless(dropped)) }
            }),
        )
        .layer(
            Hardening::strict()
                .timeout(Duration::from_secs(1))
                .unwrap()
                .dangerous_without_rate_limit(),
        )
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
    endless_dropped: Arc<AtomicBool>,
}

async fn start(server: Server) -> Running {
    start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), server)
}

/// [`start`] on `listener`.
fn start_on(listener: TcpListener, server: Server) -> Running {
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let endless_dropped = Arc::new(AtomicBool::new(false));
    let routes = app(endless_dropped.clone());
    let handle = tokio::spawn(async move {
        server
            .serve_until(listener, routes, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        stop: Some(stop),
        handle,
        endless_dropped,
    }
}

fn one_second() -> Server {
    Server::new()
        .header_read_timeout(Server::MIN_HEADER_READ_TIMEOUT)
        .unwrap()
}

/// Reads until the server closes the connection (or resets it): true if it did within
/// `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> (bool, Vec<u8>) {
    let mut rest = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (false, rest),
            Ok(Ok(0) | Err(_)) => return (true, rest),
            Ok(Ok(n)) => rest.extend_from_slice(&buf[..n]),
        }
    }
}

/// Slowloris: one header byte every 100 ms. The header-read timeout is a deadline for the
/// whole head, not reset by each byte (hyper starts it once per request head).
#[tokio::test]
async fn a_header_trickled_byte_by_byte_is_cut_off_at_the_deadline() {
    let running = start(one_second()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut cut_off = false;
    // At most 8 s of trickling: four times the timeout, far past it if reset per byte.
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stream.write_all(b"x").await.is_err() {
            cut_off = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await
        {
            cut_off = true;
            break;
        }
    }
    assert!(
        cut_off,
        "a header trickled byte by byte kept the connection"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut off only after {:?}",
        started.elapsed()
    );
}

/// Many slow clients at once: each one's connection (task and socket) is let go at its
/// deadline, and a normal client is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_slow_header_clients_are_all_let_go() {
    let running = start(one_second()).await;
    let mut slow = Vec::new();
    for _ in 0..64 {
        let mut stream = TcpStream::connect(running.addr).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nhost:").await.unwrap();
        slow.push(stream);
    }
    let reply = exchange(
        running.addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
    for stream in &mut slow {
        let (closed, _) = closed_within(stream, Duration::from_secs(5)).await;
        assert!(closed, "a slow-header connection was kept open");
    }
}

/// An idle keep-alive connection is closed after the idle timeout.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let running = start(one_second().idle_timeout(Server::MIN_IDLE_TIMEOUT).unwrap()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let reply = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut stream))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_ne!(reply.header("connection"), Some("close"));
    let (closed, rest) = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "an idle keep-alive connection was kept open");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

/// The second request on a kept-alive connection has the same deadline for its head.
#[tokio::test]
async fn the_second_request_head_has_the_deadline_too() {
    let running = start(one_second()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let reply = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut stream))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let started = Instant::now();
    let mut cut_off = false;
    for byte in
        b"GET / HTTP/1.1\r\nhost: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await
        {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "a trickled second request kept the connection");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A body trickled after the headers: the request timeout answers it with the documented
/// 408 problem (the client is slow), and the connection is then closed, so the rest of the
/// body is never parsed as a request of its own.
#[tokio::test]
async fn a_trickled_body_gets_the_timeout_problem_and_the_connection_closes() {
    let running = start(one_second()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    // Keep-alive, so that closing is the server's decision.
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 200\r\n\r\nab")
        .await
        .unwrap();
    let started = Instant::now();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    // Keep trickling while waiting for the answer: one byte per 100 ms.
    let reply = loop {
        assert!(
            started.elapsed() < EXCHANGE_LIMIT,
            "no answer to a trickled body"
        );
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0)) => break head,
            Ok(Ok(n)) => {
                head.extend_from_slice(&buf[..n]);
                if head.windows(4).any(|w| w == b"\r\n\r\n")
                    && String::from_utf8_lossy(&head).contains("request_id")
                {
                    break head;
                }
            }
            Ok(Err(_)) => break head,
            Err(_) => {
                let _ = stream.write_all(b"c").await;
            }
        }
    };
    let text = String::from_utf8_lossy(&reply).into_owned();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(
        text.contains("the request body arrived too slowly"),
        "{text}"
    );
    // The rest of the body, written as a request: never answered.
    let _ = stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let (closed, rest) = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(
        closed,
        "the connection stayed open after the timeout answer"
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains("HTTP/1.1 200"),
        "the rest of the body was served as a request: {}",
        String::from_utf8_lossy(&rest)
    );
}

/// Shutdown with a fresh connection that has sent part of its headers: the drain waits for it
/// at most the header-read timeout, not the drain deadline.
#[tokio::test]
async fn a_half_sent_head_holds_the_drain_only_until_the_header_read_timeout() {
    let mut running = start(one_second().drain_timeout(Duration::from_secs(60))).await;
    let mut partial = TcpStream::connect(running.addr).await.unwrap();
    partial.write_all(b"GET / HTTP/1.1\r\nhost:").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    running.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running.handle)
        .await
        .expect("a half-sent head held the drain past its header-read timeout")
        .unwrap();
    let (closed, _) = closed_within(&mut partial, Duration::from_secs(2)).await;
    assert!(closed);
}

/// Shutdown with a kept-alive connection that has sent part of its second request: closed at
/// once (it counts as idle), and an in-flight keep-alive request is answered with
/// `connection: close`.
#[tokio::test]
async fn shutdown_closes_idle_keep_alive_and_answers_in_flight_with_close() {
    let mut running = start(Server::new().drain_timeout(Duration::from_secs(60))).await;
    let mut kept = TcpStream::connect(running.addr).await.unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let reply = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut kept))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    kept.write_all(b"GET / HTT").await.unwrap();

    let mut busy = TcpStream::connect(running.addr).await.unwrap();
    busy.write_all(b"GET /work HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    running.stop.take().unwrap().send(()).unwrap();
    let reply = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut busy))
        .await
        .unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "done"));
    assert_eq!(reply.header("connection"), Some("close"));
    tokio::time::timeout(Duration::from_secs(5), running.handle)
        .await
        .expect("the drain waited for an idle connection (deadline 60 s, header read 10 s)")
        .unwrap();
    let (closed, _) = closed_within(&mut kept, Duration::from_secs(2)).await;
    assert!(closed);
}

/// HTTP/2 with prior knowledge (h2c) is not served: the connection is closed, no response.
#[tokio::test]
async fn h2c_prior_knowledge_is_refused() {
    let running = start(Server::new()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let (closed, rest) = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(closed);
    assert!(!String::from_utf8_lossy(&rest).contains(" 200 "));
}

/// A panic in a service that `Hardening` does not wrap ends that connection only.
#[tokio::test]
async fn a_panic_in_a_connection_task_leaves_the_server_serving() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Router::new().route("/", get(|| async { "hi" })).route(
        "/panic",
        get(|| async {
            if true {
                panic!("boom");
            }
            "unreachable"
        }),
    );
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        Server::new()
            .serve_until(listener, routes, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /panic HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (closed, _) = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(closed);
    let reply = exchange(
        addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
}

/// A client that never reads its response: the send timeout (as nginx's `send_timeout`)
/// closes the connection and drops the response body once the client has taken nothing for
/// that long; before it, only the drain deadline ended it.
#[tokio::test]
async fn a_client_that_never_reads_is_let_go() {
    let running = start(one_second().send_timeout(Duration::from_secs(1)).unwrap()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    while !running.endless_dropped.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a client that never reads held its connection and response for 5 s \
             (header read 1 s, request timeout 1 s, send timeout 1 s)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A steady reader is not cut off: the send timeout's clock runs only while a write waits,
/// and starts again when it goes on. Reading 256 KiB every 50 ms for 2.5 s (the server's
/// writes wait for it all along) outlasts a 1-second send timeout. (The kernel makes room
/// for a waiting write only once about half the socket's send buffer has gone out, so a
/// slower reader can see a write wait longer than one read's gap.)
#[tokio::test]
async fn a_slow_but_steady_reader_is_not_cut_off() {
    let running = start(one_second().send_timeout(Duration::from_secs(1)).unwrap()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
            .await
            .expect("the server sends more within 2 s")
            .unwrap();
        assert!(n > 0, "the server closed a steadily read connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!running.endless_dropped.load(Ordering::SeqCst));
}

/// A server whose send timeout is short (2 s) and whose minimum send rate is 16 KiB/s, so
/// that a client behind the rate runs out of slack within seconds.
fn slow_read_server() -> Server {
    Server::new()
        .send_timeout(Duration::from_secs(2))
        .unwrap()
        .min_send_rate(16 * 1024)
        .unwrap()
}

/// A listener on 127.0.0.1 whose connections have a small send buffer, and a client of it with
/// a small receive buffer that asked for `/endless`: as on a real link a slow reader's
/// buffers are full, the server's writes wait on the reader within a few KiB.
async fn endless_through_small_buffers(server: Server) -> (Running, TcpStream) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let running = start_on(socket.listen(16).unwrap(), server);
    let client = TcpSocket::new_v4().unwrap();
    client.set_recv_buffer_size(4096).unwrap();
    let mut stream = client.connect(running.addr).await.unwrap();
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    (running, stream)
}

/// Reads `bytes` every `every` for at most `limit`: how long until the server closed the
/// connection (`None` if it did not), and how much was read.
async fn read_at(
    stream: &mut TcpStream,
    bytes: usize,
    every: Duration,
    limit: Duration,
) -> (Option<Duration>, usize) {
    let mut buf = vec![0u8; bytes];
    let mut total = 0;
    let started = Instant::now();
    while started.elapsed() < limit {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0) | Err(_)) => return (Some(started.elapsed()), total),
            Ok(Ok(n)) => total += n,
        }
        tokio::time::sleep(every).await;
    }
    (None, total)
}

/// A slow-read attack: 512 bytes every 100 ms (5 KB/s, under a third of the minimum rate; a
/// client taking a few bytes a second against the default 240 bytes/s and 60 s, sped up). It
/// kept an endless response, and its connection, for as long as it read: the send timeout
/// started again at each write that went on, and the kernel let a waiting write go on every
/// few hundred ms. Now the client runs out of slack within a few send timeouts, is cut off,
/// and is reported once (`slow_read`).
#[tokio::test]
async fn a_client_reading_a_few_bytes_at_a_time_is_cut_off_below_the_minimum_send_rate() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let (running, mut stream) = endless_through_small_buffers(slow_read_server()).await;
    let limit = Duration::from_secs(15);
    let (closed, read) = read_at(&mut stream, 512, Duration::from_millis(100), limit).await;
    let Some(after) = closed else {
        panic!(
            "a client taking 5 KB/s of an endless response was still served after {limit:?} \
             ({read} bytes read)"
        );
    };
    eprintln!("cut off after {after:?}, {read} bytes read");
    let started = Instant::now();
    while !running.endless_dropped.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < EXCHANGE_LIMIT,
            "the response was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let events = captured.security_events();
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["slow_read"], "{}", captured.text());
    assert_eq!(events[0].1["fields"]["client.address"], "127.0.0.1");
}

/// A client reading steadily above the minimum rate (about 60 KB/s here, almost four times
/// it) through the same small buffers, the server's writes waiting on it all along, is not
/// cut off.
#[tokio::test]
async fn a_client_reading_steadily_above_the_minimum_send_rate_is_not_cut_off() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let (running, mut stream) = endless_through_small_buffers(slow_read_server()).await;
    let (closed, read) = read_at(
        &mut stream,
        4096,
        Duration::from_millis(50),
        Duration::from_secs(4),
    )
    .await;
    assert_eq!(closed, None, "cut off after {read} bytes");
    assert!(read > 4 * 16 * 1024, "read only {read} bytes in 4 s");
    assert!(!running.endless_dropped.load(Ordering::SeqCst));
    assert_eq!(captured.security_event_names(), Vec::<String>::new());
}

/// The minimum rate's setting: zero is an error; a rate below the default, or none, is
/// logged as a loosening; the default and more are not.
#[test]
fn the_minimum_send_rate_is_set_with_min_send_rate() {
    let err = Server::new().min_send_rate(0).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("min_send_rate must be greater than zero; to turn the minimum off"),
        "{err}"
    );
    let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
    let _quiet = Server::new()
        .min_send_rate(240)
        .unwrap()
        .min_send_rate(100_000);
    let _lower = Server::new().min_send_rate(64).unwrap();
    let _none = Server::new().dangerous_without_min_send_rate();
    drop(guard);
    assert_eq!(
        captured.loosenings(),
        [
            (
                "Server::min_send_rate".to_owned(),
                "hardening loosened: Server::min_send_rate is 64 bytes/s, lower than the \
                 default 240 bytes/s"
                    .to_owned()
            ),
            (
                "Server::dangerous_without_min_send_rate".to_owned(),
                "hardening loosened: no minimum send rate: a client that takes a few bytes of \
                 its response within each send timeout keeps it, and its connection, for as \
                 long as it likes"
                    .to_owned()
            ),
        ]
    );
}

/// Out of file descriptors: accept fails (EMFILE) until a socket is freed. The loop backs off
/// rather than spinning, logs, and serves again once descriptors are free. Run in a child
/// process with a low descriptor limit (`ulimit -n`), by `accept_errors_back_off`.
#[tokio::test]
#[cfg(unix)]
#[ignore = "run by accept_errors_back_off in a child process with a low descriptor limit"]
async fn accept_errors_back_off_inner() {
    if std::env::var_os("SERVE_AUDIT_EMFILE").is_none() {
        return;
    }
    let (captured, _guard) = hardening_tests::Captured::json_logs(tracing::Level::WARN);
    let running = start(Server::new()).await;
    // The server's accept loop runs on this thread (a current-thread runtime).
    let schedstat = std::fs::File::open("/proc/thread-self/schedstat").unwrap();
    // Connect until the process is out of descriptors (bounded by the limit set).
    let mut clients = Vec::new();
    for _ in 0..1024 {
        match TcpStream::connect(running.addr).await {
            Ok(stream) => clients.push(stream),
            Err(_) => break,
        }
    }
    assert!(clients.len() < 1024, "the descriptor limit was not reached");
    let runnable_before = runnable_ms(&schedstat);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let runnable_ms_in_1_s = runnable_ms(&schedstat) - runnable_before;
    let warnings = captured.text().matches("accept failed").count();
    eprintln!(
        "clients {} warnings in 1 s: {warnings}, runnable: {runnable_ms_in_1_s} ms",
        clients.len()
    );
    // Logged once, then at most every 10 s (20 failures a second would flood the logs).
    assert_eq!(warnings, 1, "{}", captured.text());
    // A loop that retried at once would keep this thread runnable for the whole second;
    // 20 retries a second cost next to nothing.
    assert!(
        runnable_ms_in_1_s < 500,
        "runnable for {runnable_ms_in_1_s} ms of 1 s: a busy loop"
    );
    clients.truncate(clients.len() / 2);
    let reply = exchange(
        running.addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
}

/// How long this thread has been runnable so far, in ms: running, or waiting for a core
/// (`/proc/thread-self/schedstat`: the first two fields, in ns). Unlike CPU time, a busy
/// loop counts in full however busy the machine is. `schedstat` is opened beforehand (out
/// of descriptors, opening it would fail); each read at offset 0 reads anew.
#[cfg(unix)]
fn runnable_ms(schedstat: &std::fs::File) -> u64 {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 128];
    let len = schedstat.read_at(&mut buf, 0).unwrap();
    let text = std::str::from_utf8(&buf[..len]).unwrap();
    let ns: Vec<u64> = text
        .split_whitespace()
        .take(2)
        .map(|n| n.parse().unwrap())
        .collect();
    (ns[0] + ns[1]) / 1_000_000
}

#[cfg(unix)]
#[test]
fn accept_errors_back_off() {
    let exe = std::env::current_exe().unwrap();
    hardening_tests::assert_child_test_passes(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 128 && exec \"$0\" --exact accept_errors_back_off_inner --ignored --nocapture")
            .arg(exe)
            .env("SERVE_AUDIT_EMFILE", "1"),
    );
}
