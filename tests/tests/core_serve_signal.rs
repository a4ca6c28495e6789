//! `hardening_core::serve` and real signals: a second SIGTERM ends the drain at once. Its own
//! test binary, since the test sends SIGTERM to its own process.

#![cfg(unix)]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use hardening_core::{Hardening, Server};
use hardening_tests::{EXCHANGE_LIMIT, exchange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn sigterm_self() {
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", std::process::id())])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_second_sigterm_closes_what_the_drain_waits_for() {
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .route(
            "/stuck",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "late"
            }),
        )
        .layer(Hardening::strict().dangerous_disable_timeout());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        Server::new()
            .drain_timeout(Duration::from_secs(60))
            .serve(listener, app),
    );
    // Answered: the server is past its first wait for a signal, so it listens for SIGTERM
    // (a SIGTERM before that would end this test process).
    let reply = exchange(
        addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);

    let mut stuck = TcpStream::connect(addr).await.unwrap();
    stuck
        .write_all(b"GET /stuck HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    sigterm_self();
    // Draining once it no longer accepts (bounded: the test fails rather than hangs).
    let started = Instant::now();
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            started.elapsed() < EXCHANGE_LIMIT,
            "SIGTERM did not stop the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !server.is_finished(),
        "the stuck request was not waited for"
    );

    sigterm_self();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("a second SIGTERM did not end the drain (deadline 60 s)")
        .unwrap()
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(1), stuck.read_to_end(&mut rest))
        .await
        .expect("the stuck connection is still open")
        .unwrap();
    assert!(!String::from_utf8_lossy(&rest).contains("late"));
}
