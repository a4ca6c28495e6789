//! `hardening_core::serve` and `Server` with a plain tower service (a `ServiceBuilder` stack
//! with `Hardening` around a `service_fn`), not an axum `Router`: served over 127.0.0.1 with
//! the peer address, so per-IP limits count; and what a client gets when a service fails.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use hardening_core::ratelimit::{Policy, Quota, RateLimiter};
use hardening_core::{Hardening, Server};
use hardening_tests::{Captured, EXCHANGE_LIMIT, get};
use http::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

/// Answers with the peer address the server put in the request's extensions.
async fn peer(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(
            || "none".to_owned(),
            |ConnectInfo(addr)| addr.ip().to_string(),
        );
    Ok(Response::new(Body::from(peer)))
}

/// Serves `app` with `Server::serve_until` on an ephemeral loopback port until the test ends.
async fn start<S>(app: S) -> (SocketAddr, tokio::sync::oneshot::Sender<()>)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        Server::new()
            .serve_until(listener, app, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop)
}

/// The server could serve only an axum `Router`: a plain tower service under `Hardening`
/// (which the crate documents) had no graceful shutdown, header-read timeout or peer address
/// without going back to `axum::serve`. It is served, and its requests carry the peer.
#[tokio::test]
async fn a_plain_tower_service_is_served_with_the_peer_address() {
    let app = ServiceBuilder::new()
        .layer(Hardening::strict())
        .service(service_fn(peer));
    let (addr, _stop) = start(app).await;
    let reply = get(addr, "/", &[]).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "127.0.0.1"));
    assert!(reply.header("x-request-id").is_some(), "{reply:?}");
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
}

/// `hardening_core::serve` itself takes one (it runs until a signal, so it is only started
/// here, and the first answer read).
#[tokio::test]
async fn serve_takes_a_plain_tower_service() {
    let app = ServiceBuilder::new()
        .layer(Hardening::strict())
        .service(service_fn(peer));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(hardening_core::serve(listener, app));
    let reply = get(addr, "/", &[]).await;
    server.abort();
    assert_eq!((reply.status, reply.body.as_str()), (200, "127.0.0.1"));
}

/// The peer address reaches `Hardening`'s limiter for a plain service as for a router: past
/// the quota, a 429 problem with its request id.
#[tokio::test]
async fn a_plain_tower_service_is_limited_per_client_ip() {
    let quota = Quota::per_hour(NonZeroU32::new(2).unwrap());
    let hardening = Hardening::strict()
        .rate_limit(RateLimiter::new([Policy::per_client_ip("per-ip", quota)]))
        .unwrap();
    let app = ServiceBuilder::new()
        .layer(hardening)
        .service(service_fn(peer));
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let (addr, _stop) = start(app).await;
    for _ in 0..2 {
        assert_eq!(get(addr, "/", &[]).await.status, 200);
    }
    let refused = get(addr, "/", &[]).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    let problem = refused.json();
    assert_eq!(
        problem["request_id"].as_str(),
        refused.header("x-request-id"),
        "{problem}"
    );
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    // Counted by the client's address, not as a request without one.
    let no_peer = captured
        .warnings()
        .into_iter()
        .filter(|w| w.to_string().contains("ConnectInfo"))
        .count();
    assert_eq!(no_peer, 0, "{}", captured.text());
}

/// A service that answers 503 to a request it was not asked to be ready for (as tower's own
/// limits panic then).
#[derive(Clone, Default)]
struct MustBeReady {
    ready: bool,
}

impl Service<Request<Body>> for MustBeReady {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        let mut response = Response::new(Body::from("called without poll_ready"));
        if std::mem::take(&mut self.ready) {
            *response.body_mut() = Body::from("ready");
        } else {
            *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        }
        std::future::ready(Ok(response))
    }
}

/// A `Router` is always ready, so calling it without `poll_ready` went unnoticed; a plain
/// service may need it (a buffer, a concurrency limit), and each request's clone is asked.
#[tokio::test]
async fn each_request_asks_the_service_whether_it_is_ready() {
    let app = ServiceBuilder::new()
        .layer(Hardening::strict())
        .service(MustBeReady::default());
    let (addr, _stop) = start(app).await;
    for _ in 0..2 {
        let reply = get(addr, "/", &[]).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "ready"));
    }
}

/// What a client gets when a plain service fails with an `Err` under `Hardening`, served by
/// hyper (as a server that took such a service would): nothing. `Hardening` passes the
/// error on (logged `service_error`), and hyper closes the connection without writing a
/// response, not even a 500. This is why `serve` takes only services whose error is
/// `Infallible` (as `axum::serve` does): errors must become responses inside.
#[tokio::test]
async fn a_service_error_reaches_the_client_as_a_closed_connection() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let app = ServiceBuilder::new()
        .layer(Hardening::strict())
        .service(service_fn(|_: Request<Body>| async {
            Err::<Response<Body>, _>(std::io::Error::other("db down"))
        }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(Body::new))
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
            .await;
    });
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(EXCHANGE_LIMIT, stream.read_to_end(&mut answer))
        .await
        .expect("the connection stayed open")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&answer), "", "no response at all");
    let access = captured.wait_for_access_events(1).await;
    assert_eq!(access[0]["error.type"], "service_error", "{}", access[0]);
}
