//! `CostLayer` under a real hyper server: a successful response keeps its estimate charged
//! although hyper stops polling a body once it says it has ended, and drops the bodies of
//! `HEAD` responses unpolled.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hardening_core::ratelimit::{CostLayer, Estimate, Policy, Quota, RateLimiter, RequestKeys};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn budget(units: u32) -> RateLimiter {
    RateLimiter::new([Policy::global(
        "budget",
        Quota::per_day(NonZeroU32::new(units).unwrap()),
    )])
}

fn remaining(limiter: &RateLimiter) -> u32 {
    let headers = http::HeaderMap::new();
    limiter.statuses(&RequestKeys::new(None, &headers))[0].remaining()
}

async fn serve(limiter: &RateLimiter, estimate: u32) -> SocketAddr {
    let app = Router::new()
        .route("/", get(|| async { "the whole answer" }))
        .layer(CostLayer::new(limiter.clone(), Estimate::fixed(estimate)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Sends `method /` and reads the whole reply; then gives the server time to drop the body.
async fn exchange(addr: SocketAddr, method: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("{method} / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    String::from_utf8(reply).unwrap()
}

#[tokio::test]
async fn a_served_success_keeps_its_estimate() {
    let limiter = budget(10_000);
    let addr = serve(&limiter, 100).await;
    let reply = exchange(addr, "GET").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("the whole answer"), "{reply}");
    assert_eq!(remaining(&limiter), 9_900);
}

#[tokio::test]
async fn a_served_head_request_keeps_its_estimate() {
    let limiter = budget(100);
    let addr = serve(&limiter, 10).await;
    let reply = exchange(addr, "HEAD").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("\r\n\r\n"), "no body: {reply}");
    assert_eq!(remaining(&limiter), 90);
}
