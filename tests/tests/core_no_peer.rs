//! A request without a peer address (`ConnectInfo`) cannot be rate limited by IP: the layer
//! says so, once, instead of leaving the limit off in silence.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use hardening_core::Hardening;
use hardening_tests::Captured;
use http::Request;
use tower::ServiceExt;

const WARNING: &str = "a request came without a peer address";

#[tokio::test]
async fn a_request_without_a_peer_address_is_warned_about_once() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(Hardening::strict());
    for _ in 0..3 {
        let res = app
            .clone()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let logs = captured.text();
    assert_eq!(logs.matches(WARNING).count(), 1, "{logs}");
}

#[tokio::test]
async fn a_request_with_a_peer_address_is_not_warned_about() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(Hardening::strict());
    let mut req = Request::get("/").body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))));
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(!captured.text().contains(WARNING));
}
