//! A streamed response through `Hardening` over TCP, as a chat app streams a model's tokens
//! as server-sent events: the request timeout times the head only, and the stream holds its
//! concurrency slot and its `CostLayer` reservation until it ends, then is logged once with
//! its whole duration (README, "Coming from a tower-http `ServiceBuilder`"). The timeout is
//! 200 ms and the stream half a second, so that it runs well past the timeout; every wait is
//! bounded.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use hardening_core::Hardening;
use hardening_core::ratelimit::{
    ConcurrencyLimiter, CostLayer, Estimate, Policy, Quota, RateLimiter, RequestKeys, Usage,
};
use hardening_tests::{Captured, EXCHANGE_LIMIT, eventually, get as http_get, serve, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

const EVENTS: u32 = 5;
const EVERY: Duration = Duration::from_millis(100);
const TIMEOUT: Duration = Duration::from_millis(200);
const BUDGET: u32 = 1_000;
const ESTIMATE: u32 = 50;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// A model's answer as server-sent events: `events` tokens, one every [`EVERY`], each
/// reported to the `CostLayer` as it is sent, and counted in `sent`.
struct Tokens {
    usage: Usage,
    sent: Arc<AtomicU32>,
    events: u32,
    next: u32,
    sleep: Pin<Box<Sleep>>,
}

impl http_body::Body for Tokens {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.next == self.events {
            return Poll::Ready(None);
        }
        ready!(self.sleep.as_mut().poll(cx));
        let next = self.next;
        self.next += 1;
        self.sleep
            .as_mut()
            .reset(tokio::time::Instant::now() + EVERY);
        self.usage.add(1);
        self.sent.fetch_add(1, Ordering::SeqCst);
        let event = format!("data: tok{next}\n\n");
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(event)))))
    }
}

/// The chat app: `/events` streams `events` tokens under a per-IP token budget, `/` answers
/// at once; one request in flight per client, and a request timeout of [`TIMEOUT`].
fn app(budget: RateLimiter, sent: Arc<AtomicU32>, events: u32) -> Router {
    let cost = CostLayer::new(budget, Estimate::fixed(ESTIMATE));
    let events = get(move |usage: Usage| {
        let sent = sent.clone();
        async move {
            let tokens = Tokens {
                usage,
                sent,
                events,
                next: 0,
                sleep: Box::pin(tokio::time::sleep(EVERY)),
            };
            ([("content-type", "text/event-stream")], Body::new(tokens)).into_response()
        }
    });
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/events", events.route_layer(cost))
        .layer(
            Hardening::strict()
                .timeout(TIMEOUT)
                .unwrap()
                .concurrency_limit(ConcurrencyLimiter::per_client(nz(1))),
        )
}

fn budget() -> RateLimiter {
    RateLimiter::new([Policy::per_client_ip(
        "tokens-per-day",
        Quota::per_day(nz(BUDGET)),
    )])
}

/// What is left of the loopback client's budget.
fn remaining(budget: &RateLimiter) -> u32 {
    let headers = http::HeaderMap::new();
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    budget.statuses(&RequestKeys::new(Some(loopback), &headers))[0].remaining()
}

/// Sends `GET /events` and reads until `until` is in what came back.
async fn open_stream(addr: SocketAddr, until: &str) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    let read = async {
        while !String::from_utf8_lossy(&received).contains(until) {
            let mut buf = [0; 1024];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed early: {}",
                String::from_utf8_lossy(&received)
            );
            received.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(EXCHANGE_LIMIT, read)
        .await
        .expect("the stream's first events in time");
    (stream, received)
}

/// The access-log event of `/events`, once it has been written.
async fn events_logged(captured: &Captured) -> serde_json::Value {
    let mut found = None;
    let logged = eventually(async || {
        found = captured
            .access_events()
            .into_iter()
            .find(|e| e["http.route"] == "/events");
        found.is_some()
    })
    .await;
    assert!(
        logged,
        "no access-log event for /events: {:#?}",
        captured.access_events()
    );
    found.unwrap()
}

/// Whether `/` is answered again (the stream's slot is free), waiting a little for the
/// server to let the stream go.
async fn slot_freed(addr: SocketAddr) -> bool {
    eventually(async || http_get(addr, "/", &[]).await.status == 200).await
}

#[tokio::test]
async fn an_event_stream_outlives_the_request_timeout_and_holds_its_slot_and_budget_to_its_end() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let budget = budget();
    let sent = Arc::new(AtomicU32::new(0));
    let addr = serve(app(budget.clone(), sent.clone(), EVENTS)).await;

    let (mut stream, mut received) = open_stream(addr, "data: tok0").await;
    // While it streams: its slot is held, and its estimate reserved.
    let refused = http_get(addr, "/", &[]).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(
        refused.json()["violated-policies"],
        serde_json::json!(["concurrency"])
    );
    assert_eq!(remaining(&budget), BUDGET - ESTIMATE);

    tokio::time::timeout(EXCHANGE_LIMIT, stream.read_to_end(&mut received))
        .await
        .expect("the stream ends in time")
        .unwrap();
    let received = String::from_utf8_lossy(&received);
    assert!(received.starts_with("HTTP/1.1 200 "), "{received}");
    assert!(
        received.contains("content-type: text/event-stream"),
        "{received}"
    );
    for n in 0..EVENTS {
        assert!(
            received.contains(&format!("data: tok{n}\n\n")),
            "tok{n}: {received}"
        );
    }
    assert!(
        received.ends_with("\r\n0\r\n\r\n"),
        "not ended as it should: {received}"
    );

    assert!(slot_freed(addr).await, "the slot was never freed");
    // Settled to the usage reported, one token an event.
    wait_until("the reservation settled", || {
        remaining(&budget) == BUDGET - EVENTS
    })
    .await;
    let event = events_logged(&captured).await;
    assert_eq!(event["http.response.status_code"], 200, "{event}");
    assert!(event.get("error.type").is_none(), "{event}");
    let duration = event["http.server.request.duration"].as_f64().unwrap();
    let whole = (EVERY * EVENTS).as_secs_f64();
    assert!(
        duration >= whole,
        "logged {duration} s, before its end ({whole} s): {event}"
    );
}

/// A client that leaves mid-stream: the stream is logged `cancelled` beside its 200, its slot
/// is freed, and it is charged the tokens it was sent, the rest of the estimate refunded.
#[tokio::test]
async fn a_client_gone_mid_stream_frees_its_slot_and_is_charged_what_was_sent() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let budget = budget();
    let sent = Arc::new(AtomicU32::new(0));
    // Far more than are sent before the server sees the client gone (a write or two after
    // the hang-up), however late the client reads.
    let events = 50;
    let addr = serve(app(budget.clone(), sent.clone(), events)).await;

    let (stream, _) = open_stream(addr, "data: tok1").await;
    drop(stream);

    let event = events_logged(&captured).await;
    assert_eq!(event["http.response.status_code"], 200, "{event}");
    assert_eq!(event["error.type"], "cancelled", "{event}");
    assert!(slot_freed(addr).await, "the slot was never freed");
    let charged = sent.load(Ordering::SeqCst);
    assert!((2..events).contains(&charged), "{charged} tokens sent");
    wait_until("the reservation settled", || {
        remaining(&budget) == BUDGET - charged
    })
    .await;
}
